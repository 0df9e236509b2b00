//! The append-only, segmented event log: Helios' single source of truth.
//!
//! This crate owns the bytes on disk of the log and nothing else: segment files, record
//! framing, appends with group commit, crash recovery of the log's own tail, and the storage
//! trait all file I/O goes through, and each sealed segment's index of where its events lie
//! (a function of the segment's bytes). It knows nothing of fjall, stream names, checkpoints
//! or state: a record is a (stream id, version, kind, payload) with an LSN. Keeping it free of fjall lets
//! fuzz targets reach the decoders and recovery in seconds of build time.
//!
//! Cargo features: `sim` adds `SimStorage`, the simulated storage of the crash simulator and
//! the fuzz targets (always on in this crate's own tests).

mod error;
mod follow;
pub mod format;
mod log;
mod scan;
pub mod segment_index;
mod types;

/// The storage trait all file I/O goes through, from `helios-storage`.
pub use helios_storage as storage;

pub use error::{LogError, Result};
pub use follow::{Follower, published_end_in, read_published_end};
pub use format::{RecordHeader, RecordRef};
pub use log::{
    DEFAULT_FIRST_SEGMENT_SIZE_BYTES, DEFAULT_SEGMENT_SIZE_BYTES, DEFAULT_SYNC_POLL_WINDOW_US,
    DEFAULT_WRITE_BUFFER_BYTES, GATHER_MAX, Indexed, IntactPrefix, Log, LogIter, LogOptions,
    MIN_SEGMENT_SIZE_BYTES, NewRecord, OwnedRecord, Problem, RecoveryMode, RecoveryReport,
    SegmentInfo, TruncatedTail, segment_name, write_whole,
};
pub use segment_index::SegmentIndex;
#[cfg(any(test, feature = "sim"))]
pub use storage::{CrashFault, SimStorage};
pub use storage::{FsStorage, PageSource, Storage, StorageFile};
pub use types::{Location, Lsn, Position, RecordClass, RecordKind, SegmentId, StreamId, Version};
