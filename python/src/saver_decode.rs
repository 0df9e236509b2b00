//! Decoding a stored channel value: `SaverCore::find` finds the value a `BlobPtr` points at in
//! the cache, or decodes it from its record (whole, zstd, or a delta or splice against its base,
//! loaded the same way) and caches it. A splice (the common case: a list channel that grew) is
//! cached as its parts, a few KiB beside its shared base, and written out only when read:
//! straight into the Python `bytes` a get returns (`PendingSplice`), or into a `Vec`
//! (`SaverCore::load`).

use std::sync::Arc;

use helios::Engine;

use crate::codec;
use crate::record::{self, BlobPtr, Record, Stored};
use crate::saver::SaverCore;
use crate::saver_cache::{Cached, SpliceParts, Value, ValueBytes};
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

/// A value as `SaverCore::find` leaves it: its bytes, or a splice whose bytes are still to be
/// written.
pub(crate) enum Found {
    /// The value's bytes, held by the cache.
    Ready(Arc<Value>),
    /// A splice's parts with its base: the cache holds the parts.
    Splice(PendingSplice),
}

impl Found {
    /// The value's serializer type tag (`None`: LangGraph's empty marker).
    pub(crate) fn ty(&self) -> Option<&[u8]> {
        match self {
            Found::Ready(value) => value.ty.as_deref(),
            Found::Splice(splice) => splice.parts.ty.as_deref(),
        }
    }
}

/// A spliced value's parts and its base, checked to add up (`codec::check_splice`).
pub(crate) struct PendingSplice {
    parts: Arc<SpliceParts>,
    base: Arc<Value>,
}

impl PendingSplice {
    /// The serializer's type tag.
    pub(crate) fn ty(&self) -> Option<Vec<u8>> {
        self.parts.ty.clone()
    }

    /// The value's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.parts.raw_len
    }

    /// Writes the value into `out`, which is `len()` bytes long.
    pub(crate) fn write_into(&self, out: &mut [u8]) {
        codec::write_splice(out, &self.parts.head, &self.base.data, &self.parts.tail);
    }
}

impl SaverCore {
    /// The value at `ptr` as bytes, from the cache or decoded (with its chain of bases). A
    /// splice is written into a new `Vec`, not cached (the cache holds its parts).
    pub(crate) fn load(
        &self,
        engine: &Engine,
        records: &mut Records<'_>,
        ptr: BlobPtr,
    ) -> CoreResult<Arc<Value>> {
        match self.find(engine, records, ptr)? {
            Found::Ready(value) => Ok(value),
            Found::Splice(splice) => {
                let mut data = vec![0; splice.len()];
                splice.write_into(&mut data);
                Ok(Arc::new(Value {
                    ty: splice.ty(),
                    data: ValueBytes::Rust(data),
                }))
            }
        }
    }

    /// A splice's `parts` with their base, loaded, checked to add up.
    fn with_base(
        &self,
        engine: &Engine,
        records: &mut Records<'_>,
        ptr: BlobPtr,
        parts: Arc<SpliceParts>,
    ) -> CoreResult<Found> {
        let base = self.load(engine, records, parts.base)?;
        codec::check_splice(
            parts.head.len(),
            base.data.len(),
            parts.tail.len(),
            parts.raw_len,
        )
        .map_err(|e| {
            corrupt(
                records.thread,
                format!("value {} at version {}: {e}", ptr.index, ptr.version),
            )
        })?;
        Ok(Found::Splice(PendingSplice { parts, base }))
    }

    /// The value at `ptr`, from the cache or decoded (a splice left as its parts).
    pub(crate) fn find(
        &self,
        engine: &Engine,
        records: &mut Records<'_>,
        ptr: BlobPtr,
    ) -> CoreResult<Found> {
        let key = (records.thread.id.0, ptr.version, ptr.index);
        let cached = self.cache().get(key);
        match cached {
            Some(Cached::Value(value)) => return Ok(Found::Ready(value)),
            Some(Cached::Splice(parts)) => return self.with_base(engine, records, ptr, parts),
            None => {}
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
                // The tail's length is the value's past its base: load the base first.
                let base_len = self.load(engine, records, base)?.data.len();
                let tail = if tail_zstd {
                    let tail_len = raw_len.checked_sub(base_len).ok_or_else(|| {
                        corrupt(
                            thread,
                            format!("a splice at version {} shorter than its base", ptr.version),
                        )
                    })?;
                    codec::decode_zstd(&tail, tail_len).map_err(decode_error)?
                } else {
                    tail
                };
                let parts = Arc::new(SpliceParts {
                    ty,
                    base,
                    head,
                    tail,
                    raw_len,
                });
                let found = self.with_base(engine, records, ptr, parts.clone())?;
                self.cache().insert(key, Cached::Splice(parts), false);
                return Ok(found);
            }
        };
        let value = Arc::new(Value {
            ty,
            data: ValueBytes::Rust(data),
        });
        self.cache()
            .insert(key, Cached::Value(value.clone()), whole);
        Ok(Found::Ready(value))
    }
}
