//! Changes to a stream's state, in key order: what one event changes while its state machine
//! applies it, and what the events a view replayed changed together (the overlay).
//!
//! Both sit on the read path of every view: a view replays up to `fanout - 1` events, each
//! changing a few keys, and each point read asks the overlay first. B-trees of owned keys and
//! values cost two allocations per change, a node per map, and as many frees when the view was
//! dropped. So a small set of changes lives in two vectors: the keys and values back to back in
//! one buffer, and a list of where each entry's key and value are in it, sorted by key (by the
//! key's first 8 bytes as an integer, then the rest). Past [`SMALL_MAX_ENTRIES`] entries or
//! [`SMALL_MAX_BYTES`] bytes (an import, or a machine that rewrites many keys), the entries move
//! once into a [`MemRun`] and stay there. A per-event change set ([`Changes::unsorted`]) keeps
//! its list in the order keys were first set, at most [`UNSORTED_MAX_ENTRIES`] long: it is
//! searched by a scan and read back once, when it is merged into the overlay.
//!
//! Invariants:
//! - At most one of the small form (`slots`) and the large form (`large`) holds entries.
//! - Unless `unsorted`, `slots` is sorted by key. Each key has one slot; each slot's ranges lie
//!   inside `bytes`, and its `head` is [`head_of`] its key.
//! - `bytes` is at most [`SMALL_MAX_BYTES`] long, so every offset fits in a `u32`. It also
//!   holds the old bytes of values that were replaced by longer ones; the limit bounds them.

use std::fmt;
use std::ops::{Bound, RangeBounds};

use helios_checkpoint::{Lookup, MemRun, RunEntry, SortedRun};

/// Entries kept in the small form; one more moves them all to a [`MemRun`].
const SMALL_MAX_ENTRIES: usize = 256;

/// Entries an unsorted change set keeps in its small form (found by a scan).
const UNSORTED_MAX_ENTRIES: usize = 16;

/// Bytes of keys and values kept in the small form's buffer; a change that would pass it moves
/// the entries to a [`MemRun`].
const SMALL_MAX_BYTES: usize = 256 * 1024;

/// A slot's `value_len` for a tombstone.
const TOMBSTONE: u32 = u32::MAX;

/// `n`, an offset or a length in the small form's buffer, as a `u32`: the buffer never passes
/// [`SMALL_MAX_BYTES`].
fn small_u32(n: usize) -> u32 {
    u32::try_from(n).expect("the small form's buffer stays under SMALL_MAX_BYTES")
}

/// `key`'s first 8 bytes, zero-padded, as a big-endian integer. Keys whose heads differ
/// compare as their heads do; keys with equal heads need the whole comparison.
fn head_of(key: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let n = key.len().min(8);
    head[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(head)
}

/// The key of `slot` in `bytes`.
fn key_in(bytes: &[u8], slot: Slot) -> &[u8] {
    &bytes[slot.key_at as usize..(slot.key_at + slot.key_len) as usize]
}

/// How the key of `slot` in `bytes` compares with `key`, whose head is `head`.
fn compare(bytes: &[u8], slot: Slot, head: u64, key: &[u8]) -> std::cmp::Ordering {
    slot.head
        .cmp(&head)
        .then_with(|| key_in(bytes, slot).cmp(key))
}

/// Where one entry of the small form is in `bytes`.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The key's first 8 bytes, zero-padded, big-endian: comparing these orders most keys
    /// without reading the buffer.
    head: u64,
    key_at: u32,
    key_len: u32,
    value_at: u32,
    /// [`TOMBSTONE`] for a deleted key.
    value_len: u32,
}

/// Values and tombstones by key, in key order: the changes some events made to a state. Later
/// changes of a key replace earlier ones.
///
/// Read it as a [`SortedRun`] (a view's newest layer) or with [`Changes::iter`].
#[derive(Clone, Default)]
pub struct Changes {
    /// The small form's keys and values, back to back.
    bytes: Vec<u8>,
    /// The small form's entries: sorted by key, or in the order they were first set for a
    /// per-event change set (see [`Changes::unsorted`]).
    slots: Vec<Slot>,
    /// The large form.
    large: MemRun,
    /// Whether `slots` is left unsorted (a per-event change set, [`Changes::unsorted`]).
    unsorted: bool,
}

impl Changes {
    /// No changes.
    #[must_use]
    pub fn new() -> Changes {
        Changes::default()
    }

    /// The change set of one event being applied: a few changes, most of them read back at
    /// once by the merge into the overlay, so its small form is not kept sorted (a change is
    /// found by a scan, and ranges sort on demand) and holds at most [`UNSORTED_MAX_ENTRIES`].
    pub(crate) fn unsorted() -> Changes {
        Changes {
            unsorted: true,
            ..Changes::default()
        }
    }

