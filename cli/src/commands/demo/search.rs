//! The search phase: the MCTS run with a progress bar, and the [`Recorder`] that observes
//! every op of it: the games and the moves promoted to each (for the reopen check), the
//! commits (for the naive durable peer) and the branches' events (for replay from the start).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use helios::{BranchId, Engine};
use helios_peers::replay::BranchReplay;
use helios_workloads::mcts::{At, Mcts, MctsConfig, MctsReport, Op};

use super::{EXTRA_STEPS_MAX, LIVE_BRANCHES_MAX, PEER_COMMITS_MAX, progress};
use crate::error::CliError;
use crate::text::thousands;

/// One commit of the search, for the naive durable peer.
#[derive(Debug)]
pub(super) struct Commit {
    /// Index into `Recorder::streams`.
    pub(super) stream: usize,
    pub(super) speculative: bool,
    pub(super) events: Vec<Vec<u8>>,
    /// What the call took in Helios, during the search.
    pub(super) latency: Duration,
}

/// What the demo keeps of the search, mirrored from its ops.
#[derive(Debug, Default)]
pub(super) struct Recorder {
    /// The run's game streams, in creation order.
    pub(super) streams: Vec<String>,
    /// The moves promoted to each game stream, in order.
    pub(super) promoted: Vec<Vec<Vec<u8>>>,
    /// Each branch's stream, by index.
    pub(super) branch_stream: HashMap<BranchId, usize>,
    /// The branches and their events: what a design without checkpoints needs to replay a
    /// branch node from the start.
    pub(super) branches: BranchReplay,
    pub(super) commits: Vec<Commit>,
    /// Commits of the search in all (`commits` stops at [`PEER_COMMITS_MAX`]).
    pub(super) commit_count: u64,
    /// The first inconsistency met (the observer cannot return an error).
    error: Option<String>,
}

impl Recorder {
    fn stream_index(&self, stream: &str) -> Option<usize> {
        self.streams.iter().rposition(|s| s == stream)
    }

    fn observe(&mut self, op: &Op, latency: Duration) {
        if let Err(e) = self.apply(op, latency) {
            self.error.get_or_insert(e);
        }
    }

    fn apply(&mut self, op: &Op, latency: Duration) -> Result<(), String> {
        match op {
            Op::CreateStream { stream } => {
                self.streams.push(stream.clone());
                self.promoted.push(Vec::new());
            }
            Op::Fork { branch, from } => {
                let stream = match from {
                    At::Durable { stream, .. } => self.stream_index(stream),
                    At::Branch { branch, .. } => self.branch_stream.get(branch).copied(),
                }
                .ok_or_else(|| format!("{branch} forked from unknown {from}"))?;
                self.branch_stream.insert(*branch, stream);
                self.branches.observe(op)?;
            }
            Op::Append { branch, events, .. } => {
                self.branches.observe(op)?;
                let stream = self.branch_stream.get(branch).copied().unwrap_or(0);
                self.commit(stream, true, events, latency);
            }
            Op::Promote { stream, events, .. } => {
                let index = self
                    .stream_index(stream)
                    .ok_or_else(|| format!("promotion to unknown stream `{stream}`"))?;
                self.promoted[index].extend(events.iter().cloned());
                self.commit(index, false, events, latency);
            }
            Op::Discard { .. } | Op::Prune { .. } => self.branches.observe(op)?,
            Op::View { .. } => {}
        }
        Ok(())
    }

    fn commit(&mut self, stream: usize, speculative: bool, events: &[Vec<u8>], latency: Duration) {
        self.commit_count += 1;
        if self.commits.len() < PEER_COMMITS_MAX {
            self.commits.push(Commit {
                stream,
                speculative,
                events: events.to_vec(),
                latency,
            });
        }
    }
}

/// Runs the search until `simulations` or `seconds`, whichever comes first, and then until
/// `promote_every - 1` branches are live, at least 1 and at most [`LIVE_BRANCHES_MAX`] (or
/// [`EXTRA_STEPS_MAX`] more simulations ran).
pub(super) fn search(
    engine: &Engine,
    config: MctsConfig,
    simulations: u64,
    seconds: Option<Duration>,
    promote_every: u32,
) -> Result<(MctsReport, Recorder, Duration), CliError> {
    const BAR_STEPS: u64 = 1000;
    let bar = progress(BAR_STEPS, "search");
    let deadline = seconds;
    let mut mcts = Mcts::new(engine, config).map_err(CliError::Search)?;
    let mut recorder = Recorder::default();
    let started = Instant::now();
    loop {
        let done = mcts.report().simulations;
        let elapsed = started.elapsed();
        if done >= simulations || deadline.is_some_and(|d| elapsed >= d) {
            break;
        }
        step(&mut mcts, &mut recorder)?;
        if done.is_multiple_of(64) {
            let by_count = done as f64 / simulations as f64;
            let by_time =
                deadline.map_or(0.0, |d| elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9));
            #[expect(
                clippy::cast_possible_truncation,
                reason = "a fraction of BAR_STEPS, clamped to it"
            )]
            let position = (by_count.max(by_time).min(1.0) * BAR_STEPS as f64) as u64;
            bar.set_message(format!("{} simulations", thousands(done)));
            bar.set_position(position);
        }
    }
    // The reads want branch nodes to choose from: right after a game ends there are none, and
    // right after a promotion few. Just before a promotion, the tree holds one branch per
    // expansion since the last one.
    let live_min = u64::from(promote_every.saturating_sub(1)).clamp(1, LIVE_BRANCHES_MAX);
    let mut extra = 0;
    while engine.branches().stats().live_branches < live_min && extra < EXTRA_STEPS_MAX {
        step(&mut mcts, &mut recorder)?;
        extra += 1;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok((mcts.into_report(), recorder, elapsed))
}

/// One simulation, every op observed by `recorder`.
fn step(mcts: &mut Mcts<'_>, recorder: &mut Recorder) -> Result<(), CliError> {
    mcts.step(&mut |op: &Op, latency: Duration| recorder.observe(op, latency))
        .map_err(CliError::Search)?;
    match recorder.error.take() {
        Some(reason) => Err(CliError::DemoRecord(reason)),
        None => Ok(()),
    }
}
