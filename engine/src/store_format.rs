//! The store's format version: a small file, `FORMAT`, at the store's root.
//!
//! It lives outside fjall (derived data, and single-process) and outside the log's segments, so
//! that any process, and any later version of Helios, reads it first and knows what it is
//! looking at before it reads anything else. Layout (`docs/FORMAT.md` draws it):
//!
//! ```text
//!   offset  size  field
//!        0     8  magic "HELIOSFM"
//!        8     4  store format version u32
//!       12     4  reserved u32, zero
//!       16     4  crc32 u32 of bytes 0..16
//!       20     4  reserved u32, zero
//! ```
//!
//! History of the store format:
//! - 1: segments of format 1 and fjall metadata of format 1; no `FORMAT` file (a store with a
//!   `log/` directory and no `FORMAT` file is a version-1 store).
//! - 2: the `FORMAT` file; log segments of format 2 (which adds the record kinds that delete
//!   and fork streams); fjall metadata of format 2 (stream records name their parent and their
//!   deletion).
//! - 3: checkpoints in packs (`checkpoints/<seq>.pack`, see `helios_checkpoint::pack`) instead
//!   of one file per checkpoint, and no per-checkpoint entries in fjall (the packs are the
//!   catalog). Log segments and the rest of the metadata are as in version 2.
//! - 4: an index file beside each sealed log segment (`log/<segment>.idx`, see
//!   `helios_log::segment_index`) instead of fjall's `index` keyspace, which is deleted.
//!   Stream records in fjall keep their layout; their head is the stream's durable head.
//! - 5: no stream records and no recovery point in fjall: an open finds the streams in the
//!   catalog snapshot (`CATALOG`) and the log after it, and what was durable in the log's
//!   published end. Every file keeps the layout of version 4.
//!
//! Migration from version 4 happens when a writer opens the store: the open reads fjall's
//! recovery point (a bound on what was durable, as the published end is), reads the whole log
//! once, deletes the `streams` keyspace and the recovery point, and writes this file last.
//!
//! Migration from version 3 happens when a writer opens the store: fjall's `index` keyspace
//! is deleted, the open reads the whole log once (as it would without metadata), and the
//! segment indexes are written before `FORMAT`.
//!
//! Migration from version 2 (and the checkpoint part of a migration from version 1) happens
//! when a writer opens the store: the checkpoint files are copied into packs, which are synced;
//! fjall's per-checkpoint entries and the files are removed; this file is written last. A crash
//! before it is written migrates again from scratch: packs left by the interrupted migration
//! are removed first, and checkpoints whose files were already removed are rebuilt from the
//! log (they are derived data).
//!
//! Migration from version 1 happens when a writer opens the store (see `open.rs`): the active
//! segment is sealed (or, when it holds no record, given a format-2 header) so that no
//! format-2 record ever lands where a version-1 build would read it, the fjall metadata is
//! rebuilt from the log, and this file is written last, so that a crash during the migration
//! leaves a store that the next open migrates again.
//!
//! Invariant: the file is written to a temporary name, synced, renamed into place and the
//! directory synced; it is never rewritten in place.

use std::path::Path;

use helios_log::{LogError, Storage};

use crate::error::{Error, Result};

/// The file's name in the store directory.
pub(crate) const FORMAT_FILE: &str = "FORMAT";
/// The temporary name the file is written under before its rename.
pub(crate) const FORMAT_TMP: &str = "FORMAT.tmp";

/// The store format this build writes, and the newest it reads.
pub const STORE_FORMAT_VERSION: u32 = 5;

const MAGIC: [u8; 8] = *b"HELIOSFM";

/// Byte offsets of the file's fields.
mod layout {
    /// `magic: [u8; 8]`
    pub const MAGIC: usize = 0;
    /// `format_version: u32`
    pub const VERSION: usize = 8;
    /// `reserved: u32`, zero.
    pub const RESERVED_A: usize = 12;
    /// `crc32: u32` of bytes `0..CRC`.
    pub const CRC: usize = 16;
    /// `reserved: u32`, zero.
    pub const RESERVED_B: usize = 20;
    /// The whole file.
    pub const LEN: usize = 8 // magic
        + 4 // format_version
        + 4 // reserved
        + 4 // crc32
        + 4; // reserved
    const _: () = assert!(RESERVED_B + 4 == LEN);
    const _: () = assert!(LEN == 24);
}

