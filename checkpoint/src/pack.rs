//! Checkpoint packs: the files checkpoints live in. A pack is a header followed by checkpoints
//! (each in the checkpoint format of [`crate::format`], header and archive) appended back to
//! back, so that files grow in number with bytes, not with checkpoints. This module is the
//! single place that defines a pack's layout; `docs/FORMAT.md` draws it.
//!
//! ```text
//! pack offset 0        64                      a                     b
//! +--------------------+-----------------------+-----+---------------+----- ... ----+
//! | pack header (64 B) | checkpoint (header +  | 0.. | checkpoint    |              |
//! |                    | archive)              | pad |               |              |
//! +--------------------+-----------------------+-----+---------------+----- ... ----+
//! ```
//!
//! # Pack header
//!
//! ```text
//! offset size field          meaning
//!      0    8 magic          b"HELIOSPK"
//!      8    4 format_version u32, PACK_FORMAT_VERSION (1); at this offset in every version
//!     12    4 reserved       zero
//!     16    8 seq            u64: the pack's number, also in its name (<seq, 10 digits>.pack)
//!     24    8 capacity       u64: checkpoints are appended only below this offset
//!     32    8 store_id       u64: the store that wrote it (its `STORE-ID` file), 0 if unknown
//!     40   20 reserved       zero
//!     60    4 header_crc     u32: CRC32 of bytes 0..60
//! ```
//!
//! # Records
//!
//! Each checkpoint starts at an offset that is a multiple of [`RECORD_ALIGN`] (16, what the
//! archive needs), or of [`PAGE_LEN`] for one of at least [`PAGE_ALIGN_FROM`] bytes, so that
//! the page layout of its blocks holds in the pack (see [`record_offset`]). Its own header says
//! how long it is and carries its CRCs: a pack adds no framing. Between two checkpoints there are
//! only zero bytes, fewer than a page.
//!
//! Invariants (the writer keeps them; readers rely on them):
//! - A pack only grows: bytes once written are never rewritten, and a pack is truncated only
//!   past its published end, when a writer opens the store after a crash (a torn tail).
//! - Checkpoints are appended only below the capacity, so a reader that maps `capacity` bytes
//!   sees every checkpoint the pack will ever hold.
//! - Checkpoints in a pack are validated when first read ([`crate::Checkpoint::open_in`]); a
//!   scan ([`scan`]) checks only their headers.

use std::path::Path;

use crate::error::{CheckpointError, Result};
use crate::format::{self, ARCHIVE_ALIGN, CheckpointMeta, PAGE_LEN};

/// Magic bytes at the start of every pack.
pub const PACK_MAGIC: [u8; 8] = *b"HELIOSPK";

/// On-disk format version of packs. Bump on any layout change.
pub const PACK_FORMAT_VERSION: u32 = 1;

/// The alignment of every checkpoint in a pack.
pub const RECORD_ALIGN: u64 = ARCHIVE_ALIGN as u64;

/// Checkpoints at least this long start at a page boundary: the writer lays out their blocks so
/// that a point read touches one page, which holds only if the checkpoint starts on one. Smaller
/// ones (at most four pages) start at the next 16-byte boundary, so small checkpoints do not
/// each waste most of a page.
pub const PAGE_ALIGN_FROM: u64 = 4 * PAGE_LEN as u64;

/// The capacity of a new pack: one file per this many bytes of checkpoints. A stream's first
/// use searches the index of every pack (unless the pack's stream bitmap
/// rules it out), so fewer, larger packs make first loads cheaper: at 100,000 streams (233 MB
/// of checkpoints) the latest-state load's p50 was 7.7 us in one pack against 10.0-10.4 us in
/// four of 64 MiB. Larger packs keep more dead bytes before a compaction rewrites them (half a
/// pack).
pub const DEFAULT_PACK_CAPACITY: u64 = 256 << 20;

/// The extension of pack files.
pub const PACK_EXTENSION: &str = "pack";

/// Byte offsets of the pack header's fields.
pub mod pack_header {
    /// `magic: [u8; 8]`, [`super::PACK_MAGIC`].
    pub const MAGIC: usize = 0;
    /// `format_version: u32`. Stays at this offset in every version.
    pub const FORMAT_VERSION: usize = 8;
    /// `reserved: u32`, zero.
    pub const RESERVED_A: usize = 12;
    /// `seq: u64`.
    pub const SEQ: usize = 16;
    /// `capacity: u64`.
    pub const CAPACITY: usize = 24;
    /// `store_id: u64`.
    pub const STORE_ID: usize = 32;
    /// `reserved: [u8; 20]`, zero.
    pub const RESERVED_B: usize = 40;
    /// `header_crc: u32` of bytes `0..HEADER_CRC`.
    pub const HEADER_CRC: usize = 60;
    /// The header's length; the first checkpoint starts here.
    pub const LEN: usize = 64;
    const _: () = assert!(HEADER_CRC + 4 == LEN);
    const _: () = assert!((LEN as u64).is_multiple_of(super::RECORD_ALIGN));
}

