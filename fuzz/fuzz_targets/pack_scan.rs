//! The checkpoint pack format (`helios_checkpoint::pack`): a pack's header, the scan that lists
//! the checkpoints in a pack, and reading a checkpoint in place, two ways.
//!
//! 1. The input as it is: the first 16 bytes are `from` and `until`, the rest is a pack (and
//!    its first 32 bytes a published end). Decoding never panics; a header or published end
//!    that decodes re-encodes to the same bytes; whatever the scan returns is consistent (see
//!    below) and every checkpoint it returns opens in place without panicking.
//! 2. Structure-aware (libFuzzer does not find CRCs by chance): the input describes up to six
//!    checkpoints (full or delta, with entries, now and then a value larger than a page so that
//!    some are page-aligned), laid out in a pack as the engine's writer lays them out
//!    (`record_offset`), optionally followed by zeros (the rest of a mapped capacity). The clean
//!    pack must decode and scan to exactly what was written; then the input damages it
//!    (flipped and set bytes in the pack header, a checkpoint header or an archive, absurd
//!    header fields with or without recomputed CRCs, truncation, zeroed checkpoints, inserted
//!    and removed bytes, junk, copies of checkpoints) and scans it from and up to offsets it
//!    picks.
//!
//! What must hold:
//! - `PackHeader::decode`, `PackEnd::decode`, `pack::scan` (any bytes, any `from` and `until`)
//!   and `Checkpoint::open_in` (any range; every entry a scan returns) never panic;
//! - a scan is consistent: every entry lies within `until` and the bytes, sits where
//!   `record_offset` puts a checkpoint of its length after the previous one's end (or `from`),
//!   in increasing offset order, and says what its header says; `end` is the last entry's end
//!   (or `from`); a stop lies between `end` and `until`;
//! - a clean pack decodes to its header, and a scan from the header's end up to any `until`
//!   finds exactly the checkpoints that end by `until`, without stopping when `until` is the
//!   end of the bytes; a scan from the end of any checkpoint finds the ones after it; each opens
//!   in place and reads back exactly its entries;
//! - damage never hides a checkpoint before it: those that end before the first damaged byte
//!   are found, unchanged, whatever follows;
//! - a scanned checkpoint whose bytes are those of one written (wherever it is: a copy) opens
//!   and reads back that one's entries; any that opens is a well-formed sorted run.
#![no_main]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use arbitrary::{Result as ArbResult, Unstructured};
use helios_checkpoint::format::{self, header as ckpt};
use helios_checkpoint::pack::{
    self, DEFAULT_PACK_CAPACITY, PackEnd, PackHeader, PackScan, pack_file_name, pack_header,
    parse_pack_name, record_offset,
};
use helios_checkpoint::{Checkpoint, CheckpointMeta, Lookup, SortedRun, encode_checkpoint};
use helios_storage::ReadOnlyBytes;
use libfuzzer_sys::fuzz_target;
use rkyv::util::AlignedVec;

/// Most checkpoints in one pack, entries in one checkpoint, large values in one checkpoint and
/// damage operations: bounded so that an execution stays well under a millisecond.
const CHECKPOINTS_MAX: usize = 6;
const ENTRIES_MAX: usize = 48;
const LARGE_VALUES_MAX: usize = 2;
const DAMAGE_OPS_MAX: usize = 6;
/// Most bytes junk or zeros may add.
const GROW_MAX: usize = 16 << 10;

type Entries = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

fn path() -> &'static Path {
    Path::new("fuzz.pack")
}

/// With `HELIOS_FUZZ_TRACE` set, prints what an input decodes to (the clean pack's layout) to
/// explain a reproducer.
fn trace(message: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("HELIOS_FUZZ_TRACE").is_some()) {
        eprintln!("helios-fuzz: {}", message());
    }
}

/// A checkpoint written to the clean pack.
struct Written {
    meta: CheckpointMeta,
    entries: Entries,
    bytes: Vec<u8>,
    offset: u64,
}

