//! The index of a pack up to an end (`<seq>.pidx` beside `<seq>.pack`): what a scan of the pack
//! ([`crate::pack::scan`]) finds, in a small file read in one go, so that opening a store reads
//! a few megabytes of indexes instead of faulting in a page of every checkpoint's header across
//! the packs. It is a function of the pack's bytes up to the end it names: written once the
//! pack is full and synced, and for the active pack at a clean close (a later writer may append
//! past its end, and replaces it); a missing or damaged one is read around (the pack is scanned
//! instead).
//!
//! Its entries are hints, checked where they are used: an open checks the header and the
//! length, not the entries' CRC (the pack indexes' bytes were most of an open of a store of 10 M
//! events), and a lookup decodes only the stream's entries, each within the index's end, each
//! checkpoint then checked against its own header and CRCs at its first read. Decoding every
//! entry ([`PackIndexView::decode_all`], [`decode`]) checks the entries' CRC first.
//!
//! ```text
//! header  64 B  magic "HLXPKIDX", version u32 = 2, entries u32, pack seq u64, store id u64,
//!               end u64 (just past the last checkpoint indexed), CRC u32 of the entries and
//!               the bitmap, lowest stream id u64, bitmap length u32, 4 reserved bytes,
//!               header CRC u32 at 60
//! entries 48 B each, sorted by (stream, version, offset): stream u64, version u64,
//!               base version u64, offset u64, length u64, kind u8, level u8, machine u16
//!               (the checkpoint header's), 4 zero bytes
//! bitmap  bit (stream - lowest) set for each stream with entries, from the lowest stream id
//!               to the highest; empty when that span exceeds 256 bits per entry
//! ```
//!
//! Version 1 (no bitmap: bytes 44..60 of the header zero) is still read.
//!
//! Entries are sorted by stream so that one stream's checkpoints can be found by binary
//! search; a checkpoint copied twice into one pack keeps both entries, the later copy last.

use crate::format::{CheckpointKind, CheckpointMeta};
use crate::pack::PackEntry;
use helios_storage::search::lower_bound_spread;

/// The extension of pack index files.
pub const PACK_INDEX_EXTENSION: &str = "pidx";

const MAGIC: &[u8; 8] = b"HLXPKIDX";
/// Version 2 adds the stream bitmap; version 1 (no bitmap) is still read.
const VERSION: u32 = 2;
const HEADER_LEN: usize = 64;
const ENTRY_LEN: usize = 48;
/// A bitmap is written only while it takes at most this many bits per entry: sparse stream
/// ids (a pack of a few streams far apart) would make it larger than the index.
const BITMAP_BITS_PER_ENTRY_MAX: u64 = 256;

/// The file name of pack `seq`'s index.
#[must_use]
pub fn pack_index_name(seq: u64) -> String {
    format!("{seq:010}.{PACK_INDEX_EXTENSION}")
}

