//! The catalog snapshot: every stream as of one durable record of the log, in one file
//! (`CATALOG` at the store's root) that an open reads in place instead of reading the log up to
//! that record. With it and the segment indexes, an open reads only the records after it.
//!
//! The writer replaces it (a temporary name, synced, renamed over the old one, the directory
//! synced), so a reader that opens the file gets one whole snapshot, old or new. It is derived
//! data: a reader without one (or with a damaged one, or one of another store) reads the whole
//! log instead.
//!
//! An open checks the header and the table of block checksums, and nothing per stream: a
//! stream's record is read (and its 512-byte blocks checked, once each) when the catalog first
//! asks for it, and a name is found by binary search over a table of name hashes, so opening
//! costs the same at 1,000 streams and at 1,000,000 (checking the whole file was most of an
//! open at 200,000 streams). A block that fails its checksum makes what it holds unreadable:
//! the snapshot remembers where ([`Snapshot::damage`]), and the engine stops trusting it (see
//! `Catalog::damage`).
//!
//! Layout (little-endian; `docs/FORMAT.md` draws it):
//!
//! ```text
//! header  128 B  magic "HLXCATLG", version u32 = 4, stream count u64, store id u64, the
//!                record covered (lsn, segment, offset u64, frame length u32), names length
//!                u64, CRC u32 of the block checksums, due count u64, checkpoint
//!                configuration u64, header CRC u32 at 124
//! records        per stream, ids 1, 2, ... in order, 48 B: created lsn, fork source (0: not a
//!                fork), fork version, deletion lsn (0: live), head, name offset (u64 each)
//! hashes         per stream, 16 B: xxh3 of its name u64, id u64, sorted by (hash, id)
//! names          per stream: length u16, UTF-8 bytes
//! due            stream ids u64, ascending: the streams that may have a checkpoint due
//! blocks         CRC-32 u32 of each 512-byte block of the body (records to due; the last
//!                block may be shorter)
//! ```
//!
//! Invariants:
//! - The snapshot is exact at the record it names: the streams created at or before it (a
//!   prefix of the ids, which are assigned in log order), each with the head, fork and
//!   deletion it had right after that record.
//! - Every stream with a checkpoint due that has no record after the snapshot's is in `due`,
//!   as long as the packs are whole and the checkpoint configuration (level policy, machines)
//!   is the one the header names: a stream becomes due only by an event then, and the writer
//!   lists every stream it holds in memory (all it changed) besides those it found due at
//!   open. So a writer's open checks the checkpoints of those streams only.

use std::path::Path;

use std::sync::atomic::{AtomicU64, Ordering};

use helios_log::storage::ReadOnlyBytes;
use helios_log::storage::search::lower_bound_spread;
use helios_log::{Location, Lsn, SegmentId, Storage, StreamId, Version};

use crate::catalog::{Catalog, Fork, STREAM_NAME_LEN_MAX};
use crate::error::Result;

/// The file's name in the store directory.
pub(crate) const CATALOG_FILE: &str = "CATALOG";
const CATALOG_TMP: &str = "CATALOG.tmp";
const MAGIC: &[u8; 8] = b"HLXCATLG";
const VERSION: u32 = 4;
const HEADER_LEN: usize = 128;
/// Bytes 0..124 are covered by the header's CRC, at 124.
const HEADER_CRC_AT: usize = 124;
const RECORD_LEN: usize = 48;
const HASH_LEN: usize = 16;
/// The body (everything between the header and the block checksums) is checked in blocks of
/// this many bytes, each at its first read: small, so that a lookup checks little more than it
/// reads (a stream's first lookup touches a few blocks).
const BLOCK: usize = 512;

/// One stream of a snapshot, read in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotStream<'a> {
    pub(crate) name: &'a str,
    pub(crate) created: Lsn,
    pub(crate) fork: Option<Fork>,
    pub(crate) deleted: Option<Lsn>,
    pub(crate) head: Version,
}

/// A snapshot whose header and block checksums passed, as of `through`: its streams, ids
/// `1..=len()`, are read from the file's map when asked for, not copied, each block of the
/// body checked at its first read.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) through: Location,
    bytes: ReadOnlyBytes,
    count: u64,
    names_at: usize,
    due_at: usize,
    due_count: u64,
    /// Where the body ends and the block checksums start.
    blocks_at: usize,
    /// One bit per block: checked and found whole.
    checked: Box<[AtomicU64]>,
    /// The file offset of the first block found damaged, `u64::MAX` while none is.
    damaged_at: AtomicU64,
    /// The checkpoint configuration of the writer that wrote it (see `Plugins::checkpoint_config`).
    pub(crate) config: u64,
}

