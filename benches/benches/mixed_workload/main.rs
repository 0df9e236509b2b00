//! The MCTS mixed workload: speculative branches under a real search, compared in one process
//! with SQLite, with a design that makes every commit durable, and with the same search on
//! plain boards in memory. Prints the tables of `docs/PERFORMANCE.md`, "Speculative branches:
//! the MCTS mixed workload".
//!
//! 1. **Live search.** [`helios_workloads::mcts`] plays Connect Four on a fresh engine (about
//!    99% speculative commits, 1% critical); every engine call is timed and recorded. Latency
//!    per class (median, p99, p99.9, jitter = stddev / mean) comes from here.
//! 2. **The limit.** The same search (same seed, same moves) with its positions as plain boards
//!    in memory and no engine (`mcts::run_in_memory`): Helios's simulations per second as a
//!    fraction of that rate.
//! 3. **Replays.** The recorded op sequence, on a fresh Helios engine and on two peers
//!    (`helios-peers`), one after the other: SQLite (WAL; a critical commit is a transaction
//!    with `synchronous=FULL`, a speculative one a transaction with `synchronous=NORMAL`, rows
//!    deleted when their branch is discarded or pruned; a view folds the node's rows) and the
//!    naive design (every commit one `pwrite` + `fdatasync` into a preallocated file, branches
//!    and views in memory). Commit throughput = commits / wall time of the whole sequence.
//! 4. **Memory.** 100,000 live speculative events of 100 bytes in 1,000 branches (half forked
//!    from the durable stream, half from earlier branches), nothing pruned:
//!    `branch_stats().bytes` and the process's RSS before and after, then the same again
//!    after reading 20,000 random branch nodes twice; the second pass is the warm view
//!    latency.
//! 5. **Targets**, each PASS or MISS with the measured value.
//!
//! Run: `cargo bench -p helios-benches --bench mixed_workload`, optionally followed by
//! `-- --simulations N --seed S --promote-every N --quick` (`--quick`: 1,000 simulations,
//! 20,000 events in 200 branches, 5,000 view samples). `--no-engine-metrics` opens the Helios
//! engines with `Options::metrics` off, to measure what the engine's own latency histograms
//! cost; every other option is the default, as a user would open the engine.
//!
//! The memory phase is in `memory.rs`; everything else, and the report, is here.

mod memory;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use helios::{Durability, Engine, Version};
use helios_benches::report::{mb, per_100k, percentile_cells, row, us, verdict_cell};
use helios_benches::{Machine, args, open_engine, scratch_dir};
use helios_peers::floor::{RAW_FLOOR_FILE_BYTES, RawFloor};
use helios_peers::naive::NaiveBackend;
use helios_peers::sqlite::SqliteBackend;
use helios_workloads::latency::{Jitter, Latencies};
use helios_workloads::mcts::{
    self, Backend, BackendError, Board, HeliosBackend, MctsConfig, MctsReport, Op, OpKind,
    OpLatencies, ReplayReport,
};
use helios_workloads::{DEFAULT_SEED, parse_seed};

use crate::memory::{MemorySample, memory_phase};

/// Target: speculative append p99, in microseconds.
const TARGET_SPECULATIVE_P99_US: f64 = 1.0;
/// Target: warm view of a branch node p99, in microseconds.
const TARGET_VIEW_P99_US: f64 = 20.0;
/// Target: memory per 100,000 live speculative events of 100 bytes, in MB (10^6 bytes).
const TARGET_MEMORY_MB_PER_100K: f64 = 100.0;
/// Target: Helios commit throughput over SQLite's on the same op sequence.
const TARGET_VS_SQLITE: f64 = 100.0;

/// Payload size of the memory phase's events, in bytes.
const MEMORY_EVENT_LEN: usize = 100;
/// Durable events under the memory phase's branches.
const MEMORY_BASE_EVENTS: u64 = 1000;

/// Run sizes, from the command line.
#[derive(Clone, Debug)]
struct Config {
    search: MctsConfig,
    /// Live speculative events of the memory phase.
    memory_events: u64,
    /// Branches they are spread over.
    memory_branches: u64,
    /// Random branch nodes read per view pass.
    view_samples: usize,
    quick: bool,
    /// Whether the Helios engines record their own latency metrics (`Options::metrics`, on
    /// by default); `--no-engine-metrics` turns them off to measure what they cost.
    engine_metrics: bool,
}

