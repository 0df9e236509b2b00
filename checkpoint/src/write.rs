//! Writing checkpoint files: the block layout, the archive, the header, and the publish
//! protocol (temporary name, fsync, rename, fsync of the directory).
//!
//! Invariants of what this module produces (the reader checks all but the last):
//! - Entries are in strictly increasing key order; an input that is not fails before any byte
//!   is written.
//! - The same metadata and entries always give the same bytes.
//! - A block of more than one entry never crosses a page boundary of the file.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};

use rkyv::rancor::BoxedError;
use rkyv::util::AlignedVec;

use crate::error::{CheckpointError, KeyPreview, Result};
use crate::format::{
    self, ARCHIVE_LEN_MAX, BlockIndex, Body, CheckpointMeta, Header, KEY_LEN_MAX, PAD_LEN_MAX,
    PAGE_LEN, VALUE_LEN_MAX, header,
};

/// What [`write_checkpoint`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The file's final path.
    pub path: PathBuf,
    /// Its length.
    pub file_len_bytes: u64,
    /// Entries (values and tombstones) in it.
    pub entry_count: u64,
    /// Blocks the entries were laid out in.
    pub block_count: u64,
    /// The CRC32 of the archive, as the header records it: a fingerprint of the contents.
    pub archive_crc: u32,
}

/// An encoded checkpoint: the header and the archive after it.
pub(crate) struct Encoded {
    pub(crate) header: [u8; header::LEN],
    pub(crate) archive: AlignedVec,
    pub(crate) entry_count: u64,
    pub(crate) block_count: u64,
}

/// Where the archive's `data` field starts in the file: right after the header, because rkyv
/// writes the first field's bytes first (a test checks this). The layout only uses it to find
/// page boundaries, so if it were wrong, files would stay valid and lookups would touch more
/// pages.
const DATA_FILE_OFFSET: usize = header::LEN;

/// The offset of the first page boundary after `file_offset`.
fn page_end(file_offset: usize) -> usize {
    (file_offset / PAGE_LEN + 1) * PAGE_LEN
}

/// Lays out the entries in blocks and builds the archive's root.
struct BlockBuilder {
    data: Vec<u8>,
    blocks: Vec<BlockIndex>,
    fences: Vec<Vec<u8>>,
    fence_bytes: usize,
    /// The block being filled: its offset in `data` and its entry count.
    open: Option<(usize, u32)>,
    /// Where the last key is in `data`, to check the order of the next.
    last_key: Option<(usize, usize)>,
    entry_count: u64,
}

impl BlockBuilder {
    fn new() -> BlockBuilder {
        BlockBuilder {
            data: Vec::new(),
            blocks: Vec::new(),
            fences: Vec::new(),
            fence_bytes: 0,
            open: None,
            last_key: None,
            entry_count: 0,
        }
    }

    fn push(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let index = self.entry_count;
        if key.len() > KEY_LEN_MAX {
            return Err(CheckpointError::KeyTooLong {
                index,
                len_bytes: key.len(),
                max_bytes: KEY_LEN_MAX,
            });
        }
        if let Some(value) = value
            && value.len() > VALUE_LEN_MAX
        {
            return Err(CheckpointError::ValueTooLong {
                index,
                len_bytes: value.len(),
                max_bytes: VALUE_LEN_MAX,
            });
        }
        if let Some((start, end)) = self.last_key {
            let previous = &self.data[start..end];
            if previous >= key {
                return Err(CheckpointError::Unsorted {
                    index,
                    key: KeyPreview::new(key),
                    previous: KeyPreview::new(previous),
                });
            }
        }
        let len = format::entry_len(key, value);
        let file_pos = DATA_FILE_OFFSET + self.data.len();
        if let Some((offset, _)) = self.open
            && file_pos + len > page_end(DATA_FILE_OFFSET + offset)
        {
            self.close_block();
        }
        if self.open.is_none() {
            // A new block starts with this entry. If the entry fits in a page but not in what is
            // left of this one, and little is left, pad so that the block starts on a new page.
            let left = page_end(file_pos) - file_pos;
            if len > left && len <= PAGE_LEN && left <= PAD_LEN_MAX {
                self.data.resize(self.data.len() + left, 0);
            }
            self.open = Some((self.data.len(), 0));
            self.fences.push(key.to_vec());
            self.fence_bytes += key.len();
        }
        format::put_entry(&mut self.data, key, value);
        // The key sits right before the value, at the end of the entry.
        let key_start = self.data.len() - value.map_or(0, <[u8]>::len) - key.len();
        self.last_key = Some((key_start, key_start + key.len()));
        debug_assert_eq!(&self.data[key_start..key_start + key.len()], key);
        if let Some((_, count)) = &mut self.open {
            *count += 1;
        }
        self.entry_count += 1;
        // Fail early, before memory grows past what one archive can hold. The estimate counts
        // every part of the archive but rkyv's few bytes of alignment and root.
        let estimate =
            self.data.len() as u64 + self.fence_bytes as u64 + 24 * (self.blocks.len() as u64 + 1);
        if estimate > ARCHIVE_LEN_MAX {
            return Err(CheckpointError::TooLarge {
                len_bytes: estimate,
                max_bytes: ARCHIVE_LEN_MAX,
            });
        }
        Ok(())
    }

