//! The release `helios` binary that benches spawn as a whole process.

use std::path::{Path, PathBuf};

/// `target/release/helios` of this workspace (or of `CARGO_TARGET_DIR`): build it first with
/// `cargo build --release -p helios-cli`.
#[must_use]
pub fn default_helios_bin() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        )
        .join("release/helios")
}
