//! The sealed segments' indexes ([`SegmentIndex`]): finding, building and writing them, and
//! looking up events through them.
//!
//! Invariants:
//! - An index file appears under its name only whole (written to `*.idx.tmp`, synced, renamed,
//!   the directory synced). A sealed segment's never changes once there; the active segment
//!   gets one only at a clean close, up to its last record ([`Log::write_tail_index`]), and
//!   that one is replaced when the segment is sealed and indexed whole, or at the next close.
//! - A prefix index is used only as the index of the segment the catalog snapshot ends in, up
//!   to the snapshot's record ([`Log::load_tail_index`]), until that segment's whole index is
//!   loaded; as a sealed segment's index it is outgrown, and rebuilt without being called
//!   damage.
//! - Only indexes that passed [`SegmentIndex::from_bytes`] are used. A missing or damaged one
//!   is rebuilt from its segment: written by a writer, kept in memory by a read-only log
//!   (which writes nothing).
//! - A segment is indexed only once the caller says its records are all durable and accounted
//!   for (`through`), so that an index never claims a record a recovery could remove.

use std::path::Path;
use std::sync::Arc;

use super::segments::segment_name;
use super::{Log, Sealed, lock};
use crate::error::{LogError, Result};
use crate::segment_index::{Coverage, IndexError, SegmentIndex, index_name};
use crate::storage::{ReadOnlyBytes, Storage};
use crate::types::{Location, Lsn, SegmentId, StreamId, Version};

const TMP_SUFFIX: &str = ".idx.tmp";

/// What [`Log::index_sealed`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Indexed {
    /// The last record of the newest segment such that it and every segment before it are
    /// indexed: every event up to it can be found through [`Log::locate`].
    pub through: Option<Location>,
    /// Index files written (or, in a read-only log, built in memory).
    pub built: usize,
    /// Index files found damaged and rebuilt, with what was wrong.
    pub damaged: Vec<IndexError>,
}