    fn close_block(&mut self) {
        if let Some((offset, entry_count)) = self.open.take() {
            let len = self.data.len() - offset;
            debug_assert!(entry_count > 0 && len > 0);
            self.blocks.push(BlockIndex {
                offset: offset as u64,
                // Cannot truncate: the archive (and so a block) is under ARCHIVE_LEN_MAX bytes.
                len: u32::try_from(len).unwrap_or(u32::MAX),
                entry_count,
            });
        }
    }

    fn finish(mut self) -> (Body, u64) {
        self.close_block();
        debug_assert_eq!(self.blocks.len(), self.fences.len());
        let body = Body {
            data: self.data,
            blocks: self.blocks,
            fences: self.fences,
        };
        (body, self.entry_count)
    }
}

/// Encodes a checkpoint into its header and archive.
pub(crate) fn encode_parts<K, V>(
    meta: CheckpointMeta,
    entries: impl IntoIterator<Item = (K, Option<V>)>,
) -> Result<Encoded>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    if let Some((_, reason)) = meta.problem() {
        return Err(CheckpointError::InvalidMeta { meta, reason });
    }
    let mut builder = BlockBuilder::new();
    for (key, value) in entries {
        builder.push(key.as_ref(), value.as_ref().map(AsRef::as_ref))?;
    }
    let (body, entry_count) = builder.finish();
    let block_count = body.blocks.len() as u64;
    let archive = rkyv::to_bytes::<BoxedError>(&body).map_err(|e| CheckpointError::Encode {
        message: e.to_string(),
    })?;
    let archive_len = archive.len() as u64;
    if archive_len > ARCHIVE_LEN_MAX {
        return Err(CheckpointError::TooLarge {
            len_bytes: archive_len,
            max_bytes: ARCHIVE_LEN_MAX,
        });
    }
    // The layout assumed that `data` opens the archive; check it (cheaply: its first bytes).
    debug_assert!(archive.starts_with(&body.data[..body.data.len().min(PAGE_LEN)]));
    let header = Header {
        meta,
        entry_count,
        archive_len,
        archive_crc: crc32fast::hash(&archive),
    }
    .encode();
    if cfg!(debug_assertions) {
        // Check what is written before writing it: in debug builds, the reader must accept it.
        let mut file = header.to_vec();
        file.extend_from_slice(&archive);
        let read_back = crate::Checkpoint::from_bytes(&file);
        debug_assert!(
            read_back
                .as_ref()
                .is_ok_and(|c| crate::SortedRun::len(c) as u64 == entry_count),
            "the writer produced a checkpoint its reader rejects: {:?}",
            read_back.err()
        );
    }
    Ok(Encoded {
        header,
        archive,
        entry_count,
        block_count,
    })
}

/// Encodes a checkpoint of `entries` (key, value or `None` for a tombstone) in memory: the exact
/// bytes [`write_checkpoint`] would write. The same input always gives the same bytes.
///
/// # Errors
/// Entries not in strictly increasing key order ([`CheckpointError::Unsorted`], naming the
/// entry's index), a key or value over its limit, invalid `meta`, or more than fits in one
/// archive.
pub fn encode_checkpoint<K, V>(
    meta: CheckpointMeta,
    entries: impl IntoIterator<Item = (K, Option<V>)>,
) -> Result<Vec<u8>>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let encoded = encode_parts(meta, entries)?;
    let mut out = Vec::with_capacity(header::LEN + encoded.archive.len());
    out.extend_from_slice(&encoded.header);
    out.extend_from_slice(&encoded.archive);
    Ok(out)
}

/// Whether [`write_checkpoint_with`] makes the file durable before returning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileSync {
    /// fsync the file before the rename and the directory after it: once the call returns,
    /// the file survives a crash.
    Synced,
    /// No fsync: the file is written and renamed into place, and reaches the disk when the
    /// kernel writes it back. After a machine crash the name may point at a short or garbled
    /// file, which [`crate::Checkpoint::open`] rejects (length and CRC checks). For
    /// checkpoints that are derived data and rebuilt when damaged, this saves two fsyncs per
    /// file.
    Unsynced,
}

