//! Many short streams, the workload of classic event sourcing: the "Many streams" tables of
//! `docs/PERFORMANCE.md`. Helios and SQLite (an event table plus a snapshot every 10 events
//! of a stream, `helios_peers::sqlite_event_store`) side by side in one process, fed the same
//! events by `helios_workloads::many_streams::ManyStreams` (by default 100,000 streams of 50
//! key-value events, 8 keys per stream, interleaved at random):
//!
//! 1. **Appends**: the bulk load (Helios: one `Durability::Normal` append per event, then
//!    `Engine::sync`; SQLite: transactions of `load::SQLITE_BULK_TRANSACTION_EVENTS` events),
//!    then the last `--critical` events as a sample of durable appends, one event each,
//!    latency per append (Helios `Durability::Critical`; SQLite one transaction per event).
//! 2. **Checkpoints** built (`engine.checkpoints().sync()`), the engine closed.
//! 3. **Bytes on disk** by class (`helios_benches::disk`), files, the derived ratio (allocated
//!    bytes outside the log's segments / the log's bytes through its last record), per
//!    checkpoint level; SQLite's database, WAL and shared-memory files.
//! 4. **Open**: `Engine::open` in process (`--reopens` times, page cache warm), and whole
//!    `helios get DIR STREAM k0` processes (`--get-runs`, warm), every answer checked.
//! 5. **Latest state** of a random stream and 6. **state at a random version** of a random
//!    stream (`loads`), warm, every answer checked against the workload's reference state.
//!
//! `--keep DIR` puts both stores in DIR and leaves them there; `--reopen-only DIR` measures
//! 3 to 6 on such a store without loading it again (the 10 M event open of the targets).
//! Everything the report prints comes from `report`; `--json` prints it as one JSON object.

mod load;
mod loads;
mod opens;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use helios::{CheckpointStats, Engine};
use helios_benches::disk::{self, Usage};
use helios_benches::{Machine, args, load_average, open_engine, scratch_dir, source_commit};
use helios_peers::sqlite_event_store::SqliteEventStore;
use helios_workloads::many_streams::ManyStreams;
use helios_workloads::{DEFAULT_SEED, Rng, parse_seed};

use crate::load::{BulkLoad, Critical};
use crate::loads::{Loads, Target};
use crate::opens::{GetRuns, Opens};

/// What every step of the run returns: its failures end the run with a message.
type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The Helios store's directory inside the run's directory.
const HELIOS_DIR: &str = "helios";
/// SQLite's database file inside the run's directory.
const SQLITE_FILE: &str = "events.db";
/// Added to the seed for the samples' generator, so that the samples are not the workload's
/// own sequence.
const SAMPLE_SEED_SALT: u64 = 0x7361_6d70_6c65_7321;

/// The command line. Sizes that `--quick` changes have no default here, so that an explicit
/// size overrides `--quick` whatever the order.
#[derive(Debug, clap::Args)]
struct Options {
    /// Streams (50 events each). [default: 100000, 3000 with --quick]
    #[arg(long, value_name = "N")]
    streams: Option<u32>,
    /// Timed loads per store, of each kind (latest state, random version). [default: 5000,
    /// 1000 with --quick]
    #[arg(long, value_name = "N")]
    samples: Option<u64>,
    /// Durable one-event appends per store at the end of the load. [default: 1000, 300 with
    /// --quick]
    #[arg(long, value_name = "N")]
    critical: Option<u64>,
    /// Timed `helios get` processes. [default: 20, 10 with --quick]
    #[arg(long, value_name = "N")]
    get_runs: Option<u64>,
    /// `Engine::open` in process, timed. [default: 5, 3 with --quick]
    #[arg(long, value_name = "N")]
    reopens: Option<u64>,
    /// The `helios` binary `helios get` runs spawn. [default: target/release/helios]
    #[arg(long, value_name = "PATH")]
    helios_bin: Option<PathBuf>,
    /// Measure Helios alone.
    #[arg(long)]
    skip_sqlite: bool,
    /// Create the stores in DIR (which must not hold them yet) and keep them after the run,
    /// for a later `--reopen-only DIR`.
    #[arg(long, value_name = "DIR", conflicts_with = "reopen_only")]
    keep: Option<PathBuf>,
    /// Measure bytes, opens and loads of the stores a `--keep DIR` run left, without loading
    /// them (give the same --streams and --seed).
    #[arg(long, value_name = "DIR")]
    reopen_only: Option<PathBuf>,
    /// Seed of the workload and of the samples.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_SEED, value_parser = parse_seed)]
    seed: u64,
    /// Print the report as one JSON object instead of Markdown tables.
    #[arg(long)]
    json: bool,
    /// A smoke run: 3,000 streams, fewer samples.
    #[arg(long)]
    quick: bool,
}

