//! `helios tune`: sweeps checkpoint settings over a workload and reports, for each, what a
//! read costs and what the checkpoints take, so that a user can pick a level policy for a
//! latency or a space budget.
//!
//! For every setting of the grid (`--fanouts` x `--levels` x `--maps-max`) it builds a fresh
//! scratch store, appends the workload, builds every checkpoint (timed), and times views at
//! sampled versions (`measure`, run by `sweep`). It then marks the Pareto front of view p99
//! against checkpoint bytes, applies the budget (`report::recommend`), and writes the results
//! as CSV, JSON (`summary`, which also renders the text report) and an SVG plot (`plot`). The
//! workloads are in `workload`.
//!
//! It is not a benchmark of the machine: every setting runs on the same machine in the same
//! minutes, so what carries over is the comparison between settings, not the absolute numbers.
//! It reads `--from DIR` through a read-only handle: nothing in that store changes.

mod measure;
mod plot;
mod report;
mod summary;
mod sweep;
mod workload;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use helios_workloads::mcts::{DEFAULT_PROMOTE_EVERY, DEFAULT_SIMULATIONS};
use indicatif::ProgressBar;

use self::measure::{Clock, Setting};
use self::report::Budget;
use self::summary::{Sweep, clock_name, text_report};
use self::sweep::sweep;
use self::workload::Workload;
use crate::error::CliError;
use crate::json;
use crate::limits::{self, Count, Positive};
use crate::text::bytes;

/// Exit code when a budget was given and no setting meets it (2 stays reserved for errors).
const EXIT_NO_SETTING: u8 = 1;

/// Default `--events` of the uniform workload.
pub const DEFAULT_EVENTS: u64 = 20_000;
/// Default `--keys` of the uniform workload.
pub const DEFAULT_KEYS: u64 = 2_000;
/// Default `--keys-per-event` of the uniform workload (the read bench's).
pub const DEFAULT_KEYS_PER_EVENT: u64 = 4;
/// Default `--samples`.
pub const DEFAULT_SAMPLES: u64 = 10_000;
/// Default `--reads`.
pub const DEFAULT_READS: u64 = 4;

/// File names written under `--out`.
pub const CSV_FILE: &str = "tune.csv";
/// The JSON document.
pub const JSON_FILE: &str = "tune.json";
/// The plot.
pub const SVG_FILE: &str = "tune.svg";

/// The long help of `helios tune`.
pub const LONG_ABOUT: &str = "Sweep checkpoint settings over a workload and report, for each, \
    view latency (p50, p99, p99.9 of a view at a random version plus --reads point reads, \
    warm), events replayed per view, checkpoint files and bytes, bytes per event (log and \
    checkpoints) and the time to build every checkpoint. Each setting gets a fresh scratch \
    store (under --scratch-dir, removed afterwards) with the same events and the same samples; \
    one setting is measured again at the end, as a check of how much the machine alone moves \
    the numbers. On a busy machine, --clock thread-cpu times the views in CPU time, without \
    the waits other processes cause.\n\n\
    The grid is --fanouts x --levels x --maps-max (x --firsts): a level policy checkpoints \
    every fanout, fanout^2, ... fanout^levels events (full states at the top level, deltas \
    below), and a view replays at most fanout - 1 events on top of at most `levels` layers. \
    With --firsts, the finest level checkpoints every `first` events instead and each level \
    above every fanout checkpoints of the one below (`LevelPolicy::with_first`): a view then \
    replays at most first - 1 events, and a small fanout above a first interval of 10 trades \
    more layers per view for fewer checkpoint bytes. The Pareto front of \
    view p99 against checkpoint bytes is marked; --max-p99-us picks the smallest setting within \
    a latency budget, --max-bytes-per-event the fastest within a space budget.\n\n\
    Workloads: `uniform` (one generated stream of --events key-value events over --keys keys), \
    `mcts` (the moves played by a Connect Four tree search, one stream per game), or --from DIR \
    (the key-value streams of an existing store, replayed in log order; DIR is opened like any \
    store, which may run crash recovery, and nothing is appended to it).\n\n\
    Writes tune.csv, tune.json and tune.svg (p99 against storage, front highlighted) under \
    --out and prints a table (or, with --json, the JSON). See docs/TUNING.md.\n\n\
    Every number is checked before anything runs, and so is the memory the workload and the \
    samples take together: at most 2 GiB (the limit and what each option costs are in the \
    message when a sweep would pass it). With --from, reading stops with an error once the \
    events read take more than that; --events N reads only the first N.\n\n\
    Exit status: 0, or 1 when a budget was given and no setting meets it, 2 on errors \
    (including a value out of range, and a sweep too large for the memory limit).";

