//! The byte layouts of segment files and log records. This module is the single place that
//! defines them; `docs/FORMAT.md` draws the same layouts and must agree with these constants.
//!
//! All integers are fixed-width little-endian. Decoding never panics and never trusts a length
//! before checking it against the bytes actually present.
//!
//! Invariants:
//! - A frame's `body_len` is never 0, so four zero bytes where a frame would start mean "nothing
//!   was ever written here" (segments are preallocated with zeros).
//! - `body_len == RECORD_HEADER_LEN - FRAME_PREFIX_LEN + payload_len` for every valid frame.
//! - The CRC covers the whole body (record header fields and payload), never the prefix.

use crate::types::{Lsn, Position, RecordClass, RecordKind, SegmentId, StreamId, Version};

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"HELIOSLG";

/// On-disk format version of the segments this build writes. Bump on any change of what a
/// segment may hold. Version 2 added the record kinds [`RecordKind::DeleteStream`] and
/// [`RecordKind::ForkStream`]; the layouts are those of version 1. A build that reads only
/// version 1 refuses a version-2 segment at its header, before it could mistake a record of a
/// new kind for damage, so a store is never truncated by an older build.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest segment format version this build reads. Version-1 segments hold only
/// [`RecordKind::Event`] and [`RecordKind::CreateStream`] records, read as in version 2.
pub const FORMAT_VERSION_OLDEST: u32 = 1;

/// Segment header layout.
pub mod segment_header {
    /// `magic: [u8; 8]`
    pub const MAGIC: usize = 0;
    /// `format_version: u32`
    pub const FORMAT_VERSION: usize = 8;
    /// `capacity_bytes: u32`, the file's length when it was created (format 2; reserved, zero,
    /// in format 1): a segment whose file is longer or shorter than this was changed by
    /// something else (bytes appended, or cut short).
    pub const CAPACITY_BYTES: usize = 12;
    /// `first_lsn: u64`, the LSN the segment starts at; also its file name.
    pub const FIRST_LSN: usize = 16;
    /// `crc32: u32` of bytes `0..CRC`.
    pub const CRC: usize = 24;
    /// `reserved: u32`, zero.
    pub const RESERVED_B: usize = 28;
    /// Total header length; the first record frame starts here.
    pub const LEN: usize = 8 // magic
        + 4 // format_version
        + 4 // capacity_bytes
        + 8 // first_lsn
        + 4 // crc32
        + 4; // reserved
    const _: () = assert!(RESERVED_B + 4 == LEN);
    const _: () = assert!(LEN == 32);
}

/// Layout of the log's published end, the file [`PUBLISHED_END_FILE_NAME`] in the log's
/// directory: the writer rewrites it in place after each sync, never syncs it, and never
/// writes a position whose records are not durable, so that readers in other processes know
/// how far they may read. A reader that finds it missing, short or with a bad checksum treats
/// the log as having published nothing new.
pub mod published_end {
    /// `magic: [u8; 4]`, [`super::PUBLISHED_END_MAGIC`].
    pub const MAGIC: usize = 0;
    /// `version: u32`, [`super::PUBLISHED_END_VERSION`].
    pub const VERSION: usize = 4;
    /// `lsn: u64`: every record up to it is durable.
    pub const LSN: usize = 8;
    /// `segment: u64`: the segment (its first LSN) holding the end.
    pub const SEGMENT: usize = 16;
    /// `offset: u64`: the byte offset in that segment just past record `lsn`.
    pub const OFFSET: usize = 24;
    /// `crc32: u32` of bytes `0..CRC`.
    pub const CRC: usize = 32;
    /// `reserved: u32`, zero.
    pub const RESERVED: usize = 36;
    /// Length of the file.
    pub const LEN: usize = 4 // magic
        + 4 // version
        + 8 // lsn
        + 8 // segment
        + 8 // offset
        + 4 // crc32
        + 4; // reserved
    const _: () = assert!(RESERVED + 4 == LEN);
    const _: () = assert!(LEN == 40);
}

