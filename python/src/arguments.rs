//! Python arguments turned into what the engine takes: a durability class from its name, a
//! sequence of `bytes` and a single `bytes` argument, with errors that name the argument.

use helios::Durability;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PySequence};

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
