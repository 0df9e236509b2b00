//! `SaverCore`: the storage side of the LangGraph saver. The Python class
//! (`helios_store.langgraph.HeliosSaver`) turns LangGraph's objects into bytes with LangGraph's
//! serializer and calls this with them; everything below works on bytes, with the GIL released.
//!
//! Layout: one stream per thread (see [`crate::record`] for its records and index). A put is
//! one record: the checkpoint, its metadata, its channel versions, and the channel values that
//! changed, each stored as a delta against the channel's newest whole value when that is
//! small ([`crate::codec`]): after `deltas_per_full` deltas (or when a delta stops being small)
//! the value is stored whole again. Deltas are not chained, so reading any value decodes at
//! most two frames (its base, usually cached, and itself). Recently used values are kept
//! decoded in an LRU bounded by bytes: the whole values (few, and the base of every delta) and
//! the values of the newest checkpoints are usually found there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use helios::{Durability, Engine, StreamId, Version, View};
use lru::LruCache;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::codec::{self, Encoded};
use crate::errors::{self, CorruptRecordError};
use crate::record::{
    self, BlobPtr, Delete, PREFIX_LATEST, Put, Record, SAVER_STREAM_PREFIX, Stored, Write, Writes,
};
use crate::store::{Shared, Store, durability};

/// Default bytes of decoded values the saver keeps in memory.
pub(crate) const DEFAULT_CACHE_BYTES: usize = 64 << 20;
/// Default number of deltas against one whole value of a channel before the next value is
/// stored whole again.
pub(crate) const DEFAULT_DELTAS_PER_FULL: u32 = 32;
/// Default zstd level: zstd's own default, fast for both compression and decompression.
pub(crate) const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// What can go wrong below the Python layer.
#[derive(Debug)]
enum CoreError {
    /// The engine failed.
    Engine(helios::Error),
    /// A record or index entry does not decode: bytes this build does not understand.
    Corrupt(String),
}

impl From<helios::Error> for CoreError {
    fn from(e: helios::Error) -> CoreError {
        CoreError::Engine(e)
    }
}

impl CoreError {
    fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            CoreError::Engine(e) => errors::to_py(py, e),
            CoreError::Corrupt(message) => CorruptRecordError::new_err(message),
        }
    }
}

type CoreResult<T> = Result<T, CoreError>;

/// A decoded value: its serializer type tag (`None`: LangGraph's empty marker) and bytes.
#[derive(Debug)]
struct Value {
    ty: Option<Vec<u8>>,
    data: Vec<u8>,
}

impl Value {
    fn size_bytes(&self) -> usize {
        self.data.len() + self.ty.as_ref().map_or(0, Vec::len) + 64
    }
}

/// Decoded values by `(stream id, record version, index)`, in two LRUs bounded by bytes: whole
/// values (the bases every delta decodes against: few, and worth keeping) and the rest (values
/// decoded from deltas, and the newest values puts leave behind), so that a scan of old
/// checkpoints never evicts the bases. Keyed by stream id, not name: a thread deleted and
/// written again, or a copy, is a different stream with its own versions.
#[derive(Debug)]
struct ValueCache {
    bases: Lru,
    others: Lru,
}

type CacheKey = (u64, u64, u32);

/// One LRU of decoded values, evicted beyond a byte budget.
#[derive(Debug)]
struct Lru {
    lru: LruCache<CacheKey, Arc<Value>>,
    bytes: usize,
    budget_bytes: usize,
}

impl Lru {
    fn new(budget_bytes: usize) -> Lru {
        Lru {
            lru: LruCache::unbounded(),
            bytes: 0,
            budget_bytes,
        }
    }

    fn insert(&mut self, key: CacheKey, value: Arc<Value>) {
        let size = value.size_bytes();
        if size > self.budget_bytes {
            return;
        }
        if let Some(old) = self.lru.put(key, value) {
            self.bytes -= old.size_bytes();
        }
        self.bytes += size;
        while self.bytes > self.budget_bytes {
            match self.lru.pop_lru() {
                Some((_, evicted)) => self.bytes -= evicted.size_bytes(),
                None => break,
            }
        }
    }
}

impl ValueCache {
    /// Three quarters of the budget for whole values, the rest for the others.
    fn new(budget_bytes: usize) -> ValueCache {
        let bases = budget_bytes / 4 * 3;
        ValueCache {
            bases: Lru::new(bases),
            others: Lru::new(budget_bytes - bases),
        }
    }

