//! The read phase: random-access state reads, warm, by Helios and by replay from the start.

use std::collections::BTreeMap;
use std::time::Instant;

use helios::{BranchId, Engine, Metric, MetricsSnapshot, Version};
use helios_peers::replay::{ReplayError, durable_events};
use helios_workloads::Rng;

use super::search::Recorder;
use super::summary::{Percentiles, ReadsJson};
use super::{Args, READS_SEED_MIX, demo_check, histogram, progress, record};
use crate::error::CliError;

/// What the read phase measured.
pub(super) struct Reads {
    /// Helios's reads, as the summary has them.
    pub(super) json: ReadsJson,
    /// The same durable versions, replayed from the start.
    pub(super) naive_durable: Percentiles,
    /// The same branch nodes, replayed from the start.
    pub(super) naive_branch: Percentiles,
}

/// One random read target.
#[derive(Clone, Debug)]
enum Target {
    Durable { stream: usize, version: Version },
    Branch { branch: BranchId, version: Version },
}

/// Random durable versions and random live branch nodes, read twice with Helios (the second
/// pass is measured by the engine's own metrics) and each time by replay from the start
/// (`helios_peers::replay`), timed here; every view is compared with its replay.
pub(super) fn reads(engine: &Engine, recorder: &Recorder, args: &Args) -> Result<Reads, CliError> {
    let mut rng = Rng::new(args.seed ^ READS_SEED_MIX);
    // Durable targets: a uniformly random durable event of the run's games.
    let heads: Vec<u64> = recorder
        .streams
        .iter()
        .map(|s| engine.head(s).unwrap_or(Version::ZERO).0)
        .collect();
    let durable_total: u64 = heads.iter().sum();
    let live: Vec<(BranchId, Version, Version)> = recorder.branches.live_branches();
    let mut targets = Vec::new();
    for _ in 0..args.reads {
        if durable_total > 0 {
            let mut k = rng.below(durable_total);
            for (stream, &head) in heads.iter().enumerate() {
                if k < head {
                    targets.push(Target::Durable {
                        stream,
                        version: Version(k + 1),
                    });
                    break;
                }
                k -= head;
            }
        }
        if !live.is_empty() {
            let (branch, fork, head) = live[rng.index(live.len())];
            let version = Version(fork.0 + 1 + rng.below(head.0 - fork.0));
            targets.push(Target::Branch { branch, version });
        }
    }

    let bar = progress(2 * targets.len() as u64, "reads");
    let mut checked = 0;
    let mut naive_durable = histogram()?;
    let mut naive_branch = histogram()?;
    let mut metrics = MetricsSnapshot::default();
    for pass in 0..2 {
        // The first pass warms the page cache, the maps and the branches' cached states.
        engine.inspect().reset_metrics();
        naive_durable.reset();
        naive_branch.reset();
        for target in &targets {
            let (stream, version, view) = match target {
                Target::Durable { stream, version } => {
                    let name = &recorder.streams[*stream];
                    (name.as_str(), *version, engine.view(name, *version)?)
                }
                Target::Branch { branch, version } => {
                    let stream = recorder
                        .branch_stream
                        .get(branch)
                        .map_or("(branch)", |&s| recorder.streams[s].as_str());
                    (stream, *version, engine.branches().view(*branch, *version)?)
                }
            };
            let naive_started = Instant::now();
            let events = match target {
                Target::Durable { version, .. } => durable_events(engine, stream, *version)?,
                Target::Branch { branch, version } => recorder
                    .branches
                    .events(engine, *branch, *version)
                    .map_err(|e| match e {
                        ReplayError::Engine(e) => CliError::Engine(e),
                        ReplayError::Mirror { stream, reason } => {
                            demo_check(&stream, *version, reason)
                        }
                    })?,
            };
            let state = fold(stream, &events)?;
            let naive_time = naive_started.elapsed();
            match target {
                Target::Durable { .. } => record(&mut naive_durable, naive_time),
                Target::Branch { .. } => record(&mut naive_branch, naive_time),
            }
            if view.to_map() != state {
                return Err(demo_check(
                    stream,
                    version,
                    format!("the view of {target:?} differs from a replay from the first event"),
                ));
            }
            checked += 1;
            bar.inc(1);
        }
        if pass == 1 {
            metrics = engine.inspect().metrics();
        }
    }
    bar.finish_and_clear();
    Ok(Reads {
        json: ReadsJson {
            samples: args.reads,
            live_branches: live.len() as u64,
            durable: Percentiles::from_metric(metrics.get(Metric::View), "ns"),
            branch: Percentiles::from_metric(metrics.get(Metric::ViewBranch), "ns"),
            replayed_events: Percentiles::from_metric(
                metrics.get(Metric::ReplayedEvents),
                "events",
            ),
            // Filled in by the caller, which has the search's metrics.
            replayed_events_during_search: Percentiles::empty("events"),
            checked,
        },
        naive_durable: Percentiles::from_histogram(&naive_durable, "ns"),
        naive_branch: Percentiles::from_histogram(&naive_branch, "ns"),
    })
}

/// Folds `events` into a map from scratch: the naive read path.
fn fold(stream: &str, events: &[Vec<u8>]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, CliError> {
    helios::kv::fold(events.iter().map(Vec::as_slice)).map_err(|(i, e)| {
        demo_check(
            stream,
            Version(i as u64 + 1),
            format!("not a key-value event: {e}"),
        )
    })
}
