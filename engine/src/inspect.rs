//! Looking inside a running engine: its directory, what opening it did, the log's segments and
//! positions, background errors, latency histograms. [`Inspect`] is the public face, from
//! [`Engine::inspect`]; nothing here changes the store.

use std::path::Path;

use helios_log::{Lsn, Position, SegmentInfo, Version};

use crate::Engine;
use crate::engine::lock;
use crate::error::Result;
use crate::metrics::MetricsSnapshot;
use crate::open::OpenReport;

/// Introspection of an engine, from [`Engine::inspect`]: what operators and tests look at, not
/// what an application needs to read or write events.
#[derive(Clone, Copy, Debug)]
pub struct Inspect<'e> {
    engine: &'e Engine,
}

impl Engine {
    /// Introspection: the directory, the open report, the log's segments and positions,
    /// background errors and latency histograms.
    #[must_use]
    pub fn inspect(&self) -> Inspect<'_> {
        Inspect { engine: self }
    }
}

impl<'e> Inspect<'e> {
    /// The store's directory.
    #[must_use]
    pub fn dir(&self) -> &'e Path {
        &self.engine.inner.dir
    }

    /// What opening found and repaired.
    #[must_use]
    pub fn open_report(&self) -> &'e OpenReport {
        &self.engine.inner.open_report
    }

    /// Latency histograms of every operation and class, and the events replayed per view,
    /// since open (or the last [`Inspect::reset_metrics`]).
    #[must_use]
    pub fn metrics(&self) -> MetricsSnapshot {
        self.engine.inner.metrics.snapshot()
    }

    /// Empties every histogram.
    pub fn reset_metrics(&self) {
        self.engine.inner.metrics.reset();
    }

    /// The log's segments, oldest first.
    ///
    /// # Errors
    /// I/O errors.
    pub fn segments(&self) -> Result<Vec<SegmentInfo>> {
        Ok(self.engine.inner.log.segments()?)
    }

    /// Where the log ends now: the last record appended (durable or not), its segment, and
    /// the byte offset just past it.
    #[must_use]
    pub fn log_end(&self) -> Position {
        self.engine.inner.log.end()
    }

    /// The last LSN known to be on stable storage: every record up to it survives a crash.
    #[must_use]
    pub fn durable_lsn(&self) -> Lsn {
        self.engine.inner.log.synced_lsn()
    }

    /// The last LSN appended, durable or not.
    #[must_use]
    pub fn last_lsn(&self) -> Lsn {
        self.engine.inner.log.appended_lsn()
    }

    /// The log's bytes that no live stream can read any more: the events of deleted streams,
    /// except those a live fork still shares. The log is append-only, so they stay on disk
    /// until a compaction reclaims them (none does yet). Reads the index of every dead event,
    /// so it costs time in proportion to them.
    ///
    /// # Errors
    /// Index errors.
    pub fn dead_bytes(&self) -> Result<DeadBytes> {
        let inner = &self.engine.inner;
        let (streams, reachable) = {
            let catalog = lock(&inner.catalog);
            let streams: Vec<_> = catalog
                .iter()
                .map(|(id, st)| (id, st.head, st.fork, st.deleted.is_some()))
                .collect();
            (streams, catalog.reachable())
        };
        let mut dead = DeadBytes::default();
        for &(id, head, fork, deleted) in &streams {
            dead.deleted_streams += u64::from(deleted);
            let own_first = fork.map_or(1, |f| f.at.0 + 1);
            let index = usize::try_from(id.0 - 1).unwrap_or(usize::MAX);
            let reachable = reachable.get(index).copied().unwrap_or(Version::ZERO);
            let mut next = Version(own_first.max(reachable.0 + 1));
            while next <= head {
                let (_, locations) = inner.locations_of(id, next, head)?;
                if locations.is_empty() {
                    break;
                }
                dead.events += locations.len() as u64;
                dead.bytes += locations
                    .iter()
                    .map(|l| u64::from(l.frame_len_bytes))
                    .sum::<u64>();
                next = Version(next.0 + locations.len() as u64);
            }
        }
        Ok(dead)
    }

    /// The first error a background thread (the flusher, the segment preallocator or the
    /// checkpoint builder) met, if any. A failed sync also poisons the log, so appends report
    /// it too; a failed checkpoint build only makes views replay more.
    #[must_use]
    pub fn background_error(&self) -> Option<String> {
        lock(&self.engine.inner.last_flush_error).clone()
    }
}

/// The log's bytes no live stream can read, from [`Inspect::dead_bytes`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeadBytes {
    /// Streams deleted.
    pub deleted_streams: u64,
    /// Events no live stream reads (of deleted streams, not shared with a live fork).
    pub events: u64,
    /// Their records' bytes in the log (frames: headers and payloads).
    pub bytes: u64,
}
