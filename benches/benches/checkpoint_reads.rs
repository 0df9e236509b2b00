//! Random-access state reads: the "Random-access state reads" tables of `docs/PERFORMANCE.md`.
//!
//! One stream of key-value events (`helios_workloads::kv::KvWorkload`: by default a first
//! event that sets all 100,000 keys, so that the state holds 100,000 keys throughout, then
//! 100,000 events over those keys, each changing 1-4 keys to 32-byte values, about 3% of the
//! changes deletes and 3% re-puts of deleted keys, from a fixed seed; `--initial-keys K` sets
//! K keys first instead, and `--initial-keys 0` starts from the empty state) is loaded into
//! Helios,
//! whose checkpoints are then built, and read back at uniformly random versions by Helios and
//! by two peers (`helios-peers`), side by side in this one process:
//!
//! 1. **Helios warm**: `Engine::view(stream, v)` plus 10 point reads of random keys, with the
//!    checkpoint and log files in the page cache.
//! 2. **Helios cold**: `Engine::evict_cached_pages()` and `posix_fadvise(DONTNEED)` on every
//!    file of the store before each sample, then `view` plus 1 point read; the sampling
//!    thread's major page faults and blocks read (`getrusage(RUSAGE_THREAD)`) per sample.
//!    After each, its floor (`DiskFloor`): two dependent 4 KiB `pread`s at random offsets of
//!    a file of its own whose pages were just dropped, the disk's part of a cold sample alone.
//! 3. **Replay from the start**: events `1..=v` folded into a `BTreeMap` from memory (no I/O
//!    at all: the most favourable setting for this peer), then 10 point reads.
//! 4. **Snapshots every 1000 events**: the full state archived with rkyv into one file per
//!    1000 events at build time; a read at `v` reads the file of `v - v % 1000` into an
//!    aligned buffer, validates and deserialises it into an owned `BTreeMap`, replays the
//!    `v % 1000` events after it from memory, then 10 point reads. Files in the page cache.
//!
//! The clock covers building the state and the point reads; checking the answers and
//! dropping the view or map are outside it (dropping a deserialised map costs the snapshot
//! peer more than it costs a view, so this favours the peer). The warm workloads run in
//! rounds with a rotating order, so drift on a shared machine hits all of them alike; the cold
//! one runs last, since it empties the page cache. After each warm Helios sample, four floors
//! calibrated to the warm-up's median are timed: fixed arithmetic, and chains of dependent
//! random loads over 64 MiB and over as many bytes as the checkpoint files, on the heap and
//! over a file map (`MemoryFloor`).
//!
//! Every answer is checked: each Helios point read against the workload's per-key history,
//! each peer sample against a Helios view at the same version, and every sampled view must
//! replay at most `fanout - 1` events. A mismatch ends the run with an error.
//!
//! Run: `cargo bench -p helios-benches --bench checkpoint_reads`, optionally followed by
//! `-- --events N --keys K --initial-keys K --keys-per-event N --samples N --cold-samples N --replay-samples N
//! --snapshot-samples N --fanout F --levels L --snapshot-every N --reads N --rounds R
//! --maps-max N --segment-bytes N --seed S --background-first`, or `-- --quick` for a smoke run (10,000 events
//! and keys, fewer samples).

use std::collections::BTreeMap;
use std::fmt;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use helios::{CheckpointStats, Durability, Engine, LevelPolicy, Version, View};
use helios_benches::{Machine, ThreadIo, evict_files_under, scratch_dir};
use helios_peers::replay;
use helios_peers::snapshot::SnapshotPeer;
use helios_workloads::kv::{KvBatchMachine, KvWorkload, State, VALUE_LEN};
use helios_workloads::latency::{Latencies, Summary};
use helios_workloads::{DEFAULT_SEED, Rng};
use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};

/// Target: Helios warm `view` + 10 point reads, p99, in microseconds.
const TARGET_WARM_P99_US: f64 = 20.0;
/// Target: Helios cold `view` + 1 point read, p99, in microseconds.
const TARGET_COLD_P99_US: f64 = 5_000.0;
/// Target: pages faulted in per cold sample, on average (major faults and pages read from the
/// disk, the larger of the two: one fault can read many pages).
const TARGET_COLD_PAGES: f64 = 8.0;
/// Target: snapshot peer p99 / Helios warm p99.
const TARGET_SPEEDUP_VS_SNAPSHOTS: f64 = 100.0;
/// Target: all checkpoint bytes / the top level's (full states) bytes.
const TARGET_BYTES_VS_FULL: f64 = 1.3;

/// The stream every workload reads.
const STREAM: &str = "state-bench";
/// Events per `Engine::append` call while loading.
const APPEND_BATCH: usize = 1000;
/// Samples at the start of each warm Helios round reported apart (see `Breakdown`).
const ROUND_HEAD: u64 = 250;
/// Untimed Helios views before the warm rounds (at most the warm sample count).
const WARMUP_VIEWS: u64 = 2_000;
/// Bytes per block of `ru_inblock`, and per page.
const BLOCK_BYTES: f64 = 512.0;
const PAGE_BYTES: f64 = 4096.0;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Run sizes, from the command line.
#[derive(Clone, Debug)]
struct Config {
    events: u64,
    keys: u64,
    /// Keys a first event sets (a bulk import), so that the state holds about this many keys
    /// throughout: by default all of `keys`; 0 for no such event (the state grows from empty).
    initial_keys: u64,
    keys_per_event_max: u64,
    warm_samples: u64,
    cold_samples: u64,
    replay_samples: u64,
    snapshot_samples: u64,
    fanout: u64,
    levels: u32,
    snapshot_every: u64,
    reads: usize,
    rounds: u64,
    maps_max: Option<usize>,
    /// `Options::segment_size_bytes`, if not the default (64 MiB): smaller segments put most
    /// of the stream's events in sealed segments.
    segment_bytes: Option<u64>,
    seed: u64,
    /// Build the default engine's checkpoints before the foreground build, not after it.
    background_first: bool,
    /// The options as given (without cargo's `--bench`), for the report.
    args: Vec<String>,
}

