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
//! - The restart points are the entries 0, 8, 16, ... of every block, in file order (so in key
//!   order); the first restart of each block is the block's first entry. `restarts[r]` holds
//!   the file offset of restart `r` and the end of its block, and `restart_keys` key `r` is
//!   the search key of its key (see [`search_key`]).
//! - Every key in the file starts with `prefix()` (at most `PREFIX_MAX` bytes).
//! - `points` maps every key of the file, and no other, to the file offset of its entry; the
//!   entry at such an offset decodes (validation decoded it), whole, inside its block.
//! - The file's bytes never change while it is open (see the `map` module's safety argument).

use std::fmt;
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use helios_storage::{FsStorage, ReadOnlyBytes, Storage as _};
use rkyv::rancor::BoxedError;
use rkyv::util::AlignedVec;

use crate::error::{CheckpointError, Result};
use crate::format::{self, ARCHIVE_ALIGN, ArchivedBody, CheckpointMeta, Header, header};
use crate::points::PointIndex;
use crate::run::{HashedKey, Lookup, RunEntry, SortedRun};
use crate::search::{LINE_LEN, SearchTree};
use crate::structure::Index;

/// The name errors use for a checkpoint decoded from memory.
const MEMORY_PATH: &str = "<memory>";

/// Where a checkpoint's bytes live.
enum Backing {
    Heap(AlignedVec<ARCHIVE_ALIGN>),
    /// A range of a pack's bytes, shared by every checkpoint read from the pack, or a whole
    /// checkpoint file's.
    Pack(Box<PackRange>),
}

/// A whole checkpoint file's bytes, read in place where the storage mapped them, copied into
/// an aligned buffer where it read a small file into memory (whose buffer may not be aligned
/// for the archive).
fn whole_file(bytes: ReadOnlyBytes) -> Backing {
    if (bytes.as_ptr() as usize).is_multiple_of(ARCHIVE_ALIGN) {
        let end = bytes.len();
        Backing::Pack(Box::new(PackRange {
            bytes,
            start: 0,
            end,
        }))
    } else {
        Backing::Heap(format::aligned_copy(&bytes))
    }
}

/// A checkpoint's bytes inside a pack (boxed: a lookup's hot fields stay in one cache line).
struct PackRange {
    bytes: ReadOnlyBytes,
    start: usize,
    end: usize,
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Heap(vec) => vec,
            Backing::Pack(range) => &range.bytes[range.start..range.end],
        }
    }
}

/// Every this many entries of a block, the in-memory index remembers where an entry starts and
/// the first 8 bytes of its key (after the file's common prefix), so that a lookup searches
/// integers laid out for the cache (`crate::search`) and then decodes at most this many
/// entries of the map. Costs 16 bytes of memory per restart (2 bytes per entry).
pub(crate) const RESTART_INTERVAL: u32 = 8;

/// The byte range of one block in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockSpan {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// The most bytes of the prefix shared by all keys that a checkpoint keeps and strips before
/// computing search keys (kept inline, so a lookup does not chase a pointer for it). A longer
/// shared prefix is cut: search keys then tie more often, which costs whole-key comparisons.
pub(crate) const PREFIX_MAX: usize = 16;

/// A restart point: the file offset of its entry and the end of its block, where a scan from
/// it must stop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Restart {
    pub(crate) offset: u32,
    pub(crate) end: u32,
}

/// The restarts of one leaf line of the search tree, in one cache line: a lookup starts
/// loading it as soon as it knows the leaf line, while the leaf's keys load.
#[derive(Clone, Copy, Debug, Default)]
#[repr(align(64))]
struct RestartLine([Restart; LINE_LEN]);

