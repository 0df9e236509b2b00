//! Speculative branches: trees of in-memory versions on top of a stream's durable history.
//!
//! A branch is forked at a version of the durable history or of another branch. Its events
//! live in memory only (one byte buffer and an offset per event, so discarding a branch is two
//! frees, plus one per cached state), and get the versions `fork + 1, fork + 2, ...`: a node of
//! the tree is `(branch, version)`.
//!
//! Reads reuse the durable checkpoints: each chain of branches shares the [`Base`] of layers of
//! its durable root (captured at the first fork), and each branch keeps its state as a delta
//! against that base: `base_delta` at its fork point and, computed lazily on the first read
//! that needs them, one cached delta every `fanout` events of the branch. A view at a branch
//! version stacks the nearest cached delta on the root's layers and replays at most
//! `fanout - 1` of the branch's events, as a durable view does.
//!
//! Lineage: after a promotion, the stream records which branch owns the head's version; a
//! branch descends from the head if its chain passes through that node (or if it was forked at
//! the head itself). Promotion and pruning use that test.
//!
//! Invariants:
//! - A branch's `base_delta` plus its root base is exactly the state at its fork; its
//!   `snapshots[k]` is the delta at `fork + (k + 1) * fanout`.
//! - Branch events are never written anywhere: a crash loses all of them, by design.
//! - `Branches::used` is the sum of the bytes accounted by live nodes (a node gives its bytes
//!   back when its last reference drops).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::ops::Bound;

use helios_checkpoint::{Lookup, RunEntry, SortedRun};
use helios_log::{StreamId, Version};
use helios_replay::{Base, Changes, LayerInfo, Overlay, StateMachine, View, replay};

use crate::Engine;
use crate::engine::{Appended, lock};
use crate::error::{Error, Result};

/// A speculative branch. Ids are never reused within an engine's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BranchId(pub u64);

impl std::fmt::Display for BranchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "branch #{}", self.0)
    }
}

/// Which branch node a stream's head is after a promotion: branches that hold the same node
/// at the head's version descend from the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lineage {
    /// The branch whose events up to the head were promoted (the owner of the head's version).
    pub(crate) owner: BranchId,
    /// The head's version.
    pub(crate) version: u64,
}

/// What to do when branch memory would exceed [`crate::Options::branch_memory_bytes`]: the
/// events of a speculative append, the starting state of a fork, or a state a view of a
/// branch would cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BranchMemoryPolicy {
    /// Discard the least recently used unpinned branches (never the branch appended to or
    /// forked from) until it fits (counted in [`BranchStats::evictions`]); fail the append or
    /// fork only if evicting every other unpinned branch is not enough.
    #[default]
    EvictLeastRecentlyUsed,
    /// Fail the append or fork with [`crate::Error::BranchMemoryFull`].
    Refuse,
}

/// A branch, as [`Engine::branch_info`] describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchInfo {
    /// The branch.
    pub id: BranchId,
    /// Its stream.
    pub stream: String,
    /// The branch it was forked from (`None`: forked from the stream's durable history).
    pub parent: Option<BranchId>,
    /// The version it was forked at: its first event is `fork + 1`.
    pub fork: Version,
    /// Its last version.
    pub head: Version,
    /// Bytes of memory it accounts for (events and cached states).
    pub bytes: u64,
    /// Whether eviction skips it.
    pub pinned: bool,
}

/// Speculative memory and work, for the whole engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BranchStats {
    /// Branches alive (not discarded, pruned or evicted).
    pub live_branches: u64,
    /// Speculative events held by live branches.
    pub live_events: u64,
    /// Bytes accounted for by branch memory (events, offsets and cached states), including
    /// branches discarded but still referenced by a live child.
    pub bytes: u64,
    /// The budget ([`crate::Options::branch_memory_bytes`]).
    pub budget_bytes: u64,
    /// Branches evicted to make room since open.
    pub evictions: u64,
    /// Promotions since open.
    pub promotions: u64,
}

/// What [`Engine::append_branch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchAppended {
    /// The branch.
    pub branch: BranchId,
    /// Version of the first event appended.
    pub first: Version,
    /// Version of the last event appended: the branch's new head.
    pub last: Version,
}

/// What [`Engine::commit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The class the classifier chose.
    pub class: crate::Durability,
    /// The branch holding the events, for a speculative commit (a new branch forked at the
    /// head if none was given).
    pub branch: Option<BranchId>,
    /// Version of the first event committed.
    pub first: Version,
    /// Version of the last event committed.
    pub last: Version,
}

