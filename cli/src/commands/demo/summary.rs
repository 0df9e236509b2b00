//! The summary of `helios demo`: one struct, printed as JSON with `--json`; the text summary
//! (`text.rs`) is rendered from the same struct.

use hdrhistogram::Histogram;
use helios::MetricSummary;

use crate::json;

/// `helios demo --json`: everything the summary says.
#[derive(Debug, serde::Serialize)]
pub(super) struct DemoSummary {
    /// The store directory.
    pub(super) dir: String,
    /// Whether the store is kept (`--dir`) or was a temporary directory.
    pub(super) kept: bool,
    /// The search's configuration and what it did.
    pub(super) search: SearchJson,
    /// Commits and events per class, with the engine's latency percentiles.
    pub(super) classes: Vec<ClassJson>,
    /// What the run added to the store on disk.
    pub(super) storage: StorageJson,
    /// Random-access state reads, warm.
    pub(super) reads: ReadsJson,
    /// The same operations on naive peers, in the same run.
    pub(super) peers: PeersJson,
    /// Closing, reopening and reading every game back.
    pub(super) reopen: ReopenJson,
    /// Wall time of the whole command.
    pub(super) wall_seconds: f64,
}

#[derive(Debug, serde::Serialize)]
pub(super) struct SearchJson {
    pub(super) seed: u64,
    pub(super) promote_every: u32,
    /// Prefix of this run's game streams (`<prefix>-g1`, ...).
    pub(super) stream_prefix: String,
    pub(super) simulations: u64,
    pub(super) games_started: u64,
    pub(super) games_finished: u64,
    pub(super) seconds: f64,
    /// All commits (speculative and critical) per second of search wall time, reads,
    /// forks and discards included.
    pub(super) commits_per_second: f64,
}

#[derive(Debug, serde::Serialize)]
pub(super) struct ClassJson {
    /// `speculative`, `critical` or `normal`.
    pub(super) class: &'static str,
    /// Commit calls (`append_branch` for speculative ones, `promote` for critical ones).
    pub(super) commits: u64,
    pub(super) events: u64,
    /// This class's share of all commits.
    pub(super) commit_share: f64,
    /// The engine's latency histogram of these commits (`Engine::metrics`).
    pub(super) latency: Percentiles,
}

/// A distribution: count, percentiles, maximum and mean, in `unit`.
#[derive(Clone, Debug, serde::Serialize)]
pub(super) struct Percentiles {
    /// `ns` or `events`.
    pub(super) unit: &'static str,
    pub(super) count: u64,
    pub(super) p50: u64,
    pub(super) p95: u64,
    pub(super) p99: u64,
    pub(super) p999: u64,
    pub(super) max: u64,
    pub(super) mean: f64,
}

impl Percentiles {
    pub(super) fn from_metric(summary: Option<&MetricSummary>, unit: &'static str) -> Percentiles {
        match summary {
            Some(s) => Percentiles {
                unit,
                count: s.count,
                p50: s.p50,
                p95: s.p95,
                p99: s.p99,
                p999: s.p999,
                max: s.max,
                mean: json::round(s.mean, 3),
            },
            None => Percentiles::empty(unit),
        }
    }

    pub(super) fn from_histogram(h: &Histogram<u64>, unit: &'static str) -> Percentiles {
        if h.is_empty() {
            return Percentiles::empty(unit);
        }
        Percentiles {
            unit,
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: json::round(h.mean(), 3),
        }
    }

    pub(super) fn empty(unit: &'static str) -> Percentiles {
        Percentiles {
            unit,
            count: 0,
            p50: 0,
            p95: 0,
            p99: 0,
            p999: 0,
            max: 0,
            mean: 0.0,
        }
    }
}

#[derive(Debug, serde::Serialize)]
pub(super) struct StorageJson {
    /// Log bytes the run added (frames and headers of the promoted moves and of the stream
    /// creations; no speculative event reaches the log).
    pub(super) log_bytes: u64,
    /// Events the run added to the log.
    pub(super) durable_events: u64,
    /// Checkpoints of the run's streams, and their bytes, in all and per level.
    pub(super) checkpoints: u64,
    pub(super) checkpoint_bytes: u64,
    pub(super) checkpoint_levels: Vec<LevelJson>,
    /// Time `sync_checkpoints` took after the search (the builder had built most already).
    pub(super) checkpoint_sync_seconds: f64,
}

#[derive(Debug, serde::Serialize)]
pub(super) struct LevelJson {
    pub(super) level: u32,
    pub(super) checkpoints: u64,
    pub(super) bytes: u64,
}

#[derive(Debug, serde::Serialize)]
pub(super) struct ReadsJson {
    /// Reads per kind and pass.
    pub(super) samples: u64,
    /// Live branches the branch nodes were drawn from.
    pub(super) live_branches: u64,
    /// `Engine::view` at random durable versions of the run's games (metric `view`).
    pub(super) durable: Percentiles,
    /// `Engine::view_branch` at random live branch nodes (metric `view_branch`).
    pub(super) branch: Percentiles,
    /// Events replayed per read, both kinds (metric `replayed_events`).
    pub(super) replayed_events: Percentiles,
    /// Events replayed per read during the search, while the builder ran behind the heads.
    pub(super) replayed_events_during_search: Percentiles,
    /// Reads whose state was compared with a replay from the first event, all equal.
    pub(super) checked: u64,
}

#[derive(Debug, serde::Serialize)]
pub(super) struct PeersJson {
    /// Every commit made durable: a critical append per commit, to a second store.
    pub(super) every_commit_durable: DurablePeerJson,
    /// Every read replayed from the first event (read from the log, folded into a map).
    pub(super) replay_from_start: ReplayPeerJson,
}

#[derive(Debug, serde::Serialize)]
pub(super) struct DurablePeerJson {
    /// Commits it made durable: the first ones of the search, within its time budget.
    pub(super) commits: u64,
    /// Whether it got through every commit of the search (or of the first 100,000).
    pub(super) complete: bool,
    /// Helios's latency for those same commits, in the search.
    pub(super) helios: Percentiles,
    /// The peer's latency per commit.
    pub(super) naive: Percentiles,
    /// Total time of those commits, peer over Helios.
    pub(super) time_ratio: f64,
    /// Log bytes per commit: Helios over the whole run, the peer over its commits.
    pub(super) helios_log_bytes_per_commit: f64,
    pub(super) naive_log_bytes_per_commit: f64,
    pub(super) bytes_ratio: f64,
}

#[derive(Debug, serde::Serialize)]
pub(super) struct ReplayPeerJson {
    /// The same durable versions as `reads.durable`, each replayed from version 1.
    pub(super) durable: Percentiles,
    /// The same branch nodes as `reads.branch`: the durable events below the fork, then the
    /// branches' events, from the first.
    pub(super) branch: Percentiles,
    /// Median and p99 of the peer over Helios's, per kind.
    pub(super) durable_p50_ratio: f64,
    pub(super) durable_p99_ratio: f64,
    pub(super) branch_p50_ratio: f64,
    pub(super) branch_p99_ratio: f64,
}

#[derive(Debug, serde::Serialize)]
pub(super) struct ReopenJson {
    pub(super) close_seconds: f64,
    pub(super) reopen_seconds: f64,
    /// Games read back.
    pub(super) games: u64,
    /// Their events, each equal to the move promoted at that version.
    pub(super) events_checked: u64,
}
