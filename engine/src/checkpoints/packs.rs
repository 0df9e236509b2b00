//! The checkpoint packs of a store (`checkpoints/<seq>.pack`, layout in
//! [`helios_checkpoint::pack`]): opening them, appending checkpoints, publishing how far they
//! are written, and their bytes for reads. Every file operation goes through the store's
//! [`Storage`], so the crash simulator enumerates pack I/O like the log's.
//!
//! Invariants:
//! - One pack is active: checkpoints are appended to it, below its capacity; when the next
//!   one does not fit, a new pack is created (written under a temporary name with its header,
//!   synced, renamed, the directory synced), so a pack file always starts with a whole header.
//! - Bytes at or below the published end are never rewritten or cut: a writer's open cuts a
//!   torn tail only past it, and otherwise starts a new pack. So a reader in another process,
//!   which reads only up to the published end, never reads bytes that change or vanish.
//! - Packs are mapped once each, `capacity` bytes long ([`Storage::map_growing`]), and only
//!   bytes of checkpoints already written are read through a map.
//! - A pack that takes no more checkpoints (the next one did not fit, or a compaction rolled
//!   past it) is synced, then indexed (`<seq>.pidx`, [`helios_checkpoint::pack_index`]); so is
//!   the active pack at a clean close, up to its end. An index covers its pack up to the end
//!   it names: an open reads it instead of scanning that far, scans only past it (what a later
//!   writer appended), and scans the whole pack when the index is missing or damaged.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use helios_checkpoint::CheckpointError;
use helios_checkpoint::pack::{
    self, DEFAULT_PACK_CAPACITY, PackEnd, PackEntry, PackHeader, capacity_for, pack_file_name,
    pack_header, parse_pack_name, record_offset,
};
use helios_checkpoint::pack_index::{PackIndexView, pack_index_name};
use helios_log::storage::{ReadOnlyBytes, Storage, StorageFile};

use crate::engine::lock;
use crate::error::{Error, Result};

mod indexes;
mod migrate;
mod published;

use published::read_published;

