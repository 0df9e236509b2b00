//! Offline verification of a whole store: every log record's checksum and framing, that the
//! log reaches what was durable, the segment indexes against their segments, that no segment
//! is missing, and the checkpoint packs (`checkpoints/verify.rs`).

use std::path::{Path, PathBuf};

use helios_log::storage::Storage as _;
use helios_log::{FsStorage, Log, LogError, Lsn, RecordKind, SegmentIndex};

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
/// that the log reaches the end it published and its catalog snapshot's record; every segment
/// index against the index built again from its segment, and that no segment is missing; every
/// checkpoint's level and base against what the store's recorded level policy (without a
/// record, the default one) puts at its version.
///
/// Nothing in the store is created or written: no lock file is taken, and an older store's
/// fjall metadata is read on a copy in a temporary directory (fjall writes to a database it
/// opens). While a
/// writer holds the store, the metadata is not checked (its files change under the copy): the
/// report says so, and the log is checked up to the end the writer published (the records it
/// has made durable; past them, bytes are being written).
///
/// # Errors
/// I/O errors, a path that is not a store (named as what it is).
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    verify_store(dir, None)
}

/// [`verify`], with every checkpoint's level and base checked against what `policy` puts at
/// its version instead of the store's recorded policy.
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

    // What was durable first: it decides whether a short log is a torn tail or lost data, as
    // it does for an open. The log's published end and the catalog snapshot's record say it
    // (and an older store's recovery point in fjall).
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
    let published = if writer {
        None
    } else {
        helios_log::read_published_end(&log_dir)?
    };
    let recovery_point = if writer {
        Lsn::ZERO
    } else {
        let published = published.map_or(Lsn::ZERO, |p| p.lsn);
        let snapshot = crate::store_id::read(&storage, dir)
            .and_then(|id| crate::catalog_snapshot::covered(&storage, dir, id))
            .map_or(Lsn::ZERO, |l| l.lsn);
        let recorded = match &meta {
            Some(meta) => meta.recovery_point()?.map_or(Lsn::ZERO, |l| l.lsn),
            None => Lsn::ZERO,
        };
        published.max(snapshot).max(recorded)
    };

    let mut report = VerifyReport::default();
    // An open checks the snapshot's checksums only, and each stream's record at its first use.
    if let Some(snapshot) = crate::store_id::read(&storage, dir)
        .and_then(|id| crate::catalog_snapshot::read(&storage, dir, id))
        && let Err(reason) = snapshot.check_records()
    {
        report.findings.push(Finding {
            path: dir.join(crate::catalog_snapshot::CATALOG_FILE),
            offset: None,
            reason,
        });
    }
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
        &mut |record, _| {
            report.records += 1;
            log_end = log_end.max(record.header.lsn);
            if record.header.kind == RecordKind::Event {
                report.events += 1;
            }
        },
    )?;
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

    let lost = recovery_point > log_end;
    if lost
        && !report
            .findings
            .iter()
            .any(|f| f.reason.contains("acknowledged records are lost"))
    {
        // The log ends cleanly, but before records that were durable.
        report.findings.push(Finding {
            path: log_dir.clone(),
            offset: None,
            reason: format!(
                "acknowledged records are lost: records up to {recovery_point} were durable, \
                 but the log ends at {log_end} (a segment was cut short, emptied or removed); \
                 `helios repair` keeps the intact prefix"
            ),
        });
    }
    // The segment the published end names must be there, as an open checks (a missing one
    // in the middle breaks the LSNs, and a missing first one the log's start: the log's own
    // check names those).
    if let Some(end) = published.filter(|p| p.lsn > Lsn::ZERO)
        && !crate::open::segment_ids(&log_dir).contains(&end.segment.0)
    {
        report.findings.push(Finding {
            path: log_dir.join(helios_log::segment_name(end.segment)),
            offset: None,
            reason: format!(
                "this segment is missing: records up to {} in it were durable, and the events \
                 it held are gone",
                end.lsn
            ),
        });
    }
    if writer {
        // Beside a live writer, the segment indexes are left to it.
        report.unindexed_events = report.events;
        report.writer_holds_the_store = writer;
        return Ok(report);
    }
    report.index_entries = verify_segment_indexes(&log_dir, &mut report.findings);
    report.unindexed_events = report.events.saturating_sub(report.index_entries);
    report
        .findings
        .sort_by(|a, b| (&a.path, a.offset).cmp(&(&b.path, b.offset)));
    Ok(report)
}

