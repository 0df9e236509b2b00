//! The catalog snapshot: every stream as of the end of the newest indexed log segment, in one
//! file (`CATALOG` at the store's root) that a reader in another process loads instead of
//! reading the whole log. With it and the segment indexes, a read-only open reads only the
//! segments after that one.
//!
//! The writer replaces it (a temporary name, synced, renamed over the old one, the directory
//! synced) each time the segment indexes cover a newer segment, so a reader that opens the file
//! gets one whole snapshot, old or new. It is derived data: a reader without one (or with a
//! damaged one, or one of another store) reads the whole log instead.
//!
//! Layout (little-endian; `docs/FORMAT.md` draws it):
//!
//! ```text
//! header  64 B  magic "HLXCATLG", version u32, stream count u32, store id u64, the covered
//!               segment's last record: lsn u64, segment u64, offset u64, frame length u32,
//!               body CRC u32, body length u64, header CRC u32 at 60
//! body          per stream, ids 1, 2, ... in order: created lsn u64, fork source u64 (0: not a
//!               fork), fork version u64, deletion lsn u64 (0: live), head u64, name length
//!               u32, name bytes
//! ```
//!
//! Invariant: the snapshot is exact at the record it names: the streams created at or before
//! it (a prefix of the ids, which are assigned in log order), each with the head, fork and
//! deletion it had right after that record.

use std::path::Path;

use helios_log::storage::ReadOnlyBytes;
use helios_log::{Location, Lsn, SegmentId, Storage, StreamId, Version};

use crate::catalog::{Catalog, Fork, NewStream};
use crate::error::Result;

/// The file's name in the store directory.
pub(crate) const CATALOG_FILE: &str = "CATALOG";
const CATALOG_TMP: &str = "CATALOG.tmp";
const MAGIC: &[u8; 8] = b"HLXCATLG";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 64;
const FIXED_LEN: usize = 5 * 8 + 4;

/// One stream of a snapshot, read in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotStream<'a> {
    pub(crate) name: &'a str,
    pub(crate) created: Lsn,
    pub(crate) fork: Option<Fork>,
    pub(crate) deleted: Option<Lsn>,
    pub(crate) head: Version,
}

/// A checked snapshot, as of `through`: its streams, ids `1..`, are read from the file's map
/// ([`Snapshot::streams`]), not copied.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) through: Location,
    bytes: ReadOnlyBytes,
    count: usize,
}

impl Snapshot {
    /// The streams, in id order.
    pub(crate) fn streams(&self) -> impl Iterator<Item = SnapshotStream<'_>> + '_ {
        let body = &self.bytes[HEADER_LEN..];
        let mut at = 0usize;
        (0..self.count).map_while(move |_| {
            let stream = stream_at(body, at)?;
            at += FIXED_LEN + stream.name.len();
            Some(stream)
        })
    }

    /// How many streams it holds.
    pub(crate) fn len(&self) -> usize {
        self.count
    }
}

