//! A checkpoint file opened for reading: mapped, validated once, then read without
//! re-validation as a [`SortedRun`].
//!
//! Invariants of a [`Checkpoint`] (established by [`Checkpoint::validate`], relied on by every
//! lookup):
//! - Every byte of the file passed the CRCs, rkyv validation and the block checks listed in
//!   [`crate::format`].
//! - `blocks[i]` is the byte range of block `i` in `bytes()`; ranges are in increasing order,
//!   non-empty, and each decodes to whole entries with strictly increasing keys, all above the
//!   keys of the block before.
//! - `fence(i)` is the first key of block `i`.
//! - The restart points of block `i` are the file offsets of its entries 0, 8, 16, ..., in order;
//!   the first is the block's start.
//! - The file's bytes never change while it is open (see the `map` module's safety argument).

use std::fmt;
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use memmap2::{Advice, Mmap};
use rkyv::rancor::BoxedError;
use rkyv::util::AlignedVec;

use crate::error::{CheckpointError, Result};
use crate::format::{
    self, ARCHIVE_ALIGN, ArchivedBody, CheckpointMeta, Header, PAD_LEN_MAX, header,
};
use crate::map;
use crate::run::{Lookup, RunEntry, SortedRun};

/// The name errors use for a checkpoint decoded from memory.
const MEMORY_PATH: &str = "<memory>";

/// Where a checkpoint's bytes live.
enum Backing {
    Map(Mmap),
    Heap(AlignedVec<ARCHIVE_ALIGN>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Map(map) => map,
            Backing::Heap(vec) => vec,
        }
    }
}

/// Every this many entries of a block, the in-memory index remembers where an entry starts, so
/// that a lookup binary-searches these restart points and then scans at most this many entries
/// instead of half a block (~40 entries of 50 bytes). Costs 4 bytes of memory per restart.
const RESTART_INTERVAL: u32 = 8;

/// The byte range of one block in the file, and where its restart points end in
/// `Checkpoint::restarts` (they start where the previous block's end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BlockSpan {
    start: usize,
    end: usize,
    restarts_end: usize,
}

/// A position in the run: the block and the file offset of an entry in it. Positions of
/// entries are normalised (the offset lies inside the block); past the last entry is
/// `(block_count, 0)`. Ordering by (block, offset) is key order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    block: usize,
    offset: usize,
}

/// An immutable checkpoint file: a sorted run of entries with tombstones, memory-mapped and
/// read in place.
///
/// Opening validates the whole file once (CRCs, rkyv validation, block structure) and copies the
/// fence index (the first key of each block) to the heap, with the offset of every
/// `RESTART_INTERVAL`-th (8th) entry. A point lookup then binary-searches the fences in memory
/// and searches one block of the map: for small entries, one page of the file. Lookups and
/// iteration hand out slices of the map without copying. Memory kept per open checkpoint: the
/// fences plus about 32 bytes per block and half a byte per entry (about 60 KiB for 100,000
/// entries of 16-byte keys).
///
/// A `Checkpoint` is `Send + Sync`; share it in an `Arc`.
pub struct Checkpoint {
    path: PathBuf,
    backing: Backing,
    meta: CheckpointMeta,
    archive_crc: u32,
    entry_count: usize,
    blocks: Box<[BlockSpan]>,
    /// The fences, back to back; fence `i` ends at `fence_ends[i]`.
    fence_bytes: Box<[u8]>,
    fence_ends: Box<[usize]>,
    /// File offsets of entries 0, 8, 16, ... of each block, block after block.
    restarts: Box<[u32]>,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .field("entry_count", &self.entry_count)
            .field("block_count", &self.blocks.len())
            .field("file_len_bytes", &self.file_len_bytes())
            .finish_non_exhaustive()
    }
}

