//! `helios import`: `STREAM<TAB>EVENT` lines of stdin appended in order, consecutive lines of
//! one stream appended as one atomic batch.
//!
//! Invariants:
//! - Lines are appended in their input order: a batch holds only consecutive lines of one
//!   stream, and batches are appended in order, so the log holds the events in the order of
//!   the lines and each stream's versions follow its lines.
//! - A batch's frames take at most [`batch_frame_bytes_max`] bytes of log (a quarter of the
//!   smallest segment this run can create, at most [`BATCH_FRAME_BYTES_MAX`]), so that rolling
//!   to the next segment leaves at most that much of a segment unused; the one exception is an
//!   event that is larger alone, which is appended alone, as `helios append` appends it.
//! - A bad line stops the import only after every batch before it is appended (and synced):
//!   every line before it is in the store, and none from it on.
//! - Memory is bounded by the input's longest line, not its length: one line of at most
//!   [`LINE_BYTES_MAX`] (read a bounded line at a time, as `append` reads), one batch of at most
//!   [`BATCH_FRAME_BYTES_MAX`] of frames (an event larger than that is appended from the line
//!   itself, never copied), and the names of the streams seen, which the engine's catalog holds
//!   in memory anyway.

use std::collections::HashSet;
use std::io::{self, BufRead, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use helios::{STREAM_NAME_LEN_MAX, Version};
use helios_log::format::{PAYLOAD_LEN_MAX, frame_len};

use super::DurabilityArg;
use crate::derive::{derive, warn};
use crate::error::CliError;
use crate::json;
use crate::lines::{LineRead, check_key_value, read_line};
use crate::store::OpenArgs;
use crate::text::thousands;

/// Longest line `import` reads, without its newline: the longest stream name, a tab, and the
/// largest payload the log takes.
pub const LINE_BYTES_MAX: usize = STREAM_NAME_LEN_MAX // stream name
    + 1 // tab
    + PAYLOAD_LEN_MAX; // event
const _: () = assert!(LINE_BYTES_MAX == 1024 + 1 + (64 << 20));

/// Most bytes of log (record frames: a 56-byte header and the payload, per event) one batch
/// takes, before [`batch_frame_bytes_max`] lowers it for small segments: 32 KiB, a quarter of
/// a new store's first segment (128 KiB), 1/2048 of the segments a store grows to (64 MiB).
pub const BATCH_FRAME_BYTES_MAX: u64 = 32 << 10;

/// The batch cap of a run whose smallest new segment is `first_segment_size_bytes`: a quarter
/// of it, at most [`BATCH_FRAME_BYTES_MAX`]. A batch that does not fit in what is left of the
/// active segment rolls to the next one and leaves that rest unused: a quarter of a segment
/// at most.
#[must_use]
pub fn batch_frame_bytes_max(first_segment_size_bytes: u64) -> u64 {
    (first_segment_size_bytes / 4).min(BATCH_FRAME_BYTES_MAX)
}

/// The long help of `helios import`.
pub const LONG_ABOUT: &str = "Append the events of stdin to the streams each line names: one \
    `STREAM<TAB>EVENT` line per event, in order, consecutive lines of one stream appended as \
    one atomic batch.\n\n\
    STREAM is everything before the line's first tab (UTF-8, not empty); EVENT is the rest of \
    the line, what `helios append` takes: a key-value event, `set KEY VALUE` or `del KEY` (KEY \
    without spaces, UTF-8), or with `--raw` any bytes, empty included (a line `STREAM<TAB>` is \
    an empty event). A stream name cannot hold a tab or a newline: the engine refuses every \
    name with a control character when it creates the stream, so no store has one, and `helios \
    tail` output (`STREAM<TAB>EVENT`, the format this command reads) is never ambiguous. Here, \
    the first tab ends the name, and a line whose name holds a control character (a carriage \
    return, say) is refused as an invalid stream name. A carriage return before the newline is \
    kept, as part of the event; empty lines are skipped; line numbers count every line.\n\n\
    Batches: consecutive lines of one stream are appended together, as one atomic batch, up to \
    32 KiB of log per batch (a record header of 56 bytes plus the event, per line; a quarter \
    of --segment-size-bytes when that is under 128 KiB), so that a batch stays well inside a \
    segment and memory stays bounded: at most one line (a stream name of at most 1024 bytes, \
    a tab and an event of at most 64 MiB: 67109889 bytes) and one batch are in memory. An \
    event larger than a batch is appended alone, as `helios append` would. With `--durability \
    critical` each batch is on stable storage when the next one is appended; with `normal` \
    (the default) the store is synced after the last line. The store and the streams are \
    created if they do not exist; a new store is created only in an empty or missing \
    directory.\n\n\
    Then, as `helios append` does, a key-value import builds every checkpoint due up to each \
    stream's head, and warns about a stream that had events before the import and whose state \
    cannot be read at its head (an earlier event appended with `--raw`).\n\n\
    On stdout, one line: `imported N events into M streams in S s` (M: the \
    streams the lines named; the wall-clock time from opening the store to closing it, \
    checkpoints built). With `--json`, one object instead: `events`, `streams`, `batches` \
    (the appends made), `seconds`.\n\n\
    A bad line stops the command with exit status 2 and a message naming its line number: a \
    line without a tab, an empty or invalid stream name, a stream name that is not UTF-8, an \
    event `helios append` would refuse (not a key-value event, a key that is not UTF-8), a line \
    over 67109889 bytes (refused as soon as it passes the limit, without reading the rest of \
    it). Every line before it is appended and synced first; that line and those after it are \
    not. If the engine fails to append a batch (an I/O error, a full disk), the message names \
    the batch's first line: the lines before it are appended, none of the batch.\n\n\
    Exit status: 0 when every line was appended and synced, including when building \
    checkpoints or closing the store failed afterwards (a warning on stderr says why: \
    checkpoints and the index are derived data, rebuilt from the log, and reads stay exact); \
    2 on errors: the lines before the line the message names were appended, that line and \
    those after it were not (if a sync fails, lines imported without `--durability critical` \
    may be lost, and the message says so).";

/// Arguments of `helios import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory (created if missing; it must be empty if it is not a store).
    pub dir: PathBuf,
    /// Durability class of every batch.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Normal)]
    pub durability: DurabilityArg,
    /// Append events unchecked, as opaque payloads, instead of key-value events.
    #[arg(long)]
    pub raw: bool,
    /// Print the summary as one JSON object (fields in the long help, `--help`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// `helios import --json`.
#[derive(Clone, Debug, serde::Serialize)]
struct SummaryJson {
    /// Events appended.
    events: u64,
    /// Distinct streams the lines named.
    streams: u64,
    /// Appends made: atomic batches of consecutive lines of one stream.
    batches: u64,
    /// Wall-clock seconds from opening the store to closing it, checkpoints built.
    seconds: f64,
}

/// Runs `helios import`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    let engine = args.open.open(&args.dir)?;
    let durability = helios::Durability::from(args.durability);
    let cap_bytes = batch_frame_bytes_max(args.open.first_segment_size_bytes());
    let mut seen: HashSet<String> = HashSet::new();
    // Streams that held events before this import: only their state may hold an event the
    // state machine refuses (a key-value import checks each of its own events).
    let mut with_history: Vec<String> = Vec::new();
    let mut events = 0u64;
    let mut batches = 0u64;
    let imported = import_lines(
        &mut io::stdin().lock(),
        args.raw,
        cap_bytes,
        &mut |stream, first_line, batch| {
            if !seen.contains(stream) {
                if engine.head(stream).is_some_and(|head| head > Version::ZERO) {
                    with_history.push(stream.to_owned());
                }
                seen.insert(stream.to_owned());
            }
            engine
                .append(stream, batch, durability, None)
                .map_err(|source| CliError::AppendLine {
                    line: first_line,
                    source,
                })?;
            events += batch.len() as u64;
            batches += 1;
            Ok(())
        },
    );
    if let Err(error) = imported {
        // Every batch before the bad line is appended: make it durable before saying so.
        if events > 0
            && let Err(sync) = engine.sync()
        {
            return Err(CliError::ImportStopped {
                error: Box::new(error),
                sync,
            });
        }
        return Err(error);
    }
    if events > 0 {
        engine
            .sync()
            .map_err(|source| CliError::SyncAfterImport { source })?;
        // Raw payloads need not be key-value events: only a key-value import builds
        // checkpoints here, as `append` does (the state machine would refuse a raw event).
        if !args.raw {
            let with_history: Vec<&str> = with_history.iter().map(String::as_str).collect();
            derive(&engine, "every line was imported", &with_history);
        }
        // Every event is in the log and synced: what closing writes (the index) is derived
        // from the log and rebuilt by the next open, so a failure here is a warning.
        if let Err(error) = engine.close() {
            warn(&format!(
                "every line was imported and synced, but closing the store failed: {error} (the \
                 index is rebuilt from the log at the next open)"
            ));
        }
    } else {
        engine.close()?;
    }
    let summary = SummaryJson {
        events,
        streams: seen.len() as u64,
        batches,
        seconds: json::round(started.elapsed().as_secs_f64(), 3),
    };
    let out = if args.json {
        json::pretty(&summary)?
    } else {
        to_text(&summary)
    };
    io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(CliError::io("write to stdout"))?;
    Ok(ExitCode::SUCCESS)
}