fn encode(version: u32) -> [u8; layout::LEN] {
    let mut out = [0u8; layout::LEN];
    out[layout::MAGIC..layout::MAGIC + 8].copy_from_slice(&MAGIC);
    out[layout::VERSION..layout::VERSION + 4].copy_from_slice(&version.to_le_bytes());
    let crc = crc32fast::hash(&out[..layout::CRC]);
    out[layout::CRC..layout::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The version a `FORMAT` file states, or why it states none.
fn decode(bytes: &[u8]) -> std::result::Result<u32, String> {
    let field = |at: usize| -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&bytes[at..at + 4]);
        u32::from_le_bytes(b)
    };
    if bytes.len() != layout::LEN {
        return Err(format!(
            "it is {} bytes long, not {}",
            bytes.len(),
            layout::LEN
        ));
    }
    if bytes[layout::MAGIC..layout::MAGIC + 8] != MAGIC {
        return Err("wrong magic bytes (not a Helios store format file)".into());
    }
    let stored = field(layout::CRC);
    let computed = crc32fast::hash(&bytes[..layout::CRC]);
    if stored != computed {
        return Err(format!(
            "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        ));
    }
    if field(layout::RESERVED_A) != 0 || field(layout::RESERVED_B) != 0 {
        return Err("non-zero reserved bytes".into());
    }
    Ok(field(layout::VERSION))
}

/// What the store directory says about its format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// A `FORMAT` file of this build's version.
    Current,
    /// A `FORMAT` file of an older version (2 and up), which a writer migrates.
    Older(u32),
    /// No `FORMAT` file: a new store (no segment yet) or a version-1 store (segments, written
    /// before the file existed).
    Missing,
}

/// Reads the store's `FORMAT` file.
///
/// # Errors
/// [`Error::NewerStoreFormat`] for a version this build does not read, [`Error::Log`] with
/// [`LogError::Corrupt`] for a damaged file, I/O errors.
pub(crate) fn read(storage: &dyn Storage, dir: &Path) -> Result<Found> {
    let path = dir.join(FORMAT_FILE);
    let file = match storage.open_read_only(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(LogError::io("open", &path, e).into()),
    };
    let len = file.len().map_err(|e| LogError::io("stat", &path, e))?;
    // A longer file is damaged; read no more than one byte past the layout to say so.
    let read_len = usize::try_from(len)
        .unwrap_or(usize::MAX)
        .min(layout::LEN + 1);
    let mut bytes = vec![0u8; read_len];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| LogError::io("read", &path, e))?;
    match decode(&bytes) {
        Ok(STORE_FORMAT_VERSION) => Ok(Found::Current),
        Ok(found) if found > STORE_FORMAT_VERSION => Err(Error::NewerStoreFormat {
            path,
            found,
            supported: STORE_FORMAT_VERSION,
        }),
        Ok(found) if found >= 2 => Ok(Found::Older(found)),
        Ok(found) => Err(LogError::corrupt(
            &path,
            layout::VERSION as u64,
            format!(
                "store format {found} never had a FORMAT file (this build reads 1 to \
                 {STORE_FORMAT_VERSION})"
            ),
        )
        .into()),
        Err(reason) => Err(LogError::corrupt(&path, 0, reason).into()),
    }
}

/// Writes the `FORMAT` file of this build's version: to a temporary name, synced, renamed into
/// place, directory synced.
///
/// # Errors
/// I/O errors naming the file.
pub(crate) fn write(storage: &dyn Storage, dir: &Path) -> Result<()> {
    helios_log::write_whole(
        storage,
        dir,
        FORMAT_TMP,
        FORMAT_FILE,
        &encode(STORE_FORMAT_VERSION),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let bytes = encode(STORE_FORMAT_VERSION);
        assert_eq!(decode(&bytes), Ok(STORE_FORMAT_VERSION));
        assert_eq!(decode(&encode(7)), Ok(7));
        for at in 0..layout::LEN {
            let mut bad = bytes;
            bad[at] ^= 0x10;
            assert!(decode(&bad).is_err(), "a flip at byte {at} is noticed");
        }
        assert!(decode(&bytes[..layout::LEN - 1]).is_err());
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(decode(&long).is_err());
    }
}
