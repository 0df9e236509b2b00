//! The byte layout of checkpoint files. This module is the single place that defines it; the
//! diagrams below draw the same constants and must agree with them.
//!
//! A checkpoint file is a fixed header followed by an rkyv 0.8 archive of `Body`. All
//! integers are fixed-width little-endian (rkyv's are too: this crate pins rkyv's
//! `little_endian`, `aligned` and `pointer_width_32` format features).
//!
//! ```text
//! file offset 0          64 = header::LEN                          64 + archive_len = file length
//! +----------------------+---------------------------------------------------------------+
//! | header (64 bytes)    | rkyv archive of Body (exactly archive_len bytes, root at end)  |
//! +----------------------+---------------------------------------------------------------+
//! ```
//!
//! # Header
//!
//! ```text
//! offset size field         meaning
//!      0    8 magic         b"HELIOSCK"
//!      8    4 format_version u32, FORMAT_VERSION (1); at this offset in every version
//!     12    1 kind          u8: 1 = full state, 2 = delta against the checkpoint at base_version
//!     13    1 level         u8: checkpoint level, >= 1; 0 for a full state after a heavy event
//!     14    2 reserved      zero
//!     16    8 stream_id     u64
//!     24    8 version       u64: the stream version whose state (or delta) this is
//!     32    8 base_version  u64: version of the checkpoint a delta is relative to; 0 for full
//!     40    8 entry_count   u64: entries (values and tombstones) in the archive
//!     48    8 archive_len   u64: archive bytes; the file is exactly 64 + archive_len long
//!     56    4 archive_crc   u32: CRC32 (IEEE, crc32fast) of the archive bytes
//!     60    4 header_crc    u32: CRC32 of header bytes 0..60
//! ```
//!
//! Every byte of a file is covered by one of the two CRCs, so any single-byte corruption is
//! detected; the reserved bytes must also be zero. A reader checks, in this order: length,
//! magic, format version (before the CRC, so that a file of a future format is reported as such),
//! header CRC, header fields, file length, archive CRC, rkyv validation (bytecheck), and then the
//! structure of the blocks ("Invariants" below). It does all of that once, when the file is
//! opened; lookups afterwards only slice into bytes already checked.
//!
//! # Archive
//!
//! The archive's root is `Body`: `data` (every block, back to back, with zero padding between
//! some), `blocks` (one `BlockIndex` per block) and `fences` (the first key of each block).
//! rkyv 0.8 lays out the out-of-line bytes of the fields in field order and the root last (the
//! reader relies on rkyv's validation for this part, not on these positions; only the writer's
//! page alignment assumes that `data` comes first):
//!
//! ```text
//! archive offset 0 (file offset 64)
//! +----------------------------+-----+-----------------+-------------+---------------------+------+
//! | data: block 0, pad,        | pad | blocks:         | fence keys  | fences:             | Body |
//! | block 1, ... (Vec<u8>      | to  | [BlockIndex; n] | (the bytes  | [ArchivedVec<u8>; n]| root |
//! | contents)                  | 8   | 16 bytes each   | of each)    | 8 bytes each        | 24 B |
//! +----------------------------+-----+-----------------+-------------+---------------------+------+
//! ```
//!
//! (An `ArchivedVec` is an `i32` offset relative to itself and a `u32` length; the root `Body`
//! is three of them.)
//!
//! `BlockIndex` is `{ offset: u64, len: u32, entry_count: u32 }`: block `i` is
//! `data[offset .. offset + len]` and holds `entry_count` entries; each block's first key equals
//! its fence. A reader checks them when it opens the file and keeps the block positions in
//! memory (and, in-memory details of this reader, a search index over every 8th entry and a
//! hash index of the keys; see [`crate::Checkpoint`]), so a point lookup reads one entry of the
//! map and a seek a short scan inside one block: one page of the file for small entries.
//!
//! # Blocks and entries
//!
//! ```text
//! block := entry{entry_count}                      (exactly len bytes)
//! entry := key_len     ULEB128, <= KEY_LEN_MAX     (1-3 bytes)
//!          value_code  ULEB128: 0 = tombstone,     (1-4 bytes)
//!                      n + 1 = a value of n bytes, n <= VALUE_LEN_MAX
//!          key         [u8; key_len]
//!          value       [u8; n]                     (absent for a tombstone)
//! ```
//!
//! ULEB128 is 7 bits per byte, least significant group first, high bit set on every byte but the
//! last; the shortest encoding is required. A 16-byte key with a 32-byte value takes 50 bytes.
//! Keys are stored whole (no prefix compression) so that lookups and iteration hand out slices
//! of the mapped file without copying.
//!
//! The writer cuts blocks so that a block of more than one entry never crosses a [`PAGE_LEN`]
//! boundary of the file (file offsets, assuming `data` starts at archive offset 0, which a test
//! checks): an entry that would end past the page its block started in closes that block and
//! starts a new one. Before a new block starts, if its first entry fits in a page but not in the
//! rest of the current page, and that rest is at most [`PAD_LEN_MAX`] bytes, zeros pad `data` to
//! the page boundary. Otherwise the new block starts where `data` ends, and its first entry may
//! span pages (always so for an entry larger than a page). Padding is thus at most
//! [`PAD_LEN_MAX`] bytes (12.5%) per page; for 50-byte entries, under 50 bytes per page.
//!
//! # Invariants (checked when a file is opened)
//!
//! - Keys are strictly increasing across the whole file (within and across blocks).
//! - `blocks.len() == fences.len()`; `fences[i]` is the first key of block `i`.
//! - Every block holds at least one entry and decodes to exactly `entry_count` entries in
//!   exactly `len` bytes.
//! - Blocks are in increasing offset order without overlap; the gaps before the first block,
//!   between blocks and after the last one are zero bytes, each at most [`PAD_LEN_MAX`] long.
//! - The entry counts of the blocks sum to the header's `entry_count`.
//! - Full checkpoints have `base_version == 0`; deltas have `base_version < version`; `kind` is
//!   1 or 2; level 0 (the full state an engine writes after an event that changed many keys,
//!   at a version its level policy does not checkpoint) is only for full checkpoints.
//!
//! # Version history
//!
//! - 1: this layout.

