//! The Python exception classes and how each [`helios::Error`] maps onto one.
//!
//! One class per error kind of the engine, all subclasses of `HeliosError`, so that Python code
//! can catch exactly what it can handle (a `ConflictError` to retry, a `LockedError` to report)
//! or everything at once. Structured fields of the Rust error become attributes of the
//! exception (`stream`, `expected`, `actual`, `head`, `path`, ...), so a caller never parses a
//! message.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::{PyErr, Python, create_exception};

create_exception!(
    helios_store,
    HeliosError,
    PyException,
    "Base class of every error the Helios engine reports."
);
create_exception!(
    helios_store,
    ConflictError,
    HeliosError,
    "Optimistic concurrency: the stream's head is not the expected version (`stream`, `expected`, `actual`)."
);
create_exception!(
    helios_store,
    UnknownStreamError,
    HeliosError,
    "No stream of that name exists (`stream`)."
);
create_exception!(
    helios_store,
    InvalidStreamNameError,
    HeliosError,
    "A stream name that cannot be used: empty, over 1024 bytes, or with control characters."
);
create_exception!(
    helios_store,
    EmptyAppendError,
    HeliosError,
    "An append with no events."
);
create_exception!(
    helios_store,
    VersionPastHeadError,
    HeliosError,
    "A read at a version the stream (or branch) has not reached (`stream`, `version`, `head`)."
);
create_exception!(
    helios_store,
    LockedError,
    HeliosError,
    "Another writer (process or open Store) holds the store (`path`)."
);
create_exception!(
    helios_store,
    NotAStoreError,
    HeliosError,
    "The directory is not a Helios store and `create_if_missing` is false (`path`)."
);
create_exception!(
    helios_store,
    InvalidOptionsError,
    HeliosError,
    "An option out of range (`option`, `reason`)."
);
create_exception!(
    helios_store,
    UnknownBranchError,
    HeliosError,
    "No live branch has this id: never made, or discarded, pruned or evicted (`branch`)."
);
create_exception!(
    helios_store,
    BranchMemoryFullError,
    HeliosError,
    "Speculative events would exceed the branch memory budget (`needed_bytes`, `used_bytes`, `budget_bytes`)."
);
create_exception!(
    helios_store,
    PromotionConflictError,
    HeliosError,
    "A promotion from a branch that does not descend from the stream's head (`branch`, `stream`, `base`, `head`)."
);
create_exception!(
    helios_store,
    InvalidDurabilityError,
    HeliosError,
    "A durability class that the operation cannot use (a speculative `append`, for example)."
);
create_exception!(
    helios_store,
    ReplayError,
    HeliosError,
    "The stream's state machine rejected an event while a state was rebuilt (`stream`, `version`)."
);
create_exception!(
    helios_store,
    LogError,
    HeliosError,
    "The log failed: I/O, corruption (with file and offset), or a writer poisoned by an earlier failure."
);
create_exception!(
    helios_store,
    MetadataError,
    HeliosError,
    "The metadata of a store migrated from an older format (fjall) failed or disagrees with the log (fjall errors, corrupt or unsupported metadata)."
);
create_exception!(
    helios_store,
    CheckpointError,
    HeliosError,
    "A checkpoint file could not be written or read."
);
create_exception!(
    helios_store,
    StoreClosedError,
    HeliosError,
    "The store was closed: open a new one."
);
create_exception!(
    helios_store,
    CorruptRecordError,
    HeliosError,
    "A record written by the LangGraph saver does not decode: the store holds bytes this build does not understand."
);

create_exception!(
    helios_store,
    StreamExistsError,
    HeliosError,
    "A fork or create whose target stream name is already taken (`stream`)."
);
create_exception!(
    helios_store,
    NewerStoreFormatError,
    HeliosError,
    "The store was written by a newer Helios: upgrade to open it (`path`, `found`, `supported`)."
);
create_exception!(
    helios_store,
    DamagedError,
    HeliosError,
    "The store lost data it had acknowledged (file and offset in the message): run `helios repair` (`path`)."
);
create_exception!(
    helios_store,
    ReadOnlyError,
    HeliosError,
    "A write on a store opened read-only (`operation`)."
);
create_exception!(
    helios_store,
    NotADirectoryError,
    HeliosError,
    "The store's path, or a path on the way to it, is not a directory (`path`, `kind`)."
);
create_exception!(
    helios_store,
    SymlinkLoopError,
    HeliosError,
    "Resolving the store's path follows symbolic links in a loop (`path`)."
);
create_exception!(
    helios_store,
    PermissionDeniedError,
    HeliosError,
    "The operating system refused access to the store's directory (`operation`, `path`)."
);
create_exception!(
    helios_store,
    NotEmptyError,
    HeliosError,
    "Creating a store in a directory that holds other files (`path`, `found`)."
);

