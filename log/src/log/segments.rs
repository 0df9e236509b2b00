//! Segment files: their names, listing and header check, their creation, the roll from the
//! active segment to the next one, and the pre-zeroed spare file that makes a roll cheap.
//!
//! Invariants:
//! - A segment is named after the LSN of its first record, zero-padded to 20 digits.
//! - A segment appears under its name only whole: zero-filled to the segment size, its header
//!   written and synced, then renamed into place and the directory synced. A crash before the
//!   rename leaves a `*.log.tmp` file or the spare, which the next open removes.
//! - A segment is sealed only after every byte of it is synced (a failed sync poisons the
//!   log); it is never written again and is read through a read-only map.
//! - A failure to create the next segment (a full disk) does not poison the log: nothing
//!   acknowledged is lost, and the next append tries the roll again.
//! - The spare is prepared without the writer lock; a roll that finds it being prepared waits
//!   for it rather than writing a second segment of zeros.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{ActiveSegment, Log, Sealed, Writer, lock};
use crate::error::{LogError, Result};
use crate::format::{self, segment_header};
use crate::storage::{ReadOnlyBytes, Storage, StorageFile};
use crate::types::{Location, Lsn, SegmentId};

pub(super) const SEGMENT_SUFFIX: &str = ".log";
const TMP_SUFFIX: &str = ".log.tmp";
const SPARE_NAME: &str = "next-segment.spare";
const ZERO_CHUNK_BYTES: usize = 1 << 20;

/// Information about one segment, for inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Its id (first LSN).
    pub id: SegmentId,
    /// Its file.
    pub path: PathBuf,
    /// Its file length (the preallocated size).
    pub file_len_bytes: u64,
    /// Whether it is sealed (immutable) or the active one.
    pub sealed: bool,
}

/// The next segment's file, prepared ahead of the roll that needs it.
#[derive(Debug)]
pub(super) enum Spare {
    Empty,
    Preparing,
    Ready(PathBuf, Arc<dyn StorageFile>),
}

/// The file name of the segment whose first record is `id`.
#[must_use]
pub fn segment_name(id: SegmentId) -> String {
    format!("{:020}{SEGMENT_SUFFIX}", id.0)
}

pub(super) fn parse_segment_name(name: &str) -> Option<SegmentId> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(SegmentId)
}

/// Reads a whole file through the storage.
pub(super) fn read_all(storage: &dyn Storage, path: &Path) -> Result<ReadOnlyBytes> {
    storage
        .map_readonly(path)
        .map_err(|e| LogError::io("read", path, e))
}

/// The first bytes of the segment at `path` (its header, or the whole file if it is shorter)
/// and the file's length: what an open checks of a segment it does not read, with one `pread`
/// instead of a map and a page fault.
pub(super) fn read_head(storage: &dyn Storage, path: &Path) -> Result<(Vec<u8>, u64)> {
    storage
        .open_read_only(path)
        .and_then(|file| file.read_head(segment_header::LEN))
        .map_err(|e| LogError::io("read the header of", path, e))
}