/// The pack number of a name made by [`pack_index_name`].
#[must_use]
pub fn parse_pack_index_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".pidx")?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What a valid pack index says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackIndex {
    /// The pack it indexes.
    pub seq: u64,
    /// The store that wrote it.
    pub store_id: u64,
    /// Just past the last checkpoint it indexes: the pack's scan end when it was written.
    pub end: u64,
    /// The checkpoints, sorted by (stream, version, offset).
    pub entries: Vec<PackEntry>,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Encodes the index of pack `seq` of store `store_id`, whose scan found `entries` (in pack
/// order) up to `end`.
#[must_use]
pub fn encode(seq: u64, store_id: u64, end: u64, entries: &[PackEntry]) -> Vec<u8> {
    let mut sorted: Vec<&PackEntry> = entries.iter().collect();
    sorted.sort_by_key(|e| (e.meta.stream_id, e.meta.version, e.offset));
    let mut out = vec![0u8; HEADER_LEN + sorted.len() * ENTRY_LEN];
    for (k, entry) in sorted.iter().enumerate() {
        let e = &mut out[HEADER_LEN + k * ENTRY_LEN..HEADER_LEN + (k + 1) * ENTRY_LEN];
        let m = &entry.meta;
        for (i, field) in [
            m.stream_id,
            m.version,
            m.base_version,
            entry.offset,
            entry.len,
        ]
        .into_iter()
        .enumerate()
        {
            e[i * 8..i * 8 + 8].copy_from_slice(&field.to_le_bytes());
        }
        e[40] = m.kind.to_byte();
        e[41] = m.level;
        e[42..44].copy_from_slice(&m.machine.to_le_bytes());
    }
    // One bit per stream id from the lowest to the highest: set where the stream has entries.
    let (first, bits) = match (sorted.first(), sorted.last()) {
        (Some(low), Some(high)) => {
            let span = high.meta.stream_id - low.meta.stream_id + 1;
            let fits = span <= BITMAP_BITS_PER_ENTRY_MAX * sorted.len() as u64;
            (low.meta.stream_id, if fits { span } else { 0 })
        }
        _ => (0, 0),
    };
    let bitmap_len = usize::try_from(bits.div_ceil(8)).unwrap_or(0);
    let bitmap_at = out.len();
    out.resize(bitmap_at + bitmap_len, 0);
    if bits > 0 {
        for entry in &sorted {
            let bit = entry.meta.stream_id - first;
            out[bitmap_at + (bit / 8) as usize] |= 1 << (bit % 8);
        }
    }
    out[0..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[44..52].copy_from_slice(&first.to_le_bytes());
    out[52..56].copy_from_slice(&u32::try_from(bitmap_len).unwrap_or(0).to_le_bytes());
    let count = u32::try_from(sorted.len()).unwrap_or(u32::MAX);
    out[12..16].copy_from_slice(&count.to_le_bytes());
    out[16..24].copy_from_slice(&seq.to_le_bytes());
    out[24..32].copy_from_slice(&store_id.to_le_bytes());
    out[32..40].copy_from_slice(&end.to_le_bytes());
    let body_crc = crc32fast::hash(&out[HEADER_LEN..]);
    out[40..44].copy_from_slice(&body_crc.to_le_bytes());
    let crc = crc32fast::hash(&out[..60]);
    out[60..64].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes `bytes` as the index of pack `seq`; `None` unless it is whole and valid: checksums,
/// counts, every entry a known kind and level, within `end`, in order.
#[must_use]
pub fn decode(bytes: &[u8], seq: u64) -> Option<PackIndex> {
    let view = PackIndexView::open(bytes, seq)?;
    Some(PackIndex {
        seq,
        store_id: view.store_id(),
        end: view.end(),
        entries: view.decode_all()?,
    })
}

/// A pack index read in place: [`PackIndexView::open`] checks its header, and its entries are
/// decoded when asked for, so that a reader that looks up one stream decodes that stream's
/// entries only, without reading the rest. An entry that does not decode (an unknown kind,
/// reserved bytes set, past the index's end) reads as absent; entries are found by binary
/// search, so a damaged index (or one whose checksums were forged over unsorted entries) can
/// hide some, never invent one a checkpoint's own header would not refute.
#[derive(Clone, Debug)]
pub struct PackIndexView<B> {
    bytes: B,
    count: usize,
    /// The lowest stream id and the bits of the stream bitmap (0: none, version 1).
    bitmap_first: u64,
    bitmap_bits: u64,
}

impl<B> PackIndexView<B> {
    /// The index's bytes, as given to [`PackIndexView::open`].
    pub fn bytes(&self) -> &B {
        &self.bytes
    }
}

impl<B: std::ops::Deref<Target = [u8]>> PackIndexView<B> {
    /// Checks `bytes` as the index of pack `seq` (version 2, or 1 without a bitmap): magic,
    /// header CRC, version, pack number, reserved bytes and length; `None` if any fails. The entries' CRC is checked by
    /// [`PackIndexView::decode_all`] and [`PackIndexView::entries_intact`], not here.
    pub fn open(bytes: B, seq: u64) -> Option<PackIndexView<B>> {
        let b: &[u8] = &bytes;
        let head = b.get(..HEADER_LEN)?;
        let version = u32_at(head, 8);
        let reserved_from = if version == 1 { 44 } else { 56 };
        let intact = &head[0..8] == MAGIC
            && crc32fast::hash(&head[..60]) == u32_at(head, 60)
            && (version == 1 || version == VERSION)
            && u64_at(head, 16) == seq
            && head[reserved_from..60].iter().all(|&b| b == 0);
        let count = u32_at(head, 12) as usize;
        let bitmap_len = u32_at(head, 52) as usize;
        let entries_end = HEADER_LEN + count.checked_mul(ENTRY_LEN)?;
        if !intact || b.len() != entries_end.checked_add(bitmap_len)? {
            return None;
        }
        let bitmap_first = u64_at(head, 44);
        Some(PackIndexView {
            bytes,
            count,
            bitmap_first,
            bitmap_bits: bitmap_len as u64 * 8,
        })
    }

    /// Whether `stream` may have entries: its bit in the stream bitmap, when there is one.
    fn may_hold(&self, stream: u64) -> bool {
        if self.bitmap_bits == 0 {
            return true;
        }
        let Some(bit) = stream
            .checked_sub(self.bitmap_first)
            .filter(|&bit| bit < self.bitmap_bits)
        else {
            return false;
        };
        let at = HEADER_LEN + self.count * ENTRY_LEN + (bit / 8) as usize;
        self.bytes[at] & (1 << (bit % 8)) != 0
    }

    /// Whether the entries' CRC holds (a read of every entry's bytes).
    #[must_use]
    pub fn entries_intact(&self) -> bool {
        crc32fast::hash(&self.bytes[HEADER_LEN..]) == u32_at(&self.bytes, 40)
    }

    /// Entries in the index.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// The index's size in bytes.
    #[must_use]
    pub fn byte_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether it indexes no checkpoint.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The store that wrote it.
    #[must_use]
    pub fn store_id(&self) -> u64 {
        u64_at(&self.bytes, 24)
    }

    /// Just past the last checkpoint it indexes.
    #[must_use]
    pub fn end(&self) -> u64 {
        u64_at(&self.bytes, 32)
    }

    fn raw(&self, k: usize) -> &[u8] {
        &self.bytes[HEADER_LEN + k * ENTRY_LEN..HEADER_LEN + (k + 1) * ENTRY_LEN]
    }

    /// The stream of entry `k` (below [`PackIndexView::len`]).
    #[must_use]
    pub fn stream_at(&self, k: usize) -> u64 {
        u64_at(self.raw(k), 0)
    }

    /// Entry `k` (below [`PackIndexView::len`]), or `None` if it does not decode.
    #[must_use]
    pub fn entry(&self, k: usize) -> Option<PackEntry> {
        let e = self.raw(k);
        let kind = CheckpointKind::from_byte(e[40])?;
        if e[44..48].iter().any(|&b| b != 0) {
            return None;
        }
        let entry = PackEntry {
            meta: CheckpointMeta {
                kind,
                level: e[41],
                machine: u16::from_le_bytes([e[42], e[43]]),
                stream_id: u64_at(e, 0),
                version: u64_at(e, 8),
                base_version: u64_at(e, 16),
            },
            offset: u64_at(e, 24),
            len: u64_at(e, 32),
        };
        entry
            .offset
            .checked_add(entry.len)
            .is_some_and(|x| x <= self.end())
            .then_some(entry)
    }

    /// Every entry, decoded; `None` unless the entries' CRC holds, each decodes and they are
    /// in order.
    #[must_use]
    pub fn decode_all(&self) -> Option<Vec<PackEntry>> {
        if !self.entries_intact() {
            return None;
        }
        let mut entries: Vec<PackEntry> = Vec::with_capacity(self.count);
        let key = |e: &PackEntry| (e.meta.stream_id, e.meta.version, e.offset);
        for k in 0..self.count {
            let entry = self.entry(k)?;
            if entries.last().is_some_and(|p| key(p) >= key(&entry)) {
                return None;
            }
            entries.push(entry);
        }
        Some(entries)
    }

    /// The entries of `stream`, by version. Stream ids are dense, so the search starts where
    /// `stream` falls between the first id and the last ([`lower_bound_spread`]): a stream's
    /// first lookup on a store of many streams touches a few neighbouring entries, not a
    /// bisection's ~20 scattered ones. (A damaged index, out of order, gives wrong entries,
    /// never a read out of bounds: each is checked where it is read.)
    pub fn entries_of(&self, stream: u64) -> impl Iterator<Item = PackEntry> + '_ {
        // A stream the bitmap does not name costs one bit, not a search: a stream's first
        // lookup goes through every pack's index, and most packs of a store of many streams
        // hold none of a given stream's checkpoints.
        let low = if self.may_hold(stream) {
            lower_bound_spread(self.count, |k| Some(self.stream_at(k)), stream)
        } else {
            self.count
        };
        (low..self.count)
            .take_while(move |&k| self.stream_at(k) == stream)
            .filter_map(|k| self.entry(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stream: u64, version: u64, offset: u64) -> PackEntry {
        PackEntry {
            meta: CheckpointMeta::delta(stream, version, 1, version - version % 100),
            offset,
            len: 200,
        }
    }

    #[test]
    fn round_trips_sorted_and_rejects_damage() {
        let entries = [
            entry(2, 10, 64),
            entry(1, 20, 272),
            entry(1, 10, 480),
            entry(1, 10, 688),
        ];
        let bytes = encode(7, 99, 888, &entries);
        let index = decode(&bytes, 7).expect("valid");
        assert_eq!((index.seq, index.store_id, index.end), (7, 99, 888));
        let order: Vec<(u64, u64, u64)> = index
            .entries
            .iter()
            .map(|e| (e.meta.stream_id, e.meta.version, e.offset))
            .collect();
        assert_eq!(
            order,
            [(1, 10, 480), (1, 10, 688), (1, 20, 272), (2, 10, 64)]
        );
        assert!(decode(&bytes, 8).is_none(), "another pack's");
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x08;
            assert!(decode(&bad, 7).is_none(), "a flip at byte {at}");
        }
        assert!(decode(&bytes[..bytes.len() - 1], 7).is_none());
        assert!(
            decode(&encode(7, 99, 887, &entries), 7).is_none(),
            "an entry past the end"
        );
        assert_eq!(parse_pack_index_name(&pack_index_name(42)), Some(42));
    }

    #[test]
    fn a_search_finds_every_streams_entries_however_they_spread() {
        fn prop(ids: Vec<u16>, spread: u8) -> bool {
            // Streams bunched or spread (ids scaled by up to 2^spread), with repeats.
            let mut streams: Vec<u64> = ids
                .iter()
                .map(|&id| (u64::from(id) << (spread % 40)) + 1)
                .collect();
            streams.sort_unstable();
            let entries: Vec<PackEntry> = streams
                .iter()
                .enumerate()
                .map(|(k, &s)| entry(s, 10 + k as u64, k as u64))
                .collect();
            let bytes = encode(1, 1, u64::MAX, &entries);
            let Some(view) = PackIndexView::open(&bytes[..], 1) else {
                return false;
            };
            let probes = streams
                .iter()
                .flat_map(|&s| [s - 1, s, s + 1])
                .chain([0, u64::MAX]);
            probes.into_iter().all(|stream| {
                let found: Vec<u64> = view.entries_of(stream).map(|e| e.offset).collect();
                let want: Vec<u64> = entries
                    .iter()
                    .filter(|e| e.meta.stream_id == stream)
                    .map(|e| e.offset)
                    .collect();
                found == want
            })
        }
        quickcheck::QuickCheck::new()
            .tests(200)
            .quickcheck(prop as fn(Vec<u16>, u8) -> bool);
    }

    /// Entries out of order (a damaged index: an open checks only its header) give wrong
    /// answers, never a panic or a read out of bounds.
    #[test]
    fn a_search_of_entries_out_of_order_stays_in_bounds() {
        fn prop(streams: Vec<u64>, probes: Vec<u64>) -> bool {
            let entries: Vec<PackEntry> = (0..streams.len() as u64)
                .map(|k| entry(k + 1, 10, k * 100))
                .collect();
            let mut bytes = encode(1, 1, u64::MAX, &entries);
            for (k, stream) in streams.iter().enumerate() {
                let at = HEADER_LEN + k * ENTRY_LEN;
                bytes[at..at + 8].copy_from_slice(&stream.to_le_bytes());
            }
            let Some(view) = PackIndexView::open(&bytes[..], 1) else {
                return true;
            };
            probes
                .iter()
                .chain(&streams)
                .all(|&stream| view.entries_of(stream).count() <= streams.len())
        }
        quickcheck::QuickCheck::new()
            .tests(300)
            .quickcheck(prop as fn(Vec<u64>, Vec<u64>) -> bool);
    }

    /// Dense stream ids get a bitmap (one bit per id), sparse ones none; an index of version 1
    /// (no bitmap) is still read, and finds the same entries.
    #[test]
    fn the_stream_bitmap_is_written_where_it_is_small_and_version_1_still_reads() {
        let dense: Vec<PackEntry> = (1..=100u64).map(|s| entry(s, 10, s * 100)).collect();
        let bytes = encode(1, 1, 20_000, &dense);
        assert_eq!(bytes.len(), HEADER_LEN + 100 * ENTRY_LEN + 13, "100 bits");
        let sparse = [entry(1, 10, 64), entry(1 << 40, 10, 272)];
        assert_eq!(
            encode(1, 1, 20_000, &sparse).len(),
            HEADER_LEN + 2 * ENTRY_LEN,
            "no bitmap"
        );
        let mut v1 = bytes[..HEADER_LEN + 100 * ENTRY_LEN].to_vec();
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        v1[44..60].fill(0);
        let crc = crc32fast::hash(&v1[HEADER_LEN..]);
        v1[40..44].copy_from_slice(&crc.to_le_bytes());
        let crc = crc32fast::hash(&v1[..60]);
        v1[60..64].copy_from_slice(&crc.to_le_bytes());
        let (new, old) = (
            PackIndexView::open(&bytes[..], 1).expect("version 2"),
            PackIndexView::open(&v1[..], 1).expect("version 1"),
        );
        assert_eq!(decode(&v1, 1).expect("whole").entries, dense);
        for stream in 0..=102u64 {
            let found: Vec<PackEntry> = new.entries_of(stream).collect();
            assert_eq!(
                found,
                old.entries_of(stream).collect::<Vec<_>>(),
                "{stream}"
            );
            assert_eq!(
                found.len(),
                usize::from((1..=100).contains(&stream)),
                "{stream}"
            );
        }
        // A bit cleared (its CRC resealed) hides that stream's entries, and only those.
        let mut cleared = bytes.clone();
        cleared[HEADER_LEN + 100 * ENTRY_LEN] &= !(1 << 4); // Stream 5.
        let crc = crc32fast::hash(&cleared[HEADER_LEN..]);
        cleared[40..44].copy_from_slice(&crc.to_le_bytes());
        let crc = crc32fast::hash(&cleared[..60]);
        cleared[60..64].copy_from_slice(&crc.to_le_bytes());
        let view = PackIndexView::open(&cleared[..], 1).expect("valid");
        assert_eq!(view.entries_of(5).count(), 0);
        assert_eq!(view.entries_of(6).count(), 1);
    }

    #[test]
    fn a_view_finds_one_streams_entries() {
        let entries: Vec<PackEntry> = (1..=50u64)
            .flat_map(|stream| {
                (1..=stream % 4).map(move |k| entry(stream, k * 10, stream * 1000 + k))
            })
            .collect();
        let bytes = encode(3, 5, 60_000, &entries);
        let view = PackIndexView::open(&bytes[..], 3).expect("valid");
        assert_eq!(
            (view.len(), view.store_id(), view.end()),
            (entries.len(), 5, 60_000)
        );
        for stream in 0..=51u64 {
            let found: Vec<(u64, u64)> = view
                .entries_of(stream)
                .map(|e| (e.meta.stream_id, e.meta.version))
                .collect();
            let expected: Vec<(u64, u64)> = (1..=stream % 4)
                .filter(|_| (1..=50).contains(&stream))
                .map(|k| (stream, k * 10))
                .collect();
            assert_eq!(found, expected, "stream {stream}");
        }
        // A damaged entry is found where it is used, not at open: the first entry's length
        // (bytes 32..40 of the entry) made to reach past the index's end reads as absent.
        let mut bad = bytes.clone();
        bad[HEADER_LEN + 36] ^= 1;
        let damaged = PackIndexView::open(&bad[..], 3).expect("the header holds");
        assert!(view.entries_intact() && !damaged.entries_intact());
        assert!(damaged.decode_all().is_none(), "the entries' CRC");
        assert_eq!(damaged.entries_of(1).count(), 0, "hidden, not invented");
        assert_eq!(damaged.entries_of(2).count(), 2, "the others still found");
        assert!(
            PackIndexView::open(&bytes[..], 4).is_none(),
            "another pack's"
        );
    }
}
