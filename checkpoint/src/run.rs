//! The sorted-run abstraction every layer of a view is made of: a checkpoint file, or an
//! in-memory delta. A run maps byte keys to byte values or to tombstones (a key deleted
//! relative to the layer below).

use std::collections::BTreeMap;
use std::ops::Bound;

/// What one run knows about a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The run says nothing about the key: look in the layer below.
    Absent,
    /// The run deletes the key: it is absent from the view, whatever lower layers say.
    Deleted,
    /// The key's value.
    Value(&'a [u8]),
}

/// One entry of a run: a key and its value, or `None` for a tombstone.
pub type RunEntry<'a> = (&'a [u8], Option<&'a [u8]>);

/// A key and its hash, computed once for every run a lookup asks: checkpoints find keys by
/// this hash (their point index), and a view may ask a dozen layers about one key.
#[derive(Clone, Copy, Debug)]
pub struct HashedKey<'k> {
    key: &'k [u8],
    hash: u64,
}

impl<'k> HashedKey<'k> {
    /// `key`, hashed.
    #[must_use]
    #[inline]
    pub fn new(key: &'k [u8]) -> HashedKey<'k> {
        HashedKey {
            key,
            hash: crate::points::hash(key),
        }
    }

    /// The key.
    #[must_use]
    #[inline]
    pub fn key(&self) -> &'k [u8] {
        self.key
    }

    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }
}

/// A sorted run of entries with tombstones.
///
/// Implementations **must** yield `range` entries in strictly increasing key order, and `get`
/// **must** agree with `range` for every key.
pub trait SortedRun: Send + Sync {
    /// What the run says about `key`.
    fn get(&self, key: &[u8]) -> Lookup<'_>;

    /// [`SortedRun::get`] of a key hashed once for all the runs a lookup asks. The default
    /// asks `get`; runs that look keys up by hash use the one given.
    fn get_hashed(&self, key: &HashedKey<'_>) -> Lookup<'_> {
        self.get(key.key())
    }

    /// Starts loading the memory a `get(key)` reads first, without waiting for it: a reader
    /// that will ask several runs about one key calls this on all of them first, so that their
    /// cache misses overlap instead of following one another. Only a hint; the default does
    /// nothing.
    fn prefetch(&self, key: &HashedKey<'_>) {
        let _ = key;
    }

    /// The entries with keys within the bounds, in key order. The bounds are only borrowed for
    /// the call; the iterator borrows the run.
    fn range<'a>(
        &'a self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Box<dyn Iterator<Item = RunEntry<'a>> + 'a>;

    /// Number of entries (values and tombstones).
    fn len(&self) -> usize;

    /// Whether the run has no entry.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An in-memory run, for deltas being built and for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemRun {
    entries: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl MemRun {
    /// An empty run.
    #[must_use]
    pub fn new() -> MemRun {
        MemRun::default()
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.entries.insert(key.to_vec(), Some(value.to_vec()));
    }

    /// Moves every entry of `newer` into this run; `newer`'s entries replace this run's for
    /// the same keys. Moves the keys and values without copying them.
    pub fn append(&mut self, newer: MemRun) {
        if self.entries.is_empty() {
            self.entries = newer.entries;
            return;
        }
        // One insert per entry: `BTreeMap::append` rebuilds the whole map, which costs more
        // for the few entries one event changes.
        for (key, value) in newer.entries {
            self.entries.insert(key, value);
        }
    }

    /// Sets `key` to `value` (`None`: a tombstone), taking both without copying them.
    pub fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.entries.insert(key, value);
    }

    /// Records a tombstone for `key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.entries.insert(key.to_vec(), None);
    }

    /// Forgets `key` entirely (no tombstone): for a run that holds a full state, where an
    /// absent key needs no marker.
    pub fn remove(&mut self, key: &[u8]) {
        self.entries.remove(key);
    }

    /// The entries, in key order.
    #[must_use]
    pub fn entries(&self) -> &BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        &self.entries
    }
}

impl FromIterator<(Vec<u8>, Option<Vec<u8>>)> for MemRun {
    fn from_iter<I: IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>>(iter: I) -> Self {
        MemRun {
            entries: iter.into_iter().collect(),
        }
    }
}

fn owned(bound: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match bound {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl SortedRun for MemRun {
    fn get(&self, key: &[u8]) -> Lookup<'_> {
        match self.entries.get(key) {
            None => Lookup::Absent,
            Some(None) => Lookup::Deleted,
            Some(Some(value)) => Lookup::Value(value),
        }
    }

    fn range<'a>(
        &'a self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Box<dyn Iterator<Item = RunEntry<'a>> + 'a> {
        // An inverted range is empty, not a panic (BTreeMap::range panics on it).
        let inverted = match (start, end) {
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e))
            | (Bound::Excluded(s), Bound::Included(e)) => s >= e,
            _ => false,
        };
        if inverted {
            return Box::new(std::iter::empty());
        }
        Box::new(
            self.entries
                .range((owned(start), owned(end)))
                .map(|(k, v)| (k.as_slice(), v.as_deref())),
        )
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_run_lookups_and_ranges() {
        let mut run = MemRun::new();
        run.put(b"b", b"2");
        run.delete(b"c");
        run.put(b"a", b"1");
        assert_eq!(run.get(b"a"), Lookup::Value(b"1"));
        assert_eq!(run.get(b"c"), Lookup::Deleted);
        assert_eq!(run.get(b"z"), Lookup::Absent);
        let all: Vec<_> = run.range(Bound::Unbounded, Bound::Unbounded).collect();
        assert_eq!(
            all,
            vec![
                (&b"a"[..], Some(&b"1"[..])),
                (&b"b"[..], Some(&b"2"[..])),
                (&b"c"[..], None)
            ]
        );
        let some: Vec<_> = run
            .range(Bound::Excluded(&b"a"[..]), Bound::Included(&b"b"[..]))
            .collect();
        assert_eq!(some, vec![(&b"b"[..], Some(&b"2"[..]))]);
        assert_eq!(
            run.range(Bound::Included(&b"c"[..]), Bound::Excluded(&b"a"[..]))
                .count(),
            0
        );
        assert_eq!(run.len(), 3);
    }

    #[test]
    fn append_lets_the_newer_run_win() {
        let mut older = MemRun::new();
        older.put(b"a", b"1");
        older.put(b"b", b"1");
        let mut newer = MemRun::new();
        newer.delete(b"a");
        newer.put(b"c", b"2");
        older.append(newer.clone());
        let want: MemRun = [
            (b"a".to_vec(), None),
            (b"b".to_vec(), Some(b"1".to_vec())),
            (b"c".to_vec(), Some(b"2".to_vec())),
        ]
        .into_iter()
        .collect();
        assert_eq!(older, want);
        let mut empty = MemRun::new();
        empty.append(newer.clone());
        assert_eq!(empty, newer);
    }
}
