//! Errors of checkpoint files: writing them and opening them.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// The result type of this crate's file operations.
pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;

/// Everything that can go wrong writing or opening a checkpoint file. Problems with a file name
/// the file (`<memory>` for [`crate::Checkpoint::from_bytes`]) and, where one byte is at fault,
/// its offset in the file; problems with the entries handed to the writer name the entry's
/// index.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// An I/O operation failed.
    #[error("{op} {path} failed: {source}")]
    Io {
        /// What was being done ("open", "mmap", "fsync", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file is shorter than its header, or than its header says.
    #[error(
        "checkpoint {path} is truncated: it ends at byte {len_bytes}, but {expected_bytes} bytes are needed"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its length (the offset where it ends).
        len_bytes: u64,
        /// The length needed.
        expected_bytes: u64,
    },
    /// The file is longer than its header says.
    #[error(
        "checkpoint {path} has {len_bytes} bytes, but its header says {expected_bytes}: trailing bytes from byte {expected_bytes}"
    )]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Its length.
        len_bytes: u64,
        /// The length its header implies.
        expected_bytes: u64,
    },
    /// Not a Helios checkpoint.
    #[error("{path} is not a Helios checkpoint: magic bytes at byte 0 are {found:02x?}")]
    WrongMagic {
        /// The file.
        path: PathBuf,
        /// What was found.
        found: [u8; 8],
    },
    /// Written in a format version this build cannot read (a newer one, or damage).
    #[error(
        "checkpoint {path} has format version {found} at byte 8; this build reads version {}",
        crate::format::FORMAT_VERSION
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// The header's checksum does not match its bytes.
    #[error(
        "checkpoint {path}: header checksum mismatch at byte {} (stored {stored:#010x}, computed {computed:#010x})",
        crate::format::header::HEADER_CRC
    )]
    HeaderChecksum {
        /// The file.
        path: PathBuf,
        /// Stored CRC.
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
    /// A header field holds a value no writer produces.
    #[error("checkpoint {path}: invalid header field at byte {offset}: {reason}")]
    InvalidHeader {
        /// The file.
        path: PathBuf,
        /// Offset of the field.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The archive's checksum does not match its bytes.
    #[error(
        "checkpoint {path}: archive checksum mismatch over bytes {offset}.. (stored {stored:#010x}, computed {computed:#010x})"
    )]
    ArchiveChecksum {
        /// The file.
        path: PathBuf,
        /// Where the archive starts.
        offset: u64,
        /// Stored CRC.
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
    /// rkyv's validation (bytecheck) rejected the archive.
    #[error("checkpoint {path}: invalid archive starting at byte {offset}: {message}")]
    InvalidArchive {
        /// The file.
        path: PathBuf,
        /// Where the archive starts (rkyv does not say where in it the problem is).
        offset: u64,
        /// rkyv's message.
        message: String,
    },
    /// The archive is valid rkyv but breaks an invariant of the block layout.
    #[error("checkpoint {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Offset of the damage.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// The entries handed to the writer are not in strictly increasing key order. No file was
    /// written.
    #[error(
        "checkpoint entries must have strictly increasing keys: entry {index} has key {key}, not above the previous key {previous}"
    )]
    Unsorted {
        /// Index of the offending entry (0-based).
        index: u64,
        /// Its key (escaped, shortened if long).
        key: KeyPreview,
        /// The key before it.
        previous: KeyPreview,
    },
    /// A key handed to the writer is too long. No file was written.
    #[error("checkpoint entry {index}: key of {len_bytes} bytes exceeds the limit of {max_bytes}")]
    KeyTooLong {
        /// Index of the entry.
        index: u64,
        /// Its key's length.
        len_bytes: usize,
        /// The limit, [`crate::format::KEY_LEN_MAX`].
        max_bytes: usize,
    },
    /// A value handed to the writer is too long. No file was written.
    #[error(
        "checkpoint entry {index}: value of {len_bytes} bytes exceeds the limit of {max_bytes}"
    )]
    ValueTooLong {
        /// Index of the entry.
        index: u64,
        /// Its value's length.
        len_bytes: usize,
        /// The limit, [`crate::format::VALUE_LEN_MAX`].
        max_bytes: usize,
    },
    /// The metadata handed to the writer cannot describe a checkpoint. No file was written.
    #[error("invalid checkpoint metadata {meta:?}: {reason}")]
    InvalidMeta {
        /// The metadata.
        meta: crate::CheckpointMeta,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The entries do not fit in one archive. No file was written.
    #[error("checkpoint archive of at least {len_bytes} bytes exceeds the limit of {max_bytes}")]
    TooLarge {
        /// Bytes needed so far.
        len_bytes: u64,
        /// The limit, [`crate::format::ARCHIVE_LEN_MAX`].
        max_bytes: u64,
    },
    /// rkyv failed to serialise the archive. No file was written.
    #[error("serialising the checkpoint archive failed: {message}")]
    Encode {
        /// rkyv's message.
        message: String,
    },
}

/// A key as shown in an error: printable ASCII as is, other bytes escaped, at most 64 bytes
/// shown.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPreview {
    shown: Vec<u8>,
    len_bytes: usize,
}

impl KeyPreview {
    const SHOWN_MAX: usize = 64;

    /// A preview of `key`.
    #[must_use]
    pub fn new(key: &[u8]) -> KeyPreview {
        KeyPreview {
            shown: key[..key.len().min(Self::SHOWN_MAX)].to_vec(),
            len_bytes: key.len(),
        }
    }
}

impl fmt::Display for KeyPreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.shown.escape_ascii())?;
        if self.len_bytes > self.shown.len() {
            write!(f, "... ({} bytes)", self.len_bytes)?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyPreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
