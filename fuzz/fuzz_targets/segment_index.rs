//! The segment index (`helios_log::segment_index`): the file beside each sealed log segment that
//! says where each stream's events lie in it. Two ways:
//!
//! 1. The input as an index file: as it is, and with its two CRCs recomputed (libFuzzer does
//!    not find CRCs by chance: this lets its bytes reach the checks of the tables), for the
//!    segment its header names and for the next one.
//! 2. Structure-aware: the input describes a sealed segment (its first LSN, up to five streams
//!    with their first versions, and up to 48 records: events with consecutive versions per
//!    stream, stream creations, deletions and forks interleaved, payloads of up to a few KiB,
//!    zeros after the last record or not), written with `encode_segment_header` and
//!    `encode_record` as the log writes it. Its index is built and must be exact. Then the
//!    index is damaged (bytes flipped or set, absurd or neighbouring values in header, row and
//!    entry fields, rows or entries swapped, cuts, extensions) with its CRCs recomputed or not,
//!    and checked; and the segment is damaged (bytes flipped or set, cuts, inserted and removed
//!    bytes, zeros from a record on, record fields set to absurd or neighbouring values with or
//!    without the record's CRC recomputed, a record repeated; or the segment id changed) and
//!    indexed again.
//!
//! What must hold:
//! - `SegmentIndex::from_bytes` and `SegmentIndex::build` never panic, whatever the bytes and
//!   the segment id;
//! - an index names one segment: under another id it is rejected;
//! - an accepted index is consistent: `streams()` come in increasing stream order, each with
//!   `first <= last`, and their versions add up to `events()`; `versions_of` says the same of
//!   each and `None` of other streams; `locate` over any range appends exactly the versions
//!   that are both in the range and in `versions_of`'s, in order, each located in that segment
//!   where its entry in the file says;
//! - a clean segment's index is exact: `build` succeeds (fails on a segment of no record),
//!   `from_bytes` accepts it, its `streams()`, `events()` and `last()` are the segment's, and
//!   `locate` returns for every event exactly the location of its record (the frame decoded
//!   there is that event: stream, version, LSN and length); building again gives the same bytes;
//! - a damaged index is rejected when one byte was flipped, or it was cut or extended, without
//!   its CRCs recomputed; whatever damaged index is accepted is consistent (above);
//! - a damaged segment indexes exactly when its records still run from its header to a clean
//!   end (a zero frame header or the end of the bytes), each stream's events with consecutive
//!   versions, every event (and the last record) at or past the segment's first LSN and within
//!   2^32 of it: then `from_bytes` accepts what `build` returns, and it locates each event of
//!   the damaged segment at its record; otherwise `build` fails.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Result as ArbResult, Unstructured};
use helios_log::format::{self, Frame, RecordHeader, record, segment_header};
use helios_log::storage::ReadOnlyBytes;
use helios_log::{
    Location, Lsn, RecordClass, RecordKind, SegmentId, SegmentIndex, StreamId, Version,
};
use libfuzzer_sys::fuzz_target;

#[path = "reseal.rs"]
mod reseal;
use reseal::{put_le, reseal_frame};

/// Most streams and records in one segment, and damage operations: bounded so that an
/// execution stays well under a millisecond.
const STREAMS_MAX: usize = 5;
const RECORDS_MAX: usize = 48;
const DAMAGE_OPS_MAX: usize = 4;

/// The index layout (`docs/FORMAT.md`, "Segment index"): header field offsets, row and entry
/// sizes. The crate keeps its own private.
mod layout {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const STREAMS: usize = 12;
    pub const SEGMENT: usize = 16;
    pub const LAST_LSN: usize = 24;
    pub const LAST_OFFSET: usize = 32;
    pub const LAST_FRAME_LEN: usize = 40;
    pub const ENTRIES: usize = 44;
    pub const BODY_CRC: usize = 48;
    pub const RESERVED: usize = 52;
    pub const CRC: usize = 60;
    pub const LEN: usize = 64;
    pub const ROW: usize = 24;
    pub const ENTRY: usize = 16;
}

