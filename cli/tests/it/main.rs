//! End-to-end tests of the `helios` binary: every command, its exit codes and error messages,
//! its `--json` output, offline verification of a damaged store, and two SIGKILL loops: one
//! proving that every version `helios append --durability critical` printed survives the
//! crash, one that `helios workload` (critical, normal and promoted writes, syncs) loses
//! nothing it acknowledged as durable and never shows a speculative event; and a `ReadOnly`
//! reader in the test process beside `helios workload` across its SIGKILLs and restarts.
//!
//! One binary on purpose, a module per area: each integration test file is its own binary, and
//! linking dominates build time on two cores. `support` has the helpers they share: the
//! binary, running it and capturing its output, the error contract, and stores on disk.
//!
//! `hostile_args` runs every numeric option of every command with hostile numbers under a
//! memory limit; `hostile_input` gives bad paths and bad stdin and checks each message and
//! exit status.

mod append_kill;
mod append_read;
mod demo;
mod follow;
mod get;
mod hostile_args;
mod hostile_input;
mod import;
mod read_only;
mod reader_kill;
mod support;
mod tune;
mod verify_stats;
mod workload_kill;
