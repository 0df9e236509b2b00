//! A Bloom filter over a checkpoint's keys, laid out so that a lookup reads one 32-byte block.
//!
//! The layout is Parquet's split-block Bloom filter: the filter is an array of 256-bit blocks;
//! a key's hash picks one block with its upper 32 bits, and sets or tests one bit in each of the
//! block's eight 32-bit words, picked by multiplying its lower 32 bits by eight odd constants
//! (the spec's salts). A lookup therefore costs one cache miss at most, for present and absent
//! keys alike. (fastbloom, the maintained general-purpose crate, spreads a key's bits over the
//! whole array: one miss per probed bit, seven for a present key at 1% false positives, which
//! made filtering full states a loss. The split-block crates are small and unmaintained.)
//!
//! Filters are built in memory when a checkpoint is opened and never stored, so the hash only
//! has to be stable within a process; foldhash with a fixed seed is fast on short keys.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;

/// Bits per key: about 0.6% false positives for this layout (Parquet's sizing table gives
/// 1.2% at 10 bits and 0.4% at 13).
const BITS_PER_KEY: usize = 12;

/// The salts of Parquet's split-block Bloom filter specification.
const SALTS: [u32; 8] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

/// The seed of the key hash (any fixed value; filters are not persisted).
const SEED: u64 = 0x4845_4c49_4f53_4b46;

/// One 256-bit block: eight words, one bit set per word for each key.
#[derive(Clone, Copy, Debug, Default)]
#[repr(align(32))]
struct Block([u32; 8]);

/// A split-block Bloom filter of a set of keys: no false negatives.
#[derive(Debug)]
pub(crate) struct KeyFilter {
    blocks: Box<[Block]>,
}

impl KeyFilter {
    /// The filter of `keys` (`count` of them, for sizing).
    pub(crate) fn new<'a>(count: usize, keys: impl IntoIterator<Item = &'a [u8]>) -> KeyFilter {
        let blocks = (count * BITS_PER_KEY).div_ceil(256).max(1);
        let mut filter = KeyFilter {
            blocks: vec![Block::default(); blocks].into_boxed_slice(),
        };
        for key in keys {
            let hash = hash(key);
            let block = filter.block_of(hash);
            for (word, bit) in filter.blocks[block].0.iter_mut().zip(bits(hash)) {
                *word |= bit;
            }
        }
        filter
    }

    /// Whether `key` may be in the set: `false` means it is not.
    #[inline]
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        let hash = hash(key);
        let block = &self.blocks[self.block_of(hash)];
        block
            .0
            .iter()
            .zip(bits(hash))
            .all(|(&word, bit)| word & bit != 0)
    }

    /// The block a hash picks: its upper 32 bits scaled to the block count.
    #[inline]
    fn block_of(&self, hash: u64) -> usize {
        // Below `blocks.len()`: (hash >> 32) < 2^32, so the product is below len * 2^32.
        usize::try_from(((hash >> 32) * self.blocks.len() as u64) >> 32).unwrap_or(0)
    }
}

/// The hash of a key.
#[inline]
fn hash(key: &[u8]) -> u64 {
    FixedState::with_seed(SEED).hash_one(key)
}

/// The bit a hash sets in each word of its block.
#[inline]
fn bits(hash: u64) -> [u32; 8] {
    // The lower 32 bits (the truncation is the point).
    #[allow(clippy::cast_possible_truncation)]
    let low = hash as u32;
    SALTS.map(|salt| 1 << (low.wrapping_mul(salt) >> 27))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{QuickCheck, TestResult};

    #[test]
    fn no_false_negatives() {
        fn prop(keys: Vec<Vec<u8>>) -> TestResult {
            let filter = KeyFilter::new(keys.len(), keys.iter().map(Vec::as_slice));
            match keys.iter().find(|key| !filter.may_contain(key)) {
                Some(key) => TestResult::error(format!("{key:?} inserted but not found")),
                None => TestResult::passed(),
            }
        }
        QuickCheck::new()
            .tests(300)
            .quickcheck(prop as fn(Vec<Vec<u8>>) -> TestResult);
    }

    #[test]
    fn false_positives_stay_near_the_sizing() {
        let key = |i: u32| format!("k{i:06}").into_bytes();
        let inserted: Vec<Vec<u8>> = (0..20_000).map(key).collect();
        let filter = KeyFilter::new(inserted.len(), inserted.iter().map(Vec::as_slice));
        assert!(inserted.iter().all(|k| filter.may_contain(k)));
        let absent = 200_000;
        let positives = (20_000..20_000 + absent)
            .filter(|&i| filter.may_contain(&key(i)))
            .count();
        // About 0.6% expected; fail well above it, not at the edge.
        let rate = positives as f64 / f64::from(absent);
        assert!(rate < 0.015, "false-positive rate {rate}");
        // And an empty filter rules everything out.
        let empty = KeyFilter::new(0, std::iter::empty());
        assert!(!empty.may_contain(b"k000001"));
    }
}