/// A branch's state as changes against its root's layers: a sorted index of entries whose
/// bytes live in shared, immutable chunks. A cached state made from the previous one by a few
/// events shares the previous chunks (an `Arc` each) and adds one chunk holding only the
/// changed entries, so a branch's cached states cost 16 bytes per entry plus each change
/// once, not a copy of every key and value per state.
#[derive(Debug, Default)]
struct FlatRun {
    chunks: Vec<Arc<[u8]>>,
    /// Per entry, in key order: its chunk, where its key starts in it, its key length and its
    /// value length (`TOMBSTONE` for a tombstone); the value follows the key.
    index: Vec<(u32, u32, u32, u32)>,
}

const TOMBSTONE: u32 = u32::MAX;

/// Appends an entry's key and value to `bytes`; returns its index entry in chunk `chunk`.
fn push_entry(
    bytes: &mut Vec<u8>,
    chunk: u32,
    key: &[u8],
    value: Option<&[u8]>,
) -> (u32, u32, u32, u32) {
    let start = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    bytes.extend_from_slice(key);
    let value_len = match value {
        Some(value) => {
            bytes.extend_from_slice(value);
            u32::try_from(value.len()).unwrap_or(TOMBSTONE - 1)
        }
        None => TOMBSTONE,
    };
    let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    (chunk, start, key_len, value_len)
}

impl FlatRun {
    /// `previous` with `changes` applied (a change replaces the entry of its key).
    fn merge(previous: &FlatRun, changes: &Changes) -> FlatRun {
        // The changed entries' bytes, in one new chunk.
        let new_chunk = u32::try_from(previous.chunks.len()).unwrap_or(u32::MAX);
        let mut bytes = Vec::new();
        let mut fresh = Vec::with_capacity(changes.len());
        for (key, value) in changes.iter() {
            fresh.push(push_entry(&mut bytes, new_chunk, key, value));
        }
        let mut chunks = previous.chunks.clone();
        chunks.push(Arc::from(bytes.into_boxed_slice()));
        let mut out = FlatRun {
            chunks,
            index: Vec::with_capacity(previous.index.len() + fresh.len()),
        };
        // Merge the two sorted index lists; a change wins over the old entry of its key.
        let (mut a, mut b) = (0, 0);
        while a < previous.index.len() || b < fresh.len() {
            let take_new = match (previous.index.get(a), fresh.get(b)) {
                (Some(&old), Some(&new)) => match previous.key_of(old).cmp(out.key_of(new)) {
                    std::cmp::Ordering::Less => false,
                    std::cmp::Ordering::Greater => true,
                    std::cmp::Ordering::Equal => {
                        a += 1;
                        true
                    }
                },
                (Some(_), None) => false,
                _ => true,
            };
            if take_new {
                out.index.push(fresh[b]);
                b += 1;
            } else {
                out.index.push(previous.index[a]);
                a += 1;
            }
        }
        out.index.shrink_to_fit();
        out
    }

    /// [`FlatRun::merge`] into a run that owns all its bytes in one chunk: for the state a new
    /// branch starts from, so that no branch keeps another's chunks alive unaccounted.
    fn merge_owned(previous: &FlatRun, changes: &Changes) -> FlatRun {
        let merged = FlatRun::merge(previous, changes);
        let mut bytes = Vec::new();
        let mut index = Vec::with_capacity(merged.index.len());
        for i in 0..merged.index.len() {
            let (key, value) = merged.entry(i);
            index.push(push_entry(&mut bytes, 0, key, value));
        }
        FlatRun {
            chunks: vec![Arc::from(bytes.into_boxed_slice())],
            index,
        }
    }

    fn key_of(&self, (chunk, start, key_len, _): (u32, u32, u32, u32)) -> &[u8] {
        let start = start as usize;
        &self.chunks[chunk as usize][start..start + key_len as usize]
    }

    fn entry(&self, i: usize) -> (&[u8], Option<&[u8]>) {
        let (chunk, start, key_len, value_len) = self.index[i];
        let bytes = &self.chunks[chunk as usize];
        let key_end = start as usize + key_len as usize;
        let value = (value_len != TOMBSTONE).then(|| &bytes[key_end..key_end + value_len as usize]);
        (&bytes[start as usize..key_end], value)
    }

    /// The first entry whose key is at least (or, if `!inclusive`, above) `key`.
    fn seek(&self, key: &[u8], inclusive: bool) -> usize {
        self.index.partition_point(|&e| {
            let k = self.key_of(e);
            if inclusive { k < key } else { k <= key }
        })
    }

