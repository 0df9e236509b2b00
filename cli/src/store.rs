//! Opening a store from the command line: the options every store-opening command shares.

use std::path::Path;

use helios::Engine;

use crate::error::CliError;

/// Options for commands that open a store.
#[derive(Clone, Debug, clap::Args)]
pub struct OpenArgs {
    /// Size in bytes of each log segment created by this run, preallocated with zeros (existing
    /// segments keep their size). Small values are useful in tests and tuning. [default: 64 MiB]
    #[arg(long, value_name = "BYTES", help_heading = "Store options")]
    pub segment_size_bytes: Option<u64>,
}

impl OpenArgs {
    /// Opens (or creates) the store in `dir`, running crash recovery.
    pub fn open(&self, dir: &Path) -> Result<Engine, CliError> {
        let mut builder = Engine::builder(dir);
        if let Some(bytes) = self.segment_size_bytes {
            builder = builder.segment_size_bytes(bytes);
        }
        Ok(builder.open()?)
    }

    /// Opens the store in `dir`, which must already exist: commands that only look at a store
    /// must not create one where a user mistyped a path.
    pub fn open_existing(&self, dir: &Path) -> Result<Engine, CliError> {
        let mut builder = Engine::builder(dir).create_if_missing(false);
        if let Some(bytes) = self.segment_size_bytes {
            builder = builder.segment_size_bytes(bytes);
        }
        Ok(builder.open()?)
    }
}
