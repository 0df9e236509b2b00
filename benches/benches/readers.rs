//! Readers in other processes beside one writer: what they cost the writer, and how fast they
//! read.
//!
//! The writer (this process) appends critical events to one stream at a steady rate, in rounds
//! that alternate between no reader and `--readers` reader processes, so drift on a shared
//! machine hits both alike. Every other write is the raw durable-write floor instead
//! (`helios_peers::floor::RawFloor`: a `pwrite` and an `fdatasync` into a preallocated file on
//! the same disk): how much the readers slow a durable write that has none of the engine's
//! work, on this machine, in the same rounds. Each reader is this program again (`--reader-of DIR`): a
//! `ReadOnly` handle that refreshes itself every `--refresh-ms` (following the writer's
//! published durable end, adopting its new checkpoints) and views random versions of the
//! stream at a steady `--view-rate` (waking every `--wake-ms` to take the views due since
//! its last wake-up), each view with 10 point reads of random keys, checked against nothing
//! but timed (the engine's tests check answers; `tests/it/readers.rs`). A
//! reader views every version once before it says it is ready, so the measured views of the
//! versions it opened with are warm; the versions the writer appends meanwhile are not.
//!
//! Run: `cargo bench -p helios-benches --bench readers` (`-- --help` lists the options).

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use helios::{Durability, Options, ReadOnly, Version};
use helios_benches::report::{met, ratio, row, us};
use helios_benches::{Machine, args, scratch_dir};
use helios_peers::floor::RawFloor;
use helios_workloads::Rng;
use helios_workloads::latency::{Latencies, Summary};

/// Target: the writer's critical p50 with the readers, as a multiple of alone.
const TARGET_P50_RATIO: f64 = 1.1;
/// Target: the writer's critical p99 with the readers, as a multiple of alone.
const TARGET_P99_RATIO: f64 = 1.5;
/// Target: the readers' warm view + 10 point reads, p99.
const TARGET_VIEW_P99_US: f64 = 20.0;
/// Point reads per view.
const POINT_READS: usize = 10;
/// The stream the writer appends to and the readers view.
const STREAM: &str = "s";

/// Options, from the command line.
#[derive(Clone, Debug, clap::Args)]
struct Config {
    /// Reader processes.
    #[arg(long, value_name = "N", default_value_t = 8)]
    readers: u32,
    /// Views per second of each reader.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    view_rate: u64,
    /// Critical appends per second of the writer.
    #[arg(long, value_name = "N", default_value_t = 500)]
    write_rate: u64,
    /// Seconds of writing per round.
    #[arg(long, value_name = "S", default_value_t = 5)]
    seconds: u64,
    /// Rounds with readers (and as many without), alternating.
    #[arg(long, value_name = "R", default_value_t = 2)]
    rounds: u64,
    /// Events in the stream before the rounds.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    events: u64,
    /// Keys the events set.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    keys: u64,
    /// Readers view only the versions the stream had when they opened (all checkpointed, so
    /// the view path alone), instead of any version up to the head they refreshed to.
    #[arg(long)]
    opened_versions_only: bool,
    /// How often a reader refreshes itself, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5)]
    refresh_ms: u64,
    /// How often a reader wakes, in milliseconds: each wake-up it does the views (and as many
    /// floor samples) due since the last one, `view-rate x wake-ms / 1000` of each. 0 wakes it
    /// for every sample (4,000 wake-ups a second per reader at the default rate).
    #[arg(long, value_name = "MS", default_value_t = 5)]
    wake_ms: u64,
    /// Run as one reader of the store in DIR (what the bench spawns).
    #[arg(long, value_name = "DIR", hide = true)]
    reader_of: Option<PathBuf>,
    /// A reader's seed.
    #[arg(long, value_name = "N", default_value_t = 1, hide = true)]
    seed: u64,
}

