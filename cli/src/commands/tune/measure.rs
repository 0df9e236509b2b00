//! Measuring one checkpoint setting: a fresh scratch store with that setting, the workload
//! appended to it, every checkpoint built, then views at sampled versions timed.
//!
//! What the clock covers, per sample: `Engine::view(stream, version)` plus `reads` point reads
//! (`View::get`) of the stream's keys; dropping the view and checking the answers are outside
//! it. The clock is wall time, or with [`Clock::ThreadCpu`] the thread's CPU time. The same samples run twice: a first, untimed pass maps (and validates) the checkpoint
//! files they need, then the timed pass. So the numbers are warm reads (every file was just
//! written and is in the page cache) of a steady state: a file is validated again in the timed
//! pass only if the engine's map cache (`checkpoint_maps_max`) dropped it in between.
//!
//! Invariants checked here (a failure is an error, never a silent number):
//! - both passes read the same values (a digest per sample), and `tune` compares the digests
//!   of every setting with the first one's: the checkpoint setting must not change any answer;
//! - no stream stalled (every event was accepted by the state machine).

use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use helios::{Durability, Engine, LevelPolicy, LevelStats, PolicyError, Version, View};
use helios_workloads::Rng;

use super::workload::Workload;
use crate::error::CliError;

/// Size of each scratch store's log segments: big enough that the default workloads fit in
/// one, small enough that preallocating it (zeros, then `fdatasync`) costs little per setting.
pub const SCRATCH_SEGMENT_SIZE_BYTES: u64 = 16 << 20;

/// Longest view latency recorded exactly (longer ones are recorded as this): 60 s.
const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// What the view latency is measured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Clock {
    /// Wall-clock time (`Instant`): the latency a caller sees, including any time the thread
    /// waited for a CPU while other processes ran.
    Wall,
    /// CPU time of the measuring thread (`CLOCK_THREAD_CPUTIME_ID`, user and system): what the
    /// view itself costs, without the waits a busy machine adds; warm views do no I/O, so on
    /// an idle machine the two agree. Reading this clock is a system call, included in every
    /// sample.
    ThreadCpu,
}

/// A running measurement of one sample.
enum Stopwatch {
    Wall(Instant),
    ThreadCpu(Duration),
}

impl Clock {
    fn start(self) -> Result<Stopwatch, CliError> {
        Ok(match self {
            Clock::Wall => Stopwatch::Wall(Instant::now()),
            Clock::ThreadCpu => Stopwatch::ThreadCpu(thread_cpu_time()?),
        })
    }
}

impl Stopwatch {
    /// Nanoseconds since the start, at least 1.
    fn elapsed_ns(&self) -> Result<u64, CliError> {
        let elapsed = match self {
            Stopwatch::Wall(started) => started.elapsed(),
            Stopwatch::ThreadCpu(started) => thread_cpu_time()?.saturating_sub(*started),
        };
        Ok(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1))
    }
}

/// The calling thread's CPU time so far.
fn thread_cpu_time() -> Result<Duration, CliError> {
    let now =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).map_err(|errno| {
            CliError::Io {
                op: "read the thread's CPU clock",
                source: errno.into(),
            }
        })?;
    Ok(Duration::from(now))
}

/// One point of the sweep: a level policy and the size of the map cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Setting {
    /// Each level above the first is `fanout` times coarser than the one below.
    pub fanout: u64,
    /// Checkpoint levels; the top one holds full states.
    pub levels: u32,
    /// `Options::checkpoint_maps_max`: checkpoints kept open (validated, indexed) at once.
    pub maps_max: usize,
    /// Events between two level-1 checkpoints (`LevelPolicy::with_first`); `fanout` for the
    /// classic policy.
    pub first: u64,
}

impl Setting {
    /// The level policy.
    pub fn policy(&self) -> Result<LevelPolicy, PolicyError> {
        LevelPolicy::with_first(self.first, self.fanout, self.levels)
    }

    /// Whether this is the engine's default: `LevelPolicy::default()` and the default map
    /// cache.
    pub fn is_engine_default(&self) -> bool {
        self.policy().is_ok_and(|p| p == LevelPolicy::default())
            && self.maps_max == helios::DEFAULT_CHECKPOINT_MAPS_MAX
    }

