//! The LangGraph saver's records and the state machine that indexes them.
//!
//! Each LangGraph thread is one Helios stream, named [`SAVER_STREAM_PREFIX`] + thread id. Its
//! events are the saver's records: a checkpoint put ([`Put`]), a task's pending writes
//! ([`Writes`]) and a deletion of checkpoints ([`Delete`]). The payloads (checkpoints, metadata,
//! channel values, written values) stay in the log; [`SaverMachine`] keeps only an index in the
//! stream's state, so that the engine's checkpoints of that state stay small:
//!
//! | key | value |
//! |---|---|
//! | `#` | u64: events applied so far, which is the version of the event being applied |
//! | `c` ns `0` cid | u64 version of the put, then the run id's bytes |
//! | `l` ns | the greatest live checkpoint id of the namespace |
//! | `b` h(ns `0` channel `0` version) | [`BlobPtr`] of the channel value at that version |
//! | `p` ns `0` channel | [`BlobPtr`] of the channel's newest whole value, u32 deltas made against it since |
//! | `w` ns `0` cid | u64 versions of the checkpoint's write records, in log order |
//! | `r` run `0` ns `0` cid | empty: the checkpoints of a run |
//!
//! `h(..)` is XXH3-64 (a specified hash: its output is stored), big-endian: LangGraph's versions are 50-odd characters,
//! a put adds one blob key per changed channel, and every key is repeated in the engine's
//! checkpoints of this state. A reader checks the namespace, channel and version stored beside
//! the value, so a collision would be an error, never a wrong value. Pending writes are listed per checkpoint, one entry per write
//! record, not one per write: readers apply LangGraph's rule (the first regular write of a
//! task and index wins, a special write replaces) over the records in log order.
//!
//! `0` is a zero byte: namespaces, checkpoint ids, channels, task ids and run ids never
//! contain one (the saver refuses them). Integers are little-endian, except the hash in keys.
//!
//! Invariants:
//! - A [`BlobPtr`] points at an earlier event of the same stream (or this one). A delta's base
//!   is older than the delta and is a whole value, so decoding any value decodes at most two
//!   frames.
//! - The machine is deterministic and reads nothing but the event and the state (the version
//!   comes from the `#` counter), so a view rebuilt at any version is exact, and a stream forked
//!   from another (sharing its first versions) indexes the same records the same way.
//! - A deletion removes every index entry of the checkpoint and its writes; channel values stay
//!   indexed, because other checkpoints may use them and later deltas use them as bases.

use helios_replay::{Rejected, StateHandle, StateMachine};

/// Every thread stream's name starts with this; the rest is the thread id.
pub const SAVER_STREAM_PREFIX: &str = "helios.langgraph/";

/// Record kind: a checkpoint put.
const KIND_PUT: u8 = 1;
/// Record kind: pending writes of one task.
const KIND_WRITES: u8 = 2;
/// Record kind: checkpoints deleted.
const KIND_DELETE: u8 = 3;

/// How a value is stored in a record.
const ENC_EMPTY: u8 = 0;
const ENC_RAW: u8 = 1;
const ENC_ZSTD: u8 = 2;
const ENC_DELTA: u8 = 3;
const ENC_SPLICE: u8 = 4;

/// Where a stored value lives: the version of the record holding it and its index there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlobPtr {
    /// Version of the record in the thread's stream.
    pub version: u64,
    /// Index of the value among the record's values (blobs of a put, writes of a writes record).
    pub index: u32,
}

/// Bytes of an encoded [`BlobPtr`]: version (8) + index (4).
pub const BLOB_PTR_LEN: usize = 8 + 4;

impl BlobPtr {
    /// The pointer's 12 bytes, as index values hold it.
    pub fn encode(self) -> [u8; BLOB_PTR_LEN] {
        let mut out = [0u8; BLOB_PTR_LEN];
        out[..8].copy_from_slice(&self.version.to_le_bytes());
        out[8..].copy_from_slice(&self.index.to_le_bytes());
        out
    }

