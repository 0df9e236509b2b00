//! The segment index: for one sealed segment, where each stream's events lie in it, sorted by
//! stream id. A function of the segment's bytes alone: built by one scan of the sealed segment,
//! written once next to it (`<segment>.idx`), never changed, and rebuilt the same from the
//! segment whenever it is missing or damaged. So readers in other processes can map it while
//! the writer appends, and nothing else has to store the locations of sealed records. A clean
//! close writes one for the active segment too, up to its last record: once the segment grows,
//! that index covers a prefix of it ([`Coverage::Prefix`]).
//!
//! Layout (little-endian; byte diagrams in `docs/FORMAT.md`):
//!
//! ```text
//! header   64 B  magic "HLXINDEX", version u32, stream rows u32, segment id u64, the last
//!                record's lsn u64, offset u64 and frame length u32, entries u32, body CRC u32,
//!                8 reserved bytes, header CRC u32
//! streams  24 B each, sorted by stream id: stream u64, first version u64, first entry u32, count u32
//! entries  16 B each, a stream's versions in order: offset u64, lsn - segment id u32, frame length u32
//! ```
//!
//! The header holds the CRC of the rest of the file; [`SegmentIndex::from_bytes`] checks it and
//! the tables' consistency (or [`SegmentIndex::from_bytes_lazy`] leaves that to the first
//! lookup), so a lookup never reads out of bounds on a damaged file.

use crate::format::{self, Frame};
use std::path::Path;
use std::sync::Arc;

use crate::storage::search::lower_bound_spread;
use crate::storage::{LazyMap, ReadOnlyBytes, Storage};
use crate::types::{Location, Lsn, RecordKind, SegmentId, StreamId, Version};

/// The file-name suffix of a segment index.
pub const INDEX_SUFFIX: &str = ".idx";

/// The file name of the index of segment `id` (beside `segment_name(id)`).
#[must_use]
pub fn index_name(id: SegmentId) -> String {
    format!("{:020}{INDEX_SUFFIX}", id.0)
}

/// Byte offsets of the header fields.
mod header {
    pub const MAGIC: usize = 0; // [u8; 8]
    pub const VERSION: usize = 8; // u32
    pub const STREAMS: usize = 12; // u32: rows of the stream table
    pub const SEGMENT: usize = 16; // u64
    pub const LAST_LSN: usize = 24; // u64: the segment's last record
    pub const LAST_OFFSET: usize = 32; // u64
    pub const LAST_FRAME_LEN: usize = 40; // u32
    pub const ENTRIES: usize = 44; // u32: event entries
    pub const BODY_CRC: usize = 48; // u32: CRC-32 of every byte after the header
    pub const RESERVED: usize = 52; // [u8; 8], zero
    pub const CRC: usize = 60; // u32: CRC-32 of bytes 0..60
    pub const LEN: usize = 64;
}

const MAGIC: &[u8; 8] = b"HLXINDEX";
const VERSION: u32 = 1;
const STREAM_ROW: usize = 24;
const ENTRY_ROW: usize = 16;

/// Why bytes are not a valid segment index.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("segment index of {segment}: {reason}")]
pub struct IndexError {
    /// The segment it should index.
    pub segment: SegmentId,
    /// What is wrong.
    pub reason: String,
    /// Where in the segment, when the problem is in its records (a build of its index), not in
    /// an index file.
    pub segment_offset: Option<u64>,
}

impl IndexError {
    /// An error in the index of `segment` (not at a place in the segment's records).
    #[must_use]
    pub fn new(segment: SegmentId, reason: impl Into<String>) -> IndexError {
        IndexError {
            segment,
            reason: reason.into(),
            segment_offset: None,
        }
    }
}

/// How much of its segment an index covers ([`SegmentIndex::coverage`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Every record: its last record is the segment's.
    Whole,
    /// The records up to a last record that more follow: the index a clean close wrote for
    /// the segment then active, which a writer appended to since.
    Prefix,
    /// It names no record of the segment as its last: damaged (or forged).
    Wrong,
}

