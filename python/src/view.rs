//! `View`: the state of a stream (or branch) at one version, as a read-only mapping of bytes
//! to bytes.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::arguments::bytes_arg;

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
