//! `CoreError`: what goes wrong in the saver below the Python layer (an engine failure, or
//! bytes this build does not understand), and how it becomes a Python exception once the GIL
//! is held again.

use pyo3::prelude::*;

use crate::errors::{self, CorruptRecordError};

/// What can go wrong below the Python layer.
#[derive(Debug)]
pub(crate) enum CoreError {
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
    /// The Python exception for this error: `errors::to_py`'s for the engine's, else
    /// `CorruptRecordError`.
    pub(crate) fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            CoreError::Engine(e) => errors::to_py(py, e),
            CoreError::Corrupt(message) => CorruptRecordError::new_err(message),
        }
    }
}

/// The result of a saver step below the Python layer.
pub(crate) type CoreResult<T> = Result<T, CoreError>;
