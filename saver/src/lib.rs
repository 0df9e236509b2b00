//! The storage format of Helios's LangGraph checkpoint saver, with no Python in it.
//!
//! **Responsible for:**
//! - [`record`]: the saver's log records (a checkpoint put, a task's pending writes, a
//!   deletion), their byte layout, and [`record::SaverMachine`], the state machine that keeps
//!   a thread stream's index (which record holds which checkpoint, value and write);
//! - [`codec`]: how a channel value's bytes are stored (as is, a zstd frame, a zstd delta
//!   against an earlier value, or a splice of one), and their decoding, which checks every
//!   size a record states before it allocates for it.
//!
//! **Not responsible for:** reading or writing a store (the engine's), caching decoded values,
//! or anything LangGraph's Python side does: the `helios_store` package in `python/` binds
//! this crate, and its `HeliosSaver` is the `BaseCheckpointSaver`.
//!
//! Every decoder here takes bytes from disk: it returns an error for any input it does not
//! accept, never panics, and accepts only the canonical encoding (what it accepts re-encodes
//! to the same bytes). The fuzz target `saver_record` checks both.

pub mod codec;
pub mod record;