/// With `HELIOS_FUZZ_TRACE` set, prints what an input decodes to (the segment's records and
/// each damage) to explain a reproducer.
fn trace(message: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("HELIOS_FUZZ_TRACE").is_some()) {
        eprintln!("helios-fuzz: {}", message());
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Recomputes an index file's CRCs: the body's (if `body`), then the header's.
fn reseal_index(bytes: &mut [u8], body: bool) {
    reseal::reseal(bytes, layout::LEN, layout::BODY_CRC, layout::CRC, body);
}

/// What an accepted index must be, and what was checked of it: its streams, and every entry's
/// location in file order.
struct Checked {
    streams: Vec<(StreamId, Version, Version)>,
    locations: Vec<(StreamId, Version, Location)>,
}

/// `from_bytes` of `bytes` as the index of segment `id`; the consistency of what is accepted
/// (see the module documentation).
fn open_and_check(id: SegmentId, bytes: &[u8]) -> Option<(SegmentIndex, Checked)> {
    let opened = SegmentIndex::from_bytes(id, ReadOnlyBytes::new(bytes.to_vec()));
    let index = match opened {
        Ok(index) => index,
        Err(e) => {
            assert_eq!(e.segment, id, "an error names the segment asked for");
            return None;
        }
    };
    let checked = check_index(id, bytes, &index);
    // An index names one segment.
    let other = SegmentId(id.0.wrapping_add(1));
    assert!(
        SegmentIndex::from_bytes(other, ReadOnlyBytes::new(bytes.to_vec())).is_err(),
        "the index of {id:?} is accepted as {other:?}'s"
    );
    Some((index, checked))
}

/// The ranges `locate` is asked for, around a stream's versions `first..=last`.
fn ranges(first: u64, last: u64) -> Vec<(u64, u64)> {
    let mid = first + (last - first) / 2;
    vec![
        (0, u64::MAX),
        (first, last),
        (first, first),
        (last, last),
        (mid, mid),
        (first.saturating_add(1), last.saturating_sub(1)),
        (mid, u64::MAX),
        (0, mid),
        (0, first.saturating_sub(1)),
        (last.saturating_add(1), u64::MAX),
        (last, first),
        (u64::MAX, u64::MAX),
        (0, 0),
    ]
}

fn check_index(id: SegmentId, bytes: &[u8], index: &SegmentIndex) -> Checked {
    assert_eq!(index.segment(), id);
    assert_eq!(index.bytes(), bytes, "an index keeps its bytes");
    let last = index.last();
    assert_eq!(last.segment, id, "the last record is in another segment");
    assert!(last.lsn.0 >= id.0, "the last record is before the segment");
    let streams: Vec<(StreamId, Version, Version)> = index.streams().collect();
    assert!(
        streams.windows(2).all(|w| w[0].0 < w[1].0),
        "streams out of order: {streams:?}"
    );
    // The entries in file order, decoded here, to compare with what `locate` reads.
    let entries_at = layout::LEN + streams.len() * layout::ROW;
    let mut total = 0u64;
    let mut locations = Vec::new();
    let mut out = Vec::new();
    for &(stream, first, last_version) in &streams {
        assert!(
            first <= last_version,
            "stream {stream:?}: versions {first:?}..={last_version:?}"
        );
        assert_eq!(index.versions_of(stream), Some((first, last_version)));
        let count = last_version.0 - first.0 + 1;
        let row_start = total;
        total += count;
        assert!(
            total <= index.events() as u64,
            "the streams hold more versions than the index has events"
        );
        for (from, to) in ranges(first.0, last_version.0) {
            // `locate` appends: what is already there stays.
            out.clear();
            out.push((Version(u64::MAX), last));
            index.locate(stream, Version(from), Version(to), &mut out);
            let low = from.max(first.0);
            let high = to.min(last_version.0);
            let want = if low <= high { high - low + 1 } else { 0 };
            assert_eq!(
                out.len() as u64 - 1,
                want,
                "stream {stream:?} ({first:?}..={last_version:?}): locate {from}..={to}"
            );
            assert_eq!(out[0], (Version(u64::MAX), last), "locate overwrote `out`");
            for (k, (version, location)) in out[1..].iter().enumerate() {
                assert_eq!(version.0, low + k as u64, "versions out of order");
                assert_eq!(location.segment, id);
                // The entry of this version, read from the file.
                let entry = to_usize(row_start + (version.0 - first.0));
                let at = entries_at + entry * layout::ENTRY;
                let e = &bytes[at..at + layout::ENTRY];
                // (An LSN past u64::MAX cannot be located: not compared.)
                if let Some(lsn) = id.0.checked_add(u64::from(u32_at(e, 8))) {
                    assert_eq!(
                        (location.offset, location.lsn.0, location.frame_len_bytes),
                        (u64_at(e, 0), lsn, u32_at(e, 12)),
                        "locate read another entry than the file's"
                    );
                }
            }
        }
        out.clear();
        index.locate(stream, first, last_version, &mut out);
        locations.extend(
            out.iter()
                .map(|&(version, location)| (stream, version, location)),
        );
        // Streams next to it that the index does not hold.
        for near in [stream.0.wrapping_sub(1), stream.0.wrapping_add(1)] {
            if streams.iter().all(|s| s.0.0 != near) {
                assert_eq!(index.versions_of(StreamId(near)), None);
                out.clear();
                index.locate(StreamId(near), Version(0), Version(u64::MAX), &mut out);
                assert!(
                    out.is_empty(),
                    "a stream the index does not hold is located"
                );
            }
        }
    }
    assert_eq!(
        total,
        index.events() as u64,
        "the streams' versions do not add up to the events"
    );
    for absent in [0, u64::MAX] {
        if streams.iter().all(|s| s.0.0 != absent) {
            assert_eq!(index.versions_of(StreamId(absent)), None);
        }
    }
    Checked { streams, locations }
}

/// Part 1: the input as an index file, as it is and resealed, for the segment its header names.
fn raw(data: &[u8]) {
    let named = if data.len() >= layout::SEGMENT + 8 {
        SegmentId(u64_at(data, layout::SEGMENT))
    } else {
        SegmentId(1)
    };
    let _ = open_and_check(named, data);
    let _ = open_and_check(SegmentId(1), data);
    if data.len() >= layout::LEN {
        let mut resealed = data.to_vec();
        reseal_index(&mut resealed, true);
        open_and_check(named, &resealed);
    }
}

/// A record the input describes, where it was written in the clean segment.
#[derive(Clone, Debug)]
struct Written {
    header: RecordHeader,
    location: Location,
}

/// Values fields are set to: absurd ones, and small ones that name another stream, version,
/// row or entry of the segment.
const ABSURD: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    15,
    16,
    24,
    32,
    64,
    4096,
    i32::MAX as u64,
    u32::MAX as u64,
    u32::MAX as u64 + 1,
    u64::MAX / 2,
    u64::MAX - 64,
    u64::MAX - 1,
    u64::MAX,
];