impl Checkpoint {
    /// Opens, maps and validates the checkpoint file at `path`. The map is advised
    /// `MADV_RANDOM`: lookups read single pages, and the kernel's default readahead would read
    /// megabytes for each.
    ///
    /// Validation reads the whole file once; nothing is re-validated afterwards.
    ///
    /// # Errors
    /// I/O errors, and any damage to the file (see [`CheckpointError`]).
    pub fn open(path: &Path) -> Result<Checkpoint> {
        let io = |op: &'static str| {
            move |source| CheckpointError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        };
        let file = File::open(path).map_err(io("open"))?;
        let len_bytes = file.metadata().map_err(io("stat"))?.len();
        // Check before mapping: an empty file cannot be mapped on every platform, and a short
        // one has nothing to map.
        if len_bytes < header::LEN as u64 {
            return Err(CheckpointError::Truncated {
                path: path.to_path_buf(),
                len_bytes,
                expected_bytes: header::LEN as u64,
            });
        }
        let map = map::map_readonly(&file).map_err(io("mmap"))?;
        map.advise(Advice::Random).map_err(io("madvise"))?;
        Checkpoint::validate(path.to_path_buf(), Backing::Map(map))
    }

    /// Decodes and validates a checkpoint from bytes in memory (for tests, fuzzing and tools).
    /// The bytes are copied into an aligned buffer first. Errors name the path `<memory>`.
    ///
    /// # Errors
    /// Any damage to the bytes (see [`CheckpointError`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint> {
        Checkpoint::validate(
            PathBuf::from(MEMORY_PATH),
            Backing::Heap(format::aligned_copy(bytes)),
        )
    }

    /// What the checkpoint is (kind, level, stream, versions).
    #[must_use]
    pub fn meta(&self) -> &CheckpointMeta {
        &self.meta
    }

    /// The CRC32 of the archive (checked at open): a fingerprint of the contents, which a
    /// catalog can keep to recognise the file it wrote.
    #[must_use]
    pub fn archive_crc(&self) -> u32 {
        self.archive_crc
    }

    /// The file's length.
    #[must_use]
    pub fn file_len_bytes(&self) -> u64 {
        self.bytes().len() as u64
    }

    /// The file's path (`<memory>` for [`Checkpoint::from_bytes`]).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drops the file's pages from this process's map and from the page cache (see
    /// `posix_fadvise(POSIX_FADV_DONTNEED)`), so that the next lookups read the disk. For
    /// cold-read benchmarks. A checkpoint decoded from memory has nothing to evict.
    ///
    /// # Errors
    /// I/O errors from the advice calls or from opening the file.
    pub fn evict_pages(&self) -> Result<()> {
        let Backing::Map(map) = &self.backing else {
            return Ok(());
        };
        let io = |op: &'static str| {
            move |source| CheckpointError::Io {
                op,
                path: self.path.clone(),
                source,
            }
        };
        let file = File::open(&self.path).map_err(io("open"))?;
        map::evict(map, &file).map_err(io("evict pages"))
    }

    /// The number of blocks the entries are laid out in.
    #[must_use]
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    fn bytes(&self) -> &[u8] {
        self.backing.bytes()
    }

    /// Validates everything once and builds the in-memory index.
    fn validate(path: PathBuf, backing: Backing) -> Result<Checkpoint> {
        let file = backing.bytes();
        let header = Header::decode(&path, file)?;
        // Header::decode checked that the file is exactly header + archive.
        let archive = &file[header::LEN..];
        let computed = crc32fast::hash(archive);
        if computed != header.archive_crc {
            return Err(CheckpointError::ArchiveChecksum {
                path,
                offset: header::LEN as u64,
                stored: header.archive_crc,
                computed,
            });
        }
        let body = rkyv::access::<ArchivedBody, BoxedError>(archive).map_err(|e| {
            CheckpointError::InvalidArchive {
                path: path.clone(),
                offset: header::LEN as u64,
                message: e.to_string(),
            }
        })?;
        let index = Index::build(&path, file, body, header.entry_count)?;
        let entry_count =
            usize::try_from(header.entry_count).map_err(|_| CheckpointError::InvalidHeader {
                path: path.clone(),
                offset: header::ENTRY_COUNT as u64,
                reason: "entry count does not fit in memory".to_owned(),
            })?;
        Ok(Checkpoint {
            path,
            backing,
            meta: header.meta,
            archive_crc: header.archive_crc,
            entry_count,
            blocks: index.blocks.into_boxed_slice(),
            fence_bytes: index.fence_bytes.into_boxed_slice(),
            fence_ends: index.fence_ends.into_boxed_slice(),
            restarts: index.restarts.into_boxed_slice(),
        })
    }

    /// Fence `i`: the first key of block `i`.
    fn fence(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.fence_ends[i - 1] };
        &self.fence_bytes[start..self.fence_ends[i]]
    }

    /// The number of blocks whose first key is at most `key`. The block that could hold `key`
    /// is the one before that.
    fn blocks_at_or_below(&self, key: &[u8]) -> usize {
        let (mut low, mut high) = (0, self.blocks.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if self.fence(mid) <= key {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }

    /// Where to start scanning `block` for the first entry at or above `key`: the last restart
    /// point whose key is at most `key` (the block start if none is).
    fn scan_start(&self, block: usize, key: &[u8]) -> usize {
        let first = block
            .checked_sub(1)
            .map_or(0, |b| self.blocks[b].restarts_end);
        let restarts = &self.restarts[first..self.blocks[block].restarts_end];
        // restarts[0] is the block start; find the last restart with a key <= `key`.
        let (mut low, mut high) = (1, restarts.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.entry_at(block, restarts[mid] as usize) {
                Some((k, _, _)) if k <= key => low = mid + 1,
                _ => high = mid,
            }
        }
        restarts
            .get(low - 1)
            .map_or(self.blocks[block].start, |&r| r as usize)
    }

    /// The decoded entry at `offset` of `block`.
    fn entry_at(&self, block: usize, offset: usize) -> Option<format::DecodedEntry<'_>> {
        let span = self.blocks[block];
        let decoded = format::get_entry(&self.bytes()[..span.end], offset);
        // Unreachable: validation decoded every entry of every block.
        debug_assert!(decoded.is_ok(), "validated block {block} fails to decode");
        decoded.ok()
    }

    /// The position of the first entry of `block`, or the end.
    fn block_start(&self, block: usize) -> Pos {
        match self.blocks.get(block) {
            Some(span) => Pos {
                block,
                offset: span.start,
            },
            None => self.end(),
        }
    }

    fn end(&self) -> Pos {
        Pos {
            block: self.blocks.len(),
            offset: 0,
        }
    }

    /// The position of the first entry with a key at least `key` (`inclusive`) or above it.
    fn seek(&self, key: &[u8], inclusive: bool) -> Pos {
        let below = self.blocks_at_or_below(key);
        let Some(block) = below.checked_sub(1) else {
            return self.block_start(0);
        };
        let span = self.blocks[block];
        let mut offset = self.scan_start(block, key);
        while offset < span.end {
            let Some((k, _, next)) = self.entry_at(block, offset) else {
                break;
            };
            if k > key || (inclusive && k == key) {
                return Pos { block, offset };
            }
            offset = next;
        }
        self.block_start(block + 1)
    }

    fn start_pos(&self, bound: Bound<&[u8]>) -> Pos {
        match bound {
            Bound::Unbounded => self.block_start(0),
            Bound::Included(key) => self.seek(key, true),
            Bound::Excluded(key) => self.seek(key, false),
        }
    }

    fn end_pos(&self, bound: Bound<&[u8]>) -> Pos {
        match bound {
            Bound::Unbounded => self.end(),
            Bound::Included(key) => self.seek(key, false),
            Bound::Excluded(key) => self.seek(key, true),
        }
    }

    /// The file byte range of each block.
    #[cfg(test)]
    pub(crate) fn block_spans_for_tests(&self) -> Vec<(usize, usize)> {
        self.blocks.iter().map(|s| (s.start, s.end)).collect()
    }

    #[cfg(test)]
    pub(crate) fn map_for_tests(&self) -> Option<&Mmap> {
        match &self.backing {
            Backing::Map(map) => Some(map),
            Backing::Heap(_) => None,
        }
    }

    /// Replaces the map by a fresh one of the same file, with no page mapped yet, so that pages
    /// can be evicted from the page cache (the kernel does not evict mapped pages).
    #[cfg(test)]
    pub(crate) fn remap_for_tests(&mut self) -> std::io::Result<()> {
        self.backing = Backing::Heap(AlignedVec::new());
        let file = File::open(&self.path)?;
        let map = map::map_readonly(&file)?;
        map.advise(Advice::Random)?;
        self.backing = Backing::Map(map);
        Ok(())
    }
}

