//! Opening a store from the command line: the options every store-opening command shares.

use std::path::Path;

use helios::{Engine, Inspect, ReadOnly};

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

    /// The size of the first segment a store created with these options gets, and the
    /// smallest segment this run can create.
    pub fn first_segment_size_bytes(&self) -> u64 {
        self.options().log.first_size_bytes()
    }

    /// Opens (or creates) the store in `dir`, running crash recovery.
    pub fn open(&self, dir: &Path) -> Result<Engine, CliError> {
        Ok(Engine::open(dir, self.options())?)
    }

    /// Opens the store in `dir` read-only, for the commands that only look at it: nothing is
    /// created, written or removed (not even a lock file), so a store that a writer holds, a
    /// store on a read-only file system and a damaged store the writer refuses can all be
    /// read, and a writer can open the store meanwhile.
    pub fn open_read_only(&self, dir: &Path) -> Result<ReadOnly, CliError> {
        Ok(ReadOnly::open(dir, self.options())?)
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
pub fn log_size(inspect: Inspect<'_>) -> Result<LogSize, CliError> {
    let segments = inspect.segments()?;
    let end = inspect.log_end();
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