/// A validated segment index (see the module documentation), over a map of its file or over
/// bytes built in memory.
#[derive(Clone, Debug)]
pub struct SegmentIndex {
    /// The file's bytes: given, or (opened from its header alone, [`SegmentIndex::open_lazy`])
    /// mapped at the first check of the tables.
    bytes: LazyMap,
    segment: SegmentId,
    streams: usize,
    entries: usize,
    last: Location,
    /// The tables' check (their CRC, the rows in order and within the entries), made once:
    /// by [`SegmentIndex::from_bytes`], or by the first lookup of one opened with
    /// [`SegmentIndex::from_bytes_lazy`].
    tables: std::sync::OnceLock<Result<(), IndexError>>,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

impl SegmentIndex {
    /// Builds the index of sealed segment `id` from its whole file: its records must run from
    /// its header to a clean end (what the log's open checked of every sealed segment).
    ///
    /// # Errors
    /// A record that does not decode, or versions of a stream that do not follow each other.
    pub fn build(id: SegmentId, segment: &[u8]) -> Result<Vec<u8>, IndexError> {
        let bad = |reason: String| IndexError::new(id, reason);
        // (stream, version, location) of every event, in log order.
        let mut events: Vec<(StreamId, Version, Location)> = Vec::new();
        let mut offset = format::segment_header::LEN;
        let mut last = None;
        loop {
            let rest = segment
                .get(offset..)
                .ok_or_else(|| bad(format!("offset {offset} is past the segment's end")))?;
            match format::decode_frame(rest) {
                Ok(Frame::End) => break,
                Ok(Frame::Record(record, len)) => {
                    #[expect(clippy::cast_possible_truncation, reason = "frames are below 4 GiB")]
                    let location = Location {
                        lsn: record.header.lsn,
                        segment: id,
                        offset: offset as u64,
                        frame_len_bytes: len as u32,
                    };
                    if record.header.kind == RecordKind::Event {
                        events.push((record.header.stream, record.header.version, location));
                    }
                    last = Some(location);
                    offset += len;
                }
                Err(e) => {
                    return Err(IndexError {
                        segment_offset: Some(offset as u64),
                        ..bad(format!("record at offset {offset}: {e}"))
                    });
                }
            }
        }
        let last = last.ok_or_else(|| bad("the segment holds no record".into()))?;
        if last.lsn < Lsn(id.0) {
            return Err(bad(format!(
                "its last record {} is below the segment",
                last.lsn
            )));
        }
        // Stable: each stream's versions stay in log order.
        events.sort_by_key(|(stream, _, _)| *stream);
        let streams = events.chunk_by(|a, b| a.0 == b.0).count();
        let count = |n: usize, what: &str| {
            u32::try_from(n).map_err(|_| bad(format!("{n} {what} do not fit the format")))
        };
        let stream_count = count(streams, "streams")?;
        let entry_count = count(events.len(), "events")?;
        let mut out = vec![0u8; header::LEN + streams * STREAM_ROW + events.len() * ENTRY_ROW];
        let (head, body) = out.split_at_mut(header::LEN);
        let (table, entries) = body.split_at_mut(streams * STREAM_ROW);
        let mut at = 0usize;
        for (row, run) in events.chunk_by(|a, b| a.0 == b.0).enumerate() {
            let (stream, first, _) = run[0];
            for (k, (_, version, _)) in run.iter().enumerate() {
                if first.0.checked_add(k as u64) != Some(version.0) {
                    return Err(bad(format!(
                        "{stream} has {version} where {} should follow",
                        Version(first.0.wrapping_add(k as u64))
                    )));
                }
            }
            let t = &mut table[row * STREAM_ROW..(row + 1) * STREAM_ROW];
            t[0..8].copy_from_slice(&stream.0.to_le_bytes());
            t[8..16].copy_from_slice(&first.0.to_le_bytes());
            t[16..20].copy_from_slice(&count(at, "events")?.to_le_bytes());
            t[20..24].copy_from_slice(&count(run.len(), "events")?.to_le_bytes());
            for (_, _, location) in run {
                let e = &mut entries[at * ENTRY_ROW..(at + 1) * ENTRY_ROW];
                e[0..8].copy_from_slice(&location.offset.to_le_bytes());
                let below = || bad(format!("{} is below the segment", location.lsn));
                let delta = location.lsn.0.checked_sub(id.0).ok_or_else(below)?;
                let delta = count(usize::try_from(delta).unwrap_or(usize::MAX), "records")?;
                e[8..12].copy_from_slice(&delta.to_le_bytes());
                e[12..16].copy_from_slice(&location.frame_len_bytes.to_le_bytes());
                at += 1;
            }
        }
        head[header::MAGIC..header::MAGIC + 8].copy_from_slice(MAGIC);
        head[header::VERSION..header::VERSION + 4].copy_from_slice(&VERSION.to_le_bytes());
        head[header::STREAMS..header::STREAMS + 4].copy_from_slice(&stream_count.to_le_bytes());
        head[header::SEGMENT..header::SEGMENT + 8].copy_from_slice(&id.0.to_le_bytes());
        head[header::LAST_LSN..header::LAST_LSN + 8].copy_from_slice(&last.lsn.0.to_le_bytes());
        head[header::LAST_OFFSET..header::LAST_OFFSET + 8]
            .copy_from_slice(&last.offset.to_le_bytes());
        head[header::LAST_FRAME_LEN..header::LAST_FRAME_LEN + 4]
            .copy_from_slice(&last.frame_len_bytes.to_le_bytes());
        head[header::ENTRIES..header::ENTRIES + 4].copy_from_slice(&entry_count.to_le_bytes());
        let body_crc = crc32fast::hash(body);
        head[header::BODY_CRC..header::BODY_CRC + 4].copy_from_slice(&body_crc.to_le_bytes());
        let crc = crc32fast::hash(&head[..header::CRC]);
        head[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Checks `bytes` (a whole index file, or what [`SegmentIndex::build`] returned) as the index
    /// of segment `id`: header, CRCs, and every stream row and entry within bounds and in order.
    ///
    /// # Errors
    /// [`IndexError`] saying what does not hold.
    pub fn from_bytes(id: SegmentId, bytes: ReadOnlyBytes) -> Result<SegmentIndex, IndexError> {
        let index = SegmentIndex::from_bytes_lazy(id, bytes)?;
        index.check()?;
        Ok(index)
    }

    /// Checks the header of `bytes` as the index of segment `id` (magic, CRC, version, segment,
    /// the file's size), and leaves its tables to the first lookup ([`SegmentIndex::check`]):
    /// an open that maps many indexes reads only the pages of those it uses. A lookup in an
    /// index whose tables fail their check finds nothing.
    ///
    /// # Errors
    /// [`IndexError`] saying what does not hold in the header.
    pub fn from_bytes_lazy(
        id: SegmentId,
        bytes: ReadOnlyBytes,
    ) -> Result<SegmentIndex, IndexError> {
        let head = &bytes[..bytes.len().min(header::LEN)];
        let len = bytes.len() as u64;
        SegmentIndex::from_header(id, head, len, LazyMap::ready(bytes.clone()))
    }

    /// [`SegmentIndex::from_bytes_lazy`] of the index file at `path`, from its header alone
    /// (one `pread`): its tables are mapped at the first lookup. An open of a long log then
    /// costs no map and no page fault per index it does not use. `Ok(None)` if there is no
    /// such file.
    ///
    /// # Errors
    /// I/O errors opening or reading the file; [`IndexError`] (inside) for what does not hold
    /// in the header.
    pub fn open_lazy(
        id: SegmentId,
        storage: Arc<dyn Storage>,
        path: &Path,
    ) -> std::io::Result<Option<Result<SegmentIndex, IndexError>>> {
        let file = match storage.open_read_only(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let (head, len) = file.read_head(header::LEN)?;
        Ok(Some(SegmentIndex::from_header(
            id,
            &head,
            len,
            LazyMap::new(storage, path.to_path_buf()),
        )))
    }

    /// Checks `head`, the first bytes of an index file of `len` bytes, as the header of the
    /// index of segment `id` (magic, CRC, version, segment, the file's size).
    fn from_header(
        id: SegmentId,
        head: &[u8],
        len: u64,
        bytes: LazyMap,
    ) -> Result<SegmentIndex, IndexError> {
        let bad = |reason: String| IndexError::new(id, reason);
        let b = head;
        if b.len() < header::LEN {
            return Err(bad(format!("{len} bytes is shorter than its header")));
        }
        if &b[header::MAGIC..header::MAGIC + 8] != MAGIC {
            return Err(bad("not a segment index (magic)".into()));
        }
        if crc32fast::hash(&b[..header::CRC]) != u32_at(b, header::CRC) {
            return Err(bad("header checksum mismatch".into()));
        }
        let version = u32_at(b, header::VERSION);
        if version != VERSION {
            return Err(bad(format!(
                "version {version}, this build reads {VERSION}"
            )));
        }
        if u64_at(b, header::SEGMENT) != id.0 {
            return Err(bad(format!(
                "it indexes segment {}",
                u64_at(b, header::SEGMENT)
            )));
        }
        if b[header::RESERVED..header::CRC].iter().any(|&x| x != 0) {
            return Err(bad("reserved header bytes are not zero".into()));
        }
        let streams = u32_at(b, header::STREAMS) as usize;
        let entries = u32_at(b, header::ENTRIES) as usize;
        let expected = header::LEN + streams * STREAM_ROW + entries * ENTRY_ROW;
        if len != expected as u64 {
            return Err(bad(format!(
                "{len} bytes, but its header describes {expected}"
            )));
        }
        let last = Location {
            lsn: Lsn(u64_at(b, header::LAST_LSN)),
            segment: id,
            offset: u64_at(b, header::LAST_OFFSET),
            frame_len_bytes: u32_at(b, header::LAST_FRAME_LEN),
        };
        if last.lsn < Lsn(id.0) {
            return Err(bad(format!(
                "its last record {} is below the segment",
                last.lsn
            )));
        }
        Ok(SegmentIndex {
            bytes,
            segment: id,
            streams,
            entries,
            last,
            tables: std::sync::OnceLock::new(),
        })
    }

    /// Checks the tables (once; later calls return the first answer): their CRC, and every
    /// stream row in order and within the entries.
    ///
    /// # Errors
    /// [`IndexError`] saying what does not hold.
    pub fn check(&self) -> Result<(), IndexError> {
        self.tables.get_or_init(|| self.check_tables()).clone()
    }

    /// Does now what the first lookup would: maps the tables (if the index was opened from
    /// its header), checks them, and maps the pages the page cache holds into this process
    /// ([`ReadOnlyBytes::map_resident`]), so that first lookups pay for none of it.
    pub fn warm(&self, stop: &dyn Fn() -> bool) {
        if self.check().is_ok()
            && let Ok(bytes) = self.mapped()
        {
            bytes.map_resident(stop);
        }
    }

    fn check_tables(&self) -> Result<(), IndexError> {
        let bad = |reason: String| IndexError::new(self.segment, reason);
        let b = self
            .mapped()
            .map_err(|e| bad(format!("it cannot be read: {e}")))?;
        if b.len() < header::LEN
            || crc32fast::hash(&b[header::LEN..]) != u32_at(b, header::BODY_CRC)
        {
            return Err(bad("checksum mismatch in its tables".into()));
        }
        let (index, streams, entries) = (self, self.streams, self.entries);
        // Rows in stream order, each run inside the entries and after the one before.
        let mut next_entry = 0usize;
        let mut previous: Option<StreamId> = None;
        for row in 0..streams {
            let (stream, first, start, count) = index.row(row);
            if previous.is_some_and(|p| p >= stream)
                || start != next_entry
                || count == 0
                || first.0.checked_add(count as u64 - 1).is_none()
            {
                return Err(bad(format!("stream row {row} is out of order")));
            }
            previous = Some(stream);
            next_entry = start + count;
        }
        if next_entry != entries {
            return Err(bad("the stream rows do not cover the entries".into()));
        }
        // Entries are not checked one by one: a read checks the record it finds at a location
        // (its checksum, LSN and length), so a wrong entry can only make a read fail loudly.
        Ok(())
    }

    /// How much of `segment` (the bytes of the segment it indexes) it covers, judged by the
    /// record it names as its last: a record with that LSN and frame length at that offset,
    /// followed by nothing but zeros (or the file's end), or by more records.
    #[must_use]
    pub fn coverage(&self, segment: &[u8]) -> Coverage {
        let last = self.last;
        let Ok(at) = usize::try_from(last.offset) else {
            return Coverage::Wrong;
        };
        match segment.get(at..).map(format::decode_frame) {
            Some(Ok(Frame::Record(record, len)))
                if record.header.lsn == last.lsn
                    && len as u64 == u64::from(last.frame_len_bytes) =>
            {
                match segment.get(at + len..).map(format::decode_frame) {
                    None | Some(Ok(Frame::End)) => Coverage::Whole,
                    Some(_) => Coverage::Prefix,
                }
            }
            _ => Coverage::Wrong,
        }
    }

    /// The segment it indexes.
    #[must_use]
    pub fn segment(&self) -> SegmentId {
        self.segment
    }

    /// The location of the segment's last record.
    #[must_use]
    pub fn last(&self) -> Location {
        self.last
    }

    /// Events it locates.
    #[must_use]
    pub fn events(&self) -> usize {
        self.entries
    }

    /// The file's bytes (none if it was opened from its header and cannot be mapped).
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.mapped().map_or(&[], |b| &b[..])
    }

    /// The file's bytes, mapped now if the index was opened from its header.
    fn mapped(&self) -> std::io::Result<&ReadOnlyBytes> {
        self.bytes.get_with(|bytes| {
            if bytes.len() as u64 == self.file_len() {
                Ok(())
            } else {
                Err(std::io::Error::other(format!(
                    "{} bytes, {} at open",
                    bytes.len(),
                    self.file_len()
                )))
            }
        })
    }

    fn file_len(&self) -> u64 {
        (header::LEN + self.streams * STREAM_ROW + self.entries * ENTRY_ROW) as u64
    }

    /// Row `row` of the stream table: stream, first version, first entry, entry count. Only
    /// after the tables' check passed (which mapped them).
    fn row(&self, row: usize) -> (StreamId, Version, usize, usize) {
        let at = header::LEN + row * STREAM_ROW;
        let b: &[u8] = self.bytes();
        (
            StreamId(u64_at(b, at)),
            Version(u64_at(b, at + 8)),
            u32_at(b, at + 16) as usize,
            u32_at(b, at + 20) as usize,
        )
    }

    fn entry_bytes(&self, at: usize) -> &[u8] {
        let start = header::LEN + self.streams * STREAM_ROW + at * ENTRY_ROW;
        &self.bytes()[start..start + ENTRY_ROW]
    }

    fn entry(&self, at: usize) -> Location {
        let e = self.entry_bytes(at);
        Location {
            offset: u64_at(e, 0),
            lsn: Lsn(self.segment.0.wrapping_add(u64::from(u32_at(e, 8)))),
            frame_len_bytes: u32_at(e, 12),
            segment: self.segment,
        }
    }

    /// The versions of `stream` this segment holds, `first..=last`, if any (none if the tables
    /// fail their check).
    #[must_use]
    pub fn versions_of(&self, stream: StreamId) -> Option<(Version, Version)> {
        self.check().ok()?;
        let row = self.find(stream)?;
        let (_, first, _, count) = self.row(row);
        Some((first, Version(first.0 + (count as u64 - 1))))
    }

    /// The row of `stream`. Stream ids are dense, so the search starts where `stream` falls
    /// between the first and the last row's: a read of a stream spread over many segments
    /// searches each one's table, and a bisection's ~17 scattered probes per table were most
    /// of a cold lookup.
    fn find(&self, stream: StreamId) -> Option<usize> {
        // The bytes once for the whole search, not at each probe.
        let bytes = self.bytes();
        let stream_at = |row: usize| u64_at(bytes, header::LEN + row * STREAM_ROW);
        let row = lower_bound_spread(self.streams, |row| Some(stream_at(row)), stream.0);
        (row < self.streams && stream_at(row) == stream.0).then_some(row)
    }

    /// Appends to `out` the locations of `stream`'s versions `from..=to` that this segment
    /// holds, in order, with their versions (none if the tables fail their check), and returns
    /// the versions of `stream` it holds, as [`SegmentIndex::versions_of`]: one search of the
    /// stream table for both.
    pub fn locate(
        &self,
        stream: StreamId,
        from: Version,
        to: Version,
        out: &mut Vec<(Version, Location)>,
    ) -> Option<(Version, Version)> {
        self.check().ok()?;
        let row = self.find(stream)?;
        let (_, first, start, count) = self.row(row);
        let last = first.0 + (count as u64 - 1);
        for version in from.0.max(first.0)..=to.0.min(last) {
            let k = usize::try_from(version - first.0).unwrap_or(usize::MAX);
            out.push((Version(version), self.entry(start + k)));
        }
        Some((first, Version(last)))
    }

    /// Every stream it holds, with its versions: `(stream, first, last)`, by stream id (none if
    /// the tables fail their check).
    pub fn streams(&self) -> impl Iterator<Item = (StreamId, Version, Version)> + '_ {
        let rows = if self.check().is_ok() {
            self.streams
        } else {
            0
        };
        (0..rows).map(|row| {
            let (stream, first, _, count) = self.row(row);
            (stream, first, Version(first.0 + (count as u64 - 1)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{RecordHeader, encode_record, encode_segment_header};
    use crate::types::RecordClass;

    /// A sealed segment starting at LSN 10: a stream creation, then events of streams 3 and 1
    /// interleaved (stream 1 from version 4 on), then a deletion.
    fn segment() -> Vec<u8> {
        let mut bytes = encode_segment_header(Lsn(10), 4096).to_vec();
        let mut lsn = 10;
        let mut push = |stream: u64, version: u64, kind: RecordKind| {
            let header = RecordHeader {
                lsn: Lsn(lsn),
                stream: StreamId(stream),
                version: Version(version),
                timestamp_us: 0,
                batch_left: 0,
                kind,
                class: RecordClass::Normal,
            };
            encode_record(&mut bytes, &header, format!("payload {lsn}").as_bytes());
            lsn += 1;
        };
        push(3, 0, RecordKind::CreateStream);
        for k in 0..5 {
            push(3, k + 1, RecordKind::Event);
            push(1, k + 4, RecordKind::Event);
        }
        push(1, 0, RecordKind::DeleteStream);
        bytes.resize(4096, 0);
        bytes
    }

    #[test]
    fn builds_finds_and_rejects_damage() {
        let segment = segment();
        let built = SegmentIndex::build(SegmentId(10), &segment).expect("build");
        let index = SegmentIndex::from_bytes(SegmentId(10), ReadOnlyBytes::new(built.clone()))
            .expect("valid");
        assert_eq!(index.events(), 10);
        assert_eq!(index.last().lsn, Lsn(21));
        let streams: Vec<_> = index.streams().collect();
        assert_eq!(
            streams,
            [
                (StreamId(1), Version(4), Version(8)),
                (StreamId(3), Version(1), Version(5))
            ]
        );
        let mut found = Vec::new();
        index.locate(StreamId(1), Version(1), Version(5), &mut found);
        assert_eq!(found.iter().map(|(v, _)| v.0).collect::<Vec<_>>(), [4, 5]);
        // Each location is the record's own: stream 1's version 5 is the 4th event, LSN 14.
        let (_, location) = found[1];
        assert_eq!(location.lsn, Lsn(14));
        let frame = &segment[usize::try_from(location.offset).expect("offset")..];
        match format::decode_frame(frame).expect("a record there") {
            Frame::Record(record, len) => {
                assert_eq!(
                    (record.header.stream, record.header.version),
                    (StreamId(1), Version(5))
                );
                assert_eq!(len as u64, u64::from(location.frame_len_bytes));
            }
            Frame::End => panic!("no record at the location"),
        }
        assert_eq!(index.versions_of(StreamId(2)), None);
        // Any flipped byte, a cut, or an extra byte is noticed.
        for at in 0..built.len() {
            let mut bad = built.clone();
            bad[at] ^= 0x04;
            assert!(
                SegmentIndex::from_bytes(SegmentId(10), ReadOnlyBytes::new(bad)).is_err(),
                "a flip at byte {at}"
            );
        }
        let cut = built[..built.len() - 1].to_vec();
        assert!(SegmentIndex::from_bytes(SegmentId(10), ReadOnlyBytes::new(cut)).is_err());
        let mut long = built.clone();
        long.push(0);
        assert!(SegmentIndex::from_bytes(SegmentId(10), ReadOnlyBytes::new(long)).is_err());
        assert!(SegmentIndex::from_bytes(SegmentId(9), ReadOnlyBytes::new(built)).is_err());
    }

    /// A segment starting at LSN `first` holding events of stream 1 at `versions`.
    fn segment_of(first: u64, lsns: &[u64], versions: &[u64]) -> Vec<u8> {
        let mut bytes = encode_segment_header(Lsn(first), 4096).to_vec();
        for (&lsn, &version) in lsns.iter().zip(versions) {
            let header = RecordHeader {
                lsn: Lsn(lsn),
                stream: StreamId(1),
                version: Version(version),
                timestamp_us: 0,
                batch_left: 0,
                kind: RecordKind::Event,
                class: RecordClass::Normal,
            };
            encode_record(&mut bytes, &header, b"x");
        }
        bytes.resize(4096, 0);
        bytes
    }

    /// Found by fuzzing: arithmetic at the edges of LSNs and versions is checked, not wrapped.
    #[test]
    fn extreme_lsns_and_versions_are_errors_or_exact_never_overflows() {
        // Records below the segment (a segment copied under another's name).
        let below = segment_of(1, &[1, 2], &[1, 2]);
        assert!(SegmentIndex::build(SegmentId(58), &below).is_err());
        // A stream whose last version is the largest there is.
        let top = segment_of(10, &[10, 11], &[u64::MAX - 1, u64::MAX]);
        let built = SegmentIndex::build(SegmentId(10), &top).expect("build");
        let index = SegmentIndex::from_bytes(SegmentId(10), ReadOnlyBytes::new(built.clone()))
            .expect("valid");
        assert_eq!(
            index.versions_of(StreamId(1)),
            Some((Version(u64::MAX - 1), Version(u64::MAX)))
        );
        let mut found = Vec::new();
        index.locate(StreamId(1), Version(0), Version(u64::MAX), &mut found);
        assert_eq!(found.len(), 2);
        // Versions that wrap around are not consecutive.
        let wraps = segment_of(10, &[10, 11], &[u64::MAX, 0]);
        assert!(SegmentIndex::build(SegmentId(10), &wraps).is_err());
        // A row whose versions would pass the largest one, CRCs recomputed, is refused.
        let mut forged = built;
        let first = header::LEN + 8;
        forged[first..first + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let body_crc = crc32fast::hash(&forged[header::LEN..]);
        forged[header::BODY_CRC..header::BODY_CRC + 4].copy_from_slice(&body_crc.to_le_bytes());
        let crc = crc32fast::hash(&forged[..header::CRC]);
        forged[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(SegmentIndex::from_bytes(SegmentId(10), ReadOnlyBytes::new(forged)).is_err());
    }

    #[test]
    fn a_segment_that_does_not_index_is_an_error() {
        let mut segment = segment();
        segment[format::segment_header::LEN + 40] ^= 1;
        assert!(SegmentIndex::build(SegmentId(10), &segment).is_err());
        let empty = encode_segment_header(Lsn(10), 4096).to_vec();
        assert!(SegmentIndex::build(SegmentId(10), &empty).is_err());
    }
}