    fn get(&mut self, key: CacheKey) -> Option<Arc<Value>> {
        if let Some(v) = self.bases.lru.get(&key) {
            return Some(v.clone());
        }
        self.others.lru.get(&key).cloned()
    }

    /// Caches `value`; `whole`: stored whole (a base), not as a delta.
    fn insert(&mut self, key: CacheKey, value: Arc<Value>, whole: bool) {
        if whole {
            self.bases.insert(key, value);
        } else {
            self.others.insert(key, value);
        }
    }

    fn stats(&self) -> (usize, usize) {
        (
            self.bases.bytes + self.others.bytes,
            self.bases.lru.len() + self.others.lru.len(),
        )
    }
}

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

/// A thread's stream as of one read: its name, id, head and the view of its index there.
struct Thread {
    name: String,
    id: StreamId,
    view: View,
}

/// The records of one thread read during one call, each read from the log once.
struct Records<'t> {
    thread: &'t Thread,
    payloads: HashMap<u64, Vec<u8>>,
}

impl<'t> Records<'t> {
    fn new(thread: &'t Thread) -> Records<'t> {
        Records {
            thread,
            payloads: HashMap::new(),
        }
    }

    fn payload(&mut self, engine: &Engine, version: u64) -> CoreResult<&[u8]> {
        if !self.payloads.contains_key(&version) {
            let mut events = engine.read(&self.thread.name, Version(version)..=Version(version))?;
            let event = match events.next() {
                Some(event) => event?,
                None => {
                    return Err(CoreError::Corrupt(format!(
                        "the index of stream `{}` points at version {version}, which it does not have",
                        self.thread.name
                    )));
                }
            };
            self.payloads.insert(version, event.payload);
        }
        Ok(self.payloads.get(&version).map_or(&[][..], Vec::as_slice))
    }

    fn record(&mut self, engine: &Engine, version: u64) -> CoreResult<Record<'_>> {
        let name = self.thread.name.clone();
        let payload = self.payload(engine, version)?;
        record::decode(payload)
            .map_err(|e| CoreError::Corrupt(format!("stream `{name}`, version {version}: {e}")))
    }
}

fn corrupt(thread: &Thread, what: impl std::fmt::Display) -> CoreError {
    CoreError::Corrupt(format!("stream `{}`: {what}", thread.name))
}

/// A checkpoint as `get` returns it, before it becomes Python objects.
struct Loaded {
    checkpoint_id: Vec<u8>,
    parent_id: Option<Vec<u8>>,
    /// The checkpoint without channel values: serializer type and bytes.
    checkpoint: (Vec<u8>, Vec<u8>),
    /// The metadata: serializer type and bytes.
    metadata: (Vec<u8>, Vec<u8>),
    /// `(channel, value)` for each channel the checkpoint has a non-empty value for.
    values: Vec<(Vec<u8>, Arc<Value>)>,
    /// The pending writes, sorted as LangGraph applies them.
    writes: Vec<LoadedWrite>,
}

/// A pending write found in the records: where its value is, task path, task id, idx, channel.
type WriteRef = (BlobPtr, Vec<u8>, Vec<u8>, i64, Vec<u8>);

/// A pending write as `get` returns it.
struct LoadedWrite {
    task_path: Vec<u8>,
    task_id: Vec<u8>,
    idx: i64,
    channel: Vec<u8>,
    value: Arc<Value>,
}

/// The storage core of `HeliosSaver`. Made from an open `Store`; shares its engine (closing
/// the store closes the saver).
#[pyclass(frozen, module = "helios_store")]
pub struct SaverCore {
    shared: Arc<Shared>,
    cache: Mutex<ValueCache>,
    zstd_level: i32,
    deltas_per_full: u32,
}

impl std::fmt::Debug for SaverCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaverCore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

/// The stream of a thread.
fn stream_name(thread_id: &str) -> String {
    format!("{SAVER_STREAM_PREFIX}{thread_id}")
}

/// Refuses a name part that would break the index's zero-byte separators.
fn no_nul(value: &str, what: &str) -> PyResult<()> {
    if value.as_bytes().contains(&0) {
        return Err(PyValueError::new_err(format!(
            "{what} must not contain a NUL character: {value:?}"
        )));
    }
    Ok(())
}

fn persistent(name: &str) -> PyResult<Durability> {
    match durability(name)? {
        Durability::Speculative => Err(PyValueError::new_err(
            "a saver write must be 'critical' or 'normal', not 'speculative'",
        )),
        class => Ok(class),
    }
}