/// Every exception class, with its Python name, for the module's namespace.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("HeliosError", py.get_type::<HeliosError>())?;
    module.add("ConflictError", py.get_type::<ConflictError>())?;
    module.add("UnknownStreamError", py.get_type::<UnknownStreamError>())?;
    module.add(
        "InvalidStreamNameError",
        py.get_type::<InvalidStreamNameError>(),
    )?;
    module.add("EmptyAppendError", py.get_type::<EmptyAppendError>())?;
    module.add(
        "VersionPastHeadError",
        py.get_type::<VersionPastHeadError>(),
    )?;
    module.add("LockedError", py.get_type::<LockedError>())?;
    module.add("NotAStoreError", py.get_type::<NotAStoreError>())?;
    module.add("InvalidOptionsError", py.get_type::<InvalidOptionsError>())?;
    module.add("UnknownBranchError", py.get_type::<UnknownBranchError>())?;
    module.add(
        "BranchMemoryFullError",
        py.get_type::<BranchMemoryFullError>(),
    )?;
    module.add(
        "PromotionConflictError",
        py.get_type::<PromotionConflictError>(),
    )?;
    module.add(
        "InvalidDurabilityError",
        py.get_type::<InvalidDurabilityError>(),
    )?;
    module.add("ReplayError", py.get_type::<ReplayError>())?;
    module.add("LogError", py.get_type::<LogError>())?;
    module.add("MetadataError", py.get_type::<MetadataError>())?;
    module.add("CheckpointError", py.get_type::<CheckpointError>())?;
    module.add("StoreClosedError", py.get_type::<StoreClosedError>())?;
    module.add("CorruptRecordError", py.get_type::<CorruptRecordError>())?;
    module.add("StreamExistsError", py.get_type::<StreamExistsError>())?;
    module.add(
        "NewerStoreFormatError",
        py.get_type::<NewerStoreFormatError>(),
    )?;
    module.add("DamagedError", py.get_type::<DamagedError>())?;
    module.add("ReadOnlyError", py.get_type::<ReadOnlyError>())?;
    module.add("NotADirectoryError", py.get_type::<NotADirectoryError>())?;
    module.add("SymlinkLoopError", py.get_type::<SymlinkLoopError>())?;
    module.add(
        "PermissionDeniedError",
        py.get_type::<PermissionDeniedError>(),
    )?;
    module.add("NotEmptyError", py.get_type::<NotEmptyError>())?;
    Ok(())
}