    /// Accounted bytes: the index, and the newest chunk (the one this state added; the older
    /// ones are counted by the states that added them).
    fn size_bytes(&self) -> u64 {
        let newest = self.chunks.last().map_or(0, |c| c.len());
        (self.index.capacity() * std::mem::size_of::<(u32, u32, u32, u32)>()
            + self.chunks.capacity() * std::mem::size_of::<Arc<[u8]>>()
            + newest) as u64
    }
}

impl SortedRun for FlatRun {
    fn get(&self, key: &[u8]) -> Lookup<'_> {
        let i = self.seek(key, true);
        match self.index.get(i).map(|_| self.entry(i)) {
            Some((k, Some(value))) if k == key => Lookup::Value(value),
            Some((k, None)) if k == key => Lookup::Deleted,
            _ => Lookup::Absent,
        }
    }

    fn range<'a>(
        &'a self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Box<dyn Iterator<Item = RunEntry<'a>> + 'a> {
        let first = match start {
            Bound::Unbounded => 0,
            Bound::Included(k) => self.seek(k, true),
            Bound::Excluded(k) => self.seek(k, false),
        };
        let last = match end {
            Bound::Unbounded => self.index.len(),
            Bound::Included(k) => self.seek(k, false),
            Bound::Excluded(k) => self.seek(k, true),
        };
        Box::new((first..last.max(first)).map(move |i| self.entry(i)))
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}

/// Where a new branch starts: the fields of [`Node`] that a fork decides.
struct Origin {
    stream: StreamId,
    name: Arc<str>,
    machine: Arc<dyn StateMachine>,
    parent: Option<Arc<Node>>,
    fork: u64,
    root_version: u64,
    root_base: Base,
    base_delta: Arc<FlatRun>,
}

/// One branch: see the module documentation.
struct Node {
    id: BranchId,
    stream: StreamId,
    name: Arc<str>,
    machine: Arc<dyn StateMachine>,
    parent: Option<Arc<Node>>,
    fork: u64,
    /// The durable version at the bottom of the chain.
    root_version: u64,
    /// The durable layers the chain's deltas are against.
    root_base: Base,
    /// The state at `fork`, as changes against `root_base`.
    base_delta: Arc<FlatRun>,
    data: Mutex<NodeData>,
    last_used: AtomicU64,
    pinned: AtomicBool,
    used: Arc<AtomicU64>,
}

#[derive(Default)]
struct NodeData {
    /// The events, back to back; event `i` (version `fork + 1 + i`) ends at `ends[i]`.
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// `snapshots[k]`: the delta at `fork + (k + 1) * fanout`.
    snapshots: Vec<Arc<FlatRun>>,
    /// Bytes this node added to `Branches::used`.
    accounted: u64,
}

impl NodeData {
    /// Bytes the event buffers hold (capacities).
    fn held_bytes(&self) -> u64 {
        (self.bytes.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()) as u64
    }

