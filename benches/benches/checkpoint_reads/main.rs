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

mod floors;
mod measure;
mod report;
mod samples;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use helios::{CheckpointStats, Durability, Engine, LevelPolicy};
use helios_benches::{Machine, args, load_average, scratch_dir};
use helios_peers::snapshot::SnapshotPeer;
use helios_workloads::DEFAULT_SEED;
use helios_workloads::kv::{KvBatchMachine, KvWorkload, VALUE_LEN};

use crate::measure::measure;
use crate::report::Report;

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

/// What every step of the run returns: its failures end the run with a message.
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
    /// The finest level's interval (`LevelPolicy::with_first`); the fanout when not given.
    first: u64,
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

/// The command line. Sizes that `--quick` changes are options without a default here, so that
/// an explicit size overrides `--quick` whatever the order.
#[derive(Debug, clap::Args)]
struct Options {
    /// Events after the import. [default: 100000, 10000 with --quick]
    #[arg(long, value_name = "N")]
    events: Option<u64>,
    /// Size of the key space. [default: 100000, 10000 with --quick]
    #[arg(long, value_name = "K")]
    keys: Option<u64>,
    /// Keys a first event sets (a bulk import); 0 for none. [default: --keys]
    #[arg(long, value_name = "K")]
    initial_keys: Option<u64>,
    /// Most keys an event changes (each changes 1 to N).
    #[arg(long = "keys-per-event", value_name = "N", default_value_t = 4)]
    keys_per_event_max: u64,
    /// Warm Helios samples. [default: 20000, 2000 with --quick]
    #[arg(long = "samples", value_name = "N")]
    warm_samples: Option<u64>,
    /// Cold Helios samples. [default: 1000, 50 with --quick]
    #[arg(long, value_name = "N")]
    cold_samples: Option<u64>,
    /// Samples of the replay-from-the-start peer. [default: 50, 20 with --quick]
    #[arg(long, value_name = "N")]
    replay_samples: Option<u64>,
    /// Samples of the snapshot peer. [default: 1000, 100 with --quick]
    #[arg(long, value_name = "N")]
    snapshot_samples: Option<u64>,
    /// Checkpoint fanout.
    #[arg(long, value_name = "F", default_value_t = 10)]
    fanout: u64,
    /// Events between two checkpoints of the finest level, if not the fanout: level i then
    /// checkpoints every first * fanout^(i-1) events. [default: the fanout]
    #[arg(long, value_name = "N")]
    first: Option<u64>,
    /// Checkpoint levels.
    #[arg(long, value_name = "L", default_value_t = 3)]
    levels: u32,
    /// Events between two snapshots of the snapshot peer.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    snapshot_every: u64,
    /// Point reads per warm sample.
    #[arg(long, value_name = "N", default_value_t = 10)]
    reads: usize,
    /// Warm rounds (at least 1).
    #[arg(long, value_name = "R", default_value_t = 4)]
    rounds: u64,
    /// `Options::checkpoint_maps_max`. [default: the engine's]
    #[arg(long, value_name = "N")]
    maps_max: Option<usize>,
    /// `Options::segment_size_bytes`. [default: the engine's, 64 MiB]
    #[arg(long, value_name = "N")]
    segment_bytes: Option<u64>,
    /// Seed of the workload and of the samples.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Build the default engine's checkpoints before the foreground build, not after it.
    #[arg(long)]
    background_first: bool,
    /// A smoke run: 10,000 events and keys, fewer samples.
    #[arg(long)]
    quick: bool,
}

