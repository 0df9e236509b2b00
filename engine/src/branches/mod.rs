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

use std::sync::Arc;
use std::sync::atomic::Ordering;

use helios_log::{StreamId, Version};
use helios_replay::{Changes, View};

mod flat_run;
mod tree;

use flat_run::FlatRun;
pub(crate) use tree::BranchTable;
use tree::{Node, Origin, descends};

use crate::Engine;
use crate::engine::lock;
use crate::error::{Error, Result};
use crate::write::Appended;

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

/// What to do when branch memory would exceed [`crate::BranchOptions::memory_bytes`]: the
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

/// A branch, as [`Branches::info`] describes it.
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
    /// The budget ([`crate::BranchOptions::memory_bytes`]).
    pub budget_bytes: u64,
    /// Branches evicted to make room since open.
    pub evictions: u64,
    /// Promotions since open.
    pub promotions: u64,
}

/// What [`Branches::append`] did.
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

/// The speculative branches of an engine: fork, append, view, promote, discard. From
/// [`Engine::branches`]; cheap to make, so call `engine.branches()` where you need it.
#[derive(Clone, Copy, Debug)]
pub struct Branches<'e> {
    engine: &'e Engine,
}

impl Engine {
    /// Speculative branches: in-memory trees of versions forked from a stream's history, read
    /// like durable versions, made durable by [`Branches::promote`].
    #[must_use]
    pub fn branches(&self) -> Branches<'_> {
        Branches { engine: self }
    }
}

impl Branches<'_> {
    /// Whether `bytes` more of branch memory fit in the budget, after evicting least recently
    /// used unpinned branches other than `keep` when the policy allows it.
    fn admit_branch_bytes(&self, bytes: u64, keep: BranchId) -> bool {
        let branches = &self.engine.inner.branches;
        let budget = self.engine.inner.options.branches.memory_bytes;
        if branches.used.load(Ordering::Relaxed).saturating_add(bytes) <= budget {
            return true;
        }
        match self.engine.inner.options.branches.memory_policy {
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
            used_bytes: self.engine.inner.branches.used.load(Ordering::Relaxed),
            budget_bytes: self.engine.inner.options.branches.memory_bytes,
        })
    }

    /// The stream's id, head and lineage.
    fn stream_head(&self, stream: &str) -> Result<(StreamId, u64, Option<Lineage>)> {
        let cat = lock(&self.engine.inner.catalog);
        let id = self.engine.known_stream(&cat, stream)?;
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
        let view = self.engine.view_unmeasured(stream, at)?;
        let name: Arc<str> = Arc::from(stream);
        let machine = self.engine.inner.plugins.machine_for(stream).clone();
        let delta = Arc::new(FlatRun::merge(
            &FlatRun::default(),
            view.overlay().changes(),
        ));
        self.admit_or_refuse(delta.size_bytes(), None)?;
        Ok(self.engine.inner.branches.insert(Origin {
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
        let node = self.engine.inner.branches.get(parent)?;
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
        let fanout = self.engine.inner.store.policy().first_interval();
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
        Ok(self.engine.inner.branches.insert(Origin {
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
    pub fn append<E: AsRef<[u8]>>(
        &self,
        branch: BranchId,
        events: &[E],
        expected: Option<Version>,
    ) -> Result<BranchAppended> {
        if events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        let start = self
            .engine
            .inner
            .metrics
            .start_sampled(crate::Metric::AppendSpeculative);
        let branches = &self.engine.inner.branches;
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
        self.engine
            .inner
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
    pub fn view(&self, branch: BranchId, version: Version) -> Result<View> {
        let start = self.engine.inner.metrics.start();
        let view = self.view_unmeasured(branch, version)?;
        let metrics = &self.engine.inner.metrics;
        metrics.finish(crate::Metric::ViewBranch, start);
        metrics.record(crate::Metric::ReplayedEvents, view.report().events_replayed);
        Ok(view)
    }

    fn view_unmeasured(&self, branch: BranchId, version: Version) -> Result<View> {
        let node = self.engine.inner.branches.get(branch)?;
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
                self.engine.inner.store.policy().first_interval(),
                &|bytes| self.admit_branch_bytes(bytes, owner.id),
            ),
            None => self.engine.view(&node.name, version),
        }
    }

    /// A branch's stream, parent, fork point, head and memory.
    ///
    /// # Errors
    /// [`crate::Error::UnknownBranch`].
    pub fn info(&self, branch: BranchId) -> Result<BranchInfo> {
        let node = self.engine.inner.branches.get(branch)?;
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
    pub fn of_stream(&self, stream: &str) -> Vec<BranchId> {
        let mut ids: Vec<BranchId> = lock(&self.engine.inner.branches.table)
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
                operation: "Branches::promote",
                durability,
                reason: "a promotion writes to the log: use Critical or Normal",
            });
        };
        let start = self.engine.inner.metrics.start();
        let node = self.engine.inner.branches.get(branch)?;
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
                lsn: self.engine.inner.log.appended_lsn(),
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
            .engine
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
        self.engine
            .inner
            .branches
            .promotions
            .fetch_add(1, Ordering::Relaxed);
        let metric = match class {
            helios_log::RecordClass::Critical => crate::Metric::PromoteCritical,
            helios_log::RecordClass::Normal => crate::Metric::PromoteNormal,
        };
        self.engine.inner.metrics.finish(metric, start);
        Ok(appended)
    }

    /// Discards `branch`: its handle stops working and its memory is freed (at once, unless a
    /// live child branch still holds the state it was forked from).
    ///
    /// # Errors
    /// [`crate::Error::UnknownBranch`].
    pub fn discard(&self, branch: BranchId) -> Result<()> {
        let node = lock(&self.engine.inner.branches.table).remove(&branch);
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
            let mut table = lock(&self.engine.inner.branches.table);
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
        self.engine
            .inner
            .branches
            .get(branch)?
            .pinned
            .store(pinned, Ordering::Relaxed);
        Ok(())
    }

    /// Speculative memory and counters.
    #[must_use]
    pub fn stats(&self) -> BranchStats {
        let branches = &self.engine.inner.branches;
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
            budget_bytes: self.engine.inner.options.branches.memory_bytes,
            evictions: branches.evictions.load(Ordering::Relaxed),
            promotions: branches.promotions.load(Ordering::Relaxed),
        }
    }
}

impl Engine {
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
        let class = self.inner.plugins.classifier.classify(stream, kind);
        match (class, branch) {
            (crate::Durability::Speculative, branch) => {
                let branch = match branch {
                    Some(branch) => branch,
                    None => {
                        let head = self.branches().stream_head(stream)?.1;
                        self.branches().fork(stream, Version(head))?
                    }
                };
                let appended = self.branches().append(branch, events, None)?;
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
                let appended = self.branches().append(branch, events, None)?;
                let promoted = self.branches().promote(branch, appended.last, class)?;
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
