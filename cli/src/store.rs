//! Opening a store from the command line: the options every store-opening command shares.

use std::path::Path;

use helios::Engine;

use crate::error::CliError;
use crate::limits;

/// Options for commands that open a store.
#[derive(Clone, Debug, clap::Args)]
pub struct OpenArgs {
    /// Size in bytes of each log segment created by this run, preallocated with zeros (existing
    /// segments keep their size), from 4096 to 1 GiB. Small values are useful in tests and
    /// tuning. [default: 64 MiB]
    #[arg(long, value_name = "BYTES", help_heading = "Store options",
          allow_negative_numbers = true, value_parser = limits::SEGMENT_SIZE_BYTES.parser())]
    pub segment_size_bytes: Option<u64>,
}

impl OpenArgs {
    /// The engine options these arguments ask for, on top of the defaults.
    fn options(&self) -> helios::Options {
        let mut options = helios::Options::default();
        if let Some(bytes) = self.segment_size_bytes {
            options.log.segment_size_bytes = bytes;
        }
        options
    }

    /// Opens (or creates) the store in `dir`, running crash recovery.
    pub fn open(&self, dir: &Path) -> Result<Engine, CliError> {
        Ok(Engine::open(dir, self.options())?)
    }

    /// Opens the store in `dir`, which must already exist: commands that only look at a store
    /// must not create one where a user mistyped a path.
    pub fn open_existing(&self, dir: &Path) -> Result<Engine, CliError> {
        let mut options = self.options();
        options.create_if_missing = false;
        Ok(Engine::open(dir, options)?)
    }

    /// Opens the existing store in `dir` without the engine's background threads, for
    /// commands that report what is on disk: no checkpoint is built and no flush runs while
    /// they look (recovery at open still runs, as for any open).
    pub fn open_existing_still(&self, dir: &Path) -> Result<Engine, CliError> {
        let mut options = self.options();
        options.create_if_missing = false;
        options.background_threads = false;
        Ok(Engine::open(dir, options)?)
    }
}

/// What a store's log takes on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSize {
    /// Bytes through the last record: every sealed segment in use, whole, plus the active one
    /// up to its end. This is what the events cost, headers and frames included.
    pub used_bytes: u64,
    /// Segment files holding records.
    pub used_segments: u64,
    /// Every segment file, as allocated (segments are preallocated with zeros, and a spare
    /// may be ready for the next roll).
    pub files: u64,
    /// Their total length.
    pub file_bytes: u64,
}

/// Measures the log of `engine` now.
pub fn log_size(engine: &Engine) -> Result<LogSize, CliError> {
    let segments = engine.inspect().segments()?;
    let end = engine.inspect().log_end();
    let mut size = LogSize {
        used_bytes: 0,
        used_segments: 0,
        files: segments.len() as u64,
        file_bytes: segments.iter().map(|s| s.file_len_bytes).sum(),
    };
    for segment in &segments {
        let used = match segment.id.cmp(&end.segment) {
            std::cmp::Ordering::Less => segment.file_len_bytes,
            std::cmp::Ordering::Equal => end.offset,
            std::cmp::Ordering::Greater => 0,
        };
        size.used_bytes += used;
        size.used_segments += u64::from(used > 0);
    }
    Ok(size)
}
