//! Background threads.

use std::sync::atomic::Ordering;
use std::time::Duration;

use helios_log::{StreamId, Version};

use crate::catalog::Catalog;
use crate::engine::{Inner, lock};
use crate::error::{Error, Result};

/// How often the preallocator checks whether the active segment needs a spare.
const PREALLOCATOR_POLL_MS: u64 = 5;

#[derive(Debug, Default)]
pub(crate) struct FlusherSignal {
    pub(crate) wake: bool,
    pub(crate) shutdown: bool,
}

#[derive(Debug, Default)]
pub(crate) struct BuilderSignal {
    /// Streams whose indexed head moved since the builder last looked.
    pub(crate) queue: Vec<StreamId>,
    pub(crate) wake: bool,
    pub(crate) shutdown: bool,
}

impl Inner {
    pub(crate) fn wake_flusher(&self) {
        lock(&self.signal).wake = true;
        self.signal_cv.notify_one();
    }

    pub(crate) fn flusher_loop(&self) {
        let window = Duration::from_millis(self.options.write_behind.sync_window_ms);
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

    pub(crate) fn record_background_error(&self, error: &Error) {
        let mut slot = lock(&self.last_flush_error);
        if slot.is_none() {
            *slot = Some(error.to_string());
        }
    }

    /// Keeps a zero-filled spare segment ready once the active one is a quarter full. Runs on
    /// its own thread: writing 64 MiB of zeros takes long enough (100-300 ms measured under
    /// load) that doing it on the flusher would hold normal appends unsynced past their window,
    /// and doing it at the roll would stall the append that rolls.
    pub(crate) fn preallocator_loop(&self) {
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

    /// Syncs the log (if asked), moves each stream's durable head up to what is now synced
    /// (queueing the streams for the checkpoint builder), and indexes the sealed segments the
    /// last durable batch covers (see [`Inner::index_sealed_segments`]).
    ///
    /// Nothing else is recorded: an open finds each stream's head in the catalog snapshot and
    /// the log after it, and what was durable in the log's published end.
    ///
    /// The background flusher passes `sync_log = false` when only critical appends happened
    /// since its last round: their own group commit syncs them, and a flusher joining the group
    /// would only make the group look bigger than the appenders are.
    pub(crate) fn flush_round(&self, sync_log: bool) -> Result<()> {
        let _round = lock(&self.flush_lock);
        let synced = if sync_log && self.log.appended_lsn() > self.log.synced_lsn() {
            self.log.sync_all()?
        } else {
            self.log.synced_lsn()
        };
        let mut advanced: Vec<StreamId> = Vec::new();
        let durable_end = {
            let mut cat = lock(&self.catalog);
            let mut durable_end = None;
            while cat.batch_ends.front().is_some_and(|l| l.lsn <= synced) {
                durable_end = cat.batch_ends.pop_front();
            }
            let Some(durable_end) = durable_end else {
                return Ok(());
            };
            let dirty = std::mem::take(&mut cat.dirty);
            for id in dirty {
                let Some(st) = cat.get_mut(id) else { continue };
                let durable = st.recent.partition_point(|l| l.lsn <= synced);
                let durable_head = Version(st.indexed_head.0 + durable as u64);
                if durable_head > st.durable_head {
                    st.durable_head = durable_head;
                    advanced.push(id);
                }
                st.dirty = false;
                if st.head > durable_head {
                    cat.mark_dirty(id);
                }
            }
            durable_end
        };
        self.queue_for_checkpoints(advanced);
        self.index_sealed_segments(durable_end.lsn)
    }

    /// Has the log index every sealed segment whose records are all at or below `through`
    /// (durable: an open then starts reading the log after them), and drops their
    /// locations from memory. Costs nothing when no segment was sealed since the last call;
    /// after a roll, one read of the sealed segment and one index file written.
    pub(crate) fn index_sealed_segments(&self, through: helios_log::Lsn) -> Result<()> {
        let before = self.log.indexed_through();
        let indexed = self.log.index_sealed(through, true)?;
        if let Some(first) = indexed.damaged.first() {
            self.record_background_error(&Error::Log(helios_log::LogError::corrupt(
                self.log
                    .dir()
                    .join(helios_log::segment_index::index_name(first.segment)),
                0,
                format!("{first}; rebuilt from its segment"),
            )));
        }
        let Some(through) = indexed.through else {
            return Ok(());
        };
        if before == Some(through)
            && lock(&self.snapshot_through).is_some_and(|w| w.lsn >= through.lsn)
        {
            return Ok(());
        }
        // The snapshot is taken right after the drain, under the same lock: each stream's
        // indexed head is then its head at `through`.
        let Some(snapshot) = self.encode_snapshot(through, false)? else {
            return Ok(());
        };
        let mut written = lock(&self.snapshot_through);
        // Never back: a snapshot a clean close took inside the segment then active (see
        // `index_active_segment`) is past every sealed segment until that one is indexed.
        if written.is_none_or(|w| w.lsn < through.lsn) {
            crate::catalog_snapshot::write(self.plugins.storage.as_ref(), &self.dir, &snapshot)?;
            *written = Some(through);
            self.snapshot_stale.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// A clean close's last step: indexes the active segment up to its last record and takes
    /// the catalog snapshot there, so that the next open reads no record of the log (it reads
    /// the records past the snapshot, as after a crash, only when this is missing). Skipped
    /// when the records past the current snapshot are fewer bytes than the snapshot: reading
    /// them at each open then costs less than writing every stream again now (a command-line
    /// append of a few events to a store of 100,000 streams).
    ///
    /// With `packs_synced` (the builder has stopped and its checkpoints are durable), the
    /// snapshot lists only the streams still due.
    pub(crate) fn index_active_segment(&self, packs_synced: bool) -> Result<()> {
        if let Some(damage) = lock(&self.catalog).damage() {
            return self.remove_damaged_snapshot(&damage);
        }
        let tail = self.log.active_bytes_after(*lock(&self.snapshot_through));
        let snapshot = self
            .plugins
            .storage
            .open_read_only(&self.dir.join(crate::catalog_snapshot::CATALOG_FILE))
            .and_then(|f| f.len())
            .unwrap_or(0);
        let stale = self.snapshot_stale.load(Ordering::Acquire);
        let through = match *lock(&self.snapshot_through) {
            // Nothing after the snapshot: a stale one is written again at its own record.
            Some(at) if tail == 0 && stale => at,
            _ if tail == 0 || (tail < snapshot && !stale) => return Ok(()),
            _ => match self.log.write_tail_index()? {
                Some(through) => through,
                None => return Ok(()),
            },
        };
        let Some(snapshot) = self.encode_snapshot(through, packs_synced)? else {
            return Ok(());
        };
        crate::catalog_snapshot::write(self.plugins.storage.as_ref(), &self.dir, &snapshot)?;
        *lock(&self.snapshot_through) = Some(through);
        self.snapshot_stale.store(false, Ordering::Release);
        Ok(())
    }

    /// The catalog snapshot at `through` (each stream's indexed head is its head there: taken
    /// right after the drain, under the same lock), or `None` when the snapshot the catalog
    /// reads in place has a damaged block: what it held cannot be read, so no snapshot is
    /// written from it; the old one is removed instead (the next open reads the log) and the
    /// damage recorded as a background error.
    fn encode_snapshot(
        &self,
        through: helios_log::Location,
        packs_synced: bool,
    ) -> Result<Option<Vec<u8>>> {
        let (snapshot, damage) = {
            let mut cat = lock(&self.catalog);
            cat.drain_indexed(through);
            let due = self.maybe_due(&cat, packs_synced);
            let bytes =
                crate::catalog_snapshot::encode(&cat, self.store_id, through, &due, self.config);
            (bytes, cat.damage())
        };
        let Some(damage) = damage else {
            return Ok(Some(snapshot));
        };
        self.remove_damaged_snapshot(&damage)?;
        Ok(None)
    }

    /// Removes `CATALOG`, found damaged where it was read (`damage`, recorded as a background
    /// error): no snapshot is written from it, and the next open reads the log instead.
    fn remove_damaged_snapshot(&self, damage: &Error) -> Result<()> {
        self.record_background_error(damage);
        self.snapshot_stale.store(true, Ordering::Release);
        self.remove_stale_snapshot()
    }

    /// Removes a stale catalog snapshot (see `Inner::snapshot_stale`): the next open reads the
    /// whole log unless this writer writes a new one first (it does at its first chance).
    pub(crate) fn remove_stale_snapshot(&self) -> Result<()> {
        if !self.snapshot_stale.load(Ordering::Acquire) {
            return Ok(());
        }
        let path = self.dir.join(crate::catalog_snapshot::CATALOG_FILE);
        match self.plugins.storage.remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Log(helios_log::LogError::Io {
                    op: "remove",
                    path,
                    source: e,
                }));
            }
        }
        self.plugins
            .storage
            .sync_dir(&self.dir)
            .map_err(|e| helios_log::LogError::Io {
                op: "fsync directory",
                path: self.dir.clone(),
                source: e,
            })?;
        *lock(&self.snapshot_through) = None;
        Ok(())
    }

    /// The streams a catalog snapshot lists as maybe having a checkpoint due: those the open
    /// found due and those `cat` holds in memory (every stream changed since the open, or since
    /// the snapshot it started from). With `check`, only those still due.
    fn maybe_due(&self, cat: &Catalog, check: bool) -> std::collections::BTreeSet<StreamId> {
        let mut due = lock(&self.due).clone();
        due.extend(cat.in_memory_ids());
        if check {
            due.retain(|&id| cat.get(id).is_some_and(|st| self.store.is_due(id, &st)));
        }
        due
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
        queue.extend(self.store.take_found_due());
        queue.sort_unstable();
        queue.dedup();
        queue
    }

    /// Does ahead of the first reads of each stream what they would otherwise do: maps and
    /// checks the segment indexes, and maps into this process the pages of the catalog
    /// snapshot, the pack indexes and the packs that the page cache holds (nothing is read from
    /// the disk). A first read of a stream then takes no page fault in those files (a few
    /// microseconds each; at 100,000 streams the slowest 2% of first loads took about five).
    /// About 20 ms per GiB mapped (a 225 MiB pack: 4.3 ms), on the builder's thread after
    /// open, so a long-lived writer gets it and a short-lived reader (`helios get`) does not
    /// pay for it. Stops when the engine closes, within one 16 MiB chunk or one segment
    /// index's check.
    pub(crate) fn warm_up(&self) {
        let closing = || lock(&self.builder_signal).shutdown;
        let snapshot = lock(&self.catalog).snapshot_bytes();
        if snapshot.is_none_or(|bytes| bytes.map_resident(&closing))
            && self.store.map_resident(&closing)
        {
            self.log.warm_indexes(&closing);
        }
    }

    /// The checkpoint builder's thread: a round whenever the flusher indexes events or a
    /// damaged checkpoint is found, and every second in case a round failed. It warms the
    /// store's maps first ([`Inner::warm_up`]).
    pub(crate) fn builder_loop(&self) {
        self.warm_up();
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
            // Dead checkpoint bytes (a rebuild, damage, deleted streams at open): reclaim the
            // packs that are mostly dead, between rounds, so appends never wait for it.
            if self.store.take_dead_news()
                && let Err(e) = self.store.compact()
            {
                self.record_background_error(&e);
            }
        }
    }
}