/// The command line.
#[derive(Debug, clap::Args)]
struct Options {
    /// Simulations of the search. [default: 10000, or 1000 with --quick]
    #[arg(long, value_name = "N")]
    simulations: Option<u64>,
    /// Seed of the search (decimal, or hexadecimal with `0x`).
    #[arg(long, value_name = "S", default_value_t = DEFAULT_SEED, value_parser = parse_seed)]
    seed: u64,
    /// Simulations per move: the best move is promoted (a critical commit) after this many.
    #[arg(long, value_name = "N", default_value_t = mcts::DEFAULT_PROMOTE_EVERY)]
    promote_every: u32,
    /// A smoke run: 1,000 simulations, 20,000 events in 200 branches, 5,000 view samples.
    #[arg(long)]
    quick: bool,
    /// Open the Helios engines with `Options::metrics` off, to measure what the engine's own
    /// latency histograms cost.
    #[arg(long)]
    no_engine_metrics: bool,
}

impl Config {
    fn from_args() -> Result<Config, String> {
        let options: Options = args::parse(
            "mixed_workload",
            "The MCTS mixed workload: a search on speculative branches, its in-memory limit, \
             replays on SQLite and a naive durable design, memory, and the targets.",
        );
        let mut config = Config {
            search: MctsConfig {
                seed: options.seed,
                promote_every: options.promote_every,
                ..MctsConfig::default()
            },
            memory_events: 100_000,
            memory_branches: 1000,
            view_samples: 20_000,
            quick: options.quick,
            engine_metrics: !options.no_engine_metrics,
        };
        if config.quick {
            config.search.simulations = 1000;
            config.memory_events = 20_000;
            config.memory_branches = 200;
            config.view_samples = 5000;
        }
        if let Some(simulations) = options.simulations {
            config.search.simulations = simulations;
        }
        if config.memory_branches == 0 || config.memory_events < config.memory_branches {
            return Err("the memory phase needs at least one event per branch".to_owned());
        }
        Ok(config)
    }
}

/// Opens a Helios engine in `dir` with default options, apart from `Options::metrics`.
fn open_helios(dir: &Path, metrics: bool) -> Engine {
    if metrics {
        return open_engine(dir);
    }
    Engine::builder(dir)
        .options(helios::Options {
            metrics: false,
            ..helios::Options::default()
        })
        .open()
        .expect("open the engine in a fresh directory")
}

// ---------------------------------------------------------------------------------------------
// Critical commit paths.

/// Rounds of the critical-path comparison.
const CRITICAL_ROUNDS: u64 = 300;

/// Latencies of the three ways to make one move durable, interleaved.
struct CriticalPaths {
    /// `Engine::append(.., Durability::Critical, ..)` of the event.
    append: Latencies,
    /// `Engine::promote(.., Durability::Critical)` of a branch holding the event (the fork and
    /// the speculative append before it are not timed).
    promote: Latencies,
    /// [`RawFloor::append`] of the event.
    floor: Latencies,
}