use std::path::Path;

use rkyv::util::AlignedVec;

use crate::error::CheckpointError;

/// Magic bytes at the start of every checkpoint file.
pub const MAGIC: [u8; 8] = *b"HELIOSCK";

/// On-disk format version of checkpoint files. Bump on any layout change.
pub const FORMAT_VERSION: u32 = 1;

/// Alignment the archive needs in memory and in the file (rkyv's archived `u64`s need 8; its
/// `AlignedVec` provides 16).
pub const ARCHIVE_ALIGN: usize = 16;

/// The page size the block layout is designed for.
pub const PAGE_LEN: usize = 4096;

/// Most zero bytes the writer pads with to start a block at a page boundary, and most a reader
/// accepts in any gap of `data`.
pub const PAD_LEN_MAX: usize = PAGE_LEN / 8;

/// Longest key: 64 KiB.
pub const KEY_LEN_MAX: usize = 64 << 10;

/// Longest value: 16 MiB.
pub const VALUE_LEN_MAX: usize = 16 << 20;

/// Longest archive: rkyv's 32-bit relative pointers cannot span 2 GiB.
pub const ARCHIVE_LEN_MAX: u64 = i32::MAX as u64;

/// Header layout: field offsets, then the total length.
pub mod header {
    /// `magic: [u8; 8]`, [`super::MAGIC`].
    pub const MAGIC: usize = 0;
    /// `format_version: u32`, [`super::FORMAT_VERSION`]. Stays at this offset in every version.
    pub const FORMAT_VERSION: usize = MAGIC + 8;
    /// `kind: u8`, see [`super::CheckpointKind`].
    pub const KIND: usize = FORMAT_VERSION + 4;
    /// `level: u8`, at least 1.
    pub const LEVEL: usize = KIND + 1;
    /// `machine: u16`: which state machine built it, a number the store assigns to each
    /// machine name (0: not recorded; this field was reserved, and zero, before store format
    /// 5). See [`super::CheckpointMeta::machine`].
    pub const MACHINE: usize = LEVEL + 1;
    /// `stream_id: u64`.
    pub const STREAM_ID: usize = MACHINE + 2;
    /// `version: u64`.
    pub const VERSION: usize = STREAM_ID + 8;
    /// `base_version: u64`, 0 for a full checkpoint.
    pub const BASE_VERSION: usize = VERSION + 8;
    /// `entry_count: u64`.
    pub const ENTRY_COUNT: usize = BASE_VERSION + 8;
    /// `archive_len: u64`.
    pub const ARCHIVE_LEN: usize = ENTRY_COUNT + 8;
    /// `archive_crc: u32`, CRC32 of the archive bytes.
    pub const ARCHIVE_CRC: usize = ARCHIVE_LEN + 8;
    /// `header_crc: u32`, CRC32 of header bytes `0..HEADER_CRC`.
    pub const HEADER_CRC: usize = ARCHIVE_CRC + 4;
    /// Total header length; the archive starts here.
    pub const LEN: usize = 8 // magic
        + 4 // format_version
        + 1 // kind
        + 1 // level
        + 2 // machine
        + 8 // stream_id
        + 8 // version
        + 8 // base_version
        + 8 // entry_count
        + 8 // archive_len
        + 4 // archive_crc
        + 4; // header_crc
    const _: () = assert!(HEADER_CRC + 4 == LEN);
    const _: () = assert!(LEN == 64);
    const _: () = assert!(LEN.is_multiple_of(super::ARCHIVE_ALIGN));
    // The 8-byte fields are naturally aligned, which keeps the layout easy to read in a hex dump.
    const _: () = assert!(STREAM_ID.is_multiple_of(8) && ARCHIVE_LEN.is_multiple_of(8));
}