impl SaverCore {
    fn cache(&self) -> std::sync::MutexGuard<'_, ValueCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread's stream at its head, or `None` if it has no event.
    fn thread(engine: &Engine, thread_id: &str) -> CoreResult<Option<Thread>> {
        let name = stream_name(thread_id);
        let Some(info) = engine.stream(&name) else {
            return Ok(None);
        };
        if info.head == Version::ZERO {
            return Ok(None);
        }
        let view = engine.view(&name, info.head)?;
        Ok(Some(Thread {
            name,
            id: info.id,
            view,
        }))
    }

    /// The value at `ptr`, from the cache or decoded (with its chain of bases).
    fn load(
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

    /// The pending writes of a checkpoint that count, as LangGraph's `put_writes` defines them
    /// over the write records in log order: the first regular write (`idx >= 0`) of a task and
    /// index wins, a special write (`idx < 0`: error, interrupt, ...) replaces the earlier one.
    /// Each is `(where its value is, task_path, task_id, idx, channel)`.
    fn live_writes(
        &self,
        engine: &Engine,
        records: &mut Records<'_>,
        ns: &[u8],
        cid: &[u8],
    ) -> CoreResult<Vec<WriteRef>> {
        let thread = records.thread;
        let versions: Vec<u64> = thread
            .view
            .get(&record::key_writes(ns, cid))
            .map(|v| record::decode_versions(v).collect())
            .unwrap_or_default();
        let mut live: HashMap<(Vec<u8>, i64), WriteRef> = HashMap::new();
        for version in versions {
            let Record::Writes(w) = records.record(engine, version)? else {
                return Err(corrupt(
                    thread,
                    format!("version {version} is not a write record"),
                ));
            };
            for (index, write) in w.writes.iter().enumerate() {
                let slot = (w.task_id.to_vec(), write.idx);
                if write.idx >= 0 && live.contains_key(&slot) {
                    continue;
                }
                let ptr = BlobPtr {
                    version,
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                };
                live.insert(
                    slot,
                    (
                        ptr,
                        w.task_path.to_vec(),
                        w.task_id.to_vec(),
                        write.idx,
                        write.channel.to_vec(),
                    ),
                );
            }
        }
        Ok(live.into_values().collect())
    }

    /// Reads one checkpoint and everything `get_tuple` needs with it.
    fn load_checkpoint(
        &self,
        engine: &Engine,
        thread: &Thread,
        ns: &str,
        checkpoint_id: Option<&str>,
    ) -> CoreResult<Option<Loaded>> {
        let ns = ns.as_bytes();
        let cid: Vec<u8> = match checkpoint_id {
            Some(cid) => cid.as_bytes().to_vec(),
            None => match thread.view.get(&record::key_latest(ns)) {
                Some(cid) => cid.to_vec(),
                None => return Ok(None),
            },
        };
        let Some(entry) = thread.view.get(&record::key_checkpoint(ns, &cid)) else {
            return Ok(None);
        };
        let (version, _) = record::decode_checkpoint_entry(entry)
            .ok_or_else(|| corrupt(thread, "a checkpoint index entry is not 8 bytes or more"))?;
        let mut records = Records::new(thread);
        let (mut loaded, blob_ptrs) = {
            let Record::Put(put) = records.record(engine, version)? else {
                return Err(corrupt(
                    thread,
                    format!("version {version} is not a checkpoint"),
                ));
            };
            let mut ptrs = Vec::with_capacity(put.versions.len());
            for (channel, channel_version) in &put.versions {
                if let Some(ptr) = thread
                    .view
                    .get(&record::key_blob(ns, channel, channel_version))
                    .and_then(BlobPtr::decode)
                {
                    ptrs.push((channel.to_vec(), channel_version.to_vec(), ptr));
                }
            }
            (
                Loaded {
                    checkpoint_id: cid.clone(),
                    parent_id: put.parent_id.map(<[u8]>::to_vec),
                    checkpoint: whole(thread, &put.checkpoint)?,
                    metadata: whole(thread, &put.metadata)?,
                    values: Vec::new(),
                    writes: Vec::new(),
                },
                ptrs,
            )
        };
        for (channel, channel_version, ptr) in blob_ptrs {
            // Blob keys hold a hash of the version: check the version stored with the value.
            let stored_version_matches = match records.record(engine, ptr.version)? {
                Record::Put(p) => p.blobs.get(ptr.index as usize).is_some_and(|(c, v, _)| {
                    *c == channel.as_slice() && *v == channel_version.as_slice()
                }),
                _ => false,
            };
            if !stored_version_matches {
                return Err(corrupt(
                    thread,
                    format!(
                        "the index of channel {:?} version {:?} points at another value",
                        text(&channel),
                        text(&channel_version)
                    ),
                ));
            }
            let value = self.load(engine, &mut records, ptr)?;
            if value.ty.is_some() {
                loaded.values.push((channel, value));
            }
        }
        for (ptr, task_path, task_id, idx, channel) in
            self.live_writes(engine, &mut records, ns, &cid)?
        {
            let value = self.load(engine, &mut records, ptr)?;
            loaded.writes.push(LoadedWrite {
                task_path,
                task_id,
                idx,
                channel,
                value,
            });
        }
        // LangGraph's `writes_sort_key`: (task_path, task_id, idx).
        loaded.writes.sort_by(|a, b| {
            (&a.task_path, &a.task_id, a.idx).cmp(&(&b.task_path, &b.task_id, b.idx))
        });
        Ok(Some(loaded))
    }
}

/// The type and bytes of a value stored whole (`Raw` or `Zstd`): a checkpoint or metadata.
fn whole(thread: &Thread, stored: &Stored<'_>) -> CoreResult<(Vec<u8>, Vec<u8>)> {
    match stored {
        Stored::Raw { ty, data } => Ok((ty.to_vec(), data.to_vec())),
        Stored::Zstd { ty, raw_len, frame } => Ok((
            ty.to_vec(),
            codec::decode_zstd(frame, *raw_len as usize)
                .map_err(|e| corrupt(thread, format!("a checkpoint or its metadata: {e}")))?,
        )),
        _ => Err(corrupt(
            thread,
            "a checkpoint or its metadata stored as a delta",
        )),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[pymethods]
impl SaverCore {
    /// A saver core over `store`'s engine. `cache_bytes` bounds the decoded values kept in
    /// memory; `deltas_per_full` how many values of a channel are stored as deltas against one
    /// whole value before the next is stored whole;
    /// `zstd_level` the compression level.
    #[new]
    #[pyo3(signature = (store, *, cache_bytes = DEFAULT_CACHE_BYTES, deltas_per_full = DEFAULT_DELTAS_PER_FULL, zstd_level = DEFAULT_ZSTD_LEVEL))]
    fn new(store: &Store, cache_bytes: usize, deltas_per_full: u32, zstd_level: i32) -> SaverCore {
        SaverCore {
            shared: store.shared.clone(),
            cache: Mutex::new(ValueCache::new(cache_bytes)),
            zstd_level,
            deltas_per_full,
        }
    }

    /// The stream that holds a thread.
    #[staticmethod]
    fn stream_name(thread_id: &str) -> String {
        stream_name(thread_id)
    }

    /// Stores a checkpoint as one record. `checkpoint` and `metadata` are `(type, bytes)` from
    /// the serializer; `versions` the checkpoint's `(channel, version)` pairs; `blobs` the new
    /// values `(channel, version, type or None for empty, bytes)`. `durability` `"critical"`
    /// returns once the record is on stable storage.
    #[pyo3(signature = (thread_id, checkpoint_ns, checkpoint_id, parent_id, run_id, checkpoint, metadata, versions, blobs, durability = "critical"))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of a LangGraph put, as Python passes them"
    )]
    fn put(
        &self,
        py: Python<'_>,
        thread_id: &str,
        checkpoint_ns: &str,
        checkpoint_id: &str,
        parent_id: Option<&str>,
        run_id: Option<&str>,
        checkpoint: (String, Bound<'_, PyBytes>),
        metadata: (String, Bound<'_, PyBytes>),
        versions: Vec<(String, String)>,
        blobs: Vec<(String, String, Option<String>, Bound<'_, PyBytes>)>,
        durability: &str,
    ) -> PyResult<()> {
        let class = persistent(durability)?;
        no_nul(checkpoint_ns, "checkpoint_ns")?;
        no_nul(checkpoint_id, "checkpoint_id")?;
        if let Some(run_id) = run_id {
            no_nul(run_id, "run_id")?;
        }
        for (channel, version) in &versions {
            no_nul(channel, "a channel name")?;
            no_nul(version, "a channel version")?;
        }
        let blobs: Vec<(String, String, Option<String>, Vec<u8>)> = blobs
            .into_iter()
            .map(|(c, v, t, b)| (c, v, t, b.as_bytes().to_vec()))
            .collect();
        for (channel, version, _, _) in &blobs {
            no_nul(channel, "a channel name")?;
            no_nul(version, "a channel version")?;
        }
        let checkpoint = (checkpoint.0, checkpoint.1.as_bytes().to_vec());
        let metadata = (metadata.0, metadata.1.as_bytes().to_vec());
        let engine = self.shared.engine()?;
        let (thread_id, ns, cid) = (
            thread_id.to_owned(),
            checkpoint_ns.to_owned(),
            checkpoint_id.to_owned(),
        );
        let (parent_id, run_id) = (parent_id.map(str::to_owned), run_id.map(str::to_owned));
        py.detach(|| -> CoreResult<()> {
            let thread = SaverCore::thread(&engine, &thread_id)?;
            // Encode each new value, against the channel's newest whole value where that pays.
            let mut encoded: Vec<(Encoded, Option<(BlobPtr, u32)>)> =
                Vec::with_capacity(blobs.len());
            if let Some(thread) = &thread {
                let mut records = Records::new(thread);
                for (channel, _, ty, data) in &blobs {
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
                            let base = self.load(&engine, &mut records, ptr)?;
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
                for (_, _, _, data) in &blobs {
                    encoded.push((
                        codec::encode_full(data, self.zstd_level)
                            .map_err(|e| CoreError::Corrupt(format!("zstd failed: {e}")))?,
                        None,
                    ));
                }
            }
            let stored_blobs: Vec<(&[u8], &[u8], Stored<'_>)> = blobs
                .iter()
                .zip(&encoded)
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
                        // A delta always comes with its base (see above).
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
                        (Some(ty), Encoded::Delta(_) | Encoded::Splice { .. }, None) => {
                            Stored::Raw {
                                ty: ty.as_bytes(),
                                data,
                            }
                        }
                    };
                    (channel.as_bytes(), version.as_bytes(), stored)
                })
                .collect();
            if data_too_long(&blobs) {
                return Err(CoreError::Corrupt(
                    "a channel value of 4 GiB or more cannot be stored".into(),
                ));
            }
            let zstd_failed = |e: std::io::Error| CoreError::Corrupt(format!("zstd failed: {e}"));
            let checkpoint_enc =
                codec::encode_full(&checkpoint.1, self.zstd_level).map_err(zstd_failed)?;
            let metadata_enc =
                codec::encode_full(&metadata.1, self.zstd_level).map_err(zstd_failed)?;
            let put = Put {
                ns: ns.as_bytes(),
                checkpoint_id: cid.as_bytes(),
                parent_id: parent_id.as_deref().map(str::as_bytes),
                run_id: run_id.as_deref().map(str::as_bytes),
                checkpoint: as_stored(checkpoint.0.as_bytes(), &checkpoint.1, &checkpoint_enc),
                metadata: as_stored(metadata.0.as_bytes(), &metadata.1, &metadata_enc),
                versions: versions
                    .iter()
                    .map(|(c, v)| (c.as_bytes(), v.as_bytes()))
                    .collect(),
                blobs: stored_blobs,
            };
            let payload = record::encode(&Record::Put(put))
                .map_err(|_| CoreError::Corrupt("a field of 4 GiB or more".into()))?;
            let appended = engine.append(&stream_name(&thread_id), &[payload], class, None)?;
            // The new values are what the next put deltas against and the next get reads.
            let mut cache = self.cache();
            for (index, ((_, _, ty, data), (enc, _))) in blobs.into_iter().zip(&encoded).enumerate()
            {
                let whole = !matches!(enc, Encoded::Delta(_) | Encoded::Splice { .. });
                let value = Arc::new(Value {
                    ty: ty.map(String::into_bytes),
                    data,
                });
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                cache.insert((appended.stream.0, appended.last.0, index), value, whole);
            }
            Ok(())
        })
        .map_err(|e| e.into_py(py))
    }

    /// Stores one task's pending writes on a checkpoint as one record: `writes` are
    /// `(idx, channel, type, bytes)`, with LangGraph's index (negative for special channels).
    /// A regular write already stored for the same task and index is not stored again.
    #[pyo3(signature = (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, writes, durability = "critical"))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of a LangGraph put_writes, as Python passes them"
    )]
    fn put_writes(
        &self,
        py: Python<'_>,
        thread_id: &str,
        checkpoint_ns: &str,
        checkpoint_id: &str,
        task_id: &str,
        task_path: &str,
        writes: Vec<(i64, String, String, Bound<'_, PyBytes>)>,
        durability: &str,
    ) -> PyResult<()> {
        let class = persistent(durability)?;
        no_nul(checkpoint_ns, "checkpoint_ns")?;
        no_nul(checkpoint_id, "checkpoint_id")?;
        no_nul(task_id, "task_id")?;
        let writes: Vec<(i64, String, String, Vec<u8>)> = writes
            .into_iter()
            .map(|(i, c, t, b)| (i, c, t, b.as_bytes().to_vec()))
            .collect();
        let engine = self.shared.engine()?;
        let (thread_id, ns, cid, task_id, task_path) = (
            thread_id.to_owned(),
            checkpoint_ns.to_owned(),
            checkpoint_id.to_owned(),
            task_id.to_owned(),
            task_path.to_owned(),
        );
        py.detach(|| -> CoreResult<()> {
            let thread = SaverCore::thread(&engine, &thread_id)?;
            // Regular writes already stored for this task and index would be ignored by readers;
            // leaving them out of the record saves their bytes in the log.
            let present: std::collections::HashSet<i64> = match &thread {
                None => Default::default(),
                Some(t) => {
                    let mut records = Records::new(t);
                    self.live_writes(&engine, &mut records, ns.as_bytes(), cid.as_bytes())?
                        .into_iter()
                        .filter(|w| w.2 == task_id.as_bytes() && w.3 >= 0)
                        .map(|w| w.3)
                        .collect()
                }
            };
            let kept: Vec<&(i64, String, String, Vec<u8>)> = writes
                .iter()
                .filter(|(idx, _, _, _)| *idx < 0 || !present.contains(idx))
                .collect();
            if kept.is_empty() {
                return Ok(());
            }
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
            let payload = record::encode(&Record::Writes(record))
                .map_err(|_| CoreError::Corrupt("a field of 4 GiB or more".into()))?;
            engine.append(&stream_name(&thread_id), &[payload], class, None)?;
            Ok(())
        })
        .map_err(|e| e.into_py(py))
    }

    /// A checkpoint (the newest of the namespace when `checkpoint_id` is `None`):
    /// `(checkpoint_id, parent_id, (type, checkpoint), (type, metadata), values, writes)` where
    /// `values` are `(channel, type, bytes)` and `writes` `(task_id, channel, type, bytes)`
    /// in LangGraph's order; `None` if there is no such checkpoint.
    #[pyo3(signature = (thread_id, checkpoint_ns, checkpoint_id = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        thread_id: &str,
        checkpoint_ns: &str,
        checkpoint_id: Option<&str>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let engine = self.shared.engine()?;
        let loaded = py
            .detach(|| -> CoreResult<Option<Loaded>> {
                let Some(thread) = SaverCore::thread(&engine, thread_id)? else {
                    return Ok(None);
                };
                self.load_checkpoint(&engine, &thread, checkpoint_ns, checkpoint_id)
            })
            .map_err(|e| e.into_py(py))?;
        let Some(l) = loaded else {
            return Ok(None);
        };
        let values = PyList::empty(py);
        for (channel, value) in &l.values {
            let ty = value.ty.as_deref().map(text);
            values.append((text(channel), ty, PyBytes::new(py, &value.data)))?;
        }
        let writes = PyList::empty(py);
        for w in &l.writes {
            let ty = w.value.ty.as_deref().map(text);
            writes.append((
                text(&w.task_id),
                text(&w.channel),
                ty,
                PyBytes::new(py, &w.value.data),
            ))?;
        }
        let tuple = (
            text(&l.checkpoint_id),
            l.parent_id.as_deref().map(text),
            (text(&l.checkpoint.0), PyBytes::new(py, &l.checkpoint.1)),
            (text(&l.metadata.0), PyBytes::new(py, &l.metadata.1)),
            values,
            writes,
        )
            .into_pyobject(py)?;
        Ok(Some(tuple))
    }

    /// A checkpoint's metadata `(type, bytes)` alone (for filtering a list), or `None`.
    fn metadata<'py>(
        &self,
        py: Python<'py>,
        thread_id: &str,
        checkpoint_ns: &str,
        checkpoint_id: &str,
    ) -> PyResult<Option<(String, Bound<'py, PyBytes>)>> {
        let engine = self.shared.engine()?;
        let found = py
            .detach(|| -> CoreResult<Option<(Vec<u8>, Vec<u8>)>> {
                let Some(thread) = SaverCore::thread(&engine, thread_id)? else {
                    return Ok(None);
                };
                let key =
                    record::key_checkpoint(checkpoint_ns.as_bytes(), checkpoint_id.as_bytes());
                let Some((version, _)) = thread
                    .view
                    .get(&key)
                    .and_then(record::decode_checkpoint_entry)
                else {
                    return Ok(None);
                };
                let mut records = Records::new(&thread);
                match records.record(&engine, version)? {
                    Record::Put(p) => Ok(Some(whole(&thread, &p.metadata)?)),
                    _ => Err(corrupt(
                        &thread,
                        format!("version {version} is not a checkpoint"),
                    )),
                }
            })
            .map_err(|e| e.into_py(py))?;
        Ok(found.map(|(ty, data)| (text(&ty), PyBytes::new(py, &data))))
    }

