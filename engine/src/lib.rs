//! Helios: an embeddable event-sourced storage engine.
//!
//! This crate is the public API. It owns streams (names, ids, versions, optimistic
//! concurrency), the durability classes over the log (group commit for
//! [`Durability::Critical`], a write-behind flusher for [`Durability::Normal`], in-memory
//! branches for [`Durability::Speculative`]), the stream catalog (in memory, and its snapshot
//! `CATALOG` for the next open), recovery at open, and state at any version: a background
//! builder that appends checkpoints to packs and [`Engine::view`], which stacks them under a
//! short replay. It does not own the bytes of the log (the `helios-log` crate, whose segment
//! indexes locate events) or of checkpoints (`helios-checkpoint`), nor how events become state
//! (`helios-replay`, whose state-machine types it re-exports). By design nothing but the log is
//! a source of truth: every other byte of a store can be rebuilt from it.
//!
//! # The API in one screen
//!
//! | what | where |
//! |---|---|
//! | open, configure, close | [`Engine::open`] with [`Options`] (settings, grouped by subsystem); [`Engine::builder`] adds plug-ins (storage, state machines, classifier); [`Engine::close`] |
//! | write | [`Engine::append`] (critical or normal, optimistic `expected` head), [`Engine::commit`] (class chosen by a [`Classifier`]), [`Engine::sync`] |
//! | read | [`Engine::head`], [`Engine::stream`], [`Engine::streams`], [`Engine::read`], [`Engine::events_from`], [`Engine::view`], [`Engine::state_at`], [`Engine::aggregate_at`]; the same reads through the [`Reader`] trait |
//! | speculate | [`Engine::branches`] → [`Branches`]: `fork`, `fork_branch`, `append`, `view`, `promote`, `discard`, `prune`, `pin`, `info`, `of_stream`, `stats` |
//! | checkpoints | [`Engine::checkpoints`] → [`Checkpoints`]: `sync` (build what is due now), `stats`, `of_stream` |
//! | look inside | [`Engine::inspect`] → [`Inspect`]: `dir`, `open_report`, `segments`, `log_end`, `durable_lsn`, `last_lsn`, `background_error`, `metrics`, `reset_metrics` |
//! | read without writing | [`ReadOnly`]: the same reads, no lock, no fjall, nothing changed (a live writer's store, a read-only file system, a damaged store) |
//! | check a store offline | [`verify`]; [`repair`] keeps the intact prefix of a damaged log |
//!
//! Cargo features: `sim` re-exports the simulated storage (`SimStorage`, `CrashFault`) for
//! crash tests and fuzz targets; `bench-hooks` adds `Engine::evict_cached_pages` for cold-read
//! benchmarks. Neither belongs in a production build.
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

mod background;
mod branches;
mod cache;
mod catalog;
mod catalog_snapshot;
mod checkpoints;
mod class;
mod dir_check;
mod disk_usage;
mod engine;
mod error;
mod inspect;
mod meta;
mod metrics;
mod names;
mod open;
mod options;
mod read;
mod read_only;
mod reader;
mod repair;
mod store_format;
mod store_id;
mod subscribe;
mod verify;
mod write;

pub use branches::{
    BranchAppended, BranchId, BranchInfo, BranchMemoryPolicy, BranchStats, Branches, Committed,
};
pub use catalog::{Fork, STREAM_NAME_LEN_MAX};
pub use checkpoints::{
    BuildReport, COMPACT_MIN_DEAD_BYTES, CheckpointInfo, CheckpointOpenReport, CheckpointStats,
    Checkpoints, CompactReport, LevelStats, StalledStream,
};
pub use class::{Classifier, DefaultClassifier, Durability};
pub use disk_usage::{DiskUsage, DiskUsageError, FileKind, FileUsage, disk_usage};
pub use engine::Engine;
pub use error::{Error, Result};
pub use helios_checkpoint::{HEAVY_LEVEL, LevelPolicy, PolicyError, REPLAY_MAX};
#[cfg(feature = "sim")]
pub use helios_log::{CrashFault, SimStorage};
pub use helios_log::{
    DEFAULT_SYNC_POLL_WINDOW_US, FsStorage, Location, LogError, LogOptions, Lsn, Position,
    RecoveryMode, RecoveryReport, SegmentId, SegmentInfo, Storage, StreamId, TruncatedTail,
    Version,
};
pub use helios_replay::{
    AGGREGATE_KEY, Aggregate, AggregateError, AggregateMachine, Archivable, KvMachine, LayerInfo,
    LayerReport, Rejected, ReplayError, StateHandle, StateMachine, View, ViewIter, ViewReport,
    encode_event, kv, rkyv,
};
pub use inspect::{DeadBytes, Inspect};
pub use metrics::{Metric, MetricSummary, MetricsSnapshot, SAMPLE_EVERY};
pub use names::{NAME_SHOWN_CHARS_MAX, ShortName, short_name};
pub use open::OpenReport;
pub use options::{
    BranchOptions, CheckpointOptions, DEFAULT_BRANCH_MEMORY_BYTES, DEFAULT_CHECKPOINT_CACHE_BYTES,
    DEFAULT_CHECKPOINT_HEADS_MAX, DEFAULT_CHECKPOINT_MAPS_MAX, DEFAULT_CHECKPOINT_PACK_BYTES,
    DEFAULT_HEAVY_EVENT_KEYS, DEFAULT_SYNC_WINDOW_BYTES, DEFAULT_SYNC_WINDOW_MS, EngineBuilder,
    MIN_CHECKPOINT_PACK_BYTES, Options, WriteBehindOptions,
};
pub use read::{Event, GlobalIter, ReadIter, StreamInfo, Streams};
pub use read_only::{ReadOnly, Refreshed};
pub use reader::Reader;
pub use repair::{LostVersions, RepairReport, repair};
pub use store_format::STORE_FORMAT_VERSION;
pub use subscribe::{PENDING_BYTES_MAX, PENDING_EVENTS_MAX, Subscription};
pub use verify::{Finding, VerifyReport, verify, verify_with_policy};
pub use write::Appended;

/// The README's example, compiled and run as a doc test.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
