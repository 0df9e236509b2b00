//! The measurement: warm rounds of Helios and the two peers interleaved, with the floors after
//! each warm Helios sample, then the cold samples, everything checked ([`measure`]); and what
//! it gathered ([`Measured`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use helios::{Engine, Version};
use helios_benches::report::mib;
use helios_benches::{ThreadIo, evict_files_under};
use helios_peers::replay;
use helios_peers::snapshot::SnapshotPeer;
use helios_workloads::Rng;
use helios_workloads::kv::KvWorkload;
use helios_workloads::latency::Latencies;

use crate::floors::{DiskFloor, MemoryFloor, NoiseFloor};
use crate::samples::{Sample, ViewChecks, helios_sample, peer_sample};
use crate::{Config, ROUND_HEAD, Result, STREAM, WARMUP_VIEWS};

/// Bytes per block of `ru_inblock`, and per page.
pub(crate) const BLOCK_BYTES: f64 = 512.0;
pub(crate) const PAGE_BYTES: f64 = 4096.0;

/// The warm workloads, interleaved in rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Warm {
    Helios,
    Snapshots,
    Replay,
}

/// Everything measured, for the report.
pub(crate) struct Measured {
    pub(crate) helios_warm: Latencies,
    /// [`NoiseFloor`] samples, one after each warm Helios sample.
    pub(crate) floor: Latencies,
    /// [`MemoryFloor`] samples over 64 MiB, one after each [`NoiseFloor`] sample.
    pub(crate) memory_floor: Latencies,
    /// The loads of one [`MemoryFloor`] sample.
    pub(crate) memory_floor_loads: u64,
    /// [`MemoryFloor`] samples over as many bytes as the checkpoint files, one after each
    /// `memory_floor` sample.
    pub(crate) wide_floor: Latencies,
    /// The loads of one `wide_floor` sample, and the bytes it runs over.
    pub(crate) wide_floor_loads: u64,
    pub(crate) wide_floor_bytes: u64,
    /// [`MemoryFloor::over_file`] samples over as many bytes, one after each `wide_floor`
    /// sample, and their loads.
    pub(crate) file_floor: Latencies,
    pub(crate) file_floor_loads: u64,
    pub(crate) warm_breakdown: Breakdown,
    pub(crate) helios_cold: Latencies,
    pub(crate) snapshots: Latencies,
    pub(crate) replay: Latencies,
    pub(crate) checks: ViewChecks,
    pub(crate) peer_reads_checked: u64,
    pub(crate) cold: ColdIo,
    /// Entries (values and tombstones) of every checkpoint, by level and version, from the
    /// warm-up's views.
    pub(crate) layer_entries: BTreeMap<(u32, u64), usize>,
}

/// Page-cache effects of the cold samples.
#[derive(Default)]
pub(crate) struct ColdIo {
    pub(crate) samples: u64,
    pub(crate) major_faults_sum: i64,
    pub(crate) major_faults_max: i64,
    pub(crate) blocks_read_sum: i64,
    pub(crate) blocks_read_max: i64,
    /// `Engine::evict_cached_pages`.
    pub(crate) evict_engine: Latencies,
    /// `posix_fadvise(DONTNEED)` of every file of the store, after it.
    pub(crate) evict_files: Latencies,
    pub(crate) files_advised: u64,
    /// [`DiskFloor`] samples, one after each cold Helios sample, and the blocks they read.
    pub(crate) disk_floor: Latencies,
    pub(crate) disk_floor_blocks_read_sum: i64,
}

impl ColdIo {
    pub(crate) fn mean_major_faults(&self) -> f64 {
        self.major_faults_sum as f64 / self.samples.max(1) as f64
    }

    pub(crate) fn mean_pages_read(&self) -> f64 {
        self.blocks_read_sum as f64 * BLOCK_BYTES / PAGE_BYTES / self.samples.max(1) as f64
    }

    pub(crate) fn disk_floor_mean_pages_read(&self) -> f64 {
        self.disk_floor_blocks_read_sum as f64 * BLOCK_BYTES
            / PAGE_BYTES
            / self.disk_floor.count().max(1) as f64
    }
}

/// Where the time of the warm Helios samples goes.
pub(crate) struct Breakdown {
    /// `Engine::view` alone.
    pub(crate) view: Latencies,
    /// The point reads on the view alone.
    pub(crate) reads: Latencies,
    /// Whole samples whose view replayed no event (versions that are multiples of the fanout).
    pub(crate) no_replay: Latencies,
    /// Whole samples whose view replayed at least one event.
    pub(crate) replay: Latencies,
    /// Page faults the thread took over the warm Helios rounds (their floors included), counted
    /// per round rather than per sample so that no system call sits next to a sample's clock.
    /// A minor fault is a page of a checkpoint or segment in the page cache but not yet in
    /// this process's page tables.
    pub(crate) faults: ThreadIo,
    /// Whole samples among the first [`ROUND_HEAD`] of their round (right after the peers'
    /// rounds, which fill the CPU caches with their own data).
    pub(crate) round_head: Latencies,
    /// The other whole samples.
    pub(crate) round_rest: Latencies,
    /// The slowest sample: its time, its index among the warm samples, its version and what
    /// its view reported.
    pub(crate) slowest: Option<(Duration, u64, u64, String)>,
}