    /// The checkpoints of a thread as `(checkpoint_ns, checkpoint_id)`, newest id first, in one
    /// namespace or all of them, only ids below `before` if given.
    #[pyo3(signature = (thread_id, checkpoint_ns = None, before = None))]
    fn list(
        &self,
        py: Python<'_>,
        thread_id: &str,
        checkpoint_ns: Option<&str>,
        before: Option<&str>,
    ) -> PyResult<Vec<(String, String)>> {
        let engine = self.shared.engine()?;
        py.detach(|| -> CoreResult<Vec<(String, String)>> {
            let Some(thread) = SaverCore::thread(&engine, thread_id)? else {
                return Ok(Vec::new());
            };
            let namespaces: Vec<Vec<u8>> = match checkpoint_ns {
                Some(ns) => vec![ns.as_bytes().to_vec()],
                None => thread
                    .view
                    .prefix(PREFIX_LATEST)
                    .map(|(k, _)| k[PREFIX_LATEST.len()..].to_vec())
                    .collect(),
            };
            let mut out: Vec<(String, String)> = Vec::new();
            for ns in namespaces {
                let prefix = record::prefix_checkpoints(&ns);
                for (key, _) in thread.view.prefix(&prefix) {
                    let cid = &key[prefix.len()..];
                    if before.is_some_and(|b| cid >= b.as_bytes()) {
                        continue;
                    }
                    out.push((text(&ns), text(cid)));
                }
            }
            // Newest first across namespaces, as SQL savers order by checkpoint id.
            out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Ok(out)
        })
        .map_err(|e| e.into_py(py))
    }