    /// Sets `key` to `value` (`None`: deleted), replacing an earlier change of the same key.
    pub fn set(&mut self, key: &[u8], value: Option<&[u8]>) {
        if !self.large.is_empty() {
            self.large.insert(key.to_vec(), value.map(<[u8]>::to_vec));
            return;
        }
        let head = head_of(key);
        let value_len = value.map_or(0, <[u8]>::len);
        let found = self.find(head, key);
        let grows = match found {
            Ok(_) => value_len,
            Err(_) => key.len() + value_len,
        };
        let max_entries = if self.unsorted {
            UNSORTED_MAX_ENTRIES
        } else {
            SMALL_MAX_ENTRIES
        };
        let too_many = found.is_err() && self.slots.len() == max_entries;
        if too_many || self.bytes.len() + grows > SMALL_MAX_BYTES {
            self.spill();
            self.large.insert(key.to_vec(), value.map(<[u8]>::to_vec));
            return;
        }
        match found {
            Ok(i) => {
                let slot = self.slots[i];
                let value_len = match value {
                    None => TOMBSTONE,
                    Some(value) => {
                        let value_at = if slot.value_len != TOMBSTONE
                            && small_u32(value.len()) <= slot.value_len
                        {
                            slot.value_at
                        } else {
                            small_u32(self.bytes.len())
                        };
                        self.write_at(value_at, value);
                        self.slots[i].value_at = value_at;
                        small_u32(value.len())
                    }
                };
                self.slots[i].value_len = value_len;
            }
            Err(i) => {
                if self.slots.capacity() == 0 {
                    // A view's overlay holds a few changes: one allocation each, not a
                    // doubling series.
                    self.slots.reserve(16);
                    self.bytes.reserve(1024);
                }
                let key_at = small_u32(self.bytes.len());
                self.bytes.extend_from_slice(key);
                let value_at = small_u32(self.bytes.len());
                self.bytes.extend_from_slice(value.unwrap_or_default());
                self.slots.insert(
                    i,
                    Slot {
                        head,
                        key_at,
                        key_len: small_u32(key.len()),
                        value_at,
                        value_len: value.map_or(TOMBSTONE, |v| small_u32(v.len())),
                    },
                );
            }
        }
    }

    /// Merges `newer` into these changes (its entries win for the same keys) and leaves it
    /// empty. Keeps `newer`'s buffers for reuse; moves a large `newer` without copying.
    pub fn absorb(&mut self, newer: &mut Changes) {
        if newer.large.is_empty() && self.is_empty() && !self.unsorted {
            // The first event of a view: take its buffers whole, sorted, instead of copying.
            let bytes = &newer.bytes;
            newer
                .slots
                .sort_unstable_by(|a, b| compare(bytes, *a, b.head, key_in(bytes, *b)));
            std::mem::swap(&mut self.bytes, &mut newer.bytes);
            std::mem::swap(&mut self.slots, &mut newer.slots);
            newer.clear();
            return;
        }
        if newer.large.is_empty() {
            for i in 0..newer.slots.len() {
                let (key, value) = newer.entry(newer.slots[i]);
                self.set(key, value);
            }
            newer.clear();
            return;
        }
        let large = std::mem::take(&mut newer.large);
        newer.clear();
        if self.is_empty() {
            self.large = large;
            return;
        }
        self.spill();
        self.large.append(large);
    }

