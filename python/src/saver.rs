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
//!
//! This file holds the Python class: argument checks, the GIL released around the work, and the
//! results as Python objects. The work on bytes is in the `saver_*` modules: `saver_thread` (a
//! thread's stream and its records), `saver_decode` (a stored value, decoded and cached in
//! `saver_cache`), `saver_read` (checkpoints, their writes and listings), `saver_write` (the
//! encoding of puts and writes), `saver_delete` (deletions), and `saver_error` (their errors).

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use helios::{Durability, Version};
use lru::LruCache;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::arguments::durability;
use crate::codec;
use crate::engine_handle::Shared;
use crate::record::{self, Put, Record, SAVER_STREAM_PREFIX};
use crate::saver_cache::{CacheKey, Value, ValueBytes, ValueCache};
use crate::saver_decode::Found;
use crate::saver_delete;
use crate::saver_error::{CoreError, CoreResult};
use crate::saver_read::{self, Loaded, text};
use crate::saver_thread::{Records, Thread, stream_name};
use crate::saver_write::{NewValue, NewWrite, as_stored, data_too_long, stored_values};
use crate::store::Store;

/// Default bytes of decoded values the saver keeps in memory.
pub(crate) const DEFAULT_CACHE_BYTES: usize = 64 << 20;
/// Default number of deltas against one whole value of a channel before the next value is
/// stored whole again.
pub(crate) const DEFAULT_DELTAS_PER_FULL: u32 = 32;
/// Default zstd level: zstd's own default, fast for both compression and decompression.
pub(crate) const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// How many threads' views at their heads are kept. A view holds the few replayed events'
/// entries and shares its checkpoint layers with the engine; a kept view also keeps the layers
/// it reads alive (a compacted pack stays mapped until its views are gone), so few are kept.
const THREAD_VIEWS: NonZeroUsize = NonZeroUsize::new(64).expect("64 is not zero");

/// The storage core of `HeliosSaver`. Made from an open `Store`; shares its engine (closing
/// the store closes the saver).
#[pyclass(frozen, module = "helios_store")]
pub struct SaverCore {
    shared: Arc<Shared>,
    cache: Mutex<ValueCache>,
    /// The threads read most recently, each with its view at the head it was read at.
    thread_views: Mutex<LruCache<String, Arc<Thread>>>,
    /// The zstd level values are compressed at.
    pub(crate) zstd_level: i32,
    /// Deltas against one whole value of a channel before the next value is stored whole.
    pub(crate) deltas_per_full: u32,
}

