//! A static search tree over sorted integers, laid out for the CPU cache.
//!
//! A point lookup in a checkpoint first finds the last restart point at or below the key by
//! its 8-byte search key. Over 100,000 entries that is a search over ~12,500 integers; a plain
//! binary search touches a new cache line at nearly every one of its ~14 probes, and with
//! thousands of checkpoints mapped those lines are rarely in the cache (it was 30% of warm
//! read time). This tree stores the keys in 64-byte lines of 8 and, above them, the first key
//! of every line, level after level, up to a level that fits one line. A search reads one line
//! per level, top down: 5 lines for 12,500 keys, each compared in one go.

/// Keys per line: 8 of 8 bytes, one 64-byte cache line.
pub(crate) const LINE_LEN: usize = 8;

/// One cache line of keys.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
struct Line([u64; LINE_LEN]);

/// The most levels a tree has: 8^11 lines cover more than the 2^32 restarts a file can have.
const LEVELS_MAX: usize = 12;

/// A search tree over a sorted (non-decreasing) sequence of `u64`.
///
/// All levels live in one allocation, and where each starts is kept inline, so that a search
/// follows no pointer but the one to the lines.
#[derive(Debug, Default)]
pub(crate) struct SearchTree {
    /// The levels' lines back to back. Level 0 holds the keys; key `j` of level `l + 1` is the
    /// first key of line `j` of level `l`. The last level has one line. Lines are padded with
    /// `u64::MAX`.
    lines: Box<[Line]>,
    /// The index in `lines` of each level's first line.
    starts: [u32; LEVELS_MAX],
    /// The number of real (not padding) keys at each level.
    lens: [u32; LEVELS_MAX],
    /// The number of levels (0 for no keys).
    depth: usize,
}

/// A line holding `keys` (at most [`LINE_LEN`]), padded with `u64::MAX`.
fn line_of(keys: impl Iterator<Item = u64>) -> Line {
    let mut line = Line([u64::MAX; LINE_LEN]);
    for (slot, key) in line.0.iter_mut().zip(keys) {
        *slot = key;
    }
    line
}

impl SearchTree {
    /// Bytes of memory the tree holds.
    pub(crate) fn memory_bytes(&self) -> usize {
        size_of_val(&*self.lines)
    }

    /// The tree over `keys`, which must be sorted. One allocation, sized first: most
    /// checkpoints of a many-stream store are a few entries, and their trees are built at their
    /// first read.
    pub(crate) fn new(keys: &[u64]) -> SearchTree {
        debug_assert!(keys.is_sorted(), "search tree keys must be sorted");
        let mut tree = SearchTree::default();
        if keys.is_empty() {
            return tree;
        }
        let mut total = 0;
        let mut len = keys.len();
        loop {
            let lines = len.div_ceil(LINE_LEN);
            total += lines;
            if lines == 1 {
                break;
            }
            len = lines;
        }
        let mut lines: Vec<Line> = Vec::with_capacity(total);
        lines.extend(
            keys.chunks(LINE_LEN)
                .map(|chunk| line_of(chunk.iter().copied())),
        );
        let (mut start, mut len) = (0, keys.len());
        loop {
            // Cannot truncate: a checkpoint has fewer than 2^32 restarts, so fewer lines.
            tree.starts[tree.depth] = u32::try_from(start).unwrap_or(u32::MAX);
            tree.lens[tree.depth] = u32::try_from(len).unwrap_or(u32::MAX);
            tree.depth += 1;
            let end = lines.len();
            if end - start == 1 {
                tree.lines = lines.into_boxed_slice();
                return tree;
            }
            // The next level: the first key of each line of this one.
            for from in (start..end).step_by(LINE_LEN) {
                let to = (from + LINE_LEN).min(end);
                let line = line_of((from..to).map(|j| lines[j].0[0]));
                lines.push(line);
            }
            (start, len) = (end, end - start);
        }
    }

