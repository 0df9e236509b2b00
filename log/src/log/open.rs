//! Opening the log: finding its segments, recovering the tail of the active one after a crash,
//! and handing the caller every record past its recovery point.
//!
//! Invariants [`Log::open`] establishes before it returns:
//! - The log starts at LSN 1, every segment's header agrees with its file name, and each
//!   segment scanned starts right after the one before it; anything else is corruption, never
//!   repaired. (Segments wholly before the recovery point are not scanned, only mapped.)
//! - Damage in a sealed segment, or below the recovery point, is corruption. Only the active
//!   segment's bytes past its last complete batch may be a torn tail, and only when no valid
//!   record follows them; they are zeroed and synced (or refused, in
//!   [`RecoveryMode::Refuse`]) before anything new is written after them.
//! - The visitor sees complete batches only, in LSN order.
//! - Leftovers of interrupted segment creation (`*.log.tmp`, the spare) are removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use super::segments::{
    SEGMENT_SUFFIX, Spare, check_header, check_header_of, create_segment, list_segments,
    map_appending, parse_segment_name, read_all, read_head, segment_name, zero_range,
};
use super::{
    ActiveSegment, Log, LogOptions, MIN_SEGMENT_SIZE_BYTES, RecoveryMode, Sealed, SyncState, Writer,
};
use crate::error::{LogError, Result};
use crate::format::{self, RecordRef, segment_header};
use crate::scan::{self, Stop};
use crate::storage::Storage;
use crate::types::{Location, Lsn, Position, SegmentId};

/// Bytes past the end of the records that an open after a clean shutdown checks are zeros.
pub(super) const CLEAN_END_WINDOW: usize = 64 << 10;
/// Whether an open may change the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// A writer's open: recovery may zero a torn tail and create the first segment.
    Write,
    /// A reader's open: nothing is written, created or removed.
    Read,
}

/// A torn tail that recovery removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruncatedTail {
    /// The active segment.
    pub path: PathBuf,
    /// Where the removed bytes started.
    pub offset: u64,
    /// How many bytes were zeroed.
    pub len_bytes: u64,
}

/// What opening the log found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files found.
    pub segments: usize,
    /// Records read past the start position (handed to the visitor).
    pub records_scanned: u64,
    /// Segments whose records were scanned (0 or 1 after a clean shutdown).
    pub segments_scanned: usize,
    /// The torn tail removed, if any.
    pub truncated: Option<TruncatedTail>,
    /// Where the log ends.
    pub end: Position,
    /// Set when the start position given to [`Log::open`] lay past the log's end (the log was
    /// shorter than the caller's metadata believed). Only a read-only open reports it (a
    /// writer's open refuses the log instead, as lost data): records the caller derived past
    /// `end` are not in the log.
    pub start_was_past_end: bool,
}

/// Where an open starts reading, what it must reach, and where it stops.
struct Bounds {
    /// The last record the caller has processed: scanning starts after it.
    start: Option<Location>,
    /// A position known to be durable: a log that ends before it lost records.
    durable: Option<Position>,
    /// The end a live writer published: nothing past it is read.
    until: Option<Position>,
}

impl Bounds {
    fn start(start: Option<Location>) -> Bounds {
        Bounds {
            start,
            durable: None,
            until: None,
        }
    }
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering from a crash if needed.
    ///
    /// `start` is the location of the last record the caller has already processed (its
    /// recovery point), or `None` to scan the whole log. Every record after it, in complete
    /// batches, is handed to `visit` in LSN order. A torn tail of the active segment is zeroed
    /// or refused according to [`LogOptions::recovery_mode`].
    ///
    /// # Errors
    /// [`LogError::Corrupt`] for damage that is not a torn tail, [`LogError::TornTail`] in
    /// refuse mode, [`LogError::Io`] for I/O failures.
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        options: LogOptions,
        start: Option<Location>,
        visit: &mut dyn FnMut(RecordRef<'_>, Location),
    ) -> Result<(Log, RecoveryReport)> {
        Log::open_durable(storage, dir, options, start, None, visit)
    }

