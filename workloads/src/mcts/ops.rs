//! The workload's operations: the nodes of the search ([`At`]), the caller's names for commits
//! ([`CommitKind`]) and every engine call as a recordable [`Op`], which a [`super::Backend`]
//! can replay elsewhere.

use std::fmt;

use helios::{BranchId, Classifier, DefaultClassifier, Durability, Version};

use super::Board;

/// A node of the search: a version of the durable stream or of a branch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum At {
    /// A version of a stream's durable history.
    Durable {
        /// The stream.
        stream: String,
        /// The version.
        version: Version,
    },
    /// A version of a branch (its own, or one it was forked from).
    Branch {
        /// The branch.
        branch: BranchId,
        /// The version.
        version: Version,
    },
}

impl At {
    /// The node's version.
    #[must_use]
    pub fn version(&self) -> Version {
        match self {
            At::Durable { version, .. } | At::Branch { version, .. } => *version,
        }
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Durable { stream, version } => {
                write!(f, "stream `{stream}` at version {}", version.0)
            }
            At::Branch { branch, version } => write!(f, "{branch} at version {}", version.0),
        }
    }
}

/// The caller's name for a commit, as the engine's classifier sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommitKind {
    /// The move that expands the tree by one node.
    Expansion,
    /// One move of a rollout.
    Rollout,
    /// A move played for real: the promotion of the best child of the root.
    Move,
}

impl CommitKind {
    /// The kind's name, as passed to `Engine::commit`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            CommitKind::Expansion => "expansion",
            CommitKind::Rollout => "rollout",
            CommitKind::Move => "move",
        }
    }

    /// The class Helios's [`DefaultClassifier`] gives this kind.
    #[must_use]
    pub fn class(self) -> Durability {
        DefaultClassifier.classify("", self.name())
    }
}

/// Kinds of [`Op`], for per-kind statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// [`Op::CreateStream`].
    CreateStream,
    /// [`Op::Fork`].
    Fork,
    /// [`Op::Append`]: a speculative commit.
    Append,
    /// [`Op::View`].
    View,
    /// [`Op::Promote`]: a critical commit.
    Promote,
    /// [`Op::Discard`].
    Discard,
    /// [`Op::Prune`].
    Prune,
}

impl OpKind {
    /// Every kind, in table order.
    pub const ALL: [OpKind; 7] = [
        OpKind::Append,
        OpKind::Promote,
        OpKind::View,
        OpKind::Fork,
        OpKind::Discard,
        OpKind::Prune,
        OpKind::CreateStream,
    ];

    /// A short name for tables.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            OpKind::CreateStream => "create stream",
            OpKind::Fork => "fork",
            OpKind::Append => "speculative append",
            OpKind::View => "view (node, board read)",
            OpKind::Promote => "critical promote",
            OpKind::Discard => "discard",
            OpKind::Prune => "prune",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One engine call of the workload, with what a replay needs to repeat it.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A new game's stream.
    CreateStream {
        /// The stream.
        stream: String,
    },
    /// A new branch.
    Fork {
        /// The id the engine gave it.
        branch: BranchId,
        /// Where it starts: its first event is `from.version() + 1`.
        from: At,
    },
    /// A speculative commit: one `append_branch` call.
    Append {
        /// Why (expansion or rollout).
        kind: CommitKind,
        /// The branch.
        branch: BranchId,
        /// Its head before the append.
        expected: Version,
        /// The events (one per move).
        events: Vec<Vec<u8>>,
    },
    /// A read of a node's state, with the board it held.
    View {
        /// The node.
        at: At,
        /// Its board.
        board: Board,
    },
    /// A critical commit: one `promote` call, making a branch's path from the head durable.
    Promote {
        /// The stream.
        stream: String,
        /// The branch promoted.
        branch: BranchId,
        /// The stream's head before.
        head: Version,
        /// The version promoted through: the new head.
        upto: Version,
        /// The events from `head + 1` to `upto`.
        events: Vec<Vec<u8>>,
    },
    /// A branch dropped (a finished rollout, or the rest of a finished game).
    Discard {
        /// The branch.
        branch: BranchId,
    },
    /// The branches that no longer descend from the head, dropped after a promotion.
    Prune {
        /// The stream.
        stream: String,
        /// The branches that should go, by the generator's count.
        discarded: Vec<BranchId>,
    },
}

impl Op {
    /// The op's kind.
    #[must_use]
    pub fn kind(&self) -> OpKind {
        match self {
            Op::CreateStream { .. } => OpKind::CreateStream,
            Op::Fork { .. } => OpKind::Fork,
            Op::Append { .. } => OpKind::Append,
            Op::View { .. } => OpKind::View,
            Op::Promote { .. } => OpKind::Promote,
            Op::Discard { .. } => OpKind::Discard,
            Op::Prune { .. } => OpKind::Prune,
        }
    }

    /// The commit's class, `None` for ops that are not commits (one commit is one append or
    /// promote call).
    #[must_use]
    pub fn class(&self) -> Option<Durability> {
        match self {
            Op::Append { .. } => Some(Durability::Speculative),
            Op::Promote { .. } => Some(Durability::Critical),
            _ => None,
        }
    }

    /// Events the op commits.
    #[must_use]
    pub fn events_count(&self) -> usize {
        match self {
            Op::Append { events, .. } | Op::Promote { events, .. } => events.len(),
            _ => 0,
        }
    }
}
