//! The engine: streams over the log, the write-behind flusher, the fjall index, recovery.
//!
//! Invariants:
//! - The log is written first; fjall only ever describes records that are durable in the log
//!   (the flusher indexes a record only after the log is synced past it), so after any crash
//!   fjall is a prefix of the log, and the recovery point names the last record it covers.
//! - For every stream, versions `1..=indexed_head` are in fjall's `index`, and versions
//!   `indexed_head + 1..=head` are in the stream's in-memory `recent` queue, in order.
//!   The flusher moves entries from `recent` to fjall, removing them from memory only after the
//!   fjall batch has committed, so a reader always finds every version in one of the two.
//! - Version order equals LSN order within a stream: versions are assigned and the log append
//!   happens under the same catalog lock.
//!
//! Lock order: `catalog`, then the log's internal locks. The flusher never holds `catalog`
//! while it syncs or writes fjall.

use std::collections::{HashMap, VecDeque};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use helios_log::{
    Location, Log, LogError, LogIter, Lsn, NewRecord, RecordKind, RecordRef, RecoveryReport,
    SegmentInfo, StreamId, Version,
};

use crate::builder::Builder;
use crate::checkpoints::{CHECKPOINT_DIR, CheckpointOpenReport, Store, StreamAtOpen};
use crate::class::Durability;
use crate::error::{Error, Result};
use crate::meta::{Meta, RUN_LEN_MAX, StreamRecord};
use crate::options::{EngineBuilder, Options};
use helios_log::RecordClass;

/// Longest stream name, in bytes.
pub const STREAM_NAME_LEN_MAX: usize = 1024;
const LOG_DIR: &str = "log";
const META_DIR: &str = "meta";
const LOCK_FILE: &str = "LOCK";
const READ_CHUNK: u64 = 256;
/// How often the preallocator checks whether the active segment needs a spare.
const PREALLOCATOR_POLL_MS: u64 = 5;

/// An event read back from the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Its stream.
    pub stream: StreamId,
    /// Its version in the stream (1-based).
    pub version: Version,
    /// Its position in the global log.
    pub lsn: Lsn,
    /// Microseconds since the Unix epoch when it was appended.
    pub timestamp_us: u64,
    /// The class it was appended with.
    pub durability: Durability,
    /// Its bytes.
    pub payload: Vec<u8>,
}

impl Event {
    fn from_record(record: RecordRef<'_>) -> Event {
        Event {
            stream: record.header.stream,
            version: record.header.version,
            lsn: record.header.lsn,
            timestamp_us: record.header.timestamp_us,
            durability: record.header.class.into(),
            payload: record.payload.to_vec(),
        }
    }
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The stream appended to.
    pub stream: StreamId,
    /// Version of the first event appended.
    pub first: Version,
    /// Version of the last event appended: the stream's new head.
    pub last: Version,
    /// LSN of the last record written.
    pub lsn: Lsn,
}

/// A stream's summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// Its id.
    pub id: StreamId,
    /// Its name.
    pub name: String,
    /// Its head version (0 if it has no event).
    pub head: Version,
}

/// What opening the engine found and repaired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// The log's own recovery.
    pub log: RecoveryReport,
    /// Index entries (re)built from the log past the recovery point.
    pub reindexed: u64,
    /// Index entries removed because they pointed past the log's end.
    pub index_entries_dropped: u64,
    /// Streams removed because their creation lay past the log's end.
    pub streams_dropped: u64,
    /// What reconciling the checkpoint files with their catalog did.
    pub checkpoints: CheckpointOpenReport,
}

#[derive(Debug)]
pub(crate) struct StreamState {
    pub(crate) name: Arc<str>,
    created: Lsn,
    pub(crate) head: Version,
    pub(crate) indexed_head: Version,
    /// The branch node the head is, when a promotion made it (`None` after a plain append).
    pub(crate) lineage: Option<crate::branch::Lineage>,
    recent: VecDeque<Location>,
    persisted: bool,
    dirty: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Catalog {
    by_name: HashMap<Arc<str>, StreamId>,
    /// Stream `id` is at index `id - 1`: ids are dense, assigned in LSN order.
    streams: Vec<StreamState>,
    dirty: Vec<StreamId>,
    /// The log's directory, for naming files in errors.
    log_dir: PathBuf,
    /// Location of the last record of each batch not yet covered by the recovery point.
    batch_ends: VecDeque<Location>,
    scratch: Vec<Location>,
}

impl Catalog {
    pub(crate) fn get(&self, id: StreamId) -> Option<&StreamState> {
        usize::try_from(id.0)
            .ok()?
            .checked_sub(1)
            .and_then(|i| self.streams.get(i))
    }

    fn get_mut(&mut self, id: StreamId) -> Option<&mut StreamState> {
        usize::try_from(id.0)
            .ok()?
            .checked_sub(1)
            .and_then(|i| self.streams.get_mut(i))
    }

    fn next_id(&self) -> StreamId {
        StreamId(self.streams.len() as u64 + 1)
    }

    fn mark_dirty(&mut self, id: StreamId) {
        if let Some(st) = self.get_mut(id)
            && !st.dirty
        {
            st.dirty = true;
            self.dirty.push(id);
        }
    }

