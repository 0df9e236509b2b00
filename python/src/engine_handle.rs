//! `Shared`: the handle on an open store's engine that a `Store` and every saver core made
//! from it hold. `close` empties it: a call on a closed store raises `StoreClosedError`. Calls
//! in flight when `close` runs finish first (each holds its own reference to the engine); the
//! engine shuts down when the last of them returns.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use helios::Engine;
use pyo3::prelude::*;

use crate::errors::{self, StoreClosedError};

/// The engine of an open store, shared by the `Store` and every saver core made from it.
#[derive(Debug)]
pub(crate) struct Shared {
    /// `None` once closed.
    engine: RwLock<Option<Arc<Engine>>>,
    /// The store's directory, for messages.
    pub(crate) path: PathBuf,
}

impl Shared {
    /// The handle on the open `engine` of the store in `path`.
    pub(crate) fn new(engine: Engine, path: PathBuf) -> Shared {
        Shared {
            engine: RwLock::new(Some(Arc::new(engine))),
            path,
        }
    }

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
    pub(crate) fn close(&self, py: Python<'_>) -> PyResult<()> {
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

    /// Whether `close` emptied the handle.
    pub(crate) fn is_closed(&self) -> bool {
        self.engine
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }
}