/// Which generated workload to sweep over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadArg {
    /// One stream of key-value events over a fixed key space, 1 to --keys-per-event keys each.
    Uniform,
    /// The durable moves of a Connect Four MCTS that keeps its search in speculative branches.
    Mcts,
}

/// Arguments of `helios tune`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workload to generate.
    #[arg(long, value_enum, default_value_t = WorkloadArg::Uniform, help_heading = "Workload")]
    pub workload: WorkloadArg,
    /// Sweep over the key-value streams of the store in DIR instead (it must exist).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "workload",
        help_heading = "Workload"
    )]
    pub from: Option<PathBuf>,
    /// Uniform: events to generate; --from: read at most the first N events of the log. From 1
    /// to 2000000. [default: 20000 for uniform, every event for --from]
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = EVENTS.parser(), help_heading = "Workload")]
    pub events: Option<u64>,
    /// Uniform: size of the key space, from 1 to 20000000. [default: 2000]
    #[arg(long, value_name = "K", allow_negative_numbers = true,
          value_parser = KEYS.parser(), help_heading = "Workload")]
    pub keys: Option<u64>,
    /// Uniform: most keys an event changes (each changes 1 to N), from 1 to 100. [default: 4]
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = KEYS_PER_EVENT.parser(), help_heading = "Workload")]
    pub keys_per_event: Option<u64>,
    /// MCTS: simulations to run; about one move in --promote-every becomes durable. From 1 to
    /// 5000000. [default: 10000]
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = limits::SIMULATIONS.parser(), help_heading = "Workload")]
    pub simulations: Option<u64>,
    /// MCTS: simulations per move played. [default: 8]
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = limits::PROMOTE_EVERY.parser_u32(), help_heading = "Workload")]
    pub promote_every: Option<u32>,
    /// Seed of the generated workload and of the samples (decimal, or hexadecimal with `0x`).
    #[arg(long, default_value_t = helios_workloads::DEFAULT_SEED, allow_negative_numbers = true,
          value_parser = limits::parse_seed, help_heading = "Workload")]
    pub seed: u64,

    /// Fanouts to try (comma-separated, each at least 2).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = [4u64, 8, 10, 16, 25],
          allow_negative_numbers = true, value_parser = FANOUT.parser(), help_heading = "Grid")]
    pub fanouts: Vec<u64>,
    /// First intervals to try (comma-separated, each from 2 to 25): the finest level
    /// checkpoints every `first` events and each level above every fanout checkpoints of the
    /// one below. [default: each fanout itself]
    #[arg(long, value_name = "LIST", value_delimiter = ',', allow_negative_numbers = true,
          value_parser = FIRST.parser(), help_heading = "Grid")]
    pub firsts: Vec<u64>,
    /// Level counts to try (comma-separated, each from 1 to 16).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = [1u32, 2, 3, 4],
          allow_negative_numbers = true, value_parser = LEVELS.parser_u32(), help_heading = "Grid")]
    pub levels: Vec<u32>,
    /// Checkpoints kept open at once (`Options::checkpoint_maps_max`) to try, each from
    /// 1 to 65536.
    #[arg(long, value_name = "LIST", value_delimiter = ',',
          default_values_t = [helios::DEFAULT_CHECKPOINT_MAPS_MAX], allow_negative_numbers = true,
          value_parser = MAPS_MAX.parser_usize(), help_heading = "Grid")]
    pub maps_max: Vec<usize>,

    /// Views timed per setting, at random versions (each also run once untimed before). From 1
    /// to 1000000.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SAMPLES, allow_negative_numbers = true,
          value_parser = SAMPLES.parser(), help_heading = "Measurement")]
    pub samples: u64,
    /// Point reads (`View::get` of a random key of the stream) per timed view, from 0 to 1000.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_READS, allow_negative_numbers = true,
          value_parser = READS.parser(), help_heading = "Measurement")]
    pub reads: u64,
    /// What the view latency is measured with: `wall` (what a caller waits) or `thread-cpu`
    /// (what the view costs the thread, without the waits other processes cause on a busy
    /// machine).
    #[arg(long, value_enum, default_value_t = Clock::Wall, help_heading = "Measurement")]
    pub clock: Clock,
    /// Where the scratch stores go. [default: the system temporary directory]
    #[arg(long, value_name = "DIR", help_heading = "Measurement")]
    pub scratch_dir: Option<PathBuf>,

    /// Latency budget: recommend the setting with the least checkpoint storage whose view p99
    /// is at most this many microseconds (above 0, at most 60000000).
    #[arg(long, value_name = "US", allow_negative_numbers = true,
          value_parser = MAX_P99_US.parser(), help_heading = "Budget")]
    pub max_p99_us: Option<f64>,
    /// Space budget: recommend the fastest setting (view p99) with at most this many bytes per
    /// event, log and checkpoints together (above 0, at most 1 TiB). With both budgets: the
    /// fastest within both.
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true,
          value_parser = MAX_BYTES_PER_EVENT.parser(), help_heading = "Budget")]
    pub max_bytes_per_event: Option<f64>,

    /// Directory for tune.csv, tune.json and tune.svg (created if needed).
    #[arg(long, value_name = "DIR", default_value = "helios-tune")]
    pub out: PathBuf,
    /// Print the JSON document to stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The most memory a sweep may plan to hold for its workload and samples: 2 GiB. Checked
