//! Iteration by LSN: [`LogIter`], from [`Log::iter_from`] (behind `Engine::events_from`).
//!
//! Invariants:
//! - An iterator yields records in LSN order, from the LSN asked for up to the last record
//!   appended when it started, and none after it.
//! - It reads the active segment only below the end written to the file when it started,
//!   taken under the writer lock, so the bytes it maps never change.
//! - It maps each segment on its own, advised sequential, so that a scan gets readahead and
//!   copies nothing; where the storage cannot map, it reads the written part of the segment
//!   into memory.
//! - After an error it yields nothing more.

use std::path::PathBuf;

use super::segments::{map_appending, segment_name};
use super::{Log, OwnedRecord, lock};
use crate::error::{LogError, Result};
use crate::format::{self, RecordHeader, RecordRef, segment_header};
use crate::storage::ReadOnlyBytes;
use crate::types::{Location, Lsn, SegmentId};

impl Log {
    /// Iterates records with LSN `>= from`, up to the end of the log as it is now.
    ///
    /// # Errors
    /// A failed write-out of buffered records.
    pub fn iter_from(&self, from: Lsn) -> Result<LogIter<'_>> {
        self.flush_buffer().or_else(|e| match e {
            // A poisoned log still serves reads of what it has.
            LogError::Poisoned { .. } => Ok(()),
            other => Err(other),
        })?;
        Ok(self.iter_to(from, None, None))
    }

    /// Iterates durable records with LSN `>= from`, up to the durable LSN as it is now, without
    /// writing anything out (durable records are already in the file): what a follower of the
    /// log reads. `resume` is the location of the record just before `from`, if the caller
    /// knows it: the iterator then starts right after it instead of reading its segment from
    /// the start.
    #[must_use]
    pub fn iter_durable(&self, from: Lsn, resume: Option<Location>) -> LogIter<'_> {
        self.iter_to(from, resume, Some(self.synced_lsn()))
    }

    /// Records from `from` (or right after `resume`) up to `until` (the last appended record if
    /// `None`).
    fn iter_to(&self, from: Lsn, resume: Option<Location>, until: Option<Lsn>) -> LogIter<'_> {
        let (active, end) = {
            let w = lock(&self.writer);
            (w.active.id, (w.flushed_end, Lsn(w.next_lsn.0 - 1)))
        };
        let mut ids = self.sealed_ids();
        ids.push(active);
        let resume = resume.filter(|r| r.lsn.0 + 1 == from.0 && ids.contains(&r.segment));
        let first = match resume {
            Some(r) => ids.partition_point(|id| *id < r.segment),
            None => ids.partition_point(|id| id.0 <= from.0).saturating_sub(1),
        };
        LogIter {
            log: self,
            segments: ids[first..].to_vec(),
            from,
            end_lsn: until.map_or(end.1, |u| u.min(end.1)),
            active,
            active_end: end.0,
            current: None,
            start_offset: resume.map(|r| (r.segment, r.end())),
            failed: false,
        }
    }
}

/// Iterator over log records by LSN, from [`Log::iter_from`].
#[derive(Debug)]
pub struct LogIter<'a> {
    log: &'a Log,
    segments: Vec<SegmentId>,
    from: Lsn,
    end_lsn: Lsn,
    active: SegmentId,
    /// The end of the active segment's written bytes when the iterator started, read under
    /// the writer lock: the active segment is read only below it.
    active_end: u64,
    current: Option<Loaded>,
    /// Where to start reading a segment, instead of its first record (a resumed iterator).
    start_offset: Option<(SegmentId, u64)>,
    failed: bool,
}

/// The segment a [`LogIter`] is reading.
#[derive(Debug)]
struct Loaded {
    path: PathBuf,
    bytes: ReadOnlyBytes,
    /// Bytes past this are not read: the end captured for the active segment, the length of
    /// the bytes otherwise.
    end: usize,
    /// The next frame's offset.
    offset: u64,
    id: SegmentId,
}

