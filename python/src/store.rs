//! `Store`: the engine's API for Python. Bytes in, bytes out; every call that may touch the disk
//! or wait for a sync runs with the GIL released (`Python::detach`), so other Python threads
//! keep running and concurrent critical appends from several threads share one `fdatasync`.
//!
//! A `Store` holds the engine behind a lock that `close` empties: a call on a closed store
//! raises `StoreClosedError`. Calls in flight when `close` runs finish first (each holds its
//! own reference to the engine); the engine shuts down when the last of them returns.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use helios::{BranchId, BranchMemoryPolicy, Durability, Engine, LevelPolicy, Options, Version};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySequence, PyTuple};

use crate::errors::{self, StoreClosedError};
use crate::reads;
use crate::record::{SAVER_STREAM_PREFIX, SaverMachine};

/// The engine of an open store, shared by the `Store` and every saver core made from it.
#[derive(Debug)]
pub(crate) struct Shared {
    /// `None` once closed.
    engine: RwLock<Option<Arc<Engine>>>,
    /// The store's directory, for messages.
    pub(crate) path: PathBuf,
}

impl Shared {
    /// The engine, or `StoreClosedError`.
    pub(crate) fn engine(&self) -> PyResult<Arc<Engine>> {
        self.engine
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                StoreClosedError::new_err(format!("the store at {} is closed", self.path.display()))
            })
    }

    /// Runs `f` on the engine with the GIL released; engine errors become Python exceptions.
    pub(crate) fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Engine) -> helios::Result<T> + Send,
    ) -> PyResult<T> {
        let engine = self.engine()?;
        py.detach(move || f(&engine))
            .map_err(|e| errors::to_py(py, e))
    }

    /// Empties the handle and shuts the engine down if no call holds it any more.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let engine = self
            .engine
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(engine) = engine else {
            return Ok(());
        };
        py.detach(move || match Arc::try_unwrap(engine) {
            Ok(engine) => engine.close(),
            // A call in flight (or a saver's) still holds the engine: it shuts down when the
            // last holder drops it, syncing what was buffered.
            Err(_shared) => Ok(()),
        })
        .map_err(|e| errors::to_py(py, e))
    }

    fn is_closed(&self) -> bool {
        self.engine
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }
}

/// The log's default `sync_poll_window_us`, for the Python signature.
const DEFAULT_SYNC_POLL_WINDOW_US: u64 = helios::DEFAULT_SYNC_POLL_WINDOW_US;

/// Parses a durability class name.
pub(crate) fn durability(name: &str) -> PyResult<Durability> {
    match name {
        "critical" => Ok(Durability::Critical),
        "normal" => Ok(Durability::Normal),
        "speculative" => Ok(Durability::Speculative),
        other => Err(PyValueError::new_err(format!(
            "durability must be 'critical', 'normal' or 'speculative', not {other:?}"
        ))),
    }
}

fn durability_name(durability: Durability) -> &'static str {
    match durability {
        Durability::Critical => "critical",
        Durability::Normal => "normal",
        Durability::Speculative => "speculative",
    }
}

/// Copies a sequence of `bytes` into owned buffers, naming the first item that is not bytes.
pub(crate) fn byte_items(events: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<Vec<u8>>> {
    if events.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a sequence of bytes objects, not a single bytes object"
        )));
    }
    let sequence = events.cast::<PySequence>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a sequence of bytes objects, not {}",
            type_name(events)
        ))
    })?;
    let len = sequence.len()?;
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        let item = sequence.get_item(i)?;
        let bytes = item.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{what}[{i}] must be bytes, not {}",
                type_name(&item)
            ))
        })?;
        out.push(bytes.as_bytes().to_vec());
    }
    Ok(out)
}