/// The stream whose fields start at `at` in a snapshot's body, if they are all there.
fn stream_at(body: &[u8], at: usize) -> Option<SnapshotStream<'_>> {
    let field = |i: usize| u64_at(body, at + 8 * i);
    let (created, source, fork_at, deleted, head) =
        (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
    let len = u32_at(body, at + 40)? as usize;
    let name = body.get(at + FIXED_LEN..at.checked_add(FIXED_LEN + len)?)?;
    Some(SnapshotStream {
        name: std::str::from_utf8(name).ok()?,
        created: Lsn(created),
        fork: (source != 0).then_some(Fork {
            source: StreamId(source),
            at: Version(fork_at),
        }),
        deleted: (deleted != 0).then_some(Lsn(deleted)),
        head: Version(head),
    })
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The snapshot of `catalog` as of `through`, the last record of a segment the log's indexes
/// now cover: right after [`Catalog::drain_indexed`] of that segment, each stream's indexed
/// head is its head at `through`.
pub(crate) fn encode(catalog: &Catalog, store_id: u64, through: Location) -> Vec<u8> {
    let mut body = Vec::new();
    let mut count = 0u32;
    for st in &catalog.streams {
        if st.created > through.lsn {
            break; // Ids are in log order: every later stream is newer too.
        }
        let (source, at) = st.fork.map_or((0, 0), |f| (f.source.0, f.at.0));
        let deleted = st
            .deleted
            .filter(|lsn| *lsn <= through.lsn)
            .map_or(0, |l| l.0);
        for field in [st.created.0, source, at, deleted, st.indexed_head.0] {
            body.extend_from_slice(&field.to_le_bytes());
        }
        let name = st.name.as_bytes();
        body.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_le_bytes());
        body.extend_from_slice(name);
        count += 1;
    }
    let mut out = vec![0u8; HEADER_LEN];
    out[0..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&count.to_le_bytes());
    out[16..24].copy_from_slice(&store_id.to_le_bytes());
    out[24..32].copy_from_slice(&through.lsn.0.to_le_bytes());
    out[32..40].copy_from_slice(&through.segment.0.to_le_bytes());
    out[40..48].copy_from_slice(&through.offset.to_le_bytes());
    out[48..52].copy_from_slice(&through.frame_len_bytes.to_le_bytes());
    out[52..56].copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
    // Bytes 56..60: the body's length in units of one byte would not fit u32 for huge
    // catalogs; the length is implied by the file's, and the CRC covers the body.
    let crc = crc32fast::hash(&out[..60]);
    out[60..64].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Checks `bytes` as a snapshot of store `store_id`, every stream in it included; `None` when
/// they are not a whole, valid one.
pub(crate) fn decode(bytes: ReadOnlyBytes, store_id: u64) -> Option<Snapshot> {
    let through = checked(&bytes, store_id)?;
    let (head, body) = bytes.split_at(HEADER_LEN);
    let count = u32_at(head, 12)? as usize;
    let mut at = 0usize;
    for k in 0..count {
        let stream = stream_at(body, at)?;
        let id = k as u64 + 1;
        // A fork's source is an older stream; nothing was created after the snapshot's end.
        if stream.fork.is_some_and(|f| f.source.0 >= id) || stream.created > through.lsn {
            return None;
        }
        at += FIXED_LEN + stream.name.len();
    }
    (at == body.len()).then_some(Snapshot {
        through,
        bytes,
        count,
    })
}

/// Fills an empty catalog with the snapshot's streams.
///
/// # Errors
/// Two live streams of one name (a snapshot that passed its checksums but lies).
pub(crate) fn load(catalog: &mut Catalog, snapshot: &Snapshot) -> Result<()> {
    // Sized once: growing a map of 100,000 names by doubling rehashes it about 17 times.
    catalog.streams.reserve(snapshot.len());
    catalog.by_name.reserve(snapshot.len());
    for (k, stream) in snapshot.streams().enumerate() {
        catalog.add_stream(NewStream {
            id: StreamId(k as u64 + 1),
            name: stream.name,
            created: stream.created,
            head: stream.head,
            fork: stream.fork,
            deleted: stream.deleted,
        })?;
    }
    Ok(())
}

/// Reads the store's snapshot, if it has a valid one of this store.
pub(crate) fn read(storage: &dyn Storage, dir: &Path, store_id: u64) -> Option<Snapshot> {
    let bytes = storage.map_readonly(&dir.join(CATALOG_FILE)).ok()?;
    decode(bytes, store_id)
}

/// The record the store's snapshot covers the log up to, if it has a whole one of store
/// `store_id` (both checksums are checked, the streams not decoded): what `verify` takes as
/// durable.
pub(crate) fn covered(storage: &dyn Storage, dir: &Path, store_id: u64) -> Option<Location> {
    checked(
        &storage.map_readonly(&dir.join(CATALOG_FILE)).ok()?,
        store_id,
    )
}

/// The record a snapshot covers, if `bytes` are a whole one of store `store_id`: its header
/// and both checksums checked, its streams not decoded.
fn checked(bytes: &[u8], store_id: u64) -> Option<Location> {
    let head = bytes.get(..HEADER_LEN)?;
    let whole = &head[0..8] == MAGIC
        && crc32fast::hash(&head[..60]) == u32_at(head, 60)?
        && u32_at(head, 8)? == VERSION
        && u64_at(head, 16)? == store_id
        && head[56..60] == [0; 4]
        && crc32fast::hash(&bytes[HEADER_LEN..]) == u32_at(head, 52)?;
    whole.then_some(Location {
        lsn: Lsn(u64_at(head, 24)?),
        segment: SegmentId(u64_at(head, 32)?),
        offset: u64_at(head, 40)?,
        frame_len_bytes: u32_at(head, 48)?,
    })
}

/// Replaces the store's snapshot with `bytes`, whole.
///
/// # Errors
/// I/O errors naming the file.
pub(crate) fn write(storage: &dyn Storage, dir: &Path, bytes: &[u8]) -> Result<()> {
    helios_log::write_whole(storage, dir, CATALOG_TMP, CATALOG_FILE, bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_exactly_at_its_record_and_rejects_damage() {
        let mut catalog = Catalog::default();
        let streams = [
            ("a", 1, None, None, 7),
            ("b", 2, None, Some(40), 3),
            (
                "fork of a",
                9,
                Some(Fork {
                    source: StreamId(1),
                    at: Version(5),
                }),
                None,
                8,
            ),
            ("after", 60, None, None, 2),
        ];
        for (i, (name, created, fork, deleted, head)) in streams.into_iter().enumerate() {
            catalog
                .add_stream(NewStream {
                    id: StreamId(i as u64 + 1),
                    name,
                    created: Lsn(created),
                    head: Version(head),
                    fork,
                    deleted: deleted.map(Lsn),
                })
                .expect("add");
        }
        let through = Location {
            lsn: Lsn(50),
            segment: SegmentId(30),
            offset: 4000,
            frame_len_bytes: 77,
        };
        let bytes = encode(&catalog, 99, through);
        let of = |b: &[u8]| ReadOnlyBytes::new(b.to_vec());
        let snapshot = decode(of(&bytes), 99).expect("valid");
        assert_eq!(snapshot.through, through);
        let streams: Vec<SnapshotStream<'_>> = snapshot.streams().collect();
        let names: Vec<&str> = streams.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            ["a", "b", "fork of a"],
            "created after its record: left out"
        );
        assert_eq!(streams[1].deleted, Some(Lsn(40)));
        assert_eq!(streams[2].fork.map(|f| f.at), Some(Version(5)));
        assert_eq!(streams[2].head, Version(8));
        assert!(decode(of(&bytes), 98).is_none(), "another store's");
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x20;
            assert!(decode(of(&bad), 99).is_none(), "a flip at byte {at}");
        }
        assert!(decode(of(&bytes[..bytes.len() - 1]), 99).is_none());
    }
}
