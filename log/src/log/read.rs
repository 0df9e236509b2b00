//! Reads by location: one record ([`Log::read_with`], [`Log::read`]) or many
//! ([`Log::read_many_with`]), from the sealed segments' shared maps or from the active segment.
//!
//! Invariants:
//! - Every record read is checked: its checksum, its LSN against the location's, and its
//!   length against the location's frame.
//! - The active segment is read only below the end written to the file, taken under the
//!   writer lock (buffered records are written out first), so the bytes a reader borrows from
//!   its map never change.
//! - Each sealed segment has one map that all point reads share, advised random access; a
//!   dense run of records asks for its pages at once (`prefetch_dense`).
//! - Where the storage cannot map the active segment, a run of nearby records is read with one
//!   `pread` of at most `READ_SPAN_MAX` bytes, into a buffer kept per thread.

use std::path::Path;
use std::sync::Arc;

use super::{Log, Sealed, lock};
use crate::error::{LogError, Result};
use crate::format::{self, RecordHeader, RecordRef};
use crate::storage::{ReadOnlyBytes, StorageFile};
use crate::types::{Location, SegmentId};

/// A record read from the log, owning its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRecord {
    /// The fixed fields.
    pub header: RecordHeader,
    /// The payload.
    pub payload: Vec<u8>,
    /// Where it is.
    pub location: Location,
}

/// The most bytes [`Log::read_many_with`] reads with one `pread` to get several records.
const READ_SPAN_MAX: u64 = 64 * 1024;

