//! The checkpoint store: which checkpoints exist, where they live in the packs
//! ([`super::packs`]), and the validated checkpoints in use.
//!
//! The packs are the catalog: an open reads every checkpoint header in them (from a full pack's
//! index, or a scan of the pack; no other record of them is kept, see `store/open.rs`), and
//! keeps a checkpoint when its stream is known, its version is at
//! or below the stream's head (a checkpoint past it was built from events lost with a torn
//! tail), on the level policy's grid, and built by the configured state machine; the newest
//! copy of a checkpoint wins. A checkpoint version below a stream's newest checkpoint that no
//! pack holds is queued for a rebuild (the builder only builds forward).
//!
//! A checkpoint is validated when first read ([`Checkpoint::open_in`]: length, CRCs, rkyv
//! validation, block structure) and its header checked against what the policy expects at its
//! version. One that fails is damaged: it is forgotten, counted, and queued for a rebuild; views
//! fall back to coarser layers and a longer replay meanwhile. Its bytes stay in the pack (dead).
//!
//! Invariant: a catalog entry names bytes already written to a pack; pack bytes never change
//! once written, so a validated checkpoint stays valid.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use helios_checkpoint::pack::{PackEnd, PackEntry};
use helios_checkpoint::{Checkpoint, CheckpointError, CheckpointMeta, HEAVY_LEVEL, LevelPolicy};
use helios_log::{StreamId, Version};

use super::packs::{PackContents, Packs};
use super::{CheckpointInfo, CheckpointStats, LevelStats};
use crate::cache::StampCache;
use crate::engine::lock;
use crate::error::Result;

mod deferred;
mod open;

use super::machines::MachineTable;
pub(crate) use deferred::{Opened, StreamsAtOpen};
pub use open::CheckpointOpenReport;
use open::Keep;
pub(crate) use open::{StreamAtOpen, StreamOf};

/// The checkpoint directory inside a store.
pub(crate) const CHECKPOINT_DIR: &str = "checkpoints";

/// Where a checkpoint lives, and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    /// Its level (1 is the finest; [`HEAVY_LEVEL`] after a heavy event).
    pub level: u32,
    /// The version its delta is against (0 for a full state).
    pub base: u64,
    /// The pack it is in.
    pub pack: u64,
    /// Its offset there.
    pub offset: u64,
    /// Its length.
    pub len: u64,
    /// The number of the machine that built it (see `machines.rs`).
    pub machine: u16,
}

/// How many open checkpoints the store keeps, how much memory they may take, and how large a
/// new pack is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoreSizes {
    pub count: usize,
    pub bytes: u64,
    /// The size of a new pack (a writer's).
    pub pack_bytes: u64,
}

/// What an open checkpoint weighs in the cache besides its indexes: the `Checkpoint` itself,
/// its `Arc`, and the cache's slot, rounded up.
const CHECKPOINT_WEIGHT: u64 = 512;

/// A pack is compacted when at least this many of its bytes, and at least half of them, are
/// dead: small stores do not rewrite their one pack for a few dead checkpoints.
pub const COMPACT_MIN_DEAD_BYTES: u64 = 64 << 10;

/// What a compaction did ([`crate::Checkpoints::compact`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Packs removed.
    pub packs: u64,
    /// Live checkpoints copied out of them, and their bytes.
    pub moved: u64,
    /// Bytes of the copied checkpoints.
    pub moved_bytes: u64,
    /// Bytes freed on disk: the removed packs' lengths less what was copied.
    pub reclaimed_bytes: u64,
}