impl Breakdown {
    pub(crate) fn new() -> Breakdown {
        Breakdown {
            view: Latencies::new(),
            reads: Latencies::new(),
            no_replay: Latencies::new(),
            replay: Latencies::new(),
            faults: ThreadIo::default(),
            round_head: Latencies::new(),
            round_rest: Latencies::new(),
            slowest: None,
        }
    }
}

/// Splits `total` samples into `rounds` near-equal parts; part `round`.
fn share(total: u64, rounds: u64, round: u64) -> u64 {
    total / rounds + u64::from(round < total % rounds)
}

/// Warms up, calibrates the floors, runs the warm rounds and then the cold samples.
pub(crate) fn measure(
    engine: &Engine,
    config: &Config,
    workload: &KvWorkload,
    snapshots: &SnapshotPeer,
) -> Result<Measured> {
    let mut rng = Rng::new(config.seed ^ 0x5ead_5ead);
    let mut measured = Measured {
        helios_warm: Latencies::new(),
        floor: Latencies::new(),
        memory_floor: Latencies::new(),
        memory_floor_loads: 0,
        wide_floor: Latencies::new(),
        wide_floor_loads: 0,
        wide_floor_bytes: 0,
        file_floor: Latencies::new(),
        file_floor_loads: 0,
        warm_breakdown: Breakdown::new(),
        helios_cold: Latencies::new(),
        snapshots: Latencies::new(),
        replay: Latencies::new(),
        checks: ViewChecks::default(),
        peer_reads_checked: 0,
        cold: ColdIo::default(),
        layer_entries: BTreeMap::new(),
    };

    // Warm-up: map checkpoints, fault their pages in, read the snapshot files once.
    snapshots.warm_page_cache()?;
    // A view at every multiple of the first interval maps every checkpoint once, as a long-running
    // reader has (the map cache holds all of them unless --maps-max is below the file count):
    // the warm samples then measure reads, not first maps. The cold samples include first maps.
    let started = Instant::now();
    let mut first_views = 0u64;
    let mut version = config.first;
    while version <= workload.events_count() {
        let view = engine.view(STREAM, Version(version))?;
        for layer in &view.report().layers {
            measured
                .layer_entries
                .insert((layer.info.level, layer.info.version), layer.entries_count);
        }
        first_views += 1;
        version += config.first;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "warm-up: {first_views} views at multiples of the fanout mapped every checkpoint in \
         {:.2} s ({:.1} us per view)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / first_views.max(1) as f64
    );
    let mut warmup = Latencies::new();
    for _ in 0..WARMUP_VIEWS.min(config.warm_samples) {
        let sample = Sample::draw(&mut rng, workload, config.reads);
        helios_sample(
            engine,
            config,
            workload,
            &sample,
            &mut warmup,
            &mut measured.checks,
            None,
        )?;
    }
    eprintln!("warm-up: {}", warmup.summary());
    let floor_work = NoiseFloor::calibrate(warmup.summary().median_us);
    // Each floor has its own generator, so that the samples drawn below are the same as
    // without them.
    let median = warmup.summary().median_us;
    let mut memory_floor = MemoryFloor::new(
        &mut Rng::new(config.seed ^ 0xf100_f100),
        MemoryFloor::SMALL_BYTES,
    )?
    .calibrated(median);
    let wide_bytes: u64 = engine
        .checkpoints()
        .of_stream(STREAM)?
        .iter()
        .map(|c| c.len_bytes)
        .sum::<u64>()
        .max(MemoryFloor::SMALL_BYTES);
    let mut wide_floor =
        MemoryFloor::new(&mut Rng::new(config.seed ^ 0x00f1_00f1), wide_bytes)?.calibrated(median);
    let mut file_floor =
        MemoryFloor::over_file(&mut Rng::new(config.seed ^ 0x0f11_0f11), wide_bytes)?
            .calibrated(median);
    measured.memory_floor_loads = memory_floor.loads;
    measured.wide_floor_loads = wide_floor.loads;
    measured.wide_floor_bytes = wide_floor.bytes();
    measured.file_floor_loads = file_floor.loads;
    eprintln!(
        "noise floors: {} rounds of arithmetic, {} dependent loads at random over 64 MiB, \
         {} over {:.0} MiB (the checkpoint files' size) of heap, or {} over a file map of that \
         size take about the warm-up median",
        floor_work.rounds,
        memory_floor.loads,
        wide_floor.loads,
        mib(wide_floor.bytes()),
        file_floor.loads,
    );

    let order = [Warm::Helios, Warm::Snapshots, Warm::Replay];
    for round in 0..config.rounds {
        for turn in 0..order.len() {
            let which = order[(turn + usize::try_from(round)?) % order.len()];
            let started = Instant::now();
            // This round's Helios samples alone: whether a noisy spell hit one round or all.
            let mut this_round = [(); 4].map(|()| Latencies::new());
            match which {
                Warm::Helios => {
                    let io_before = ThreadIo::now()?;
                    for index in 0..share(config.warm_samples, config.rounds, round) {
                        let sample = Sample::draw(&mut rng, workload, config.reads);
                        let time = helios_sample(
                            engine,
                            config,
                            workload,
                            &sample,
                            &mut measured.helios_warm,
                            &mut measured.checks,
                            Some(&mut measured.warm_breakdown),
                        )?;
                        this_round[0].record(time);
                        let breakdown = &mut measured.warm_breakdown;
                        if index < ROUND_HEAD {
                            breakdown.round_head.record(time);
                        } else {
                            breakdown.round_rest.record(time);
                        }
                        measured.floor.time(|| floor_work.run());
                        for (floor, all, this) in [
                            (&mut memory_floor, &mut measured.memory_floor, 1),
                            (&mut wide_floor, &mut measured.wide_floor, 2),
                            (&mut file_floor, &mut measured.file_floor, 3),
                        ] {
                            let started = Instant::now();
                            floor.run();
                            let time = started.elapsed();
                            all.record(time);
                            this_round[this].record(time);
                        }
                    }
                    let io = ThreadIo::now()?.since(io_before);
                    let faults = &mut measured.warm_breakdown.faults;
                    *faults = faults.plus(io);
                }
                Warm::Snapshots => {
                    for _ in 0..share(config.snapshot_samples, config.rounds, round) {
                        let sample = Sample::draw(&mut rng, workload, config.reads);
                        measured.peer_reads_checked +=
                            peer_sample(engine, workload, &sample, &mut measured.snapshots, |v| {
                                Ok(snapshots.state_at(workload, v)?)
                            })?;
                    }
                }
                Warm::Replay => {
                    for _ in 0..share(config.replay_samples, config.rounds, round) {
                        let sample = Sample::draw(&mut rng, workload, config.reads);
                        measured.peer_reads_checked +=
                            peer_sample(engine, workload, &sample, &mut measured.replay, |v| {
                                Ok(replay::kv_state_at(workload, v))
                            })?;
                    }
                }
            }
            let helios = if which == Warm::Helios {
                let [helios, small, wide, file] = this_round.each_ref().map(Latencies::summary);
                format!(
                    " (n={}, median / p99 us: Helios {:.1} / {:.1}, memory floors: 64 MiB \
                     {:.1} / {:.1}, wide {:.1} / {:.1}, file map {:.1} / {:.1})",
                    helios.count,
                    helios.median_us,
                    helios.p99_us,
                    small.median_us,
                    small.p99_us,
                    wide.median_us,
                    wide.p99_us,
                    file.median_us,
                    file.p99_us
                )
            } else {
                String::new()
            };
            eprintln!(
                "round {}/{}: {which:?} took {:.2} s{helios}",
                round + 1,
                config.rounds,
                started.elapsed().as_secs_f64()
            );
        }
    }

    // Cold: empty the page cache of the whole store before every sample.
    let disk_floor = DiskFloor::new()?;
    let mut disk_floor_rng = Rng::new(config.seed ^ 0xd15c_d15c);
    let started = Instant::now();
    for _ in 0..config.cold_samples {
        let sample = Sample::draw(&mut rng, workload, 1);
        measured
            .cold
            .evict_engine
            .time(|| engine.evict_cached_pages())?;
        measured.cold.files_advised = measured
            .cold
            .evict_files
            .time(|| evict_files_under(engine.inspect().dir()))?;
        let before = ThreadIo::now()?;
        helios_sample(
            engine,
            config,
            workload,
            &sample,
            &mut measured.helios_cold,
            &mut measured.checks,
            None,
        )?;
        let io = ThreadIo::now()?.since(before);
        let cold = &mut measured.cold;
        cold.samples += 1;
        cold.major_faults_sum += io.major_faults;
        cold.major_faults_max = cold.major_faults_max.max(io.major_faults);
        cold.blocks_read_sum += io.blocks_read;
        cold.blocks_read_max = cold.blocks_read_max.max(io.blocks_read);
        let io = disk_floor.sample(&mut disk_floor_rng, &mut cold.disk_floor)?;
        cold.disk_floor_blocks_read_sum += io.blocks_read;
    }
    eprintln!(
        "cold: {} samples took {:.2} s",
        config.cold_samples,
        started.elapsed().as_secs_f64()
    );
    Ok(measured)
}