/// Writes a checkpoint of `entries` (key, value or `None` for a tombstone) to `path`, durably:
/// the bytes go to `<path>.tmp`, which is fsynced and renamed to `path`, and then the directory
/// is fsynced. A crash leaves either no file at `path` (perhaps a stray `.tmp`) or the whole
/// file. The entries are encoded in memory first, so bad input never creates a file.
///
/// # Errors
/// Everything [`encode_checkpoint`] rejects, and I/O errors (naming the operation and path).
pub fn write_checkpoint<K, V>(
    path: &Path,
    meta: CheckpointMeta,
    entries: impl IntoIterator<Item = (K, Option<V>)>,
) -> Result<Written>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    write_checkpoint_with(path, meta, entries, FileSync::Synced)
}

/// [`write_checkpoint`] with a choice of [`FileSync`]. Either way the file appears under
/// `path` only whole (written to `<path>.tmp`, then renamed), so a reader never maps a file
/// that is still being written.
///
/// # Errors
/// As [`write_checkpoint`].
pub fn write_checkpoint_with<K, V>(
    path: &Path,
    meta: CheckpointMeta,
    entries: impl IntoIterator<Item = (K, Option<V>)>,
    sync: FileSync,
) -> Result<Written>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let encoded = encode_parts(meta, entries)?;
    let mut tmp = OsString::from(path.as_os_str());
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    if let Err(e) = write_tmp(&tmp, &encoded, sync) {
        // Best effort: the stray file is harmless, and the first error is the one to report.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).map_err(|source| CheckpointError::Io {
        op: "rename",
        path: tmp.clone(),
        source,
    })?;
    if sync == FileSync::Synced {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| CheckpointError::Io {
                op: "fsync directory",
                path: dir.to_path_buf(),
                source,
            })?;
    }
    Ok(Written {
        path: path.to_path_buf(),
        file_len_bytes: (header::LEN + encoded.archive.len()) as u64,
        entry_count: encoded.entry_count,
        block_count: encoded.block_count,
        archive_crc: crc32fast::hash(&encoded.archive),
    })
}

/// Writes `header` then `archive` with as few `write` calls as the kernel allows: one, usually.
///
/// One call, not one per part, because the page cache sizes the folios a write creates by the
/// bytes that call writes from each offset on. A write of the whole file from offset 0 gets
/// 2 MiB folios for every whole, aligned 2 MiB of it, which the kernel then maps with one TLB
/// entry each (`FilePmdMapped` in `/proc/PID/smaps`; ext4 on Linux 6.18 here). Written in two
/// calls, the archive started one page in, and only the 2 MiB that its folios could ramp up to
/// got that; every other page of a large checkpoint cost a TLB entry of its own.
fn write_all_vectored(file: &mut impl Write, header: &[u8], archive: &[u8]) -> io::Result<()> {
    let mut parts = [IoSlice::new(header), IoSlice::new(archive)];
    let mut rest = &mut parts[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut rest, written),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write_tmp(tmp: &Path, encoded: &Encoded, sync: FileSync) -> Result<()> {
    let io = |op: &'static str| {
        move |source| CheckpointError::Io {
            op,
            path: tmp.to_path_buf(),
            source,
        }
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(io("create"))?;
    write_all_vectored(&mut file, &encoded.header, &encoded.archive).map_err(io("write"))?;
    if sync == FileSync::Synced {
        file.sync_all().map_err(io("fsync"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `max` bytes per call, from the first non-empty slice only, and is
    /// interrupted every third call, as a short `writev` may be.
    struct Stingy {
        out: Vec<u8>,
        max: usize,
        calls: usize,
    }

    impl Write for Stingy {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(3) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.max);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn short_and_interrupted_writes_still_write_everything_in_order() {
        let header: Vec<u8> = (0..64u8).collect();
        let archive: Vec<u8> = (0..1000u32).flat_map(|i| i.to_le_bytes()).collect();
        for max in [1, 7, 63, 64, 65, 4096] {
            let mut out = Stingy {
                out: Vec::new(),
                max,
                calls: 0,
            };
            write_all_vectored(&mut out, &header, &archive).expect("written");
            assert_eq!(
                out.out,
                [&header[..], &archive[..]].concat(),
                "at most {max} per call"
            );
        }
    }

    #[test]
    fn a_writer_that_takes_nothing_is_an_error() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Ok(0)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let error = write_all_vectored(&mut Full, b"header", b"archive").expect_err("no progress");
        assert_eq!(error.kind(), io::ErrorKind::WriteZero);
    }
}
