//! The file I/O of a Helios store: every file the engine writes or reads (log segments, index
//! tables, checkpoint packs, the manifest) goes through [`Storage`] and [`StorageFile`], so that
//! the same code runs on the real file system ([`FsStorage`]) and on a simulated one
//! (`SimStorage`, behind the `sim` cargo feature) that can tear writes, lose unsynced bytes, run
//! out of space and fail `fsync`, and so that the crash simulator enumerates every I/O step of
//! every file kind.
//!
//! This crate knows nothing of what the files hold. Paths are plain [`Path`]s; the simulated
//! storage treats them as keys. [`search`] is the search of the sorted tables the file kinds
//! above keep (by dense id or uniform hash), so that they share one.
//!
//! Cargo features: `sim` adds `SimStorage` (always on in this crate's own tests).

use std::any::Any;
use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

mod fs;
mod lazy;
pub mod search;
#[cfg(any(test, feature = "sim"))]
mod sim;

pub use fs::{FsStorage, resident_pages};
pub use lazy::LazyMap;
#[cfg(any(test, feature = "sim"))]
pub use sim::{CrashFault, SimStorage};

/// The bytes behind a [`ReadOnlyBytes`], and how to give their cached pages back.
pub trait PageSource: Send + Sync {
    /// The bytes.
    fn bytes(&self) -> &[u8];

    /// Asks the system to drop the cached pages behind the bytes, so that the next read comes
    /// from the disk (for cold-read benchmarks). The bytes stay valid. Default: nothing to
    /// drop (bytes in memory).
    ///
    /// # Errors
    /// I/O errors from the advice calls.
    fn evict_pages(&self) -> io::Result<()> {
        Ok(())
    }

    /// Tells the system that the bytes will be read once, in order (a scan of a segment), so
    /// that it reads ahead of the reader. Only a hint: errors are ignored. Default: nothing to
    /// read (bytes in memory).
    fn reading_in_order(&self) {}

    /// Tells the system that the bytes will be read a few at a time, anywhere (point reads of
    /// records), so that a page fault reads its own page and not the pages around it. Only a
    /// hint: errors are ignored. Default: nothing to read (bytes in memory).
    fn reading_at_random(&self) {}

    /// Asks the system to read the pages of `start..end` now, in one request, ahead of the
    /// reads that follow (a run of records read in order, on a map advised random access).
    /// Only a hint: errors are ignored. Default: nothing to read (bytes in memory).
    fn will_need(&self, _start: usize, _end: usize) {}

    /// Maps the pages of `start..end` that the page cache already holds into this process's
    /// page tables, without reading any from the disk, so that the first read of each does
    /// not take a page fault (a few microseconds each, the tail of a warm read). Only a hint:
    /// errors are ignored. Default: nothing to map (bytes in memory).
    fn map_resident(&self, _start: usize, _end: usize) {}
}

/// Bytes [`ReadOnlyBytes::map_resident`] maps between two looks at its `stop`: about 0.3 ms
/// of work here, so that a caller that stops (an engine closing) waits no longer.
const MAP_RESIDENT_CHUNK: usize = 16 << 20;

/// Bytes in memory: nothing to evict.
struct InMemory<T>(T);

impl<T: AsRef<[u8]> + Send + Sync> PageSource for InMemory<T> {
    fn bytes(&self) -> &[u8] {
        self.0.as_ref()
    }
}

/// Read-only bytes of a whole file, mapped or copied. They stay valid and unchanged for as long
/// as any clone is held.
#[derive(Clone)]
pub struct ReadOnlyBytes(Arc<dyn PageSource>);

impl ReadOnlyBytes {
    /// Wraps bytes in memory (a vector).
    pub fn new(bytes: impl AsRef<[u8]> + Send + Sync + 'static) -> ReadOnlyBytes {
        ReadOnlyBytes(Arc::new(InMemory(bytes)))
    }

    /// Wraps bytes whose pages can be evicted (a memory map).
    pub fn from_source(source: impl PageSource + 'static) -> ReadOnlyBytes {
        ReadOnlyBytes(Arc::new(source))
    }

    /// See [`PageSource::evict_pages`].
    ///
    /// # Errors
    /// I/O errors from the advice calls.
    pub fn evict_pages(&self) -> io::Result<()> {
        self.0.evict_pages()
    }

    /// See [`PageSource::reading_in_order`].
    pub fn reading_in_order(&self) {
        self.0.reading_in_order();
    }

    /// See [`PageSource::reading_at_random`].
    pub fn reading_at_random(&self) {
        self.0.reading_at_random();
    }

    /// See [`PageSource::will_need`].
    pub fn will_need(&self, start: usize, end: usize) {
        self.0.will_need(start, end);
    }

    /// [`PageSource::map_resident`] of all the bytes, a chunk at a time, until `stop` says
    /// so; returns whether it got to the end.
    pub fn map_resident(&self, stop: &dyn Fn() -> bool) -> bool {
        let len = self.len();
        let mut at = 0;
        while at < len {
            if stop() {
                return false;
            }
            let end = len.min(at + MAP_RESIDENT_CHUNK);
            self.0.map_resident(at, end);
            at = end;
        }
        true
    }
}