fn value(u: &mut Unstructured<'_>, current: u64) -> ArbResult<u64> {
    Ok(match u.int_in_range(0..=7)? {
        0..=3 => *u.choose(ABSURD)?,
        4 => current.wrapping_add(1),
        5 => current.wrapping_sub(1),
        6 => current ^ (1 << u.int_in_range(0..=63)?),
        _ => u.arbitrary()?,
    })
}

/// The segment the input describes, and its records.
fn segment(u: &mut Unstructured<'_>) -> ArbResult<(SegmentId, Vec<u8>, Vec<Written>)> {
    let id = match u.int_in_range(0..=9)? {
        0..=3 => 1,
        4 => u.int_in_range(2..=200)?,
        5 => 1 << 32,
        6 => (1 << 32) - 3,
        7 => u64::MAX / 2,
        8 => u64::MAX - RECORDS_MAX as u64,
        _ => u.int_in_range(1..=u64::MAX - RECORDS_MAX as u64)?,
    };
    let stream_count = u.int_in_range(1..=STREAMS_MAX)?;
    let mut streams: Vec<(u64, u64)> = Vec::with_capacity(stream_count);
    for _ in 0..stream_count {
        let stream = match u.int_in_range(0..=5)? {
            0..=2 => u.int_in_range(1..=8)?,
            3 => 0,
            4 => u64::MAX,
            _ => u.arbitrary()?,
        };
        // The next version of the stream: from its first, or the middle of its history.
        let next = match u.int_in_range(0..=5)? {
            0..=2 => 1,
            3 => u.int_in_range(2..=1000)?,
            4 => u64::MAX - u.int_in_range(0..=8)?,
            _ => u.arbitrary()?,
        };
        if streams.iter().all(|s| s.0 != stream) {
            streams.push((stream, next));
        }
    }
    let capacity = *u.choose(&[4096u64, 8192, 1 << 16])?;
    let mut bytes = format::encode_segment_header(Lsn(id), capacity).to_vec();
    let mut written = Vec::new();
    let mut large = 0;
    for k in 0..u.int_in_range(0..=RECORDS_MAX)? {
        let s = u.choose_index(streams.len())?;
        let (stream, next) = streams[s];
        let (kind, version) = match u.int_in_range(0..=9)? {
            0 => (RecordKind::CreateStream, 0),
            1 => (RecordKind::DeleteStream, next.saturating_sub(1)),
            2 => (RecordKind::ForkStream, u.int_in_range(0..=next)?),
            // A stream's versions end at u64::MAX.
            _ if next == 0 => (RecordKind::DeleteStream, u64::MAX),
            _ => {
                streams[s].1 = next.wrapping_add(1);
                (RecordKind::Event, next)
            }
        };
        let payload_len = match u.int_in_range(0..=15)? {
            0 if large < 2 => {
                large += 1;
                u.int_in_range(1000..=6000)?
            }
            _ => u.int_in_range(0..=40)?,
        };
        let payload = vec![k as u8; payload_len];
        let header = RecordHeader {
            lsn: Lsn(id + k as u64),
            stream: StreamId(stream),
            version: Version(version),
            timestamp_us: u.arbitrary()?,
            batch_left: u.int_in_range(0..=2)?,
            kind,
            class: if u.arbitrary()? {
                RecordClass::Critical
            } else {
                RecordClass::Normal
            },
        };
        let offset = bytes.len();
        format::encode_record(&mut bytes, &header, &payload);
        written.push(Written {
            header,
            location: Location {
                lsn: header.lsn,
                segment: SegmentId(id),
                offset: offset as u64,
                frame_len_bytes: u32::try_from(bytes.len() - offset).expect("a small frame"),
            },
        });
    }
    // Zeros after the last record (the rest of the file), or none.
    match u.int_in_range(0..=2)? {
        0 => {}
        1 => bytes.resize(bytes.len() + u.int_in_range(1..=record::HEADER_LEN + 8)?, 0),
        _ => bytes.resize(bytes.len().max(to_usize(capacity)), 0),
    }
    Ok((SegmentId(id), bytes, written))
}