/// The same one-event durable commit as a plain critical append, as a promotion and as the raw
/// floor, in rounds with a rotating order (drift on a shared machine hits all three alike):
/// whether a promotion costs more than the append it performs.
fn critical_paths(metrics: bool) -> CriticalPaths {
    let dir = scratch_dir("helios-bench-critical-");
    let engine = open_helios(&dir.path().join("helios"), metrics);
    let mut floor =
        RawFloor::create(&dir.path().join("floor"), RAW_FLOOR_FILE_BYTES).expect("create floor");
    engine.create_stream("plain").expect("create a stream");
    engine.create_stream("promoted").expect("create a stream");
    let mut paths = CriticalPaths {
        append: Latencies::new(),
        promote: Latencies::new(),
        floor: Latencies::new(),
    };
    let mut board = Board::new();
    for round in 0..CRITICAL_ROUNDS {
        // A legal move sequence, so both streams stay valid boards; restart when it ends.
        let column = usize::try_from(round % 7).unwrap_or(0);
        if board.moves() & (1 << column) == 0 {
            board = Board::new();
        }
        let event = board.play(column).map_or_else(Vec::new, |mv| mv.event());
        if event.is_empty() {
            continue;
        }
        for k in 0..3 {
            match (round + k) % 3 {
                0 => {
                    let start = Instant::now();
                    engine
                        .append("plain", &[&event], Durability::Critical, None)
                        .expect("critical append");
                    paths.append.record(start.elapsed());
                }
                1 => {
                    let head = engine.head("promoted").unwrap_or(Version::ZERO);
                    let branch = engine
                        .branches()
                        .fork("promoted", head)
                        .expect("fork at the head");
                    let appended = engine
                        .branches()
                        .append(branch, &[&event], Some(head))
                        .expect("speculative append");
                    let start = Instant::now();
                    engine
                        .branches()
                        .promote(branch, appended.last, Durability::Critical)
                        .expect("promote");
                    paths.promote.record(start.elapsed());
                    engine.branches().discard(branch).expect("discard");
                }
                _ => {
                    let start = Instant::now();
                    floor.append(&event).expect("raw floor append");
                    paths.floor.record(start.elapsed());
                }
            }
        }
    }
    paths
}

// ---------------------------------------------------------------------------------------------
// The run.

/// The live search: its report and the ops it made, in order.
fn live_search(config: &Config) -> (MctsReport, Vec<Op>) {
    let dir = scratch_dir("helios-bench-mcts-");
    let engine = open_helios(dir.path(), config.engine_metrics);
    let mut ops = Vec::new();
    let report = mcts::run_mcts(&engine, &config.search, &mut |op: &Op, _| {
        ops.push(op.clone());
    })
    .unwrap_or_else(|error| panic!("the search failed: {error}"));
    (report, ops)
}

/// The same search with its positions as plain boards in memory and no engine, recording its
/// ops as the live search does (so that both do the same work besides the store): its report
/// and how many ops it made.
fn limit_search(config: &Config) -> (MctsReport, usize) {
    let mut ops = Vec::new();
    let report = mcts::run_in_memory(&config.search, &mut |op: &Op, _| {
        ops.push(op.clone());
    })
    .unwrap_or_else(|error| panic!("the search in memory failed: {error}"));
    (report, ops.len())
}

fn replay_helios(ops: &[Op], metrics: bool) -> (ReplayReport, u64) {
    let dir = scratch_dir("helios-bench-mcts-replay-");
    let engine = open_helios(dir.path(), metrics);
    let mut backend = HeliosBackend::new(&engine);
    let report = mcts::replay(ops, &mut backend)
        .unwrap_or_else(|error| panic!("the Helios replay failed: {error}"));
    (report, backend.prune_mismatches)
}

fn replay_peer(
    ops: &[Op],
    make: impl FnOnce(&Path) -> Result<Box<dyn Backend>, BackendError>,
) -> ReplayReport {
    let dir = scratch_dir("helios-bench-mcts-peer-");
    let mut backend = make(dir.path()).unwrap_or_else(|error| panic!("create the peer: {error}"));
    mcts::replay(ops, backend.as_mut()).unwrap_or_else(|error| panic!("the replay failed: {error}"))
}

fn latency_row(name: &str, latencies: &Latencies, jitter: Option<&Jitter>) -> String {
    let s = latencies.summary();
    let mut cells = vec![name.to_owned(), s.count.to_string()];
    cells.extend(percentile_cells(&s, us));
    cells.push(us(s.mean_us));
    cells.push(jitter.map_or_else(|| "-".to_owned(), |j| format!("{:.2}", j.ratio())));
    row(&cells)
}

const LATENCY_HEADER: &str = "| operation | count | median us | p99 us | p99.9 us | max us | mean us | jitter (stddev/mean) |\n|---|---:|---:|---:|---:|---:|---:|---:|";

fn print_latencies(latencies: &OpLatencies) {
    println!("{LATENCY_HEADER}");
    for kind in OpKind::ALL {
        if latencies.get(kind).count() > 0 {
            println!(
                "{}",
                latency_row(
                    kind.name(),
                    latencies.get(kind),
                    Some(latencies.jitter(kind))
                )
            );
        }
    }
}