/// The published end's file name, in the log's directory.
pub const PUBLISHED_END_FILE_NAME: &str = "published-end";
/// Magic bytes of the published end.
pub const PUBLISHED_END_MAGIC: [u8; 4] = *b"HPUB";
/// Version of the published end's layout.
pub const PUBLISHED_END_VERSION: u32 = 1;

/// Encodes a published end.
#[must_use]
pub fn encode_published_end(end: Position) -> [u8; published_end::LEN] {
    use published_end as p;
    let mut out = [0u8; p::LEN];
    out[p::MAGIC..p::MAGIC + 4].copy_from_slice(&PUBLISHED_END_MAGIC);
    out[p::VERSION..p::VERSION + 4].copy_from_slice(&PUBLISHED_END_VERSION.to_le_bytes());
    out[p::LSN..p::LSN + 8].copy_from_slice(&end.lsn.0.to_le_bytes());
    out[p::SEGMENT..p::SEGMENT + 8].copy_from_slice(&end.segment.0.to_le_bytes());
    out[p::OFFSET..p::OFFSET + 8].copy_from_slice(&end.offset.to_le_bytes());
    let crc = crc32fast::hash(&out[..p::CRC]);
    out[p::CRC..p::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a published end; `None` for bytes that are not a whole, valid one (a file being
/// rewritten, or not written by this layout).
#[must_use]
pub fn decode_published_end(bytes: &[u8]) -> Option<Position> {
    use published_end as p;
    if bytes.len() != p::LEN
        || bytes[p::MAGIC..p::MAGIC + 4] != PUBLISHED_END_MAGIC
        || u32_at(bytes, p::VERSION) != PUBLISHED_END_VERSION
        || u32_at(bytes, p::CRC) != crc32fast::hash(&bytes[..p::CRC])
        || u32_at(bytes, p::RESERVED) != 0
    {
        return None;
    }
    Some(Position {
        lsn: Lsn(u64_at(bytes, p::LSN)),
        segment: SegmentId(u64_at(bytes, p::SEGMENT)),
        offset: u64_at(bytes, p::OFFSET),
    })
}

/// Record frame layout. A frame is a prefix (`body_len`, `crc32`) followed by the body: the
/// fixed record header fields and then the payload.
pub mod record {
    /// `body_len: u32`, the number of bytes after the prefix (fixed fields plus payload).
    pub const BODY_LEN: usize = 0;
    /// `crc32: u32` of the body.
    pub const CRC: usize = 4;
    /// `lsn: u64`
    pub const LSN: usize = 8;
    /// `stream: u64`
    pub const STREAM: usize = 16;
    /// `version: u64`
    pub const VERSION: usize = 24;
    /// `timestamp_us: u64`, microseconds since the Unix epoch, as the writer saw them.
    pub const TIMESTAMP_US: usize = 32;
    /// `payload_len: u32`
    pub const PAYLOAD_LEN: usize = 40;
    /// `batch_left: u32`, how many records of the same atomic batch follow this one. The last
    /// record of a batch has 0; a batch is durable only once its last record is.
    pub const BATCH_LEFT: usize = 44;
    /// `kind: u8`, see [`crate::RecordKind`].
    pub const KIND: usize = 48;
    /// `class: u8`, the durability class it was appended with, see [`crate::RecordClass`].
    pub const CLASS: usize = 49;
    /// `reserved: [u8; 6]`, zero.
    pub const RESERVED: usize = 50;
    /// Length of the prefix (`body_len` and `crc32`).
    pub const PREFIX_LEN: usize = 4 // body_len
        + 4; // crc32
    /// Length of everything before the payload.
    pub const HEADER_LEN: usize = PREFIX_LEN
        + 8 // lsn
        + 8 // stream
        + 8 // version
        + 8 // timestamp_us
        + 4 // payload_len
        + 4 // batch_left
        + 1 // kind
        + 1 // class
        + 6; // reserved
    const _: () = assert!(RESERVED + 6 == HEADER_LEN);
    const _: () = assert!(HEADER_LEN == 56);
}

/// Largest payload a record may carry. Bounded so that a corrupt length can never make a reader
/// allocate without limit, and so that a frame length always fits in `u32`.
pub const PAYLOAD_LEN_MAX: usize = 64 << 20;
const _: () = assert!(record::HEADER_LEN + PAYLOAD_LEN_MAX <= u32::MAX as usize);

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

/// The largest segment a header can describe: its capacity is a `u32`.
pub const SEGMENT_SIZE_BYTES_MAX: u64 = u32::MAX as u64;

/// Encodes the header of a segment starting at `first_lsn` whose file is created
/// `capacity_bytes` long (at most [`SEGMENT_SIZE_BYTES_MAX`]; callers check it first).
///
/// # Panics
/// If `capacity_bytes` does not fit the header.
#[must_use]
pub fn encode_segment_header(first_lsn: Lsn, capacity_bytes: u64) -> [u8; segment_header::LEN] {
    use segment_header as h;
    let capacity = u32::try_from(capacity_bytes).expect("segment sizes are checked by callers");
    let mut out = [0u8; h::LEN];
    out[h::MAGIC..h::MAGIC + 8].copy_from_slice(&SEGMENT_MAGIC);
    out[h::FORMAT_VERSION..h::FORMAT_VERSION + 4].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[h::CAPACITY_BYTES..h::CAPACITY_BYTES + 4].copy_from_slice(&capacity.to_le_bytes());
    out[h::FIRST_LSN..h::FIRST_LSN + 8].copy_from_slice(&first_lsn.0.to_le_bytes());
    let crc = crc32fast::hash(&out[..h::CRC]);
    out[h::CRC..h::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Why a segment header was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SegmentHeaderError {
    /// Fewer bytes than a header.
    #[error(
        "the segment is {len} bytes, shorter than its {}-byte header: it was cut short or \
         emptied, and whatever records it held are gone",
        segment_header::LEN
    )]
    Truncated {
        /// Bytes present.
        len: usize,
    },
    /// Not a Helios segment.
    #[error("wrong magic bytes {found:02x?} (not a Helios log segment)")]
    WrongMagic {
        /// What was found.
        found: [u8; 8],
    },
    /// Written by a newer (or unknown) format.
    #[error(
        "segment format version {found} is not supported (this build reads versions \
         {FORMAT_VERSION_OLDEST} to {FORMAT_VERSION})"
    )]
    UnsupportedVersion {
        /// Version found.
        found: u32,
    },
    /// A capacity that cannot hold even the header.
    #[error("segment header says the segment holds {capacity} bytes, less than its header")]
    BadCapacity {
        /// The capacity found.
        capacity: u32,
    },
    /// A reserved field is not zero.
    #[error("segment header has non-zero reserved bytes (not written by this format version)")]
    NonZeroReserved,
    /// The header's checksum does not match.
    #[error("segment header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    BadChecksum {
        /// Stored CRC.
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
}

/// What a segment header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment, named after the LSN it starts at.
    pub id: SegmentId,
    /// The format version it was written in, from [`FORMAT_VERSION_OLDEST`] to
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The file's length when it was created (format 2 and later; `None` in format 1, which
    /// did not record it).
    pub capacity_bytes: Option<u64>,
}

