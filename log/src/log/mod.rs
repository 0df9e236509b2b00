//! The segmented log: recovery on open, appends with group commit, reads and iteration.
//!
//! This module holds the [`Log`] struct, its options and the state its parts share; each part
//! has a file of its own:
//! - `open.rs`: [`Log::open`], recovery of the log's tail after a crash, [`RecoveryReport`].
//! - `append.rs`: [`Log::append`] into the write buffer, and writing the buffer out.
//! - `group_commit.rs`: [`Log::sync_to`], the group commit that makes appends durable.
//! - `segments.rs`: segment files (names, headers, creation), rolling to the next segment, and
//!   the pre-zeroed spare that makes a roll cheap.
//! - `read.rs`: reads by location ([`Log::read_with`], [`Log::read_many_with`]) from the sealed
//!   segments' shared maps and from the active segment.
//! - `iter.rs`: iteration by LSN ([`LogIter`]).
//! - `advance.rs`: [`Log::advance_read_only`], a read-only log following another process's
//!   published end.
//! - `indexes.rs`: the sealed segments' indexes ([`Log::index_sealed`], [`Log::locate`]).
//! - `verify.rs`: [`Log::verify`], the offline check.
//! - `prefix.rs`: [`Log::intact_prefix`], what a repair of a damaged log keeps.
//! - `tests.rs`: the unit tests.
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
//! - The published end (`format::published_end`) never names a record that is not durable:
//!   it is written after the sync that covers it, and only ever moves forward.
//!
//! Lock order, for every file of this module: `writer` before `sync` before `sealed`. The sync
//! leader never holds `sync` while it takes `writer`. `spare`, `indexes`, `poison_cause`, `published`
//! and the durable watch's lock are leaves: nothing else is locked while one of them is held.

mod advance;
mod append;
mod group_commit;
mod indexes;
mod iter;
mod open;
mod prefix;
mod read;
mod segments;
#[cfg(test)]
mod tests;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

use self::group_commit::SyncState;
use self::segments::Spare;
use crate::error::{LogError, Result};
use crate::storage::{LazyMap, ReadOnlyBytes, Storage, StorageFile};
use crate::types::{Lsn, SegmentId};

pub use append::NewRecord;
pub use group_commit::GATHER_MAX;
pub use indexes::{Indexed, write_whole};
pub use iter::LogIter;
pub use open::{RecoveryReport, TruncatedTail};
pub use prefix::IntactPrefix;
pub use read::OwnedRecord;
pub use segments::{SegmentInfo, segment_name};
pub use verify::Problem;

/// Default size segments grow to: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;
/// Default size of a new store's first segment: 128 KiB, so that a small store takes little
/// disk (each later segment doubles, up to [`LogOptions::segment_size_bytes`]).
pub const DEFAULT_FIRST_SEGMENT_SIZE_BYTES: u64 = 128 << 10;
/// Default size of the in-memory write buffer before it is written to the file: 256 KiB.
pub const DEFAULT_WRITE_BUFFER_BYTES: usize = 256 << 10;
/// Smallest segment size accepted (header plus a few records); tests use small segments to roll
/// often.
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 4096;

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
    /// The size segments grow to. Each segment is preallocated with zeros when it is created
    /// (off the append path, as the spare of the next roll) and rolled when the next batch does
    /// not fit; a new store's first segment is [`LogOptions::first_segment_size_bytes`], and
    /// each next one twice the one before, up to this size. A batch bigger than that (one event
    /// near [`crate::format::PAYLOAD_LEN_MAX`]) gets a segment of its own size. Default:
    /// [`DEFAULT_SEGMENT_SIZE_BYTES`].
    pub segment_size_bytes: u64,
    /// The size of a new store's first segment (at most [`LogOptions::segment_size_bytes`]).
    /// Default: [`DEFAULT_FIRST_SEGMENT_SIZE_BYTES`].
    pub first_segment_size_bytes: u64,
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

impl LogOptions {
    /// The size of the segment that follows one of `current_bytes`, for a batch of
    /// `needed_bytes` (header included): twice the current one, between the first segment's
    /// size and the size segments grow to, and never too small for the batch.
    #[must_use]
    pub fn next_segment_size_bytes(&self, current_bytes: u64, needed_bytes: u64) -> u64 {
        let first = self.first_size_bytes();
        current_bytes
            .saturating_mul(2)
            .clamp(first, self.segment_size_bytes.max(first))
            .max(needed_bytes)
    }