const _: () = assert!(PAD_LEN_MAX < PAGE_LEN);
const _: () = assert!(KEY_LEN_MAX <= u32::MAX as usize);
// The value code is `len + 1` and must fit in a `u32`.
const _: () = assert!(VALUE_LEN_MAX < u32::MAX as usize);
const _: () = assert!(ARCHIVE_LEN_MAX <= usize::MAX as u64);
// Every file offset fits in a `u32` (the reader's in-memory index stores them so).
const _: () = assert!(header::LEN as u64 + ARCHIVE_LEN_MAX <= u32::MAX as u64);

/// Whether a checkpoint holds a full state or a delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckpointKind {
    /// The full state at `version`: keys absent from the run are absent from the state.
    Full,
    /// The changes (values and tombstones) from the checkpoint at `base_version` to `version`.
    Delta,
}

impl CheckpointKind {
    /// The header byte.
    #[must_use]
    pub fn to_byte(self) -> u8 {
        match self {
            CheckpointKind::Full => 1,
            CheckpointKind::Delta => 2,
        }
    }

    /// The kind a header byte names, if any.
    #[must_use]
    pub fn from_byte(byte: u8) -> Option<CheckpointKind> {
        match byte {
            1 => Some(CheckpointKind::Full),
            2 => Some(CheckpointKind::Delta),
            _ => None,
        }
    }
}

/// What a checkpoint is: the header fields other than lengths and checksums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckpointMeta {
    /// Full state or delta.
    pub kind: CheckpointKind,
    /// The checkpoint level, at least 1 (see [`crate::LevelPolicy`]).
    pub level: u8,
    /// The state machine that built it, as a number the store assigns to each machine name
    /// (0: not recorded, as in every checkpoint written before store format 5). A store that
    /// knows the number reads the checkpoint only for a stream of that machine, so that the
    /// state of another machine is never taken for the stream's.
    pub machine: u16,
    /// The stream the state belongs to.
    pub stream_id: u64,
    /// The stream version whose state (or delta) this is.
    pub version: u64,
    /// For a delta, the version of the checkpoint it is relative to (0: the empty state); 0 for
    /// a full checkpoint.
    pub base_version: u64,
}

impl CheckpointMeta {
    /// A full checkpoint of `stream_id` at `version`.
    #[must_use]
    pub fn full(stream_id: u64, version: u64, level: u8) -> CheckpointMeta {
        CheckpointMeta {
            kind: CheckpointKind::Full,
            level,
            machine: 0,
            stream_id,
            version,
            base_version: 0,
        }
    }

