//! The level policy the store's checkpoints were built with, `checkpoints/POLICY`.
//!
//! The policy decides at which versions checkpoints lie; an open with another policy looks for
//! them elsewhere and reads around them (a reader), or rebuilds them all (a writer). So the
//! writer records its policy, and every later open that is not told otherwise uses it: readers
//! always (they build nothing, so another policy would only lengthen their replays), writers
//! unless [`crate::CheckpointOptions::policy`] names one.
//!
//! Layout (little-endian; `docs/FORMAT.md` draws it):
//!
//! ```text
//!   offset  size  field
//!        0     8  magic "HLXPOLCY"
//!        8     4  version u32 = 1
//!       12     4  levels u32
//!       16     8  first interval u64
//!       24     8  fanout u64
//!       32     4  crc32 u32 of bytes 0..32
//!       36     4  reserved u32, zero
//! ```
//!
//! Invariant: the writer replaces the file whole (temporary name, synced, renamed, directory
//! synced) at its open, before it builds any checkpoint under a policy the file does not name.
//! The file is derived: without it (a store written before it existed, or one whose file was
//! lost) an open uses the policy its options name, or the default.

use std::path::Path;

use helios_checkpoint::LevelPolicy;
use helios_log::storage::Storage;

use crate::error::Result;

/// The file's name in the checkpoint directory.
pub(crate) const POLICY_FILE: &str = "POLICY";
const POLICY_TMP: &str = "POLICY.tmp";
const MAGIC: &[u8; 8] = b"HLXPOLCY";
const VERSION: u32 = 1;
const LEN: usize = 40;
const CRC_AT: usize = 32;

/// What `checkpoints/POLICY` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// No file: the store predates it, or has no checkpoint directory yet.
    Missing,
    /// The policy the store's writer last used.
    Policy(LevelPolicy),
    /// A file that is not a whole record of a valid policy: why.
    Damaged(String),
}

/// Reads the record in the checkpoint directory `dir`.
pub(crate) fn read(storage: &dyn Storage, dir: &Path) -> Recorded {
    let path = dir.join(POLICY_FILE);
    match storage.map_readonly(&path) {
        Ok(bytes) => match decode(&bytes) {
            Ok(policy) => Recorded::Policy(policy),
            Err(why) => Recorded::Damaged(why),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Recorded::Missing,
        Err(e) => Recorded::Damaged(format!("cannot be read: {e}")),
    }
}

/// Records `policy` in the checkpoint directory `dir` (which must exist), replacing the file
/// whole.
///
/// # Errors
/// I/O errors naming the file.
pub(crate) fn write(storage: &dyn Storage, dir: &Path, policy: &LevelPolicy) -> Result<()> {
    helios_log::write_whole(storage, dir, POLICY_TMP, POLICY_FILE, &encode(policy))?;
    Ok(())
}

fn encode(policy: &LevelPolicy) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&policy.levels().to_le_bytes());
    out[16..24].copy_from_slice(&policy.first_interval().to_le_bytes());
    out[24..32].copy_from_slice(&policy.fanout().to_le_bytes());
    let crc = crc32fast::hash(&out[..CRC_AT]);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> std::result::Result<LevelPolicy, String> {
    if bytes.len() != LEN {
        return Err(format!("it is {} bytes long, not {LEN}", bytes.len()));
    }
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let u64_at = |at: usize| u64::from(u32_at(at)) | (u64::from(u32_at(at + 4)) << 32);
    if &bytes[..8] != MAGIC {
        return Err("wrong magic bytes (not a checkpoint policy record)".into());
    }
    let (stored, computed) = (u32_at(CRC_AT), crc32fast::hash(&bytes[..CRC_AT]));
    if stored != computed {
        return Err(format!(
            "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        ));
    }
    if u32_at(8) != VERSION {
        return Err(format!(
            "record version {} (this build reads {VERSION})",
            u32_at(8)
        ));
    }
    if u32_at(CRC_AT + 4) != 0 {
        return Err("non-zero reserved bytes".into());
    }
    LevelPolicy::with_first(u64_at(16), u64_at(24), u32_at(12))
        .map_err(|e| format!("it records an invalid policy: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_reads_back_and_every_flipped_byte_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = helios_log::FsStorage;
        assert_eq!(read(&storage, dir.path()), Recorded::Missing);
        let policy = LevelPolicy::with_first(10, 3, 9).expect("policy");
        write(&storage, dir.path(), &policy).expect("write");
        assert_eq!(read(&storage, dir.path()), Recorded::Policy(policy));
        let other = LevelPolicy::new(4, 5).expect("policy");
        write(&storage, dir.path(), &other).expect("rewrite");
        assert_eq!(read(&storage, dir.path()), Recorded::Policy(other));

        let bytes = encode(&policy);
        for at in 0..bytes.len() {
            let mut bad = bytes;
            bad[at] ^= 0x10;
            assert!(decode(&bad).is_err(), "a flip at byte {at}");
        }
        assert!(decode(&bytes[..LEN - 1]).is_err());
        // A whole record of a policy the API refuses is damage too.
        let mut invalid = encode(&policy);
        invalid[24..32].copy_from_slice(&1u64.to_le_bytes());
        let crc = crc32fast::hash(&invalid[..CRC_AT]);
        invalid[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(
            decode(&invalid)
                .expect_err("invalid")
                .contains("invalid policy")
        );
        std::fs::write(dir.path().join(POLICY_FILE), b"junk").expect("write");
        assert!(
            matches!(read(&storage, dir.path()), Recorded::Damaged(why) if why.contains("4 bytes long"))
        );
    }
}