    /// The first segment's size: [`LogOptions::first_segment_size_bytes`], within the minimum
    /// and the size segments grow to.
    #[must_use]
    pub fn first_size_bytes(&self) -> u64 {
        self.first_segment_size_bytes.clamp(
            MIN_SEGMENT_SIZE_BYTES,
            self.segment_size_bytes.max(MIN_SEGMENT_SIZE_BYTES),
        )
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            first_segment_size_bytes: DEFAULT_FIRST_SEGMENT_SIZE_BYTES,
            write_buffer_bytes: DEFAULT_WRITE_BUFFER_BYTES,
            recovery_mode: RecoveryMode::Truncate,
            sync_poll_window_us: DEFAULT_SYNC_POLL_WINDOW_US,
        }
    }
}

/// The segment appends go to: the only one that holds unsynced bytes.
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
    /// The format version its header states: [`format::FORMAT_VERSION`] unless an older build
    /// created it (see [`Log::upgrade_active_segment`]).
    format_version: u32,
}

/// What the writer lock protects: the active segment, the write buffer and the next LSN.
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

/// A sealed segment: immutable, read through its read-only map, made at its first read.
#[derive(Debug)]
struct Sealed {
    path: PathBuf,
    /// The map. An open reads only the headers of the segments before its start (with
    /// `pread`): a map and its first page fault per segment were most of what an open of a
    /// long log spent per segment, for segments that most opens never read.
    map: LazyMap,
    /// The file's length when it was sealed or opened.
    len: u64,
}

impl Sealed {
    /// A sealed segment whose bytes are already mapped (see [`Sealed::bytes`]).
    fn shared(path: PathBuf, bytes: ReadOnlyBytes) -> Arc<Sealed> {
        bytes.reading_at_random();
        let len = bytes.len() as u64;
        Arc::new(Sealed {
            path,
            map: LazyMap::ready(bytes),
            len,
        })
    }

    /// A sealed segment of `len` bytes, mapped at its first read.
    fn lazy(path: PathBuf, storage: Arc<dyn Storage>, len: u64) -> Sealed {
        Sealed {
            map: LazyMap::new(storage, path.clone()),
            path,
            len,
        }
    }

    /// The segment's bytes, which the views' point reads share. The map is advised random
    /// access: with the default advice, a cold fault reads the pages around it too (megabytes
    /// of a segment for a read of a few records). Scans map the segment on their own
    /// ([`LogIter`]).
    ///
    /// # Errors
    /// The map's I/O error, naming the segment (the next read tries again).
    fn bytes(&self) -> Result<&ReadOnlyBytes> {
        self.map
            .get_with(|bytes| {
                bytes.reading_at_random();
                Ok(())
            })
            .map_err(|e| LogError::io("read", &self.path, e))
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
    /// Opened to read only: it never writes, and may follow another process's published end
    /// ([`Log::advance_read_only`]).
    read_only: bool,
    /// Wakes threads following the durable end ([`Log::wait_synced_past`]).
    durable_watch: DurableWatch,
    /// The published end's file and what it says (a leaf lock).
    published: Mutex<Published>,
    sealed: RwLock<BTreeMap<SegmentId, Arc<Sealed>>>,
    /// The sealed segments' indexes loaded or built so far (a leaf lock; every view that
    /// replays events of a sealed segment reads it).
    indexes: RwLock<BTreeMap<SegmentId, crate::segment_index::SegmentIndex>>,
    /// The index of a prefix of the segment the catalog snapshot ends in, when no whole index
    /// of that segment is loaded yet (see [`Log::load_tail_index`]); a leaf lock, taken after
    /// `indexes`.
    tail: RwLock<Option<crate::segment_index::SegmentIndex>>,
    spare: Mutex<Spare>,
    spare_cv: Condvar,
    /// Set when the writer is closing: a spare being prepared stops and is removed (a
    /// short-lived writer would otherwise wait for a whole segment of zeros it never uses).
    spare_stop: AtomicBool,
    poisoned: AtomicBool,
    poison_cause: Mutex<Option<String>>,
    appended_lsn: AtomicU64,
    unsynced_bytes: AtomicU64,
}

/// What threads following the log's durable end wait on: notified whenever the synced LSN
/// moves while one of them waits, and never otherwise, so a log nobody follows pays nothing.
#[derive(Debug, Default)]
struct DurableWatch {
    waiters: std::sync::atomic::AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

/// The end published to readers in other processes (see `format::published_end`).
#[derive(Debug, Default)]
struct Published {
    file: Option<Arc<dyn StorageFile>>,
    lsn: Lsn,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Panics while these locks are held can only come from bugs in this module (no user code
    // runs under them); the protected state stays consistent, so recover the guard.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Log {
    /// The directory holding the segments.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sealed segments' ids, oldest first.
    fn sealed_ids(&self) -> Vec<SegmentId> {
        self.sealed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
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

    /// The error of the failure that poisoned the log, if one did.
    ///
    /// # Errors
    /// [`LogError::Poisoned`] naming the first failure.
    pub fn check_poison(&self) -> Result<()> {
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
}