    /// A delta of `stream_id` at `version` against the checkpoint at `base_version`.
    #[must_use]
    pub fn delta(stream_id: u64, version: u64, level: u8, base_version: u64) -> CheckpointMeta {
        CheckpointMeta {
            kind: CheckpointKind::Delta,
            level,
            machine: 0,
            stream_id,
            version,
            base_version,
        }
    }

    /// The same, built by machine number `machine` (see [`CheckpointMeta::machine`]).
    #[must_use]
    pub fn with_machine(self, machine: u16) -> CheckpointMeta {
        CheckpointMeta { machine, ..self }
    }

    /// Why these fields cannot describe a checkpoint, if they cannot. The header field the
    /// problem is in comes with it.
    #[must_use]
    pub fn problem(&self) -> Option<(usize, &'static str)> {
        if self.level == 0 && self.kind != CheckpointKind::Full {
            return Some((
                header::LEVEL,
                "level 0 (the state after a heavy event) must be a full checkpoint",
            ));
        }
        match self.kind {
            CheckpointKind::Full if self.base_version != 0 => Some((
                header::BASE_VERSION,
                "a full checkpoint must have base version 0",
            )),
            CheckpointKind::Delta if self.base_version >= self.version => Some((
                header::BASE_VERSION,
                "a delta's base version must be below its version",
            )),
            _ => None,
        }
    }
}

/// The decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) meta: CheckpointMeta,
    pub(crate) entry_count: u64,
    pub(crate) archive_len: u64,
    pub(crate) archive_crc: u32,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

impl Header {
    /// Encodes the header, computing its CRC.
    pub(crate) fn encode(&self) -> [u8; header::LEN] {
        use header as h;
        let mut out = [0u8; h::LEN];
        out[h::MAGIC..h::MAGIC + 8].copy_from_slice(&MAGIC);
        out[h::FORMAT_VERSION..h::FORMAT_VERSION + 4]
            .copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[h::KIND] = self.meta.kind.to_byte();
        out[h::LEVEL] = self.meta.level;
        out[h::MACHINE..h::MACHINE + 2].copy_from_slice(&self.meta.machine.to_le_bytes());
        out[h::STREAM_ID..h::STREAM_ID + 8].copy_from_slice(&self.meta.stream_id.to_le_bytes());
        out[h::VERSION..h::VERSION + 8].copy_from_slice(&self.meta.version.to_le_bytes());
        out[h::BASE_VERSION..h::BASE_VERSION + 8]
            .copy_from_slice(&self.meta.base_version.to_le_bytes());
        out[h::ENTRY_COUNT..h::ENTRY_COUNT + 8].copy_from_slice(&self.entry_count.to_le_bytes());
        out[h::ARCHIVE_LEN..h::ARCHIVE_LEN + 8].copy_from_slice(&self.archive_len.to_le_bytes());
        out[h::ARCHIVE_CRC..h::ARCHIVE_CRC + 4].copy_from_slice(&self.archive_crc.to_le_bytes());
        let crc = crc32fast::hash(&out[..h::HEADER_CRC]);
        out[h::HEADER_CRC..h::HEADER_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks the header of a whole file, `file`, including that the file is exactly
    /// as long as the header says. `path` only names the file in errors.
    pub(crate) fn decode(path: &Path, file: &[u8]) -> Result<Header, CheckpointError> {
        let header = Header::decode_prefix(path, file)?;
        let file_len = file.len() as u64;
        // Cannot overflow: archive_len is at most ARCHIVE_LEN_MAX.
        let expected_bytes = header::LEN as u64 + header.archive_len;
        if file_len < expected_bytes {
            return Err(CheckpointError::Truncated {
                path: path.to_path_buf(),
                len_bytes: file_len,
                expected_bytes,
            });
        }
        if file_len > expected_bytes {
            return Err(CheckpointError::TrailingBytes {
                path: path.to_path_buf(),
                len_bytes: file_len,
                expected_bytes,
            });
        }
        Ok(header)
    }

    /// Decodes and checks the header at the start of `file`, whatever follows it.
    fn decode_prefix(path: &Path, file: &[u8]) -> Result<Header, CheckpointError> {
        use header as h;
        let file_len = file.len() as u64;
        if file.len() < h::LEN {
            return Err(CheckpointError::Truncated {
                path: path.to_path_buf(),
                len_bytes: file_len,
                expected_bytes: h::LEN as u64,
            });
        }
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&file[h::MAGIC..h::MAGIC + 8]);
        if magic != MAGIC {
            return Err(CheckpointError::WrongMagic {
                path: path.to_path_buf(),
                found: magic,
            });
        }
        let version = u32_at(file, h::FORMAT_VERSION);
        if version != FORMAT_VERSION {
            return Err(CheckpointError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
            });
        }
        let stored = u32_at(file, h::HEADER_CRC);
        let computed = crc32fast::hash(&file[..h::HEADER_CRC]);
        if stored != computed {
            return Err(CheckpointError::HeaderChecksum {
                path: path.to_path_buf(),
                stored,
                computed,
            });
        }
        let invalid = |offset: usize, reason: String| CheckpointError::InvalidHeader {
            path: path.to_path_buf(),
            offset: offset as u64,
            reason,
        };
        let kind = CheckpointKind::from_byte(file[h::KIND]).ok_or_else(|| {
            invalid(
                h::KIND,
                format!(
                    "unknown checkpoint kind {} (1 = full, 2 = delta)",
                    file[h::KIND]
                ),
            )
        })?;
        let meta = CheckpointMeta {
            kind,
            level: file[h::LEVEL],
            machine: u16::from_le_bytes([file[h::MACHINE], file[h::MACHINE + 1]]),
            stream_id: u64_at(file, h::STREAM_ID),
            version: u64_at(file, h::VERSION),
            base_version: u64_at(file, h::BASE_VERSION),
        };
        if let Some((offset, reason)) = meta.problem() {
            return Err(invalid(offset, reason.to_owned()));
        }
        let archive_len = u64_at(file, h::ARCHIVE_LEN);
        if archive_len > ARCHIVE_LEN_MAX {
            return Err(invalid(
                h::ARCHIVE_LEN,
                format!("archive length {archive_len} exceeds the limit of {ARCHIVE_LEN_MAX}"),
            ));
        }
        Ok(Header {
            meta,
            entry_count: u64_at(file, h::ENTRY_COUNT),
            archive_len,
            archive_crc: u32_at(file, h::ARCHIVE_CRC),
        })
    }
}