    /// Every thread that has records.
    fn threads(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let engine = self.shared.engine()?;
        Ok(py.detach(|| {
            engine
                .streams()
                .filter(|s| s.head > Version::ZERO)
                .filter_map(|s| s.name.strip_prefix(SAVER_STREAM_PREFIX).map(str::to_owned))
                .collect()
        }))
    }

    /// The thread's head version (0 if it has no records): where a copy forks it.
    fn head(&self, thread_id: &str) -> PyResult<u64> {
        Ok(self
            .shared
            .engine()?
            .head(&stream_name(thread_id))
            .map_or(0, |v| v.0))
    }

    /// Removes checkpoints `(checkpoint_ns, checkpoint_id)` and their writes from the thread's
    /// index, durably (one record); returns how many existed.
    #[pyo3(signature = (thread_id, checkpoints, durability = "critical"))]
    fn delete_checkpoints(
        &self,
        py: Python<'_>,
        thread_id: &str,
        checkpoints: Vec<(String, String)>,
        durability: &str,
    ) -> PyResult<usize> {
        let class = persistent(durability)?;
        let engine = self.shared.engine()?;
        py.detach(|| -> CoreResult<usize> {
            let Some(thread) = SaverCore::thread(&engine, thread_id)? else {
                return Ok(0);
            };
            let existing: Vec<(&[u8], &[u8])> = checkpoints
                .iter()
                .map(|(ns, cid)| (ns.as_bytes(), cid.as_bytes()))
                .filter(|(ns, cid)| thread.view.contains_key(&record::key_checkpoint(ns, cid)))
                .collect();
            append_delete(&engine, &thread, existing, class)
        })
        .map_err(|e| e.into_py(py))
    }

