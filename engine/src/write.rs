//! Appends.

use std::sync::atomic::Ordering;

use helios_log::{Lsn, NewRecord, RecordClass, RecordKind, StreamId, Version};

use crate::catalog::validate_name;
use crate::class::Durability;
use crate::engine::{Engine, lock};
use crate::error::{Error, Result};

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

impl Engine {
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
    /// buffered write, synced within [`WriteBehindOptions::sync_window_ms`](crate::WriteBehindOptions::sync_window_ms).
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
                         Branches::fork and Branches::append",
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

    /// [`Engine::append`] of a persistent class; `lineage` records which branch node the new
    /// head is (for promotions), under the same lock as the append.
    pub(crate) fn append_durable<E: AsRef<[u8]>>(
        &self,
        stream: &str,
        events: &[E],
        durability: RecordClass,
        expected: Option<Version>,
        lineage: Option<crate::branches::Lineage>,
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
                if self.inner.log.unsynced_bytes()
                    >= self.inner.options.write_behind.sync_window_bytes
                {
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
}
