//! Errors of the engine's public API.

use std::path::PathBuf;

use helios_checkpoint::CheckpointError;
use helios_log::{LogError, Version};
use helios_replay::{AggregateError, ReplayError};

use crate::names::short_name;

/// Everything the engine's operations can fail with. Messages name the stream, file or key
/// involved; a long stream name is cut to a readable length in the message
/// ([`crate::short_name`]), and stays whole in the variant's field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log failed: I/O, corruption (with file and byte offset), a torn tail in refuse mode,
    /// or a writer poisoned by an earlier failure.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The store cannot be opened as it is without losing acknowledged data: records the
    /// metadata recorded as durable are gone, a segment is missing, or one is damaged before
    /// its tail. The open changed nothing; [`crate::repair`] keeps the log's intact prefix.
    #[error(
        "{source}. The store was left as it is: `helios repair {}` keeps the intact prefix of \
         the log, sets the rest aside inside the store and lists what was lost",
        .dir.display()
    )]
    Damaged {
        /// The store.
        dir: PathBuf,
        /// What is damaged, with the file and byte offset.
        #[source]
        source: LogError,
    },
    /// The metadata store (fjall) failed.
    #[error("metadata store (fjall) failed while {op}: {source}")]
    Meta {
        /// What was being done.
        op: &'static str,
        /// fjall's error.
        #[source]
        source: fjall::Error,
    },
    /// The metadata holds a value this build cannot decode.
    #[error("corrupt metadata in keyspace `{keyspace}`: {reason}")]
    CorruptMeta {
        /// The fjall keyspace.
        keyspace: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The store was written by a format this build does not read.
    #[error("{path} holds metadata format version {found}; this build reads version {supported}")]
    UnsupportedFormat {
        /// The metadata directory.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },
    /// The store was written by a newer version of Helios, in a store format this build does
    /// not read.
    #[error(
        "{path} says this store has format {found}; this build of Helios reads formats up to \
         {supported}: open it with a newer Helios"
    )]
    NewerStoreFormat {
        /// The store's `FORMAT` file.
        path: PathBuf,
        /// The format the store has.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// A stream of that name already exists (a fork needs a new name).
    #[error("stream `{stream}` already exists")]
    StreamExists {
        /// The name.
        stream: String,
    },
    /// A write (or anything that needs the writer's metadata) on a store opened read-only.
    #[error("{operation} needs a writer: this handle opened the store read-only")]
    ReadOnly {
        /// What was asked.
        operation: &'static str,
    },
    /// Another writer holds the store.
    #[error(
        "{path} is locked: another process (or another Engine in this process) has this store open"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// Optimistic concurrency: the stream's head is not what the caller expected.
    #[error(
        "conflict on stream `{}`: expected head {expected}, but the head is {actual}",
        short_name(.stream)
    )]
    Conflict {
        /// The stream.
        stream: String,
        /// The head the caller expected.
        expected: Version,
        /// The actual head.
        actual: Version,
    },
    /// No stream of that name exists.
    #[error("unknown stream `{}`", short_name(.stream))]
    UnknownStream {
        /// The name asked for.
        stream: String,
    },
    /// A stream name that cannot be used.
    #[error("invalid stream name `{}`: {reason}", short_name(.stream))]
    InvalidStreamName {
        /// The name.
        stream: String,
        /// Why.
        reason: &'static str,
    },
    /// An append with no events.
    #[error("an append needs at least one event")]
    EmptyAppend,
    /// Options that cannot work.
    #[error("invalid option {option}: {reason}")]
    InvalidOptions {
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// A directory that is not a Helios store.
    #[error("{path} is not a Helios store (it has no log/ directory)")]
    NotAStore {
        /// The directory.
        path: PathBuf,
    },
    /// The store's path, or a directory on the way to it, is not a directory.
    #[error("{path} is {kind}, not a directory")]
    NotADirectory {
        /// The path that is not a directory: the store's, or the first on the way to it.
        path: PathBuf,
        /// What it is instead, as a noun phrase ("a file", "a socket", ...).
        kind: &'static str,
    },
    /// Resolving the store's path follows symbolic links in a loop.
    #[error("{path} cannot be reached: the symbolic links on its way form a loop")]
    SymlinkLoop {
        /// The path as given.
        path: PathBuf,
    },
    /// The operating system refused access to the store's directory.
    #[error("permission denied: cannot {op} {path}")]
    PermissionDenied {
        /// What was refused, as a verb phrase ("list directory").
        op: &'static str,
        /// The directory.
        path: PathBuf,
    },
    /// Creating a store in a directory that already holds other files (a new store is created
    /// only in an empty or missing directory).
    #[error(
        "{path} is not empty and is not a Helios store (it has no log/ directory; it holds \
         `{}`, for one): a new store is created only in an empty or missing directory",
        short_name(.found)
    )]
    NotEmpty {
        /// The directory.
        path: PathBuf,
        /// One of the entries that is not a store's own.
        found: String,
    },
    /// The index and the log disagree.
    #[error("index and log disagree for stream #{stream} {version}: {reason}")]
    IndexMismatch {
        /// The stream id.
        stream: u64,
        /// The version.
        version: Version,
        /// What differs.
        reason: String,
    },
    /// A view or state asked for a version the stream has not reached.
    #[error(
        "stream `{}` has no version {version}: its head is {head}",
        short_name(.stream)
    )]
    VersionPastHead {
        /// The stream.
        stream: String,
        /// The version asked for.
        version: Version,
        /// The stream's head.
        head: Version,
    },
    /// The stream's state machine rejected an event, or panicked on it, while the state at a
    /// version was rebuilt. The engine itself is unharmed.
    #[error(
        "stream `{}`, event {version}: {}",
        short_name(.stream),
        replay_detail(.source)
    )]
    Replay {
        /// The stream.
        stream: String,
        /// The version of the event that failed.
        version: Version,
        /// What the state machine did.
        #[source]
        source: ReplayError,
    },
    /// A typed aggregate could not be loaded from a stream's state.
    #[error("stream `{}` at {version}: {source}", short_name(.stream))]
    Aggregate {
        /// The stream.
        stream: String,
        /// The version.
        version: Version,
        /// Why.
        #[source]
        source: AggregateError,
    },
    /// No live branch has this id (never made, or discarded, pruned or evicted).
    #[error("unknown {branch}: it was never made, or was discarded, pruned or evicted")]
    UnknownBranch {
        /// The id asked for.
        branch: crate::BranchId,
    },
    /// Speculative events would exceed the branch memory budget.
    #[error(
        "branch memory full: {needed_bytes} more bytes would exceed the budget of {budget_bytes} \
         ({used_bytes} in use, nothing left to evict)"
    )]
    BranchMemoryFull {
        /// Bytes the append needs.
        needed_bytes: u64,
        /// Bytes in use.
        used_bytes: u64,
        /// The budget.
        budget_bytes: u64,
    },
    /// A promotion from a branch that does not descend from the stream's head.
    #[error(
        "conflict promoting {branch} of stream `{}`: the branch is based on {base}, but the \
         head is {head} and the branch does not descend from it",
        short_name(.stream)
    )]
    PromotionConflict {
        /// The branch.
        branch: crate::BranchId,
        /// The stream.
        stream: String,
        /// The durable version the branch's history starts from.
        base: Version,
        /// The stream's head.
        head: Version,
    },
    /// A class that this operation cannot use.
    #[error("{operation} cannot be {durability}: {reason}")]
    InvalidDurability {
        /// The operation.
        operation: &'static str,
        /// The class given.
        durability: crate::Durability,
        /// What to do instead.
        reason: &'static str,
    },
    /// A checkpoint file could not be written or read (a damaged one is rebuilt, not
    /// reported: this is for I/O failures the engine cannot work around).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// What a state machine did, without replay's event index (the engine names the version).
fn replay_detail(source: &ReplayError) -> String {
    match source {
        ReplayError::Rejected {
            machine, reason, ..
        } => format!("state machine `{machine}` rejected it: {reason}"),
        ReplayError::Panicked {
            machine, message, ..
        } => format!("state machine `{machine}` panicked on it: {message}"),
    }
}

impl Error {
    /// `self`, as [`Error::Damaged`] when it is damage in the log of the store in `dir`.
    pub(crate) fn damage_in(self, dir: &std::path::Path) -> Error {
        match self {
            Error::Log(source @ LogError::Corrupt { .. }) => Error::Damaged {
                dir: dir.to_path_buf(),
                source,
            },
            other => other,
        }
    }

    pub(crate) fn meta(op: &'static str) -> impl FnOnce(fjall::Error) -> Error {
        move |source| Error::Meta { op, source }
    }
}

/// Result of engine operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
