//! [`ReadOnly`]: a handle that reads a store and changes nothing in it.
//!
//! It takes no lock and opens no fjall database: it finds every stream in the catalog snapshot
//! and the log after it, and every event through the segment indexes (a missing or damaged one
//! is built in memory; without a usable snapshot it reads the whole log), and reads the
//! checkpoint packs it finds,
//! checking each when first used and reading around a damaged or unreadable one instead of
//! deleting it. A torn tail is left where it is and not read; a store of an older format is
//! read as it is, not migrated. So it reads a store on a read-only file system, a backup, or a
//! damaged store the writer refuses, and never stops a writer from opening the store.
//!
//! Invariant: nothing it does creates, writes, renames or removes a file of the store.

use std::collections::BTreeMap;
use std::ops::RangeBounds;
use std::path::Path;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use helios_log::{Follower, LogError, Lsn, RecordKind, StreamId, Version};
use helios_replay::{Aggregate, View};

use crate::engine::{LOG_DIR, lock};
use crate::error::Result;
use crate::open::Access;
use crate::options::EngineBuilder;
use crate::read::{GlobalIter, ReadIter, StreamInfo, Streams};
use crate::reader::Reader;
use crate::{Checkpoints, Engine, Inspect, Options};

/// A read-only handle on a store (see the module documentation). Its reads are those of
/// [`Engine`], through the same [`Reader`] trait.
///
/// ```
/// # let dir = tempfile::tempdir().expect("temporary directory");
/// use helios::{Durability, Engine, Options, ReadOnly, Version};
/// let engine = Engine::open(dir.path(), Options::default())?;
/// engine.append("s", &["set a 1"], Durability::Critical, None)?;
/// drop(engine);
/// let reader = ReadOnly::open(dir.path(), Options::default())?;
/// assert_eq!(reader.view("s", Version(1))?.get(b"a"), Some(&b"1"[..]));
/// # Ok::<(), helios::Error>(())
/// ```
#[derive(Debug)]
pub struct ReadOnly {
    engine: Engine,
    /// Where [`ReadOnly::refresh`] goes on reading the log; `None` once a refresh failed
    /// halfway (the handle's view of the store is then incomplete: reopen it).
    follower: Mutex<Option<Follower>>,
    /// How often reads refresh the handle by themselves ([`ReadOnly::refresh_every`]), and
    /// when the last such refresh began; `None`: only explicit refreshes.
    auto_refresh: Mutex<Option<(Duration, Instant)>>,
    /// Whether `auto_refresh` is set: reads look at this, not the mutex, when it is not.
    auto_refresh_on: AtomicBool,
}

/// What [`ReadOnly::refresh`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refreshed {
    /// The last LSN the handle had read before.
    pub from: Lsn,
    /// The last LSN it has read now (the writer's published durable end, when it moved).
    pub to: Lsn,
    /// Events among the records read.
    pub events: u64,
}