impl Snapshot {
    /// The body's bytes `at..at + len` (file offsets), each block they touch checked first
    /// (once); `None` if they lie outside the body or a block fails its checksum (then
    /// [`Snapshot::damage`] says where).
    fn body(&self, at: usize, len: usize) -> Option<&[u8]> {
        let end = at.checked_add(len)?;
        if at < HEADER_LEN || end > self.blocks_at {
            return None;
        }
        if len > 0 {
            for block in (at - HEADER_LEN) / BLOCK..=(end - 1 - HEADER_LEN) / BLOCK {
                self.check_block(block)?;
            }
        }
        self.bytes.get(at..end)
    }

    /// Checks body block `block` against its checksum, unless it was already found whole.
    fn check_block(&self, block: usize) -> Option<()> {
        let (word, bit) = (&self.checked[block / 64], 1u64 << (block % 64));
        if word.load(Ordering::Acquire) & bit != 0 {
            return Some(());
        }
        let from = HEADER_LEN + block * BLOCK;
        let bytes = &self.bytes[from..(from + BLOCK).min(self.blocks_at)];
        let expected = u32_at(&self.bytes, self.blocks_at + 4 * block)?;
        if crc32fast::hash(bytes) == expected {
            word.fetch_or(bit, Ordering::AcqRel);
            Some(())
        } else {
            self.damaged_at.fetch_min(from as u64, Ordering::AcqRel);
            None
        }
    }