    /// As [`Log::open`], and the log must reach `durable` (if given): a position the caller
    /// knows was durable (the end the log last published, for example). A log that ends before
    /// it, or lacks its segment, lost acknowledged records, and the open refuses it, changing
    /// nothing, as it refuses a log that ends before `start`.
    ///
    /// # Errors
    /// As [`Log::open`].
    pub fn open_durable(
        storage: Arc<dyn Storage>,
        dir: &Path,
        options: LogOptions,
        start: Option<Location>,
        durable: Option<Position>,
        visit: &mut dyn FnMut(RecordRef<'_>, Location),
    ) -> Result<(Log, RecoveryReport)> {
        let bounds = Bounds {
            durable,
            ..Bounds::start(start)
        };
        Log::open_as(storage, dir, options, bounds, visit, Access::Write)
    }

    /// Opens the log in `dir` to read it, changing nothing: no directory, segment or spare is
    /// created or removed, a torn tail is left as it is (reads stop before it: the report says
    /// where), and files are opened read-only, so a log on a read-only file system opens too.
    /// Every record after `start` is handed to `visit`, as [`Log::open`] does. The returned
    /// log refuses every write.
    ///
    /// # Errors
    /// As [`Log::open`], except that a torn tail is never an error; a directory without
    /// segments is [`LogError::Io`] with `NotFound`.
    pub fn open_read_only(
        storage: Arc<dyn Storage>,
        dir: &Path,
        options: LogOptions,
        start: Option<Location>,
        visit: &mut dyn FnMut(RecordRef<'_>, Location),
    ) -> Result<(Log, RecoveryReport)> {
        Log::open_as(
            storage,
            dir,
            options,
            Bounds::start(start),
            visit,
            Access::Read,
        )
    }

    /// As [`Log::open_read_only`], reading nothing past `until`: the end a live writer
    /// published. Past it the writer's bytes are in flux (appends being written, a torn tail
    /// its recovery is zeroing), so a reader that looked there could take them for damage.
    ///
    /// # Errors
    /// As [`Log::open_read_only`].
    pub fn open_read_only_until(
        storage: Arc<dyn Storage>,
        dir: &Path,
        options: LogOptions,
        start: Option<Location>,
        until: Position,
        visit: &mut dyn FnMut(RecordRef<'_>, Location),
    ) -> Result<(Log, RecoveryReport)> {
        let bounds = Bounds {
            until: Some(until),
            ..Bounds::start(start)
        };
        Log::open_as(storage, dir, options, bounds, visit, Access::Read)
    }

    fn open_as(
        storage: Arc<dyn Storage>,
        dir: &Path,
        options: LogOptions,
        bounds: Bounds,
        visit: &mut dyn FnMut(RecordRef<'_>, Location),
        access: Access,
    ) -> Result<(Log, RecoveryReport)> {
        let Bounds {
            start,
            durable,
            until,
        } = bounds;
        assert!(
            options.segment_size_bytes >= MIN_SEGMENT_SIZE_BYTES,
            "segment size is validated by the caller"
        );
        let writing = access == Access::Write;
        if writing {
            storage
                .create_dir_all(dir)
                .map_err(|e| LogError::io("create directory", dir, e))?;
        }
        let mut ids = list_segments(storage.as_ref(), dir, writing)?;
        if let Some(until) = until {
            // Segments past the published end's are the writer's, not yet published.
            ids.retain(|id| *id <= until.segment);
        }
        if ids.is_empty() && !writing {
            return Err(LogError::io(
                "find a segment in",
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "the log has no segment"),
            ));
        }
        if ids.is_empty() {
            if let Some(start) = start {
                return Err(LogError::corrupt(
                    dir.join(segment_name(start.segment)),
                    0,
                    format!(
                        "the recovery point ({}) names a segment that is missing; the log directory is empty",
                        start.lsn
                    ),
                ));
            }
            if let Some(durable) = durable.filter(|d| d.lsn > Lsn::ZERO) {
                return Err(LogError::corrupt(
                    dir.join(segment_name(durable.segment)),
                    0,
                    format!(
                        "this segment is missing: records up to {} in it were durable, and \
                         the log directory is empty",
                        durable.lsn
                    ),
                ));
            }
            // An index of a segment that is not here says records were: a log directory whose
            // segments were removed is not a new log (found by fuzzing: a writer started an
            // empty log beside the old indexes, and its reopen refused the log).
            let mut names = storage
                .list_files(dir)
                .map_err(|e| LogError::io("list", dir, e))?;
            names.sort();
            if let Some(index) = names.iter().find(|name| {
                name.strip_suffix(".idx")
                    .and_then(|stem| parse_segment_name(&format!("{stem}{SEGMENT_SUFFIX}")))
                    .is_some()
            }) {
                return Err(LogError::corrupt(
                    dir.join(index),
                    0,
                    "this is the index of a segment, yet the log directory holds no segment: \
                     the records it indexes are gone (restore the segments, or `helios repair` \
                     sets the index aside and starts an empty log)",
                ));
            }
            create_segment(
                storage.as_ref(),
                dir,
                SegmentId(1),
                options.first_size_bytes(),
                None,
            )?;
            ids.push(SegmentId(1));
        }

        let mut report = RecoveryReport {
            segments: ids.len(),
            records_scanned: 0,
            segments_scanned: 0,
            truncated: None,
            end: Position {
                lsn: Lsn::ZERO,
                segment: SegmentId(1),
                offset: 0,
            },
            start_was_past_end: false,
        };

        // Where to start scanning: just after the start record, if it is really there.
        let mut begin: Option<(usize, u64, Lsn)> = None;
        let mut recovery_point = Lsn::ZERO;
        // The log must reach both the start record and what the caller knows was durable.
        let durable = durable.filter(|d| d.lsn > Lsn::ZERO);
        if let Some(durable) = durable
            && ids.binary_search(&durable.segment).is_err()
        {
            return Err(LogError::corrupt(
                dir.join(segment_name(durable.segment)),
                0,
                format!(
                    "this segment is missing: records up to {} in it were durable, and the \
                     events it held are gone",
                    durable.lsn
                ),
            ));
        }
        // A reader that finds the log shorter than its start reads what there is instead
        // (`start_was_past_end`): a damaged store stays readable.
        let must_reach = start
            .filter(|_| writing)
            .map_or(Lsn::ZERO, |s| s.lsn)
            .max(durable.map_or(Lsn::ZERO, |d| d.lsn));
        if let Some(start) = start {
            recovery_point = start.lsn;
            let index = ids.binary_search(&start.segment).map_err(|_| {
                LogError::corrupt(
                    dir.join(segment_name(start.segment)),
                    start.offset,
                    format!(
                        "the recovery point ({}) is in this segment, which is missing",
                        start.lsn
                    ),
                )
            })?;
            let path = dir.join(segment_name(start.segment));
            let bytes = read_all(storage.as_ref(), &path)?;
            let bytes: &[u8] = &bytes;
            check_header(&path, bytes, start.segment)?;
            let at = usize::try_from(start.offset).unwrap_or(usize::MAX);
            match bytes.get(at..).map(format::decode_frame) {
                Some(Ok(format::Frame::Record(r, len)))
                    if r.header.lsn == start.lsn
                        && len as u64 == u64::from(start.frame_len_bytes) =>
                {
                    begin = Some((index, start.end(), start.lsn));
                }
                Some(Ok(format::Frame::End)) => {
                    // The log ends before the recovery point: scan it all and let the caller
                    // drop what lies past the real end.
                    report.start_was_past_end = true;
                }
                Some(Ok(format::Frame::Record(r, _))) => {
                    return Err(LogError::corrupt(
                        &path,
                        start.offset,
                        format!(
                            "the recovery point says {} is here, but {} is",
                            start.lsn, r.header.lsn
                        ),
                    ));
                }
                Some(Err(e)) => {
                    return Err(LogError::corrupt(
                        &path,
                        start.offset,
                        format!(
                            "acknowledged records are lost: the last record recorded \
                             as durable ({}) is damaged: {e}",
                            start.lsn
                        ),
                    ));
                }
                None => {
                    // The file is shorter than the recovery point's offset: cut short. Scan
                    // the log to find where it really ends.
                    report.start_was_past_end = true;
                }
            }
        }
        // The log is never trimmed: it starts at LSN 1, or its beginning is missing.
        if ids[0].0 != 1 {
            return Err(LogError::corrupt(
                dir.join(segment_name(SegmentId(1))),
                0,
                format!(
                    "this segment is missing: the log starts at lsn {} (in {}), so lsns 1 to {} \
                     are gone",
                    ids[0].0,
                    segment_name(ids[0]),
                    ids[0].0 - 1
                ),
            ));
        }
        let (first_index, mut offset, mut last_lsn) = begin.unwrap_or((
            0,
            segment_header::LEN as u64,
            Lsn(ids[0].0.saturating_sub(1)),
        ));

        let last_index = ids.len() - 1;
        let mut sealed = BTreeMap::new();
        let mut active_end = segment_header::LEN as u64;
        let mut active_format_version = format::FORMAT_VERSION;
        for (index, &id) in ids.iter().enumerate() {
            let path = dir.join(segment_name(id));
            if index < first_index {
                // Before the start: not scanned, mapped at its first read; its header is
                // checked now (read, not mapped), so that a foreign or damaged file is named at
                // open, not on some read.
                let (head, len) = read_head(storage.as_ref(), &path)?;
                let header = check_header_of(&path, &head, len, id)?;
                if header.capacity_bytes.is_some_and(|capacity| capacity > len) {
                    // Shorter than it was created: scan it, and make sure its records run up
                    // to the next segment's first, so that a cut that lost records is named
                    // now rather than by some later read.
                    let bytes = read_all(storage.as_ref(), &path)?;
                    let next = ids.get(index + 1).map_or(Lsn(u64::MAX), |n| Lsn(n.0));
                    check_cut_segment(&path, &bytes, id, next)?;
                    sealed.insert(id, Sealed::shared(path, bytes));
                } else {
                    sealed.insert(id, Arc::new(Sealed::lazy(path, storage.clone(), len)));
                }
                continue;
            }
            let bytes = read_all(storage.as_ref(), &path)?;
            // The segment of the published end is read only up to it.
            let limit = until.filter(|u| u.segment == id).map_or(bytes.len(), |u| {
                usize::try_from(u.offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len())
            });
            let slice: &[u8] = &bytes[..limit];
            let header = check_header(&path, slice, id)?;
            if index == last_index {
                active_format_version = header.format_version;
            }
            let cut_short = header
                .capacity_bytes
                .filter(|capacity| *capacity > slice.len() as u64);
            if index == first_index
                && let Some((_, _, start_lsn)) = begin
                && header
                    .capacity_bytes
                    .is_some_and(|capacity| capacity > bytes.len() as u64)
            {
                // The segment the recovery starts in is shorter than it was created: its
                // records before the start are checked as a cut segment's before the start
                // are, or this open would pass over damage that the next one, starting in a
                // later segment, refuses.
                check_records_before(&path, slice, id, start_lsn)?;
            }
            if index > first_index {
                if id.0 != last_lsn.0 + 1 {
                    return Err(LogError::corrupt(
                        &path,
                        0,
                        format!(
                            "segment starts at lsn {} but the previous segment ends at {}",
                            id.0, last_lsn
                        ),
                    ));
                }
                offset = segment_header::LEN as u64;
            }
            report.segments_scanned += 1;
            let outcome =
                scan::scan_segment(slice, id, offset, Lsn(last_lsn.0 + 1), &mut |r, l| {
                    visit(r, l);
                });
            report.records_scanned += outcome.records;
            let damage = match &outcome.stop {
                Stop::Bad { offset, reason } => Some((*offset, reason.clone())),
                Stop::End if outcome.pending_records > 0 => Some((
                    outcome.stop_offset,
                    format!(
                        "a batch of {} records is incomplete",
                        outcome.pending_records
                    ),
                )),
                // A clean end must be followed by zeros only, or a later append would land in
                // front of stale bytes. After a clean shutdown (the scan started at the
                // recovery point and found nothing, or it ended exactly where the last writer
                // published its synced end) only the bytes just past the end are read, not the
                // rest of the segment: enough to find a tail that was written and then damaged
                // (its first frame no longer decodes), which an append would otherwise land in
                // front of. A reader, which appends nothing, reads no further either.
                Stop::End
                    if index == last_index && {
                        let at_published = durable
                            .is_some_and(|d| d.segment == id && d.offset == outcome.stop_offset);
                        let clean_shutdown = !writing
                            || at_published
                            || (begin.is_some() && index == first_index && outcome.records == 0);
                        let window = if clean_shutdown {
                            let end = usize::try_from(outcome.stop_offset)
                                .unwrap_or(usize::MAX)
                                .saturating_add(CLEAN_END_WINDOW)
                                .min(slice.len());
                            &slice[..end]
                        } else {
                            slice
                        };
                        scan::nonzero_end(window, outcome.stop_offset) > outcome.stop_offset
                    } =>
                {
                    Some((
                        outcome.stop_offset,
                        "non-zero bytes after the end of the written records".to_owned(),
                    ))
                }
                Stop::End => None,
            };
            if let Some((bad_offset, reason)) = damage {
                if index < last_index {
                    // Damage that a cut explains is named as the cut, at the file's end, as
                    // when the segment is not scanned.
                    if let Some(capacity) = cut_short {
                        return Err(LogError::corrupt(
                            &path,
                            slice.len() as u64,
                            format!(
                                "the segment was cut short at this byte (it was created \
                                 {capacity} bytes long): its records end at {}, and the \
                                 records after them are gone",
                                outcome.committed_lsn
                            ),
                        ));
                    }
                    return Err(LogError::corrupt(
                        &path,
                        bad_offset,
                        format!("in a sealed segment: {reason}"),
                    ));
                }
                if outcome.committed_lsn < must_reach {
                    if let Some(capacity) = cut_short {
                        return Err(LogError::corrupt(
                            &path,
                            slice.len() as u64,
                            format!(
                                "acknowledged records are lost: the segment was cut short at \
                                 this byte (it was created {capacity} bytes long); the log ends \
                                 at {}, but records up to {must_reach} were durable",
                                outcome.committed_lsn
                            ),
                        ));
                    }
                    return Err(LogError::corrupt(
                        &path,
                        bad_offset,
                        format!(
                            "acknowledged records are lost: {reason} at this byte, but records \
                             up to {must_reach} were durable"
                        ),
                    ));
                }
                if let Some(valid) =
                    scan::find_valid_record_after(slice, bad_offset, outcome.committed_lsn)
                {
                    return Err(LogError::corrupt(
                        &path,
                        bad_offset,
                        format!(
                            "{reason}; followed by a valid record at byte {valid}, so this is damage, not a torn tail"
                        ),
                    ));
                }
                let tail_end =
                    scan::nonzero_end(slice, outcome.committed_end).max(outcome.stop_offset);
                let len_bytes = tail_end - outcome.committed_end;
                if writing && options.recovery_mode == RecoveryMode::Refuse {
                    return Err(LogError::TornTail {
                        path,
                        offset: outcome.committed_end,
                        len_bytes,
                    });
                }
                report.truncated = Some(TruncatedTail {
                    path: path.clone(),
                    offset: outcome.committed_end,
                    len_bytes,
                });
            }
            last_lsn = outcome.committed_lsn;
            if index < last_index {
                sealed.insert(id, Sealed::shared(path, bytes));
            } else {
                active_end = outcome.committed_end;
            }
        }
        if last_lsn < recovery_point {
            report.start_was_past_end = true;
        }
        let active_id = ids[last_index];
        let active_path = dir.join(segment_name(active_id));
        if (report.start_was_past_end || last_lsn < must_reach) && writing {
            // Records the caller knew to be durable are gone: refuse, and change nothing, so
            // that a repair still finds every byte as it was.
            return Err(LogError::corrupt(
                &active_path,
                active_end,
                format!(
                    "acknowledged records are lost: records up to {must_reach} were durable, \
                     but the log ends at {last_lsn}, at this byte (a segment was cut short, \
                     emptied or removed)"
                ),
            ));
        }

        // Zero a torn tail before anything new is written after it.
        let file = if writing {
            storage.open(&active_path)
        } else {
            storage.open_read_only(&active_path)
        }
        .map_err(|e| LogError::io("open", &active_path, e))?;
        if writing && let Some(tail) = &report.truncated {
            zero_range(file.as_ref(), &tail.path, tail.offset, tail.len_bytes)?;
        }
        if writing {
            // The records found are durable from now on (a process that was killed after
            // writing them, before its sync, left them in the page cache): sync them before
            // publishing them to readers, and so that every later sync covers only new ones.
            file.sync_data()
                .map_err(|e| LogError::io("fdatasync", &active_path, e))?;
        }
        let capacity_bytes = file
            .len()
            .map_err(|e| LogError::io("stat", &active_path, e))?;
        let map = map_appending(storage.as_ref(), &active_path);
        report.end = Position {
            lsn: last_lsn,
            segment: active_id,
            offset: active_end,
        };
        let log = Log {
            storage,
            dir: dir.to_path_buf(),
            options,
            writer: Mutex::new(Writer {
                active: ActiveSegment {
                    id: active_id,
                    path: active_path.into(),
                    file,
                    map,
                    capacity_bytes,
                    format_version: active_format_version,
                },
                flushed_end: active_end,
                buffer: Vec::new(),
                next_lsn: Lsn(last_lsn.0 + 1),
            }),
            sync: Mutex::new(SyncState::default()),
            synced: AtomicU64::new(last_lsn.0),
            arrival_cv: Condvar::new(),
            read_only: !writing,
            durable_watch: super::DurableWatch::default(),
            published: Mutex::new(super::Published::default()),
            sealed: RwLock::new(sealed),
            indexes: RwLock::new(BTreeMap::new()),
            tail: RwLock::new(None),
            spare: Mutex::new(Spare::Empty),
            spare_cv: Condvar::new(),
            spare_stop: AtomicBool::new(false),
            // A read-only log refuses every write as a poisoned one does, saying why.
            poisoned: AtomicBool::new(!writing),
            poison_cause: Mutex::new((!writing).then(|| "the log was opened read-only".into())),
            appended_lsn: AtomicU64::new(last_lsn.0),
            unsynced_bytes: AtomicU64::new(0),
        };
        if writing {
            log.publish(report.end);
        }
        Ok((log, report))
    }
}

/// A scan of segment `id` from its first record, for a check (nothing is visited).
fn scan_from_first(bytes: &[u8], id: SegmentId) -> scan::ScanOutcome {
    scan::scan_segment(
        bytes,
        id,
        segment_header::LEN as u64,
        Lsn(id.0),
        &mut |_, _| {},
    )
}

/// Checks the records of a segment cut short before the recovery point: they must run, complete,
/// from its first up to the one at `start`.
fn check_records_before(path: &Path, bytes: &[u8], id: SegmentId, start: Lsn) -> Result<()> {
    let outcome = scan_from_first(bytes, id);
    if outcome.committed_lsn >= start {
        return Ok(());
    }
    let why = match outcome.stop {
        Stop::Bad { reason, .. } => format!(": {reason}"),
        Stop::End => String::new(),
    };
    Err(LogError::corrupt(
        path,
        outcome.stop_offset,
        format!(
            "the segment is shorter than it was created, and its records end at {} here, \
             before the recovery point ({start}){why}: acknowledged records are damaged or gone",
            outcome.committed_lsn
        ),
    ))
}

/// Checks a sealed segment whose file is shorter than it was created: its records must run,
/// complete, up to `next` (the next segment's first LSN); otherwise the cut lost records.
fn check_cut_segment(path: &Path, bytes: &[u8], id: SegmentId, next: Lsn) -> Result<()> {
    let outcome = scan_from_first(bytes, id);
    if outcome.committed_lsn.0 + 1 == next.0 {
        return Ok(());
    }
    Err(LogError::corrupt(
        path,
        bytes.len() as u64,
        format!(
            "the segment was cut short at this byte: its records end at {}, but the next segment \
             starts at {}, so the records between them are gone",
            outcome.committed_lsn, next
        ),
    ))
}
