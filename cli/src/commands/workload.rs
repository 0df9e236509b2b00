//! `helios workload`: mixed durable traffic on a few streams, with one line on stdout per
//! acknowledged write, so that a test (or a person) can kill the process at any moment and
//! check what survived against what was acknowledged.
//!
//! Invariants of the output, which the crash test in `cli/tests/cli.rs` relies on:
//! - a line is written and flushed only after the engine call it reports returned;
//! - lines come in the order of the calls, which is the order of the records in the log (one
//!   thread makes every call);
//! - a `sync` line follows a returned `Engine::sync`: every write printed before it is durable;
//! - every payload is derived from its line (see `LONG_ABOUT`), so a survivor can be checked
//!   byte for byte, and a speculative event that was never promoted is recognisable (`spec-`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use helios::{Durability, Engine, Version};
use helios_workloads::Rng;

use crate::error::CliError;
use crate::limits::{self, Count};
use crate::store::OpenArgs;

/// Streams the workload writes by default.
const DEFAULT_STREAM_COUNT: u32 = 3;
/// Most events in one append or one promotion.
const EVENTS_PER_WRITE_MAX: u64 = 3;
/// `--streams`: the workload keeps each stream's name and head in memory and picks one per
/// write, so the bound is about what a crash test needs, not about memory.
const STREAMS: Count = Count {
    min: 1,
    max: 1000,
    what: "a number of streams",
    bound: "a crash test needs a few streams; more only spread the writes thinner",
};

/// The long help of `helios workload`.
pub const LONG_ABOUT: &str = "Run mixed durable traffic on a few streams (`workload-0`, \
    `workload-1`, ...) until killed, or for --seconds: critical appends, normal appends, and \
    promotions (fork a branch at the stream's head, append speculative events to it and to a \
    sibling branch, promote the first branch's first events with the critical or the normal \
    class, prune the sibling, discard the rest), with an explicit sync now and then. It is \
    meant for crash testing: kill it at any moment and check the store against its output.\n\n\
    One line is printed and flushed on stdout per acknowledged write, after the engine call \
    returned, in the order of the calls (which is the order of the log):\n\
    - `critical STREAM FIRST LAST TAG`: a critical append of versions FIRST..=LAST, durable;\n\
    - `normal STREAM FIRST LAST TAG`: a normal append, durable once a `sync` line follows;\n\
    - `promote-critical STREAM FIRST LAST TAG`: a critical promotion, durable;\n\
    - `promote-normal STREAM FIRST LAST TAG`: a normal promotion, durable once a `sync` line \
    follows;\n\
    - `sync`: `Engine::sync` returned; every write printed before it is durable.\n\n\
    TAG is `SEED-SEQ`, SEQ counting the run's writes from 0. Event i (from 0) of a line, at \
    version FIRST + i, has the payload `set k<i> <KIND>-<TAG>-<i>`, KIND being the line's first \
    word. Speculative events that are never promoted have payloads `set k<i> spec-<TAG>-<i>`: \
    none may ever be read back. Use a different --seed for each run on the same store, so \
    that payloads stay distinct.\n\n\
    With --seconds (at most 86400), the run ends with a sync (and its `sync` line) and a clean \
    close.\n\n\
    Exit status: 0 after a run with --seconds; without it the run ends only when the process \
    is killed (the status is the signal's); 2 on errors, including an acknowledgement other \
    than the one asked for (a version out of order, a branch that survived its prune).";

/// Arguments of `helios workload`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory (created if missing).
    pub dir: PathBuf,
    /// Stop after this many seconds (with a final sync) instead of running until killed: from 0
    /// to 86400 (one day).
    #[arg(long, value_name = "S", allow_negative_numbers = true,
          value_parser = limits::RUN_SECONDS.parser())]
    pub seconds: Option<Duration>,
    /// Streams to write, round-robin at random (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_STREAM_COUNT,
          allow_negative_numbers = true, value_parser = STREAMS.parser_u32())]
    pub streams: u32,
    /// Seed of the run's choices; it is part of every payload (decimal, or hexadecimal with
    /// `0x`).
    #[arg(long, value_name = "SEED", default_value_t = 1, allow_negative_numbers = true,
          value_parser = limits::parse_seed)]
    pub seed: u64,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// What a line reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Critical,
    Normal,
    PromoteCritical,
    PromoteNormal,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Critical => "critical",
            Kind::Normal => "normal",
            Kind::PromoteCritical => "promote-critical",
            Kind::PromoteNormal => "promote-normal",
        }
    }

    fn class(self) -> Durability {
        match self {
            Kind::Critical | Kind::PromoteCritical => Durability::Critical,
            Kind::Normal | Kind::PromoteNormal => Durability::Normal,
        }
    }
}

/// The payload of event `i` of a write of `word` (a line's first word, or `spec`) tagged `tag`.
fn payload(word: &str, tag: &str, i: u64) -> Vec<u8> {
    format!("set k{i} {word}-{tag}-{i}").into_bytes()
}

fn payloads(word: &str, tag: &str, range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    range.map(|i| payload(word, tag, i)).collect()
}

