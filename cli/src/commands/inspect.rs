//! `helios inspect`: segments, streams, last LSN and what recovery did, as text or JSON.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use helios::{Engine, SegmentInfo};

use crate::error::CliError;
use crate::json::Json;
use crate::store::OpenArgs;
use crate::text::{Align, pairs, table};

/// The long help of `helios inspect`.
pub const LONG_ABOUT: &str = "Show a store's segments (file, size, sealed or active), streams \
    (name, id, head), last LSN, and what recovery did when this command opened the store \
    (a torn tail removed, events re-indexed, stale index entries dropped). Opening runs \
    recovery like any open, so the store must not be open elsewhere.";

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
    let engine = args.open.open_existing(&args.dir)?;
    let segments = engine.segments()?;
    let rendered = if args.json {
        let mut json = to_json(&engine, &segments).render();
        json.push('\n');
        json
    } else {
        to_text(&engine, &segments)
    };
    std::io::stdout()
        .lock()
        .write_all(rendered.as_bytes())
        .map_err(CliError::io("write to stdout"))?;
    engine.close()?;
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

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn to_text(engine: &Engine, segments: &[SegmentInfo]) -> String {
    let mut out = String::new();
    out.push_str(&format!("store     {}\n", engine.dir().display()));
    out.push_str(&format!("last lsn  {}\n", engine.last_lsn().get()));

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

    let streams = engine.streams();
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

    let report = engine.open_report();
    let log = &report.log;
    let torn_tail = match &log.truncated {
        None => "none".to_owned(),
        Some(t) => format!(
            "removed {} bytes from byte {} of {}",
            t.len_bytes,
            t.offset,
            file_name(&t.path)
        ),
    };
    let rows = [
        ("segment files found", log.segments.to_string()),
        ("segments scanned", log.segments_scanned.to_string()),
        ("records scanned", log.records_scanned.to_string()),
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
        (
            "index ahead of log",
            yes_no(log.start_was_past_end).to_owned(),
        ),
        ("events re-indexed", report.reindexed.to_string()),
        (
            "index entries dropped",
            report.index_entries_dropped.to_string(),
        ),
        ("streams dropped", report.streams_dropped.to_string()),
    ];
    out.push_str("\nrecovery on this open:\n");
    out.push_str(&pairs(2, &rows));
    out
}

fn path_json(path: &Path) -> Json {
    Json::str(path.to_string_lossy())
}

fn to_json(engine: &Engine, segments: &[SegmentInfo]) -> Json {
    let segments_json = segments
        .iter()
        .map(|s| {
            Json::Object(vec![
                ("file", Json::str(file_name(&s.path))),
                ("path", path_json(&s.path)),
                ("first_lsn", Json::U64(s.id.get())),
                ("size_bytes", Json::U64(s.file_len_bytes)),
                ("sealed", Json::Bool(s.sealed)),
            ])
        })
        .collect();
    let streams = engine
        .streams()
        .into_iter()
        .map(|s| {
            Json::Object(vec![
                ("id", Json::U64(s.id.get())),
                ("name", Json::Str(s.name)),
                ("head", Json::U64(s.head.get())),
            ])
        })
        .collect();
    let report = engine.open_report();
    let log = &report.log;
    let torn_tail = match &log.truncated {
        None => Json::Null,
        Some(t) => Json::Object(vec![
            ("file", Json::str(file_name(&t.path))),
            ("path", path_json(&t.path)),
            ("offset", Json::U64(t.offset)),
            ("len_bytes", Json::U64(t.len_bytes)),
        ]),
    };
    let recovery = Json::Object(vec![
        ("segment_files_found", Json::U64(log.segments as u64)),
        ("segments_scanned", Json::U64(log.segments_scanned as u64)),
        ("records_scanned", Json::U64(log.records_scanned)),
        ("torn_tail", torn_tail),
        (
            "log_end",
            Json::Object(vec![
                ("lsn", Json::U64(log.end.lsn.get())),
                ("file", Json::str(segment_name(segments, log.end.segment))),
                ("offset", Json::U64(log.end.offset)),
            ]),
        ),
        ("index_ahead_of_log", Json::Bool(log.start_was_past_end)),
        ("events_reindexed", Json::U64(report.reindexed)),
        (
            "index_entries_dropped",
            Json::U64(report.index_entries_dropped),
        ),
        ("streams_dropped", Json::U64(report.streams_dropped)),
    ]);
    Json::Object(vec![
        ("dir", path_json(engine.dir())),
        ("last_lsn", Json::U64(engine.last_lsn().get())),
        ("segments", Json::Array(segments_json)),
        ("streams", Json::Array(streams)),
        ("recovery", recovery),
    ])
}
