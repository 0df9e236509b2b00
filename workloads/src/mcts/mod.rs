//! The MCTS mixed workload: a Monte Carlo tree search over Connect Four whose game state lives
//! in a Helios engine, for `benches/mixed_workload.rs`, `helios demo` and `helios tune`.
//!
//! This module generates the workload and replays it; it does not time peers or print
//! anything. It is responsible for making the engine do what a search does, in a deterministic
//! order, and for checking every state it reads back; it is not a strong Connect Four player.
//!
//! The files follow the workload's seams: `game.rs` (boards and moves), `ops.rs` (what the
//! search asks of a store, as recordable [`Op`]s), `tree.rs` (branch bookkeeping), `stats.rs`
//! (what a run did), `positions.rs` (the store the search runs on: the engine, or
//! [`InMemory`] in `memory.rs`), `search.rs` (the search itself), `error.rs` and `backend.rs`
//! (replaying recorded ops). Everything public is re-exported here.
//!
//! # The game in the engine
//!
//! One stream per game (`{stream_prefix}-g{n}`), on the built-in key-value machine: a move is
//! one event `set cell/R/C P` (`R` = 0 is the bottom row, `C` the column, `P` = `X` or `O`).
//! The side to move follows from the number of pieces (X moves first), so there is no `turn`
//! key and a move is exactly one event. A tree node is a `(BranchId, Version)` pair ([`At`]);
//! the root of a new game is the durable stream at version 0.
//!
//! # One simulation
//!
//! - **Selection** walks the in-memory tree with UCB1; tree statistics never touch the engine.
//! - **Expansion** reads the selected node's board back from the engine (`view_branch`, or
//!   `view` at a durable root), checks that it is the position the tree expects, and plays one
//!   untried move as one speculative append (kind `expansion`): on the node's own branch when
//!   the node is that branch's head, otherwise on a new branch forked at the node.
//! - **Rollout** forks a branch at the new node and appends one random move per speculative
//!   append (kind `rollout`) until the game ends or `rollout_depth` moves were played, reads
//!   the final board back with `view_branch`, checks it against the moves played, and
//!   discards the branch.
//! - **Backpropagation** updates visits and rewards in memory.
//!
//! Every `promote_every` simulations the most visited child of the root is promoted with
//! `Durability::Critical` (kind `move`: one event, one critical commit), the root advances to
//! it, and `prune` discards the branches that do not descend from it; the generator computes
//! that set itself ([`BranchTree::not_descending`]) and counts any difference from the engine's
//! answer. When the game ends every branch left is discarded and the next game starts on a new
//! stream.
//!
//! # Recording and replaying
//!
//! Every engine call is reported to an observer as an [`Op`] with its latency, so a driver can
//! record the sequence and [`replay`] it against another [`Backend`]: [`HeliosBackend`] here,
//! SQLite and a naive durable design in `helios-peers`. [`BranchTree`] is the branch
//! bookkeeping a backend without branches needs (parents, fork points, what a discard frees).
//!
//! # The limit
//!
//! [`run_in_memory`] runs the same search with its positions as plain boards in hash maps
//! ([`InMemory`]) instead of an engine: the same choices, the same ops, nothing durable and
//! nothing serialised. Its simulations per second bound what the search can do on any store;
//! `mixed_workload` reports Helios's rate as a fraction of it.
//!
//! # Invariants
//!
//! - Determinism: every choice comes from [`crate::Rng`] seeded by [`MctsConfig::seed`] and from the
//!   tree statistics; nothing depends on time, addresses or hash order. On a fresh engine the
//!   same configuration gives the same sequence of ops.
//! - Every board the engine returns is compared with the board the tree expects; a difference
//!   is [`MctsError::Mismatch`], never ignored.
//! - The generator's [`BranchTree`] holds exactly the branches it created and has not
//!   discarded (or seen pruned).

mod backend;
mod error;
mod game;
mod memory;
mod ops;
mod positions;
mod search;
mod stats;
mod tree;

#[cfg(test)]
mod tests;

pub use backend::{Backend, BackendError, HeliosBackend, ReplayReport, replay};
pub use error::MctsError;
pub use game::{Board, BoardError, CELL_PREFIX, CELLS, COLUMNS, Move, Outcome, Piece, ROWS};
pub use memory::InMemory;
pub use ops::{At, CommitKind, Op, OpKind};
pub use positions::Positions;
pub use search::{Mcts, Search, run_in_memory, run_mcts};
pub use stats::{MctsReport, OpLatencies};
pub use tree::{BranchTree, History, Link, UnknownBranch};

/// Default [`MctsConfig::simulations`].
pub const DEFAULT_SIMULATIONS: u64 = 10_000;
/// Default [`MctsConfig::promote_every`]: simulations per move played. With full-length
/// rollouts this gives about one critical commit per hundred.
pub const DEFAULT_PROMOTE_EVERY: u32 = 8;
/// Default [`MctsConfig::rollout_depth`]: enough to finish any game.
pub const DEFAULT_ROLLOUT_DEPTH: u32 = 42;
/// Default [`MctsConfig::exploration`]: the UCB1 constant, sqrt(2).
pub const DEFAULT_EXPLORATION: f64 = std::f64::consts::SQRT_2;
/// Default [`MctsConfig::stream_prefix`].
pub const DEFAULT_STREAM_PREFIX: &str = "mcts";

/// What the search does. Fields are public; [`MctsConfig::default`] documents the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct MctsConfig {
    /// Seed of every random choice. Default: [`crate::DEFAULT_SEED`].
    pub seed: u64,
    /// Simulations to run in all. Default: [`DEFAULT_SIMULATIONS`].
    pub simulations: u64,
    /// Simulations per move: after this many, the best move is promoted. Must be at least 1.
    /// Default: [`DEFAULT_PROMOTE_EVERY`].
    pub promote_every: u32,
    /// Most moves per rollout; a rollout cut short scores as a draw. 0 means no rollouts.
    /// Default: [`DEFAULT_ROLLOUT_DEPTH`].
    pub rollout_depth: u32,
    /// The UCB1 exploration constant. Default: [`DEFAULT_EXPLORATION`].
    pub exploration: f64,
    /// Games are streams named `{stream_prefix}-g{n}`, `n` from 1; they must not exist yet or
    /// be empty. Default: [`DEFAULT_STREAM_PREFIX`].
    pub stream_prefix: String,
}

impl Default for MctsConfig {
    fn default() -> Self {
        MctsConfig {
            seed: crate::DEFAULT_SEED,
            simulations: DEFAULT_SIMULATIONS,
            promote_every: DEFAULT_PROMOTE_EVERY,
            rollout_depth: DEFAULT_ROLLOUT_DEPTH,
            exploration: DEFAULT_EXPLORATION,
            stream_prefix: DEFAULT_STREAM_PREFIX.to_owned(),
        }
    }
}
