//! Following a log that a writer in another process appends to: [`Follower`] reads the records
//! past a position up to the end the writer last published (`format::published_end`), so it
//! only ever sees durable records.
//!
//! Invariants:
//! - It reads with `pread`, never through a map, so a file that a writer's recovery shortens
//!   cannot fault it; and it never reads the segment that holds the published end past that
//!   end. Segments before it are sealed: every byte of them is durable and never written again.
//! - It delivers records in LSN order with no gap: each record must be the one after the last
//!   (anything else is an error naming the file and offset), and a position only moves past a
//!   record once it was delivered.
//! - Its memory is one read chunk (or one record, if bigger).

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};
use crate::format::{self, Frame, segment_header};
use crate::log::segment_name;
use crate::types::{Location, Lsn, Position, SegmentId};

/// Bytes read at a time.
const CHUNK_BYTES: usize = 1 << 20;

/// Reads the end the log's writer last published in `log_dir`: `None` if there is none yet
/// (no writer synced since the store was created by this format, or the file is being
/// rewritten at this instant; ask again).
///
/// # Errors
/// I/O errors other than a missing file.
pub fn read_published_end(log_dir: &Path) -> Result<Option<Position>> {
    let path = log_dir.join(format::PUBLISHED_END_FILE_NAME);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io("open", path, e)),
    };
    let mut buf = [0u8; format::published_end::LEN];
    // A read that meets the writer's rewrite halfway fails its checksum: read again.
    for _ in 0..PUBLISHED_END_READS {
        match file.read_exact_at(&mut buf, 0) {
            Ok(()) => {
                if let Some(end) = format::decode_published_end(&buf) {
                    return Ok(Some(end));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(LogError::io("read", path, e)),
        }
    }
    Ok(None)
}

/// The end the log's writer last published in `log_dir`, read through `storage` by the
/// writer's own open: the records up to it were durable, so a log that ends before it lost
/// them. `None` when there is none or it does not decode (a torn rewrite, or never written):
/// the open then knows nothing more than the log tells.
///
/// # Errors
/// I/O errors other than a missing file.
pub fn published_end_in(storage: &dyn crate::Storage, log_dir: &Path) -> Result<Option<Position>> {
    let path = log_dir.join(format::PUBLISHED_END_FILE_NAME);
    let file = match storage.open_read_only(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io("open", path, e)),
    };
    let mut buf = [0u8; format::published_end::LEN];
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) => Ok(format::decode_published_end(&buf)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(LogError::io("read", path, e)),
    }
}

/// Reads of the published end before one that meets a rewrite each time counts as none.
const PUBLISHED_END_READS: usize = 3;

/// Follows a log in another process's hands (see the module documentation).
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    /// Just past the last record delivered.
    at: Position,
    buf: Vec<u8>,
}

impl Follower {
    /// A follower of the log in `log_dir` whose next record is the one after `after` (a
    /// position between two records, such as the end of what a read-only open read; for the
    /// start of the log, `Position { lsn: Lsn::ZERO, segment: SegmentId(1), offset: 0 }`).
    #[must_use]
    pub fn new(log_dir: &Path, after: Position) -> Follower {
        let offset = after.offset.max(segment_header::LEN as u64);
        Follower {
            dir: log_dir.to_path_buf(),
            at: Position { offset, ..after },
            buf: Vec::new(),
        }
    }

    /// Just past the last record delivered.
    #[must_use]
    pub fn position(&self) -> Position {
        self.at
    }

    /// Delivers to `visit`, in order, every record past the position up to the end the writer
    /// published now; returns how many.
    ///
    /// # Errors
    /// I/O errors; a record that is not the next one, or damage below the published end,
    /// naming the file and offset; a missing segment.
    pub fn poll(&mut self, visit: &mut dyn FnMut(format::RecordRef<'_>, Location)) -> Result<u64> {
        let Some(end) = read_published_end(&self.dir)? else {
            return Ok(0);
        };
        let mut delivered = 0;
        while self.at.lsn < end.lsn {
            let in_end_segment = self.at.segment == end.segment;
            let path = self.dir.join(segment_name(self.at.segment));
            let file = File::open(&path).map_err(|e| LogError::io("open", &path, e))?;
            let limit = if in_end_segment {
                end.offset
            } else {
                file.metadata()
                    .map_err(|e| LogError::io("stat", &path, e))?
                    .len()
            };
            let read = self.read_segment(&file, &path, limit, (end.lsn, end.segment), visit)?;
            delivered += read;
            if self.at.lsn >= end.lsn || in_end_segment {
                break;
            }
            // This segment is sealed and read to its end: the next one starts at the next LSN.
            self.at = Position {
                lsn: self.at.lsn,
                segment: SegmentId(self.at.lsn.0 + 1),
                offset: segment_header::LEN as u64,
            };
        }
        Ok(delivered)
    }

    /// Delivers the records of one segment from the position up to `limit` bytes and `end`
    /// LSN, stopping at its end (zeros).
    fn read_segment(
        &mut self,
        file: &File,
        path: &Path,
        limit: u64,
        (end, end_segment): (Lsn, SegmentId),
        visit: &mut dyn FnMut(format::RecordRef<'_>, Location),
    ) -> Result<u64> {
        let mut delivered = 0;
        while self.at.offset < limit && self.at.lsn < end {
            let want = usize::try_from(limit - self.at.offset)
                .unwrap_or(usize::MAX)
                .min(CHUNK_BYTES);
            self.buf.resize(want, 0);
            file.read_exact_at(&mut self.buf, self.at.offset)
                .map_err(|e| LogError::io("read", path, e))?;
            let mut used = 0;
            loop {
                match format::decode_frame(&self.buf[used..]) {
                    Ok(Frame::End) if self.at.segment.0 == end_segment.0 => {
                        return Err(LogError::corrupt(
                            path,
                            self.at.offset,
                            format!(
                                "no record where the published end says records up to {} are",
                                end.0
                            ),
                        ));
                    }
                    Ok(Frame::End) => return Ok(delivered),
                    Ok(Frame::Record(record, len)) => {
                        let offset = self.at.offset;
                        if record.header.lsn.0 != self.at.lsn.0 + 1 {
                            return Err(LogError::corrupt(
                                path,
                                offset,
                                format!(
                                    "record {} where record {} should be",
                                    record.header.lsn.0,
                                    self.at.lsn.0 + 1
                                ),
                            ));
                        }
                        let location = Location {
                            lsn: record.header.lsn,
                            segment: self.at.segment,
                            offset,
                            frame_len_bytes: u32::try_from(len).unwrap_or(u32::MAX),
                        };
                        visit(record, location);
                        delivered += 1;
                        used += len;
                        self.at.lsn = location.lsn;
                        self.at.offset = offset + len as u64;
                        if self.at.lsn >= end || used == self.buf.len() {
                            break;
                        }
                    }
                    Err(format::FrameError::Truncated { needed, .. })
                        if self.at.offset + needed <= limit && used > 0 =>
                    {
                        // A record that straddles the chunk: read again from it.
                        break;
                    }
                    Err(format::FrameError::Truncated { needed, .. })
                        if self.at.offset + needed <= limit =>
                    {
                        // A record bigger than a chunk: read it whole.
                        let len = usize::try_from(needed).unwrap_or(usize::MAX);
                        self.buf.resize(len, 0);
                        file.read_exact_at(&mut self.buf, self.at.offset)
                            .map_err(|e| LogError::io("read", path, e))?;
                    }
                    Err(e) => {
                        return Err(LogError::corrupt(path, self.at.offset, e.to_string()));
                    }
                }
            }
        }
        Ok(delivered)
    }
}
