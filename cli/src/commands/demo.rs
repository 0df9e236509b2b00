//! `helios demo`: a small end-to-end workload with latencies, throughput and sizes.
//!
//! What it does, in order: appends `--events` normal events round-robin to a few streams, then
//! `--critical-events` critical events to one stream, timing every append; syncs and closes the
//! engine; reopens it (timed); reads every stream back and checks each event's version, class
//! and payload byte for byte against what was written. Any difference fails the command.
//!
//! Payloads are derived from (stream, version) by a fixed pseudo-random function, so the check
//! regenerates them instead of keeping every written byte in memory, and a demo run on a store
//! that already holds demo streams only checks the versions it appended itself.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use helios::{Durability, Engine, Version};

use crate::error::CliError;
use crate::store::OpenArgs;
use crate::text::{Align, pairs, table};

/// Payload length of every demo event, in bytes.
const PAYLOAD_LEN_BYTES: usize = 100;
/// Streams the normal events are spread over, round-robin.
const NORMAL_STREAM_COUNT: usize = 4;
/// Name of the stream of critical events.
const CRITICAL_STREAM: &str = "demo-critical";
/// Longest latency the histograms record exactly (longer ones are recorded as this): 60 s.
const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// The long help of `helios demo`.
pub const LONG_ABOUT: &str = "Run a small workload end to end: append normal events (write-behind) \
    to a few streams and critical events (fdatasync, group commit) to another, timing every \
    append; close and reopen the store; read everything back and check it byte for byte. \
    Prints append latency percentiles per durability class, throughput, reopen time, read-back \
    throughput and the bytes the log takes.\n\n\
    Without --dir it runs in a fresh temporary directory (under $TMPDIR), removed at exit; \
    latencies depend on the file system that directory is on.";

/// Arguments of `helios demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Store directory to use and keep. [default: a fresh temporary directory, removed at exit]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Normal (write-behind) events to append, 100 bytes each, spread over 4 streams.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub events: u64,
    /// Critical (fdatasync) events to append, 100 bytes each, to one stream.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub critical_events: u64,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// One stream the demo writes: where it started and where it ended.
#[derive(Debug)]
struct DemoStream {
    name: String,
    durability: Durability,
    /// Head before the demo appended (non-zero when `--dir` holds an earlier run).
    head_before: Version,
    /// Head after the demo's appends.
    head: Version,
}

/// Per-append latencies of one durability class, in nanoseconds.
struct Latencies {
    histogram: Histogram<u64>,
    total: Duration,
}

impl Latencies {
    fn new() -> Result<Latencies, CliError> {
        let histogram = Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3)
            .map_err(|e| CliError::Histogram(e.to_string()))?;
        Ok(Latencies {
            histogram,
            total: Duration::ZERO,
        })
    }

    fn record(&mut self, elapsed: Duration) {
        self.total += elapsed;
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(ns.max(1));
    }

    /// Count, p50, p99, p99.9 and max, in microseconds with one decimal.
    fn row(&self, class: &str) -> Vec<String> {
        let us = |ns: u64| format!("{:.1}", ns as f64 / 1000.0);
        let h = &self.histogram;
        vec![
            class.to_owned(),
            thousands(h.len()),
            us(h.value_at_quantile(0.5)),
            us(h.value_at_quantile(0.99)),
            us(h.value_at_quantile(0.999)),
            us(h.max()),
        ]
    }
}