    /// A short name: `10x3` (fanout 10, 3 levels), `10:3x9` with a first interval of its own
    /// (every 10 events, then fanout 3, 9 levels), and `/m4096` after it when the sweep varies
    /// the map cache too.
    pub fn label(&self, with_maps: bool) -> String {
        let mut label = if self.first == self.fanout {
            format!("{}x{}", self.fanout, self.levels)
        } else {
            format!("{}:{}x{}", self.first, self.fanout, self.levels)
        };
        if with_maps {
            label.push_str(&format!("/m{}", self.maps_max));
        }
        label
    }
}

/// One sampled read: a version of a stream and the keys read from its state there.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Index into `Workload::streams`.
    pub stream: usize,
    /// The version, from 1 to the stream's head.
    pub version: u64,
    /// Indices into the stream's keys.
    pub keys: Vec<usize>,
}

/// `count` samples: versions uniform over all events of all streams (so a stream is read in
/// proportion to its length), each with `reads` keys drawn from those the stream writes.
pub fn samples(workload: &Workload, count: u64, reads: u64, seed: u64) -> Vec<Sample> {
    let mut rng = Rng::new(seed ^ 0x7475_6e65_7361_6d70);
    let total = workload.events_count();
    // Cumulative event counts: stream i holds the global events ends[i - 1] .. ends[i].
    let ends: Vec<u64> = workload
        .streams
        .iter()
        .scan(0u64, |end, s| {
            *end += s.events_count;
            Some(*end)
        })
        .collect();
    (0..count)
        .map(|_| {
            let event = rng.below(total);
            let stream = ends.partition_point(|&end| end <= event);
            let first = if stream == 0 { 0 } else { ends[stream - 1] };
            let keys = workload.streams[stream].keys.len();
            Sample {
                stream,
                version: event - first + 1,
                // A key-value event always names a key, so a stream with events has keys.
                keys: if keys == 0 {
                    Vec::new()
                } else {
                    (0..reads).map(|_| rng.index(keys)).collect()
                },
            }
        })
        .collect()
}

/// What one setting measured.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The setting.
    pub setting: Setting,
    /// View latency percentiles, maximum and mean, in nanoseconds.
    pub view_p50_ns: u64,
    /// 99th percentile.
    pub view_p99_ns: u64,
    /// 99.9th percentile.
    pub view_p999_ns: u64,
    /// Slowest sample.
    pub view_max_ns: u64,
    /// Mean.
    pub view_mean_ns: f64,
    /// Events replayed per view, mean.
    pub replayed_mean: f64,
    /// Events replayed per view, most.
    pub replayed_max: u64,
    /// Samples that replayed more than `first - 1` events, which the engine promises not to
    /// do once its checkpoints are built.
    pub replay_bound_exceeded: u64,
    /// Checkpoints.
    pub checkpoints: u64,
    /// Their bytes.
    pub checkpoint_bytes: u64,
    /// Files and bytes per level, index 0 for level 1.
    pub by_level: Vec<LevelStats>,
    /// Bytes the log takes through its last record.
    pub log_bytes: u64,
    /// Wall time of `Engine::sync_checkpoints` after the log was synced: building every
    /// checkpoint on the calling thread.
    pub build: Duration,
    /// Wall time of appending the workload (normal durability) and syncing it.
    pub load: Duration,
    /// Per sample, a digest of the values read.
    pub digests: Vec<u64>,
}