/// See the module documentation.
pub(crate) struct Store {
    policy: LevelPolicy,
    packs: Packs,
    /// Per stream: version to where its checkpoint is.
    catalog: RwLock<HashMap<StreamId, BTreeMap<u64, Placed>>>,
    /// Validated checkpoints, least recently used evicted first.
    maps: Mutex<StampCache<(StreamId, u64), Arc<Checkpoint>>>,
    /// Checkpoints found missing or damaged, to rebuild.
    rebuild: Mutex<BTreeSet<(StreamId, u64)>>,
    /// Checkpoints found missing or damaged and not written again yet (whoever writes them,
    /// the builder or a rebuild, counts them as rebuilt).
    lost: Mutex<HashSet<(StreamId, u64)>>,
    /// Streams a writer's take-in found with a checkpoint due (their checkpoints lost since the
    /// catalog snapshot listed what was due), for the builder's next round. A leaf lock.
    found_due: Mutex<Vec<StreamId>>,
    written: AtomicU64,
    rebuilt: AtomicU64,
    damaged: AtomicU64,
    /// Whether any checkpoint after a heavy event was ever listed: views look for one only
    /// then, so stores without heavy events pay nothing for them.
    heavy_known: AtomicBool,
    /// The numbers of the machines that built checkpoints (`checkpoints/MACHINES`).
    machines: Mutex<MachineTable>,
    /// Whether checkpoints became dead since the last [`Store::take_dead_news`]: only then
    /// can a compaction find anything to do.
    dead_news: AtomicBool,
    /// A reader's store: it writes nothing and rebuilds nothing; a damaged checkpoint is only
    /// forgotten, and views read around it.
    read_only: bool,
    /// A reader's store: how far it has read the writer's packs, and checkpoints read there
    /// past their stream's head as the reader knows it (kept until the head passes them).
    followed: Mutex<Followed>,
    /// A reader's store: the streams it has read a checkpoint of. The checkpoints the writer
    /// publishes for them are validated when a refresh adopts them ([`Store::catch_up`]), not
    /// by the first view that reads each. A leaf lock.
    read_streams: Mutex<HashSet<StreamId>>,
    /// A reader's store: the checkpoints its open read, taken into the catalog a stream at a
    /// time (see `store/deferred.rs`).
    deferred: Mutex<Option<deferred::Deferred>>,
    /// Whether `deferred` may hold anything: the lookups of a writer's store (and of a reader's
    /// once everything is taken in) skip its lock.
    deferred_left: AtomicBool,
}

/// A reader's progress through the writer's packs (see [`Store::catch_up`]).
#[derive(Default)]
struct Followed {
    /// The published end read last.
    at: Option<PackEnd>,
    /// Checkpoints read there past their stream's head, with their pack.
    waiting: Vec<(u64, PackEntry)>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("packs", &self.packs)
            .finish_non_exhaustive()
    }
}

/// Whether a checkpoint is where the policy places one: at its version's level (or a full
/// state after a heavy event there), of the kind and against the base that level has there.
/// Checked at take-in too, not only at a first read, so that a writer whose policy changed
/// rebuilds what the old one placed differently instead of reading around it.
fn on_policy(policy: &LevelPolicy, meta: &CheckpointMeta) -> bool {
    policy.misplaced(meta).is_none()
}

fn placed(seq: u64, entry: &PackEntry) -> Placed {
    Placed {
        level: u32::from(entry.meta.level),
        base: entry.meta.base_version,
        pack: seq,
        offset: entry.offset,
        len: entry.len,
        machine: entry.meta.machine,
    }
}

impl Store {
    fn new(policy: LevelPolicy, packs: Packs, cache: StoreSizes, read_only: bool) -> Store {
        Store {
            policy,
            packs,
            catalog: RwLock::new(HashMap::new()),
            maps: Mutex::new(StampCache::new(cache.count, cache.bytes)),
            lost: Mutex::new(HashSet::new()),
            found_due: Mutex::new(Vec::new()),
            rebuild: Mutex::new(BTreeSet::new()),
            written: AtomicU64::new(0),
            rebuilt: AtomicU64::new(0),
            damaged: AtomicU64::new(0),
            heavy_known: AtomicBool::new(false),
            dead_news: AtomicBool::new(false),
            machines: Mutex::new(MachineTable::default()),
            read_only,
            followed: Mutex::new(Followed::default()),
            read_streams: Mutex::new(HashSet::new()),
            deferred: Mutex::new(None),
            deferred_left: AtomicBool::new(false),
        }
    }

    /// The number of machine `name` in the store's machine table, given it (and written to
    /// the table) before the first checkpoint it builds is written.
    ///
    /// # Errors
    /// Writing the table.
    pub(crate) fn machine_number(&self, name: &str) -> Result<u16> {
        lock(&self.machines).number_or_add(self.packs.storage(), self.packs.dir(), name)
    }

    /// Whether checkpoints became dead since the last call (see `dead_news`).
    pub(crate) fn take_dead_news(&self) -> bool {
        self.dead_news.swap(false, Ordering::Relaxed)
    }