    /// Number of changed keys (values and tombstones).
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len() + self.large.len()
    }

    /// Whether no key changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every change, keeping the small form's buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.slots.clear();
        self.large = MemRun::new();
    }

    /// Every change, in key order: a key and its value, or `None` for a deletion.
    pub fn iter(&self) -> Box<dyn Iterator<Item = RunEntry<'_>> + '_> {
        self.range(Bound::Unbounded, Bound::Unbounded)
    }

    /// The small form's slot for `key`, whose head is `head` (`Ok`), or where it would go
    /// (`Err`).
    fn find(&self, head: u64, key: &[u8]) -> Result<usize, usize> {
        if self.unsorted {
            return self
                .slots
                .iter()
                .position(|slot| slot.head == head && self.key_of(*slot) == key)
                .ok_or(self.slots.len());
        }
        self.slots
            .binary_search_by(|slot| compare(&self.bytes, *slot, head, key))
    }

    fn key_of(&self, slot: Slot) -> &[u8] {
        key_in(&self.bytes, slot)
    }

    fn entry(&self, slot: Slot) -> RunEntry<'_> {
        let value = (slot.value_len != TOMBSTONE).then(|| {
            &self.bytes[slot.value_at as usize..(slot.value_at + slot.value_len) as usize]
        });
        (self.key_of(slot), value)
    }

    /// Writes `value` at `at`, which is the end of `bytes` or the start of a value at least as
    /// long.
    fn write_at(&mut self, at: u32, value: &[u8]) {
        let at = at as usize;
        if at == self.bytes.len() {
            self.bytes.extend_from_slice(value);
        } else {
            self.bytes[at..at + value.len()].copy_from_slice(value);
        }
    }

    /// Moves the small form's entries, if any, into the large form (empty until now, by the
    /// invariant).
    fn spill(&mut self) {
        if self.slots.is_empty() {
            return;
        }
        self.large = self
            .slots
            .iter()
            .map(|&slot| {
                let (key, value) = self.entry(slot);
                (key.to_vec(), value.map(<[u8]>::to_vec))
            })
            .collect();
        self.bytes.clear();
        self.slots.clear();
    }

    /// The index of the first slot not below `bound` as a start bound.
    fn start_index(&self, bound: Bound<&[u8]>) -> usize {
        match bound {
            Bound::Unbounded => 0,
            Bound::Included(k) => self.slots.partition_point(|s| self.key_of(*s) < k),
            Bound::Excluded(k) => self.slots.partition_point(|s| self.key_of(*s) <= k),
        }
    }

    /// The index just past the last slot within `bound` as an end bound.
    fn end_index(&self, bound: Bound<&[u8]>) -> usize {
        match bound {
            Bound::Unbounded => self.slots.len(),
            Bound::Included(k) => self.slots.partition_point(|s| self.key_of(*s) <= k),
            Bound::Excluded(k) => self.slots.partition_point(|s| self.key_of(*s) < k),
        }
    }
}

impl SortedRun for Changes {
    fn get(&self, key: &[u8]) -> Lookup<'_> {
        if !self.large.is_empty() {
            return self.large.get(key);
        }
        match self.find(head_of(key), key) {
            Err(_) => Lookup::Absent,
            Ok(i) => match self.entry(self.slots[i]).1 {
                None => Lookup::Deleted,
                Some(value) => Lookup::Value(value),
            },
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
        if self.unsorted {
            // A machine that scans while it applies an event: sort the few changes in range.
            let mut entries: Vec<RunEntry<'a>> = self
                .slots
                .iter()
                .map(|&slot| self.entry(slot))
                .filter(|(key, _)| RangeBounds::<[u8]>::contains(&(start, end), *key))
                .collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            return Box::new(entries.into_iter());
        }
        let from = self.start_index(start);
        let to = self.end_index(end).max(from);
        Box::new(self.slots[from..to].iter().map(|&slot| self.entry(slot)))
    }

    fn len(&self) -> usize {
        Changes::len(self)
    }
}

impl PartialEq for Changes {
    /// The same entries, whichever form holds them.
    fn eq(&self, other: &Changes) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Changes {}

impl fmt::Debug for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{QuickCheck, TestResult};
    use std::collections::BTreeMap;

    type Model = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

    /// Key `k` of the tests' key space: short keys; long keys whose first 8 bytes are all the
    /// same, so that only the rest orders them; and keys that differ from each other only after
    /// runs of zero bytes, whose heads (zero-padded) are often equal.
    fn key_of(k: u16) -> Vec<u8> {
        match k % 3 {
            0 => format!("k{k:05}").into_bytes(),
            1 => format!("long/shared/{k:05}").into_bytes(),
            _ => {
                let mut key = b"z".to_vec();
                key.extend(std::iter::repeat_n(0u8, usize::from(k % 11)));
                key.extend(k.to_be_bytes());
                key
            }
        }
    }

    /// Applies `changes` to both, with keys from a space of `keys` so that they repeat, and
    /// values whose length depends on the byte so that a replacement is shorter or longer.
    fn apply(set: &mut Changes, model: &mut Model, changes: &[(u16, Option<u8>)], keys: u16) {
        for &(key, value) in changes {
            let key = key_of(key % keys);
            let value = value.map(|v| vec![v; usize::from(v % 7)]);
            set.set(&key, value.as_deref());
            model.insert(key, value);
        }
    }