/// A `bytes` argument, with a clear error for anything else (a `str` especially).
pub(crate) fn bytes_arg<'a>(value: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a [u8]> {
    value.cast::<PyBytes>().map(|b| b.as_bytes()).map_err(|_| {
        PyTypeError::new_err(format!("{what} must be bytes, not {}", type_name(value)))
    })
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "an unknown type".to_owned(), |n| n.to_string())
}

/// What an append or a promotion did.
#[pyclass(frozen, module = "helios_store", get_all)]
#[derive(Clone, Copy, Debug)]
pub struct Appended {
    /// Version of the first event appended.
    first: u64,
    /// Version of the last event appended: the stream's new head.
    last: u64,
    /// Log sequence number of the last record written.
    lsn: u64,
}

#[pymethods]
impl Appended {
    fn __repr__(&self) -> String {
        format!(
            "Appended(first={}, last={}, lsn={})",
            self.first, self.last, self.lsn
        )
    }
}

impl From<helios::Appended> for Appended {
    fn from(a: helios::Appended) -> Appended {
        Appended {
            first: a.first.0,
            last: a.last.0,
            lsn: a.lsn.0,
        }
    }
}

/// An event read back: its stream id, version, log position, time, class and payload.
#[pyclass(frozen, module = "helios_store", get_all)]
#[derive(Debug)]
pub struct Event {
    /// The stream's numeric id.
    stream_id: u64,
    /// Its version in the stream (1-based).
    version: u64,
    /// Its position in the global log.
    lsn: u64,
    /// Microseconds since the Unix epoch when it was appended.
    timestamp_us: u64,
    /// `"critical"` or `"normal"`.
    durability: &'static str,
    /// Its bytes.
    payload: Py<PyBytes>,
}

#[pymethods]
impl Event {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Event(stream_id={}, version={}, lsn={}, durability={:?}, payload={} bytes)",
            self.stream_id,
            self.version,
            self.lsn,
            self.durability,
            self.payload.bind(py).as_bytes().len()
        )
    }
}

pub(crate) fn event_to_py(py: Python<'_>, e: helios::Event) -> Event {
    Event {
        stream_id: e.stream.0,
        version: e.version.0,
        lsn: e.lsn.0,
        timestamp_us: e.timestamp_us,
        durability: durability_name(e.durability),
        payload: PyBytes::new(py, &e.payload).unbind(),
    }
}

/// A stream's name, id and head.
#[pyclass(frozen, module = "helios_store", get_all)]
#[derive(Debug)]
pub struct StreamInfo {
    /// Its name.
    pub(crate) name: String,
    /// Its numeric id.
    pub(crate) id: u64,
    /// Its head version (0 when it has no event).
    pub(crate) head: u64,
}

#[pymethods]
impl StreamInfo {
    fn __repr__(&self) -> String {
        format!(
            "StreamInfo(name={:?}, id={}, head={})",
            self.name, self.id, self.head
        )
    }
}

/// The state of a stream (or branch) at one version: an ordered map of bytes to bytes, read
/// from memory-mapped checkpoints and a short replay. Immutable and cheap to keep.
#[pyclass(frozen, module = "helios_store")]
pub struct View {
    pub(crate) view: helios::View,
    pub(crate) version: u64,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn pairs<'py>(
    py: Python<'py>,
    entries: impl Iterator<Item = (&'py [u8], &'py [u8])>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (k, v) in entries {
        list.append(PyTuple::new(
            py,
            [PyBytes::new(py, k), PyBytes::new(py, v)],
        )?)?;
    }
    Ok(list)
}

#[pymethods]
impl View {
    /// The version this view shows.
    #[getter]
    fn version(&self) -> u64 {
        self.version
    }

    /// Events replayed on top of the checkpoint layers to build this view.
    #[getter]
    fn events_replayed(&self) -> u64 {
        self.view.report().events_replayed
    }

    /// The checkpoint layers read, newest first, as `(level, version)` pairs.
    #[getter]
    fn layers(&self) -> Vec<(u32, u64)> {
        self.view
            .report()
            .layers
            .iter()
            .map(|l| (l.info.level, l.info.version))
            .collect()
    }