/// Decodes and checks a segment header.
///
/// # Errors
/// Any mismatch of length, magic, version or checksum.
pub fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, SegmentHeaderError> {
    use segment_header as h;
    if bytes.len() < h::LEN {
        return Err(SegmentHeaderError::Truncated { len: bytes.len() });
    }
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&bytes[h::MAGIC..h::MAGIC + 8]);
    if magic != SEGMENT_MAGIC {
        return Err(SegmentHeaderError::WrongMagic { found: magic });
    }
    let stored = u32_at(bytes, h::CRC);
    let computed = crc32fast::hash(&bytes[..h::CRC]);
    if stored != computed {
        return Err(SegmentHeaderError::BadChecksum { stored, computed });
    }
    let version = u32_at(bytes, h::FORMAT_VERSION);
    if !(FORMAT_VERSION_OLDEST..=FORMAT_VERSION).contains(&version) {
        return Err(SegmentHeaderError::UnsupportedVersion { found: version });
    }
    let capacity = u32_at(bytes, h::CAPACITY_BYTES);
    let capacity_bytes = match version {
        // Reserved in format 1.
        1 if capacity != 0 => return Err(SegmentHeaderError::NonZeroReserved),
        1 => None,
        _ if u64::from(capacity) < h::LEN as u64 => {
            return Err(SegmentHeaderError::BadCapacity { capacity });
        }
        _ => Some(u64::from(capacity)),
    };
    if u32_at(bytes, h::RESERVED_B) != 0 {
        return Err(SegmentHeaderError::NonZeroReserved);
    }
    Ok(SegmentHeader {
        id: SegmentId(u64_at(bytes, h::FIRST_LSN)),
        format_version: version,
        capacity_bytes,
    })
}

