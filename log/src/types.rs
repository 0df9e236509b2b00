//! Identities shared by the log and everything above it.
//!
//! Each identity is a newtype so that an LSN can never be passed where a version is expected.

use std::fmt;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw integer.
            #[must_use]
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_newtype!(
    /// Log sequence number: the position of a record in the global log. The first record has LSN
    /// 1; LSNs increase by exactly one per record, across segments, with no gaps.
    Lsn,
    "lsn "
);
id_newtype!(
    /// A stream's numeric identity, assigned when the stream is created. Stream ids start at 1.
    StreamId,
    "stream #"
);
id_newtype!(
    /// A version within one stream: the first event of a stream is version 1, and version 0 is
    /// the empty stream before any event.
    Version,
    "v"
);
id_newtype!(
    /// A segment's identity: the LSN of the first record it holds (or will hold), which is also
    /// its file name.
    SegmentId,
    "segment "
);

impl Lsn {
    /// The LSN before the first record: "nothing yet".
    pub const ZERO: Lsn = Lsn(0);
}

impl Version {
    /// The version of a stream that has no event.
    pub const ZERO: Version = Version(0);
}

/// The durability class a record was appended with, as its header stores it. Only the two
/// classes that reach the log exist here; the engine's `Durability` adds the speculative one,
/// whose events never reach the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordClass {
    /// Returns only after the event is on stable storage (fdatasync). Concurrent critical appends
    /// share one sync (group commit). Never lost once acknowledged.
    Critical,
    /// Returns after a buffered write; a background flusher syncs it within the sync window.
    /// After a crash at most that window is lost, and what survives is a prefix of the log.
    Normal,
}

impl RecordClass {
    /// The byte stored in a record header.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        match self {
            RecordClass::Critical => 1,
            RecordClass::Normal => 2,
        }
    }

    /// Parses the byte stored in a record header.
    #[must_use]
    pub const fn from_byte(byte: u8) -> Option<RecordClass> {
        match byte {
            1 => Some(RecordClass::Critical),
            2 => Some(RecordClass::Normal),
            _ => None,
        }
    }
}

impl fmt::Display for RecordClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordClass::Critical => "critical",
            RecordClass::Normal => "normal",
        })
    }
}

/// What a record means to the layers above the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A user event of a stream, at a version.
    Event,
    /// The creation of a stream: the payload is the stream's name and the version is 0. Written
    /// in the same batch as the stream's first event (or alone for an explicit creation), so the
    /// name-to-id mapping is itself in the log and can be rebuilt from it.
    CreateStream,
    /// The deletion of a stream (segment format 2 and later): the stream is the one deleted,
    /// the version its head then, the payload empty. Its name is free again; its events stay
    /// in the log, still read by the streams forked from it.
    DeleteStream,
    /// The creation of a stream as a fork of another (segment format 2 and later): the stream
    /// is the new one, the version the fork point `at`, and the payload the source stream's id
    /// (`u64`, little-endian) followed by the new stream's name. Versions `1..=at` of the new
    /// stream are the source's, shared rather than copied.
    ForkStream,
}

impl RecordKind {
    /// The byte stored in a record header.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        match self {
            RecordKind::Event => 1,
            RecordKind::CreateStream => 2,
            RecordKind::DeleteStream => 3,
            RecordKind::ForkStream => 4,
        }
    }

    /// Parses the byte stored in a record header.
    #[must_use]
    pub const fn from_byte(byte: u8) -> Option<RecordKind> {
        match byte {
            1 => Some(RecordKind::Event),
            2 => Some(RecordKind::CreateStream),
            3 => Some(RecordKind::DeleteStream),
            4 => Some(RecordKind::ForkStream),
            _ => None,
        }
    }
}

/// Where a record lives: enough to read it back with one positioned read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The record's LSN.
    pub lsn: Lsn,
    /// The segment holding it.
    pub segment: SegmentId,
    /// Byte offset of the frame in the segment file.
    pub offset: u64,
    /// Length of the whole frame in bytes (header and payload).
    pub frame_len_bytes: u32,
}

impl Location {
    /// Byte offset just past the frame. Saturating: a location read from a damaged (or
    /// forged) index may hold any offset, and then points past every segment's end, which the
    /// read that uses it refuses.
    #[must_use]
    pub const fn end(&self) -> u64 {
        self.offset.saturating_add(self.frame_len_bytes as u64)
    }
}

/// A position in the log between two records: everything up to and including `lsn` lies before
/// `offset` in `segment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// LSN of the last record before this position, or [`Lsn::ZERO`].
    pub lsn: Lsn,
    /// Segment the position is in.
    pub segment: SegmentId,
    /// Byte offset in that segment's file.
    pub offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `store_image`: an index entry forged with an offset near `u64::MAX` made a
    /// read's `end()` overflow (a panic in a build with overflow checks).
    #[test]
    fn a_locations_end_saturates() {
        let forged = Location {
            lsn: Lsn(1),
            segment: SegmentId(1),
            offset: u64::MAX - 15,
            frame_len_bytes: 60,
        };
        assert_eq!(forged.end(), u64::MAX);
        let real = Location {
            offset: 32,
            ..forged
        };
        assert_eq!(real.end(), 92);
    }
}
