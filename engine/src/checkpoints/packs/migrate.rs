//! Migration of the checkpoint files of store formats 1 and 2 into packs.

use std::path::Path;
use std::sync::Arc;

use helios_checkpoint::format;
use helios_checkpoint::pack::{DEFAULT_PACK_CAPACITY, PUBLISHED_END_FILE_NAME, parse_pack_name};
use helios_checkpoint::pack_index::parse_pack_index_name;
use helios_log::storage::Storage;

use super::{Decode, Legacy, Packs, io_error, list};
use crate::error::Result;

/// Copies the checkpoint files of a store of format 1 or 2 (one file per checkpoint, named
/// `<stream>-<version>-l<level>.ckpt`) into packs, oldest name first, and syncs them; the
/// files themselves are removed by the next writer's open of the packs. Packs left by an
/// interrupted migration are removed first, so a migration that crashed starts over.
pub(crate) fn migrate_checkpoint_files(
    dir: &Path,
    storage: &Arc<dyn Storage>,
    store_id: u64,
) -> Result<u64> {
    let names = list(storage.as_ref(), dir)?;
    for name in &names {
        if parse_pack_name(name).is_some()
            || parse_pack_index_name(name).is_some()
            || name == PUBLISHED_END_FILE_NAME
        {
            let path = dir.join(name);
            storage
                .remove_file(&path)
                .map_err(io_error("remove", &path))?;
        }
    }
    let mut files: Vec<&String> = names.iter().filter(|n| n.ends_with(".ckpt")).collect();
    if files.is_empty() {
        return Ok(0);
    }
    files.sort();
    let (packs, _, _) = Packs::open_writer(
        dir.to_path_buf(),
        storage.clone(),
        store_id,
        Legacy::Keep,
        DEFAULT_PACK_CAPACITY,
        Decode::Now,
    )?;
    let mut copied = 0;
    for name in files {
        let path = dir.join(name);
        let file = storage
            .open_read_only(&path)
            .map_err(io_error("open", &path))?;
        let len = file.len().map_err(io_error("stat", &path))?;
        let Ok(len) = usize::try_from(len) else {
            continue;
        };
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, 0)
            .map_err(io_error("read", &path))?;
        // Only whole checkpoints: a damaged one is rebuilt from the log instead.
        if format::peek_header(&path, &bytes).is_ok_and(|(_, whole)| whole == len as u64) {
            packs.append(&bytes)?;
            copied += 1;
        }
    }
    packs.sync()?;
    packs.publish()?;
    Ok(copied)
}
