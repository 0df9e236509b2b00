//! What a search did: per-kind latencies of its ops ([`OpLatencies`]) and its counts
//! ([`MctsReport`]).

use std::time::Duration;

use super::OpKind;
use crate::latency::{Jitter, Latencies};

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
    /// Rollouts cut short by [`super::MctsConfig::rollout_depth`].
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

    /// Simulations per second of wall time, search work included: what a search on these
    /// positions can do.
    #[must_use]
    pub fn simulations_per_s(&self) -> f64 {
        self.simulations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}
