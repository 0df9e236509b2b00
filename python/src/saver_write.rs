//! The saver's write path below the Python layer: how a put's new channel values are encoded
//! (whole, or as a delta or splice against the channel's newest whole value) and stored in its
//! record, the values a put leaves in the cache, and the record of a task's pending writes.

use std::sync::Arc;

use helios::{Appended, Engine};
use pyo3::pybacked::PyBackedBytes;

use crate::codec::{self, Encoded};
use crate::record::{self, BlobPtr, Record, Stored, Write, Writes};
use crate::saver::SaverCore;
use crate::saver_cache::{CHECKPOINT_SLOT, Cached, METADATA_SLOT, Value, ValueBytes};
use crate::saver_error::{CoreError, CoreResult};
use crate::saver_thread::{Records, Thread};

/// A new channel value of a put: `(channel, version, type or None for empty, bytes)`. The
/// bytes are the caller's `bytes` object, not a copy: the cache keeps it for the next get.
pub(crate) type NewValue = (String, String, Option<String>, PyBackedBytes);

/// How a new value is encoded, and the base `(where, deltas on it so far)` of a delta or splice.
pub(crate) type Encoding = (Encoded, Option<(BlobPtr, u32)>);

/// A pending write of a task: `(idx, channel, type, bytes)`.
pub(crate) type NewWrite = (i64, String, String, Vec<u8>);

impl SaverCore {
    /// Encodes each new value of a put in namespace `ns` of `thread` (`None`: a new thread),
    /// against the channel's newest whole value where that pays.
    pub(crate) fn encode_values(
        &self,
        engine: &Engine,
        thread: Option<&Thread>,
        ns: &str,
        blobs: &[NewValue],
    ) -> CoreResult<Vec<Encoding>> {
        let mut encoded: Vec<Encoding> = Vec::with_capacity(blobs.len());
        if let Some(thread) = thread {
            let mut records = Records::new(thread);
            for (channel, _, ty, data) in blobs {
                if ty.is_none() {
                    encoded.push((Encoded::Raw, None));
                    continue;
                }
                let last = thread
                    .view
                    .get(&record::key_last_blob(ns.as_bytes(), channel.as_bytes()))
                    .and_then(record::decode_last_blob)
                    .filter(|(_, deltas)| *deltas < self.deltas_per_full);
                let choice = match last {
                    Some((ptr, depth)) => {
                        let base = self.load(engine, &mut records, ptr)?;
                        let e = codec::encode_against(data, &base.data, self.zstd_level)
                            .map_err(|e| CoreError::Corrupt(format!("zstd failed: {e}")))?;
                        let base = matches!(e, Encoded::Delta(_) | Encoded::Splice { .. })
                            .then_some((ptr, depth));
                        (e, base)
                    }
                    None => (
                        codec::encode_full(data, self.zstd_level)
                            .map_err(|e| CoreError::Corrupt(format!("zstd failed: {e}")))?,
                        None,
                    ),
                };
                encoded.push(choice);
            }
        } else {
            for (_, _, _, data) in blobs {
                encoded.push((
                    codec::encode_full(data, self.zstd_level)
                        .map_err(|e| CoreError::Corrupt(format!("zstd failed: {e}")))?,
                    None,
                ));
            }
        }
        Ok(encoded)
    }

    /// Caches a put's new values, its checkpoint and its metadata (`(type, bytes)` each) under
    /// the record `appended` wrote: they are what the next put deltas against and the next get
    /// reads.
    pub(crate) fn cache_new_values(
        &self,
        appended: &Appended,
        blobs: Vec<NewValue>,
        encoded: &[Encoding],
        [checkpoint, metadata]: [(String, PyBackedBytes); 2],
    ) {
        let mut cache = self.cache();
        for (slot, (ty, data)) in [(CHECKPOINT_SLOT, checkpoint), (METADATA_SLOT, metadata)] {
            let value = Arc::new(Value {
                ty: Some(ty.into_bytes()),
                data: ValueBytes::Python(data),
            });
            let key = (appended.stream.0, appended.last.0, slot);
            cache.insert(key, Cached::Value(value), false);
        }
        for (index, ((_, _, ty, data), (enc, _))) in blobs.into_iter().zip(encoded).enumerate() {
            let whole = !matches!(enc, Encoded::Delta(_) | Encoded::Splice { .. });
            let value = Arc::new(Value {
                ty: ty.map(String::into_bytes),
                data: ValueBytes::Python(data),
            });
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            cache.insert(
                (appended.stream.0, appended.last.0, index),
                Cached::Value(value),
                whole,
            );
        }
    }