impl Config {
    fn from_args() -> Result<Config> {
        let options: Options = args::parse(
            "checkpoint_reads",
            "Random-access state reads: Helios views warm and cold against replay from the \
             start and snapshots, with their floors, bytes and build times, and the targets.",
        );
        let quick = |default: u64, quick: u64| if options.quick { quick } else { default };
        let keys = options.keys.unwrap_or(quick(100_000, 10_000));
        let config = Config {
            events: options.events.unwrap_or(quick(100_000, 10_000)),
            keys,
            initial_keys: options.initial_keys.unwrap_or(keys),
            keys_per_event_max: options.keys_per_event_max,
            warm_samples: options.warm_samples.unwrap_or(quick(20_000, 2_000)),
            cold_samples: options.cold_samples.unwrap_or(quick(1_000, 50)),
            replay_samples: options.replay_samples.unwrap_or(quick(50, 20)),
            snapshot_samples: options.snapshot_samples.unwrap_or(quick(1_000, 100)),
            first: options.first.unwrap_or(options.fanout),
            fanout: options.fanout,
            levels: options.levels,
            snapshot_every: options.snapshot_every,
            reads: options.reads,
            rounds: options.rounds.max(1),
            maps_max: options.maps_max,
            segment_bytes: options.segment_bytes,
            seed: options.seed,
            background_first: options.background_first,
            args: args::given(),
        };
        if config.events == 0 || config.keys == 0 || config.reads == 0 {
            return Err("--events, --keys and --reads must be positive".into());
        }
        if config.initial_keys > config.keys {
            return Err("--initial-keys must be at most --keys".into());
        }
        Ok(config)
    }

    fn policy(&self) -> Result<LevelPolicy> {
        Ok(LevelPolicy::with_first(
            self.first,
            self.fanout,
            self.levels,
        )?)
    }

    /// The longest replay a view may do once the checkpoints are built.
    fn replay_max(&self) -> u64 {
        self.first - 1
    }
}

/// Opens an engine with the run's policy and state machine (the built-in `KvMachine` when
/// every event changes one key, else `KvBatchMachine`).
fn open_engine(dir: &std::path::Path, config: &Config, background: bool) -> Result<Engine> {
    let mut options = helios::Options::default();
    options.checkpoints.policy = Some(config.policy()?);
    options.background_threads = background;
    if let Some(maps_max) = config.maps_max {
        options.checkpoints.maps_max = maps_max;
    }
    if let Some(bytes) = config.segment_bytes {
        options.log.segment_size_bytes = bytes;
    }
    let mut builder = Engine::builder(dir).options(options);
    if config.keys_per_event_max > 1 || config.initial_keys > 0 {
        builder = builder.state_machine(KvBatchMachine);
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
    let written_before = engine.checkpoints().stats().written;
    let started = Instant::now();
    let stats = engine.checkpoints().sync()?;
    let sync = started.elapsed();
    engine.close()?;
    eprintln!(
        "foreground build: load {:.2} s, sync_checkpoints {:.2} s ({} files)",
        load_time.as_secs_f64(),
        sync.as_secs_f64(),
        stats.count
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

fn run() -> Result<()> {
    let config = Config::from_args()?;
    let load_start = load_average();
    let machine = Machine::describe();
    println!(
        "command: {}",
        args::command_line("checkpoint_reads", &config.args)
    );
    println!("machine: {machine}");
    println!(
        "workload: {}{} events over {} keys, 1-{} keys per event, {}-byte values, seed {:#x}; \
         checkpoints: every {} events, fanout {}, {} levels{}{}; snapshot peer every {} events",
        match config.initial_keys {
            0 => String::new(),
            keys => format!("one event setting {keys} keys, then "),
        },
        config.events,
        config.keys,
        config.keys_per_event_max,
        VALUE_LEN,
        config.seed,
        config.first,
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
    let background_written_at_last_append = engine.checkpoints().stats().written;
    let started = Instant::now();
    let stats = engine.checkpoints().sync()?;
    let background_sync = started.elapsed();
    eprintln!(
        "background build: load {:.2} s, then sync_checkpoints {:.2} s ({} files)",
        background_load.as_secs_f64(),
        background_sync.as_secs_f64(),
        stats.count
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
    let stats_after = engine.checkpoints().stats();
    let segments = engine.inspect().segments()?;
    let log_end = engine.inspect().log_end();
    let checkpoints = engine.checkpoints().of_stream(STREAM)?;
    let load_end = load_average();

    Report {
        config: &config,
        workload: &workload,
        build: &build,
        stats: &stats,
        stats_after: &stats_after,
        snapshots: &snapshots,
        measured: &measured,
        segments: &segments,
        log_end,
        checkpoints: &checkpoints,
    }
    .print();
    println!("load average: {load_start} -> {load_end}");
    engine.close()?;
    drop(foreground_dir);
    Ok(())
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