    fn add_stream(
        &mut self,
        id: StreamId,
        name: &str,
        created: Lsn,
        head: Version,
        persisted: bool,
    ) {
        debug_assert_eq!(id, self.next_id(), "stream ids are dense");
        let name: Arc<str> = Arc::from(name);
        self.by_name.insert(name.clone(), id);
        self.streams.push(StreamState {
            name,
            created,
            head,
            indexed_head: head,
            lineage: None,
            recent: VecDeque::new(),
            persisted,
            dirty: false,
        });
    }

    /// Applies one recovered or appended record.
    fn apply(&mut self, record: &RecordRef<'_>, location: Location) -> Result<()> {
        let header = record.header;
        match header.kind {
            RecordKind::CreateStream => {
                if self.get(header.stream).is_some() {
                    return Ok(()); // Already known from fjall.
                }
                if header.stream != self.next_id() {
                    return Err(corrupt_record(
                        &self.log_dir,
                        &location,
                        format!(
                            "creates {} but the next stream id is {}",
                            header.stream,
                            self.next_id()
                        ),
                    ));
                }
                let name = std::str::from_utf8(record.payload).map_err(|_| {
                    corrupt_record(&self.log_dir, &location, "stream name is not UTF-8".into())
                })?;
                self.add_stream(header.stream, name, header.lsn, Version::ZERO, false);
                self.mark_dirty(header.stream);
            }
            RecordKind::Event => {
                let Some(st) = self.get_mut(header.stream) else {
                    return Err(corrupt_record(
                        &self.log_dir,
                        &location,
                        format!("event of unknown {}", header.stream),
                    ));
                };
                if header.version <= st.head {
                    return Ok(()); // Already indexed.
                }
                if header.version.0 != st.head.0 + 1 {
                    let reason = format!(
                        "{} of {} follows head {}",
                        header.version, header.stream, st.head
                    );
                    return Err(corrupt_record(&self.log_dir, &location, reason));
                }
                st.head = header.version;
                st.recent.push_back(location);
                self.mark_dirty(header.stream);
            }
        }
        if header.batch_left == 0 {
            self.batch_ends.push_back(location);
        }
        Ok(())
    }
}

fn corrupt_record(log_dir: &Path, location: &Location, reason: String) -> Error {
    Error::Log(LogError::Corrupt {
        path: log_dir.join(helios_log::segment_name(location.segment)),
        offset: location.offset,
        reason: format!("{}: {reason}", location.lsn),
    })
}

#[derive(Debug, Default)]
struct FlusherSignal {
    wake: bool,
    shutdown: bool,
}

#[derive(Debug, Default)]
struct BuilderSignal {
    /// Streams whose indexed head moved since the builder last looked.
    queue: Vec<StreamId>,
    wake: bool,
    shutdown: bool,
}

#[derive(Debug)]
pub(crate) struct Inner {
    dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) log: Log,
    pub(crate) meta: Meta,
    pub(crate) catalog: Mutex<Catalog>,
    pub(crate) store: Store,
    pub(crate) branches: crate::branch::Branches,
    pub(crate) metrics: crate::metrics::Metrics,
    /// The checkpoint builder's memory; held for a whole round.
    pub(crate) builder: Mutex<Builder>,
    /// The newest log segment recorded in the metadata as existing.
    known_segment: Mutex<u64>,
    /// The streams the builder stopped on, as of its last round (readable during a round).
    pub(crate) stalled: Mutex<Vec<crate::StalledStream>>,
    builder_signal: Mutex<BuilderSignal>,
    builder_cv: Condvar,
    signal: Mutex<FlusherSignal>,
    signal_cv: Condvar,
    /// Wakes the preallocator (at shutdown; otherwise it polls).
    prealloc_cv: Condvar,
    /// Serialises flush rounds (the background flusher and explicit syncs).
    flush_lock: Mutex<()>,
    last_flush_error: Mutex<Option<String>>,
    /// Set by normal appends: the flusher must sync the log in its next round.
    normal_pending: AtomicBool,
    open_report: OpenReport,
    _lock: helios_log::storage::LockGuard,
}

/// An open Helios store. Share it across threads behind an `Arc` (all methods take `&self`).
/// Dropping it shuts down cleanly: buffered appends are synced and the metadata persisted.
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
    /// The flusher and the segment preallocator (none without background threads).
    threads: Vec<JoinHandle<()>>,
    /// Until shut down.
    open: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under the engine's locks, so a poisoned lock means a bug in the engine
    // that already panicked on another thread; the protected data is still consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > STREAM_NAME_LEN_MAX {
        "it is longer than 1024 bytes"
    } else if name.chars().any(char::is_control) {
        "it contains control characters"
    } else {
        return Ok(());
    };
    Err(Error::InvalidStreamName {
        stream: name.to_owned(),
        reason,
    })
}

fn version_bounds(range: &impl RangeBounds<Version>, head: Version) -> (Version, Version) {
    let from = match range.start_bound() {
        Bound::Included(v) => v.0.max(1),
        Bound::Excluded(v) => v.0.saturating_add(1).max(1),
        Bound::Unbounded => 1,
    };
    let to = match range.end_bound() {
        Bound::Included(v) => v.0.min(head.0),
        Bound::Excluded(v) => v.0.saturating_sub(1).min(head.0),
        Bound::Unbounded => head.0,
    };
    (Version(from), Version(to))
}

impl Engine {
    /// Starts building an engine for `dir` with default options.
    pub fn builder(dir: impl AsRef<Path>) -> EngineBuilder {
        EngineBuilder::new(dir.as_ref())
    }