/// The in-memory index validation builds: block ranges, fences and restart points.
struct Index {
    blocks: Vec<BlockSpan>,
    fence_bytes: Vec<u8>,
    fence_ends: Vec<usize>,
    restarts: Vec<u32>,
}

impl Index {
    /// Checks the block structure of a validated archive and copies out what lookups need.
    /// `file` is the whole file and `body` the archive's root inside it.
    fn build(path: &Path, file: &[u8], body: &ArchivedBody, entry_count: u64) -> Result<Index> {
        let corrupt = |offset: usize, reason: String| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            offset: offset as u64,
            reason,
        };
        let data = body.data.as_slice();
        // rkyv validation checked that `data` lies inside the archive; find where.
        let data_start = data
            .as_ptr()
            .addr()
            .checked_sub(file.as_ptr().addr())
            .filter(|&start| start >= header::LEN && start + data.len() <= file.len())
            .ok_or_else(|| corrupt(header::LEN, "block data lies outside the archive".into()))?;
        if body.blocks.len() != body.fences.len() {
            return Err(corrupt(
                header::LEN,
                format!(
                    "{} blocks but {} fences",
                    body.blocks.len(),
                    body.fences.len()
                ),
            ));
        }
        let check_gap = |from: usize, to: usize| -> Result<()> {
            if to - from > PAD_LEN_MAX {
                return Err(corrupt(
                    data_start + from,
                    format!(
                        "gap of {} bytes between blocks exceeds {PAD_LEN_MAX}",
                        to - from
                    ),
                ));
            }
            if let Some(i) = data[from..to].iter().position(|&b| b != 0) {
                return Err(corrupt(
                    data_start + from + i,
                    "non-zero padding between blocks".into(),
                ));
            }
            Ok(())
        };
        let mut index = Index {
            blocks: Vec::with_capacity(body.blocks.len()),
            fence_bytes: Vec::new(),
            fence_ends: Vec::with_capacity(body.blocks.len()),
            restarts: Vec::new(),
        };
        let mut previous_end = 0usize;
        let mut previous_key: Option<&[u8]> = None;
        let mut total: u64 = 0;
        for (i, (block, fence)) in body.blocks.iter().zip(body.fences.iter()).enumerate() {
            let offset = usize::try_from(block.offset.to_native()).unwrap_or(usize::MAX);
            let len = block.len.to_native() as usize;
            let count = block.entry_count.to_native();
            let end = offset.checked_add(len).filter(|&end| end <= data.len());
            let (Some(end), true) = (end, offset >= previous_end) else {
                return Err(corrupt(
                    data_start + previous_end,
                    format!(
                        "block {i} at data offset {offset} (+{len} bytes) overlaps the block \
                         before or runs past the data ({} bytes)",
                        data.len()
                    ),
                ));
            };
            if count == 0 || len == 0 {
                return Err(corrupt(data_start + offset, format!("block {i} is empty")));
            }
            check_gap(previous_end, offset)?;
            let block_bytes = &data[..end];
            let mut at = offset;
            for n in 0..count {
                if at >= end {
                    return Err(corrupt(
                        data_start + at,
                        format!("block {i} ends after {n} of its {count} entries"),
                    ));
                }
                let (key, _, next) = format::get_entry(block_bytes, at)
                    .map_err(|(bad, reason)| corrupt(data_start + bad, reason.into()))?;
                if let Some(previous) = previous_key
                    && previous >= key
                {
                    return Err(corrupt(
                        data_start + at,
                        "keys are not in strictly increasing order".into(),
                    ));
                }
                if n == 0 && key != fence.as_slice() {
                    return Err(corrupt(
                        data_start + at,
                        format!("block {i}'s first key differs from its fence"),
                    ));
                }
                if n % RESTART_INTERVAL == 0 {
                    // Cannot truncate: the file is at most header::LEN + ARCHIVE_LEN_MAX bytes.
                    index
                        .restarts
                        .push(u32::try_from(data_start + at).unwrap_or(u32::MAX));
                }
                previous_key = Some(key);
                at = next;
            }
            if at != end {
                return Err(corrupt(
                    data_start + at,
                    format!("block {i} has bytes after its {count} entries"),
                ));
            }
            total += u64::from(count);
            index.fence_bytes.extend_from_slice(fence.as_slice());
            index.fence_ends.push(index.fence_bytes.len());
            index.blocks.push(BlockSpan {
                start: data_start + offset,
                end: data_start + end,
                restarts_end: index.restarts.len(),
            });
            previous_end = end;
        }
        check_gap(previous_end, data.len())?;
        if total != entry_count {
            return Err(CheckpointError::InvalidHeader {
                path: path.to_path_buf(),
                offset: header::ENTRY_COUNT as u64,
                reason: format!("header says {entry_count} entries, the blocks hold {total}"),
            });
        }
        Ok(index)
    }
}