impl Config {
    fn from_args() -> Result<Config> {
        let mut config = Config {
            events: 100_000,
            keys: 100_000,
            initial_keys: 0, // Set from `keys` after the options, unless given.
            keys_per_event_max: 4,
            warm_samples: 20_000,
            cold_samples: 1_000,
            replay_samples: 50,
            snapshot_samples: 1_000,
            fanout: 10,
            levels: 3,
            snapshot_every: 1_000,
            reads: 10,
            rounds: 4,
            maps_max: None,
            segment_bytes: None,
            seed: DEFAULT_SEED,
            background_first: false,
            args: Vec::new(),
        };
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect();
        // --quick first, so that explicit sizes override it whatever the order.
        if args.iter().any(|a| a == "--quick") {
            config.events = 10_000;
            config.keys = 10_000;
            config.warm_samples = 2_000;
            config.cold_samples = 50;
            config.replay_samples = 20;
            config.snapshot_samples = 100;
        }
        let mut initial_keys = None;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            if arg == "--quick" {
                continue;
            }
            if arg == "--background-first" {
                config.background_first = true;
                continue;
            }
            let value = rest.next().ok_or_else(|| format!("{arg} needs a value"))?;
            let number = || -> Result<u64> {
                value
                    .parse::<u64>()
                    .map_err(|e| format!("{arg} {value}: {e}").into())
            };
            match arg.as_str() {
                "--events" => config.events = number()?,
                "--keys" => config.keys = number()?,
                "--initial-keys" => initial_keys = Some(number()?),
                "--keys-per-event" => config.keys_per_event_max = number()?,
                "--samples" => config.warm_samples = number()?,
                "--cold-samples" => config.cold_samples = number()?,
                "--replay-samples" => config.replay_samples = number()?,
                "--snapshot-samples" => config.snapshot_samples = number()?,
                "--fanout" => config.fanout = number()?,
                "--levels" => config.levels = u32::try_from(number()?)?,
                "--snapshot-every" => config.snapshot_every = number()?,
                "--reads" => config.reads = usize::try_from(number()?)?,
                "--rounds" => config.rounds = number()?.max(1),
                "--maps-max" => config.maps_max = Some(usize::try_from(number()?)?),
                "--segment-bytes" => config.segment_bytes = Some(number()?),
                "--seed" => config.seed = number()?,
                _ => return Err(format!("unknown option {arg}").into()),
            }
        }
        config.initial_keys = initial_keys.unwrap_or(config.keys);
        if config.events == 0 || config.keys == 0 || config.reads == 0 {
            return Err("--events, --keys and --reads must be positive".into());
        }
        if config.initial_keys > config.keys {
            return Err("--initial-keys must be at most --keys".into());
        }
        config.args = args;
        Ok(config)
    }

    fn policy(&self) -> Result<LevelPolicy> {
        Ok(LevelPolicy::new(self.fanout, self.levels)?)
    }

    /// The longest replay a view may do once the checkpoints are built.
    fn replay_max(&self) -> u64 {
        self.fanout - 1
    }
}

/// Opens an engine with the run's policy and state machine (the built-in `KvMachine` when
/// every event changes one key, else `KvBatchMachine`).
fn open_engine(dir: &std::path::Path, config: &Config, background: bool) -> Result<Engine> {
    let mut builder = Engine::builder(dir)
        .checkpoint_policy(config.policy()?)
        .background_threads(background);
    if config.keys_per_event_max > 1 || config.initial_keys > 0 {
        builder = builder.state_machine(KvBatchMachine);
    }
    if let Some(maps_max) = config.maps_max {
        builder = builder.checkpoint_maps_max(maps_max);
    }
    if let Some(bytes) = config.segment_bytes {
        builder = builder.segment_size_bytes(bytes);
    }
    Ok(builder.open()?)
}

/// Appends every event in batches of [`APPEND_BATCH`], `Durability::Normal`.
fn load(engine: &Engine, workload: &KvWorkload) -> Result<Duration> {
    let start = Instant::now();
    for batch in workload.events().chunks(APPEND_BATCH) {
        engine.append(STREAM, batch, Durability::Normal, None)?;
    }
    Ok(start.elapsed())
}

/// One read sample: a version and the key numbers to read there.
struct Sample {
    version: u64,
    keys: Vec<Vec<u8>>,
    key_numbers: Vec<u64>,
}

impl Sample {
    fn draw(rng: &mut Rng, workload: &KvWorkload, reads: usize) -> Sample {
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
struct ViewChecks {
    views: u64,
    reads: u64,
    hits: u64,
    events_replayed_max: u64,
    events_replayed_sum: u64,
    layers_sum: u64,
}

impl ViewChecks {
    /// Checks one Helios view against the reference answers and the replay bound.
    fn check(
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

    fn mean_events_replayed(&self) -> f64 {
        self.events_replayed_sum as f64 / self.views.max(1) as f64
    }

    fn mean_layers(&self) -> f64 {
        self.layers_sum as f64 / self.views.max(1) as f64
    }
}

fn show(value: Option<&[u8]>) -> String {
    value.map_or_else(
        || "absent".to_owned(),
        |v| format!("{:?}", String::from_utf8_lossy(v)),
    )
}

/// The warm workloads, interleaved in rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Warm {
    Helios,
    Snapshots,
    Replay,
}

/// Fixed CPU work (arithmetic in registers, no memory traffic) that takes about as long as a
/// warm Helios sample, timed right after each one: its spread is what the machine alone adds
/// to a sample of that length (interrupts, the hypervisor taking the CPU away), the floor
/// under Helios's own p99.
#[derive(Clone, Copy, Debug)]
struct NoiseFloor {
    rounds: u64,
}

/// How many units of `work` (called with a count of units) take about `target_us`: the median
/// of nine timed calls of `probe_units` units, scaled. At least 1.
fn units_taking(target_us: f64, probe_units: u64, mut work: impl FnMut(u64)) -> u64 {
    let mut times: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            work(probe_units);
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let us_per_unit = times[times.len() / 2] / probe_units as f64;
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a positive count of a few microseconds of work, far below u64::MAX"
    )]
    let units = (target_us / us_per_unit) as u64;
    units.max(1)
}

