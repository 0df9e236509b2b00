//! Opening the checkpoint store: the catalog built from the packs' checkpoint headers, kept
//! or dropped against the streams' heads, the level policy and the state machines, and the
//! gaps below a stream's newest checkpoint queued for a rebuild.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use helios_checkpoint::HEAVY_LEVEL;
use helios_checkpoint::LevelPolicy;
use helios_checkpoint::pack::PackEntry;
use helios_log::storage::Storage;
use helios_log::{StreamId, Version};

use super::super::packs::{Decode, Legacy, PackContents, Packs};
use super::deferred::{Deferred, StreamsAtOpen};
use super::{Followed, MachineTable, Placed, Store, StoreSizes, on_policy, placed};
use crate::engine::lock;
use crate::error::Result;
use crate::meta::Meta;

/// What a stream needs from the store at open.
pub(crate) struct StreamAtOpen<'a> {
    pub id: StreamId,
    pub head: Version,
    /// For a fork, its fork point: its checkpoints up to there are its source's.
    pub shared: u64,
    pub machine: &'a str,
}

/// What reading the packs did at open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointOpenReport {
    /// Pack files read.
    pub packs: u64,
    /// Of those, full packs whose checkpoints were read from their index (`<seq>.pidx`)
    /// instead of a scan of the pack.
    pub indexed_packs: u64,
    /// Each stream's checkpoints are taken into the catalog at its first use, not at open: a
    /// reader's always, a writer's after a clean close with the same policy and machines
    /// (then `found` counts every checkpoint in the packs, and what is dropped or missing is
    /// found stream by stream, not counted here).
    pub deferred: bool,
    /// Checkpoints found in the packs and kept; with `deferred`, every checkpoint found in
    /// the packs.
    pub found: u64,
    /// Checkpoints found in the packs and not kept: past their stream's head, of unknown
    /// streams, not at a checkpoint version of the current policy, built by another state
    /// machine, or superseded by a newer copy. Their bytes are dead.
    pub dropped: u64,
    /// Checkpoints below a stream's newest one that no pack holds, for example after damage
    /// to a pack (queued for a rebuild).
    pub gaps: u64,
    /// Bytes of a torn tail (checkpoints being written when a writer stopped) overwritten
    /// with zeros in the last pack.
    pub cut_bytes: u64,
    /// Damage met in the packs: which pack, at which offset, and what. Checkpoints past it are
    /// rebuilt from the log (a writer) or read around (a reader).
    pub damage: Vec<String>,
    /// Files removed: unfinished pack creations, and checkpoint files that a migration from
    /// store format 1 or 2 copied into packs.
    pub deleted_files: u64,
}

/// A stream's head and the name of its configured state machine, if the stream is known.
pub(crate) type StreamOf<'a> = &'a dyn Fn(StreamId) -> Option<(u64, &'a str)>;

/// Which checkpoints [`Store::take_in`] keeps: those of a known stream (at or below its head)
/// built by its configured machine.
pub(crate) struct Keep<'a> {
    pub(crate) stream: StreamOf<'a>,
    /// Whether a checkpoint numbered 0 (written before the machine table existed) is the
    /// stream's: fjall's record of the stream's machine then, if any, is its configured one.
    pub(crate) legacy: &'a dyn Fn(StreamId) -> bool,
}

/// The versions on the finest level's grid, past `shared` and below the newest of `versions`
/// (a stream's checkpoints), that have no checkpoint. The builder only ever builds forward from
/// a stream's newest checkpoint, so these would never come back.
pub(super) fn gaps(versions: &BTreeMap<u64, Placed>, shared: u64, fanout: u64) -> Vec<u64> {
    let mut missing = Vec::new();
    let mut expected = (shared / fanout + 1) * fanout;
    let on_grid = versions.iter().filter(|(_, r)| r.level != HEAVY_LEVEL);
    for (&version, _) in on_grid {
        while expected < version {
            missing.push(expected);
            expected += fanout;
        }
        expected = version + fanout;
    }
    missing
}

/// Stream `id` of `streams`, which hold every stream in id order (ids are dense from 1).
fn stream_at<'a, 'b>(
    streams: &'a [StreamAtOpen<'b>],
    id: StreamId,
) -> Option<&'a StreamAtOpen<'b>> {
    let at = usize::try_from(id.0).ok()?.checked_sub(1)?;
    streams.get(at).filter(|s| s.id == id)
}

