//! The in-memory stream catalog: every stream's name, head and the locations of its versions
//! that no segment index holds yet, as the log's records made them (creations, forks,
//! deletions, events).
//!
//! The streams of the catalog snapshot an open started from stay in its file, read in place
//! (`base`), until one changes or is written to: then it gets a [`StreamState`] in memory
//! (`changed`). Streams created after the snapshot live in `created`. So an open, and a process
//! that reads a few streams, costs the same whatever the number of streams.
//!
//! Invariants:
//! - Stream ids are dense, assigned in LSN order; stream `id` is the snapshot's when
//!   `id <= base_len`, else at index `id - base_len - 1` of `created`, deleted or not, so
//!   that a fork can always reach its source.
//! - A name resolves to at most one live stream: `by_name` maps the name of every live stream
//!   held in memory (`created`, `changed`); the snapshot's name table finds the others of the
//!   base, whose deletion is read from `changed` when it happened after the snapshot.
//! - A fork shares versions `1..=at` with its source: its `head` and `indexed_head` start at
//!   `at`, and only versions past `at` are its own records (see [`Catalog::owner`]).
//! - `recent` holds the locations of versions `indexed_head + 1..=head`, in order: the log's
//!   segment indexes hold those up to `indexed_head`. A stream read from the snapshot has none.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use helios_log::{Location, LogError, Lsn, RecordKind, RecordRef, StreamId, Version};

use crate::catalog_snapshot::Snapshot;
use crate::error::{Error, Result};

/// Longest stream name, in bytes.
pub const STREAM_NAME_LEN_MAX: usize = 1024;

/// The locations of a stream read from the snapshot: none (the indexes hold them all).
static NO_LOCATIONS: VecDeque<Location> = VecDeque::new();

#[derive(Debug)]
pub(crate) struct StreamState {
    pub(crate) name: Arc<str>,
    pub(crate) created: Lsn,
    pub(crate) head: Version,
    /// The last version the log's segment indexes locate (see the module invariants).
    pub(crate) indexed_head: Version,
    /// Every version up to it is durable (synced): the checkpoint builder's target, since a
    /// checkpoint must never hold an event a crash could take back.
    pub(crate) durable_head: Version,
    /// The branch node the head is, when a promotion made it (`None` after a plain append).
    pub(crate) lineage: Option<crate::branches::Lineage>,
    pub(crate) recent: VecDeque<Location>,
    /// Listed in `Catalog::dirty`: its durable head may lag its head.
    pub(crate) dirty: bool,
    /// For a fork, its source and the last version it shares with it.
    pub(crate) fork: Option<Fork>,
    /// The LSN of its deletion record, once deleted.
    pub(crate) deleted: Option<Lsn>,
}

/// Where a forked stream's history comes from: versions `1..=at` are `source`'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fork {
    /// The stream it was forked from.
    pub source: StreamId,
    /// The last version it shares with `source`: its own events start at `at + 1`.
    pub at: Version,
}

/// Whose checkpoints hold a stream's state at each version (see [`Catalog::ancestry`]).
///
/// The stream itself holds every version past its first source's limit; source `k` holds the
/// versions up to its limit (the smallest fork point on the way to it) and past the next one's.
/// A source of stream 0 stands for one of another state machine: no checkpoint holds those
/// versions. A stream that is not a fork has no sources, and its ancestry allocates nothing.
#[derive(Clone, Debug)]
pub(crate) struct Ancestry {
    stream: StreamId,
    sources: Vec<(StreamId, u64)>,
}

impl Ancestry {
    /// The ancestry of a stream that is not a fork: its own checkpoints only.
    pub(crate) fn own(stream: StreamId) -> Ancestry {
        Ancestry {
            stream,
            sources: Vec::new(),
        }
    }

    /// The stream whose checkpoint would hold the state at `version`, if any may.
    pub(crate) fn owner(&self, version: u64) -> Option<StreamId> {
        let owner = self
            .sources
            .iter()
            .rev()
            .find(|(_, limit)| version <= *limit)
            .map_or(self.stream, |&(source, _)| source);
        (owner.0 != 0).then_some(owner)
    }