/// Lists segment files in order; removes leftovers of interrupted segment creation.
pub(super) fn list_segments(
    storage: &dyn Storage,
    dir: &Path,
    clean: bool,
) -> Result<Vec<SegmentId>> {
    let names = storage
        .list_files(dir)
        .map_err(|e| LogError::io("list", dir, e))?;
    let mut ids = Vec::new();
    for name in names {
        if let Some(id) = parse_segment_name(&name) {
            ids.push(id);
        } else if clean
            && (name.ends_with(TMP_SUFFIX)
                || name == SPARE_NAME
                || super::indexes::is_index_leftover(&name))
        {
            let path = dir.join(&name);
            storage
                .remove_file(&path)
                .map_err(|e| LogError::io("remove leftover", path, e))?;
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Checks the header of segment `id`, whose whole file is `bytes`, and returns what it says.
/// A file longer than the capacity its header records was written past its end by something
/// other than Helios: an error. A shorter one may have lost records or only zeros; the caller
/// decides, from the records it finds (see [`Log::open`]).
pub(super) fn check_header(
    path: &Path,
    bytes: &[u8],
    id: SegmentId,
) -> Result<format::SegmentHeader> {
    check_header_of(path, bytes, bytes.len() as u64, id)
}

/// [`check_header`] of a segment of `file_len` bytes whose first bytes are `head` (its header,
/// or the whole file if it is shorter), as [`read_head`] reads them.
pub(super) fn check_header_of(
    path: &Path,
    head: &[u8],
    file_len: u64,
    id: SegmentId,
) -> Result<format::SegmentHeader> {
    let header = format::decode_segment_header(head)
        .map_err(|e| LogError::corrupt(path, 0, e.to_string()))?;
    if let Some(capacity) = header.capacity_bytes
        && capacity < file_len
    {
        return Err(LogError::corrupt(
            path,
            capacity,
            format!(
                "the segment is {file_len} bytes long, but it was created {capacity} bytes \
                 long: bytes were added after its end by something other than Helios"
            ),
        ));
    }
    let found = header.id;
    if found != id {
        return Err(LogError::corrupt(
            path,
            segment_header::FIRST_LSN as u64,
            format!(
                "header says the segment starts at lsn {}, its name says {}",
                found.0, id.0
            ),
        ));
    }
    Ok(header)
}

/// Maps the active segment at `path` if the storage can. A failure (an exhausted map count,
/// say) only costs speed, so it is not an error: reads fall back to `pread`.
pub(super) fn map_appending(storage: &dyn Storage, path: &Path) -> Option<ReadOnlyBytes> {
    storage.map_appending(path).ok().flatten()
}

/// How much of a spare is zeroed between two checks for a close that stops it.
const SPARE_STEP_BYTES: u64 = 1 << 20;

fn fill_zeros(file: &dyn StorageFile, path: &Path, from: u64, to: u64) -> Result<()> {
    static ZEROS: [u8; ZERO_CHUNK_BYTES] = [0u8; ZERO_CHUNK_BYTES];
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at)
            .unwrap_or(usize::MAX)
            .min(ZERO_CHUNK_BYTES);
        file.write_all_at(&ZEROS[..n], at)
            .map_err(|e| LogError::io("preallocate", path, e))?;
        at += n as u64;
    }
    Ok(())
}

pub(super) fn zero_range(file: &dyn StorageFile, path: &Path, offset: u64, len: u64) -> Result<()> {
    fill_zeros(file, path, offset, offset + len).map_err(|e| match e {
        LogError::Io { path, source, .. } => LogError::Io {
            op: "zero torn tail",
            path,
            source,
        },
        other => other,
    })
}

/// Creates segment `id`: from `spare` if given (already zero-filled and synced), else a new
/// zero-filled file; the header is written and synced, then the file is renamed into place and
/// the directory synced. On failure nothing is left behind under the segment's name.
pub(super) fn create_segment(
    storage: &dyn Storage,
    dir: &Path,
    id: SegmentId,
    size: u64,
    spare: Option<(PathBuf, Arc<dyn StorageFile>)>,
) -> Result<(PathBuf, Arc<dyn StorageFile>)> {
    let path = dir.join(segment_name(id));
    let (tmp, file) = match spare {
        Some(spare) => spare,
        None => {
            let tmp = dir.join(format!("{:020}{TMP_SUFFIX}", id.0));
            let file = storage
                .create(&tmp)
                .map_err(|e| LogError::io("create", &tmp, e))?;
            (tmp, file)
        }
    };
    let result = (|| {
        let len = file.len().map_err(|e| LogError::io("stat", &tmp, e))?;
        if len < size {
            fill_zeros(file.as_ref(), &tmp, len, size)?;
        }
        let capacity = len.max(size);
        file.write_all_at(&format::encode_segment_header(Lsn(id.0), capacity), 0)
            .map_err(|e| LogError::io("write header", &tmp, e))?;
        file.sync_data()
            .map_err(|e| LogError::io("fdatasync", &tmp, e))?;
        storage
            .rename(&tmp, &path)
            .map_err(|e| LogError::io("rename", &tmp, e))?;
        storage
            .sync_dir(dir)
            .map_err(|e| LogError::io("fsync directory", dir, e))
    })();
    if let Err(e) = result {
        // Best effort: the temporary name is ignored and removed on the next open anyway.
        let _ = storage.remove_file(&tmp);
        return Err(e);
    }
    Ok((path, file))
}

impl Log {
    /// Seals the active segment and starts the next one, big enough for `needed_bytes` (header
    /// included); an active segment that holds no record is replaced instead. Holds the writer
    /// lock.
    pub(super) fn roll(&self, w: &mut Writer, needed_bytes: u64) -> Result<()> {
        self.write_out(w)?;
        if let Err(e) = w.active.file.sync_data() {
            let error = LogError::io("fdatasync", &*w.active.path, e);
            return Err(self.poison(error.to_string()));
        }
        let last = Lsn(w.next_lsn.0 - 1);
        let covered = {
            let mut st = lock(&self.sync);
            self.mark_synced(&mut st, last)
        };
        for thread in covered {
            thread.unpark();
        }
        let next = SegmentId(w.next_lsn.0);
        // Creating the next segment may fail (a full disk); the log stays usable and nothing
        // acknowledged is lost, so this does not poison.
        let spare = self.take_spare();
        let size = self
            .options
            .next_segment_size_bytes(w.active.capacity_bytes, needed_bytes);
        let (path, file) = create_segment(self.storage.as_ref(), &self.dir, next, size, spare)?;
        if next == w.active.id {
            // The active segment holds no record (a new store's first segment, or one a crash
            // left empty after a roll), so the next one has its name: the rename above
            // replaced it, and there is nothing to seal. Sealing it would list two segments
            // under one name, the sealed one mapping a file that is gone.
            w.active = self.new_active(next, path, file)?;
            w.flushed_end = segment_header::LEN as u64;
            return Ok(());
        }
        let old_path = w.active.path.clone();
        // The active segment's map, already advised random access, serves on as the sealed
        // one's; a storage that does not map the active segment maps the sealed one now.
        let bytes = match &w.active.map {
            Some(map) => map.clone(),
            None => self
                .storage
                .map_readonly(&old_path)
                .map_err(|e| LogError::io("map", &*old_path, e))?,
        };
        let old = std::mem::replace(&mut w.active, self.new_active(next, path, file)?);
        self.sealed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(old.id, Sealed::shared(old.path.to_path_buf(), bytes));
        w.flushed_end = segment_header::LEN as u64;
        Ok(())
    }

    /// The active segment for a file `create_segment` just made.
    fn new_active(
        &self,
        id: SegmentId,
        path: PathBuf,
        file: Arc<dyn StorageFile>,
    ) -> Result<ActiveSegment> {
        let capacity_bytes = file.len().map_err(|e| LogError::io("stat", &path, e))?;
        let map = map_appending(self.storage.as_ref(), &path);
        Ok(ActiveSegment {
            id,
            path: path.into(),
            file,
            map,
            capacity_bytes,
            format_version: format::FORMAT_VERSION,
        })
    }

    /// Makes the active segment one of the current format version, so that records only this
    /// version may hold (the kinds added in version 2) never land in a segment whose header
    /// lets an older build read it: an older build then refuses the store at that header
    /// instead of taking such a record for a torn tail. A segment that holds records is sealed
    /// and the next one started; an empty one gets the current header in place (it holds
    /// nothing a torn header write could lose). Returns whether it changed anything.
    ///
    /// # Errors
    /// I/O errors (a failed header write poisons the log, as any failed write does).
    pub fn upgrade_active_segment(&self) -> Result<bool> {
        let mut w = lock(&self.writer);
        self.check_poison()?;
        if w.active.format_version == format::FORMAT_VERSION {
            return Ok(false);
        }
        if w.buffered_end() > segment_header::LEN as u64 {
            self.roll(&mut w, segment_header::LEN as u64)?;
            return Ok(true);
        }
        let header = format::encode_segment_header(Lsn(w.active.id.0), w.active.capacity_bytes);
        let written = w
            .active
            .file
            .write_all_at(&header, 0)
            .and_then(|()| w.active.file.sync_data());
        if let Err(e) = written {
            let error = LogError::io("rewrite the segment header", &*w.active.path, e);
            return Err(self.poison(error.to_string()));
        }
        w.active.format_version = format::FORMAT_VERSION;
        Ok(true)
    }

    /// The format version of the active segment's header.
    #[must_use]
    pub fn active_format_version(&self) -> u32 {
        lock(&self.writer).active.format_version
    }

    /// Whether a spare segment should be prepared now: none is ready or being prepared, and
    /// the active segment is a quarter full. A small store never pays for a spare, nor does a
    /// writer that opens a big store and closes soon after (a command-line append: a spare is
    /// a whole segment of zeros, written and synced, which its close removes); a busy one
    /// starts the next spare three quarters of a segment ahead of the roll.
    #[must_use]
    pub fn wants_spare(&self) -> bool {
        if !matches!(*lock(&self.spare), Spare::Empty) || self.spare_stop.load(Ordering::Acquire) {
            return false;
        }
        let w = lock(&self.writer);
        w.buffered_end() >= w.active.capacity_bytes / 4
    }

    /// Bytes of records in the active segment after `after` (all of them when `after` lies in
    /// an older segment, or is `None`): what an open that starts after `after` reads.
    #[must_use]
    pub fn active_bytes_after(&self, after: Option<Location>) -> u64 {
        let w = lock(&self.writer);
        let start = after
            .filter(|l| l.segment == w.active.id)
            .map_or(segment_header::LEN as u64, |l| l.end());
        w.buffered_end().saturating_sub(start)
    }

    /// Prepares a zero-filled, synced spare file for the next segment, so that rolling costs a
    /// header write and a rename instead of writing a whole segment of zeros under the writer
    /// lock. Meant for a background thread: it takes no lock while it writes. A roll that
    /// finds the spare still being prepared waits for it rather than writing another one.
    /// No-op unless [`Log::wants_spare`].
    ///
    /// # Errors
    /// I/O errors creating the spare (the log stays usable; the next roll writes its segment
    /// itself).
    pub fn prepare_spare_segment(&self) -> Result<()> {
        if !self.wants_spare() {
            return Ok(());
        }
        {
            let mut spare = lock(&self.spare);
            if !matches!(*spare, Spare::Empty) {
                return Ok(());
            }
            *spare = Spare::Preparing;
        }
        let path = self.dir.join(SPARE_NAME);
        // The size the next roll will ask for (a bigger batch has a spare extended for it).
        let active_capacity = lock(&self.writer).active.capacity_bytes;
        let size = self.options.next_segment_size_bytes(active_capacity, 0);
        let result = (|| {
            let file = self
                .storage
                .create(&path)
                .map_err(|e| LogError::io("create", &path, e))?;
            let mut at = 0;
            while at < size {
                if self.spare_stop.load(Ordering::Acquire) {
                    return Ok(None);
                }
                let to = size.min(at + SPARE_STEP_BYTES);
                fill_zeros(file.as_ref(), &path, at, to)?;
                at = to;
            }
            file.sync_data()
                .map_err(|e| LogError::io("fdatasync", &path, e))?;
            Ok(Some(file))
        })();
        let mut spare = lock(&self.spare);
        let outcome = match result {
            Ok(Some(file)) => {
                *spare = Spare::Ready(path, file);
                Ok(())
            }
            Ok(None) => {
                // Stopped by a close: the partial file goes.
                *spare = Spare::Empty;
                self.storage
                    .remove_file(&path)
                    .map_err(|e| LogError::io("remove spare", &path, e))
            }
            Err(e) => {
                *spare = Spare::Empty;
                Err(e)
            }
        };
        self.spare_cv.notify_all();
        outcome
    }

    /// Stops a spare being prepared (at its next step), and any later one: the writer is
    /// closing.
    pub fn stop_preparing_spare(&self) {
        self.spare_stop.store(true, Ordering::Release);
    }

    /// Takes the spare for a roll, waiting for one being prepared.
    fn take_spare(&self) -> Option<(PathBuf, Arc<dyn StorageFile>)> {
        let mut spare = lock(&self.spare);
        while matches!(*spare, Spare::Preparing) {
            spare = self
                .spare_cv
                .wait(spare)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        match std::mem::replace(&mut *spare, Spare::Empty) {
            Spare::Ready(path, file) => Some((path, file)),
            Spare::Empty | Spare::Preparing => None,
        }
    }

    /// Removes the spare segment's file, if one is ready (waiting for one being prepared).
    /// Meant for a clean close: the next open removes a spare anyway and prepares its own
    /// when the log needs one, so a closed store need not keep a segment's worth of zeros.
    ///
    /// # Errors
    /// I/O errors removing the file (harmless: the next open removes it).
    pub fn discard_spare(&self) -> Result<()> {
        self.stop_preparing_spare();
        match self.take_spare() {
            Some((path, file)) => {
                drop(file);
                self.storage
                    .remove_file(&path)
                    .map_err(|e| LogError::io("remove spare", path, e))
            }
            None => Ok(()),
        }
    }

    /// The segments, oldest first.
    ///
    /// # Errors
    /// I/O errors reading the active segment's length.
    pub fn segments(&self) -> Result<Vec<SegmentInfo>> {
        let mut out: Vec<SegmentInfo> = {
            let sealed = self
                .sealed
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            sealed
                .iter()
                .map(|(id, s)| SegmentInfo {
                    id: *id,
                    path: s.path.clone(),
                    file_len_bytes: s.len,
                    sealed: true,
                })
                .collect()
        };
        let w = lock(&self.writer);
        out.push(SegmentInfo {
            id: w.active.id,
            path: w.active.path.to_path_buf(),
            file_len_bytes: w.active.capacity_bytes,
            sealed: false,
        });
        Ok(out)
    }
}
