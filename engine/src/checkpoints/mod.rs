//! The checkpoint subsystem: the packs checkpoints are appended to (`packs.rs`), the store
//! that catalogs them and hands out validated checkpoints (`store.rs`), the background builder
//! that writes them (`build.rs`), and the read path that stacks them under a short replay
//! (`view.rs`). [`Checkpoints`] is its public face, from
//! [`Engine::checkpoints`](crate::Engine::checkpoints).

use std::path::PathBuf;

use helios_log::Version;

use crate::Engine;
use crate::engine::lock;
use crate::error::Result;

mod ancestry;
mod build;
mod machines;
mod packs;
pub(crate) mod recorded_policy;
mod store;
mod verify;
mod view;

pub(crate) use build::Builder;
pub use build::StalledStream;
pub(crate) use packs::migrate_checkpoint_files;
pub use store::CheckpointOpenReport;
pub(crate) use store::{CHECKPOINT_DIR, Opened, Store, StoreSizes, StreamAtOpen, StreamsAtOpen};
pub use store::{COMPACT_MIN_DEAD_BYTES, CompactReport};
pub(crate) use verify::verify_packs;

/// One checkpoint of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The version whose state it holds (as a full state or a delta).
    pub version: Version,
    /// Its level: 1 is the finest; the policy's top level and the anchor (the first
    /// checkpoint, see [`crate::LevelPolicy::anchor`]) hold full states.
    pub level: u32,
    /// For a delta, the version of the layer it is a delta against; for a full state, 0.
    pub base: Version,
    /// Its length in bytes (header and archive).
    pub len_bytes: u64,
    /// The pack file it is in.
    pub pack: PathBuf,
    /// Its offset in the pack.
    pub offset: u64,
}

/// Checkpoints, packs and work done, for the whole store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Checkpoints in the catalog.
    pub count: u64,
    /// Their total length.
    pub bytes: u64,
    /// Checkpoints and bytes per level, index 0 for level 1.
    pub by_level: Vec<LevelStats>,
    /// Checkpoints and bytes of the full states written after heavy events (level 0, see
    /// [`crate::CheckpointOptions::heavy_event_keys`]), counted in `count` and `bytes` too.
    pub after_heavy_events: LevelStats,
    /// Pack files.
    pub packs: u64,
    /// Their total length: the checkpoints' bytes, plus pack headers, alignment and the bytes
    /// of checkpoints no longer in the catalog (superseded, damaged, or of deleted streams).
    pub pack_bytes: u64,
    /// Checkpoints written since open (built forward from the head state).
    pub written: u64,
    /// Checkpoints rebuilt since open because they were missing or damaged.
    pub rebuilt: u64,
    /// Damaged checkpoints found since open (each is then rebuilt).
    pub damaged: u64,
    /// Streams whose checkpoints stopped at an event their state machine refused. Views
    /// of those streams at or past that event fail with [`Error::Replay`](crate::Error::Replay).
    pub stalled: Vec<StalledStream>,
}

/// What [`Checkpoints::build`] leaves: the work done since open, and what stopped it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildReport {
    /// Checkpoints written since open (built forward from the head state).
    pub written: u64,
    /// Checkpoints rebuilt since open because they were missing or damaged.
    pub rebuilt: u64,
    /// Damaged checkpoints found since open (each is then rebuilt).
    pub damaged: u64,
    /// Streams whose checkpoints stopped at an event their state machine refused.
    pub stalled: Vec<StalledStream>,
}

/// Checkpoints and bytes of one level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelStats {
    /// Checkpoints of this level.
    pub count: u64,
    /// Their total length.
    pub bytes: u64,
}

/// The checkpoints of an engine: building them now, their files, and the work done. From
/// [`Engine::checkpoints`].
#[derive(Clone, Copy, Debug)]
pub struct Checkpoints<'e> {
    engine: &'e Engine,
}

impl Engine {
    /// The checkpoint subsystem: build due checkpoints now, list a stream's, count them.
    #[must_use]
    pub fn checkpoints(&self) -> Checkpoints<'_> {
        Checkpoints { engine: self }
    }
}

