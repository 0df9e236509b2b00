//! What a store's files take on disk, by kind: files, apparent bytes (their lengths) and
//! allocated bytes (`st_blocks * 512`: what the file system holds for them, less than the length
//! for a sparse file, more for a file shorter than a block), from a walk of the store directory
//! ([`disk_usage`]; behind `helios stats` and the benches' byte counts).
//!
//! Files are classified by where they lie in the directory, not by what an open engine knows,
//! so that a store is measured as it is on disk, open or not, damaged or not, and in the layout
//! it is in (the metadata in `meta/` or `index/`; the checkpoints under `checkpoints/`, in packs,
//! or one file each in stores of format 2, or under `packs/`): see [`classify`].
//!
//! Invariants:
//! - The walk reads directory listings and file metadata (`lstat`) only: it opens no file and
//!   changes nothing.
//! - It follows no symbolic link: a link is counted as a file of its own (small) size where it
//!   lies, and nothing outside the store is counted. Directories themselves are not counted.
//! - A file or directory that vanishes between its listing and its `lstat` (a writer at work:
//!   a spare renamed into a segment, a temporary file renamed, fjall compacting) is skipped;
//!   any other failure to list a directory or read a file's metadata is an error naming it.

use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path};

/// A directory that could not be listed or a file whose metadata could not be read, while
/// measuring a store.
#[derive(Debug, thiserror::Error)]
#[error("could not {op} {}: {source}", path.display())]
pub struct DiskUsageError {
    /// What was being done: `list the directory`, `read the metadata of`.
    pub op: &'static str,
    /// The directory or file.
    pub path: std::path::PathBuf,
    /// The file system's error.
    #[source]
    pub source: io::Error,
}

/// Bytes per unit of `st_blocks`: POSIX counts allocated space in 512-byte units, whatever
/// the file system's block size.
pub const STAT_BLOCK_BYTES: u64 = 512;

/// What a file in a store is, by where it lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    /// `log/*.log`: the log's segments, the only source of truth.
    Segments,
    /// `log/*.spare`: the zero-filled file waiting to become the next segment.
    Spare,
    /// Anything under `meta/` (fjall) or `index/`, the segment indexes (`log/*.idx`) and the
    /// catalog snapshot (`CATALOG`): the metadata, derived from the log.
    Metadata,
    /// Anything under `checkpoints/` or `packs/`: the checkpoints, derived from the log.
    Checkpoints,
    /// Anything under a `repair-*/` directory: what `helios repair` set aside. Neither the log
    /// nor derived from it.
    SetAside,
    /// Everything else: `FORMAT`, `LOCK`, temporary files, files the store does not know.
    Other,
}

impl FileKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [FileKind; 6] = [
        FileKind::Segments,
        FileKind::Spare,
        FileKind::Metadata,
        FileKind::Checkpoints,
        FileKind::SetAside,
        FileKind::Other,
    ];

    /// Its name in reports and the key of its object in `--json`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Segments => "segments",
            FileKind::Spare => "spare",
            FileKind::Metadata => "metadata",
            FileKind::Checkpoints => "checkpoints",
            FileKind::SetAside => "set_aside",
            FileKind::Other => "other",
        }
    }

    /// Whether it counts as data the store keeps beside its log: every kind but the log's
    /// segments and what `repair` set aside.
    #[must_use]
    pub fn is_derived(self) -> bool {
        !matches!(self, FileKind::Segments | FileKind::SetAside)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The kind of the file at `relative`, its path under the store directory: `log/*.log`
/// segments, `log/*.spare` the spare (both directly in `log/`), anything under `meta/` or
/// `index/` metadata, under `checkpoints/` or `packs/` checkpoints, under a `repair-*/`
/// directory set aside, and anything else (a file at the top, another file in `log/`) other.
#[must_use]
fn classify(relative: &Path) -> FileKind {
    let parts: Vec<&str> = relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    match parts.as_slice() {
        ["log", name] if name.ends_with(".log") => FileKind::Segments,
        ["log", name] if name.ends_with(".spare") => FileKind::Spare,
        ["log", name] if name.ends_with(".idx") => FileKind::Metadata,
        ["CATALOG" | "CATALOG.tmp"] => FileKind::Metadata,
        ["meta" | "index", _, ..] => FileKind::Metadata,
        ["checkpoints" | "packs", _, ..] => FileKind::Checkpoints,
        [top, _, ..] if top.starts_with("repair-") => FileKind::SetAside,
        _ => FileKind::Other,
    }
}

/// Files and bytes of one kind (or of several).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileUsage {
    /// Files.
    pub files: u64,
    /// Their lengths, summed.
    pub apparent_bytes: u64,
    /// What the file system allocated for them (`st_blocks * 512`), summed.
    pub allocated_bytes: u64,
}