impl ReadOnly {
    /// Opens the store in `dir` read-only, with the default plug-ins (use
    /// [`EngineBuilder::open_read_only`] to register state machines). `options` set the
    /// checkpoint policy and caches; whatever concerns writing is ignored.
    ///
    /// # Errors
    /// [`crate::Error::NotAStore`] (nothing is created), [`crate::Error::NewerStoreFormat`],
    /// corruption before the log's tail naming the file and offset, I/O errors.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<ReadOnly> {
        Engine::builder(dir).options(options).open_read_only()
    }

    /// Catches up with a writer in another process: reads the records it has made durable
    /// since this handle last read (its open, or the last refresh) and makes them visible to
    /// every read of this handle: new streams, events, heads, forks and deletions. Reads only
    /// up to the end the writer published after its last sync (`log/published-end`), so it
    /// never sees a record a crash could take back. The checkpoints the writer has built for
    /// the new versions are adopted too (found by name), so views of them replay as few events
    /// as the writer's; those of streams this handle has read are validated now, so that no
    /// view pays for a first read of them. Those it has not built yet are looked for at the
    /// next refresh, and views meanwhile replay from older ones (exact, and reported in the
    /// view's report). Reads the store's files directly, whatever storage the handle was
    /// opened with.
    ///
    /// # Errors
    /// Damage below the published end, I/O errors. After an error the handle refuses further
    /// refreshes (what it read is incomplete): open a new one.
    pub fn refresh(&self) -> Result<Refreshed> {
        let inner = &self.engine.inner;
        let mut guard = lock(&self.follower);
        let Some(follower) = guard.as_mut() else {
            return Err(crate::Error::Log(LogError::Poisoned {
                cause: "an earlier refresh of this read-only handle failed; open a new one".into(),
            }));
        };
        let from = follower.position().lsn;
        let mut events = 0;
        let mut failure = None;
        let mut touched = std::collections::HashSet::new();
        // Under the catalog lock until the log can read what the catalog now points at.
        let mut catalog = lock(&inner.catalog);
        let polled = follower.poll(&mut |record, location| {
            if failure.is_none() {
                match catalog.apply(&record, location) {
                    Ok(()) if record.header.kind == RecordKind::Event => {
                        events += 1;
                        touched.insert(record.header.stream);
                    }
                    Ok(()) => {}
                    Err(e) => failure = Some(e),
                }
            }
        });
        let heads: Vec<(StreamId, Version)> = touched
            .iter()
            .filter_map(|&id| catalog.get(id).map(|st| (id, st.head)))
            .collect();
        let to = follower.position();
        let advanced = match polled {
            Ok(_) if to.lsn > from => inner.log.advance_read_only(to).map_err(crate::Error::from),
            Ok(_) => Ok(()),
            Err(e) => Err(e.into()),
        };
        drop(catalog);
        if let Some(e) = failure.map(Err).unwrap_or(advanced).err() {
            *guard = None;
            return Err(e.damage_in(inner.dir.as_path()));
        }
        drop(guard);
        if to.lsn > from {
            // Segments the writer sealed and indexed since: their locations leave memory.
            let before = inner.log.indexed_through();
            let indexed = inner.log.index_sealed(to.lsn, false)?;
            if let Some(through) = indexed.through
                && before != Some(through)
            {
                lock(&inner.catalog).drain_indexed(through);
            }
        }
        if !heads.is_empty() {
            let catalog = lock(&inner.catalog);
            inner.store.catch_up(&|id| {
                let st = catalog.get(id)?;
                Some((st.head.0, inner.plugins.machine_for(st.name).name()))
            })?;
        }
        Ok(Refreshed {
            from,
            to: to.lsn,
            events,
        })
    }

    /// Makes every read of this handle (`head`, `stream`, `streams`, `read`, `events_from`,
    /// `view`, `state_at`, `aggregate_at`) refresh it first when the last such refresh is at
    /// least `interval` old, so that a reader beside a live writer follows it by itself;
    /// `None` (the default) leaves refreshing to [`ReadOnly::refresh`]. A read that refreshes
    /// pays for reading what the writer published since (microseconds when it is a few
    /// records). A failed refresh is the error of the fallible reads; the others (`head`,
    /// `stream`, `streams`) then answer from what the handle has.
    pub fn refresh_every(&self, interval: Option<Duration>) {
        let mut auto = lock(&self.auto_refresh);
        *auto = interval.map(|every| (every, Instant::now()));
        self.auto_refresh_on
            .store(auto.is_some(), Ordering::Release);
    }

    /// The refresh [`ReadOnly::refresh_every`] asks for, when it is due.
    fn catch_up(&self) -> Result<()> {
        if !self.auto_refresh_on.load(Ordering::Acquire) {
            return Ok(());
        }
        {
            let mut auto = lock(&self.auto_refresh);
            match auto.as_mut() {
                Some((every, last)) if last.elapsed() >= *every => *last = Instant::now(),
                _ => return Ok(()),
            }
        }
        self.refresh().map(|_| ())
    }

    /// Whether a writer holds the store now (a process has it open for writing). Looks at the
    /// store's lock without taking it, and without creating the lock file.
    #[must_use]
    pub fn writer_holds_the_store(&self) -> bool {
        writer_holds(self.engine.inspect().dir())
    }

    /// The store's files, the open report and latency histograms.
    #[must_use]
    pub fn inspect(&self) -> Inspect<'_> {
        self.engine.inspect()
    }

    /// The checkpoint files found and read; building them needs a writer
    /// ([`Checkpoints::sync`] returns [`crate::Error::ReadOnly`]).
    #[must_use]
    pub fn checkpoints(&self) -> Checkpoints<'_> {
        self.engine.checkpoints()
    }

    /// See [`Engine::head`].
    #[must_use]
    pub fn head(&self, stream: &str) -> Option<Version> {
        let _ = self.catch_up();
        self.engine.head(stream)
    }

    /// See [`Engine::stream_name`].
    #[must_use]
    pub fn stream_name(&self, id: StreamId) -> Option<String> {
        self.engine.stream_name(id)
    }

    /// See [`Engine::stream`].
    #[must_use]
    pub fn stream(&self, stream: &str) -> Option<StreamInfo> {
        let _ = self.catch_up();
        self.engine.stream(stream)
    }

    /// See [`Engine::streams`].
    #[must_use]
    pub fn streams(&self) -> Streams<'_> {
        let _ = self.catch_up();
        self.engine.streams()
    }

    /// See [`Engine::read`].
    ///
    /// # Errors
    /// As [`Engine::read`].
    pub fn read(&self, stream: &str, versions: impl RangeBounds<Version>) -> Result<ReadIter<'_>> {
        self.catch_up()?;
        self.engine.read(stream, versions)
    }

    /// See [`Engine::events_from`].
    ///
    /// # Errors
    /// As [`Engine::events_from`].
    pub fn events_from(&self, from: Lsn) -> Result<GlobalIter<'_>> {
        self.catch_up()?;
        self.engine.events_from(from)
    }

    /// See [`Engine::view`].
    ///
    /// # Errors
    /// As [`Engine::view`].
    pub fn view(&self, stream: &str, version: Version) -> Result<View> {
        self.catch_up()?;
        self.engine.view(stream, version)
    }

    /// See [`Engine::state_at`].
    ///
    /// # Errors
    /// As [`Engine::view`].
    pub fn state_at(&self, stream: &str, version: Version) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
        self.catch_up()?;
        self.engine.state_at(stream, version)
    }

    /// See [`Engine::aggregate_at`].
    ///
    /// # Errors
    /// As [`Engine::aggregate_at`].
    pub fn aggregate_at<A: Aggregate>(&self, stream: &str, version: Version) -> Result<A> {
        self.catch_up()?;
        self.engine.aggregate_at(stream, version)
    }
}

