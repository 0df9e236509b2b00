//! The MCTS mixed workload: a Monte Carlo tree search over Connect Four whose game state lives
//! in a Helios engine, for `benches/mixed_workload.rs` (and any other driver, such as the CLI).
//!
//! This module generates the workload and replays it; it does not time peers or print
//! anything. It is responsible for making the engine do what a search does, in a deterministic
//! order, and for checking every state it reads back; it is not a strong Connect Four player.
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
//! SQLite and a naive durable design in the bench. [`BranchTree`] is the branch bookkeeping a
//! backend without branches needs (parents, fork points, what a discard frees).
//!
//! # Invariants
//!
//! - Determinism: every choice comes from [`Rng`] seeded by [`MctsConfig::seed`] and from the
//!   tree statistics; nothing depends on time, addresses or hash order. On a fresh engine the
//!   same configuration gives the same sequence of ops.
//! - Every board the engine returns is compared with the board the tree expects; a difference
//!   is [`MctsError::Mismatch`], never ignored.
//! - The generator's [`BranchTree`] holds exactly the branches it created and has not
//!   discarded (or seen pruned).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use helios::kv::{self, KvEvent};
use helios::{BranchId, Classifier, DefaultClassifier, Durability, Engine, Version};

use crate::{Latencies, Rng};

/// Rows of the board.
pub const ROWS: usize = 6;
/// Columns of the board.
pub const COLUMNS: usize = 7;
/// Cells of the board.
pub const CELLS: usize = ROWS * COLUMNS;
/// Pieces in a row that win.
const CONNECT: usize = 4;
/// A bit per column: every column of an empty board is playable.
const ALL_COLUMNS: u8 = 0b111_1111;
const _: () = assert!(ALL_COLUMNS.count_ones() as usize == COLUMNS);
const _: () = assert!(
    ROWS < 10 && COLUMNS < 10,
    "cell keys use one digit per coordinate"
);

/// Prefix of every key the game writes.
pub const CELL_PREFIX: &[u8] = b"cell/";

/// Default [`MctsConfig::seed`].
pub const DEFAULT_SEED: u64 = crate::SEED;
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
    /// Seed of every random choice. Default: [`DEFAULT_SEED`].
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
            seed: DEFAULT_SEED,
            simulations: DEFAULT_SIMULATIONS,
            promote_every: DEFAULT_PROMOTE_EVERY,
            rollout_depth: DEFAULT_ROLLOUT_DEPTH,
            exploration: DEFAULT_EXPLORATION,
            stream_prefix: DEFAULT_STREAM_PREFIX.to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The game.

/// A player's piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Piece {
    /// The first player.
    X,
    /// The second player.
    O,
}

impl Piece {
    /// The byte stored as the cell's value.
    #[must_use]
    pub fn byte(self) -> u8 {
        match self {
            Piece::X => b'X',
            Piece::O => b'O',
        }
    }

    /// The opponent.
    #[must_use]
    pub fn other(self) -> Piece {
        match self {
            Piece::X => Piece::O,
            Piece::O => Piece::X,
        }
    }

    fn from_value(value: &[u8]) -> Option<Piece> {
        match value {
            b"X" => Some(Piece::X),
            b"O" => Some(Piece::O),
            _ => None,
        }
    }
}

/// How a finished game ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Four in a row.
    Win(Piece),
    /// A full board without four in a row.
    Draw,
}

/// One move: the piece dropped and the cell it landed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Move {
    /// Row it landed in (0 is the bottom).
    pub row: usize,
    /// Column it was dropped into.
    pub column: usize,
    /// Who played it.
    pub piece: Piece,
}

impl Move {
    /// The key-value event that records the move: `set cell/R/C P`.
    #[must_use]
    pub fn event(&self) -> Vec<u8> {
        let key = format!("cell/{}/{}", self.row, self.column);
        kv::encode(&KvEvent::Set {
            key: key.as_bytes(),
            value: &[self.piece.byte()],
        })
    }
}

/// Why the engine's state or an event is not a Connect Four position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardError {
    /// What is wrong, one sentence.
    pub reason: String,
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a Connect Four position: {}", self.reason)
    }
}

impl std::error::Error for BoardError {}

/// A Connect Four position: 6 rows of 7 cells, row 0 at the bottom.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Board {
    /// Cell `row * COLUMNS + column`.
    cells: [Option<Piece>; CELLS],
}

impl Default for Board {
    fn default() -> Self {
        Board::new()
    }
}

impl Board {
    /// The empty board.
    #[must_use]
    pub fn new() -> Board {
        Board {
            cells: [None; CELLS],
        }
    }

    /// The piece at `row`, `column` (`None`: empty, or off the board).
    #[must_use]
    pub fn get(&self, row: usize, column: usize) -> Option<Piece> {
        if row < ROWS && column < COLUMNS {
            self.cells[row * COLUMNS + column]
        } else {
            None
        }
    }

    /// Pieces on the board.
    #[must_use]
    pub fn pieces(&self) -> usize {
        self.cells.iter().filter(|c| c.is_some()).count()
    }

    /// Whose turn it is: X after an even number of pieces.
    #[must_use]
    pub fn to_move(&self) -> Piece {
        if self.pieces().is_multiple_of(2) {
            Piece::X
        } else {
            Piece::O
        }
    }

    /// The lowest empty row of `column`, `None` if it is full.
    #[must_use]
    pub fn free_row(&self, column: usize) -> Option<usize> {
        if column >= COLUMNS {
            return None;
        }
        (0..ROWS).find(|&row| self.get(row, column).is_none())
    }

    /// The legal moves as a bit per column: 0 when the game is over.
    #[must_use]
    pub fn moves(&self) -> u8 {
        if self.outcome().is_some() {
            return 0;
        }
        (0..COLUMNS)
            .filter(|&c| self.free_row(c).is_some())
            .fold(0, |mask, c| mask | (1 << c))
    }

    /// Drops the side to move's piece into `column`. `None` if the column is full or the game
    /// is over.
    pub fn play(&mut self, column: usize) -> Option<Move> {
        if self.moves() & (1 << column) == 0 {
            return None;
        }
        let row = self.free_row(column)?;
        let piece = self.to_move();
        self.cells[row * COLUMNS + column] = Some(piece);
        Some(Move { row, column, piece })
    }

    /// `Some` once the game is over.
    #[must_use]
    pub fn outcome(&self) -> Option<Outcome> {
        const DIRECTIONS: [(isize, isize); 4] = [(0, 1), (1, 0), (1, 1), (1, -1)];
        for row in 0..ROWS {
            for column in 0..COLUMNS {
                let Some(piece) = self.get(row, column) else {
                    continue;
                };
                for (dr, dc) in DIRECTIONS {
                    let four = (1..CONNECT).all(|k| {
                        let (Some(r), Some(c)) = (
                            row.checked_add_signed(dr * k.cast_signed()),
                            column.checked_add_signed(dc * k.cast_signed()),
                        ) else {
                            return false;
                        };
                        self.get(r, c) == Some(piece)
                    });
                    if four {
                        return Some(Outcome::Win(piece));
                    }
                }
            }
        }
        (self.pieces() == CELLS).then_some(Outcome::Draw)
    }

