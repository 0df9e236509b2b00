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
//! The peers are `helios_peers` (without SQLite).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use helios::{BranchId, Durability, Engine, Metric, MetricSummary, MetricsSnapshot, Version};
use helios_peers::naive::EveryCommitDurable;
use helios_peers::replay::{BranchReplay, ReplayError, durable_events};
use helios_workloads::Rng;
use helios_workloads::mcts::{At, DEFAULT_SIMULATIONS, Mcts, MctsConfig, MctsReport, Op};
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::CliError;
use crate::json;
use crate::store::{OpenArgs, log_size};
use crate::text::{Align, bytes, pairs, table, thousands, thousands_f64, times, us};

/// Random reads of each kind (durable version, branch node) per pass.
const DEFAULT_READS: u64 = 10_000;
/// Time budget of the naive durable peer.
const DEFAULT_PEER_SECONDS: f64 = 5.0;
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
    in README.md (\"The demo\").";

/// Arguments of `helios demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Store directory to use and keep. [default: a fresh temporary directory, removed at exit]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Simulations to run. [default: 10000, or no limit with --seconds]
    #[arg(long, value_name = "N")]
    pub simulations: Option<u64>,
    /// Stop the search after this many seconds (the first of the two limits wins).
    #[arg(long, value_name = "S")]
    pub seconds: Option<f64>,
    /// Seed of the search and of the random reads (decimal, or hexadecimal with `0x`).
    #[arg(long, value_name = "SEED", default_value_t = helios_workloads::DEFAULT_SEED,
          value_parser = helios_workloads::parse_seed)]
    pub seed: u64,
    /// Simulations per move: the best move is promoted (a critical commit) after this many.
    #[arg(long, value_name = "N", default_value_t = helios_workloads::mcts::DEFAULT_PROMOTE_EVERY,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub promote_every: u32,
    /// Random reads of each kind (durable version, branch node) per pass; two passes.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_READS)]
    pub reads: u64,
    /// Most seconds the naive "every commit durable" peer may take.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_PEER_SECONDS)]
    pub peer_seconds: f64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub open: OpenArgs,
}

// -------------------------------------------------------------------------------------------
// The JSON summary. The text summary is rendered from the same struct.

/// `helios demo --json`: everything the summary says.
#[derive(Debug, serde::Serialize)]
struct DemoSummary {
    /// The store directory.
    dir: String,
    /// Whether the store is kept (`--dir`) or was a temporary directory.
    kept: bool,
    /// The search's configuration and what it did.
    search: SearchJson,
    /// Commits and events per class, with the engine's latency percentiles.
    classes: Vec<ClassJson>,
    /// What the run added to the store on disk.
    storage: StorageJson,
    /// Random-access state reads, warm.
    reads: ReadsJson,
    /// The same operations on naive peers, in the same run.
    peers: PeersJson,
    /// Closing, reopening and reading every game back.
    reopen: ReopenJson,
    /// Wall time of the whole command.
    wall_seconds: f64,
}

#[derive(Debug, serde::Serialize)]
struct SearchJson {
    seed: u64,
    promote_every: u32,
    /// Prefix of this run's game streams (`<prefix>-g1`, ...).
    stream_prefix: String,
    simulations: u64,
    games_started: u64,
    games_finished: u64,
    seconds: f64,
    /// All commits (speculative and critical) per second of search wall time, reads,
    /// forks and discards included.
    commits_per_second: f64,
}

#[derive(Debug, serde::Serialize)]
struct ClassJson {
    /// `speculative`, `critical` or `normal`.
    class: &'static str,
    /// Commit calls (`append_branch` for speculative ones, `promote` for critical ones).
    commits: u64,
    events: u64,
    /// This class's share of all commits.
    commit_share: f64,
    /// The engine's latency histogram of these commits (`Engine::metrics`).
    latency: Percentiles,
}

/// A distribution: count, percentiles, maximum and mean, in `unit`.
#[derive(Clone, Debug, serde::Serialize)]
struct Percentiles {
    /// `ns` or `events`.
    unit: &'static str,
    count: u64,
    p50: u64,
    p95: u64,
    p99: u64,
    p999: u64,
    max: u64,
    mean: f64,
}

impl Percentiles {
    fn from_metric(summary: Option<&MetricSummary>, unit: &'static str) -> Percentiles {
        match summary {
            Some(s) => Percentiles {
                unit,
                count: s.count,
                p50: s.p50,
                p95: s.p95,
                p99: s.p99,
                p999: s.p999,
                max: s.max,
                mean: json::round(s.mean, 3),
            },
            None => Percentiles::empty(unit),
        }
    }

