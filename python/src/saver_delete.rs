//! The saver's deletions: which checkpoints a delete, a prune or a deletion by run removes,
//! and the one deletion record per thread that removes them (with their writes) from the
//! thread's index.

use helios::{Durability, Engine};

use crate::record::{self, Delete, PREFIX_LATEST, Record};
use crate::saver_error::{CoreError, CoreResult};
use crate::saver_thread::Thread;

/// Removes those of `checkpoints` `(checkpoint_ns, checkpoint_id)` the thread has; returns how
/// many.
pub(crate) fn delete_checkpoints(
    engine: &Engine,
    thread_id: &str,
    checkpoints: &[(String, String)],
    class: Durability,
) -> CoreResult<usize> {
    let Some(thread) = Thread::at_head(engine, thread_id)? else {
        return Ok(0);
    };
    let existing: Vec<(&[u8], &[u8])> = checkpoints
        .iter()
        .map(|(ns, cid)| (ns.as_bytes(), cid.as_bytes()))
        .filter(|(ns, cid)| thread.view.contains_key(&record::key_checkpoint(ns, cid)))
        .collect();
    append_delete(engine, &thread, existing, class)
}

/// Removes every checkpoint but the newest of each namespace of the thread; returns how many.
pub(crate) fn prune_keep_latest(
    engine: &Engine,
    thread_id: &str,
    class: Durability,
) -> CoreResult<usize> {
    let Some(thread) = Thread::at_head(engine, thread_id)? else {
        return Ok(0);
    };
    let mut stale: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (key, latest) in thread.view.prefix(PREFIX_LATEST) {
        let ns = &key[PREFIX_LATEST.len()..];
        let prefix = record::prefix_checkpoints(ns);
        for (ckey, _) in thread.view.prefix(&prefix) {
            let cid = &ckey[prefix.len()..];
            if cid != latest {
                stale.push((ns.to_vec(), cid.to_vec()));
            }
        }
    }
    let stale_refs = stale
        .iter()
        .map(|(n, c)| (n.as_slice(), c.as_slice()))
        .collect();
    append_delete(engine, &thread, stale_refs, class)
}

/// Removes every checkpoint of `threads` whose run id is in `run_ids`, one record per thread
/// touched; returns how many.
pub(crate) fn delete_for_runs(
    engine: &Engine,
    threads: &[String],
    run_ids: &[String],
    class: Durability,
) -> CoreResult<usize> {
    let mut removed = 0;
    for thread_id in threads {
        let Some(thread) = Thread::at_head(engine, thread_id)? else {
            continue;
        };
        let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for run_id in run_ids {
            let prefix = record::prefix_run(run_id.as_bytes());
            for (key, _) in thread.view.prefix(&prefix) {
                if let Some((ns, cid)) = record::split_run_key(key, prefix.len()) {
                    found.push((ns.to_vec(), cid.to_vec()));
                }
            }
        }
        let refs = found
            .iter()
            .map(|(n, c)| (n.as_slice(), c.as_slice()))
            .collect();
        removed += append_delete(engine, &thread, refs, class)?;
    }
    Ok(removed)
}

/// Appends one deletion record for `checkpoints` (nothing when empty); returns their count.
fn append_delete(
    engine: &Engine,
    thread: &Thread,
    checkpoints: Vec<(&[u8], &[u8])>,
    class: Durability,
) -> CoreResult<usize> {
    if checkpoints.is_empty() {
        return Ok(0);
    }
    let count = checkpoints.len();
    let payload = record::encode(&Record::Delete(Delete { checkpoints }))
        .map_err(|_| CoreError::Corrupt("a deletion record of 4 GiB or more".into()))?;
    engine.append(&thread.name, &[payload], class, None)?;
    Ok(count)
}