    /// Sets a cell from a key-value entry `cell/R/C` -> `X` or `O`.
    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), BoardError> {
        let error = |what: &str| BoardError {
            reason: format!("{what}: `{}`", String::from_utf8_lossy(key)),
        };
        let coordinates = key
            .strip_prefix(CELL_PREFIX)
            .ok_or_else(|| error("a key outside `cell/`"))?;
        let (row, column) = match coordinates {
            [r, b'/', c] if r.is_ascii_digit() && c.is_ascii_digit() => {
                (usize::from(r - b'0'), usize::from(c - b'0'))
            }
            _ => return Err(error("a cell key that is not `cell/R/C`")),
        };
        if row >= ROWS || column >= COLUMNS {
            return Err(error("a cell off the board"));
        }
        self.cells[row * COLUMNS + column] = match value {
            None => None,
            Some(value) => Some(Piece::from_value(value).ok_or_else(|| BoardError {
                reason: format!(
                    "cell `{}` holds `{}`, not X or O",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(value)
                ),
            })?),
        };
        Ok(())
    }

    /// The board held by key-value entries (every entry must be a cell).
    ///
    /// # Errors
    /// An entry that is not `cell/R/C` -> `X`/`O` on the board.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Board, BoardError> {
        let mut board = Board::new();
        for (key, value) in entries {
            board.put(key, Some(value))?;
        }
        Ok(board)
    }

    /// The board of an engine view: its `cell/` entries.
    ///
    /// # Errors
    /// An entry under `cell/` that is not a cell of the board.
    pub fn from_view(view: &helios::View) -> Result<Board, BoardError> {
        Board::from_entries(view.prefix(CELL_PREFIX))
    }

    /// Applies one key-value event (`set cell/R/C P` or `del cell/R/C`), as the engine's
    /// machine would: the fold a backend without state reads does.
    ///
    /// # Errors
    /// An event that is not key-value, or not about a cell.
    pub fn apply_event(&mut self, event: &[u8]) -> Result<(), BoardError> {
        match kv::parse(event) {
            Ok(KvEvent::Set { key, value }) => self.put(key, Some(value)),
            Ok(KvEvent::Del { key }) => self.put(key, None),
            Err(error) => Err(BoardError {
                reason: error.to_string(),
            }),
        }
    }
}

impl fmt::Display for Board {
    /// Six lines, top row first: `.` empty, `X`, `O`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in (0..ROWS).rev() {
            for column in 0..COLUMNS {
                let c = self.get(row, column).map_or('.', |p| char::from(p.byte()));
                write!(f, "{c}")?;
            }
            if row > 0 {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Board {
    /// One line, top row first, rows separated by `|`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Board({})", self.to_string().replace('\n', "|"))
    }
}

/// The index of the `k`-th set bit of `mask` (`k` below its population count).
fn nth_bit(mask: u8, k: usize) -> Option<usize> {
    (0..8).filter(|&bit| mask & (1 << bit) != 0).nth(k)
}

// ---------------------------------------------------------------------------------------------
// Operations.

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

    fn index(self) -> usize {
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

// ---------------------------------------------------------------------------------------------
// Statistics.

/// Mean and standard deviation of latencies, exact (Welford's algorithm), for the jitter
/// (`stddev / mean`) that an HDR histogram only approximates.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Jitter {
    count: u64,
    mean_ns: f64,
    m2: f64,
}

impl Jitter {
    /// Adds one latency.
    pub fn record(&mut self, latency: Duration) {
        let x = latency.as_nanos() as f64;
        self.count += 1;
        let delta = x - self.mean_ns;
        self.mean_ns += delta / self.count as f64;
        self.m2 += delta * (x - self.mean_ns);
    }

    /// Mean, in microseconds.
    #[must_use]
    pub fn mean_us(&self) -> f64 {
        self.mean_ns / 1000.0
    }

    /// Population standard deviation, in microseconds.
    #[must_use]
    pub fn stddev_us(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        (self.m2 / self.count as f64).sqrt() / 1000.0
    }

    /// Latencies recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the latencies recorded.
    #[must_use]
    pub fn total(&self) -> Duration {
        Duration::from_secs_f64(self.mean_ns * self.count as f64 / 1e9)
    }

    /// `stddev / mean` (0 when nothing was recorded).
    #[must_use]
    pub fn ratio(&self) -> f64 {
        if self.mean_ns > 0.0 {
            self.stddev_us() * 1000.0 / self.mean_ns
        } else {
            0.0
        }
    }
}

/// Latencies per [`OpKind`]: an HDR histogram and the exact mean and deviation of each.
#[derive(Clone, Debug)]
pub struct OpLatencies {
    histograms: [Latencies; OpKind::ALL.len()],
    jitter: [Jitter; OpKind::ALL.len()],
}

impl Default for OpLatencies {
    fn default() -> Self {
        OpLatencies::new()
    }
}

impl OpLatencies {
    /// Nothing recorded.
    #[must_use]
    pub fn new() -> OpLatencies {
        OpLatencies {
            histograms: std::array::from_fn(|_| Latencies::new()),
            jitter: [Jitter::default(); OpKind::ALL.len()],
        }
    }

    /// Records one op's latency.
    pub fn record(&mut self, kind: OpKind, latency: Duration) {
        self.histograms[kind.index()].record(latency);
        self.jitter[kind.index()].record(latency);
    }

    /// The histogram of `kind`.
    #[must_use]
    pub fn get(&self, kind: OpKind) -> &Latencies {
        &self.histograms[kind.index()]
    }