impl Checkpoints<'_> {
    /// The level policy this open uses: the options', or the one the store records (see
    /// [`crate::CheckpointOptions::policy`]).
    #[must_use]
    pub fn policy(&self) -> crate::LevelPolicy {
        *self.engine.inner.store.policy()
    }

    /// Makes every append durable and indexed, then builds every checkpoint due up to each
    /// stream's head and rebuilds every missing or damaged one, on the caller's thread. When
    /// it returns, a view of any version replays at most `fanout - 1` events.
    ///
    /// # Errors
    /// Log, metadata and checkpoint I/O errors; a state machine that rejects an event.
    pub fn sync(&self) -> Result<CheckpointStats> {
        self.engine.inner.check_writable("building checkpoints")?;
        // Every stream with a checkpoint due, listed or not: a writer that takes each stream's
        // checkpoints in at its first use knows only those the catalog snapshot listed (and
        // finds those whose checkpoints were lost at their first use).
        let inner = &self.engine.inner;
        let due: Vec<helios_log::StreamId> = {
            let cat = lock(&inner.catalog);
            cat.iter()
                .filter(|(id, st)| inner.store.is_due(*id, st))
                .map(|(id, _)| id)
                .collect()
        };
        inner.queue_for_checkpoints(due);
        self.build()?;
        Ok(self.stats())
    }

    /// Builds the checkpoints the builder knows are due (every stream a writer changed, or found
    /// due at open or at its first use) and rebuilds the missing or damaged ones found, on the
    /// caller's thread: [`Checkpoints::sync`] without its look at every stream and its
    /// statistics. Costs what it builds, not what the store holds (a command-line append to a
    /// store of many streams).
    ///
    /// # Errors
    /// As [`Checkpoints::sync`].
    pub fn build(&self) -> Result<BuildReport> {
        self.engine.inner.check_writable("building checkpoints")?;
        self.engine.sync()?;
        let inner = &self.engine.inner;
        let mut builder = lock(&inner.builder);
        while inner.checkpoint_round(&mut builder)? {}
        drop(builder);
        Ok(BuildReport {
            written: inner.store.written(),
            rebuilt: inner.store.rebuilt(),
            damaged: inner.store.damaged(),
            stalled: lock(&inner.stalled).clone(),
        })
    }

    /// Reclaims the packs whose bytes are mostly dead (see [`CompactReport`]): their live
    /// checkpoints are copied to the active pack and their files removed. The builder does
    /// this by itself after its rounds; this does it now, on the caller's thread.
    ///
    /// # Errors
    /// Checkpoint I/O errors (the packs are then as before, or hold both copies of what was
    /// being moved: the next open keeps the newest).
    pub fn compact(&self) -> Result<CompactReport> {
        self.engine.inner.check_writable("compacting checkpoints")?;
        let inner = &self.engine.inner;
        let _builder = lock(&inner.builder);
        // The catalog snapshot may count on checkpoints this configuration does not keep.
        inner.remove_stale_snapshot()?;
        inner.store.compact()
    }

    /// The checkpoints in the catalog, the packs, and the work done since open.
    #[must_use]
    pub fn stats(&self) -> CheckpointStats {
        let inner = &self.engine.inner;
        let mut stats = inner.store.stats();
        stats.stalled = lock(&inner.stalled).clone();
        stats
    }

    /// The checkpoints of `stream`, by version.
    ///
    /// # Errors
    /// [`crate::Error::UnknownStream`].
    pub fn of_stream(&self, stream: &str) -> Result<Vec<CheckpointInfo>> {
        let inner = &self.engine.inner;
        let id = self.engine.known_stream(&lock(&inner.catalog), stream)?;
        Ok(inner.store.list(id))
    }
}

impl Engine {
    /// Asks the kernel to drop the cached pages of every checkpoint pack and every log
    /// segment (`madvise(MADV_DONTNEED)` on the maps, then `posix_fadvise(DONTNEED)` on the
    /// files), so that the next reads come from the disk. For cold-read benchmarks; the maps
    /// stay valid. Only with the `bench-hooks` cargo feature.
    ///
    /// # Errors
    /// I/O errors from the advice calls.
    #[cfg(feature = "bench-hooks")]
    pub fn evict_cached_pages(&self) -> Result<()> {
        self.inner.store.evict_pages()?;
        self.inner.log.evict_cached_pages()?;
        Ok(())
    }
}
