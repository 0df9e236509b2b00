//! The tree of branches: nodes, their events and cached states, the table of live branches
//! with its memory accounting and eviction, and the lineage test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use helios_log::{StreamId, Version};
use helios_replay::{Base, LayerInfo, Overlay, StateMachine, View, replay};

use super::flat_run::FlatRun;
use super::{BranchId, Lineage};
use crate::engine::lock;
use crate::error::{Error, Result};

/// Where a new branch starts: the fields of [`Node`] that a fork decides.
pub(super) struct Origin {
    pub(super) stream: StreamId,
    pub(super) name: Arc<str>,
    pub(super) machine: Arc<dyn StateMachine>,
    pub(super) parent: Option<Arc<Node>>,
    pub(super) fork: u64,
    pub(super) root_version: u64,
    pub(super) root_base: Base,
    pub(super) base_delta: Arc<FlatRun>,
}

/// One branch: see the module documentation.
pub(super) struct Node {
    pub(super) id: BranchId,
    pub(super) stream: StreamId,
    pub(super) name: Arc<str>,
    pub(super) machine: Arc<dyn StateMachine>,
    pub(super) parent: Option<Arc<Node>>,
    pub(super) fork: u64,
    /// The durable version at the bottom of the chain.
    pub(super) root_version: u64,
    /// The durable layers the chain's deltas are against.
    pub(super) root_base: Base,
    /// The state at `fork`, as changes against `root_base`.
    pub(super) base_delta: Arc<FlatRun>,
    pub(super) data: Mutex<NodeData>,
    pub(super) last_used: AtomicU64,
    pub(super) pinned: AtomicBool,
    pub(super) used: Arc<AtomicU64>,
}

#[derive(Default)]
pub(super) struct NodeData {
    /// The events, back to back; event `i` (version `fork + 1 + i`) ends at `ends[i]`.
    pub(super) bytes: Vec<u8>,
    pub(super) ends: Vec<usize>,
    /// `snapshots[k]`: the delta at `fork + (k + 1) * fanout`.
    pub(super) snapshots: Vec<Arc<FlatRun>>,
    /// Bytes this node added to `Branches::used`.
    pub(super) accounted: u64,
}

impl NodeData {
    /// Bytes the event buffers hold (capacities).
    pub(super) fn held_bytes(&self) -> u64 {
        (self.bytes.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()) as u64
    }

    pub(super) fn event(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

impl Node {
    pub(super) fn head(&self, data: &NodeData) -> u64 {
        self.fork + data.ends.len() as u64
    }

    /// The node whose events hold `version` in this chain, or `None` if it is durable.
    pub(super) fn owner(self: &Arc<Node>, version: u64) -> Option<&Arc<Node>> {
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
    pub(super) fn delta_at(
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
    pub(super) fn apply<E: AsRef<[u8]>>(
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
    pub(super) fn view(
        &self,
        version: u64,
        fanout: u64,
        admit: &dyn Fn(u64) -> bool,
    ) -> Result<View> {
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
pub(crate) struct BranchTable {
    pub(super) table: Mutex<HashMap<BranchId, Arc<Node>>>,
    pub(super) next_id: AtomicU64,
    pub(super) used: Arc<AtomicU64>,
    pub(super) clock: AtomicU64,
    pub(super) evictions: AtomicU64,
    pub(super) promotions: AtomicU64,
}

impl std::fmt::Debug for BranchTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BranchTable")
            .field("used", &self.used.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl BranchTable {
    pub(crate) fn new() -> BranchTable {
        BranchTable {
            table: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            used: Arc::new(AtomicU64::new(0)),
            clock: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            promotions: AtomicU64::new(0),
        }
    }

    pub(super) fn get(&self, id: BranchId) -> Result<Arc<Node>> {
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

    pub(super) fn insert(&self, origin: Origin) -> BranchId {
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

    /// Discards every branch of stream `id` (a deleted stream): their nodes are dropped outside
    /// the table lock.
    pub(crate) fn discard_stream(&self, id: StreamId) {
        let removed: Vec<Arc<Node>> = {
            let mut table = lock(&self.table);
            let ids: Vec<BranchId> = table
                .values()
                .filter(|n| n.stream == id)
                .map(|n| n.id)
                .collect();
            ids.iter().filter_map(|b| table.remove(b)).collect()
        };
        drop(removed);
    }

    /// Evicts least recently used unpinned branches (never `keep`) until `needed` more bytes
    /// fit in `budget`. Returns whether they fit.
    pub(super) fn make_room(&self, needed: u64, budget: u64, keep: BranchId) -> bool {
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
pub(super) fn descends(node: &Arc<Node>, head: u64, lineage: Option<Lineage>) -> bool {
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
