//! Reading through a stack of sorted runs, newest first: point lookups and the k-way merge.
//!
//! The rule for every read: the first run, from the newest, that has an entry for a key
//! decides it. A value makes the key live with that value; a tombstone makes it absent,
//! whatever the runs below say.
//!
//! Invariants of this module:
//! - Every run yields its entries in strictly increasing key order (the [`SortedRun`]
//!   contract); debug builds check it as the merge consumes each run.
//! - The merge yields strictly increasing keys, each live key once, with the value of the
//!   newest run that has the key, and never a key whose newest entry is a tombstone.

use std::iter::FusedIterator;
use std::ops::Bound;

use helios_checkpoint::{HashedKey, Lookup, RunEntry, SortedRun};

/// The value of `key` in a stack of runs given newest first, or `None` when the newest entry
/// is a tombstone or no run has the key.
pub(crate) fn lookup<'a>(
    runs: impl IntoIterator<Item = &'a dyn SortedRun>,
    key: &HashedKey<'_>,
) -> Option<&'a [u8]> {
    for run in runs {
        match run.get_hashed(key) {
            Lookup::Absent => {}
            Lookup::Deleted => return None,
            Lookup::Value(value) => return Some(value),
        }
    }
    None
}

/// The exclusive upper bound of the keys that start with `prefix`: the prefix with trailing
/// `0xFF` bytes removed and its last byte incremented, or `None` (no upper bound) when the
/// prefix is empty or all `0xFF`.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if let Some(next) = last.checked_add(1) {
            end.push(next);
            return Some(end);
        }
    }
    None
}

/// One run being merged: its iterator and the entry it is positioned on.
struct Cursor<'a> {
    entries: Box<dyn Iterator<Item = RunEntry<'a>> + 'a>,
    /// The smallest entry of this run not yet consumed, `None` once the run is exhausted.
    head: Option<RunEntry<'a>>,
}

impl<'a> Cursor<'a> {
    fn new(mut entries: Box<dyn Iterator<Item = RunEntry<'a>> + 'a>) -> Cursor<'a> {
        let head = entries.next();
        Cursor { entries, head }
    }

    fn advance(&mut self) {
        let next = self.entries.next();
        debug_assert!(
            match (self.head, next) {
                (Some((previous, _)), Some((key, _))) => previous < key,
                _ => true,
            },
            "a sorted run yielded keys out of order"
        );
        self.head = next;
    }
}

/// The live entries of a stack of runs in key order: a k-way merge that lets the newest run
/// holding a key decide it and skips keys whose newest entry is a tombstone.
///
/// Items borrow keys and values from the runs; the merge allocates only when it is created
/// (one cursor per run, and whatever each run's iterator needs), never per key. Each step
/// scans the cursors' heads for the smallest key, which is `O(runs)` per entry read: the
/// hierarchy has a handful of runs (one per level plus the overlay), where a linear scan of a
/// small array beats a heap.
pub struct ViewIter<'a> {
    /// Newest first: on equal keys the cursor with the lowest index wins.
    cursors: Vec<Cursor<'a>>,
}

impl<'a> ViewIter<'a> {
    /// The live entries within the bounds of a stack of runs given newest first.
    pub(crate) fn new(
        runs: impl IntoIterator<Item = &'a dyn SortedRun>,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> ViewIter<'a> {
        let cursors = runs
            .into_iter()
            .filter(|run| !run.is_empty())
            .map(|run| Cursor::new(run.range(start, end)))
            .collect();
        ViewIter { cursors }
    }

    /// The live entries whose keys start with `prefix`.
    pub(crate) fn prefix(
        runs: impl IntoIterator<Item = &'a dyn SortedRun>,
        prefix: &[u8],
    ) -> ViewIter<'a> {
        let end = prefix_end(prefix);
        let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        ViewIter::new(runs, Bound::Included(prefix), end)
    }
}

impl<'a> Iterator for ViewIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            // The newest cursor positioned on the smallest key: strict `<` keeps the first
            // (newest) of equal keys.
            let mut winner: Option<RunEntry<'a>> = None;
            for cursor in &self.cursors {
                if let Some(entry) = cursor.head
                    && winner.is_none_or(|(smallest, _)| entry.0 < smallest)
                {
                    winner = Some(entry);
                }
            }
            let (key, value) = winner?;
            // Every run that has this key has now been decided by the winner: step past it.
            for cursor in &mut self.cursors {
                if cursor.head.is_some_and(|(head, _)| head == key) {
                    cursor.advance();
                }
            }
            if let Some(value) = value {
                return Some((key, value));
            }
            // A tombstone: the key is absent from the view; look at the next key.
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Tombstones may hide every entry; at most every remaining entry is live and distinct.
        let upper = self.cursors.iter().try_fold(0usize, |sum, cursor| {
            let (_, upper) = cursor.entries.size_hint();
            sum.checked_add(usize::from(cursor.head.is_some()))?
                .checked_add(upper?)
        });
        (0, upper)
    }
}