/// The fixed fields of a record, as the writer supplies them (the LSN and timestamp are
/// assigned by the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// The record's LSN.
    pub lsn: Lsn,
    /// The stream it belongs to.
    pub stream: StreamId,
    /// Its version in that stream (0 for [`RecordKind::CreateStream`]).
    pub version: Version,
    /// Microseconds since the Unix epoch when it was appended.
    pub timestamp_us: u64,
    /// Records of the same atomic batch that follow this one.
    pub batch_left: u32,
    /// What the record means.
    pub kind: RecordKind,
    /// The durability class it was appended with.
    pub class: RecordClass,
}

/// A decoded, checksum-verified record borrowing its payload from the buffer it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The fixed fields.
    pub header: RecordHeader,
    /// The payload bytes.
    pub payload: &'a [u8],
}

/// Total frame length of a record carrying `payload_len` bytes.
#[must_use]
pub const fn frame_len(payload_len: usize) -> usize {
    record::HEADER_LEN + payload_len
}

/// Appends one encoded frame to `out`.
///
/// # Panics
/// If `payload` is longer than [`PAYLOAD_LEN_MAX`]; callers check this first and return an
/// error to their user.
pub fn encode_record(out: &mut Vec<u8>, header: &RecordHeader, payload: &[u8]) {
    use record as r;
    assert!(
        payload.len() <= PAYLOAD_LEN_MAX,
        "payload length checked by the caller"
    );
    let start = out.len();
    let body_len = frame_len(payload.len()) - r::PREFIX_LEN;
    out.resize(start + r::HEADER_LEN, 0);
    let h = &mut out[start..];
    #[expect(
        clippy::cast_possible_truncation,
        reason = "bounded by PAYLOAD_LEN_MAX above"
    )]
    {
        h[r::BODY_LEN..r::BODY_LEN + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
        h[r::PAYLOAD_LEN..r::PAYLOAD_LEN + 4]
            .copy_from_slice(&(payload.len() as u32).to_le_bytes());
    }
    h[r::LSN..r::LSN + 8].copy_from_slice(&header.lsn.0.to_le_bytes());
    h[r::STREAM..r::STREAM + 8].copy_from_slice(&header.stream.0.to_le_bytes());
    h[r::VERSION..r::VERSION + 8].copy_from_slice(&header.version.0.to_le_bytes());
    h[r::TIMESTAMP_US..r::TIMESTAMP_US + 8].copy_from_slice(&header.timestamp_us.to_le_bytes());
    h[r::BATCH_LEFT..r::BATCH_LEFT + 4].copy_from_slice(&header.batch_left.to_le_bytes());
    h[r::KIND] = header.kind.to_byte();
    h[r::CLASS] = header.class.to_byte();
    out.extend_from_slice(payload);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&out[start + r::PREFIX_LEN..]);
    let crc = hasher.finalize();
    out[start + r::CRC..start + r::CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Why bytes at a frame position are not a valid record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes remain than the frame claims (or than a frame header).
    #[error("frame needs {needed} bytes but only {available} remain")]
    Truncated {
        /// Bytes the frame needs.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The body length cannot belong to a valid frame.
    #[error("implausible frame body length {body_len}")]
    BadLength {
        /// The stored body length.
        body_len: u32,
    },
    /// The checksum does not match the body.
    #[error("record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    BadChecksum {
        /// Stored CRC.
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
    /// The checksum matched but a field holds a value no writer produces.
    #[error("record field {field} holds invalid value {value}")]
    BadField {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
}

/// What lies at a frame position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A valid record, `len` bytes long in total.
    Record(RecordRef<'a>, usize),
    /// Zero bytes where a frame would start: nothing was written here.
    End,
}

/// Decodes the frame at the start of `bytes`.
///
/// # Errors
/// [`FrameError`] when the bytes are not a complete, checksum-valid record.
pub fn decode_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    use record as r;
    if bytes.len() < r::PREFIX_LEN {
        if bytes.iter().all(|&b| b == 0) {
            return Ok(Frame::End);
        }
        return Err(FrameError::Truncated {
            needed: r::PREFIX_LEN as u64,
            available: bytes.len() as u64,
        });
    }
    let body_len = u32_at(bytes, r::BODY_LEN);
    if body_len == 0 {
        // The end of the written part is a whole zero header, not just a zero length: a
        // damaged length in front of a real record must not pass for the end of the log.
        let header = &bytes[..bytes.len().min(r::HEADER_LEN)];
        if header.iter().all(|&b| b == 0) {
            return Ok(Frame::End);
        }
        return Err(FrameError::BadLength { body_len });
    }
    let body_len_usize = body_len as usize;
    if !(r::HEADER_LEN - r::PREFIX_LEN..=r::HEADER_LEN - r::PREFIX_LEN + PAYLOAD_LEN_MAX)
        .contains(&body_len_usize)
    {
        return Err(FrameError::BadLength { body_len });
    }
    let total = r::PREFIX_LEN + body_len_usize;
    if bytes.len() < total {
        return Err(FrameError::Truncated {
            needed: total as u64,
            available: bytes.len() as u64,
        });
    }
    let stored = u32_at(bytes, r::CRC);
    let computed = crc32fast::hash(&bytes[r::PREFIX_LEN..total]);
    if stored != computed {
        return Err(FrameError::BadChecksum { stored, computed });
    }
    let payload_len = u32_at(bytes, r::PAYLOAD_LEN) as usize;
    if frame_len(payload_len) != total {
        return Err(FrameError::BadField {
            field: "payload_len",
            value: payload_len as u64,
        });
    }
    let kind = RecordKind::from_byte(bytes[r::KIND]).ok_or(FrameError::BadField {
        field: "kind",
        value: u64::from(bytes[r::KIND]),
    })?;
    let class = RecordClass::from_byte(bytes[r::CLASS]).ok_or(FrameError::BadField {
        field: "class",
        value: u64::from(bytes[r::CLASS]),
    })?;
    // Reserved bytes are zero in every record this format writes; anything else is not a
    // record of this version (and would not survive a re-encode unchanged).
    if let Some(&byte) = bytes[r::RESERVED..r::HEADER_LEN].iter().find(|&&b| b != 0) {
        return Err(FrameError::BadField {
            field: "reserved",
            value: u64::from(byte),
        });
    }
    let lsn = u64_at(bytes, r::LSN);
    if lsn == 0 {
        return Err(FrameError::BadField {
            field: "lsn",
            value: 0,
        });
    }
    let header = RecordHeader {
        lsn: Lsn(lsn),
        stream: StreamId(u64_at(bytes, r::STREAM)),
        version: Version(u64_at(bytes, r::VERSION)),
        timestamp_us: u64_at(bytes, r::TIMESTAMP_US),
        batch_left: u32_at(bytes, r::BATCH_LEFT),
        kind,
        class,
    };
    Ok(Frame::Record(
        RecordRef {
            header,
            payload: &bytes[r::HEADER_LEN..total],
        },
        total,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(lsn: u64) -> RecordHeader {
        RecordHeader {
            lsn: Lsn(lsn),
            stream: StreamId(7),
            version: Version(3),
            timestamp_us: 42,
            batch_left: 0,
            kind: RecordKind::Event,
            class: RecordClass::Critical,
        }
    }

    #[test]
    fn record_round_trips() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &header(5), b"hello");
        assert_eq!(buf.len(), frame_len(5));
        match decode_frame(&buf) {
            Ok(Frame::Record(rec, len)) => {
                assert_eq!(len, buf.len());
                assert_eq!(rec.header, header(5));
                assert_eq!(rec.payload, b"hello");
            }
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &header(9), b"payload bytes");
        for bit in 0..buf.len() * 8 {
            let mut damaged = buf.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(decode_frame(&damaged), Ok(Frame::Record(..))),
                "flip of bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn zeros_are_the_end_and_prefixes_are_truncated() {
        assert_eq!(decode_frame(&[0u8; 100]), Ok(Frame::End));
        assert_eq!(decode_frame(&[]), Ok(Frame::End));
        let mut buf = Vec::new();
        encode_record(&mut buf, &header(1), b"abc");
        for cut in 1..buf.len() {
            assert!(
                matches!(decode_frame(&buf[..cut]), Err(FrameError::Truncated { .. })),
                "prefix of {cut} bytes"
            );
        }
    }

    #[test]
    fn a_zeroed_length_before_a_record_is_not_the_end() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &header(3), b"abc");
        buf[..4].fill(0);
        assert_eq!(
            decode_frame(&buf),
            Err(FrameError::BadLength { body_len: 0 })
        );
    }

    /// Found by the `record_decoder` fuzz target: a frame with a valid CRC but non-zero
    /// reserved bytes was accepted, and re-encoding it gave different bytes.
    #[test]
    fn non_zero_reserved_bytes_are_rejected() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &header(1), b"set k v");
        buf[record::RESERVED + 4] = 0xb5;
        let crc = crc32fast::hash(&buf[record::PREFIX_LEN..]);
        buf[record::CRC..record::CRC + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            decode_frame(&buf),
            Err(FrameError::BadField {
                field: "reserved",
                ..
            })
        ));
        let mut h = encode_segment_header(Lsn(1), 4096);
        h[segment_header::RESERVED_B] = 1;
        let crc = crc32fast::hash(&h[..segment_header::CRC]);
        h[segment_header::CRC..segment_header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_segment_header(&h),
            Err(SegmentHeaderError::NonZeroReserved)
        );
    }

    #[test]
    fn absurd_lengths_are_rejected_without_allocation() {
        let mut buf = vec![0u8; 64];
        buf[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_frame(&buf),
            Err(FrameError::BadLength { .. })
        ));
        buf[..4].copy_from_slice(&3u32.to_le_bytes());
        assert!(matches!(
            decode_frame(&buf),
            Err(FrameError::BadLength { .. })
        ));
    }

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let h = encode_segment_header(Lsn(77), 1 << 20);
        assert_eq!(
            decode_segment_header(&h),
            Ok(SegmentHeader {
                id: SegmentId(77),
                format_version: FORMAT_VERSION,
                capacity_bytes: Some(1 << 20),
            })
        );
        // Every version from the oldest read is accepted, the next one refused.
        let with_version = |version: u32| {
            let mut h = h;
            h[segment_header::FORMAT_VERSION..segment_header::FORMAT_VERSION + 4]
                .copy_from_slice(&version.to_le_bytes());
            if version == 1 {
                // Format 1 had no capacity: the field was reserved, zero.
                h[segment_header::CAPACITY_BYTES..segment_header::CAPACITY_BYTES + 4].fill(0);
            }
            let crc = crc32fast::hash(&h[..segment_header::CRC]);
            h[segment_header::CRC..segment_header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
            h
        };
        for version in FORMAT_VERSION_OLDEST..=FORMAT_VERSION {
            assert_eq!(
                decode_segment_header(&with_version(version)).map(|h| h.format_version),
                Ok(version)
            );
        }
        for version in [0, FORMAT_VERSION + 1] {
            assert_eq!(
                decode_segment_header(&with_version(version)),
                Err(SegmentHeaderError::UnsupportedVersion { found: version })
            );
        }
        let mut bad = h;
        bad[0] = b'X';
        assert!(matches!(
            decode_segment_header(&bad),
            Err(SegmentHeaderError::WrongMagic { .. })
        ));
        let mut bad = h;
        bad[segment_header::FIRST_LSN] ^= 1;
        assert!(matches!(
            decode_segment_header(&bad),
            Err(SegmentHeaderError::BadChecksum { .. })
        ));
        assert!(matches!(
            decode_segment_header(&h[..10]),
            Err(SegmentHeaderError::Truncated { len: 10 })
        ));
    }
}