    /// The number of keys.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lens[0] as usize
    }

    /// Key `i` (`i < len()`).
    pub(crate) fn key(&self, i: usize) -> u64 {
        self.lines[i / LINE_LEN].0[i % LINE_LEN]
    }

    /// The number of keys at or below `x`: the index of the first key above it.
    #[cfg(test)]
    pub(crate) fn count_at_or_below(&self, x: u64) -> usize {
        self.count_at_or_below_touching(x, |_| {})
    }

    /// As [`SearchTree::count_at_or_below`]; calls `touch` with the index of the leaf line
    /// (keys `8 * line ..`) it is about to read, before reading it, so that the caller can
    /// start loading what it keeps for those keys while the leaf line loads.
    #[inline]
    pub(crate) fn count_at_or_below_touching(&self, x: u64, touch: impl FnOnce(usize)) -> usize {
        let mut touch = Some(touch);
        // At each level, the keys at or below `x` are a prefix; `line` is the line of that
        // level where the prefix ends (every line before it lies wholly at or below `x`,
        // since its keys are at most the next line's first key).
        let mut line = 0;
        for l in (0..self.depth).rev() {
            if l == 0
                && let Some(touch) = touch.take()
            {
                touch(line);
            }
            let keys = &self.lines[self.starts[l] as usize + line].0;
            let within = keys.iter().filter(|&&key| key <= x).count();
            // Padding counts when `x` is u64::MAX; no real key lies past `lens[l]`.
            let count = (line * LINE_LEN + within).min(self.lens[l] as usize);
            if l == 0 {
                return count;
            }
            // Go down to the line whose first key is the last one at or below `x`; there is
            // none when `x` is below every key (possible only at the top, whose first key is
            // the smallest).
            let Some(last) = count.checked_sub(1) else {
                return 0;
            };
            line = last;
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{QuickCheck, TestResult};

    #[test]
    fn counts_agree_with_a_linear_count() {
        fn prop(mut keys: Vec<u64>, probes: Vec<u64>, small: bool) -> TestResult {
            if small {
                // Few distinct values: many duplicates and probes that hit them.
                for key in &mut keys {
                    *key %= 8;
                }
            }
            keys.sort_unstable();
            let tree = SearchTree::new(&keys);
            if tree.len() != keys.len() {
                return TestResult::error("wrong length");
            }
            let edges = [0, 1, 7, 8, u64::MAX - 1, u64::MAX];
            for &x in probes.iter().chain(&keys).chain(&edges) {
                let x = if small { x % 9 } else { x };
                let want = keys.iter().filter(|&&k| k <= x).count();
                let got = tree.count_at_or_below(x);
                if got != want {
                    return TestResult::error(format!("count({x}) = {got}, want {want}"));
                }
            }
            if (0..keys.len()).any(|i| tree.key(i) != keys[i]) {
                return TestResult::error("key(i) differs");
            }
            TestResult::passed()
        }
        QuickCheck::new()
            .tests(300)
            .quickcheck(prop as fn(Vec<u64>, Vec<u64>, bool) -> TestResult);
    }

    #[test]
    fn large_trees_have_one_line_per_level() {
        // 12,500 keys (a 100,000-entry checkpoint's restarts): 5 levels, the last one line.
        let keys: Vec<u64> = (0..12_500u64).map(|i| i * 3).collect();
        let tree = SearchTree::new(&keys);
        assert_eq!(tree.depth, 5);
        assert_eq!(tree.lines.len() - tree.starts[4] as usize, 1);
        for (i, &key) in keys.iter().enumerate().step_by(97) {
            assert_eq!(tree.count_at_or_below(key), i + 1);
            assert_eq!(tree.count_at_or_below(key + 1), i + 1);
        }
        assert_eq!(tree.count_at_or_below(u64::MAX), keys.len());
        assert_eq!(SearchTree::new(&[]).count_at_or_below(5), 0);
    }
}