/// The file name of pack `seq`.
#[must_use]
pub fn pack_file_name(seq: u64) -> String {
    format!("{seq:010}.{PACK_EXTENSION}")
}

/// The pack number of a name made by [`pack_file_name`].
#[must_use]
pub fn parse_pack_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".pack")?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What a pack header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackHeader {
    /// The pack's number.
    pub seq: u64,
    /// Checkpoints lie below this offset.
    pub capacity: u64,
    /// The store that wrote the pack (0: unknown).
    pub store_id: u64,
}

impl PackHeader {
    /// Encodes the header, computing its CRC.
    #[must_use]
    pub fn encode(&self) -> [u8; pack_header::LEN] {
        use pack_header as h;
        let mut out = [0u8; h::LEN];
        out[h::MAGIC..h::MAGIC + 8].copy_from_slice(&PACK_MAGIC);
        out[h::FORMAT_VERSION..h::FORMAT_VERSION + 4]
            .copy_from_slice(&PACK_FORMAT_VERSION.to_le_bytes());
        out[h::SEQ..h::SEQ + 8].copy_from_slice(&self.seq.to_le_bytes());
        out[h::CAPACITY..h::CAPACITY + 8].copy_from_slice(&self.capacity.to_le_bytes());
        out[h::STORE_ID..h::STORE_ID + 8].copy_from_slice(&self.store_id.to_le_bytes());
        let crc = crc32fast::hash(&out[..h::HEADER_CRC]);
        out[h::HEADER_CRC..h::HEADER_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks the header at the start of `bytes`; `path` names the pack in errors.
    ///
    /// # Errors
    /// A short, foreign, newer or damaged header, naming the field's offset.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<PackHeader> {
        use pack_header as h;
        if bytes.len() < h::LEN {
            return Err(CheckpointError::Truncated {
                path: path.to_path_buf(),
                len_bytes: bytes.len() as u64,
                expected_bytes: h::LEN as u64,
            });
        }
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&bytes[h::MAGIC..h::MAGIC + 8]);
        if magic != PACK_MAGIC {
            return Err(CheckpointError::WrongMagic {
                path: path.to_path_buf(),
                found: magic,
            });
        }
        let version = u32_at(bytes, h::FORMAT_VERSION);
        if version != PACK_FORMAT_VERSION {
            return Err(CheckpointError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
            });
        }
        let stored = u32_at(bytes, h::HEADER_CRC);
        let computed = crc32fast::hash(&bytes[..h::HEADER_CRC]);
        if stored != computed {
            return Err(CheckpointError::HeaderChecksum {
                path: path.to_path_buf(),
                stored,
                computed,
            });
        }
        let reserved = (h::RESERVED_A..h::RESERVED_A + 4).chain(h::RESERVED_B..h::HEADER_CRC);
        if let Some(at) = reserved.into_iter().find(|&at| bytes[at] != 0) {
            return Err(CheckpointError::InvalidHeader {
                path: path.to_path_buf(),
                offset: at as u64,
                reason: format!("reserved byte is {:#04x}, not zero", bytes[at]),
            });
        }
        let header = PackHeader {
            seq: u64_at(bytes, h::SEQ),
            capacity: u64_at(bytes, h::CAPACITY),
            store_id: u64_at(bytes, h::STORE_ID),
        };
        if header.capacity < h::LEN as u64 || !header.capacity.is_multiple_of(RECORD_ALIGN) {
            return Err(CheckpointError::InvalidHeader {
                path: path.to_path_buf(),
                offset: h::CAPACITY as u64,
                reason: format!(
                    "capacity {} is below the header or not a multiple of {RECORD_ALIGN}",
                    header.capacity
                ),
            });
        }
        Ok(header)
    }
}