/// against [`memory_estimate`] before anything is generated.
pub const MEMORY_BYTES_MAX: u64 = 2 << 30;

/// What the uniform workload holds per event, beyond its changes (measured: the event's
/// buffer and its copy in the append batches).
const UNIFORM_BYTES_PER_EVENT: u64 = 200;
/// What the uniform workload holds per key an event changes (measured: the `set`/`del` line
/// in the event and its batch copy, the key's history entry, the key in the stream's key list).
const UNIFORM_BYTES_PER_CHANGE: u64 = 200;
/// What the uniform workload allocates per key of the key space before its first event (a
/// history list and a slot in the live-key index).
const UNIFORM_BYTES_PER_KEY: u64 = 32;
/// What a key the events write costs in the states and lists the sweep builds from them (the
/// stream's key list, the builder's head state, a full checkpoint being written), measured:
/// 200,000 events changing 900,000 keys of a 2,000,000-key space peaked at 581 MB resident,
/// against 734 MB estimated.
const UNIFORM_BYTES_PER_STATE_KEY: u64 = 500;
/// What a sample holds beyond its point reads (stream, version, the list of keys), plus the
/// digest of its answer kept for every setting measured.
const SAMPLE_BYTES: u64 = 56;
/// What one point read of a sample holds (the index of its key).
const SAMPLE_READ_BYTES: u64 = 8;
/// What the MCTS search holds per simulation (measured on `helios demo`, which records more).
const MCTS_BYTES_PER_SIMULATION: u64 = 130;

/// `--events`: the uniform workload keeps every event in memory, and `--from` every event read.
const EVENTS: Count = Count {
    min: 1,
    max: 2_000_000,
    what: "a number of events",
    bound: "the workload keeps every event in memory: about 200 bytes per event plus 200 per \
            key it changes, over 1 GiB at the limit",
};
/// `--keys`: the key space of the uniform workload.
const KEYS: Count = Count {
    min: 1,
    max: 20_000_000,
    what: "a number of keys",
    bound: "the workload allocates about 32 bytes per key of the key space before its first \
            event, 640 MB at the limit, and its states hold up to that many keys",
};
/// `--keys-per-event`: the keys one event of the uniform workload changes, at most.
const KEYS_PER_EVENT: Count = Count {
    min: 1,
    max: 100,
    what: "a number of keys per event",
    bound: "the generator checks each key of an event against the event's other keys, so time \
            grows with the square of this number, and each change costs about 200 bytes",
};
/// `--samples`: the views timed per setting.
const SAMPLES: Count = Count {
    min: 1,
    max: 1_000_000,
    what: "a number of samples",
    bound: "each sample is a view run twice per setting, and the digest of its answer is kept \
            per setting",
};
/// `--reads`: point reads per timed view.
const READS: Count = Count {
    min: 0,
    max: 1000,
    what: "a number of point reads per view",
    bound: "each read of each sample is held in memory and run twice per setting",
};
/// `--fanouts`: the level policy's bounds (it also refuses a fanout whose top level overflows).
const FANOUT: Count = Count {
    min: 2,
    max: helios::REPLAY_MAX + 1,
    what: "a fanout",
    bound: "a view replays up to fanout - 1 events after its checkpoints, and never more than 24",
};
/// `--firsts`: the level policy's bounds on the first interval.
const FIRST: Count = Count {
    min: 2,
    max: helios::REPLAY_MAX + 1,
    what: "a first interval",
    bound: "a view replays up to first - 1 events after its checkpoints, and never more than 24",
};
/// `--levels`.
const LEVELS: Count = Count {
    min: 1,
    max: 16,
    what: "a number of levels",
    bound: "a view reads at most one layer per level, and 16 levels of fanout 2 already \
            reach a checkpoint every 65536 events",
};
/// `--maps-max`.
const MAPS_MAX: Count = Count {
    min: 1,
    max: 65_536,
    what: "a number of mapped checkpoint files",
    bound: "a process may hold about 65530 memory maps (Linux's vm.max_map_count), and each \
            mapped checkpoint keeps its point index in memory",
};
/// `--max-p99-us`.
const MAX_P99_US: Positive = Positive {
    max: 60_000_000.0,
    unit: "microseconds",
    bound: "60 s, the longest view latency the sweep records exactly",
};
/// `--max-bytes-per-event`.
const MAX_BYTES_PER_EVENT: Positive = Positive {
    // 2^40.
    max: 1_099_511_627_776.0,
    unit: "bytes",
    bound: "1 TiB, far above what an event of at most 64 MiB and its checkpoints take",
};