impl NoiseFloor {
    /// Finds the rounds that take about `target_us`.
    fn calibrate(target_us: f64) -> NoiseFloor {
        NoiseFloor {
            rounds: units_taking(target_us, 100_000, NoiseFloor::spin),
        }
    }

    fn run(self) {
        NoiseFloor::spin(self.rounds);
    }

    fn spin(rounds: u64) {
        let mut x = black_box(0x9e37_79b9_7f4a_7c15_u64);
        for _ in 0..rounds {
            x = x.rotate_left(5) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        }
        black_box(x);
    }
}

/// Memory work that takes about as long as a warm Helios sample: a chain of dependent loads at
/// random over a buffer far larger than the CPU caches (each load's address is the previous
/// load's value), timed right after each warm Helios sample. A Helios sample is mostly cache
/// misses, so this is its floor for memory-latency noise (other tenants of the host sharing
/// its caches and memory), which the arithmetic [`NoiseFloor`] does not see.
///
/// Three of them run: one over 64 MiB of heap (beyond any last-level cache here), and two as
/// large as the checkpoint files Helios reads from, so that address translation costs what it
/// costs Helios (a VM's page walks grow with the memory a program touches): one on the heap,
/// one over a file written with one call and mapped `MADV_RANDOM`, the kind of memory Helios's
/// checkpoints are (page cache, in 2 MiB folios).
struct MemoryFloor {
    /// A single cycle through every slot (Sattolo's algorithm), so a chase never repeats early.
    next: Slots,
    loads: u64,
    at: u32,
}

/// Where a [`MemoryFloor`]'s slots live.
enum Slots {
    Heap(Vec<u32>),
    /// The slots as native-endian bytes in a mapped file; the directory holding the file goes
    /// when the floor does, after the map.
    File {
        map: memmap2::Mmap,
        _dir: tempfile::TempDir,
    },
}

/// The only `unsafe` of the benches: mapping the file-backed memory floor.
#[expect(
    unsafe_code,
    reason = "memory-mapping a file is unsafe in memmap2's API"
)]
mod floor_map {
    /// Maps `file` read-only.
    pub(super) fn map(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
        // SAFETY: memmap2 requires that the file not be modified or truncated while mapped.
        // `MemoryFloor::over_file` creates the file in a temporary directory of its own, writes
        // it whole and only then maps it; nothing writes it afterwards, and the directory is
        // removed only after the map is dropped (field order in `Slots::File`).
        unsafe { memmap2::Mmap::map(file) }
    }
}

impl MemoryFloor {
    /// Bytes of the small floor's buffer.
    const SMALL_BYTES: u64 = 64 << 20;

    /// A floor over `bytes` of heap memory (rounded down to 4-byte slots).
    fn new(rng: &mut Rng, bytes: u64) -> Result<MemoryFloor> {
        Ok(MemoryFloor {
            next: Slots::Heap(MemoryFloor::cycle(rng, bytes)?),
            loads: 1,
            at: 0,
        })
    }

    /// A floor over a file of `bytes`, written with one call (as checkpoints are), mapped
    /// `MADV_RANDOM` and read through once, so that its pages are in the page cache.
    fn over_file(rng: &mut Rng, bytes: u64) -> Result<MemoryFloor> {
        let bytes: Vec<u8> = MemoryFloor::cycle(rng, bytes)?
            .into_iter()
            .flat_map(u32::to_ne_bytes)
            .collect();
        let dir = helios_benches::scratch_dir("helios-floor-");
        let path = dir.path().join("floor");
        std::fs::write(&path, &bytes)?;
        drop(bytes);
        let map = floor_map::map(&std::fs::File::open(&path)?)?;
        map.advise(memmap2::Advice::Random)?;
        let mut sum = 0u64;
        for page in map.chunks(4096) {
            sum = sum.wrapping_add(u64::from(page[0]));
        }
        black_box(sum);
        Ok(MemoryFloor {
            next: Slots::File { map, _dir: dir },
            loads: 1,
            at: 0,
        })
    }

    /// A random single cycle over `bytes / 4` slots.
    fn cycle(rng: &mut Rng, bytes: u64) -> Result<Vec<u32>> {
        let slots = u32::try_from(bytes / 4)?.max(2);
        let mut next: Vec<u32> = (0..slots).collect();
        for i in (1..next.len()).rev() {
            let j = rng.index(i);
            next.swap(i, j);
        }
        Ok(next)
    }

    /// Bytes of memory the chase runs over.
    fn bytes(&self) -> u64 {
        match &self.next {
            Slots::Heap(next) => 4 * next.len() as u64,
            Slots::File { map, .. } => map.len() as u64,
        }
    }

    /// The floor with its chain length set so that a run takes about `target_us`.
    fn calibrated(mut self, target_us: f64) -> MemoryFloor {
        self.loads = units_taking(target_us, 20_000, |loads| self.chase(loads));
        self
    }

    fn run(&mut self) {
        self.chase(self.loads);
    }

    fn chase(&mut self, loads: u64) {
        let mut at = self.at;
        match &self.next {
            Slots::Heap(next) => {
                for _ in 0..loads {
                    at = next[at as usize];
                }
            }
            Slots::File { map, .. } => {
                for _ in 0..loads {
                    let i = 4 * at as usize;
                    at = map
                        .get(i..i + 4)
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map_or(0, u32::from_ne_bytes);
                }
            }
        }
        self.at = black_box(at);
    }
}