fn main() {
    let config: Config = args::parse(
        "readers",
        "Reader processes beside a writer: their cost to it, and their view latency",
    );
    if let Some(dir) = &config.reader_of {
        run_reader(&config, dir);
        return;
    }
    println!("{}", Machine::describe());
    println!("{config:?}");
    let dir = scratch_dir("readers-");
    let writer = helios::Engine::open(dir.path(), Options::default()).expect("open");
    let mut rng = Rng::new(7);
    let mut appended = 0;
    while appended < config.events {
        let batch: Vec<Vec<u8>> = (0..100.min(config.events - appended))
            .map(|_| event(&mut rng, config.keys))
            .collect();
        appended += batch.len() as u64;
        writer
            .append(STREAM, &batch, Durability::Normal, None)
            .expect("load");
    }
    writer.sync().expect("sync");
    writer.checkpoints().sync().expect("checkpoints");

    let floor_dir = scratch_dir("readers-floor-");
    let mut floor =
        RawFloor::create(&floor_dir.path().join("floor"), 64 << 20).expect("the raw floor's file");
    let mut alone = Writes::default();
    let mut with = Writes::default();
    let mut readers: Vec<ReaderReport> = Vec::new();
    for round in 0..config.rounds {
        for with_readers in [round % 2 == 1, round % 2 == 0] {
            if !with_readers {
                write_round(&config, &writer, &mut floor, &mut rng, &mut alone);
                continue;
            }
            let mut children: Vec<Child> = (0..config.readers)
                .map(|i| spawn_reader(&config, dir.path(), round * 100 + u64::from(i)))
                .collect();
            write_round(&config, &writer, &mut floor, &mut rng, &mut with);
            for child in &mut children {
                readers.push(ReaderReport::read(child));
            }
        }
    }
    print_report(&config, &alone, &with, &readers);
}

/// A key-value event on one of `keys` keys.
fn event(rng: &mut Rng, keys: u64) -> Vec<u8> {
    format!("set key{} {:016x}", rng.next_u64() % keys, rng.next_u64()).into_bytes()
}

/// The writer's latencies in one kind of round.
#[derive(Default)]
struct Writes {
    /// Helios's critical appends.
    critical: Latencies,
    /// The raw durable-write floor's.
    floor: Latencies,
}