pub(crate) use migrate::migrate_checkpoint_files;

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| {
        Error::Checkpoint(CheckpointError::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The checkpoints read from one pack.
pub(crate) struct PackContents {
    pub seq: u64,
    /// The pack's index, read in place, when its entries are left to decode on demand (a
    /// reader's open): it holds the checkpoints up to its end, and `entries` those after it.
    pub index: Option<PackIndexView<ReadOnlyBytes>>,
    pub entries: Vec<PackEntry>,
}

/// What opening the packs found besides their checkpoints.
#[derive(Debug, Default)]
pub(crate) struct PacksAtOpen {
    pub packs: u64,
    /// Full packs read from their index.
    pub indexed_packs: u64,
    /// Bytes of a torn tail cut from the last pack.
    pub cut_bytes: u64,
    /// Damage met: the pack, the offset, the reason.
    pub damage: Vec<String>,
    /// Files removed: unfinished pack creations, and checkpoint files of store formats 1 and
    /// 2 (a migration copied them into packs).
    pub deleted_files: u64,
}

#[derive(Clone)]
struct PackMap {
    bytes: ReadOnlyBytes,
    /// How its checkpoints are named, up to the offset: `<pack path>@`. Every checkpoint read
    /// is named at its open (its errors say where it is), and formatting the pack's name each
    /// time was a seventh of a first read of a small checkpoint.
    name_prefix: String,
    capacity: u64,
    /// A copy of the file as it was (a storage that cannot map growing files), not a map:
    /// taken again after the pack is written.
    copy: bool,
}

/// The active pack, open for appends.
struct Appender {
    seq: u64,
    file: Arc<dyn StorageFile>,
    end: u64,
    capacity: u64,
}

/// The writer's side. Files are opened or created at the first write, not at open, so that a
/// store whose checkpoints cannot be written (a full disk, a read-only directory) still opens,
/// and a store too young for a checkpoint has no pack.
struct WriterState {
    /// The pack (and its end) the first append goes to, if the last pack takes more.
    resume: Option<(u64, u64)>,
    /// The number of the next pack to create.
    next_seq: u64,
    appender: Option<Appender>,
    published_file: Option<Arc<dyn StorageFile>>,
    published_at: Option<PackEnd>,
}

/// See the module documentation.
pub(crate) struct Packs {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    /// The store's id (`STORE-ID`), stamped in every pack it creates; a pack stamped with
    /// another is not read. `None` for a reader of a store without one (nothing is checked).
    store_id: Option<u64>,
    default_capacity: u64,
    maps: RwLock<BTreeMap<u64, PackMap>>,
    /// `None` for a reader.
    writer: Option<Mutex<WriterState>>,
}

impl std::fmt::Debug for Packs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packs")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The names in `dir`, or none if it does not exist.
fn list(storage: &dyn Storage, dir: &Path) -> Result<Vec<String>> {
    match storage.list_files(dir) {
        Ok(names) => Ok(names),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_error("list", dir)(e)),
    }
}

/// The pack numbers in `names`, ascending.
fn pack_seqs(names: &[String]) -> Vec<u64> {
    let mut seqs: Vec<u64> = names.iter().filter_map(|n| parse_pack_name(n)).collect();
    seqs.sort_unstable();
    seqs
}

impl Packs {
    /// The checkpoint directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The storage the packs are read and written through.
    pub(crate) fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The file of pack `seq`.
    pub(crate) fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(pack_file_name(seq))
    }

    /// How a pack at `offset` is named in errors and listings.
    pub(crate) fn describe(&self, seq: u64, offset: u64) -> PathBuf {
        if let Some(map) = self.read_maps().get(&seq)
            && !map.name_prefix.is_empty()
        {
            let mut name = String::with_capacity(map.name_prefix.len() + 20);
            name.push_str(&map.name_prefix);
            // Writing to a String cannot fail.
            let _ = write!(name, "{offset}");
            return PathBuf::from(name);
        }
        self.dir.join(format!("{}@{offset}", pack_file_name(seq)))
    }

    /// Maps pack `seq` and reads its header.
    fn map(&self, seq: u64) -> std::result::Result<PackMap, String> {
        let path = self.path(seq);
        let file = self
            .storage
            .open_read_only(&path)
            .map_err(|e| format!("open: {e}"))?;
        let mut head = [0u8; pack_header::LEN];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| format!("read its header: {e}"))?;
        let header = PackHeader::decode(&path, &head).map_err(|e| e.to_string())?;
        if header.seq != seq {
            return Err(format!("its header says pack {}", header.seq));
        }
        if let Some(ours) = self.store_id
            && header.store_id != ours
        {
            return Err(format!(
                "written by another store (store id {:#018x}; this store's is {ours:#018x}): \
                 its checkpoints are not this store's",
                header.store_id
            ));
        }
        let map = |e: std::io::Error| format!("map: {e}");
        let (bytes, copy) = match self
            .storage
            .map_growing(&path, header.capacity)
            .map_err(map)?
        {
            Some(bytes) => (bytes, false),
            None => (self.storage.map_readonly(&path).map_err(map)?, true),
        };
        let mut name_prefix = path.into_os_string().into_string().unwrap_or_default();
        name_prefix.push('@');
        Ok(PackMap {
            bytes,
            name_prefix,
            capacity: header.capacity,
            copy,
        })
    }

    /// The bytes of pack `seq`, covering at least `..end` (mapped again if a copying storage's
    /// snapshot is shorter), or `None` if the pack cannot be read.
    pub(crate) fn bytes(&self, seq: u64, end: u64) -> Option<ReadOnlyBytes> {
        if let Some(map) = self.read_maps().get(&seq)
            && map.bytes.len() as u64 >= end
        {
            return Some(map.bytes.clone());
        }
        let map = self.map(seq).ok()?;
        let bytes = map.bytes.clone();
        self.write_maps().insert(seq, map);
        (bytes.len() as u64 >= end).then_some(bytes)
    }

    /// Maps the pages of every pack that the page cache holds into this process (see
    /// `ReadOnlyBytes::map_resident`), until `stop` says so; returns whether it got to the end.
    pub(crate) fn map_resident(&self, stop: &dyn Fn() -> bool) -> bool {
        let maps: Vec<ReadOnlyBytes> = self
            .read_maps()
            .values()
            .filter(|m| !m.copy)
            .map(|m| m.bytes.clone())
            .collect();
        maps.iter().all(|bytes| bytes.map_resident(stop))
    }

    fn read_maps(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, PackMap>> {
        self.maps
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_maps(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u64, PackMap>> {
        self.maps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The length of pack `seq`'s file.
    fn file_len(&self, seq: u64) -> std::result::Result<u64, String> {
        self.storage
            .open_read_only(&self.path(seq))
            .and_then(|f| f.len())
            .map_err(|e| format!("stat: {e}"))
    }

    /// Scans pack `seq` from `from` up to `until` (clamped to the file's length).
    fn scan(&self, seq: u64, from: u64, until: u64) -> std::result::Result<pack::PackScan, String> {
        let until = until.min(self.file_len(seq)?);
        let bytes = self
            .bytes(seq, until)
            .ok_or_else(|| "shorter than its length".to_owned())?;
        Ok(pack::scan(&self.path(seq), &bytes, from, until))
    }

    /// A writer's open: removes unfinished pack creations and checkpoint files of older store
    /// formats, reads every pack, cuts a torn tail of the last one past the published end (or
    /// starts a new pack after damage before it), and makes the last pack the active one.
    /// `legacy` says what to do with checkpoint files of store formats 1 and 2: remove them, or
    /// keep them (a migration is about to copy them).
    pub(crate) fn open_writer(
        dir: PathBuf,
        storage: Arc<dyn Storage>,
        store_id: u64,
        legacy: Legacy,
        pack_bytes: u64,
        decode: Decode,
    ) -> Result<(Packs, Vec<PackContents>, PacksAtOpen)> {
        storage
            .create_dir_all(&dir)
            .map_err(io_error("create directory", &dir))?;
        let mut notes = PacksAtOpen::default();
        let names = list(storage.as_ref(), &dir)?;
        for name in &names {
            if name.ends_with(".tmp") || (legacy == Legacy::Remove && name.ends_with(".ckpt")) {
                let path = dir.join(name);
                storage
                    .remove_file(&path)
                    .map_err(io_error("remove", &path))?;
                notes.deleted_files += 1;
            }
        }
        // Unreadable, the published end is unknown: then no tail is cut (a reader may have
        // read it), and appends go to a new pack.
        let (published, published_known) = match read_published(storage.as_ref(), &dir) {
            Ok(published) => (published, true),
            Err(e) => {
                notes.damage.push(e.to_string());
                (None, false)
            }
        };
        let mut packs = Packs {
            dir,
            storage,
            store_id: Some(store_id),
            default_capacity: pack_bytes,
            maps: RwLock::new(BTreeMap::new()),
            writer: None,
        };
        let seqs = pack_seqs(&names);
        packs.note_missing(published, &seqs, &mut notes);
        let mut contents = Vec::new();
        let mut active = None;
        for (i, &seq) in seqs.iter().enumerate() {
            let last = i + 1 == seqs.len();
            let path = packs.path(seq);
            match packs.map(seq) {
                Ok(map) => drop(packs.write_maps().insert(seq, map)),
                Err(reason) => {
                    notes.damage.push(format!("{}: {reason}", path.display()));
                    continue;
                }
            }
            let published_here = published.filter(|p| p.seq == seq).map(|p| p.end);
            let len = packs.file_len(seq).unwrap_or(0);
            // What an index covers is read from it (now, or in place at each stream's first
            // use); only what lies past its end is scanned (nothing, for a full pack: a page of
            // zeros).
            let (mut index, mut entries, from) = match decode {
                Decode::Now => match packs.indexed(seq, len) {
                    Some((entries, end)) => (None, entries, end),
                    None => (None, Vec::new(), pack_header::LEN as u64),
                },
                Decode::Deferred => match packs.index_view(seq, len) {
                    Some(view) => {
                        let end = view.end();
                        (Some(view), Vec::new(), end)
                    }
                    None => (None, Vec::new(), pack_header::LEN as u64),
                },
            };
            let indexed = from > pack_header::LEN as u64;
            let scan = match packs.scan(seq, from, len) {
                Ok(scan) => scan,
                Err(reason) => {
                    notes.damage.push(format!("{}: {reason}", path.display()));
                    continue;
                }
            };
            notes.packs += 1;
            notes.indexed_packs += u64::from(indexed);
            let mut end = scan.end;
            if scan.stopped.is_none()
                && let Some(published_end) = published_here.filter(|&e| scan.end < e)
            {
                // Lost bytes that readers may have read: nothing is appended over them.
                notes.damage.push(format!(
                    "{}: its checkpoints end at offset {}, before the published end {published_end}",
                    path.display(),
                    scan.end
                ));
                end = u64::MAX;
            } else if let Some((offset, reason)) = &scan.stopped {
                // Past the published end, a stop is a write cut short by a crash: cut it, and
                // keep appending. Before it (or in an older pack), it is damage.
                let torn = last
                    && published_known
                    && published.is_none_or(|p| p.seq <= seq)
                    && published_here.is_none_or(|e| *offset >= e);
                let cut = torn && zero_tail(packs.storage.as_ref(), &path, scan.end, len).is_ok();
                if cut {
                    notes.cut_bytes += len - scan.end;
                    packs.forget_copy(seq);
                } else if torn {
                    // Not cut (say, a read-only file): appends go to a new pack instead.
                    end = u64::MAX;
                } else {
                    notes
                        .damage
                        .push(format!("{} at offset {offset}: {reason}", path.display()));
                    end = u64::MAX; // Nothing more goes in this pack.
                }
            }
            let covered = indexed && scan.entries.is_empty();
            entries.extend(scan.entries);
            if !last && scan.stopped.is_none() && end == scan.end && !covered {
                // A full pack that its index does not cover (written before indexes, its index
                // lost, or written on after a close indexed it): index it now, so that the
                // next open reads the index. Best effort.
                let mut all = index
                    .take()
                    .and_then(|v| v.decode_all())
                    .unwrap_or_default();
                all.append(&mut entries);
                drop(packs.write_index(seq, scan.end, &all));
                entries = all;
            }
            contents.push(PackContents {
                seq,
                index,
                entries,
            });
            if last && published_known {
                active = Some((seq, end));
            }
        }
        // Appends go on in the last pack, indexed or not: an index covers a pack only up to
        // the end it names.
        let resume = match active {
            Some((seq, end)) if end != u64::MAX && packs.read_maps().contains_key(&seq) => {
                Some((seq, end))
            }
            _ => None,
        };
        packs.writer = Some(Mutex::new(WriterState {
            resume,
            next_seq: seqs.last().map_or(1, |s| s + 1),
            appender: None,
            published_file: None,
            published_at: published,
        }));
        Ok((packs, contents, notes))
    }

    /// A reader's open: reads the packs up to the published end, changing nothing. Without a
    /// published end (no writer has built a checkpoint since the store had packs), no pack is
    /// read.
    pub(crate) fn open_reader(
        dir: PathBuf,
        storage: Arc<dyn Storage>,
        store_id: Option<u64>,
    ) -> Result<(Packs, Vec<PackContents>, PacksAtOpen, Option<PackEnd>)> {
        let packs = Packs {
            dir,
            storage,
            store_id,
            default_capacity: DEFAULT_PACK_CAPACITY,
            maps: RwLock::new(BTreeMap::new()),
            writer: None,
        };
        let mut notes = PacksAtOpen::default();
        // Unreadable, the published end is read around: no checkpoint, views replay.
        let published = read_published(packs.storage.as_ref(), &packs.dir).unwrap_or_else(|e| {
            notes.damage.push(e.to_string());
            None
        });
        let contents = match published {
            Some(end) => packs.read_up_to(None, end, Decode::Deferred, &mut notes)?,
            None => Vec::new(),
        };
        Ok((packs, contents, notes, published))
    }

    /// A reader's catch-up: the checkpoints the writer published since `from`, and the new
    /// published end (`from` if none was published since).
    pub(crate) fn catch_up(
        &self,
        from: Option<PackEnd>,
    ) -> Result<(Vec<PackContents>, Option<PackEnd>)> {
        let Some(now) = read_published(self.storage.as_ref(), &self.dir)? else {
            return Ok((Vec::new(), from));
        };
        if Some(now) == from || from.is_some_and(|f| (f.seq, f.end) > (now.seq, now.end)) {
            return Ok((Vec::new(), from));
        }
        let mut notes = PacksAtOpen::default();
        let contents = self.read_up_to(from, now, Decode::Now, &mut notes)?;
        Ok((contents, Some(now)))
    }

    /// Reads the checkpoints past `from` up to `to`: whole packs below `to.seq`, and pack
    /// `to.seq` up to `to.end`.
    fn read_up_to(
        &self,
        from: Option<PackEnd>,
        to: PackEnd,
        decode: Decode,
        notes: &mut PacksAtOpen,
    ) -> Result<Vec<PackContents>> {
        let names = list(self.storage.as_ref(), &self.dir)?;
        let mut contents = Vec::new();
        self.note_missing(Some(to), &pack_seqs(&names), notes);
        for seq in pack_seqs(&names) {
            if seq > to.seq || from.is_some_and(|f| seq < f.seq) {
                continue;
            }
            let start = match from {
                Some(f) if f.seq == seq => f.end,
                _ => pack_header::LEN as u64,
            };
            let until = if seq == to.seq { to.end } else { u64::MAX };
            // What an index within `until` covers is read from it, and the rest scanned.
            let view = match start == pack_header::LEN as u64 {
                // The pack's own header is checked (whose it is) and the pack mapped, as a
                // scan would.
                true => self
                    .index_view(seq, until)
                    .filter(|_| self.bytes(seq, pack_header::LEN as u64).is_some()),
                false => None,
            };
            let (index, mut entries, start, read_index) = match (view, decode) {
                (Some(view), Decode::Deferred) => {
                    let end = view.end();
                    (Some(view), Vec::new(), end, true)
                }
                (Some(view), Decode::Now) => match view.decode_all() {
                    Some(entries) => (None, entries, view.end(), true),
                    None => (None, Vec::new(), start, false),
                },
                (None, _) => (None, Vec::new(), start, false),
            };
            let path = self.path(seq);
            match self.scan(seq, start, until) {
                Ok(scan) => {
                    notes.packs += 1;
                    notes.indexed_packs += u64::from(read_index);
                    if let Some((offset, reason)) = scan.stopped {
                        notes
                            .damage
                            .push(format!("{} at offset {offset}: {reason}", path.display()));
                    } else if seq == to.seq && scan.end < to.end {
                        notes.damage.push(format!(
                            "{}: its checkpoints end at offset {}, before the published end {}",
                            path.display(),
                            scan.end,
                            to.end
                        ));
                    }
                    entries.extend(scan.entries);
                    contents.push(PackContents {
                        seq,
                        index,
                        entries,
                    });
                }
                Err(reason) => notes.damage.push(format!("{}: {reason}", path.display())),
            }
        }
        Ok(contents)
    }

    /// Creates pack `seq` of at least `capacity` bytes: its header under a temporary name,
    /// synced, renamed, the directory synced. Returns the file, open for appends.
    fn create(&self, seq: u64, capacity: u64) -> Result<(Arc<dyn StorageFile>, u64)> {
        let path = self.path(seq);
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let header = PackHeader {
            seq,
            capacity,
            store_id: self.store_id.unwrap_or(0),
        }
        .encode();
        let file = self
            .storage
            .create(&tmp)
            .map_err(io_error("create", &tmp))?;
        file.write_all_at(&header, 0)
            .map_err(io_error("write", &tmp))?;
        file.sync_data().map_err(io_error("fdatasync", &tmp))?;
        drop(file);
        self.storage
            .rename(&tmp, &path)
            .map_err(io_error("rename", &tmp))?;
        self.storage
            .sync_dir(&self.dir)
            .map_err(io_error("fsync directory", &self.dir))?;
        let file = self.storage.open(&path).map_err(io_error("open", &path))?;
        let map = self.map(seq).map_err(|reason| {
            Error::Checkpoint(CheckpointError::InvalidHeader {
                path: path.clone(),
                offset: 0,
                reason,
            })
        })?;
        self.write_maps().insert(seq, map);
        Ok((file, capacity))
    }

    /// Appends the encoded checkpoint `bytes` to the active pack (a new one if it does not
    /// fit) and returns where it went: the pack and the offset.
    pub(crate) fn append(&self, bytes: &[u8]) -> Result<(u64, u64)> {
        let Some(writer) = &self.writer else {
            unreachable!("a reader's store writes no checkpoint");
        };
        let mut w = lock(writer);
        let len = bytes.len() as u64;
        let fits = |a: &Appender| record_offset(a.end, len).saturating_add(len) <= a.capacity;
        if w.appender.is_none()
            && let Some((seq, end)) = w.resume.take()
        {
            let path = self.path(seq);
            let file = self.storage.open(&path).map_err(io_error("open", &path))?;
            let capacity = self.read_maps().get(&seq).map_or(0, |m| m.capacity);
            w.appender = Some(Appender {
                seq,
                file,
                end,
                capacity,
            });
        }
        if !w.appender.as_ref().is_some_and(fits) {
            if let Some(full) = w.appender.take() {
                self.seal(&full);
            }
            let seq = w.next_seq;
            let (file, capacity) = self.create(seq, capacity_for(self.default_capacity, len))?;
            w.next_seq = seq + 1;
            w.appender = Some(Appender {
                seq,
                file,
                end: pack_header::LEN as u64,
                capacity,
            });
        }
        let Some(a) = w.appender.as_mut() else {
            unreachable!("an appender was just made");
        };
        let at = record_offset(a.end, len);
        let path = self.path(a.seq);
        a.file
            .write_all_at(bytes, at)
            .map_err(io_error("write", &path))?;
        a.end = at + len;
        let seq = a.seq;
        self.forget_copy(seq);
        Ok((seq, at))
    }

    /// Drops the copy of pack `seq`, if it is one, after a write to it.
    fn forget_copy(&self, seq: u64) {
        let mut maps = self.write_maps();
        if maps.get(&seq).is_some_and(|m| m.copy) {
            maps.remove(&seq);
        }
    }

    /// The active pack, if one is open for appends (or will be, at the next append).
    pub(crate) fn active(&self) -> Option<u64> {
        let w = lock(self.writer.as_ref()?);
        w.appender
            .as_ref()
            .map(|a| a.seq)
            .or(w.resume.map(|(seq, _)| seq))
    }

    /// Closes the active pack: the next append starts a new one (a compaction, to copy the
    /// active pack's live checkpoints out of it).
    pub(crate) fn roll(&self) {
        if let Some(writer) = &self.writer {
            let mut w = lock(writer);
            if let Some(full) = w.appender.take() {
                self.seal(&full);
            }
            w.resume = None;
        }
    }

    /// Removes pack `seq`'s file. Its map stays valid for the checkpoints still read through
    /// it (an unlinked file keeps its pages), and so do readers' maps in other processes.
    pub(crate) fn remove(&self, seq: u64) -> Result<()> {
        let index = self.dir.join(pack_index_name(seq));
        match self.storage.remove_file(&index) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("remove", &index)(e)),
        }
        let path = self.path(seq);
        self.storage
            .remove_file(&path)
            .map_err(io_error("remove", &path))?;
        self.write_maps().remove(&seq);
        self.storage
            .sync_dir(&self.dir)
            .map_err(io_error("fsync directory", &self.dir))
    }

    /// Makes the active pack's bytes durable (a migration, before it says it is done; a clean
    /// close, before its catalog snapshot says which streams are still due).
    pub(crate) fn sync(&self) -> Result<()> {
        if let Some(writer) = &self.writer
            && let Some(a) = &lock(writer).appender
        {
            a.file
                .sync_data()
                .map_err(io_error("fdatasync", &self.path(a.seq)))?;
        }
        Ok(())
    }

    /// The packs mapped (every pack of this store read or written since open), with their
    /// files' lengths.
    pub(crate) fn files(&self) -> Vec<(u64, u64)> {
        let seqs: Vec<u64> = self.read_maps().keys().copied().collect();
        seqs.into_iter()
            .map(|seq| {
                let len = self
                    .storage
                    .open_read_only(&self.path(seq))
                    .and_then(|f| f.len())
                    .unwrap_or(0);
                (seq, len)
            })
            .collect()
    }

    /// Evicts every pack's pages (cold-read benchmarks).
    #[cfg(feature = "bench-hooks")]
    pub(crate) fn evict_pages(&self) -> Result<()> {
        for (seq, map) in self.read_maps().iter() {
            map.bytes
                .evict_pages()
                .map_err(io_error("evict pages", &self.path(*seq)))?;
        }
        Ok(())
    }
}

/// Whether an open decodes a pack index's entries or leaves them to decode on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decode {
    /// Every entry, at open.
    Now,
    /// The index kept in [`PackContents::index`], read in place.
    Deferred,
}

/// Whether a writer's open removes checkpoint files of store formats 1 and 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Legacy {
    Remove,
    Keep,
}

/// Overwrites `from..len` of the pack at `path` with zeros: a torn tail, past the published
/// end. Zeros, not a shorter file: the pack keeps its size (no reader maps past the published
/// end anyway), and no stale checkpoint left behind the tear can be found by a later scan once
/// new checkpoints are appended over the start of it.
fn zero_tail(storage: &dyn Storage, path: &Path, from: u64, len: u64) -> Result<()> {
    const CHUNK: u64 = 1 << 20;
    let file = storage.open(path).map_err(io_error("open", path))?;
    let zeros = vec![0u8; usize::try_from(CHUNK.min(len - from)).unwrap_or(0)];
    let mut at = from;
    while at < len {
        let n = usize::try_from((len - at).min(CHUNK)).unwrap_or(0);
        file.write_all_at(&zeros[..n], at)
            .map_err(io_error("write", path))?;
        at += n as u64;
    }
    file.sync_data().map_err(io_error("fdatasync", path))
}