/// Checks every segment index in `log_dir` against its segment: whole (checksums, tables) and
/// equal to the index built again from the segment's records. Returns the events the sound
/// ones locate. An index of a damaged segment is not compared (the damage is reported on its
/// own).
fn verify_segment_indexes(log_dir: &Path, findings: &mut Vec<Finding>) -> u64 {
    use helios_log::segment_index::{INDEX_SUFFIX, index_name};
    let mut located = 0u64;
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return 0;
    };
    let mut ids: Vec<u64> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(INDEX_SUFFIX)?.parse().ok()
        })
        .collect();
    ids.sort_unstable();
    let mut segments: Vec<u64> = crate::open::segment_ids(log_dir).into_iter().collect();
    segments.sort_unstable();
    // The log never starts after LSN 1, and no segment is skipped: the index of a segment
    // says where it ends, and so which segment must come next.
    if let Some(&first) = segments.first().filter(|&&first| first != 1) {
        findings.push(Finding {
            path: log_dir.join(helios_log::segment_name(helios_log::SegmentId(1))),
            offset: None,
            reason: format!(
                "this segment is missing: the log starts at lsn {first}, so lsns 1 to {} are \
                 gone",
                first - 1
            ),
        });
    }
    for id in ids.into_iter().map(helios_log::SegmentId) {
        let path = log_dir.join(index_name(id));
        let finding = |reason: String| Finding {
            path: path.clone(),
            offset: None,
            reason,
        };
        let index = match FsStorage
            .map_readonly(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| SegmentIndex::from_bytes(id, bytes).map_err(|e| e.to_string()))
        {
            Ok(index) => index,
            Err(reason) => {
                findings.push(finding(format!(
                    "{reason} (derived data: a writer's open rebuilds it)"
                )));
                continue;
            }
        };
        let segment = log_dir.join(helios_log::segment_name(id));
        let Ok(bytes) = FsStorage.map_readonly(&segment) else {
            findings.push(finding("its segment is missing".into()));
            continue;
        };
        // The index a clean close wrote for the segment then active covers a prefix of it
        // (the segment may have grown since): it is checked against that prefix.
        let whole = index.coverage(&bytes) != helios_log::segment_index::Coverage::Prefix;
        let covered = match whole {
            true => &bytes[..],
            false => bytes
                .get(..usize::try_from(index.last().end()).unwrap_or(usize::MAX))
                .unwrap_or(&bytes[..]),
        };
        let after = index.last().lsn.0.saturating_add(1);
        if whole
            && let Some(&next) = segments.iter().find(|&&s| s > id.0)
            && next != after
        {
            findings.push(Finding {
                path: log_dir.join(helios_log::segment_name(helios_log::SegmentId(after))),
                offset: None,
                reason: format!(
                    "this segment is missing: {} ends at lsn {} and the next segment present \
                     starts at lsn {next}",
                    helios_log::segment_name(id),
                    after - 1
                ),
            });
        }
        match SegmentIndex::build(id, covered) {
            Ok(built) if built == index.bytes() => located += index.events() as u64,
            Ok(_) => findings.push(finding(
                "it does not match its segment's records (derived data: remove it, and a \
                 writer's open rebuilds it)"
                    .into(),
            )),
            // The segment's damage is reported by the log's own check.
            Err(_) => {}
        }
    }
    located
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