/// `imported N events into M streams in S s`, numbers with thousands separators.
fn to_text(summary: &SummaryJson) -> String {
    let plural = |n: u64, one: &str, many: &str| {
        format!("{} {}", thousands(n), if n == 1 { one } else { many })
    };
    let seconds = summary.seconds;
    let seconds = if seconds < 1.0 {
        format!("{seconds:.2}")
    } else {
        format!("{seconds:.1}")
    };
    format!(
        "imported {} into {} in {seconds} s\n",
        plural(summary.events, "event", "events"),
        plural(summary.streams, "stream", "streams"),
    )
}

/// What [`import_lines`] hands each batch to: the stream, the number of the batch's first line
/// (for the error message), and its events in order. The caller appends them as one atomic
/// batch.
type AppendBatch<'a> = dyn FnMut(&str, u64, &[&[u8]]) -> Result<(), CliError> + 'a;

/// Reads `STREAM<TAB>EVENT` lines from `input` to its end and hands each batch of consecutive
/// lines of one stream to `append`, with the number of its first line. Checks each line
/// (and, unless `raw`, that its event is a key-value event) before it joins a batch.
///
/// # Errors
/// The first bad line, named by its number, once every batch before it was handed to
/// `append`; or the first error of `append`.
fn import_lines(
    input: &mut impl BufRead,
    raw: bool,
    cap_bytes: u64,
    append: &mut AppendBatch<'_>,
) -> Result<(), CliError> {
    let mut batcher = Batcher::new(cap_bytes);
    let mut line = Vec::new();
    let mut line_number = 0u64;
    loop {
        let read =
            read_line(input, &mut line, LINE_BYTES_MAX).map_err(|source| CliError::ReadLine {
                line: line_number + 1,
                source,
            });
        let read = match read {
            Ok(read) => read,
            Err(error) => return batcher.flush(append).and(Err(error)),
        };
        if read == LineRead::End {
            return batcher.flush(append);
        }
        line_number += 1;
        if read == LineRead::TooLong {
            let error = CliError::LineTooLong {
                line: line_number,
                max_bytes: LINE_BYTES_MAX,
                what: "the longest line `helios import` takes (a stream name of at most 1024 \
                       bytes, a tab and an event of at most 67108864 bytes)",
            };
            return batcher.flush(append).and(Err(error));
        }
        if line.is_empty() {
            continue;
        }
        match parse_line(&line, line_number, raw) {
            Ok((stream, event)) => batcher.push(line_number, stream, event, append)?,
            Err(error) => return batcher.flush(append).and(Err(error)),
        }
    }
}

