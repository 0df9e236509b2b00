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
use crate::types::{Location, Lsn};

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
    pub fn verify(
        storage: &dyn Storage,
        dir: &Path,
        visit: &mut dyn FnMut(RecordRef<'_>, Location),
    ) -> Result<Vec<Problem>> {
        let ids = list_segments(storage, dir, false)?;
        let mut problems = Vec::new();
        let mut expected: Option<Lsn> = None;
        for (index, &id) in ids.iter().enumerate() {
            let path = dir.join(segment_name(id));
            let bytes = read_all(storage, &path)?;
            let slice: &[u8] = &bytes;
            if let Err(LogError::Corrupt { offset, reason, .. }) = check_header(&path, slice, id) {
                problems.push(Problem {
                    path,
                    offset,
                    unreadable: 0..0,
                    reason,
                });
                expected = None;
                continue;
            }
            if let Some(expected) = expected
                && expected != Lsn(id.0)
            {
                problems.push(Problem {
                    path: path.clone(),
                    offset: 0,
                    unreadable: 0..0,
                    reason: format!(
                        "segment starts at lsn {} but the previous one ends before {}",
                        id.0, expected
                    ),
                });
            }
            let last = index + 1 == ids.len();
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
                    Stop::End
                        if last
                            && scan::nonzero_end(slice, outcome.stop_offset)
                                > outcome.stop_offset =>
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
                    let reason = if last {
                        format!(
                            "torn tail from byte {} (the next open removes it): {reason}",
                            outcome.committed_end
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
            expected = Some(Lsn(committed.0 + 1));
        }
        Ok(problems)
    }
}