    /// The value of `key`, or `None`.
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = bytes_arg(key, "key")?;
        Ok(self.view.get(key).map(|v| PyBytes::new(py, v)))
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.view.contains_key(bytes_arg(key, "key")?))
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let k = bytes_arg(key, "key")?;
        match self.view.get(k) {
            Some(v) => Ok(PyBytes::new(py, v)),
            None => Err(pyo3::exceptions::PyKeyError::new_err(key.clone().unbind())),
        }
    }

    /// Every `(key, value)` pair, in key order.
    fn items<'py>(&'py self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        pairs(py, self.view.iter())
    }

    /// The pairs whose keys start with `prefix`, in key order.
    fn prefix<'py>(
        &'py self,
        py: Python<'py>,
        prefix: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let prefix = bytes_arg(prefix, "prefix")?.to_vec();
        pairs(py, self.view.prefix(&prefix))
    }

    /// The pairs with `start <= key < end` (either bound may be `None`), in key order.
    #[pyo3(signature = (start=None, end=None))]
    fn range<'py>(
        &'py self,
        py: Python<'py>,
        start: Option<&Bound<'py, PyAny>>,
        end: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        use std::ops::Bound as B;
        let start = start.map(|s| bytes_arg(s, "start")).transpose()?;
        let end = end.map(|e| bytes_arg(e, "end")).transpose()?;
        let start = start.map_or(B::Unbounded, B::Included);
        let end = end.map_or(B::Unbounded, B::Excluded);
        pairs(py, self.view.range(start, end))
    }

    /// The whole state as a dict.
    pub(crate) fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (k, v) in self.view.iter() {
            dict.set_item(PyBytes::new(py, k), PyBytes::new(py, v))?;
        }
        Ok(dict)
    }

    fn __len__(&self) -> usize {
        self.view.iter().count()
    }

    fn __repr__(&self) -> String {
        format!(
            "View(version={}, events_replayed={})",
            self.version,
            self.view.report().events_replayed
        )
    }
}

/// An open Helios store: streams of events, state at any version, speculative branches.
///
/// Open one with `Store(path, **options)`; use it as a context manager, or call `close()`.
/// One process may hold a store for writing at a time (`LockedError` otherwise).
///
/// Options (keyword arguments; `None` keeps the engine's default): `create_if_missing`
/// (True), `background_threads` (True), `metrics` (True), `segment_size_bytes` (64 MiB: the
/// largest a log segment grows to; segments start at 128 KiB and double, so a small store stays
/// small), `sync_window_ms` (10) and
/// `sync_window_bytes` (1 MiB) for normal appends, `checkpoint_fanout` (10) and
/// `checkpoint_levels` (3), `branch_memory_bytes` (256 MiB), `branch_memory_policy`
/// (`"evict"` or `"refuse"`), `sync_poll_window_us` (60: how long a group-commit
/// follower spins before it parks).
#[pyclass(frozen, module = "helios_store")]
#[derive(Debug)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
}