    fn from_histogram(h: &Histogram<u64>, unit: &'static str) -> Percentiles {
        if h.is_empty() {
            return Percentiles::empty(unit);
        }
        Percentiles {
            unit,
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: json::round(h.mean(), 3),
        }
    }

    fn empty(unit: &'static str) -> Percentiles {
        Percentiles {
            unit,
            count: 0,
            p50: 0,
            p95: 0,
            p99: 0,
            p999: 0,
            max: 0,
            mean: 0.0,
        }
    }
}

#[derive(Debug, serde::Serialize)]
struct StorageJson {
    /// Log bytes the run added (frames and headers of the promoted moves and of the stream
    /// creations; no speculative event reaches the log).
    log_bytes: u64,
    /// Events the run added to the log.
    durable_events: u64,
    /// Checkpoint files of the run's streams, and their bytes, in all and per level.
    checkpoint_files: u64,
    checkpoint_bytes: u64,
    checkpoint_levels: Vec<LevelJson>,
    /// Time `sync_checkpoints` took after the search (the builder had built most already).
    checkpoint_sync_seconds: f64,
}

#[derive(Debug, serde::Serialize)]
struct LevelJson {
    level: u32,
    files: u64,
    bytes: u64,
}

#[derive(Debug, serde::Serialize)]
struct ReadsJson {
    /// Reads per kind and pass.
    samples: u64,
    /// Live branches the branch nodes were drawn from.
    live_branches: u64,
    /// `Engine::view` at random durable versions of the run's games (metric `view`).
    durable: Percentiles,
    /// `Engine::view_branch` at random live branch nodes (metric `view_branch`).
    branch: Percentiles,
    /// Events replayed per read, both kinds (metric `replayed_events`).
    replayed_events: Percentiles,
    /// Events replayed per read during the search, while the builder ran behind the heads.
    replayed_events_during_search: Percentiles,
    /// Reads whose state was compared with a replay from the first event, all equal.
    checked: u64,
}

#[derive(Debug, serde::Serialize)]
struct PeersJson {
    /// Every commit made durable: a critical append per commit, to a second store.
    every_commit_durable: DurablePeerJson,
    /// Every read replayed from the first event (read from the log, folded into a map).
    replay_from_start: ReplayPeerJson,
}

#[derive(Debug, serde::Serialize)]
struct DurablePeerJson {
    /// Commits it made durable: the first ones of the search, within its time budget.
    commits: u64,
    /// Whether it got through every commit of the search (or of the first 100,000).
    complete: bool,
    /// Helios's latency for those same commits, in the search.
    helios: Percentiles,
    /// The peer's latency per commit.
    naive: Percentiles,
    /// Total time of those commits, peer over Helios.
    time_ratio: f64,
    /// Log bytes per commit: Helios over the whole run, the peer over its commits.
    helios_log_bytes_per_commit: f64,
    naive_log_bytes_per_commit: f64,
    bytes_ratio: f64,
}

#[derive(Debug, serde::Serialize)]
struct ReplayPeerJson {
    /// The same durable versions as `reads.durable`, each replayed from version 1.
    durable: Percentiles,
    /// The same branch nodes as `reads.branch`: the durable events below the fork, then the
    /// branches' events, from the first.
    branch: Percentiles,
    /// Median and p99 of the peer over Helios's, per kind.
    durable_p50_ratio: f64,
    durable_p99_ratio: f64,
    branch_p50_ratio: f64,
    branch_p99_ratio: f64,
}

#[derive(Debug, serde::Serialize)]
struct ReopenJson {
    close_seconds: f64,
    reopen_seconds: f64,
    /// Games read back.
    games: u64,
    /// Their events, each equal to the move promoted at that version.
    events_checked: u64,
}

// -------------------------------------------------------------------------------------------
// Observing the search.

/// One commit of the search, for the naive durable peer.
#[derive(Debug)]
struct Commit {
    /// Index into `Recorder::streams`.
    stream: usize,
    speculative: bool,
    events: Vec<Vec<u8>>,
    /// What the call took in Helios, during the search.
    latency: Duration,
}

