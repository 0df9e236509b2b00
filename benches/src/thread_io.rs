//! Cold reads: the calling thread's page faults and blocks read ([`ThreadIo`], from
//! `getrusage(RUSAGE_THREAD)`) and dropping files from the page cache ([`evict_files_under`],
//! `posix_fadvise(DONTNEED)`).

use std::fs::File;
use std::io;
use std::path::Path;

use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
use nix::sys::resource::{UsageWho, getrusage};

/// I/O counters of the calling thread, from `getrusage(RUSAGE_THREAD)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadIo {
    /// Page faults that had to read from the disk.
    pub major_faults: i64,
    /// Page faults served without the disk (a page already in the page cache, mapped into
    /// this process for the first time).
    pub minor_faults: i64,
    /// 512-byte blocks the file systems read for this thread (read calls and faults,
    /// read-ahead included).
    pub blocks_read: i64,
}

impl ThreadIo {
    /// The counters now.
    ///
    /// # Errors
    /// The errno of `getrusage`.
    pub fn now() -> nix::Result<ThreadIo> {
        let usage = getrusage(UsageWho::RUSAGE_THREAD)?;
        Ok(ThreadIo {
            major_faults: usage.major_page_faults(),
            minor_faults: usage.minor_page_faults(),
            blocks_read: usage.block_reads(),
        })
    }

    /// Both counts added up (for totals over several intervals).
    #[must_use]
    pub fn plus(self, other: ThreadIo) -> ThreadIo {
        ThreadIo {
            major_faults: self.major_faults + other.major_faults,
            minor_faults: self.minor_faults + other.minor_faults,
            blocks_read: self.blocks_read + other.blocks_read,
        }
    }

    /// What happened between `earlier` and `self`.
    #[must_use]
    pub fn since(self, earlier: ThreadIo) -> ThreadIo {
        ThreadIo {
            major_faults: self.major_faults - earlier.major_faults,
            minor_faults: self.minor_faults - earlier.minor_faults,
            blocks_read: self.blocks_read - earlier.blocks_read,
        }
    }
}

/// Asks the kernel to drop the cached pages of every regular file under `dir`, recursively
/// (`posix_fadvise(POSIX_FADV_DONTNEED)` over the whole file). Dirty pages and pages mapped
/// by a process stay. Returns the number of files advised.
///
/// # Errors
/// I/O errors while walking, and the errno of `posix_fadvise` (as an [`io::Error`]).
pub fn evict_files_under(dir: &Path) -> io::Result<u64> {
    let mut files_count = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                pending.push(entry.path());
            } else if file_type.is_file() {
                // A file removed since the listing (a replaced checkpoint) is simply skipped.
                let Ok(file) = File::open(entry.path()) else {
                    continue;
                };
                posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
                    .map_err(io::Error::from)?;
                files_count += 1;
            }
        }
    }
    Ok(files_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_io_and_eviction_work() {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("a"), b"a").expect("write");
        std::fs::write(dir.path().join("sub/b"), b"b").expect("write");
        assert_eq!(evict_files_under(dir.path()).expect("evict"), 2);
        let before = ThreadIo::now().expect("getrusage");
        let after = ThreadIo::now().expect("getrusage");
        let delta = after.since(before);
        assert!(delta.major_faults >= 0 && delta.blocks_read >= 0);
    }
}
