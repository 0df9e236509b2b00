//! One read sample and its checks: what a sample reads ([`Sample`]), how a Helios sample and a
//! peer sample are timed ([`helios_sample`], [`peer_sample`]), and what every answer is checked
//! against ([`ViewChecks`]).

use std::hint::black_box;
use std::time::{Duration, Instant};

use helios::{Engine, Version, View};
use helios_workloads::Rng;
use helios_workloads::kv::{KvWorkload, State};
use helios_workloads::latency::Latencies;

use crate::measure::Breakdown;
use crate::{Config, Result, STREAM};

/// One read sample: a version and the key numbers to read there.
pub(crate) struct Sample {
    /// The version read.
    pub(crate) version: u64,
    /// The keys read there.
    pub(crate) keys: Vec<Vec<u8>>,
    /// Their numbers in the workload's key space.
    pub(crate) key_numbers: Vec<u64>,
}

impl Sample {
    /// A sample at a uniformly random version, reading `reads` uniformly random keys.
    pub(crate) fn draw(rng: &mut Rng, workload: &KvWorkload, reads: usize) -> Sample {
        let version = 1 + rng.below(workload.events_count());
        let key_numbers: Vec<u64> = (0..reads)
            .map(|_| rng.below(workload.keys_count()))
            .collect();
        let keys = key_numbers.iter().map(|&k| workload.key(k)).collect();
        Sample {
            version,
            keys,
            key_numbers,
        }
    }
}

/// What the checks saw over every sampled view.
#[derive(Default)]
pub(crate) struct ViewChecks {
    /// Views checked.
    pub(crate) views: u64,
    /// Point reads checked.
    pub(crate) reads: u64,
    /// Of those, reads that found a value.
    pub(crate) hits: u64,
    /// Most events a view replayed.
    pub(crate) events_replayed_max: u64,
    events_replayed_sum: u64,
    layers_sum: u64,
}

impl ViewChecks {
    /// Checks one Helios view against the reference answers and the replay bound.
    pub(crate) fn check(
        &mut self,
        config: &Config,
        workload: &KvWorkload,
        view: &View,
        sample: &Sample,
    ) -> Result<()> {
        let report = view.report();
        if report.events_replayed > config.replay_max() {
            return Err(format!(
                "the view at version {} replayed {} events after sync_checkpoints, more than \
                 fanout - 1 = {}; layers: {report}",
                sample.version,
                report.events_replayed,
                config.replay_max()
            )
            .into());
        }
        self.views += 1;
        self.events_replayed_max = self.events_replayed_max.max(report.events_replayed);
        self.events_replayed_sum += report.events_replayed;
        self.layers_sum += report.layers.len() as u64;
        for (key, &number) in sample.keys.iter().zip(&sample.key_numbers) {
            let got = view.get(key);
            let expected = workload.value_at(number, sample.version);
            if got != expected {
                return Err(format!(
                    "Helios view at version {}: key {} is {}, the workload's history says {}",
                    sample.version,
                    String::from_utf8_lossy(key),
                    show(got),
                    show(expected)
                )
                .into());
            }
            self.reads += 1;
            self.hits += u64::from(got.is_some());
        }
        Ok(())
    }

    pub(crate) fn mean_events_replayed(&self) -> f64 {
        self.events_replayed_sum as f64 / self.views.max(1) as f64
    }

    pub(crate) fn mean_layers(&self) -> f64 {
        self.layers_sum as f64 / self.views.max(1) as f64
    }
}

/// A value read, for an error message.
fn show(value: Option<&[u8]>) -> String {
    value.map_or_else(
        || "absent".to_owned(),
        |v| format!("{:?}", String::from_utf8_lossy(v)),
    )
}

/// One timed Helios sample: the view and its point reads inside the clock, the checks after.
/// Returns the time inside the clock.
pub(crate) fn helios_sample(
    engine: &Engine,
    config: &Config,
    workload: &KvWorkload,
    sample: &Sample,
    latencies: &mut Latencies,
    checks: &mut ViewChecks,
    breakdown: Option<&mut Breakdown>,
) -> Result<Duration> {
    let start = Instant::now();
    let view = engine.view(STREAM, Version(sample.version))?;
    let viewed = Instant::now();
    for key in &sample.keys {
        black_box(view.get(key));
    }
    let end = Instant::now();
    latencies.record(end - start);
    if let Some(breakdown) = breakdown {
        breakdown.view.record(viewed - start);
        breakdown.reads.record(end - viewed);
        if view.report().events_replayed == 0 {
            breakdown.no_replay.record(end - start);
        } else {
            breakdown.replay.record(end - start);
        }
        if breakdown
            .slowest
            .as_ref()
            .is_none_or(|(slowest, ..)| end - start > *slowest)
        {
            let index = breakdown.view.count() - 1;
            let report = view.report().to_string().replace('\n', " ");
            breakdown.slowest = Some((end - start, index, sample.version, report));
        }
    }
    checks.check(config, workload, &view, sample)?;
    Ok(end - start)
}

/// One timed peer sample (`state_at` builds the peer's state), checked against a Helios view
/// at the same version. Returns the point reads checked.
pub(crate) fn peer_sample(
    engine: &Engine,
    workload: &KvWorkload,
    sample: &Sample,
    latencies: &mut Latencies,
    state_at: impl FnOnce(u64) -> Result<State>,
) -> Result<u64> {
    let start = Instant::now();
    let state = state_at(sample.version)?;
    for key in &sample.keys {
        black_box(state.get(key.as_slice()));
    }
    latencies.record(start.elapsed());
    let view = engine.view(STREAM, Version(sample.version))?;
    for (key, &number) in sample.keys.iter().zip(&sample.key_numbers) {
        let peer = state.get(key.as_slice()).map(Vec::as_slice);
        let helios = view.get(key);
        if peer != helios || peer != workload.value_at(number, sample.version) {
            return Err(format!(
                "at version {} key {}: the peer read {}, Helios {}, the history says {}",
                sample.version,
                String::from_utf8_lossy(key),
                show(peer),
                show(helios),
                show(workload.value_at(number, sample.version))
            )
            .into());
        }
    }
    Ok(sample.keys.len() as u64)
}
