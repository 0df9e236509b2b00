//! The search of a sorted table in a mapped file whose keys spread evenly over their range
//! (dense ids, hashes): the pack indexes' entries by stream, the catalog snapshot's name
//! hashes. A bisection of such a table, on a store of many streams, touches about twenty
//! scattered entries per cold lookup, each a cache and TLB miss (and, where the table is
//! checked block by block as it is read, a block's checksum); starting where the key falls
//! between the first and the last touches a few neighbouring ones.

/// The first position in `0..count` whose key is not below `target`, in a table sorted by key.
/// `key(k)` reads the key at `k`; one that cannot be read (`None`: a damaged block, say)
/// counts as not below `target`.
///
/// The search starts where `target` falls between the first key and the last, gallops out by
/// doubling steps until the answer is bracketed, then bisects the bracket. Keys out of order
/// (a damaged table) give a wrong position, never a panic or a probe outside `0..count`.
pub fn lower_bound_spread(count: usize, key: impl Fn(usize) -> Option<u64>, target: u64) -> usize {
    let below = |k: usize| key(k).is_some_and(|found| found < target);
    let (mut low, mut high) = bracket(count, &key, &below, target);
    // The answer is in `low..=high`: positions below `low` are below `target`, positions
    // from `high` on are not.
    while low < high {
        let mid = low + (high - low) / 2;
        if below(mid) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    low
}

/// Bounds `(low, high)` on the answer of [`lower_bound_spread`].
fn bracket(
    count: usize,
    key: &impl Fn(usize) -> Option<u64>,
    below: &impl Fn(usize) -> bool,
    target: u64,
) -> (usize, usize) {
    if count < 2 {
        return (0, count);
    }
    let (Some(first), Some(last)) = (key(0), key(count - 1)) else {
        return (0, count);
    };
    if target <= first {
        return (0, 0);
    }
    if target > last {
        return (count, count);
    }
    // first < target <= last: the span is not zero, and the guess is below `count`.
    let span = u128::from(last - first);
    let guess = usize::try_from(u128::from(target - first) * (count as u128 - 1) / span)
        .unwrap_or(count - 1)
        .min(count - 1);
    let mut step = 1usize;
    if below(guess) {
        let mut low = guess + 1;
        loop {
            let probe = guess.saturating_add(step);
            if probe >= count {
                return (low, count);
            }
            if !below(probe) {
                return (low, probe);
            }
            low = probe + 1;
            step = step.saturating_mul(2);
        }
    }
    let mut high = guess;
    loop {
        let Some(probe) = guess.checked_sub(step) else {
            return (0, high);
        };
        if below(probe) {
            return (probe + 1, high);
        }
        high = probe;
        step = step.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Against `partition_point`, on keys bunched or spread, with repeats; and the probes of a
    /// lookup in evenly spread keys stay few.
    #[test]
    fn it_finds_what_a_bisection_finds() {
        fn prop(keys: Vec<u16>, shift: u8, targets: Vec<u64>) -> bool {
            let mut keys: Vec<u64> = keys.iter().map(|&k| u64::from(k) << (shift % 48)).collect();
            keys.sort_unstable();
            let extremes = [0, 1, u64::MAX];
            keys.iter()
                .flat_map(|&k| [k.wrapping_sub(1), k, k.wrapping_add(1)])
                .chain(targets)
                .chain(extremes)
                .all(|target| {
                    let found = lower_bound_spread(keys.len(), |k| keys.get(k).copied(), target);
                    found == keys.partition_point(|&k| k < target)
                })
        }
        quickcheck::QuickCheck::new()
            .tests(300)
            .quickcheck(prop as fn(Vec<u16>, u8, Vec<u64>) -> bool);
    }

    #[test]
    fn evenly_spread_keys_take_a_few_probes() {
        let keys: Vec<u64> = (0..1_000_000u64).map(|k| k * 7 + 3).collect();
        let probes = Cell::new(0u32);
        let key = |k: usize| {
            probes.set(probes.get() + 1);
            keys.get(k).copied()
        };
        for target in [4, 700_001, 3_500_000, 6_999_996] {
            probes.set(0);
            let found = lower_bound_spread(keys.len(), key, target);
            assert_eq!(found, keys.partition_point(|&k| k < target));
            assert!(probes.get() <= 6, "{} probes for {target}", probes.get());
        }
    }

    #[test]
    fn keys_out_of_order_or_unreadable_stay_in_bounds() {
        fn prop(keys: Vec<u64>, unreadable: Vec<usize>, target: u64) -> bool {
            let key = |k: usize| {
                assert!(k < keys.len(), "probe {k} past {}", keys.len());
                (!unreadable.contains(&k)).then(|| keys[k])
            };
            lower_bound_spread(keys.len(), key, target) <= keys.len()
        }
        quickcheck::QuickCheck::new()
            .tests(300)
            .quickcheck(prop as fn(Vec<u64>, Vec<usize>, u64) -> bool);
    }
}
