//! `Reader`: a read-only handle on a store, for processes other than the writer's (search
//! workers, projections, operators). It takes no lock and writes nothing, reads only what the
//! writer made durable, and catches up with it on `refresh()`; see `helios::ReadOnly`.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use helios::{Options, ReadOnly};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::arguments::bytes_arg;
use crate::errors::{self, StoreClosedError};
use crate::reads;
use crate::record::{SAVER_STREAM_PREFIX, SaverMachine};
use crate::results::{Event, StreamInfo, event_to_py};
use crate::view::View;

/// A read-only handle on the store in `path`, beside its writer (in another process) or
/// without one: `Reader(path)`. It takes no lock and writes nothing, so it never stops a writer
/// from opening the store; beside a live writer it reads only what the writer has made durable,
/// and `refresh()` catches up with it (new events, streams, forks, deletions and checkpoints);
/// with `refresh_ms`, every read refreshes it first when the last refresh is that old. Use it
/// as a context manager, or call `close()`.
#[pyclass(frozen, module = "helios_store")]
#[derive(Debug)]
pub struct Reader {
    handle: RwLock<Option<Arc<ReadOnly>>>,
    path: PathBuf,
}

impl Reader {
    fn handle(&self) -> PyResult<Arc<ReadOnly>> {
        self.handle
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                StoreClosedError::new_err(format!(
                    "the reader of {} is closed",
                    self.path.display()
                ))
            })
    }

    /// Runs `f` on the handle with the GIL released; engine errors become Python exceptions.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&ReadOnly) -> helios::Result<T> + Send,
    ) -> PyResult<T> {
        let handle = self.handle()?;
        py.detach(move || f(&handle))
            .map_err(|e| errors::to_py(py, e))
    }
}

#[pymethods]
impl Reader {
    /// Opens the store in `path` read-only (it must exist: `NotAStoreError` otherwise); with
    /// `refresh_ms`, reads catch up with the writer by themselves at most that often.
    #[new]
    #[pyo3(signature = (path, *, refresh_ms = None))]
    fn new(py: Python<'_>, path: PathBuf, refresh_ms: Option<u64>) -> PyResult<Reader> {
        let dir = path.clone();
        let handle = py
            .detach(move || {
                helios::Engine::builder(&dir)
                    .options(Options::default())
                    .stream_machine(SAVER_STREAM_PREFIX, SaverMachine)
                    .open_read_only()
            })
            .map_err(|e| errors::to_py(py, e))?;
        handle.refresh_every(refresh_ms.map(std::time::Duration::from_millis));
        Ok(Reader {
            handle: RwLock::new(Some(Arc::new(handle))),
            path,
        })
    }

    /// The store's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.handle
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// Releases the handle's maps and files. Idempotent.
    fn close(&self) {
        self.handle
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "Reader({:?}{})",
            self.path,
            if self.closed() { ", closed" } else { "" }
        )
    }

    /// Catches up with the writer: reads what it has made durable since this handle's open or
    /// last refresh. Returns `(from_lsn, to_lsn, events)`.
    fn refresh(&self, py: Python<'_>) -> PyResult<(u64, u64, u64)> {
        let r = self.run(py, ReadOnly::refresh)?;
        Ok((r.from.0, r.to.0, r.events))
    }

    /// Whether a writer holds the store now.
    fn writer_holds_the_store(&self) -> PyResult<bool> {
        Ok(self.handle()?.writer_holds_the_store())
    }

    /// The checkpoint level policy the store's writer recorded (the default for a store
    /// without a record), as `(first, fanout, levels)`: a reader always uses it.
    #[getter]
    fn checkpoint_policy(&self) -> PyResult<(u64, u64, u32)> {
        let policy = self.handle()?.checkpoints().policy();
        Ok((policy.first_interval(), policy.fanout(), policy.levels()))
    }

    /// The head version of `stream`, or `None` if it does not exist.
    fn head(&self, stream: &str) -> PyResult<Option<u64>> {
        Ok(self.handle()?.head(stream).map(|v| v.0))
    }

    /// Every stream, by id.
    fn streams(&self, py: Python<'_>) -> PyResult<Vec<StreamInfo>> {
        self.run(py, |r| Ok(reads::streams(r)))
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
        let events = self.run(py, |r| reads::events(r, stream, start, end))?;
        Ok(events.into_iter().map(|e| event_to_py(py, e)).collect())
    }

    /// The state of `stream` at `version` (default: its head).
    #[pyo3(signature = (stream, version = None))]
    fn view(&self, py: Python<'_>, stream: &str, version: Option<u64>) -> PyResult<View> {
        self.run(py, |r| reads::view(r, stream, version))
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
        let value = self.run(py, |r| reads::value(r, stream, &key, version))?;
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
}