/// What a segment's index must say, derived from its records; `None` when it must not index.
struct Model {
    /// Per stream, its events' versions and locations, in log order.
    streams: BTreeMap<StreamId, Vec<(Version, Location)>>,
    events: usize,
    last: Location,
}

/// The index's specification: walks the segment's records from its header to a clean end.
fn model(id: SegmentId, segment: &[u8]) -> Option<Model> {
    let mut streams: BTreeMap<StreamId, Vec<(Version, Location)>> = BTreeMap::new();
    let mut offset = segment_header::LEN;
    let mut last = None;
    let mut events = 0;
    loop {
        match format::decode_frame(segment.get(offset..)?).ok()? {
            Frame::End => break,
            Frame::Record(record, len) => {
                let location = Location {
                    lsn: record.header.lsn,
                    segment: id,
                    offset: offset as u64,
                    frame_len_bytes: u32::try_from(len).ok()?,
                };
                if record.header.kind == RecordKind::Event {
                    // Every event is within 2^32 records of the segment's first LSN.
                    let delta = record.header.lsn.0.checked_sub(id.0)?;
                    u32::try_from(delta).ok()?;
                    let versions = streams.entry(record.header.stream).or_default();
                    if let Some(&(previous, _)) = versions.last()
                        && previous.0.checked_add(1) != Some(record.header.version.0)
                    {
                        return None;
                    }
                    versions.push((record.header.version, location));
                    events += 1;
                }
                last = Some(location);
                offset += len;
            }
        }
    }
    let last = last?;
    if last.lsn.0 < id.0 {
        return None;
    }
    Some(Model {
        streams,
        events,
        last,
    })
}