    /// The versions each stream of the chain holds, newest first: `(stream, first, last)`,
    /// for the streams whose checkpoints are usable.
    pub(crate) fn spans(&self) -> impl Iterator<Item = (StreamId, u64, u64)> + '_ {
        let own = (self.stream, self.shared_until().saturating_add(1), u64::MAX);
        let sources = self.sources.iter().enumerate().map(|(k, &(source, last))| {
            let first = self.sources.get(k + 1).map_or(0, |&(_, below)| below + 1);
            (source, first, last)
        });
        std::iter::once(own)
            .chain(sources)
            .filter(|&(stream, first, last)| {
                // A fork at version 0 shares nothing; stream 0 has no checkpoints.
                stream.0 != 0 && first <= last
            })
    }

    /// The last version the stream shares with its sources (0 when it is not a fork): its
    /// builder writes no checkpoint at or below it.
    pub(crate) fn shared_until(&self) -> u64 {
        self.sources.first().map_or(0, |&(_, limit)| limit)
    }
}

/// What a new catalog entry starts with.
#[derive(Clone, Debug)]
pub(crate) struct NewStream<'a> {
    pub(crate) id: StreamId,
    pub(crate) name: &'a str,
    pub(crate) created: Lsn,
    pub(crate) head: Version,
    pub(crate) fork: Option<Fork>,
    pub(crate) deleted: Option<Lsn>,
}

/// A stream as the catalog has it, borrowed: from its state in memory, or read in place from
/// the snapshot (then its heads are the snapshot's, and it has no recent locations).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamRef<'a> {
    pub(crate) name: &'a str,
    pub(crate) created: Lsn,
    pub(crate) head: Version,
    pub(crate) indexed_head: Version,
    pub(crate) durable_head: Version,
    pub(crate) lineage: Option<crate::branches::Lineage>,
    pub(crate) recent: &'a VecDeque<Location>,
    pub(crate) fork: Option<Fork>,
    pub(crate) deleted: Option<Lsn>,
}

impl StreamRef<'static> {
    /// What a snapshot writes for a stream it cannot read (see `catalog_snapshot::encode`):
    /// unnamed, empty, deleted at `at`.
    pub(crate) fn unsound(at: Lsn) -> StreamRef<'static> {
        StreamRef {
            name: "",
            created: Lsn::ZERO,
            head: Version::ZERO,
            indexed_head: Version::ZERO,
            durable_head: Version::ZERO,
            lineage: None,
            recent: &NO_LOCATIONS,
            fork: None,
            deleted: Some(at),
        }
    }
}

impl<'a> From<&'a StreamState> for StreamRef<'a> {
    fn from(st: &'a StreamState) -> StreamRef<'a> {
        StreamRef {
            name: &st.name,
            created: st.created,
            head: st.head,
            indexed_head: st.indexed_head,
            durable_head: st.durable_head,
            lineage: st.lineage,
            recent: &st.recent,
            fork: st.fork,
            deleted: st.deleted,
        }
    }
}

impl<'a> From<crate::catalog_snapshot::SnapshotStream<'a>> for StreamRef<'a> {
    fn from(s: crate::catalog_snapshot::SnapshotStream<'a>) -> StreamRef<'a> {
        // A snapshot is exact at a durable record whose segment the indexes cover.
        StreamRef {
            name: s.name,
            created: s.created,
            head: s.head,
            indexed_head: s.head,
            durable_head: s.head,
            lineage: None,
            recent: &NO_LOCATIONS,
            fork: s.fork,
            deleted: s.deleted,
        }
    }
}

/// The catalog's streams at one moment (see [`Catalog::at_open`]).
pub(crate) struct CatalogAtOpen {
    base: Option<Arc<Snapshot>>,
    len: u64,
    in_memory: HashMap<StreamId, Frozen, foldhash::fast::FixedState>,
    /// Every stream's reachable head, computed when a deleted stream is first asked about.
    reachable: OnceLock<Vec<Version>>,
}

/// A stream held in memory, as [`Catalog::at_open`] froze it.
struct Frozen {
    head: Version,
    deleted: bool,
    name: Arc<str>,
    fork: Option<Fork>,
}

/// A stream of a [`CatalogAtOpen`].
pub(crate) struct StreamAt<'a> {
    /// Its head if it is live; if deleted, what its live forks still read
    /// ([`Catalog::reachable`]).
    pub(crate) head: Version,
    pub(crate) live: bool,
    pub(crate) name: &'a str,
    /// For a fork, its fork point.
    pub(crate) shared: u64,
}