/// The attributes an exception carries, set after it is made.
type Fields = Vec<(&'static str, Py<PyAny>)>;

/// Converts an engine error into the matching Python exception, with its structured fields as
/// attributes. Needs the interpreter: call it after the engine call returned, not inside
/// `Python::detach`.
pub(crate) fn to_py(py: Python<'_>, error: helios::Error) -> PyErr {
    use helios::Error as E;
    let message = error.to_string();
    let mut fields: Fields = Vec::new();
    let mut field = |name: &'static str, value: Py<PyAny>| fields.push((name, value));
    let err = match &error {
        E::Conflict {
            stream,
            expected,
            actual,
        } => {
            field("stream", str_obj(py, stream));
            field("expected", int_obj(py, expected.0));
            field("actual", int_obj(py, actual.0));
            ConflictError::new_err(message)
        }
        E::UnknownStream { stream } => {
            field("stream", str_obj(py, stream));
            UnknownStreamError::new_err(message)
        }
        E::InvalidStreamName { stream, .. } => {
            field("stream", str_obj(py, stream));
            InvalidStreamNameError::new_err(message)
        }
        E::EmptyAppend => EmptyAppendError::new_err(message),
        E::VersionPastHead {
            stream,
            version,
            head,
        } => {
            field("stream", str_obj(py, stream));
            field("version", int_obj(py, version.0));
            field("head", int_obj(py, head.0));
            VersionPastHeadError::new_err(message)
        }
        E::Locked { path } => {
            field("path", path_obj(py, path));
            LockedError::new_err(message)
        }
        E::NotAStore { path } => {
            field("path", path_obj(py, path));
            NotAStoreError::new_err(message)
        }
        E::InvalidOptions { option, reason } => {
            field("option", str_obj(py, option));
            field("reason", str_obj(py, reason));
            InvalidOptionsError::new_err(message)
        }
        E::UnknownBranch { branch } => {
            field("branch", int_obj(py, branch.0));
            UnknownBranchError::new_err(message)
        }
        E::BranchMemoryFull {
            needed_bytes,
            used_bytes,
            budget_bytes,
        } => {
            field("needed_bytes", int_obj(py, *needed_bytes));
            field("used_bytes", int_obj(py, *used_bytes));
            field("budget_bytes", int_obj(py, *budget_bytes));
            BranchMemoryFullError::new_err(message)
        }
        E::PromotionConflict {
            branch,
            stream,
            base,
            head,
        } => {
            field("branch", int_obj(py, branch.0));
            field("stream", str_obj(py, stream));
            field("base", int_obj(py, base.0));
            field("head", int_obj(py, head.0));
            PromotionConflictError::new_err(message)
        }
        E::InvalidDurability { .. } => InvalidDurabilityError::new_err(message),
        E::Replay {
            stream, version, ..
        }
        | E::Aggregate {
            stream, version, ..
        } => {
            field("stream", str_obj(py, stream));
            field("version", int_obj(py, version.0));
            ReplayError::new_err(message)
        }
        E::Log(_) => LogError::new_err(message),
        E::Checkpoint(_) => CheckpointError::new_err(message),
        E::Meta { .. }
        | E::CorruptMeta { .. }
        | E::UnsupportedFormat { .. }
        | E::IndexMismatch { .. } => MetadataError::new_err(message),
        E::StreamExists { stream } => {
            field("stream", str_obj(py, stream));
            StreamExistsError::new_err(message)
        }
        E::NewerStoreFormat {
            path,
            found,
            supported,
        } => {
            field("path", path_obj(py, path));
            field("found", int_obj(py, u64::from(*found)));
            field("supported", int_obj(py, u64::from(*supported)));
            NewerStoreFormatError::new_err(message)
        }
        E::Damaged { dir, .. } => {
            field("path", path_obj(py, dir));
            DamagedError::new_err(message)
        }
        E::ReadOnly { operation } => {
            field("operation", str_obj(py, operation));
            ReadOnlyError::new_err(message)
        }
        E::NotADirectory { path, kind } => {
            field("path", path_obj(py, path));
            field("kind", str_obj(py, kind));
            NotADirectoryError::new_err(message)
        }
        E::SymlinkLoop { path } => {
            field("path", path_obj(py, path));
            SymlinkLoopError::new_err(message)
        }
        E::PermissionDenied { op, path } => {
            field("operation", str_obj(py, op));
            field("path", path_obj(py, path));
            PermissionDeniedError::new_err(message)
        }
        E::NotEmpty { path, found } => {
            field("path", path_obj(py, path));
            field("found", str_obj(py, found));
            NotEmptyError::new_err(message)
        }
    };
    let value = err.value(py);
    for (name, field_value) in fields {
        // Setting an attribute on a fresh exception instance cannot fail in practice; if it
        // did, the exception would still carry its message, which is what matters most.
        let _ = value.setattr(name, field_value);
    }
    err
}

fn str_obj(py: Python<'_>, s: &str) -> Py<PyAny> {
    pyo3::types::PyString::new(py, s).into_any().unbind()
}

fn path_obj(py: Python<'_>, path: &std::path::Path) -> Py<PyAny> {
    str_obj(py, &path.display().to_string())
}

fn int_obj(py: Python<'_>, n: u64) -> Py<PyAny> {
    // A u64 always converts to a Python int.
    n.into_pyobject(py)
        .map(|v| v.into_any().unbind())
        .unwrap_or_else(|_| py.None())
}