impl FileUsage {
    fn add(&mut self, other: FileUsage) {
        self.files += other.files;
        self.apparent_bytes += other.apparent_bytes;
        self.allocated_bytes += other.allocated_bytes;
    }
}

/// A store's files by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    by_kind: [FileUsage; FileKind::ALL.len()],
    directories: u64,
}

impl DiskUsage {
    /// The files of `kind`.
    #[must_use]
    pub fn of(&self, kind: FileKind) -> FileUsage {
        self.by_kind[kind.index()]
    }

    /// Every file.
    #[must_use]
    pub fn total(&self) -> FileUsage {
        self.sum(|_| true)
    }

    /// Every file the store keeps beside its log ([`FileKind::is_derived`]).
    #[must_use]
    pub fn derived(&self) -> FileUsage {
        self.sum(FileKind::is_derived)
    }

    /// Directories under the store's (not counted among the files).
    #[must_use]
    pub fn directories(&self) -> u64 {
        self.directories
    }

    fn sum(&self, which: impl Fn(FileKind) -> bool) -> FileUsage {
        let mut usage = FileUsage::default();
        for kind in FileKind::ALL.into_iter().filter(|&k| which(k)) {
            usage.add(self.of(kind));
        }
        usage
    }

    fn count(&mut self, kind: FileKind, metadata: &std::fs::Metadata) {
        self.by_kind[kind.index()].add(FileUsage {
            files: 1,
            apparent_bytes: metadata.len(),
            allocated_bytes: metadata.blocks().saturating_mul(STAT_BLOCK_BYTES),
        });
    }
}

/// Walks the store directory `dir` and sums its files by kind.
///
/// # Errors
/// [`DiskUsageError`] naming a directory that cannot be listed or a file whose metadata cannot
/// be read, for any reason but its having vanished meanwhile.
pub fn disk_usage(dir: &Path) -> Result<DiskUsage, DiskUsageError> {
    let mut usage = DiskUsage::default();
    // Directories still to list, as paths under `dir`: a loop, not recursion, so that a deep
    // tree cannot exhaust the stack.
    let mut pending = vec![std::path::PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let path = dir.join(&relative);
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !relative.as_os_str().is_empty() => {
                continue;
            }
            Err(source) => return Err(path_error("list the directory", &path, source)),
        };
        for entry in entries {
            let entry = entry.map_err(|source| path_error("list the directory", &path, source))?;
            let child = relative.join(entry.file_name());
            // `DirEntry::metadata` does not follow a symbolic link: an `lstat`.
            let metadata = match entry.metadata() {
                Ok(metadata) => metadata,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(path_error(
                        "read the metadata of",
                        &dir.join(&child),
                        source,
                    ));
                }
            };
            if metadata.is_dir() {
                usage.directories += 1;
                pending.push(child);
            } else {
                usage.count(classify(&child), &metadata);
            }
        }
    }
    Ok(usage)
}

