//! The small classes calls return: `Appended` (what an append or a promotion did), `Event`
//! (an event read back) and `StreamInfo` (a stream's name, id and head).

use helios::Durability;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

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

/// The Python `Event` of an event the engine read.
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

/// The name of a durability class, as `Event.durability` shows it.
fn durability_name(durability: Durability) -> &'static str {
    match durability {
        Durability::Critical => "critical",
        Durability::Normal => "normal",
        Durability::Speculative => "speculative",
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