/// What the sweep plans to hold in memory for its workload and samples, as `(what, bytes)`
/// parts, before anything is generated. The parts are upper estimates measured on this code;
/// `--from` is bounded while the store is read instead (see `workload::from_store`).
fn memory_estimate(args: &Args, settings_count: usize) -> Vec<(&'static str, u64)> {
    let uniform = args.from.is_none() && args.workload == WorkloadArg::Uniform;
    let mcts = args.from.is_none() && args.workload == WorkloadArg::Mcts;
    let mut parts = Vec::new();
    if uniform {
        let events = args.events.unwrap_or(DEFAULT_EVENTS);
        let per_event = args.keys_per_event.unwrap_or(DEFAULT_KEYS_PER_EVENT);
        // Each event changes 1 to `per_event` keys, (per_event + 1) / 2 on average.
        let changes = events.saturating_mul(per_event.saturating_add(1)) / 2;
        parts.push((
            "--events and --keys-per-event (the events)",
            events
                .saturating_mul(UNIFORM_BYTES_PER_EVENT)
                .saturating_add(changes.saturating_mul(UNIFORM_BYTES_PER_CHANGE)),
        ));
        // The states hold at most every key of the space, and at most one key per change.
        let keys = args.keys.unwrap_or(DEFAULT_KEYS);
        parts.push((
            "--keys (the key space and the states)",
            keys.saturating_mul(UNIFORM_BYTES_PER_KEY).saturating_add(
                keys.min(changes)
                    .saturating_mul(UNIFORM_BYTES_PER_STATE_KEY),
            ),
        ));
    }
    if mcts {
        parts.push((
            "--simulations",
            args.simulations
                .unwrap_or(DEFAULT_SIMULATIONS)
                .saturating_mul(MCTS_BYTES_PER_SIMULATION),
        ));
    }
    let per_sample = SAMPLE_BYTES
        .saturating_add(args.reads.saturating_mul(SAMPLE_READ_BYTES))
        .saturating_add(8 * (settings_count as u64 + 1));
    parts.push((
        "--samples and --reads",
        args.samples.saturating_mul(per_sample),
    ));
    parts
}

/// Refuses a sweep whose [`memory_estimate`] passes [`MEMORY_BYTES_MAX`], naming the options
/// that take the most.
fn check_memory(args: &Args, settings_count: usize) -> Result<(), CliError> {
    let parts = memory_estimate(args, settings_count);
    let total = parts
        .iter()
        .fold(0u64, |sum, (_, bytes)| sum.saturating_add(*bytes));
    if total <= MEMORY_BYTES_MAX {
        return Ok(());
    }
    let (largest, largest_bytes) = parts
        .iter()
        .max_by_key(|(_, bytes)| *bytes)
        .copied()
        .unwrap_or(("the workload", total));
    Err(TuneError::Usage(format!(
        "this sweep would hold about {} in memory, more than its limit of {}; the largest part, \
         about {}, comes from {largest}",
        bytes(total),
        bytes(MEMORY_BYTES_MAX),
        bytes(largest_bytes)
    ))
    .into())
}

