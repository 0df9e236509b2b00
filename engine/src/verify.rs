//! Offline verification of a whole store: every log record's checksum and framing, the fjall
//! index against the log, and the checkpoint packs (`checkpoints/verify.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use helios_log::{FsStorage, Location, Log, LogError, Lsn, RecordKind, StreamId, Version};

use helios_checkpoint::LevelPolicy;

use crate::error::{Error, Result};
use crate::meta::Meta;

/// One problem found by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The file (a segment) or directory (the metadata) concerned.
    pub path: PathBuf,
    /// Byte offset in that file, when the problem has one.
    pub offset: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(offset) => write!(
                f,
                "{} at byte {}: {}",
                self.path.display(),
                offset,
                self.reason
            ),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

/// What [`verify`] checked and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Log records read and checksum-verified.
    pub records: u64,
    /// Of which, events.
    pub events: u64,
    /// Index entries checked against the log.
    pub index_entries: u64,
    /// Events past the recovery point, not yet in the index (the next open indexes them).
    pub unindexed_events: u64,
    /// Checkpoint packs read.
    pub packs: u64,
    /// Checkpoints in them, each checked whole.
    pub checkpoints: u64,
    /// Every problem found; empty when the store is sound.
    pub findings: Vec<Finding>,
    /// Whether a writer held the store: the metadata was then not checked, and the log only up
    /// to the end the writer published as durable.
    pub writer_holds_the_store: bool,
}