impl std::fmt::Debug for SaverCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaverCore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
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
    /// The cache of decoded values, locked (a panic while it was held does not poison it).
    pub(crate) fn cache(&self) -> std::sync::MutexGuard<'_, ValueCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The threads whose views are kept.
    pub(crate) fn thread_views(&self) -> std::sync::MutexGuard<'_, LruCache<String, Arc<Thread>>> {
        self.thread_views
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A value's bytes as a Python `bytes` object: the one the cache holds (no copy), or a new
    /// one. A value the cache held as Rust bytes is then held as that object, so that its next
    /// get copies nothing; a splice is written straight into it, and stays cached as its parts.
    fn py_bytes<'py>(
        &self,
        py: Python<'py>,
        key: CacheKey,
        found: Found,
    ) -> PyResult<Bound<'py, PyBytes>> {
        match found {
            Found::Ready(value) => match &value.data {
                ValueBytes::Python(bytes) => Ok(bytes.clone_ref(py).into_pyobject(py)?),
                ValueBytes::Rust(data) => {
                    let bytes = PyBytes::new(py, data);
                    let held = Value {
                        ty: value.ty.clone(),
                        data: ValueBytes::Python(PyBackedBytes::from(bytes.clone())),
                    };
                    self.cache().replace(key, Arc::new(held));
                    Ok(bytes)
                }
            },
            Found::Splice(splice) => PyBytes::new_with(py, splice.len(), |out| {
                splice.write_into(out);
                Ok(())
            }),
        }
    }
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
            thread_views: Mutex::new(LruCache::new(THREAD_VIEWS)),
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
        checkpoint: (String, PyBackedBytes),
        metadata: (String, PyBackedBytes),
        versions: Vec<(String, String)>,
        blobs: Vec<NewValue>,
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
        for (channel, version, _, _) in &blobs {
            no_nul(channel, "a channel name")?;
            no_nul(version, "a channel version")?;
        }
        let engine = self.shared.engine()?;
        let (thread_id, ns, cid) = (
            thread_id.to_owned(),
            checkpoint_ns.to_owned(),
            checkpoint_id.to_owned(),
        );
        let (parent_id, run_id) = (parent_id.map(str::to_owned), run_id.map(str::to_owned));
        py.detach(|| -> CoreResult<()> {
            let thread = self.thread(&engine, &thread_id)?;
            // Encode each new value, against the channel's newest whole value where that pays.
            let encoded = self.encode_values(&engine, thread.as_deref(), &ns, &blobs)?;
            let stored_blobs = stored_values(&blobs, &encoded);
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
            let events = [payload];
            let appended = engine.append(&stream_name(&thread_id), &events, class, None)?;
            if let Some(thread) = &thread {
                self.thread_appended(thread, &appended, &events[0]);
            }
            self.cache_new_values(&appended, blobs, &encoded, [checkpoint, metadata]);
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
        let writes: Vec<NewWrite> = writes
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
            let thread = self.thread(&engine, &thread_id)?;
            // Regular writes already stored for this task and index would be ignored by readers;
            // leaving them out of the record saves their bytes in the log.
            let present: HashSet<i64> = match &thread {
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
            let kept: Vec<&NewWrite> = writes
                .iter()
                .filter(|(idx, _, _, _)| *idx < 0 || !present.contains(idx))
                .collect();
            if kept.is_empty() {
                return Ok(());
            }
            let events = [self.writes_payload(&ns, &cid, &task_id, &task_path, &kept)?];
            let appended = engine.append(&stream_name(&thread_id), &events, class, None)?;
            if let Some(thread) = &thread {
                self.thread_appended(thread, &appended, &events[0]);
            }
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
                let Some(thread) = self.thread(&engine, thread_id)? else {
                    return Ok(None);
                };
                self.load_checkpoint(&engine, &thread, checkpoint_ns, checkpoint_id)
            })
            .map_err(|e| e.into_py(py))?;
        let Some(l) = loaded else {
            return Ok(None);
        };
        let values = PyList::empty(py);
        for (channel, key, value) in l.values {
            let ty = value.ty().map(text);
            values.append((text(&channel), ty, self.py_bytes(py, key, value)?))?;
        }
        let writes = PyList::empty(py);
        for w in l.writes {
            let ty = w.value.ty.as_deref().map(text);
            let bytes = self.py_bytes(py, w.key, Found::Ready(w.value))?;
            writes.append((text(&w.task_id), text(&w.channel), ty, bytes))?;
        }
        let [checkpoint, metadata] = [l.checkpoint, l.metadata].map(|(key, value)| {
            let ty = value.ty.as_deref().map(text).unwrap_or_default();
            self.py_bytes(py, key, Found::Ready(value)).map(|b| (ty, b))
        });
        let tuple = (
            text(&l.checkpoint_id),
            l.parent_id.as_deref().map(text),
            checkpoint?,
            metadata?,
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
            .detach(|| self.metadata_of(&engine, thread_id, checkpoint_ns, checkpoint_id))
            .map_err(|e| e.into_py(py))?;
        found
            .map(|(key, value)| {
                let ty = value.ty.as_deref().map(text).unwrap_or_default();
                Ok((ty, self.py_bytes(py, key, Found::Ready(value))?))
            })
            .transpose()
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
        py.detach(|| -> CoreResult<_> {
            Ok(self
                .thread(&engine, thread_id)?
                .map(|thread| saver_read::list(&thread, checkpoint_ns, before))
                .unwrap_or_default())
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
        py.detach(|| saver_delete::delete_checkpoints(&engine, thread_id, &checkpoints, class))
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
        py.detach(|| saver_delete::prune_keep_latest(&engine, thread_id, class))
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
        py.detach(|| saver_delete::delete_for_runs(&engine, &threads, &run_ids, class))
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
        py.detach(|| saver_read::value_encodings(&engine, &stream))
            .map_err(|e| e.into_py(py))
    }

    /// Bytes of decoded values held in memory, and how many.
    fn cache_stats(&self) -> (usize, usize) {
        self.cache().stats()
    }

    /// Drops every decoded value and kept thread view: what a closed saver still held (a kept
    /// view keeps the checkpoint files it reads mapped).
    fn clear_caches(&self) {
        self.cache().clear();
        self.thread_views().clear();
    }
}