/// The run's sizes, from the command line.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) workload: ManyStreams,
    pub(crate) samples: u64,
    pub(crate) critical: u64,
    pub(crate) get_runs: u64,
    pub(crate) reopens: u64,
    pub(crate) helios_bin: PathBuf,
    pub(crate) skip_sqlite: bool,
    pub(crate) keep: Option<PathBuf>,
    pub(crate) reopen_only: Option<PathBuf>,
    pub(crate) json: bool,
    /// The options as given (without cargo's `--bench`), for the report.
    pub(crate) args: Vec<String>,
}

impl Config {
    fn from_args() -> Result<Config> {
        let options: Options = args::parse(
            "many_streams",
            "Many short key-value streams against SQLite with snapshots: appends, bytes on \
             disk and files, open time in process and as a `helios get` process, latest-state \
             and random-version loads, and the targets.",
        );
        let quick = |default: u64, quick: u64| if options.quick { quick } else { default };
        let streams = options
            .streams
            .unwrap_or(if options.quick { 3_000 } else { 100_000 });
        let config = Config {
            workload: ManyStreams::new(streams, options.seed),
            samples: options.samples.unwrap_or(quick(5_000, 1_000)),
            critical: options.critical.unwrap_or(quick(1_000, 300)),
            get_runs: options.get_runs.unwrap_or(quick(20, 10)),
            reopens: options.reopens.unwrap_or(quick(5, 3)).max(1),
            helios_bin: options
                .helios_bin
                .unwrap_or_else(helios_benches::cli_bin::default_helios_bin),
            skip_sqlite: options.skip_sqlite,
            keep: options.keep,
            reopen_only: options.reopen_only,
            json: options.json,
            args: args::given(),
        };
        if streams == 0 || config.samples == 0 {
            return Err("--streams and --samples must be positive".into());
        }
        if config.critical >= config.workload.events_count() {
            return Err("--critical must be below the workload's events".into());
        }
        Ok(config)
    }
}

/// What the load phase measured (absent with `--reopen-only`).
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) helios: BulkLoad,
    pub(crate) sqlite: Option<BulkLoad>,
    pub(crate) critical: Critical,
    /// `engine.checkpoints().sync()` after the load, in seconds.
    pub(crate) checkpoint_sync_seconds: f64,
    /// `Engine::close` after it, in milliseconds.
    pub(crate) close_ms: f64,
    /// SQLite snapshot rows written.
    pub(crate) sqlite_snapshots: u64,
}

/// Everything a run measured, for the report.
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) loaded: Option<Loaded>,
    /// The checkpoints as the sync left them (or as the reopened engine found them).
    pub(crate) checkpoints: CheckpointStats,
    /// The closed store's files.
    pub(crate) disk: helios::DiskUsage,
    /// The log's bytes through its last record.
    pub(crate) log_used_bytes: u64,
    /// SQLite's files (database, WAL, shared memory), as the load left them.
    pub(crate) sqlite_disk: Option<Usage>,
    pub(crate) opens: Opens,
    pub(crate) gets: GetRuns,
    pub(crate) latest: Loads,
    pub(crate) at_version: Loads,
}

/// Loads both stores, builds the checkpoints and closes the engine.
fn load_stores(
    config: &Config,
    helios_dir: &Path,
    sqlite: Option<&mut SqliteEventStore>,
    names: &[String],
) -> Result<(Loaded, CheckpointStats)> {
    let workload = &config.workload;
    let bulk = workload.events_count() - config.critical;
    let engine = open_engine(helios_dir);
    let (helios, mut cursor) = load::helios_bulk(&engine, workload, names, bulk)?;
    eprintln!(
        "helios bulk load: {:.0} events/s, sync {:.2} s",
        helios.events_per_s(),
        helios.sync_seconds
    );
    let (sqlite_load, mut sqlite) = match sqlite {
        Some(store) => {
            let load = load::sqlite_bulk(store, workload, names, bulk)?;
            eprintln!("sqlite bulk load: {:.0} events/s", load.events_per_s());
            (Some(load), Some(store))
        }
        None => (None, None),
    };
    let critical = load::critical_sample(
        &engine,
        sqlite.as_deref_mut(),
        &mut cursor,
        names,
        config.critical,
    )?;
    if cursor.remaining() != 0 {
        return Err(format!(
            "{} events of the workload were not appended",
            cursor.remaining()
        )
        .into());
    }
    let started = Instant::now();
    let checkpoints = engine.checkpoints().sync()?;
    let checkpoint_sync_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "checkpoints built: {} in {} packs, {} bytes, in {checkpoint_sync_seconds:.2} s",
        checkpoints.count, checkpoints.packs, checkpoints.bytes
    );
    let started = Instant::now();
    engine.close()?;
    let close_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok((
        Loaded {
            helios,
            sqlite: sqlite_load,
            critical,
            checkpoint_sync_seconds,
            close_ms,
            sqlite_snapshots: sqlite.map_or(0, |s| s.snapshots_written()),
        },
        checkpoints,
    ))
}

