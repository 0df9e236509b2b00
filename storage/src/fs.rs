//! The real file system.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::{LockGuard, PageSource, ReadOnlyBytes, Storage, StorageFile};

/// Files of at most this many bytes are read into memory by [`Storage::map_readonly`] rather
/// than mapped: one `read` costs less than a map's `mmap`, page faults and `munmap` (which
/// flushes the TLB of every thread of the process), and their pages are too few to be worth
/// evicting. Catalog snapshots, segment indexes, machine tables and small segments are this
/// small; a sealed segment of the default size is not.
const COPY_BYTES_MAX: u64 = 64 * 1024;

/// [`Storage`] on the real file system, with real `fdatasync`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsStorage;

#[derive(Debug)]
struct FsFile(File);

impl StorageFile for FsFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn evict_pages(&self) -> io::Result<()> {
        map::fadvise_dontneed(&self.0)
    }
}

/// How many of the pages of the file at `path` are in the page cache (Linux: `mincore`). For
/// tests and benchmarks of cold reads, beside [`ReadOnlyBytes::evict_pages`].
///
/// # Errors
/// Opening or mapping the file; `Unsupported` off Linux.
pub fn resident_pages(path: &Path) -> io::Result<usize> {
    let file = File::open(path)?;
    #[cfg(target_os = "linux")]
    return map::resident_pages(&file);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// A mapped segment (sealed, or the active one) and its file.
struct MappedFile {
    map: memmap2::Mmap,
    file: File,
}

impl PageSource for MappedFile {
    fn bytes(&self) -> &[u8] {
        &self.map
    }

    fn evict_pages(&self) -> io::Result<()> {
        map::evict(&self.map)?;
        map::fadvise_dontneed(&self.file)
    }

    fn reading_in_order(&self) {
        // A hint: a failure only costs speed.
        let _ = self.map.advise(memmap2::Advice::Sequential);
    }

    fn reading_at_random(&self) {
        // A hint: a failure only costs speed.
        let _ = self.map.advise(memmap2::Advice::Random);
    }

    fn will_need(&self, start: usize, end: usize) {
        if start < end && end <= self.map.len() {
            // A hint: a failure only costs speed. memmap2 rounds the start down to a page.
            let _ = self
                .map
                .advise_range(memmap2::Advice::WillNeed, start, end - start);
        }
    }

    #[cfg(target_os = "linux")]
    fn map_resident(&self, start: usize, end: usize) {
        // Only up to the file's end: past it (a growing pack's map) there is nothing to map.
        let (Ok(file_len), Ok(page)) = (self.file.metadata().map(|m| m.len()), map::page_size())
        else {
            return;
        };
        let file_end = usize::try_from(file_len).unwrap_or(usize::MAX);
        let end = end.min(self.map.len()).min(file_end);
        let start = start - start % page;
        if start >= end {
            return;
        }
        let Ok(residency) = map::residency(&self.map, start, end) else {
            return;
        };
        // Each run of resident pages in one call (MADV_POPULATE_READ maps them into this
        // process's page tables, and would read a page that is not resident from the disk).
        let mut at = 0;
        while at < residency.len() {
            if residency[at] & 1 == 0 {
                at += 1;
                continue;
            }
            let run = residency[at..].iter().take_while(|&&r| r & 1 != 0).count();
            let (from, to) = (start + at * page, (start + (at + run) * page).min(end));
            // A hint: a failure (an older kernel without MADV_POPULATE_READ) only costs speed.
            let _ = self
                .map
                .advise_range(memmap2::Advice::PopulateRead, from, to - from);
            at += run;
        }
    }
}

impl Storage for FsStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn list_files(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(FsFile(file)))
    }

    fn open_read_only(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(FsFile(File::open(path)?)))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Arc::new(FsFile(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn map_readonly(&self, path: &Path) -> io::Result<ReadOnlyBytes> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            // A zero-length mapping is an error on Linux; an empty file has no bytes to share.
            return Ok(ReadOnlyBytes::new(Vec::<u8>::new()));
        }
        if len <= COPY_BYTES_MAX {
            // The contract allows a copy: the caller never changes the file while it holds
            // the bytes, so a copy reads the same as a map would.
            let mut bytes = Vec::with_capacity(usize::try_from(len).expect("at most 64 KiB"));
            file.take(len).read_to_end(&mut bytes)?;
            return Ok(ReadOnlyBytes::new(bytes));
        }
        let map = map::map_readonly(&file)?;
        Ok(ReadOnlyBytes::from_source(MappedFile { map, file }))
    }

    fn map_appending(&self, path: &Path) -> io::Result<Option<ReadOnlyBytes>> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(None);
        }
        let map = map::map_appending(&file)?;
        // One page per fault: a view reads a few records, and readahead would read 128 KiB
        // around each on a cold read.
        map.advise(memmap2::Advice::Random)?;
        Ok(Some(ReadOnlyBytes::from_source(MappedFile { map, file })))
    }

    fn map_growing(&self, path: &Path, len: u64) -> io::Result<Option<ReadOnlyBytes>> {
        let file = File::open(path)?;
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "map longer than memory"))?;
        if len == 0 {
            return Ok(Some(ReadOnlyBytes::new(Vec::<u8>::new())));
        }
        let map = map::map_growing(&file, len)?;
        map.advise(memmap2::Advice::Random)?;
        Ok(Some(ReadOnlyBytes::from_source(MappedFile { map, file })))
    }

    fn lock_exclusive(&self, path: &Path) -> io::Result<LockGuard> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(file)),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the lock is held by another writer",
            )),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// The only module of this crate allowed to use `unsafe`: memory maps, and the calls that ask