    /// A reader's store: adds the checkpoints the writer (another process) published since the
    /// last call, up to each stream's head as `stream_of` says now; later ones wait for their
    /// head. So a view of a version the writer appended after the reader opened starts from
    /// them instead of replaying from an older one.
    pub(crate) fn catch_up(&self, stream_of: StreamOf<'_>) -> Result<()> {
        // What the open deferred goes in first: a copy published since is newer.
        self.take_in_all();
        let mut followed = lock(&self.followed);
        let (contents, now) = self.packs.catch_up(followed.at)?;
        // A machine the writer numbered since the table was read: read it again.
        let unnamed = {
            let table = lock(&self.machines);
            contents
                .iter()
                .flat_map(|pack| &pack.entries)
                .any(|e| e.meta.machine != 0 && table.name(e.meta.machine).is_none())
        };
        if unnamed {
            *lock(&self.machines) = MachineTable::load(self.packs.storage(), self.packs.dir()).0;
        }
        followed.at = now;
        let waiting = std::mem::take(&mut followed.waiting);
        let mut again: Vec<PackContents> = waiting
            .into_iter()
            .map(|(seq, entry)| PackContents {
                seq,
                index: None,
                entries: vec![entry],
            })
            .collect();
        again.extend(contents);
        let wanted: Vec<(StreamId, u64)> = {
            let read = lock(&self.read_streams);
            again
                .iter()
                .flat_map(|pack| &pack.entries)
                .map(|e| (StreamId(e.meta.stream_id), e.meta.version))
                .filter(|(id, _)| read.contains(id))
                .collect()
        };
        let mut report = CheckpointOpenReport::default();
        let keep = Keep {
            stream: stream_of,
            legacy: &|_| true,
        };
        self.take_in(again, &keep, &mut report, Some(&mut followed.waiting));
        drop(followed);
        // The new checkpoints of the streams this reader reads are validated here (one that
        // fails is forgotten, as a view would find it), so that following the writer costs the
        // refresh and not the first view that reads each: at a view rate of 2,000/s beside a
        // writer building 25 checkpoints a second, those first views were the views' p99.
        // Those past the head the reader knows wait in `followed` (none is listed yet).
        for (stream, version) in wanted {
            let _ = self.get(stream, version);
        }
        Ok(())
    }

    pub(crate) fn policy(&self) -> &LevelPolicy {
        &self.policy
    }