/// Builds the index of `segment` and checks it against the model: exact when the segment
/// indexes, an error when it does not.
fn build_and_check(id: SegmentId, segment: &[u8]) -> Option<Vec<u8>> {
    let want = model(id, segment);
    let built = SegmentIndex::build(id, segment);
    let (want, built) = match (want, built) {
        (None, Err(_)) => return None,
        (Some(want), Ok(built)) => (want, built),
        (None, Ok(built)) => {
            let opened = SegmentIndex::from_bytes(id, ReadOnlyBytes::new(built.clone()));
            panic!(
                "a segment that must not index built one of {} bytes (from_bytes: {:?})",
                built.len(),
                opened.map(|i| i.last())
            )
        }
        (Some(want), Err(e)) => panic!(
            "a segment of {} events (last {:?}) does not index: {e}",
            want.events, want.last
        ),
    };
    assert_eq!(
        built.len(),
        layout::LEN + want.streams.len() * layout::ROW + want.events * layout::ENTRY,
        "the index's length"
    );
    let (index, checked) =
        open_and_check(id, &built).expect("from_bytes accepts the index build made");
    assert_eq!(index.events(), want.events);
    assert_eq!(index.last(), want.last, "the last record");
    let streams: Vec<(StreamId, Version, Version)> = want
        .streams
        .iter()
        .map(|(&s, v)| (s, v[0].0, v[v.len() - 1].0))
        .collect();
    assert_eq!(checked.streams, streams, "the index's streams");
    let every: Vec<(StreamId, Version, Location)> = want
        .streams
        .iter()
        .flat_map(|(&s, v)| v.iter().map(move |&(version, l)| (s, version, l)))
        .collect();
    assert_eq!(checked.locations, every, "the events' locations");
    let mut out = Vec::new();
    for &(stream, version, location) in &every {
        out.clear();
        index.locate(stream, version, version, &mut out);
        assert_eq!(out, [(version, location)], "{stream:?} {version:?}");
        // The record there is that event.
        match format::decode_frame(&segment[to_usize(location.offset)..]) {
            Ok(Frame::Record(r, len)) => {
                assert_eq!(
                    (
                        r.header.kind,
                        r.header.stream,
                        r.header.version,
                        r.header.lsn
                    ),
                    (RecordKind::Event, stream, version, location.lsn),
                    "another record at {stream:?} {version:?}'s location"
                );
                assert_eq!(len as u64, u64::from(location.frame_len_bytes));
            }
            other => panic!("no record at {stream:?} {version:?}'s location: {other:?}"),
        }
    }
    Some(built)
}

/// Damage to an index file: one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IndexDamage {
    Flip,
    Set,
    Cut,
    Extend,
    Field,
    Swap,
}

/// An offset in the header, the stream rows, the entries, or anywhere.
fn index_offset(u: &mut Unstructured<'_>, bytes: &[u8], rows: usize) -> ArbResult<usize> {
    let len = bytes.len();
    if len == 0 {
        return Ok(0);
    }
    let rows_end = (layout::LEN + rows * layout::ROW).min(len);
    let at = match u.int_in_range(0..=3)? {
        0 => u.int_in_range(0..=layout::LEN - 1)?,
        1 if rows_end > layout::LEN => u.int_in_range(layout::LEN..=rows_end - 1)?,
        2 if len > rows_end => u.int_in_range(rows_end..=len - 1)?,
        _ => u.int_in_range(0..=len - 1)?,
    };
    Ok(at.min(len - 1))
}

