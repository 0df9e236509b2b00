//! One event's changes while its state machine applies it: the scratch layer that makes
//! replay isolate events (see `crate::replay`).
//!
//! Most events change a few keys, and a view replays up to `fanout - 1` of them, so this sits
//! on the read path of every view. A `MemRun` per event cost a B-tree node, an insert into it
//! per change and a walk to move the entries out; here the first [`SMALL_MAX`] changes live in
//! a plain vector, unsorted and one entry per key, searched linearly. An event that changes
//! more keys moves them into a `MemRun` once and continues there.
//!
//! Invariants:
//! - At most one of `small` and `large` holds entries, and `small` holds at most
//!   [`SMALL_MAX`] entries, each key once.

use std::ops::{Bound, RangeBounds};

use helios_checkpoint::{Lookup, MemRun, RunEntry, SortedRun};

/// Changes kept in the unsorted vector before moving to a sorted run.
const SMALL_MAX: usize = 16;

/// The changes one event has made so far: values and tombstones.
#[derive(Debug, Default)]
pub(crate) struct ChangeSet {
    small: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    large: MemRun,
}

impl ChangeSet {
    /// Sets `key` to `value` (`None`: deleted), replacing an earlier change of the same key.
    pub(crate) fn set(&mut self, key: &[u8], value: Option<&[u8]>) {
        let value = value.map(<[u8]>::to_vec);
        if self.large.is_empty() {
            if let Some(entry) = self.small.iter_mut().find(|(k, _)| k.as_slice() == key) {
                entry.1 = value;
                return;
            }
            if self.small.len() < SMALL_MAX {
                self.small.push((key.to_vec(), value));
                return;
            }
            for (k, v) in self.small.drain(..) {
                self.large.insert(k, v);
            }
        }
        self.large.insert(key.to_vec(), value);
    }

    /// Moves every change into `run`, replacing its entries for the same keys.
    pub(crate) fn move_into(self, run: &mut MemRun) {
        if self.large.is_empty() {
            for (key, value) in self.small {
                run.insert(key, value);
            }
        } else {
            run.append(self.large);
        }
    }
}

impl SortedRun for ChangeSet {
    fn get(&self, key: &[u8]) -> Lookup<'_> {
        if !self.large.is_empty() {
            return self.large.get(key);
        }
        match self.small.iter().find(|(k, _)| k.as_slice() == key) {
            None => Lookup::Absent,
            Some((_, None)) => Lookup::Deleted,
            Some((_, Some(value))) => Lookup::Value(value),
        }
    }

    fn range<'a>(
        &'a self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Box<dyn Iterator<Item = RunEntry<'a>> + 'a> {
        if !self.large.is_empty() {
            return self.large.range(start, end);
        }
        // At most SMALL_MAX entries: sort the ones in range on demand (machines rarely scan).
        let mut entries: Vec<RunEntry<'a>> = self
            .small
            .iter()
            .filter(|(k, _)| RangeBounds::<[u8]>::contains(&(start, end), k.as_slice()))
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        Box::new(entries.into_iter())
    }

    fn len(&self) -> usize {
        self.small.len() + self.large.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{QuickCheck, TestResult};
    use std::collections::BTreeMap;

    /// Random changes (key, value or delete) against a `BTreeMap`: lookups, ranges and the
    /// moved result agree, across the switch from the vector to the sorted run.
    #[test]
    fn agrees_with_a_map() {
        fn prop(changes: Vec<(u8, Option<u8>)>, start: u8, end: u8) -> TestResult {
            let mut set = ChangeSet::default();
            let mut model: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
            for &(key, value) in &changes {
                // Keys from a small space, so that keys repeat; values of one byte.
                let key = vec![b'k', key % 40];
                let value = value.map(|v| vec![v]);
                set.set(&key, value.as_deref());
                model.insert(key, value);
            }
            if set.len() != model.len() {
                return TestResult::error(format!("len {} vs {}", set.len(), model.len()));
            }
            for key in 0..40u8 {
                let key = vec![b'k', key];
                let want = match model.get(&key) {
                    None => Lookup::Absent,
                    Some(None) => Lookup::Deleted,
                    Some(Some(v)) => Lookup::Value(v),
                };
                if set.get(&key) != want {
                    return TestResult::error(format!("get {key:?}"));
                }
            }
            let (start, end) = ([b'k', start % 40], [b'k', end % 40]);
            let got: Vec<_> = set
                .range(Bound::Included(&start[..]), Bound::Excluded(&end[..]))
                .collect();
            let want: Vec<_> = model
                .iter()
                .filter(|(k, _)| k.as_slice() >= &start[..] && k.as_slice() < &end[..])
                .map(|(k, v)| (k.as_slice(), v.as_deref()))
                .collect();
            if got != want {
                return TestResult::error(format!("range {got:?} vs {want:?}"));
            }
            let mut run = MemRun::new();
            run.put(b"k\x00", b"older");
            set.move_into(&mut run);
            let mut expected = model.clone();
            expected
                .entry(b"k\x00".to_vec())
                .or_insert(Some(b"older".to_vec()));
            if run.entries() != &expected {
                return TestResult::error("moved entries differ");
            }
            TestResult::passed()
        }
        QuickCheck::new()
            .tests(500)
            .quickcheck(prop as fn(Vec<(u8, Option<u8>)>, u8, u8) -> TestResult);
    }
}