/// What can go wrong in a sweep beyond the engine's and the CLI's own errors.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// Flags that do not go together.
    #[error("{0}")]
    Usage(String),
    /// A grid point the engine would refuse.
    #[error("checkpoint setting {0} is not valid: {1}")]
    Setting(String, String),
    /// The MCTS search failed while the workload was being recorded.
    #[error("the MCTS workload failed: {0}")]
    Mcts(String),
    /// Nothing to sweep over.
    #[error("the workload has no event to sweep over: {0}")]
    Empty(String),
    /// Drawing the plot failed.
    #[error("could not draw the plot: {0}")]
    Plot(String),
    /// Rendering the CSV failed.
    #[error("could not render the CSV: {0}")]
    Csv(String),
}

impl From<TuneError> for CliError {
    fn from(error: TuneError) -> CliError {
        CliError::Io {
            op: "run the sweep",
            source: std::io::Error::other(error),
        }
    }
}

/// Runs `helios tune`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let settings = grid(args)?;
    check_workload_flags(args)?;
    check_memory(args, settings.len())?;
    let budget = Budget {
        max_p99_us: args.max_p99_us,
        max_bytes_per_event: args.max_bytes_per_event,
    };
    let scratch = args.scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
    // Before the sweep, so that a wrong --out is not found after minutes of measuring (it is
    // created only once there is something to write in it).
    check_dir_path(&args.out, "--out")?;
    create_dir(&scratch, "--scratch-dir")?;

    let workload = load_workload(args, &scratch)?;
    for (stream, reason) in &workload.skipped {
        // Nothing sensible is left to do if stderr itself cannot be written.
        let _ = writeln!(
            std::io::stderr().lock(),
            "helios: skipping stream `{}`: {reason}",
            helios::short_name(stream)
        );
    }
    if workload.events_count() == 0 {
        return Err(TuneError::Empty(workload.description.clone()).into());
    }
    let samples = measure::samples(&workload, args.samples, args.reads, args.seed);
    let (measured, control) = sweep(&workload, &samples, &settings, &scratch, args.clock)?;
    let sweep = Sweep::new(&workload, &measured, &control, &budget);
    let document = sweep.document(args, &workload, &measured, &scratch, budget);

    // Files.
    create_dir(&args.out, "--out")?;
    let csv = report::csv(&sweep.rows).map_err(|e| TuneError::Csv(e.to_string()))?;
    write_file(&args.out.join(CSV_FILE), &csv)?;
    let json_text = json::pretty(&document)?;
    write_file(&args.out.join(JSON_FILE), json_text.as_bytes())?;
    let subtitle = format!(
        "{}; {} samples per setting, view + {} point reads, warm, {} clock",
        workload.description,
        args.samples,
        args.reads,
        clock_name(args.clock)
    );
    let plot_labels: Vec<String> = sweep
        .labels
        .iter()
        .zip(&settings)
        .map(|(label, setting)| {
            if setting.is_engine_default() {
                format!("{label} (default)")
            } else {
                label.clone()
            }
        })
        .collect();
    let svg = plot::svg(
        &sweep.rows,
        &plot_labels,
        "helios tune: view p99 against storage, per checkpoint setting (fanout x levels)",
        &subtitle,
        sweep.log_bytes_per_event,
    )
    .map_err(|e| TuneError::Plot(e.to_string()))?;
    write_file(&args.out.join(SVG_FILE), svg.as_bytes())?;

    // Stdout.
    let out = if args.json {
        json_text
    } else {
        text_report(&document, &sweep, &settings, &args.out)
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(CliError::io("write to stdout"))?;

    let missed = sweep.recommendation.is_some_and(|r| r.index.is_none());
    Ok(if missed {
        ExitCode::from(EXIT_NO_SETTING)
    } else {
        ExitCode::SUCCESS
    })
}