/// Runs the measurements on the stores in `dir` (loading them first unless `--reopen-only`).
fn measure(config: &Config, dir: &Path) -> Result<Measured> {
    let workload = &config.workload;
    let names = workload.stream_names();
    let helios_dir = dir.join(HELIOS_DIR);
    let sqlite_path = dir.join(SQLITE_FILE);
    let mut sqlite = match (config.skip_sqlite, &config.reopen_only) {
        (true, _) => None,
        (false, None) => Some(SqliteEventStore::create(&sqlite_path)?),
        (false, Some(_)) => Some(SqliteEventStore::open_for_loads(&sqlite_path)?),
    };
    let mut loaded = None;
    let mut checkpoints = None;
    if config.reopen_only.is_none() {
        let (load, stats) = load_stores(config, &helios_dir, sqlite.as_mut(), &names)?;
        loaded = Some(load);
        checkpoints = Some(stats);
    }
    let disk = helios::disk_usage(&helios_dir)?;
    let sqlite_disk = sqlite
        .as_ref()
        .map(|s| disk::usage_of(&s.files()))
        .transpose()?;

    // Opens with the page cache warm: every file read once first.
    disk::read_into_page_cache(std::slice::from_ref(&helios_dir))?;
    let (opens, engine) = opens::reopen(&helios_dir, config.reopens)?;
    let log_used_bytes = disk::log_used_bytes(engine.inspect())?;

    let mut warm = vec![helios_dir.clone()];
    if let Some(store) = &sqlite {
        warm.extend(store.files());
    }
    disk::read_into_page_cache(&warm)?;
    let mut rng = Rng::new(workload.seed.wrapping_add(SAMPLE_SEED_SALT));
    let latest = loads::measure(
        &engine,
        sqlite.as_ref(),
        workload,
        &names,
        Target::Latest,
        config.samples,
        &mut rng,
    )?;
    let at_version = loads::measure(
        &engine,
        sqlite.as_ref(),
        workload,
        &names,
        Target::RandomVersion,
        config.samples,
        &mut rng,
    )?;
    // After the loads: the statistics read every stream's checkpoints, which the loads of a
    // freshly opened engine do stream by stream, at each one's first use.
    let checkpoints = checkpoints.unwrap_or_else(|| engine.checkpoints().stats());
    close(engine)?;
    drop(sqlite);

    let gets = opens::get_processes(
        &config.helios_bin,
        &helios_dir,
        workload,
        &names,
        config.get_runs,
        &mut rng,
    )?;
    Ok(Measured {
        loaded,
        checkpoints,
        disk,
        log_used_bytes,
        sqlite_disk,
        opens,
        gets,
        latest,
        at_version,
    })
}

/// Closes the engine, failing on a background error it recorded.
fn close(engine: Engine) -> Result<()> {
    if let Some(error) = engine.inspect().background_error() {
        return Err(format!("the engine's background work failed: {error}").into());
    }
    Ok(engine.close()?)
}

fn run() -> Result<()> {
    let config = Config::from_args()?;
    let load_start = load_average();
    let machine = Machine::describe();
    let commit = source_commit();
    let started = Instant::now();
    // The run's directory: kept with --keep or --reopen-only, else a scratch directory.
    let scratch;
    let dir: &Path = match (&config.keep, &config.reopen_only) {
        (Some(dir), _) => {
            std::fs::create_dir_all(dir)?;
            dir
        }
        (None, Some(dir)) => dir,
        (None, None) => {
            scratch = scratch_dir("helios-bench-many-streams-");
            scratch.path()
        }
    };
    eprintln!("{} in {}", config.workload, dir.display());
    let measured = measure(&config, dir)?;
    let report = report::Report {
        config: &config,
        commit: &commit,
        machine: &machine,
        measured: &measured,
        load_average: (load_start, load_average()),
        run_seconds: started.elapsed().as_secs_f64(),
    };
    if config.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        report.print();
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("many_streams: {error}");
            ExitCode::FAILURE
        }
    }
}