/// Where a checkpoint of `len` bytes goes in a pack whose bytes end at `end`: the next multiple
/// of [`RECORD_ALIGN`], or of [`PAGE_LEN`] for one of at least [`PAGE_ALIGN_FROM`] bytes.
#[must_use]
pub fn record_offset(end: u64, len: u64) -> u64 {
    let align = if len >= PAGE_ALIGN_FROM {
        PAGE_LEN as u64
    } else {
        RECORD_ALIGN
    };
    // Saturating: an offset this close to `u64::MAX` lies past every file.
    end.div_ceil(align).saturating_mul(align)
}

/// The capacity of a new pack that must hold a first checkpoint of `len` bytes: the default,
/// or more for a checkpoint that would not fit in it.
#[must_use]
pub fn capacity_for(default_capacity: u64, len: u64) -> u64 {
    let needed = record_offset(pack_header::LEN as u64, len) + len;
    default_capacity.max(needed.div_ceil(RECORD_ALIGN) * RECORD_ALIGN)
}

/// A checkpoint found in a pack by [`scan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    /// What its header says.
    pub meta: CheckpointMeta,
    /// Its offset in the pack.
    pub offset: u64,
    /// Its length (header and archive).
    pub len: u64,
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub struct PackScan {
    /// The checkpoints, in pack order.
    pub entries: Vec<PackEntry>,
    /// Just past the last checkpoint found (where the next one would be placed from).
    pub end: u64,
    /// Why the scan stopped before `until`, if it met something that is neither a checkpoint
    /// header nor zero padding: the offset and the reason. A torn tail after a crash looks
    /// like this; so does damage.
    pub stopped: Option<(u64, String)>,
}

/// Reads the checkpoint headers of the pack `bytes` (whose header was decoded) from `from` (the
/// end of a checkpoint, or the header's end) up to `until` (the bytes written, or published).
/// Only headers are read: a checkpoint's archive is checked when first read.
#[must_use]
pub fn scan(path: &Path, bytes: &[u8], from: u64, until: u64) -> PackScan {
    let until = until.min(bytes.len() as u64);
    let mut out = PackScan {
        end: from,
        ..PackScan::default()
    };
    let mut at = record_offset(from, 0);
    while at < until {
        let magic_end = (at + 8).min(until);
        if bytes[to_usize(at)..to_usize(magic_end)]
            .iter()
            .all(|&b| b == 0)
        {
            // A checkpoint starts with its magic, never with zeros: this is the padding before
            // a page-aligned checkpoint, or the end of what was written.
            if at.is_multiple_of(PAGE_LEN as u64) {
                break;
            }
            let page = record_offset(at, PAGE_ALIGN_FROM);
            let next_magic = page.saturating_add(8);
            if next_magic > until
                || bytes[to_usize(page)..to_usize(next_magic)]
                    .iter()
                    .all(|&b| b == 0)
            {
                break;
            }
            if bytes[to_usize(at)..to_usize(page)].iter().any(|&b| b != 0) {
                out.stopped = Some((at, "non-zero bytes between checkpoints".to_owned()));
                break;
            }
            at = page;
            continue;
        }
        let header_end = at + format::header::LEN as u64;
        if header_end > until {
            out.stopped = Some((at, "a checkpoint header cut short".to_owned()));
            break;
        }
        let header = &bytes[to_usize(at)..to_usize(header_end)];
        match format::peek_header(path, header) {
            Ok((meta, len)) => {
                let Some(end) = at.checked_add(len).filter(|&end| end <= until) else {
                    out.stopped = Some((
                        at,
                        format!("a checkpoint of {len} bytes runs past the end at {until}"),
                    ));
                    break;
                };
                if record_offset(out.end, len) != at {
                    out.stopped = Some((
                        at,
                        format!("a checkpoint of {len} bytes is not where the writer puts one"),
                    ));
                    break;
                }
                out.entries.push(PackEntry {
                    meta,
                    offset: at,
                    len,
                });
                out.end = end;
                at = record_offset(end, 0);
            }
            Err(e) => {
                out.stopped = Some((at, e.to_string()));
                break;
            }
        }
    }
    out
}

fn to_usize(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// The name of the file, in the checkpoint directory, where the writer publishes how far its
/// packs are written, for readers in other processes.
pub const PUBLISHED_END_FILE_NAME: &str = "published-end";

/// Layout of the packs' published end: the active pack and the end of what is written in it.
/// Rewritten in place after each round of writes, never synced (a reader that outlives a
/// machine crash does not exist; after a process crash the page cache still holds the bytes),
/// and only ever moved forward, except when a writer's open cuts a torn tail, which lies past it.
///
/// ```text
/// offset size field
///      0    4 magic "HCPE"
///      4    4 version u32, 1
///      8    8 seq u64: the active pack (every pack below it is complete)
///     16    8 end u64: bytes of the active pack written
///     24    4 crc32 of bytes 0..24
///     28    4 reserved, zero
/// ```
pub mod published_end {
    /// The whole file.
    pub const LEN: usize = 32;
}

const PUBLISHED_MAGIC: [u8; 4] = *b"HCPE";

/// Where the writer's packs end, as published: pack `seq` is written up to `end`; packs below
/// `seq` are complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEnd {
    /// The active pack.
    pub seq: u64,
    /// Its bytes written.
    pub end: u64,
}

