//! Errors of the log.

use std::io;
use std::path::PathBuf;

use crate::types::Lsn;

/// Everything that can go wrong in the log. Each variant names the file (and, for damage, the
/// byte offset) involved.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O operation failed.
    #[error("{op} {path} failed: {source}")]
    Io {
        /// What was being done ("write", "fdatasync", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Damage that is not a torn tail: a bad record in a sealed segment, a bad record followed by
    /// valid ones, a gap in LSNs, a bad segment header.
    #[error("corrupt log: {path} at byte {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// The active segment ends in a torn write and the recovery mode forbids truncating it.
    #[error(
        "torn tail in {path}: {len_bytes} bytes from byte {offset} are not a complete record batch; \
         open with RecoveryMode::Truncate to drop them"
    )]
    TornTail {
        /// The active segment.
        path: PathBuf,
        /// Where the torn tail starts.
        offset: u64,
        /// How many bytes it spans.
        len_bytes: u64,
    },
    /// An earlier write or sync failed; the log refuses every write since, because it can no
    /// longer tell what is durable.
    #[error("the log refuses writes since an earlier failure: {cause}")]
    Poisoned {
        /// The first failure.
        cause: String,
    },
    /// One record's payload exceeds the format's limit.
    #[error("payload of {len_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    PayloadTooLarge {
        /// Its length.
        len_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// An atomic batch does not fit in one segment.
    #[error("a batch of {len_bytes} bytes does not fit in a segment of {segment_size_bytes} bytes")]
    BatchTooLarge {
        /// The batch's encoded length.
        len_bytes: u64,
        /// The segment size.
        segment_size_bytes: u64,
    },
    /// Another writer holds the directory's lock.
    #[error("{path} is locked by another writer (another process, or another Engine in this one)")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A record asked for is not in the log.
    #[error("{lsn} is not in the log")]
    Missing {
        /// What was asked for.
        lsn: Lsn,
    },
}

impl LogError {
    /// An I/O error of operation `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> LogError {
        LogError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Damage in `path` at byte `offset`, and what it is.
    pub fn corrupt(path: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        LogError::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// Result of log operations.
pub type Result<T, E = LogError> = std::result::Result<T, E>;