impl Written {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn end(&self) -> u64 {
        self.offset + self.len()
    }

    fn at(&self) -> usize {
        to_usize(self.offset)
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The pack's bytes, as the engine reads them: aligned for the archive (the engine maps packs,
/// which are page-aligned; a `Vec<u8>` is not aligned enough for rkyv).
fn aligned(bytes: &[u8]) -> ReadOnlyBytes {
    let mut out = AlignedVec::<16>::with_capacity(bytes.len());
    out.extend_from_slice(bytes);
    ReadOnlyBytes::new(out)
}

/// A checkpoint's meta and entries, as the input describes them.
fn checkpoint(u: &mut Unstructured<'_>) -> ArbResult<(CheckpointMeta, Entries)> {
    let stream = u.int_in_range(0..=3)?;
    let version = u.int_in_range(1..=80)?;
    let meta = if u.ratio(1, 3)? {
        CheckpointMeta::full(stream, version, u.int_in_range(0..=3)?)
    } else {
        let base = u.int_in_range(0..=version - 1)?;
        CheckpointMeta::delta(stream, version, u.int_in_range(1..=3)?, base)
    };
    let mut entries = Entries::new();
    let mut large = 0;
    for _ in 0..u.int_in_range(0..=ENTRIES_MAX)? {
        let key: u16 = u.arbitrary()?;
        let tag: u8 = u.arbitrary()?;
        let value = match tag % 16 {
            0 | 1 => None,
            // Larger than a page: a checkpoint with one or two of these is often past
            // PAGE_ALIGN_FROM, so the writer puts it at a page boundary.
            2 if large < LARGE_VALUES_MAX => {
                large += 1;
                let len: u16 = u.arbitrary()?;
                Some(vec![tag; 2048 + usize::from(len % 16384)])
            }
            _ => Some(vec![tag; usize::from(tag % 64)]),
        };
        entries.insert(format!("key-{:04}", key % 2048).into_bytes(), value);
    }
    Ok((meta, entries))
}

fn encode(meta: CheckpointMeta, entries: &Entries) -> Vec<u8> {
    encode_checkpoint(meta, entries.iter().map(|(k, v)| (k, v.as_ref())))
        .expect("sorted entries within the limits encode")
}

/// Lays out `parts` after a pack header as the writer does; returns the bytes and where each
/// checkpoint went.
fn lay_out(
    seq: u64,
    capacity: u64,
    parts: Vec<(CheckpointMeta, Entries)>,
) -> (Vec<u8>, Vec<Written>) {
    let mut bytes = PackHeader {
        seq,
        capacity,
        store_id: 0,
    }
    .encode()
    .to_vec();
    let mut written = Vec::new();
    for (meta, entries) in parts {
        let encoded = encode(meta, &entries);
        let offset = record_offset(bytes.len() as u64, encoded.len() as u64);
        bytes.resize(to_usize(offset), 0);
        bytes.extend_from_slice(&encoded);
        written.push(Written {
            meta,
            entries,
            bytes: encoded,
            offset,
        });
    }
    (bytes, written)
}

/// Scans `bytes`.
fn scan_pack(bytes: &[u8], from: u64, until: u64) -> PackScan {
    pack::scan(path(), bytes, from, until)
}

/// The scan's own consistency, whatever the bytes.
fn check_scan(bytes: &[u8], from: u64, until: u64, scan: &PackScan) {
    let limit = until.min(bytes.len() as u64);
    let mut prev = from;
    for entry in &scan.entries {
        assert_eq!(
            entry.offset,
            record_offset(prev, entry.len),
            "an entry is not where the writer puts a checkpoint of {} bytes after {prev}",
            entry.len
        );
        let end = entry
            .offset
            .checked_add(entry.len)
            .expect("an entry's end overflows");
        assert!(
            end <= limit,
            "an entry ends at {end}, past the limit {limit}"
        );
        let header = &bytes[to_usize(entry.offset)..to_usize(end)];
        let peeked = format::peek_header(path(), header).expect("a scanned header decodes again");
        assert_eq!(
            peeked,
            (entry.meta, entry.len),
            "an entry is not what its header says"
        );
        prev = end;
    }
    assert_eq!(scan.end, prev, "the scan's end is not its last entry's end");
    if let Some((at, _)) = &scan.stopped {
        assert!(
            *at >= scan.end && *at < limit,
            "a stop at {at} outside {}..{limit}",
            scan.end
        );
    }
}

/// The entries of a checkpoint that opened, checked to be a sorted run.
fn read_back(checkpoint: &Checkpoint) -> Entries {
    let all: Vec<_> = checkpoint
        .range(Bound::Unbounded, Bound::Unbounded)
        .collect();
    assert_eq!(
        all.len(),
        checkpoint.len(),
        "len disagrees with the entries"
    );
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "keys out of order");
    if let Some(&(key, value)) = all.last() {
        assert_eq!(
            checkpoint.get(key),
            value.map_or(Lookup::Deleted, Lookup::Value)
        );
    }
    all.into_iter()
        .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
        .collect()
}

/// Opens every checkpoint the scan found: never a panic; one whose bytes are a written one's
/// must open and read back its entries.
fn open_all(bytes: &[u8], mapped: &ReadOnlyBytes, scan: &PackScan, written: &[Written]) {
    for entry in &scan.entries {
        let name = PathBuf::from(format!("fuzz.pack@{}", entry.offset));
        let opened = Checkpoint::open_in(mapped, entry.offset, entry.len, name);
        let range = to_usize(entry.offset)..to_usize(entry.offset + entry.len);
        let original = written.iter().find(|w| w.bytes[..] == bytes[range.clone()]);
        match (opened, original) {
            (Ok(checkpoint), Some(w)) => {
                assert_eq!(checkpoint.meta(), &w.meta);
                assert!(
                    read_back(&checkpoint) == w.entries,
                    "a written checkpoint reads back other entries"
                );
            }
            (Err(e), Some(w)) => {
                panic!(
                    "the checkpoint written at {} does not open at {}: {e}",
                    w.offset, entry.offset
                )
            }
            (Ok(checkpoint), None) => {
                read_back(&checkpoint);
            }
            (Err(_), None) => {}
        }
    }
}

/// Part 1: the input as it is.
fn raw(data: &[u8]) {
    let (from, until, bytes) = if data.len() < 16 {
        (pack_header::LEN as u64, u64::MAX, data)
    } else {
        (
            u64::from_le_bytes(data[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(data[8..16].try_into().expect("8 bytes")),
            &data[16..],
        )
    };
    if let Ok(header) = PackHeader::decode(path(), bytes) {
        assert_eq!(
            &header.encode()[..],
            &bytes[..pack_header::LEN],
            "a header decodes from canonical bytes only"
        );
    }
    if let Some(end) = bytes
        .get(..pack::published_end::LEN)
        .and_then(PackEnd::decode)
    {
        // The reserved bytes 28..32 are not checked.
        assert_eq!(end.encode()[..28], bytes[..28]);
    }
    // Pack names: ten digits, so a pack number of eleven makes a name no open lists.
    let name = pack_file_name(until);
    assert_eq!(
        parse_pack_name(&name),
        (until < 10_000_000_000).then_some(until)
    );
    let scan = scan_pack(bytes, from, until);
    check_scan(bytes, from, until, &scan);
    open_all(bytes, &aligned(bytes), &scan, &[]);
}

/// Values header fields are set to.
const ABSURD: &[u64] = &[
    0,
    1,
    2,
    3,
    15,
    16,
    63,
    64,
    65,
    4096,
    16 << 10,
    i32::MAX as u64,
    i32::MAX as u64 + 1,
    u32::MAX as u64,
    u64::MAX / 2,
    u64::MAX - 15,
    u64::MAX,
];

fn value(u: &mut Unstructured<'_>) -> ArbResult<u64> {
    if u.ratio(3, 4)? {
        Ok(*u.choose(ABSURD)?)
    } else {
        u.arbitrary()
    }
}

fn put_le(bytes: &mut [u8], at: usize, width: usize, value: u64) {
    if let Some(slot) = bytes.get_mut(at..at.saturating_add(width)) {
        slot.copy_from_slice(&value.to_le_bytes()[..width]);
    }
}

/// The damaged pack, and from which offset (at or past the pack header) its bytes may differ
/// from the clean pack's.
struct Damaged {
    bytes: Vec<u8>,
    touched: u64,
}

impl Damaged {
    /// Notes that bytes `start..end` changed (`end` is `u64::MAX` when every later byte may
    /// have: a shift or a cut). Changes inside the pack header do not count: a scan from its
    /// end does not read it.
    fn touch(&mut self, start: usize, end: u64) {
        if end > pack_header::LEN as u64 {
            self.touched = self
                .touched
                .min((start as u64).max(pack_header::LEN as u64));
        }
    }
}

/// An offset in the pack header, in a checkpoint's header or archive, or anywhere.
fn pick_offset(u: &mut Unstructured<'_>, len: usize, written: &[Written]) -> ArbResult<usize> {
    if len == 0 {
        return Ok(0);
    }
    let at = match u.int_in_range(0..=3)? {
        0 => u.int_in_range(0..=pack_header::LEN - 1)?,
        1 | 2 if !written.is_empty() => {
            let w = &written[u.choose_index(written.len())?];
            let (start, span) = if u.arbitrary()? {
                (w.at(), ckpt::LEN)
            } else {
                (w.at() + ckpt::LEN, w.bytes.len() - ckpt::LEN)
            };
            start + u.int_in_range(0..=span.max(1) - 1)?
        }
        _ => u.int_in_range(0..=len - 1)?,
    };
    Ok(at.min(len - 1))
}

/// One of the checkpoints written, if any.
fn pick<'w>(u: &mut Unstructured<'_>, written: &'w [Written]) -> ArbResult<Option<&'w Written>> {
    if written.is_empty() {
        return Ok(None);
    }
    Ok(Some(&written[u.choose_index(written.len())?]))
}

/// Applies one damage operation the input describes.
fn damage_once(u: &mut Unstructured<'_>, d: &mut Damaged, written: &[Written]) -> ArbResult<()> {
    let len = d.bytes.len();
    let pick = |u: &mut Unstructured<'_>| pick(u, written);
    match u.int_in_range(0u8..=10)? {
        // Flip bits of a byte.
        0 => {
            if len > 0 {
                let at = pick_offset(u, len, written)?;
                d.bytes[at] ^= u.int_in_range(1..=255)?;
                d.touch(at, at as u64 + 1);
            }
        }
        // Set a few bytes.
        1 => {
            let at = pick_offset(u, len, written)?;
            for k in 0..u.int_in_range(1..=8)? {
                let b = u.arbitrary()?;
                if let Some(slot) = d.bytes.get_mut(at + k) {
                    *slot = b;
                    d.touch(at + k, (at + k) as u64 + 1);
                }
            }
        }
        // Cut the pack (a torn tail): in its header, in a checkpoint, at one's start or end,
        // or anywhere.
        2 => {
            let to = match (u.int_in_range(0..=4)?, pick(u)?) {
                (0, _) => u.int_in_range(0..=pack_header::LEN)?,
                (1, Some(w)) => w.at() + u.int_in_range(0..=w.bytes.len())?,
                (2, Some(w)) => w.at(),
                (3, Some(w)) => to_usize(w.end()),
                _ => pick_offset(u, len, written)?,
            };
            if to < len {
                d.bytes.truncate(to);
                d.touch(to, u64::MAX);
            }
        }
        // Zeros over a checkpoint, its header, or from it to the end.
        3 => {
            if let Some(w) = pick(u)? {
                let start = w.at().min(len);
                let end = match u.int_in_range(0..=2)? {
                    0 => to_usize(w.end()),
                    1 => w.at() + ckpt::LEN,
                    _ => len,
                }
                .min(len);
                d.bytes[start..end].fill(0);
                d.touch(start, end as u64);
            }
        }
        // A checkpoint header field set to an absurd value; CRCs recomputed or not.
        4 => {
            if let Some(w) = pick(u)? {
                let (field, width) = *u.choose(&[
                    (ckpt::MAGIC, 8),
                    (ckpt::FORMAT_VERSION, 4),
                    (ckpt::KIND, 1),
                    (ckpt::LEVEL, 1),
                    (ckpt::MACHINE, 2),
                    (ckpt::STREAM_ID, 8),
                    (ckpt::VERSION, 8),
                    (ckpt::BASE_VERSION, 8),
                    (ckpt::ENTRY_COUNT, 8),
                    (ckpt::ARCHIVE_LEN, 8),
                    (ckpt::ARCHIVE_CRC, 4),
                ])?;
                let v = value(u)?;
                put_le(&mut d.bytes, w.at() + field, width, v);
                reseal(u, d, w)?;
                d.touch(w.at(), w.offset + ckpt::LEN as u64);
            }
        }
        // Archive bytes changed, then the CRCs recomputed: the damage reaches validation.
        5 => {
            if let Some(w) = pick(u)? {
                let span = w.bytes.len() - ckpt::LEN;
                let at = w.at() + ckpt::LEN + u.int_in_range(0..=span.max(1) - 1)?;
                if let Some(b) = d.bytes.get_mut(at) {
                    *b ^= u.int_in_range(1..=255)?;
                    d.touch(at, at as u64 + 1);
                }
                reseal(u, d, w)?;
                d.touch(w.at(), w.offset + ckpt::LEN as u64);
            }
        }
        // A pack header field set to an absurd value; its CRC recomputed or not.
        6 => {
            let (field, width) = *u.choose(&[
                (pack_header::MAGIC, 8),
                (pack_header::FORMAT_VERSION, 4),
                (pack_header::RESERVED_A, 4),
                (pack_header::SEQ, 8),
                (pack_header::CAPACITY, 8),
                (pack_header::RESERVED_B, 8),
            ])?;
            let v = value(u)?;
            put_le(&mut d.bytes, field, width, v);
            if u.arbitrary()? && d.bytes.len() >= pack_header::LEN {
                let crc = crc32fast::hash(&d.bytes[..pack_header::HEADER_CRC]);
                put_le(&mut d.bytes, pack_header::HEADER_CRC, 4, u64::from(crc));
            }
        }
        // Junk, zeros, or a copy of a checkpoint appended (where the writer would put it, or
        // at the next 16-byte boundary).
        7 => {
            match (u.int_in_range(0..=2)?, pick(u)?) {
                (0, _) => {
                    for _ in 0..u.int_in_range(0..=256)? {
                        let b = u.arbitrary()?;
                        d.bytes.push(b);
                    }
                }
                (1, Some(w)) => {
                    let at = if u.arbitrary()? {
                        record_offset(len as u64, w.len())
                    } else {
                        record_offset(len as u64, 0)
                    };
                    d.bytes.resize(to_usize(at), 0);
                    d.bytes.extend_from_slice(&w.bytes);
                }
                _ => {
                    let n = u.int_in_range(0..=GROW_MAX)?;
                    d.bytes.resize(len + n, 0);
                }
            }
            d.touch(len, u64::MAX);
        }
        // Bytes inserted: everything after shifts, off its alignment.
        8 => {
            let at = pick_offset(u, len, written)?.min(len);
            let n = u.int_in_range(1..=16)?;
            let junk: Vec<u8> = (0..n).map(|_| u.arbitrary()).collect::<ArbResult<_>>()?;
            d.bytes.splice(at..at, junk);
            d.touch(at, u64::MAX);
        }
        // Bytes removed.
        9 => {
            if len > 0 {
                let at = pick_offset(u, len, written)?;
                let end = (at + u.int_in_range(1..=64)?).min(len);
                d.bytes.drain(at..end);
                d.touch(at, u64::MAX);
            }
        }
        // A checkpoint copied over another's place.
        _ => {
            if let (Some(from), Some(to)) = (pick(u)?, pick(u)?) {
                let start = to.at().min(len);
                let end = (start + from.bytes.len()).min(len);
                d.bytes[start..end].copy_from_slice(&from.bytes[..end - start]);
                d.touch(start, end as u64);
            }
        }
    }
    Ok(())
}

/// Recomputes the CRCs of checkpoint `w` after damage, or only its header CRC, or neither; over
/// its own bytes, or over the rest of the pack (a forged longer archive length then covers what
/// follows).
fn reseal(u: &mut Unstructured<'_>, d: &mut Damaged, w: &Written) -> ArbResult<()> {
    let start = w.at().min(d.bytes.len());
    let end = match u.int_in_range(0..=3)? {
        0 => return Ok(()),
        1 => {
            if let Some(head) = d.bytes.get_mut(start..start + ckpt::LEN) {
                let crc = crc32fast::hash(&head[..ckpt::HEADER_CRC]);
                put_le(head, ckpt::HEADER_CRC, 4, u64::from(crc));
            }
            return Ok(());
        }
        2 => to_usize(w.end()).min(d.bytes.len()),
        _ => d.bytes.len(),
    };
    format::reseal_crcs(&mut d.bytes[start..end]);
    Ok(())
}

/// Picks a scan's `from`: the header's end, the start or end of a checkpoint, or anything.
fn pick_from(u: &mut Unstructured<'_>, written: &[Written]) -> ArbResult<u64> {
    Ok(match u.int_in_range(0..=7)? {
        0..=2 => pack_header::LEN as u64,
        3 | 4 if !written.is_empty() => written[u.choose_index(written.len())?].end(),
        5 if !written.is_empty() => written[u.choose_index(written.len())?].offset,
        6 => u.int_in_range(0..=1 << 16)?,
        _ => u.arbitrary()?,
    })
}

/// Picks a scan's `until`: the end of the bytes, of a checkpoint, or anything.
fn pick_until(u: &mut Unstructured<'_>, len: usize, written: &[Written]) -> ArbResult<u64> {
    Ok(match u.int_in_range(0..=7)? {
        0..=2 => len as u64,
        3 if !written.is_empty() => written[u.choose_index(written.len())?].end(),
        4 => u64::MAX,
        5 | 6 => u.int_in_range(0..=len as u64 + 64)?,
        _ => u.arbitrary()?,
    })
}

/// Part 2: a clean pack from the input's checkpoints, checked, then damaged and scanned.
fn structured(data: &[u8]) -> ArbResult<()> {
    let mut u = Unstructured::new(data);
    let seq = u.int_in_range(0..=9_999_999_999)?;
    let count = u.int_in_range(0..=CHECKPOINTS_MAX)?;
    let mut parts = Vec::with_capacity(count);
    for _ in 0..count {
        parts.push(checkpoint(&mut u)?);
    }
    let exact_capacity: bool = u.arbitrary()?;
    let trailing_zeros = if u.arbitrary()? {
        u.int_in_range(0..=GROW_MAX)?
    } else {
        0
    };
    // The capacity is only read by the header's decoder; lay out first, then size it.
    let (mut clean, written) = lay_out(seq, 0, parts);
    let capacity = if exact_capacity {
        record_offset(clean.len() as u64, 0).max(pack_header::LEN as u64)
    } else {
        DEFAULT_PACK_CAPACITY
    };
    clean[..pack_header::LEN].copy_from_slice(
        &PackHeader {
            seq,
            capacity,
            store_id: 0,
        }
        .encode(),
    );
    let written_end = written.last().map_or(pack_header::LEN as u64, Written::end);
    trace(|| {
        let layout: Vec<String> = written
            .iter()
            .map(|w| format!("{}..{} ({:?})", w.offset, w.end(), w.meta))
            .collect();
        format!(
            "pack {seq}, capacity {capacity}, {} bytes: {layout:?}",
            clean.len()
        )
    });
    clean.resize(clean.len() + trailing_zeros, 0);

    // The clean pack.
    assert_eq!(
        PackHeader::decode(path(), &clean).expect("a clean pack header decodes"),
        PackHeader {
            seq,
            capacity,
            store_id: 0
        }
    );
    let shape = |scan: &PackScan| -> Vec<(u64, u64, CheckpointMeta)> {
        scan.entries
            .iter()
            .map(|e| (e.offset, e.len, e.meta))
            .collect()
    };
    let want = |from: u64, until: u64| -> Vec<(u64, u64, CheckpointMeta)> {
        written
            .iter()
            .filter(|w| w.offset >= from && w.end() <= until)
            .map(|w| (w.offset, w.len(), w.meta))
            .collect()
    };
    let whole = scan_pack(&clean, pack_header::LEN as u64, clean.len() as u64);
    check_scan(&clean, pack_header::LEN as u64, clean.len() as u64, &whole);
    assert_eq!(whole.stopped, None, "a clean pack's scan stopped");
    assert_eq!(shape(&whole), want(0, u64::MAX), "a clean pack's scan");
    assert_eq!(whole.end, written_end);
    let mut untils = vec![u.int_in_range(0..=clean.len() as u64 + 16)?];
    for w in &written {
        untils.extend([w.offset, w.offset + 40, w.offset + 64, w.end() - 1, w.end()]);
    }
    for until in untils {
        let scan = scan_pack(&clean, pack_header::LEN as u64, until);
        check_scan(&clean, pack_header::LEN as u64, until, &scan);
        assert_eq!(
            shape(&scan),
            want(0, until),
            "a clean pack scanned up to {until}"
        );
    }
    for w in &written {
        let rest = scan_pack(&clean, w.end(), clean.len() as u64);
        check_scan(&clean, w.end(), clean.len() as u64, &rest);
        assert_eq!(rest.stopped, None);
        assert_eq!(
            shape(&rest),
            want(w.end(), u64::MAX),
            "a clean pack scanned from {}",
            w.end()
        );
    }
    let mapped = aligned(&clean);
    open_all(&clean, &mapped, &whole, &written);
    assert_eq!(whole.entries.len(), written.len());

    // Damage.
    let mut d = Damaged {
        bytes: clean.clone(),
        touched: u64::MAX,
    };
    for _ in 0..u.int_in_range(0..=DAMAGE_OPS_MAX)? {
        damage_once(&mut u, &mut d, &written)?;
    }
    let bytes = &d.bytes[..];
    let _ = PackHeader::decode(path(), bytes);
    let mapped = aligned(bytes);
    for _ in 0..u.int_in_range(1..=3)? {
        let from = pick_from(&mut u, &written)?;
        let until = pick_until(&mut u, bytes.len(), &written)?;
        let scan = scan_pack(bytes, from, until);
        check_scan(bytes, from, until, &scan);
        open_all(bytes, &mapped, &scan, &written);
        // The checkpoints before the first damaged byte are found, unchanged.
        let resumable = from == pack_header::LEN as u64 || written.iter().any(|w| w.end() == from);
        if resumable {
            let limit = until.min(bytes.len() as u64).min(d.touched);
            let before = want(from, limit);
            let found = shape(&scan);
            assert!(
                found.starts_with(&before),
                "damage from offset {} hid checkpoints before it: found {found:?}, want {before:?} first",
                d.touched
            );
        }
    }
    // Any range, not only those a scan returns.
    let offset: u64 = u.arbitrary()?;
    let len: u64 = u.arbitrary()?;
    if let Ok(checkpoint) =
        Checkpoint::open_in(&mapped, offset, len, PathBuf::from("fuzz.pack@any"))
    {
        read_back(&checkpoint);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    raw(data);
    let _ = structured(data);
});
