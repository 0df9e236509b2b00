//! Tests of checkpoint files across writer and reader: a model-based round trip, damage of every
//! kind, the page layout, and the pages a cold lookup touches.

use std::collections::BTreeMap;
use std::ops::Bound;

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

use crate::format::{self, PAD_LEN_MAX, PAGE_LEN, header};
use crate::{
    Checkpoint, CheckpointError, CheckpointMeta, Lookup, MemRun, SortedRun, encode_checkpoint,
};

type Entries = Vec<(Vec<u8>, Option<Vec<u8>>)>;
type OwnedRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Keys from a small alphabet, so that probes and bounds often hit stored keys.
fn arbitrary_key(g: &mut Gen) -> Vec<u8> {
    let len = usize::arbitrary(g) % 6;
    (0..len)
        .map(|_| *g.choose(&[0u8, 1, b'a', b'b', 0xff]).expect("non-empty"))
        .collect()
}

/// The stem `long_key` puts in front of short keys: 20 bytes, longer than the prefix a
/// checkpoint strips (at most 16 bytes) plus its 8-byte search keys, so that keys under it
/// differ only after their search keys, and their shared prefix is cut.
const STEM: &[u8] = b"ababababababababab\x01\x02";

/// A key that starts with `STEM`, or (with `mixed`) half of the time a short key.
fn long_key(g: &mut Gen, mixed: bool) -> Vec<u8> {
    let key = arbitrary_key(g);
    if mixed && bool::arbitrary(g) {
        return key;
    }
    // The stem, cut at a random length now and then, so that some keys are prefixes of others.
    let stem = if u8::arbitrary(g) % 8 == 0 {
        &STEM[..usize::arbitrary(g) % STEM.len()]
    } else {
        STEM
    };
    [stem, &key].concat()
}

fn arbitrary_bound(g: &mut Gen) -> Bound<Vec<u8>> {
    match u8::arbitrary(g) % 5 {
        0 => Bound::Unbounded,
        1 => Bound::Included(arbitrary_key(g)),
        2 => Bound::Excluded(arbitrary_key(g)),
        3 => Bound::Included(long_key(g, false)),
        _ => Bound::Excluded(long_key(g, false)),
    }
}

fn borrowed(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
    }
}

/// A random run (as a model), probe keys and ranges.
#[derive(Clone, Debug)]
struct Case {
    model: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    probes: Vec<Vec<u8>>,
    ranges: Vec<OwnedRange>,
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Case {
        let count = usize::arbitrary(g) % (g.size() * 4 + 1);
        // Short keys; long keys that share a prefix longer than the index's search keys
        // (ties in the index); or both.
        let kind = u8::arbitrary(g) % 3;
        let key = |g: &mut Gen| match kind {
            0 => arbitrary_key(g),
            1 => long_key(g, false),
            _ => long_key(g, true),
        };
        let mut model = BTreeMap::new();
        for _ in 0..count {
            let key = key(g);
            let value = match u8::arbitrary(g) % 20 {
                0..=3 => None,
                // Now and then a value larger than a page, to cover entries spanning pages.
                4 => Some(vec![u8::arbitrary(g); usize::arbitrary(g) % 9000]),
                _ => Some(vec![u8::arbitrary(g); usize::arbitrary(g) % 200]),
            };
            model.insert(key, value);
        }
        let probes = (0..20)
            .map(|_| match u8::arbitrary(g) % 3 {
                0 => arbitrary_key(g),
                1 => long_key(g, false),
                _ => key(g),
            })
            .collect();
        let ranges = (0..20)
            .map(|_| (arbitrary_bound(g), arbitrary_bound(g)))
            .collect();
        Case {
            model,
            probes,
            ranges,
        }
    }
}

/// Checks that `checkpoint` holds exactly the entries of `model`.
fn agrees_with(checkpoint: &Checkpoint, model: &MemRun, probes: &[Vec<u8>]) -> Result<(), String> {
    if checkpoint.len() != model.len() {
        return Err(format!("len {} != {}", checkpoint.len(), model.len()));
    }
    let all: Vec<_> = checkpoint
        .range(Bound::Unbounded, Bound::Unbounded)
        .collect();
    let expected: Vec<_> = model.range(Bound::Unbounded, Bound::Unbounded).collect();
    if all != expected {
        return Err("full iteration differs".into());
    }
    for key in model.entries().keys().chain(probes) {
        if checkpoint.get(key) != model.get(key) {
            return Err(format!("get({key:?}) differs"));
        }
    }
    Ok(())
}