/// The run's state: the engine, each stream's head, and the output.
struct Workload<'a> {
    engine: &'a Engine,
    seed: u64,
    streams: Vec<(String, Version)>,
    seq: u64,
    out: std::io::StdoutLock<'static>,
}

impl Workload<'_> {
    /// Prints `line` and flushes it: only ever called after the call it reports returned.
    fn print(&mut self, line: &str) -> Result<(), CliError> {
        writeln!(self.out, "{line}")
            .and_then(|()| self.out.flush())
            .map_err(CliError::io("write to stdout"))
    }

    fn next_tag(&mut self) -> String {
        let tag = format!("{}-{}", self.seed, self.seq);
        self.seq += 1;
        tag
    }

    fn check(
        &self,
        stream: usize,
        what: &str,
        (first, last): (Version, Version),
        count: u64,
    ) -> Result<(), CliError> {
        let head = self.streams[stream].1;
        if first != Version(head.0 + 1) || last != Version(head.0 + count) {
            return Err(CliError::WorkloadCheck {
                stream: self.streams[stream].0.clone(),
                reason: format!(
                    "{what} of {count} events at head v{} was acknowledged as v{}..=v{}",
                    head.0, first.0, last.0
                ),
            });
        }
        Ok(())
    }

    fn report(
        &mut self,
        kind: Kind,
        stream: usize,
        last: Version,
        tag: &str,
    ) -> Result<(), CliError> {
        let first = Version(self.streams[stream].1.0 + 1);
        self.streams[stream].1 = last;
        let line = format!(
            "{} {} {} {} {tag}",
            kind.word(),
            self.streams[stream].0,
            first.0,
            last.0
        );
        self.print(&line)
    }

    /// A plain append of 1..=3 events.
    fn append(&mut self, kind: Kind, stream: usize, count: u64) -> Result<(), CliError> {
        let tag = self.next_tag();
        let events = payloads(kind.word(), &tag, 0..count);
        let (name, head) = &self.streams[stream];
        let appended = self
            .engine
            .append(name, &events, kind.class(), Some(*head))?;
        self.check(stream, "an append", (appended.first, appended.last), count)?;
        self.report(kind, stream, appended.last, &tag)
    }

    /// Fork at the head, speculative events on two branches, promote the first events of one,
    /// prune the other, discard the rest.
    fn promote(&mut self, kind: Kind, stream: usize, rng: &mut Rng) -> Result<(), CliError> {
        let tag = self.next_tag();
        let engine = self.engine;
        let (name, head) = self.streams[stream].clone();
        let keep = 1 + rng.below(EVENTS_PER_WRITE_MAX);
        let extra = rng.below(3);
        let mut events = payloads(kind.word(), &tag, 0..keep);
        events.extend(payloads("spec", &tag, keep..keep + extra));
        let chosen = engine.branches().fork(&name, head)?;
        engine.branches().append(chosen, &events, Some(head))?;
        // A sibling forked at the same head: it never descends from what gets promoted.
        let sibling = engine.branches().fork(&name, head)?;
        let sibling_events = payloads("spec", &tag, 0..1 + rng.below(EVENTS_PER_WRITE_MAX));
        engine
            .branches()
            .append(sibling, &sibling_events, Some(head))?;
        let upto = Version(head.0 + keep);
        let promoted = engine.branches().promote(chosen, upto, kind.class())?;
        self.check(stream, "a promotion", (promoted.first, promoted.last), keep)?;
        self.report(kind, stream, promoted.last, &tag)?;
        engine.branches().prune(&name)?;
        if engine.branches().info(sibling).is_ok() {
            return Err(CliError::WorkloadCheck {
                stream: name,
                reason: format!("{sibling} survived the prune after a promotion of a sibling"),
            });
        }
        engine.branches().discard(chosen)?;
        Ok(())
    }
}

/// Runs `helios workload`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let engine = args.open.open(&args.dir)?;
    // Counted from the open: recovering or creating the store is not part of the run.
    let deadline = args.seconds.map(|seconds| Instant::now() + seconds);
    let mut streams = Vec::new();
    for i in 0..args.streams {
        let name = format!("workload-{i}");
        engine.create_stream(&name)?;
        let head = engine.head(&name).unwrap_or(Version::ZERO);
        streams.push((name, head));
    }
    let mut workload = Workload {
        engine: &engine,
        seed: args.seed,
        streams,
        seq: 0,
        out: std::io::stdout().lock(),
    };
    let mut rng = Rng::new(args.seed);
    while deadline.is_none_or(|d| Instant::now() < d) {
        let stream = usize::try_from(rng.below(u64::from(args.streams))).unwrap_or(0);
        let count = 1 + rng.below(EVENTS_PER_WRITE_MAX);
        match rng.below(100) {
            0..30 => workload.append(Kind::Critical, stream, count)?,
            30..65 => workload.append(Kind::Normal, stream, count)?,
            65..78 => workload.promote(Kind::PromoteCritical, stream, &mut rng)?,
            78..92 => workload.promote(Kind::PromoteNormal, stream, &mut rng)?,
            _ => {
                engine.sync()?;
                workload.print("sync")?;
            }
        }
    }
    engine.sync()?;
    workload.print("sync")?;
    drop(workload);
    engine.close()?;
    Ok(ExitCode::SUCCESS)
}
