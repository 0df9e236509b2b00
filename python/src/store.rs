//! `Store`: the engine's API for Python. Bytes in, bytes out; every call that may touch the disk
//! or wait for a sync runs with the GIL released (`Python::detach`), so other Python threads
//! keep running and concurrent critical appends from several threads share one `fdatasync`.
//!
//! A `Store` holds the engine behind a lock that `close` empties: a call on a closed store
//! raises `StoreClosedError`. Calls in flight when `close` runs finish first (each holds its
//! own reference to the engine); the engine shuts down when the last of them returns.
//!
//! This file holds the class and its methods. Beside it: the engine handle it shares with saver
//! cores (`engine_handle.rs`), the options it opens with (`store_options.rs`), the parsing of
//! its arguments (`arguments.rs`), and the classes its methods return (`results.rs`:
//! `Appended`, `Event`, `StreamInfo`; `view.rs`: `View`).

use std::path::PathBuf;
use std::sync::Arc;

use helios::{BranchId, Engine, Version};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::arguments::{self, byte_items, bytes_arg};
use crate::engine_handle::Shared;
use crate::errors;
use crate::reads;
use crate::record::{SAVER_STREAM_PREFIX, SaverMachine};
use crate::results::{Appended, Event, StreamInfo, event_to_py};
use crate::store_options::options;
use crate::view::View;

/// The log's default `sync_poll_window_us`, for the Python signature.
const DEFAULT_SYNC_POLL_WINDOW_US: u64 = helios::DEFAULT_SYNC_POLL_WINDOW_US;

/// An open Helios store: streams of events, state at any version, speculative branches.
///
/// Open one with `Store(path, **options)`; use it as a context manager, or call `close()`.
/// One process may hold a store for writing at a time (`LockedError` otherwise).
///
/// Options (keyword arguments; `None` keeps the engine's default): `create_if_missing`
/// (True), `background_threads` (True), `metrics` (True), `segment_size_bytes` (64 MiB: the
/// largest a log segment grows to; segments start at 128 KiB and double, so a small store stays
/// small), `sync_window_ms` (10) and
/// `sync_window_bytes` (1 MiB) for normal appends, `checkpoint_fanout` (10),
/// `checkpoint_levels` (3) and `checkpoint_first` (the fanout: events between two checkpoints
/// of the finest level, each level above every `checkpoint_fanout` of the one below; a view
/// replays at most `checkpoint_first - 1` events; `helios tune --firsts` sweeps it). The
/// store records its checkpoint policy: with none of the three named, an open uses the
/// recorded one (the defaults for a new store); naming any of them names the whole policy
/// (the others at their defaults), and the checkpoints are rebuilt under it if it differs.
/// `branch_memory_bytes` (256 MiB), `branch_memory_policy`
/// (`"evict"` or `"refuse"`), `sync_poll_window_us` (60: how long a group-commit
/// follower spins before it parks).
#[pyclass(frozen, module = "helios_store")]
#[derive(Debug)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
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
        checkpoint_first = None,
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
        checkpoint_first: Option<u64>,
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
            checkpoint_first,
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
            shared: Arc::new(Shared::new(engine, path)),
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
        let class = arguments::durability(durability)?;
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

    /// The checkpoint level policy this store uses, as `(first, fanout, levels)`: the one
    /// named when it was opened, else the one the store records.
    #[getter]
    fn checkpoint_policy(&self) -> PyResult<(u64, u64, u32)> {
        let policy = self.shared.engine()?.checkpoints().policy();
        Ok((policy.first_interval(), policy.fanout(), policy.levels()))
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
        let class = arguments::durability(durability)?;
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