/// Splits a non-empty line at its first tab into its stream name and its event, and checks
/// both (the event only unless `raw`).
fn parse_line(line: &[u8], line_number: u64, raw: bool) -> Result<(&str, &[u8]), CliError> {
    let tab = line
        .iter()
        .position(|&b| b == b'\t')
        .ok_or(CliError::NoTab { line: line_number })?;
    let (stream, event) = (&line[..tab], &line[tab + 1..]);
    if stream.is_empty() {
        return Err(CliError::EmptyStreamName { line: line_number });
    }
    let stream =
        std::str::from_utf8(stream).map_err(|_| CliError::StreamNotUtf8 { line: line_number })?;
    if !raw {
        check_key_value(event, line_number)?;
    }
    Ok((stream, event))
}

/// Groups consecutive events of one stream into batches of at most `cap_bytes` of frames.
///
/// Invariant: the batch in progress holds consecutive events of one stream, in order, whose
/// frames take at most `cap_bytes`, and is never empty between calls unless nothing is
/// pending; an event whose frame alone exceeds `cap_bytes` is handed on alone, straight from
/// the caller's buffer.
#[derive(Debug)]
struct Batcher {
    /// Most bytes of frames in one batch.
    cap_bytes: u64,
    /// The stream of the batch in progress.
    stream: String,
    /// The line number of its first event.
    first_line: u64,
    /// Its events' payloads, back to back.
    payloads: Vec<u8>,
    /// Where each event's payload ends in `payloads`.
    ends: Vec<usize>,
    /// The bytes its events' frames take in the log.
    frame_bytes: u64,
}