    /// The pointer in the first 12 bytes of `bytes`; `None` if they are fewer.
    pub fn decode(bytes: &[u8]) -> Option<BlobPtr> {
        let version = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let index = u32::from_le_bytes(bytes.get(8..BLOB_PTR_LEN)?.try_into().ok()?);
        Some(BlobPtr { version, index })
    }
}

/// A value as a record stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored<'a> {
    /// No value (LangGraph's "empty" channel marker).
    Empty,
    /// The serialized value as is, with its serializer type tag.
    Raw {
        /// The serializer's type tag (LangGraph's `dumps_typed`).
        ty: &'a [u8],
        /// The serialized value.
        data: &'a [u8],
    },
    /// A zstd frame of the serialized value.
    Zstd {
        /// The serializer's type tag.
        ty: &'a [u8],
        /// The value's length, which the frame's header must state too.
        raw_len: u32,
        /// The zstd frame.
        frame: &'a [u8],
    },
    /// A zstd frame compressed with the value at `base`, a whole value (`Raw` or `Zstd`), as its
    /// raw prefix: a delta against it. `depth` is this delta's rank among the channel's deltas
    /// against that base (1 for the first), which bounds how far the deltas drift from it.
    Delta {
        /// The serializer's type tag.
        ty: &'a [u8],
        /// The value's length, which the frame's header must state too.
        raw_len: u32,
        /// The value the frame was compressed against.
        base: BlobPtr,
        /// This delta's rank among the channel's deltas against `base`, from 1.
        depth: u32,
        /// The zstd frame.
        frame: &'a [u8],
    },
    /// The whole value at `base` with its first `head.len()` bytes replaced by `head` and
    /// `tail` appended (a zstd frame when `tail_encoding` is [`TAIL_ZSTD`]); `depth` as for
    /// `Delta`.
    Splice {
        /// The serializer's type tag.
        ty: &'a [u8],
        /// The value's length: the base's plus the decoded tail's.
        raw_len: u32,
        /// The whole value spliced.
        base: BlobPtr,
        /// As for `Delta`.
        depth: u32,
        /// The bytes that replace the base's first bytes.
        head: &'a [u8],
        /// [`TAIL_RAW`] or [`TAIL_ZSTD`].
        tail_encoding: u8,
        /// The bytes appended to the base (raw, or a zstd frame of them).
        tail: &'a [u8],
    },
}

/// Whether a splice's tail is a zstd frame.
pub const TAIL_RAW: u8 = 0;
/// See [`TAIL_RAW`].
pub const TAIL_ZSTD: u8 = 1;

impl Stored<'_> {
    /// The whole value the channel's next delta is made against, and the deltas made against
    /// it so far, if this value is stored at `ptr`: its base for a delta, itself otherwise.
    pub fn next_base(&self, ptr: BlobPtr) -> (BlobPtr, u32) {
        match self {
            Stored::Delta { base, depth, .. } | Stored::Splice { base, depth, .. } => {
                (*base, *depth)
            }
            _ => (ptr, 0),
        }
    }
}

/// A checkpoint put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Put<'a> {
    /// The checkpoint's namespace (`checkpoint_ns`; empty for the root graph).
    pub ns: &'a [u8],
    /// LangGraph's checkpoint id (ids of a namespace sort by time).
    pub checkpoint_id: &'a [u8],
    /// The id of the checkpoint it follows, if any.
    pub parent_id: Option<&'a [u8]>,
    /// The run that wrote it (metadata `run_id`), for `delete_for_runs`.
    pub run_id: Option<&'a [u8]>,
    /// The serialized checkpoint without its channel values (`Raw` or `Zstd`).
    pub checkpoint: Stored<'a>,
    /// The serialized metadata (`Raw` or `Zstd`).
    pub metadata: Stored<'a>,
    /// The checkpoint's channel versions: which value of each channel it holds.
    pub versions: Vec<(&'a [u8], &'a [u8])>,
    /// The values that are new in this checkpoint: `(channel, version, value)`.
    pub blobs: Vec<(&'a [u8], &'a [u8], Stored<'a>)>,
}

