//! Helios: an embeddable event-sourced storage engine.
//!
//! This crate is the public API. It owns streams (names, ids, versions, optimistic
//! concurrency), the durability classes over the log (group commit for
//! [`Durability::Critical`], a write-behind flusher for [`Durability::Normal`]), the metadata
//! in fjall (stream catalog, the `(stream, version)` index, the recovery point, the checkpoint
//! catalog), recovery at open, and state at any version: a background builder that writes
//! checkpoint files and [`Engine::view`], which stacks them under a short replay. It does not
//! own the bytes of the log (the `helios-log` crate) or of checkpoint files
//! (`helios-checkpoint`), nor how events become state (`helios-replay`, whose state-machine
//! types it re-exports). By design nothing in fjall or `checkpoints/` is a source of truth:
//! every byte of it can be rebuilt from the log.
//!
//! ```
//! use helios::{Durability, Engine, Options, Version};
//!
//! # fn main() -> Result<(), helios::Error> {
//! let dir = tempfile::tempdir().expect("temporary directory");
//! let engine = Engine::open(dir.path(), Options::default())?;
//! // Critical: returns once the events are on stable storage.
//! let appended = engine.append("account-42", &["opened", "deposited 100"], Durability::Critical, Some(Version::ZERO))?;
//! assert_eq!(appended.last, Version(2));
//! // Optimistic concurrency: a stale expected head is a conflict.
//! assert!(engine.append("account-42", &["withdrew 50"], Durability::Normal, Some(Version(1))).is_err());
//! let events: Vec<_> = engine.read("account-42", ..)?.collect::<Result<_, _>>()?;
//! assert_eq!(events[1].payload, b"deposited 100");
//! # Ok(())
//! # }
//! ```

mod branch;
mod builder;
mod cache;
mod checkpoints;
mod class;
mod engine;
mod error;
pub mod meta;
mod metrics;
mod options;
mod state;
mod verify;

pub use branch::{
    BranchAppended, BranchId, BranchInfo, BranchMemoryPolicy, BranchStats, Committed,
};
pub use builder::StalledStream;
pub use checkpoints::CheckpointOpenReport;
pub use class::{Classifier, DefaultClassifier, Durability};
pub use engine::{
    Appended, Engine, Event, GlobalIter, OpenReport, ReadIter, STREAM_NAME_LEN_MAX, StreamInfo,
};
pub use error::{Error, Result};
pub use helios_checkpoint::{HEAVY_LEVEL, LevelPolicy, PolicyError};
#[cfg(feature = "sim")]
pub use helios_log::{CrashFault, SimStorage};
pub use helios_log::{
    FsStorage, Location, LogError, Lsn, Position, RecoveryMode, RecoveryReport, SegmentId,
    SegmentInfo, Storage, StreamId, TruncatedTail, Version,
};
pub use helios_replay::{
    AGGREGATE_KEY, Aggregate, AggregateError, AggregateMachine, Archivable, KvMachine, LayerInfo,
    LayerReport, Rejected, ReplayError, StateHandle, StateMachine, View, ViewIter, ViewReport,
    encode_event, kv, rkyv,
};
pub use metrics::{Metric, MetricSummary, MetricsSnapshot, SAMPLE_EVERY};
pub use options::{
    DEFAULT_BRANCH_MEMORY_BYTES, DEFAULT_CHECKPOINT_HEADS_MAX, DEFAULT_CHECKPOINT_MAPS_MAX,
    DEFAULT_HEAVY_EVENT_KEYS, DEFAULT_SYNC_WINDOW_BYTES, DEFAULT_SYNC_WINDOW_MS, EngineBuilder,
    Options,
};
pub use state::{CheckpointInfo, CheckpointStats, LevelStats};
pub use verify::{Finding, VerifyReport, verify};

/// The README's example, compiled and run as a doc test.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
