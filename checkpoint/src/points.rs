//! The in-memory hash index of a checkpoint's keys: a point lookup reads one cache line of it,
//! and then, only for a key the file may hold, the one entry of the map that the line names.
//!
//! Why a hash index and not a search: a warm point lookup over a large checkpoint is bounded by
//! dependent cache misses, not by instructions. A search through restart keys costs a miss per
//! tree level below the cached ones, one for the restarts and one for the page of the entry; a
//! Bloom filter in front of it adds one more for present keys. This index costs one miss for an
//! absent key and two for a present one (its line, then the entry), whatever the file's size,
//! and answers "absent" exactly where a filter answers "maybe".
//!
//! Layout: an array of 64-byte buckets of eight slots; a slot is a 32-bit tag (the key hash's
//! low 32 bits with the lowest bit set, so never 0) and the file offset of the entry. An empty
//! slot has tag 0. A key's hash picks its first bucket with its upper 32 bits (scaled to the
//! bucket count, no power of two needed); keys are inserted into the first empty slot from
//! there on, bucket after bucket, wrapping around (linear probing by buckets). A lookup walks
//! the same order and stops at the first empty slot: a key inserted would have taken it. The
//! table is at most [`LOAD_PERCENT_MAX`] full, so an empty slot always exists and a lookup reads
//! one bucket, rarely two.
//!
//! Invariants:
//! - Every inserted key's slot lies on its probe path before any empty slot.
//! - At least one slot is empty (the load factor is below 100%).
//!
//! The index is built when a checkpoint is opened and never stored, so the hash only has to be
//! stable within a process; foldhash with a fixed seed is fast on short keys.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;

/// Slots per bucket: one 64-byte cache line.
const SLOTS_PER_BUCKET: usize = 8;

/// The table is sized so that at most this percentage of its slots are used: 70% is 11.4 bytes
/// of memory per key, with about one unsuccessful lookup in ten reading a second bucket.
pub(crate) const LOAD_PERCENT_MAX: usize = 70;

/// The seed of the key hash (any fixed value; the index is not persisted).
const SEED: u64 = 0x4845_4c49_4f53_4b46;

/// One slot: a tag (0 when the slot is empty) and the file offset of an entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    tag: u32,
    offset: u32,
}

/// Eight slots in one cache line.
#[derive(Clone, Copy, Debug, Default)]
#[repr(align(64))]
struct Bucket([Slot; SLOTS_PER_BUCKET]);

const _: () = assert!(size_of::<Bucket>() == 64, "a bucket is one cache line");
const _: () = assert!(
    LOAD_PERCENT_MAX < 100,
    "a lookup needs an empty slot to stop at"
);

/// A hash index from keys to the file offsets of their entries.
#[derive(Debug)]
pub(crate) struct PointIndex {
    buckets: Box<[Bucket]>,
}

impl PointIndex {
    /// An index with room for `count` keys, still empty.
    pub(crate) fn with_capacity(count: usize) -> PointIndex {
        let slots = (count.saturating_mul(100) / LOAD_PERCENT_MAX).saturating_add(1);
        let buckets = slots.div_ceil(SLOTS_PER_BUCKET);
        PointIndex {
            buckets: vec![Bucket::default(); buckets].into_boxed_slice(),
        }
    }

    /// Records that the entry of `key` starts at file offset `offset`. The caller inserts each
    /// key once and at most the `count` it sized the index for.
    pub(crate) fn insert(&mut self, key: &[u8], offset: u32) {
        let hash = hash(key);
        let tag = tag_of(hash);
        let mut bucket = self.first_bucket(hash);
        // Terminates: the table is never full (LOAD_PERCENT_MAX < 100 and callers insert at
        // most the count they sized it for); the loop bound makes that an assertion instead of
        // a hang if a caller broke it.
        for _ in 0..self.buckets.len() {
            if let Some(slot) = self.buckets[bucket].0.iter_mut().find(|s| s.tag == 0) {
                *slot = Slot { tag, offset };
                return;
            }
            bucket = self.next_bucket(bucket);
        }
        unreachable!("point index over-filled: more keys inserted than it was sized for");
    }

    /// Calls `entry` with the offset of every entry whose tag matches that of the key whose
    /// [`hash`] is `hash`, in insertion
    /// probe order, until it returns `Some` (the caller decodes the entry there and keeps it if
    /// its key is `key`); returns that, or `None` when the key was never inserted. Most calls
    /// make no call to `entry` for an absent key and one for a present key (tags are 31 bits of
    /// the hash).
    #[inline]
    pub(crate) fn find_map<T>(
        &self,
        hash: u64,
        mut entry: impl FnMut(usize) -> Option<T>,
    ) -> Option<T> {
        let tag = tag_of(hash);
        let mut bucket = self.first_bucket(hash);
        for _ in 0..self.buckets.len() {
            for slot in &self.buckets[bucket].0 {
                if slot.tag == 0 {
                    return None;
                }
                if slot.tag == tag
                    && let Some(found) = entry(slot.offset as usize)
                {
                    return Some(found);
                }
            }
            bucket = self.next_bucket(bucket);
        }
        None
    }