/// One pending write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write<'a> {
    /// The write's index in its task (negative for LangGraph's special writes).
    pub idx: i64,
    /// The channel written.
    pub channel: &'a [u8],
    /// The value written.
    pub value: Stored<'a>,
}

/// The pending writes of one task on one checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Writes<'a> {
    /// The checkpoint's namespace.
    pub ns: &'a [u8],
    /// The checkpoint the writes are pending on.
    pub checkpoint_id: &'a [u8],
    /// The task that wrote them.
    pub task_id: &'a [u8],
    /// The task's path (LangGraph's `task_path`).
    pub task_path: &'a [u8],
    /// The writes, in the task's order.
    pub writes: Vec<Write<'a>>,
}

/// Checkpoints (with their writes) removed from the index: `(ns, checkpoint id)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete<'a> {
    /// `(namespace, checkpoint id)` of each checkpoint removed.
    pub checkpoints: Vec<(&'a [u8], &'a [u8])>,
}

/// A decoded saver record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// A checkpoint put.
    Put(Put<'a>),
    /// A task's pending writes.
    Writes(Writes<'a>),
    /// Checkpoints deleted.
    Delete(Delete<'a>),
}

/// Why bytes are not a saver record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a LangGraph saver record: {}", self.0)
    }
}

/// Appends length-prefixed fields to a buffer.
#[derive(Debug, Default)]
struct Encoder {
    buf: Vec<u8>,
}

/// A field longer than a u32 length prefix can say.
#[derive(Clone, Copy, Debug)]
pub struct TooLong;

impl Encoder {
    fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn len(&mut self, n: usize) -> Result<(), TooLong> {
        self.u32(u32::try_from(n).map_err(|_| TooLong)?);
        Ok(())
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), TooLong> {
        self.len(b.len())?;
        self.buf.extend_from_slice(b);
        Ok(())
    }

    fn opt_bytes(&mut self, b: Option<&[u8]>) -> Result<(), TooLong> {
        match b {
            None => self.u8(0),
            Some(b) => {
                self.u8(1);
                self.bytes(b)?;
            }
        }
        Ok(())
    }

    fn stored(&mut self, s: &Stored<'_>) -> Result<(), TooLong> {
        match s {
            Stored::Empty => self.u8(ENC_EMPTY),
            Stored::Raw { ty, data } => {
                self.u8(ENC_RAW);
                self.bytes(ty)?;
                self.bytes(data)?;
            }
            Stored::Zstd { ty, raw_len, frame } => {
                self.u8(ENC_ZSTD);
                self.bytes(ty)?;
                self.u32(*raw_len);
                self.bytes(frame)?;
            }
            Stored::Delta {
                ty,
                raw_len,
                base,
                depth,
                frame,
            } => {
                self.u8(ENC_DELTA);
                self.bytes(ty)?;
                self.u32(*raw_len);
                self.u64(base.version);
                self.u32(base.index);
                self.u32(*depth);
                self.bytes(frame)?;
            }
            Stored::Splice {
                ty,
                raw_len,
                base,
                depth,
                head,
                tail_encoding,
                tail,
            } => {
                self.u8(ENC_SPLICE);
                self.bytes(ty)?;
                self.u32(*raw_len);
                self.u64(base.version);
                self.u32(base.index);
                self.u32(*depth);
                self.bytes(head)?;
                self.u8(*tail_encoding);
                self.bytes(tail)?;
            }
        }
        Ok(())
    }
}