impl Reader for ReadOnly {
    fn head(&self, stream: &str) -> Option<Version> {
        ReadOnly::head(self, stream)
    }

    fn stream(&self, stream: &str) -> Option<StreamInfo> {
        ReadOnly::stream(self, stream)
    }

    fn stream_name(&self, id: StreamId) -> Option<String> {
        ReadOnly::stream_name(self, id)
    }

    fn streams(&self) -> Streams<'_> {
        ReadOnly::streams(self)
    }

    fn read(&self, stream: &str, versions: impl RangeBounds<Version>) -> Result<ReadIter<'_>> {
        ReadOnly::read(self, stream, versions)
    }

    fn events_from(&self, from: Lsn) -> Result<GlobalIter<'_>> {
        ReadOnly::events_from(self, from)
    }

    fn view(&self, stream: &str, version: Version) -> Result<View> {
        ReadOnly::view(self, stream, version)
    }
}

impl EngineBuilder {
    /// Opens the store read-only, with this builder's options and plug-ins (its storage and
    /// state machines); see [`ReadOnly`].
    ///
    /// # Errors
    /// As [`ReadOnly::open`].
    pub fn open_read_only(self) -> Result<ReadOnly> {
        let (dir, options, plugins) = self.into_parts();
        let engine = match Engine::open_as(&dir, options.clone(), plugins.clone(), Access::Read) {
            // A writer that took the store during the open (its recovery zeroing a torn tail,
            // its appends) can make the active segment's end look damaged: read again, up to
            // the end it published, past which a reader never reads.
            Err(crate::Error::Damaged { .. }) if writer_holds(&dir) => {
                Engine::open_as(&dir, options, plugins, Access::Read)?
            }
            other => other?,
        };
        let follower = Follower::new(&dir.join(LOG_DIR), engine.inner.log.end());
        Ok(ReadOnly {
            engine,
            follower: Mutex::new(Some(follower)),
            auto_refresh: Mutex::new(None),
            auto_refresh_on: AtomicBool::new(false),
        })
    }
}

/// Whether a process holds the lock of the store in `dir`: looks through a read-only handle of
/// the lock file, without creating it.
pub(crate) fn writer_holds(dir: &Path) -> bool {
    let Ok(file) = std::fs::File::open(dir.join(crate::engine::LOCK_FILE)) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(_)) => false,
    }
}