/// What the demo keeps of the search, mirrored from its ops.
#[derive(Debug, Default)]
struct Recorder {
    /// The run's game streams, in creation order.
    streams: Vec<String>,
    /// The moves promoted to each game stream, in order.
    promoted: Vec<Vec<Vec<u8>>>,
    /// Each branch's stream, by index.
    branch_stream: HashMap<BranchId, usize>,
    /// The branches and their events: what a design without checkpoints needs to replay a
    /// branch node from the start.
    branches: BranchReplay,
    commits: Vec<Commit>,
    /// Commits of the search in all (`commits` stops at [`PEER_COMMITS_MAX`]).
    commit_count: u64,
    /// The first inconsistency met (the observer cannot return an error).
    error: Option<String>,
}

impl Recorder {
    fn stream_index(&self, stream: &str) -> Option<usize> {
        self.streams.iter().rposition(|s| s == stream)
    }

    fn observe(&mut self, op: &Op, latency: Duration) {
        if let Err(e) = self.apply(op, latency) {
            self.error.get_or_insert(e);
        }
    }

    fn apply(&mut self, op: &Op, latency: Duration) -> Result<(), String> {
        match op {
            Op::CreateStream { stream } => {
                self.streams.push(stream.clone());
                self.promoted.push(Vec::new());
            }
            Op::Fork { branch, from } => {
                let stream = match from {
                    At::Durable { stream, .. } => self.stream_index(stream),
                    At::Branch { branch, .. } => self.branch_stream.get(branch).copied(),
                }
                .ok_or_else(|| format!("{branch} forked from unknown {from}"))?;
                self.branch_stream.insert(*branch, stream);
                self.branches.observe(op)?;
            }
            Op::Append { branch, events, .. } => {
                self.branches.observe(op)?;
                let stream = self.branch_stream.get(branch).copied().unwrap_or(0);
                self.commit(stream, true, events, latency);
            }
            Op::Promote { stream, events, .. } => {
                let index = self
                    .stream_index(stream)
                    .ok_or_else(|| format!("promotion to unknown stream `{stream}`"))?;
                self.promoted[index].extend(events.iter().cloned());
                self.commit(index, false, events, latency);
            }
            Op::Discard { .. } | Op::Prune { .. } => self.branches.observe(op)?,
            Op::View { .. } => {}
        }
        Ok(())
    }

    fn commit(&mut self, stream: usize, speculative: bool, events: &[Vec<u8>], latency: Duration) {
        self.commit_count += 1;
        if self.commits.len() < PEER_COMMITS_MAX {
            self.commits.push(Commit {
                stream,
                speculative,
                events: events.to_vec(),
                latency,
            });
        }
    }
}

/// The demo's own check failed on `stream` at `version`.
fn demo_check(stream: &str, version: Version, reason: String) -> CliError {
    CliError::DemoCheck {
        stream: stream.to_owned(),
        version,
        reason,
    }
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

// -------------------------------------------------------------------------------------------
// Running.

fn histogram() -> Result<Histogram<u64>, CliError> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).map_err(|e| CliError::Histogram(e.to_string()))
}