impl VerifyReport {
    /// Whether no problem was found.
    #[must_use]
    pub fn is_sound(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Verifies the store in `dir` without changing it: every segment header and record checksum,
/// LSN continuity and batch framing of the log; every checkpoint pack (its header, its
/// checkpoints' headers against what was written and published, and every checkpoint whole);
/// then every index entry in fjall against the record it points at, and every indexed-range
/// event against the index.
///
/// Nothing in the store is created or written: no lock file is taken, and the fjall metadata
/// is checked on a copy in a temporary directory (fjall writes to a database it opens). While a
/// writer holds the store, the metadata is not checked (its files change under the copy): the
/// report says so, and the log is checked up to the end the writer published (the records it
/// has made durable; past them, bytes are being written).
///
/// # Errors
/// I/O errors, a path that is not a store (named as what it is).
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    verify_store(dir, None)
}

/// [`verify`], and also every checkpoint's level and base against what `policy` puts at its
/// version (the policy the store's writers use: `helios verify` passes the default one).
///
/// # Errors
/// As [`verify`].
pub fn verify_with_policy(dir: &Path, policy: &LevelPolicy) -> Result<VerifyReport> {
    verify_store(dir, Some(policy))
}

fn verify_store(dir: &Path, policy: Option<&LevelPolicy>) -> Result<VerifyReport> {
    crate::dir_check::check(dir, false, &FsStorage)?;
    let log_dir = dir.join("log");
    if !log_dir.is_dir() {
        return Err(Error::NotAStore {
            path: dir.to_path_buf(),
        });
    }
    let storage = FsStorage;
    let writer = crate::read_only::writer_holds(dir);

    // The metadata first: its recovery point says which records were acknowledged as durable,
    // which decides whether a short log is a torn tail or lost data, as it does for an open.
    let meta_dir = dir.join("meta");
    let copy = tempfile::tempdir()
        .map_err(|e| LogError::io("create a temporary directory", std::env::temp_dir(), e))?;
    let meta = if meta_dir.is_dir() && !writer {
        copy_dir(&meta_dir, copy.path())?;
        let meta = Meta::open_as_is(copy.path())?;
        let current = meta
            .format_version()?
            .is_none_or(|v| v >= crate::meta::META_FORMAT_VERSION);
        // Metadata of an older format is rebuilt by the next open: not checked.
        current.then_some(meta)
    } else {
        None
    };
    let recovery_point = match &meta {
        Some(meta) => meta.recovery_point()?.map_or(Lsn::ZERO, |l| l.lsn),
        None => Lsn::ZERO,
    };

    let mut report = VerifyReport::default();
    let mut events: HashMap<(u64, u64), Location> = HashMap::new();
    let mut log_end = Lsn::ZERO;
    // Beside a live writer, the log is checked up to the end it published: past it, bytes are
    // being written (and would look like a torn tail).
    let until = if writer {
        helios_log::read_published_end(&log_dir)?
    } else {
        None
    };
    let problems = Log::verify(
        &storage,
        &log_dir,
        recovery_point,
        until,
        &mut |record, location| {
            report.records += 1;
            log_end = log_end.max(record.header.lsn);
            if record.header.kind == RecordKind::Event {
                report.events += 1;
                events.insert((record.header.stream.0, record.header.version.0), location);
            }
        },
    )?;
    let segment_path =
        |location: &Location| log_dir.join(format!("{:020}.log", location.segment.0));
    let unreadable: Vec<(PathBuf, std::ops::Range<u64>)> = problems
        .iter()
        .map(|p| (p.path.clone(), p.unreadable.clone()))
        .collect();
    let in_damage = |location: &Location| {
        let path = segment_path(location);
        unreadable
            .iter()
            .any(|(p, range)| *p == path && range.contains(&location.offset))
    };
    report
        .findings
        .extend(problems.into_iter().map(|p| Finding {
            path: p.path,
            offset: Some(p.offset),
            reason: p.reason,
        }));

    let counted = crate::checkpoints::verify_packs(dir, policy, &mut report.findings);
    report.packs = counted.packs;
    report.checkpoints = counted.checkpoints;

    let Some(meta) = meta else {
        report.unindexed_events = report.events;
        report.writer_holds_the_store = writer;
        return Ok(report);
    };
    let lost = recovery_point > log_end;
    if lost
        && !report
            .findings
            .iter()
            .any(|f| f.reason.contains("acknowledged records are lost"))
    {
        // The log ends cleanly, but before records the metadata recorded as durable.
        report.findings.push(Finding {
            path: log_dir.clone(),
            offset: None,
            reason: format!(
                "acknowledged records are lost: the metadata recorded records up to \
                 {recovery_point} as durable, but the log ends at {log_end} (a segment was cut \
                 short, emptied or removed); `helios repair` keeps the intact prefix"
            ),
        });
    }
    // Every segment the metadata recorded must be there, as an open checks.
    let present: std::collections::HashSet<u64> = crate::open::segment_ids(&log_dir);
    for missing in meta
        .known_segments()?
        .into_iter()
        .filter(|id| !present.contains(id))
    {
        report.findings.push(Finding {
            path: log_dir.join(helios_log::segment_name(helios_log::SegmentId(missing))),
            offset: None,
            reason: "this segment is missing: the metadata recorded it, and the events it held \
                     are gone"
                .into(),
        });
    }
    let mut past_end = 0u64;
    let mut missing: std::collections::BTreeMap<PathBuf, Vec<(StreamId, Version, Location)>> =
        std::collections::BTreeMap::new();
    let mut indexed = 0u64;
    let entries = meta.index_runs().flat_map(|run| match run {
        Ok((stream, first, locations)) => locations
            .into_iter()
            .enumerate()
            .map(|(i, l)| Ok((stream, Version(first.0 + i as u64), l)))
            .collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    });
    for entry in entries {
        let (stream, version, location) = match entry {
            Ok(entry) => entry,
            Err(e) => {
                report.findings.push(Finding {
                    path: meta_dir.clone(),
                    offset: None,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        indexed += 1;
        match events.remove(&(stream.0, version.0)) {
            Some(actual) if actual == location => {}
            Some(actual) => report.findings.push(Finding {
                path: segment_path(&actual),
                offset: Some(actual.offset),
                reason: format!(
                    "index entry of {stream} {version} points at {} in segment {} byte {}, but the record is here ({})",
                    location.lsn, location.segment.0, location.offset, actual.lsn
                ),
            }),
            // Its record lies in bytes already reported as damaged.
            None if in_damage(&location) => {}
            // Lost with the end of the log, which is reported once above.
            None if lost && location.lsn > log_end => past_end += 1,
            None => missing
                .entry(segment_path(&location))
                .or_default()
                .push((stream, version, location)),
        }
    }
    report.index_entries = indexed;
    // Entries that point at records not in the log, one finding per segment: a lost range
    // makes hundreds of them, and the damage that lost them is reported on its own.
    for (path, entries) in missing {
        let (stream, version, first) = entries[0];
        let reason = if let [_] = entries[..] {
            format!(
                "index entry of {stream} {version} points at {}, which is not in the log",
                first.lsn
            )
        } else {
            let last = entries[entries.len() - 1].2;
            format!(
                "{} index entries point at records that are not in the log (lsns {} to {})",
                entries.len(),
                first.lsn.0,
                last.lsn.0
            )
        };
        report.findings.push(Finding {
            path,
            offset: Some(first.offset),
            reason,
        });
    }
    if past_end > 0 {
        report.findings.push(Finding {
            path: meta_dir.clone(),
            offset: None,
            reason: format!(
                "{past_end} index entries point past the end of the log, at records that are lost"
            ),
        });
    }
    for ((stream, version), location) in events {
        if location.lsn <= recovery_point {
            report.findings.push(Finding {
                path: segment_path(&location),
                offset: Some(location.offset),
                reason: format!(
                    "event of stream #{stream} v{version} ({}) is below the recovery point ({recovery_point}) but not indexed",
                    location.lsn
                ),
            });
        } else {
            report.unindexed_events += 1;
        }
    }
    report
        .findings
        .sort_by(|a, b| (&a.path, a.offset).cmp(&(&b.path, b.offset)));
    Ok(report)
}

/// Copies the directory tree `from` into `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).map_err(|e| LogError::io("list", from, e))? {
        let entry = entry.map_err(|e| LogError::io("list", from, e))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry
            .file_type()
            .map_err(|e| LogError::io("stat", &source, e))?
            .is_dir()
        {
            std::fs::create_dir_all(&target)
                .map_err(|e| LogError::io("create directory", &target, e))?;
            copy_dir(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).map_err(|e| LogError::io("copy", &source, e))?;
        }
    }
    Ok(())
}
