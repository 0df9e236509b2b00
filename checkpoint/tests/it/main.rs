//! Checkpoint files on disk: writing and opening through the filesystem, errors naming files,
//! sharing across threads, the size limits, and the golden fixture of format version 1.
//!
//! One binary for all of the crate's integration tests, a module per area, because linking
//! dominates build time on two cores.

mod files;
mod golden;
mod support;