/// Builds the engine's options from the keyword arguments `Store` takes.
#[expect(
    clippy::too_many_arguments,
    reason = "one parameter per documented option, as Python passes them"
)]
fn options(
    create_if_missing: bool,
    background_threads: bool,
    metrics: bool,
    segment_size_bytes: Option<u64>,
    sync_poll_window_us: u64,
    sync_window_ms: Option<u64>,
    sync_window_bytes: Option<u64>,
    checkpoint_fanout: Option<u64>,
    checkpoint_levels: Option<u32>,
    branch_memory_bytes: Option<u64>,
    branch_memory_policy: Option<&str>,
) -> PyResult<Options> {
    let mut o = Options {
        create_if_missing,
        background_threads,
        metrics,
        ..Options::default()
    };
    if let Some(v) = segment_size_bytes {
        o.log.segment_size_bytes = v;
    }
    o.log.sync_poll_window_us = sync_poll_window_us;
    if let Some(v) = sync_window_ms {
        o.write_behind.sync_window_ms = v;
    }
    if let Some(v) = sync_window_bytes {
        o.write_behind.sync_window_bytes = v;
    }
    if checkpoint_fanout.is_some() || checkpoint_levels.is_some() {
        let fanout = checkpoint_fanout.unwrap_or(o.checkpoints.policy.fanout());
        let levels = checkpoint_levels.unwrap_or(o.checkpoints.policy.levels());
        o.checkpoints.policy = LevelPolicy::new(fanout, levels).map_err(|e| {
            errors::InvalidOptionsError::new_err(format!(
                "invalid option checkpoint_fanout/checkpoint_levels: {e}"
            ))
        })?;
    }
    if let Some(v) = branch_memory_bytes {
        o.branches.memory_bytes = v;
    }
    if let Some(policy) = branch_memory_policy {
        o.branches.memory_policy = match policy {
            "evict" => BranchMemoryPolicy::EvictLeastRecentlyUsed,
            "refuse" => BranchMemoryPolicy::Refuse,
            other => {
                return Err(PyValueError::new_err(format!(
                    "branch_memory_policy must be 'evict' or 'refuse', not {other:?}"
                )));
            }
        };
    }
    Ok(o)
}

impl Store {
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Engine) -> helios::Result<T> + Send,
    ) -> PyResult<T> {
        self.shared.run(py, f)
    }
}