    /// The record of one task's pending writes `kept` on a checkpoint, encoded.
    pub(crate) fn writes_payload(
        &self,
        ns: &str,
        cid: &str,
        task_id: &str,
        task_path: &str,
        kept: &[&NewWrite],
    ) -> CoreResult<Vec<u8>> {
        let encoded: Vec<Encoded> = kept
            .iter()
            .map(|(_, _, _, data)| codec::encode_full(data, self.zstd_level))
            .collect::<Result<_, _>>()
            .map_err(|e| CoreError::Corrupt(format!("zstd failed: {e}")))?;
        let record = Writes {
            ns: ns.as_bytes(),
            checkpoint_id: cid.as_bytes(),
            task_id: task_id.as_bytes(),
            task_path: task_path.as_bytes(),
            writes: kept
                .iter()
                .zip(&encoded)
                .map(|((idx, channel, ty, data), enc)| Write {
                    idx: *idx,
                    channel: channel.as_bytes(),
                    value: match enc {
                        Encoded::Zstd(frame) => Stored::Zstd {
                            ty: ty.as_bytes(),
                            raw_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
                            frame,
                        },
                        _ => Stored::Raw {
                            ty: ty.as_bytes(),
                            data,
                        },
                    },
                })
                .collect(),
        };
        record::encode(&Record::Writes(record))
            .map_err(|_| CoreError::Corrupt("a field of 4 GiB or more".into()))
    }
}

/// Each new value of a put as its record stores it, given its encoding.
pub(crate) fn stored_values<'a>(
    blobs: &'a [NewValue],
    encoded: &'a [Encoding],
) -> Vec<(&'a [u8], &'a [u8], Stored<'a>)> {
    blobs
        .iter()
        .zip(encoded)
        .map(|((channel, version, ty, data), (enc, base))| {
            let stored = match (ty, enc, base) {
                (None, _, _) => Stored::Empty,
                (Some(ty), Encoded::Raw, _) => Stored::Raw {
                    ty: ty.as_bytes(),
                    data,
                },
                (Some(ty), Encoded::Zstd(frame), _) => Stored::Zstd {
                    ty: ty.as_bytes(),
                    raw_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
                    frame,
                },
                (Some(ty), Encoded::Delta(frame), Some((base, depth))) => Stored::Delta {
                    ty: ty.as_bytes(),
                    raw_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
                    base: *base,
                    depth: depth + 1,
                    frame,
                },
                // A delta always comes with its base (see `encode_values`).
                (
                    Some(ty),
                    Encoded::Splice {
                        keep_from,
                        tail_from,
                        tail,
                    },
                    Some((base, depth)),
                ) => {
                    let (tail_encoding, tail) = match tail {
                        codec::Tail::Raw => (record::TAIL_RAW, &data[*tail_from..]),
                        codec::Tail::Zstd(frame) => (record::TAIL_ZSTD, frame.as_slice()),
                    };
                    Stored::Splice {
                        ty: ty.as_bytes(),
                        raw_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
                        base: *base,
                        depth: depth + 1,
                        head: &data[..*keep_from],
                        tail_encoding,
                        tail,
                    }
                }
                (Some(ty), Encoded::Delta(_) | Encoded::Splice { .. }, None) => Stored::Raw {
                    ty: ty.as_bytes(),
                    data,
                },
            };
            (channel.as_bytes(), version.as_bytes(), stored)
        })
        .collect()
}

/// `data` (of serializer type `ty`) as a record stores it, given how it was encoded whole.
pub(crate) fn as_stored<'a>(ty: &'a [u8], data: &'a [u8], encoded: &'a Encoded) -> Stored<'a> {
    match encoded {
        Encoded::Zstd(frame) => Stored::Zstd {
            ty,
            raw_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            frame,
        },
        _ => Stored::Raw { ty, data },
    }
}

/// Whether a value is too long for a record (4 GiB or more).
pub(crate) fn data_too_long(blobs: &[NewValue]) -> bool {
    blobs
        .iter()
        .any(|(_, _, _, d)| u32::try_from(d.len()).is_err())
}