fn damage_index(
    u: &mut Unstructured<'_>,
    bytes: &mut Vec<u8>,
    rows: usize,
    events: usize,
) -> ArbResult<IndexDamage> {
    let len = bytes.len();
    let rows_at = layout::LEN;
    let entries_at = layout::LEN + rows * layout::ROW;
    let op = match u.int_in_range(0..=5)? {
        0 => {
            let at = index_offset(u, bytes, rows)?;
            let mask = u.int_in_range(1..=255)?;
            if let Some(b) = bytes.get_mut(at) {
                *b ^= mask;
            }
            trace(|| format!("index: byte {at} ^= {mask:#04x}"));
            IndexDamage::Flip
        }
        1 => {
            let at = index_offset(u, bytes, rows)?;
            let n = u.int_in_range(1..=8)?;
            for k in 0..n {
                let b = u.arbitrary()?;
                if let Some(slot) = bytes.get_mut(at + k) {
                    *slot = b;
                }
            }
            trace(|| format!("index: {n} bytes set at {at}"));
            IndexDamage::Set
        }
        2 => {
            let to = match u.int_in_range(0..=4)? {
                0 => u.int_in_range(0..=layout::LEN)?,
                1 => entries_at,
                2 => len.saturating_sub(u.int_in_range(1..=layout::ENTRY)?),
                _ => index_offset(u, bytes, rows)?,
            };
            if to < len {
                bytes.truncate(to);
            }
            trace(|| format!("index: cut at {to} (of {len})"));
            IndexDamage::Cut
        }
        3 => {
            let n = match u.int_in_range(0..=2)? {
                0 => layout::ENTRY,
                1 => layout::ROW,
                _ => u.int_in_range(1..=64)?,
            };
            let zeros: bool = u.arbitrary()?;
            for _ in 0..n {
                let b = if zeros { 0 } else { u.arbitrary()? };
                bytes.push(b);
            }
            trace(|| format!("index: {n} bytes appended (zeros: {zeros})"));
            IndexDamage::Extend
        }
        4 => {
            // A header field, a stream row's or an entry's.
            let (at, width) = match u.int_in_range(0..=2)? {
                0 => *u.choose(&[
                    (layout::MAGIC, 8),
                    (layout::VERSION, 4),
                    (layout::STREAMS, 4),
                    (layout::SEGMENT, 8),
                    (layout::LAST_LSN, 8),
                    (layout::LAST_OFFSET, 8),
                    (layout::LAST_FRAME_LEN, 4),
                    (layout::ENTRIES, 4),
                    (layout::BODY_CRC, 4),
                    (layout::RESERVED, 8),
                    (layout::CRC, 4),
                ])?,
                1 if rows > 0 => {
                    let row = rows_at + u.choose_index(rows)? * layout::ROW;
                    let (field, width) = *u.choose(&[(0, 8), (8, 8), (16, 4), (20, 4)])?;
                    (row + field, width)
                }
                _ if events > 0 => {
                    let entry = entries_at + u.choose_index(events)? * layout::ENTRY;
                    let (field, width) = *u.choose(&[(0, 8), (8, 4), (12, 4)])?;
                    (entry + field, width)
                }
                _ => (layout::STREAMS, 4),
            };
            let current = bytes.get(at..at + width).map_or(0, |b| {
                let mut le = [0u8; 8];
                le[..width].copy_from_slice(b);
                u64::from_le_bytes(le)
            });
            let v = value(u, current)?;
            put_le(bytes, at, width, v);
            trace(|| format!("index: field at {at} ({width} bytes) {current} -> {v}"));
            IndexDamage::Field
        }
        _ => {
            // Two stream rows, or two entries, swapped.
            let (start, size, count) = if u.arbitrary()? {
                (rows_at, layout::ROW, rows)
            } else {
                (entries_at, layout::ENTRY, events)
            };
            if count > 1 {
                let a = u.choose_index(count)?;
                let b = u.choose_index(count)?;
                let (a, b) = (a.min(b), a.max(b));
                if a != b && start + (b + 1) * size <= bytes.len() {
                    let (left, right) = bytes.split_at_mut(start + b * size);
                    left[start + a * size..start + (a + 1) * size]
                        .swap_with_slice(&mut right[..size]);
                    trace(|| format!("index: items {a} and {b} of size {size} at {start} swapped"));
                }
            }
            IndexDamage::Swap
        }
    };
    Ok(op)
}