#[pymethods]
impl Store {
    /// Opens (or creates) the store in directory `path`.
    #[new]
    #[pyo3(signature = (
        path,
        *,
        create_if_missing = true,
        background_threads = true,
        metrics = true,
        segment_size_bytes = None,
        sync_poll_window_us = DEFAULT_SYNC_POLL_WINDOW_US,
        sync_window_ms = None,
        sync_window_bytes = None,
        checkpoint_fanout = None,
        checkpoint_levels = None,
        branch_memory_bytes = None,
        branch_memory_policy = None,
    ))]
    #[expect(
        clippy::too_many_arguments,
        reason = "one keyword argument per documented option"
    )]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        create_if_missing: bool,
        background_threads: bool,
        metrics: bool,
        segment_size_bytes: Option<u64>,
        sync_poll_window_us: u64,
        sync_window_ms: Option<u64>,
        sync_window_bytes: Option<u64>,
        checkpoint_fanout: Option<u64>,
        checkpoint_levels: Option<u32>,
        branch_memory_bytes: Option<u64>,
        branch_memory_policy: Option<&str>,
    ) -> PyResult<Store> {
        let options = options(
            create_if_missing,
            background_threads,
            metrics,
            segment_size_bytes,
            sync_poll_window_us,
            sync_window_ms,
            sync_window_bytes,
            checkpoint_fanout,
            checkpoint_levels,
            branch_memory_bytes,
            branch_memory_policy,
        )?;
        let dir = path.clone();
        let engine = py
            .detach(move || {
                Engine::builder(&dir)
                    .options(options)
                    .stream_machine(SAVER_STREAM_PREFIX, SaverMachine)
                    .open()
            })
            .map_err(|e| errors::to_py(py, e))?;
        Ok(Store {
            shared: Arc::new(Shared {
                engine: RwLock::new(Some(Arc::new(engine))),
                path,
            }),
        })
    }

    /// The store's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.shared.path.clone()
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Syncs what is buffered and releases the store (and its lock). Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.close(py)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.shared.is_closed() {
            "closed"
        } else {
            "open"
        };
        format!(
            "Store({:?}, {state})",
            self.shared.path.display().to_string()
        )
    }

    /// Appends `events` (a sequence of bytes) to `stream` atomically, creating the stream on its
    /// first append. `durability` is `"critical"` (returns once on stable storage; concurrent
    /// critical appends share one sync) or `"normal"` (returns after a buffered write, synced
    /// within the sync window). With `expected`, the append happens only if the stream's head is
    /// that version (0: the stream must be new), else `ConflictError`.
    #[pyo3(signature = (stream, events, durability = "critical", expected = None))]
    fn append(
        &self,
        py: Python<'_>,
        stream: &str,
        events: &Bound<'_, PyAny>,
        durability: &str,
        expected: Option<u64>,
    ) -> PyResult<Appended> {
        let class = self::durability(durability)?;
        let events = byte_items(events, "events")?;
        let stream = stream.to_owned();
        self.run(py, move |e| {
            e.append(&stream, &events, class, expected.map(Version))
        })
        .map(Appended::from)
    }

    /// Makes every normal append so far durable; returns the last durable log position.
    fn sync(&self, py: Python<'_>) -> PyResult<u64> {
        self.run(py, |e| e.sync()).map(|lsn| lsn.0)
    }

    /// The head version of `stream`, or `None` if it does not exist.
    fn head(&self, stream: &str) -> PyResult<Option<u64>> {
        Ok(self.shared.engine()?.head(stream).map(|v| v.0))
    }

    /// Every stream, by id.
    fn streams(&self, py: Python<'_>) -> PyResult<Vec<StreamInfo>> {
        self.run(py, |e| Ok(reads::streams(e)))
    }

    /// The events of `stream` with versions `start..=end` (`end` defaults to the head).
    #[pyo3(signature = (stream, start = 1, end = None))]
    fn read(
        &self,
        py: Python<'_>,
        stream: &str,
        start: u64,
        end: Option<u64>,
    ) -> PyResult<Vec<Event>> {
        let events = self.run(py, |e| reads::events(e, stream, start, end))?;
        Ok(events.into_iter().map(|e| event_to_py(py, e)).collect())
    }

    /// Every event of every stream in log order from log position `lsn`, at most `limit`.
    #[pyo3(signature = (lsn = 0, limit = None))]
    fn events_from(&self, py: Python<'_>, lsn: u64, limit: Option<usize>) -> PyResult<Vec<Event>> {
        let events = self.run(py, move |e| {
            e.events_from(helios::Lsn(lsn))?
                .take(limit.unwrap_or(usize::MAX))
                .collect::<helios::Result<Vec<_>>>()
        })?;
        Ok(events.into_iter().map(|e| event_to_py(py, e)).collect())
    }

    /// The state of `stream` at `version` (default: its head).
    #[pyo3(signature = (stream, version = None))]
    fn view(&self, py: Python<'_>, stream: &str, version: Option<u64>) -> PyResult<View> {
        self.run(py, |e| reads::view(e, stream, version))
    }

    /// The value of `key` in `stream`'s state at `version` (default: its head), or `None`.
    #[pyo3(signature = (stream, key, version = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        stream: &str,
        key: &Bound<'py, PyAny>,
        version: Option<u64>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        // Copied: the GIL is released while it is read, and a bytearray could change meanwhile.
        let key = bytes_arg(key, "key")?.to_vec();
        let value = self.run(py, |e| reads::value(e, stream, &key, version))?;
        Ok(value.map(|v| PyBytes::new(py, &v)))
    }

    /// The whole state of `stream` at `version` (default: its head), as a dict.
    #[pyo3(signature = (stream, version = None))]
    fn state<'py>(
        &self,
        py: Python<'py>,
        stream: &str,
        version: Option<u64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.view(py, stream, version)?.to_dict(py)
    }

    /// Durably creates `target`, whose versions `1..=at` are `source`'s (shared, not copied);
    /// appends to either stream afterwards do not show in the other. `target` must not exist
    /// (`StreamExistsError`).
    fn fork_stream(&self, py: Python<'_>, source: &str, at: u64, target: &str) -> PyResult<()> {
        let (source, target) = (source.to_owned(), target.to_owned());
        self.run(py, move |e| e.fork_stream(&source, Version(at), &target))
            .map(|_| ())
    }

    /// Durably deletes `stream`: from the return on (and after a crash) its name is unknown and
    /// free for a new stream. Streams forked from it keep their shared history.
    fn delete_stream(&self, py: Python<'_>, stream: &str) -> PyResult<()> {
        let stream = stream.to_owned();
        self.run(py, move |e| e.delete_stream(&stream))
    }

    /// Starts a speculative branch of `stream` at version `at` of its durable history; returns
    /// the branch id.
    fn fork(&self, py: Python<'_>, stream: &str, at: u64) -> PyResult<u64> {
        let stream = stream.to_owned();
        self.run(py, move |e| e.branches().fork(&stream, Version(at)))
            .map(|b| b.0)
    }

    /// Starts a branch at version `at` of branch `parent`.
    fn fork_branch(&self, py: Python<'_>, parent: u64, at: u64) -> PyResult<u64> {
        self.run(py, move |e| {
            e.branches().fork_branch(BranchId(parent), Version(at))
        })
        .map(|b| b.0)
    }

    /// Appends speculative events (in memory only) to `branch`; returns `(first, last)`. With
    /// `expected`, only if the branch's head is that version.
    #[pyo3(signature = (branch, events, expected = None))]
    fn append_branch(
        &self,
        py: Python<'_>,
        branch: u64,
        events: &Bound<'_, PyAny>,
        expected: Option<u64>,
    ) -> PyResult<(u64, u64)> {
        let events = byte_items(events, "events")?;
        self.run(py, move |e| {
            e.branches()
                .append(BranchId(branch), &events, expected.map(Version))
        })
        .map(|a| (a.first.0, a.last.0))
    }

    /// The state of `branch` at `version` (default: the branch's head).
    #[pyo3(signature = (branch, version = None))]
    fn view_branch(&self, py: Python<'_>, branch: u64, version: Option<u64>) -> PyResult<View> {
        self.run(py, move |e| {
            let branches = e.branches();
            let version = match version {
                Some(v) => v,
                None => branches.info(BranchId(branch))?.head.0,
            };
            Ok(View {
                view: branches.view(BranchId(branch), Version(version))?,
                version,
            })
        })
    }

    /// Makes `branch`'s events up to `upto` (default: its head) durable, as one atomic append
    /// of class `durability`. The branch must descend from the stream's head, else
    /// `PromotionConflictError`.
    #[pyo3(signature = (branch, upto = None, durability = "critical"))]
    fn promote(
        &self,
        py: Python<'_>,
        branch: u64,
        upto: Option<u64>,
        durability: &str,
    ) -> PyResult<Appended> {
        let class = self::durability(durability)?;
        self.run(py, move |e| {
            let branches = e.branches();
            let upto = match upto {
                Some(v) => v,
                None => branches.info(BranchId(branch))?.head.0,
            };
            branches.promote(BranchId(branch), Version(upto), class)
        })
        .map(Appended::from)
    }

    /// Discards `branch` and frees its memory.
    fn discard(&self, py: Python<'_>, branch: u64) -> PyResult<()> {
        self.run(py, move |e| e.branches().discard(BranchId(branch)))
    }

    /// Discards every branch of `stream` that no longer descends from its head; returns how
    /// many.
    fn prune(&self, py: Python<'_>, stream: &str) -> PyResult<usize> {
        let stream = stream.to_owned();
        self.run(py, move |e| e.branches().prune(&stream))
    }

    /// Pins (or unpins) `branch`: eviction never takes a pinned branch.
    #[pyo3(signature = (branch, pinned = true))]
    fn pin(&self, py: Python<'_>, branch: u64, pinned: bool) -> PyResult<()> {
        self.run(py, move |e| e.branches().pin(BranchId(branch), pinned))
    }

    /// A branch's stream, parent, fork point, head, memory and pin, as a dict.
    fn branch_info<'py>(&self, py: Python<'py>, branch: u64) -> PyResult<Bound<'py, PyDict>> {
        let info = self.run(py, move |e| e.branches().info(BranchId(branch)))?;
        let d = PyDict::new(py);
        d.set_item("id", info.id.0)?;
        d.set_item("stream", info.stream)?;
        d.set_item("parent", info.parent.map(|p| p.0))?;
        d.set_item("fork", info.fork.0)?;
        d.set_item("head", info.head.0)?;
        d.set_item("bytes", info.bytes)?;
        d.set_item("pinned", info.pinned)?;
        Ok(d)
    }

    /// The live branches of `stream`, by id.
    fn branches(&self, py: Python<'_>, stream: &str) -> PyResult<Vec<u64>> {
        let stream = stream.to_owned();
        self.run(py, move |e| {
            Ok(e.branches()
                .of_stream(&stream)
                .into_iter()
                .map(|b| b.0)
                .collect())
        })
    }

    /// Branch memory and counters: live branches and events, bytes, budget, evictions,
    /// promotions.
    fn branch_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.run(py, |e| Ok(e.branches().stats()))?;
        let d = PyDict::new(py);
        d.set_item("live_branches", s.live_branches)?;
        d.set_item("live_events", s.live_events)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("budget_bytes", s.budget_bytes)?;
        d.set_item("evictions", s.evictions)?;
        d.set_item("promotions", s.promotions)?;
        Ok(d)
    }

    /// Builds every checkpoint that is due now; returns the checkpoint statistics.
    fn sync_checkpoints<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.run(py, |e| e.checkpoints().sync())?;
        checkpoint_stats(py, &stats)
    }

    /// Checkpoint files and bytes, in total and per level.
    fn checkpoint_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.run(py, |e| Ok(e.checkpoints().stats()))?;
        checkpoint_stats(py, &stats)
    }

    /// Latency and replay histograms, by metric name: `count`, `p50`, `p95`, `p99`, `p999`,
    /// `max`, `mean` and `unit` (`"ns"` or `"events"`).
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let snapshot = self.run(py, |e| Ok(e.inspect().metrics()))?;
        let out = PyDict::new(py);
        for m in &snapshot.metrics {
            let d = PyDict::new(py);
            d.set_item("unit", m.metric.unit())?;
            d.set_item("count", m.count)?;
            d.set_item("p50", m.p50)?;
            d.set_item("p95", m.p95)?;
            d.set_item("p99", m.p99)?;
            d.set_item("p999", m.p999)?;
            d.set_item("max", m.max)?;
            d.set_item("mean", m.mean)?;
            out.set_item(m.metric.name(), d)?;
        }
        Ok(out)
    }

    /// The metrics in the Prometheus text exposition format.
    fn metrics_prometheus(&self, py: Python<'_>) -> PyResult<String> {
        self.run(py, |e| Ok(e.inspect().metrics().to_prometheus()))
    }

    /// Clears every histogram.
    fn reset_metrics(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |e| {
            e.inspect().reset_metrics();
            Ok(())
        })
    }
}

fn checkpoint_stats<'py>(
    py: Python<'py>,
    stats: &helios::CheckpointStats,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("count", stats.count)?;
    d.set_item("bytes", stats.bytes)?;
    d.set_item("packs", stats.packs)?;
    d.set_item("pack_bytes", stats.pack_bytes)?;
    d.set_item("written", stats.written)?;
    d.set_item("rebuilt", stats.rebuilt)?;
    d.set_item("damaged", stats.damaged)?;
    let levels = PyList::empty(py);
    for level in &stats.by_level {
        levels.append((level.count, level.bytes))?;
    }
    d.set_item("by_level", levels)?;
    Ok(d)
}