    /// Mean and deviation of `kind`.
    #[must_use]
    pub fn jitter(&self, kind: OpKind) -> &Jitter {
        &self.jitter[kind.index()]
    }
}

/// What a run of the search did.
#[derive(Clone, Debug, Default)]
pub struct MctsReport {
    /// Simulations run.
    pub simulations: u64,
    /// Games started (streams created).
    pub games_started: u64,
    /// Games played to the end.
    pub games_finished: u64,
    /// Finished games won by X.
    pub x_wins: u64,
    /// Finished games won by O.
    pub o_wins: u64,
    /// Finished games drawn.
    pub draws: u64,
    /// Speculative commits (`append_branch` calls): expansions and rollout moves.
    pub commits_speculative: u64,
    /// Events in them.
    pub events_speculative: u64,
    /// Of those commits, expansions.
    pub expansions: u64,
    /// Critical commits (`promote` calls): moves played.
    pub commits_critical: u64,
    /// Events in them.
    pub events_critical: u64,
    /// Rollouts cut short by [`MctsConfig::rollout_depth`].
    pub rollouts_truncated: u64,
    /// `fork` and `fork_branch` calls.
    pub forks: u64,
    /// `view_branch` and `view` calls.
    pub views: u64,
    /// `discard` calls.
    pub discards: u64,
    /// `prune` calls.
    pub prunes: u64,
    /// Branches pruned, by the engine's count.
    pub branches_pruned: u64,
    /// Prunes whose count differed from the generator's (each one an engine or generator bug).
    pub prune_mismatches: u64,
    /// Branches the engine still had for a finished game's stream after every branch the
    /// generator knew of was discarded (branches a prune should have taken).
    pub branches_left_after_game: u64,
    /// Latency of every op, by kind, as measured around the engine call (a view includes
    /// reading the board out of it).
    pub latencies: OpLatencies,
    /// Wall time of the whole run, search work included.
    pub elapsed: Duration,
}

impl MctsReport {
    /// All commits.
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.commits_speculative + self.commits_critical
    }

    /// Critical commits as a share of all commits.
    #[must_use]
    pub fn critical_share(&self) -> f64 {
        if self.commits() == 0 {
            return 0.0;
        }
        self.commits_critical as f64 / self.commits() as f64
    }
}

// ---------------------------------------------------------------------------------------------
// Branch bookkeeping.

/// A branch id the [`BranchTree`] does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownBranch(pub BranchId);

impl fmt::Display for UnknownBranch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not in the branch tree", self.0)
    }
}

impl std::error::Error for UnknownBranch {}

/// One segment of a node's history: `branch`'s events at versions `after + 1 ..= upto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// The branch holding the events.
    pub branch: BranchId,
    /// The version before the first event: the branch's fork point.
    pub after: Version,
    /// The last version.
    pub upto: Version,
}

/// A node's whole history: the durable events `1 ..= durable_upto` of `stream`, then the
/// links, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History {
    /// The stream.
    pub stream: String,
    /// The last durable version below the branches.
    pub durable_upto: Version,
    /// Branch segments, oldest first.
    pub links: Vec<Link>,
}

#[derive(Clone, Debug)]
struct TreeEntry {
    stream: String,
    parent: Option<BranchId>,
    fork: Version,
    head: Version,
    live: bool,
    /// Children not freed yet: they may still read this branch's events.
    holders: u32,
}

/// Branches as a backend without branches must track them: parent, fork point and head of
/// each, which are live, and when a discarded branch's events can really go (once no branch
/// forked from it is left, as Helios frees them).
#[derive(Clone, Debug, Default)]
pub struct BranchTree {
    entries: BTreeMap<BranchId, TreeEntry>,
}

impl BranchTree {
    /// No branches.
    #[must_use]
    pub fn new() -> BranchTree {
        BranchTree::default()
    }

    /// Records `branch`, forked at `from`.
    ///
    /// # Errors
    /// A parent branch the tree does not hold.
    pub fn fork(&mut self, branch: BranchId, from: &At) -> Result<(), UnknownBranch> {
        let (stream, parent) = match from {
            At::Durable { stream, .. } => (stream.clone(), None),
            At::Branch { branch: parent, .. } => {
                let entry = self.entries.get_mut(parent).ok_or(UnknownBranch(*parent))?;
                entry.holders += 1;
                (entry.stream.clone(), Some(*parent))
            }
        };
        self.entries.insert(
            branch,
            TreeEntry {
                stream,
                parent,
                fork: from.version(),
                head: from.version(),
                live: true,
                holders: 0,
            },
        );
        Ok(())
    }

    /// Records `branch`'s new head.
    ///
    /// # Errors
    /// A branch the tree does not hold.
    pub fn appended(&mut self, branch: BranchId, head: Version) -> Result<(), UnknownBranch> {
        self.entries
            .get_mut(&branch)
            .ok_or(UnknownBranch(branch))?
            .head = head;
        Ok(())
    }

    /// The head of a live branch.
    #[must_use]
    pub fn head(&self, branch: BranchId) -> Option<Version> {
        self.entries.get(&branch).filter(|e| e.live).map(|e| e.head)
    }

    /// The stream of a branch the tree holds.
    #[must_use]
    pub fn stream(&self, branch: BranchId) -> Option<&str> {
        self.entries.get(&branch).map(|e| e.stream.as_str())
    }