    fn u64_in_body(&self, at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(self.body(at, 8)?.try_into().ok()?))
    }

    /// The file offset of the first block found damaged so far, if any: what it held reads as
    /// absent, so nothing this snapshot says can be trusted to be complete any more.
    pub(crate) fn damage(&self) -> Option<u64> {
        let at = self.damaged_at.load(Ordering::Acquire);
        (at != u64::MAX).then_some(at)
    }

    /// The file's bytes, as mapped.
    pub(crate) fn bytes(&self) -> &ReadOnlyBytes {
        &self.bytes
    }

    /// How many streams it holds.
    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    /// Stream `id`, if the snapshot holds it and its record is sound (a fork's source is an
    /// older stream, nothing was created or deleted after the snapshot's record, nothing
    /// deleted before its creation, the name is in bounds and UTF-8). The checksums passed, so a record that is not sound comes from a writer's
    /// bug: it reads as absent, and `verify` reports it ([`Snapshot::check_records`]).
    pub(crate) fn stream(&self, id: StreamId) -> Option<SnapshotStream<'_>> {
        let index = id.0.checked_sub(1).filter(|&i| i < self.count)?;
        let at = HEADER_LEN + usize::try_from(index).ok()? * RECORD_LEN;
        let record = self.body(at, RECORD_LEN)?;
        let field = |i: usize| u64_at(record, 8 * i);
        let (created, source, fork_at, deleted, head, name_at) = (
            field(0)?,
            field(1)?,
            field(2)?,
            field(3)?,
            field(4)?,
            field(5)?,
        );
        let name_at = self.names_at.checked_add(usize::try_from(name_at).ok()?)?;
        if name_at >= self.due_at {
            return None;
        }
        let len = usize::from(u16::from_le_bytes(self.body(name_at, 2)?.try_into().ok()?));
        let name = self.body(name_at + 2, len)?;
        let stream = SnapshotStream {
            name: std::str::from_utf8(name).ok()?,
            created: Lsn(created),
            fork: (source != 0).then_some(Fork {
                source: StreamId(source),
                at: Version(fork_at),
            }),
            deleted: (deleted != 0).then_some(Lsn(deleted)),
            head: Version(head),
        };
        let sound = len <= STREAM_NAME_LEN_MAX
            && stream.fork.is_none_or(|f| f.source < id)
            && stream.created <= self.through.lsn
            && stream
                .deleted
                .is_none_or(|d| stream.created < d && d <= self.through.lsn);
        sound.then_some(stream)
    }

    /// The ids of the streams named `name`, deleted ones included: a search of the name hashes,
    /// then a comparison of each candidate's name.
    pub(crate) fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = StreamId> + 'a {
        self.named_streams(name).map(|(id, _)| id)
    }

    /// [`Snapshot::named`], each id with its record (read once, for the name's comparison).
    pub(crate) fn named_streams<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = (StreamId, SnapshotStream<'a>)> + use<'a, 'n> {
        let hash = name_hash(name);
        let table = HEADER_LEN + self.records_len();
        let entry = move |k: u64| -> Option<(u64, u64)> {
            let at = table + usize::try_from(k).ok()? * HASH_LEN;
            let entry = self.body(at, HASH_LEN)?;
            Some((u64_at(entry, 0)?, u64_at(entry, 8)?))
        };
        // The first entry whose hash is not below `hash`. Hashes spread evenly, so the search
        // starts where `hash` falls between the first and the last: a cold lookup checks a
        // few blocks of the table, not a bisection's ~17 (each checked, 512 bytes, at its
        // first read).
        let count = usize::try_from(self.count).unwrap_or(usize::MAX);
        let low = lower_bound_spread(count, |k| entry(k as u64).map(|(h, _)| h), hash) as u64;
        (low..self.count)
            .map_while(move |k| entry(k).filter(|&(h, _)| h == hash))
            .map(|(_, id)| StreamId(id))
            .filter_map(move |id| Some((id, self.stream(id)?)))
            .filter(move |(_, s)| s.name == name)
    }

    /// Checks every block, every record and the name table: what an open does not, to stay
    /// independent of the number of streams. `Err` names the first problem.
    pub(crate) fn check_records(&self) -> std::result::Result<(), String> {
        for block in 0..(self.blocks_at - HEADER_LEN).div_ceil(BLOCK) {
            if self.check_block(block).is_none() {
                return Err(format!(
                    "the block at byte {} fails its checksum",
                    HEADER_LEN + block * BLOCK
                ));
            }
        }
        let mut previous = (0u64, 0u64);
        for k in 0..self.count {
            let id = StreamId(k + 1);
            let stream = self
                .stream(id)
                .ok_or_else(|| format!("the record of {id} is not sound"))?;
            let at = HEADER_LEN + self.records_len() + usize::try_from(k).unwrap_or(0) * HASH_LEN;
            let entry = (
                self.u64_in_body(at).unwrap_or(0),
                self.u64_in_body(at + 8).unwrap_or(0),
            );
            if k > 0 && entry <= previous {
                return Err(format!("name hash entry {k} is out of order"));
            }
            previous = entry;
            if !self.named(stream.name).any(|found| found == id) {
                return Err(format!("the name of {id} is not in the name table"));
            }
        }
        Ok(())
    }

    /// The streams that may have a checkpoint due (see the module invariants).
    pub(crate) fn due(&self) -> impl Iterator<Item = StreamId> + '_ {
        (0..self.due_count).filter_map(move |k| {
            let at = self.due_at + usize::try_from(k).ok()? * 8;
            self.u64_in_body(at).map(StreamId)
        })
    }

    fn records_len(&self) -> usize {
        usize::try_from(self.count).unwrap_or(usize::MAX) * RECORD_LEN
    }
}

