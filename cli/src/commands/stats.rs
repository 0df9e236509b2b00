//! `helios stats`: what a store holds and what it takes on disk, per stream and in total.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use helios::{Lsn, ReadOnly};

use crate::error::CliError;
use crate::json;
use crate::store::{LogSize, OpenArgs, log_size};
use crate::text::{Align, bytes, pairs, table, thousands, times};
use helios::{DiskUsage, FileKind, FileUsage};

/// The long help of `helios stats`.
pub const LONG_ABOUT: &str = "Show what a store holds and what it takes on disk: per stream, \
    its events (the head version) and its checkpoints per level (count and bytes); in \
    total, the log's bytes through its last record and the segment files as allocated \
    (segments are preallocated with zeros), and every checkpoint and its bytes; and every \
    file of the store by kind, with the derived ratio.\n\n\
    Files by kind: the store directory is walked and each file classified by where it lies: \
    `log/*.log` segments, `log/*.spare` the spare (the next segment, zero-filled ahead), \
    anything under `meta/` or `index/`, the segment indexes `log/*.idx` and `CATALOG` \
    metadata, under `checkpoints/` or `packs/` checkpoints, \
    under `repair-*/` set aside (what `helios repair` moved there), anything else other \
    (`FORMAT`, `LOCK`, temporary files). Per kind: the number of files, their apparent bytes \
    (lengths) and their allocated bytes (`st_blocks * 512`: what the file system holds for \
    them, less than the length for a sparse file, a block at least for a small one). \
    Directories are not counted, and symbolic links are not followed (a link counts at its own \
    size).\n\n\
    The derived ratio is the allocated bytes of every file outside the log's segments (the \
    spare, metadata, checkpoints and other; not what was set aside) divided by the log's bytes \
    through its last record (what the events cost, headers included): what the store keeps \
    beside its log, per byte of log.\n\n\
    The store is opened without the engine's background threads, so nothing is built while \
    the command looks: the numbers are what is on disk (after recovery, which any open runs). \
    Checkpoints due but not built yet (the builder runs in the background of the process that \
    appends) are not counted. The files are walked just after the store is read: a writer at \
    work meanwhile can make the two disagree by what it wrote in between.\n\n\
    With `--json`, one object:\n\
    - `dir`, and `levels`: the number of checkpoint levels (level 1 is the finest; the top \
    level holds full states, the others deltas, except each stream's first checkpoint, a \
    full state at level 1);\n\
    - `streams`: one object per stream, by id: `id`, `name`, `events`, `checkpoints`, \
    `checkpoint_bytes`, and `levels`: one `{level, checkpoints, bytes}` per level, finest first;\n\
    - `totals`: `streams`, `events`, `log_bytes` (through the last record), \
    `log_segments` (segment files holding records), `segment_files` and \
    `segment_file_bytes` (every segment file, as allocated), `checkpoints`, \
    `checkpoint_bytes`, `levels` as above, over all streams, and `dead`: \
    `{deleted_streams, events, bytes}`, the log's bytes that no live stream reads any more \
    (the events of deleted streams, except what a live fork shares; the log is append-only, \
    so they stay on disk until a compaction reclaims them, and none does yet);\n\
    - `disk`: one `{files, apparent_bytes, allocated_bytes}` object per kind (`segments`, \
    `spare`, `metadata`, `checkpoints`, `set_aside`, `other`), one for every file (`total`) and \
    one for the files the ratio counts (`derived`), then `log_bytes` (as in `totals`) and \
    `derived_ratio` (`derived.allocated_bytes / log_bytes`, to 4 decimals; null when the log \
    holds no record).\n\n\
    Exit status: 0 when the report was printed, 2 on errors (a path that is not a store, or \
    not a directory this user may read, or a directory in it this user may not list; damage \
    before the log's tail). The store is opened read-only, and its files are only listed: \
    nothing in it is created, written or removed.";

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

/// Checkpoints and bytes of one level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
struct LevelJson {
    /// The level (1 is the finest).
    level: u32,
    /// Checkpoints of this level.
    checkpoints: u64,
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
    /// Its checkpoints, all levels.
    checkpoints: u64,
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
    checkpoints: u64,
    checkpoint_bytes: u64,
    /// Per level, finest first, over all streams.
    levels: Vec<LevelJson>,
    /// What no live stream reads any more: the events of deleted streams.
    dead: DeadJson,
}