// Once every head is `None` no cursor is advanced again, so `next` keeps returning `None`.
impl FusedIterator for ViewIter<'_> {}

impl std::fmt::Debug for ViewIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewIter")
            .field("runs_count", &self.cursors.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use helios_checkpoint::MemRun;

    fn run(entries: &[(&str, Option<&str>)]) -> MemRun {
        entries
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
            .collect()
    }

    fn all<'a>(runs: &[&'a dyn SortedRun]) -> Vec<(&'a str, &'a str)> {
        ViewIter::new(runs.iter().copied(), Bound::Unbounded, Bound::Unbounded)
            .map(|(k, v)| {
                (
                    std::str::from_utf8(k).expect("test keys are UTF-8"),
                    std::str::from_utf8(v).expect("test values are UTF-8"),
                )
            })
            .collect()
    }

    #[test]
    fn no_runs_and_empty_runs_are_empty() {
        assert!(all(&[]).is_empty());
        let empty = MemRun::new();
        assert!(all(&[&empty, &empty, &empty]).is_empty());
        assert_eq!(
            lookup([&empty as &dyn SortedRun, &empty], &HashedKey::new(b"a")),
            None
        );
    }

    #[test]
    fn newest_entry_decides_each_key() {
        let overlay = run(&[("a", Some("overlay")), ("d", None)]);
        let delta = run(&[("a", None), ("b", None), ("c", Some("delta"))]);
        let empty = MemRun::new();
        let full = run(&[
            ("a", Some("full")),
            ("b", Some("full")),
            ("d", Some("full")),
            ("e", Some("full")),
        ]);
        let runs: [&dyn SortedRun; 4] = [&overlay, &delta, &empty, &full];
        // `a`: deleted in the delta, put again in the overlay. `b`: deleted in the delta.
        // `d`: a tombstone in the overlay over a full value.
        assert_eq!(
            all(&runs),
            vec![("a", "overlay"), ("c", "delta"), ("e", "full")]
        );
        for (key, expected) in [
            ("a", Some("overlay")),
            ("b", None),
            ("c", Some("delta")),
            ("d", None),
            ("e", Some("full")),
            ("f", None),
        ] {
            assert_eq!(
                lookup(runs, &HashedKey::new(key.as_bytes())),
                expected.map(str::as_bytes),
                "key {key}"
            );
        }
    }

    #[test]
    fn tombstones_only_and_tombstones_at_the_bottom() {
        let top = run(&[("a", None), ("b", None)]);
        let bottom = run(&[("a", None), ("c", None)]);
        assert!(all(&[&top, &bottom]).is_empty());
        let mut iter = ViewIter::new(
            [&top as &dyn SortedRun, &bottom],
            Bound::Unbounded,
            Bound::Unbounded,
        );
        assert_eq!(iter.next(), None);
        assert_eq!(iter.next(), None, "fused");
    }

    #[test]
    fn ranges_and_prefixes_apply_to_every_run() {
        let top = run(&[("ab", Some("top")), ("b", None)]);
        let bottom = run(&[("a", Some("1")), ("abc", Some("2")), ("b", Some("3"))]);
        let runs = [&top as &dyn SortedRun, &bottom];
        let range: Vec<_> = ViewIter::new(runs, Bound::Excluded(b"a"), Bound::Included(b"b"))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(range, vec![&b"ab"[..], b"abc"]);
        let prefix: Vec<_> = ViewIter::prefix(runs, b"ab").map(|(k, _)| k).collect();
        assert_eq!(prefix, vec![&b"ab"[..], b"abc"]);
        assert_eq!(ViewIter::prefix(runs, b"").count(), 3);
        assert_eq!(
            ViewIter::new(runs, Bound::Included(b"b"), Bound::Excluded(b"a")).count(),
            0
        );
    }

    #[test]
    fn prefix_end_skips_trailing_ff() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"a\xfe\xff"), Some(b"a\xff".to_vec()));
    }

    #[test]
    fn many_runs_merge_like_a_fold() {
        // Twenty runs, each writing or deleting a shifting set of keys.
        let runs: Vec<MemRun> = (0..20u8)
            .map(|r| {
                (0..30u8)
                    .filter(|k| (k + r) % 3 != 0)
                    .map(|k| {
                        let value = ((k + r) % 4 != 0).then(|| vec![r]);
                        (vec![k], value)
                    })
                    .collect()
            })
            .collect();
        // Reference: apply runs from the bottom (last) to the top (first).
        let mut model = std::collections::BTreeMap::new();
        for run in runs.iter().rev() {
            for (k, v) in run.entries() {
                match v {
                    Some(v) => model.insert(k.clone(), v.clone()),
                    None => model.remove(k),
                };
            }
        }
        let refs: Vec<&dyn SortedRun> = runs.iter().map(|r| r as &dyn SortedRun).collect();
        let merged: Vec<(Vec<u8>, Vec<u8>)> =
            ViewIter::new(refs.iter().copied(), Bound::Unbounded, Bound::Unbounded)
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
        assert_eq!(merged, expected);
    }
}
