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
