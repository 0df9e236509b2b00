//! Helpers shared by the engine-level targets (`store_image`, `op_sequence`): the reference
//! model of the key-value state machine, and scratch directories.

use std::collections::BTreeMap;
use std::path::Path;

/// The state a key-value stream must have after `events`: a `BTreeMap` fold of `set KEY VALUE`
/// and `del KEY` (the format in `replay/src/kv.rs`). `None` if an event is not one of those:
/// the engine must then refuse the view with `Error::Replay`.
pub fn kv_fold<E: AsRef<[u8]>>(events: &[E]) -> Option<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut state = BTreeMap::new();
    for event in events {
        let event = event.as_ref();
        if let Some(rest) = event.strip_prefix(b"set ") {
            let space = rest.iter().position(|&b| b == b' ')?;
            let (key, value) = (&rest[..space], &rest[space + 1..]);
            if key.is_empty() {
                return None;
            }
            state.insert(key.to_vec(), value.to_vec());
        } else if let Some(key) = event.strip_prefix(b"del ") {
            if key.is_empty() || key.contains(&b' ') {
                return None;
            }
            state.remove(key);
        } else {
            return None;
        }
    }
    Some(state)
}

/// A fresh scratch directory, on tmpfs when the machine has one: executions write and sync
/// files, and a real disk's fsync would dominate their time.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new()
        .prefix("helios-fuzz-")
        .tempdir_in(shm);
    match builder {
        Ok(dir) => dir,
        Err(_) => tempfile::tempdir().expect("a temporary directory"),
    }
}

/// Whether `HELIOS_FUZZ_TRACE` is set: the targets then print what each input decodes to and
/// what happened, to explain a reproducer or a seed (`cargo fuzz run T FILE`).
pub fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("HELIOS_FUZZ_TRACE").is_some())
}

/// Prints `message()` when tracing.
pub fn trace(message: impl FnOnce() -> String) {
    if tracing() {
        eprintln!("helios-fuzz: {}", message());
    }
}
