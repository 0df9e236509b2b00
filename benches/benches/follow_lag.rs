//! Follow lag: how soon `helios read --follow`, in a process of its own, prints a critical
//! append after the writer's acknowledgement, and what following costs the writer.
//!
//! The writer (this process, the library) appends critical events to one stream at a steady
//! rate, in rounds that alternate between a follower attached and none, so drift on a shared
//! machine hits both alike. The follower is the release `helios` binary; a thread here reads
//! its stdout and stamps each line as it arrives. Each payload carries its version, so each
//! line is matched to its append; every version must arrive exactly once and in order.
//!
//! Run: `cargo build --release -p helios-cli && cargo bench -p helios-benches --bench
//! follow_lag` (`-- --help` lists the options).

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use helios::{Durability, Version};
use helios_benches::report::{met, ratio, row, us};
use helios_benches::{Machine, args, scratch_dir};
use helios_workloads::latency::{Latencies, Summary};

/// Target: p99 of acknowledgement to printed line.
const TARGET_LAG_P99: Duration = Duration::from_millis(5);
/// Target: the writer's critical p50 with a follower, as a multiple of without.
const TARGET_P50_RATIO: f64 = 1.1;
/// Target: the writer's critical p99 with a follower, as a multiple of without.
const TARGET_P99_RATIO: f64 = 1.5;

/// Run sizes, from the command line.
#[derive(Clone, Debug, clap::Args)]
struct Config {
    /// Critical appends per round.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    events: u64,
    /// Rounds with a follower (and as many without), alternating.
    #[arg(long, value_name = "R", default_value_t = 3)]
    rounds: u64,
    /// Appends per second (a steady rate, so that the follower's lag is not a queue).
    #[arg(long, value_name = "N", default_value_t = 500)]
    rate: u64,
    /// The `helios` binary to follow with. [default: target/release/helios]
    #[arg(long, value_name = "PATH")]
    helios_bin: Option<PathBuf>,
}