/// The live search's rate beside the same search's in memory.
fn print_limit(live: &MctsReport, live_ops: usize, limit: &MctsReport, limit_ops: usize) {
    println!("### The same search with its positions in memory, no engine (the limit)");
    println!();
    println!(
        "| positions | simulations | games | commits | ops | wall s | simulations/s | / limit |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let limit_rate = limit.simulations_per_s();
    for (positions, report, ops) in [
        ("helios (the live search above)", live, live_ops),
        ("plain boards in hash maps", limit, limit_ops),
    ] {
        println!(
            "| {positions} | {} | {} | {} | {ops} | {:.3} | {:.0} | {:.2}x |",
            report.simulations,
            report.games_started,
            report.commits(),
            report.elapsed.as_secs_f64(),
            report.simulations_per_s(),
            report.simulations_per_s() / limit_rate,
        );
    }
    println!();
    println!(
        "The search on Helios runs at {:.1}% of the in-memory limit's simulations per second.",
        100.0 * live.simulations_per_s() / limit_rate
    );
    if live_ops != limit_ops || live.commits() != limit.commits() {
        println!(
            "WARNING: the search in memory made {limit_ops} ops and {} commits, the live search \
             {live_ops} and {}: the two did not play the same games.",
            limit.commits(),
            live.commits()
        );
    }
    println!();
}

fn main() -> ExitCode {
    let config = match Config::from_args() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("mixed_workload: {error}");
            return ExitCode::from(2);
        }
    };
    println!("# MCTS mixed workload");
    println!();
    println!(
        "Command: `{}`",
        args::command_line("mixed_workload", &args::given())
    );
    println!();
    println!("Machine: {}", Machine::describe());
    println!();
    let search = &config.search;
    println!(
        "Search: seed {:#x}, {} simulations, a move promoted every {} simulations, rollouts of \
         at most {} moves, UCB1 c = {:.3}.",
        search.seed,
        search.simulations,
        search.promote_every,
        search.rollout_depth,
        search.exploration
    );
    println!(
        "Helios engines: default options, engine latency metrics {}.",
        if config.engine_metrics {
            "on (the default)"
        } else {
            "off (`--no-engine-metrics`)"
        }
    );
    println!();

    // 1. The live search.
    let (live, ops) = live_search(&config);
    println!("## Workload (live search on Helios)");
    println!();
    println!(
        "| simulations | games (finished; X/O/draw) | commits | speculative | critical | critical share | events (spec / crit) | forks | views | discards | prunes (branches pruned) | truncated rollouts | wall s |"
    );
    println!("|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|");
    println!(
        "| {} | {} ({}; {}/{}/{}) | {} | {} | {} | {:.2}% | {} / {} | {} | {} | {} | {} ({}) | {} | {:.2} |",
        live.simulations,
        live.games_started,
        live.games_finished,
        live.x_wins,
        live.o_wins,
        live.draws,
        live.commits(),
        live.commits_speculative,
        live.commits_critical,
        live.critical_share() * 100.0,
        live.events_speculative,
        live.events_critical,
        live.forks,
        live.views,
        live.discards,
        live.prunes,
        live.branches_pruned,
        live.rollouts_truncated,
        live.elapsed.as_secs_f64(),
    );
    println!();
    if live.prune_mismatches > 0 || live.branches_left_after_game > 0 {
        println!(
            "WARNING: {} prunes discarded a different number of branches than the search \
             expected; {} branches were left after finished games.",
            live.prune_mismatches, live.branches_left_after_game
        );
        println!();
    }
    println!(
        "### Latency per operation (live search; a view includes reading the board out of it)"
    );
    println!();
    print_latencies(&live.latencies);
    println!();

    // 2. The limit: the same search without an engine.
    let (limit, limit_ops) = limit_search(&config);
    print_limit(&live, ops.len(), &limit, limit_ops);

    // 3. Replays, one after the other in this process.
    let (helios, helios_mismatches) = replay_helios(&ops, config.engine_metrics);
    let sqlite = replay_peer(&ops, |dir| {
        Ok(Box::new(SqliteBackend::create(&dir.join("mcts.db"))?))
    });
    let naive = replay_peer(&ops, |dir| {
        Ok(Box::new(NaiveBackend::create(&dir.join("naive.log"))?))
    });
    println!("## The same op sequence replayed ({} ops)", ops.len());
    println!();
    println!(
        "| backend | commits | wall s | commits/s | helios / this | commits/s in commit calls | helios / this | spec median us | spec p99 us | spec p99.9 us | spec jitter | crit median us | crit p99 us | crit p99.9 us | crit jitter | view median us | view p99 us |"
    );
    println!(
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let helios_rate = helios.commits_per_s();
    let helios_call_rate = helios.commit_calls_per_s();
    for r in [&helios, &sqlite, &naive] {
        let spec = r.latencies.get(OpKind::Append).summary();
        let crit = r.latencies.get(OpKind::Promote).summary();
        let view = r.latencies.get(OpKind::View).summary();
        println!(
            "| {} | {} | {:.3} | {:.0} | {:.1}x | {:.0} | {:.1}x | {} | {} | {} | {:.2} | {} | {} | {} | {:.2} | {} | {} |",
            r.backend,
            r.commits(),
            r.elapsed.as_secs_f64(),
            r.commits_per_s(),
            helios_rate / r.commits_per_s(),
            r.commit_calls_per_s(),
            helios_call_rate / r.commit_calls_per_s(),
            us(spec.median_us),
            us(spec.p99_us),
            us(spec.p999_us),
            r.latencies.jitter(OpKind::Append).ratio(),
            us(crit.median_us),
            us(crit.p99_us),
            us(crit.p999_us),
            r.latencies.jitter(OpKind::Promote).ratio(),
            us(view.median_us),
            us(view.p99_us),
        );
    }
    println!();
    if helios_mismatches > 0 {
        println!(
            "WARNING: {helios_mismatches} prunes of the Helios replay differed from the recorded count."
        );
        println!();
    }

    // The critical path, for the critical rows above.
    let critical = critical_paths(config.engine_metrics);
    println!("### One durable move three ways, interleaved ({CRITICAL_ROUNDS} rounds)");
    println!();
    println!("{LATENCY_HEADER}");
    println!(
        "{}",
        latency_row("helios critical append", &critical.append, None)
    );
    println!(
        "{}",
        latency_row("helios promote (critical)", &critical.promote, None)
    );
    println!(
        "{}",
        latency_row("raw floor (pwrite + fdatasync)", &critical.floor, None)
    );
    println!();
    let floor_median = critical.floor.summary().median_us;
    println!(
        "Medians over the floor's: append {:.2}x, promote {:.2}x.",
        critical.append.summary().median_us / floor_median,
        critical.promote.summary().median_us / floor_median
    );
    println!();

    // 4. Memory and warm views.
    let memory = memory_phase(&config);
    let live_events = memory.after_appends.stats.live_events;
    // Growth over the "before" sample, of one measure of a later sample.
    let grown = |sample: &MemorySample, measure: fn(&MemorySample) -> u64| {
        measure(sample).saturating_sub(measure(&memory.before))
    };
    let appended_bytes = grown(&memory.after_appends, |m| m.stats.bytes);
    let cached_bytes = grown(&memory.after_views, |m| m.stats.bytes);
    let rss_appends = grown(&memory.after_appends, |m| m.rss.statm_bytes);
    let rss_views = grown(&memory.after_views, |m| m.rss.statm_bytes);
    let status_appends = grown(&memory.after_appends, |m| m.rss.status_bytes);
    let status_views = grown(&memory.after_views, |m| m.rss.status_bytes);
    println!(
        "## Memory: {} live speculative events of {MEMORY_EVENT_LEN} bytes in {} branches ({:.1} s)",
        live_events,
        memory.after_appends.stats.live_branches,
        memory.elapsed.as_secs_f64()
    );
    println!();
    println!(
        "| when | live branches | live events | branch_stats bytes (delta) | MB per 100K events | RSS delta, statm | MB per 100K (statm) | RSS delta, VmRSS | evictions |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (when, sample, bytes, rss, status) in [
        (
            "after the appends",
            &memory.after_appends,
            appended_bytes,
            rss_appends,
            status_appends,
        ),
        (
            "after 2 view passes (cached states)",
            &memory.after_views,
            cached_bytes,
            rss_views,
            status_views,
        ),
    ] {
        println!(
            "| {when} | {} | {} | {} | {:.1} | {:.1} MB | {:.1} | {:.1} MB | {} |",
            sample.stats.live_branches,
            sample.stats.live_events,
            bytes,
            mb(per_100k(bytes, live_events)),
            mb(rss as f64),
            mb(per_100k(rss, live_events)),
            mb(status as f64),
            sample.stats.evictions,
        );
    }
    println!();
    println!(
        "Budget {} MB (`branch_memory_bytes`, default). The events themselves (payload plus an \
         8-byte offset each) are {:.1} MB per 100K events; the rest is states cached at forks \
         and reads.",
        memory.after_appends.stats.budget_bytes / 1_000_000,
        mb(((MEMORY_EVENT_LEN + 8) * 100_000) as f64)
    );
    println!();
    println!("### Memory phase latencies");
    println!();
    println!("{LATENCY_HEADER}");
    println!(
        "{}",
        latency_row(
            "speculative append (100 B)",
            &memory.appends,
            Some(&memory.append_jitter)
        )
    );
    println!("{}", latency_row("fork", &memory.forks, None));
    println!(
        "{}",
        latency_row("view + get, first pass", &memory.first_views, None)
    );
    println!(
        "{}",
        latency_row("view + get, warm pass", &memory.warm_views, None)
    );
    println!();
    println!(
        "Warm pass: {:.2} events replayed per view on average.",
        memory.warm_events_replayed as f64 / memory.warm_views.count().max(1) as f64
    );
    println!();

    // 5. Targets.
    let spec_p99 = live.latencies.get(OpKind::Append).summary().p99_us;
    let warm_p99 = memory.warm_views.summary().p99_us;
    let live_view_p99 = live.latencies.get(OpKind::View).summary().p99_us;
    let memory_mb = mb(per_100k(appended_bytes, live_events));
    let memory_cached_mb = mb(per_100k(cached_bytes, live_events));
    let vs_sqlite = helios_rate / sqlite.commits_per_s();
    let vs_naive = helios_rate / naive.commits_per_s();
    let vs_sqlite_calls = helios_call_rate / sqlite.commit_calls_per_s();
    println!("## Targets");
    println!();
    println!("| target | measured | verdict |");
    println!("|---|---|---|");
    println!(
        "| speculative append p99 < {TARGET_SPECULATIVE_P99_US} us (live search) | {} us ({:.2}x the target) | {} |",
        us(spec_p99),
        spec_p99 / TARGET_SPECULATIVE_P99_US,
        verdict_cell(spec_p99 < TARGET_SPECULATIVE_P99_US)
    );
    println!(
        "| view of a branch node p99 < {TARGET_VIEW_P99_US} us, warm | {} us warm pass ({:.2}x the target); {} us in the live search (first reads included) | {} |",
        us(warm_p99),
        warm_p99 / TARGET_VIEW_P99_US,
        us(live_view_p99),
        verdict_cell(warm_p99 < TARGET_VIEW_P99_US)
    );
    println!(
        "| memory < {TARGET_MEMORY_MB_PER_100K} MB per 100,000 live speculative events of 100 B, as created | {memory_mb:.1} MB (branch_stats after the appends; RSS {:.1} MB) | {} |",
        mb(per_100k(rss_appends, live_events)),
        verdict_cell(memory_mb < TARGET_MEMORY_MB_PER_100K)
    );
    println!(
        "| the same, once their nodes were read (cached states) | {memory_cached_mb:.1} MB (branch_stats; RSS {:.1} MB) | {} |",
        mb(per_100k(rss_views, live_events)),
        verdict_cell(memory_cached_mb < TARGET_MEMORY_MB_PER_100K)
    );
    println!(
        "| commit throughput >= {TARGET_VS_SQLITE}x the SQLite peer's (same op sequence) | {vs_sqlite:.1}x ({:.0} vs {:.0} commits/s of wall time; {:.2}x of the target); {vs_sqlite_calls:.1}x counting commit calls only; {vs_naive:.0}x the naive durable design | {} |",
        helios_rate,
        sqlite.commits_per_s(),
        vs_sqlite / TARGET_VS_SQLITE,
        verdict_cell(vs_sqlite >= TARGET_VS_SQLITE)
    );
    ExitCode::SUCCESS
}
