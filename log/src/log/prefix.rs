//! The intact prefix of a damaged log: what a repair keeps. [`Log::intact_prefix`] walks the
//! segments from LSN 1, as recovery does, and stops at the first damage of any kind (a missing
//! segment, a bad header, a damaged record, an incomplete batch, stray bytes after the
//! records); everything before it is the prefix, everything from it on is what a repair sets
//! aside. It also decodes what it can of the rest, so that the caller can say what was lost.
//!
//! Invariant: it changes nothing, like [`Log::verify`].

use std::path::Path;

use super::Log;
use super::segments::{list_segments, read_all, segment_name};
use crate::error::Result;
use crate::format::{self, RecordHeader, segment_header};
use crate::scan::{self, Stop};
use crate::storage::Storage;
use crate::types::{Lsn, RecordKind, SegmentId, StreamId, Version};

/// Where the intact prefix of a log ends, and what lies after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntactPrefix {
    /// The last LSN of the prefix (`Lsn::ZERO` when nothing is intact).
    pub end: Lsn,
    /// Segments the prefix holds whole, in order.
    pub whole: Vec<SegmentId>,
    /// The segment the prefix ends inside, the offset of its first byte not kept (just past the
    /// last complete batch) and the length it was created with, when the damage is inside a
    /// segment.
    pub cut: Option<(SegmentId, u64, u64)>,
    /// Segments past the damage, none of which is kept.
    pub after: Vec<SegmentId>,
    /// Segments kept whole whose files hold bytes after their records that Helios did not
    /// write (stray bytes in their zeros, or bytes past their capacity): a repair writes them
    /// back as their records, then zeros up to their capacity. `(segment, end of the records,
    /// capacity)`.
    pub trimmed: Vec<(SegmentId, u64, u64)>,
    /// What ends the prefix: the file, the offset and why; `None` when the whole log is
    /// intact.
    pub damage: Option<(std::path::PathBuf, u64, String)>,
    /// Records that still decode past the prefix (in the cut segment's rest and the segments
    /// after it): what the damage cost, as far as it can be read.
    pub lost: Vec<RecordHeader>,
    /// The name in every stream creation or fork record that decodes, kept or not: the names
    /// of the streams that lost events.
    pub names: Vec<(StreamId, String)>,
    /// The last version of each stream whose events the prefix holds: what a repair keeps of
    /// it.
    pub heads: std::collections::BTreeMap<StreamId, Version>,
}