/// the kernel about or advise it on their pages.
#[expect(
    unsafe_code,
    reason = "memory-mapping a file is unsafe in memmap2's API; the page-cache calls are libc's"
)]
mod map {
    use std::fs::File;
    use std::io;

    /// Maps `file` read-only.
    pub(super) fn map_readonly(file: &File) -> io::Result<memmap2::Mmap> {
        // SAFETY: memmap2 requires that the file not be modified or truncated while mapped, or
        // reads through the map see changing bytes (or fault). The log maps only sealed segment
        // files this way (the active one goes through `map_appending`), which are immutable by
        // its invariants: no code path writes to, truncates or
        // removes a segment after sealing it while the log is open, and the directory lock keeps
        // any other Helios writer out. Modification by an unrelated process is outside the
        // storage contract (documented in docs/FORMAT.md, "Assumptions").
        unsafe { memmap2::Mmap::map(file) }
    }

    /// Maps the active segment `file`, which is still appended to while mapped.
    pub(super) fn map_appending(file: &File) -> io::Result<memmap2::Mmap> {
        // SAFETY: memmap2 requires that the file not be modified or truncated while mapped, or
        // reads through the map see changing bytes (or fault). The active segment is modified
        // while mapped, and only this way: the log writes each byte once, with `pwrite` at or
        // past the end it has written so far, under its writer lock, and moves that end only
        // after the write returned. A reader slices the map only below an end it read under
        // the same lock, so every byte it borrows was written before and never changes again;
        // the bytes that do change are never read through the map. A torn tail is zeroed
        // before the map is made. Appends never go past the length the file has when it is
        // mapped (the log's capacity for the segment; segments are created filled with zeros
        // to it) and the log never truncates a segment, so no page of the map lies past the
        // end of the file. Other processes: as for `map_readonly`.
        unsafe { memmap2::Mmap::map(file) }
    }

    /// Maps `len` bytes of `file`, which may run past its end (see `Storage::map_growing`).
    pub(super) fn map_growing(file: &File, len: usize) -> io::Result<memmap2::Mmap> {
        // SAFETY: the map may extend past the file's end. The contract of
        // `Storage::map_growing` makes callers read only bytes the file already holds, and
        // files mapped this way (checkpoint packs) are only appended to and never shortened
        // below what a map may read: so every byte read is in the file, and never changes
        // once written (appends write only past the bytes that were read). Pages past the end
        // are never touched, so they raise no SIGBUS.
        unsafe { memmap2::MmapOptions::new().len(len).map(file) }
    }