    /// Opens (or creates) the store in `dir`, recovering from a crash if needed: a torn tail of
    /// the log is removed (or refused, per [`Options::recovery_mode`]), records past fjall's
    /// recovery point are re-indexed, and index entries past the log's end are dropped.
    ///
    /// # Errors
    /// [`Error::Locked`] if another writer has the store open, corruption errors naming the file
    /// and offset, I/O and metadata errors, invalid options.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Engine> {
        let dir = dir.as_ref().to_path_buf();
        options.validate()?;
        let storage = options.storage.clone();
        if !options.create_if_missing && storage.list_files(&dir.join(LOG_DIR)).is_err() {
            return Err(Error::NotAStore { path: dir });
        }
        std::fs::create_dir_all(&dir).map_err(|e| LogError::Io {
            op: "create directory",
            path: dir.clone(),
            source: e,
        })?;
        storage.create_dir_all(&dir).map_err(|e| LogError::Io {
            op: "create directory",
            path: dir.clone(),
            source: e,
        })?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_guard = storage.lock_exclusive(&lock_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked {
                    path: lock_path.clone(),
                }
            } else {
                Error::Log(LogError::Io {
                    op: "lock",
                    path: lock_path.clone(),
                    source: e,
                })
            }
        })?;
        let meta_path = dir.join(META_DIR);
        let meta = Meta::open(&meta_path)?;
        let start = meta.recovery_point()?;

        let mut catalog = Catalog {
            log_dir: dir.join(LOG_DIR),
            ..Catalog::default()
        };
        let mut records = meta.streams()?;
        records.sort_by_key(|r| r.id);
        for (i, r) in records.iter().enumerate() {
            if r.id.0 != i as u64 + 1 {
                return Err(Error::CorruptMeta {
                    keyspace: "streams",
                    reason: format!(
                        "stream ids are not dense: found {} at position {}",
                        r.id,
                        i + 1
                    ),
                });
            }
            catalog.add_stream(r.id, &r.name, r.created, r.head, true);
        }

        let mut apply_error: Option<Error> = None;
        let mut reindexed = 0u64;
        let (log, log_report) = Log::open(
            storage,
            &dir.join(LOG_DIR),
            options.log_options(),
            start,
            &mut |record, location| {
                if apply_error.is_none() {
                    match catalog.apply(&record, location) {
                        Ok(()) => reindexed += u64::from(record.header.kind == RecordKind::Event),
                        Err(e) => apply_error = Some(e),
                    }
                }
            },
        )?;
        if let Some(e) = apply_error {
            return Err(e);
        }

        // Every segment the metadata knows of must still be there: a missing one is lost
        // history, whatever the rest of the log says.
        let known_segments = meta.known_segments()?;
        {
            let present: std::collections::HashSet<u64> =
                log.segments()?.iter().map(|s| s.id.0).collect();
            if let Some(&missing) = known_segments.iter().find(|id| !present.contains(id)) {
                return Err(Error::Log(LogError::Corrupt {
                    path: dir
                        .join(LOG_DIR)
                        .join(helios_log::segment_name(helios_log::SegmentId(missing))),
                    offset: 0,
                    reason: "this segment is missing: the metadata recorded it, and the events \
                             it held are gone"
                        .into(),
                }));
            }
        }
        let mut open_report = OpenReport {
            log: log_report,
            reindexed,
            index_entries_dropped: 0,
            streams_dropped: 0,
            checkpoints: CheckpointOpenReport::default(),
        };
        if open_report.log.start_was_past_end {
            drop_past_end(
                &meta,
                &mut catalog,
                open_report.log.end.lsn,
                &mut open_report,
            )?;
        }

        let at_open: Vec<StreamAtOpen<'_>> = catalog
            .streams
            .iter()
            .enumerate()
            .map(|(i, st)| StreamAtOpen {
                id: StreamId(i as u64 + 1),
                head: st.head,
                machine: options.machine_for(&st.name).name(),
            })
            .collect();
        let (store, checkpoints_report) = Store::open(
            dir.join(CHECKPOINT_DIR),
            options.checkpoint_policy,
            options.checkpoint_maps_max,
            &meta,
            &at_open,
        )?;
        drop(at_open);
        open_report.checkpoints = checkpoints_report;
        // Every checkpoint up to a stream's newest one is there (or queued for a rebuild);
        // streams with a checkpoint due past it are queued for the builder.
        let mut built = HashMap::new();
        let mut queue = Vec::new();
        for (i, st) in catalog.streams.iter().enumerate() {
            let id = StreamId(i as u64 + 1);
            let latest = store.latest(id).unwrap_or(0);
            built.insert(id, latest);
            if latest + options.checkpoint_policy.fanout() <= st.head.0 {
                queue.push(id);
            }
        }
        let wake = !queue.is_empty() || store.has_rebuilds();
        let record_metrics = options.metrics;
        let inner = Arc::new(Inner {
            dir,
            options,
            log,
            meta,
            catalog: Mutex::new(catalog),
            store,
            branches: crate::branch::Branches::new(),
            metrics: crate::metrics::Metrics::new(record_metrics),
            builder: Mutex::new(Builder::new(built)),
            stalled: Mutex::new(Vec::new()),
            known_segment: Mutex::new(known_segments.last().copied().unwrap_or(0)),
            builder_signal: Mutex::new(BuilderSignal {
                queue,
                wake,
                shutdown: false,
            }),
            builder_cv: Condvar::new(),
            signal: Mutex::new(FlusherSignal::default()),
            signal_cv: Condvar::new(),
            prealloc_cv: Condvar::new(),
            flush_lock: Mutex::new(()),
            last_flush_error: Mutex::new(None),
            normal_pending: AtomicBool::new(false),
            open_report,
            _lock: lock_guard,
        });
        // Index what recovery found right away, so the next open starts from here.
        inner.flush_round(true)?;
        inner.meta.persist()?;
        let spawn = |name: &str, body: fn(&Inner)| {
            let worker = inner.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || body(&worker))
                .map_err(|e| LogError::Io {
                    op: "spawn a background thread",
                    path: PathBuf::from(name),
                    source: e,
                })
        };
        let threads = if inner.options.background_threads {
            vec![
                spawn("helios-flusher", Inner::flusher_loop)?,
                spawn("helios-prealloc", Inner::preallocator_loop)?,
                spawn("helios-checkpoints", Inner::builder_loop)?,
            ]
        } else {
            Vec::new()
        };
        Ok(Engine {
            inner,
            threads,
            open: true,
        })
    }

    /// The store's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// What opening found and repaired.
    #[must_use]
    pub fn open_report(&self) -> &OpenReport {
        &self.inner.open_report
    }

    /// Creates a stream (durably, as one critical record) or returns the existing one's id.
    ///
    /// # Errors
    /// An invalid name, log errors.
    pub fn create_stream(&self, name: &str) -> Result<StreamId> {
        validate_name(name)?;
        let mut cat = lock(&self.inner.catalog);
        if let Some(&id) = cat.by_name.get(name) {
            return Ok(id);
        }
        let id = cat.next_id();
        let record = NewRecord {
            stream: id,
            version: Version::ZERO,
            kind: RecordKind::CreateStream,
            payload: name.as_bytes(),
        };
        let mut locations = std::mem::take(&mut cat.scratch);
        locations.clear();
        let lsn = self
            .inner
            .log
            .append(&[record], RecordClass::Critical, &mut locations)?;
        let location = locations[0];
        cat.scratch = locations;
        cat.add_stream(id, name, lsn, Version::ZERO, false);
        cat.mark_dirty(id);
        cat.batch_ends.push_back(location);
        drop(cat);
        self.inner.log.sync_to(lsn)?;
        Ok(id)
    }

    /// Appends `events` to `stream` atomically (all or none), creating the stream on its first
    /// append. With `expected = Some(v)` the append happens only if the stream's head is `v`
    /// (use [`Version::ZERO`] for "the stream must be new or empty"); otherwise it fails with
    /// [`Error::Conflict`].
    ///
    /// [`Durability::Critical`] returns after the events are on stable storage (sharing the
    /// fdatasync with concurrent critical appends); [`Durability::Normal`] returns after a
    /// buffered write, synced within [`Options::sync_window_ms`].
    ///
    /// # Errors
    /// [`Error::Conflict`], [`Error::EmptyAppend`], invalid names, log errors (a poisoned log
    /// refuses every append).
    pub fn append<E: AsRef<[u8]>>(
        &self,
        stream: &str,
        events: &[E],
        durability: Durability,
        expected: Option<Version>,
    ) -> Result<Appended> {
        let Some(class) = durability.persistent() else {
            return Err(Error::InvalidDurability {
                operation: "Engine::append",
                durability,
                reason: "speculative events live in a branch: use Engine::commit, or \
                         Engine::fork and Engine::append_branch",
            });
        };
        let start = self.inner.metrics.start();
        let appended = self.append_durable(stream, events, class, expected, None)?;
        let metric = match class {
            RecordClass::Critical => crate::Metric::AppendCritical,
            RecordClass::Normal => crate::Metric::AppendNormal,
        };
        self.inner.metrics.finish(metric, start);
        Ok(appended)
    }

    /// Latency histograms of every operation and class, and the events replayed per view,
    /// since open (or the last [`Engine::reset_metrics`]).
    #[must_use]
    pub fn metrics(&self) -> crate::MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Empties every histogram.
    pub fn reset_metrics(&self) {
        self.inner.metrics.reset();
    }

    /// [`Engine::append`] of a persistent class; `lineage` records which branch node the new
    /// head is (for promotions), under the same lock as the append.
    pub(crate) fn append_durable<E: AsRef<[u8]>>(
        &self,
        stream: &str,
        events: &[E],
        durability: RecordClass,
        expected: Option<Version>,
        lineage: Option<crate::branch::Lineage>,
    ) -> Result<Appended> {
        if events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        let mut cat = lock(&self.inner.catalog);
        let (id, head, creating) = match cat.by_name.get(stream) {
            Some(&id) => (id, cat.get(id).map_or(Version::ZERO, |s| s.head), false),
            None => {
                validate_name(stream)?;
                (cat.next_id(), Version::ZERO, true)
            }
        };
        if let Some(expected) = expected
            && expected != head
        {
            return Err(Error::Conflict {
                stream: stream.to_owned(),
                expected,
                actual: head,
            });
        }
        let mut records = Vec::with_capacity(events.len() + usize::from(creating));
        if creating {
            records.push(NewRecord {
                stream: id,
                version: Version::ZERO,
                kind: RecordKind::CreateStream,
                payload: stream.as_bytes(),
            });
        }
        for (i, event) in events.iter().enumerate() {
            records.push(NewRecord {
                stream: id,
                version: Version(head.0 + 1 + i as u64),
                kind: RecordKind::Event,
                payload: event.as_ref(),
            });
        }
        let mut locations = std::mem::take(&mut cat.scratch);
        locations.clear();
        let result = self.inner.log.append(&records, durability, &mut locations);
        let lsn = match result {
            Ok(lsn) => lsn,
            Err(e) => {
                cat.scratch = locations;
                return Err(e.into());
            }
        };
        let mut event_locations = locations.iter();
        if creating {
            let created = event_locations.next().map_or(Lsn::ZERO, |l| l.lsn);
            cat.add_stream(id, stream, created, Version::ZERO, false);
        }
        let last = Version(head.0 + events.len() as u64);
        if let Some(st) = cat.get_mut(id) {
            st.recent.extend(event_locations.copied());
            st.head = last;
            st.lineage = lineage;
        }
        cat.mark_dirty(id);
        if let Some(end) = locations.last() {
            let end = *end;
            cat.batch_ends.push_back(end);
        }
        cat.scratch = locations;
        drop(cat);
        match durability {
            RecordClass::Critical => self.inner.log.sync_to(lsn)?,
            RecordClass::Normal => {
                if !self.inner.normal_pending.load(Ordering::Relaxed) {
                    self.inner.normal_pending.store(true, Ordering::Release);
                }
                if self.inner.log.unsynced_bytes() >= self.inner.options.sync_window_bytes {
                    self.inner.wake_flusher();
                }
            }
        }
        Ok(Appended {
            stream: id,
            first: Version(head.0 + 1),
            last,
            lsn,
        })
    }

    /// The id of `stream`, or [`Error::UnknownStream`].
    pub(crate) fn known_stream(&self, cat: &Catalog, stream: &str) -> Result<StreamId> {
        cat.by_name
            .get(stream)
            .copied()
            .ok_or_else(|| Error::UnknownStream {
                stream: stream.to_owned(),
            })
    }

    /// The head version of `stream`, or `None` if no such stream exists.
    #[must_use]
    pub fn head(&self, stream: &str) -> Option<Version> {
        let cat = lock(&self.inner.catalog);
        let id = *cat.by_name.get(stream)?;
        cat.get(id).map(|s| s.head)
    }

    /// The id of `stream`, if it exists.
    #[must_use]
    pub fn stream_id(&self, stream: &str) -> Option<StreamId> {
        lock(&self.inner.catalog).by_name.get(stream).copied()
    }

    /// Every stream, by id.
    #[must_use]
    pub fn streams(&self) -> Vec<StreamInfo> {
        let cat = lock(&self.inner.catalog);
        cat.streams
            .iter()
            .enumerate()
            .map(|(i, s)| StreamInfo {
                id: StreamId(i as u64 + 1),
                name: s.name.to_string(),
                head: s.head,
            })
            .collect()
    }

    /// Reads the events of `stream` whose versions fall in `versions` (clamped to `1..=head` as
    /// of this call), in order. Events appended later are not included.
    ///
    /// # Errors
    /// [`Error::UnknownStream`]; the iterator yields log errors (corruption names the file and
    /// offset) and [`Error::IndexMismatch`].
    pub fn read(&self, stream: &str, versions: impl RangeBounds<Version>) -> Result<ReadIter<'_>> {
        let cat = lock(&self.inner.catalog);
        let id = *cat
            .by_name
            .get(stream)
            .ok_or_else(|| Error::UnknownStream {
                stream: stream.to_owned(),
            })?;
        let head = cat.get(id).map_or(Version::ZERO, |s| s.head);
        drop(cat);
        let (from, to) = version_bounds(&versions, head);
        Ok(ReadIter {
            inner: &self.inner,
            stream: id,
            next: from,
            last: to,
            pending: VecDeque::new(),
            failed: false,
        })
    }

    /// Iterates every event of every stream in log order, starting at `from` (use
    /// [`Lsn::ZERO`] or `Lsn(1)` for the beginning), up to the end of the log as of this call.
    /// This is what a subscriber or projection reads; resume from the last event's `lsn + 1`.
    ///
    /// # Errors
    /// Log errors.
    pub fn events_from(&self, from: Lsn) -> Result<GlobalIter<'_>> {
        Ok(GlobalIter {
            inner: self.inner.log.iter_from(from)?,
        })
    }

    /// Makes every append so far durable and indexes it; returns the last durable LSN.
    ///
    /// # Errors
    /// Log and metadata errors.
    pub fn sync(&self) -> Result<Lsn> {
        let start = self.inner.metrics.start();
        self.inner.flush_round(true)?;
        self.inner.metrics.finish(crate::Metric::Sync, start);
        Ok(self.inner.log.synced_lsn())
    }

    /// The log's segments, oldest first.
    ///
    /// # Errors
    /// I/O errors.
    pub fn segments(&self) -> Result<Vec<SegmentInfo>> {
        Ok(self.inner.log.segments()?)
    }

    /// Where the log ends now: the last record appended (durable or not), its segment, and
    /// the byte offset just past it.
    #[must_use]
    pub fn log_end(&self) -> helios_log::Position {
        self.inner.log.end()
    }

    /// The last LSN known to be on stable storage: every record up to it survives a crash.
    #[must_use]
    pub fn durable_lsn(&self) -> Lsn {
        self.inner.log.synced_lsn()
    }

    /// The last LSN appended, durable or not.
    #[must_use]
    pub fn last_lsn(&self) -> Lsn {
        self.inner.log.appended_lsn()
    }

    /// The first error the background flusher met, if any (a failed sync also poisons the log,
    /// so appends report it too).
    #[must_use]
    pub fn flusher_error(&self) -> Option<String> {
        lock(&self.inner.last_flush_error).clone()
    }

    /// Shuts down cleanly, reporting any error (dropping does the same and ignores errors).
    ///
    /// # Errors
    /// Log and metadata errors of the final sync.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        {
            let mut signal = lock(&self.inner.signal);
            signal.shutdown = true;
        }
        lock(&self.inner.builder_signal).shutdown = true;
        self.inner.signal_cv.notify_all();
        self.inner.prealloc_cv.notify_all();
        self.inner.builder_cv.notify_all();
        for thread in self.threads.drain(..) {
            // The background threads never panic on their own (they record errors instead).
            let _ = thread.join();
        }
        if self.inner.log.is_poisoned() {
            return Ok(());
        }
        self.inner.flush_round(true)?;
        self.inner.meta.persist()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Errors here were already reported to the appends they concern (a failed sync
        // poisons the log); nothing acknowledged as durable depends on this final round.
        let _ = self.shutdown();
    }
}