impl Sealed {
    /// Reads the record at `location`, which lies in this segment; as [`Log::read_with`].
    fn read_with<T>(&self, location: Location, f: impl FnOnce(RecordRef<'_>) -> T) -> Result<T> {
        let start = usize::try_from(location.offset).unwrap_or(usize::MAX);
        let end = usize::try_from(location.end()).unwrap_or(usize::MAX);
        let frame = self.bytes()?.get(start..end).ok_or_else(|| {
            LogError::corrupt(
                &self.path,
                location.offset,
                format!("{} lies past the end of the file", location.lsn),
            )
        })?;
        decode_at(&self.path, location, frame).map(f)
    }
}

impl Log {
    /// Reads the record at `location`, checking its checksum and LSN, and passes it to `f`.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] if the bytes there are not that record, I/O errors.
    pub fn read_with<T>(
        &self,
        location: Location,
        f: impl FnOnce(RecordRef<'_>) -> T,
    ) -> Result<T> {
        if let Some(sealed) = self.sealed_bytes(location.segment) {
            return sealed.read_with(location, f);
        }
        let Some(active) = self.active_for_read(location)? else {
            // Sealed since we looked, or never existed.
            return match self.sealed_bytes(location.segment) {
                Some(_) => self.read_with(location, f),
                None => Err(LogError::Missing { lsn: location.lsn }),
            };
        };
        if let Some(frame) = active.mapped(location.offset, location.end()) {
            return decode_at(&active.path, location, frame).map(f);
        }
        with_read_buffer(|buf| {
            buf.resize(location.frame_len_bytes as usize, 0);
            active
                .file
                .read_exact_at(buf, location.offset)
                .map_err(|e| LogError::io("read", &*active.path, e))?;
            decode_at(&active.path, location, buf).map(f)
        })
    }

    /// The active segment's file and path if `upto` lies in the active segment, after writing
    /// out the buffered bytes up to its end if they are not in the file yet. `None` when its
    /// segment is not the active one.
    ///
    /// # Errors
    /// [`LogError::Missing`] when `upto` lies past what was appended, and write errors.
    fn active_for_read(&self, upto: Location) -> Result<Option<ActiveFile>> {
        let mut w = lock(&self.writer);
        if w.active.id != upto.segment {
            return Ok(None);
        }
        if upto.end() > w.flushed_end {
            if upto.end() > w.buffered_end() {
                return Err(LogError::Missing { lsn: upto.lsn });
            }
            self.write_out(&mut w)?;
        }
        Ok(Some(ActiveFile {
            file: w.active.file.clone(),
            path: w.active.path.clone(),
            map: w.active.map.clone(),
        }))
    }

    /// Reads the records at `locations`, in order, passing each to `f`. Records of the active
    /// segment that lie close together are read with one `pread` (a view reads up to
    /// `fanout - 1` events of a stream, usually a few hundred bytes apart); records of sealed
    /// segments are read from their maps.
    ///
    /// # Errors
    /// As [`Log::read_with`], for the first record that fails.
    pub fn read_many_with<T>(
        &self,
        locations: &[Location],
        mut f: impl FnMut(RecordRef<'_>) -> T,
    ) -> Result<Vec<T>> {
        with_read_buffer(|buf| self.read_many_into(locations, buf, &mut f))
    }

    fn read_many_into<T>(
        &self,
        locations: &[Location],
        buf: &mut Vec<u8>,
        mut f: impl FnMut(RecordRef<'_>) -> T,
    ) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(locations.len());
        let mut rest = locations;
        while let Some(&first) = rest.first() {
            // The frames after `first` in the same segment, in increasing order, that one read
            // of at most READ_SPAN_MAX bytes covers.
            let run = 1 + rest
                .windows(2)
                .take_while(|pair| {
                    pair[1].segment == first.segment
                        && pair[1].offset >= pair[0].end()
                        && pair[1].end() - first.offset <= READ_SPAN_MAX
                })
                .count();
            let (batch, after) = rest.split_at(run);
            rest = after;
            let last = batch[run - 1];
            let sealed = self.sealed_bytes(first.segment);
            let active = if sealed.is_none() {
                self.active_for_read(last)?
            } else {
                None
            };
            let Some(active) = active else {
                if let Some(sealed) = sealed {
                    if let Ok(bytes) = sealed.bytes() {
                        prefetch_dense(bytes, batch);
                    }
                    for &location in batch {
                        out.push(sealed.read_with(location, &mut f)?);
                    }
                } else {
                    // Sealed since we looked, or never existed: `read_with` finds out.
                    for &location in batch {
                        out.push(self.read_with(location, &mut f)?);
                    }
                }
                continue;
            };
            if let Some(map) = &active.map {
                prefetch_dense(map, batch);
            }
            let span = match active.mapped(first.offset, last.end()) {
                Some(span) => span,
                None => {
                    buf.resize(
                        usize::try_from(last.end() - first.offset).unwrap_or(usize::MAX),
                        0,
                    );
                    active
                        .file
                        .read_exact_at(buf, first.offset)
                        .map_err(|e| LogError::io("read", &*active.path, e))?;
                    &buf[..]
                }
            };
            for &location in batch {
                let at = usize::try_from(location.offset - first.offset).unwrap_or(usize::MAX);
                let frame = &span[at..at + location.frame_len_bytes as usize];
                out.push(f(decode_at(&active.path, location, frame)?));
            }
        }
        Ok(out)
    }

    /// Reads the record at `location` into an owned record.
    ///
    /// # Errors
    /// As [`Log::read_with`].
    pub fn read(&self, location: Location) -> Result<OwnedRecord> {
        self.read_with(location, |r| OwnedRecord {
            header: r.header,
            payload: r.payload.to_vec(),
            location,
        })
    }

    pub(super) fn sealed_bytes(&self, id: SegmentId) -> Option<Arc<Sealed>> {
        let sealed = self
            .sealed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sealed.get(&id).cloned()
    }

    /// Asks the system to drop the cached pages of every segment (the maps of the sealed ones
    /// and the active one's file), so that the next reads come from the disk. For cold-read
    /// benchmarks; every read stays correct.
    ///
    /// # Errors
    /// I/O errors from the advice calls.
    #[cfg(any(test, feature = "bench-hooks"))]
    pub fn evict_cached_pages(&self) -> Result<()> {
        let sealed: Vec<Arc<Sealed>> = self
            .sealed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for segment in sealed {
            // Mapped if it was not yet: the eviction also drops the file's cached pages.
            segment
                .bytes()?
                .evict_pages()
                .map_err(|e| LogError::io("evict pages of", &segment.path, e))?;
        }
        let (file, path, map) = {
            let w = lock(&self.writer);
            (
                w.active.file.clone(),
                w.active.path.clone(),
                w.active.map.clone(),
            )
        };
        match map {
            // The map's own pages first: the kernel keeps mapped pages in the cache.
            Some(map) => map.evict_pages(),
            None => file.evict_pages(),
        }
        .map_err(|e| LogError::io("evict pages of", &*path, e))
    }
}

/// Asks for the pages of `batch` (frames in increasing order in one segment) in one request
/// when the batch is dense: it spans more than two pages and holds at least one frame per page,
/// so that reading them ahead brings in no page the batch does not need. The maps are advised
/// random access, so without this a range read (`Engine::read` of many events) faults its pages
/// in one at a time; a view's few events usually lie within a page or two and skip the call.
fn prefetch_dense(bytes: &ReadOnlyBytes, batch: &[Location]) {
    const PAGE: u64 = 4096;
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return;
    };
    let pages = last.end().div_ceil(PAGE) - first.offset / PAGE;
    if pages > 2 && batch.len() as u64 >= pages {
        let (Ok(start), Ok(end)) = (usize::try_from(first.offset), usize::try_from(last.end()))
        else {
            return;
        };
        bytes.will_need(start, end);
    }
}

/// The active segment, as a reader takes it (reference counts, no copies).
struct ActiveFile {
    file: Arc<dyn StorageFile>,
    path: Arc<Path>,
    map: Option<ReadOnlyBytes>,
}

impl ActiveFile {
    /// The bytes `start..end` of the file from its map, if it has one (and they lie inside
    /// it). The caller asks only for bytes that were written before it took this.
    fn mapped(&self, start: u64, end: u64) -> Option<&[u8]> {
        let map = self.map.as_ref()?;
        map.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
    }
}

thread_local! {
    /// The buffer reads of the active segment go into, kept between calls on a thread.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with the thread's read buffer, so that reading a few events allocates nothing.
/// A callback that reads the log again gets a fresh buffer (this one is taken meanwhile); a
/// buffer grown past [`READ_SPAN_MAX`] (one large record) is dropped, not kept.
fn with_read_buffer<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    let mut buf = READ_BUFFER
        .with(|cell| cell.try_borrow_mut().map(|mut b| std::mem::take(&mut *b)))
        .unwrap_or_default();
    let out = f(&mut buf);
    if buf.capacity() as u64 <= READ_SPAN_MAX {
        READ_BUFFER.with(|cell| {
            if let Ok(mut b) = cell.try_borrow_mut() {
                *b = buf;
            }
        });
    }
    out
}

fn decode_at<'a>(path: &Path, location: Location, frame: &'a [u8]) -> Result<RecordRef<'a>> {
    match format::decode_frame(frame) {
        Ok(format::Frame::Record(r, len)) if r.header.lsn == location.lsn && len == frame.len() => {
            Ok(r)
        }
        Ok(format::Frame::Record(r, _)) => Err(LogError::corrupt(
            path,
            location.offset,
            format!("expected {} here but found {}", location.lsn, r.header.lsn),
        )),
        Ok(format::Frame::End) => Err(LogError::corrupt(
            path,
            location.offset,
            format!("expected {} here but found zeros", location.lsn),
        )),
        Err(e) => Err(LogError::corrupt(
            path,
            location.offset,
            format!("{}: {e}", location.lsn),
        )),
    }
}