/// The writer's part of a round: durable writes at the write rate, critical appends and raw
/// floor writes of the same payload taking turns.
fn write_round(
    config: &Config,
    writer: &helios::Engine,
    floor: &mut RawFloor,
    rng: &mut Rng,
    writes: &mut Writes,
) {
    let period = Duration::from_secs_f64(1.0 / config.write_rate.max(1) as f64);
    let count = config.write_rate * config.seconds;
    let started = Instant::now();
    for i in 0..count {
        let due = started + period.mul_f64(i as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let payload = event(rng, config.keys);
        if i % 2 == 1 {
            writes
                .floor
                .time(|| floor.append(&payload).expect("a floor write"));
            continue;
        }
        writes.critical.time(|| {
            writer
                .append(STREAM, &[payload.as_slice()], Durability::Critical, None)
                .expect("append")
        });
    }
}

/// Samples (views and floor samples) a reader takes per wake-up.
fn samples_per_wake(config: &Config) -> u64 {
    if config.wake_ms == 0 {
        1
    } else {
        2 * (config.view_rate * config.wake_ms / 1000).max(1)
    }
}

/// Spawns one reader process and waits until it has opened the store.
fn spawn_reader(config: &Config, dir: &std::path::Path, seed: u64) -> Child {
    let exe = std::env::current_exe().expect("this program's path");
    let mut child = Command::new(exe)
        .args([
            "--reader-of",
            dir.to_str().expect("UTF-8"),
            "--seed",
            &seed.to_string(),
            "--seconds",
            &config.seconds.to_string(),
            "--view-rate",
            &config.view_rate.to_string(),
            "--refresh-ms",
            &config.refresh_ms.to_string(),
            "--wake-ms",
            &config.wake_ms.to_string(),
            "--keys",
            &config.keys.to_string(),
        ])
        .args(
            config
                .opened_versions_only
                .then_some("--opened-versions-only"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn a reader");
    let stdout = child.stdout.as_mut().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the reader's first line");
    assert_eq!(line.trim(), "ready", "the reader did not open the store");
    child
}

/// One reader: refreshes every `refresh_ms` and views random versions at `view_rate` for
/// `seconds`, then prints its numbers on one line, and on two more the latency of every view
/// and of every floor sample (`Latencies::to_line`).
fn run_reader(config: &Config, dir: &std::path::Path) {
    let reader = ReadOnly::open(dir, Options::default()).expect("open read-only");
    // Warm: every version viewed once, so each checkpoint is mapped and validated (once per
    // process) before the measured views.
    let opened = reader.head(STREAM).expect("the stream").0;
    for version in 1..=opened {
        std::hint::black_box(
            reader
                .view(STREAM, Version(version))
                .expect("view")
                .get(b"key0"),
        );
    }
    // The floor: the same 10 point reads on the state in a plain map, woken the same way.
    let floor_state = reader
        .state_at(STREAM, Version(opened))
        .expect("the state at open");
    println!("ready");
    std::io::stdout().flush().expect("flush");
    let mut rng = Rng::new(config.seed);
    let mut views = Latencies::new();
    let mut floor = Latencies::new();
    let mut refreshes = Latencies::new();
    let mut replayed_max = 0;
    let refresh_every = Duration::from_millis(config.refresh_ms);
    // Views and floor samples alternate, each at the view rate, so both are taken in the same
    // state of the caches (a paced reader's are colder than a busy loop's). The samples due in
    // a wake period run back to back, then the reader sleeps to the next: the rate stays
    // steady over the period, and the scheduler's wake-ups do not outnumber the samples.
    let period = Duration::from_secs_f64(1.0 / (2 * config.view_rate.max(1)) as f64);
    let samples_per_wake = samples_per_wake(config);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(config.seconds);
    let mut next_refresh = started;
    let mut first_head = None;
    let mut i = 0u64;
    // Per view: its latency, whether a refresh came just before it, and whether the process was
    // preempted during it (`getrusage`, outside the timed part): what the slowest views share.
    let mut slow: Vec<(Duration, bool, bool)> = Vec::new();
    let mut refreshed = false;
    while Instant::now() < deadline {
        if Instant::now() >= next_refresh {
            refreshes.time(|| reader.refresh().expect("refresh"));
            next_refresh += refresh_every;
            refreshed = true;
        }
        let head = reader.head(STREAM).expect("the stream").0;
        let opened = *first_head.get_or_insert(head);
        let upto = if config.opened_versions_only {
            opened
        } else {
            head
        };
        let version = Version(1 + rng.next_u64() % upto);
        let keys: Vec<Vec<u8>> = (0..POINT_READS)
            .map(|_| format!("key{}", rng.next_u64() % config.keys).into_bytes())
            .collect();
        // Which comes first after a wake-up (when the caches are coldest) flips every wake-up
        // (a wake-up for each sample alternates anyway).
        let flip = if samples_per_wake == 1 {
            0
        } else {
            i / samples_per_wake
        };
        if (i + flip).is_multiple_of(2) {
            let switches = preemptions();
            let t = Instant::now();
            let view = reader.view(STREAM, version).expect("view");
            for key in &keys {
                std::hint::black_box(view.get(key));
            }
            let elapsed = t.elapsed();
            views.record(elapsed);
            slow.push((elapsed, refreshed, preemptions() > switches));
            refreshed = false;
            replayed_max = replayed_max.max(view.report().events_replayed);
        } else {
            let t = Instant::now();
            for key in &keys {
                std::hint::black_box(floor_state.get(key));
            }
            floor.record(t.elapsed());
        }
        i += 1;
        if !i.is_multiple_of(samples_per_wake) {
            continue;
        }
        if let Some(wait) =
            (started + period.mul_f64(i as f64)).checked_duration_since(Instant::now())
        {
            std::thread::sleep(wait);
        }
    }
    let (v, r, f) = (views.summary(), refreshes.summary(), floor.summary());
    // The slowest 1% of views, and how many of them were preempted or followed a refresh.
    slow.sort_unstable_by_key(|(elapsed, ..)| std::cmp::Reverse(*elapsed));
    slow.truncate(slow.len() / 100);
    let preempted = slow.iter().filter(|(.., p)| *p).count();
    let after_refresh = slow.iter().filter(|(_, r, _)| *r).count();
    println!(
        "{} {} {} {} {} {} {} {} {} {} {}",
        v.count,
        v.p99_us,
        replayed_max,
        r.median_us,
        r.p99_us,
        first_head.unwrap_or(0),
        reader.head(STREAM).map_or(0, |h| h.0),
        f.p99_us,
        slow.len(),
        preempted,
        after_refresh
    );
    // Every view and floor sample, for the writer to pool with the other readers'.
    println!("{}", views.to_line());
    println!("{}", floor.to_line());
}

/// The process's involuntary context switches so far.
fn preemptions() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map_or(0, |usage| usage.involuntary_context_switches())
}

/// What one reader printed.
struct ReaderReport {
    views: u64,
    view_p99_us: f64,
    replayed_max: u64,
    refresh_p50_us: f64,
    refresh_p99_us: f64,
    /// The stream's head when it started and when it ended: it followed the writer.
    heads: (u64, u64),
    floor_p99_us: f64,
    /// The slowest 1% of its views: how many, how many were preempted, how many followed a
    /// refresh.
    slowest: (u64, u64, u64),
    /// Every view's latency, and every floor sample's.
    views_all: Latencies,
    floor_all: Latencies,
}

impl ReaderReport {
    fn read(child: &mut Child) -> ReaderReport {
        let (mut line, mut views, mut floor) = (String::new(), String::new(), String::new());
        let mut out = BufReader::new(child.stdout.as_mut().expect("stdout"));
        for l in [&mut line, &mut views, &mut floor] {
            out.read_line(l).expect("the reader's report");
        }
        drop(out);
        let status = child.wait().expect("wait for a reader");
        assert!(status.success(), "a reader failed: {status}");
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 11, "a reader's report: {line:?}");
        let int = |i: usize| -> u64 { fields[i].parse().expect("a count") };
        let float = |i: usize| -> f64 { fields[i].parse().expect("a number") };
        ReaderReport {
            views: int(0),
            view_p99_us: float(1),
            replayed_max: int(2),
            refresh_p50_us: float(3),
            refresh_p99_us: float(4),
            heads: (int(5), int(6)),
            floor_p99_us: float(7),
            slowest: (int(8), int(9), int(10)),
            views_all: Latencies::from_line(&views).expect("the reader's views"),
            floor_all: Latencies::from_line(&floor).expect("the reader's floor samples"),
        }
    }
}

fn print_report(config: &Config, alone: &Writes, with: &Writes, readers: &[ReaderReport]) {
    let (floor_alone, floor_with) = (alone.floor.summary(), with.floor.summary());
    let (alone, with) = (alone.critical.summary(), with.critical.summary());
    let p50 = with.median_us / alone.median_us;
    let p99 = with.p99_us / alone.p99_us;
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let max = |xs: Vec<f64>| xs.into_iter().fold(f64::NAN, f64::max);
    let pooled = |of: fn(&ReaderReport) -> &Latencies| {
        let mut all = Latencies::new();
        for r in readers {
            all.merge(of(r));
        }
        all.summary()
    };
    let (views_pooled, floor_pooled) = (pooled(|r| &r.views_all), pooled(|r| &r.floor_all));
    let view_p99_max = max(readers.iter().map(|r| r.view_p99_us).collect());
    let view_p99_median = median(readers.iter().map(|r| r.view_p99_us).collect());
    let refresh_p50 = median(readers.iter().map(|r| r.refresh_p50_us).collect());
    let refresh_p99 = max(readers.iter().map(|r| r.refresh_p99_us).collect());
    let views: u64 = readers.iter().map(|r| r.views).sum();
    let replayed = readers.iter().map(|r| r.replayed_max).max().unwrap_or(0);
    let followed = readers.iter().all(|r| r.heads.1 > r.heads.0);
    println!();
    println!("{}", row(&["measure", "p50", "p99", "target", "verdict"]));
    println!("{}", row(&["---", "---:", "---:", "---", "---"]));
    alone_and_with(
        "writer's critical append",
        config.readers,
        &alone,
        &with,
        [
            format!("p50 <= {TARGET_P50_RATIO}x, p99 <= {TARGET_P99_RATIO}x alone"),
            met(p50 <= TARGET_P50_RATIO && p99 <= TARGET_P99_RATIO).to_owned(),
        ],
    );
    alone_and_with(
        "floor: `pwrite` + `fdatasync`",
        config.readers,
        &floor_alone,
        &floor_with,
        [String::new(), String::new()],
    );
    println!(
        "{}",
        row(&[
            format!(
                "readers' view + {POINT_READS} point reads (every reader's views; in brackets, \
                 each reader run's p99: median, max)"
            ),
            us(views_pooled.median_us),
            format!(
                "{} ({}, {})",
                us(views_pooled.p99_us),
                us(view_p99_median),
                us(view_p99_max)
            ),
            format!("p99 < {TARGET_VIEW_P99_US} us"),
            met(views_pooled.p99_us < TARGET_VIEW_P99_US).to_owned(),
        ])
    );
    let floor_p99_median = median(readers.iter().map(|r| r.floor_p99_us).collect());
    let floor_p99_max = max(readers.iter().map(|r| r.floor_p99_us).collect());
    println!(
        "{}",
        row(&[
            format!("floor: the same {POINT_READS} reads on a map in memory, woken the same way"),
            us(floor_pooled.median_us),
            format!(
                "{} ({}, {})",
                us(floor_pooled.p99_us),
                us(floor_p99_median),
                us(floor_p99_max)
            ),
            String::new(),
            String::new(),
        ])
    );
    println!(
        "{}",
        row(&[
            format!("readers' refresh, every {} ms", config.refresh_ms),
            us(refresh_p50),
            us(refresh_p99),
            String::new(),
            String::new(),
        ])
    );
    println!();
    let (slowest, preempted, after_refresh) = readers.iter().fold((0, 0, 0), |acc, r| {
        (
            acc.0 + r.slowest.0,
            acc.1 + r.slowest.1,
            acc.2 + r.slowest.2,
        )
    });
    println!(
        "{views} views by {} reader runs; at most {replayed} events replayed per view; every \
         reader followed the writer's head: {followed}",
        readers.len()
    );
    println!(
        "Each reader woke every {} us and took {} views and as many floor samples back to back.",
        samples_per_wake(config) * 500_000 / config.view_rate.max(1),
        samples_per_wake(config).div_ceil(2)
    );
    println!(
        "The slowest 1% of each run's views, {slowest} in all: {preempted} preempted during the \
         view (an involuntary context switch), {after_refresh} right after a refresh (one view \
         in {} follows one).",
        (config.view_rate * config.refresh_ms / 1000).max(1)
    );
}

/// Two rows of the report: `what` alone, then with the readers, each figure with its ratio to
/// alone; `target` fills the last two cells of the second.
fn alone_and_with(what: &str, readers: u32, alone: &Summary, with: &Summary, target: [String; 2]) {
    let [target, verdict] = target;
    println!(
        "{}",
        row(&[
            format!("{what}, alone"),
            us(alone.median_us),
            us(alone.p99_us),
            String::new(),
            String::new(),
        ])
    );
    println!(
        "{}",
        row(&[
            format!("{what}, {readers} readers"),
            format!(
                "{} ({})",
                us(with.median_us),
                ratio(with.median_us, alone.median_us)
            ),
            format!("{} ({})", us(with.p99_us), ratio(with.p99_us, alone.p99_us)),
            target,
            verdict,
        ])
    );
}