    /// Lookups, ranges, the length and the iteration agree with `model`.
    fn check(set: &Changes, model: &Model, keys: u16, start: u16, end: u16) -> Result<(), String> {
        if set.len() != model.len() {
            return Err(format!("len {} vs {}", set.len(), model.len()));
        }
        for key in 0..keys {
            let key = key_of(key);
            let want = match model.get(&key) {
                None => Lookup::Absent,
                Some(None) => Lookup::Deleted,
                Some(Some(v)) => Lookup::Value(v),
            };
            if set.get(&key) != want {
                return Err(format!("get {key:?}"));
            }
        }
        let (start, end) = (key_of(start % keys), key_of(end % keys));
        let bounds = [
            (Bound::Included(&start[..]), Bound::Excluded(&end[..])),
            (Bound::Excluded(&start[..]), Bound::Included(&end[..])),
            (Bound::Unbounded, Bound::Included(&end[..])),
            (Bound::Excluded(&start[..]), Bound::Unbounded),
        ];
        for (lo, hi) in bounds {
            let got: Vec<_> = set.range(lo, hi).collect();
            let want: Vec<_> = model
                .iter()
                .filter(|(k, _)| std::ops::RangeBounds::<[u8]>::contains(&(lo, hi), k.as_slice()))
                .map(|(k, v)| (k.as_slice(), v.as_deref()))
                .collect();
            if got != want {
                return Err(format!("range {lo:?}..{hi:?}: {got:?} vs {want:?}"));
            }
        }
        let all: Vec<_> = set.iter().collect();
        let want: Vec<_> = model
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect();
        if all != want {
            return Err("iter".into());
        }
        Ok(())
    }

    /// Random changes against a `BTreeMap`, in a key space small enough to stay in the small
    /// form and in one large enough to pass `SMALL_MAX_ENTRIES`; then absorbed into older
    /// changes of either form.
    #[test]
    fn agrees_with_a_map() {
        fn prop(
            older: Vec<(u16, Option<u8>)>,
            newer: Vec<(u16, Option<u8>)>,
            (wide, unsorted): (bool, bool),
            start: u16,
            end: u16,
        ) -> TestResult {
            let keys = if wide { 600 } else { 40 };
            let mut set = if unsorted {
                Changes::unsorted()
            } else {
                Changes::new()
            };
            let mut model = Model::new();
            apply(&mut set, &mut model, &newer, keys);
            if let Err(e) = check(&set, &model, keys, start, end) {
                return TestResult::error(e);
            }
            let (mut old, mut old_model) = (Changes::new(), Model::new());
            apply(&mut old, &mut old_model, &older, keys);
            old.absorb(&mut set);
            old_model.extend(model);
            if !set.is_empty() {
                return TestResult::error("absorb left entries behind");
            }
            if let Err(e) = check(&old, &old_model, keys, start, end) {
                return TestResult::error(format!("after absorb: {e}"));
            }
            TestResult::passed()
        }
        QuickCheck::new().tests(300).quickcheck(
            prop as fn(
                Vec<(u16, Option<u8>)>,
                Vec<(u16, Option<u8>)>,
                (bool, bool),
                u16,
                u16,
            ) -> TestResult,
        );
    }

    #[test]
    fn moves_to_the_large_form_past_the_limits_and_stays_correct() {
        let (mut set, mut model) = (Changes::new(), Model::new());
        let changes: Vec<(u16, Option<u8>)> = (0..600).map(|k| (k, Some(3))).collect();
        apply(&mut set, &mut model, &changes, 600);
        assert!(set.slots.is_empty(), "600 entries are past the small form");
        if let Err(e) = check(&set, &model, 600, 10, 500) {
            panic!("{e}");
        }

        // Few entries, but values that fill the buffer.
        let mut big = Changes::new();
        let value = vec![7u8; SMALL_MAX_BYTES / 2];
        big.set(b"a", Some(&value));
        assert!(!big.slots.is_empty());
        big.set(b"b", Some(&value));
        assert!(
            big.slots.is_empty(),
            "the buffer limit moves entries to the large form"
        );
        assert_eq!(big.get(b"a"), Lookup::Value(&value));
        assert_eq!(big.get(b"b"), Lookup::Value(&value));
    }

    #[test]
    fn replacing_values_reuses_their_bytes_when_they_fit() {
        let mut set = Changes::new();
        set.set(b"k", Some(b"long value"));
        let len = set.bytes.len();
        set.set(b"k", Some(b"short"));
        set.set(b"k", None);
        set.set(b"k", Some(b"tiny"));
        assert_eq!(
            set.bytes.len(),
            len + 4,
            "only the value after a tombstone is appended"
        );
        assert_eq!(set.get(b"k"), Lookup::Value(b"tiny"));
        set.set(b"k", Some(b"a longer value"));
        assert_eq!(set.get(b"k"), Lookup::Value(b"a longer value"));
    }
}