impl Batcher {
    fn new(cap_bytes: u64) -> Batcher {
        Batcher {
            cap_bytes,
            stream: String::new(),
            first_line: 0,
            payloads: Vec::new(),
            ends: Vec::new(),
            frame_bytes: 0,
        }
    }

    /// Adds the event of line `line`. The batch in progress is handed to `append` first when
    /// the event cannot join it: another stream, or past the cap.
    fn push(
        &mut self,
        line: u64,
        stream: &str,
        payload: &[u8],
        append: &mut AppendBatch<'_>,
    ) -> Result<(), CliError> {
        let frame_bytes = frame_len(payload.len()) as u64;
        let joins = !self.ends.is_empty()
            && self.stream == stream
            && self.frame_bytes + frame_bytes <= self.cap_bytes;
        if !joins {
            self.flush(append)?;
        }
        if frame_bytes > self.cap_bytes {
            // Larger than any batch: appended alone, without copying it.
            return append(stream, line, &[payload]);
        }
        if self.ends.is_empty() {
            self.stream.clear();
            self.stream.push_str(stream);
            self.first_line = line;
        }
        self.payloads.extend_from_slice(payload);
        self.ends.push(self.payloads.len());
        self.frame_bytes += frame_bytes;
        debug_assert!(self.frame_bytes <= self.cap_bytes, "{self:?}");
        Ok(())
    }

    /// Hands the batch in progress, if any, to `append`, and starts an empty one.
    fn flush(&mut self, append: &mut AppendBatch<'_>) -> Result<(), CliError> {
        if self.ends.is_empty() {
            return Ok(());
        }
        let mut start = 0;
        let events: Vec<&[u8]> = self
            .ends
            .iter()
            .map(|&end| {
                let event = &self.payloads[start..end];
                start = end;
                event
            })
            .collect();
        let result = append(&self.stream, self.first_line, &events);
        self.payloads.clear();
        self.ends.clear();
        self.frame_bytes = 0;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One batch as `append` saw it: stream, first line, events.
    type Seen = (String, u64, Vec<String>);

    /// Runs `import_lines` over `input`, returning the batches handed on and the result.
    fn import(input: &[u8], raw: bool, cap_bytes: u64) -> (Vec<Seen>, Result<(), CliError>) {
        let mut seen = Vec::new();
        let result = import_lines(
            &mut &input[..],
            raw,
            cap_bytes,
            &mut |stream, line, events| {
                seen.push((
                    stream.to_owned(),
                    line,
                    events
                        .iter()
                        .map(|e| String::from_utf8_lossy(e).into_owned())
                        .collect(),
                ));
                Ok(())
            },
        );
        (seen, result)
    }

    fn batch(stream: &str, line: u64, events: &[&str]) -> Seen {
        (
            stream.to_owned(),
            line,
            events.iter().map(|&e| e.to_owned()).collect(),
        )
    }

    #[test]
    fn consecutive_lines_of_one_stream_share_a_batch_and_order_is_kept() {
        let input = b"a\tset k 1\na\tset k 2\n\nb\tset k 3\na\tset k 4\na\tdel k";
        let (seen, result) = import(input, false, BATCH_FRAME_BYTES_MAX);
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            seen,
            [
                batch("a", 1, &["set k 1", "set k 2"]),
                batch("b", 4, &["set k 3"]),
                batch("a", 5, &["set k 4", "del k"]),
            ]
        );
    }