/// Decodes and checks the checkpoint header at the start of `bytes` (a checkpoint in a pack, or
/// its first [`header::LEN`] bytes), without reading its archive: what it is and its whole
/// length, header and archive. `path` names the file in errors.
///
/// # Errors
/// A short, foreign, newer or damaged header (see [`CheckpointError`]).
pub fn peek_header(path: &Path, bytes: &[u8]) -> Result<(CheckpointMeta, u64), CheckpointError> {
    let header = Header::decode_prefix(path, bytes)?;
    Ok((header.meta, header::LEN as u64 + header.archive_len))
}

/// For tests and fuzzing: after damaging an encoded checkpoint on purpose, rewrites its archive
/// CRC (over the bytes the header's archive length names, clamped to what is present) and then
/// its header CRC, so that the damage gets past the checksums and reaches the checks behind them.
/// Does nothing to bytes shorter than a header.
pub fn reseal_crcs(file: &mut [u8]) {
    use header as h;
    if file.len() < h::LEN {
        return;
    }
    let archive_len = usize::try_from(u64_at(file, h::ARCHIVE_LEN)).unwrap_or(usize::MAX);
    let archive_end = h::LEN.saturating_add(archive_len).min(file.len());
    let archive_crc = crc32fast::hash(&file[h::LEN..archive_end]);
    file[h::ARCHIVE_CRC..h::ARCHIVE_CRC + 4].copy_from_slice(&archive_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&file[..h::HEADER_CRC]);
    file[h::HEADER_CRC..h::HEADER_CRC + 4].copy_from_slice(&header_crc.to_le_bytes());
}

/// Copies `bytes` into a buffer aligned for the archive. Bytes from `fs::read` or a fuzzer are
/// not aligned, and rkyv validation rejects a misaligned root.
#[must_use]
pub(crate) fn aligned_copy(bytes: &[u8]) -> AlignedVec<ARCHIVE_ALIGN> {
    let mut out = AlignedVec::<ARCHIVE_ALIGN>::with_capacity(bytes.len());
    out.extend_from_slice(bytes);
    out
}

