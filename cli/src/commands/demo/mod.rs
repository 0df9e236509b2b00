//! `helios demo`: an MCTS search over Connect Four on a Helios store, and what it cost against
//! naive designs measured in the same run.
//!
//! The workload is `helios_workloads::mcts` (the generator behind the `mixed_workload` bench): a
//! search whose every position lives in the engine. Rollouts and expansions are speculative
//! appends to in-memory branches (about 99% of the commits); every few simulations the best
//! move is promoted with `Durability::Critical` (about 1%) and the branches that no longer
//! descend from it are pruned. The generator reads every position it needs back from the
//! engine and fails on any difference.
//!
//! Phases, in order:
//! 1. **Search**, with a progress bar, for `--simulations` or `--seconds`. Every engine call is
//!    observed: commits are kept (up to [`PEER_COMMITS_MAX`]) for the naive peer, and the
//!    branches' events are mirrored so that a branch node can be replayed from the start.
//! 2. **Checkpoints**: `sync_checkpoints`, so that the reads below are the steady state.
//! 3. **Reads**, warm: random durable versions (`Engine::view`) and random live branch nodes
//!    (`Engine::view_branch`), twice; the second pass is measured by the engine's own
//!    metrics. The same reads by replay from the start (every event folded into a map) are
//!    timed alongside, and every view is compared with its replay.
//! 4. **Close**, then the **naive durable peer**: the search's commits, in order, each a
//!    critical append to a second store on the same file system, for at most
//!    `--peer-seconds`; compared with what the same commits cost Helios in the search.
//! 5. **Reopen** and read every game back: each stream must hold exactly the moves promoted,
//!    and nothing else.
//!
//! The peers are `helios_peers` (without SQLite); the files of this module follow the phases:
//! `search.rs`, `reads.rs`, `peers.rs`, then `summary.rs` (the JSON) and `text.rs` (its text).

mod peers;
mod reads;
mod search;
mod summary;
mod text;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use helios::{Durability, Engine, Metric, Version};
use helios_workloads::mcts::{DEFAULT_SIMULATIONS, MctsConfig};
use indicatif::{ProgressBar, ProgressStyle};

use self::peers::durable_peer;
use self::reads::reads;
use self::search::{Recorder, search};
use self::summary::{
    ClassJson, DemoSummary, LevelJson, PeersJson, Percentiles, ReopenJson, ReplayPeerJson,
    SearchJson, StorageJson,
};
use self::text::to_text;
use crate::error::CliError;
use crate::json;
use crate::limits::{self, Count};
use crate::store::{OpenArgs, log_size};

/// Random reads of each kind (durable version, branch node) per pass.
const DEFAULT_READS: u64 = 10_000;
/// Time budget of the naive durable peer, in seconds.
const DEFAULT_PEER_SECONDS: &str = "5";
/// `--reads`: the read phase holds its targets in memory (about 32 bytes per read of each
/// kind) and checks each read against a replay from the first event, twice.
const READS: Count = Count {
    min: 1,
    max: 1_000_000,
    what: "a number of reads",
    bound: "each read is done twice and replayed from the first event twice, so a million \
            reads of each kind take minutes",
};

/// Commits kept for the naive durable peer: more than it can make durable in its budget on
/// any disk that syncs in more than 50 us.
const PEER_COMMITS_MAX: usize = 100_000;
/// Longest latency the demo's own histograms record exactly (longer ones are clamped): 60 s.
const LATENCY_NS_MAX: u64 = 60_000_000_000;
/// Most live branches the search waits for at its end, for the branch-node reads.
const LIVE_BRANCHES_MAX: u64 = 16;
/// Most simulations run past the limit to get there.
const EXTRA_STEPS_MAX: u32 = 2000;
/// Prefix of the demo's streams: a run on a kept store uses `demo-r<N>-g<M>`, N counting runs.
const STREAM_PREFIX: &str = "demo-r";
/// Mixed into `--seed` for the choice of random reads, so that they differ from the search's.
const READS_SEED_MIX: u64 = 0x7265_6164_7321;