/// Writes `bytes` as the file `name` in `dir`, whole or not at all: to `tmp`, synced, renamed
/// into place, the directory synced. For files that are written once and never changed.
///
/// # Errors
/// I/O errors naming the file.
pub fn write_whole(
    storage: &dyn Storage,
    dir: &Path,
    tmp: &str,
    name: &str,
    bytes: &[u8],
) -> Result<()> {
    let tmp = dir.join(tmp);
    let path = dir.join(name);
    let file = storage
        .create(&tmp)
        .map_err(|e| LogError::io("create", &tmp, e))?;
    file.write_all_at(bytes, 0)
        .map_err(|e| LogError::io("write", &tmp, e))?;
    file.sync_data()
        .map_err(|e| LogError::io("fdatasync", &tmp, e))?;
    drop(file);
    storage
        .rename(&tmp, &path)
        .map_err(|e| LogError::io("rename", &tmp, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| LogError::io("fsync directory", dir, e))?;
    Ok(())
}

impl Log {
    /// Indexes every sealed segment whose records are all at or below `through` (durable, and
    /// accounted for by the caller) and not indexed yet, oldest first: loads its index file if
    /// it is valid, else (when `build`) builds it from the segment and, in a writer, writes it.
    /// Cheap when there is nothing new: the background flusher calls it every round.
    ///
    /// # Errors
    /// I/O errors writing an index, a sealed segment whose records do not index (damage the
    /// log's open would have refused).
    pub fn index_sealed(&self, through: Lsn, build: bool) -> Result<Indexed> {
        let sealed_ids = self.sealed_ids();
        let all_indexed = {
            let indexes = self.read_indexes();
            sealed_ids.iter().all(|id| indexes.contains_key(id))
        };
        if all_indexed {
            // The flusher's every round: no writer lock taken, nothing listed.
            return Ok(Indexed {
                through: self.indexed_through(),
                ..Indexed::default()
            });
        }
        // Taken first: the writer lock comes before `sealed` (see the lock order).
        let active = self.active_id();
        let sealed: Vec<(SegmentId, SegmentId, Arc<Sealed>)> = {
            let sealed = self
                .sealed
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let indexes = self.read_indexes();
            let ids: Vec<SegmentId> = sealed.keys().copied().collect();
            ids.iter()
                .enumerate()
                .filter(|(_, id)| !indexes.contains_key(id))
                .map(|(k, id)| {
                    // A sealed segment's last record is the one before the next segment's
                    // first; the next segment is the next sealed one or the active one.
                    (*id, ids.get(k + 1).copied().unwrap_or(active))
                })
                .filter(|(_, next)| Lsn(next.0 - 1) <= through)
                .map(|(id, next)| (id, next, sealed[&id].clone()))
                .collect()
        };
        let mut report = Indexed::default();
        let newest = sealed.last().map(|(id, ..)| *id);
        for (id, next, segment) in sealed {
            let path = self.dir.join(index_name(id));
            // An index's tables are mapped and checked at its first lookup (`locate`), so that
            // an open reads only the headers: `helios get` uses one or two indexes of many,
            // and a writer's open would otherwise read every index of the log's history.
            let found = SegmentIndex::open_lazy(id, self.storage.clone(), &path)
                .map_err(|e| LogError::io("read", &path, e))?;
            // An index that passes its checksums must also name the segment's real last
            // record: the open starts reading after it, and the catalog snapshot is taken
            // there. One that does not (a forged checksum) is damaged like any other; one of a
            // prefix (a clean close indexed the segment while it was active) is outgrown, and
            // built again without a word. That record is read (a page fault into the segment,
            // most of an open's cost per segment) only for the newest index, whose record the
            // snapshot is taken at, and for one the next segment does not follow: LSNs are
            // unique, so an index whose last LSN is the one before the next segment's first
            // ends where its segment does, and a wrong location in it fails the reads that use
            // it (each checks the record it finds).
            let check_last = |index: &SegmentIndex| {
                Some(id) == newest || index.last().lsn.0.checked_add(1) != Some(next.0)
            };
            let found = match found.map(|loaded| {
                loaded.and_then(|index| {
                    let coverage = if check_last(&index) {
                        // A segment that cannot be mapped is read as empty: the index is then
                        // "wrong", and its build below names the map's error.
                        index.coverage(segment.bytes().map_or(&[][..], |b| &b[..]))
                    } else {
                        Coverage::Whole
                    };
                    match coverage {
                        Coverage::Whole => Ok(Some(index)),
                        Coverage::Prefix => Ok(None),
                        Coverage::Wrong => Err(IndexError::new(
                            id,
                            format!(
                                "its last record ({} at byte {}) is not the segment's",
                                index.last().lsn,
                                index.last().offset
                            ),
                        )),
                    }
                })
            }) {
                Some(Ok(None)) => None,
                Some(Ok(Some(index))) => Some(Ok(index)),
                Some(Err(e)) => Some(Err(e)),
                None => None,
            };
            let index = match found {
                Some(Ok(index)) => index,
                Some(Err(damage)) if !build => {
                    report.damaged.push(damage);
                    continue;
                }
                None if !build => continue,
                found => {
                    if let Some(Err(damage)) = found {
                        report.damaged.push(damage);
                    }
                    let built = SegmentIndex::build(id, segment.bytes()?).map_err(|e| {
                        let at = e.segment_offset.unwrap_or(0);
                        LogError::corrupt(self.dir.join(segment_name(id)), at, e.to_string())
                    })?;
                    if !self.read_only {
                        self.write_index_file(id, &built)?;
                    }
                    report.built += 1;
                    SegmentIndex::from_bytes(id, ReadOnlyBytes::new(built)).map_err(|e| {
                        LogError::corrupt(self.dir.join(segment_name(id)), 0, e.to_string())
                    })?
                }
            };
            // The segment whose first LSN follows this one's last must be the next one: an
            // open that starts after them reads neither, so a segment removed between them is
            // found here or not at all.
            let last = index.last().lsn;
            if last.0.checked_add(1) != Some(next.0) {
                let missing = SegmentId(last.0.saturating_add(1));
                return Err(LogError::corrupt(
                    self.dir.join(segment_name(missing)),
                    0,
                    format!(
                        "this segment is missing: {} ends at {last} and the next segment \
                         present starts at lsn {}, so the records between are gone",
                        segment_name(id),
                        next.0
                    ),
                ));
            }
            self.indexes
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id, index);
            // The whole index replaces the tail's prefix of the same segment.
            let mut tail = self.write_tail();
            if tail.as_ref().is_some_and(|t| t.segment() == id) {
                *tail = None;
            }
        }
        report.through = self.indexed_through();
        Ok(report)
    }

    /// The last record of the newest indexed segment such that every segment before it is
    /// indexed too (see [`Indexed::through`]).
    #[must_use]
    pub fn indexed_through(&self) -> Option<Location> {
        let sealed = self.sealed_ids();
        let indexes = self.read_indexes();
        let mut through = None;
        for id in sealed {
            match indexes.get(&id) {
                Some(index) => through = Some(index.last()),
                None => break,
            }
        }
        through
    }

    /// The locations of `stream`'s versions `from..=to` in the indexed segments, in version
    /// order: the caller asks only for versions it knows lie there (at or below the last
    /// version in [`Log::indexed_through`]'s segments), and gets fewer if some are missing.
    /// An index whose tables fail their check at its first lookup is built again from its
    /// segment (a writer also writes it again), and the lookup made again.
    #[must_use]
    pub fn locate(&self, stream: StreamId, from: Version, to: Version) -> Vec<(Version, Location)> {
        loop {
            match self.locate_once(stream, from, to) {
                Ok(found) => return found,
                Err(damaged) => {
                    if self.rebuild_in_memory(damaged).is_err() {
                        // Not rebuilt (the segment's records do not index): the caller gets
                        // none of its versions, and says which one is missing.
                        return Vec::new();
                    }
                }
            }
        }
    }

    /// One lookup (see [`Log::locate`]), or the segment whose index failed its check.
    fn locate_once(
        &self,
        stream: StreamId,
        from: Version,
        to: Version,
    ) -> std::result::Result<Vec<(Version, Location)>, SegmentId> {
        let indexes = self.read_indexes();
        let tail = self.read_tail();
        let mut out = Vec::new();
        let mut segments = 0;
        // Newest first: the versions asked for are usually recent ones.
        for index in tail.iter().chain(indexes.values().rev()) {
            if index.check().is_err() {
                return Err(index.segment());
            }
            let before = out.len();
            // Appends nothing unless the segment holds some of `from..=to`.
            let Some((first, last)) = index.locate(stream, from, to, &mut out) else {
                continue;
            };
            if first > to {
                continue;
            }
            if last < from {
                break;
            }
            if out.len() > before {
                segments += 1;
            }
            if first <= from {
                break;
            }
        }
        if segments > 1 {
            out.sort_unstable_by_key(|(version, _)| *version);
        }
        Ok(out)
    }

    /// Builds the index of sealed segment `id` from its bytes, in place of the one loaded
    /// (whose tables failed their check): in memory, and in a writer on disk too.
    fn rebuild_in_memory(&self, id: SegmentId) -> std::result::Result<(), IndexError> {
        let tail_through = self
            .read_tail()
            .as_ref()
            .filter(|tail| tail.segment() == id)
            .map(SegmentIndex::last);
        if let Some(through) = tail_through {
            // The index of the segment the catalog snapshot's record lies in, up to it: built
            // again from that prefix, in memory (a clean close writes the active segment's).
            let bytes = self
                .segment_bytes(id)
                .map_err(|e| IndexError::new(id, e.to_string()))?;
            let built = Self::build_prefix(id, &bytes, through, &self.dir.join(segment_name(id)))
                .map_err(|e| IndexError::new(id, e.to_string()))?;
            *self.write_tail() = Some(built);
            return Ok(());
        }
        let segment = self
            .sealed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
            .ok_or_else(|| IndexError::new(id, "its segment is not sealed"))?;
        let bytes = segment
            .bytes()
            .map_err(|e| IndexError::new(id, e.to_string()))?;
        let built = SegmentIndex::build(id, bytes)?;
        if !self.read_only {
            // Best effort: the next open builds it again if this write fails.
            let _ = self.write_index_file(id, &built);
        }
        let built = SegmentIndex::from_bytes(id, ReadOnlyBytes::new(built))?;
        self.indexes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, built);
        Ok(())
    }

    /// Makes the index of the segment that `through` (the catalog snapshot's last record)
    /// lies in cover it, when no whole index of that segment is loaded: the segment's index
    /// file if it is valid and ends exactly at `through` (a clean close wrote it while the
    /// segment was active), or else an index of the segment up to `through` built in memory.
    /// Every event up to `through` can then be found through [`Log::locate`]. Returns whether
    /// the file was used.
    ///
    /// # Errors
    /// A segment that is not there, or whose records up to `through` do not index.
    pub fn load_tail_index(&self, through: Location) -> Result<bool> {
        if self.read_indexes().contains_key(&through.segment) {
            return Ok(false);
        }
        let id = through.segment;
        let bytes = self.segment_bytes(id)?;
        let path = self.dir.join(index_name(id));
        // Its tables are checked at its first lookup, as a sealed segment's are: an open
        // reads only its header and the record it names.
        let from_file = SegmentIndex::open_lazy(id, self.storage.clone(), &path)
            .ok()
            .flatten()
            .and_then(Result::ok)
            .filter(|index| index.last() == through && index.coverage(&bytes) != Coverage::Wrong);
        let used_file = from_file.is_some();
        let index = match from_file {
            Some(index) => index,
            None => Self::build_prefix(id, &bytes, through, &self.dir.join(segment_name(id)))?,
        };
        *self.write_tail() = Some(index);
        Ok(used_file)
    }

    /// The bytes of segment `id`: its sealed map, or a new map of the active segment.
    fn segment_bytes(&self, id: SegmentId) -> Result<ReadOnlyBytes> {
        let sealed = self
            .sealed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned();
        match sealed {
            Some(sealed) => sealed.bytes().cloned(),
            None => {
                let path = self.dir.join(segment_name(id));
                self.storage
                    .map_readonly(&path)
                    .map_err(|e| LogError::io("map", &path, e))
            }
        }
    }

    /// The index of segment `id` (its bytes `bytes`, at `segment_path`) up to `through`,
    /// built in memory.
    fn build_prefix(
        id: SegmentId,
        bytes: &[u8],
        through: Location,
        segment_path: &Path,
    ) -> Result<SegmentIndex> {
        let prefix = usize::try_from(through.end())
            .ok()
            .and_then(|end| bytes.get(..end))
            .ok_or_else(|| {
                LogError::corrupt(
                    segment_path,
                    through.offset,
                    "shorter than the catalog snapshot says",
                )
            })?;
        let built = SegmentIndex::build(id, prefix)
            .and_then(|built| SegmentIndex::from_bytes(id, ReadOnlyBytes::new(built)))
            .map_err(|e| LogError::corrupt(segment_path, 0, e.to_string()))?;
        if built.last() != through {
            return Err(LogError::corrupt(
                segment_path,
                through.offset,
                format!(
                    "its records up to byte {} end at {}, not at the catalog snapshot's {}",
                    through.end(),
                    built.last().lsn,
                    through.lsn
                ),
            ));
        }
        Ok(built)
    }

    /// Writes the index of the active segment up to its last record (a clean close: every
    /// record is synced and nothing is being appended), so that the next open finds the
    /// segment's events through it instead of reading them. Returns that last record, or
    /// `None` if the active segment holds none.
    ///
    /// # Errors
    /// I/O errors writing the index; records of the active segment that do not index.
    pub fn write_tail_index(&self) -> Result<Option<Location>> {
        let w = lock(&self.writer);
        let id = w.active.id;
        let bytes = match &w.active.map {
            Some(map) => map.clone(),
            None => self
                .storage
                .map_readonly(&w.active.path)
                .map_err(|e| LogError::io("map", &*w.active.path, e))?,
        };
        // Only records written and synced: the next open takes the index as read.
        let written = usize::try_from(w.flushed_end).unwrap_or(usize::MAX);
        let Some(records) = bytes.get(..written) else {
            return Ok(None);
        };
        if !w.buffer.is_empty()
            || written <= crate::format::segment_header::LEN
            || self.synced_lsn() < Lsn(w.next_lsn.0 - 1)
        {
            return Ok(None);
        }
        let built = SegmentIndex::build(id, records)
            .map_err(|e| LogError::corrupt(&*w.active.path, 0, e.to_string()))?;
        self.write_index_file(id, &built)?;
        let index = SegmentIndex::from_bytes(id, ReadOnlyBytes::new(built))
            .map_err(|e| LogError::corrupt(&*w.active.path, 0, e.to_string()))?;
        let last = index.last();
        *self.write_tail() = Some(index);
        Ok(Some(last))
    }

    /// Writes `built` as segment `id`'s index file, whole (see [`write_whole`]).
    fn write_index_file(&self, id: SegmentId, built: &[u8]) -> Result<()> {
        write_whole(
            self.storage.as_ref(),
            &self.dir,
            &format!("{:020}{TMP_SUFFIX}", id.0),
            &index_name(id),
            built,
        )
    }

    /// Warms every segment index loaded so far ([`SegmentIndex::warm`]): what their first
    /// lookups would do, done ahead of them (a writer's background thread calls it after
    /// open), until `stop` says so. One index at a time under the indexes' read lock, which
    /// lookups share.
    pub fn warm_indexes(&self, stop: &dyn Fn() -> bool) {
        let ids: Vec<SegmentId> = self.read_indexes().keys().copied().collect();
        for id in ids {
            if stop() {
                return;
            }
            if let Some(index) = self.read_indexes().get(&id) {
                index.warm(stop);
            }
        }
        if let Some(tail) = self.read_tail().as_ref() {
            tail.warm(stop);
        }
    }

    fn read_tail(&self) -> std::sync::RwLockReadGuard<'_, Option<SegmentIndex>> {
        self.tail
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_tail(&self) -> std::sync::RwLockWriteGuard<'_, Option<SegmentIndex>> {
        self.tail
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_indexes(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, std::collections::BTreeMap<SegmentId, SegmentIndex>> {
        self.indexes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn active_id(&self) -> SegmentId {
        lock(&self.writer).active.id
    }
}

/// Removes leftovers of interrupted index writes (`*.idx.tmp`) in a writer's open.
pub(super) fn is_index_leftover(name: &str) -> bool {
    name.ends_with(TMP_SUFFIX)
}

#[cfg(test)]
mod tests;
