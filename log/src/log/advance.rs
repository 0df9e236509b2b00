//! Moving a read-only log's end forward to what the writer (another process) published:
//! [`Log::advance_read_only`].
//!
//! Invariants:
//! - Only a read-only log advances, and only to a published end (`format::published_end`):
//!   every byte below it is durable and never written again, so the maps it reads stay valid.
//! - The segment that held the old end, and any between it and the new end's, become sealed
//!   (the writer rolled past them: every byte of them was synced); the new end's segment
//!   becomes the one read up to the end.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::segments::{check_header, map_appending, read_all, segment_name};
use super::{ActiveSegment, Log, Sealed, lock};
use crate::error::{LogError, Result};
use crate::types::{Lsn, Position};

impl Log {
    /// Makes the records up to `end` readable in a read-only log: `end` must be a position the
    /// writer published (a record boundary whose records are durable), such as a
    /// [`crate::Follower`]'s position after it read them. Does nothing if `end` is not past
    /// the log's end.
    ///
    /// # Errors
    /// [`LogError::Poisoned`] for a log opened to write (its end is its own); I/O errors
    /// mapping a new segment, a segment header that is not valid.
    pub fn advance_read_only(&self, end: Position) -> Result<()> {
        if !self.read_only {
            return Err(LogError::Poisoned {
                cause: "only a read-only log follows another process's end".into(),
            });
        }
        let mut w = lock(&self.writer);
        if end.lsn.0 < w.next_lsn.0 {
            return Ok(());
        }
        if end.segment < w.active.id {
            return Err(LogError::corrupt(
                self.dir.join(segment_name(end.segment)),
                end.offset,
                format!(
                    "the published end lies in a segment before {}, which this reader already \
                     reads",
                    w.active.id
                ),
            ));
        }
        if end.segment > w.active.id {
            let mut sealed = self
                .sealed
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // The writer rolled: every segment from the old end's to the one before the new
            // end's is sealed.
            let ids = super::segments::list_segments(self.storage.as_ref(), &self.dir, false)?;
            for id in ids
                .iter()
                .copied()
                .filter(|id| *id >= w.active.id && *id < end.segment)
            {
                let path = self.dir.join(segment_name(id));
                let bytes = read_all(self.storage.as_ref(), &path)?;
                check_header(&path, &bytes, id)?;
                sealed.insert(id, Sealed::shared(path, bytes));
            }
            let path = self.dir.join(segment_name(end.segment));
            let file = self
                .storage
                .open_read_only(&path)
                .map_err(|e| LogError::io("open", &path, e))?;
            let capacity_bytes = file.len().map_err(|e| LogError::io("stat", &path, e))?;
            let map = map_appending(self.storage.as_ref(), &path);
            let header = {
                let mut bytes = [0u8; crate::format::segment_header::LEN];
                file.read_exact_at(&mut bytes, 0)
                    .map_err(|e| LogError::io("read", &path, e))?;
                check_header(&path, &bytes, end.segment)?
            };
            w.active = ActiveSegment {
                id: end.segment,
                path: Arc::from(path.as_path()),
                file,
                map,
                capacity_bytes,
                format_version: header.format_version,
            };
        }
        w.flushed_end = end.offset;
        w.next_lsn = Lsn(end.lsn.0 + 1);
        self.appended_lsn.store(end.lsn.0, Ordering::Release);
        self.synced.fetch_max(end.lsn.0, Ordering::AcqRel);
        drop(w);
        Ok(())
    }
}

impl Log {
    /// Moves a read-only log's end back to `end`, a position the writer published below the
    /// end the open scanned: the records past it were written but may not be durable, so a
    /// reader beside a live writer does not read them (a later [`Log::advance_read_only`]
    /// brings them in once they are published). Segments past `end`'s are forgotten. Does
    /// nothing if `end` is not below the log's end.
    ///
    /// # Errors
    /// [`LogError::Poisoned`] for a log opened to write; `end` in a segment the log does not
    /// have; I/O errors opening it.
    pub fn cap_read_only(&self, end: Position) -> Result<()> {
        if !self.read_only {
            return Err(LogError::Poisoned {
                cause: "only a read-only log follows another process's end".into(),
            });
        }
        let mut w = lock(&self.writer);
        if end.lsn.0 + 1 >= w.next_lsn.0 {
            return Ok(());
        }
        let mut sealed = self
            .sealed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if end.segment != w.active.id {
            let Some(segment) = sealed.remove(&end.segment) else {
                return Err(LogError::corrupt(
                    self.dir.join(segment_name(end.segment)),
                    end.offset,
                    "the writer published an end in this segment, which the log does not have",
                ));
            };
            sealed.retain(|id, _| *id < end.segment);
            let path = segment.path.clone();
            let file = self
                .storage
                .open_read_only(&path)
                .map_err(|e| LogError::io("open", &path, e))?;
            let capacity_bytes = file.len().map_err(|e| LogError::io("stat", &path, e))?;
            let header = check_header(&path, segment.bytes()?, end.segment)?;
            w.active = ActiveSegment {
                id: end.segment,
                path: Arc::from(path.as_path()),
                file,
                map: map_appending(self.storage.as_ref(), &path),
                capacity_bytes,
                format_version: header.format_version,
            };
        }
        w.flushed_end = end.offset;
        w.next_lsn = Lsn(end.lsn.0 + 1);
        self.appended_lsn.store(end.lsn.0, Ordering::Release);
        self.synced.store(end.lsn.0, Ordering::Release);
        Ok(())
    }
}