impl CatalogAtOpen {
    /// Stream `id`, if it existed.
    pub(crate) fn stream(&self, id: StreamId) -> Option<StreamAt<'_>> {
        let (head, deleted, name, fork) = self.lookup(id)?;
        let head = match deleted {
            false => head,
            true => {
                let reachable = self.reachable.get_or_init(|| {
                    reachable_of(self.len, |id| self.lookup(id).map(|(h, d, _, f)| (h, d, f)))
                });
                let at = usize::try_from(id.0 - 1).ok()?;
                reachable.get(at).copied().unwrap_or(Version::ZERO)
            }
        };
        Some(StreamAt {
            head,
            live: !deleted,
            name,
            shared: fork.map_or(0, |f| f.at.0),
        })
    }

    fn lookup(&self, id: StreamId) -> Option<(Version, bool, &str, Option<Fork>)> {
        match self.in_memory.get(&id) {
            Some(f) => Some((f.head, f.deleted, &f.name, f.fork)),
            None => {
                let s = self.base.as_ref()?.stream(id)?;
                Some((s.head, s.deleted.is_some(), s.name, s.fork))
            }
        }
    }
}

/// The highest version of each of streams `1..=len` (index `id - 1`) that a live stream can
/// still read, given each stream's head, whether it is deleted, and its fork: its head if it
/// is live, and for a deleted one what the live forks of it share (zero if none).
fn reachable_of(
    len: u64,
    stream: impl Fn(StreamId) -> Option<(Version, bool, Option<Fork>)>,
) -> Vec<Version> {
    let len = usize::try_from(len).unwrap_or(0);
    let mut streams = vec![(Version::ZERO, None::<Fork>); len];
    for (at, slot) in streams.iter_mut().enumerate() {
        if let Some((head, deleted, fork)) = stream(StreamId(at as u64 + 1)) {
            *slot = (if deleted { Version::ZERO } else { head }, fork);
        }
    }
    let mut reachable: Vec<Version> = streams.iter().map(|&(head, _)| head).collect();
    // A fork's id is above its source's (ids are assigned in log order and a fork follows
    // its source), so one pass from the newest covers chains of forks.
    for (index, &(_, fork)) in streams.iter().enumerate().rev() {
        if let Some(fork) = fork
            && let Some(source) = usize::try_from(fork.source.0)
                .ok()
                .and_then(|id| id.checked_sub(1))
            && source < index
        {
            let shared = reachable[index].min(fork.at);
            reachable[source] = reachable[source].max(shared);
        }
    }
    reachable
}

#[derive(Debug, Default)]
pub(crate) struct Catalog {
    /// The snapshot the open started from: streams `1..=base_len`, read in place until one
    /// changes (see the module invariants).
    base: Option<Arc<Snapshot>>,
    base_len: u64,
    /// Streams of the base that changed, or were written to, since the snapshot.
    changed: HashMap<StreamId, StreamState, foldhash::fast::FixedState>,
    /// Streams created after the snapshot: stream `base_len + 1 + k` at index `k`.
    created: Vec<StreamState>,
    /// The live streams held in memory (of `created`, and of `changed`), by name.
    by_name: HashMap<Arc<str>, StreamId>,
    pub(crate) dirty: Vec<StreamId>,
    /// The log's directory, for naming files in errors.
    pub(crate) log_dir: PathBuf,
    /// Location of the last record of each batch the flusher has not yet seen durable.
    pub(crate) batch_ends: VecDeque<Location>,
    pub(crate) scratch: Vec<Location>,
}

impl Catalog {
    /// An empty catalog, or one holding `snapshot`'s streams, for the log in `log_dir`.
    pub(crate) fn new(log_dir: PathBuf, snapshot: Option<Arc<Snapshot>>) -> Catalog {
        Catalog {
            base_len: snapshot.as_ref().map_or(0, |s| s.len()),
            base: snapshot,
            log_dir,
            ..Catalog::default()
        }
    }

    /// How many streams there are, deleted ones included: the highest id.
    pub(crate) fn len(&self) -> u64 {
        self.base_len + self.created.len() as u64
    }