/// Removes fjall state that describes records past the log's real end.
fn drop_past_end(
    meta: &Meta,
    catalog: &mut Catalog,
    end: Lsn,
    report: &mut OpenReport,
) -> Result<()> {
    let mut batch = meta.batch();
    while let Some(last) = catalog.streams.last() {
        if last.created <= end {
            break;
        }
        let id = catalog.next_id();
        let id = StreamId(id.0 - 1);
        batch.remove_stream(id, &last.name);
        for run in meta.stream_runs_reversed(id) {
            let (first, locations) = run?;
            batch.remove_run(id, first);
            report.index_entries_dropped += locations.len() as u64;
        }
        let name = last.name.clone();
        catalog.by_name.remove(&name);
        catalog.streams.pop();
        report.streams_dropped += 1;
    }
    for (i, st) in catalog.streams.iter_mut().enumerate() {
        let id = StreamId(i as u64 + 1);
        if st.indexed_head == Version::ZERO {
            continue;
        }
        // Walk back from the last run while entries lie past the end.
        let mut keep = st.indexed_head;
        for run in meta.stream_runs_reversed(id) {
            let (first, locations) = run?;
            let valid = locations.iter().take_while(|l| l.lsn <= end).count();
            if valid == locations.len() {
                break;
            }
            report.index_entries_dropped += (locations.len() - valid) as u64;
            if valid == 0 {
                batch.remove_run(id, first);
            } else {
                batch.put_run(id, first, &locations[..valid]);
            }
            keep = Version(first.0 + valid as u64 - 1);
        }
        if keep != st.indexed_head {
            st.indexed_head = keep;
            st.head = keep;
            st.recent.clear();
            batch.put_stream(&StreamRecord {
                id,
                name: st.name.to_string(),
                head: keep,
                created: st.created,
            });
        }
    }
    batch.commit()
}