    #[test]
    fn a_batch_closes_at_the_cap_and_a_larger_event_goes_alone() {
        // Frames of 56 + 7 bytes: two fit in 130 bytes, three do not.
        let cap = 2 * frame_len(7) as u64 + 4;
        let mut input = String::new();
        for i in 0..5 {
            input.push_str(&format!("s\tset k {i}\n"));
        }
        input.push_str(&format!("s\tset k {}\n", "v".repeat(200)));
        input.push_str("s\tset k 5\n");
        let (seen, result) = import(input.as_bytes(), false, cap);
        assert!(result.is_ok(), "{result:?}");
        let shape: Vec<(u64, usize)> = seen.iter().map(|(_, line, e)| (*line, e.len())).collect();
        assert_eq!(shape, [(1, 2), (3, 2), (5, 1), (6, 1), (7, 1)]);
        assert_eq!(seen[3].2[0].len(), "set k ".len() + 200);
        // Every event once, in order.
        let all: Vec<&String> = seen.iter().flat_map(|(_, _, e)| e).collect();
        assert_eq!(all.len(), 7);
        assert_eq!(all[4], "set k 4");
    }

    #[test]
    fn the_cap_is_a_quarter_of_the_smallest_segment_and_at_most_32_kib() {
        assert_eq!(batch_frame_bytes_max(128 << 10), 32 << 10);
        assert_eq!(batch_frame_bytes_max(64 << 20), 32 << 10);
        assert_eq!(batch_frame_bytes_max(4096), 1024);
    }

    #[test]
    fn a_bad_line_is_named_after_every_batch_before_it_was_handed_on() {
        for (input, raw, line, what) in [
            (
                &b"a\tset k 1\na\tset k 2\nno tab here\n"[..],
                false,
                3,
                "no tab",
            ),
            (
                b"a\tset k 1\n\n\tset k 2\n",
                false,
                3,
                "an empty stream name",
            ),
            (b"a\tset k 1\n\xff\tset k 2\n", false, 2, "not UTF-8"),
            (
                b"a\tset k 1\na\tput k 2\n",
                false,
                2,
                "not a key-value event",
            ),
            (
                b"a\tset k 1\na\tset \xff 2\n",
                false,
                2,
                "a key that is not UTF-8",
            ),
            (b"a\tx\n\xff\ty\n", true, 2, "not UTF-8"),
        ] {
            let (seen, result) = import(input, raw, BATCH_FRAME_BYTES_MAX);
            let error = result.expect_err(what);
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("stdin line {line} ")) && message.contains(what),
                "{message}"
            );
            let handed: usize = seen.iter().map(|(_, _, e)| e.len()).sum();
            let first_line = usize::try_from(line).expect("small");
            let before = input
                .split(|&b| b == b'\n')
                .take(first_line - 1)
                .filter(|l| !l.is_empty())
                .count();
            assert_eq!(handed, before, "{message}: {seen:?}");
        }
    }

    #[test]
    fn raw_events_may_be_anything_even_empty_and_keep_their_tabs() {
        let (seen, result) = import(b"a\t\na\tb\tc\r\n", true, BATCH_FRAME_BYTES_MAX);
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(seen, [batch("a", 1, &["", "b\tc\r"])]);
    }

    #[test]
    fn an_error_of_append_stops_the_lines() {
        let mut calls = 0;
        let result = import_lines(
            &mut &b"a\tset k 1\nb\tset k 2\nc\tset k 3\n"[..],
            false,
            BATCH_FRAME_BYTES_MAX,
            &mut |_, line, _| {
                calls += 1;
                Err(CliError::AppendLine {
                    line,
                    source: helios::Error::EmptyAppend,
                })
            },
        );
        assert!(
            matches!(result, Err(CliError::AppendLine { line: 1, .. })),
            "{result:?}"
        );
        assert_eq!(calls, 1, "nothing is appended after a failed batch");
    }

    #[test]
    fn summaries_read_well() {
        let summary = SummaryJson {
            events: 1_000_000,
            streams: 20_000,
            batches: 20_000,
            seconds: 3.21,
        };
        assert_eq!(
            to_text(&summary),
            "imported 1,000,000 events into 20,000 streams in 3.2 s\n"
        );
        let one = SummaryJson {
            events: 1,
            streams: 1,
            batches: 1,
            seconds: 0.042,
        };
        assert_eq!(to_text(&one), "imported 1 event into 1 stream in 0.04 s\n");
    }
}