    /// Every stream, in id order. Reads each stream of the snapshot in place: it costs time in
    /// proportion to the streams, so only whole-store work (snapshots, checks, a writer's
    /// open) uses it.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (StreamId, StreamRef<'_>)> + '_ {
        (1..=self.len()).filter_map(|id| {
            let id = StreamId(id);
            self.get(id).map(|st| (id, st))
        })
    }

    /// The error to give while the snapshot read in place has a damaged block (see
    /// `Snapshot::damage`): what that block held reads as absent, so an answer of "no such
    /// stream" cannot be trusted, nor can a snapshot be written from this catalog. The writer
    /// removes `CATALOG` then, and the next open reads the log instead.
    pub(crate) fn damage(&self) -> Option<Error> {
        let at = self.base.as_ref()?.damage()?;
        let store = self.log_dir.parent().unwrap_or(&self.log_dir);
        Some(Error::Log(LogError::Corrupt {
            path: store.join(crate::catalog_snapshot::CATALOG_FILE),
            offset: at,
            reason: "a block of the catalog snapshot fails its checksum; reopen the store to \
                     read the log instead"
                .into(),
        }))
    }

    /// [`Catalog::resolve_checked`], the id alone.
    pub(crate) fn lookup_checked(&self, name: &str) -> Result<Option<StreamId>> {
        Ok(self.resolve_checked(name)?.map(|(id, _)| id))
    }

    /// The live stream named `name`.
    pub(crate) fn lookup(&self, name: &str) -> Option<StreamId> {
        self.resolve(name).map(|(id, _)| id)
    }

    /// The live stream named `name`, and its state: a stream of the snapshot not changed since
    /// is read from it once (a view asks for both, and each read of the snapshot parses the
    /// stream's record again).
    pub(crate) fn resolve(&self, name: &str) -> Option<(StreamId, StreamRef<'_>)> {
        if let Some(&id) = self.by_name.get(name) {
            return Some((id, self.get(id)?));
        }
        let base = self.base.as_ref()?;
        base.named_streams(name).find_map(|(id, in_snapshot)| {
            let st = match self.changed.get(&id) {
                Some(changed) => StreamRef::from(changed),
                None => StreamRef::from(in_snapshot),
            };
            st.deleted.is_none().then_some((id, st))
        })
    }

    /// [`Catalog::resolve`], or the snapshot's damage when the name was not found and the
    /// snapshot has a damaged block: what creates a stream on absence must not trust it.
    pub(crate) fn resolve_checked(&self, name: &str) -> Result<Option<(StreamId, StreamRef<'_>)>> {
        match self.resolve(name) {
            Some(found) => Ok(Some(found)),
            None => self.damage().map_or(Ok(None), Err),
        }
    }

    /// The ids of the streams held in memory: every stream changed since the snapshot, or
    /// created after it.
    pub(crate) fn in_memory_ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        let created = (0..self.created.len() as u64).map(|k| StreamId(self.base_len + 1 + k));
        self.changed.keys().copied().chain(created)
    }

    /// Every stream held in memory (changed since the snapshot, or created after it).
    fn in_memory(&mut self) -> impl Iterator<Item = &mut StreamState> {
        self.changed.values_mut().chain(self.created.iter_mut())
    }

    /// After an open read the log: everything it read is durable (a writer's log synced it,
    /// a reader reads only what a writer published).
    pub(crate) fn mark_durable(&mut self) {
        for st in self.in_memory() {
            st.durable_head = st.head;
        }
    }

    /// The highest version of each stream (index `id - 1`) that a live stream can still read:
    /// its head if it is live, and for a deleted one what the live forks of it share (zero if
    /// none). Events and checkpoints above it are dead.
    pub(crate) fn reachable(&self) -> Vec<Version> {
        reachable_of(self.len(), |id| {
            self.get(id)
                .map(|st| (st.head, st.deleted.is_some(), st.fork))
        })
    }

    pub(crate) fn get(&self, id: StreamId) -> Option<StreamRef<'_>> {
        let index = id.0.checked_sub(1)?;
        if index >= self.base_len {
            let at = usize::try_from(index - self.base_len).ok()?;
            return self.created.get(at).map(StreamRef::from);
        }
        match self.changed.get(&id) {
            Some(st) => Some(st.into()),
            None => self.base.as_ref()?.stream(id).map(StreamRef::from),
        }
    }

    /// The bytes of the snapshot the open started from, if any.
    pub(crate) fn snapshot_bytes(&self) -> Option<helios_log::storage::ReadOnlyBytes> {
        self.base.as_ref().map(|s| s.bytes().clone())
    }

    /// The streams as they are now, frozen: what a reader's checkpoint store asks about a
    /// stream at its first use. Copies only the streams held in memory.
    pub(crate) fn at_open(&self) -> CatalogAtOpen {
        let in_memory = self
            .changed
            .iter()
            .map(|(&id, st)| (id, st))
            .chain(
                self.created
                    .iter()
                    .enumerate()
                    .map(|(k, st)| (StreamId(self.base_len + 1 + k as u64), st)),
            )
            .map(|(id, st)| {
                let frozen = Frozen {
                    head: st.head,
                    deleted: st.deleted.is_some(),
                    name: st.name.clone(),
                    fork: st.fork,
                };
                (id, frozen)
            })
            .collect();
        CatalogAtOpen {
            base: self.base.clone(),
            len: self.len(),
            in_memory,
            reachable: OnceLock::new(),
        }
    }

    /// Stream `id` for a change: one of the snapshot's is copied into memory first.
    pub(crate) fn get_mut(&mut self, id: StreamId) -> Option<&mut StreamState> {
        let index = id.0.checked_sub(1)?;
        if index >= self.base_len {
            let at = usize::try_from(index - self.base_len).ok()?;
            return self.created.get_mut(at);
        }
        if !self.changed.contains_key(&id) {
            let s = self.base.as_ref()?.stream(id)?;
            let name: Arc<str> = Arc::from(s.name);
            if s.deleted.is_none() {
                // Its next lookups (an append's, each) need not search the snapshot.
                self.by_name.insert(name.clone(), id);
            }
            self.changed.insert(
                id,
                StreamState {
                    name,
                    created: s.created,
                    head: s.head,
                    indexed_head: s.head,
                    durable_head: s.head,
                    lineage: None,
                    recent: VecDeque::new(),
                    dirty: false,
                    fork: s.fork,
                    deleted: s.deleted,
                },
            );
        }
        self.changed.get_mut(&id)
    }

    pub(crate) fn next_id(&self) -> StreamId {
        StreamId(self.len() + 1)
    }

    /// Drops from every stream's `recent` the locations up to the record `through`, which the
    /// log's segment indexes now hold. Returns how many it dropped.
    pub(crate) fn drain_indexed(&mut self, through: Location) -> u64 {
        let mut drained = 0;
        for st in self.in_memory() {
            while st.recent.front().is_some_and(|l| l.lsn <= through.lsn) {
                st.recent.pop_front();
                st.indexed_head = Version(st.indexed_head.0 + 1);
                drained += 1;
            }
        }
        drained
    }

    pub(crate) fn mark_dirty(&mut self, id: StreamId) {
        if let Some(st) = self.get_mut(id)
            && !st.dirty
        {
            st.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Adds stream `new.id`, the next id, after the snapshot's streams.
    pub(crate) fn add_stream(&mut self, new: NewStream<'_>) -> Result<()> {
        debug_assert_eq!(new.id, self.next_id(), "stream ids are dense");
        let name: Arc<str> = Arc::from(new.name);
        if new.deleted.is_none()
            && let Some(other) = self.by_name.insert(name.clone(), new.id)
        {
            return Err(Error::CorruptMeta {
                keyspace: "streams",
                reason: format!(
                    "{other} and {} are both live streams named `{name}`",
                    new.id
                ),
            });
        }
        self.created.push(StreamState {
            name,
            created: new.created,
            head: new.head,
            // A new stream has no events yet.
            indexed_head: new.head,
            durable_head: new.head,
            lineage: None,
            recent: VecDeque::new(),
            dirty: false,
            fork: new.fork,
            deleted: new.deleted,
        });
        Ok(())
    }

    /// The streams whose checkpoints hold stream `id`'s states: `id` itself, then, through
    /// each fork on the way back, its source, as long as `same_machine(source name)` (a
    /// checkpoint of another state machine is not this stream's state).
    pub(crate) fn ancestry(&self, id: StreamId, same_machine: impl Fn(&str) -> bool) -> Ancestry {
        let mut sources = Vec::new();
        let mut limit = u64::MAX;
        let mut current = id;
        while let Some(fork) = self.get(current).and_then(|st| st.fork) {
            limit = limit.min(fork.at.0);
            let Some(source) = self.get(fork.source) else {
                break;
            };
            if !same_machine(source.name) {
                // Versions up to `limit` have no usable checkpoint: they replay.
                sources.push((StreamId(0), limit));
                break;
            }
            sources.push((fork.source, limit));
            current = fork.source;
        }
        Ancestry {
            stream: id,
            sources,
        }
    }

    /// Applies one record read from the log: by an open (whose log has synced what it read,
    /// so the caller sets each stream's durable head to its head afterwards) or by a reader's
    /// refresh (which reads only what is durable). Appends go through `write.rs`, which also
    /// tracks what is not durable yet (`dirty`, `batch_ends`).
    pub(crate) fn apply(&mut self, record: &RecordRef<'_>, location: Location) -> Result<()> {
        let header = record.header;
        match header.kind {
            RecordKind::CreateStream | RecordKind::ForkStream => {
                if self.get(header.stream).is_some() {
                    return Ok(()); // Already known (a catalog snapshot).
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
                let (fork, name) = if header.kind == RecordKind::ForkStream {
                    let (fork, name) = decode_fork(record.payload, header.version)
                        .map_err(|reason| corrupt_record(&self.log_dir, &location, reason))?;
                    let source_head = self.get(fork.source).map(|st| st.head);
                    if fork.source >= header.stream || source_head.is_none_or(|h| fork.at > h) {
                        return Err(corrupt_record(
                            &self.log_dir,
                            &location,
                            format!(
                                "forks {} at {} from {}, which has no such version",
                                header.stream, fork.at, fork.source
                            ),
                        ));
                    }
                    (Some(fork), name)
                } else {
                    (None, record.payload)
                };
                let name = std::str::from_utf8(name).map_err(|_| {
                    corrupt_record(&self.log_dir, &location, "stream name is not UTF-8".into())
                })?;
                if self.lookup(name).is_some() {
                    return Err(corrupt_record(
                        &self.log_dir,
                        &location,
                        format!("creates a second live stream named `{name}`"),
                    ));
                }
                self.add_stream(NewStream {
                    id: header.stream,
                    name,
                    created: header.lsn,
                    head: fork.map_or(Version::ZERO, |f| f.at),
                    fork,
                    deleted: None,
                })?;
            }
            RecordKind::DeleteStream => {
                let Some(st) = self.get_mut(header.stream) else {
                    return Err(corrupt_record(
                        &self.log_dir,
                        &location,
                        format!("deletes unknown {}", header.stream),
                    ));
                };
                if st.deleted.is_some() {
                    return Ok(()); // Already known (a catalog snapshot).
                }
                st.deleted = Some(header.lsn);
                let name = st.name.clone();
                if self.by_name.get(&name) == Some(&header.stream) {
                    self.by_name.remove(&name);
                }
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
                    return Ok(()); // Already known (a catalog snapshot).
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
            }
        }
        Ok(())
    }
}

/// The payload of a fork record: the source's id, then the new stream's name.
pub(crate) fn encode_fork(source: StreamId, name: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(8 + name.len());
    payload.extend_from_slice(&source.0.to_le_bytes());
    payload.extend_from_slice(name.as_bytes());
    payload
}

/// Splits a fork record's payload into its [`Fork`] (with `at`, the record's version) and the
/// new stream's name bytes.
fn decode_fork(payload: &[u8], at: Version) -> std::result::Result<(Fork, &[u8]), String> {
    let (source, name) = payload
        .split_first_chunk::<8>()
        .ok_or_else(|| format!("a fork record of {} bytes has no source id", payload.len()))?;
    let source = StreamId(u64::from_le_bytes(*source));
    Ok((Fork { source, at }, name))
}

pub(crate) fn corrupt_record(log_dir: &Path, location: &Location, reason: String) -> Error {
    Error::Log(LogError::Corrupt {
        path: log_dir.join(helios_log::segment_name(location.segment)),
        offset: location.offset,
        reason: format!("{}: {reason}", location.lsn),
    })
}

pub(crate) fn validate_name(name: &str) -> Result<()> {
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

#[cfg(test)]
mod tests;
