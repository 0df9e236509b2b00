//! The memory phase: live speculative events of 100 bytes in many branches, nothing pruned,
//! with the engine's branch accounting and the process's RSS before and after, and the warm
//! view latency of random branch nodes.

use std::time::{Duration, Instant};

use helios::{BranchId, Durability, Engine, Version};
use helios_benches::scratch_dir;
use helios_workloads::Rng;
use helios_workloads::latency::{Jitter, Latencies};

use crate::{Config, MEMORY_BASE_EVENTS, MEMORY_EVENT_LEN, open_helios};

/// Resident set size of this process: `/proc/self/statm` (pages, times the kernel page size
/// from `/proc/self/smaps`) and `VmRSS` from `/proc/self/status`, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rss {
    pub(crate) statm_bytes: u64,
    pub(crate) status_bytes: u64,
}

impl Rss {
    fn now() -> Rss {
        let page_bytes = std::fs::read_to_string("/proc/self/smaps")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("KernelPageSize:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(4096, |kb| kb * 1024);
        let statm_pages = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0);
        let status_kb = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .unwrap_or(0);
        Rss {
            statm_bytes: statm_pages * page_bytes,
            status_bytes: status_kb * 1024,
        }
    }
}

/// A memory checkpoint: branch accounting and RSS.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MemorySample {
    pub(crate) stats: helios::BranchStats,
    pub(crate) rss: Rss,
}

impl MemorySample {
    fn take(engine: &Engine) -> MemorySample {
        MemorySample {
            stats: engine.branches().stats(),
            rss: Rss::now(),
        }
    }
}

/// What the memory phase measured.
pub(crate) struct MemoryRun {
    pub(crate) before: MemorySample,
    pub(crate) after_appends: MemorySample,
    pub(crate) after_views: MemorySample,
    /// One append per event, 100 bytes each.
    pub(crate) appends: Latencies,
    pub(crate) append_jitter: Jitter,
    pub(crate) forks: Latencies,
    /// The first pass over the sample (builds cached states).
    pub(crate) first_views: Latencies,
    /// The second pass over the same nodes.
    pub(crate) warm_views: Latencies,
    /// Events replayed per view, summed over the warm pass.
    pub(crate) warm_events_replayed: u64,
    pub(crate) elapsed: Duration,
}

/// An event of exactly [`MEMORY_EVENT_LEN`] bytes: `set KEY VALUE` with a hex value.
fn memory_event(key: &str, rng: &mut Rng) -> Vec<u8> {
    let mut event = format!("set {key} ").into_bytes();
    while event.len() < MEMORY_EVENT_LEN {
        let word = format!("{:016x}", rng.next_u64());
        let take = word.len().min(MEMORY_EVENT_LEN - event.len());
        event.extend_from_slice(&word.as_bytes()[..take]);
    }
    event
}

/// One branch of the memory phase: its fork point and its events' keys.
struct MemoryBranch {
    id: BranchId,
    fork: u64,
    keys: Vec<String>,
}

/// The memory phase: live speculative events in many branches, memory before and after, and
/// the same random branch nodes read twice (the second pass warm).
pub(crate) fn memory_phase(config: &Config) -> MemoryRun {
    let started = Instant::now();
    let dir = scratch_dir("helios-bench-memory-");
    let engine = open_helios(dir.path(), config.engine_metrics);
    let stream = "memory";
    let mut rng = Rng::new(config.search.seed ^ 0x6d65_6d6f_7279);
    let base: Vec<Vec<u8>> = (0..MEMORY_BASE_EVENTS)
        .map(|i| memory_event(&format!("base/{i:04}"), &mut rng))
        .collect();
    engine
        .append(stream, &base, Durability::Normal, Some(Version::ZERO))
        .expect("durable base");
    engine.sync().expect("sync the base");
    engine
        .checkpoints()
        .sync()
        .expect("checkpoints of the base");

    let before = MemorySample::take(&engine);
    let per_branch = config.memory_events / config.memory_branches;
    let mut branches: Vec<MemoryBranch> = Vec::new();
    let mut appends = Latencies::new();
    let mut append_jitter = Jitter::default();
    let mut forks = Latencies::new();
    for b in 0..config.memory_branches {
        // Half the branches start from the durable history, half from an earlier branch, at
        // one of its own versions.
        let from_branch = !branches.is_empty() && rng.below(2) == 1;
        let start = Instant::now();
        let (id, fork) = if from_branch {
            let parent = &branches[rng.index(branches.len())];
            let at = parent.fork + 1 + rng.below(parent.keys.len() as u64);
            let id = engine
                .branches()
                .fork_branch(parent.id, Version(at))
                .expect("fork a branch");
            (id, at)
        } else {
            let at = 1 + rng.below(MEMORY_BASE_EVENTS);
            (
                engine
                    .branches()
                    .fork(stream, Version(at))
                    .expect("fork the stream"),
                at,
            )
        };
        forks.record(start.elapsed());
        let mut keys = Vec::new();
        for k in 0..per_branch {
            let key = format!("b{b:04}/{k:03}");
            let event = memory_event(&key, &mut rng);
            let start = Instant::now();
            engine
                .branches()
                .append(id, &[&event], None)
                .expect("speculative append");
            let latency = start.elapsed();
            appends.record(latency);
            append_jitter.record(latency);
            keys.push(key);
        }
        branches.push(MemoryBranch { id, fork, keys });
    }
    let after_appends = MemorySample::take(&engine);

    // The same random nodes, read twice: the second pass is warm.
    let sample: Vec<(usize, u64)> = (0..config.view_samples)
        .map(|_| {
            let b = rng.index(branches.len());
            (b, 1 + rng.below(branches[b].keys.len() as u64))
        })
        .collect();
    let mut first_views = Latencies::new();
    let mut warm_views = Latencies::new();
    let mut warm_events_replayed = 0;
    for pass in 0..2 {
        for &(b, offset) in &sample {
            let branch = &branches[b];
            let version = Version(branch.fork + offset);
            let start = Instant::now();
            let view = engine
                .branches()
                .view(branch.id, version)
                .expect("view a branch node");
            let key = &branch.keys[usize::try_from(offset - 1).unwrap_or(0)];
            let found = view.get(key.as_bytes()).is_some();
            let latency = start.elapsed();
            assert!(found, "the node's own key {key} is set at {version:?}");
            if pass == 0 {
                first_views.record(latency);
            } else {
                warm_views.record(latency);
                warm_events_replayed += view.report().events_replayed;
            }
        }
    }
    let after_views = MemorySample::take(&engine);
    drop(engine);
    MemoryRun {
        before,
        after_appends,
        after_views,
        appends,
        append_jitter,
        forks,
        first_views,
        warm_views,
        warm_events_replayed,
        elapsed: started.elapsed(),
    }
}
