//! [`MctsError`]: why a search stopped.

use std::fmt;

use helios::Version;

use super::{At, BoardError, UnknownBranch};

/// Why the search stopped.
#[derive(Debug)]
pub enum MctsError {
    /// An engine call failed.
    Engine {
        /// The call.
        operation: &'static str,
        /// Its node or branch.
        at: String,
        /// The engine's error (boxed: `helios::Error` is large, and errors are rare).
        source: Box<helios::Error>,
    },
    /// The engine's state at a node is not a board.
    Board {
        /// The node.
        at: At,
        /// What is wrong.
        source: BoardError,
    },
    /// The engine returned a state or version other than the one the search expects.
    Mismatch {
        /// The node.
        at: At,
        /// What differs.
        what: String,
    },
    /// The generator's own bookkeeping broke (a bug here, not in the engine).
    Tree(UnknownBranch),
    /// A game's stream already holds events.
    StreamNotEmpty {
        /// The stream.
        stream: String,
        /// Its head.
        head: Version,
    },
    /// [`super::MctsConfig::promote_every`] is 0.
    InvalidConfig(&'static str),
    /// A call on the in-memory positions ([`super::InMemory`]) failed: a bug in the search
    /// or in that store, since nothing there can fail otherwise.
    InMemory {
        /// The engine call it stands for.
        operation: &'static str,
        /// Its node or branch.
        at: String,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for MctsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MctsError::Engine {
                operation,
                at,
                source,
            } => write!(f, "{operation} on {at} failed: {source}"),
            MctsError::Board { at, source } => write!(f, "the state at {at} is {source}"),
            MctsError::Mismatch { at, what } => {
                write!(f, "the engine disagrees with the search at {at}: {what}")
            }
            MctsError::Tree(error) => write!(f, "search bookkeeping: {error}"),
            MctsError::StreamNotEmpty { stream, head } => write!(
                f,
                "stream `{stream}` already has {} events: a game needs a new stream",
                head.0
            ),
            MctsError::InvalidConfig(reason) => write!(f, "invalid MCTS configuration: {reason}"),
            MctsError::InMemory {
                operation,
                at,
                reason,
            } => write!(f, "{operation} on {at}, in memory, failed: {reason}"),
        }
    }
}

impl std::error::Error for MctsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MctsError::Engine { source, .. } => Some(source.as_ref()),
            MctsError::Board { source, .. } => Some(source),
            MctsError::Tree(source) => Some(source),
            _ => None,
        }
    }
}

impl From<UnknownBranch> for MctsError {
    fn from(error: UnknownBranch) -> Self {
        MctsError::Tree(error)
    }
}