    fn event(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

impl Node {
    fn head(&self, data: &NodeData) -> u64 {
        self.fork + data.ends.len() as u64
    }

    /// The node whose events hold `version` in this chain, or `None` if it is durable.
    fn owner(self: &Arc<Node>, version: u64) -> Option<&Arc<Node>> {
        let mut node = self;
        loop {
            if version > node.fork {
                return Some(node);
            }
            node = node.parent.as_ref()?;
        }
    }

    /// The delta at `version` (`fork < version <= head`) and the events after the cached
    /// state it starts from; builds the missing states on the way, and caches each one that
    /// `admit` lets into the branch memory budget (the rest are used for this call only).
    fn delta_at(
        &self,
        version: u64,
        fanout: u64,
        admit: &dyn Fn(u64) -> bool,
    ) -> Result<(Arc<FlatRun>, u64, Vec<Vec<u8>>)> {
        let mut data = lock(&self.data);
        let wanted = usize::try_from((version - self.fork) / fanout).unwrap_or(usize::MAX);
        // Start from the last cached state at or below `wanted`.
        let mut built = data.snapshots.len().min(wanted);
        let mut current = match built.checked_sub(1) {
            Some(k) => data.snapshots[k].clone(),
            None => self.base_delta.clone(),
        };
        while built < wanted {
            let step = usize::try_from(fanout).unwrap_or(usize::MAX);
            let first = built * step;
            let events: Vec<&[u8]> = (first..first + step).map(|i| data.event(i)).collect();
            let at = self.fork + (built as u64) * fanout;
            current = self.apply(current, at, events)?;
            built += 1;
            // Cached states are contiguous: once one is refused, none after it is cached.
            if data.snapshots.len() == built - 1 && admit(current.size_bytes()) {
                let bytes = current.size_bytes();
                data.accounted += bytes;
                self.used.fetch_add(bytes, Ordering::Relaxed);
                data.snapshots.push(current.clone());
            }
        }
        let (delta, from) = match wanted.checked_sub(1) {
            Some(_) => (current, self.fork + (wanted as u64) * fanout),
            None => (self.base_delta.clone(), self.fork),
        };
        let first = usize::try_from(from - self.fork).unwrap_or(usize::MAX);
        let last = usize::try_from(version - self.fork).unwrap_or(usize::MAX);
        let events = (first..last).map(|i| data.event(i).to_vec()).collect();
        Ok((delta, from, events))
    }

    /// The delta after applying `events` (versions `at + 1 ..`) on top of `previous`.
    fn apply<E: AsRef<[u8]>>(
        &self,
        previous: Arc<FlatRun>,
        at: u64,
        events: Vec<E>,
    ) -> Result<Arc<FlatRun>> {
        let base = self
            .root_base
            .with_layer_above(LayerInfo::new(0, at), previous.clone());
        let mut overlay = Overlay::new();
        replay(&*self.machine, &base, &mut overlay, &events).map_err(|source| Error::Replay {
            stream: self.name.to_string(),
            version: Version(at + 1 + source.event_index()),
            source,
        })?;
        drop(base);
        Ok(Arc::new(FlatRun::merge(&previous, overlay.changes())))
    }

    /// The view at `version`, `fork < version <= head`.
    fn view(&self, version: u64, fanout: u64, admit: &dyn Fn(u64) -> bool) -> Result<View> {
        let (delta, from, events) = self.delta_at(version, fanout, admit)?;
        let base = self
            .root_base
            .with_layer_above(LayerInfo::new(0, from), delta);
        View::replay(&*self.machine, base, &events).map_err(|source| Error::Replay {
            stream: self.name.to_string(),
            version: Version(from + 1 + source.event_index()),
            source,
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let data = self
            .data
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.used.fetch_sub(data.accounted, Ordering::Relaxed);
        // Unlink the parent chain iteratively: a deep chain dropped recursively could overflow
        // the stack.
        let mut parent = self.parent.take();
        while let Some(node) = parent {
            parent = match Arc::try_unwrap(node) {
                Ok(mut node) => node.parent.take(),
                Err(_) => None,
            };
        }
    }
}

/// The engine's branches.
pub(crate) struct Branches {
    table: Mutex<HashMap<BranchId, Arc<Node>>>,
    next_id: AtomicU64,
    used: Arc<AtomicU64>,
    clock: AtomicU64,
    evictions: AtomicU64,
    promotions: AtomicU64,
}

impl std::fmt::Debug for Branches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Branches")
            .field("used", &self.used.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Branches {
    pub(crate) fn new() -> Branches {
        Branches {
            table: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            used: Arc::new(AtomicU64::new(0)),
            clock: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            promotions: AtomicU64::new(0),
        }
    }

    fn get(&self, id: BranchId) -> Result<Arc<Node>> {
        let node = lock(&self.table)
            .get(&id)
            .cloned()
            .ok_or(Error::UnknownBranch { branch: id })?;
        node.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        Ok(node)
    }

    fn insert(&self, origin: Origin) -> BranchId {
        let Origin {
            stream,
            name,
            machine,
            parent,
            fork,
            root_version,
            root_base,
            base_delta,
        } = origin;
        let id = BranchId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let accounted = base_delta.size_bytes();
        self.used.fetch_add(accounted, Ordering::Relaxed);
        let node = Arc::new(Node {
            id,
            stream,
            name,
            machine,
            parent,
            fork,
            root_version,
            root_base,
            base_delta,
            data: Mutex::new(NodeData {
                accounted,
                ..NodeData::default()
            }),
            last_used: AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed)),
            pinned: AtomicBool::new(false),
            used: self.used.clone(),
        });
        lock(&self.table).insert(id, node);
        id
    }

    /// Evicts least recently used unpinned branches (never `keep`) until `needed` more bytes
    /// fit in `budget`. Returns whether they fit.
    fn make_room(&self, needed: u64, budget: u64, keep: BranchId) -> bool {
        let fits = |used: u64| used.saturating_add(needed) <= budget;
        if fits(self.used.load(Ordering::Relaxed)) {
            return true;
        }
        let mut table = lock(&self.table);
        let mut candidates: Vec<(u64, BranchId)> = table
            .values()
            .filter(|n| n.id != keep && !n.pinned.load(Ordering::Relaxed))
            .map(|n| (n.last_used.load(Ordering::Relaxed), n.id))
            .collect();
        candidates.sort_unstable();
        for (_, id) in candidates {
            if fits(self.used.load(Ordering::Relaxed)) {
                return true;
            }
            table.remove(&id);
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        fits(self.used.load(Ordering::Relaxed))
    }
}

/// Whether `node`'s chain descends from a stream whose head is `head` with `lineage`.
fn descends(node: &Arc<Node>, head: u64, lineage: Option<Lineage>) -> bool {
    if node.root_version == head {
        return true;
    }
    match lineage {
        Some(lineage) if lineage.version == head => {
            let reaches = {
                let data = lock(&node.data);
                node.head(&data) >= head
            };
            reaches
                && node
                    .owner(head)
                    .is_some_and(|owner| owner.id == lineage.owner)
        }
        _ => false,
    }
}

impl Engine {
    /// Whether `bytes` more of branch memory fit in the budget, after evicting least recently
    /// used unpinned branches other than `keep` when the policy allows it.
    fn admit_branch_bytes(&self, bytes: u64, keep: BranchId) -> bool {
        let branches = &self.inner.branches;
        let budget = self.inner.options.branch_memory_bytes;
        if branches.used.load(Ordering::Relaxed).saturating_add(bytes) <= budget {
            return true;
        }
        match self.inner.options.branch_memory_policy {
            BranchMemoryPolicy::EvictLeastRecentlyUsed => branches.make_room(bytes, budget, keep),
            BranchMemoryPolicy::Refuse => false,
        }
    }

    /// As [`Engine::admit_branch_bytes`], with [`Error::BranchMemoryFull`] when they do not
    /// fit. `keep`: the branch being grown or forked from, never evicted for it.
    fn admit_or_refuse(&self, bytes: u64, keep: Option<BranchId>) -> Result<()> {
        if self.admit_branch_bytes(bytes, keep.unwrap_or(BranchId(u64::MAX))) {
            return Ok(());
        }
        Err(Error::BranchMemoryFull {
            needed_bytes: bytes,
            used_bytes: self.inner.branches.used.load(Ordering::Relaxed),
            budget_bytes: self.inner.options.branch_memory_bytes,
        })
    }

    /// The stream's id, head and lineage.
    fn stream_head(&self, stream: &str) -> Result<(StreamId, u64, Option<Lineage>)> {
        let cat = lock(&self.inner.catalog);
        let id = self.known_stream(&cat, stream)?;
        let st = cat.get(id).ok_or_else(|| Error::UnknownStream {
            stream: stream.to_owned(),
        })?;
        Ok((id, st.head.0, st.lineage))
    }

    /// Starts a branch of `stream` at `at`, a version of its durable history (at most its
    /// head; 0 for the empty state).
    ///
    /// # Errors
    /// [`crate::Error::UnknownStream`], [`crate::Error::VersionPastHead`],
    /// [`crate::Error::Replay`].
    pub fn fork(&self, stream: &str, at: Version) -> Result<BranchId> {
        let (id, _, _) = self.stream_head(stream)?;
        let view = self.view_unmeasured(stream, at)?;
        let name: Arc<str> = Arc::from(stream);
        let machine = self.inner.options.machine_for(stream).clone();
        let delta = Arc::new(FlatRun::merge(
            &FlatRun::default(),
            view.overlay().changes(),
        ));
        self.admit_or_refuse(delta.size_bytes(), None)?;
        Ok(self.inner.branches.insert(Origin {
            stream: id,
            name,
            machine,
            parent: None,
            fork: at.0,
            root_version: at.0,
            root_base: view.base().clone(),
            base_delta: delta,
        }))
    }

    /// Starts a branch at version `at` of branch `parent` (any version the parent can view:
    /// its own, or one of its ancestors').
    ///
    /// # Errors
    /// [`crate::Error::UnknownBranch`], [`crate::Error::VersionPastHead`],
    /// [`crate::Error::Replay`].
    pub fn fork_branch(&self, parent: BranchId, at: Version) -> Result<BranchId> {
        let node = self.inner.branches.get(parent)?;
        let head = node.head(&lock(&node.data));
        if at.0 > head {
            return Err(Error::VersionPastHead {
                stream: format!("{} ({parent})", node.name),
                version: at,
                head: Version(head),
            });
        }
        let Some(owner) = node.owner(at.0).cloned() else {
            return self.fork(&node.name, at);
        };
        let fanout = self.inner.options.checkpoint_policy.fanout();
        let (delta, from, events) = owner.delta_at(at.0, fanout, &|bytes| {
            self.admit_branch_bytes(bytes, owner.id)
        })?;
        let delta = if events.is_empty() {
            delta
        } else {
            owner.apply(delta, from, events)?
        };
        // The child owns its starting state outright, so its memory is its own to count.
        let delta = Arc::new(FlatRun::merge_owned(&delta, &Changes::new()));
        self.admit_or_refuse(delta.size_bytes(), Some(owner.id))?;
        Ok(self.inner.branches.insert(Origin {
            stream: owner.stream,
            name: owner.name.clone(),
            machine: owner.machine.clone(),
            parent: Some(owner.clone()),
            fork: at.0,
            root_version: owner.root_version,
            root_base: owner.root_base.clone(),
            base_delta: delta,
        }))
    }

    /// Appends speculative events to `branch`, in memory. With `expected = Some(v)`, only if
    /// the branch's head is `v`.
    ///
    /// # Errors
    /// [`crate::Error::UnknownBranch`], [`crate::Error::Conflict`],
    /// [`crate::Error::BranchMemoryFull`], [`crate::Error::EmptyAppend`].
    pub fn append_branch<E: AsRef<[u8]>>(
        &self,
        branch: BranchId,
        events: &[E],
        expected: Option<Version>,
    ) -> Result<BranchAppended> {
        if events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        let start = self
            .inner
            .metrics
            .start_sampled(crate::Metric::AppendSpeculative);
        let branches = &self.inner.branches;
        let node = branches.get(branch)?;
        let payload_bytes: usize = events.iter().map(|e| e.as_ref().len()).sum();
        // What the buffers will grow by (a `Vec` at least doubles when it grows).
        let needed = {
            let data = lock(&node.data);
            let grow = |len: usize, capacity: usize, add: usize| {
                if len + add <= capacity {
                    0
                } else {
                    (capacity * 2).max(len + add) - capacity
                }
            };
            (grow(data.bytes.len(), data.bytes.capacity(), payload_bytes)
                + grow(data.ends.len(), data.ends.capacity(), events.len())
                    * std::mem::size_of::<usize>()) as u64
        };
        self.admit_or_refuse(needed, Some(branch))?;
        let mut data = lock(&node.data);
        let head = node.head(&data);
        if let Some(expected) = expected
            && expected.0 != head
        {
            return Err(Error::Conflict {
                stream: format!("{} ({branch})", node.name),
                expected,
                actual: Version(head),
            });
        }
        let held_before = data.held_bytes();
        // One growth per buffer, as `needed` estimated.
        data.bytes.reserve(payload_bytes);
        data.ends.reserve(events.len());
        for event in events {
            data.bytes.extend_from_slice(event.as_ref());
            let end = data.bytes.len();
            data.ends.push(end);
        }
        // Account what the buffers really hold (their capacities), not only the payloads.
        let grown = data.held_bytes() - held_before;
        data.accounted += grown;
        branches.used.fetch_add(grown, Ordering::Relaxed);
        drop(data);
        self.inner
            .metrics
            .finish(crate::Metric::AppendSpeculative, start);
        Ok(BranchAppended {
            branch,
            first: Version(head + 1),
            last: Version(head + events.len() as u64),
        })
    }

    /// The state of `branch` at `version`, like [`Engine::view`]: durable checkpoints below the
    /// fork, the branch's cached state, and at most `fanout - 1` events replayed. Versions at
    /// or below the fork read the parent's (or the durable) history.
    ///
    /// # Errors
    /// [`crate::Error::UnknownBranch`], [`crate::Error::VersionPastHead`],
    /// [`crate::Error::Replay`].
    pub fn view_branch(&self, branch: BranchId, version: Version) -> Result<View> {
        let start = self.inner.metrics.start();
        let view = self.view_branch_unmeasured(branch, version)?;
        let metrics = &self.inner.metrics;
        metrics.finish(crate::Metric::ViewBranch, start);
        metrics.record(crate::Metric::ReplayedEvents, view.report().events_replayed);
        Ok(view)
    }

    fn view_branch_unmeasured(&self, branch: BranchId, version: Version) -> Result<View> {
        let node = self.inner.branches.get(branch)?;
        let head = node.head(&lock(&node.data));
        if version.0 > head {
            return Err(Error::VersionPastHead {
                stream: format!("{} ({branch})", node.name),
                version,
                head: Version(head),
            });
        }
        match node.owner(version.0) {
            Some(owner) => owner.view(
                version.0,
                self.inner.options.checkpoint_policy.fanout(),
                &|bytes| self.admit_branch_bytes(bytes, owner.id),
            ),
            None => self.view(&node.name, version),
        }
    }

    /// A branch's stream, parent, fork point, head and memory.
    ///
    /// # Errors
    /// [`crate::Error::UnknownBranch`].
    pub fn branch_info(&self, branch: BranchId) -> Result<BranchInfo> {
        let node = self.inner.branches.get(branch)?;
        let data = lock(&node.data);
        Ok(BranchInfo {
            id: branch,
            stream: node.name.to_string(),
            parent: node.parent.as_ref().map(|p| p.id),
            fork: Version(node.fork),
            head: Version(node.head(&data)),
            bytes: data.accounted,
            pinned: node.pinned.load(Ordering::Relaxed),
        })
    }

    /// The live branches of `stream`, by id.
    #[must_use]
    pub fn branches(&self, stream: &str) -> Vec<BranchId> {
        let mut ids: Vec<BranchId> = lock(&self.inner.branches.table)
            .values()
            .filter(|n| &*n.name == stream)
            .map(|n| n.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Makes `branch`'s events up to `upto` durable: the path from the stream's head to `upto`
    /// is appended to the log as one atomic append of class `durability` (`Critical` or
    /// `Normal`). The branch must descend from the head (forked at it, or from a branch
    /// promoted through it); it stays usable. Promoting a version at or below the head is a
    /// no-op that returns an empty range (`first = head + 1`, `last = head`).
    ///
    /// # Errors
    /// [`crate::Error::PromotionConflict`] naming the head and the branch's base when the
    /// branch does not descend from the head; [`crate::Error::UnknownBranch`];
    /// [`crate::Error::VersionPastHead`]; [`crate::Error::InvalidDurability`] for
    /// `Speculative`; [`crate::Error::Replay`] is not checked here (the log takes any event);
    /// log errors.
    pub fn promote(
        &self,
        branch: BranchId,
        upto: Version,
        durability: crate::Durability,
    ) -> Result<Appended> {
        let Some(class) = durability.persistent() else {
            return Err(Error::InvalidDurability {
                operation: "Engine::promote",
                durability,
                reason: "a promotion writes to the log: use Critical or Normal",
            });
        };
        let start = self.inner.metrics.start();
        let node = self.inner.branches.get(branch)?;
        let node_head = node.head(&lock(&node.data));
        if upto.0 > node_head {
            return Err(Error::VersionPastHead {
                stream: format!("{} ({branch})", node.name),
                version: upto,
                head: Version(node_head),
            });
        }
        let (stream_id, head, lineage) = self.stream_head(&node.name)?;
        let conflict = || Error::PromotionConflict {
            branch,
            stream: node.name.to_string(),
            base: Version(node.root_version),
            head: Version(head),
        };
        if !descends(&node, head, lineage) {
            return Err(conflict());
        }
        if upto.0 <= head {
            return Ok(Appended {
                stream: stream_id,
                first: Version(head + 1),
                last: Version(head),
                lsn: self.last_lsn(),
            });
        }
        // The path (head, upto], gathered from the chain, newest segment first.
        let mut segments: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut limit = upto.0;
        let mut current = Some(&node);
        while let Some(n) = current {
            if limit <= head {
                break;
            }
            if limit > n.fork {
                let data = lock(&n.data);
                let from = head.max(n.fork);
                let first = usize::try_from(from - n.fork).unwrap_or(usize::MAX);
                let last = usize::try_from(limit - n.fork).unwrap_or(usize::MAX);
                segments.push((first..last).map(|i| data.event(i).to_vec()).collect());
                limit = from;
            }
            current = n.parent.as_ref();
        }
        let events: Vec<Vec<u8>> = segments.into_iter().rev().flatten().collect();
        let owner = node.owner(upto.0).map_or(branch, |o| o.id);
        let lineage = Lineage {
            owner,
            version: upto.0,
        };
        let appended = self
            .append_durable(
                &node.name,
                &events,
                class,
                Some(Version(head)),
                Some(lineage),
            )
            .map_err(|e| match e {
                Error::Conflict { .. } => conflict(),
                e => e,
            })?;
        self.inner
            .branches
            .promotions
            .fetch_add(1, Ordering::Relaxed);
        let metric = match class {
            helios_log::RecordClass::Critical => crate::Metric::PromoteCritical,
            helios_log::RecordClass::Normal => crate::Metric::PromoteNormal,
        };
        self.inner.metrics.finish(metric, start);
        Ok(appended)
    }

    /// Discards `branch`: its handle stops working and its memory is freed (at once, unless a
    /// live child branch still holds the state it was forked from).
    ///
    /// # Errors
    /// [`crate::Error::UnknownBranch`].
    pub fn discard(&self, branch: BranchId) -> Result<()> {
        let node = lock(&self.inner.branches.table).remove(&branch);
        // Dropped outside the table lock: freeing a long branch takes a moment.
        node.map(drop).ok_or(Error::UnknownBranch { branch })
    }

    /// Discards every branch of `stream` that no longer descends from its head (the MCTS
    /// "advance the root" step after a promotion). Returns how many were discarded.
    ///
    /// # Errors
    /// [`crate::Error::UnknownStream`].
    pub fn prune(&self, stream: &str) -> Result<usize> {
        let (_, head, lineage) = self.stream_head(stream)?;
        let removed: Vec<Arc<Node>> = {
            let mut table = lock(&self.inner.branches.table);
            let stale: Vec<BranchId> = table
                .values()
                .filter(|n| &*n.name == stream && !descends(n, head, lineage))
                .map(|n| n.id)
                .collect();
            stale.iter().filter_map(|id| table.remove(id)).collect()
        };
        Ok(removed.len())
    }

    /// Pins or unpins `branch`: eviction never takes a pinned branch.
    ///
    /// # Errors
    /// [`crate::Error::UnknownBranch`].
    pub fn pin(&self, branch: BranchId, pinned: bool) -> Result<()> {
        self.inner
            .branches
            .get(branch)?
            .pinned
            .store(pinned, Ordering::Relaxed);
        Ok(())
    }

    /// Speculative memory and counters.
    #[must_use]
    pub fn branch_stats(&self) -> BranchStats {
        let branches = &self.inner.branches;
        let (live_branches, live_events) = {
            let table = lock(&branches.table);
            let events = table
                .values()
                .map(|n| lock(&n.data).ends.len() as u64)
                .sum();
            (table.len() as u64, events)
        };
        BranchStats {
            live_branches,
            live_events,
            bytes: branches.used.load(Ordering::Relaxed),
            budget_bytes: self.inner.options.branch_memory_bytes,
            evictions: branches.evictions.load(Ordering::Relaxed),
            promotions: branches.promotions.load(Ordering::Relaxed),
        }
    }

    /// Commits `events` of a caller-defined `kind` to `stream`, with the class the engine's
    /// [`crate::Classifier`] gives `kind`:
    /// - speculative: appended to `branch` (or to a new branch forked at the stream's head);
    /// - critical or normal, without a branch: a plain [`Engine::append`];
    /// - critical or normal, with a branch: appended to the branch, then the branch promoted
    ///   through its new head with that class (one atomic log append).
    ///
    /// # Errors
    /// As the operation it performs.
    pub fn commit<E: AsRef<[u8]>>(
        &self,
        stream: &str,
        branch: Option<BranchId>,
        kind: &str,
        events: &[E],
    ) -> Result<Committed> {
        let class = self.inner.options.classifier.classify(stream, kind);
        match (class, branch) {
            (crate::Durability::Speculative, branch) => {
                let branch = match branch {
                    Some(branch) => branch,
                    None => {
                        let head = self.stream_head(stream)?.1;
                        self.fork(stream, Version(head))?
                    }
                };
                let appended = self.append_branch(branch, events, None)?;
                Ok(Committed {
                    class,
                    branch: Some(branch),
                    first: appended.first,
                    last: appended.last,
                })
            }
            (class, None) => {
                let appended = self.append(stream, events, class, None)?;
                Ok(Committed {
                    class,
                    branch: None,
                    first: appended.first,
                    last: appended.last,
                })
            }
            (class, Some(branch)) => {
                let appended = self.append_branch(branch, events, None)?;
                let promoted = self.promote(branch, appended.last, class)?;
                Ok(Committed {
                    class,
                    branch: Some(branch),
                    first: promoted.first,
                    last: promoted.last,
                })
            }
        }
    }
}