    /// The live branches, by id.
    pub fn live(&self) -> impl DoubleEndedIterator<Item = BranchId> + '_ {
        self.entries
            .iter()
            .filter(|(_, e)| e.live)
            .map(|(id, _)| *id)
    }

    /// Marks `branch` discarded and returns the branches whose events can go now: `branch`
    /// itself unless a branch forked from it is left, then its ancestors that were waiting
    /// for it, child before parent.
    ///
    /// # Errors
    /// A branch the tree does not hold as live.
    pub fn discard(&mut self, branch: BranchId) -> Result<Vec<BranchId>, UnknownBranch> {
        let entry = self
            .entries
            .get_mut(&branch)
            .filter(|e| e.live)
            .ok_or(UnknownBranch(branch))?;
        entry.live = false;
        let mut freed = Vec::new();
        let mut current = Some(branch);
        while let Some(id) = current {
            let Some(entry) = self.entries.get(&id) else {
                break;
            };
            if entry.live || entry.holders > 0 {
                break;
            }
            let parent = entry.parent;
            self.entries.remove(&id);
            freed.push(id);
            current = parent.and_then(|p| {
                let parent = self.entries.get_mut(&p)?;
                parent.holders -= 1;
                Some(p)
            });
        }
        Ok(freed)
    }

    /// Where the state of `branch` at `version` comes from.
    ///
    /// # Errors
    /// A branch the tree does not hold (or a broken parent chain).
    pub fn history(&self, branch: BranchId, version: Version) -> Result<History, UnknownBranch> {
        let mut links = Vec::new();
        let mut upto = version;
        let mut current = branch;
        loop {
            let entry = self.entries.get(&current).ok_or(UnknownBranch(current))?;
            if upto > entry.fork {
                links.push(Link {
                    branch: current,
                    after: entry.fork,
                    upto,
                });
                upto = entry.fork;
            }
            match entry.parent {
                Some(parent) => current = parent,
                None => {
                    links.reverse();
                    return Ok(History {
                        stream: entry.stream.clone(),
                        durable_upto: upto,
                        links,
                    });
                }
            }
        }
    }

    /// Whether the node `(owner, version)` is in `branch`'s history (the node itself or an
    /// ancestor of its head).
    #[must_use]
    pub fn descends(&self, branch: BranchId, owner: BranchId, version: Version) -> bool {
        let mut current = branch;
        let Some(mut upto) = self.entries.get(&branch).map(|e| e.head) else {
            return false;
        };
        loop {
            let Some(entry) = self.entries.get(&current) else {
                return false;
            };
            if version > upto {
                // The history stops before the node's version.
                return false;
            }
            if version > entry.fork {
                // This branch holds the history's node at that version.
                return current == owner;
            }
            upto = entry.fork;
            match entry.parent {
                Some(parent) => current = parent,
                // Below every fork: a durable version, which no branch owns.
                None => return false,
            }
        }
    }

    /// The live branches of `stream` that do not descend from the node `(owner, version)`:
    /// what `Engine::prune` should discard once that node is the stream's head.
    #[must_use]
    pub fn not_descending(&self, stream: &str, owner: BranchId, version: Version) -> Vec<BranchId> {
        self.entries
            .iter()
            .filter(|(id, e)| e.live && e.stream == stream && !self.descends(**id, owner, version))
            .map(|(id, _)| *id)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The search.

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
    /// [`MctsConfig::promote_every`] is 0.
    InvalidConfig(&'static str),
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

/// A node of the search tree.
#[derive(Clone, Debug)]
struct Node {
    at: At,
    parent: Option<usize>,
    /// The move that led here (`None` at a game's first root).
    mv: Option<Move>,
    children: Vec<usize>,
    /// Columns already expanded.
    tried: u8,
    /// Legal columns (0 when terminal).
    legal: u8,
    outcome: Option<Outcome>,
    visits: u32,
    /// Sum of rewards for the player who made `mv`.
    reward: f64,
}

impl Node {
    fn new(at: At, parent: Option<usize>, mv: Option<Move>, board: &Board) -> Node {
        Node {
            at,
            parent,
            mv,
            children: Vec::new(),
            tried: 0,
            legal: board.moves(),
            outcome: board.outcome(),
            visits: 0,
            reward: 0.0,
        }
    }
}

/// The reward of `result` for the player who made `mv`: 1 win, 0 loss, 0.5 draw or unknown.
fn reward(mv: Option<Move>, result: Option<Outcome>) -> f64 {
    match (mv, result) {
        (Some(mv), Some(Outcome::Win(winner))) if winner == mv.piece => 1.0,
        (Some(_), Some(Outcome::Win(_))) => 0.0,
        _ => 0.5,
    }
}

/// An MCTS over Connect Four whose positions live in `engine`: see the module documentation.
/// [`Mcts::step`] runs one simulation; [`run_mcts`] runs a whole configuration.
pub struct Mcts<'e> {
    engine: &'e Engine,
    config: MctsConfig,
    rng: Rng,
    tree: BranchTree,
    nodes: Vec<Node>,
    root: usize,
    /// The current game's stream; `None` before the first game and after one ends.
    stream: Option<String>,
    simulations_this_move: u32,
    report: MctsReport,
}

impl fmt::Debug for Mcts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mcts")
            .field("config", &self.config)
            .field("stream", &self.stream)
            .field("nodes", &self.nodes.len())
            .field("simulations", &self.report.simulations)
            .finish_non_exhaustive()
    }
}