    /// Drops this process's page-table entries for `map` (`MADV_DONTNEED`).
    pub(super) fn evict(map: &memmap2::Mmap) -> io::Result<()> {
        // SAFETY: MADV_DONTNEED is unsafe in memmap2's API because on a private mapping it
        // discards modified pages. This is a shared, read-only map of a segment: nothing was
        // modified through it, so every later read returns the bytes the file holds, faulted
        // back in from the page cache or the disk. The range stays mapped.
        unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) }
    }

    /// How many of `file`'s pages are in the page cache: `mincore` over a map of it, through
    /// which nothing is read.
    #[cfg(target_os = "linux")]
    pub(super) fn resident_pages(file: &File) -> io::Result<usize> {
        if file.metadata()?.len() == 0 {
            return Ok(0);
        }
        let map = map_readonly(file)?;
        let residency = residency(&map, 0, map.len())?;
        Ok(residency.iter().filter(|&&p| p & 1 != 0).count())
    }

    /// The residency of each page of `map[start..end]` (`start` page-aligned): `mincore`,
    /// which reads no byte of the map.
    #[cfg(target_os = "linux")]
    pub(super) fn residency(map: &memmap2::Mmap, start: usize, end: usize) -> io::Result<Vec<u8>> {
        let page = page_size()?;
        let mut residency = vec![0u8; (end - start).div_ceil(page)];
        // SAFETY: `start..end` lies within the live mapping `map` (the caller clamps it), and
        // `start` is a multiple of the page size from the map's page-aligned address, so the
        // range is what mincore accepts; `residency` has one byte for each of its pages, which
        // is what mincore writes.
        let rc = unsafe {
            libc::mincore(
                map.as_ptr().add(start).cast_mut().cast::<libc::c_void>(),
                end - start,
                residency.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(residency)
    }

    /// The system's page size.
    #[cfg(target_os = "linux")]
    pub(super) fn page_size() -> io::Result<usize> {
        // SAFETY: sysconf has no preconditions; it reads a system constant.
        usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| io::Error::other("no page size"))
    }

    /// Asks the kernel to drop `file`'s clean pages from the page cache.
    pub(super) fn fadvise_dontneed(file: &File) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd as _;
            // SAFETY: posix_fadvise only reads its integer arguments; the descriptor stays open
            // for the call because `file` is borrowed. No memory of this process changes.
            let rc =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = file;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's minor page faults so far (`/proc/self/stat`, field 10).
    #[cfg(target_os = "linux")]
    fn minor_faults() -> u64 {
        let stat = fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
        // Fields after the command name, which ends with the last ')'.
        let after = &stat[stat.rfind(')').expect("a command name") + 2..];
        after
            .split(' ')
            .nth(7)
            .and_then(|f| f.parse().ok())
            .expect("the minflt field")
    }

    /// Sums one byte of every page (what a reader's first touches fault in).
    fn touch_every_page(bytes: &[u8]) -> u64 {
        bytes.iter().step_by(4096).map(|&b| u64::from(b)).sum()
    }

    /// `map_resident` maps the cached pages, so reading them takes no page fault, and reads
    /// nothing that is not cached.
    #[cfg(target_os = "linux")]
    #[test]
    fn map_resident_maps_cached_pages_and_reads_none_from_the_disk() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("file");
        let bytes: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 253) as u8).collect();
        fs::write(&path, &bytes).expect("write");
        // Written back, so that its pages can be evicted below.
        File::open(&path).and_then(|f| f.sync_all()).expect("sync");
        let expected = touch_every_page(&bytes);

        let faults_of = |populate: bool| {
            let map = FsStorage.map_readonly(&path).expect("map");
            // Told to stop at once, it maps nothing.
            assert!(!map.map_resident(&|| true));
            if populate {
                assert!(map.map_resident(&|| false));
            }
            let before = minor_faults();
            let sum = touch_every_page(&map);
            let faults = minor_faults() - before;
            assert_eq!(sum, expected);
            faults
        };
        let without = faults_of(false);
        let with = faults_of(true);
        assert!(without >= 1, "no fault to save: {without}");
        assert_eq!(with, 0, "faults after map_resident (without it: {without})");

        // Pages that are not cached stay so (where eviction works: not on tmpfs).
        let map = FsStorage.map_readonly(&path).expect("map");
        map.evict_pages().expect("evict");
        if resident_pages(&path).expect("mincore") == 0 {
            assert!(map.map_resident(&|| false));
            assert_eq!(
                resident_pages(&path).expect("mincore"),
                0,
                "read from the disk"
            );
        }
        assert_eq!(touch_every_page(&map), expected);
    }

    /// Small files are copied, larger ones mapped: either way the bytes are the file's.
    #[test]
    fn map_readonly_reads_small_and_large_files_whole() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let limit = usize::try_from(COPY_BYTES_MAX).expect("small");
        for len in [0, 1, 4096, limit, limit + 1, 3 * limit] {
            let path = dir.path().join(format!("file-{len}"));
            let bytes: Vec<u8> = (0..len)
                .map(|i| u8::try_from(i % 251).expect("below 251"))
                .collect();
            fs::write(&path, &bytes).expect("write");
            let read = FsStorage.map_readonly(&path).expect("map");
            assert_eq!(&read[..], &bytes[..], "a file of {len} bytes");
        }
    }
}