impl Store {
    /// Opens the packs in `dir` (created if missing) for writing, their indexes read in place:
    /// each stream's checkpoints are taken into the catalog at its first use, as `at_open`
    /// describes the stream (its gaps then queued for rebuilds), or all at once by
    /// [`Store::take_in_everything`].
    pub(crate) fn open(
        dir: PathBuf,
        storage: Arc<dyn Storage>,
        store_id: u64,
        policy: LevelPolicy,
        cache: StoreSizes,
        at_open: StreamsAtOpen,
    ) -> Result<(Store, CheckpointOpenReport)> {
        let (packs, contents, notes) = Packs::open_writer(
            dir,
            storage,
            store_id,
            Legacy::Remove,
            cache.pack_bytes,
            Decode::Deferred,
        )?;
        let store = Store::new(policy, packs, cache, false);
        let mut report = CheckpointOpenReport {
            packs: notes.packs,
            indexed_packs: notes.indexed_packs,
            cut_bytes: notes.cut_bytes,
            damage: notes.damage,
            deleted_files: notes.deleted_files,
            ..CheckpointOpenReport::default()
        };
        store.defer(contents, at_open, true, &mut report);
        Ok((store, report))
    }

    /// Takes every checkpoint not taken in yet into the catalog, given every stream's reachable
    /// head and state machine (and, for the checkpoints of an older store, the machines its
    /// `meta` recorded), and queues every gap for a rebuild: what an open does when it cannot
    /// leave that to each stream's first use. Counts in `report` what it found, dropped and
    /// queued.
    ///
    /// # Errors
    /// Errors reading `meta`.
    pub(crate) fn take_in_everything(
        &self,
        meta: Option<&Meta>,
        streams: &[StreamAtOpen<'_>],
        report: &mut CheckpointOpenReport,
    ) -> Result<()> {
        report.deferred = false;
        let Some(deferred) = lock(&self.deferred).take() else {
            return Ok(());
        };
        self.deferred_left.store(false, Ordering::Release);
        let contents = deferred.into_contents(&mut report.damage);
        // Checkpoints written before the machine table: fjall recorded each stream's machine.
        let recorded = match meta {
            Some(meta) => meta.checkpoint_machines()?,
            None => Vec::new(),
        };
        let by_id = |id: StreamId| stream_at(streams, id);
        let retired: HashSet<StreamId> = recorded
            .iter()
            .filter(|(id, name)| by_id(*id).is_some_and(|s| s.machine != name))
            .map(|(id, _)| *id)
            .collect();
        let keep = Keep {
            stream: &|id| by_id(id).map(|s| (s.head.0, s.machine)),
            legacy: &|id| !retired.contains(&id),
        };
        report.found = 0;
        self.take_in(contents, &keep, report, None);
        // Gaps: the builder only ever builds forward from a stream's newest checkpoint, so a
        // checkpoint missing below it would never come back, and views around it would replay
        // more than `fanout - 1` events.
        let fanout = self.policy.first_interval();
        let mut rebuild = BTreeSet::new();
        for (&id, versions) in self.read_catalog().iter() {
            let shared = by_id(id).map_or(0, |s| s.shared);
            for version in gaps(versions, shared, fanout) {
                if rebuild.insert((id, version)) {
                    report.gaps += 1;
                }
            }
        }
        lock(&self.lost).extend(rebuild.iter().copied());
        lock(&self.rebuild).extend(rebuild);
        Ok(())
    }

    /// Opens the packs in `dir` to read them, changing nothing: the checkpoints published by
    /// the writer, of known streams, at or below their heads and on the policy's grid, make the
    /// catalog (each is checked when first read). No fjall is read: a reader does not open it.
    pub(crate) fn open_read_only(
        dir: PathBuf,
        storage: Arc<dyn Storage>,
        store_id: Option<u64>,
        policy: LevelPolicy,
        cache: StoreSizes,
        at_open: StreamsAtOpen,
    ) -> Result<(Store, CheckpointOpenReport)> {
        let (packs, contents, notes, published) = Packs::open_reader(dir, storage, store_id)?;
        let store = Store::new(policy, packs, cache, true);
        let mut report = CheckpointOpenReport {
            packs: notes.packs,
            indexed_packs: notes.indexed_packs,
            damage: notes.damage,
            ..CheckpointOpenReport::default()
        };
        // Which checkpoints each stream keeps is decided at the stream's first use: a reader
        // that reads one stream never builds the catalog of the others.
        store.defer(contents, at_open, false, &mut report);
        *lock(&store.followed) = Followed {
            at: published,
            waiting: Vec::new(),
        };
        Ok((store, report))
    }

    /// Keeps `contents` to take into the catalog stream by stream (see `deferred.rs`), for a
    /// writer's store or a reader's, and counts them found.
    fn defer(
        &self,
        contents: Vec<PackContents>,
        at_open: StreamsAtOpen,
        writer: bool,
        report: &mut CheckpointOpenReport,
    ) {
        self.load_machines(&contents, report);
        report.deferred = true;
        if contents
            .iter()
            .all(|p| p.index.is_none() && p.entries.is_empty())
        {
            // Nothing to take in (a new store): no lookup need look here.
            return;
        }
        let deferred = Deferred::new(contents, at_open, writer);
        report.found = deferred.count();
        *lock(&self.deferred) = Some(deferred);
        self.deferred_left.store(true, Ordering::Release);
    }

    /// Reads the machine table (a damaged one is reported, and names nothing), and notes the
    /// numbers the packs hold so that none is given again.
    ///
    /// The entries of an index read in place are looked at only when the table is missing or
    /// damaged: a sound one already numbers every machine a checkpoint names (a number is
    /// written to the table before any checkpoint carries it).
    fn load_machines(&self, contents: &[PackContents], report: &mut CheckpointOpenReport) {
        let (mut table, damage) = MachineTable::load(self.packs.storage(), self.packs.dir());
        let unknown = damage.is_some() || table.name(1).is_none();
        report.damage.extend(damage);
        for entry in contents.iter().flat_map(|pack| &pack.entries) {
            table.saw(entry.meta.machine);
        }
        if unknown {
            for index in contents.iter().filter_map(|pack| pack.index.as_ref()) {
                for entry in (0..index.len()).filter_map(|k| index.entry(k)) {
                    table.saw(entry.meta.machine);
                }
            }
        }
        *lock(&self.machines) = table;
    }

    /// Adds the checkpoints in `contents` that `keep` keeps (see the module documentation);
    /// with `pending`, those past their stream's head are set aside there instead of dropped.
    pub(super) fn take_in(
        &self,
        contents: Vec<PackContents>,
        keep: &Keep<'_>,
        report: &mut CheckpointOpenReport,
        mut pending: Option<&mut Vec<(u64, PackEntry)>>,
    ) {
        let machines = lock(&self.machines);
        // The stream's head, if the checkpoint is the stream's state: built by its machine.
        let head_of = |id: StreamId, machine: u16| {
            let (head, configured) = (keep.stream)(id)?;
            let ours = match machine {
                0 => (keep.legacy)(id),
                n => machines.name(n) == Some(configured),
            };
            ours.then_some(head)
        };
        // Grouped by stream first, each group then sorted by version (a stable sort keeps a
        // newer copy after an older one): a stream new to the catalog gets its map built in one
        // go, not by an insert per checkpoint into a map among hundreds of thousands.
        // Stream ids are dense from 1: a vector by id from the lowest one here, not a hash map
        // (so one stream taken in costs one group, whatever its id).
        let lowest = contents
            .iter()
            .flat_map(|pack| pack.entries.iter().map(|e| e.meta.stream_id))
            .min()
            .unwrap_or(1)
            .max(1);
        let mut groups: Vec<Vec<(u64, Placed)>> = Vec::new();
        for pack in contents {
            debug_assert!(pack.index.is_none(), "an index's entries are decoded first");
            for entry in pack.entries {
                let (id, version) = (StreamId(entry.meta.stream_id), entry.meta.version);
                let level = u32::from(entry.meta.level);
                let head = head_of(id, entry.meta.machine);
                if let (Some(pending), Some(head)) = (pending.as_deref_mut(), head)
                    && version > head
                    && on_policy(&self.policy, &entry.meta)
                {
                    pending.push((pack.seq, entry));
                    continue;
                }
                if !(on_policy(&self.policy, &entry.meta) && head.is_some_and(|h| version <= h)) {
                    report.dropped += 1;
                    continue;
                }
                if level == HEAVY_LEVEL {
                    self.heavy_known.store(true, Ordering::Relaxed);
                }
                let Some(at) =
                    id.0.checked_sub(lowest)
                        .and_then(|i| usize::try_from(i).ok())
                else {
                    report.dropped += 1;
                    continue;
                };
                if at >= groups.len() {
                    groups.resize_with(at + 1, Vec::new);
                }
                groups[at].push((version, placed(pack.seq, &entry)));
            }
        }
        drop(machines);
        let mut catalog = self.write_catalog();
        catalog.reserve(groups.iter().filter(|g| !g.is_empty()).count());
        for (at, mut group) in groups.into_iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let id = StreamId(at as u64 + lowest);
            group.sort_by_key(|(version, _)| *version);
            let listed = catalog.entry(id).or_default();
            if listed.is_empty() {
                let before = group.len() as u64;
                // Of copies of one version, the newest (last) stays.
                group.reverse();
                group.dedup_by_key(|(version, _)| *version);
                report.dropped += before - group.len() as u64;
                report.found += group.len() as u64;
                *listed = group.into_iter().collect();
                continue;
            }
            for (version, place) in group {
                if listed.insert(version, place).is_some() {
                    report.dropped += 1; // An older copy, superseded.
                } else {
                    report.found += 1;
                }
            }
        }
        if report.dropped > 0 {
            self.dead_news.store(true, Ordering::Relaxed);
        }
    }
}