impl<'e> Mcts<'e> {
    /// A search on `engine`; nothing happens until [`Mcts::step`].
    ///
    /// # Errors
    /// [`MctsError::InvalidConfig`] when `promote_every` is 0.
    pub fn new(engine: &'e Engine, config: MctsConfig) -> Result<Mcts<'e>, MctsError> {
        if config.promote_every == 0 {
            return Err(MctsError::InvalidConfig("promote_every must be at least 1"));
        }
        Ok(Mcts {
            engine,
            rng: Rng::new(config.seed),
            config,
            tree: BranchTree::new(),
            nodes: Vec::new(),
            root: 0,
            stream: None,
            simulations_this_move: 0,
            report: MctsReport::default(),
        })
    }

    /// What the search did so far.
    #[must_use]
    pub fn report(&self) -> &MctsReport {
        &self.report
    }

    /// The report, consuming the search.
    #[must_use]
    pub fn into_report(self) -> MctsReport {
        self.report
    }

    /// Runs one simulation (starting a game first if none is on), then, if it was the
    /// `promote_every`-th of this move, plays the best move for real. Every engine call is
    /// passed to `observer` with its latency.
    ///
    /// # Errors
    /// A failed engine call, or a state that disagrees with the search.
    pub fn step(&mut self, observer: &mut impl FnMut(&Op, Duration)) -> Result<(), MctsError> {
        if self.stream.is_none() {
            self.start_game(observer)?;
        }
        self.simulate(observer)?;
        if self.simulations_this_move >= self.config.promote_every {
            self.play_best(observer)?;
        }
        Ok(())
    }

    /// Runs [`MctsConfig::simulations`] simulations (counting those already run).
    ///
    /// # Errors
    /// As [`Mcts::step`].
    pub fn run(&mut self, observer: &mut impl FnMut(&Op, Duration)) -> Result<(), MctsError> {
        let start = Instant::now();
        while self.report.simulations < self.config.simulations {
            self.step(observer)?;
        }
        self.report.elapsed += start.elapsed();
        Ok(())
    }

    fn record(&mut self, op: &Op, latency: Duration, observer: &mut impl FnMut(&Op, Duration)) {
        let report = &mut self.report;
        report.latencies.record(op.kind(), latency);
        let events = op.events_count() as u64;
        match op {
            Op::Append { kind, .. } => {
                report.commits_speculative += 1;
                report.events_speculative += events;
                if *kind == CommitKind::Expansion {
                    report.expansions += 1;
                }
            }
            Op::Promote { .. } => {
                report.commits_critical += 1;
                report.events_critical += events;
            }
            Op::Fork { .. } => report.forks += 1,
            Op::View { .. } => report.views += 1,
            Op::Discard { .. } => report.discards += 1,
            Op::Prune { .. } => report.prunes += 1,
            Op::CreateStream { .. } => report.games_started += 1,
        }
        observer(op, latency);
    }

    fn start_game(&mut self, observer: &mut impl FnMut(&Op, Duration)) -> Result<(), MctsError> {
        let stream = format!(
            "{}-g{}",
            self.config.stream_prefix,
            self.report.games_started + 1
        );
        let start = Instant::now();
        let created = self.engine.create_stream(&stream);
        let latency = start.elapsed();
        created.map_err(|source| MctsError::Engine {
            operation: "Engine::create_stream",
            at: format!("stream `{stream}`"),
            source: Box::new(source),
        })?;
        let head = self.engine.head(&stream).unwrap_or(Version::ZERO);
        if head != Version::ZERO {
            return Err(MctsError::StreamNotEmpty { stream, head });
        }
        self.record(
            &Op::CreateStream {
                stream: stream.clone(),
            },
            latency,
            observer,
        );
        let root = At::Durable {
            stream: stream.clone(),
            version: Version::ZERO,
        };
        self.nodes = vec![Node::new(root, None, None, &Board::new())];
        self.root = 0;
        self.simulations_this_move = 0;
        self.stream = Some(stream);
        Ok(())
    }

    fn simulate(&mut self, observer: &mut impl FnMut(&Op, Duration)) -> Result<(), MctsError> {
        let mut path = vec![self.root];
        let mut node = self.root;
        // Selection: down through fully expanded nodes.
        loop {
            let n = &self.nodes[node];
            if n.outcome.is_some() || n.tried != n.legal || n.children.is_empty() {
                break;
            }
            node = self.best_child(node);
            path.push(node);
        }
        let result = match self.nodes[node].outcome {
            Some(outcome) => Some(outcome),
            None => {
                let (child, board) = self.expand(node, observer)?;
                path.push(child);
                match board.outcome() {
                    Some(outcome) => Some(outcome),
                    None => self.rollout(child, board, observer)?,
                }
            }
        };
        // Backpropagation.
        for &index in &path {
            let n = &mut self.nodes[index];
            n.visits += 1;
            n.reward += reward(n.mv, result);
        }
        self.report.simulations += 1;
        self.simulations_this_move += 1;
        Ok(())
    }

    /// The UCB1 choice among `node`'s children (the first of equals).
    fn best_child(&self, node: usize) -> usize {
        let n = &self.nodes[node];
        let log_visits = f64::from(n.visits.max(1)).ln();
        let mut best = n.children[0];
        let mut best_score = f64::NEG_INFINITY;
        for &child in &n.children {
            let c = &self.nodes[child];
            let visits = f64::from(c.visits.max(1));
            let score = c.reward / visits + self.config.exploration * (log_visits / visits).sqrt();
            if score > best_score {
                best = child;
                best_score = score;
            }
        }
        best
    }

    /// Reads the board at `at` from the engine (one timed op).
    fn view(
        &mut self,
        at: &At,
        observer: &mut impl FnMut(&Op, Duration),
    ) -> Result<Board, MctsError> {
        let start = Instant::now();
        let (operation, view) = match at {
            At::Durable { stream, version } => ("Engine::view", self.engine.view(stream, *version)),
            At::Branch { branch, version } => (
                "Engine::view_branch",
                self.engine.view_branch(*branch, *version),
            ),
        };
        let board = view.map(|view| Board::from_view(&view));
        let latency = start.elapsed();
        let board = board
            .map_err(|source| MctsError::Engine {
                operation,
                at: at.to_string(),
                source: Box::new(source),
            })?
            .map_err(|source| MctsError::Board {
                at: at.clone(),
                source,
            })?;
        self.record(
            &Op::View {
                at: at.clone(),
                board,
            },
            latency,
            observer,
        );
        Ok(board)
    }

    /// Forks a branch at `from` (one timed op).
    fn fork(
        &mut self,
        from: &At,
        observer: &mut impl FnMut(&Op, Duration),
    ) -> Result<BranchId, MctsError> {
        let start = Instant::now();
        let forked = match from {
            At::Durable { stream, version } => self.engine.fork(stream, *version),
            At::Branch { branch, version } => self.engine.fork_branch(*branch, *version),
        };
        let latency = start.elapsed();
        let branch = forked.map_err(|source| MctsError::Engine {
            operation: "Engine::fork",
            at: from.to_string(),
            source: Box::new(source),
        })?;
        self.tree.fork(branch, from)?;
        self.record(
            &Op::Fork {
                branch,
                from: from.clone(),
            },
            latency,
            observer,
        );
        Ok(branch)
    }

    /// Appends one move to `branch`, whose head is `expected` (one timed op). Returns the
    /// new node.
    fn append(
        &mut self,
        kind: CommitKind,
        branch: BranchId,
        expected: Version,
        mv: Move,
        observer: &mut impl FnMut(&Op, Duration),
    ) -> Result<At, MctsError> {
        let events = vec![mv.event()];
        let start = Instant::now();
        let appended = self.engine.append_branch(branch, &events, Some(expected));
        let latency = start.elapsed();
        let at = At::Branch {
            branch,
            version: expected,
        };
        let appended = appended.map_err(|source| MctsError::Engine {
            operation: "Engine::append_branch",
            at: at.to_string(),
            source: Box::new(source),
        })?;
        let next = Version(expected.0 + 1);
        if appended.first != next || appended.last != next {
            return Err(MctsError::Mismatch {
                at,
                what: format!(
                    "one event appended at head {} got versions {}..={}",
                    expected.0, appended.first.0, appended.last.0
                ),
            });
        }
        self.tree.appended(branch, next)?;
        self.record(
            &Op::Append {
                kind,
                branch,
                expected,
                events,
            },
            latency,
            observer,
        );
        Ok(At::Branch {
            branch,
            version: next,
        })
    }

    /// Plays one untried move at `node`; returns the new child and its board.
    fn expand(
        &mut self,
        node: usize,
        observer: &mut impl FnMut(&Op, Duration),
    ) -> Result<(usize, Board), MctsError> {
        let at = self.nodes[node].at.clone();
        let mut board = self.view(&at, observer)?;
        let (legal, tried) = (self.nodes[node].legal, self.nodes[node].tried);
        if board.moves() != legal || board.outcome().is_some() {
            return Err(MctsError::Mismatch {
                at,
                what: format!(
                    "expected an unfinished position with legal columns {legal:07b}, read {board:?} \
                     (legal {:07b}, outcome {:?})",
                    board.moves(),
                    board.outcome()
                ),
            });
        }
        let untried = legal & !tried;
        let k = self.rng.index(untried.count_ones() as usize);
        let column = nth_bit(untried, k).unwrap_or(0);
        let mv = board.play(column).ok_or_else(|| MctsError::Mismatch {
            at: at.clone(),
            what: format!("column {column} is not playable on {board:?}"),
        })?;
        // Extend the node's own branch when the node is its head; otherwise fork at the node.
        let branch = match &at {
            At::Branch { branch, version } if self.tree.head(*branch) == Some(*version) => *branch,
            _ => self.fork(&at, observer)?,
        };
        let child_at = self.append(CommitKind::Expansion, branch, at.version(), mv, observer)?;
        self.nodes[node].tried |= 1 << column;
        let child = self.nodes.len();
        self.nodes
            .push(Node::new(child_at, Some(node), Some(mv), &board));
        self.nodes[node].children.push(child);
        Ok((child, board))
    }

    /// Random moves from `node` (whose position is `board`) on a branch of their own, then
    /// the final position read back and the branch discarded. Returns the outcome, `None` if
    /// the depth ran out first.
    fn rollout(
        &mut self,
        node: usize,
        mut board: Board,
        observer: &mut impl FnMut(&Op, Duration),
    ) -> Result<Option<Outcome>, MctsError> {
        if self.config.rollout_depth == 0 {
            return Ok(None);
        }
        let at = self.nodes[node].at.clone();
        let branch = self.fork(&at, observer)?;
        let mut version = at.version();
        let mut moves = 0;
        while moves < self.config.rollout_depth && board.outcome().is_none() {
            let legal = board.moves();
            let k = self.rng.index(legal.count_ones() as usize);
            let column = nth_bit(legal, k).unwrap_or(0);
            let Some(mv) = board.play(column) else {
                break;
            };
            version = self
                .append(CommitKind::Rollout, branch, version, mv, observer)?
                .version();
            moves += 1;
        }
        if moves > 0 {
            let end = At::Branch { branch, version };
            let read = self.view(&end, observer)?;
            if read != board {
                return Err(MctsError::Mismatch {
                    at: end,
                    what: format!("the rollout played {board:?}, the engine holds {read:?}"),
                });
            }
        }
        self.discard(branch, observer)?;
        let outcome = board.outcome();
        if outcome.is_none() {
            self.report.rollouts_truncated += 1;
        }
        Ok(outcome)
    }

    fn discard(
        &mut self,
        branch: BranchId,
        observer: &mut impl FnMut(&Op, Duration),
    ) -> Result<(), MctsError> {
        let start = Instant::now();
        let discarded = self.engine.discard(branch);
        let latency = start.elapsed();
        discarded.map_err(|source| MctsError::Engine {
            operation: "Engine::discard",
            at: branch.to_string(),
            source: Box::new(source),
        })?;
        self.tree.discard(branch)?;
        self.record(&Op::Discard { branch }, latency, observer);
        Ok(())
    }

    /// Promotes the most visited child of the root, advances the root to it and prunes.
    fn play_best(&mut self, observer: &mut impl FnMut(&Op, Duration)) -> Result<(), MctsError> {
        self.simulations_this_move = 0;
        let root = &self.nodes[self.root];
        let Some(&best) = root
            .children
            .iter()
            .rev()
            .max_by_key(|&&child| self.nodes[child].visits)
        else {
            // A finished position has no children: the game is over.
            return self.end_game(observer);
        };
        let head = root.at.version();
        let (At::Branch { branch, version }, Some(mv)) =
            (self.nodes[best].at.clone(), self.nodes[best].mv)
        else {
            return Err(MctsError::Mismatch {
                at: self.nodes[best].at.clone(),
                what: "a child of the root is not a branch node".to_owned(),
            });
        };
        let stream = self
            .tree
            .stream(branch)
            .ok_or(UnknownBranch(branch))?
            .to_owned();
        let at = At::Branch { branch, version };
        let start = Instant::now();
        let promoted = self.engine.promote(branch, version, Durability::Critical);
        let latency = start.elapsed();
        let promoted = promoted.map_err(|source| MctsError::Engine {
            operation: "Engine::promote",
            at: at.to_string(),
            source: Box::new(source),
        })?;
        if promoted.first != Version(head.0 + 1) || promoted.last != version {
            return Err(MctsError::Mismatch {
                at,
                what: format!(
                    "promoting from head {} made versions {}..={}",
                    head.0, promoted.first.0, promoted.last.0
                ),
            });
        }
        self.record(
            &Op::Promote {
                stream: stream.clone(),
                branch,
                head,
                upto: version,
                events: vec![mv.event()],
            },
            latency,
            observer,
        );

        // Prune: what should go, by the tree, then what the engine does.
        let discarded = self.tree.not_descending(&stream, branch, version);
        for &gone in &discarded {
            self.tree.discard(gone)?;
        }
        let start = Instant::now();
        let pruned = self.engine.prune(&stream);
        let latency = start.elapsed();
        let pruned = pruned.map_err(|source| MctsError::Engine {
            operation: "Engine::prune",
            at: format!("stream `{stream}`"),
            source: Box::new(source),
        })?;
        self.report.branches_pruned += pruned as u64;
        if pruned != discarded.len() {
            self.report.prune_mismatches += 1;
        }
        self.record(&Op::Prune { stream, discarded }, latency, observer);

        self.reroot(best);
        if self.nodes[self.root].outcome.is_some() {
            self.end_game(observer)?;
        }
        Ok(())
    }

    /// Keeps only the subtree of `new_root`.
    fn reroot(&mut self, new_root: usize) {
        let mut nodes = Vec::new();
        let mut stack = vec![(new_root, None)];
        while let Some((old, parent)) = stack.pop() {
            let index = nodes.len();
            let mut node = self.nodes[old].clone();
            node.parent = parent;
            let children = std::mem::take(&mut node.children);
            nodes.push(node);
            if let Some(parent) = parent {
                let parent: &mut Node = &mut nodes[parent];
                parent.children.push(index);
            }
            // Reversed so that children keep their order (UCB1 ties go to the first).
            stack.extend(children.into_iter().rev().map(|child| (child, Some(index))));
        }
        self.nodes = nodes;
        self.root = 0;
    }

    /// Tallies the result, discards every branch left (newest first) and leaves the next
    /// step to start a new game.
    fn end_game(&mut self, observer: &mut impl FnMut(&Op, Duration)) -> Result<(), MctsError> {
        match self.nodes[self.root].outcome {
            Some(Outcome::Win(Piece::X)) => self.report.x_wins += 1,
            Some(Outcome::Win(Piece::O)) => self.report.o_wins += 1,
            Some(Outcome::Draw) | None => self.report.draws += 1,
        }
        self.report.games_finished += 1;
        let live: Vec<BranchId> = self.tree.live().rev().collect();
        for branch in live {
            self.discard(branch, observer)?;
        }
        if let Some(stream) = self.stream.take() {
            self.report.branches_left_after_game += self.engine.branches(&stream).len() as u64;
        }
        self.nodes.clear();
        Ok(())
    }
}

/// Runs `config` on `engine` from scratch and returns what it did; every engine call goes to
/// `observer` with its latency (record them to [`replay`] the same workload elsewhere).
///
/// # Errors
/// As [`Mcts::step`].
pub fn run_mcts(
    engine: &Engine,
    config: &MctsConfig,
    observer: &mut impl FnMut(&Op, Duration),
) -> Result<MctsReport, MctsError> {
    let mut mcts = Mcts::new(engine, config.clone())?;
    mcts.run(observer)?;
    Ok(mcts.into_report())
}

// ---------------------------------------------------------------------------------------------
// Replay.

/// The error of a [`Backend`].
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// Something that can perform the workload's ops: Helios, or a peer.
pub trait Backend {
    /// A short name for tables.
    fn name(&self) -> &str;

