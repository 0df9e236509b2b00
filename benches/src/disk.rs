//! Bytes on disk beside what `helios::disk_usage` measures of a store (its files by kind): the
//! log's bytes through its last record ([`log_used_bytes`]), a peer's files ([`usage_of`]), and
//! reading files into the page cache for warm measurements ([`read_into_page_cache`]).

use std::io::{self, Read as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use helios::Inspect;

/// Bytes of one allocated block as `st_blocks` counts them (always 512, whatever the file
/// system's block size).
const ST_BLOCK_BYTES: u64 = 512;

/// A file or directory that could not be listed, examined or read.
#[derive(Debug, thiserror::Error)]
#[error("could not {operation} {}: {source}", path.display())]
pub struct DiskError {
    /// The file or directory.
    pub path: PathBuf,
    /// What was being done: `list`, `stat` or `read`.
    pub operation: &'static str,
    /// The file system's error.
    pub source: io::Error,
}

impl DiskError {
    fn at(operation: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DiskError {
        let path = path.to_path_buf();
        move |source| DiskError {
            path,
            operation,
            source,
        }
    }
}

/// Files and bytes of a set of files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Regular files.
    pub files: u64,
    /// Their lengths (`st_size`).
    pub apparent_bytes: u64,
    /// The bytes the file system allocated for them (`st_blocks * 512`).
    pub allocated_bytes: u64,
}

impl From<helios::FileUsage> for Usage {
    fn from(u: helios::FileUsage) -> Usage {
        Usage {
            files: u.files,
            apparent_bytes: u.apparent_bytes,
            allocated_bytes: u.allocated_bytes,
        }
    }
}

impl Usage {
    fn add(&mut self, metadata: &std::fs::Metadata) {
        self.files += 1;
        self.apparent_bytes += metadata.len();
        self.allocated_bytes += metadata.blocks() * ST_BLOCK_BYTES;
    }
}

/// The files among `paths` that exist, counted together.
///
/// # Errors
/// I/O errors other than a missing file, naming the path.
pub fn usage_of(paths: &[PathBuf]) -> Result<Usage, DiskError> {
    let mut usage = Usage::default();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(metadata) => usage.add(&metadata),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(DiskError::at("stat", path)(e)),
        }
    }
    Ok(usage)
}

/// The log's bytes through its last record: every sealed segment before the active one,
/// whole, plus the active one up to the end of its last record (what the events cost,
/// frames and segment headers included; the unused tail of a sealed segment is at most one
/// batch). The same rule as `helios stats`.
///
/// # Errors
/// The engine's errors listing its segments.
pub fn log_used_bytes(inspect: Inspect<'_>) -> helios::Result<u64> {
    let end = inspect.log_end();
    Ok(inspect
        .segments()?
        .iter()
        .map(|segment| match segment.id.cmp(&end.segment) {
            std::cmp::Ordering::Less => segment.file_len_bytes,
            std::cmp::Ordering::Equal => end.offset,
            std::cmp::Ordering::Greater => 0,
        })
        .sum())
}

/// Reads every regular file among `paths`, and under those that are directories, to its end,
/// so that its pages are in the page cache (a missing path is skipped). Returns the bytes
/// read.
///
/// # Errors
/// I/O errors, naming the path.
pub fn read_into_page_cache(paths: &[PathBuf]) -> Result<u64, DiskError> {
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0;
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(DiskError::at("stat", &path)(e)),
        };
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(DiskError::at("list", &path))? {
                pending.push(entry.map_err(DiskError::at("list", &path))?.path());
            }
        } else if metadata.is_file() {
            // A file removed since the listing (a temporary file) is skipped.
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue;
            };
            loop {
                let read = file
                    .read(&mut buffer)
                    .map_err(DiskError::at("read", &path))?;
                if read == 0 {
                    break;
                }
                total += read as u64;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_files_are_counted_and_read_into_the_page_cache() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        for (name, len) in [("a.db", 10_000), ("sub/b", 300), ("FORMAT", 24)] {
            std::fs::write(root.join(name), vec![7u8; len]).expect("write");
        }
        let some = usage_of(&[root.join("a.db"), root.join("FORMAT"), root.join("missing")])
            .expect("usage");
        assert_eq!((some.files, some.apparent_bytes), (2, 10_024));
        // Every file holds at least one allocated block, and blocks are whole.
        assert!(some.allocated_bytes >= some.apparent_bytes);
        assert_eq!(some.allocated_bytes % ST_BLOCK_BYTES, 0);
        assert_eq!(
            read_into_page_cache(&[root.to_path_buf()]).expect("read"),
            10_324
        );
    }
}
