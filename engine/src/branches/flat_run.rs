//! `FlatRun`: a branch's state as changes against its root's durable layers.

use std::ops::Bound;
use std::sync::Arc;

use helios_checkpoint::{Lookup, RunEntry, SortedRun};
use helios_replay::Changes;

/// A branch's state as changes against its root's layers: a sorted index of entries whose
/// bytes live in shared, immutable chunks. A cached state made from the previous one by a few
/// events shares the previous chunks (an `Arc` each) and adds one chunk holding only the
/// changed entries, so a branch's cached states cost 16 bytes per entry plus each change
/// once, not a copy of every key and value per state.
#[derive(Debug, Default)]
pub(super) struct FlatRun {
    chunks: Vec<Arc<[u8]>>,
    /// Per entry, in key order: its chunk, where its key starts in it, its key length and its
    /// value length (`TOMBSTONE` for a tombstone); the value follows the key.
    index: Vec<(u32, u32, u32, u32)>,
}

const TOMBSTONE: u32 = u32::MAX;

/// Appends an entry's key and value to `bytes`; returns its index entry in chunk `chunk`.
fn push_entry(
    bytes: &mut Vec<u8>,
    chunk: u32,
    key: &[u8],
    value: Option<&[u8]>,
) -> (u32, u32, u32, u32) {
    let start = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    bytes.extend_from_slice(key);
    let value_len = match value {
        Some(value) => {
            bytes.extend_from_slice(value);
            u32::try_from(value.len()).unwrap_or(TOMBSTONE - 1)
        }
        None => TOMBSTONE,
    };
    let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    (chunk, start, key_len, value_len)
}

impl FlatRun {
    /// `previous` with `changes` applied (a change replaces the entry of its key).
    pub(super) fn merge(previous: &FlatRun, changes: &Changes) -> FlatRun {
        // The changed entries' bytes, in one new chunk.
        let new_chunk = u32::try_from(previous.chunks.len()).unwrap_or(u32::MAX);
        let mut bytes = Vec::new();
        let mut fresh = Vec::with_capacity(changes.len());
        for (key, value) in changes.iter() {
            fresh.push(push_entry(&mut bytes, new_chunk, key, value));
        }
        let mut chunks = previous.chunks.clone();
        chunks.push(Arc::from(bytes.into_boxed_slice()));
        let mut out = FlatRun {
            chunks,
            index: Vec::with_capacity(previous.index.len() + fresh.len()),
        };
        // Merge the two sorted index lists; a change wins over the old entry of its key.
        let (mut a, mut b) = (0, 0);
        while a < previous.index.len() || b < fresh.len() {
            let take_new = match (previous.index.get(a), fresh.get(b)) {
                (Some(&old), Some(&new)) => match previous.key_of(old).cmp(out.key_of(new)) {
                    std::cmp::Ordering::Less => false,
                    std::cmp::Ordering::Greater => true,
                    std::cmp::Ordering::Equal => {
                        a += 1;
                        true
                    }
                },
                (Some(_), None) => false,
                _ => true,
            };
            if take_new {
                out.index.push(fresh[b]);
                b += 1;
            } else {
                out.index.push(previous.index[a]);
                a += 1;
            }
        }
        out.index.shrink_to_fit();
        out
    }

    /// [`FlatRun::merge`] into a run that owns all its bytes in one chunk: for the state a new
    /// branch starts from, so that no branch keeps another's chunks alive unaccounted.
    pub(super) fn merge_owned(previous: &FlatRun, changes: &Changes) -> FlatRun {
        let merged = FlatRun::merge(previous, changes);
        let mut bytes = Vec::new();
        let mut index = Vec::with_capacity(merged.index.len());
        for i in 0..merged.index.len() {
            let (key, value) = merged.entry(i);
            index.push(push_entry(&mut bytes, 0, key, value));
        }
        FlatRun {
            chunks: vec![Arc::from(bytes.into_boxed_slice())],
            index,
        }
    }

    fn key_of(&self, (chunk, start, key_len, _): (u32, u32, u32, u32)) -> &[u8] {
        let start = start as usize;
        &self.chunks[chunk as usize][start..start + key_len as usize]
    }

    fn entry(&self, i: usize) -> (&[u8], Option<&[u8]>) {
        let (chunk, start, key_len, value_len) = self.index[i];
        let bytes = &self.chunks[chunk as usize];
        let key_end = start as usize + key_len as usize;
        let value = (value_len != TOMBSTONE).then(|| &bytes[key_end..key_end + value_len as usize]);
        (&bytes[start as usize..key_end], value)
    }

    /// The first entry whose key is at least (or, if `!inclusive`, above) `key`.
    fn seek(&self, key: &[u8], inclusive: bool) -> usize {
        self.index.partition_point(|&e| {
            let k = self.key_of(e);
            if inclusive { k < key } else { k <= key }
        })
    }

    /// Accounted bytes: the index, and the newest chunk (the one this state added; the older
    /// ones are counted by the states that added them).
    pub(super) fn size_bytes(&self) -> u64 {
        let newest = self.chunks.last().map_or(0, |c| c.len());
        (self.index.capacity() * std::mem::size_of::<(u32, u32, u32, u32)>()
            + self.chunks.capacity() * std::mem::size_of::<Arc<[u8]>>()
            + newest) as u64
    }
}

impl SortedRun for FlatRun {
    fn get(&self, key: &[u8]) -> Lookup<'_> {
        let i = self.seek(key, true);
        match self.index.get(i).map(|_| self.entry(i)) {
            Some((k, Some(value))) if k == key => Lookup::Value(value),
            Some((k, None)) if k == key => Lookup::Deleted,
            _ => Lookup::Absent,
        }
    }

    fn range<'a>(
        &'a self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Box<dyn Iterator<Item = RunEntry<'a>> + 'a> {
        let first = match start {
            Bound::Unbounded => 0,
            Bound::Included(k) => self.seek(k, true),
            Bound::Excluded(k) => self.seek(k, false),
        };
        let last = match end {
            Bound::Unbounded => self.index.len(),
            Bound::Included(k) => self.seek(k, false),
            Bound::Excluded(k) => self.seek(k, true),
        };
        Box::new((first..last.max(first)).map(move |i| self.entry(i)))
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}
