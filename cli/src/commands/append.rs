//! `helios append`: one event per line of stdin, one append per event; key-value events
//! (checked before they are appended) unless `--raw`.
//!
//! Stdin is read through a bounded reader: a line longer than the largest event the log takes
//! is refused as soon as it passes that length, without reading the rest of it into memory.
//! After the last line, the store is synced (an error there is an error: versions printed with
//! normal durability may be lost); checkpoints are then built, and a failure there is only a
//! warning, because they are derived from the log and every event is already appended.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use helios::{Version, short_name};

use super::DurabilityArg;
use crate::derive::{derive, warn};
use crate::error::CliError;
use crate::limits;
use crate::lines::{LineRead, check_key_value, read_line};
use crate::store::OpenArgs;

/// Longest line `append` reads, without its newline: the largest payload the log takes.
pub const LINE_BYTES_MAX: usize = helios_log::format::PAYLOAD_LEN_MAX;

/// The long help of `helios append`.
pub const LONG_ABOUT: &str = "Append one event per line of stdin to STREAM, one append per \
    line.\n\n\
    Each line must be a key-value event, `set KEY VALUE` or `del KEY` (KEY has no spaces and \
    is UTF-8, so that `helios get` can name it; VALUE is the rest of the line, any bytes, and \
    may be empty or hold spaces), so that `helios get` can read the stream's state. A line \
    that is not one stops the command with exit status 2 and a message naming its line \
    number, before it is appended; the lines before it stay appended. With `--raw`, lines are \
    appended unchecked, as opaque payloads.\n\n\
    The payload is the line's bytes without the trailing newline (a carriage return before it \
    is kept, and becomes part of a value or key); empty lines are skipped. A line is at most \
    67108864 bytes (64 MiB, the largest event the log takes) and must fit in one log segment \
    (--segment-size-bytes); a longer one is refused as soon as it passes the limit, with its \
    line number, and is not read further. Each acknowledged version is printed on its own \
    line and flushed as soon as the append returns, so with `--durability critical` every \
    printed version is on stable storage. The store and the stream are created if they do not \
    exist; a new store is created only in an empty or missing directory.\n\n\
    After the last line the store is synced. Then a key-value append builds every checkpoint \
    due up to each stream's head (the engine otherwise builds them in the background), so that \
    the next `helios get` replays at most a few events past a checkpoint, and checks that the \
    state of STREAM can be read at its head: if an earlier event of STREAM is not a key-value \
    event (appended with `--raw`, or by a program), a warning names it, since the state cannot \
    be read from that version on.\n\n\
    Exit status: 0 when every line was appended and synced, including when building \
    checkpoints or closing the store failed afterwards (a warning on stderr says why: \
    checkpoints and the index are derived data, rebuilt from the log, and reads stay exact); \
    2 on errors: the versions printed before the error were \
    appended, and the line the message names and those after it were not (if the final sync \
    fails, versions printed without `--durability critical` may be lost, and the message says \
    so).";

/// Arguments of `helios append`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory (created if missing; it must be empty if it is not a store).
    pub dir: PathBuf,
    /// The stream to append to (created on its first event).
    pub stream: String,
    /// Durability class of every append.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Normal)]
    pub durability: DurabilityArg,
    /// Optimistic concurrency: fail unless the stream's head is V before the first line (0 for
    /// a new or empty stream). Each following line then expects the version just appended.
    #[arg(long, value_name = "V", allow_negative_numbers = true,
          value_parser = limits::VERSION.parser())]
    pub expected: Option<u64>,
    /// Append lines unchecked, as opaque payloads, instead of key-value events.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// Runs `helios append`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let engine = args.open.open(&args.dir)?;
    let durability = helios::Durability::from(args.durability);
    let mut expected = args.expected.map(Version);
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut line = Vec::new();
    let mut line_number = 0u64;
    let mut appended_count = 0u64;
    loop {
        let read = read_line(&mut input, &mut line, LINE_BYTES_MAX).map_err(|source| {
            CliError::ReadLine {
                line: line_number + 1,
                source,
            }
        })?;
        if read == LineRead::End {
            break;
        }
        line_number += 1;
        if read == LineRead::TooLong {
            return Err(CliError::LineTooLong {
                line: line_number,
                max_bytes: LINE_BYTES_MAX,
                what: "the largest event the log takes",
            });
        }
        let payload = line.as_slice();
        if payload.is_empty() {
            continue;
        }
        if !args.raw {
            check_key_value(payload, line_number)?;
        }
        let appended = engine
            .append(&args.stream, &[payload], durability, expected)
            .map_err(|source| CliError::AppendLine {
                line: line_number,
                source,
            })?;
        if expected.is_some() {
            expected = Some(appended.last);
        }
        // Printed and flushed only after the append returned: for critical appends, a version
        // on stdout is a version on stable storage.
        writeln!(out, "{}", appended.last.get())
            .and_then(|()| out.flush())
            .map_err(CliError::io("write to stdout"))?;
        appended_count += 1;
    }
    if appended_count > 0 {
        // Normal appends are durable only once synced: a failure here is an error, since the
        // versions printed may not survive a crash.
        engine
            .sync()
            .map_err(|source| CliError::SyncAfterAppend { source })?;
        // Raw payloads need not be key-value events, so only key-value appends build
        // checkpoints here (the stream's state machine would reject a raw line).
        if !args.raw {
            let appended = format!(
                "every event was appended to stream `{}`",
                short_name(&args.stream)
            );
            derive(&engine, &appended, &[args.stream.as_str()]);
        }
        // Every event is in the log and synced: what closing writes (segment indexes, the
        // catalog snapshot) is derived from the log and rebuilt by the next open, so a failure
        // here is a warning.
        if let Err(error) = engine.close() {
            warn(&format!(
                "every event was appended and synced, but closing the store failed: {error} \
                 (the index is rebuilt from the log at the next open)"
            ));
        }
        return Ok(ExitCode::SUCCESS);
    }
    engine.close()?;
    Ok(ExitCode::SUCCESS)
}
