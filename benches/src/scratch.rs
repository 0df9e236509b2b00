//! Where the benches put their files: never on an in-memory file system, where `fdatasync` is
//! free and every durable number would be meaningless.

use std::path::{Path, PathBuf};

use helios_workloads::mounts::mount_of;

/// Whether `fs_type` keeps files in memory, where `fdatasync` costs nothing.
fn in_memory(fs_type: &str) -> bool {
    matches!(fs_type, "tmpfs" | "ramfs")
}

/// Directory under which the benches create their scratch directories: `$HELIOS_BENCH_DIR` if
/// set, else the system temporary directory if it is on a real disk, else `target/bench-tmp`
/// of this workspace (a temporary directory on tmpfs would make every sync free).
#[must_use]
pub fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("HELIOS_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    let tmp = std::env::temp_dir();
    match mount_of(&tmp) {
        Some((fs_type, _)) if !in_memory(&fs_type) => tmp,
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-tmp"),
    }
}

/// A fresh scratch directory under [`scratch_root`], removed when dropped.
///
/// # Panics
/// If the directory cannot be created, or if it lies on an in-memory file system.
#[must_use]
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    let root = scratch_root();
    std::fs::create_dir_all(&root).expect("create the bench scratch root");
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&root)
        .expect("create a bench scratch directory");
    if let Some((fs_type, _)) = mount_of(dir.path()) {
        assert!(
            !in_memory(&fs_type),
            "{} is on {fs_type}: fdatasync is free there, set HELIOS_BENCH_DIR to a real disk",
            dir.path().display()
        );
    }
    dir
}

/// Opens an engine in `dir` with default options, as a user would.
///
/// # Panics
/// If the engine does not open.
#[must_use]
pub fn open_engine(dir: &Path) -> helios::Engine {
    helios::Engine::builder(dir)
        .open()
        .expect("open the engine in a fresh directory")
}
