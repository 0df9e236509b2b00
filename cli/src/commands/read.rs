//! `helios read`: a stream's events as `VERSION<TAB>PAYLOAD` lines.

use std::io::{BufWriter, ErrorKind, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use helios::Version;

use crate::commands::follow::{self, Followed, Mode, Scope, Sink};
use crate::error::CliError;
use crate::json;
use crate::limits;
use crate::store::OpenArgs;

/// The long help of `helios read`.
pub const LONG_ABOUT: &str = "Print the events of STREAM as `VERSION<TAB>PAYLOAD` lines, oldest \
    first. Payloads are printed as UTF-8, with invalid bytes replaced by U+FFFD. The store is \
    opened read-only: nothing in it is created, written or removed, so it may be open in a \
    writer meanwhile.\n\n\
    With `--json`, one JSON object per line (JSON lines): `version`, `lsn`, `durability` \
    (`critical` or `normal`, the class it was appended with), `timestamp_us` (microseconds \
    since the Unix epoch when it was appended) and `payload` (UTF-8, invalid bytes replaced by \
    U+FFFD).\n\n\
    --from past the stream's head is an error naming the head, as `helios get --at` past the \
    head is (the stream has no such version); --from 0 is --from 1. --to past the head reads \
    up to the head; --to below --from is an error.\n\n\
    With `--follow`, the stream's events are printed (from --from on), then each new one as \
    soon as the writer has made it durable, until interrupted; lines are flushed as they are \
    printed. Only durable events are printed: a writer in another process publishes how far \
    its log is durable after each sync, and nothing past that is read, so nothing printed can \
    be taken back by a crash. A store or stream that does not exist yet is waited for (said \
    once on stderr), --from past the head waits for that version, and a stream deleted while \
    followed is said on stderr and its name waited for again. --to does not go with \
    --follow.\n\n\
    Exit status: 0 when every event asked for was printed (none, for an empty stream read \
    without --from; with --follow, when the output is closed), 2 on errors (a store or stream \
    that does not exist, --from past the head, --to below --from, a damaged event).";

/// Arguments of `helios read`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory.
    pub dir: PathBuf,
    /// The stream to read.
    pub stream: String,
    /// First version to print; past the stream's head it is an error. [default: 1]
    #[arg(long, value_name = "V", allow_negative_numbers = true,
          value_parser = limits::VERSION.parser())]
    pub from: Option<u64>,
    /// Last version to print, inclusive. [default: the stream's head]
    #[arg(long, value_name = "V", allow_negative_numbers = true,
          value_parser = limits::VERSION.parser())]
    pub to: Option<u64>,
    /// Print one JSON object per event and line instead of `VERSION<TAB>PAYLOAD`.
    #[arg(long)]
    pub json: bool,
    /// Then print each new event as soon as it is durable, until interrupted.
    #[arg(long, conflicts_with = "to")]
    pub follow: bool,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// One line of `helios read --json`.
#[derive(serde::Serialize)]
struct EventJson<'a> {
    version: u64,
    lsn: u64,
    durability: String,
    timestamp_us: u64,
    payload: &'a str,
}

/// Lines of `helios read`.
struct ReadSink<W: Write> {
    out: W,
    json: bool,
}

impl<W: Write> Sink for ReadSink<W> {
    fn emit(&mut self, e: &Followed<'_>) -> std::io::Result<()> {
        write_event(&mut self.out, e.event, self.json)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn write_event(out: &mut impl Write, event: &helios::Event, json: bool) -> std::io::Result<()> {
    let payload = String::from_utf8_lossy(&event.payload);
    if json {
        let line = json::line(&EventJson {
            version: event.version.get(),
            lsn: event.lsn.get(),
            durability: event.durability.to_string(),
            timestamp_us: event.timestamp_us,
            payload: &payload,
        })
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        out.write_all(line.as_bytes())
    } else {
        writeln!(out, "{}\t{payload}", event.version.get())
    }
}

/// Runs `helios read`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    if args.follow {
        let mut sink = ReadSink {
            out: BufWriter::new(std::io::stdout().lock()),
            json: args.json,
        };
        let from = Version(args.from.unwrap_or(1));
        follow::follow(
            &args.dir,
            &args.open,
            Scope::Stream(&args.stream, from),
            Mode::Follow,
            &mut sink,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let engine = args.open.open_read_only(&args.dir)?;
    let head = engine
        .head(&args.stream)
        .ok_or_else(|| helios::Error::UnknownStream {
            stream: args.stream.clone(),
        })?;
    // The same rule as `helios get --at`: a version the stream has not reached is an error
    // naming the head, not an empty answer that looks like "no events yet".
    if let Some(from) = args.from.filter(|&from| from > head.get()) {
        return Err(helios::Error::VersionPastHead {
            stream: args.stream.clone(),
            version: Version(from),
            head,
        }
        .into());
    }
    if let (Some(from), Some(to)) = (args.from, args.to)
        && to < from
    {
        return Err(CliError::Usage(format!(
            "--to {to} is before --from {from}: the range of versions to read is empty"
        )));
    }
    let from = Version(args.from.unwrap_or(1).max(1));
    let to = Version(args.to.unwrap_or(u64::MAX));
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = (|| -> Result<(), CliError> {
        for event in engine.read(&args.stream, from..=to)? {
            let event = event?;
            write_event(&mut out, &event, args.json).map_err(CliError::io("write to stdout"))?;
        }
        out.flush().map_err(CliError::io("write to stdout"))
    })();
    match written {
        // A reader that stopped early (`helios read ... | head`) is not an error.
        Err(CliError::Io { source, .. }) if source.kind() == ErrorKind::BrokenPipe => {}
        other => other?,
    }
    drop(engine);
    Ok(ExitCode::SUCCESS)
}