/// The root of the archive. See the module documentation.
#[derive(rkyv::Archive, rkyv::Serialize)]
pub(crate) struct Body {
    /// Every block, in key order, with zero padding in some gaps. First, so that the writer
    /// knows where in the file its bytes land.
    pub(crate) data: Vec<u8>,
    /// Where each block is in `data`.
    pub(crate) blocks: Vec<BlockIndex>,
    /// The first key of each block.
    pub(crate) fences: Vec<Vec<u8>>,
}

/// Where one block is and how many entries it holds.
#[derive(rkyv::Archive, rkyv::Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockIndex {
    /// Byte offset of the block in `data`.
    pub(crate) offset: u64,
    /// Length of the block in bytes.
    pub(crate) len: u32,
    /// Number of entries in the block, at least 1.
    pub(crate) entry_count: u32,
}

/// Bytes a ULEB128 encoding of `value` takes.
#[must_use]
pub(crate) fn uleb_len(value: u32) -> usize {
    match value {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        0x20_0000..0x1000_0000 => 4,
        _ => 5,
    }
}

fn put_uleb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        // Cannot truncate: masked to 7 bits.
        let group = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(group);
            return;
        }
        out.push(group | 0x80);
    }
}

/// Decodes a ULEB128 `u32` at `at`, returning it and the offset after it. Rejects encodings that
/// run past `bytes`, exceed `u32`, or are longer than needed.
fn get_uleb(bytes: &[u8], at: usize) -> Result<(u32, usize), &'static str> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let Some(&byte) = bytes.get(at + i) else {
            return Err("length field runs past the end of the block");
        };
        let group = u32::from(byte & 0x7f);
        if i == 4 && group > 0x0f {
            return Err("length field exceeds 32 bits");
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err("length field is not in its shortest encoding");
            }
            return Ok((value, at + i + 1));
        }
    }
    Err("length field is longer than 5 bytes")
}

/// The value code of an entry: 0 for a tombstone, `len + 1` for a value.
fn value_code(value: Option<&[u8]>) -> u32 {
    // Cannot truncate: the writer checks value lengths against VALUE_LEN_MAX < u32::MAX first.
    value.map_or(0, |v| {
        u32::try_from(v.len()).map_or(u32::MAX, |n| n.saturating_add(1))
    })
}

/// Bytes an entry takes. Key and value lengths must be within the limits.
#[must_use]
pub(crate) fn entry_len(key: &[u8], value: Option<&[u8]>) -> usize {
    let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    uleb_len(key_len) + uleb_len(value_code(value)) + key.len() + value.map_or(0, <[u8]>::len)
}

/// Appends an entry. Key and value lengths must be within the limits.
pub(crate) fn put_entry(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) {
    debug_assert!(key.len() <= KEY_LEN_MAX);
    debug_assert!(value.is_none_or(|v| v.len() <= VALUE_LEN_MAX));
    let start = out.len();
    put_uleb(out, u32::try_from(key.len()).unwrap_or(u32::MAX));
    put_uleb(out, value_code(value));
    out.extend_from_slice(key);
    if let Some(value) = value {
        out.extend_from_slice(value);
    }
    debug_assert_eq!(out.len() - start, entry_len(key, value));
}

/// One decoded entry: its key, value (`None` for a tombstone), and where the next one starts.
pub(crate) type DecodedEntry<'a> = (&'a [u8], Option<&'a [u8]>, usize);

