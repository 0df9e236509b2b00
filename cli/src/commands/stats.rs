//! `helios stats`: what a store holds and what it takes on disk, per stream and in total.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use helios::ReadOnly;

use crate::error::CliError;
use crate::json;
use crate::store::{LogSize, OpenArgs, log_size};
use crate::text::{Align, bytes, pairs, table, thousands};

/// The long help of `helios stats`.
pub const LONG_ABOUT: &str = "Show what a store holds and what it takes on disk: per stream, \
    its events (the head version) and its checkpoint files per level (files and bytes); in \
    total, the log's bytes through its last record and the segment files as allocated \
    (segments are preallocated with zeros), and every checkpoint's files and bytes.\n\n\
    The store is opened without the engine's background threads, so nothing is built while \
    the command looks: the numbers are what is on disk (after recovery, which any open runs). \
    Checkpoints due but not built yet (the builder runs in the background of the process that \
    appends) are not counted.\n\n\
    With `--json`, one object:\n\
    - `dir`, and `levels`: the number of checkpoint levels (level 1 is the finest; the top \
    level holds full states, the others deltas, except each stream's first checkpoint, a \
    full state at level 1);\n\
    - `streams`: one object per stream, by id: `id`, `name`, `events`, `checkpoint_files`, \
    `checkpoint_bytes`, and `levels`: one `{level, files, bytes}` per level, finest first;\n\
    - `totals`: `streams`, `events`, `log_bytes` (through the last record), \
    `log_segments` (segment files holding records), `segment_files` and \
    `segment_file_bytes` (every segment file, as allocated), `checkpoint_files`, \
    `checkpoint_bytes`, and `levels` as above, over all streams.\n\n\
    Exit status: 0 when the report was printed, 2 on errors (a path that is not a store, or \
    not a directory this user may read; damage before the log's tail). The store is opened \
    read-only: nothing in it is created, written or removed.";

/// Arguments of `helios stats`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory.
    pub dir: PathBuf,
    /// Print JSON instead of aligned text (fields in the long help, `--help`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// Checkpoint files and bytes of one level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
struct LevelJson {
    /// The level (1 is the finest).
    level: u32,
    /// Checkpoint files of this level.
    files: u64,
    /// Their total length.
    bytes: u64,
}

/// One stream.
#[derive(Clone, Debug, serde::Serialize)]
struct StreamJson {
    id: u64,
    name: String,
    /// Its events: the head version.
    events: u64,
    /// Its checkpoint files, all levels.
    checkpoint_files: u64,
    /// Their total length.
    checkpoint_bytes: u64,
    /// Per level, finest first.
    levels: Vec<LevelJson>,
}

/// The whole store.
#[derive(Clone, Debug, serde::Serialize)]
struct TotalsJson {
    streams: u64,
    events: u64,
    /// Log bytes through the last record.
    log_bytes: u64,
    /// Segment files holding records.
    log_segments: u64,
    /// Every segment file, as allocated.
    segment_files: u64,
    /// Their total length.
    segment_file_bytes: u64,
    checkpoint_files: u64,
    checkpoint_bytes: u64,
    /// Per level, finest first, over all streams.
    levels: Vec<LevelJson>,
}

/// `helios stats --json`.
#[derive(Clone, Debug, serde::Serialize)]
struct StatsJson {
    dir: String,
    /// Checkpoint levels.
    levels: u32,
    streams: Vec<StreamJson>,
    totals: TotalsJson,
}

/// Runs `helios stats`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let engine = args.open.open_read_only(&args.dir)?;
    let stats = collect(&engine)?;
    drop(engine);
    let out = if args.json {
        json::pretty(&stats)?
    } else {
        to_text(&stats)
    };
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(CliError::io("write to stdout"))?;
    Ok(ExitCode::SUCCESS)
}