/// The cold samples' floor: the disk alone. A file of its own, written and synced at set-up,
/// read with `POSIX_FADV_RANDOM` (no read-ahead, as Helios's `MADV_RANDOM` maps); before each
/// sample its pages are dropped with `posix_fadvise(DONTNEED)`, then [`DiskFloor::READS`]
/// dependent `pread`s of one 4 KiB page each at random offsets are timed: the page reads of a
/// cold Helios sample (2.1 on average) without anything else. Timed after each cold Helios
/// sample, so that a slow spell of the virtual disk shows in both.
struct DiskFloor {
    file: std::fs::File,
    pages: u64,
    /// The directory holding the file; removed when the floor goes.
    _dir: tempfile::TempDir,
}

impl DiskFloor {
    /// Bytes of the floor's file.
    const BYTES: u64 = 64 << 20;
    /// Page reads per sample.
    const READS: u32 = 2;
    /// Bytes of one read.
    const PAGE: usize = 4096;

    fn new() -> Result<DiskFloor> {
        let dir = scratch_dir("helios-disk-floor-");
        let path = dir.path().join("floor");
        // Real bytes, not a hole: a hole would be read without touching the disk.
        std::fs::write(&path, vec![0xa5u8; usize::try_from(DiskFloor::BYTES)?])?;
        let file = std::fs::File::open(&path)?;
        // Dirty pages are not dropped by DONTNEED: write them out first.
        file.sync_all()?;
        posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_RANDOM)?;
        Ok(DiskFloor {
            file,
            pages: DiskFloor::BYTES / DiskFloor::PAGE as u64,
            _dir: dir,
        })
    }

    /// Drops the file's pages, then times [`DiskFloor::READS`] page reads into `latencies`.
    /// Returns the I/O the reads did, as the cold Helios samples count it.
    fn sample(&self, rng: &mut Rng, latencies: &mut Latencies) -> Result<ThreadIo> {
        use std::os::unix::fs::FileExt;
        posix_fadvise(&self.file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)?;
        let mut page = [0u8; DiskFloor::PAGE];
        let before = ThreadIo::now()?;
        let started = Instant::now();
        let mut at = rng.below(self.pages);
        for _ in 0..DiskFloor::READS {
            self.file
                .read_exact_at(&mut page, at * DiskFloor::PAGE as u64)?;
            // The next offset depends on the bytes read, as a lookup's next page does.
            at = (at ^ u64::from(black_box(page[0]))).wrapping_add(rng.below(self.pages))
                % self.pages;
        }
        latencies.record(started.elapsed());
        Ok(ThreadIo::now()?.since(before))
    }
}

/// Everything measured, for the report.
struct Measured {
    helios_warm: Latencies,
    /// [`NoiseFloor`] samples, one after each warm Helios sample.
    floor: Latencies,
    /// [`MemoryFloor`] samples over 64 MiB, one after each [`NoiseFloor`] sample.
    memory_floor: Latencies,
    /// The loads of one [`MemoryFloor`] sample.
    memory_floor_loads: u64,
    /// [`MemoryFloor`] samples over as many bytes as the checkpoint files, one after each
    /// `memory_floor` sample.
    wide_floor: Latencies,
    /// The loads of one `wide_floor` sample, and the bytes it runs over.
    wide_floor_loads: u64,
    wide_floor_bytes: u64,
    /// [`MemoryFloor::over_file`] samples over as many bytes, one after each `wide_floor`
    /// sample, and their loads.
    file_floor: Latencies,
    file_floor_loads: u64,
    warm_breakdown: Breakdown,
    helios_cold: Latencies,
    snapshots: Latencies,
    replay: Latencies,
    checks: ViewChecks,
    peer_reads_checked: u64,
    cold: ColdIo,
    /// Entries (values and tombstones) of every checkpoint, by level and version, from the
    /// warm-up's views.
    layer_entries: BTreeMap<(u32, u64), usize>,
}

/// Page-cache effects of the cold samples.
#[derive(Default)]
struct ColdIo {
    samples: u64,
    major_faults_sum: i64,
    major_faults_max: i64,
    blocks_read_sum: i64,
    blocks_read_max: i64,
    /// `Engine::evict_cached_pages`.
    evict_engine: Latencies,
    /// `posix_fadvise(DONTNEED)` of every file of the store, after it.
    evict_files: Latencies,
    files_advised: u64,
    /// [`DiskFloor`] samples, one after each cold Helios sample, and the blocks they read.
    disk_floor: Latencies,
    disk_floor_blocks_read_sum: i64,
}

impl ColdIo {
    fn mean_major_faults(&self) -> f64 {
        self.major_faults_sum as f64 / self.samples.max(1) as f64
    }

    fn mean_pages_read(&self) -> f64 {
        self.blocks_read_sum as f64 * BLOCK_BYTES / PAGE_BYTES / self.samples.max(1) as f64
    }

    fn disk_floor_mean_pages_read(&self) -> f64 {
        self.disk_floor_blocks_read_sum as f64 * BLOCK_BYTES
            / PAGE_BYTES
            / self.disk_floor.count().max(1) as f64
    }
}

/// Where the time of the warm Helios samples goes.
struct Breakdown {
    /// `Engine::view` alone.
    view: Latencies,
    /// The point reads on the view alone.
    reads: Latencies,
    /// Whole samples whose view replayed no event (versions that are multiples of the fanout).
    no_replay: Latencies,
    /// Whole samples whose view replayed at least one event.
    replay: Latencies,
    /// Page faults the thread took over the warm Helios rounds (their floors included), counted
    /// per round rather than per sample so that no system call sits next to a sample's clock.
    /// A minor fault is a page of a checkpoint or segment in the page cache but not yet in
    /// this process's page tables.
    faults: ThreadIo,
    /// Whole samples among the first [`ROUND_HEAD`] of their round (right after the peers'
    /// rounds, which fill the CPU caches with their own data).
    round_head: Latencies,
    /// The other whole samples.
    round_rest: Latencies,
    /// The slowest sample: its time, its index among the warm samples, its version and what
    /// its view reported.
    slowest: Option<(Duration, u64, u64, String)>,
}