/// The hash that orders the name table: xxh3, stable across builds and platforms.
fn name_hash(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The snapshot of `catalog` as of `through`, a durable record after which no stream has an
/// unindexed location below it: right after [`Catalog::drain_indexed`] up to `through`, each
/// stream's indexed head is its head at `through`.
///
/// `due` lists the streams that may have a checkpoint due (see the module invariants).
pub(crate) fn encode(
    catalog: &Catalog,
    store_id: u64,
    through: Location,
    due: &std::collections::BTreeSet<StreamId>,
    config: u64,
) -> Vec<u8> {
    let mut records = Vec::new();
    let mut hashes = Vec::new();
    let mut names = Vec::new();
    // Every id, so that ids stay dense: a stream whose record in the snapshot this catalog was
    // read from is not sound (one that lied past its checksums) reads as absent, and is
    // written as an unnamed stream deleted at the record, which reads as absent too.
    let unsound = crate::catalog::StreamRef::unsound(through.lsn);
    for id in (1..=catalog.len()).map(StreamId) {
        let st = catalog.get(id).unwrap_or(unsound);
        if st.created > through.lsn {
            break; // Ids are in log order: every later stream is newer too.
        }
        let (source, at) = st.fork.map_or((0, 0), |f| (f.source.0, f.at.0));
        let deleted = st
            .deleted
            .filter(|lsn| *lsn <= through.lsn)
            .map_or(0, |l| l.0);
        let name_at = names.len() as u64;
        for field in [
            st.created.0,
            source,
            at,
            deleted,
            st.indexed_head.0,
            name_at,
        ] {
            records.extend_from_slice(&field.to_le_bytes());
        }
        // Names are at most `STREAM_NAME_LEN_MAX` bytes: the length fits.
        let name = st.name.as_bytes();
        names.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_le_bytes());
        names.extend_from_slice(name);
        hashes.push((name_hash(st.name), id.0));
    }
    hashes.sort_unstable();
    let count = hashes.len() as u64;
    let mut out = vec![0u8; HEADER_LEN];
    out.reserve(records.len() + hashes.len() * HASH_LEN + names.len());
    out.extend_from_slice(&records);
    for (hash, id) in hashes {
        out.extend_from_slice(&hash.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    out.extend_from_slice(&names);
    for id in due {
        out.extend_from_slice(&id.0.to_le_bytes());
    }
    let blocks = block_crcs(&out[HEADER_LEN..]);
    let blocks_crc = crc32fast::hash(&blocks);
    out.extend_from_slice(&blocks);
    let head = &mut out[..HEADER_LEN];
    head[0..8].copy_from_slice(MAGIC);
    head[8..12].copy_from_slice(&VERSION.to_le_bytes());
    head[16..24].copy_from_slice(&count.to_le_bytes());
    head[24..32].copy_from_slice(&store_id.to_le_bytes());
    head[32..40].copy_from_slice(&through.lsn.0.to_le_bytes());
    head[40..48].copy_from_slice(&through.segment.0.to_le_bytes());
    head[48..56].copy_from_slice(&through.offset.to_le_bytes());
    head[56..60].copy_from_slice(&through.frame_len_bytes.to_le_bytes());
    head[64..72].copy_from_slice(&(names.len() as u64).to_le_bytes());
    head[72..76].copy_from_slice(&blocks_crc.to_le_bytes());
    head[76..84].copy_from_slice(&(due.len() as u64).to_le_bytes());
    head[84..92].copy_from_slice(&config.to_le_bytes());
    let crc = crc32fast::hash(&head[..HEADER_CRC_AT]);
    head[HEADER_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The table of block checksums of `body`: the CRC-32 of each `BLOCK` bytes, little-endian.
fn block_crcs(body: &[u8]) -> Vec<u8> {
    body.chunks(BLOCK)
        .flat_map(|block| crc32fast::hash(block).to_le_bytes())
        .collect()
}

/// Checks `bytes` as a snapshot of store `store_id`: its header, its length and the block
/// checksums' own checksum, not its body (each block is checked at its first read, see
/// [`Snapshot::stream`]). `None` when they are not a whole, valid one.
pub(crate) fn decode(bytes: ReadOnlyBytes, store_id: u64) -> Option<Snapshot> {
    let (through, count, names_len, due_count) = checked(&bytes, store_id)?;
    let config = u64_at(&bytes, 84)?;
    let names_at = usize::try_from(count)
        .ok()?
        .checked_mul(RECORD_LEN + HASH_LEN)?
        .checked_add(HEADER_LEN)?;
    let due_at = names_at.checked_add(names_len)?;
    let due_len = usize::try_from(due_count).ok()?.checked_mul(8)?;
    let blocks_at = due_at.checked_add(due_len)?;
    let blocks = (blocks_at - HEADER_LEN).div_ceil(BLOCK);
    if blocks_at.checked_add(blocks.checked_mul(4)?)? != bytes.len()
        || crc32fast::hash(&bytes[blocks_at..]) != u32_at(&bytes, 72)?
    {
        return None;
    }
    Some(Snapshot {
        through,
        checked: (0..blocks.div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect(),
        damaged_at: AtomicU64::new(u64::MAX),
        bytes,
        count,
        names_at,
        due_at,
        due_count,
        blocks_at,
        config,
    })
}

/// Reads the store's snapshot, if it has a valid one of this store.
pub(crate) fn read(storage: &dyn Storage, dir: &Path, store_id: u64) -> Option<Snapshot> {
    let bytes = storage.map_readonly(&dir.join(CATALOG_FILE)).ok()?;
    decode(bytes, store_id)
}

/// The record the store's snapshot covers the log up to, if it has one of store `store_id`
/// whose header and block checksums hold (the streams not decoded): what `verify` takes as
/// durable.
pub(crate) fn covered(storage: &dyn Storage, dir: &Path, store_id: u64) -> Option<Location> {
    read(storage, dir, store_id).map(|s| s.through)
}

/// The record a snapshot covers, its stream count, the length of its names and its count of
/// due streams, if `bytes` are one of store `store_id` whose header holds.
fn checked(bytes: &[u8], store_id: u64) -> Option<(Location, u64, usize, u64)> {
    let head = bytes.get(..HEADER_LEN)?;
    let zero = |range: std::ops::Range<usize>| head[range].iter().all(|&b| b == 0);
    let whole = &head[0..8] == MAGIC
        && crc32fast::hash(&head[..HEADER_CRC_AT]) == u32_at(head, HEADER_CRC_AT)?
        && u32_at(head, 8)? == VERSION
        && u64_at(head, 24)? == store_id
        && zero(12..16)
        && zero(60..64)
        && zero(92..HEADER_CRC_AT);
    let through = Location {
        lsn: Lsn(u64_at(head, 32)?),
        segment: SegmentId(u64_at(head, 40)?),
        offset: u64_at(head, 48)?,
        frame_len_bytes: u32_at(head, 56)?,
    };
    let names_len = usize::try_from(u64_at(head, 64)?).ok()?;
    whole.then_some((through, u64_at(head, 16)?, names_len, u64_at(head, 76)?))
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
    use crate::catalog::NewStream;

    /// A stream: name, creation lsn, fork, deletion lsn, head.
    type Spec<'a> = (&'a str, u64, Option<Fork>, Option<u64>, u64);

    fn catalog_of(streams: &[Spec<'_>]) -> Catalog {
        let mut catalog = Catalog::default();
        for (i, &(name, created, fork, deleted, head)) in streams.iter().enumerate() {
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
        catalog
    }

    #[test]
    fn round_trips_exactly_at_its_record_and_rejects_damage() {
        let fork = Fork {
            source: StreamId(1),
            at: Version(5),
        };
        let catalog = catalog_of(&[
            ("a", 1, None, None, 7),
            ("b", 2, None, Some(40), 3),
            ("fork of a", 9, Some(fork), None, 8),
            ("after", 60, None, None, 2),
        ]);
        let through = Location {
            lsn: Lsn(50),
            segment: SegmentId(30),
            offset: 4000,
            frame_len_bytes: 77,
        };
        let due = [StreamId(3), StreamId(1)].into_iter().collect();
        let bytes = encode(&catalog, 99, through, &due, 42);
        let of = |b: &[u8]| ReadOnlyBytes::new(b.to_vec());
        let snapshot = decode(of(&bytes), 99).expect("valid");
        assert_eq!(snapshot.through, through);
        assert_eq!(snapshot.len(), 3, "created after its record: left out");
        let names: Vec<&str> = (1..=4)
            .filter_map(|id| snapshot.stream(StreamId(id)))
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["a", "b", "fork of a"]);
        let b = snapshot.stream(StreamId(2)).expect("b");
        assert_eq!(b.deleted, Some(Lsn(40)));
        let forked = snapshot.stream(StreamId(3)).expect("the fork");
        assert_eq!((forked.fork, forked.head), (Some(fork), Version(8)));
        assert_eq!(
            snapshot.named("fork of a").collect::<Vec<_>>(),
            [StreamId(3)]
        );
        assert_eq!(snapshot.named("after").count(), 0);
        assert_eq!(snapshot.check_records(), Ok(()));
        assert_eq!(
            snapshot.due().collect::<Vec<_>>(),
            [StreamId(1), StreamId(3)]
        );
        assert_eq!(snapshot.config, 42);
        assert!(decode(of(&bytes), 98).is_none(), "another store's");
        let blocks_at = snapshot.blocks_at;
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x20;
            if (HEADER_LEN..blocks_at).contains(&at) {
                // The body is checked where it is read: the open takes it, and the first read
                // of the block (here, verify's) finds the damage and says where.
                let damaged = decode(of(&bad), 99).expect("the header and block table hold");
                assert_eq!(damaged.damage(), None, "nothing read yet");
                assert!(damaged.check_records().is_err(), "a flip at byte {at}");
                assert_eq!(damaged.damage(), Some(HEADER_LEN as u64), "one block");
            } else {
                assert!(decode(of(&bad), 99).is_none(), "a flip at byte {at}");
            }
        }
        assert!(decode(of(&bytes[..bytes.len() - 1]), 99).is_none());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(of(&longer), 99).is_none(), "a byte past its end");
    }

    /// A record that passes the checksums but lies (a creation or a deletion after the
    /// snapshot's record) reads as absent, and a snapshot taken over it keeps the ids dense.
    #[test]
    fn a_record_that_lies_reads_as_absent_and_keeps_its_id() {
        let catalog = catalog_of(&[
            ("a", 1, None, None, 7),
            ("b", 2, None, None, 3),
            ("c", 3, None, None, 5),
        ]);
        let through = Location {
            lsn: Lsn(50),
            segment: SegmentId(1),
            offset: 4000,
            frame_len_bytes: 77,
        };
        let bytes = encode(&catalog, 9, through, &Default::default(), 0);
        let blocks_at = decode(ReadOnlyBytes::new(bytes.clone()), 9)
            .expect("valid")
            .blocks_at;
        let reseal = |mut b: Vec<u8>| {
            let blocks = block_crcs(&b[HEADER_LEN..blocks_at]);
            b[blocks_at..].copy_from_slice(&blocks);
            let crc = crc32fast::hash(&blocks);
            b[72..76].copy_from_slice(&crc.to_le_bytes());
            let crc = crc32fast::hash(&b[..HEADER_CRC_AT]);
            b[HEADER_CRC_AT..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
            b
        };
        for (field, value) in [(0, 60u64), (3, 70)] {
            // Stream 2 created, or deleted, after the record.
            let mut forged = bytes.clone();
            let at = HEADER_LEN + RECORD_LEN + 8 * field;
            forged[at..at + 8].copy_from_slice(&value.to_le_bytes());
            let snapshot = decode(ReadOnlyBytes::new(reseal(forged)), 9).expect("checksums pass");
            assert!(snapshot.stream(StreamId(2)).is_none(), "field {field}");
            assert!(snapshot.check_records().is_err(), "verify names it");
            let over = Catalog::new(
                std::path::PathBuf::new(),
                Some(std::sync::Arc::new(snapshot)),
            );
            assert_eq!(over.lookup("b"), None);
            let again = encode(&over, 9, through, &Default::default(), 0);
            let again = decode(ReadOnlyBytes::new(again), 9).expect("valid");
            assert_eq!(again.len(), 3, "ids stay dense");
            assert_eq!(again.stream(StreamId(3)).map(|s| s.name), Some("c"));
            assert!(
                again
                    .stream(StreamId(2))
                    .is_some_and(|s| s.deleted.is_some())
            );
        }
    }

    #[test]
    fn finds_every_name_among_many_and_each_deleted_one_of_a_name() {
        // Two streams of one name (the first deleted), and enough others that the name table's
        // binary search has depth.
        let mut streams: Vec<(String, Option<u64>)> =
            (0..5000).map(|k| (format!("s-{k}"), None)).collect();
        streams[10].0 = "twice".into();
        streams[10].1 = Some(20);
        streams[4000].0 = "twice".into();
        let specs: Vec<Spec<'_>> = streams
            .iter()
            .enumerate()
            .map(|(k, (name, deleted))| (name.as_str(), k as u64 + 1, None, *deleted, 1))
            .collect();
        let catalog = catalog_of(&specs);
        let through = Location {
            lsn: Lsn(1_000_000),
            segment: SegmentId(1),
            offset: 64,
            frame_len_bytes: 40,
        };
        let snapshot = decode(
            ReadOnlyBytes::new(encode(&catalog, 7, through, &Default::default(), 0)),
            7,
        )
        .expect("valid");
        for (k, (name, _)) in streams.iter().enumerate() {
            if name != "twice" {
                assert_eq!(
                    snapshot.named(name).collect::<Vec<_>>(),
                    [StreamId(k as u64 + 1)],
                    "{name}"
                );
            }
        }
        let mut twice: Vec<StreamId> = snapshot.named("twice").collect();
        twice.sort();
        assert_eq!(twice, [StreamId(11), StreamId(4001)]);
        assert_eq!(snapshot.named("s-10").count(), 0, "renamed above");
        assert_eq!(snapshot.check_records(), Ok(()));
        // The catalog over it resolves the name to the live one.
        let over = Catalog::new(
            std::path::PathBuf::new(),
            Some(std::sync::Arc::new(snapshot)),
        );
        assert_eq!(over.lookup("twice"), Some(StreamId(4001)));
        assert_eq!(over.len(), 5000);
    }
}
