//! The checkpoint store: which checkpoint files exist, where they live, and the memory maps of
//! the ones in use.
//!
//! Files live in `checkpoints/`, one per `(stream, version)`, named
//! `<stream id, 16 hex digits>-<version, 20 digits>-l<level>.ckpt`. The fjall `checkpoints`
//! keyspace lists them (see [`crate::meta`]); both are derived data, reconciled at open:
//! - a file with no catalog entry (written just before a crash) is adopted;
//! - an entry whose file is gone is dropped and the checkpoint queued for a rebuild;
//! - a checkpoint version below a stream's newest checkpoint with neither a file nor an entry
//!   (a file deleted along with the metadata) is queued for a rebuild;
//! - a file past its stream's head (its events were lost with a torn tail), of an unknown
//!   stream, at a version the level policy does not checkpoint, or built by another state
//!   machine, is deleted;
//! - stray `*.tmp` files (a write cut short) are deleted.
//!
//! A file is validated when first mapped ([`Checkpoint::open`]: length, CRCs, rkyv validation,
//! block structure) and its header checked against what the policy expects at its version. A
//! file that fails is damaged: it is deleted, forgotten, counted, and queued for a rebuild;
//! readers fall back to coarser layers and a longer replay meanwhile.
//!
//! Invariants:
//! - Every file in the in-memory catalog was complete when it was listed (files are written
//!   to a temporary name and renamed), though it may have been damaged since; no file is ever
//!   modified after its rename, so a map of it stays valid even after the file is deleted.
//! - A catalog entry is added only after its file is in place: a crash between the two leaves
//!   an orphan file, which the next open adopts.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use helios_checkpoint::{Checkpoint, CheckpointKind, HEAVY_LEVEL, LevelPolicy};
use helios_log::{StreamId, Version};

use super::{CheckpointInfo, CheckpointStats, LevelStats};
use crate::cache::StampCache;
use crate::error::{Error, Result};
use crate::meta::{CheckpointRecord, Meta};

/// The checkpoint directory inside a store.
pub(crate) const CHECKPOINT_DIR: &str = "checkpoints";
const EXTENSION: &str = "ckpt";

/// The file name of the checkpoint of `stream` at `version`.
pub(crate) fn file_name(stream: StreamId, version: u64, level: u32) -> String {
    format!("{:016x}-{version:020}-l{level}.{EXTENSION}", stream.0)
}

