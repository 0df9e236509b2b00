//! End-to-end tests of the `helios` binary: every command, its exit codes and error messages,
//! its `--json` output, offline verification of a damaged store, and two SIGKILL loops: one
//! proving that every version `helios append --durability critical` printed survives the
//! crash, one that `helios workload` (critical, normal and promoted writes, syncs) loses
//! nothing it acknowledged as durable and never shows a speculative event.
//!
//! One binary on purpose, a module per area: each integration test file is its own binary, and
//! linking dominates build time on two cores. `support` has the helpers they share: the
//! binary, running it and capturing its output, the error contract, and stores on disk.

mod append_kill;
mod append_read;
mod demo;
mod get;
mod support;
mod tune;
mod verify_stats;
mod workload_kill;
