//! The store's machine table, `checkpoints/MACHINES`: the name of every state machine that
//! built checkpoints in the store, numbered from 1 in the order first used. Each checkpoint
//! carries its builder's number (`CheckpointMeta::machine`), so a store reads a checkpoint only
//! for a stream whose configured machine has that name. A stream whose machine changes can
//! then never have another machine's state read as its own, however many opens later: the old
//! copies stay in the packs until compaction reclaims them, and they stay someone else's.
//!
//! Layout (little-endian; `docs/FORMAT.md` draws it):
//!
//! ```text
//! magic "HLXMACHN", version u32, count u32,
//! per machine: name length u32, name bytes (UTF-8),
//! CRC32 u32 of everything before it
//! ```
//!
//! Invariants: numbers are never reused or reordered (a new name gets the next one, past any
//! number a pack holds, even one this file no longer names after damage); the file is
//! replaced whole (temporary name, synced, renamed, directory synced) before the first
//! checkpoint a new machine builds is written, so every number in a pack is in the file on
//! disk. Checkpoints of stores written before the table (number 0) are judged by what fjall
//! recorded per stream, as they were.

use std::path::Path;

use helios_log::storage::Storage;

use crate::error::Result;

/// The file's name in the checkpoint directory.
pub(crate) const MACHINES_FILE: &str = "MACHINES";
const MACHINES_TMP: &str = "MACHINES.tmp";
const MAGIC: &[u8; 8] = b"HLXMACHN";
const VERSION: u32 = 1;

/// The numbers of the machines that built checkpoints (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct MachineTable {
    /// Machine `n` is at index `n - 1`.
    names: Vec<String>,
    /// The next number to give: past every name here and every number a pack holds.
    next: u32,
}

impl MachineTable {
    /// The table in `dir`: empty when there is none, or when it is damaged (then `Err` says
    /// why, and checkpoints numbered by it are not read: rebuilt, or read around).
    pub(crate) fn load(storage: &dyn Storage, dir: &Path) -> (MachineTable, Option<String>) {
        let path = dir.join(MACHINES_FILE);
        let bytes = match storage.map_readonly(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (MachineTable::default(), None);
            }
            Err(e) => {
                let why = format!("{}: {e}", path.display());
                return (MachineTable::default(), Some(why));
            }
        };
        match decode(&bytes) {
            Some(names) => {
                let next = u32::try_from(names.len()).unwrap_or(u32::MAX);
                (MachineTable { names, next }, None)
            }
            None => (
                MachineTable::default(),
                Some(format!(
                    "{}: not a whole machine table; the checkpoints it numbers are rebuilt",
                    path.display()
                )),
            ),
        }
    }

    /// The name of machine `number` (`None` for 0, and for a number the table lacks).
    pub(crate) fn name(&self, number: u16) -> Option<&str> {
        let at = usize::from(number).checked_sub(1)?;
        self.names.get(at).map(String::as_str)
    }

    /// The number of `name`, if it has one.
    pub(crate) fn number(&self, name: &str) -> Option<u16> {
        let at = self.names.iter().position(|n| n == name)?;
        u16::try_from(at + 1).ok()
    }

    /// Notes a number a pack holds, so that no new name is given it.
    pub(crate) fn saw(&mut self, number: u16) {
        self.next = self.next.max(u32::from(number));
    }

    /// The number of `name`, giving it the next one (and writing the table to `dir`) if it has
    /// none.
    ///
    /// # Errors
    /// More than 65,535 machine names; I/O errors naming the file.
    pub(crate) fn number_or_add(
        &mut self,
        storage: &dyn Storage,
        dir: &Path,
        name: &str,
    ) -> Result<u16> {
        if let Some(number) = self.number(name) {
            return Ok(number);
        }
        let number = u16::try_from(self.next + 1).map_err(|_| {
            crate::Error::Log(helios_log::LogError::corrupt(
                dir.join(MACHINES_FILE),
                0,
                "more than 65,535 state machine names built checkpoints in this store".to_owned(),
            ))
        })?;
        // Numbers the table lost (damage) stay unnamed: their checkpoints are not read.
        let mut names = self.names.clone();
        while names.len() + 1 < usize::from(number) {
            names.push(String::new());
        }
        names.push(name.to_owned());
        helios_log::write_whole(storage, dir, MACHINES_TMP, MACHINES_FILE, &encode(&names))?;
        self.names = names;
        self.next = u32::from(number);
        Ok(number)
    }
}

fn encode(names: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + names.iter().map(|n| 4 + n.len()).sum::<usize>() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&u32::try_from(names.len()).unwrap_or(u32::MAX).to_le_bytes());
    for name in names {
        out.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<Vec<String>> {
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let body = bytes.len().checked_sub(4)?;
    if bytes.get(..8)? != MAGIC
        || u32_at(8)? != VERSION
        || u32_at(body)? != crc32fast::hash(&bytes[..body])
    {
        return None;
    }
    let count = u32_at(12)? as usize;
    let mut names = Vec::with_capacity(count.min(body / 4));
    let mut at = 16;
    for _ in 0..count {
        let len = u32_at(at)? as usize;
        let name = bytes.get(at + 4..(at + 4).checked_add(len)?)?;
        names.push(String::from_utf8(name.to_vec()).ok()?);
        at += 4 + len;
    }
    (at == body && names.len() <= usize::from(u16::MAX)).then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_kept_across_loads_and_never_reused_after_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = helios_log::FsStorage;
        let (mut table, damage) = MachineTable::load(&storage, dir.path());
        assert_eq!((table.name(1), damage), (None, None));
        let kv = table
            .number_or_add(&storage, dir.path(), "kv")
            .expect("add");
        let other = table
            .number_or_add(&storage, dir.path(), "other")
            .expect("add");
        assert_eq!((kv, other), (1, 2));
        assert_eq!(
            table.number_or_add(&storage, dir.path(), "kv").ok(),
            Some(1)
        );
        let (again, damage) = MachineTable::load(&storage, dir.path());
        assert_eq!(damage, None);
        assert_eq!(
            (again.name(1), again.name(2), again.name(0)),
            (Some("kv"), Some("other"), None)
        );

        // Every flipped byte is damage, found.
        let bytes = std::fs::read(dir.path().join(MACHINES_FILE)).expect("read");
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(decode(&bad).is_none(), "a flip at byte {at}");
        }
        // A damaged table names nothing; a number a pack holds is not given again.
        std::fs::write(dir.path().join(MACHINES_FILE), b"junk").expect("write");
        let (mut damaged, damage) = MachineTable::load(&storage, dir.path());
        assert!(damage.is_some());
        damaged.saw(2);
        let third = damaged
            .number_or_add(&storage, dir.path(), "kv")
            .expect("add");
        assert_eq!(third, 3);
        let (reloaded, _) = MachineTable::load(&storage, dir.path());
        assert_eq!((reloaded.name(1), reloaded.name(3)), (Some(""), Some("kv")));
    }
}