    fn read_catalog(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<StreamId, BTreeMap<u64, Placed>>> {
        self.catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_catalog(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<StreamId, BTreeMap<u64, Placed>>> {
        self.catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the catalog lists a checkpoint of `stream` at `version`.
    pub(crate) fn contains(&self, stream: StreamId, version: u64) -> bool {
        self.take_in_stream(stream);
        self.read_catalog()
            .get(&stream)
            .is_some_and(|m| m.contains_key(&version))
    }

    /// The newest version at or below `at` with a full checkpoint of `stream` on the grid (top
    /// level, or the anchor): a state every level's deltas after it can be built from, which a
    /// level-0 state is not (the builder's dirty sets restart only on the grid).
    pub(crate) fn latest_full_at_or_below(&self, stream: StreamId, at: u64) -> Option<u64> {
        self.take_in_stream(stream);
        self.read_catalog()
            .get(&stream)?
            .range(..=at)
            .rev()
            .find(|(version, r)| r.level != HEAVY_LEVEL && self.policy.is_full(**version, r.level))
            .map(|(v, _)| *v)
    }

    /// The streams taken in with a checkpoint due since the last call (see `found_due`).
    pub(crate) fn take_found_due(&self) -> Vec<StreamId> {
        std::mem::take(&mut lock(&self.found_due))
    }

    /// Whether `stream`, as `st` describes it, has a checkpoint due past its newest one (or
    /// past its fork point: a fork's checkpoints up to there are its source's). A deleted
    /// stream gets none.
    pub(crate) fn is_due(&self, stream: StreamId, st: &crate::catalog::StreamRef<'_>) -> bool {
        let shared = st.fork.map_or(0, |f| f.at.0);
        self.due_past(self.latest(stream), shared, st.head.0, st.deleted.is_none())
    }

    /// The rule of [`Store::is_due`], given the stream's newest checkpoint, fork point, head
    /// and whether it is live.
    pub(super) fn due_past(&self, newest: Option<u64>, shared: u64, head: u64, live: bool) -> bool {
        live && newest.unwrap_or(0).max(shared) + self.policy.first_interval() <= head
    }

    /// The newest checkpoint version of `stream`, if any.
    pub(crate) fn latest(&self, stream: StreamId) -> Option<u64> {
        self.take_in_stream(stream);
        self.read_catalog()
            .get(&stream)?
            .last_key_value()
            .map(|(v, _)| *v)
    }

    /// The newest checkpoint of `stream` after a heavy event with a version in `versions`.
    pub(crate) fn latest_heavy_in(
        &self,
        stream: StreamId,
        versions: std::ops::RangeInclusive<u64>,
    ) -> Option<u64> {
        self.take_in_stream(stream);
        if !self.heavy_known.load(Ordering::Relaxed) {
            return None;
        }
        self.read_catalog()
            .get(&stream)?
            .range(versions)
            .rev()
            .find(|(_, r)| r.level == HEAVY_LEVEL)
            .map(|(v, _)| *v)
    }

    /// Appends the encoded checkpoint `bytes` of `stream` at `version` to the packs and lists
    /// it. Returns its length.
    pub(crate) fn write(
        &self,
        stream: StreamId,
        version: u64,
        level: u32,
        base: u64,
        machine: u16,
        bytes: &[u8],
    ) -> Result<u64> {
        let (pack, offset) = self.packs.append(bytes)?;
        if level == HEAVY_LEVEL {
            self.heavy_known.store(true, Ordering::Relaxed);
        }
        let place = Placed {
            level,
            base,
            pack,
            offset,
            len: bytes.len() as u64,
            machine,
        };
        if self
            .write_catalog()
            .entry(stream)
            .or_default()
            .insert(version, place)
            .is_some()
        {
            self.dead_news.store(true, Ordering::Relaxed);
        }
        Ok(place.len)
    }

    /// Forgets the checkpoints of `stream` past `version` (a deleted stream's, past what its
    /// live forks read): their bytes are dead, for compaction to reclaim. Returns how many.
    pub(crate) fn drop_above(&self, stream: StreamId, version: u64) -> u64 {
        self.take_in_stream(stream);
        let dropped = match self.write_catalog().get_mut(&stream) {
            Some(versions) => versions.split_off(&(version + 1)).len() as u64,
            None => 0,
        };
        if dropped > 0 {
            self.dead_news.store(true, Ordering::Relaxed);
        }
        dropped
    }

    /// Publishes what was written, for readers in other processes.
    pub(crate) fn publish(&self) -> Result<()> {
        self.packs.publish()
    }

    /// Indexes the active pack up to its end (a clean close; best effort): the next open
    /// reads that index instead of scanning the pack.
    pub(crate) fn index_active_pack(&self) {
        self.packs.index_active();
    }

    /// Checkpoints written since open (built forward).
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Checkpoints rebuilt since open.
    pub(crate) fn rebuilt(&self) -> u64 {
        self.rebuilt.load(Ordering::Relaxed)
    }

    /// Damaged checkpoints found since open.
    pub(crate) fn damaged(&self) -> u64 {
        self.damaged.load(Ordering::Relaxed)
    }

    /// Makes every checkpoint written durable (the active pack's bytes).
    ///
    /// # Errors
    /// I/O errors naming the pack.
    pub(crate) fn sync_packs(&self) -> Result<()> {
        self.packs.sync()
    }

    /// Counts a checkpoint written: as rebuilt if it had been found missing or damaged.
    pub(crate) fn count_written(&self, stream: StreamId, version: u64) {
        let counter = if lock(&self.lost).remove(&(stream, version)) {
            &self.rebuilt
        } else {
            &self.written
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The validated checkpoint of `stream` at `version`, or `None` if there is none (not
    /// built yet, or damaged: then it is forgotten and queued for a rebuild).
    pub(crate) fn get(&self, stream: StreamId, version: u64) -> Option<Arc<Checkpoint>> {
        if let Some(map) = lock(&self.maps).get(&(stream, version)) {
            return Some(map);
        }
        self.take_in_stream(stream);
        let place = *self.read_catalog().get(&stream)?.get(&version)?;
        let name = self.packs.describe(place.pack, place.offset);
        let opened = match self.packs.bytes(place.pack, place.offset + place.len) {
            Some(bytes) => Checkpoint::open_in(&bytes, place.offset, place.len, name),
            None => Err(CheckpointError::Truncated {
                path: name,
                len_bytes: 0,
                expected_bytes: place.len,
            }),
        };
        match opened.and_then(|c| self.check_meta(c, stream, version, place)) {
            Ok(checkpoint) => {
                if self.read_only {
                    lock(&self.read_streams).insert(stream);
                }
                let checkpoint = Arc::new(checkpoint);
                let weight = CHECKPOINT_WEIGHT + checkpoint.index_memory_bytes() as u64;
                let evicted = lock(&self.maps).put((stream, version), checkpoint.clone(), weight);
                // Dropped here, after the lock: a full cache evicts many at once.
                drop(evicted);
                Some(checkpoint)
            }
            Err(_) => {
                self.mark_damaged(stream, version);
                None
            }
        }
    }

    /// Checks that a valid checkpoint is the one the policy expects where the catalog has it.
    fn check_meta(
        &self,
        checkpoint: Checkpoint,
        stream: StreamId,
        version: u64,
        place: Placed,
    ) -> helios_checkpoint::Result<Checkpoint> {
        let meta = checkpoint.meta();
        let reason = if meta.stream_id == stream.0
            && meta.version == version
            && meta.machine == place.machine
            && u32::from(meta.level) == place.level
        {
            self.policy.misplaced(meta)
        } else {
            Some(format!(
                "holds {meta:?}, expected stream {}, version {version}, level {}",
                stream.0, place.level
            ))
        };
        match reason {
            None => Ok(checkpoint),
            Some(reason) => Err(CheckpointError::InvalidHeader {
                path: checkpoint.path().to_path_buf(),
                offset: 0,
                reason,
            }),
        }
    }

    /// Forgets a damaged checkpoint and (a writer) queues it for a rebuild.
    fn mark_damaged(&self, stream: StreamId, version: u64) {
        let removed = self
            .write_catalog()
            .get_mut(&stream)
            .and_then(|m| m.remove(&version))
            .is_some();
        if removed {
            self.damaged.fetch_add(1, Ordering::Relaxed);
            self.dead_news.store(true, Ordering::Relaxed);
            if !self.read_only {
                lock(&self.rebuild).insert((stream, version));
                lock(&self.lost).insert((stream, version));
            }
        }
    }

    /// Validates every checkpoint of `stream` in `versions`: after a rebuild, the finer
    /// checkpoints stacked on the rebuilt one were never read while it was damaged, so damage
    /// in them would otherwise only be found by a later view. Damaged ones are queued.
    pub(crate) fn probe(&self, stream: StreamId, versions: std::ops::Range<u64>) {
        self.take_in_stream(stream);
        let listed: Vec<u64> = self
            .read_catalog()
            .get(&stream)
            .map(|m| m.range(versions).map(|(v, _)| *v).collect())
            .unwrap_or_default();
        for version in listed {
            let _ = self.get(stream, version);
        }
    }

    /// Takes the queue of checkpoints to rebuild.
    pub(crate) fn take_rebuilds(&self) -> BTreeSet<(StreamId, u64)> {
        std::mem::take(&mut *lock(&self.rebuild))
    }

    /// Maps the pages of the packs and of the pack indexes not taken in yet that the page
    /// cache holds into this process (see `ReadOnlyBytes::map_resident`), until `stop` says
    /// so; returns whether it got to the end.
    pub(crate) fn map_resident(&self, stop: &dyn Fn() -> bool) -> bool {
        let indexes = lock(&self.deferred)
            .as_ref()
            .map(deferred::Deferred::index_bytes)
            .unwrap_or_default();
        indexes.iter().all(|bytes| bytes.map_resident(stop)) && self.packs.map_resident(stop)
    }

    /// Whether any checkpoint waits for a rebuild.
    pub(crate) fn has_rebuilds(&self) -> bool {
        !lock(&self.rebuild).is_empty()
    }

    /// Puts back rebuilds that could not be done yet.
    pub(crate) fn requeue_rebuilds(&self, items: impl IntoIterator<Item = (StreamId, u64)>) {
        lock(&self.rebuild).extend(items);
    }

    /// The checkpoints of `stream`, by version.
    pub(crate) fn list(&self, stream: StreamId) -> Vec<CheckpointInfo> {
        self.take_in_stream(stream);
        self.read_catalog()
            .get(&stream)
            .map(|m| {
                m.iter()
                    .map(|(&version, r)| CheckpointInfo {
                        version: Version(version),
                        level: r.level,
                        base: Version(r.base),
                        len_bytes: r.len,
                        pack: self.packs.path(r.pack),
                        offset: r.offset,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Counts of checkpoints, packs and work.
    pub(crate) fn stats(&self) -> CheckpointStats {
        self.take_in_all();
        let packs = self.packs.files();
        let mut stats = CheckpointStats {
            by_level: vec![LevelStats::default(); self.policy.levels() as usize],
            packs: packs.len() as u64,
            pack_bytes: packs.iter().map(|(_, len)| len).sum(),
            written: self.written.load(Ordering::Relaxed),
            rebuilt: self.rebuilt.load(Ordering::Relaxed),
            damaged: self.damaged.load(Ordering::Relaxed),
            ..CheckpointStats::default()
        };
        for records in self.read_catalog().values() {
            for record in records.values() {
                stats.count += 1;
                stats.bytes += record.len;
                if record.level == HEAVY_LEVEL {
                    stats.after_heavy_events.count += 1;
                    stats.after_heavy_events.bytes += record.len;
                } else if let Some(level) = stats
                    .by_level
                    .get_mut((record.level as usize).saturating_sub(1))
                {
                    level.count += 1;
                    level.bytes += record.len;
                }
            }
        }
        stats
    }

    /// Reclaims the packs that are mostly dead bytes (checkpoints superseded by a rebuild,
    /// found damaged, or of deleted streams no live fork reads): at least half of the pack and
    /// at least [`COMPACT_MIN_DEAD_BYTES`]. Their live checkpoints are copied to the active
    /// pack (a new one when the active pack is itself compacted), which is synced and
    /// published, and then their files are removed. Views go on meanwhile: a checkpoint read
    /// from an old pack stays valid (its map outlives the file), and the catalog moves to the
    /// copy at once. A crash midway leaves both copies, and the next open keeps the newest.
    pub(crate) fn compact(&self) -> Result<CompactReport> {
        self.take_in_all();
        let mut live: HashMap<u64, u64> = HashMap::new();
        for versions in self.read_catalog().values() {
            for place in versions.values() {
                *live.entry(place.pack).or_default() += place.len;
            }
        }
        let active = self.packs.active();
        let victims: Vec<(u64, u64)> = self
            .packs
            .files()
            .into_iter()
            .filter(|&(seq, len)| {
                let dead = len.saturating_sub(live.get(&seq).copied().unwrap_or(0));
                dead >= COMPACT_MIN_DEAD_BYTES && dead * 2 >= len
            })
            .collect();
        let mut report = CompactReport::default();
        if victims.is_empty() {
            return Ok(report);
        }
        if victims.iter().any(|&(seq, _)| Some(seq) == active) {
            self.packs.roll();
        }
        for &(seq, len) in &victims {
            let moving: Vec<(StreamId, u64, Placed)> = self
                .read_catalog()
                .iter()
                .flat_map(|(&id, versions)| {
                    versions
                        .iter()
                        .filter(|(_, p)| p.pack == seq)
                        .map(move |(&v, &p)| (id, v, p))
                })
                .collect();
            for (id, version, old) in moving {
                let Some(bytes) = self.packs.bytes(seq, old.offset + old.len) else {
                    continue; // Unreadable: it goes with the pack, and is rebuilt if missed.
                };
                let range = usize::try_from(old.offset).unwrap_or(usize::MAX)
                    ..usize::try_from(old.offset + old.len).unwrap_or(usize::MAX);
                let Some(checkpoint) = bytes.get(range) else {
                    continue;
                };
                let (pack, offset) = self.packs.append(checkpoint)?;
                let mut catalog = self.write_catalog();
                // Unless a rebuild replaced it meanwhile.
                if let Some(place) = catalog.get_mut(&id).and_then(|m| m.get_mut(&version))
                    && *place == old
                {
                    place.pack = pack;
                    place.offset = offset;
                }
                report.moved += 1;
                report.moved_bytes += old.len;
            }
            report.packs += 1;
            report.reclaimed_bytes += len;
        }
        self.packs.sync()?;
        self.packs.publish()?;
        for &(seq, _) in &victims {
            self.packs.remove(seq)?;
        }
        report.reclaimed_bytes = report.reclaimed_bytes.saturating_sub(report.moved_bytes);
        Ok(report)
    }

    /// Evicts the pages of every pack (see [`helios_log::storage::ReadOnlyBytes::evict_pages`]).
    #[cfg(feature = "bench-hooks")]
    pub(crate) fn evict_pages(&self) -> Result<()> {
        self.packs.evict_pages()
    }
}
