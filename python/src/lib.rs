//! The native core of the `helios_store` Python package (`helios_store._native`).
//!
//! It is responsible for two things: the Helios engine's API as Python classes (`store.rs`:
//! `Store`, with `view.rs`: `View`, and `results.rs`: `Event`, `StreamInfo`, `Appended`;
//! `reader.rs`: `Reader`, a read-only handle for other processes; and the exception classes of
//! `errors.rs`), and the storage side of the LangGraph checkpoint saver (`saver.rs`:
//! `SaverCore`, its work on bytes in the `saver_*.rs` modules, over the record format, state
//! machine and value codec of the `helios-saver` crate). It is not responsible for anything
//! LangGraph-specific that needs Python objects: the saver class itself
//! (`helios_store.langgraph.HeliosSaver`, a Python subclass of `BaseCheckpointSaver`, since PyO3
//! cannot subclass a Python class) serializes values with LangGraph's serializer and hands this
//! crate bytes.
//!
//! Conventions: bytes in, bytes out; the GIL is released around every engine call; engine
//! errors become exceptions that mirror `helios::Error`'s kinds.

mod arguments;
mod engine_handle;
mod errors;
mod reader;
mod reads;
mod results;
mod saver;
mod saver_cache;
mod saver_decode;
mod saver_delete;
mod saver_error;
mod saver_read;
mod saver_thread;
mod saver_write;
mod store;
mod store_options;
mod view;

// The saver's storage format, at the paths its modules here name it by.
use helios_saver::{codec, record};

use pyo3::prelude::*;

/// The `helios_store._native` module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<store::Store>()?;
    module.add_class::<reader::Reader>()?;
    module.add_class::<view::View>()?;
    module.add_class::<results::Event>()?;
    module.add_class::<results::StreamInfo>()?;
    module.add_class::<results::Appended>()?;
    module.add_class::<saver::SaverCore>()?;
    module.add("SAVER_STREAM_PREFIX", record::SAVER_STREAM_PREFIX)?;
    errors::register(module)?;
    Ok(())
}