/// The grid, sorted and without duplicates, every point checked before anything runs.
fn grid(args: &Args) -> Result<Vec<Setting>, CliError> {
    let mut settings = Vec::new();
    for &fanout in &args.fanouts {
        // Without --firsts, the classic policy: the first interval is the fanout.
        let firsts = if args.firsts.is_empty() {
            std::slice::from_ref(&fanout)
        } else {
            args.firsts.as_slice()
        };
        for &levels in &args.levels {
            for &maps_max in &args.maps_max {
                for &first in firsts {
                    let setting = Setting {
                        fanout,
                        levels,
                        maps_max,
                        first,
                    };
                    setting
                        .policy()
                        .map_err(|e| TuneError::Setting(setting.label(true), e.to_string()))?;
                    if maps_max < levels as usize {
                        return Err(TuneError::Setting(
                            setting.label(true),
                            format!(
                                "--maps-max {maps_max} cannot hold the {levels} layers of a view"
                            ),
                        )
                        .into());
                    }
                    settings.push(setting);
                }
            }
        }
    }
    settings.sort();
    settings.dedup();
    if settings.is_empty() {
        return Err(TuneError::Usage("the grid has no setting".to_owned()).into());
    }
    Ok(settings)
}

/// Refuses flags of one workload given with another, rather than ignoring them.
fn check_workload_flags(args: &Args) -> Result<(), CliError> {
    let name = if args.from.is_some() {
        "--from"
    } else {
        match args.workload {
            WorkloadArg::Uniform => "--workload uniform",
            WorkloadArg::Mcts => "--workload mcts",
        }
    };
    let uniform = args.from.is_none() && args.workload == WorkloadArg::Uniform;
    let mcts = args.from.is_none() && args.workload == WorkloadArg::Mcts;
    let misplaced = [
        ("--events", args.events.is_some() && mcts),
        ("--keys", args.keys.is_some() && !uniform),
        (
            "--keys-per-event",
            args.keys_per_event.is_some() && !uniform,
        ),
        ("--simulations", args.simulations.is_some() && !mcts),
        ("--promote-every", args.promote_every.is_some() && !mcts),
    ];
    if let Some((flag, _)) = misplaced.iter().find(|(_, wrong)| *wrong) {
        return Err(TuneError::Usage(format!("{flag} does not apply to {name}")).into());
    }
    if uniform {
        let keys = args.keys.unwrap_or(DEFAULT_KEYS);
        let per_event = args.keys_per_event.unwrap_or(DEFAULT_KEYS_PER_EVENT);
        if per_event > keys {
            return Err(TuneError::Usage(format!(
                "--keys-per-event {per_event} is more than the {keys} keys of the key space"
            ))
            .into());
        }
    }
    Ok(())
}

/// Generates, records or reads the workload, with a spinner while it takes.
fn load_workload(args: &Args, scratch: &Path) -> Result<Workload, CliError> {
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    let workload = if let Some(dir) = &args.from {
        spinner.set_message(format!("reading {}", dir.display()));
        workload::from_store(dir, args.events)
    } else {
        match args.workload {
            WorkloadArg::Uniform => {
                spinner.set_message("generating the uniform workload");
                Ok(workload::uniform(
                    args.events.unwrap_or(DEFAULT_EVENTS),
                    args.keys.unwrap_or(DEFAULT_KEYS),
                    args.keys_per_event.unwrap_or(DEFAULT_KEYS_PER_EVENT),
                    args.seed,
                ))
            }
            WorkloadArg::Mcts => {
                spinner.set_message("recording an MCTS run");
                workload::mcts(
                    args.simulations.unwrap_or(DEFAULT_SIMULATIONS),
                    args.promote_every.unwrap_or(DEFAULT_PROMOTE_EVERY),
                    args.seed,
                    scratch,
                )
            }
        }
    };
    spinner.finish_and_clear();
    workload
}

/// Writes `bytes` to `path`, replacing it.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|source| CliError::Path {
        op: "write the output file",
        path: path.to_path_buf(),
        source,
    })
}

/// Checks that the directory `path` given as option `what` exists or can be made: the nearest
/// part of it that exists must be a directory.
fn check_dir_path(path: &Path, what: &'static str) -> Result<(), CliError> {
    match path.ancestors().find(|p| std::fs::metadata(p).is_ok()) {
        Some(existing) if !existing.is_dir() => Err(CliError::NotADirectory {
            what,
            path: path.to_path_buf(),
            file: existing.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// Creates the directory `path` given as option `what` (and its parents), naming the path
/// when a file is in the way or it cannot be created.
fn create_dir(path: &Path, what: &'static str) -> Result<(), CliError> {
    check_dir_path(path, what)?;
    std::fs::create_dir_all(path).map_err(|source| CliError::CreateDir {
        what,
        path: path.to_path_buf(),
        source,
    })
}