impl Inner {
    fn wake_flusher(&self) {
        lock(&self.signal).wake = true;
        self.signal_cv.notify_one();
    }

    fn flusher_loop(&self) {
        let window = Duration::from_millis(self.options.sync_window_ms);
        loop {
            {
                let mut signal = lock(&self.signal);
                if !signal.wake && !signal.shutdown {
                    signal = self
                        .signal_cv
                        .wait_timeout(signal, window)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
                if signal.shutdown {
                    return;
                }
                signal.wake = false;
            }
            if self.log.is_poisoned() {
                // Nothing can be made durable any more; appends report the poisoning.
                continue;
            }
            let normal_pending = self.normal_pending.swap(false, Ordering::AcqRel);
            if let Err(e) = self.flush_round(normal_pending) {
                self.record_background_error(&e);
            }
        }
    }

    fn record_background_error(&self, error: &Error) {
        let mut slot = lock(&self.last_flush_error);
        if slot.is_none() {
            *slot = Some(error.to_string());
        }
    }

    /// Keeps a zero-filled spare segment ready once the active one is a quarter full. Runs on
    /// its own thread: writing 64 MiB of zeros takes long enough (100-300 ms measured under
    /// load) that doing it on the flusher would hold normal appends unsynced past their window,
    /// and doing it at the roll would stall the append that rolls.
    fn preallocator_loop(&self) {
        let poll = Duration::from_millis(PREALLOCATOR_POLL_MS);
        loop {
            {
                let signal = lock(&self.signal);
                if signal.shutdown {
                    return;
                }
                let signal = self
                    .prealloc_cv
                    .wait_timeout(signal, poll)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
                if signal.shutdown {
                    return;
                }
            }
            if !self.log.is_poisoned()
                && self.log.wants_spare()
                && let Err(e) = self.log.prepare_spare_segment()
            {
                self.record_background_error(&e.into());
            }
        }
    }

    /// Syncs the log (if asked) and moves every durable index entry from memory into fjall, with the
    /// recovery point, in one atomic batch.
    ///
    /// The background flusher passes `sync_log = false` when only critical appends happened
    /// since its last round: their own group commit syncs them, and a flusher joining the group
    /// would only make the group look bigger than the appenders are.
    fn flush_round(&self, sync_log: bool) -> Result<()> {
        let _round = lock(&self.flush_lock);
        let synced = if sync_log && self.log.appended_lsn() > self.log.synced_lsn() {
            self.log.sync_all()?
        } else {
            self.log.synced_lsn()
        };
        // Under the catalog lock only copy what is durable; the fjall batch is built after, so
        // appends wait for a memcpy, not for fjall.
        let mut moved: Vec<(StreamRecord, Vec<Location>)> = Vec::new();
        let recovery_point = {
            let mut cat = lock(&self.catalog);
            let mut recovery_point = None;
            while cat.batch_ends.front().is_some_and(|l| l.lsn <= synced) {
                recovery_point = cat.batch_ends.pop_front();
            }
            let Some(recovery_point) = recovery_point else {
                return Ok(());
            };
            let dirty = std::mem::take(&mut cat.dirty);
            for id in dirty {
                let Some(st) = cat.get_mut(id) else { continue };
                let durable = st.recent.iter().take_while(|l| l.lsn <= synced).count();
                if durable > 0 || (!st.persisted && st.created <= synced) {
                    let record = StreamRecord {
                        id,
                        name: st.name.to_string(),
                        head: st.indexed_head,
                        created: st.created,
                    };
                    moved.push((record, st.recent.iter().take(durable).copied().collect()));
                }
                st.dirty = false;
                if st.recent.len() > durable || !(st.persisted || st.created <= synced) {
                    cat.mark_dirty(id);
                }
            }
            recovery_point
        };
        let mut batch = self.meta.batch();
        for (record, locations) in &mut moved {
            let mut first = Version(record.head.0 + 1);
            for run in locations.chunks(RUN_LEN_MAX) {
                batch.put_run(record.id, first, run);
                first = Version(first.0 + run.len() as u64);
            }
            record.head = Version(first.0 - 1);
            batch.put_stream(record);
        }
        batch.set_recovery_point(&recovery_point);
        // Segments up to the recovery point's are durable: record any new ones, so that a
        // later open notices if one disappears.
        let known = *lock(&self.known_segment);
        if recovery_point.segment.0 > known {
            for segment in self.log.segments()? {
                if segment.id.0 > known && segment.id <= recovery_point.segment {
                    batch.put_segment(segment.id.0);
                }
            }
        }
        if let Err(e) = batch.commit() {
            // Nothing was indexed: put back what this round took, so that a later round (or
            // the next open) indexes it before any recovery point claims it.
            let mut cat = lock(&self.catalog);
            cat.batch_ends.push_front(recovery_point);
            for (record, _) in &moved {
                cat.mark_dirty(record.id);
            }
            return Err(e);
        }
        {
            let mut known = lock(&self.known_segment);
            *known = (*known).max(recovery_point.segment.0);
        }
        let mut cat = lock(&self.catalog);
        let mut advanced = Vec::with_capacity(moved.len());
        for (record, locations) in moved {
            if let Some(st) = cat.get_mut(record.id) {
                st.recent.drain(..locations.len());
                st.indexed_head = record.head;
                st.persisted = true;
                if !locations.is_empty() {
                    advanced.push(record.id);
                }
            }
        }
        drop(cat);
        self.queue_for_checkpoints(advanced);
        Ok(())
    }

    /// Tells the checkpoint builder that these streams' indexed heads moved.
    pub(crate) fn queue_for_checkpoints(&self, streams: impl IntoIterator<Item = StreamId>) {
        let mut signal = lock(&self.builder_signal);
        let before = signal.queue.len();
        signal.queue.extend(streams);
        if signal.queue.len() > before {
            signal.wake = true;
            drop(signal);
            self.builder_cv.notify_one();
        }
    }

    /// Wakes the checkpoint builder (for example to rebuild a damaged checkpoint).
    pub(crate) fn wake_builder(&self) {
        lock(&self.builder_signal).wake = true;
        self.builder_cv.notify_one();
    }

    /// The streams queued for the builder, without duplicates.
    pub(crate) fn take_checkpoint_queue(&self) -> Vec<StreamId> {
        let mut queue = std::mem::take(&mut lock(&self.builder_signal).queue);
        queue.sort_unstable();
        queue.dedup();
        queue
    }

    /// The checkpoint builder's thread: a round whenever the flusher indexes events or a
    /// damaged checkpoint is found, and every second in case a round failed.
    fn builder_loop(&self) {
        loop {
            {
                let mut signal = lock(&self.builder_signal);
                if !signal.wake && !signal.shutdown {
                    signal = self
                        .builder_cv
                        .wait_timeout(signal, Duration::from_secs(1))
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
                if signal.shutdown {
                    return;
                }
                signal.wake = false;
            }
            let mut builder = lock(&self.builder);
            if let Err(e) = self.checkpoint_round(&mut builder) {
                self.record_background_error(&e);
            }
        }
    }

    /// The events of stream `id` in `from..=to` (clamped to its head).
    pub(crate) fn events_of(&self, id: StreamId, from: Version, to: Version) -> ReadIter<'_> {
        ReadIter {
            inner: self,
            stream: id,
            next: from,
            last: to,
            pending: VecDeque::new(),
            failed: false,
        }
    }
}

/// Iterator over one stream's events, from [`Engine::read`].
#[derive(Debug)]
pub struct ReadIter<'a> {
    inner: &'a Inner,
    stream: StreamId,
    next: Version,
    last: Version,
    pending: VecDeque<Event>,
    failed: bool,
}

