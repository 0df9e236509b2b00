//! Where the search keeps its positions: [`Positions`], every call the search makes on a store,
//! implemented by the engine itself (`&Engine`, the workload) and by [`super::InMemory`] (plain
//! boards, the limit of the same search without an engine).
//!
//! The search times each call from just before it to just after it, so an implementation does
//! inside a call exactly what the search must wait for, and nothing else: the engine's
//! implementation is the engine call plus, for a read, turning the view into a board.

use helios::{BranchId, Durability, Engine, Version};

use super::{At, Board, BoardError, MctsError};

/// A store of positions as the search uses it: game streams with a durable history, and
/// branches forked from them (or from each other) that hold speculative moves.
///
/// The contract is the engine's for the same calls; the search checks every answer and stops
/// on the first that disagrees with its own bookkeeping.
pub trait Positions {
    /// What a failed call reports.
    type Error;

    /// Creates `stream` (nothing happens if it exists, as with `Engine::create_stream`).
    ///
    /// # Errors
    /// The store's failures.
    fn create_stream(&mut self, stream: &str) -> Result<(), Self::Error>;

    /// The durable head of `stream`, `Version::ZERO` for a stream without events or unknown.
    fn head(&self, stream: &str) -> Version;

    /// Starts a branch at `from` (a durable version, or a version of a branch).
    ///
    /// # Errors
    /// An unknown stream or branch, a version past a head, the store's failures.
    fn fork(&mut self, from: &At) -> Result<BranchId, Self::Error>;

    /// Appends `events` to `branch`, whose head must be `expected`; returns the first and the
    /// last version appended.
    ///
    /// # Errors
    /// An unknown branch, a head other than `expected`, the store's failures.
    fn append(
        &mut self,
        branch: BranchId,
        events: &[Vec<u8>],
        expected: Version,
    ) -> Result<(Version, Version), Self::Error>;

    /// The position at `at`: the store's state there, read as a board (the inner error when
    /// the state is not one).
    ///
    /// # Errors
    /// An unknown stream or branch, a version past a head, the store's failures.
    fn board(&mut self, at: &At) -> Result<Result<Board, BoardError>, Self::Error>;

    /// Makes `branch`'s path from the stream's head up to `upto` durable, with the critical
    /// class; returns the first and the last version it added to the stream.
    ///
    /// # Errors
    /// An unknown branch, a branch that does not descend from the head, the store's failures.
    fn promote(
        &mut self,
        branch: BranchId,
        upto: Version,
    ) -> Result<(Version, Version), Self::Error>;

    /// Drops `branch`.
    ///
    /// # Errors
    /// An unknown branch.
    fn discard(&mut self, branch: BranchId) -> Result<(), Self::Error>;

    /// Drops every branch of `stream` that no longer descends from its head; returns how many.
    ///
    /// # Errors
    /// An unknown stream.
    fn prune(&mut self, stream: &str) -> Result<usize, Self::Error>;

    /// Branches of `stream` the store still holds.
    fn branches_count(&self, stream: &str) -> usize;

    /// The search's error for a failed call: `operation` names the engine call it is (or
    /// stands for), `at` its node, branch or stream.
    fn error(operation: &'static str, at: String, error: Self::Error) -> MctsError;
}

/// The workload itself: every position in a Helios engine.
impl Positions for &Engine {
    type Error = helios::Error;

    #[inline]
    fn create_stream(&mut self, stream: &str) -> Result<(), helios::Error> {
        Engine::create_stream(self, stream).map(drop)
    }

    #[inline]
    fn head(&self, stream: &str) -> Version {
        Engine::head(self, stream).unwrap_or(Version::ZERO)
    }

    #[inline]
    fn fork(&mut self, from: &At) -> Result<BranchId, helios::Error> {
        match from {
            At::Durable { stream, version } => self.branches().fork(stream, *version),
            At::Branch { branch, version } => self.branches().fork_branch(*branch, *version),
        }
    }

    #[inline]
    fn append(
        &mut self,
        branch: BranchId,
        events: &[Vec<u8>],
        expected: Version,
    ) -> Result<(Version, Version), helios::Error> {
        self.branches()
            .append(branch, events, Some(expected))
            .map(|appended| (appended.first, appended.last))
    }

    #[inline]
    fn board(&mut self, at: &At) -> Result<Result<Board, BoardError>, helios::Error> {
        let view = match at {
            At::Durable { stream, version } => self.view(stream, *version),
            At::Branch { branch, version } => self.branches().view(*branch, *version),
        };
        // The view is dropped inside the call: releasing it is part of what a read costs.
        view.map(|view| Board::from_view(&view))
    }

    #[inline]
    fn promote(
        &mut self,
        branch: BranchId,
        upto: Version,
    ) -> Result<(Version, Version), helios::Error> {
        self.branches()
            .promote(branch, upto, Durability::Critical)
            .map(|appended| (appended.first, appended.last))
    }

    #[inline]
    fn discard(&mut self, branch: BranchId) -> Result<(), helios::Error> {
        self.branches().discard(branch)
    }

    #[inline]
    fn prune(&mut self, stream: &str) -> Result<usize, helios::Error> {
        self.branches().prune(stream)
    }

    fn branches_count(&self, stream: &str) -> usize {
        self.branches().of_stream(stream).len()
    }

    fn error(operation: &'static str, at: String, error: helios::Error) -> MctsError {
        MctsError::Engine {
            operation,
            at,
            source: Box::new(error),
        }
    }
}
