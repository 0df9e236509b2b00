//! Writes: appends of events, and the catalog records that create, fork and delete streams.
//!
//! Invariant: a stream's version order is its LSN order: versions are assigned and the log
//! append happens under the catalog lock. A catalog record is applied to the in-memory catalog
//! by [`Catalog::apply`], the same code recovery runs on it, so the two cannot disagree.

use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use helios_log::{
    Lsn, NewRecord, RecordClass, RecordHeader, RecordKind, RecordRef, StreamId, Version,
};

use crate::catalog::{Catalog, NewStream, encode_fork, validate_name};
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
        let cat = lock(&self.inner.catalog);
        if let Some(id) = cat.lookup_checked(name)? {
            return Ok(id);
        }
        let id = cat.next_id();
        self.append_catalog_record(
            cat,
            NewRecord {
                stream: id,
                version: Version::ZERO,
                kind: RecordKind::CreateStream,
                payload: name.as_bytes(),
            },
        )?;
        Ok(id)
    }

    /// Creates stream `target` as a fork of `source` at version `at` (0 for an empty history):
    /// versions `1..=at` of `target` are `source`'s, shared rather than copied (reads, views
    /// and checkpoints of those versions are the source's), and `target`'s own events start at
    /// `at + 1`. Durable when it returns (one critical record, which also makes every earlier
    /// record durable). A fork keeps its history when its source is later deleted.
    ///
    /// # Errors
    /// [`Error::UnknownStream`] for `source`, [`Error::VersionPastHead`] when `at` is past its
    /// head, [`Error::StreamExists`] when `target` exists, an invalid name, log errors.
    pub fn fork_stream(&self, source: &str, at: Version, target: &str) -> Result<StreamId> {
        validate_name(target)?;
        let cat = lock(&self.inner.catalog);
        let source_id = self.known_stream(&cat, source)?;
        let head = cat.get(source_id).map_or(Version::ZERO, |st| st.head);
        if at > head {
            return Err(Error::VersionPastHead {
                stream: source.to_owned(),
                version: at,
                head,
            });
        }
        if cat.lookup_checked(target)?.is_some() {
            return Err(Error::StreamExists {
                stream: target.to_owned(),
            });
        }
        let id = cat.next_id();
        let payload = encode_fork(source_id, target);
        self.append_catalog_record(
            cat,
            NewRecord {
                stream: id,
                version: at,
                kind: RecordKind::ForkStream,
                payload: &payload,
            },
        )?;
        Ok(id)
    }

    /// Deletes `stream`, durably (one critical record): its name is unknown from now on and
    /// after any reopen, a later append under the name starts a new stream, and its branches
    /// are discarded. The log is append-only: its events stay on disk (and readable by the
    /// streams forked from it) until a retention feature reclaims them.
    ///
    /// # Errors
    /// [`Error::UnknownStream`], log errors.
    pub fn delete_stream(&self, stream: &str) -> Result<()> {
        let cat = lock(&self.inner.catalog);
        let id = self.known_stream(&cat, stream)?;
        let head = cat.get(id).map_or(Version::ZERO, |st| st.head);
        self.append_catalog_record(
            cat,
            NewRecord {
                stream: id,
                version: head,
                kind: RecordKind::DeleteStream,
                payload: &[],
            },
        )?;
        self.inner.branches.discard_stream(id);
        // Its checkpoints past what live forks share are dead from now on (and so may be its
        // deleted sources' that only it still read): dropped, for compaction to reclaim.
        let unreachable: Vec<(StreamId, Version)> = {
            let cat = lock(&self.inner.catalog);
            let reachable = cat.reachable();
            let mut chain = Vec::new();
            let mut next = Some(id);
            while let Some(current) = next {
                let at = usize::try_from(current.0 - 1).ok();
                if let Some(&version) = at.and_then(|i| reachable.get(i)) {
                    chain.push((current, version));
                }
                next = cat
                    .get(current)
                    .and_then(|st| st.fork)
                    .map(|f| f.source)
                    .filter(|source| source.0 < current.0);
            }
            chain
        };
        let mut dropped = 0;
        for (stream, reachable) in unreachable {
            dropped += self.inner.store.drop_above(stream, reachable.0);
        }
        if dropped > 0 {
            self.inner.wake_builder();
        }
        Ok(())
    }

    /// Appends one catalog record critically, applies it to the catalog exactly as recovery
    /// would, releases the catalog and waits until the record is durable.
    fn append_catalog_record(
        &self,
        mut cat: MutexGuard<'_, Catalog>,
        record: NewRecord<'_>,
    ) -> Result<Lsn> {
        self.inner.check_writable("changing the stream catalog")?;
        let mut locations = std::mem::take(&mut cat.scratch);
        locations.clear();
        let appended = self
            .inner
            .log
            .append(&[record], RecordClass::Critical, &mut locations);
        let lsn = match appended {
            Ok(lsn) => lsn,
            Err(e) => {
                cat.scratch = locations;
                return Err(e.into());
            }
        };
        let location = locations[0];
        cat.scratch = locations;
        let header = RecordHeader {
            lsn,
            stream: record.stream,
            version: record.version,
            timestamp_us: 0,
            batch_left: 0,
            kind: record.kind,
            class: RecordClass::Critical,
        };
        cat.apply(
            &RecordRef {
                header,
                payload: record.payload,
            },
            location,
        )?;
        drop(cat);
        self.inner.log.sync_to(lsn)?;
        Ok(lsn)
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
        self.inner.check_writable("an append")?;
        let mut cat = lock(&self.inner.catalog);
        let (id, head, creating) = match cat.lookup_checked(stream)? {
            Some(id) => (id, cat.get(id).map_or(Version::ZERO, |s| s.head), false),
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
            cat.add_stream(NewStream {
                id,
                name: stream,
                created,
                head: Version::ZERO,
                fork: None,
                deleted: None,
            })?;
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
        self.inner.check_writable("a sync")?;
        let start = self.inner.metrics.start();
        self.inner.flush_round(true)?;
        self.inner.metrics.finish(crate::Metric::Sync, start);
        Ok(self.inner.log.synced_lsn())
    }
}