/// The log's dead bytes, from [`helios::Inspect::dead_bytes`].
#[derive(Clone, Copy, Debug, serde::Serialize)]
struct DeadJson {
    /// Streams deleted.
    deleted_streams: u64,
    /// Events no live stream reads (of deleted streams, not shared with a live fork).
    events: u64,
    /// Their bytes in the log, headers included.
    bytes: u64,
}

/// Files and bytes of one kind of file (or of several), from [`helios::disk_usage`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
struct Usage {
    files: u64,
    apparent_bytes: u64,
    allocated_bytes: u64,
}

impl From<FileUsage> for Usage {
    fn from(u: FileUsage) -> Usage {
        Usage {
            files: u.files,
            apparent_bytes: u.apparent_bytes,
            allocated_bytes: u.allocated_bytes,
        }
    }
}

/// Every file of the store, by kind, and the derived ratio.
#[derive(Clone, Debug, serde::Serialize)]
struct DiskJson {
    /// `log/*.log`.
    segments: Usage,
    /// `log/*.spare`.
    spare: Usage,
    /// Under `meta/` or `index/`, `log/*.idx` and `CATALOG`.
    metadata: Usage,
    /// Under `checkpoints/` or `packs/`.
    checkpoints: Usage,
    /// Under `repair-*/`.
    set_aside: Usage,
    /// Everything else.
    other: Usage,
    /// Every file.
    total: Usage,
    /// Every file outside the log's segments but what was set aside: what the ratio counts.
    derived: Usage,
    /// The log's bytes through its last record (as `totals.log_bytes`).
    log_bytes: u64,
    /// `derived.allocated_bytes / log_bytes`, to 4 decimals; `None` (null) for a log without
    /// a record (its bytes are only a segment header, and the ratio would say nothing).
    derived_ratio: Option<f64>,
}

impl DiskJson {
    /// The figures of `usage`, for a log of `log_bytes` through its last record that holds a
    /// record or not (`has_records`).
    fn new(usage: &DiskUsage, log_bytes: u64, has_records: bool) -> DiskJson {
        let derived: Usage = usage.derived().into();
        DiskJson {
            segments: usage.of(FileKind::Segments).into(),
            spare: usage.of(FileKind::Spare).into(),
            metadata: usage.of(FileKind::Metadata).into(),
            checkpoints: usage.of(FileKind::Checkpoints).into(),
            set_aside: usage.of(FileKind::SetAside).into(),
            other: usage.of(FileKind::Other).into(),
            total: usage.total().into(),
            derived,
            log_bytes,
            derived_ratio: has_records
                .then(|| derived_ratio(derived.allocated_bytes, log_bytes))
                .flatten(),
        }
    }

    /// Each kind with its name, in report order.
    fn kinds(&self) -> [(FileKind, Usage); FileKind::ALL.len()] {
        [
            (FileKind::Segments, self.segments),
            (FileKind::Spare, self.spare),
            (FileKind::Metadata, self.metadata),
            (FileKind::Checkpoints, self.checkpoints),
            (FileKind::SetAside, self.set_aside),
            (FileKind::Other, self.other),
        ]
    }
}

/// Allocated bytes beside the log per byte of log, to 4 decimals; `None` for an empty log.
fn derived_ratio(derived_allocated_bytes: u64, log_bytes: u64) -> Option<f64> {
    (log_bytes > 0).then(|| json::round(derived_allocated_bytes as f64 / log_bytes as f64, 4))
}

/// `helios stats --json`.
#[derive(Clone, Debug, serde::Serialize)]
struct StatsJson {
    dir: String,
    /// Checkpoint levels.
    levels: u32,
    streams: Vec<StreamJson>,
    totals: TotalsJson,
    disk: DiskJson,
}

/// Runs `helios stats`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let engine = args.open.open_read_only(&args.dir)?;
    // Walked while the store is open, so that the files and what the open read are as close
    // in time as they can be.
    let usage = helios::disk_usage(&args.dir).map_err(|e| CliError::Path {
        op: e.op,
        path: e.path,
        source: e.source,
    })?;
    let stats = collect(&engine, &usage)?;
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