fn encode(meta: CheckpointMeta, entries: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> Vec<u8> {
    encode_checkpoint(meta, entries.iter().map(|(k, v)| (k, v.as_ref()))).expect("encodes")
}

#[test]
fn round_trip_matches_the_model() {
    fn prop(case: Case) -> TestResult {
        let bytes = encode(CheckpointMeta::delta(7, 120, 1, 100), &case.model);
        let checkpoint = match Checkpoint::from_bytes(&bytes) {
            Ok(c) => c,
            Err(e) => return TestResult::error(e.to_string()),
        };
        let model: MemRun = case.model.clone().into_iter().collect();
        if let Err(e) = agrees_with(&checkpoint, &model, &case.probes) {
            return TestResult::error(e);
        }
        for (start, end) in &case.ranges {
            let got: Vec<_> = checkpoint.range(borrowed(start), borrowed(end)).collect();
            let want: Vec<_> = model.range(borrowed(start), borrowed(end)).collect();
            if got != want {
                return TestResult::error(format!("range {start:?}..{end:?} differs"));
            }
        }
        TestResult::passed()
    }
    QuickCheck::new()
        .tests(150)
        .rng(Gen::from_size_and_seed(100, 0x4845_4c49_4f53))
        .quickcheck(prop as fn(Case) -> TestResult);
}

const BIG_VALUE_BYTE: u8 = 0x5a;
const BIG_VALUE_LEN: usize = 5000;

/// A small delta with tombstones, an empty key, an empty value and one entry larger than a page,
/// so that it has several blocks and padding.
fn small_entries() -> Entries {
    let mut entries: Entries = (0u8..40)
        .map(|i| {
            let key = if i == 0 {
                Vec::new()
            } else {
                format!("key-{i:03}").into_bytes()
            };
            let value = match i % 5 {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some(vec![i; usize::from(i) * 7]),
            };
            (key, value)
        })
        .collect();
    entries[20].1 = Some(vec![BIG_VALUE_BYTE; BIG_VALUE_LEN]);
    entries
}

fn small_checkpoint() -> Vec<u8> {
    let bytes = encode_checkpoint(
        CheckpointMeta::delta(3, 1230, 1, 1200),
        small_entries().iter().map(|(k, v)| (k, v.as_ref())),
    )
    .expect("encodes");
    let checkpoint = Checkpoint::from_bytes(&bytes).expect("valid");
    assert!(checkpoint.block_count() > 2, "{checkpoint:?}");
    bytes
}

#[test]
fn every_single_byte_corruption_is_detected() {
    let bytes = small_checkpoint();
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            assert!(
                Checkpoint::from_bytes(&damaged).is_err(),
                "flipping byte {at} with {mask:#04x} went unnoticed"
            );
        }
    }
}

/// Checks the `SortedRun` contract on whatever a decoder accepted.
fn is_well_formed(checkpoint: &Checkpoint) -> bool {
    let all: Vec<_> = checkpoint
        .range(Bound::Unbounded, Bound::Unbounded)
        .collect();
    all.len() == checkpoint.len()
        && all.windows(2).all(|w| w[0].0 < w[1].0)
        && all.iter().all(|&(k, v)| {
            checkpoint.get(k) == v.map_or(Lookup::Deleted, Lookup::Value)
                && checkpoint
                    .range(Bound::Included(k), Bound::Included(k))
                    .eq([(k, v)])
        })
}