impl Log {
    /// Finds the intact prefix of the log in `dir` without changing anything (see the module
    /// documentation).
    ///
    /// # Errors
    /// I/O errors listing or reading the directory.
    pub fn intact_prefix(storage: &dyn Storage, dir: &Path) -> Result<IntactPrefix> {
        let ids = list_segments(storage, dir, false)?;
        let mut prefix = IntactPrefix {
            end: Lsn::ZERO,
            whole: Vec::new(),
            cut: None,
            after: Vec::new(),
            trimmed: Vec::new(),
            damage: None,
            lost: Vec::new(),
            names: Vec::new(),
            heads: std::collections::BTreeMap::new(),
        };
        let mut heads = std::collections::BTreeMap::new();
        let mut names = |header: &RecordHeader, payload: &[u8]| {
            let name = match header.kind {
                RecordKind::CreateStream => payload,
                RecordKind::ForkStream => payload.get(8..).unwrap_or_default(),
                RecordKind::Event | RecordKind::DeleteStream => return,
            };
            if let Ok(name) = std::str::from_utf8(name) {
                prefix.names.push((header.stream, name.to_owned()));
            }
        };
        let mut iter = ids.iter().copied().peekable();
        while let Some(id) = iter.next() {
            let path = dir.join(segment_name(id));
            let expected = Lsn(prefix.end.0 + 1);
            if id.0 != expected.0 {
                prefix.damage = Some((
                    dir.join(segment_name(SegmentId(expected.0))),
                    0,
                    format!(
                        "lsns {} to {} are missing: the segment that held them was removed",
                        expected.0,
                        id.0.saturating_sub(1)
                    ),
                ));
                prefix.after.push(id);
                break;
            }
            let bytes = read_all(storage, &path)?;
            let slice: &[u8] = &bytes;
            let len = slice.len() as u64;
            let header = match format::decode_segment_header(slice) {
                Ok(header) if header.id == id => header,
                Ok(header) => {
                    let reason = format!(
                        "header says the segment starts at lsn {}, its name says {}",
                        header.id.0, id.0
                    );
                    prefix.damage = Some((path, segment_header::FIRST_LSN as u64, reason));
                    prefix.after.push(id);
                    break;
                }
                Err(e) => {
                    prefix.damage = Some((path, 0, e.to_string()));
                    prefix.after.push(id);
                    break;
                }
            };
            // Format 1 recorded no capacity: its file length is its capacity. Bytes past the
            // capacity are not the segment's: the records are read within it.
            let capacity = header.capacity_bytes.unwrap_or(len);
            let whole = slice;
            let slice = &slice[..usize::try_from(capacity.min(len)).unwrap_or(slice.len())];
            let outcome = scan::scan_segment(
                slice,
                id,
                segment_header::LEN as u64,
                expected,
                &mut |r, _| {
                    if r.header.kind == RecordKind::Event {
                        heads.insert(r.header.stream, r.header.version);
                    }
                    names(&r.header, r.payload);
                },
            );
            let last = iter.peek().is_none();
            let stray = scan::nonzero_end(slice, outcome.stop_offset) > outcome.stop_offset;
            let damage = match outcome.stop {
                Stop::Bad { offset, reason } => Some((offset, reason)),
                Stop::End if outcome.pending_records > 0 => Some((
                    outcome.stop_offset,
                    format!(
                        "a batch of {} records is incomplete",
                        outcome.pending_records
                    ),
                )),
                // Stray bytes after the records of the last segment are a torn tail; in a
                // sealed one, or past a segment's capacity, they are bytes something else
                // wrote: the records before them are intact, and so is the log after them.
                Stop::End if len > capacity && last => Some((
                    capacity,
                    format!(
                        "the segment is {len} bytes long, but it was created {capacity} bytes \
                         long: bytes were added after its end by something other than Helios"
                    ),
                )),
                Stop::End if stray && last => Some((
                    outcome.stop_offset,
                    "non-zero bytes after the end of the written records".to_owned(),
                )),
                Stop::End => None,
            };
            prefix.end = outcome.committed_lsn;
            match damage {
                None => {
                    // Bytes after the records, or a file longer or shorter than it was created
                    // (a shorter one that lost records ends the prefix at the next segment).
                    if stray || len != capacity {
                        prefix.trimmed.push((id, outcome.committed_end, capacity));
                    }
                    prefix.whole.push(id);
                }
                Some((offset, reason)) => {
                    prefix.cut = Some((id, outcome.committed_end, capacity));
                    prefix.damage = Some((path, offset, reason));
                    decode_rest(
                        whole,
                        outcome.committed_end,
                        prefix.end,
                        &mut prefix.lost,
                        &mut names,
                    );
                    break;
                }
            }
        }
        prefix.after.extend(iter);
        for &id in &prefix.after {
            let path = dir.join(segment_name(id));
            // A segment that cannot be read at all has nothing to decode.
            if let Ok(bytes) = read_all(storage, &path) {
                let before = Lsn(id.0.saturating_sub(1)).max(prefix.end);
                decode_rest(
                    &bytes,
                    segment_header::LEN as u64,
                    before,
                    &mut prefix.lost,
                    &mut names,
                );
            }
        }
        prefix.heads = heads;
        Ok(prefix)
    }
}

/// Decodes the checksum-valid records of `bytes` from `from` on, resynchronising past damage
/// on the next record with an LSN above the last one read (`after` to begin with).
fn decode_rest(
    bytes: &[u8],
    from: u64,
    after: Lsn,
    lost: &mut Vec<RecordHeader>,
    names: &mut impl FnMut(&RecordHeader, &[u8]),
) {
    let mut at = from;
    let mut last = after;
    loop {
        let Some(rest) = usize::try_from(at).ok().and_then(|a| bytes.get(a..)) else {
            return;
        };
        match format::decode_frame(rest) {
            Ok(format::Frame::Record(record, len)) => {
                names(&record.header, record.payload);
                last = last.max(record.header.lsn);
                lost.push(record.header);
                at += len as u64;
            }
            Ok(format::Frame::End) | Err(_) => {
                match scan::find_valid_record_after(bytes, at, last) {
                    Some(next) if next > at => at = next,
                    _ => return,
                }
            }
        }
    }
}
