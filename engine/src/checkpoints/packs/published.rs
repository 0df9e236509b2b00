//! The published end (`checkpoints/published-end`): how far the packs are written, which readers
//! in other processes read up to and never past, and which a writer's open checks its packs
//! against.

use std::path::Path;

use helios_checkpoint::pack::{self, PUBLISHED_END_FILE_NAME, PackEnd};
use helios_log::storage::Storage;

use super::{Packs, PacksAtOpen, io_error};
use crate::engine::lock;
use crate::error::Result;

/// Reads the published end in `dir`, or `None` if there is none (or it is being rewritten).
pub(super) fn read_published(storage: &dyn Storage, dir: &Path) -> Result<Option<PackEnd>> {
    let path = dir.join(PUBLISHED_END_FILE_NAME);
    let file = match storage.open_read_only(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("open", &path)(e)),
    };
    let mut buf = [0u8; pack::published_end::LEN];
    // A read that meets the writer's rewrite halfway fails its checksum: read again.
    for _ in 0..3 {
        match file.read_exact_at(&mut buf, 0) {
            Ok(()) => {
                if let Some(end) = PackEnd::decode(&buf) {
                    return Ok(Some(end));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io_error("read", &path)(e)),
        }
    }
    Ok(None)
}

impl Packs {
    /// Publishes how far the packs are written, for readers in other processes.
    pub(crate) fn publish(&self) -> Result<()> {
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        let mut w = lock(writer);
        let Some(a) = &w.appender else {
            return Ok(()); // Nothing written since open.
        };
        let now = PackEnd {
            seq: a.seq,
            end: a.end,
        };
        if w.published_at == Some(now) {
            return Ok(());
        }
        let path = self.dir.join(PUBLISHED_END_FILE_NAME);
        let file = match w.published_file.clone() {
            Some(file) => file,
            None => {
                let file = match self.storage.open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => self
                        .storage
                        .create(&path)
                        .map_err(io_error("create", &path))?,
                    Err(e) => return Err(io_error("open", &path)(e)),
                };
                w.published_file = Some(file.clone());
                file
            }
        };
        file.write_all_at(&now.encode(), 0)
            .map_err(io_error("write", &path))?;
        w.published_at = Some(now);
        Ok(())
    }

    /// Notes as damage a pack the published end names that is not among `seqs`: its
    /// checkpoints are lost (a compaction never removes the pack being written).
    pub(super) fn note_missing(
        &self,
        published: Option<PackEnd>,
        seqs: &[u64],
        notes: &mut PacksAtOpen,
    ) {
        if let Some(p) = published.filter(|p| !seqs.contains(&p.seq)) {
            let path = self.path(p.seq);
            notes.damage.push(format!(
                "{}: missing, but the published end names it",
                path.display()
            ));
        }
    }
}