impl LogIter<'_> {
    fn load(&mut self, id: SegmentId) -> Result<()> {
        let (path, bytes, end) = self.segment_bytes(id)?;
        let offset = match self.start_offset.take() {
            Some((segment, offset)) if segment == id => offset,
            _ => segment_header::LEN as u64,
        };
        self.current = Some(Loaded {
            path,
            bytes,
            end,
            offset,
            id,
        });
        Ok(())
    }

    /// Segment `id`'s path, bytes, and where reading them stops.
    fn segment_bytes(&self, id: SegmentId) -> Result<(PathBuf, ReadOnlyBytes, usize)> {
        if let Some(sealed) = self.log.sealed_bytes(id) {
            // A map of its own, read in order: the shared one is advised random access, which
            // would read a cold scan one page per fault.
            let path = sealed.path.clone();
            let bytes = self
                .log
                .storage
                .map_readonly(&path)
                .map_err(|e| LogError::io("map", &path, e))?;
            bytes.reading_in_order();
            let end = bytes.len();
            return Ok((path, bytes, end));
        }
        let path = self.log.dir.join(segment_name(id));
        if id == self.active
            && let Some(map) = map_appending(&*self.log.storage, &path)
        {
            // A map of its own, read in order, below the end captured under the writer lock
            // (the safety argument of `map_appending`): no copy of the segment, and readahead
            // that the views' shared map of the active segment, advised random access, does
            // not get.
            map.reading_in_order();
            let end = usize::try_from(self.active_end)
                .unwrap_or(usize::MAX)
                .min(map.len());
            return Ok((path, map, end));
        }
        // The active segment of a storage that does not map it (or one sealed after the
        // iterator started): read through the storage, up to the end captured at the start.
        let end = if id == self.active {
            self.active_end
        } else {
            u64::MAX
        };
        let file = self
            .log
            .storage
            .open(&path)
            .map_err(|e| LogError::io("open", &path, e))?;
        let len = file
            .len()
            .map_err(|e| LogError::io("stat", &path, e))?
            .min(end);
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        file.read_exact_at(&mut buf, 0)
            .map_err(|e| LogError::io("read", &path, e))?;
        let end = buf.len();
        Ok((path, ReadOnlyBytes::new(buf), end))
    }
}

impl LogIter<'_> {
    /// The next record's header and location, without copying its payload (what an open that
    /// only locates events needs).
    pub fn next_header(&mut self) -> Option<Result<(RecordHeader, Location)>> {
        self.next_with(|record, location| (record.header, location))
    }

    /// The next record, passed to `f` as it lies in the segment's bytes.
    fn next_with<T>(&mut self, f: impl FnOnce(RecordRef<'_>, Location) -> T) -> Option<Result<T>> {
        loop {
            if self.failed {
                return None;
            }
            if self.current.is_none() {
                if self.segments.is_empty() {
                    return None;
                }
                let id = self.segments.remove(0);
                if let Err(e) = self.load(id) {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
            let Loaded {
                path,
                bytes,
                end,
                offset,
                id,
            } = self.current.as_mut()?;
            let slice: &[u8] = &bytes[..*end];
            let at = usize::try_from(*offset).unwrap_or(usize::MAX);
            match slice.get(at..).map(format::decode_frame) {
                None | Some(Ok(format::Frame::End)) => {
                    self.current = None;
                    continue;
                }
                Some(Err(e)) => {
                    // Bytes short of a frame at the captured end of the active segment are
                    // the end; anything else is damage.
                    if *id == self.active && matches!(e, format::FrameError::Truncated { .. }) {
                        self.current = None;
                        continue;
                    }
                    self.failed = true;
                    return Some(Err(LogError::corrupt(path.clone(), *offset, e.to_string())));
                }
                Some(Ok(format::Frame::Record(r, len))) => {
                    let location = Location {
                        lsn: r.header.lsn,
                        segment: *id,
                        offset: *offset,
                        frame_len_bytes: u32::try_from(len).unwrap_or(u32::MAX),
                    };
                    *offset += len as u64;
                    if r.header.lsn > self.end_lsn {
                        self.current = None;
                        self.segments.clear();
                        return None;
                    }
                    if r.header.lsn < self.from {
                        continue;
                    }
                    return Some(Ok(f(r, location)));
                }
            }
        }
    }
}

impl Iterator for LogIter<'_> {
    type Item = Result<OwnedRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_with(|r, location| OwnedRecord {
            header: r.header,
            payload: r.payload.to_vec(),
            location,
        })
    }
}