/// Measures `setting` on `workload` in a fresh store under `scratch`, which is removed
/// afterwards. `phase` is told what is being done, for a progress bar.
pub fn measure(
    workload: &Workload,
    samples: &[Sample],
    setting: Setting,
    scratch: &Path,
    clock: Clock,
    phase: &mut dyn FnMut(&'static str),
) -> Result<Measured, CliError> {
    let policy = setting
        .policy()
        .map_err(|e| super::TuneError::Setting(setting.label(false), e.to_string()))?;
    let dir = tempfile::Builder::new()
        .prefix("helios-tune-")
        .tempdir_in(scratch)
        .map_err(CliError::io("create a scratch store directory"))?;
    let builder = Engine::builder(dir.path()).options({
        let mut options = helios::Options::default();
        options.checkpoints.policy = Some(policy);
        options.checkpoints.maps_max = setting.maps_max;
        options.log.segment_size_bytes = SCRATCH_SEGMENT_SIZE_BYTES;
        options.background_threads = false;
        options
    });
    let engine = workload.machine.configure(builder).open()?;

    phase("appending");
    let started = Instant::now();
    for batch in &workload.batches {
        let name = &workload.streams[batch.stream].name;
        engine.append(name, &batch.events, Durability::Normal, None)?;
    }
    engine.sync()?;
    let load = started.elapsed();
    for stream in &workload.streams {
        let head = engine.head(&stream.name).unwrap_or(Version::ZERO);
        if head != Version(stream.events_count) {
            return Err(CliError::WorkloadCheck {
                stream: stream.name.clone(),
                reason: format!("appended {} events, head is {head}", stream.events_count),
            });
        }
    }

    phase("building checkpoints");
    let started = Instant::now();
    let stats = engine.checkpoints().sync()?;
    let build = started.elapsed();
    if let Some(stalled) = stats.stalled.first() {
        return Err(CliError::WorkloadCheck {
            stream: stalled.stream.clone(),
            reason: format!(
                "the state machine refused event {}: {}",
                stalled.version, stalled.reason
            ),
        });
    }
    let log_bytes = log_bytes(&engine)?;

    phase("warming up");
    let mut digests = Vec::with_capacity(samples.len());
    for sample in samples {
        let stream = &workload.streams[sample.stream];
        let view = engine.view(&stream.name, Version(sample.version))?;
        digests.push(digest(&view, &stream.keys, &sample.keys));
    }

    phase("timing views");
    let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, 3)
        .map_err(|e| CliError::Histogram(e.to_string()))?;
    let mut replayed_total = 0u64;
    let mut replayed_max = 0u64;
    let mut replay_bound_exceeded = 0u64;
    for (sample, warm_digest) in samples.iter().zip(&digests) {
        let stream = &workload.streams[sample.stream];
        let version = Version(sample.version);
        let stopwatch = clock.start()?;
        let view = engine.view(&stream.name, version)?;
        for &key in &sample.keys {
            std::hint::black_box(view.get(&stream.keys[key]));
        }
        histogram.saturating_record(stopwatch.elapsed_ns()?);
        let replayed = view.report().events_replayed;
        replayed_total += replayed;
        replayed_max = replayed_max.max(replayed);
        if replayed >= setting.first {
            replay_bound_exceeded += 1;
        }
        if digest(&view, &stream.keys, &sample.keys) != *warm_digest {
            return Err(CliError::WorkloadCheck {
                stream: stream.name.clone(),
                reason: format!(
                    "two views at {version} with setting {} read different values",
                    setting.label(true)
                ),
            });
        }
    }
    engine.close()?;
    drop(dir);

    let count = samples.len().max(1) as f64;
    Ok(Measured {
        setting,
        view_p50_ns: histogram.value_at_quantile(0.5),
        view_p99_ns: histogram.value_at_quantile(0.99),
        view_p999_ns: histogram.value_at_quantile(0.999),
        view_max_ns: histogram.max(),
        view_mean_ns: histogram.mean(),
        replayed_mean: replayed_total as f64 / count,
        replayed_max,
        replay_bound_exceeded,
        checkpoints: stats.count,
        checkpoint_bytes: stats.bytes,
        by_level: stats.by_level,
        log_bytes,
        build,
        load,
        digests,
    })
}

/// Bytes the log takes through its last record: whole sealed segments (their unused tail is
/// less than one append) and the active one up to the end of its last record. Segments are
/// preallocated, so the zeros past the end are not counted.
fn log_bytes(engine: &Engine) -> Result<u64, CliError> {
    let end = engine.inspect().log_end();
    Ok(engine
        .inspect()
        .segments()?
        .iter()
        .map(|s| match s.id.cmp(&end.segment) {
            std::cmp::Ordering::Less => s.file_len_bytes,
            std::cmp::Ordering::Equal => end.offset,
            std::cmp::Ordering::Greater => 0,
        })
        .sum())
}

/// FNV-1a over the values of `reads` in `view`, absent keys included.
fn digest(view: &View, keys: &[Vec<u8>], reads: &[usize]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    };
    for &key in reads {
        match view.get(&keys[key]) {
            Some(value) => {
                eat(&[1]);
                eat(&(value.len() as u64).to_le_bytes());
                eat(value);
            }
            None => eat(&[0]),
        }
    }
    hash
}