fn collect(engine: &ReadOnly) -> Result<StatsJson, CliError> {
    let catalog = engine.checkpoints().stats();
    let log: LogSize = log_size(engine.inspect())?;
    let mut streams = Vec::new();
    let mut level_count = u32::try_from(catalog.by_level.len()).unwrap_or(u32::MAX);
    for info in engine.streams() {
        let checkpoints = engine.checkpoints().of_stream(&info.name)?;
        if let Some(max) = checkpoints.iter().map(|c| c.level).max() {
            level_count = level_count.max(max);
        }
        streams.push((info, checkpoints));
    }
    let empty_levels = || -> Vec<LevelJson> {
        (1..=level_count)
            .map(|level| LevelJson {
                level,
                ..LevelJson::default()
            })
            .collect()
    };
    let mut total_levels = empty_levels();
    let mut rows = Vec::with_capacity(streams.len());
    for (info, checkpoints) in streams {
        let mut levels = empty_levels();
        for checkpoint in &checkpoints {
            // Levels count from 1, and `level_count` covers every level seen.
            let index = usize::try_from(checkpoint.level.saturating_sub(1)).unwrap_or(0);
            for l in [&mut levels[index], &mut total_levels[index]] {
                l.files += 1;
                l.bytes += checkpoint.file_len_bytes;
            }
        }
        rows.push(StreamJson {
            id: info.id.get(),
            name: info.name,
            events: info.head.get(),
            checkpoint_files: checkpoints.len() as u64,
            checkpoint_bytes: checkpoints.iter().map(|c| c.file_len_bytes).sum(),
            levels,
        });
    }
    let totals = TotalsJson {
        streams: rows.len() as u64,
        events: rows.iter().map(|s| s.events).sum(),
        log_bytes: log.used_bytes,
        log_segments: log.used_segments,
        segment_files: log.files,
        segment_file_bytes: log.file_bytes,
        checkpoint_files: total_levels.iter().map(|l| l.files).sum(),
        checkpoint_bytes: total_levels.iter().map(|l| l.bytes).sum(),
        levels: total_levels,
    };
    Ok(StatsJson {
        dir: engine.inspect().dir().to_string_lossy().into_owned(),
        levels: level_count,
        streams: rows,
        totals,
    })
}

fn to_text(stats: &StatsJson) -> String {
    let t = &stats.totals;
    let plural = |n: u64, one: &str, many: &str| {
        format!("{} {}", thousands(n), if n == 1 { one } else { many })
    };
    let per_level: Vec<String> = t
        .levels
        .iter()
        .map(|l| format!("L{} {}", l.level, bytes(l.bytes)))
        .collect();
    let rows = [
        ("store", stats.dir.clone()),
        (
            "streams",
            format!(
                "{}, {}",
                plural(t.streams, "stream", "streams"),
                plural(t.events, "event", "events")
            ),
        ),
        (
            "log",
            format!(
                "{} through the last record, in {} ({} of segment files, preallocated)",
                bytes(t.log_bytes),
                plural(t.log_segments, "segment", "segments"),
                bytes(t.segment_file_bytes)
            ),
        ),
        (
            "checkpoints",
            format!(
                "{}, {} ({})",
                plural(t.checkpoint_files, "file", "files"),
                bytes(t.checkpoint_bytes),
                per_level.join(", ")
            ),
        ),
    ];
    let mut out = pairs(0, &rows);
    if stats.streams.is_empty() {
        return out;
    }
    let mut header: Vec<(String, Align)> = vec![
        ("ID".to_owned(), Align::Right),
        ("EVENTS".to_owned(), Align::Right),
    ];
    for level in 1..=stats.levels {
        header.push((format!("L{level}_FILES"), Align::Right));
        header.push((format!("L{level}_BYTES"), Align::Right));
    }
    header.push(("NAME".to_owned(), Align::Left));
    let header: Vec<(&str, Align)> = header.iter().map(|(h, a)| (h.as_str(), *a)).collect();
    let mut lines: Vec<Vec<String>> = stats
        .streams
        .iter()
        .map(|s| {
            let mut row = vec![s.id.to_string(), s.events.to_string()];
            for l in &s.levels {
                row.push(l.files.to_string());
                row.push(l.bytes.to_string());
            }
            row.push(s.name.clone());
            row
        })
        .collect();
    let mut total = vec![String::new(), t.events.to_string()];
    for l in &t.levels {
        total.push(l.files.to_string());
        total.push(l.bytes.to_string());
    }
    total.push("(total)".to_owned());
    lines.push(total);
    out.push('\n');
    out.push_str(&table(0, &header, &lines));
    out
}
