//! The segmented log: recovery on open, appends with group commit, reads and iteration.
//!
//! Invariants:
//! - LSNs are dense: record `n + 1` directly follows record `n`, within a segment and across
//!   segments (segment `k + 1` is named after the LSN that follows segment `k`'s last record).
//! - A segment is sealed only after all of its bytes are synced; sealed segments are never
//!   written again and are read through read-only maps.
//! - An atomic batch never spans two segments.
//! - `synced_lsn <= flushed records <= appended records`; only the active segment holds unsynced
//!   bytes.
//! - After any failed write or sync the log is poisoned and refuses all further writes.
//!
//! Lock order: `writer` before `sync` before `sealed`. The sync leader never holds `sync` while
//! it takes `writer`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{LogError, Result};
use crate::format::{self, RecordHeader, RecordRef, segment_header};
use crate::scan::{self, Stop};
use crate::storage::{ReadOnlyBytes, Storage, StorageFile};
use crate::types::{
    Location, Lsn, Position, RecordClass, RecordKind, SegmentId, StreamId, Version,
};

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;
/// Default size of the in-memory write buffer before it is written to the file: 256 KiB.
pub const DEFAULT_WRITE_BUFFER_BYTES: usize = 256 << 10;
/// Smallest segment size accepted (header plus a few records); tests use small segments to roll
/// often.
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 4096;

const SEGMENT_SUFFIX: &str = ".log";
const TMP_SUFFIX: &str = ".log.tmp";
const SPARE_NAME: &str = "next-segment.spare";
const ZERO_CHUNK_BYTES: usize = 1 << 20;
/// Longest time a group-commit leader waits for more waiters before it syncs.
pub const GATHER_MAX: Duration = Duration::from_micros(200);
/// Default of [`LogOptions::sync_poll_window_us`].
pub const DEFAULT_SYNC_POLL_WINDOW_US: u64 = 60;

/// What to do with a torn tail found on open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Zero the torn bytes (they were never acknowledged as durable) and continue. Default.
    #[default]
    Truncate,
    /// Refuse to open, with [`LogError::TornTail`] naming the file and offset.
    Refuse,
}

/// Options of the log.
#[derive(Clone, Debug)]
pub struct LogOptions {
    /// Size of each segment file; a segment is preallocated with zeros to this size and rolled
    /// when the next batch does not fit. Default: [`DEFAULT_SEGMENT_SIZE_BYTES`].
    pub segment_size_bytes: u64,
    /// Bytes buffered in memory before they are written to the active segment. Default:
    /// [`DEFAULT_WRITE_BUFFER_BYTES`].
    pub write_buffer_bytes: usize,
    /// What to do with a torn tail. Default: [`RecoveryMode::Truncate`].
    pub recovery_mode: RecoveryMode,
    /// How long before and after a running sync's expected end the threads waiting for it
    /// poll (yielding the CPU) instead of sleeping, so that they need no scheduler wake-up when
    /// it ends. Trades bounded CPU, only while concurrent critical appends wait, for group
    /// commit throughput (measured on 2 vCPUs: 8 threads at ~5.5x one thread instead of
    /// ~4x). 0 disables polling. Default: [`DEFAULT_SYNC_POLL_WINDOW_US`].
    pub sync_poll_window_us: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            write_buffer_bytes: DEFAULT_WRITE_BUFFER_BYTES,
            recovery_mode: RecoveryMode::Truncate,
            sync_poll_window_us: DEFAULT_SYNC_POLL_WINDOW_US,
        }
    }
}

/// A record to append.
#[derive(Clone, Copy, Debug)]
pub struct NewRecord<'a> {
    /// Its stream.
    pub stream: StreamId,
    /// Its version in the stream.
    pub version: Version,
    /// What it is.
    pub kind: RecordKind,
    /// Its payload.
    pub payload: &'a [u8],
}

/// A record read from the log, owning its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRecord {
    /// The fixed fields.
    pub header: RecordHeader,
    /// The payload.
    pub payload: Vec<u8>,
    /// Where it is.
    pub location: Location,
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
    /// shorter than the caller's metadata believed): the caller must drop what it derived from
    /// records past `end`.
    pub start_was_past_end: bool,
}

/// A problem found by [`Log::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// The byte offset.
    pub offset: u64,
    /// The byte range whose records could not be checked (empty for problems that are not
    /// damaged records).
    pub unreadable: std::ops::Range<u64>,
    /// What is wrong.
    pub reason: String,
}

/// Information about one segment, for inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Its id (first LSN).
    pub id: SegmentId,
    /// Its file.
    pub path: PathBuf,
    /// Its file length (the preallocated size).
    pub file_len_bytes: u64,
    /// Whether it is sealed (immutable) or the active one.
    pub sealed: bool,
}

#[derive(Debug)]
struct ActiveSegment {
    id: SegmentId,
    /// Shared, so that a reader takes it with the file without allocating.
    path: Arc<Path>,
    file: Arc<dyn StorageFile>,
    /// The file mapped, where the storage can (see [`Storage::map_appending`]): reads of
    /// written records slice it instead of calling `pread`.
    map: Option<ReadOnlyBytes>,
    capacity_bytes: u64,
}

#[derive(Debug)]
struct Writer {
    active: ActiveSegment,
    /// Bytes of the active segment already written to the file.
    flushed_end: u64,
    /// Encoded records not yet written; they start at `flushed_end`.
    buffer: Vec<u8>,
    next_lsn: Lsn,
}

impl Writer {
    fn buffered_end(&self) -> u64 {
        self.flushed_end + self.buffer.len() as u64
    }
}

#[derive(Debug, Default)]
struct SyncState {
    leader_active: bool,
    /// Threads inside `sync_to` whose LSN no completed sync covers yet, each parked until a
    /// leader covers it or hands it the leadership.
    waiting: Vec<(Lsn, Thread)>,
    /// How many waiters the last sync covered: the group size the next leader gathers for.
    last_group: usize,
    /// How long the last fdatasync took.
    last_sync: Duration,
    /// When the running sync started (`None` while its leader still gathers, or when idle).
    sync_started: Option<Instant>,
}

/// The next segment's file, prepared ahead of the roll that needs it.
#[derive(Debug)]
enum Spare {
    Empty,
    Preparing,
    Ready(PathBuf, Arc<dyn StorageFile>),
}

#[derive(Debug)]
struct Sealed {
    path: PathBuf,
    bytes: ReadOnlyBytes,
}

impl Sealed {
    /// A sealed segment whose bytes the views' point reads share. Its map is advised random
    /// access: with the default advice, a cold fault reads the pages around it too (megabytes
    /// of a segment for a read of a few records). Scans map the segment on their own
    /// ([`LogIter`]).
    fn shared(path: PathBuf, bytes: ReadOnlyBytes) -> Arc<Sealed> {
        bytes.reading_at_random();
        Arc::new(Sealed { path, bytes })
    }