    /// Performs `op`. A [`Op::View`] must read the node's state and compare it with the
    /// recorded board.
    ///
    /// # Errors
    /// The backend's failures, or a view that does not match.
    fn apply(&mut self, op: &Op) -> Result<(), BackendError>;
}

/// What a [`replay`] measured.
#[derive(Clone, Debug)]
pub struct ReplayReport {
    /// The backend's name.
    pub backend: String,
    /// Ops performed.
    pub ops: u64,
    /// Speculative commits.
    pub commits_speculative: u64,
    /// Critical commits.
    pub commits_critical: u64,
    /// Latency of each op, by kind.
    pub latencies: OpLatencies,
    /// Wall time of the whole sequence.
    pub elapsed: Duration,
}

impl ReplayReport {
    /// All commits.
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.commits_speculative + self.commits_critical
    }

    /// Commits per second of wall time over the whole sequence (reads, forks and discards
    /// included: the workload's throughput).
    #[must_use]
    pub fn commits_per_s(&self) -> f64 {
        self.commits() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Commits per second of time spent in commit calls only (appends and promotions).
    #[must_use]
    pub fn commit_calls_per_s(&self) -> f64 {
        let busy = self.latencies.jitter(OpKind::Append).total()
            + self.latencies.jitter(OpKind::Promote).total();
        self.commits() as f64 / busy.as_secs_f64().max(1e-9)
    }
}

/// Performs `ops` in order on `backend`, timing each.
///
/// # Errors
/// The first op that fails, with its index.
pub fn replay(ops: &[Op], backend: &mut dyn Backend) -> Result<ReplayReport, BackendError> {
    let mut report = ReplayReport {
        backend: backend.name().to_owned(),
        ops: 0,
        commits_speculative: 0,
        commits_critical: 0,
        latencies: OpLatencies::new(),
        elapsed: Duration::ZERO,
    };
    let start = Instant::now();
    for (index, op) in ops.iter().enumerate() {
        let op_start = Instant::now();
        backend
            .apply(op)
            .map_err(|error| format!("{}: op {index} ({op:?}): {error}", report.backend))?;
        report.latencies.record(op.kind(), op_start.elapsed());
        report.ops += 1;
        match op.class() {
            Some(Durability::Speculative) => report.commits_speculative += 1,
            Some(_) => report.commits_critical += 1,
            None => {}
        }
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Helios as a [`Backend`]: the recorded ops on another engine, with branch ids mapped to the
/// ones that engine gives.
pub struct HeliosBackend<'e> {
    engine: &'e Engine,
    ids: HashMap<BranchId, BranchId>,
    /// Prunes whose count differed from the recorded one.
    pub prune_mismatches: u64,
}

impl fmt::Debug for HeliosBackend<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeliosBackend")
            .field("branches", &self.ids.len())
            .field("prune_mismatches", &self.prune_mismatches)
            .finish_non_exhaustive()
    }
}