/// The search key of `tail` (a key without the file's common prefix): its first 8 bytes,
/// zero-padded, as a big-endian integer. The map from keys to search keys is monotone
/// (`a < b` implies `search_key(a) <= search_key(b)`), so comparing search keys decides the
/// order of two keys unless they are equal; only then are the whole keys compared.
#[inline]
pub(crate) fn search_key(tail: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = tail.len().min(8);
    bytes[..n].copy_from_slice(&tail[..n]);
    u64::from_be_bytes(bytes)
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
/// Opening validates the whole file once (CRCs, rkyv validation, block structure) and builds
/// two lookup indexes on the heap:
/// - for point lookups, a hash index from every key to its entry's file offset
///   (`crate::points`): one cache line for an absent key (most lookups in a delta), that line
///   and the entry's page of the map for a present one;
/// - for ordered scans, every `RESTART_INTERVAL`-th (8th) entry of each block: its file offset
///   and the first 8 bytes of its key after the prefix all keys share, as an integer, searched
///   through a tree of 64-byte lines (one cache line per level, five for 100,000 entries,
///   nothing decoded); a seek then decodes at most 8 entries of one block of the map.
///
/// Lookups and iteration hand out slices of the map without copying. Memory kept per open
/// checkpoint: 16 bytes per block and about 14 bytes per entry (11.4 for the point index, 2.3
/// for the restarts and their tree), so about 1.4 MiB for 100,000 entries; see
/// [`Checkpoint::index_memory_bytes`].
///
/// A `Checkpoint` is `Send + Sync`; share it in an `Arc`.
// `repr(C)` keeps the fields a point lookup reads (the point index, then the bytes) first, so
// that in an `Arc` they follow the reference counts, which every view writes when it takes the
// checkpoint: the point index then usually shares their cache line (always when the allocator
// places the `Arc` in the first three quarters of a line, glibc aligning to 16 bytes), and the
// first lookup of a view does not wait for a second miss on the same checkpoint.
#[repr(C)]
pub struct Checkpoint {
    /// A hash index from each key to its entry's file offset (`crate::points`): a point read
    /// costs one cache line of it for an absent key (most reads of a delta) and that line plus
    /// the entry for a present one.
    points: PointIndex,
    backing: Backing,
    path: PathBuf,
    meta: CheckpointMeta,
    archive_crc: u32,
    entry_count: usize,
    blocks: Box<[BlockSpan]>,
    /// The bytes every key of the file starts with (the longest common prefix of the first
    /// and last keys).
    prefix: [u8; PREFIX_MAX],
    prefix_len: usize,
    /// [`search_key`] of each restart's key without the prefix, in file order.
    restart_keys: SearchTree,
    /// Each restart's entry and block end, by leaf line of `restart_keys`.
    restarts: Box<[RestartLine]>,
    /// The number of restarts.
    restart_count: usize,
}

// The hot fields fit in the first 64 bytes of an `Arc<Checkpoint>`'s allocation (two reference
// counts of 8 bytes, then these fields).
const _: () = assert!(
    2 * size_of::<usize>() + size_of::<PointIndex>() + size_of::<Backing>() <= 64,
    "a lookup's fields no longer follow the Arc's reference counts within 64 bytes"
);

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
        drop(file);
        let bytes = FsStorage.map_readonly(path).map_err(io("mmap"))?;
        // A lookup reads a page or two: no readahead around them.
        bytes.reading_at_random();
        Checkpoint::validate(path.to_path_buf(), whole_file(bytes))
    }

    /// Validates the checkpoint at `offset..offset + len` of a pack's bytes (mapped or copied
    /// by the store's [`helios_storage::Storage`]) and reads it there, without copying: the
    /// pack's bytes stay alive as long as the checkpoint. `name` names it in errors (the pack's
    /// path and the offset, say).
    ///
    /// Validation reads this checkpoint's bytes once, and no other part of the pack.
    ///
    /// # Errors
    /// A range outside `bytes` or not aligned for the archive, and any damage to the
    /// checkpoint (see [`CheckpointError`]).
    pub fn open_in(
        bytes: &ReadOnlyBytes,
        offset: u64,
        len: u64,
        name: PathBuf,
    ) -> Result<Checkpoint> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = offset
            .checked_add(len)
            .and_then(|end| usize::try_from(end).ok())
            .filter(|&end| end <= bytes.len());
        let Some(end) = end else {
            return Err(CheckpointError::Truncated {
                path: name,
                len_bytes: (bytes.len() as u64).saturating_sub(offset),
                expected_bytes: len,
            });
        };
        if !start.is_multiple_of(ARCHIVE_ALIGN)
            || !(bytes.as_ptr() as usize).is_multiple_of(ARCHIVE_ALIGN)
        {
            return Err(CheckpointError::InvalidHeader {
                path: name,
                offset: 0,
                reason: format!("starts at offset {offset}, not a multiple of {ARCHIVE_ALIGN}"),
            });
        }
        Checkpoint::validate(
            name,
            Backing::Pack(Box::new(PackRange {
                bytes: bytes.clone(),
                start,
                end,
            })),
        )
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
    #[cfg(any(test, feature = "bench-hooks"))]
    pub fn evict_pages(&self) -> Result<()> {
        match &self.backing {
            Backing::Heap(_) => Ok(()),
            Backing::Pack(range) => {
                range
                    .bytes
                    .evict_pages()
                    .map_err(|source| CheckpointError::Io {
                        op: "evict pages",
                        path: self.path.clone(),
                        source,
                    })
            }
        }
    }

    /// The number of blocks the entries are laid out in.
    #[must_use]
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Bytes of heap memory the open checkpoint holds for lookups (block positions, the search
    /// tree and its restarts, the point index); the mapped file is not counted. About 14 bytes
    /// per entry for small entries.
    #[must_use]
    pub fn index_memory_bytes(&self) -> usize {
        size_of_val(&*self.blocks)
            + self.restart_keys.memory_bytes()
            + size_of_val(&*self.restarts)
            + self.points.memory_bytes()
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
            prefix: index.prefix,
            prefix_len: index.prefix_len,
            restart_keys: SearchTree::new(&index.restart_keys),
            restart_count: index.restarts.len(),
            restarts: index
                .restarts
                .chunks(LINE_LEN)
                .map(|chunk| {
                    let mut line = RestartLine::default();
                    line.0[..chunk.len()].copy_from_slice(chunk);
                    line
                })
                .collect(),
            points: index.points,
        })
    }

    /// The last restart whose key is at most `key`, or `None` when `key` sorts before every key
    /// of the file.
    #[inline]
    fn last_restart_at_or_below(&self, key: &[u8]) -> Option<usize> {
        let last = self.restart_count.checked_sub(1)?;
        let prefix = &self.prefix[..self.prefix_len];
        let Some(tail) = key.strip_prefix(prefix) else {
            // `key` does not start with the prefix every key has: it sorts before all of them
            // or after all of them.
            return (key > prefix).then_some(last);
        };
        let wanted = search_key(tail);
        // Restarts before `below` have search keys <= `wanted`, so keys <= `key` unless their
        // search keys are equal to it; only those few need their whole key compared.
        let mut below = self
            .restart_keys
            .count_at_or_below_touching(wanted, |line| {
                // Start loading the leaf's restarts now; the read below needs one of them.
                std::hint::black_box(self.restarts.get(line).map(|line| line.0[0]));
            });
        while below > 0 && self.restart_keys.key(below - 1) == wanted {
            let r = below - 1;
            let Restart { offset, end } = self.restart(r);
            match self.entry_in(end as usize, offset as usize) {
                Some((k, _, _)) if k > key => below = r,
                _ => break,
            }
        }
        below.checked_sub(1)
    }

    /// Where a search for `key` starts scanning: the file offset of the last restart at or
    /// below it, and the end of its block. `None` when `key` sorts before every key.
    #[inline]
    fn scan_start(&self, key: &[u8]) -> Option<(usize, usize)> {
        let r = self.last_restart_at_or_below(key)?;
        let Restart { offset, end } = self.restart(r);
        Some((offset as usize, end as usize))
    }

    /// Restart `r`.
    #[inline]
    fn restart(&self, r: usize) -> Restart {
        self.restarts[r / LINE_LEN].0[r % LINE_LEN]
    }

    /// The block holding file offset `offset`.
    fn block_of(&self, offset: usize) -> usize {
        self.blocks.partition_point(|span| span.end <= offset)
    }

    /// The decoded entry at `offset` of the block ending at `end`.
    #[inline]
    fn entry_in(&self, end: usize, offset: usize) -> Option<format::DecodedEntry<'_>> {
        let decoded = format::get_entry(&self.bytes()[..end], offset);
        // Unreachable: validation decoded every entry of every block.
        debug_assert!(
            decoded.is_ok(),
            "validated entry at {offset} fails to decode"
        );
        decoded.ok()
    }

    /// The decoded entry at `offset` of `block`.
    fn entry_at(&self, block: usize, offset: usize) -> Option<format::DecodedEntry<'_>> {
        self.entry_in(self.blocks[block].end, offset)
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
        let Some((mut offset, end)) = self.scan_start(key) else {
            return self.block_start(0);
        };
        let block = self.block_of(offset);
        while offset < end {
            let Some((k, _, next)) = self.entry_in(end, offset) else {
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

    /// Whether the bytes are the file's, not a copy in memory.
    #[cfg(test)]
    pub(crate) fn reads_the_file_for_tests(&self) -> bool {
        matches!(&self.backing, Backing::Pack(range) if range.start == 0)
    }

    /// Replaces the map by a fresh one of the same file, with no page mapped yet, so that pages
    /// can be evicted from the page cache (the kernel does not evict mapped pages).
    #[cfg(test)]
    pub(crate) fn remap_for_tests(&mut self) -> std::io::Result<()> {
        self.backing = Backing::Heap(AlignedVec::new());
        let bytes = FsStorage.map_readonly(&self.path)?;
        bytes.reading_at_random();
        self.backing = whole_file(bytes);
        Ok(())
    }
}

impl SortedRun for Checkpoint {
    fn get(&self, key: &[u8]) -> Lookup<'_> {
        self.get_hashed(&HashedKey::new(key))
    }

    fn get_hashed(&self, hashed: &HashedKey<'_>) -> Lookup<'_> {
        let (key, bytes) = (hashed.key(), self.bytes());
        // The entry at an offset the index holds was decoded at open, inside its block, so
        // decoding it against the whole file reads the same bytes.
        let found = self.points.find_map(hashed.hash(), |offset| {
            format::get_entry(bytes, offset)
                .ok()
                .filter(|&(k, _, _)| k == key)
        });
        match found {
            Some((_, Some(value), _)) => Lookup::Value(value),
            Some((_, None, _)) => Lookup::Deleted,
            None => Lookup::Absent,
        }
    }

    #[inline]
    fn prefetch(&self, key: &HashedKey<'_>) {
        self.points.prefetch(key.hash());
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