    /// Keeps only the newest checkpoint of each namespace of the thread (and its writes);
    /// returns how many were removed.
    #[pyo3(signature = (thread_id, durability = "critical"))]
    fn prune_keep_latest(
        &self,
        py: Python<'_>,
        thread_id: &str,
        durability: &str,
    ) -> PyResult<usize> {
        let class = persistent(durability)?;
        let engine = self.shared.engine()?;
        py.detach(|| -> CoreResult<usize> {
            let Some(thread) = SaverCore::thread(&engine, thread_id)? else {
                return Ok(0);
            };
            let mut stale: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for (key, latest) in thread.view.prefix(PREFIX_LATEST) {
                let ns = &key[PREFIX_LATEST.len()..];
                let prefix = record::prefix_checkpoints(ns);
                for (ckey, _) in thread.view.prefix(&prefix) {
                    let cid = &ckey[prefix.len()..];
                    if cid != latest {
                        stale.push((ns.to_vec(), cid.to_vec()));
                    }
                }
            }
            let stale_refs = stale
                .iter()
                .map(|(n, c)| (n.as_slice(), c.as_slice()))
                .collect();
            append_delete(&engine, &thread, stale_refs, class)
        })
        .map_err(|e| e.into_py(py))
    }

    /// Removes every checkpoint (and its writes) whose run id is in `run_ids`, in every
    /// thread, one record per thread touched; returns how many were removed.
    #[pyo3(signature = (run_ids, durability = "critical"))]
    fn delete_for_runs(
        &self,
        py: Python<'_>,
        run_ids: Vec<String>,
        durability: &str,
    ) -> PyResult<usize> {
        let class = persistent(durability)?;
        for run_id in &run_ids {
            no_nul(run_id, "a run id")?;
        }
        let threads = self.threads(py)?;
        let engine = self.shared.engine()?;
        py.detach(|| -> CoreResult<usize> {
            let mut removed = 0;
            for thread_id in &threads {
                let Some(thread) = SaverCore::thread(&engine, thread_id)? else {
                    continue;
                };
                let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                for run_id in &run_ids {
                    let prefix = record::prefix_run(run_id.as_bytes());
                    for (key, _) in thread.view.prefix(&prefix) {
                        if let Some((ns, cid)) = record::split_run_key(key, prefix.len()) {
                            found.push((ns.to_vec(), cid.to_vec()));
                        }
                    }
                }
                let refs = found
                    .iter()
                    .map(|(n, c)| (n.as_slice(), c.as_slice()))
                    .collect();
                removed += append_delete(&engine, &thread, refs, class)?;
            }
            Ok(removed)
        })
        .map_err(|e| e.into_py(py))
    }

