//! Checkpoint hierarchy for Helios.
//!
//! This crate is responsible for which versions get checkpoints at which level
//! ([`LevelPolicy`]), for the checkpoint file format ([`mod@format`]), for writing checkpoint files
//! ([`write_checkpoint`]) and for reading them in place ([`Checkpoint`]: memory-mapped, validated
//! once when opened, then read zero-copy as a [`SortedRun`]). It is not responsible for deciding
//! when to write a checkpoint, for naming or cataloguing files, or for merging layers into a
//! view: it knows nothing of the log, fjall or state machines, and works on versions and sorted
//! runs of entries handed to it.
//!
//! **Architecture Invariant:** a checkpoint file is immutable once written; a rebuilt one gets a
//! new name. The mapped reader relies on it.
//!
//! **Architecture Invariant:** a [`Checkpoint`] is validated once, when opened (CRCs, rkyv
//! validation, block structure); lookups never re-validate and never deserialise the archive.

mod error;
mod file;
pub mod format;
pub mod pack;
pub mod pack_index;
mod points;
mod policy;
mod run;
mod search;
mod structure;
#[cfg(test)]
mod tests;
mod write;

pub use error::{CheckpointError, KeyPreview, Result};
pub use file::Checkpoint;
pub use format::{CheckpointKind, CheckpointMeta};
pub use policy::{HEAVY_LEVEL, Layer, LevelPolicy, PolicyError, REPLAY_MAX};
pub use run::{HashedKey, Lookup, MemRun, RunEntry, SortedRun};
pub use write::{FileSync, Written, encode_checkpoint, write_checkpoint, write_checkpoint_with};