impl ReadIter<'_> {
    /// Reads the next chunk of events (up to `READ_CHUNK`) into `pending`, close ones with one
    /// read.
    fn fill(&mut self) -> Result<()> {
        let chunk_end = Version(self.last.0.min(self.next.0 + READ_CHUNK - 1));
        let locations = self.inner.locations_of(self.stream, self.next, chunk_end)?;
        let events = self
            .inner
            .log
            .read_many_with(&locations, Event::from_record)?;
        for (version, event) in (self.next.0..).map(Version).zip(events) {
            check_record(self.stream, version, event.stream, event.version, event.lsn)?;
            self.pending.push_back(event);
        }
        Ok(())
    }
}

/// An [`Error::IndexMismatch`] unless the record found for `stream`'s `version` is that
/// event.
fn check_record(
    stream: StreamId,
    version: Version,
    found_stream: StreamId,
    found_version: Version,
    found_lsn: Lsn,
) -> Result<()> {
    if found_stream == stream && found_version == version {
        return Ok(());
    }
    Err(Error::IndexMismatch {
        stream: stream.0,
        version,
        reason: format!("the index points at {found_lsn} {found_version} of {found_stream}"),
    })
}

impl Inner {
    /// The locations of stream `id`'s versions from `from` on, at most up to `to`: from the
    /// stream's recent appends past its indexed head, or from the index up to the indexed
    /// head (so possibly fewer than asked; never none when `from <= to <= head`).
    fn locations_of(&self, id: StreamId, from: Version, to: Version) -> Result<Vec<Location>> {
        let cat = lock(&self.catalog);
        let st = cat.get(id).ok_or_else(|| Error::UnknownStream {
            stream: id.to_string(),
        })?;
        if from > st.indexed_head {
            let skip = usize::try_from(from.0 - st.indexed_head.0 - 1).unwrap_or(usize::MAX);
            let take = usize::try_from(to.0 - from.0 + 1).unwrap_or(usize::MAX);
            return Ok(st.recent.iter().skip(skip).take(take).copied().collect());
        }
        let indexed = st.indexed_head;
        let end = to.min(indexed);
        drop(cat);
        let mut locations = Vec::with_capacity(usize::try_from(end.0 - from.0 + 1).unwrap_or(0));
        let mut expect = from;
        for (version, location) in self.meta.index_range_cached(id, from, end, indexed)? {
            if version != expect {
                break;
            }
            locations.push(location);
            expect = Version(expect.0 + 1);
        }
        if expect <= end {
            return Err(Error::IndexMismatch {
                stream: id.0,
                version: expect,
                reason: "the index has no entry".into(),
            });
        }
        Ok(locations)
    }

