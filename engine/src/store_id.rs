//! The store's identity: a random number in a small file, `STORE-ID`, at the store's root,
//! written once (when the store is created, or by the first writer of a store without one) and
//! stamped in every checkpoint pack's header. A pack whose stamp is not this store's was copied
//! from another store: its checkpoints describe other events, and are not read.
//!
//! Layout (`docs/FORMAT.md` draws it):
//!
//! ```text
//!   offset  size  field
//!        0     8  magic "HELIOSID"
//!        8     8  store id u64, never 0
//!       16     4  crc32 u32 of bytes 0..16
//!       20     4  reserved u32, zero
//! ```
//!
//! Invariant: the file is written to a temporary name, synced, renamed into place and the
//! directory synced; it is never rewritten. A damaged or missing one is replaced by a new id (a
//! writer's open): every pack then reads as foreign, and its checkpoints are rebuilt from the
//! log (they are derived data).

use std::hash::BuildHasher as _;
use std::path::Path;

use helios_log::Storage;

use crate::error::Result;

/// The file's name in the store directory.
pub(crate) const STORE_ID_FILE: &str = "STORE-ID";
/// The temporary name the file is written under before its rename.
pub(crate) const STORE_ID_TMP: &str = "STORE-ID.tmp";

const MAGIC: [u8; 8] = *b"HELIOSID";
const LEN: usize = 24;

fn encode(id: u64) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[0..8].copy_from_slice(&MAGIC);
    out[8..16].copy_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<u64> {
    if bytes.len() != LEN || bytes[0..8] != MAGIC || bytes[20..24] != [0; 4] {
        return None;
    }
    let crc = u32::from_le_bytes(bytes[16..20].try_into().ok()?);
    let id = u64::from_le_bytes(bytes[8..16].try_into().ok()?);
    (crc == crc32fast::hash(&bytes[..16]) && id != 0).then_some(id)
}

/// The store's id, or `None` if it has none (or an unreadable one).
pub(crate) fn read(storage: &dyn Storage, dir: &Path) -> Option<u64> {
    let file = storage.open_read_only(&dir.join(STORE_ID_FILE)).ok()?;
    let mut bytes = [0u8; LEN];
    if file.len().ok()? != LEN as u64 {
        return None;
    }
    file.read_exact_at(&mut bytes, 0).ok()?;
    decode(&bytes)
}

/// The store's id, created if it has none (a writer's open).
///
/// # Errors
/// I/O errors writing the file.
pub(crate) fn read_or_create(storage: &dyn Storage, dir: &Path) -> Result<u64> {
    if let Some(id) = read(storage, dir) {
        return Ok(id);
    }
    // Random enough to tell stores apart: the process's random hasher seed, the clock, the
    // process id.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let id = foldhash::fast::RandomState::default()
        .hash_one((nanos, std::process::id(), dir))
        .max(1);
    helios_log::write_whole(storage, dir, STORE_ID_TMP, STORE_ID_FILE, &encode(id))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let bytes = encode(0x1234_5678_9abc_def0);
        assert_eq!(decode(&bytes), Some(0x1234_5678_9abc_def0));
        for at in 0..LEN {
            let mut bad = bytes;
            bad[at] ^= 1;
            assert_eq!(decode(&bad), None, "a flip at byte {at} is noticed");
        }
        assert_eq!(decode(&encode(0)), None, "0 is no id");
        assert_eq!(decode(&bytes[..LEN - 1]), None);
    }
}