    /// Starts loading the bucket a lookup of the key whose [`hash`] is `hash` reads first,
    /// without waiting for it.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        let bucket = self.first_bucket(hash);
        // A load whose value nothing waits for: the processor issues it and goes on, so the
        // cache miss overlaps with the caller's next work (the same for other runs).
        std::hint::black_box(self.buckets.get(bucket).map(|b| b.0[0].tag));
    }

    /// Bytes of memory the index holds.
    pub(crate) fn memory_bytes(&self) -> usize {
        size_of_val(&*self.buckets)
    }

    /// The bucket a hash starts at: its upper 32 bits scaled to the bucket count.
    #[inline]
    fn first_bucket(&self, hash: u64) -> usize {
        // Below `buckets.len()`: (hash >> 32) < 2^32, so the product is below len * 2^32.
        usize::try_from(((hash >> 32) * self.buckets.len() as u64) >> 32).unwrap_or(0)
    }

    #[inline]
    fn next_bucket(&self, bucket: usize) -> usize {
        if bucket + 1 == self.buckets.len() {
            0
        } else {
            bucket + 1
        }
    }
}

/// The hash of a key.
#[inline]
pub(crate) fn hash(key: &[u8]) -> u64 {
    FixedState::with_seed(SEED).hash_one(key)
}

/// The tag of a hash: its lower 32 bits (independent of the bucket, which the upper ones pick),
/// never 0.
#[inline]
fn tag_of(hash: u64) -> u32 {
    // The lower 32 bits (the truncation is the point).
    #[allow(clippy::cast_possible_truncation)]
    let low = hash as u32;
    low | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{QuickCheck, TestResult};
    use std::collections::BTreeSet;

    fn index_of(keys: &[Vec<u8>]) -> PointIndex {
        let mut index = PointIndex::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            index.insert(key, u32::try_from(i).expect("small test"));
        }
        index
    }

    /// Finds `key` the way a checkpoint does: compares the key stored at each candidate.
    fn lookup(index: &PointIndex, keys: &[Vec<u8>], key: &[u8]) -> Option<usize> {
        index.find_map(hash(key), |offset| (keys[offset] == key).then_some(offset))
    }

    #[test]
    fn finds_every_key_and_no_other() {
        fn prop(keys: BTreeSet<Vec<u8>>, probes: Vec<Vec<u8>>) -> TestResult {
            let keys: Vec<Vec<u8>> = keys.into_iter().collect();
            let index = index_of(&keys);
            for (i, key) in keys.iter().enumerate() {
                if lookup(&index, &keys, key) != Some(i) {
                    return TestResult::error(format!("{key:?} inserted at {i} but not found"));
                }
            }
            for probe in &probes {
                let expected = keys.iter().position(|k| k == probe);
                if lookup(&index, &keys, probe) != expected {
                    return TestResult::error(format!("{probe:?}: expected {expected:?}"));
                }
            }
            TestResult::passed()
        }
        QuickCheck::new()
            .tests(300)
            .quickcheck(prop as fn(BTreeSet<Vec<u8>>, Vec<Vec<u8>>) -> TestResult);
    }

    #[test]
    fn full_buckets_spill_into_the_next_one() {
        // Sized for exactly as many keys as inserted: 70% full, so many buckets overflow.
        let keys: Vec<Vec<u8>> = (0..5_000u32)
            .map(|i| format!("k{i:07}").into_bytes())
            .collect();
        let index = index_of(&keys);
        let used = |b: &Bucket| b.0.iter().filter(|s| s.tag != 0).count();
        assert_eq!(index.buckets.iter().map(used).sum::<usize>(), keys.len());
        let full = index
            .buckets
            .iter()
            .filter(|b| used(b) == SLOTS_PER_BUCKET)
            .count();
        assert!(full > 0, "the test should exercise full buckets");
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(lookup(&index, &keys, key), Some(i), "key {i}");
        }
        // Absent keys: never a false positive, and few candidates compared.
        let mut compared = 0usize;
        for i in 5_000..55_000u32 {
            let probe = format!("k{i:07}").into_bytes();
            let found = index.find_map(hash(&probe), |offset| {
                compared += 1;
                (keys[offset] == probe).then_some(offset)
            });
            assert_eq!(found, None);
        }
        // 31-bit tags and a few slots read per lookup: well under one collision expected.
        assert!(
            compared < 5,
            "{compared} tag collisions for 50,000 absent keys"
        );
        // Memory: 100 / LOAD_PERCENT_MAX slots of 8 bytes per key, rounded up to a bucket.
        let per_key = index.memory_bytes() as f64 / keys.len() as f64;
        let expected = 8.0 * 100.0 / LOAD_PERCENT_MAX as f64;
        assert!(per_key < expected + 0.1, "{per_key} bytes per key");
    }

    #[test]
    fn the_last_bucket_spills_into_the_first() {
        // Room for 10 keys is two buckets; nine keys that all start in the last one fill it
        // and put the ninth in the first.
        let mut index = PointIndex::with_capacity(10);
        assert_eq!(index.buckets.len(), 2);
        let keys: Vec<Vec<u8>> = (0u32..)
            .map(|i| format!("key-{i}").into_bytes())
            .filter(|key| index.first_bucket(hash(key)) == 1)
            .take(SLOTS_PER_BUCKET + 1)
            .collect();
        for (i, key) in keys.iter().enumerate() {
            index.insert(key, u32::try_from(i).expect("small test"));
        }
        assert_eq!(
            index.buckets[0].0[0].offset, 8,
            "the ninth key wrapped around"
        );
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(lookup(&index, &keys, key), Some(i), "key {i}");
        }
        assert_eq!(lookup(&index, &keys, b"absent"), None);
    }

    #[test]
    fn an_empty_index_holds_nothing() {
        let index = PointIndex::with_capacity(0);
        assert_eq!(index.find_map(hash(b"k0000001"), Some), None);
    }
}
