//! `helios append`: one event per line of stdin, one append per event; key-value events
//! (checked before they are appended) unless `--raw`.
//!
//! Stdin is read through a bounded reader: a line longer than the largest event the log takes
//! is refused as soon as it passes that length, without reading the rest of it into memory.
//! After the last line, the store is synced (an error there is an error: versions printed with
//! normal durability may be lost); checkpoints are then built, and a failure there is only a
//! warning, because they are derived from the log and every event is already appended.

use std::io::{self, BufRead, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use helios::{Engine, Version, short_name};

use super::DurabilityArg;
use crate::error::CliError;
use crate::limits;
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

/// What reading one line of stdin found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineRead {
    /// The end of the input: no byte was left.
    End,
    /// A line, in the buffer without its newline (the last line may have none).
    Line,
    /// A line longer than the limit: the buffer holds its first bytes, and the rest of the
    /// input was not read.
    TooLong,
}

/// Reads one line of `input` into `line`, without its newline, holding at most `max_bytes` of
/// it in memory: a longer line is [`LineRead::TooLong`] as soon as it passes `max_bytes`.
fn read_line(
    input: &mut impl BufRead,
    line: &mut Vec<u8>,
    max_bytes: usize,
) -> io::Result<LineRead> {
    line.clear();
    let mut started = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if started {
                LineRead::Line
            } else {
                LineRead::End
            });
        }
        started = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if line.len() + chunk.len() > max_bytes {
            return Ok(LineRead::TooLong);
        }
        line.extend_from_slice(chunk);
        let consumed = chunk.len() + usize::from(newline.is_some());
        input.consume(consumed);
        if newline.is_some() {
            return Ok(LineRead::Line);
        }
    }
}

/// Checks that `payload` is a key-value event whose key is UTF-8.
fn check_key_value(payload: &[u8], line: u64) -> Result<(), CliError> {
    let event =
        helios::kv::parse(payload).map_err(|source| CliError::NotKeyValue { line, source })?;
    let key = match event {
        helios::kv::KvEvent::Set { key, .. } | helios::kv::KvEvent::Del { key } => key,
    };
    if std::str::from_utf8(key).is_err() {
        return Err(CliError::KeyNotUtf8 { line });
    }
    Ok(())
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
            derive(&engine, &args.stream);
        }
        // Every event is in the log and synced: what closing writes (the index in `meta/`) is
        // derived from the log and rebuilt by the next open, so a failure here is a warning.
        if let Err(error) = engine.close() {
            let _ = writeln!(
                io::stderr().lock(),
                "helios: warning: every event was appended and synced, but closing the store \
                 failed: {error} (the index is rebuilt from the log at the next open)"
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    engine.close()?;
    Ok(ExitCode::SUCCESS)
}

/// The work after the appends that only derived data depends on: builds the checkpoints due,
/// and checks that the state of `stream` reads at its head. Failures are warnings on stderr:
/// every event is appended and synced by now, and exiting with the error status would tell a
/// script that retries on failure to append the lines twice.
fn derive(engine: &Engine, stream: &str) {
    let warn = |message: String| {
        // Nothing sensible is left to do if stderr itself cannot be written.
        let _ = writeln!(io::stderr().lock(), "helios: warning: {message}");
    };
    let mut damaged_before = 0;
    let stalled = match engine.checkpoints().sync() {
        Ok(stats) => {
            damaged_before = stats.damaged;
            // A failure of the builder's background thread (before this sync took over) is
            // reported there, not by the sync.
            if let Some(error) = engine.inspect().background_error() {
                warn(format!(
                    "every event was appended to stream `{}`, but the engine's background work \
                     (the checkpoint builder) failed: {error} (checkpoints are derived from the \
                     log and rebuilt later; reads stay exact)",
                    short_name(stream)
                ));
            }
            stats.stalled.into_iter().find(|s| s.stream == stream)
        }
        Err(error) => {
            warn(format!(
                "every event was appended to stream `{}`, but building checkpoints failed: \
                 {error} (checkpoints are derived from the log and rebuilt later; reads stay \
                 exact)",
                short_name(stream)
            ));
            None
        }
    };
    // An earlier event of the stream (appended with `--raw`, or by a program) that the state
    // machine does not accept: say so now rather than let the first `helios get` be the
    // surprise. The builder names it when it stopped on it; otherwise a view at the head finds
    // it, replaying at most the events since the last checkpoint.
    let unreadable = match stalled {
        Some(stalled) => Some((stalled.version, stalled.reason)),
        None => match engine.head(stream).map(|head| engine.view(stream, head)) {
            Some(Err(helios::Error::Replay {
                version, source, ..
            })) => Some((version, source.to_string())),
            _ => None,
        },
    };
    if let Some((version, reason)) = unreadable {
        warn(format!(
            "the state of stream `{}` cannot be read from {version} on: {reason}",
            short_name(stream)
        ));
    }
    // The view may have found a damaged checkpoint (then deleted and queued): rebuild it now,
    // so that the store is whole when the command exits rather than at the next writer's read.
    if engine.checkpoints().stats().damaged > damaged_before
        && let Err(error) = engine.checkpoints().sync()
    {
        warn(format!(
            "rebuilding a damaged checkpoint failed: {error} (checkpoints are derived from the \
             log and rebuilt later; reads stay exact)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_up_to_the_limit_and_no_further() {
        let mut input = io::BufReader::with_capacity(4, &b"ab\n\nabcd\nabcde\nlast"[..]);
        let mut line = Vec::new();
        let mut next = |input: &mut io::BufReader<&[u8]>| {
            let read = read_line(input, &mut line, 4).expect("read");
            (read, String::from_utf8(line.clone()).expect("UTF-8"))
        };
        assert_eq!(next(&mut input), (LineRead::Line, "ab".to_owned()));
        assert_eq!(next(&mut input), (LineRead::Line, String::new()));
        assert_eq!(next(&mut input), (LineRead::Line, "abcd".to_owned()));
        let (read, _) = next(&mut input);
        assert_eq!(read, LineRead::TooLong);
        // The reader stopped inside the long line: what it holds is at most the limit plus
        // one buffer.
        let mut rest = Vec::new();
        io::Read::read_to_end(&mut input, &mut rest).expect("rest");
        assert!(rest.ends_with(b"e\nlast"), "{rest:?}");
    }

    #[test]
    fn the_last_line_needs_no_newline_and_the_end_is_the_end() {
        let mut input = &b"set a 1"[..];
        let mut line = Vec::new();
        assert_eq!(
            read_line(&mut input, &mut line, 100).expect("read"),
            LineRead::Line
        );
        assert_eq!(line, b"set a 1");
        assert_eq!(
            read_line(&mut input, &mut line, 100).expect("read"),
            LineRead::End
        );
    }

    #[test]
    fn keys_must_be_utf8_and_values_need_not_be() {
        assert!(check_key_value(b"set k \xff", 1).is_ok());
        assert!(matches!(
            check_key_value(b"set \xff v", 7),
            Err(CliError::KeyNotUtf8 { line: 7 })
        ));
        assert!(matches!(
            check_key_value(b"del \xfe", 2),
            Err(CliError::KeyNotUtf8 { line: 2 })
        ));
    }
}