/// The long help of `helios demo`.
pub const LONG_ABOUT: &str = "Run a Monte Carlo tree search over Connect Four whose every \
    position lives in a Helios store, then print what it cost and what the same operations \
    cost naive designs, measured in the same run.\n\n\
    The search commits each rollout and expansion move as a speculative append to an \
    in-memory branch (about 99% of the commits), and every --promote-every simulations \
    promotes the best move with the critical class (fdatasync) and prunes the branches that \
    no longer descend from it. It reads every position it needs back from the engine and \
    stops on any difference.\n\n\
    The summary: commits and events per class with their latencies; the bytes the log and the \
    checkpoints take; random-access state reads, warm, at random durable versions and at \
    random live branch nodes, and how many events each replayed on top of its checkpoints (the \
    engine's own metrics); against naive peers: every commit made durable (a critical append \
    each, to a second store, for at most --peer-seconds) and every read replayed from the \
    first event; finally a reopen that reads every game back and checks it holds exactly the \
    moves promoted.\n\n\
    Without --dir it runs in a fresh temporary directory (under $TMPDIR), removed at exit; \
    latencies depend on the file system that directory is on. With --dir the store is kept, \
    and a later run adds its own games. A progress bar is drawn on stderr when it is a \
    terminal. With --json the summary is one JSON object on stdout; its fields are described \
    in README.md (\"The demo\").\n\n\
    --simulations is at most 5000000 (the search keeps about 130 bytes per simulation in \
    memory); with --seconds alone the search stops at that many too. --seconds and \
    --peer-seconds are at most 86400, --reads at most 1000000.\n\n\
    Exit status: 0 when the run finished and every check held, 2 on errors, including a \
    check that failed (a position read back other than the one written, a game reopened with \
    other moves than those promoted) and a --dir that is not a store and not empty.";

/// Arguments of `helios demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Store directory to use and keep. [default: a fresh temporary directory, removed at exit]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Simulations to run, from 1 to 5000000. [default: 10000, or 5000000 with --seconds]
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = limits::SIMULATIONS.parser())]
    pub simulations: Option<u64>,
    /// Stop the search after this many seconds (the first of the two limits wins), from 0 to
    /// 86400.
    #[arg(long, value_name = "S", allow_negative_numbers = true,
          value_parser = limits::RUN_SECONDS.parser())]
    pub seconds: Option<Duration>,
    /// Seed of the search and of the random reads (decimal, or hexadecimal with `0x`).
    #[arg(long, value_name = "SEED", default_value_t = helios_workloads::DEFAULT_SEED,
          allow_negative_numbers = true, value_parser = limits::parse_seed)]
    pub seed: u64,
    /// Simulations per move: the best move is promoted (a critical commit) after this many.
    #[arg(long, value_name = "N", default_value_t = helios_workloads::mcts::DEFAULT_PROMOTE_EVERY,
          allow_negative_numbers = true, value_parser = limits::PROMOTE_EVERY.parser_u32())]
    pub promote_every: u32,
    /// Random reads of each kind (durable version, branch node) per pass; two passes. From 1
    /// to 1000000.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_READS,
          allow_negative_numbers = true, value_parser = READS.parser())]
    pub reads: u64,
    /// Most seconds the naive "every commit durable" peer may take, from 0 to 86400.
    #[arg(long, value_name = "S", default_value = DEFAULT_PEER_SECONDS,
          allow_negative_numbers = true, value_parser = limits::RUN_SECONDS.parser())]
    pub peer_seconds: Duration,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// A latency histogram of the demo's own measurements, in nanoseconds.
fn histogram() -> Result<Histogram<u64>, CliError> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).map_err(|e| CliError::Histogram(e.to_string()))
}

/// Records one latency, clamped to what the histogram holds.
fn record(h: &mut Histogram<u64>, elapsed: Duration) {
    let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    h.saturating_record(ns.clamp(1, LATENCY_NS_MAX));
}