/// Encodes a record.
pub fn encode(record: &Record<'_>) -> Result<Vec<u8>, TooLong> {
    let mut e = Encoder::default();
    match record {
        Record::Put(p) => {
            e.u8(KIND_PUT);
            e.bytes(p.ns)?;
            e.bytes(p.checkpoint_id)?;
            e.opt_bytes(p.parent_id)?;
            e.opt_bytes(p.run_id)?;
            e.stored(&p.checkpoint)?;
            e.stored(&p.metadata)?;
            e.len(p.versions.len())?;
            for (channel, version) in &p.versions {
                e.bytes(channel)?;
                e.bytes(version)?;
            }
            e.len(p.blobs.len())?;
            for (channel, version, value) in &p.blobs {
                e.bytes(channel)?;
                e.bytes(version)?;
                e.stored(value)?;
            }
        }
        Record::Writes(w) => {
            e.u8(KIND_WRITES);
            e.bytes(w.ns)?;
            e.bytes(w.checkpoint_id)?;
            e.bytes(w.task_id)?;
            e.bytes(w.task_path)?;
            e.len(w.writes.len())?;
            for write in &w.writes {
                e.i64(write.idx);
                e.bytes(write.channel)?;
                e.stored(&write.value)?;
            }
        }
        Record::Delete(d) => {
            e.u8(KIND_DELETE);
            e.len(d.checkpoints.len())?;
            for (ns, cid) in &d.checkpoints {
                e.bytes(ns)?;
                e.bytes(cid)?;
            }
        }
    }
    Ok(e.into_bytes())
}

/// Reads fields back, refusing truncated or oversized input.
struct Decoder<'a> {
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(a))
    }

    /// A count of items that each take at least `min_item_bytes`: never more than the input can
    /// hold, so a hostile count cannot make us allocate.
    fn count(&mut self, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item_bytes) > self.rest.len() {
            return Err(DecodeError("a count larger than the record"));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            _ => Err(DecodeError("a bad option tag")),
        }
    }

    fn stored(&mut self) -> Result<Stored<'a>, DecodeError> {
        Ok(match self.u8()? {
            ENC_EMPTY => Stored::Empty,
            ENC_RAW => Stored::Raw {
                ty: self.bytes()?,
                data: self.bytes()?,
            },
            ENC_ZSTD => Stored::Zstd {
                ty: self.bytes()?,
                raw_len: self.u32()?,
                frame: self.bytes()?,
            },
            ENC_DELTA => Stored::Delta {
                ty: self.bytes()?,
                raw_len: self.u32()?,
                base: BlobPtr {
                    version: self.u64()?,
                    index: self.u32()?,
                },
                depth: self.u32()?,
                frame: self.bytes()?,
            },
            ENC_SPLICE => Stored::Splice {
                ty: self.bytes()?,
                raw_len: self.u32()?,
                base: BlobPtr {
                    version: self.u64()?,
                    index: self.u32()?,
                },
                depth: self.u32()?,
                head: self.bytes()?,
                tail_encoding: match self.u8()? {
                    t @ (TAIL_RAW | TAIL_ZSTD) => t,
                    _ => return Err(DecodeError("an unknown splice tail encoding")),
                },
                tail: self.bytes()?,
            },
            _ => return Err(DecodeError("an unknown value encoding")),
        })
    }
}