    /// Reads the record at `location`, which lies in this segment; as [`Log::read_with`].
    fn read_with<T>(&self, location: Location, f: impl FnOnce(RecordRef<'_>) -> T) -> Result<T> {
        let start = usize::try_from(location.offset).unwrap_or(usize::MAX);
        let end = usize::try_from(location.end()).unwrap_or(usize::MAX);
        let frame = self.bytes.get(start..end).ok_or_else(|| {
            LogError::corrupt(
                &self.path,
                location.offset,
                format!("{} lies past the end of the file", location.lsn),
            )
        })?;
        decode_at(&self.path, location, frame).map(f)
    }
}

/// The append-only, segmented, CRC-framed log. Thread-safe: share it behind an `Arc`.
#[derive(Debug)]
pub struct Log {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    options: LogOptions,
    writer: Mutex<Writer>,
    sync: Mutex<SyncState>,
    /// The last LSN known durable. Written only under `sync` (or the writer lock, when rolling),
    /// read without locks so that woken waiters need not queue on the mutex.
    synced: AtomicU64,
    /// Wakes a gathering leader when another waiter arrives.
    arrival_cv: Condvar,
    sealed: RwLock<BTreeMap<SegmentId, Arc<Sealed>>>,
    spare: Mutex<Spare>,
    spare_cv: Condvar,
    poisoned: AtomicBool,
    poison_cause: Mutex<Option<String>>,
    appended_lsn: AtomicU64,
    unsynced_bytes: AtomicU64,
}

/// The file name of the segment whose first record is `id`.
#[must_use]
pub fn segment_name(id: SegmentId) -> String {
    format!("{:020}{SEGMENT_SUFFIX}", id.0)
}

fn parse_segment_name(name: &str) -> Option<SegmentId> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(SegmentId)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Panics while these locks are held can only come from bugs in this module (no user code
    // runs under them); the protected state stays consistent, so recover the guard.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Reads a whole file through the storage.
fn read_all(storage: &dyn Storage, path: &Path) -> Result<ReadOnlyBytes> {
    storage
        .map_readonly(path)
        .map_err(|e| LogError::io("read", path, e))
}

/// Lists segment files in order; removes leftovers of interrupted segment creation.
fn list_segments(storage: &dyn Storage, dir: &Path, clean: bool) -> Result<Vec<SegmentId>> {
    let names = storage
        .list_files(dir)
        .map_err(|e| LogError::io("list", dir, e))?;
    let mut ids = Vec::new();
    for name in names {
        if let Some(id) = parse_segment_name(&name) {
            ids.push(id);
        } else if clean && (name.ends_with(TMP_SUFFIX) || name == SPARE_NAME) {
            let path = dir.join(&name);
            storage
                .remove_file(&path)
                .map_err(|e| LogError::io("remove leftover", path, e))?;
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn check_header(path: &Path, bytes: &[u8], id: SegmentId) -> Result<()> {
    let found = format::decode_segment_header(bytes)
        .map_err(|e| LogError::corrupt(path, 0, e.to_string()))?;
    if found != id {
        return Err(LogError::corrupt(
            path,
            segment_header::FIRST_LSN as u64,
            format!(
                "header says the segment starts at lsn {}, its name says {}",
                found.0, id.0
            ),
        ));
    }
    Ok(())
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
        assert!(
            options.segment_size_bytes >= MIN_SEGMENT_SIZE_BYTES,
            "segment size is validated by the caller"
        );
        storage
            .create_dir_all(dir)
            .map_err(|e| LogError::io("create directory", dir, e))?;
        let mut ids = list_segments(storage.as_ref(), dir, true)?;
        if ids.is_empty() {
            if let Some(start) = start {
                return Err(LogError::corrupt(
                    dir.join(segment_name(start.segment)),
                    0,
                    format!(
                        "the metadata's recovery point ({}) names a segment that is missing; the log directory is empty",
                        start.lsn
                    ),
                ));
            }
            create_segment(
                storage.as_ref(),
                dir,
                SegmentId(1),
                options.segment_size_bytes,
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
        if let Some(start) = start {
            recovery_point = start.lsn;
            let index = ids.binary_search(&start.segment).map_err(|_| {
                LogError::corrupt(
                    dir.join(segment_name(start.segment)),
                    start.offset,
                    format!(
                        "the metadata's recovery point ({}) is in this segment, which is missing",
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
                            "the metadata's recovery point says {} is here, but {} is",
                            start.lsn, r.header.lsn
                        ),
                    ));
                }
                Some(Err(e)) => {
                    return Err(LogError::corrupt(
                        &path,
                        start.offset,
                        format!("bad record below the recovery point ({}): {e}", start.lsn),
                    ));
                }
                None => {
                    return Err(LogError::corrupt(
                        &path,
                        start.offset,
                        format!(
                            "the recovery point ({}) lies past the end of the file ({} bytes)",
                            start.lsn,
                            bytes.len()
                        ),
                    ));
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
        for (index, &id) in ids.iter().enumerate() {
            let path = dir.join(segment_name(id));
            let bytes = read_all(storage.as_ref(), &path)?;
            if index < first_index {
                // Before the start: not scanned, only mapped; its header (one page) is checked
                // now, so that a foreign or damaged file is named at open, not on some read.
                check_header(&path, &bytes, id)?;
                sealed.insert(id, Sealed::shared(path, bytes));
                continue;
            }
            let slice: &[u8] = &bytes;
            check_header(&path, slice, id)?;
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
                // recovery point and found nothing) the end is trusted without reading the
                // rest of the segment.
                Stop::End
                    if index == last_index
                        && !(begin.is_some() && index == first_index && outcome.records == 0)
                        && scan::nonzero_end(slice, outcome.stop_offset) > outcome.stop_offset =>
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
                    return Err(LogError::corrupt(
                        &path,
                        bad_offset,
                        format!("in a sealed segment: {reason}"),
                    ));
                }
                if outcome.committed_lsn < recovery_point {
                    return Err(LogError::corrupt(
                        &path,
                        bad_offset,
                        format!("bad record below the recovery point ({recovery_point}): {reason}"),
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
                if options.recovery_mode == RecoveryMode::Refuse {
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

        // Zero a torn tail before anything new is written after it.
        let active_id = ids[last_index];
        let active_path = dir.join(segment_name(active_id));
        let file = storage
            .open(&active_path)
            .map_err(|e| LogError::io("open", &active_path, e))?;
        if let Some(tail) = &report.truncated {
            zero_range(file.as_ref(), &tail.path, tail.offset, tail.len_bytes)?;
            file.sync_data()
                .map_err(|e| LogError::io("fdatasync", &tail.path, e))?;
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
                },
                flushed_end: active_end,
                buffer: Vec::new(),
                next_lsn: Lsn(last_lsn.0 + 1),
            }),
            sync: Mutex::new(SyncState::default()),
            synced: AtomicU64::new(last_lsn.0),
            arrival_cv: Condvar::new(),
            sealed: RwLock::new(sealed),
            spare: Mutex::new(Spare::Empty),
            spare_cv: Condvar::new(),
            poisoned: AtomicBool::new(false),
            poison_cause: Mutex::new(None),
            appended_lsn: AtomicU64::new(last_lsn.0),
            unsynced_bytes: AtomicU64::new(0),
        };
        Ok((log, report))
    }

    /// The directory holding the segments.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the log was opened with.
    #[must_use]
    pub fn options(&self) -> &LogOptions {
        &self.options
    }

    fn poison(&self, cause: String) -> LogError {
        let mut slot = lock(&self.poison_cause);
        if slot.is_none() {
            *slot = Some(cause.clone());
        }
        self.poisoned.store(true, Ordering::Release);
        LogError::Poisoned {
            cause: slot.clone().unwrap_or(cause),
        }
    }

    fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            let cause = lock(&self.poison_cause).clone().unwrap_or_default();
            return Err(LogError::Poisoned { cause });
        }
        Ok(())
    }

    /// Whether an earlier failure poisoned the log.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Appends `records` as one atomic batch with consecutive LSNs and pushes their locations to
    /// `locations`. Returns the last LSN. The records are in memory (or written, not synced)
    /// when this returns: call [`Log::sync_to`] for durability.
    ///
    /// # Errors
    /// [`LogError::Poisoned`] after an earlier failure, size limits, and I/O errors (a failed
    /// write poisons the log; a failure to create the next segment does not, and loses nothing).
    pub fn append(
        &self,
        records: &[NewRecord<'_>],
        class: RecordClass,
        locations: &mut Vec<Location>,
    ) -> Result<Lsn> {
        assert!(!records.is_empty(), "callers never append an empty batch");
        self.check_poison()?;
        let mut batch_len: u64 = 0;
        for record in records {
            if record.payload.len() > format::PAYLOAD_LEN_MAX {
                return Err(LogError::PayloadTooLarge {
                    len_bytes: record.payload.len(),
                    max_bytes: format::PAYLOAD_LEN_MAX,
                });
            }
            batch_len += format::frame_len(record.payload.len()) as u64;
        }
        let room = self.options.segment_size_bytes - segment_header::LEN as u64;
        if batch_len > room {
            return Err(LogError::BatchTooLarge {
                len_bytes: batch_len,
                segment_size_bytes: self.options.segment_size_bytes,
            });
        }
        let mut w = lock(&self.writer);
        self.check_poison()?;
        if w.buffered_end() + batch_len > w.active.capacity_bytes {
            self.roll(&mut w)?;
        }
        let timestamp_us = now_us();
        let count = records.len();
        for (i, record) in records.iter().enumerate() {
            let offset = w.buffered_end();
            let lsn = w.next_lsn;
            let header = RecordHeader {
                lsn,
                stream: record.stream,
                version: record.version,
                timestamp_us,
                batch_left: u32::try_from(count - 1 - i).unwrap_or(u32::MAX),
                kind: record.kind,
                class,
            };
            format::encode_record(&mut w.buffer, &header, record.payload);
            let frame_len_bytes = u32::try_from(w.buffered_end() - offset).unwrap_or(u32::MAX);
            locations.push(Location {
                lsn,
                segment: w.active.id,
                offset,
                frame_len_bytes,
            });
            w.next_lsn = Lsn(lsn.0 + 1);
        }
        let last = Lsn(w.next_lsn.0 - 1);
        self.appended_lsn.store(last.0, Ordering::Release);
        self.unsynced_bytes.fetch_add(batch_len, Ordering::Relaxed);
        if w.buffer.len() >= self.options.write_buffer_bytes {
            self.write_out(&mut w)?;
        }
        Ok(last)
    }

    /// The last appended LSN (durable or not).
    #[must_use]
    pub fn appended_lsn(&self) -> Lsn {
        Lsn(self.appended_lsn.load(Ordering::Acquire))
    }

    /// The last LSN known durable.
    #[must_use]
    pub fn synced_lsn(&self) -> Lsn {
        Lsn(self.synced.load(Ordering::Acquire))
    }

    /// Bytes appended since the last sync started (approximate; for write-behind windows).
    #[must_use]
    pub fn unsynced_bytes(&self) -> u64 {
        self.unsynced_bytes.load(Ordering::Relaxed)
    }

    /// Writes the in-memory buffer to the active segment (no sync).
    fn write_out(&self, w: &mut Writer) -> Result<()> {
        if w.buffer.is_empty() {
            return Ok(());
        }
        if let Err(e) = w.active.file.write_all_at(&w.buffer, w.flushed_end) {
            let error = LogError::io("write", &*w.active.path, e);
            return Err(self.poison(error.to_string()));
        }
        w.flushed_end += w.buffer.len() as u64;
        w.buffer.clear();
        Ok(())
    }

    /// Writes buffered records to the file without syncing, so that other readers of the
    /// storage see them.
    ///
    /// # Errors
    /// A failed write, which poisons the log.
    pub fn flush_buffer(&self) -> Result<()> {
        self.check_poison()?;
        let mut w = lock(&self.writer);
        self.write_out(&mut w)
    }

    /// Returns once every record up to `lsn` is durable. Concurrent callers share syncs: one of
    /// them (the leader) writes out and syncs everything appended so far while the others wait,
    /// so N threads waiting at once cost about one fdatasync.
    ///
    /// Before syncing, a leader gathers: it waits until as many threads wait as the previous
    /// sync covered, for at most the previous sync's duration (and never more than
    /// [`GATHER_MAX`]). Without this, threads woken by a sync reach their next append only
    /// after the fastest one has already started the next sync alone, and the group splits in
    /// two halves that alternate. A lone thread never waits (its previous group was itself).
    ///
    /// # Errors
    /// [`LogError::Poisoned`] if this or an earlier sync failed.
    pub fn sync_to(&self, lsn: Lsn) -> Result<()> {
        if self.synced_lsn() >= lsn {
            return Ok(());
        }
        let mut st = lock(&self.sync);
        st.waiting.push((lsn, std::thread::current()));
        // Wake a gathering leader only when its group is complete: one wake-up per group.
        if st.leader_active && st.waiting.len() >= st.last_group {
            self.arrival_cv.notify_one();
        }
        loop {
            // Durable before any failure is durable: check coverage before poisoning.
            if self.synced_lsn() >= lsn {
                return Ok(());
            }
            if let Err(e) = self.check_poison() {
                let me = std::thread::current().id();
                st.waiting.retain(|(l, t)| !(*l == lsn && t.id() == me));
                return Err(e);
            }
            if st.leader_active {
                // While the leader still gathers, its sync starts about now: the group is
                // complete or nearly so when waiters arrive.
                let started = st.sync_started.unwrap_or_else(Instant::now);
                let expected_end = started + st.last_sync;
                drop(st);
                self.wait_near(expected_end, lsn);
                // Parked until a leader covers this LSN or hands over the leadership; a spurious
                // wake-up just checks again.
                if self.synced_lsn() < lsn {
                    std::thread::park();
                }
                if self.synced_lsn() >= lsn {
                    return Ok(());
                }
                st = lock(&self.sync);
                continue;
            }
            st.leader_active = true;
            let deadline = Instant::now() + st.last_sync.min(GATHER_MAX);
            while st.waiting.len() < st.last_group {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                st = self
                    .arrival_cv
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            let started = Instant::now();
            st.sync_started = Some(started);
            drop(st);
            let result = self.sync_now();
            let took = started.elapsed();
            st = lock(&self.sync);
            st.leader_active = false;
            st.sync_started = None;
            let wake: Vec<Thread> = match result {
                Ok(target) => {
                    let covered = self.mark_synced(&mut st, target);
                    st.last_group = covered.len();
                    st.last_sync = took;
                    // One uncovered waiter becomes the next leader, unless a newcomer is first.
                    let next = st.waiting.first().map(|(_, t)| t.clone());
                    covered.into_iter().chain(next).collect()
                }
                // Everybody must see the poisoning.
                Err(_) => st.waiting.drain(..).map(|(_, t)| t).collect(),
            };
            drop(st);
            for thread in wake {
                thread.unpark();
            }
            result?;
            st = lock(&self.sync);
        }
    }

    /// Waits for the running sync (expected to end at `end`) to cover `lsn`: sleeps until
    /// shortly before `end`, then polls, yielding the CPU, until shortly after it.
    ///
    /// Why poll: a thread parked in the kernel is woken through the scheduler, and on a small
    /// VM waking an idle vCPU costs tens of microseconds per thread; with a group of eight, the
    /// wake-ups alone took about as long as the fdatasync. A waiter that is already running
    /// when the durable LSN moves goes straight back to its next append. The polling window is
    /// bounded ([`LogOptions::sync_poll_window_us`] each side of the expected end), so a
    /// waiter burns at most twice that in CPU, and only while concurrent critical appends wait
    /// on a sync.
    fn wait_near(&self, end: Instant, lsn: Lsn) {
        let window = Duration::from_micros(self.options.sync_poll_window_us);
        if window.is_zero() {
            return;
        }
        let now = Instant::now();
        if let Some(wake_at) = end.checked_sub(window)
            && now < wake_at
        {
            std::thread::park_timeout(wake_at - now);
        }
        let stop = end + window;
        while self.synced_lsn() < lsn && !self.is_poisoned() && Instant::now() < stop {
            std::thread::yield_now();
        }
    }

    /// Records that everything up to `target` is durable and removes the waiters that covers,
    /// returning their threads (to be unparked once the lock is released).
    fn mark_synced(&self, st: &mut SyncState, target: Lsn) -> Vec<Thread> {
        self.synced.fetch_max(target.0, Ordering::AcqRel);
        let mut covered = Vec::new();
        st.waiting.retain(|(lsn, thread)| {
            let done = *lsn <= target;
            if done {
                covered.push(thread.clone());
            }
            !done
        });
        covered
    }

    /// Syncs everything appended so far; returns the durable LSN.
    ///
    /// # Errors
    /// As [`Log::sync_to`].
    pub fn sync_all(&self) -> Result<Lsn> {
        let target = self.appended_lsn();
        self.sync_to(target)?;
        Ok(target)
    }

    /// One leader's sync: write out under the writer lock, fdatasync outside it.
    fn sync_now(&self) -> Result<Lsn> {
        let (file, path, target) = {
            let mut w = lock(&self.writer);
            self.check_poison()?;
            self.write_out(&mut w)?;
            self.unsynced_bytes.store(0, Ordering::Relaxed);
            (
                w.active.file.clone(),
                w.active.path.clone(),
                Lsn(w.next_lsn.0 - 1),
            )
        };
        if let Err(e) = file.sync_data() {
            let error = LogError::io("fdatasync", &*path, e);
            return Err(self.poison(error.to_string()));
        }
        Ok(target)
    }

    /// Seals the active segment and starts the next one. Holds the writer lock.
    fn roll(&self, w: &mut Writer) -> Result<()> {
        self.write_out(w)?;
        if let Err(e) = w.active.file.sync_data() {
            let error = LogError::io("fdatasync", &*w.active.path, e);
            return Err(self.poison(error.to_string()));
        }
        let last = Lsn(w.next_lsn.0 - 1);
        let covered = {
            let mut st = lock(&self.sync);
            self.mark_synced(&mut st, last)
        };
        for thread in covered {
            thread.unpark();
        }
        let next = SegmentId(w.next_lsn.0);
        // Creating the next segment may fail (a full disk); the log stays usable and nothing
        // acknowledged is lost, so this does not poison.
        let spare = self.take_spare();
        let (path, file) = create_segment(
            self.storage.as_ref(),
            &self.dir,
            next,
            self.options.segment_size_bytes,
            spare,
        )?;
        let old_path = w.active.path.clone();
        // The active segment's map, already advised random access, serves on as the sealed
        // one's; a storage that does not map the active segment maps the sealed one now.
        let bytes = match &w.active.map {
            Some(map) => map.clone(),
            None => self
                .storage
                .map_readonly(&old_path)
                .map_err(|e| LogError::io("map", &*old_path, e))?,
        };
        let capacity_bytes = file.len().map_err(|e| LogError::io("stat", &path, e))?;
        let map = map_appending(self.storage.as_ref(), &path);
        let old = std::mem::replace(
            &mut w.active,
            ActiveSegment {
                id: next,
                path: path.into(),
                file,
                map,
                capacity_bytes,
            },
        );
        self.sealed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(old.id, Sealed::shared(old.path.to_path_buf(), bytes));
        w.flushed_end = segment_header::LEN as u64;
        Ok(())
    }

    /// Whether a spare segment should be prepared now: none is ready or being prepared, and
    /// either the log has rolled before (it is big enough to roll again) or the active segment
    /// is a quarter full. A small store never pays for a spare; a busy one starts the next
    /// spare right after each roll, a whole segment ahead.
    #[must_use]
    pub fn wants_spare(&self) -> bool {
        if !matches!(*lock(&self.spare), Spare::Empty) {
            return false;
        }
        let has_rolled = !self
            .sealed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty();
        let w = lock(&self.writer);
        has_rolled || w.buffered_end() >= w.active.capacity_bytes / 4
    }

    /// Prepares a zero-filled, synced spare file for the next segment, so that rolling costs a
    /// header write and a rename instead of writing a whole segment of zeros under the writer
    /// lock. Meant for a background thread: it takes no lock while it writes. A roll that
    /// finds the spare still being prepared waits for it rather than writing another one.
    /// No-op unless [`Log::wants_spare`].
    ///
    /// # Errors
    /// I/O errors creating the spare (the log stays usable; the next roll writes its segment
    /// itself).
    pub fn prepare_spare_segment(&self) -> Result<()> {
        if !self.wants_spare() {
            return Ok(());
        }
        {
            let mut spare = lock(&self.spare);
            if !matches!(*spare, Spare::Empty) {
                return Ok(());
            }
            *spare = Spare::Preparing;
        }
        let path = self.dir.join(SPARE_NAME);
        let size = self.options.segment_size_bytes;
        let result = (|| {
            let file = self
                .storage
                .create(&path)
                .map_err(|e| LogError::io("create", &path, e))?;
            fill_zeros(file.as_ref(), &path, 0, size)?;
            file.sync_data()
                .map_err(|e| LogError::io("fdatasync", &path, e))?;
            Ok(file)
        })();
        let mut spare = lock(&self.spare);
        let outcome = match result {
            Ok(file) => {
                *spare = Spare::Ready(path, file);
                Ok(())
            }
            Err(e) => {
                *spare = Spare::Empty;
                Err(e)
            }
        };
        self.spare_cv.notify_all();
        outcome
    }

    /// Takes the spare for a roll, waiting for one being prepared.
    fn take_spare(&self) -> Option<(PathBuf, Arc<dyn StorageFile>)> {
        let mut spare = lock(&self.spare);
        while matches!(*spare, Spare::Preparing) {
            spare = self
                .spare_cv
                .wait(spare)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        match std::mem::replace(&mut *spare, Spare::Empty) {
            Spare::Ready(path, file) => Some((path, file)),
            Spare::Empty | Spare::Preparing => None,
        }
    }

    /// Reads the record at `location`, checking its checksum and LSN, and passes it to `f`.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] if the bytes there are not that record, I/O errors.
    pub fn read_with<T>(
        &self,
        location: Location,
        f: impl FnOnce(RecordRef<'_>) -> T,
    ) -> Result<T> {
        if let Some(sealed) = self.sealed_bytes(location.segment) {
            return sealed.read_with(location, f);
        }
        let Some(active) = self.active_for_read(location)? else {
            // Sealed since we looked, or never existed.
            return match self.sealed_bytes(location.segment) {
                Some(_) => self.read_with(location, f),
                None => Err(LogError::Missing { lsn: location.lsn }),
            };
        };
        if let Some(frame) = active.mapped(location.offset, location.end()) {
            return decode_at(&active.path, location, frame).map(f);
        }
        with_read_buffer(|buf| {
            buf.resize(location.frame_len_bytes as usize, 0);
            active
                .file
                .read_exact_at(buf, location.offset)
                .map_err(|e| LogError::io("read", &*active.path, e))?;
            decode_at(&active.path, location, buf).map(f)
        })
    }

    /// The active segment's file and path if `upto` lies in the active segment, after writing
    /// out the buffered bytes up to its end if they are not in the file yet. `None` when its
    /// segment is not the active one.
    ///
    /// # Errors
    /// [`LogError::Missing`] when `upto` lies past what was appended, and write errors.
    fn active_for_read(&self, upto: Location) -> Result<Option<ActiveFile>> {
        let mut w = lock(&self.writer);
        if w.active.id != upto.segment {
            return Ok(None);
        }
        if upto.end() > w.flushed_end {
            if upto.end() > w.buffered_end() {
                return Err(LogError::Missing { lsn: upto.lsn });
            }
            self.write_out(&mut w)?;
        }
        Ok(Some(ActiveFile {
            file: w.active.file.clone(),
            path: w.active.path.clone(),
            map: w.active.map.clone(),
        }))
    }

    /// Reads the records at `locations`, in order, passing each to `f`. Records of the active
    /// segment that lie close together are read with one `pread` (a view reads up to
    /// `fanout - 1` events of a stream, usually a few hundred bytes apart); records of sealed
    /// segments are read from their maps.
    ///
    /// # Errors
    /// As [`Log::read_with`], for the first record that fails.
    pub fn read_many_with<T>(
        &self,
        locations: &[Location],
        mut f: impl FnMut(RecordRef<'_>) -> T,
    ) -> Result<Vec<T>> {
        with_read_buffer(|buf| self.read_many_into(locations, buf, &mut f))
    }

    fn read_many_into<T>(
        &self,
        locations: &[Location],
        buf: &mut Vec<u8>,
        mut f: impl FnMut(RecordRef<'_>) -> T,
    ) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(locations.len());
        let mut rest = locations;
        while let Some(&first) = rest.first() {
            // The frames after `first` in the same segment, in increasing order, that one read
            // of at most READ_SPAN_MAX bytes covers.
            let run = 1 + rest
                .windows(2)
                .take_while(|pair| {
                    pair[1].segment == first.segment
                        && pair[1].offset >= pair[0].end()
                        && pair[1].end() - first.offset <= READ_SPAN_MAX
                })
                .count();
            let (batch, after) = rest.split_at(run);
            rest = after;
            let last = batch[run - 1];
            let sealed = self.sealed_bytes(first.segment);
            let active = if sealed.is_none() {
                self.active_for_read(last)?
            } else {
                None
            };
            let Some(active) = active else {
                if let Some(sealed) = sealed {
                    prefetch_dense(&sealed.bytes, batch);
                    for &location in batch {
                        out.push(sealed.read_with(location, &mut f)?);
                    }
                } else {
                    // Sealed since we looked, or never existed: `read_with` finds out.
                    for &location in batch {
                        out.push(self.read_with(location, &mut f)?);
                    }
                }
                continue;
            };
            if let Some(map) = &active.map {
                prefetch_dense(map, batch);
            }
            let span = match active.mapped(first.offset, last.end()) {
                Some(span) => span,
                None => {
                    buf.resize(
                        usize::try_from(last.end() - first.offset).unwrap_or(usize::MAX),
                        0,
                    );
                    active
                        .file
                        .read_exact_at(buf, first.offset)
                        .map_err(|e| LogError::io("read", &*active.path, e))?;
                    &buf[..]
                }
            };
            for &location in batch {
                let at = usize::try_from(location.offset - first.offset).unwrap_or(usize::MAX);
                let frame = &span[at..at + location.frame_len_bytes as usize];
                out.push(f(decode_at(&active.path, location, frame)?));
            }
        }
        Ok(out)
    }

    /// Reads the record at `location` into an owned record.
    ///
    /// # Errors
    /// As [`Log::read_with`].
    pub fn read(&self, location: Location) -> Result<OwnedRecord> {
        self.read_with(location, |r| OwnedRecord {
            header: r.header,
            payload: r.payload.to_vec(),
            location,
        })
    }

    fn sealed_bytes(&self, id: SegmentId) -> Option<Arc<Sealed>> {
        let sealed = self
            .sealed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sealed.get(&id).cloned()
    }

    /// Asks the system to drop the cached pages of every segment (the maps of the sealed ones
    /// and the active one's file), so that the next reads come from the disk. For cold-read
    /// benchmarks; every read stays correct.
    ///
    /// # Errors
    /// I/O errors from the advice calls.
    #[cfg(any(test, feature = "bench-hooks"))]
    pub fn evict_cached_pages(&self) -> Result<()> {
        let sealed: Vec<Arc<Sealed>> = self
            .sealed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for segment in sealed {
            segment
                .bytes
                .evict_pages()
                .map_err(|e| LogError::io("evict pages of", &segment.path, e))?;
        }
        let (file, path, map) = {
            let w = lock(&self.writer);
            (
                w.active.file.clone(),
                w.active.path.clone(),
                w.active.map.clone(),
            )
        };
        match map {
            // The map's own pages first: the kernel keeps mapped pages in the cache.
            Some(map) => map.evict_pages(),
            None => file.evict_pages(),
        }
        .map_err(|e| LogError::io("evict pages of", &*path, e))
    }

    /// The segments, oldest first.
    ///
    /// # Errors
    /// I/O errors reading the active segment's length.
    pub fn segments(&self) -> Result<Vec<SegmentInfo>> {
        let mut out: Vec<SegmentInfo> = {
            let sealed = self
                .sealed
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            sealed
                .iter()
                .map(|(id, s)| SegmentInfo {
                    id: *id,
                    path: s.path.clone(),
                    file_len_bytes: s.bytes.len() as u64,
                    sealed: true,
                })
                .collect()
        };
        let w = lock(&self.writer);
        out.push(SegmentInfo {
            id: w.active.id,
            path: w.active.path.to_path_buf(),
            file_len_bytes: w.active.capacity_bytes,
            sealed: false,
        });
        Ok(out)
    }

    /// The position just past the last appended record.
    #[must_use]
    pub fn end(&self) -> Position {
        let w = lock(&self.writer);
        Position {
            lsn: Lsn(w.next_lsn.0 - 1),
            segment: w.active.id,
            offset: w.buffered_end(),
        }
    }

    /// Iterates records with LSN `>= from`, up to the end of the log as it is now.
    ///
    /// # Errors
    /// A failed write-out of buffered records.
    pub fn iter_from(&self, from: Lsn) -> Result<LogIter<'_>> {
        self.flush_buffer().or_else(|e| match e {
            // A poisoned log still serves reads of what it has.
            LogError::Poisoned { .. } => Ok(()),
            other => Err(other),
        })?;
        let (active, end) = {
            let w = lock(&self.writer);
            (w.active.id, (w.flushed_end, Lsn(w.next_lsn.0 - 1)))
        };
        let mut ids: Vec<SegmentId> = self
            .sealed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        ids.push(active);
        let first = ids.partition_point(|id| id.0 <= from.0).saturating_sub(1);
        Ok(LogIter {
            log: self,
            segments: ids[first..].to_vec(),
            from,
            end_lsn: end.1,
            active,
            active_end: end.0,
            current: None,
            failed: false,
        })
    }

    /// Checks every segment of the log in `dir` without changing anything: headers, every
    /// record's checksum, LSN continuity, batch framing. Calls `visit` for every valid record
    /// and returns every problem found (empty when the log is sound). A torn tail of the last
    /// segment is reported too, as what the next open would remove.
    ///
    /// # Errors
    /// I/O errors listing or reading the directory.
    pub fn verify(
        storage: &dyn Storage,
        dir: &Path,
        visit: &mut dyn FnMut(RecordRef<'_>, Location),
    ) -> Result<Vec<Problem>> {
        let ids = list_segments(storage, dir, false)?;
        let mut problems = Vec::new();
        let mut expected: Option<Lsn> = None;
        for (index, &id) in ids.iter().enumerate() {
            let path = dir.join(segment_name(id));
            let bytes = read_all(storage, &path)?;
            let slice: &[u8] = &bytes;
            if let Err(LogError::Corrupt { offset, reason, .. }) = check_header(&path, slice, id) {
                problems.push(Problem {
                    path,
                    offset,
                    unreadable: 0..0,
                    reason,
                });
                expected = None;
                continue;
            }
            if let Some(expected) = expected
                && expected != Lsn(id.0)
            {
                problems.push(Problem {
                    path: path.clone(),
                    offset: 0,
                    unreadable: 0..0,
                    reason: format!(
                        "segment starts at lsn {} but the previous one ends before {}",
                        id.0, expected
                    ),
                });
            }
            let last = index + 1 == ids.len();
            let mut offset = segment_header::LEN as u64;
            let mut next_lsn = Lsn(id.0);
            let committed = loop {
                let outcome = scan::scan_segment(slice, id, offset, next_lsn, visit);
                let (bad_offset, reason) = match outcome.stop {
                    Stop::Bad { offset, reason } => (offset, reason),
                    Stop::End if outcome.pending_records > 0 => (
                        outcome.stop_offset,
                        format!(
                            "a batch of {} records is incomplete",
                            outcome.pending_records
                        ),
                    ),
                    Stop::End
                        if last
                            && scan::nonzero_end(slice, outcome.stop_offset)
                                > outcome.stop_offset =>
                    {
                        (
                            outcome.stop_offset,
                            "non-zero bytes after the end of the written records".to_owned(),
                        )
                    }
                    Stop::End => break outcome.committed_lsn,
                };
                // Resynchronise on the next checksum-valid record, so that one damaged record
                // is reported once and the records after it are still checked.
                let resume =
                    scan::find_valid_record_after(slice, bad_offset, outcome.committed_lsn);
                let Some(resume) = resume else {
                    let end = scan::nonzero_end(slice, bad_offset).max(outcome.stop_offset);
                    let reason = if last {
                        format!(
                            "torn tail from byte {} (the next open removes it): {reason}",
                            outcome.committed_end
                        )
                    } else {
                        format!("{reason}; nothing valid follows in this sealed segment")
                    };
                    problems.push(Problem {
                        path: path.clone(),
                        offset: bad_offset,
                        unreadable: outcome.committed_end..end,
                        reason,
                    });
                    break outcome.committed_lsn;
                };
                problems.push(Problem {
                    path: path.clone(),
                    offset: bad_offset,
                    unreadable: outcome.committed_end..resume,
                    reason: format!("{reason}; valid records resume at byte {resume}"),
                });
                let at = usize::try_from(resume).unwrap_or(usize::MAX);
                match slice.get(at..).map(format::decode_frame) {
                    Some(Ok(format::Frame::Record(r, _))) => next_lsn = r.header.lsn,
                    _ => break outcome.committed_lsn,
                }
                offset = resume;
            };
            expected = Some(Lsn(committed.0 + 1));
        }
        Ok(problems)
    }
}

/// The most bytes [`Log::read_many_with`] reads with one `pread` to get several records.
const READ_SPAN_MAX: u64 = 64 * 1024;

/// Asks for the pages of `batch` (frames in increasing order in one segment) in one request
/// when the batch is dense: it spans more than two pages and holds at least one frame per page,
/// so that reading them ahead brings in no page the batch does not need. The maps are advised
/// random access, so without this a range read (`Engine::read` of many events) faults its pages
/// in one at a time; a view's few events usually lie within a page or two and skip the call.
fn prefetch_dense(bytes: &ReadOnlyBytes, batch: &[Location]) {
    const PAGE: u64 = 4096;
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return;
    };
    let pages = last.end().div_ceil(PAGE) - first.offset / PAGE;
    if pages > 2 && batch.len() as u64 >= pages {
        let (Ok(start), Ok(end)) = (usize::try_from(first.offset), usize::try_from(last.end()))
        else {
            return;
        };
        bytes.will_need(start, end);
    }
}

/// The active segment, as a reader takes it (reference counts, no copies).
struct ActiveFile {
    file: Arc<dyn StorageFile>,
    path: Arc<Path>,
    map: Option<ReadOnlyBytes>,
}

impl ActiveFile {
    /// The bytes `start..end` of the file from its map, if it has one (and they lie inside
    /// it). The caller asks only for bytes that were written before it took this.
    fn mapped(&self, start: u64, end: u64) -> Option<&[u8]> {
        let map = self.map.as_ref()?;
        map.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
    }
}

/// Maps the active segment at `path` if the storage can. A failure (an exhausted map count,
/// say) only costs speed, so it is not an error: reads fall back to `pread`.
fn map_appending(storage: &dyn Storage, path: &Path) -> Option<ReadOnlyBytes> {
    storage.map_appending(path).ok().flatten()
}

thread_local! {
    /// The buffer reads of the active segment go into, kept between calls on a thread.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with the thread's read buffer, so that reading a few events allocates nothing.
/// A callback that reads the log again gets a fresh buffer (this one is taken meanwhile); a
/// buffer grown past [`READ_SPAN_MAX`] (one large record) is dropped, not kept.
fn with_read_buffer<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    let mut buf = READ_BUFFER
        .with(|cell| cell.try_borrow_mut().map(|mut b| std::mem::take(&mut *b)))
        .unwrap_or_default();
    let out = f(&mut buf);
    if buf.capacity() as u64 <= READ_SPAN_MAX {
        READ_BUFFER.with(|cell| {
            if let Ok(mut b) = cell.try_borrow_mut() {
                *b = buf;
            }
        });
    }
    out
}

fn decode_at<'a>(path: &Path, location: Location, frame: &'a [u8]) -> Result<RecordRef<'a>> {
    match format::decode_frame(frame) {
        Ok(format::Frame::Record(r, len)) if r.header.lsn == location.lsn && len == frame.len() => {
            Ok(r)
        }
        Ok(format::Frame::Record(r, _)) => Err(LogError::corrupt(
            path,
            location.offset,
            format!("expected {} here but found {}", location.lsn, r.header.lsn),
        )),
        Ok(format::Frame::End) => Err(LogError::corrupt(
            path,
            location.offset,
            format!("expected {} here but found zeros", location.lsn),
        )),
        Err(e) => Err(LogError::corrupt(
            path,
            location.offset,
            format!("{}: {e}", location.lsn),
        )),
    }
}

fn fill_zeros(file: &dyn StorageFile, path: &Path, from: u64, to: u64) -> Result<()> {
    static ZEROS: [u8; ZERO_CHUNK_BYTES] = [0u8; ZERO_CHUNK_BYTES];
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at)
            .unwrap_or(usize::MAX)
            .min(ZERO_CHUNK_BYTES);
        file.write_all_at(&ZEROS[..n], at)
            .map_err(|e| LogError::io("preallocate", path, e))?;
        at += n as u64;
    }
    Ok(())
}

fn zero_range(file: &dyn StorageFile, path: &Path, offset: u64, len: u64) -> Result<()> {
    fill_zeros(file, path, offset, offset + len).map_err(|e| match e {
        LogError::Io { path, source, .. } => LogError::Io {
            op: "zero torn tail",
            path,
            source,
        },
        other => other,
    })
}

/// Creates segment `id`: from `spare` if given (already zero-filled and synced), else a new
/// zero-filled file; the header is written and synced, then the file is renamed into place and
/// the directory synced. On failure nothing is left behind under the segment's name.
fn create_segment(
    storage: &dyn Storage,
    dir: &Path,
    id: SegmentId,
    size: u64,
    spare: Option<(PathBuf, Arc<dyn StorageFile>)>,
) -> Result<(PathBuf, Arc<dyn StorageFile>)> {
    let path = dir.join(segment_name(id));
    let (tmp, file) = match spare {
        Some(spare) => spare,
        None => {
            let tmp = dir.join(format!("{:020}{TMP_SUFFIX}", id.0));
            let file = storage
                .create(&tmp)
                .map_err(|e| LogError::io("create", &tmp, e))?;
            (tmp, file)
        }
    };
    let result = (|| {
        let len = file.len().map_err(|e| LogError::io("stat", &tmp, e))?;
        if len < size {
            fill_zeros(file.as_ref(), &tmp, len, size)?;
        }
        file.write_all_at(&format::encode_segment_header(Lsn(id.0)), 0)
            .map_err(|e| LogError::io("write header", &tmp, e))?;
        file.sync_data()
            .map_err(|e| LogError::io("fdatasync", &tmp, e))?;
        storage
            .rename(&tmp, &path)
            .map_err(|e| LogError::io("rename", &tmp, e))?;
        storage
            .sync_dir(dir)
            .map_err(|e| LogError::io("fsync directory", dir, e))
    })();
    if let Err(e) = result {
        // Best effort: the temporary name is ignored and removed on the next open anyway.
        let _ = storage.remove_file(&tmp);
        return Err(e);
    }
    Ok((path, file))
}

/// Iterator over log records by LSN, from [`Log::iter_from`].
#[derive(Debug)]
pub struct LogIter<'a> {
    log: &'a Log,
    segments: Vec<SegmentId>,
    from: Lsn,
    end_lsn: Lsn,
    active: SegmentId,
    /// The end of the active segment's written bytes when the iterator started, read under
    /// the writer lock: the active segment is read only below it.
    active_end: u64,
    current: Option<Loaded>,
    failed: bool,
}

/// The segment a [`LogIter`] is reading.
#[derive(Debug)]
struct Loaded {
    path: PathBuf,
    bytes: ReadOnlyBytes,
    /// Bytes past this are not read: the end captured for the active segment, the length of
    /// the bytes otherwise.
    end: usize,
    /// The next frame's offset.
    offset: u64,
    id: SegmentId,
}

impl LogIter<'_> {
    fn load(&mut self, id: SegmentId) -> Result<()> {
        let (path, bytes, end) = self.segment_bytes(id)?;
        self.current = Some(Loaded {
            path,
            bytes,
            end,
            offset: segment_header::LEN as u64,
            id,
        });
        Ok(())
    }

    /// Segment `id`'s path, bytes, and where reading them stops.
    fn segment_bytes(&self, id: SegmentId) -> Result<(PathBuf, ReadOnlyBytes, usize)> {
        if let Some(sealed) = self.log.sealed_bytes(id) {
            // A map of its own, read in order: the shared one is advised random access, which
            // would read a cold scan one page per fault.
            let path = sealed.path.clone();
            let bytes = self
                .log
                .storage
                .map_readonly(&path)
                .map_err(|e| LogError::io("map", &path, e))?;
            bytes.reading_in_order();
            let end = bytes.len();
            return Ok((path, bytes, end));
        }
        let path = self.log.dir.join(segment_name(id));
        if id == self.active
            && let Some(map) = map_appending(&*self.log.storage, &path)
        {
            // A map of its own, read in order, below the end captured under the writer lock
            // (the safety argument of `map_appending`): no copy of the segment, and readahead
            // that the views' shared map of the active segment, advised random access, does
            // not get.
            map.reading_in_order();
            let end = usize::try_from(self.active_end)
                .unwrap_or(usize::MAX)
                .min(map.len());
            return Ok((path, map, end));
        }
        // The active segment of a storage that does not map it (or one sealed after the
        // iterator started): read through the storage, up to the end captured at the start.
        let end = if id == self.active {
            self.active_end
        } else {
            u64::MAX
        };
        let file = self
            .log
            .storage
            .open(&path)
            .map_err(|e| LogError::io("open", &path, e))?;
        let len = file
            .len()
            .map_err(|e| LogError::io("stat", &path, e))?
            .min(end);
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        file.read_exact_at(&mut buf, 0)
            .map_err(|e| LogError::io("read", &path, e))?;
        let end = buf.len();
        Ok((path, ReadOnlyBytes::new(buf), end))
    }
}

impl Iterator for LogIter<'_> {
    type Item = Result<OwnedRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            if self.current.is_none() {
                if self.segments.is_empty() {
                    return None;
                }
                let id = self.segments.remove(0);
                if let Err(e) = self.load(id) {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
            let Loaded {
                path,
                bytes,
                end,
                offset,
                id,
            } = self.current.as_mut()?;
            let slice: &[u8] = &bytes[..*end];
            let at = usize::try_from(*offset).unwrap_or(usize::MAX);
            match slice.get(at..).map(format::decode_frame) {
                None | Some(Ok(format::Frame::End)) => {
                    self.current = None;
                    continue;
                }
                Some(Err(e)) => {
                    // Bytes short of a frame at the captured end of the active segment are
                    // the end; anything else is damage.
                    if *id == self.active && matches!(e, format::FrameError::Truncated { .. }) {
                        self.current = None;
                        continue;
                    }
                    self.failed = true;
                    return Some(Err(LogError::corrupt(path.clone(), *offset, e.to_string())));
                }
                Some(Ok(format::Frame::Record(r, len))) => {
                    let location = Location {
                        lsn: r.header.lsn,
                        segment: *id,
                        offset: *offset,
                        frame_len_bytes: u32::try_from(len).unwrap_or(u32::MAX),
                    };
                    *offset += len as u64;
                    if r.header.lsn > self.end_lsn {
                        self.current = None;
                        self.segments.clear();
                        return None;
                    }
                    if r.header.lsn < self.from {
                        continue;
                    }
                    return Some(Ok(OwnedRecord {
                        header: r.header,
                        payload: r.payload.to_vec(),
                        location,
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SimStorage;
    use std::collections::BTreeSet;

    const SEGMENT: u64 = 8192;

    fn options() -> LogOptions {
        LogOptions {
            segment_size_bytes: SEGMENT,
            ..LogOptions::default()
        }
    }

    fn record(lsn: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let header = RecordHeader {
            lsn: Lsn(lsn),
            stream: StreamId(1),
            version: Version(lsn),
            timestamp_us: 0,
            batch_left: 0,
            kind: RecordKind::Event,
            class: RecordClass::Normal,
        };
        format::encode_record(&mut out, &header, payload);
        out
    }

    /// Writes a single segment holding `image` after its header.
    fn store(image: &[u8]) -> (Arc<dyn Storage>, PathBuf) {
        let sim = SimStorage::new();
        let dir = PathBuf::from("/store/log");
        sim.create_dir_all(&dir).expect("mkdir");
        let file = sim
            .create(&dir.join(segment_name(SegmentId(1))))
            .expect("create");
        let mut bytes = format::encode_segment_header(Lsn(1)).to_vec();
        bytes.extend_from_slice(image);
        bytes.resize(usize::try_from(SEGMENT).expect("small"), 0);
        file.write_all_at(&bytes, 0).expect("write");
        file.sync_data().expect("sync");
        (Arc::new(sim), dir)
    }

    fn open(storage: &Arc<dyn Storage>, dir: &Path) -> Result<(Log, RecoveryReport, Vec<u64>)> {
        let mut seen = Vec::new();
        let (log, report) = Log::open(storage.clone(), dir, options(), None, &mut |r, _| {
            seen.push(r.header.lsn.0);
        })?;
        Ok((log, report, seen))
    }

    /// Found by the `log_recovery` fuzz target: a zero header followed by stale non-zero bytes
    /// was taken for a clean end and left in place, so the next append landed in front of
    /// them and the log could not be reopened.
    #[test]
    fn stale_bytes_after_a_clean_end_are_zeroed_before_appending() {
        let mut image = record(1, b"first");
        let end = segment_header::LEN + image.len();
        image.extend_from_slice(&[0u8; 64]);
        image.extend_from_slice(b"stale bytes from a lost page");
        let (storage, dir) = store(&image);

        let (log, report, seen) = open(&storage, &dir).expect("open");
        assert_eq!(seen, vec![1]);
        let truncated = report.truncated.expect("the stale bytes are reported");
        assert_eq!(truncated.offset, end as u64);
        assert_eq!(truncated.len_bytes, 64 + 28);
        let mut locations = Vec::new();
        let record = NewRecord {
            stream: StreamId(1),
            version: Version(2),
            kind: RecordKind::Event,
            payload: b"second",
        };
        log.append(&[record], RecordClass::Critical, &mut locations)
            .expect("append");
        log.sync_all().expect("sync");
        drop(log);
        let (_, report, seen) = open(&storage, &dir).expect("reopen");
        assert_eq!(seen, vec![1, 2]);
        assert_eq!(report.truncated, None);
    }

    #[test]
    fn a_hole_followed_by_valid_records_is_corruption() {
        let mut image = record(1, b"first");
        let hole = segment_header::LEN + image.len();
        image.extend_from_slice(&[0u8; 100]);
        image.extend_from_slice(&record(2, b"second"));
        let (storage, dir) = store(&image);
        match open(&storage, &dir) {
            Err(LogError::Corrupt { offset, reason, .. }) => {
                assert_eq!(offset, hole as u64);
                assert!(reason.contains("followed by a valid record"), "{reason}");
            }
            other => panic!("expected corruption, got {:?}", other.map(|(_, r, _)| r)),
        }
    }

    #[test]
    fn an_incomplete_batch_is_removed_whole() {
        let mut image = record(1, b"alone");
        let batch_start = segment_header::LEN + image.len();
        for (i, lsn) in [2u64, 3].iter().enumerate() {
            let mut out = Vec::new();
            let header = RecordHeader {
                lsn: Lsn(*lsn),
                stream: StreamId(1),
                version: Version(*lsn),
                timestamp_us: 0,
                batch_left: 2 - u32::try_from(i).expect("tiny"),
                kind: RecordKind::Event,
                class: RecordClass::Normal,
            };
            format::encode_record(&mut out, &header, b"part of a batch of three");
            image.extend_from_slice(&out);
        }
        let (storage, dir) = store(&image);
        let (_, report, seen) = open(&storage, &dir).expect("open");
        assert_eq!(
            seen,
            vec![1],
            "records of an incomplete batch are never delivered"
        );
        assert_eq!(report.truncated.map(|t| t.offset), Some(batch_start as u64));
        assert_eq!(report.end.lsn, Lsn(1));
    }

    /// On the real file system the active segment is read through its map while it grows:
    /// records read back right after each append (some still in the write buffer), in batches
    /// and one by one, across segment rolls, and after the pages were evicted, are the ones
    /// appended.
    #[test]
    fn records_are_read_from_the_growing_active_segment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage: Arc<dyn Storage> = Arc::new(crate::storage::FsStorage);
        let options = LogOptions {
            segment_size_bytes: SEGMENT,
            // Larger than a few records: some reads find their records still buffered.
            write_buffer_bytes: 300,
            ..LogOptions::default()
        };
        let (log, _) = Log::open(storage, dir.path(), options, None, &mut |_, _| {}).expect("open");
        let payload = |i: u64| format!("event {i} {}", "x".repeat((i % 50) as usize)).into_bytes();
        let mut locations: Vec<Location> = Vec::new();
        let mut segments = BTreeSet::new();
        // Iterators started at some record and read a few appends (and sometimes a roll)
        // later: what they yield ends at the record that was last when they started.
        let mut iterators: Vec<(usize, u64, LogIter<'_>)> = Vec::new();
        for i in 1..=400u64 {
            let bytes = payload(i);
            append_event(&log, i, &bytes, &mut locations);
            let last = locations[locations.len() - 1];
            segments.insert(last.segment);
            assert!(
                lock(&log.writer).active.map.is_some(),
                "the active segment is mapped on the real file system"
            );
            let got = log.read(last).expect("read the newest record");
            assert_eq!(got.payload, bytes, "record {i}");
            if i % 7 == 0 {
                if i % 21 == 0 {
                    log.evict_cached_pages().expect("evict");
                }
                let from = locations.len().saturating_sub(9);
                let read = log
                    .read_many_with(&locations[from..], |r| r.payload.to_vec())
                    .expect("read many");
                let want: Vec<Vec<u8>> = (from as u64 + 1..=i).map(payload).collect();
                assert_eq!(read, want, "the last records before {i}");
            }
            if i % 13 == 0 {
                let start = locations.len().saturating_sub(30);
                let iter = log.iter_from(locations[start].lsn).expect("iter_from");
                iterators.push((start, i, iter));
            }
            if i % 13 == 6 {
                if i % 39 == 6 {
                    log.evict_cached_pages().expect("evict");
                }
                for (start, last, iter) in iterators.drain(..) {
                    let read: Vec<Vec<u8>> = iter.map(|r| r.expect("record").payload).collect();
                    let want: Vec<Vec<u8>> = (start as u64 + 1..=last).map(payload).collect();
                    assert_eq!(read, want, "iterator started at record {last}, read at {i}");
                }
            }
        }
        assert!(
            segments.len() > 3,
            "the test should cross rolls: {segments:?}"
        );
        let all = log
            .read_many_with(&locations, |r| r.payload.to_vec())
            .expect("read all");
        assert_eq!(all, (1..=400).map(payload).collect::<Vec<_>>());
    }

    /// The pages of a file in the page cache, measured with `mincore`.
    #[expect(
        unsafe_code,
        reason = "mapping a file and mincore are unsafe; sysconf is a libc call"
    )]
    mod residency {
        use std::fs::File;
        use std::path::Path;

        /// How many of `path`'s pages are in the page cache. The file is mapped for the call
        /// and nothing is read through the map, so the count is the page cache's.
        pub(super) fn resident_pages(path: &Path) -> usize {
            let file = File::open(path).expect("open");
            // SAFETY: the map is read-only and dropped at the end of this function; nothing
            // reads through it (mincore only asks the kernel about its pages), so a change to
            // the file while it is mapped cannot be observed as changing bytes.
            let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
            // SAFETY: sysconf has no preconditions; it reads a system constant.
            let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).expect("page");
            let mut residency = vec![0u8; map.len().div_ceil(page)];
            // SAFETY: `map` is a live mapping of `map.len()` bytes at a page-aligned address
            // (mmap returns one), and `residency` has one byte for each of its pages, which is
            // what mincore writes.
            let rc = unsafe {
                libc::mincore(
                    map.as_ptr().cast_mut().cast::<libc::c_void>(),
                    map.len(),
                    residency.as_mut_ptr(),
                )
            };
            assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
            residency.iter().filter(|&&p| p & 1 != 0).count()
        }

        /// The calling thread's major page faults so far (`getrusage(RUSAGE_THREAD)`).
        pub(super) fn major_faults() -> i64 {
            let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
            // SAFETY: getrusage writes one `rusage` into the pointer it is given, which points
            // to a zeroed `rusage` that lives across the call.
            let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
            assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
            // SAFETY: getrusage succeeded, so it initialized the struct (and zeroed memory is
            // a valid `rusage` anyway: it holds only integers).
            unsafe { usage.assume_init() }.ru_majflt
        }
    }

    /// Appends one event of stream 1 at `version`, normal durability.
    fn append_event(log: &Log, version: u64, payload: &[u8], locations: &mut Vec<Location>) {
        let record = NewRecord {
            stream: StreamId(1),
            version: Version(version),
            kind: RecordKind::Event,
            payload,
        };
        log.append(&[record], RecordClass::Normal, locations)
            .expect("append");
    }

    /// The payload of record `i` in [`log_with_sealed_segments`]: about 960 bytes.
    fn sealed_payload(i: u64) -> Vec<u8> {
        format!("{i:>6} {}", "p".repeat(900)).into_bytes()
    }

    /// A log of 1 MiB segments on the real file system holding 3,000 records of about 960
    /// bytes; returns it with the number and location of each record in a sealed segment.
    fn log_with_sealed_segments(dir: &Path, options: &LogOptions) -> (Log, Vec<(u64, Location)>) {
        const RECORDS: u64 = 3_000;
        let storage: Arc<dyn Storage> = Arc::new(crate::storage::FsStorage);
        let (log, _) =
            Log::open(storage, dir, options.clone(), None, &mut |_, _| {}).expect("open");
        let mut locations: Vec<Location> = Vec::new();
        for i in 1..=RECORDS {
            append_event(&log, i, &sealed_payload(i), &mut locations);
        }
        log.sync_all().expect("sync");
        let active = locations[locations.len() - 1].segment;
        let sealed: Vec<(u64, Location)> = (1..=RECORDS)
            .zip(locations.iter().copied())
            .filter(|(_, l)| l.segment != active)
            .collect();
        assert!(
            sealed.len() as u64 > RECORDS / 2,
            "most records are in sealed segments"
        );
        (log, sealed)
    }

    fn sealed_options() -> LogOptions {
        LogOptions {
            segment_size_bytes: 1 << 20,
            ..LogOptions::default()
        }
    }

    #[test]
    fn a_cold_read_in_a_sealed_segment_reads_its_own_pages() {
        const READS: usize = 40;
        let dir = tempfile::tempdir().expect("temp dir");
        let options = sealed_options();
        let (log, sealed) = log_with_sealed_segments(dir.path(), &options);
        // Pages per cold read, or None where eviction does not work.
        let measure = |log: &Log| -> Option<f64> {
            let mut pages = 0;
            for n in 0..READS {
                let (i, location) = sealed[n * 7919 % sealed.len()];
                let path = dir.path().join(segment_name(location.segment));
                log.evict_cached_pages().expect("evict");
                let before = residency::resident_pages(&path);
                if before > 0 {
                    eprintln!(
                        "posix_fadvise(DONTNEED) left {before} pages of {} cached on this \
                         machine: cannot measure cold reads here, skipping",
                        path.display()
                    );
                    return None;
                }
                assert_eq!(log.read(location).expect("read").payload, sealed_payload(i));
                pages += residency::resident_pages(&path);
            }
            Some(pages as f64 / READS as f64)
        };
        // The segments sealed by rolls, then the same ones mapped by the next open.
        let Some(rolled) = measure(&log) else { return };
        drop(log);
        let storage: Arc<dyn Storage> = Arc::new(crate::storage::FsStorage);
        let (log, _) =
            Log::open(storage, dir.path(), options, None, &mut |_, _| {}).expect("reopen");
        let Some(reopened) = measure(&log) else {
            return;
        };
        eprintln!(
            "a cold read of a ~960-byte record in a sealed segment: {rolled:.2} pages (sealed by \
             a roll), {reopened:.2} (after reopening)"
        );
        // A record spans at most two pages; read-around would bring in dozens.
        assert!(rolled <= 2.0, "{rolled} pages per cold read after rolls");
        assert!(
            reopened <= 2.0,
            "{reopened} pages per cold read after reopening"
        );
    }

    #[test]
    fn a_cold_range_read_asks_for_its_pages_at_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, sealed) = log_with_sealed_segments(dir.path(), &sealed_options());
        // 300 consecutive records of one sealed segment, about 70 pages.
        let segment = sealed[0].1.segment;
        let run: Vec<(u64, Location)> = sealed
            .iter()
            .filter(|(_, l)| l.segment == segment)
            .take(300)
            .copied()
            .collect();
        let locations: Vec<Location> = run.iter().map(|&(_, l)| l).collect();
        let (first, last) = (locations[0], locations[locations.len() - 1]);
        let span_pages = last.end().div_ceil(4096) - first.offset / 4096;
        let path = dir.path().join(segment_name(segment));
        log.evict_cached_pages().expect("evict");
        let before = residency::resident_pages(&path);
        if before > 0 {
            eprintln!(
                "posix_fadvise(DONTNEED) left {before} pages of {} cached on this machine: \
                 cannot measure cold reads here, skipping",
                path.display()
            );
            return;
        }
        let faults_before = residency::major_faults();
        let read = log
            .read_many_with(&locations, |r| r.payload.to_vec())
            .expect("read many");
        let faults = residency::major_faults() - faults_before;
        let pages = residency::resident_pages(&path);
        let want: Vec<Vec<u8>> = run.iter().map(|&(i, _)| sealed_payload(i)).collect();
        assert_eq!(read, want);
        eprintln!(
            "a cold read of {} consecutive records over {span_pages} pages: {faults} major \
             faults, {pages} pages read",
            locations.len()
        );
        // The pages it needs and none around them (a page more where a request is rounded).
        assert!(pages as u64 <= span_pages + 1, "{pages} pages read");
        // Asked for by the run, not faulted in one at a time (which takes a fault per page).
        assert!(
            (faults as u64) * 4 <= span_pages,
            "{faults} major faults for {span_pages} pages"
        );
    }
}