/// A progress bar on stderr (drawn only when it is a terminal).
fn progress(len: u64, prefix: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{prefix:>12} [{bar:32}] {percent:>3}% {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(prefix);
    bar
}

/// The run number for this demo on the store: one past the highest `demo-r<N>-...` stream.
fn next_run(engine: &Engine) -> u64 {
    engine
        .streams()
        .filter_map(|s| {
            let rest = s.name.strip_prefix(STREAM_PREFIX)?;
            rest.split('-').next()?.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
        + 1
}

/// The demo's own check failed on `stream` at `version`.
fn demo_check(stream: &str, version: Version, reason: String) -> CliError {
    CliError::DemoCheck {
        stream: stream.to_owned(),
        version,
        reason,
    }
}

/// Runs `helios demo`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    // Without --dir: one temporary directory holds the store and the peer's store. With it,
    // the peer's store is a temporary directory next to the store. Either way both are on the
    // same file system, so that their fdatasyncs cost the same.
    let (temp, dir) = match &args.dir {
        Some(dir) => (None, dir.clone()),
        None => {
            let temp = tempfile::tempdir().map_err(CliError::io("create a temporary directory"))?;
            let dir = temp.path().join("store");
            (Some(temp), dir)
        }
    };
    let peer_parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let kept = args.dir.is_some();

    let engine = args.open.open(&dir)?;
    let run_number = next_run(&engine);
    let stream_prefix = format!("{STREAM_PREFIX}{run_number}");
    let log_before = log_size(engine.inspect())?;
    let durable_before: u64 = engine.streams().map(|s| s.head.0).sum();

    // 1. The search.
    let simulations = match (args.simulations, args.seconds) {
        (Some(n), _) => n,
        // A time limit alone: the search stops at the time or at the most simulations the
        // demo takes, whichever comes first, so that its memory stays bounded.
        (None, Some(_)) => limits::SIMULATIONS.max,
        (None, None) => DEFAULT_SIMULATIONS,
    };
    let config = MctsConfig {
        seed: args.seed,
        simulations,
        promote_every: args.promote_every,
        stream_prefix: stream_prefix.clone(),
        ..MctsConfig::default()
    };
    let (report, recorder, search_time) = search(
        &engine,
        config,
        simulations,
        args.seconds,
        args.promote_every,
    )?;
    let search_metrics = engine.inspect().metrics();

    // 2. Checkpoints up to every head.
    let checkpoints_started = Instant::now();
    engine.checkpoints().sync()?;
    let checkpoint_sync = checkpoints_started.elapsed();

    // 3. Random-access reads, warm.
    let mut reads = reads(&engine, &recorder, args)?;
    reads.json.replayed_events_during_search =
        Percentiles::from_metric(search_metrics.get(Metric::ReplayedEvents), "events");

    // Sizes, before closing.
    let log_after = log_size(engine.inspect())?;
    let durable_after: u64 = engine.streams().map(|s| s.head.0).sum();
    let mut levels: Vec<LevelJson> = Vec::new();
    for stream in &recorder.streams {
        for checkpoint in engine.checkpoints().of_stream(stream)? {
            let index = usize::try_from(checkpoint.level.saturating_sub(1)).unwrap_or(0);
            while levels.len() <= index {
                let level = u32::try_from(levels.len() + 1).unwrap_or(u32::MAX);
                levels.push(LevelJson {
                    level,
                    checkpoints: 0,
                    bytes: 0,
                });
            }
            levels[index].checkpoints += 1;
            levels[index].bytes += checkpoint.len_bytes;
        }
    }
    let storage = StorageJson {
        log_bytes: log_after.used_bytes.saturating_sub(log_before.used_bytes),
        durable_events: durable_after.saturating_sub(durable_before),
        checkpoints: levels.iter().map(|l| l.checkpoints).sum(),
        checkpoint_bytes: levels.iter().map(|l| l.bytes).sum(),
        checkpoint_levels: levels,
        checkpoint_sync_seconds: json::round(checkpoint_sync.as_secs_f64(), 4),
    };

    // 4. Close, so that the peer has the disk to itself; then the naive durable peer.
    let close_started = Instant::now();
    engine.close()?;
    let close_time = close_started.elapsed();
    let peer_dir = tempfile::Builder::new()
        .prefix(".helios-demo-peer")
        .tempdir_in(&peer_parent)
        .map_err(CliError::io("create the naive peer's temporary directory"))?;

    let every_commit_durable = durable_peer(
        peer_dir.path(),
        &args.open,
        &recorder,
        args.peer_seconds,
        storage.log_bytes,
    )?;
    drop(peer_dir);

    // 5. Reopen and read every game back.
    let reopen_started = Instant::now();
    let engine = args.open.open(&dir)?;
    let reopen_time = reopen_started.elapsed();
    let events_checked = check_games(&engine, &recorder)?;
    engine.close()?;

    let commits = report.commits().max(1) as f64;
    let class = |class, commits_n: u64, events, metric| ClassJson {
        class,
        commits: commits_n,
        events,
        commit_share: json::round(commits_n as f64 / commits, 5),
        latency: Percentiles::from_metric(search_metrics.get(metric), "ns"),
    };
    let replay_from_start = ReplayPeerJson {
        durable_p50_ratio: ratio(reads.naive_durable.p50, reads.json.durable.p50),
        durable_p99_ratio: ratio(reads.naive_durable.p99, reads.json.durable.p99),
        branch_p50_ratio: ratio(reads.naive_branch.p50, reads.json.branch.p50),
        branch_p99_ratio: ratio(reads.naive_branch.p99, reads.json.branch.p99),
        durable: reads.naive_durable,
        branch: reads.naive_branch,
    };
    let summary = DemoSummary {
        dir: dir.to_string_lossy().into_owned(),
        kept,
        search: SearchJson {
            seed: args.seed,
            promote_every: args.promote_every,
            stream_prefix,
            simulations: report.simulations,
            games_started: report.games_started,
            games_finished: report.games_finished,
            seconds: json::round(search_time.as_secs_f64(), 4),
            commits_per_second: json::round(commits / search_time.as_secs_f64().max(1e-9), 1),
        },
        classes: vec![
            class(
                "speculative",
                report.commits_speculative,
                report.events_speculative,
                Metric::AppendSpeculative,
            ),
            class(
                "critical",
                report.commits_critical,
                report.events_critical,
                Metric::PromoteCritical,
            ),
        ],
        storage,
        reads: reads.json,
        peers: PeersJson {
            every_commit_durable,
            replay_from_start,
        },
        reopen: ReopenJson {
            close_seconds: json::round(close_time.as_secs_f64(), 4),
            reopen_seconds: json::round(reopen_time.as_secs_f64(), 4),
            games: recorder.streams.len() as u64,
            events_checked,
        },
        wall_seconds: json::round(started.elapsed().as_secs_f64(), 3),
    };
    let out = if args.json {
        json::pretty(&summary)?
    } else {
        to_text(&summary)
    };
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(CliError::io("write to stdout"))?;
    drop(temp);
    Ok(ExitCode::SUCCESS)
}

/// `a / b`, rounded; 0 when `b` is 0.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        json::round(a as f64 / b as f64, 2)
    }
}

/// Reads every game of the run back: each stream must hold exactly the moves promoted to it,
/// in order. Returns the events checked.
fn check_games(engine: &Engine, recorder: &Recorder) -> Result<u64, CliError> {
    let mut checked = 0;
    for (stream, promoted) in recorder.streams.iter().zip(&recorder.promoted) {
        let head = engine.head(stream).unwrap_or(Version::ZERO);
        if head.0 != promoted.len() as u64 {
            return Err(demo_check(
                stream,
                head,
                format!(
                    "{} moves were promoted, the reopened stream has {}",
                    promoted.len(),
                    head.0
                ),
            ));
        }
        for (event, expected) in engine.read(stream, ..)?.zip(promoted) {
            let event = event?;
            if event.payload != *expected || event.durability != Durability::Critical {
                return Err(demo_check(
                    stream,
                    event.version,
                    format!(
                        "read back {:?} ({}), promoted {:?} (critical)",
                        String::from_utf8_lossy(&event.payload),
                        event.durability,
                        String::from_utf8_lossy(expected)
                    ),
                ));
            }
            checked += 1;
        }
    }
    Ok(checked)
}