/// Decodes a record.
///
/// # Errors
/// [`DecodeError`] when the bytes are not a whole record.
pub fn decode(bytes: &[u8]) -> Result<Record<'_>, DecodeError> {
    let mut d = Decoder { rest: bytes };
    let record = match d.u8()? {
        KIND_PUT => {
            let ns = d.bytes()?;
            let checkpoint_id = d.bytes()?;
            let parent_id = d.opt_bytes()?;
            let run_id = d.opt_bytes()?;
            let checkpoint = d.stored()?;
            let metadata = d.stored()?;
            let n = d.count(8)?;
            let mut versions = Vec::with_capacity(n);
            for _ in 0..n {
                versions.push((d.bytes()?, d.bytes()?));
            }
            let n = d.count(9)?;
            let mut blobs = Vec::with_capacity(n);
            for _ in 0..n {
                blobs.push((d.bytes()?, d.bytes()?, d.stored()?));
            }
            Record::Put(Put {
                ns,
                checkpoint_id,
                parent_id,
                run_id,
                checkpoint,
                metadata,
                versions,
                blobs,
            })
        }
        KIND_WRITES => {
            let ns = d.bytes()?;
            let checkpoint_id = d.bytes()?;
            let task_id = d.bytes()?;
            let task_path = d.bytes()?;
            let n = d.count(13)?;
            let mut writes = Vec::with_capacity(n);
            for _ in 0..n {
                writes.push(Write {
                    idx: d.i64()?,
                    channel: d.bytes()?,
                    value: d.stored()?,
                });
            }
            Record::Writes(Writes {
                ns,
                checkpoint_id,
                task_id,
                task_path,
                writes,
            })
        }
        KIND_DELETE => {
            let n = d.count(8)?;
            let mut checkpoints = Vec::with_capacity(n);
            for _ in 0..n {
                checkpoints.push((d.bytes()?, d.bytes()?));
            }
            Record::Delete(Delete { checkpoints })
        }
        _ => return Err(DecodeError("an unknown record kind")),
    };
    if !d.rest.is_empty() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(record)
}

/// Joins key parts with zero bytes, after a one-byte key space tag.
fn key(space: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len = 1 + parts.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut k = Vec::with_capacity(len);
    k.push(space);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

/// The counter of applied events.
pub const KEY_COUNT: &[u8] = b"#";

/// `c ns 0 cid`.
pub fn key_checkpoint(ns: &[u8], cid: &[u8]) -> Vec<u8> {
    key(b'c', &[ns, cid])
}

/// `c ns 0`: every checkpoint of a namespace.
pub fn prefix_checkpoints(ns: &[u8]) -> Vec<u8> {
    key(b'c', &[ns, b""])
}

/// `l ns`.
pub fn key_latest(ns: &[u8]) -> Vec<u8> {
    key(b'l', &[ns])
}

/// `l`: the latest checkpoint of every namespace.
pub const PREFIX_LATEST: &[u8] = b"l";

/// `b h(ns 0 channel 0 version)`.
pub fn key_blob(ns: &[u8], channel: &[u8], version: &[u8]) -> Vec<u8> {
    let hash = xxhash_rust::xxh3::xxh3_64(&key(0, &[ns, channel, version])[1..]);
    key(b'b', &[&hash.to_be_bytes()])
}

/// `p ns 0 channel`.
pub fn key_last_blob(ns: &[u8], channel: &[u8]) -> Vec<u8> {
    key(b'p', &[ns, channel])
}

/// `w ns 0 cid`: the versions of a checkpoint's write records.
pub fn key_writes(ns: &[u8], cid: &[u8]) -> Vec<u8> {
    key(b'w', &[ns, cid])
}

/// The record versions listed in a `w` value.
pub fn decode_versions(value: &[u8]) -> impl Iterator<Item = u64> + '_ {
    value
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
}

/// `r run 0 ns 0 cid`.
fn key_run(run_id: &[u8], ns: &[u8], cid: &[u8]) -> Vec<u8> {
    key(b'r', &[run_id, ns, cid])
}

/// `r run 0`: every checkpoint of a run.
pub fn prefix_run(run_id: &[u8]) -> Vec<u8> {
    key(b'r', &[run_id, b""])
}

/// Splits the `ns 0 cid` tail of an `r run 0` key.
pub fn split_run_key(key: &[u8], prefix_len: usize) -> Option<(&[u8], &[u8])> {
    let tail = key.get(prefix_len..)?;
    let zero = tail.iter().position(|&b| b == 0)?;
    Some((&tail[..zero], &tail[zero + 1..]))
}

/// The value of a `c` key: the put's version, then its run id.
pub fn decode_checkpoint_entry(value: &[u8]) -> Option<(u64, &[u8])> {
    let version = u64::from_le_bytes(value.get(..8)?.try_into().ok()?);
    Some((version, &value[8..]))
}

