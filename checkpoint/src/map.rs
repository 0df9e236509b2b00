//! The only module of this crate allowed to use `unsafe`: memory-mapping checkpoint files.
#![expect(
    unsafe_code,
    reason = "memory-mapping a file is unsafe in memmap2's API"
)]

use std::fs::File;
use std::io;

/// Maps `file`, a checkpoint file, read-only.
pub(crate) fn map_readonly(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: memmap2 requires that the mapped file not be modified or truncated while the map
    // lives; otherwise the bytes behind the `&[u8]` it hands out change (undefined behaviour) or
    // reads fault with SIGBUS. Checkpoint files are immutable once published: the writer writes a
    // temporary name, fsyncs it and renames it into place, and nothing in Helios writes to or
    // truncates a checkpoint file after that rename. A checkpoint that is rebuilt or replaced gets
    // a new file name (and even a rename over an old name would leave the mapped inode intact);
    // removal only unlinks the name. Modification by another process is outside the storage
    // contract. The map is never written through (read-only), and everything this crate reads
    // through it is bounds-checked slicing of bytes validated once at open.
    unsafe { memmap2::Mmap::map(file) }
}

/// Drops this process's mapping of `map`'s pages and asks the kernel to drop them from the page
/// cache, so that the next read of each page comes from the disk (cold-read benchmarks, and
/// giving memory back). The map stays valid: a later read faults the page in again from the
/// file.
#[cfg(any(test, feature = "bench-hooks"))]
pub(crate) fn evict(map: &memmap2::Mmap, file: &File) -> io::Result<()> {
    // SAFETY: MADV_DONTNEED is unsafe in memmap2's API because, on a private mapping, it
    // discards the process's modified copies of pages (reads then see the file again). This map
    // is a shared, read-only mapping of an immutable file (see `map_readonly`): no page was ever
    // modified through it, so after the advice every read returns exactly the bytes it returned
    // before, now read back from the page cache or the disk. No reference into the map becomes
    // dangling: the address range stays mapped.
    unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) }?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd as _;
        // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is open for
        // the whole call because `file` is borrowed. It changes no memory of this process.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
    Ok(())
}