/// Decodes the entry at `at` in `bytes`, which must end where the entry's block ends. On error,
/// returns the offset of the bad field and what is wrong with it.
#[inline]
pub(crate) fn get_entry(
    bytes: &[u8],
    at: usize,
) -> Result<DecodedEntry<'_>, (usize, &'static str)> {
    // Fast path for lookups: both lengths take one byte (keys under 128 bytes, values under 127),
    // which is always the shortest encoding and within the limits. Anything else, including every
    // error, takes the general path below.
    if let Some(&[key_len, code]) = bytes.get(at..at + 2)
        && (key_len | code) & 0x80 == 0
    {
        let key_end = at + 2 + usize::from(key_len);
        let value_end = key_end + usize::from(code.saturating_sub(1));
        if value_end <= bytes.len() {
            let key = &bytes[at + 2..key_end];
            let value = (code != 0).then(|| &bytes[key_end..value_end]);
            return Ok((key, value, value_end));
        }
    }
    let (key_len, after_key_len) = get_uleb(bytes, at).map_err(|e| (at, e))?;
    let (code, key_start) = get_uleb(bytes, after_key_len).map_err(|e| (after_key_len, e))?;
    let key_len = key_len as usize;
    if key_len > KEY_LEN_MAX {
        return Err((at, "key length exceeds the 64 KiB limit"));
    }
    let key_end = key_start + key_len;
    let Some(key) = bytes.get(key_start..key_end) else {
        return Err((at, "key runs past the end of the block"));
    };
    if code == 0 {
        return Ok((key, None, key_end));
    }
    let value_len = (code - 1) as usize;
    if value_len > VALUE_LEN_MAX {
        return Err((after_key_len, "value length exceeds the 16 MiB limit"));
    }
    let value_end = key_end + value_len;
    let Some(value) = bytes.get(key_end..value_end) else {
        return Err((after_key_len, "value runs past the end of the block"));
    };
    Ok((key, Some(value), value_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uleb_round_trips_and_rejects_bad_encodings() {
        for value in [
            0,
            1,
            0x7f,
            0x80,
            0x3fff,
            0x4000,
            0x1f_ffff,
            0x20_0000,
            u32::MAX,
        ] {
            let mut out = Vec::new();
            put_uleb(&mut out, value);
            assert_eq!(out.len(), uleb_len(value), "{value:#x}");
            assert_eq!(get_uleb(&out, 0), Ok((value, out.len())), "{value:#x}");
            for cut in 0..out.len() {
                assert!(get_uleb(&out[..cut], 0).is_err());
            }
        }
        assert!(get_uleb(&[0x80, 0x00], 0).is_err(), "overlong zero");
        assert!(
            get_uleb(&[0xff, 0xff, 0xff, 0xff, 0x1f], 0).is_err(),
            "33 bits"
        );
        assert!(get_uleb(&[0x80; 6], 0).is_err(), "six bytes");
    }

    #[test]
    fn entries_round_trip_at_the_limits() {
        let key = vec![7u8; KEY_LEN_MAX];
        let value = vec![9u8; VALUE_LEN_MAX];
        for (k, v) in [
            (&b""[..], None),
            (&b"k"[..], Some(&b""[..])),
            (&key[..], Some(&value[..])),
            (&key[..], None),
        ] {
            let mut out = vec![0xAA];
            put_entry(&mut out, k, v);
            assert_eq!(out.len(), 1 + entry_len(k, v));
            assert_eq!(get_entry(&out, 1), Ok((k, v, out.len())));
            assert!(get_entry(&out[..out.len() - 1], 1).is_err());
        }
    }

    #[test]
    fn header_round_trips_and_rejects_bad_meta() {
        let h = Header {
            meta: CheckpointMeta::delta(3, 20, 1, 10),
            entry_count: 5,
            archive_len: 0,
            archive_crc: 0,
        };
        let bytes = h.encode();
        assert_eq!(Header::decode(Path::new("x"), &bytes).ok(), Some(h));
        // Level 0 is the full state after a heavy event: a delta there is refused.
        assert_eq!(CheckpointMeta::full(1, 13, 0).problem(), None);
        for (meta, field) in [
            (CheckpointMeta::delta(1, 13, 0, 10), header::LEVEL),
            (CheckpointMeta::delta(1, 10, 1, 10), header::BASE_VERSION),
            (
                CheckpointMeta {
                    base_version: 1,
                    ..CheckpointMeta::full(1, 10, 3)
                },
                header::BASE_VERSION,
            ),
        ] {
            assert_eq!(meta.problem().map(|p| p.0), Some(field), "{meta:?}");
            let bytes = Header { meta, ..h }.encode();
            let err = Header::decode(Path::new("x"), &bytes).expect_err("bad meta accepted");
            assert!(
                matches!(err, CheckpointError::InvalidHeader { offset, .. } if offset == field as u64),
                "{err}"
            );
        }
    }
}
