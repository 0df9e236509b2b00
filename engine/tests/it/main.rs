//! The `helios` crate's integration tests, in one binary (linking dominates build time on two
//! cores, so every file here is a module of this binary, not a binary of its own).
//!
//! - `engine`: appends, reads, conflicts, torn tails, poisoning, full disks, a second writer,
//!   and a property test of random appends, syncs, reopens and crashes against a model.
//! - `simulator`: the crash simulator: every I/O step of seeded workloads as a crash point.
//! - `branches`: speculative branches against a model, promotion, pruning, memory budget.
//! - `state`: views against a `BTreeMap` model, checkpoint damage, the golden store.
//! - `hostile`: damaged and foreign files of every kind.
//! - `repair`: log damage diagnosed alike by open and verify, and repaired to the intact prefix.
//! - `formats`: the golden store of every store format, the `FORMAT` file, migration.
//! - `indexes`: segment and pack indexes, and opens and `verify` that read around damaged or
//!   missing ones.
//! - `policy`: the level policy the store records, used by later opens.
//! - `streams`: forks that share history, and deletions.
//! - `directories`: the store's path on the real file system: files, links, permissions,
//!   directories of other files, and messages that cut long names.
//! - `support`: what several of them share.

mod branches;
mod directories;
mod engine;
mod formats;
mod hostile;
mod indexes;
mod policy;
mod readers;
mod repair;
mod simulator;
mod state;
mod streams;
mod subscribe;
mod support;
