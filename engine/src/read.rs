//! Reading events back: one stream by version ([`ReadIter`]), the whole log by LSN
//! ([`GlobalIter`]), the stream catalog ([`Streams`]), and how a version is located (the
//! stream's recent appends in memory, or the log's segment indexes).
//!
//! Invariant: every version `1..=head` of a stream is found either in its in-memory `recent`
//! queue (past the indexed head) or in a segment index (up to it); see `background.rs` for the
//! flusher that drops entries from the first once the second holds them.

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};

use helios_log::{
    Location, LogIter, Lsn, OwnedRecord, RecordHeader, RecordKind, RecordRef, StreamId, Version,
};

use crate::catalog::{Catalog, Fork, StreamRef};
use crate::class::Durability;
use crate::engine::{Engine, Inner, lock};
use crate::error::{Error, Result};

const READ_CHUNK: u64 = 256;

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
    /// The event a log record holds (its kind aside), its payload copied: for readers of the
    /// log itself, such as a `helios_log::Follower` in another process.
    #[must_use]
    pub fn from_record(record: RecordRef<'_>) -> Event {
        Event::from_parts(record.header, record.payload.to_vec())
    }

    fn from_parts(header: RecordHeader, payload: Vec<u8>) -> Event {
        Event {
            stream: header.stream,
            version: header.version,
            lsn: header.lsn,
            timestamp_us: header.timestamp_us,
            durability: header.class.into(),
            payload,
        }
    }
}

impl From<OwnedRecord> for Event {
    fn from(record: OwnedRecord) -> Event {
        Event::from_parts(record.header, record.payload)
    }
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
    /// For a fork, where its shared history comes from.
    pub fork: Option<Fork>,
}

pub(crate) fn version_bounds(
    range: &impl RangeBounds<Version>,
    head: Version,
) -> (Version, Version) {
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
    /// The id of `stream`, or [`Error::UnknownStream`] (the catalog snapshot's damage, when it
    /// has a damaged block: the stream may be there).
    pub(crate) fn known_stream(&self, cat: &Catalog, stream: &str) -> Result<StreamId> {
        Self::known(cat, stream).map(|(id, _)| id)
    }

    /// [`Engine::known_stream`] with the stream's state, read once.
    pub(crate) fn known<'c>(cat: &'c Catalog, stream: &str) -> Result<(StreamId, StreamRef<'c>)> {
        cat.resolve_checked(stream)?
            .ok_or_else(|| Error::UnknownStream {
                stream: stream.to_owned(),
            })
    }

    /// The head version of `stream`, or `None` if no such stream exists.
    #[must_use]
    pub fn head(&self, stream: &str) -> Option<Version> {
        let cat = lock(&self.inner.catalog);
        cat.resolve(stream).map(|(_, s)| s.head)
    }

    /// `stream`'s id and head, if it exists.
    #[must_use]
    pub fn stream(&self, stream: &str) -> Option<StreamInfo> {
        let cat = lock(&self.inner.catalog);
        cat.resolve(stream).map(|(id, s)| StreamInfo {
            id,
            name: s.name.to_string(),
            head: s.head,
            fork: s.fork,
        })
    }

    /// The name of stream `id` (deleted streams included), if the store has such a stream:
    /// what turns the ids of [`Engine::events_from`] and [`Engine::subscribe`] into names.
    #[must_use]
    pub fn stream_name(&self, id: StreamId) -> Option<String> {
        lock(&self.inner.catalog)
            .get(id)
            .map(|s| s.name.to_string())
    }

    /// Every live (not deleted) stream, by id, read from the catalog a page at a time (so a
    /// store of a million streams is never copied at once). A stream created while the
    /// iterator runs is included if its id is past the page being read.
    #[must_use]
    pub fn streams(&self) -> Streams<'_> {
        Streams {
            inner: &self.inner,
            next: 1,
            page: VecDeque::new(),
        }
    }

    /// Reads the events of `stream` whose versions fall in `versions` (clamped to `1..=head` as
    /// of this call), in order. Events appended later are not included.
    ///
    /// # Errors
    /// [`Error::UnknownStream`]; the iterator yields log errors (corruption names the file and
    /// offset) and [`Error::IndexMismatch`].
    pub fn read(&self, stream: &str, versions: impl RangeBounds<Version>) -> Result<ReadIter<'_>> {
        let cat = lock(&self.inner.catalog);
        let id = self.known_stream(&cat, stream)?;
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
}