    /// Calls `f` with the payload of each of stream `id`'s events `from..=to` (which must
    /// exist), in order, straight from the read buffer or the segment's map: what a view
    /// replays. Records close together are read with one `pread`.
    pub(crate) fn for_each_payload(
        &self,
        id: StreamId,
        from: Version,
        to: Version,
        mut f: impl FnMut(&[u8]),
    ) -> Result<()> {
        let mut next = from;
        while next <= to {
            let chunk_end = Version(to.0.min(next.0 + READ_CHUNK - 1));
            let locations = self.locations_of(id, next, chunk_end)?;
            if locations.is_empty() {
                return Err(Error::IndexMismatch {
                    stream: id.0,
                    version: next,
                    reason: "the stream has no such event".into(),
                });
            }
            let mut version = next;
            let mut mismatch = None;
            self.log.read_many_with(&locations, |record| {
                if mismatch.is_some() {
                    return;
                }
                let header = record.header;
                match check_record(id, version, header.stream, header.version, header.lsn) {
                    Ok(()) => f(record.payload),
                    Err(e) => mismatch = Some(e),
                }
                version = Version(version.0 + 1);
            })?;
            if let Some(e) = mismatch {
                return Err(e);
            }
            next = Version(next.0 + locations.len() as u64);
        }
        Ok(())
    }
}

impl Iterator for ReadIter<'_> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        if self.failed || self.next > self.last {
            return None;
        }
        if self.pending.is_empty()
            && let Err(e) = self.fill()
        {
            self.failed = true;
            return Some(Err(e));
        }
        let event = self.pending.pop_front()?;
        self.next = Version(event.version.0 + 1);
        Some(Ok(event))
    }
}

/// Iterator over all events in log order, from [`Engine::events_from`].
#[derive(Debug)]
pub struct GlobalIter<'a> {
    inner: LogIter<'a>,
}

impl Iterator for GlobalIter<'_> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        loop {
            match self.inner.next()? {
                Ok(record) if record.header.kind == RecordKind::Event => {
                    return Some(Ok(Event {
                        stream: record.header.stream,
                        version: record.header.version,
                        lsn: record.header.lsn,
                        timestamp_us: record.header.timestamp_us,
                        durability: record.header.class.into(),
                        payload: record.payload,
                    }));
                }
                Ok(_) => {}
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}