impl<'e> HeliosBackend<'e> {
    /// Replays onto `engine`, which must not hold the workload's streams yet.
    #[must_use]
    pub fn new(engine: &'e Engine) -> HeliosBackend<'e> {
        HeliosBackend {
            engine,
            ids: HashMap::new(),
            prune_mismatches: 0,
        }
    }

    fn id(&self, recorded: BranchId) -> Result<BranchId, BackendError> {
        self.ids
            .get(&recorded)
            .copied()
            .ok_or_else(|| format!("{recorded} was never forked in this replay").into())
    }
}

impl Backend for HeliosBackend<'_> {
    fn name(&self) -> &str {
        "helios"
    }

    fn apply(&mut self, op: &Op) -> Result<(), BackendError> {
        let engine = self.engine;
        match op {
            Op::CreateStream { stream } => {
                engine.create_stream(stream)?;
            }
            Op::Fork { branch, from } => {
                let id = match from {
                    At::Durable { stream, version } => engine.fork(stream, *version)?,
                    At::Branch { branch, version } => {
                        engine.fork_branch(self.id(*branch)?, *version)?
                    }
                };
                self.ids.insert(*branch, id);
            }
            Op::Append {
                branch,
                expected,
                events,
                ..
            } => {
                engine.append_branch(self.id(*branch)?, events, Some(*expected))?;
            }
            Op::View { at, board } => {
                let view = match at {
                    At::Durable { stream, version } => engine.view(stream, *version)?,
                    At::Branch { branch, version } => {
                        engine.view_branch(self.id(*branch)?, *version)?
                    }
                };
                let read = Board::from_view(&view)?;
                if read != *board {
                    return Err(format!("read {read:?}, recorded {board:?}").into());
                }
            }
            Op::Promote { branch, upto, .. } => {
                engine.promote(self.id(*branch)?, *upto, Durability::Critical)?;
            }
            Op::Discard { branch } => {
                engine.discard(self.id(*branch)?)?;
                self.ids.remove(branch);
            }
            Op::Prune { stream, discarded } => {
                let pruned = engine.prune(stream)?;
                if pruned != discarded.len() {
                    self.prune_mismatches += 1;
                }
                for gone in discarded {
                    self.ids.remove(gone);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board_of(columns: &[usize]) -> Board {
        let mut board = Board::new();
        for &c in columns {
            board.play(c).expect("a legal move");
        }
        board
    }

    #[test]
    fn pieces_fall_and_turns_alternate() {
        let mut board = Board::new();
        assert_eq!(board.moves(), ALL_COLUMNS);
        let first = board.play(3).expect("legal");
        assert_eq!((first.row, first.column, first.piece), (0, 3, Piece::X));
        let second = board.play(3).expect("legal");
        assert_eq!((second.row, second.piece), (1, Piece::O));
        assert_eq!(board.to_move(), Piece::X);
        assert_eq!(first.event(), b"set cell/0/3 X");
        for _ in 0..4 {
            board.play(3).expect("legal");
        }
        assert_eq!(board.free_row(3), None);
        assert_eq!(board.moves(), ALL_COLUMNS & !(1 << 3));
        assert_eq!(board.play(3), None);
    }

    #[test]
    fn wins_in_every_direction_and_draws() {
        // Horizontal: X on 0..4 of the bottom row, O above.
        let horizontal = board_of(&[0, 0, 1, 1, 2, 2, 3]);
        assert_eq!(horizontal.outcome(), Some(Outcome::Win(Piece::X)));
        assert_eq!(horizontal.moves(), 0, "no moves once the game is over");
        // Vertical for O.
        let vertical = board_of(&[0, 1, 0, 1, 0, 1, 2, 1]);
        assert_eq!(vertical.outcome(), Some(Outcome::Win(Piece::O)));
        // Rising diagonal for X: (0,0) (1,1) (2,2) (3,3).
        let rising = board_of(&[0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3]);
        assert_eq!(rising.outcome(), Some(Outcome::Win(Piece::X)));
        // Falling diagonal for X: (3,0) (2,1) (1,2) (0,3).
        let falling = board_of(&[3, 2, 2, 1, 1, 0, 1, 0, 0, 6, 0]);
        assert_eq!(falling.outcome(), Some(Outcome::Win(Piece::X)));
        assert_eq!(board_of(&[0, 1, 2]).outcome(), None);
        // A full board without four in a row: columns filled in pairs so no line forms.
        let mut draw = Board::new();
        for pair in [[0, 1], [2, 3], [4, 5]] {
            for _ in 0..3 {
                for &c in &pair {
                    draw.play(c).expect("legal");
                }
            }
            for _ in 0..3 {
                for &c in pair.iter().rev() {
                    draw.play(c).expect("legal");
                }
            }
        }
        for _ in 0..ROWS {
            draw.play(6).expect("legal");
        }
        assert_eq!(draw.pieces(), CELLS, "{draw}");
        assert_eq!(draw.outcome(), Some(Outcome::Draw), "{draw}");
    }

    #[test]
    fn boards_round_trip_through_events_and_entries() {
        let mut board = Board::new();
        let mut folded = Board::new();
        for c in [3, 3, 4, 2, 6] {
            let mv = board.play(c).expect("legal");
            folded.apply_event(&mv.event()).expect("a cell event");
        }
        assert_eq!(folded, board);
        let entries = [(&b"cell/0/3"[..], &b"X"[..]), (b"cell/1/3", b"O")];
        let read = Board::from_entries(entries).expect("cells");
        assert_eq!(read.get(1, 3), Some(Piece::O));
        assert!(Board::from_entries([(&b"cell/9/3"[..], &b"X"[..])]).is_err());
        assert!(Board::from_entries([(&b"cell/0/3"[..], &b"Z"[..])]).is_err());
        assert!(folded.apply_event(b"del cell/0/3").is_ok());
        assert_eq!(folded.get(0, 3), None);
        assert!(folded.apply_event(b"bogus").is_err());
    }

    #[test]
    fn branch_tree_histories_descent_and_frees() {
        let mut tree = BranchTree::new();
        let (a, b, c) = (BranchId(1), BranchId(2), BranchId(3));
        let durable = At::Durable {
            stream: "s".to_owned(),
            version: Version(5),
        };
        tree.fork(a, &durable).expect("fork a");
        tree.appended(a, Version(8)).expect("append a");
        // b forks a at 7, c forks the durable stream at 5.
        tree.fork(
            b,
            &At::Branch {
                branch: a,
                version: Version(7),
            },
        )
        .expect("fork b");
        tree.appended(b, Version(9)).expect("append b");
        tree.fork(c, &durable).expect("fork c");
        tree.appended(c, Version(6)).expect("append c");

        let history = tree.history(b, Version(9)).expect("history");
        assert_eq!(history.durable_upto, Version(5));
        assert_eq!(
            history.links,
            [
                Link {
                    branch: a,
                    after: Version(5),
                    upto: Version(7)
                },
                Link {
                    branch: b,
                    after: Version(7),
                    upto: Version(9)
                },
            ]
        );
        // A version at or below the fork reads the parent.
        assert_eq!(tree.history(b, Version(6)).expect("history").links.len(), 1);

        // The node (a, 6) is in a's and b's histories, not c's.
        assert!(tree.descends(a, a, Version(6)));
        assert!(tree.descends(b, a, Version(6)));
        assert!(!tree.descends(c, a, Version(6)));
        assert_eq!(tree.not_descending("s", a, Version(6)), [c]);
        // (a, 8) is past b's fork: b holds its own node at 8.
        assert_eq!(tree.not_descending("s", a, Version(8)), [b, c]);

        // Discarding a keeps its events while b reads them; discarding b frees both.
        assert_eq!(tree.discard(a).expect("discard a"), []);
        assert_eq!(tree.head(a), None);
        assert!(tree.history(b, Version(9)).is_ok());
        assert_eq!(tree.discard(b).expect("discard b"), [b, a]);
        assert_eq!(tree.live().collect::<Vec<_>>(), [c]);
        assert!(tree.discard(a).is_err());
    }

    fn small_config(seed: u64) -> MctsConfig {
        MctsConfig {
            seed,
            simulations: 400,
            promote_every: 4,
            ..MctsConfig::default()
        }
    }

    fn record(engine: &Engine, config: &MctsConfig) -> (MctsReport, Vec<Op>) {
        let mut ops = Vec::new();
        let report =
            run_mcts(engine, config, &mut |op: &Op, _| ops.push(op.clone())).expect("the search");
        (report, ops)
    }

    #[test]
    fn the_search_repeats_and_replays() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let first = crate::open_engine(&dir.path().join("a"));
        let second = crate::open_engine(&dir.path().join("b"));
        let (report, ops) = record(&first, &small_config(7));
        let (again, ops_again) = record(&second, &small_config(7));
        assert_eq!(ops, ops_again, "the same seed gives the same ops");
        assert_eq!(report.commits(), again.commits());
        let (_, other) = record(
            &second,
            &MctsConfig {
                stream_prefix: "other".to_owned(),
                ..small_config(8)
            },
        );
        assert_ne!(ops.len(), 0);
        assert_ne!(
            ops.iter()
                .filter_map(|op| match op {
                    Op::Append { events, .. } => Some(events.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            other
                .iter()
                .filter_map(|op| match op {
                    Op::Append { events, .. } => Some(events.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            "another seed plays other moves"
        );

        assert_eq!(report.simulations, 400);
        assert!(report.games_finished >= 1, "{report:?}");
        assert!(
            report.commits_critical > 0 && report.commits_speculative > report.commits_critical
        );
        assert_eq!(report.commits_critical, report.events_critical);
        assert_eq!(report.prune_mismatches, 0, "{report:?}");
        assert_eq!(report.branches_left_after_game, 0, "{report:?}");
        let count = |kind| ops.iter().filter(|op| op.kind() == kind).count() as u64;
        assert_eq!(count(OpKind::Append), report.commits_speculative);
        assert_eq!(count(OpKind::Promote), report.commits_critical);

        // Every durable move is on disk, in order, and a finished game's stream ends won or
        // full.
        let stream = "mcts-g1";
        let events: Vec<Vec<u8>> = first
            .read(stream, Version(1)..)
            .expect("read")
            .map(|e| e.expect("event").payload)
            .collect();
        let mut board = Board::new();
        for event in &events {
            board.apply_event(event).expect("a move");
        }
        assert!(board.outcome().is_some(), "game 1 finished: {board}");

        // The recorded ops replay on a fresh engine, every view matching.
        let third = crate::open_engine(&dir.path().join("c"));
        let mut backend = HeliosBackend::new(&third);
        let replayed = replay(&ops, &mut backend).expect("replay");
        assert_eq!(replayed.commits(), report.commits());
        assert_eq!(backend.prune_mismatches, 0);
        assert_eq!(
            third.branch_stats().live_branches,
            first.branch_stats().live_branches
        );
    }

    #[test]
    fn commit_kinds_match_the_default_classifier() {
        assert_eq!(CommitKind::Expansion.class(), Durability::Speculative);
        assert_eq!(CommitKind::Rollout.class(), Durability::Speculative);
        assert_eq!(CommitKind::Move.class(), Durability::Critical);
    }
}
