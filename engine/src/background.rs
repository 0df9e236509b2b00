//! Background threads.

use std::sync::atomic::Ordering;
use std::time::Duration;

use helios_log::{Location, StreamId, Version};

use crate::engine::{Inner, lock};
use crate::error::{Error, Result};
use crate::meta::{RUN_LEN_MAX, StreamRecord};

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

    /// Syncs the log (if asked) and moves every durable index entry from memory into fjall, with the
    /// recovery point, in one atomic batch.
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
                // A deletion is recorded once its record is durable, like everything else.
                let durable_deletion = st.deleted.filter(|lsn| *lsn <= synced);
                let deletion_due = durable_deletion.is_some() && !st.deletion_persisted;
                if durable > 0 || (!st.persisted && st.created <= synced) || deletion_due {
                    let record = StreamRecord {
                        id,
                        name: st.name.to_string(),
                        head: st.indexed_head,
                        created: st.created,
                        fork: st.fork,
                        deleted: durable_deletion,
                    };
                    moved.push((record, st.recent.iter().take(durable).copied().collect()));
                }
                st.dirty = false;
                let deletion_pending = st.deleted.is_some() && durable_deletion.is_none();
                if st.recent.len() > durable
                    || !(st.persisted || st.created <= synced)
                    || deletion_pending
                {
                    cat.mark_dirty(id);
                }
            }
            recovery_point
        };
        let mut batch = self.meta("indexing")?.batch();
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
                st.deletion_persisted |= record.deleted.is_some();
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
    pub(crate) fn builder_loop(&self) {
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
