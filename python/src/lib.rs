//! The native core of the `helios_store` Python package (`helios_store._native`).
//!
//! It is responsible for two things: the Helios engine's API as Python classes (`store.rs`:
//! `Store`, `View`, `Event`; `reader.rs`: `Reader`, a read-only handle for other processes;
//! and the exception classes of `errors.rs`), and the storage side of
//! the LangGraph checkpoint saver (`saver.rs`: `SaverCore`, with the record format and state
//! machine of `record.rs` and the value codec of `codec.rs`). It is not responsible for anything
//! LangGraph-specific that needs Python objects: the saver class itself
//! (`helios_store.langgraph.HeliosSaver`, a Python subclass of `BaseCheckpointSaver`, since PyO3
//! cannot subclass a Python class) serializes values with LangGraph's serializer and hands this
//! crate bytes.
//!
//! Conventions: bytes in, bytes out; the GIL is released around every engine call; engine
//! errors become exceptions that mirror `helios::Error`'s kinds.

mod codec;
mod errors;
mod reader;
mod reads;
mod record;
mod saver;
mod store;

use pyo3::prelude::*;

/// The `helios_store._native` module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<store::Store>()?;
    module.add_class::<reader::Reader>()?;
    module.add_class::<store::View>()?;
    module.add_class::<store::Event>()?;
    module.add_class::<store::StreamInfo>()?;
    module.add_class::<store::Appended>()?;
    module.add_class::<saver::SaverCore>()?;
    module.add("SAVER_STREAM_PREFIX", record::SAVER_STREAM_PREFIX)?;
    errors::register(module)?;
    Ok(())
}
