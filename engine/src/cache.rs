//! A bounded cache for the read path whose hit costs one hash probe and one store: the map
//! cache of checkpoints and the cache of index groups, both hit several times by every view.
//!
//! Why not a linked-list LRU (the `lru` crate, used before): a hit there unlinks its node and
//! links it at the head, writing the node, both neighbours and the head, each a likely cache
//! miss in a cache of thousands of entries hit at random. Here a hit stamps its entry with a
//! counter, in the entry it already read. Eviction is the costly part instead, and it is rare:
//! when the cache is full, the `1/EVICT_DIVISOR` least recently stamped entries go at once (a
//! selection over all stamps, O(len)), so the work per insertion stays O(1) amortised and the
//! cache holds the recently used entries, like an LRU. The evicted values are handed back to
//! the caller, to drop after releasing its lock (for the checkpoint cache, dropping frees
//! indexes).
//!
//! Entries have a weight (the bytes they hold, as the caller counts them): the cache keeps both
//! its number of entries and their total weight within bounds, so that many small entries (the
//! checkpoints and index groups of many short streams) are not limited by a count sized for
//! large ones.
//!
//! Invariants:
//! - `len() <= capacity` and `weight() <= weight_max` after every call, unless a single entry
//!   weighs more than `weight_max` (it is then cached alone).
//! - Stamps increase with every hit and insertion; an entry's stamp is its last use.

use std::collections::HashMap;
use std::hash::Hash;

use foldhash::fast::RandomState;

/// A full cache evicts this fraction of its capacity at once (at least one entry).
const EVICT_DIVISOR: usize = 16;

/// A cached value and its last use.
#[derive(Debug)]
struct Slot<V> {
    value: V,
    stamp: u64,
    weight: u64,
}

/// A cache of at most `capacity` entries that evicts the least recently used first, in batches.
#[derive(Debug)]
pub(crate) struct StampCache<K, V> {
    entries: HashMap<K, Slot<V>, RandomState>,
    capacity: usize,
    weight_max: u64,
    weight: u64,
    clock: u64,
}

impl<K: Hash + Eq + Copy, V: Clone> StampCache<K, V> {
    /// An empty cache of at most `capacity` entries (at least one) weighing at most
    /// `weight_max` in all.
    pub(crate) fn new(capacity: usize, weight_max: u64) -> StampCache<K, V> {
        StampCache {
            entries: HashMap::default(),
            capacity: capacity.max(1),
            weight_max,
            weight: 0,
            clock: 0,
        }
    }

    /// The value of `key`, marked as just used.
    #[inline]
    pub(crate) fn get(&mut self, key: &K) -> Option<V> {
        self.clock += 1;
        let slot = self.entries.get_mut(key)?;
        slot.stamp = self.clock;
        Some(slot.value.clone())
    }

    /// Caches `value` under `key` (replacing an older value), evicting the least recently used
    /// entries first if the cache is full. Returns what it removed (the replaced value, the
    /// evicted ones), for the caller to drop when it sees fit.
    #[must_use = "the evicted values are dropped where the caller drops them"]
    pub(crate) fn put(&mut self, key: K, value: V, weight: u64) -> Vec<V> {
        self.clock += 1;
        let stamp = self.clock;
        let mut evicted = Vec::new();
        if let Some(old) = self.entries.remove(&key) {
            self.weight -= old.weight;
            evicted.push(old.value);
        }
        if self.entries.len() >= self.capacity {
            evicted.extend(self.evict((self.capacity / EVICT_DIVISOR).max(1)));
        }
        if self.weight.saturating_add(weight) > self.weight_max {
            // Down to `1/EVICT_DIVISOR` of the bound below what the new entry needs, oldest
            // first: as few entries as that takes, not a fixed count (one heavy entry must not
            // push out thousands of light ones).
            let slack = self.weight_max / EVICT_DIVISOR as u64;
            let target = self.weight_max.saturating_sub(weight).saturating_sub(slack);
            evicted.extend(self.evict_down_to(target));
        }
        self.weight += weight;
        self.entries.insert(
            key,
            Slot {
                value,
                stamp,
                weight,
            },
        );
        debug_assert!(self.entries.len() <= self.capacity);
        evicted
    }

    /// The total weight of the entries.
    #[cfg(test)]
    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    /// The number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Evicts the entries with the oldest stamps until the total weight is at most `target`,
    /// and returns their values.
    fn evict_down_to(&mut self, target: u64) -> Vec<V> {
        let mut by_age: Vec<(u64, K, u64)> = self
            .entries
            .iter()
            .map(|(key, slot)| (slot.stamp, *key, slot.weight))
            .collect();
        by_age.sort_unstable_by_key(|&(stamp, _, _)| stamp);
        let mut evicted = Vec::new();
        for (_, key, weight) in by_age {
            if self.weight <= target {
                break;
            }
            if let Some(slot) = self.entries.remove(&key) {
                self.weight -= weight;
                evicted.push(slot.value);
            }
        }
        evicted
    }