/// Runs `helios demo`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let temp;
    let (dir, where_note): (&Path, &str) = match &args.dir {
        Some(dir) => (dir, "kept"),
        None => {
            temp = tempfile::tempdir().map_err(CliError::io("create a temporary directory"))?;
            (temp.path(), "temporary, removed at exit")
        }
    };
    let mut summary = String::new();
    let _ = writeln!(summary, "helios demo in {} ({where_note})\n", dir.display());

    // Write.
    let engine = args.open.open(dir)?;
    let new_stream = |name: String, durability: Durability| {
        let head = engine.head(&name).unwrap_or(Version::ZERO);
        DemoStream {
            name,
            durability,
            head_before: head,
            head,
        }
    };
    let mut normal_streams: Vec<DemoStream> = (0..NORMAL_STREAM_COUNT)
        .map(|i| new_stream(format!("demo-normal-{i}"), Durability::Normal))
        .collect();
    let mut critical_stream = new_stream(CRITICAL_STREAM.to_owned(), Durability::Critical);
    let mut normal = Latencies::new()?;
    let normal_started = Instant::now();
    let mut next = 0;
    for _ in 0..args.events {
        append_timed(&engine, &mut normal_streams[next], &mut normal)?;
        next = (next + 1) % normal_streams.len();
    }
    let normal_wall = normal_started.elapsed();
    let mut critical = Latencies::new()?;
    let critical_started = Instant::now();
    for _ in 0..args.critical_events {
        append_timed(&engine, &mut critical_stream, &mut critical)?;
    }
    let critical_wall = critical_started.elapsed();
    engine.sync()?;
    let close_started = Instant::now();
    engine.close()?;
    let close_time = close_started.elapsed();

    // Reopen and read back.
    let reopen_started = Instant::now();
    let engine = args.open.open(dir)?;
    let reopen_time = reopen_started.elapsed();
    let read_started = Instant::now();
    let mut read_count = 0u64;
    for stream in normal_streams
        .iter()
        .chain(std::iter::once(&critical_stream))
    {
        read_count += check_stream(&engine, stream)?;
    }
    let read_time = read_started.elapsed();

    // Sizes: the log up to its last record, and everything in the directory.
    let segments = engine.segments()?;
    let end = engine.open_report().log.end;
    let log_bytes: u64 = segments
        .iter()
        .map(|s| match s.id.cmp(&end.segment) {
            std::cmp::Ordering::Less => s.file_len_bytes,
            std::cmp::Ordering::Equal => end.offset,
            std::cmp::Ordering::Greater => 0,
        })
        .sum();
    let used_segments = segments.iter().filter(|s| s.id <= end.segment).count();
    let reindexed = engine.open_report().reindexed;
    let torn_tail = engine.open_report().log.truncated.is_some();
    engine.close()?;
    let dir_bytes = dir_size_bytes(dir).map_err(CliError::io("measure the store directory"))?;

    let total_events = args.events + args.critical_events;
    let payload_bytes = total_events * PAYLOAD_LEN_BYTES as u64;
    let _ = writeln!(
        summary,
        "appended {} normal events to {NORMAL_STREAM_COUNT} streams and {} critical events to 1 \
         stream, {PAYLOAD_LEN_BYTES} bytes each\n",
        thousands(args.events),
        thousands(args.critical_events),
    );
    summary.push_str(&table(
        0,
        &[
            ("append latency (us)", Align::Left),
            ("EVENTS", Align::Right),
            ("p50", Align::Right),
            ("p99", Align::Right),
            ("p99.9", Align::Right),
            ("max", Align::Right),
        ],
        &[normal.row("  normal"), critical.row("  critical")],
    ));
    summary.push('\n');
    let rows = vec![
        (
            "normal throughput",
            format!(
                "{} events/s ({} events in {})",
                per_second(args.events, normal_wall),
                thousands(args.events),
                ms(normal_wall)
            ),
        ),
        (
            "critical throughput",
            format!(
                "{} events/s ({} sequential appends in {})",
                per_second(args.critical_events, critical_wall),
                thousands(args.critical_events),
                ms(critical_wall)
            ),
        ),
        ("close", ms(close_time)),
        (
            "reopen",
            format!(
                "{} ({} events re-indexed, {})",
                ms(reopen_time),
                thousands(reindexed),
                if torn_tail {
                    "a torn tail removed"
                } else {
                    "no torn tail"
                }
            ),
        ),
        (
            "read-back",
            format!(
                "{} events checked byte for byte in {} ({} events/s)",
                thousands(read_count),
                ms(read_time),
                per_second(read_count, read_time)
            ),
        ),
        (
            "log bytes",
            format!(
                "{} through the last record, in {used_segments} {} ({} of payload)",
                thousands(log_bytes),
                if used_segments == 1 {
                    "segment"
                } else {
                    "segments"
                },
                thousands(payload_bytes)
            ),
        ),
        (
            "store directory",
            format!(
                "{} bytes (segments are preallocated with zeros; metadata included)",
                thousands(dir_bytes)
            ),
        ),
    ];
    summary.push_str(&pairs(0, &rows));
    std::io::stdout()
        .lock()
        .write_all(summary.as_bytes())
        .map_err(CliError::io("write to stdout"))?;
    Ok(ExitCode::SUCCESS)
}

