//! Helpers the checkpoint integration tests share.

use std::ops::Bound;

use helios_checkpoint::SortedRun;

/// Entries in the writer's order: a key and its value, or `None` for a tombstone.
pub(crate) type Entries = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Every entry of `run`, in key order, copied out of it.
pub(crate) fn all(run: &dyn SortedRun) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    run.range(Bound::Unbounded, Bound::Unbounded)
        .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
        .collect()
}

/// `count` entries with keys `k000000`, `k000001`, ...: every third one a tombstone, the
/// others a 12-byte value.
pub(crate) fn some_entries(count: u32) -> Entries {
    (0..count)
        .map(|i| {
            let key = format!("k{i:06}").into_bytes();
            let value = (i % 3 != 0).then(|| i.to_le_bytes().repeat(3));
            (key, value)
        })
        .collect()
}