fn collect(engine: &ReadOnly, usage: &DiskUsage) -> Result<StatsJson, CliError> {
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
                l.checkpoints += 1;
                l.bytes += checkpoint.len_bytes;
            }
        }
        rows.push(StreamJson {
            id: info.id.get(),
            name: info.name,
            events: info.head.get(),
            checkpoints: checkpoints.len() as u64,
            checkpoint_bytes: checkpoints.iter().map(|c| c.len_bytes).sum(),
            levels,
        });
    }
    let dead = engine.inspect().dead_bytes()?;
    let totals = TotalsJson {
        dead: DeadJson {
            deleted_streams: dead.deleted_streams,
            events: dead.events,
            bytes: dead.bytes,
        },
        streams: rows.len() as u64,
        events: rows.iter().map(|s| s.events).sum(),
        log_bytes: log.used_bytes,
        log_segments: log.used_segments,
        segment_files: log.files,
        segment_file_bytes: log.file_bytes,
        checkpoints: total_levels.iter().map(|l| l.checkpoints).sum(),
        checkpoint_bytes: total_levels.iter().map(|l| l.bytes).sum(),
        levels: total_levels,
    };
    Ok(StatsJson {
        dir: engine.inspect().dir().to_string_lossy().into_owned(),
        levels: level_count,
        streams: rows,
        disk: DiskJson::new(
            usage,
            totals.log_bytes,
            engine.inspect().last_lsn() != Lsn::ZERO,
        ),
        totals,
    })
}

fn to_text(stats: &StatsJson) -> String {
    let t = &stats.totals;
    let d = &stats.disk;
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
                plural(t.checkpoints, "checkpoint", "checkpoints"),
                bytes(t.checkpoint_bytes),
                per_level.join(", ")
            ),
        ),
        (
            "dead",
            format!(
                "{} in {} of {} (no live stream reads them; the log is append-only, so they \
                 stay until a compaction reclaims them)",
                bytes(t.dead.bytes),
                plural(t.dead.events, "event", "events"),
                plural(t.dead.deleted_streams, "deleted stream", "deleted streams"),
            ),
        ),
        (
            "files",
            format!(
                "{}, {} allocated ({} apparent)",
                plural(d.total.files, "file", "files"),
                bytes(d.total.allocated_bytes),
                bytes(d.total.apparent_bytes)
            ),
        ),
        (
            "derived",
            format!(
                "{} the log ({} allocated outside the segments, set aside not counted, for {} \
                 of log)",
                d.derived_ratio.map_or_else(|| "-".to_owned(), times),
                bytes(d.derived.allocated_bytes),
                bytes(d.log_bytes)
            ),
        ),
    ];
    let mut out = pairs(0, &rows);
    out.push('\n');
    out.push_str(&disk_table(&stats.disk));
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
                row.push(l.checkpoints.to_string());
                row.push(l.bytes.to_string());
            }
            row.push(s.name.clone());
            row
        })
        .collect();
    let mut total = vec![String::new(), t.events.to_string()];
    for l in &t.levels {
        total.push(l.checkpoints.to_string());
        total.push(l.bytes.to_string());
    }
    total.push("(total)".to_owned());
    lines.push(total);
    out.push('\n');
    out.push_str(&table(0, &header, &lines));
    out
}

/// The files by kind, as a table with a total row.
fn disk_table(disk: &DiskJson) -> String {
    let header = [
        ("KIND", Align::Left),
        ("FILES", Align::Right),
        ("APPARENT_BYTES", Align::Right),
        ("ALLOCATED_BYTES", Align::Right),
    ];
    let row = |name: &str, usage: Usage| {
        vec![
            name.to_owned(),
            usage.files.to_string(),
            usage.apparent_bytes.to_string(),
            usage.allocated_bytes.to_string(),
        ]
    };
    let mut rows: Vec<Vec<String>> = disk
        .kinds()
        .into_iter()
        .map(|(kind, usage)| row(kind.name(), usage))
        .collect();
    rows.push(row("(total)", disk.total));
    table(0, &header, &rows)
}