fn path_error(op: &'static str, path: &Path, source: io::Error) -> DiskUsageError {
    DiskUsageError {
        op,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_classified_by_where_they_lie_in_both_layouts() {
        for (path, kind) in [
            ("log/00000000000000000001.log", FileKind::Segments),
            ("log/next-segment.spare", FileKind::Spare),
            ("log/00000000000000000001.idx", FileKind::Metadata),
            ("log/00000000000000000001.log.tmp", FileKind::Other),
            ("log/nested/00000000000000000001.log", FileKind::Other),
            ("meta/0.jnl", FileKind::Metadata),
            ("meta/keyspaces/0/tables/3", FileKind::Metadata),
            ("index/anything", FileKind::Metadata),
            (
                "checkpoints/000000000000002a-00000000000000002340-l1.ckpt",
                FileKind::Checkpoints,
            ),
            ("checkpoints/x.ckpt.tmp", FileKind::Checkpoints),
            ("packs/0001.pack", FileKind::Checkpoints),
            (
                "repair-20261206T013000Z/log/00000000000000000001.log",
                FileKind::SetAside,
            ),
            ("FORMAT", FileKind::Other),
            ("CATALOG", FileKind::Metadata),
            ("LOCK", FileKind::Other),
            ("meta", FileKind::Other),
            ("repair-notes.txt", FileKind::Other),
            ("notes.txt", FileKind::Other),
        ] {
            assert_eq!(classify(Path::new(path)), kind, "{path}");
        }
    }

    #[test]
    fn derived_is_everything_but_the_segments_and_what_repair_set_aside() {
        let derived: Vec<FileKind> = FileKind::ALL
            .into_iter()
            .filter(|k| k.is_derived())
            .collect();
        assert_eq!(
            derived,
            [
                FileKind::Spare,
                FileKind::Metadata,
                FileKind::Checkpoints,
                FileKind::Other
            ]
        );
        let mut usage = DiskUsage::default();
        for (i, kind) in FileKind::ALL.into_iter().enumerate() {
            let n = 1u64 << i;
            usage.by_kind[kind.index()] = FileUsage {
                files: n,
                apparent_bytes: 10 * n,
                allocated_bytes: 100 * n,
            };
        }
        assert_eq!(usage.total().files, 0b11_1111);
        assert_eq!(usage.derived().files, 0b10_1110);
        assert_eq!(usage.derived().allocated_bytes, 100 * 0b10_1110);
    }

    #[test]
    fn a_walk_counts_files_not_directories_nor_what_a_link_points_to() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("log")).expect("mkdir");
        std::fs::create_dir_all(dir.join("index/deep/er")).expect("mkdir");
        std::fs::write(dir.join("log/00000000000000000001.log"), [1u8; 5000]).expect("write");
        std::fs::write(dir.join("index/deep/er/a"), b"abc").expect("write");
        std::fs::write(dir.join("FORMAT"), [0u8; 24]).expect("write");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("big"), vec![7u8; 100_000]).expect("write");
        std::os::unix::fs::symlink(outside.path(), dir.join("packs")).expect("symlink");
        let usage = disk_usage(dir).expect("walk");
        assert_eq!(usage.total().files, 4, "{usage:?}");
        let segments = usage.of(FileKind::Segments);
        assert_eq!((segments.files, segments.apparent_bytes), (1, 5000));
        assert!(segments.allocated_bytes >= 5000, "{segments:?}");
        assert_eq!(usage.of(FileKind::Metadata).apparent_bytes, 3);
        // The link is a file at the top of the store, counted at its own size.
        let other = usage.of(FileKind::Other);
        assert_eq!(other.files, 2, "{usage:?}");
        assert!(other.apparent_bytes < 24 + 4096, "{usage:?}");
        assert_eq!(usage.of(FileKind::Checkpoints), FileUsage::default());
        assert_eq!(usage.directories(), 4, "log, index, deep, er");
    }
}
