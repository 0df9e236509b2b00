//! `helios inspect`: segments, streams, last LSN and what reading the log found, as text or JSON.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use helios::{ReadOnly, SegmentInfo};

use crate::error::CliError;
use crate::json;
use crate::store::OpenArgs;
use crate::text::{Align, pairs, table};

/// The long help of `helios inspect`.
pub const LONG_ABOUT: &str = "Show a store's segments (file, size, sealed or active), streams \
    (name, id, head), last LSN, and what reading the log found (a torn tail, which the next \
    writer's open removes; the format). The store is opened read-only: nothing in it is \
    created, written or removed, so it may be open in a writer meanwhile.\n\n\
    Exit status: 0 when the report was printed, 2 on errors (a path that is not a store, or \
    not a directory this user may read; damage before the log's tail).";

/// Arguments of `helios inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory.
    pub dir: PathBuf,
    /// Print JSON instead of aligned text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// Runs `helios inspect`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let engine = args.open.open_read_only(&args.dir)?;
    let segments = engine.inspect().segments()?;
    let rendered = if args.json {
        json::pretty(&to_json(&engine, &segments))?
    } else {
        to_text(&engine, &segments)
    };
    std::io::stdout()
        .lock()
        .write_all(rendered.as_bytes())
        .map_err(CliError::io("write to stdout"))?;
    drop(engine);
    Ok(ExitCode::SUCCESS)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The file name of the segment with `id`, found among `segments`.
fn segment_name(segments: &[SegmentInfo], id: helios::SegmentId) -> String {
    segments
        .iter()
        .find(|s| s.id == id)
        .map_or_else(|| id.to_string(), |s| file_name(&s.path))
}

fn state(segment: &SegmentInfo) -> &'static str {
    if segment.sealed { "sealed" } else { "active" }
}

fn to_text(engine: &ReadOnly, segments: &[SegmentInfo]) -> String {
    let mut out = String::new();
    out.push_str(&format!("store     {}\n", engine.inspect().dir().display()));
    out.push_str(&format!(
        "last lsn  {}\n",
        engine.inspect().last_lsn().get()
    ));

    out.push_str(&format!("\nsegments: {}\n", segments.len()));
    let rows: Vec<Vec<String>> = segments
        .iter()
        .map(|s| {
            vec![
                file_name(&s.path),
                s.file_len_bytes.to_string(),
                state(s).to_owned(),
            ]
        })
        .collect();
    out.push_str(&table(
        2,
        &[
            ("FILE", Align::Left),
            ("SIZE_BYTES", Align::Right),
            ("STATE", Align::Left),
        ],
        &rows,
    ));

    let streams: Vec<_> = engine.streams().collect();
    out.push_str(&format!("\nstreams: {}\n", streams.len()));
    if !streams.is_empty() {
        let rows: Vec<Vec<String>> = streams
            .iter()
            .map(|s| {
                vec![
                    s.id.get().to_string(),
                    s.head.get().to_string(),
                    s.name.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            2,
            &[
                ("ID", Align::Right),
                ("HEAD", Align::Right),
                ("NAME", Align::Left),
            ],
            &rows,
        ));
    }

    let report = engine.inspect().open_report();
    let log = &report.log;
    let torn_tail = match &log.truncated {
        None => "none".to_owned(),
        Some(t) => format!(
            "{} bytes from byte {} of {}, not read (the next writer's open removes them)",
            t.len_bytes,
            t.offset,
            file_name(&t.path)
        ),
    };
    let writer = if engine.writer_holds_the_store() {
        "open (another process holds the store)"
    } else {
        "none"
    };
    let rows = [
        ("writer", writer.to_owned()),
        ("store format", report.store_format.to_string()),
        (
            "checkpoint policy",
            engine.checkpoints().policy().to_string(),
        ),
        ("segment files found", log.segments.to_string()),
        ("records read", log.records_scanned.to_string()),
        ("torn tail", torn_tail),
        (
            "log end",
            format!(
                "lsn {} at byte {} of {}",
                log.end.lsn.get(),
                log.end.offset,
                segment_name(segments, log.end.segment)
            ),
        ),
    ];
    out.push_str("\nthe log, as read:\n");
    out.push_str(&pairs(2, &rows));
    out
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `helios inspect --json`.
#[derive(serde::Serialize)]
struct InspectJson {
    /// The store directory.
    dir: String,
    /// LSN of the last record in the log.
    last_lsn: u64,
    segments: Vec<SegmentJson>,
    streams: Vec<StreamJson>,
    /// The level policy of the store's checkpoints (the one its writer recorded, else the
    /// default).
    checkpoint_policy: PolicyJson,
    /// What reading the log found.
    log: LogJson,
}

#[derive(serde::Serialize)]
struct PolicyJson {
    first_interval: u64,
    fanout: u64,
    levels: u32,
}

#[derive(serde::Serialize)]
struct SegmentJson {
    file: String,
    path: String,
    first_lsn: u64,
    size_bytes: u64,
    sealed: bool,
}

#[derive(serde::Serialize)]
struct StreamJson {
    id: u64,
    name: String,
    head: u64,
}

#[derive(serde::Serialize)]
struct LogJson {
    /// Whether another process holds the store for writing.
    writer_holds_the_store: bool,
    store_format: u32,
    segment_files_found: u64,
    records_read: u64,
    /// `null` when the log ended cleanly; otherwise bytes not read, which the next writer's
    /// open removes.
    torn_tail: Option<TornTailJson>,
    log_end: LogEndJson,
}

#[derive(serde::Serialize)]
struct TornTailJson {
    file: String,
    path: String,
    offset: u64,
    len_bytes: u64,
}

#[derive(serde::Serialize)]
struct LogEndJson {
    lsn: u64,
    file: String,
    offset: u64,
}

fn to_json(engine: &ReadOnly, segments: &[SegmentInfo]) -> InspectJson {
    let report = engine.inspect().open_report();
    let log = &report.log;
    InspectJson {
        dir: path_string(engine.inspect().dir()),
        last_lsn: engine.inspect().last_lsn().get(),
        segments: segments
            .iter()
            .map(|s| SegmentJson {
                file: file_name(&s.path),
                path: path_string(&s.path),
                first_lsn: s.id.get(),
                size_bytes: s.file_len_bytes,
                sealed: s.sealed,
            })
            .collect(),
        streams: engine
            .streams()
            .map(|s| StreamJson {
                id: s.id.get(),
                name: s.name,
                head: s.head.get(),
            })
            .collect(),
        checkpoint_policy: {
            let policy = engine.checkpoints().policy();
            PolicyJson {
                first_interval: policy.first_interval(),
                fanout: policy.fanout(),
                levels: policy.levels(),
            }
        },
        log: LogJson {
            writer_holds_the_store: engine.writer_holds_the_store(),
            store_format: report.store_format,
            segment_files_found: log.segments as u64,
            records_read: log.records_scanned,
            torn_tail: log.truncated.as_ref().map(|t| TornTailJson {
                file: file_name(&t.path),
                path: path_string(&t.path),
                offset: t.offset,
                len_bytes: t.len_bytes,
            }),
            log_end: LogEndJson {
                lsn: log.end.lsn.get(),
                file: segment_name(segments, log.end.segment),
                offset: log.end.offset,
            },
        },
    }
}
