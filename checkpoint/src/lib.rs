//! Checkpoint hierarchy for Helios.
//!
//! This crate is responsible for which versions get checkpoints at which level, and (as the
//! checkpoint issue lands) the checkpoint file format, building, the memory-mapped store and its
//! validation. It knows nothing of the log or fjall: it works on versions and sorted runs of
//! entries handed to it.
//!
//! What exists today is the level policy and the sorted-run abstraction (with an in-memory
//! implementation) that every layer of a view implements.

mod policy;
mod run;

pub use policy::{Layer, LevelPolicy, PolicyError};
pub use run::{Lookup, MemRun, RunEntry, SortedRun};