impl SortedRun for Checkpoint {
    fn get(&self, key: &[u8]) -> Lookup<'_> {
        let Some(block) = self.blocks_at_or_below(key).checked_sub(1) else {
            return Lookup::Absent;
        };
        let span = self.blocks[block];
        let mut offset = self.scan_start(block, key);
        while offset < span.end {
            let Some((k, value, next)) = self.entry_at(block, offset) else {
                break;
            };
            match k.cmp(key) {
                std::cmp::Ordering::Less => offset = next,
                std::cmp::Ordering::Equal => {
                    return value.map_or(Lookup::Deleted, Lookup::Value);
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        Lookup::Absent
    }

    fn range<'a>(
        &'a self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Box<dyn Iterator<Item = RunEntry<'a>> + 'a> {
        // Both ends are resolved to positions now, so the iterator needs no copy of the bounds
        // and compares no keys. An inverted range has start >= end and yields nothing.
        Box::new(RangeIter {
            checkpoint: self,
            pos: self.start_pos(start),
            end: self.end_pos(end),
        })
    }

    fn len(&self) -> usize {
        self.entry_count
    }
}

/// Iterates the entries from `pos` up to (excluding) `end`.
struct RangeIter<'a> {
    checkpoint: &'a Checkpoint,
    pos: Pos,
    end: Pos,
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = RunEntry<'a>;

    fn next(&mut self) -> Option<RunEntry<'a>> {
        if self.pos >= self.end {
            return None;
        }
        let checkpoint = self.checkpoint;
        let Some((key, value, next)) = checkpoint.entry_at(self.pos.block, self.pos.offset) else {
            self.pos = self.end;
            return None;
        };
        self.pos = if next < checkpoint.blocks[self.pos.block].end {
            Pos {
                block: self.pos.block,
                offset: next,
            }
        } else {
            checkpoint.block_start(self.pos.block + 1)
        };
        Some((key, value))
    }
}