/// The value of a `p` key: the channel's newest whole value, then the deltas made against it.
pub fn decode_last_blob(value: &[u8]) -> Option<(BlobPtr, u32)> {
    let ptr = BlobPtr::decode(value)?;
    let depth = u32::from_le_bytes(value.get(BLOB_PTR_LEN..BLOB_PTR_LEN + 4)?.try_into().ok()?);
    Some((ptr, depth))
}

/// The state machine of thread streams: it keeps the index described in the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct SaverMachine;

impl StateMachine for SaverMachine {
    fn name(&self) -> &str {
        "langgraph-saver"
    }

    fn apply(&self, event: &[u8], state: &mut StateHandle<'_>) -> Result<(), Rejected> {
        let applied = match state.get(KEY_COUNT) {
            None => 0,
            Some(v) => u64::from_le_bytes(
                v.try_into()
                    .map_err(|_| Rejected::new("the event counter is not 8 bytes"))?,
            ),
        };
        let version = applied + 1;
        state.put(KEY_COUNT, &version.to_le_bytes());
        match decode(event).map_err(|e| Rejected::new(e.to_string()))? {
            Record::Put(p) => apply_put(&p, version, state),
            Record::Writes(w) => apply_writes(&w, version, state),
            Record::Delete(d) => apply_delete(&d, state),
        }
        Ok(())
    }
}

fn apply_put(p: &Put<'_>, version: u64, state: &mut StateHandle<'_>) {
    let run_id = p.run_id.unwrap_or_default();
    let mut entry = Vec::with_capacity(8 + run_id.len());
    entry.extend_from_slice(&version.to_le_bytes());
    entry.extend_from_slice(run_id);
    state.put(&key_checkpoint(p.ns, p.checkpoint_id), &entry);
    if let Some(run_id) = p.run_id {
        state.put(&key_run(run_id, p.ns, p.checkpoint_id), b"");
    }
    let latest = key_latest(p.ns);
    if state.get(&latest).is_none_or(|cid| cid < p.checkpoint_id) {
        state.put(&latest, p.checkpoint_id);
    }
    for (index, (channel, channel_version, value)) in p.blobs.iter().enumerate() {
        let ptr = BlobPtr {
            version,
            index: u32::try_from(index).unwrap_or(u32::MAX),
        };
        state.put(&key_blob(p.ns, channel, channel_version), &ptr.encode());
        if *value != Stored::Empty {
            let (base, deltas) = value.next_base(ptr);
            let mut last = base.encode().to_vec();
            last.extend_from_slice(&deltas.to_le_bytes());
            state.put(&key_last_blob(p.ns, channel), &last);
        }
    }
}

fn apply_writes(w: &Writes<'_>, version: u64, state: &mut StateHandle<'_>) {
    let key = key_writes(w.ns, w.checkpoint_id);
    let mut list = state.get(&key).map(<[u8]>::to_vec).unwrap_or_default();
    list.extend_from_slice(&version.to_le_bytes());
    state.put(&key, &list);
}

fn apply_delete(d: &Delete<'_>, state: &mut StateHandle<'_>) {
    for (ns, cid) in &d.checkpoints {
        let key = key_checkpoint(ns, cid);
        let Some(run_id) = state
            .get(&key)
            .and_then(decode_checkpoint_entry)
            .map(|(_, run)| run.to_vec())
        else {
            continue;
        };
        state.delete(&key);
        if !run_id.is_empty() {
            state.delete(&key_run(&run_id, ns, cid));
        }
        state.delete(&key_writes(ns, cid));
        let latest = key_latest(ns);
        if state.get(&latest) == Some(*cid) {
            let prefix = prefix_checkpoints(ns);
            let newest = state
                .prefix(&prefix)
                .last()
                .map(|(k, _)| k[prefix.len()..].to_vec());
            match newest {
                Some(newest) => state.put(&latest, &newest),
                None => state.delete(&latest),
            }
        }
    }
}
