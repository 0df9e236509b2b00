//! Replaying a recorded workload: [`Backend`], anything that can perform the search's
//! [`Op`]s (Helios here, the peers in `helios-peers`), and [`replay`], which times each op on
//! one.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use helios::{BranchId, Durability, Engine};

use super::{At, Board, Op, OpKind, OpLatencies};

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
                    At::Durable { stream, version } => engine.branches().fork(stream, *version)?,
                    At::Branch { branch, version } => {
                        engine.branches().fork_branch(self.id(*branch)?, *version)?
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
                engine
                    .branches()
                    .append(self.id(*branch)?, events, Some(*expected))?;
            }
            Op::View { at, board } => {
                let view = match at {
                    At::Durable { stream, version } => engine.view(stream, *version)?,
                    At::Branch { branch, version } => {
                        engine.branches().view(self.id(*branch)?, *version)?
                    }
                };
                let read = Board::from_view(&view)?;
                if read != *board {
                    return Err(format!("read {read:?}, recorded {board:?}").into());
                }
            }
            Op::Promote { branch, upto, .. } => {
                engine
                    .branches()
                    .promote(self.id(*branch)?, *upto, Durability::Critical)?;
            }
            Op::Discard { branch } => {
                engine.branches().discard(self.id(*branch)?)?;
                self.ids.remove(branch);
            }
            Op::Prune { stream, discarded } => {
                let pruned = engine.branches().prune(stream)?;
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