/// Damage to the segment: one operation. Records are picked among the clean segment's.
fn damage_segment(
    u: &mut Unstructured<'_>,
    bytes: &mut Vec<u8>,
    written: &[Written],
) -> ArbResult<()> {
    let len = bytes.len();
    let frame = |u: &mut Unstructured<'_>| -> ArbResult<Option<&Written>> {
        if written.is_empty() {
            return Ok(None);
        }
        Ok(Some(&written[u.choose_index(written.len())?]))
    };
    let offset = |u: &mut Unstructured<'_>| -> ArbResult<usize> {
        Ok(match (u.int_in_range(0..=2)?, frame(u)?) {
            (0, Some(w)) => to_usize(w.location.offset) + u.int_in_range(0..=record::HEADER_LEN)?,
            (1, Some(w)) => to_usize(w.location.offset),
            _ if len > 0 => u.int_in_range(0..=len - 1)?,
            _ => 0,
        })
    };
    match u.int_in_range(0..=6)? {
        0 => {
            let at = offset(u)?;
            let mask = u.int_in_range(1..=255)?;
            if let Some(b) = bytes.get_mut(at) {
                *b ^= mask;
            }
            trace(|| format!("segment: byte {at} ^= {mask:#04x}"));
        }
        1 => {
            let at = offset(u)?;
            let n = u.int_in_range(1..=8)?;
            for k in 0..n {
                let b = u.arbitrary()?;
                if let Some(slot) = bytes.get_mut(at + k) {
                    *slot = b;
                }
            }
            trace(|| format!("segment: {n} bytes set at {at}"));
        }
        2 => {
            let to = match u.int_in_range(0..=2)? {
                0 => u.int_in_range(0..=segment_header::LEN + 1)?,
                _ => offset(u)?,
            };
            bytes.truncate(to.min(len));
            trace(|| format!("segment: cut at {to}"));
        }
        3 => {
            let at = offset(u)?.min(len);
            let n = u.int_in_range(1..=16)?;
            let junk: Vec<u8> = (0..n).map(|_| u.arbitrary()).collect::<ArbResult<_>>()?;
            bytes.splice(at..at, junk);
            trace(|| format!("segment: {n} bytes inserted at {at}"));
        }
        4 => {
            if len > 0 {
                let at = offset(u)?.min(len - 1);
                let end = (at + u.int_in_range(1..=64)?).min(len);
                bytes.drain(at..end);
                trace(|| format!("segment: bytes {at}..{end} removed"));
            }
        }
        5 => {
            // Zeros from a record on (the clean end comes earlier), or a record repeated right
            // after itself.
            if let Some(w) = frame(u)? {
                let start = to_usize(w.location.offset).min(len);
                let end = to_usize(w.location.end()).min(len);
                if u.arbitrary()? {
                    bytes[start..].fill(0);
                    trace(|| format!("segment: zeros from {start}"));
                } else {
                    let copy = bytes[start..end].to_vec();
                    bytes.splice(end..end, copy);
                    trace(|| format!("segment: the record at {start} repeated at {end}"));
                }
            }
        }
        _ => {
            // A record field set, its CRC recomputed or not.
            if let Some(w) = frame(u)? {
                let at = to_usize(w.location.offset);
                let (field, width) = *u.choose(&[
                    (record::LSN, 8),
                    (record::LSN, 8),
                    (record::STREAM, 8),
                    (record::VERSION, 8),
                    (record::VERSION, 8),
                    (record::KIND, 1),
                    (record::CLASS, 1),
                    (record::BATCH_LEFT, 4),
                    (record::PAYLOAD_LEN, 4),
                    (record::BODY_LEN, 4),
                    (record::RESERVED, 1),
                ])?;
                let current = bytes.get(at + field..at + field + width).map_or(0, |b| {
                    let mut le = [0u8; 8];
                    le[..width].copy_from_slice(b);
                    u64::from_le_bytes(le)
                });
                let v = value(u, current)?;
                put_le(bytes, at + field, width, v);
                let reseal: bool = u.ratio(3, 4)?;
                if reseal {
                    reseal_frame(bytes, at);
                }
                trace(|| {
                    format!(
                        "segment: record at {at}, field {field}: {current} -> {v} (resealed: {reseal})"
                    )
                });
            }
        }
    }
    Ok(())
}

