//! The engine's `Options` from the keyword arguments `Store` takes.

use helios::{BranchMemoryPolicy, LevelPolicy, Options};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors;

/// Builds the engine's options from the keyword arguments `Store` takes.
#[expect(
    clippy::too_many_arguments,
    reason = "one parameter per documented option, as Python passes them"
)]
pub(crate) fn options(
    create_if_missing: bool,
    background_threads: bool,
    metrics: bool,
    segment_size_bytes: Option<u64>,
    sync_poll_window_us: u64,
    sync_window_ms: Option<u64>,
    sync_window_bytes: Option<u64>,
    checkpoint_fanout: Option<u64>,
    checkpoint_levels: Option<u32>,
    checkpoint_first: Option<u64>,
    branch_memory_bytes: Option<u64>,
    branch_memory_policy: Option<&str>,
) -> PyResult<Options> {
    let mut o = Options {
        create_if_missing,
        background_threads,
        metrics,
        ..Options::default()
    };
    if let Some(v) = segment_size_bytes {
        o.log.segment_size_bytes = v;
    }
    o.log.sync_poll_window_us = sync_poll_window_us;
    if let Some(v) = sync_window_ms {
        o.write_behind.sync_window_ms = v;
    }
    if let Some(v) = sync_window_bytes {
        o.write_behind.sync_window_bytes = v;
    }
    if checkpoint_fanout.is_some() || checkpoint_levels.is_some() || checkpoint_first.is_some() {
        // What is not named is the default policy's, not the store's recorded one: a policy is
        // named whole or not at all.
        let fanout = checkpoint_fanout.unwrap_or(LevelPolicy::default().fanout());
        let levels = checkpoint_levels.unwrap_or(LevelPolicy::default().levels());
        // Without a first interval of its own, the finest level checkpoints every fanout
        // events (`LevelPolicy::new`).
        let first = checkpoint_first.unwrap_or(fanout);
        let policy = LevelPolicy::with_first(first, fanout, levels).map_err(|e| {
            errors::InvalidOptionsError::new_err(format!(
                "invalid option checkpoint_first/checkpoint_fanout/checkpoint_levels: {e}"
            ))
        })?;
        o.checkpoints.policy = Some(policy);
    }
    if let Some(v) = branch_memory_bytes {
        o.branches.memory_bytes = v;
    }
    if let Some(policy) = branch_memory_policy {
        o.branches.memory_policy = match policy {
            "evict" => BranchMemoryPolicy::EvictLeastRecentlyUsed,
            "refuse" => BranchMemoryPolicy::Refuse,
            other => {
                return Err(PyValueError::new_err(format!(
                    "branch_memory_policy must be 'evict' or 'refuse', not {other:?}"
                )));
            }
        };
    }
    Ok(o)
}