fn record(h: &mut Histogram<u64>, elapsed: Duration) {
    let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    h.saturating_record(ns.clamp(1, LATENCY_NS_MAX));
}

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
        .iter()
        .filter_map(|s| {
            let rest = s.name.strip_prefix(STREAM_PREFIX)?;
            rest.split('-').next()?.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
        + 1
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
    let log_before = log_size(&engine)?;
    let durable_before: u64 = engine.streams().iter().map(|s| s.head.0).sum();

    // 1. The search.
    let simulations = match (args.simulations, args.seconds) {
        (Some(n), _) => n,
        (None, Some(_)) => u64::MAX,
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
    let search_metrics = engine.metrics();

    // 2. Checkpoints up to every head.
    let checkpoints_started = Instant::now();
    engine.sync_checkpoints()?;
    let checkpoint_sync = checkpoints_started.elapsed();

    // 3. Random-access reads, warm.
    let mut reads = reads(&engine, &recorder, args)?;
    reads.json.replayed_events_during_search =
        Percentiles::from_metric(search_metrics.get(Metric::ReplayedEvents), "events");

    // Sizes, before closing.
    let log_after = log_size(&engine)?;
    let durable_after: u64 = engine.streams().iter().map(|s| s.head.0).sum();
    let mut levels: Vec<LevelJson> = Vec::new();
    for stream in &recorder.streams {
        for checkpoint in engine.checkpoints(stream)? {
            let index = usize::try_from(checkpoint.level.saturating_sub(1)).unwrap_or(0);
            while levels.len() <= index {
                let level = u32::try_from(levels.len() + 1).unwrap_or(u32::MAX);
                levels.push(LevelJson {
                    level,
                    files: 0,
                    bytes: 0,
                });
            }
            levels[index].files += 1;
            levels[index].bytes += checkpoint.file_len_bytes;
        }
    }
    let storage = StorageJson {
        log_bytes: log_after.used_bytes.saturating_sub(log_before.used_bytes),
        durable_events: durable_after.saturating_sub(durable_before),
        checkpoint_files: levels.iter().map(|l| l.files).sum(),
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
        Duration::from_secs_f64(args.peer_seconds.max(0.0)),
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

/// Runs the search until `simulations` or `seconds`, whichever comes first, and then until
/// `promote_every - 1` branches are live, at least 1 and at most [`LIVE_BRANCHES_MAX`] (or
/// [`EXTRA_STEPS_MAX`] more simulations ran).
fn search(
    engine: &Engine,
    config: MctsConfig,
    simulations: u64,
    seconds: Option<f64>,
    promote_every: u32,
) -> Result<(MctsReport, Recorder, Duration), CliError> {
    const BAR_STEPS: u64 = 1000;
    let bar = progress(BAR_STEPS, "search");
    let deadline = seconds.map(|s| Duration::from_secs_f64(s.max(0.0)));
    let mut mcts = Mcts::new(engine, config).map_err(CliError::Search)?;
    let mut recorder = Recorder::default();
    let started = Instant::now();
    loop {
        let done = mcts.report().simulations;
        let elapsed = started.elapsed();
        if done >= simulations || deadline.is_some_and(|d| elapsed >= d) {
            break;
        }
        step(&mut mcts, &mut recorder)?;
        if done.is_multiple_of(64) {
            let by_count = done as f64 / simulations as f64;
            let by_time =
                deadline.map_or(0.0, |d| elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9));
            #[expect(
                clippy::cast_possible_truncation,
                reason = "a fraction of BAR_STEPS, clamped to it"
            )]
            let position = (by_count.max(by_time).min(1.0) * BAR_STEPS as f64) as u64;
            bar.set_message(format!("{} simulations", thousands(done)));
            bar.set_position(position);
        }
    }
    // The reads want branch nodes to choose from: right after a game ends there are none, and
    // right after a promotion few. Just before a promotion, the tree holds one branch per
    // expansion since the last one.
    let live_min = u64::from(promote_every.saturating_sub(1)).clamp(1, LIVE_BRANCHES_MAX);
    let mut extra = 0;
    while engine.branch_stats().live_branches < live_min && extra < EXTRA_STEPS_MAX {
        step(&mut mcts, &mut recorder)?;
        extra += 1;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok((mcts.into_report(), recorder, elapsed))
}

/// One simulation, every op observed by `recorder`.
fn step(mcts: &mut Mcts<'_>, recorder: &mut Recorder) -> Result<(), CliError> {
    mcts.step(&mut |op: &Op, latency: Duration| recorder.observe(op, latency))
        .map_err(CliError::Search)?;
    match recorder.error.take() {
        Some(reason) => Err(CliError::DemoRecord(reason)),
        None => Ok(()),
    }
}

/// What the read phase measured.
struct Reads {
    json: ReadsJson,
    naive_durable: Percentiles,
    naive_branch: Percentiles,
}

/// One random read target.
#[derive(Clone, Debug)]
enum Target {
    Durable { stream: usize, version: Version },
    Branch { branch: BranchId, version: Version },
}

fn reads(engine: &Engine, recorder: &Recorder, args: &Args) -> Result<Reads, CliError> {
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
        engine.reset_metrics();
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
                    (stream, *version, engine.view_branch(*branch, *version)?)
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
            metrics = engine.metrics();
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

/// The search's commits, in order, each a critical append to a store of its own in
/// `dir`, for at most `budget`. `helios_log_bytes` is what the whole run added to the demo's
/// log.
fn durable_peer(
    dir: &Path,
    open: &OpenArgs,
    recorder: &Recorder,
    budget: Duration,
    helios_log_bytes: u64,
) -> Result<DurablePeerJson, CliError> {
    let mut peer = EveryCommitDurable::new(open.open(dir).map_err(|e| match e {
        CliError::Engine(e) => CliError::Peer(e),
        e => e,
    })?);
    let before = log_size(peer.engine())?;
    const BAR_STEPS: u64 = 1000;
    let bar = progress(BAR_STEPS, "naive peer");
    let mut naive = histogram()?;
    let mut helios = histogram()?;
    let mut helios_total = Duration::ZERO;
    let mut naive_total = Duration::ZERO;
    let started = Instant::now();
    let mut done = 0usize;
    for commit in &recorder.commits {
        if started.elapsed() >= budget {
            break;
        }
        // Stream creation is not a commit: outside the timing.
        let name = peer
            .stream_for(&recorder.streams[commit.stream], commit.speculative)
            .map_err(CliError::Peer)?;
        let t = Instant::now();
        peer.commit(&name, &commit.events).map_err(CliError::Peer)?;
        let elapsed = t.elapsed();
        record(&mut naive, elapsed);
        naive_total += elapsed;
        record(&mut helios, commit.latency);
        helios_total += commit.latency;
        done += 1;
        if done.is_multiple_of(64) {
            // Whichever ends first: the commits or the time budget.
            let by_count = done as f64 / recorder.commits.len().max(1) as f64;
            let by_time = started.elapsed().as_secs_f64() / budget.as_secs_f64().max(1e-9);
            #[expect(
                clippy::cast_possible_truncation,
                reason = "a fraction of BAR_STEPS, clamped to it"
            )]
            let position = (by_count.max(by_time).min(1.0) * BAR_STEPS as f64) as u64;
            bar.set_message(format!("{} commits", thousands(done as u64)));
            bar.set_position(position);
        }
    }
    bar.finish_and_clear();
    let after = log_size(peer.engine())?;
    peer.close().map_err(CliError::Peer)?;
    let commits = done as u64;
    let helios_per_commit = helios_log_bytes as f64 / recorder.commit_count.max(1) as f64;
    let naive_per_commit =
        after.used_bytes.saturating_sub(before.used_bytes) as f64 / commits.max(1) as f64;
    Ok(DurablePeerJson {
        commits,
        complete: done == recorder.commits.len(),
        helios: Percentiles::from_histogram(&helios, "ns"),
        naive: Percentiles::from_histogram(&naive, "ns"),
        time_ratio: json::round(
            naive_total.as_secs_f64() / helios_total.as_secs_f64().max(1e-12),
            1,
        ),
        helios_log_bytes_per_commit: json::round(helios_per_commit, 2),
        naive_log_bytes_per_commit: json::round(naive_per_commit, 2),
        bytes_ratio: json::round(naive_per_commit / helios_per_commit.max(1e-12), 1),
    })
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

// -------------------------------------------------------------------------------------------
// Text.

fn latency_cells(p: &Percentiles) -> Vec<String> {
    let f = |ns: u64| us(ns as f64);
    vec![f(p.p50), f(p.p99), f(p.p999), f(p.max)]
}

fn to_text(s: &DemoSummary) -> String {
    let mut out = String::new();
    let search = &s.search;
    let _ = writeln!(
        out,
        "helios demo: a Monte Carlo tree search over Connect Four, every position in the store\n\
         store {} ({})\n",
        s.dir,
        if s.kept {
            "kept"
        } else {
            "temporary, removed at exit"
        }
    );
    let moves: u64 = s
        .classes
        .iter()
        .filter(|c| c.class == "critical")
        .map(|c| c.events)
        .sum();
    let _ = writeln!(
        out,
        "{} simulations in {:.1} s (seed {:#x}, a move every {} simulations): {} games, {} moves \
         played, {} commits/s\n",
        thousands(search.simulations),
        search.seconds,
        search.seed,
        search.promote_every,
        thousands(search.games_started),
        thousands(moves),
        thousands_f64(search.commits_per_second),
    );

    let mut rows = Vec::new();
    for c in &s.classes {
        let mut row = vec![
            format!("  {}", c.class),
            thousands(c.commits),
            thousands(c.events),
            format!("{:.1}%", c.commit_share * 100.0),
        ];
        row.extend(latency_cells(&c.latency));
        rows.push(row);
    }
    out.push_str(&table(
        0,
        &[
            ("commits (latency in us)", Align::Left),
            ("COMMITS", Align::Right),
            ("EVENTS", Align::Right),
            ("SHARE", Align::Right),
            ("p50", Align::Right),
            ("p99", Align::Right),
            ("p99.9", Align::Right),
            ("max", Align::Right),
        ],
        &rows,
    ));

    let st = &s.storage;
    let levels: Vec<String> = st
        .checkpoint_levels
        .iter()
        .map(|l| format!("L{} {}", l.level, bytes(l.bytes)))
        .collect();
    out.push_str("\non disk (what this run added)\n");
    out.push_str(&pairs(
        2,
        &[
            (
                "log",
                format!(
                    "{} for {} moves and the game streams' creation; no speculative event",
                    bytes(st.log_bytes),
                    thousands(st.durable_events)
                ),
            ),
            (
                "checkpoints",
                format!(
                    "{} in {} files ({}); sync_checkpoints after the search: {:.1} ms",
                    bytes(st.checkpoint_bytes),
                    thousands(st.checkpoint_files),
                    levels.join(", "),
                    st.checkpoint_sync_seconds * 1000.0
                ),
            ),
        ],
    ));

    let r = &s.reads;
    let _ = writeln!(
        out,
        "\nrandom-access state reads, warm ({} of each; branch nodes from {} live branches)",
        thousands(r.samples),
        thousands(r.live_branches)
    );
    let mut durable_row = vec!["  durable version (Engine::view)".to_owned()];
    durable_row.extend(latency_cells(&r.durable));
    let mut branch_row = vec!["  branch node (Engine::view_branch)".to_owned()];
    branch_row.extend(latency_cells(&r.branch));
    out.push_str(&table(
        0,
        &[
            ("  latency in us", Align::Left),
            ("p50", Align::Right),
            ("p99", Align::Right),
            ("p99.9", Align::Right),
            ("max", Align::Right),
        ],
        &[durable_row, branch_row],
    ));
    let replayed = |p: &Percentiles| {
        format!(
            "p50 {}, p99 {}, max {}, mean {:.1}",
            p.p50, p.p99, p.max, p.mean
        )
    };
    out.push_str(&pairs(
        2,
        &[
            ("events replayed per read", replayed(&r.replayed_events)),
            (
                "  during the search",
                replayed(&r.replayed_events_during_search),
            ),
            (
                "checked",
                format!(
                    "{} reads, each equal to a replay from the first event",
                    thousands(r.checked)
                ),
            ),
        ],
    ));

    let d = &s.peers.every_commit_durable;
    let p = &s.peers.replay_from_start;
    let _ = writeln!(out, "\nagainst naive designs, in this run");
    let row = |what: &str, helios: String, naive: String, ratio: f64| {
        vec![format!("  {what}"), helios, naive, times(ratio)]
    };
    let micro = |ns: u64| format!("{} us", us(ns as f64));
    let mean = |p: &Percentiles| format!("{} us", us(p.mean));
    let rows = vec![
        row(
            &format!(
                "every commit durable, first {} commits: mean",
                thousands(d.commits)
            ),
            mean(&d.helios),
            mean(&d.naive),
            d.time_ratio,
        ),
        row(
            "  p99",
            micro(d.helios.p99),
            micro(d.naive.p99),
            ratio(d.naive.p99, d.helios.p99),
        ),
        row(
            "  log bytes per commit",
            format!("{:.1}", d.helios_log_bytes_per_commit),
            format!("{:.1}", d.naive_log_bytes_per_commit),
            d.bytes_ratio,
        ),
        row(
            "read by replay from the start: durable p50",
            micro(s.reads.durable.p50),
            micro(p.durable.p50),
            p.durable_p50_ratio,
        ),
        row(
            "  durable p99",
            micro(s.reads.durable.p99),
            micro(p.durable.p99),
            p.durable_p99_ratio,
        ),
        row(
            "  branch node p50",
            micro(s.reads.branch.p50),
            micro(p.branch.p50),
            p.branch_p50_ratio,
        ),
        row(
            "  branch node p99",
            micro(s.reads.branch.p99),
            micro(p.branch.p99),
            p.branch_p99_ratio,
        ),
    ];
    out.push_str(&table(
        0,
        &[
            ("", Align::Left),
            ("HELIOS", Align::Right),
            ("NAIVE", Align::Right),
            ("NAIVE/HELIOS", Align::Right),
        ],
        &rows,
    ));

    let ro = &s.reopen;
    let _ = writeln!(
        out,
        "\nreopen: close {:.1} ms, open {:.1} ms; {} games read back, {} events, each the move \
         promoted\nwall time {:.1} s",
        ro.close_seconds * 1000.0,
        ro.reopen_seconds * 1000.0,
        thousands(ro.games),
        thousands(ro.events_checked),
        s.wall_seconds
    );
    out
}