impl PackEnd {
    /// Encodes the published end.
    #[must_use]
    pub fn encode(&self) -> [u8; published_end::LEN] {
        let mut out = [0u8; published_end::LEN];
        out[0..4].copy_from_slice(&PUBLISHED_MAGIC);
        out[4..8].copy_from_slice(&1u32.to_le_bytes());
        out[8..16].copy_from_slice(&self.seq.to_le_bytes());
        out[16..24].copy_from_slice(&self.end.to_le_bytes());
        let crc = crc32fast::hash(&out[..24]);
        out[24..28].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a published end, or `None` if the bytes are not one (a read that met the
    /// writer's rewrite halfway, or damage).
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<PackEnd> {
        if bytes.len() != published_end::LEN
            || bytes[0..4] != PUBLISHED_MAGIC
            || u32_at(bytes, 4) != 1
            || u32_at(bytes, 24) != crc32fast::hash(&bytes[..24])
        {
            return None;
        }
        Some(PackEnd {
            seq: u64_at(bytes, 8),
            end: u64_at(bytes, 16),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode_checkpoint;

    fn checkpoint(version: u64, keys: usize, value_len: usize) -> Vec<u8> {
        let entries: Vec<(String, Option<Vec<u8>>)> = (0..keys)
            .map(|i| (format!("key-{i:06}"), Some(vec![b'v'; value_len])))
            .collect();
        encode_checkpoint(CheckpointMeta::full(7, version, 1), entries).expect("encode")
    }

    /// Lays out checkpoints as the engine's writer does.
    fn pack_of(parts: &[Vec<u8>]) -> (Vec<u8>, Vec<u64>) {
        let mut bytes = PackHeader {
            seq: 3,
            capacity: 1 << 20,
            store_id: 11,
        }
        .encode()
        .to_vec();
        let mut offsets = Vec::new();
        for part in parts {
            let at = record_offset(bytes.len() as u64, part.len() as u64);
            bytes.resize(usize::try_from(at).expect("small"), 0);
            offsets.push(at);
            bytes.extend_from_slice(part);
        }
        (bytes, offsets)
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(pack_file_name(12), "0000000012.pack");
        assert_eq!(parse_pack_name("0000000012.pack"), Some(12));
        assert_eq!(parse_pack_name("12.pack"), None);
        assert_eq!(parse_pack_name("0000000012.pack.tmp"), None);
        assert_eq!(parse_pack_name("00000000+2.pack"), None);
    }

    #[test]
    fn header_round_trips_and_every_flip_is_caught() {
        let header = PackHeader {
            seq: 9,
            capacity: 64 << 20,
            store_id: 0xfeed,
        };
        let bytes = header.encode();
        let path = Path::new("p");
        assert_eq!(PackHeader::decode(path, &bytes).expect("decode"), header);
        for at in 0..bytes.len() {
            let mut bad = bytes;
            bad[at] ^= 1;
            assert!(PackHeader::decode(path, &bad).is_err(), "flip at {at}");
        }
        assert!(PackHeader::decode(path, &bytes[..63]).is_err());
    }

    #[test]
    fn scan_finds_small_and_page_aligned_checkpoints() {
        let parts = vec![
            checkpoint(10, 3, 10),
            checkpoint(20, 400, 60), // over PAGE_ALIGN_FROM: page-aligned
            checkpoint(30, 1, 1),
            checkpoint(40, 500, 60),
        ];
        assert!(parts[1].len() as u64 >= PAGE_ALIGN_FROM);
        let (bytes, offsets) = pack_of(&parts);
        assert_eq!(offsets[1] % PAGE_LEN as u64, 0);
        let found = scan(
            Path::new("p"),
            &bytes,
            pack_header::LEN as u64,
            bytes.len() as u64,
        );
        assert_eq!(found.stopped, None);
        assert_eq!(found.end, bytes.len() as u64);
        let got: Vec<(u64, u64)> = found.entries.iter().map(|e| (e.offset, e.len)).collect();
        let want: Vec<(u64, u64)> = offsets
            .iter()
            .zip(&parts)
            .map(|(&o, p)| (o, p.len() as u64))
            .collect();
        assert_eq!(got, want);
        assert_eq!(found.entries[2].meta.version, 30);
        // Resuming from the end of the second finds the last two.
        let from = offsets[1] + parts[1].len() as u64;
        let rest = scan(Path::new("p"), &bytes, from, bytes.len() as u64);
        assert_eq!(rest.entries.len(), 2);
    }

    #[test]
    fn scan_stops_at_a_torn_tail_and_at_damage() {
        let parts = vec![checkpoint(10, 3, 10), checkpoint(20, 5, 10)];
        let (bytes, offsets) = pack_of(&parts);
        let path = Path::new("p");
        // Cut inside the second checkpoint: the first is found, the second runs past the end.
        let cut = offsets[1] + 80;
        let torn = scan(path, &bytes, pack_header::LEN as u64, cut);
        assert_eq!(torn.entries.len(), 1);
        assert_eq!(torn.end, offsets[0] + parts[0].len() as u64);
        assert_eq!(torn.stopped.map(|s| s.0), Some(offsets[1]));
        // A flipped header byte in the second.
        let mut bad = bytes.clone();
        bad[usize::try_from(offsets[1]).expect("small") + 20] ^= 1;
        let damaged = scan(path, &bad, pack_header::LEN as u64, bad.len() as u64);
        assert_eq!(damaged.entries.len(), 1);
        assert!(damaged.stopped.is_some());
        // Zeros after the last checkpoint end the scan cleanly.
        let mut padded = bytes.clone();
        padded.resize(bytes.len() + 10_000, 0);
        let clean = scan(path, &padded, pack_header::LEN as u64, padded.len() as u64);
        assert_eq!((clean.entries.len(), clean.stopped), (2, None));
        assert_eq!(clean.end, bytes.len() as u64);
    }

    #[test]
    fn scan_finds_a_page_aligned_checkpoint_after_short_padding() {
        // Gaps of every multiple of 16 up to 64 bytes and more before a page-aligned
        // checkpoint: a gap shorter than a checkpoint header once read as a header.
        let big = checkpoint(20, 400, 60);
        assert!(big.len() as u64 >= PAGE_ALIGN_FROM);
        let mut gaps = std::collections::BTreeSet::new();
        for keys in 150..350 {
            for value_len in 1..12 {
                let first = checkpoint(10, keys, value_len);
                let (bytes, offsets) = pack_of(&[first.clone(), big.clone()]);
                let gap = offsets[1] - offsets[0] - first.len() as u64;
                if gap > 112 {
                    continue;
                }
                gaps.insert(gap - gap % 16);
                let found = scan(
                    Path::new("p"),
                    &bytes,
                    pack_header::LEN as u64,
                    bytes.len() as u64,
                );
                assert_eq!(found.stopped, None, "a gap of {gap} bytes");
                let got: Vec<u64> = found.entries.iter().map(|e| e.offset).collect();
                assert_eq!(got, offsets, "a gap of {gap} bytes");
            }
        }
        assert!(
            [0, 16, 32, 48, 64].iter().all(|g| gaps.contains(g)),
            "gaps covered: {gaps:?}"
        );
    }

    #[test]
    fn scan_from_near_the_end_of_the_offsets_finds_nothing() {
        let (bytes, _) = pack_of(&[checkpoint(10, 3, 10)]);
        for from in [u64::MAX, u64::MAX - 15, u64::MAX - 16] {
            let found = scan(Path::new("p"), &bytes, from, u64::MAX);
            assert!(found.entries.is_empty() && found.stopped.is_none());
        }
    }

    #[test]
    fn published_end_round_trips_and_rejects_damage() {
        let end = PackEnd { seq: 4, end: 12345 };
        let bytes = end.encode();
        assert_eq!(PackEnd::decode(&bytes), Some(end));
        for at in 0..28 {
            let mut bad = bytes;
            bad[at] ^= 1;
            assert_eq!(PackEnd::decode(&bad), None, "flip at {at}");
        }
    }

    #[test]
    fn capacity_fits_a_large_first_checkpoint() {
        assert_eq!(capacity_for(1 << 20, 100), 1 << 20);
        let big = (3 << 20) + 5;
        let capacity = capacity_for(1 << 20, big);
        assert!(record_offset(pack_header::LEN as u64, big) + big <= capacity);
        assert_eq!(capacity % RECORD_ALIGN, 0);
    }
}