#[test]
fn corruption_behind_valid_checksums_is_rejected_or_harmless() {
    // With the CRCs recomputed, damage reaches rkyv validation and the block checks. Whatever
    // they accept must still be a well-formed run; nothing may panic.
    let bytes = small_checkpoint();
    // rkyv validation is slow in debug builds: skip the inside of the one large value, whose
    // bytes mean nothing to the structure.
    let big_value = bytes
        .windows(64)
        .position(|w| w.iter().all(|&b| b == BIG_VALUE_BYTE))
        .expect("the large value is in the file");
    let skipped = big_value + 16..big_value + BIG_VALUE_LEN - 16;
    let mut accepted = 0;
    for at in (0..bytes.len()).filter(|at| !skipped.contains(at)) {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            format::reseal_crcs(&mut damaged);
            if let Ok(checkpoint) = Checkpoint::from_bytes(&damaged) {
                accepted += 1;
                assert!(is_well_formed(&checkpoint), "byte {at} mask {mask:#04x}");
            }
        }
    }
    // Value bytes and header fields such as the stream id are not structural: some damage is
    // accepted, and must be well formed.
    assert!(accepted > 0);
}

#[test]
fn truncation_at_every_length_is_detected() {
    let bytes = small_checkpoint();
    for len in 0..bytes.len() {
        let err = Checkpoint::from_bytes(&bytes[..len]).expect_err("truncated file accepted");
        assert!(
            matches!(err, CheckpointError::Truncated { len_bytes, .. } if len_bytes == len as u64),
            "{len}: {err}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let err = Checkpoint::from_bytes(&longer).expect_err("trailing byte accepted");
    assert!(
        matches!(err, CheckpointError::TrailingBytes { .. }),
        "{err}"
    );
}

#[test]
fn wrong_magic_and_future_versions_are_named() {
    let bytes = small_checkpoint();
    let mut wrong = bytes.clone();
    wrong[..8].copy_from_slice(b"HELIOSLG");
    let err = Checkpoint::from_bytes(&wrong).expect_err("wrong magic accepted");
    assert!(
        matches!(err, CheckpointError::WrongMagic { found, .. } if &found == b"HELIOSLG"),
        "{err}"
    );
    // A future version is reported as such whether or not its header CRC is where v1 keeps it.
    for reseal in [false, true] {
        let mut future = bytes.clone();
        future[header::FORMAT_VERSION..header::FORMAT_VERSION + 4]
            .copy_from_slice(&2u32.to_le_bytes());
        if reseal {
            format::reseal_crcs(&mut future);
        }
        let err = Checkpoint::from_bytes(&future).expect_err("future version accepted");
        assert!(
            matches!(err, CheckpointError::UnsupportedVersion { found: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("format version 2"), "{err}");
    }
}

#[test]
fn damage_is_reported_with_its_offset() {
    let bytes = small_checkpoint();
    // The first byte of the block data, the length of the first (empty) key: caught by the
    // archive CRC.
    let mut damaged = bytes.clone();
    damaged[header::LEN] ^= 1;
    let err = Checkpoint::from_bytes(&damaged).expect_err("accepted");
    assert!(
        matches!(err, CheckpointError::ArchiveChecksum { offset: 64, .. }),
        "{err}"
    );
    // The same, resealed: the first key is now one byte long and differs from its fence.
    format::reseal_crcs(&mut damaged);
    let err = Checkpoint::from_bytes(&damaged).expect_err("accepted");
    assert!(
        matches!(err, CheckpointError::Corrupt { offset: 64, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("<memory>"), "{err}");
}

#[test]
fn same_entries_give_the_same_bytes() {
    let a = small_checkpoint();
    let b = small_checkpoint();
    assert_eq!(a, b);
    let meta = CheckpointMeta::full(1, 1000, 3);
    let from_vec = encode_checkpoint(meta, small_entries()).expect("encodes");
    let from_refs = encode_checkpoint(
        meta,
        small_entries()
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref())),
    )
    .expect("encodes");
    assert_eq!(from_vec, from_refs);
}

#[test]
fn bad_input_is_refused_naming_the_entry() {
    let meta = CheckpointMeta::full(1, 1000, 3);
    let err = encode_checkpoint(
        meta,
        [
            (&b"a"[..], Some(&b"1"[..])),
            (b"c", None),
            (b"b", Some(b"2")),
        ],
    )
    .expect_err("unsorted accepted");
    assert!(
        matches!(err, CheckpointError::Unsorted { index: 2, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "checkpoint entries must have strictly increasing keys: entry 2 has key \"b\", not above \
         the previous key \"c\""
    );
    let err = encode_checkpoint(meta, [(&b"a"[..], None::<&[u8]>), (b"a", None)])
        .expect_err("duplicate accepted");
    assert!(
        matches!(err, CheckpointError::Unsorted { index: 1, .. }),
        "{err}"
    );
    let long_key = vec![0u8; format::KEY_LEN_MAX + 1];
    let err = encode_checkpoint(meta, [(&long_key[..], None::<&[u8]>)]).expect_err("long key");
    assert!(
        matches!(err, CheckpointError::KeyTooLong { index: 0, .. }),
        "{err}"
    );
    let long_value = vec![0u8; format::VALUE_LEN_MAX + 1];
    let err = encode_checkpoint(meta, [(&b"k"[..], Some(&long_value[..]))]).expect_err("long");
    assert!(
        matches!(err, CheckpointError::ValueTooLong { index: 0, .. }),
        "{err}"
    );
    let err = encode_checkpoint(
        CheckpointMeta::delta(1, 10, 1, 10),
        [(&b"k"[..], None::<&[u8]>)],
    )
    .expect_err("bad meta");
    assert!(matches!(err, CheckpointError::InvalidMeta { .. }), "{err}");
}

#[test]
fn empty_runs_round_trip() {
    let bytes = encode_checkpoint(
        CheckpointMeta::full(1, 0, 1),
        Vec::<(Vec<u8>, Option<Vec<u8>>)>::new(),
    )
    .expect("encodes");
    let checkpoint = Checkpoint::from_bytes(&bytes).expect("valid");
    assert!(checkpoint.is_empty());
    assert_eq!(checkpoint.get(b""), Lookup::Absent);
    assert_eq!(
        checkpoint.range(Bound::Unbounded, Bound::Unbounded).count(),
        0
    );
}

/// A key and value of [`numbered_entry`].
type NumberedEntry = ([u8; 16], [u8; 32]);

/// Keys and values of the layout and residency tests: 16-byte keys (odd numbers, so even ones
/// are absent) and 32-byte values.
fn numbered_entry(i: u64) -> NumberedEntry {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&(2 * i + 1).to_be_bytes());
    key[8..].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    let mut value = [0u8; 32];
    for (j, chunk) in value.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(i ^ (j as u64) << 56).to_le_bytes());
    }
    (key, value)
}

/// A full checkpoint of entries `0..count` of [`numbered_entry`], decoded from memory.
fn numbered_checkpoint(count: u64) -> (Vec<NumberedEntry>, Checkpoint) {
    let entries: Vec<_> = (0..count).map(numbered_entry).collect();
    let bytes = encode_checkpoint(
        CheckpointMeta::full(1, 1000, 3),
        entries.iter().map(|(k, v)| (k, Some(v))),
    )
    .expect("encodes");
    let checkpoint = Checkpoint::from_bytes(&bytes).expect("valid");
    (entries, checkpoint)
}

#[test]
fn blocks_of_small_entries_sit_within_pages() {
    let (_, checkpoint) = numbered_checkpoint(5000);
    // The writer assumes the data opens the archive; if rkyv ever moved it, blocks would still
    // be valid but straddle pages.
    let spans = checkpoint.block_spans_for_tests();
    assert_eq!(
        spans.first().map(|&(start, _)| start),
        Some(header::LEN),
        "block data no longer opens the archive"
    );
    let mut padding = 0;
    for pair in spans.windows(2) {
        padding += pair[1].0 - pair[0].1;
    }
    for &(start, end) in &spans {
        assert_eq!(
            start / PAGE_LEN,
            (end - 1) / PAGE_LEN,
            "block {start}..{end} crosses a page"
        );
    }
    // 50-byte entries waste less than one entry's worth of each page.
    assert!(padding > 0 && padding < spans.len() * 50, "{padding}");
    assert!(padding <= spans.len() * PAD_LEN_MAX);
    assert_eq!(checkpoint.len(), 5000);
}

#[test]
fn lookup_memory_per_entry_is_as_documented() {
    let (entries, checkpoint) = numbered_checkpoint(20_000);
    // `Checkpoint`'s documentation says about 14 bytes per entry for small entries: 11.4 for
    // the point index at 70% load, about 2.3 for the restarts and their tree, and 16 per block.
    let per_entry = checkpoint.index_memory_bytes() as f64 / entries.len() as f64;
    assert!(
        (12.0..16.0).contains(&per_entry),
        "{per_entry} bytes per entry"
    );
    // Every key is found through the point index, and absent ones (even keys) are not.
    for (i, (key, value)) in entries.iter().enumerate().step_by(97) {
        assert_eq!(checkpoint.get(key), Lookup::Value(value), "entry {i}");
        let mut absent = *key;
        absent[7] ^= 1;
        assert_eq!(
            checkpoint.get(&absent),
            Lookup::Absent,
            "entry {i}, flipped"
        );
    }
}

#[test]
fn checkpoints_are_send_and_sync() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Checkpoint>();
    shared::<std::sync::Arc<dyn SortedRun>>();
}

/// The pages a cold point lookup reads, measured with `mincore` after evicting the file with
/// `posix_fadvise(POSIX_FADV_DONTNEED)` (both through `helios_storage`).
mod residency {
    use std::path::Path;

    use helios_storage::{FsStorage, Storage as _, resident_pages};

    use super::numbered_entry;
    use crate::{Checkpoint, CheckpointMeta, Lookup, SortedRun, write_checkpoint};

    /// Pages of the file at `path` in the page cache.
    fn resident(path: &Path) -> usize {
        resident_pages(path).expect("mincore")
    }

    /// Asks the kernel to drop the file's clean, unmapped pages from the page cache.
    fn evict(path: &Path) {
        let file = FsStorage.open_read_only(path).expect("open");
        file.evict_pages().expect("posix_fadvise");
    }

    #[test]
    fn a_cold_point_lookup_touches_one_or_two_pages() {
        const ENTRY_COUNT: u64 = 100_000;
        const LOOKUPS: u64 = 200;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("full.ckpt");
        let written = write_checkpoint(
            &path,
            CheckpointMeta::full(1, 100_000, 3),
            (0..ENTRY_COUNT).map(|i| {
                let (k, v) = numbered_entry(i);
                (k, Some(v))
            }),
        )
        .expect("write");
        let mut checkpoint = Checkpoint::open(&path).expect("open");
        assert!(
            checkpoint.reads_the_file_for_tests(),
            "read through a map, or a cold lookup reads nothing from the file"
        );
        let file_bytes = written.file_len_bytes;
        let (mut hit_pages, mut miss_pages) = (0usize, 0usize);
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for n in 0..2 * LOOKUPS {
            // A new map has no page mapped, so every cached page of the file can be evicted.
            checkpoint.remap_for_tests().expect("remap");
            evict(&path);
            let before = resident(&path);
            if before > 0 {
                eprintln!(
                    "posix_fadvise(DONTNEED) left {before} pages of a {file_bytes}-byte file cached on this \
                     machine: cannot measure cold lookups here, skipping"
                );
                return;
            }
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let i = rng % ENTRY_COUNT;
            let (key, value) = numbered_entry(i);
            if n % 2 == 0 {
                assert_eq!(checkpoint.get(&key), Lookup::Value(&value));
                hit_pages += resident(&path);
            } else {
                // The key just below a stored one is absent, and lands in the same block or the
                // one before.
                let mut absent = key;
                absent[..8].copy_from_slice(&(2 * i).to_be_bytes());
                assert_eq!(checkpoint.get(&absent), Lookup::Absent);
                miss_pages += resident(&path);
            }
        }
        let hit_average = hit_pages as f64 / LOOKUPS as f64;
        let miss_average = miss_pages as f64 / LOOKUPS as f64;
        eprintln!(
            "cold point lookups in a {ENTRY_COUNT}-entry checkpoint ({file_bytes} bytes, {} \
             blocks): {hit_average:.2} pages per hit, {miss_average:.2} per miss \
             ({LOOKUPS} each)",
            written.block_count
        );
        assert!(hit_average <= 2.5, "{hit_average} pages per hit");
        assert!(miss_average <= 2.5, "{miss_average} pages per miss");
    }
}
