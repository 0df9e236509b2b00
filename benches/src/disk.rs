//! Bytes on disk: a store directory walked and its files classified ([`walk`]), the log's
//! bytes through its last record ([`log_used_bytes`]), a peer's files ([`usage_of`]), and
//! reading files into the page cache for warm measurements ([`read_into_page_cache`]).
//!
//! The classes name both the current layout and the one the storage work moves to, so that the
//! same bench reads either: log segments (`log/*.log`), the log's spare (`log/*.spare`),
//! metadata (`meta/`, fjall today, or `index/`), checkpoints (`checkpoints/` today, or
//! `packs/`), and everything else (`FORMAT`, `LOCK`, temporary files). Nothing here parses a
//! file name beyond its directory and suffix.

use std::io::{self, Read as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};

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

/// What a file of a store is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum FileClass {
    /// A log segment (`log/*.log`): the events themselves, preallocated with zeros.
    LogSegments,
    /// The zero-filled spare waiting to become the next segment (`log/*.spare`).
    Spare,
    /// Metadata derived from the log: `meta/` (fjall) or `index/`.
    Metadata,
    /// Checkpoints derived from the log: `checkpoints/` or `packs/`.
    Checkpoints,
    /// Anything else (`FORMAT`, `LOCK`, temporary files, a repair's set-aside files).
    Other,
}

impl FileClass {
    /// Every class, in report order.
    pub const ALL: [FileClass; 5] = [
        FileClass::LogSegments,
        FileClass::Spare,
        FileClass::Metadata,
        FileClass::Checkpoints,
        FileClass::Other,
    ];

    /// The class's row name in a report.
    pub fn label(self) -> &'static str {
        match self {
            FileClass::LogSegments => "log segments (`log/*.log`)",
            FileClass::Spare => "spare segment (`log/*.spare`)",
            FileClass::Metadata => "metadata (`meta/`, `index/`)",
            FileClass::Checkpoints => "checkpoints (`checkpoints/`, `packs/`)",
            FileClass::Other => "other (`FORMAT`, `LOCK`, ...)",
        }
    }

    /// The class of the file at `relative` (a path inside the store directory).
    fn of(relative: &Path) -> FileClass {
        let top = match relative.components().next() {
            Some(Component::Normal(top)) => top.to_string_lossy(),
            _ => return FileClass::Other,
        };
        let name = relative
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        match &*top {
            "log" if name.ends_with(".log") => FileClass::LogSegments,
            "log" if name.ends_with(".spare") => FileClass::Spare,
            "meta" | "index" => FileClass::Metadata,
            "checkpoints" | "packs" => FileClass::Checkpoints,
            _ => FileClass::Other,
        }
    }

    fn slot(self) -> usize {
        match self {
            FileClass::LogSegments => 0,
            FileClass::Spare => 1,
            FileClass::Metadata => 2,
            FileClass::Checkpoints => 3,
            FileClass::Other => 4,
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

impl Usage {
    fn add(&mut self, metadata: &std::fs::Metadata) {
        self.files += 1;
        self.apparent_bytes += metadata.len();
        self.allocated_bytes += metadata.blocks() * ST_BLOCK_BYTES;
    }

    fn plus(self, other: Usage) -> Usage {
        Usage {
            files: self.files + other.files,
            apparent_bytes: self.apparent_bytes + other.apparent_bytes,
            allocated_bytes: self.allocated_bytes + other.allocated_bytes,
        }
    }
}

/// A store directory's files by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreUsage {
    /// Per class, in the order of [`FileClass::ALL`].
    pub by_class: [Usage; 5],
    /// Directories under the store (the store's own not counted).
    pub directories: u64,
}

impl StoreUsage {
    /// The files of `class`.
    pub fn of(&self, class: FileClass) -> Usage {
        self.by_class[class.slot()]
    }

    /// Every file.
    pub fn total(&self) -> Usage {
        self.by_class
            .iter()
            .fold(Usage::default(), |a, &b| a.plus(b))
    }

    /// Allocated bytes of every file that is not a log segment: what the derived ratio
    /// divides by the log's bytes.
    pub fn allocated_outside_segments(&self) -> u64 {
        self.total().allocated_bytes - self.of(FileClass::LogSegments).allocated_bytes
    }
}

/// Walks `dir` (not following links) and classifies every regular file.
///
/// # Errors
/// I/O errors, naming the path.
pub fn walk(dir: &Path) -> Result<StoreUsage, DiskError> {
    let mut usage = StoreUsage::default();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(DiskError::at("list", &current))? {
            let path = entry.map_err(DiskError::at("list", &current))?.path();
            let metadata =
                std::fs::symlink_metadata(&path).map_err(DiskError::at("stat", &path))?;
            if metadata.is_dir() {
                usage.directories += 1;
                pending.push(path);
            } else if metadata.is_file() {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                usage.by_class[FileClass::of(relative).slot()].add(&metadata);
            }
        }
    }
    Ok(usage)
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
    fn files_are_classified_by_directory_and_suffix() {
        let class = |p: &str| FileClass::of(Path::new(p));
        assert_eq!(
            class("log/00000000000000000001.log"),
            FileClass::LogSegments
        );
        assert_eq!(class("log/next-segment.spare"), FileClass::Spare);
        assert_eq!(class("log/00000000000000000001.log.tmp"), FileClass::Other);
        assert_eq!(class("meta/0.jnl"), FileClass::Metadata);
        assert_eq!(class("index/tables/7.sst"), FileClass::Metadata);
        assert_eq!(class("checkpoints/a-1-l1.ckpt"), FileClass::Checkpoints);
        assert_eq!(class("packs/1.pack"), FileClass::Checkpoints);
        assert_eq!(class("FORMAT"), FileClass::Other);
        assert_eq!(class("LOCK"), FileClass::Other);
    }

    #[test]
    fn a_walk_counts_every_file_once_by_class() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path();
        for sub in ["log", "meta/tables", "checkpoints"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        let files = [
            ("log/00000000000000000001.log", 10_000),
            ("log/next-segment.spare", 5_000),
            ("meta/0.jnl", 300),
            ("meta/tables/1", 20),
            ("checkpoints/1.ckpt", 100),
            ("checkpoints/2.ckpt", 100),
            ("FORMAT", 24),
        ];
        for (name, len) in files {
            std::fs::write(root.join(name), vec![7u8; len]).expect("write");
        }
        let usage = walk(root).expect("walk");
        assert_eq!(usage.directories, 4);
        assert_eq!(usage.total().files, 7);
        assert_eq!(usage.total().apparent_bytes, 15_544);
        let metadata = usage.of(FileClass::Metadata);
        assert_eq!((metadata.files, metadata.apparent_bytes), (2, 320));
        assert_eq!(usage.of(FileClass::Checkpoints).files, 2);
        assert_eq!(usage.of(FileClass::Other).apparent_bytes, 24);
        // Every file holds at least one allocated block, and blocks are whole.
        for class in FileClass::ALL {
            let u = usage.of(class);
            assert!(u.allocated_bytes >= u.apparent_bytes, "{class:?}");
            assert_eq!(u.allocated_bytes % ST_BLOCK_BYTES, 0);
        }
        assert_eq!(
            usage.allocated_outside_segments(),
            usage.total().allocated_bytes - usage.of(FileClass::LogSegments).allocated_bytes
        );
        let some = usage_of(&[root.join("FORMAT"), root.join("missing")]).expect("usage");
        assert_eq!((some.files, some.apparent_bytes), (1, 24));
        assert_eq!(
            read_into_page_cache(&[root.to_path_buf()]).expect("read"),
            15_544
        );
    }
}
