//! Pack indexes (`<seq>.pidx`, layout in [`helios_checkpoint::pack_index`]): written for a
//! pack that takes no more checkpoints and, at a clean close, for the active pack up to its
//! end, and read at open instead of a scan of the pack up to the end the index names (what a
//! later writer appended after it is scanned).

use helios_checkpoint::pack::{PackEntry, pack_header};
use helios_checkpoint::pack_index::{self, PackIndexView, pack_index_name};
use helios_log::storage::ReadOnlyBytes;

use super::{Appender, Packs};
use crate::engine::lock;

impl Packs {
    /// Indexes the pack `full` up to its end (one that takes no more checkpoints, or the
    /// active one at a clean close): syncs it, scans what its index does not cover yet (the
    /// whole pack without one), writes the index's entries and the scan's as its index. Best
    /// effort: what no index covers is scanned at open instead, so a failure here (a full
    /// disk) costs only that.
    pub(super) fn seal(&self, full: &Appender) {
        let indexed = (|| -> std::result::Result<(), String> {
            let (mut entries, from) = self
                .indexed(full.seq, full.end)
                .unwrap_or((Vec::new(), pack_header::LEN as u64));
            if from == full.end {
                return Ok(());
            }
            full.file.sync_data().map_err(|e| e.to_string())?;
            let scan = self.scan(full.seq, from, full.end)?;
            if scan.stopped.is_some() || scan.end != full.end {
                return Err("its checkpoints do not scan whole".into());
            }
            entries.extend(scan.entries);
            self.write_index(full.seq, full.end, &entries)
        })();
        drop(indexed);
    }

    /// Indexes the active pack up to its end at a clean close, so that the next open reads
    /// the index instead of scanning the pack: unless its index reaches that end already, or
    /// the checkpoints after the index's end are fewer bytes than the index (the next open
    /// scans them for less than rewriting the index costs now). Best effort, like the index of
    /// a full pack.
    pub(crate) fn index_active(&self) {
        let Some(writer) = &self.writer else {
            return;
        };
        let w = lock(writer);
        let (seq, end) = match (&w.appender, w.resume) {
            (Some(active), _) => (active.seq, active.end),
            (None, Some((seq, end))) => (seq, end),
            (None, None) => return,
        };
        let covered = self
            .index_view(seq, end)
            .map_or((pack_header::LEN as u64, 0), |v| (v.end(), v.byte_len()));
        if end == covered.0 || end - covered.0 < covered.1 {
            return;
        }
        match &w.appender {
            Some(active) => self.seal(active),
            // Nothing appended since open, which scanned the pack past its index (a writer
            // stopped without its close, or a store closed by an older build).
            None => {
                if let Ok(file) = self.storage.open(&self.path(seq)) {
                    self.seal(&Appender {
                        seq,
                        file,
                        end,
                        capacity: 0,
                    });
                }
            }
        }
    }

    /// Writes the index of pack `seq`, whose checkpoints up to `end` are `entries`.
    pub(super) fn write_index(
        &self,
        seq: u64,
        end: u64,
        entries: &[PackEntry],
    ) -> std::result::Result<(), String> {
        let bytes = pack_index::encode(seq, self.store_id.unwrap_or(0), end, entries);
        let name = pack_index_name(seq);
        let tmp = format!("{name}.tmp");
        helios_log::write_whole(self.storage.as_ref(), &self.dir, &tmp, &name, &bytes)
            .map_err(|e| e.to_string())
    }

    /// The checkpoints of pack `seq` up to the end its index names, from that index, if it has
    /// a valid one of this store ending at or below `until` and the pack's file: the entries
    /// and that end. The pack may hold more after it (appended after a clean close indexed the
    /// active pack).
    pub(super) fn indexed(&self, seq: u64, until: u64) -> Option<(Vec<PackEntry>, u64)> {
        let view = self.index_view(seq, until)?;
        Some((view.decode_all()?, view.end()))
    }

    /// Pack `seq`'s index, read in place (its header and checksums checked, its entries
    /// decoded when asked for), on the terms of [`Packs::indexed`]. A pack cut below its
    /// index's end is scanned instead: a checkpoint the index places past the file's end would
    /// be read through the map past the file.
    pub(super) fn index_view(&self, seq: u64, until: u64) -> Option<PackIndexView<ReadOnlyBytes>> {
        let bytes = self
            .storage
            .map_readonly(&self.dir.join(pack_index_name(seq)))
            .ok()?;
        let view = PackIndexView::open(bytes, seq)?;
        let ours = self.store_id.is_none_or(|id| id == view.store_id());
        let within = view.end() <= until && view.end() <= self.file_len(seq).ok()?;
        (ours && within).then_some(view)
    }
}