    /// How the thread's channel values are stored, counted over all its put records:
    /// `{"empty": n, "raw": n, "zstd": n, "delta": n, "splice": n}`.
    fn value_encodings(
        &self,
        py: Python<'_>,
        thread_id: &str,
    ) -> PyResult<HashMap<&'static str, u64>> {
        let engine = self.shared.engine()?;
        let stream = stream_name(thread_id);
        py.detach(|| -> CoreResult<HashMap<&'static str, u64>> {
            let mut counts: HashMap<&'static str, u64> =
                ["empty", "raw", "zstd", "delta", "splice"]
                    .into_iter()
                    .map(|k| (k, 0))
                    .collect();
            if engine.head(&stream).is_none() {
                return Ok(counts);
            }
            for event in engine.read(&stream, ..)? {
                let event = event?;
                let Ok(Record::Put(p)) = record::decode(&event.payload) else {
                    continue;
                };
                for (_, _, stored) in &p.blobs {
                    let kind = match stored {
                        Stored::Empty => "empty",
                        Stored::Raw { .. } => "raw",
                        Stored::Zstd { .. } => "zstd",
                        Stored::Delta { .. } => "delta",
                        Stored::Splice { .. } => "splice",
                    };
                    *counts.entry(kind).or_default() += 1;
                }
            }
            Ok(counts)
        })
        .map_err(|e| e.into_py(py))
    }

    /// Bytes of decoded values held in memory, and how many.
    fn cache_stats(&self) -> (usize, usize) {
        self.cache().stats()
    }
}

/// `data` (of serializer type `ty`) as a record stores it, given how it was encoded whole.
fn as_stored<'a>(ty: &'a [u8], data: &'a [u8], encoded: &'a Encoded) -> Stored<'a> {
    match encoded {
        Encoded::Zstd(frame) => Stored::Zstd {
            ty,
            raw_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            frame,
        },
        _ => Stored::Raw { ty, data },
    }
}

fn data_too_long(blobs: &[(String, String, Option<String>, Vec<u8>)]) -> bool {
    blobs
        .iter()
        .any(|(_, _, _, d)| u32::try_from(d.len()).is_err())
}

/// Appends one deletion record for `checkpoints` (nothing when empty); returns their count.
fn append_delete(
    engine: &Engine,
    thread: &Thread,
    checkpoints: Vec<(&[u8], &[u8])>,
    class: Durability,
) -> CoreResult<usize> {
    if checkpoints.is_empty() {
        return Ok(0);
    }
    let count = checkpoints.len();
    let payload = record::encode(&Record::Delete(Delete { checkpoints }))
        .map_err(|_| CoreError::Corrupt("a deletion record of 4 GiB or more".into()))?;
    engine.append(&thread.name, &[payload], class, None)?;
    Ok(count)
}
