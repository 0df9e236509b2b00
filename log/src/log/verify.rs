//! Offline verification: [`Log::verify`] checks every segment of a log directory and reports
//! what it finds.
//!
//! Invariants:
//! - It changes nothing: no torn tail is zeroed and no leftover file removed (unlike
//!   [`Log::open`]).
//! - A damaged record is reported once: the check resynchronises on the next checksum-valid
//!   record and goes on checking the records after it.
//! - A torn tail of the last segment is reported as what the next open would remove.

use std::path::{Path, PathBuf};

use super::Log;
use super::segments::{check_header, list_segments, read_all, segment_name};
use crate::error::{LogError, Result};
use crate::format::{self, RecordRef, segment_header};
use crate::scan::{self, Stop};
use crate::storage::Storage;
use crate::types::{Location, Lsn, Position};

/// A problem found by [`Log::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// The byte offset.
    pub offset: u64,
    /// The byte range whose records could not be checked (empty for problems that are not
    /// damaged records).
    pub unreadable: std::ops::Range<u64>,
    /// What is wrong.
    pub reason: String,
}

impl Log {
    /// Checks every segment of the log in `dir` without changing anything: headers, every
    /// record's checksum, LSN continuity, batch framing. Calls `visit` for every valid record
    /// and returns every problem found (empty when the log is sound). A torn tail of the last
    /// segment is reported too, as what the next open would remove.
    ///
    /// # Errors
    /// I/O errors listing or reading the directory.
    ///
    /// `durable_through` is the last LSN the caller knows was durable (its recovery point): a
    /// tail that ends before it is reported as lost acknowledged records, not as a torn tail,
    /// because an open refuses such a log rather than removing the tail.
    ///
    /// `until`, for a log a writer is appending to, is the end it published
    /// (`format::published_end`): only the records up to it are checked, since the bytes past
    /// it are being written.
    pub fn verify(
        storage: &dyn Storage,
        dir: &Path,
        durable_through: Lsn,
        until: Option<Position>,
        visit: &mut dyn FnMut(RecordRef<'_>, Location),
    ) -> Result<Vec<Problem>> {
        let mut ids = list_segments(storage, dir, false)?;
        if let Some(until) = until
            && ids.contains(&until.segment)
        {
            ids.retain(|id| *id <= until.segment);
        }
        let mut problems = Vec::new();
        let mut expected: Option<Lsn> = None;
        // Whether the previous segment ended in damage (a cut, a bad record): then the LSNs
        // missing before the next one were lost with it, not with a removed segment.
        let mut previous_damaged = false;
        for (index, &id) in ids.iter().enumerate() {
            let path = dir.join(segment_name(id));
            let bytes = read_all(storage, &path)?;
            let slice: &[u8] = match until {
                Some(until) if until.segment == id => {
                    &bytes[..usize::try_from(until.offset)
                        .map_or(bytes.len(), |end| end.min(bytes.len()))]
                }
                _ => &bytes,
            };
            let header = match check_header(&path, slice, id) {
                Ok(header) => header,
                Err(LogError::Corrupt { offset, reason, .. }) => {
                    problems.push(Problem {
                        path,
                        offset,
                        unreadable: 0..0,
                        reason,
                    });
                    expected = None;
                    previous_damaged = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(expected) = expected
                && expected != Lsn(id.0)
            {
                let reason = if Lsn(id.0) > expected && previous_damaged {
                    format!(
                        "lsns {} to {} are missing: they were lost with the damage to the \
                         previous segment; this one starts at lsn {}",
                        expected.0,
                        id.0 - 1,
                        id.0
                    )
                } else if Lsn(id.0) > expected {
                    format!(
                        "lsns {} to {} are missing: the segment that held them (named {}) was \
                         removed; this one starts at lsn {}",
                        expected.0,
                        id.0 - 1,
                        segment_name(crate::types::SegmentId(expected.0)),
                        id.0
                    )
                } else {
                    format!(
                        "segment starts at lsn {} but the previous one ends at {}",
                        id.0,
                        expected.0 - 1
                    )
                };
                problems.push(Problem {
                    path: path.clone(),
                    offset: 0,
                    unreadable: 0..0,
                    reason,
                });
            }
            let last = index + 1 == ids.len();
            let problems_before = problems.len();
            let mut offset = segment_header::LEN as u64;
            let mut next_lsn = Lsn(id.0);
            let committed = loop {
                let outcome = scan::scan_segment(slice, id, offset, next_lsn, visit);
                let (bad_offset, reason) = match outcome.stop {
                    Stop::Bad { offset, reason } => (offset, reason),
                    Stop::End if outcome.pending_records > 0 => (
                        outcome.stop_offset,
                        format!(
                            "a batch of {} records is incomplete",
                            outcome.pending_records
                        ),
                    ),
                    // Every segment is created filled with zeros and written in order: bytes
                    // after its last record are zeros, in the active segment as in a sealed one
                    // (a sealed segment that grew, or got bytes after its records, was written
                    // by something else).
                    Stop::End
                        if scan::nonzero_end(slice, outcome.stop_offset) > outcome.stop_offset =>
                    {
                        (
                            outcome.stop_offset,
                            "non-zero bytes after the end of the written records".to_owned(),
                        )
                    }
                    Stop::End => break outcome.committed_lsn,
                };
                // Resynchronise on the next checksum-valid record, so that one damaged record
                // is reported once and the records after it are still checked.
                let resume =
                    scan::find_valid_record_after(slice, bad_offset, outcome.committed_lsn);
                let Some(resume) = resume else {
                    let end = scan::nonzero_end(slice, bad_offset).max(outcome.stop_offset);
                    let reason = if last && outcome.committed_lsn >= durable_through {
                        format!(
                            "torn tail from byte {} (the next open removes it): {reason}",
                            outcome.committed_end
                        )
                    } else if last {
                        format!(
                            "acknowledged records are lost: the log ends at {} (byte {}), but \
                             records up to {durable_through} were durable: {reason}",
                            outcome.committed_lsn, outcome.committed_end
                        )
                    } else {
                        format!("{reason}; nothing valid follows in this sealed segment")
                    };
                    problems.push(Problem {
                        path: path.clone(),
                        offset: bad_offset,
                        unreadable: outcome.committed_end..end,
                        reason,
                    });
                    break outcome.committed_lsn;
                };
                problems.push(Problem {
                    path: path.clone(),
                    offset: bad_offset,
                    unreadable: outcome.committed_end..resume,
                    reason: format!("{reason}; valid records resume at byte {resume}"),
                });
                let at = usize::try_from(resume).unwrap_or(usize::MAX);
                match slice.get(at..).map(format::decode_frame) {
                    Some(Ok(format::Frame::Record(r, _))) => next_lsn = r.header.lsn,
                    _ => break outcome.committed_lsn,
                }
                offset = resume;
            };
            // A file shorter than it was created lost its end, when records are missing after
            // it (the next segment does not follow on, or acknowledged records are gone): named
            // at the cut, as an open does, with the bytes it held counted as unreadable. A file
            // that lost only its zero fill is sound.
            let records_lost = match ids.get(index + 1) {
                Some(next) => next.0 != committed.0 + 1,
                None => committed < durable_through,
            };
            if let Some(capacity) = header.capacity_bytes
                && capacity > slice.len() as u64
                && records_lost
            {
                let len = slice.len() as u64;
                problems.push(Problem {
                    path: path.clone(),
                    offset: len,
                    unreadable: len.min(
                        problems[problems_before..]
                            .iter()
                            .map(|p| p.unreadable.start)
                            .min()
                            .unwrap_or(len),
                    )..capacity,
                    reason: format!(
                        "the segment is {len} bytes long, but it was created {capacity} bytes \
                         long: it was cut short"
                    ),
                });
            }
            previous_damaged = problems.len() > problems_before;
            expected = Some(Lsn(committed.0 + 1));
        }
        Ok(problems)
    }
}