/// Part 2: a clean segment's index, checked, then the index and the segment damaged.
fn structured(data: &[u8]) -> ArbResult<()> {
    let mut u = Unstructured::new(data);
    let (id, segment, written) = segment(&mut u)?;
    trace(|| {
        let records: Vec<String> = written
            .iter()
            .map(|w| {
                let h = &w.header;
                format!(
                    "{:?} {} v{} {:?} at {}+{}",
                    h.kind,
                    h.stream.0,
                    h.version.0,
                    h.lsn,
                    w.location.offset,
                    w.location.frame_len_bytes
                )
            })
            .collect();
        format!("segment {} ({} bytes): {records:?}", id.0, segment.len())
    });
    let built = build_and_check(id, &segment);
    let events = written
        .iter()
        .filter(|w| w.header.kind == RecordKind::Event)
        .count();
    let Some(built) = built else {
        assert!(
            written.is_empty(),
            "a clean segment of records does not index"
        );
        return Ok(());
    };
    assert!(!written.is_empty(), "a segment of no record indexes");
    assert_eq!(
        SegmentIndex::build(id, &segment).ok().as_deref(),
        Some(&built[..]),
        "building again gives other bytes"
    );
    let rows = u32_at(&built, layout::STREAMS) as usize;

    // The index damaged, its CRCs recomputed or not.
    let mut damaged = built.clone();
    let mut ops = Vec::new();
    for _ in 0..u.int_in_range(1..=DAMAGE_OPS_MAX)? {
        ops.push(damage_index(&mut u, &mut damaged, rows, events)?);
    }
    let reseal = u.int_in_range(0..=2)?;
    match reseal {
        0 => {}
        1 => reseal_index(&mut damaged, false),
        _ => reseal_index(&mut damaged, true),
    }
    trace(|| format!("index damaged by {ops:?}, resealed: {reseal}"));
    let accepted = open_and_check(id, &damaged);
    if damaged == built {
        assert!(accepted.is_some(), "an undamaged index is rejected");
    } else if reseal == 0
        && ops.len() == 1
        && matches!(
            ops[0],
            IndexDamage::Flip | IndexDamage::Cut | IndexDamage::Extend
        )
    {
        assert!(
            accepted.is_none(),
            "a single {:?} without recomputed CRCs is accepted",
            ops[0]
        );
    }

    // The segment damaged, or indexed under another id.
    let mut damaged = segment.clone();
    let mut id = id;
    for _ in 0..u.int_in_range(1..=DAMAGE_OPS_MAX)? {
        if u.ratio(1, 8)? {
            id = SegmentId(match u.int_in_range(0..=3)? {
                0 => id.0.wrapping_add(1),
                1 => id.0.wrapping_sub(1),
                2 => 1,
                _ => u64::MAX,
            });
            trace(|| format!("segment indexed as {}", id.0));
        } else {
            damage_segment(&mut u, &mut damaged, &written)?;
        }
    }
    let _ = build_and_check(id, &damaged);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    raw(data);
    let _ = structured(data);
});