impl Breakdown {
    fn new() -> Breakdown {
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

/// One timed Helios sample: the view and its point reads inside the clock, the checks after.
/// Returns the time inside the clock.
fn helios_sample(
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
fn peer_sample(
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

/// Splits `total` samples into `rounds` near-equal parts; part `round`.
fn share(total: u64, rounds: u64, round: u64) -> u64 {
    total / rounds + u64::from(round < total % rounds)
}

fn measure(
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
    // A view at every multiple of the fanout maps every checkpoint once, as a long-running
    // reader has (the map cache holds all of them unless --maps-max is below the file count):
    // the warm samples then measure reads, not first maps. The cold samples include first maps.
    let started = Instant::now();
    let mut first_views = 0u64;
    let mut version = config.fanout;
    while version <= workload.events_count() {
        let view = engine.view(STREAM, Version(version))?;
        for layer in &view.report().layers {
            measured
                .layer_entries
                .insert((layer.info.level, layer.info.version), layer.entries_count);
        }
        first_views += 1;
        version += config.fanout;
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
        .checkpoints(STREAM)?
        .iter()
        .map(|c| c.file_len_bytes)
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
            .time(|| evict_files_under(engine.dir()))?;
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

/// Loads the workload into an engine without background threads and times
/// `sync_checkpoints`, which then builds every checkpoint on this thread. Returns the load
/// time, the sync time, the checkpoints written before the sync (0 expected) and the stats.
fn build_foreground(
    dir: &std::path::Path,
    config: &Config,
    workload: &KvWorkload,
) -> Result<(Duration, Duration, u64, CheckpointStats)> {
    let engine = open_engine(dir, config, false)?;
    let load_time = load(&engine, workload)?;
    let written_before = engine.checkpoint_stats().written;
    let started = Instant::now();
    let stats = engine.sync_checkpoints()?;
    let sync = started.elapsed();
    engine.close()?;
    eprintln!(
        "foreground build: load {:.2} s, sync_checkpoints {:.2} s ({} files)",
        load_time.as_secs_f64(),
        sync.as_secs_f64(),
        stats.files
    );
    Ok((load_time, sync, written_before, stats))
}

/// Times of the build phase.
struct Build {
    generate: Duration,
    foreground_load: Duration,
    foreground_sync: Duration,
    foreground_written_before_sync: u64,
    foreground_stats: CheckpointStats,
    background_load: Duration,
    background_written_at_last_append: u64,
    background_sync: Duration,
    snapshots: Duration,
}

/// Bytes the log holds for the workload's events: one record frame per event (header plus
/// payload), segment headers and the stream's creation record not counted.
fn log_frame_bytes(workload: &KvWorkload) -> u64 {
    workload
        .events()
        .iter()
        .map(|e| helios_log::format::frame_len(e.len()) as u64)
        .sum()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 {
        format!("{:.2}x", numerator / denominator)
    } else {
        "-".to_owned()
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "MISS" }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

struct Row<'a> {
    workload: &'a str,
    reads: usize,
    latency: Summary,
}

impl fmt::Display for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.latency;
        write!(
            f,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            self.workload, s.count, self.reads, s.median_us, s.p99_us, s.p999_us, s.max_us
        )
    }
}

fn run() -> Result<()> {
    let config = Config::from_args()?;
    let load_start = load_average();
    let machine = Machine::describe();
    println!(
        "command: cargo bench -p helios-benches --bench checkpoint_reads{}{}",
        if config.args.is_empty() { "" } else { " -- " },
        config.args.join(" ")
    );
    println!("machine: {machine}");
    println!(
        "workload: {}{} events over {} keys, 1-{} keys per event, {}-byte values, seed {:#x}; \
         checkpoints: fanout {}, {} levels{}{}; snapshot peer every {} events",
        match config.initial_keys {
            0 => String::new(),
            keys => format!("one event setting {keys} keys, then "),
        },
        config.events,
        config.keys,
        config.keys_per_event_max,
        VALUE_LEN,
        config.seed,
        config.fanout,
        config.levels,
        config
            .maps_max
            .map_or_else(String::new, |m| format!(", checkpoint_maps_max {m}")),
        config
            .segment_bytes
            .map_or_else(String::new, |b| format!("; log segments of {b} bytes")),
        config.snapshot_every,
    );

    let started = Instant::now();
    let workload = KvWorkload::generate_loaded(
        config.initial_keys,
        config.events,
        config.keys,
        config.keys_per_event_max,
        config.seed,
    );
    let generate = started.elapsed();
    eprintln!(
        "generated {} events ({} changes, {} keys live at the end) in {:.2} s",
        workload.events_count(),
        workload.changes_count(),
        workload.live_keys_at_end(),
        generate.as_secs_f64()
    );

    // Two builds of the same checkpoints: one with the background threads off, where
    // sync_checkpoints builds every checkpoint on this thread, and one in an engine as a user
    // opens it, which is then read. The first build's directory stays until the end: on ext4,
    // creating files right after deleting many is slower (recently freed inodes are skipped).
    let foreground_dir = scratch_dir("helios-bench-state-fg-");
    let dir = scratch_dir("helios-bench-state-");
    let mut foreground = None;
    if !config.background_first {
        foreground = Some(build_foreground(foreground_dir.path(), &config, &workload)?);
    }
    let engine = open_engine(&dir.path().join("helios"), &config, true)?;
    let background_load = load(&engine, &workload)?;
    let background_written_at_last_append = engine.checkpoint_stats().written;
    let started = Instant::now();
    let stats = engine.sync_checkpoints()?;
    let background_sync = started.elapsed();
    eprintln!(
        "background build: load {:.2} s, then sync_checkpoints {:.2} s ({} files)",
        background_load.as_secs_f64(),
        background_sync.as_secs_f64(),
        stats.files
    );
    let (foreground_load, foreground_sync, foreground_written_before_sync, foreground_stats) =
        match foreground {
            Some(built) => built,
            None => build_foreground(foreground_dir.path(), &config, &workload)?,
        };

    let started = Instant::now();
    let snapshots = SnapshotPeer::build(
        &dir.path().join("snapshots"),
        &workload,
        config.snapshot_every,
    )?;
    let build = Build {
        generate,
        foreground_load,
        foreground_sync,
        foreground_written_before_sync,
        foreground_stats,
        background_load,
        background_written_at_last_append,
        background_sync,
        snapshots: started.elapsed(),
    };

    let measured = measure(&engine, &config, &workload, &snapshots)?;
    let stats_after = engine.checkpoint_stats();
    let segments = engine.segments()?;
    let log_end = engine.log_end();
    let checkpoints = engine.checkpoints(STREAM)?;
    let load_end = load_average();

    report(
        &config,
        &workload,
        &build,
        &stats,
        &stats_after,
        &snapshots,
        &measured,
        &segments,
        log_end,
        &checkpoints,
    );
    println!("load average: {load_start} -> {load_end}");
    engine.close()?;
    drop(foreground_dir);
    Ok(())
}

#[expect(
    clippy::too_many_arguments,
    reason = "one report of everything the run measured"
)]
fn report(
    config: &Config,
    workload: &KvWorkload,
    build: &Build,
    stats: &CheckpointStats,
    stats_after: &CheckpointStats,
    snapshots: &SnapshotPeer,
    measured: &Measured,
    segments: &[helios::SegmentInfo],
    log_end: helios::Position,
    checkpoints: &[helios::CheckpointInfo],
) {
    let warm = measured.helios_warm.summary();
    let floor = measured.floor.summary();
    let memory_floor = measured.memory_floor.summary();
    let wide_floor = measured.wide_floor.summary();
    let file_floor = measured.file_floor.summary();
    let wide_mib = mib(measured.wide_floor_bytes);
    let cold = measured.helios_cold.summary();
    let disk_floor = measured.cold.disk_floor.summary();
    let snap = measured.snapshots.summary();
    let replay = measured.replay.summary();
    let reads = config.reads;

    println!();
    println!("Reads at uniformly random versions (latency per sample, in microseconds):");
    println!();
    println!("| workload | samples | point reads | median us | p99 us | p99.9 us | max us |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let every = config.snapshot_every;
    let rows = [
        Row {
            workload: "helios warm: view + point reads",
            reads,
            latency: warm,
        },
        Row {
            workload: "noise floor: fixed CPU work of the warm median, after each warm sample",
            reads: 0,
            latency: floor,
        },
        Row {
            workload: "memory floor: dependent random loads of the warm median over 64 MiB, after each",
            reads: 0,
            latency: memory_floor,
        },
        Row {
            workload: &format!(
                "memory floor over {wide_mib:.0} MiB (the checkpoint files' size), after each"
            ),
            reads: 0,
            latency: wide_floor,
        },
        Row {
            workload: &format!(
                "memory floor over a {wide_mib:.0} MiB file map (page cache, MADV_RANDOM), after each"
            ),
            reads: 0,
            latency: file_floor,
        },
        Row {
            workload: "helios cold: evict, then view + point read",
            reads: 1,
            latency: cold,
        },
        Row {
            workload: &format!(
                "disk floor: evict, then {} dependent random 4 KiB preads of a 64 MiB file, \
                 after each cold sample",
                DiskFloor::READS
            ),
            reads: 0,
            latency: disk_floor,
        },
        Row {
            workload: &format!("peer: rkyv snapshot every {every} events + replay"),
            reads,
            latency: snap,
        },
        Row {
            workload: "peer: replay from the start (in memory)",
            reads,
            latency: replay,
        },
    ];
    for row in &rows {
        println!("{row}");
    }
    println!();
    println!(
        "Ratios: snapshot peer / helios warm: median {}, p99 {}, p99.9 {}; replay peer / \
         helios warm: median {}, p99 {}.",
        ratio(snap.median_us, warm.median_us),
        ratio(snap.p99_us, warm.p99_us),
        ratio(snap.p999_us, warm.p999_us),
        ratio(replay.median_us, warm.median_us),
        ratio(replay.p99_us, warm.p99_us),
    );
    println!(
        "Machine noise, p99 / median: Helios warm {}; noise floor {} (interrupts and the \
         hypervisor: +{:.1} us at p99); memory floor over 64 MiB {} (memory latency shared \
         with the host's other tenants: +{:.1} us at p99, {} loads per sample); over \
         {wide_mib:.0} MiB {} (+{:.1} us at p99, {} loads per sample); over the file map {} \
         (+{:.1} us at p99, {} loads per sample).",
        ratio(warm.p99_us, warm.median_us),
        ratio(floor.p99_us, floor.median_us),
        floor.p99_us - floor.median_us,
        ratio(memory_floor.p99_us, memory_floor.median_us),
        memory_floor.p99_us - memory_floor.median_us,
        measured.memory_floor_loads,
        ratio(wide_floor.p99_us, wide_floor.median_us),
        wide_floor.p99_us - wide_floor.median_us,
        measured.wide_floor_loads,
        ratio(file_floor.p99_us, file_floor.median_us),
        file_floor.p99_us - file_floor.median_us,
        measured.file_floor_loads,
    );
    println!();
    println!("Where the warm Helios time goes (the same samples, split):");
    println!();
    println!("| part | samples | median us | p99 us | p99.9 us | max us |");
    println!("|---|---:|---:|---:|---:|---:|");
    let parts = &measured.warm_breakdown;
    for (part, latencies) in [
        ("Engine::view alone", &parts.view),
        (
            &*format!("{reads} point reads on the view alone"),
            &parts.reads,
        ),
        ("whole sample, view replayed 0 events", &parts.no_replay),
        (
            "whole sample, view replayed 1 or more events",
            &parts.replay,
        ),
        (
            &*format!("whole sample, first {ROUND_HEAD} of its round"),
            &parts.round_head,
        ),
        ("whole sample, the rest of its round", &parts.round_rest),
    ] {
        let s = latencies.summary();
        println!(
            "| {part} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            s.count, s.median_us, s.p99_us, s.p999_us, s.max_us
        );
    }
    println!();
    println!(
        "Page faults during the warm rounds: {} minor, {} major ({:.2} per sample).",
        parts.faults.minor_faults,
        parts.faults.major_faults,
        (parts.faults.minor_faults + parts.faults.major_faults) as f64
            / parts.view.count().max(1) as f64
    );
    if let Some((time, index, version, report)) = &parts.slowest {
        println!();
        println!(
            "Slowest warm sample: {:.1} us, sample {} of {}, version {version}: {report}",
            time.as_secs_f64() * 1e6,
            index + 1,
            parts.view.count()
        );
    }
    println!();
    let checks = &measured.checks;
    println!(
        "Checked: {} Helios views ({} point reads, {:.0}% found), every one against the \
         workload's history; {} peer point reads against Helios at the same version. Events \
         replayed per view: mean {:.2}, max {} (bound: fanout - 1 = {}); layers per view: mean \
         {:.2}.",
        checks.views,
        checks.reads,
        100.0 * checks.hits as f64 / checks.reads.max(1) as f64,
        measured.peer_reads_checked,
        checks.mean_events_replayed(),
        checks.events_replayed_max,
        config.replay_max(),
        checks.mean_layers(),
    );
    let io = &measured.cold;
    let evict_engine = io.evict_engine.summary();
    let evict_files = io.evict_files.summary();
    println!(
        "Cold samples: major page faults per sample mean {:.2} (max {}); read from disk per \
         sample mean {:.1} KiB = {:.1} pages (max {:.1} KiB), from ru_inblock. Before each \
         sample, Engine::evict_cached_pages took median {:.2} ms (p99 {:.2} ms), then \
         posix_fadvise(DONTNEED) of the store's {} files median {:.2} ms (p99 {:.2} ms). \
         The disk floor read {:.1} pages per sample.",
        io.mean_major_faults(),
        io.major_faults_max,
        io.blocks_read_sum as f64 * BLOCK_BYTES / 1024.0 / io.samples.max(1) as f64,
        io.mean_pages_read(),
        io.blocks_read_max as f64 * BLOCK_BYTES / 1024.0,
        evict_engine.median_us / 1000.0,
        evict_engine.p99_us / 1000.0,
        io.files_advised,
        evict_files.median_us / 1000.0,
        evict_files.p99_us / 1000.0,
        io.disk_floor_mean_pages_read(),
    );

    println!();
    println!("Bytes:");
    println!();
    println!("| what | files | bytes | MiB | / helios full checkpoints | / log |");
    println!("|---|---:|---:|---:|---:|---:|");
    let full = stats.by_level.last().map_or(0, |l| l.bytes) as f64;
    let log = log_frame_bytes(workload);
    let line = |what: &str, files: u64, bytes: u64| {
        println!(
            "| {what} | {files} | {bytes} | {:.1} | {} | {} |",
            mib(bytes),
            ratio(bytes as f64, full),
            ratio(bytes as f64, log as f64)
        );
    };
    line(
        "log: record frames of the stream's events",
        segments.len() as u64,
        log,
    );
    line("helios checkpoints, all levels", stats.files, stats.bytes);
    for (index, level) in stats.by_level.iter().enumerate() {
        let number = index + 1;
        let kind = if number == stats.by_level.len() {
            "full states"
        } else if number == 1 {
            "deltas, and the anchor's full state at the first checkpoint"
        } else {
            "deltas"
        };
        let interval = config
            .policy()
            .map_or(0, |p| p.interval(u32::try_from(number).unwrap_or(u32::MAX)));
        line(
            &format!("helios level {number} ({kind}, every {interval} events)"),
            level.files,
            level.bytes,
        );
    }
    let heavy = stats.after_heavy_events;
    if heavy.files > 0 {
        line(
            "helios level 0 (full states after heavy events, such as the import)",
            heavy.files,
            heavy.bytes,
        );
    }
    // The first window (below the first top-level checkpoint) has the anchor's full state on
    // top of its deltas: with a bulk import (--initial-keys) first, one more full state.
    let top = config.policy().map_or(0, |p| p.interval(p.levels()));
    let (steady_files, steady_bytes) = checkpoints
        .iter()
        .filter(|c| c.version.0 >= top)
        .fold((0, 0), |(files, bytes), c| {
            (files + 1, bytes + c.file_len_bytes)
        });
    line(
        &format!("helios checkpoints at versions >= {top} (from the first full state on)"),
        steady_files,
        steady_bytes,
    );
    line(
        &format!("peer: rkyv snapshots every {every} events"),
        snapshots.files_count(),
        snapshots.bytes(),
    );
    println!();
    println!(
        "Log: {} segment(s), {} bytes preallocated; the log ends at offset {} of segment {} \
         (headers and the stream's creation record included). Checkpoint bytes / rkyv \
         snapshots: {}.",
        segments.len(),
        segments.iter().map(|s| s.file_len_bytes).sum::<u64>(),
        log_end.offset,
        log_end.segment.0,
        ratio(stats.bytes as f64, snapshots.bytes() as f64),
    );
    let mut entries_by_level: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for (&(level, _), &entries) in &measured.layer_entries {
        let (files, sum) = entries_by_level.entry(level).or_default();
        *files += 1;
        *sum += entries as u64;
    }
    let top_entries = entries_by_level
        .get(&config.levels)
        .map_or(0, |&(_, sum)| sum);
    let delta_entries: u64 = (1..config.levels)
        .filter_map(|level| entries_by_level.get(&level))
        .map(|&(_, sum)| sum)
        .sum();
    println!(
        "Entries (values and tombstones) per level, from the warm-up's views: {}. Level 1 to {} \
         / level {}: {}, the bytes ratio an encoding with the same cost per entry at every level \
         would reach (the anchor's full state is counted with level 1).",
        entries_by_level
            .iter()
            .map(|(level, (files, sum))| format!("level {level}: {sum} in {files} checkpoints"))
            .collect::<Vec<_>>()
            .join("; "),
        config.levels - 1,
        config.levels,
        ratio((top_entries + delta_entries) as f64, top_entries as f64),
    );
    if *stats_after != *stats {
        println!(
            "Note: the checkpoint stats changed during the reads: {stats_after:?} (after sync: \
             {stats:?})."
        );
    }
    let fg = &build.foreground_stats;
    if fg.files != stats.files || fg.bytes != stats.bytes {
        println!(
            "Note: the foreground build made {} files / {} bytes, the background one {} / {}.",
            fg.files, fg.bytes, stats.files, stats.bytes
        );
    }

    println!();
    println!("Building:");
    println!();
    println!("| step | seconds | events/s | checkpoints written |");
    println!("|---|---:|---:|---:|");
    let events = workload.events_count() as f64;
    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "| generate the workload | {:.2} | - | - |",
        secs(build.generate)
    );
    println!(
        "| background threads off: append (normal, {APPEND_BATCH} per call) | {:.2} | {:.0} | {} |",
        secs(build.foreground_load),
        events / secs(build.foreground_load),
        build.foreground_written_before_sync
    );
    println!(
        "| background threads off: sync_checkpoints builds every checkpoint | {:.2} | {:.0} | {} |",
        secs(build.foreground_sync),
        events / secs(build.foreground_sync),
        fg.written - build.foreground_written_before_sync
    );
    println!(
        "| default engine: append (normal, {APPEND_BATCH} per call), builder in the background | {:.2} | {:.0} | {} |",
        secs(build.background_load),
        events / secs(build.background_load),
        build.background_written_at_last_append
    );
    println!(
        "| default engine: sync_checkpoints right after the last append | {:.2} | - | {} |",
        secs(build.background_sync),
        stats.written - build.background_written_at_last_append
    );
    println!(
        "| peer: fold + rkyv + write + fsync every {every} events | {:.2} | {:.0} | {} |",
        secs(build.snapshots),
        events / secs(build.snapshots),
        snapshots.files_count()
    );
    if stats.damaged > 0 || stats.rebuilt > 0 || !stats.stalled.is_empty() {
        println!(
            "Note: damaged {}, rebuilt {}, stalled streams {:?}.",
            stats.damaged, stats.rebuilt, stats.stalled
        );
    }

    println!();
    println!("Targets:");
    println!();
    println!(
        "- warm view + {reads} point reads p99 < {TARGET_WARM_P99_US} us: {:.1} us -> {} \
         (floors of the same median in the same run, p99: arithmetic {:.1} us, memory over \
         64 MiB {:.1} us, over {wide_mib:.0} MiB {:.1} us, over a file map of that size \
         {:.1} us)",
        warm.p99_us,
        verdict(warm.p99_us < TARGET_WARM_P99_US),
        floor.p99_us,
        memory_floor.p99_us,
        wide_floor.p99_us,
        file_floor.p99_us,
    );
    println!(
        "- cold view + 1 point read p99 < {} ms: {:.2} ms -> {} ({} of {} samples over {0} ms; \
         the disk floor in the same run, {} page reads and nothing else: p99 {:.2} ms, {} \
         samples over {0} ms)",
        TARGET_COLD_P99_US / 1000.0,
        cold.p99_us / 1000.0,
        verdict(cold.p99_us < TARGET_COLD_P99_US),
        measured
            .helios_cold
            .count_above(Duration::from_secs_f64(TARGET_COLD_P99_US / 1e6)),
        cold.count,
        DiskFloor::READS,
        disk_floor.p99_us / 1000.0,
        measured
            .cold
            .disk_floor
            .count_above(Duration::from_secs_f64(TARGET_COLD_P99_US / 1e6)),
    );
    println!(
        "- cold: at most {TARGET_COLD_PAGES} pages faulted in per sample on average: {:.2} \
         major faults, {:.1} pages read from disk (the larger counts) -> {}",
        io.mean_major_faults(),
        io.mean_pages_read(),
        verdict(io.mean_major_faults().max(io.mean_pages_read()) <= TARGET_COLD_PAGES)
    );
    println!(
        "- at least {TARGET_SPEEDUP_VS_SNAPSHOTS}x faster than the snapshot peer at p99, warm: \
         {:.1} us / {:.1} us = {} -> {}",
        snap.p99_us,
        warm.p99_us,
        ratio(snap.p99_us, warm.p99_us),
        verdict(snap.p99_us >= TARGET_SPEEDUP_VS_SNAPSHOTS * warm.p99_us)
    );
    println!(
        "- checkpoint bytes at most {TARGET_BYTES_VS_FULL}x the full checkpoints (every {} \
         events) alone: {} / {} = {} -> {}",
        config.policy().map_or(0, |p| p.interval(config.levels)),
        stats.bytes,
        full,
        ratio(stats.bytes as f64, full),
        verdict(stats.bytes as f64 <= TARGET_BYTES_VS_FULL * full)
    );
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("checkpoint_reads: {error}");
            ExitCode::FAILURE
        }
    }
}