/// Appends the next event of `stream`, recording how long the append took.
fn append_timed(
    engine: &Engine,
    stream: &mut DemoStream,
    latencies: &mut Latencies,
) -> Result<(), CliError> {
    let version = Version(stream.head.get() + 1);
    let payload = payload(&stream.name, version);
    let started = Instant::now();
    let appended = engine.append(
        &stream.name,
        &[payload],
        stream.durability,
        Some(stream.head),
    )?;
    latencies.record(started.elapsed());
    if appended.last != version {
        return Err(CliError::DemoCheck {
            stream: stream.name.clone(),
            version,
            reason: format!("the append was acknowledged as {}", appended.last),
        });
    }
    stream.head = version;
    Ok(())
}

/// Reads back what the demo appended to `stream` and checks it; returns the events read.
fn check_stream(engine: &Engine, stream: &DemoStream) -> Result<u64, CliError> {
    let fail = |version: Version, reason: String| CliError::DemoCheck {
        stream: stream.name.clone(),
        version,
        reason,
    };
    let head = engine.head(&stream.name).unwrap_or(Version::ZERO);
    if head != stream.head {
        return Err(fail(
            head,
            format!("the head after reopening is {head}, not {}", stream.head),
        ));
    }
    let first = Version(stream.head_before.get() + 1);
    let mut expected = first;
    for event in engine.read(&stream.name, first..=stream.head)? {
        let event = event?;
        if event.version != expected {
            return Err(fail(expected, format!("read {} instead", event.version)));
        }
        if event.durability != stream.durability {
            return Err(fail(
                expected,
                format!(
                    "written as {} but read back as {}",
                    stream.durability, event.durability
                ),
            ));
        }
        let written = payload(&stream.name, expected);
        if event.payload != written {
            let at = event.payload.iter().zip(&written).position(|(a, b)| a != b);
            let reason = match at {
                Some(at) => format!("payload differs from what was written at byte {at}"),
                None => format!(
                    "payload is {} bytes long, {} were written",
                    event.payload.len(),
                    written.len()
                ),
            };
            return Err(fail(expected, reason));
        }
        expected = Version(expected.get() + 1);
    }
    if expected != Version(stream.head.get() + 1) {
        return Err(fail(
            expected,
            format!("reading stopped before the head {}", stream.head),
        ));
    }
    Ok(stream.head.get() - stream.head_before.get())
}

/// SplitMix64: a tiny, well-mixed deterministic generator.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The payload of `stream` at `version`: readable, unique, and the same on every call.
fn payload(stream: &str, version: Version) -> Vec<u8> {
    // FNV-1a of the name, mixed with the version, seeds the filler.
    let mut state = stream.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) ^ version.get().wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut out = format!("{stream} {version} ").into_bytes();
    out.truncate(PAYLOAD_LEN_BYTES);
    while out.len() < PAYLOAD_LEN_BYTES {
        let r = splitmix64(&mut state);
        out.extend(r.to_le_bytes().iter().map(|b| b'a' + b % 26));
    }
    out.truncate(PAYLOAD_LEN_BYTES);
    out
}

/// Total length of the files under `dir`.
fn dir_size_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// `n` with thousands separators: `20,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Events per second, rounded, with thousands separators.
fn per_second(events: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return "-".to_owned();
    }
    let rate = (events as f64 / seconds).round();
    // A rate is far below 2^53, so the conversion back is exact.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a finite, rounded, non-negative rate"
    )]
    let rate = rate as u64;
    thousands(rate)
}

/// A duration in milliseconds with one decimal.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
