//! Decoding a stored channel value: `SaverCore::load` finds the value a `BlobPtr` points at in
//! the cache, or decodes it from its record (whole, zstd, or a delta or splice against its base,
//! loaded the same way) and caches it.

use std::sync::Arc;

use helios::Engine;

use crate::codec;
use crate::record::{self, BlobPtr, Record, Stored};
use crate::saver::SaverCore;
use crate::saver_cache::Value;
use crate::saver_error::CoreResult;
use crate::saver_thread::{Records, corrupt};

/// A stored value part-way decoded: whole, or waiting for its base.
enum Pending {
    Done(Vec<u8>),
    Delta {
        base: BlobPtr,
        raw_len: usize,
        frame: Vec<u8>,
    },
    Splice {
        base: BlobPtr,
        raw_len: usize,
        head: Vec<u8>,
        tail_zstd: bool,
        tail: Vec<u8>,
    },
}

impl SaverCore {
    /// The value at `ptr`, from the cache or decoded (with its chain of bases).
    pub(crate) fn load(
        &self,
        engine: &Engine,
        records: &mut Records<'_>,
        ptr: BlobPtr,
    ) -> CoreResult<Arc<Value>> {
        let key = (records.thread.id.0, ptr.version, ptr.index);
        if let Some(value) = self.cache().get(key) {
            return Ok(value);
        }
        let thread = records.thread;
        let index = ptr.index as usize;
        // Decode what the record stores, borrowing from it, then resolve a delta's base.
        let (ty, pending) = {
            let record = records.record(engine, ptr.version)?;
            let stored = match &record {
                Record::Put(p) => p.blobs.get(index).map(|b| &b.2),
                Record::Writes(w) => w.writes.get(index).map(|w| &w.value),
                Record::Delete(_) => None,
            }
            .ok_or_else(|| {
                corrupt(
                    thread,
                    format!("no value {index} at version {}", ptr.version),
                )
            })?;
            let decode_error = |e: std::io::Error| {
                corrupt(
                    thread,
                    format!("value {index} at version {}: {e}", ptr.version),
                )
            };
            let check_base = |base: &BlobPtr| {
                if base.version >= ptr.version {
                    return Err(corrupt(
                        thread,
                        format!(
                            "a delta at version {} based on version {}",
                            ptr.version, base.version
                        ),
                    ));
                }
                Ok(*base)
            };
            match stored {
                Stored::Empty => (None, Pending::Done(Vec::new())),
                Stored::Raw { ty, data } => (Some(ty.to_vec()), Pending::Done(data.to_vec())),
                Stored::Zstd { ty, raw_len, frame } => (
                    Some(ty.to_vec()),
                    Pending::Done(
                        codec::decode_zstd(frame, *raw_len as usize).map_err(decode_error)?,
                    ),
                ),
                Stored::Delta {
                    ty,
                    raw_len,
                    base,
                    frame,
                    ..
                } => (
                    Some(ty.to_vec()),
                    Pending::Delta {
                        base: check_base(base)?,
                        raw_len: *raw_len as usize,
                        frame: frame.to_vec(),
                    },
                ),
                Stored::Splice {
                    ty,
                    raw_len,
                    base,
                    head,
                    tail_encoding,
                    tail,
                    ..
                } => (
                    Some(ty.to_vec()),
                    Pending::Splice {
                        base: check_base(base)?,
                        raw_len: *raw_len as usize,
                        head: head.to_vec(),
                        tail_zstd: *tail_encoding == record::TAIL_ZSTD,
                        tail: tail.to_vec(),
                    },
                ),
            }
        };
        let whole = matches!(pending, Pending::Done(_));
        let decode_error = |e: std::io::Error| {
            corrupt(
                thread,
                format!("value {index} at version {}: {e}", ptr.version),
            )
        };
        let data = match pending {
            Pending::Done(data) => data,
            Pending::Delta {
                base,
                raw_len,
                frame,
            } => {
                let base_value = self.load(engine, records, base)?;
                codec::decode_delta(&frame, &base_value.data, raw_len).map_err(decode_error)?
            }
            Pending::Splice {
                base,
                raw_len,
                head,
                tail_zstd,
                tail,
            } => {
                let base_value = self.load(engine, records, base)?;
                let tail = if tail_zstd {
                    let tail_len = raw_len.checked_sub(base_value.data.len()).ok_or_else(|| {
                        corrupt(
                            thread,
                            format!("a splice at version {} shorter than its base", ptr.version),
                        )
                    })?;
                    codec::decode_zstd(&tail, tail_len).map_err(decode_error)?
                } else {
                    tail
                };
                codec::decode_splice(&head, &base_value.data, &tail, raw_len)
                    .map_err(decode_error)?
            }
        };
        let value = Arc::new(Value { ty, data });
        self.cache().insert(key, value.clone(), whole);
        Ok(value)
    }
}
