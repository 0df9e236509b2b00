//! The engine: streams over the log, the write-behind flusher, the catalog, recovery.
//!
//! Invariants:
//! - The log is written first; everything else describes records that are durable in the log:
//!   a segment is indexed (`log/<segment>.idx`) and the catalog snapshot (`CATALOG`) rewritten
//!   only once the log is synced past the segment's last record, and a checkpoint is built
//!   only up to a stream's durable head. After any crash they describe a prefix of the log.
//! - For every stream, versions `1..=indexed_head` are in the log's segment indexes, and
//!   versions `indexed_head + 1..=head` are in the stream's in-memory `recent` queue, in order.
//!   The flusher drops entries from `recent` only once the segment index holding them is
//!   loaded, so a reader always finds every version in one of the two.
//! - Version order equals LSN order within a stream: versions are assigned and the log append
//!   happens under the same catalog lock.
//! - fjall holds only what changes rarely (the segments known to exist, the checkpoint
//!   machines of a store migrated from format 4): see `meta.rs`. Each checkpoint names the
//!   machine that built it (`checkpoints/machines.rs`).
//!
//! Lock order: `catalog`, then the log's internal locks. The flusher never holds `catalog`
//! while it syncs, indexes or writes fjall.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use helios_log::Log;

use crate::background::{BuilderSignal, FlusherSignal};
use crate::catalog::Catalog;
use crate::checkpoints::Builder;
use crate::checkpoints::Store;
use crate::error::Result;
use crate::meta::Meta;
use crate::open::OpenReport;
use crate::options::{Options, Plugins};

pub(crate) const LOG_DIR: &str = "log";
pub(crate) const META_DIR: &str = "meta";
pub(crate) const LOCK_FILE: &str = "LOCK";

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) plugins: Plugins,
    pub(crate) log: Log,
    /// The fjall metadata of a store that had some (an older store's: see `meta.rs`); `None`
    /// in every store written by this format, and in a read-only engine.
    pub(crate) meta: Option<Meta>,
    /// The store's identity (`STORE-ID`); 0 in a reader of a store without one.
    pub(crate) store_id: u64,
    /// The record the catalog snapshot (`CATALOG`) covers the log up to, as last written.
    pub(crate) snapshot_through: Mutex<Option<helios_log::Location>>,
    pub(crate) catalog: Mutex<Catalog>,
    /// The streams the open found with a checkpoint due: with those the catalog holds in
    /// memory, what each catalog snapshot lists as maybe due (a clean close keeps only those
    /// still due). A leaf lock.
    pub(crate) due: Mutex<std::collections::BTreeSet<helios_log::StreamId>>,
    /// The checkpoint configuration's fingerprint (`Plugins::checkpoint_config`), stamped in
    /// each catalog snapshot.
    pub(crate) config: u64,
    /// The catalog snapshot on disk may list fewer streams as due than are (a writer that
    /// opened without trusting it: another configuration, damage): the close replaces it
    /// whatever its size, and a compaction, which removes checkpoints it may count on, removes
    /// it first.
    pub(crate) snapshot_stale: AtomicBool,
    pub(crate) store: Store,
    pub(crate) branches: crate::branches::BranchTable,
    pub(crate) metrics: crate::metrics::Metrics,
    /// The checkpoint builder's memory; held for a whole round.
    pub(crate) builder: Mutex<Builder>,
    /// The newest log segment recorded in the metadata as existing.
    /// The streams the builder stopped on, as of its last round (readable during a round).
    pub(crate) stalled: Mutex<Vec<crate::StalledStream>>,
    pub(crate) builder_signal: Mutex<BuilderSignal>,
    pub(crate) builder_cv: Condvar,
    pub(crate) signal: Mutex<FlusherSignal>,
    pub(crate) signal_cv: Condvar,
    /// Wakes the preallocator (at shutdown; otherwise it polls).
    pub(crate) prealloc_cv: Condvar,
    /// Serialises flush rounds (the background flusher and explicit syncs).
    pub(crate) flush_lock: Mutex<()>,
    pub(crate) last_flush_error: Mutex<Option<String>>,
    /// Set by normal appends: the flusher must sync the log in its next round.
    pub(crate) normal_pending: AtomicBool,
    pub(crate) open_report: OpenReport,
    /// Whether this is a reader's engine ([`crate::ReadOnly`]): every write is refused.
    pub(crate) read_only: bool,
    /// The store's lock, held by a writer.
    pub(crate) _lock: Option<helios_log::storage::LockGuard>,
}

/// An open Helios store. Share it across threads behind an `Arc` (all methods take `&self`).
/// Dropping it shuts down cleanly: buffered appends are synced and the metadata persisted.
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
    /// The flusher and the segment preallocator (none without background threads).
    pub(crate) threads: Vec<JoinHandle<()>>,
    /// Until shut down.
    pub(crate) open: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Refuses `operation` in a read-only engine.
    pub(crate) fn check_writable(&self, operation: &'static str) -> Result<()> {
        if self.read_only {
            return Err(crate::Error::ReadOnly { operation });
        }
        Ok(())
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under the engine's locks, so a poisoned lock means a bug in the engine
    // that already panicked on another thread; the protected data is still consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Engine {
    /// Shuts down cleanly, reporting any error (dropping does the same and ignores errors).
    ///
    /// # Errors
    /// Log and metadata errors of the final sync.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    pub(crate) fn shutdown(&mut self) -> Result<()> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        {
            let mut signal = lock(&self.inner.signal);
            signal.shutdown = true;
        }
        lock(&self.inner.builder_signal).shutdown = true;
        // A spare segment being written stops at its next step instead of being finished and
        // then removed.
        if !self.inner.read_only {
            self.inner.log.stop_preparing_spare();
        }
        self.inner.signal_cv.notify_all();
        self.inner.prealloc_cv.notify_all();
        self.inner.builder_cv.notify_all();
        for thread in self.threads.drain(..) {
            // The background threads never panic on their own (they record errors instead).
            let _ = thread.join();
        }
        if self.inner.read_only {
            return Ok(()); // A reader has nothing to flush.
        }
        if self.inner.log.is_poisoned() {
            return Ok(());
        }
        self.inner.flush_round(true)?;
        if let Some(meta) = &self.inner.meta {
            meta.persist()?;
        }
        // The builder has stopped: the next open reads the active pack's index, not the pack,
        // and the active segment's index and a catalog snapshot at its end, not its records.
        self.inner.store.index_active_pack();
        // The snapshot lists only the streams still due when every checkpoint the builder
        // wrote is durable: one lost in a crash would make its stream due again.
        let packs_synced = self.inner.store.sync_packs().is_ok();
        self.inner.index_active_segment(packs_synced)?;
        // A closed store keeps no spare segment (the next open would remove it anyway). Best
        // effort: a spare left behind costs only space until that open.
        let _ = self.inner.log.discard_spare();
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Errors here were already reported to the appends they concern (a failed sync
        // poisons the log); nothing acknowledged as durable depends on this final round.
        let _ = self.shutdown();
    }
}
