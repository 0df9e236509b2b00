//! Appending: records are encoded into the in-memory write buffer, which is written to the
//! active segment when it fills, when a sync needs its records durable, or when a reader needs
//! them in the file.
//!
//! Invariants:
//! - A batch gets consecutive LSNs and lies in one segment: a batch that does not fit in what
//!   is left of the active segment rolls to the next segment first, and one larger than an
//!   empty segment is refused.
//! - Each byte of the active segment is written once, at the end written so far
//!   (`flushed_end`), and never past the file's length.
//! - A failed write poisons the log.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Log, Writer, lock};
use crate::error::{LogError, Result};
use crate::format::{self, RecordHeader, segment_header};
use crate::types::{Location, Lsn, Position, RecordClass, RecordKind, StreamId, Version};

/// A record to append.
#[derive(Clone, Copy, Debug)]
pub struct NewRecord<'a> {
    /// Its stream.
    pub stream: StreamId,
    /// Its version in the stream.
    pub version: Version,
    /// What it is.
    pub kind: RecordKind,
    /// Its payload.
    pub payload: &'a [u8],
}

/// Microseconds since the Unix epoch, the timestamp of the records appended now (0 for a clock
/// set before the epoch).
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl Log {
    /// Appends `records` as one atomic batch with consecutive LSNs and pushes their locations to
    /// `locations`. Returns the last LSN. The records are in memory (or written, not synced)
    /// when this returns: call [`Log::sync_to`] for durability.
    ///
    /// # Errors
    /// [`LogError::Poisoned`] after an earlier failure, size limits, and I/O errors (a failed
    /// write poisons the log; a failure to create the next segment does not, and loses nothing).
    pub fn append(
        &self,
        records: &[NewRecord<'_>],
        class: RecordClass,
        locations: &mut Vec<Location>,
    ) -> Result<Lsn> {
        assert!(!records.is_empty(), "callers never append an empty batch");
        self.check_poison()?;
        let mut batch_len: u64 = 0;
        for record in records {
            if record.payload.len() > format::PAYLOAD_LEN_MAX {
                return Err(LogError::PayloadTooLarge {
                    len_bytes: record.payload.len(),
                    max_bytes: format::PAYLOAD_LEN_MAX,
                });
            }
            batch_len += format::frame_len(record.payload.len()) as u64;
        }
        // A batch fits in a segment of the size segments grow to, or is one event of any size
        // the format allows, which gets a segment of its own size.
        let room = (self.options.segment_size_bytes - segment_header::LEN as u64)
            .max(format::frame_len(format::PAYLOAD_LEN_MAX) as u64);
        if batch_len > room {
            return Err(LogError::BatchTooLarge {
                len_bytes: batch_len,
                segment_size_bytes: self.options.segment_size_bytes,
            });
        }
        let mut w = lock(&self.writer);
        self.check_poison()?;
        if w.buffered_end() + batch_len > w.active.capacity_bytes {
            self.roll(&mut w, segment_header::LEN as u64 + batch_len)?;
        }
        let timestamp_us = now_us();
        let count = records.len();
        for (i, record) in records.iter().enumerate() {
            let offset = w.buffered_end();
            let lsn = w.next_lsn;
            let header = RecordHeader {
                lsn,
                stream: record.stream,
                version: record.version,
                timestamp_us,
                batch_left: u32::try_from(count - 1 - i).unwrap_or(u32::MAX),
                kind: record.kind,
                class,
            };
            format::encode_record(&mut w.buffer, &header, record.payload);
            let frame_len_bytes = u32::try_from(w.buffered_end() - offset).unwrap_or(u32::MAX);
            locations.push(Location {
                lsn,
                segment: w.active.id,
                offset,
                frame_len_bytes,
            });
            w.next_lsn = Lsn(lsn.0 + 1);
        }
        let last = Lsn(w.next_lsn.0 - 1);
        self.appended_lsn.store(last.0, Ordering::Release);
        self.unsynced_bytes.fetch_add(batch_len, Ordering::Relaxed);
        if w.buffer.len() >= self.options.write_buffer_bytes {
            self.write_out(&mut w)?;
        }
        Ok(last)
    }

    /// The last appended LSN (durable or not).
    #[must_use]
    pub fn appended_lsn(&self) -> Lsn {
        Lsn(self.appended_lsn.load(Ordering::Acquire))
    }

    /// Bytes appended since the last sync started (approximate; for write-behind windows).
    #[must_use]
    pub fn unsynced_bytes(&self) -> u64 {
        self.unsynced_bytes.load(Ordering::Relaxed)
    }

    /// Writes the in-memory buffer to the active segment (no sync).
    pub(super) fn write_out(&self, w: &mut Writer) -> Result<()> {
        if w.buffer.is_empty() {
            return Ok(());
        }
        if let Err(e) = w.active.file.write_all_at(&w.buffer, w.flushed_end) {
            let error = LogError::io("write", &*w.active.path, e);
            return Err(self.poison(error.to_string()));
        }
        w.flushed_end += w.buffer.len() as u64;
        w.buffer.clear();
        Ok(())
    }

    /// Writes buffered records to the file without syncing, so that other readers of the
    /// storage see them.
    ///
    /// # Errors
    /// A failed write, which poisons the log.
    pub fn flush_buffer(&self) -> Result<()> {
        self.check_poison()?;
        let mut w = lock(&self.writer);
        self.write_out(&mut w)
    }

    /// The position just past the last appended record.
    #[must_use]
    pub fn end(&self) -> Position {
        let w = lock(&self.writer);
        Position {
            lsn: Lsn(w.next_lsn.0 - 1),
            segment: w.active.id,
            offset: w.buffered_end(),
        }
    }
}