fn main() {
    let config: Config = args::parse(
        "follow_lag",
        "Follow lag of `helios read --follow` in another process, and its cost to the writer",
    );
    let bin = config
        .helios_bin
        .clone()
        .unwrap_or_else(helios_benches::cli_bin::default_helios_bin);
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release -p helios-cli`",
        bin.display()
    );
    println!("{}", Machine::describe());
    println!("{config:?}");
    let mut lag = Latencies::new();
    let mut with = Latencies::new();
    let mut alone = Latencies::new();
    let mut follower_cpu = Duration::ZERO;
    let mut followed_wall = Duration::ZERO;
    for round in 0..config.rounds {
        for followed in [round % 2 == 0, round % 2 == 1] {
            if followed {
                let (cpu, wall) = run_round(&config, Some(&bin), &mut with, &mut lag);
                follower_cpu += cpu;
                followed_wall += wall;
            } else {
                run_round(&config, None, &mut alone, &mut lag);
            }
        }
    }
    let (lag, with, alone) = (lag.summary(), with.summary(), alone.summary());
    print_report(&lag, &with, &alone, follower_cpu, followed_wall);
}

/// One round on a fresh store: `events` critical appends at `rate`; with `follower`, the
/// binary follows the stream and each version's lag is recorded. Returns the follower's CPU
/// time and the round's wall time.
fn run_round(
    config: &Config,
    follower: Option<&PathBuf>,
    writer: &mut Latencies,
    lag: &mut Latencies,
) -> (Duration, Duration) {
    let dir = scratch_dir("follow-lag-");
    let engine = helios::Engine::open(dir.path(), helios::Options::default()).expect("open");
    engine
        .append("s", &[b"set k 0".as_slice()], Durability::Critical, None)
        .expect("first append");
    let child = follower.map(|bin| {
        let mut child = Command::new(bin)
            .args(["read", dir.path().to_str().expect("UTF-8"), "s", "--follow"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the follower");
        let stdout = child.stdout.take().expect("stdout");
        let (send, receive) = mpsc::channel::<(u64, Instant)>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let at = Instant::now();
                let Ok(line) = line else { break };
                let version = line.split('\t').next().and_then(|v| v.parse().ok());
                if send.send((version.unwrap_or(0), at)).is_err() {
                    break;
                }
            }
        });
        // The follower is running once it printed the first event.
        let (first, _) = receive
            .recv_timeout(Duration::from_secs(30))
            .expect("the follower printed the first event");
        assert_eq!(first, 1);
        (child, receive)
    });
    let period = Duration::from_secs_f64(1.0 / config.rate.max(1) as f64);
    let mut acks: Vec<Instant> = Vec::new();
    let started = Instant::now();
    for i in 0..config.events {
        let due = started + period.mul_f64(i as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let payload = format!("set k {i}");
        let t = Instant::now();
        let appended = engine
            .append("s", &[payload.as_bytes()], Durability::Critical, None)
            .expect("append");
        let ack = Instant::now();
        writer.record(ack - t);
        assert_eq!(appended.first, Version(i + 2));
        acks.push(ack);
    }
    let wall = started.elapsed();
    let mut cpu = Duration::ZERO;
    if let Some((mut child, receive)) = child {
        for (i, ack) in acks.iter().enumerate() {
            let (version, printed) = receive
                .recv_timeout(Duration::from_secs(30))
                .expect("every version is printed");
            assert_eq!(version, i as u64 + 2, "versions in order, once each");
            lag.record(printed.saturating_duration_since(*ack));
        }
        let before = children_cpu();
        child.kill().expect("kill the follower");
        child.wait().expect("wait for the follower");
        cpu = children_cpu().saturating_sub(before);
    }
    drop(engine);
    (cpu, wall)
}

/// User plus system CPU time of this process's waited-for children so far.
fn children_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let time = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    time(usage.user_time()) + time(usage.system_time())
}

fn print_report(lag: &Summary, with: &Summary, alone: &Summary, cpu: Duration, wall: Duration) {
    let lag_met = lag.p99_us <= TARGET_LAG_P99.as_secs_f64() * 1e6;
    let p50 = with.median_us / alone.median_us;
    let p99 = with.p99_us / alone.p99_us;
    println!();
    println!(
        "{}",
        row(&["measure", "p50", "p99", "max", "target", "verdict"])
    );
    println!("{}", row(&["---", "---:", "---:", "---:", "---", "---"]));
    println!(
        "{}",
        row(&[
            "acknowledgement to line printed by `read --follow`".to_owned(),
            us(lag.median_us),
            us(lag.p99_us),
            us(lag.max_us),
            format!("p99 <= {} ms", TARGET_LAG_P99.as_millis()),
            met(lag_met).to_owned(),
        ])
    );
    println!(
        "{}",
        row(&[
            "writer's critical append, alone".to_owned(),
            us(alone.median_us),
            us(alone.p99_us),
            us(alone.max_us),
            String::new(),
            String::new(),
        ])
    );
    println!(
        "{}",
        row(&[
            "writer's critical append, followed".to_owned(),
            format!(
                "{} ({})",
                us(with.median_us),
                ratio(with.median_us, alone.median_us)
            ),
            format!("{} ({})", us(with.p99_us), ratio(with.p99_us, alone.p99_us)),
            us(with.max_us),
            format!("p50 <= {TARGET_P50_RATIO}x, p99 <= {TARGET_P99_RATIO}x alone"),
            met(p50 <= TARGET_P50_RATIO && p99 <= TARGET_P99_RATIO).to_owned(),
        ])
    );
    println!();
    println!(
        "follower CPU: {:.1}% of one core over the followed rounds ({:.2} s in {:.2} s)",
        cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9) * 100.0,
        cpu.as_secs_f64(),
        wall.as_secs_f64()
    );
}