impl std::ops::Deref for ReadOnlyBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.bytes()
    }
}

impl Debug for ReadOnlyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadOnlyBytes({} bytes)", self.len())
    }
}

/// A held exclusive lock; released when dropped.
pub type LockGuard = Box<dyn Any + Send + Sync>;

/// A file system, as the log needs it.
pub trait Storage: Send + Sync + Debug {
    /// Creates `path` and its parents. It **must** succeed if the directory exists.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Names of the entries directly inside `path` (files only, in no particular order).
    ///
    /// # Errors
    /// The underlying I/O error, `NotFound` if the directory does not exist.
    fn list_files(&self, path: &Path) -> io::Result<Vec<String>>;

    /// Opens an existing file for reading and writing.
    ///
    /// # Errors
    /// `NotFound` if it does not exist.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;

    /// Opens an existing file for reading only: writes through the handle **must** fail. A
    /// reader's open of a store uses it, so that a store on a read-only file system can be
    /// read. The default opens it as [`Storage::open`] does.
    ///
    /// # Errors
    /// `NotFound` if it does not exist.
    fn open_read_only(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        self.open(path)
    }

    /// Creates a new, empty file, replacing any file of that name. The file's existence is
    /// durable only after [`Storage::sync_dir`] on its parent.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;

    /// Atomically renames `from` to `to`, replacing `to`. Durable after [`Storage::sync_dir`].
    ///
    /// # Errors
    /// The underlying I/O error.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Makes the directory's entries (creations, renames, removals) durable.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Maps (or copies) a whole file read-only. The caller **must** never write to, truncate or
    /// remove the file while the returned bytes are alive: the log maps only sealed segments
    /// this way, which are immutable (the active one goes through [`Storage::map_appending`]).
    ///
    /// # Errors
    /// The underlying I/O error.
    fn map_readonly(&self, path: &Path) -> io::Result<ReadOnlyBytes>;

    /// Maps the active segment at `path`, a file still being appended to, so that records
    /// already written can be read without a system call. The caller **must** only read bytes
    /// that were written before it looks, never write through the map, never rewrite bytes it
    /// wrote, and never truncate the file while the map is alive. `None` when the storage
    /// cannot share its bytes as they grow (the default, and the simulated storage, whose maps
    /// are copies); the log then reads the file with `pread`.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn map_appending(&self, path: &Path) -> io::Result<Option<ReadOnlyBytes>> {
        let _ = path;
        Ok(None)
    }

    /// Maps `len` bytes of a file that only grows by appends below `len` (a checkpoint pack),
    /// read-only, so that bytes appended later are seen through the same map. The caller
    /// **must** read only bytes the file already holds (past its end, a page faults with
    /// SIGBUS) and must never shorten the file below what any map of it may read.
    ///
    /// `None` when the storage cannot share a file's bytes as they change (the default, and
    /// the simulated storage, whose maps are copies): the caller then reads through
    /// [`Storage::map_readonly`] copies, taken again after each write.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn map_growing(&self, path: &Path, len: u64) -> io::Result<Option<ReadOnlyBytes>> {
        let _ = (path, len);
        Ok(None)
    }

    /// Takes an exclusive, non-blocking lock on `path` (creating the file if needed), held until
    /// the guard is dropped. It **must** fail with `WouldBlock` when another holder has it,
    /// whether in this process or another.
    ///
    /// # Errors
    /// `WouldBlock` if the lock is held elsewhere, or the underlying I/O error.
    fn lock_exclusive(&self, path: &Path) -> io::Result<LockGuard>;
}

/// An open file.
pub trait StorageFile: Send + Sync + Debug {
    /// Fills `buf` from `offset`. It **must** fail with `UnexpectedEof` if the file ends first.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Writes all of `buf` at `offset`, growing the file if needed. The bytes are durable only
    /// after [`StorageFile::sync_data`] returns `Ok`; after a crash any unsynced part **may** be
    /// lost, torn or damaged. On error, any prefix of `buf` may have been written.
    ///
    /// # Errors
    /// The underlying I/O error (`StorageFull` when out of space).
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Makes every byte written so far durable (fdatasync). After an error the file's durable
    /// content is unknown and the caller **must** stop trusting it.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn sync_data(&self) -> io::Result<()>;

    /// The file's length in bytes.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn len(&self) -> io::Result<u64>;

    /// Asks the system to drop the file's cached pages (for cold-read benchmarks). Default:
    /// nothing to drop.
    ///
    /// # Errors
    /// I/O errors from the advice call.
    fn evict_pages(&self) -> io::Result<()> {
        Ok(())
    }

    /// Whether the file is empty.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The file's first `max` bytes (all of it if it is shorter) and its length: how a header
    /// is checked without mapping the file.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn read_head(&self, max: usize) -> io::Result<(Vec<u8>, u64)> {
        let len = self.len()?;
        let mut head = vec![0u8; usize::try_from(len).map_or(max, |len| len.min(max))];
        self.read_exact_at(&mut head, 0)?;
        Ok((head, len))
    }
}