impl Inner {
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
    pub(crate) inner: &'a Inner,
    pub(crate) stream: StreamId,
    pub(crate) next: Version,
    pub(crate) last: Version,
    pub(crate) pending: VecDeque<Event>,
    pub(crate) failed: bool,
}

impl ReadIter<'_> {
    /// Reads the next chunk of events (up to `READ_CHUNK`) into `pending`, close ones with one
    /// read.
    pub(crate) fn fill(&mut self) -> Result<()> {
        let chunk_end = Version(self.last.0.min(self.next.0 + READ_CHUNK - 1));
        let (owner, locations) = self.inner.locations_of(self.stream, self.next, chunk_end)?;
        let events = self
            .inner
            .log
            .read_many_with(&locations, Event::from_record)?;
        for (version, mut event) in (self.next.0..).map(Version).zip(events) {
            check_record(owner, version, event.stream, event.version, event.lsn)?;
            // A version a fork shares is its source's record, read as the fork's.
            event.stream = self.stream;
            self.pending.push_back(event);
        }
        Ok(())
    }
}

/// An [`Error::IndexMismatch`] unless the record found for `stream`'s `version` is that
/// event.
pub(crate) fn check_record(
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
    /// The locations of stream `id`'s versions from `from` on, at most up to `to`, and the
    /// stream whose records they are (`id`, or a fork's source for the versions it shares):
    /// from the stream's recent appends past its indexed head, or from the index up to the
    /// indexed head, or from the source up to the fork point (so possibly fewer than asked;
    /// never none when `from <= to <= head`).
    pub(crate) fn locations_of(
        &self,
        id: StreamId,
        from: Version,
        to: Version,
    ) -> Result<(StreamId, Vec<Location>)> {
        let cat = lock(&self.catalog);
        let st = cat.get(id).ok_or_else(|| Error::UnknownStream {
            stream: id.to_string(),
        })?;
        if let Some(fork) = st.fork
            && from <= fork.at
        {
            drop(cat);
            return self.locations_of(fork.source, from, to.min(fork.at));
        }
        if from > st.indexed_head {
            let skip = usize::try_from(from.0 - st.indexed_head.0 - 1).unwrap_or(usize::MAX);
            let take = usize::try_from(to.0 - from.0 + 1).unwrap_or(usize::MAX);
            return Ok((
                id,
                st.recent.iter().skip(skip).take(take).copied().collect(),
            ));
        }
        let end = to.min(st.indexed_head);
        drop(cat);
        let mut locations = Vec::with_capacity(usize::try_from(end.0 - from.0 + 1).unwrap_or(0));
        let mut expect = from;
        for (version, location) in self.log.locate(id, from, end) {
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
                reason: "no segment index locates it".into(),
            });
        }
        Ok((id, locations))
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
            let (owner, locations) = self.locations_of(id, next, chunk_end)?;
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
                match check_record(owner, version, header.stream, header.version, header.lsn) {
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
    pub(crate) inner: LogIter<'a>,
}

impl Iterator for GlobalIter<'_> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        loop {
            match self.inner.next()? {
                Ok(record) if record.header.kind == RecordKind::Event => {
                    return Some(Ok(record.into()));
                }
                Ok(_) => {}
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

/// Streams read back in pages: at most this many catalog entries are copied under its lock at a
/// time.
const STREAMS_PAGE_LEN: usize = 1024;

/// Iterator over every stream, by id, from [`Engine::streams`].
#[derive(Debug)]
pub struct Streams<'a> {
    inner: &'a Inner,
    /// The id of the next stream to copy from the catalog.
    next: u64,
    page: VecDeque<StreamInfo>,
}

impl Iterator for Streams<'_> {
    type Item = StreamInfo;

    fn next(&mut self) -> Option<StreamInfo> {
        while self.page.is_empty() {
            let cat = lock(&self.inner.catalog);
            let last = cat.len().min(self.next + STREAMS_PAGE_LEN as u64 - 1);
            let mut read = 0;
            for id in (self.next..=last).map(StreamId) {
                read += 1;
                if let Some(s) = cat.get(id)
                    && s.deleted.is_none()
                {
                    self.page.push_back(StreamInfo {
                        id,
                        name: s.name.to_string(),
                        head: s.head,
                        fork: s.fork,
                    });
                }
            }
            if read == 0 {
                return None;
            }
            self.next += read;
        }
        self.page.pop_front()
    }
}