/// Parses a name made by [`file_name`].
fn parse_name(name: &str) -> Option<(StreamId, u64, u32)> {
    let stem = name.strip_suffix(".ckpt")?;
    let mut parts = stem.split('-');
    let stream = u64::from_str_radix(parts.next()?, 16).ok()?;
    let version = parts.next()?.parse().ok()?;
    let level = parts.next()?.strip_prefix('l')?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((StreamId(stream), version, level))
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| {
        Error::Checkpoint(helios_checkpoint::CheckpointError::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// What a stream needs from the store at open.
pub(crate) struct StreamAtOpen<'a> {
    pub id: StreamId,
    pub head: Version,
    pub machine: &'a str,
}

/// What reconciling the files with the catalog did at open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointOpenReport {
    /// Files found without a catalog entry, and adopted.
    pub adopted: u64,
    /// Catalog entries whose file was missing (queued for a rebuild).
    pub missing: u64,
    /// Checkpoints below a stream's newest one that neither the catalog nor the files have,
    /// for example after a file was deleted along with the metadata (queued for a rebuild).
    pub gaps: u64,
    /// Files deleted: past their stream's head, of unknown streams, not at a checkpoint
    /// version of the current policy, built by another state machine, or unfinished writes.
    pub deleted: u64,
    /// Files a read-only open left alone for the same reasons (it deletes nothing).
    pub ignored: u64,
}

/// See the module documentation.
pub(crate) struct Store {
    dir: PathBuf,
    policy: LevelPolicy,
    /// Per stream: version to its catalog record.
    catalog: RwLock<HashMap<StreamId, BTreeMap<u64, CheckpointRecord>>>,
    /// Validated maps, least recently used evicted first.
    maps: Mutex<StampCache<(StreamId, u64), Arc<Checkpoint>>>,
    /// Checkpoints found missing or damaged, to rebuild.
    rebuild: Mutex<BTreeSet<(StreamId, u64)>>,
    /// Checkpoints found missing or damaged and not written again yet (whoever writes them,
    /// the builder or a rebuild, counts them as rebuilt).
    lost: Mutex<HashSet<(StreamId, u64)>>,
    written: AtomicU64,
    rebuilt: AtomicU64,
    damaged: AtomicU64,
    /// Whether any checkpoint after a heavy event was ever listed: views look for one only
    /// then, so stores without heavy events pay nothing for them.
    heavy_known: AtomicBool,
    /// A reader's store: it deletes nothing and rebuilds nothing; a damaged checkpoint is only
    /// forgotten, and views read around it.
    read_only: bool,
    /// A reader's store: per stream, the next checkpoint version to look for among the files
    /// the writer writes after the reader opened ([`Store::discover`]).
    discover_from: Mutex<HashMap<StreamId, u64>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `dir` (created if missing) and reconciles it with the catalog in
    /// `meta` and the streams' heads.
    pub(crate) fn open(
        dir: PathBuf,
        policy: LevelPolicy,
        maps_max: usize,
        meta: &Meta,
        streams: &[StreamAtOpen<'_>],
    ) -> Result<(Store, CheckpointOpenReport)> {
        std::fs::create_dir_all(&dir).map_err(io_error("create directory", &dir))?;
        let mut report = CheckpointOpenReport::default();
        let known = meta.checkpoint_catalog()?;
        let by_id: HashMap<StreamId, &StreamAtOpen<'_>> =
            streams.iter().map(|s| (s.id, s)).collect();
        // Streams whose checkpoints were built by another machine than the configured one.
        let retired: HashSet<StreamId> = known
            .machines
            .iter()
            .filter(|(id, name)| by_id.get(id).is_some_and(|s| s.machine != name))
            .map(|(id, _)| *id)
            .collect();
        let mut recorded: HashMap<(StreamId, u64), CheckpointRecord> = known
            .entries
            .iter()
            .map(|&(id, version, record)| ((id, version), record))
            .collect();
        let mut batch = meta.batch();
        let mut catalog: HashMap<StreamId, BTreeMap<u64, CheckpointRecord>> = HashMap::new();
        let listing = std::fs::read_dir(&dir).map_err(io_error("list", &dir))?;
        for entry in listing {
            let entry = entry.map_err(io_error("list", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            if name.ends_with(".tmp") {
                std::fs::remove_file(&path).map_err(io_error("remove", &path))?;
                report.deleted += 1;
                continue;
            }
            let Some((id, version, level)) = parse_name(name) else {
                continue; // Not ours: leave it alone.
            };
            let on_policy = match policy.level_at(version) {
                Some(expected) => level == expected,
                None => level == HEAVY_LEVEL,
            };
            let keep = by_id.get(&id).is_some_and(|s| version <= s.head.0)
                && !retired.contains(&id)
                && on_policy;
            let record = recorded.remove(&(id, version));
            if !keep {
                std::fs::remove_file(&path).map_err(io_error("remove", &path))?;
                if record.is_some() {
                    batch.remove_checkpoint(id, version);
                }
                report.deleted += 1;
                continue;
            }
            let record = match record {
                Some(record) => record,
                None => {
                    let len = entry.metadata().map_err(io_error("stat", &path))?.len();
                    // Its fingerprint is unknown: the file is trusted as far as its own checks go.
                    let record = CheckpointRecord {
                        level,
                        base: policy.base_of(version, level),
                        file_len_bytes: len,
                        archive_crc: 0,
                    };
                    batch.put_checkpoint(id, version, &record);
                    report.adopted += 1;
                    record
                }
            };
            catalog.entry(id).or_default().insert(version, record);
        }
        // Entries left have no file.
        let mut rebuild = BTreeSet::new();
        for ((id, version), _) in recorded {
            batch.remove_checkpoint(id, version);
            if by_id.get(&id).is_some_and(|s| version <= s.head.0) && !retired.contains(&id) {
                rebuild.insert((id, version));
                report.missing += 1;
            }
        }
        // Gaps: the builder only ever builds forward from a stream's newest checkpoint, so a
        // checkpoint missing below it with no catalog entry to say so would never come back,
        // and views around it would replay more than `fanout - 1` events.
        let fanout = policy.fanout();
        for (&id, versions) in &catalog {
            let mut expected = fanout;
            let on_grid = versions.iter().filter(|(_, r)| r.level != HEAVY_LEVEL);
            for (&version, _) in on_grid {
                while expected < version {
                    if rebuild.insert((id, expected)) {
                        report.gaps += 1;
                    }
                    expected += fanout;
                }
                expected = version + fanout;
            }
        }
        for stream in streams {
            batch.put_checkpoint_machine(stream.id, stream.machine);
        }
        batch.commit()?;
        let heavy_known = catalog
            .values()
            .any(|versions| versions.values().any(|r| r.level == HEAVY_LEVEL));
        let store = Store {
            dir,
            policy,
            catalog: RwLock::new(catalog),
            maps: Mutex::new(StampCache::new(maps_max)),
            lost: Mutex::new(rebuild.iter().copied().collect()),
            rebuild: Mutex::new(rebuild),
            written: AtomicU64::new(0),
            rebuilt: AtomicU64::new(0),
            damaged: AtomicU64::new(0),
            heavy_known: AtomicBool::new(heavy_known),
            read_only: false,
            discover_from: Mutex::new(HashMap::new()),
        };
        Ok((store, report))
    }

    /// Opens the store in `dir` to read it, changing nothing: the files listed there of known
    /// streams, at or below their heads and on the policy's grid, make the catalog (their
    /// headers are checked when first read, as adopted files are); every other file is left
    /// alone. No fjall catalog is read: a reader does not open fjall.
    pub(crate) fn open_read_only(
        dir: PathBuf,
        policy: LevelPolicy,
        maps_max: usize,
        streams: &[StreamAtOpen<'_>],
    ) -> Result<(Store, CheckpointOpenReport)> {
        let mut report = CheckpointOpenReport::default();
        let heads: HashMap<StreamId, Version> = streams.iter().map(|s| (s.id, s.head)).collect();
        let mut catalog: HashMap<StreamId, BTreeMap<u64, CheckpointRecord>> = HashMap::new();
        // A store without checkpoints yet has no directory: nothing to read.
        if let Ok(listing) = std::fs::read_dir(&dir) {
            for entry in listing {
                let entry = entry.map_err(io_error("list", &dir))?;
                let name = entry.file_name();
                let Some((id, version, level)) = name.to_str().and_then(parse_name) else {
                    continue;
                };
                let on_policy = match policy.level_at(version) {
                    Some(expected) => level == expected,
                    None => level == HEAVY_LEVEL,
                };
                if !(on_policy && heads.get(&id).is_some_and(|head| version <= head.0)) {
                    report.ignored += 1;
                    continue;
                }
                let len = entry.metadata().map_or(0, |m| m.len());
                let record = CheckpointRecord {
                    level,
                    base: policy.base_of(version, level),
                    file_len_bytes: len,
                    archive_crc: 0,
                };
                catalog.entry(id).or_default().insert(version, record);
                report.adopted += 1;
            }
        }
        let heavy_known = catalog
            .values()
            .any(|versions| versions.values().any(|r| r.level == HEAVY_LEVEL));
        let store = Store {
            dir,
            policy,
            catalog: RwLock::new(catalog),
            maps: Mutex::new(StampCache::new(maps_max)),
            lost: Mutex::new(HashSet::new()),
            rebuild: Mutex::new(BTreeSet::new()),
            written: AtomicU64::new(0),
            rebuilt: AtomicU64::new(0),
            damaged: AtomicU64::new(0),
            heavy_known: AtomicBool::new(heavy_known),
            read_only: true,
            discover_from: Mutex::new(HashMap::new()),
        };
        Ok((store, report))
    }

    pub(crate) fn policy(&self) -> &LevelPolicy {
        &self.policy
    }

    /// The path of the checkpoint of `stream` at `version`.
    pub(crate) fn path(&self, stream: StreamId, version: u64, level: u32) -> PathBuf {
        self.dir.join(file_name(stream, version, level))
    }

    fn read_catalog(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<StreamId, BTreeMap<u64, CheckpointRecord>>> {
        self.catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_catalog(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<StreamId, BTreeMap<u64, CheckpointRecord>>> {
        self.catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the catalog lists a checkpoint of `stream` at `version`.
    pub(crate) fn contains(&self, stream: StreamId, version: u64) -> bool {
        self.read_catalog()
            .get(&stream)
            .is_some_and(|m| m.contains_key(&version))
    }

    /// The newest version at or below `at` with a full checkpoint of `stream` on the grid (top
    /// level, or the anchor): a state every level's deltas after it can be built from, which a
    /// level-0 state is not (the builder's dirty sets restart only on the grid).
    pub(crate) fn latest_full_at_or_below(&self, stream: StreamId, at: u64) -> Option<u64> {
        self.read_catalog()
            .get(&stream)?
            .range(..=at)
            .rev()
            .find(|(version, r)| r.level != HEAVY_LEVEL && self.policy.is_full(**version, r.level))
            .map(|(v, _)| *v)
    }

    /// The newest checkpoint version of `stream`, if any.
    pub(crate) fn latest(&self, stream: StreamId) -> Option<u64> {
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

    /// Records a checkpoint whose file is in place.
    pub(crate) fn add(&self, stream: StreamId, version: u64, record: CheckpointRecord) {
        if record.level == HEAVY_LEVEL {
            self.heavy_known.store(true, Ordering::Relaxed);
        }
        self.write_catalog()
            .entry(stream)
            .or_default()
            .insert(version, record);
    }

    /// A reader's store: adopts the checkpoint files of `stream` that the writer (another
    /// process) wrote since, at the policy's versions up to `head`, found by name, in version
    /// order (the writer's builder writes a stream's checkpoints in that order), stopping at
    /// the first not there yet, which the next call looks for again. So a view of a version
    /// the writer appended after the reader opened starts from them instead of replaying from
    /// an older one. Checkpoints after heavy events (at any version) are not looked for.
    pub(crate) fn discover(&self, stream: StreamId, head: u64) {
        let fanout = self.policy.fanout();
        let mut discover_from = crate::engine::lock(&self.discover_from);
        let next = discover_from.entry(stream).or_insert_with(|| {
            let latest = self.latest(stream).unwrap_or(0);
            latest - latest % fanout + fanout
        });
        while *next <= head {
            let version = *next;
            if !self.contains(stream, version) {
                let Some(level) = self.policy.level_at(version) else {
                    break;
                };
                let Ok(meta) = std::fs::metadata(self.path(stream, version, level)) else {
                    break;
                };
                self.add(
                    stream,
                    version,
                    CheckpointRecord {
                        level,
                        base: self.policy.base_of(version, level),
                        file_len_bytes: meta.len(),
                        archive_crc: 0,
                    },
                );
            }
            *next = version + fanout;
        }
    }

    /// Counts a checkpoint written: as rebuilt if it had been found missing or damaged.
    pub(crate) fn count_written(&self, stream: StreamId, version: u64) {
        let counter = if crate::engine::lock(&self.lost).remove(&(stream, version)) {
            &self.rebuilt
        } else {
            &self.written
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The mapped, validated checkpoint of `stream` at `version`, or `None` if there is none
    /// (not built yet, or damaged: then it is deleted and queued for a rebuild).
    pub(crate) fn get(&self, stream: StreamId, version: u64) -> Option<Arc<Checkpoint>> {
        if let Some(map) = crate::engine::lock(&self.maps).get(&(stream, version)) {
            return Some(map);
        }
        let record = *self.read_catalog().get(&stream)?.get(&version)?;
        let path = self.path(stream, version, record.level);
        match Checkpoint::open(&path).and_then(|c| self.check_meta(c, stream, version, record)) {
            Ok(checkpoint) => {
                let checkpoint = Arc::new(checkpoint);
                let evicted =
                    crate::engine::lock(&self.maps).put((stream, version), checkpoint.clone());
                // Unmapped here, after the lock: a full cache evicts many maps at once.
                drop(evicted);
                Some(checkpoint)
            }
            Err(_) => {
                self.mark_damaged(stream, version, &path);
                None
            }
        }
    }

    /// Checks that a valid file is the checkpoint the policy expects at its name.
    fn check_meta(
        &self,
        checkpoint: Checkpoint,
        stream: StreamId,
        version: u64,
        record: CheckpointRecord,
    ) -> helios_checkpoint::Result<Checkpoint> {
        let meta = checkpoint.meta();
        let expected_base = self.policy.base_of(version, record.level);
        let kind = if expected_base == 0 {
            CheckpointKind::Full
        } else {
            CheckpointKind::Delta
        };
        // Written before the anchor existed (same file format): a first-window delta against
        // the empty state. It holds every key changed since version 0, so it reads correctly
        // stacked on the anchor, and as the anchor it is the full state.
        let natural = self.policy.natural_base(version, record.level);
        let legacy = record.level != HEAVY_LEVEL
            && natural == 0
            && meta.kind == CheckpointKind::Delta
            && meta.base_version == 0;
        if record.archive_crc != 0 && checkpoint.archive_crc() != record.archive_crc {
            return Err(helios_checkpoint::CheckpointError::InvalidHeader {
                path: checkpoint.path().to_path_buf(),
                offset: helios_checkpoint::format::header::ARCHIVE_CRC as u64,
                reason: format!(
                    "archive CRC {:08x}, but the catalog recorded {:08x} when it wrote this \
                     checkpoint: the file was replaced (copied from another store?)",
                    checkpoint.archive_crc(),
                    record.archive_crc
                ),
            });
        }
        if meta.stream_id == stream.0
            && meta.version == version
            && u32::from(meta.level) == record.level
            && ((meta.kind == kind && meta.base_version == expected_base) || legacy)
        {
            Ok(checkpoint)
        } else {
            Err(helios_checkpoint::CheckpointError::InvalidHeader {
                path: checkpoint.path().to_path_buf(),
                offset: 0,
                reason: format!(
                    "holds {meta:?}, expected stream {}, version {version}, level {}",
                    stream.0, record.level
                ),
            })
        }
    }

    /// Forgets a damaged checkpoint, deletes its file and queues it for a rebuild.
    fn mark_damaged(&self, stream: StreamId, version: u64, path: &Path) {
        let removed = self
            .write_catalog()
            .get_mut(&stream)
            .and_then(|m| m.remove(&version))
            .is_some();
        if removed && self.read_only {
            // A reader only reads around it: the writer rebuilds it.
            self.damaged.fetch_add(1, Ordering::Relaxed);
        } else if removed {
            self.damaged.fetch_add(1, Ordering::Relaxed);
            // Best effort: a file that cannot be removed is overwritten by the rebuild.
            let _ = std::fs::remove_file(path);
            crate::engine::lock(&self.rebuild).insert((stream, version));
            crate::engine::lock(&self.lost).insert((stream, version));
        }
    }

    /// Maps (so validates) every checkpoint of `stream` in `versions`: after a rebuild, the
    /// finer checkpoints stacked on the rebuilt one were never read while it was damaged, so
    /// damage in them would otherwise only be found by a later view. Damaged ones are queued.
    pub(crate) fn probe(&self, stream: StreamId, versions: std::ops::Range<u64>) {
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
        std::mem::take(&mut *crate::engine::lock(&self.rebuild))
    }

    /// Whether any checkpoint waits for a rebuild.
    pub(crate) fn has_rebuilds(&self) -> bool {
        !crate::engine::lock(&self.rebuild).is_empty()
    }

    /// Puts back rebuilds that could not be done yet.
    pub(crate) fn requeue_rebuilds(&self, items: impl IntoIterator<Item = (StreamId, u64)>) {
        crate::engine::lock(&self.rebuild).extend(items);
    }

    /// The checkpoints of `stream`, by version.
    pub(crate) fn list(&self, stream: StreamId) -> Vec<CheckpointInfo> {
        self.read_catalog()
            .get(&stream)
            .map(|m| {
                m.iter()
                    .map(|(&version, r)| CheckpointInfo {
                        version: Version(version),
                        level: r.level,
                        base: Version(r.base),
                        file_len_bytes: r.file_len_bytes,
                        path: self.path(stream, version, r.level),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Counts of files and work.
    pub(crate) fn stats(&self) -> CheckpointStats {
        let mut stats = CheckpointStats {
            by_level: vec![LevelStats::default(); self.policy.levels() as usize],
            written: self.written.load(Ordering::Relaxed),
            rebuilt: self.rebuilt.load(Ordering::Relaxed),
            damaged: self.damaged.load(Ordering::Relaxed),
            ..CheckpointStats::default()
        };
        for records in self.read_catalog().values() {
            for record in records.values() {
                stats.files += 1;
                stats.bytes += record.file_len_bytes;
                if record.level == HEAVY_LEVEL {
                    stats.after_heavy_events.files += 1;
                    stats.after_heavy_events.bytes += record.file_len_bytes;
                } else if let Some(level) = stats
                    .by_level
                    .get_mut((record.level as usize).saturating_sub(1))
                {
                    level.files += 1;
                    level.bytes += record.file_len_bytes;
                }
            }
        }
        stats
    }

    /// Evicts the pages of every mapped checkpoint (see [`Checkpoint::evict_pages`]).
    #[cfg(feature = "bench-hooks")]
    pub(crate) fn evict_pages(&self) -> Result<()> {
        let maps: Vec<Arc<Checkpoint>> =
            crate::engine::lock(&self.maps).values().cloned().collect();
        for map in maps {
            map.evict_pages()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name = file_name(StreamId(42), 1230, 1);
        assert_eq!(name, "000000000000002a-00000000000000001230-l1.ckpt");
        assert_eq!(parse_name(&name), Some((StreamId(42), 1230, 1)));
        assert_eq!(parse_name("000000000000002a-1230-l1.ckpt.tmp"), None);
        assert_eq!(parse_name("notes.txt"), None);
        assert_eq!(parse_name("2a-1230-l1-x.ckpt"), None);
    }
}
