//! The checkpoint file decoder, two ways.
//!
//! 1. The input as a file: decoding must never panic, and whatever is accepted must be a
//!    well-formed sorted run.
//! 2. Structure-aware (libFuzzer does not find valid CRCs by chance): the input describes entries
//!    and damage. A valid checkpoint is built from the entries and must decode to exactly them;
//!    then bytes are flipped, set or cut as the input says, and the CRCs are optionally
//!    recomputed so that the damage reaches rkyv validation and the block checks. Decoding the
//!    damaged file must never panic; an accepted one must be well formed, and a single damage
//!    without resealing must be rejected.
//!
//! Input layout for part 2: `[control] [damage ops: (control % 4) x 4 bytes, from the end]
//! [entries: key_len, key, value_tag, value bytes ... ]`.
#![no_main]

use std::collections::BTreeMap;
use std::ops::Bound;

use helios_checkpoint::{Checkpoint, CheckpointMeta, Lookup, SortedRun, encode_checkpoint, format};
use libfuzzer_sys::fuzz_target;

/// The `SortedRun` contract: strictly increasing keys, `len` agrees with iteration, `get`
/// agrees with iteration, and so do single-key ranges (checked on a sample of keys: ranges
/// dominate the cost of an execution).
fn assert_well_formed(checkpoint: &Checkpoint) {
    let all: Vec<_> = checkpoint
        .range(Bound::Unbounded, Bound::Unbounded)
        .collect();
    assert_eq!(all.len(), checkpoint.len());
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "keys out of order");
    for (i, &(key, value)) in all.iter().enumerate() {
        assert_eq!(
            checkpoint.get(key),
            value.map_or(Lookup::Deleted, Lookup::Value)
        );
        if i % 17 == 0 || i + 1 == all.len() {
            assert!(
                checkpoint
                    .range(Bound::Included(key), Bound::Included(key))
                    .eq([(key, value)])
            );
            assert!(
                checkpoint
                    .range(Bound::Excluded(key), Bound::Unbounded)
                    .map(|(k, _)| k)
                    .eq(all[i + 1..].iter().map(|&(k, _)| k))
            );
        }
    }
}

/// Most entries and most values larger than a page one input makes, to keep executions fast.
const ENTRY_COUNT_MAX: usize = 400;
const LARGE_VALUE_COUNT_MAX: usize = 2;

/// Reads entries from `bytes` until they run out: a key of up to 15 bytes, then a value tag
/// (tombstone, a short value, or now and then one larger than a page).
fn entries(mut bytes: &[u8]) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    let mut model = BTreeMap::new();
    let mut large = 0;
    while let [key_len, rest @ ..] = bytes {
        if model.len() == ENTRY_COUNT_MAX {
            break;
        }
        let key_len = usize::from(key_len % 16).min(rest.len());
        let (key, rest) = rest.split_at(key_len);
        let Some((&tag, rest)) = rest.split_first() else {
            break;
        };
        let value = match tag % 32 {
            0..4 => None,
            4 if large < LARGE_VALUE_COUNT_MAX => {
                large += 1;
                Some(vec![tag; 3000 + usize::from(tag) * 16])
            }
            _ => Some(vec![tag; usize::from(tag / 2)]),
        };
        model.insert(key.to_vec(), value);
        bytes = rest;
    }
    model
}

fuzz_target!(|data: &[u8]| {
    if let Ok(checkpoint) = Checkpoint::from_bytes(data) {
        assert_well_formed(&checkpoint);
    }

    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let op_count = usize::from(control % 4).min(rest.len() / 4);
    let (entry_bytes, op_bytes) = rest.split_at(rest.len() - 4 * op_count);
    let model = entries(entry_bytes);
    let meta = if control & 0x10 == 0 {
        CheckpointMeta::full(u64::from(control), 1000, 3)
    } else {
        CheckpointMeta::delta(u64::from(control), 1230, 1, 1200)
    };
    let clean = encode_checkpoint(meta, model.iter().map(|(k, v)| (k, v.as_ref())))
        .expect("sorted entries within the limits encode");
    let checkpoint = Checkpoint::from_bytes(&clean).expect("a clean checkpoint decodes");
    assert_eq!(checkpoint.meta(), &meta);
    assert!(
        checkpoint
            .range(Bound::Unbounded, Bound::Unbounded)
            .eq(model.iter().map(|(k, v)| (k.as_slice(), v.as_deref()))),
        "a clean checkpoint holds exactly its entries"
    );

    let mut damaged = clean.clone();
    for op in op_bytes.chunks_exact(4) {
        if damaged.is_empty() {
            break;
        }
        let at = usize::from(u16::from_le_bytes([op[1], op[2]])) % damaged.len();
        match op[0] % 4 {
            0 | 1 => damaged[at] ^= op[3],
            2 => damaged[at] = op[3],
            _ => damaged.truncate(at),
        }
    }
    let resealed = control & 0x20 != 0;
    if resealed {
        format::reseal_crcs(&mut damaged);
    }
    match Checkpoint::from_bytes(&damaged) {
        Ok(checkpoint) => {
            assert!(
                resealed || op_count != 1 || damaged == clean,
                "a single damage went unnoticed by the checksums"
            );
            assert_well_formed(&checkpoint);
        }
        Err(e) => {
            assert!(damaged != clean, "clean bytes rejected: {e}");
        }
    }
});