    /// Evicts the `count` entries with the oldest stamps and returns their values.
    fn evict(&mut self, count: usize) -> Vec<V> {
        let mut stamps: Vec<u64> = self.entries.values().map(|slot| slot.stamp).collect();
        if count >= stamps.len() {
            self.weight = 0;
            return self.entries.drain().map(|(_, slot)| slot.value).collect();
        }
        // Stamps are distinct, so exactly `count` entries have a stamp below the threshold.
        let (_, &mut threshold, _) = stamps.select_nth_unstable(count);
        let mut freed = 0;
        let evicted: Vec<V> = self
            .entries
            .extract_if(|_, slot| slot.stamp < threshold)
            .map(|(_, slot)| {
                freed += slot.weight;
                slot.value
            })
            .collect();
        self.weight -= freed;
        debug_assert_eq!(evicted.len(), count);
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted<T: Ord>(mut values: Vec<T>) -> Vec<T> {
        values.sort();
        values
    }

    #[test]
    fn keeps_the_recently_used_and_stays_within_capacity() {
        let mut cache: StampCache<u64, u64> = StampCache::new(32, u64::MAX);
        for key in 0..32 {
            assert!(cache.put(key, key * 10, 1).is_empty());
        }
        // Use the first half again: the second half is now the least recently used.
        for key in 0..16 {
            assert_eq!(cache.get(&key), Some(key * 10));
        }
        // A full cache evicts 32 / 16 = 2 entries: the two oldest, keys 16 and 17.
        assert_eq!(sorted(cache.put(100, 1000, 1)), vec![160, 170]);
        assert_eq!(cache.len(), 31);
        assert_eq!(cache.get(&16), None);
        assert_eq!(cache.get(&17), None);
        assert_eq!(cache.get(&18), Some(180));
        assert_eq!(cache.get(&0), Some(0));
        assert_eq!(cache.get(&100), Some(1000));
        let mut evicted = 0;
        for key in 200..1000 {
            evicted += cache.put(key, key, 1).len();
            assert!(cache.len() <= 32);
        }
        // Nothing is lost: every entry is still cached or was handed back.
        assert_eq!(evicted + cache.len(), 31 + 800);
        // The most recent insertions survive.
        assert_eq!(cache.get(&999), Some(999));
        assert_eq!(cache.get(&0), None);
    }

    #[test]
    fn replacing_a_value_returns_the_old_one_and_evicts_nothing() {
        let mut cache: StampCache<u64, &str> = StampCache::new(2, u64::MAX);
        assert!(cache.put(1, "one", 1).is_empty());
        assert!(cache.put(2, "two", 1).is_empty());
        assert_eq!(cache.put(1, "uno", 1), vec!["one"]);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&2), Some("two"));
        assert_eq!(cache.get(&1), Some("uno"));
        assert_eq!(
            cache.put(3, "three", 1),
            vec!["two"],
            "2 was used least recently"
        );
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&1), Some("uno"));
        assert_eq!(cache.get(&2), None);
    }

    #[test]
    fn the_total_weight_stays_within_its_bound() {
        let mut cache: StampCache<u64, u64> = StampCache::new(1000, 100);
        for key in 0..10 {
            assert!(cache.put(key, key, 10).is_empty());
        }
        assert_eq!(cache.weight(), 100);
        // One more of 10: the oldest go, down to 100 - 10 - 100 / 16 = 84 before it: two.
        let evicted = cache.put(10, 10, 10);
        assert_eq!(sorted(evicted), vec![0, 1]);
        assert_eq!(cache.weight(), 90);
        assert_eq!(cache.get(&10), Some(10));
        // A heavy entry pushes out only as many light ones as it needs.
        let mut cache: StampCache<u64, u64> = StampCache::new(1000, 1000);
        for key in 0..1000 {
            assert!(cache.put(key, key, 1).is_empty());
        }
        assert_eq!(cache.put(5000, 5000, 100).len(), 100 + 1000 / 16);
        // Many light entries fit where a few heavy ones did.
        let mut cache: StampCache<u64, u64> = StampCache::new(1000, 100);
        for key in 0..100 {
            assert!(cache.put(key, key, 1).is_empty());
        }
        assert_eq!((cache.len(), cache.weight()), (100, 100));
        // Replacing an entry counts its new weight, not both.
        let mut cache: StampCache<u64, u64> = StampCache::new(10, 100);
        assert!(cache.put(1, 1, 60).is_empty());
        assert_eq!(cache.put(1, 2, 70), vec![1]);
        assert_eq!(cache.weight(), 70);
        // An entry heavier than the bound is cached alone.
        assert_eq!(cache.put(2, 2, 500), vec![2]);
        assert_eq!((cache.len(), cache.weight()), (1, 500));
    }

    #[test]
    fn a_capacity_of_zero_holds_one() {
        let mut cache: StampCache<u64, u64> = StampCache::new(0, u64::MAX);
        assert!(cache.put(1, 1, 1).is_empty());
        assert_eq!(cache.put(2, 2, 1), vec![1]);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&2), Some(2));
    }
}
