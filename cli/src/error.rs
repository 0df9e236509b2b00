//! The CLI's error type: the engine's errors plus what the CLI itself does (stdin, stdout,
//! temporary directories, JSON) and the checks of the demo and the workload. Every variant displays as one
//! sentence; `main` prints it after `helios: `.

use std::io;

use helios::{Version, short_name};

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The engine failed (its message names the stream, file or offset involved).
    #[error(transparent)]
    Engine(#[from] helios::Error),
    /// I/O done by the CLI itself, outside the engine.
    #[error("could not {op}: {source}")]
    Io {
        /// What was being done, as a verb phrase ("read stdin").
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Arguments that do not go together (each alone was accepted by its parser).
    #[error("{0}")]
    Usage(String),
    /// I/O on a file the CLI itself writes (tune's output files).
    #[error("could not {op} {}: {source}", .path.display())]
    Path {
        /// What was being done, as a verb phrase ("write the output file").
        op: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A directory the CLI itself creates (tune's --out or scratch directory) could not be.
    #[error("could not create the {what} directory {}: {source}", .path.display())]
    CreateDir {
        /// Which directory ("--out").
        what: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A directory the CLI itself creates (tune's --out or scratch directory) is a file.
    #[error(
        "{what} {} cannot be created: {} is not a directory",
        .path.display(),
        .file.display()
    )]
    NotADirectory {
        /// Which directory ("--out").
        what: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// The path itself, or the part of it that exists, which is not a directory.
        file: std::path::PathBuf,
    },
    /// The demo read back something other than what it wrote, or an append was acknowledged
    /// with an unexpected version.
    #[error("demo check failed on stream `{}` at {version}: {reason}", short_name(.stream))]
    DemoCheck {
        /// The stream.
        stream: String,
        /// The version concerned.
        version: Version,
        /// What differs.
        reason: String,
    },
    /// `helios append` read a line that is not a key-value event (and `--raw` was not given).
    #[error(
        "stdin line {line} is not a key-value event: {source} (nothing from this line on was \
         appended; use --raw to append lines unchecked)"
    )]
    NotKeyValue {
        /// The line's number, counting from 1 (empty lines included).
        line: u64,
        /// Why it does not parse.
        #[source]
        source: helios::kv::KvError,
    },
    /// `helios append` read a key-value line whose key is not UTF-8: `helios get` takes its
    /// key as a command-line string, so it could never name it.
    #[error(
        "stdin line {line} has a key that is not UTF-8, which `helios get` could not name \
         (nothing from this line on was appended)"
    )]
    KeyNotUtf8 {
        /// The line's number, counting from 1 (empty lines included).
        line: u64,
    },
    /// `helios append` or `import` read a line longer than its limit; it stopped reading it
    /// there.
    #[error(
        "stdin line {line} is longer than {max_bytes} bytes, {what} (nothing from this line on \
         was appended)"
    )]
    LineTooLong {
        /// The line's number, counting from 1 (empty lines included).
        line: u64,
        /// The limit.
        max_bytes: usize,
        /// What the limit is, as a noun phrase ("the largest event the log takes").
        what: &'static str,
    },
    /// `helios import` read a line without a tab, so without a stream name.
    #[error(
        "stdin line {line} has no tab: `helios import` reads `STREAM<TAB>EVENT` lines (nothing \
         from this line on was appended)"
    )]
    NoTab {
        /// The line's number, counting from 1 (empty lines included).
        line: u64,
    },
    /// `helios import` read a line that starts with a tab: its stream name is empty.
    #[error(
        "stdin line {line} has an empty stream name (it starts with a tab) (nothing from this \
         line on was appended)"
    )]
    EmptyStreamName {
        /// The line's number, counting from 1 (empty lines included).
        line: u64,
    },
    /// `helios import` read a line whose stream name is not UTF-8 (stream names are strings).
    #[error(
        "stdin line {line} has a stream name that is not UTF-8 (nothing from this line on was \
         appended)"
    )]
    StreamNotUtf8 {
        /// The line's number, counting from 1 (empty lines included).
        line: u64,
    },
    /// `helios import` stopped on an error, and syncing the lines imported before it failed
    /// too.
    #[error(
        "{error}; syncing the lines before it failed too: {sync} (lines imported without \
         --durability critical may be lost)"
    )]
    ImportStopped {
        /// What stopped the import.
        error: Box<CliError>,
        /// The engine's error from the sync.
        #[source]
        sync: helios::Error,
    },
    /// `helios append` could not read a line of stdin.
    #[error("could not read stdin line {line}: {source}")]
    ReadLine {
        /// The line's number, counting from 1 (empty lines included).
        line: u64,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The engine refused or failed to append a line of stdin (too large for a segment, a
    /// conflict, an invalid stream name, an I/O error); for `import`, the first line of the
    /// batch it failed to append.
    #[error("appending stdin line {line} failed: {source}")]
    AppendLine {
        /// The line's number, counting from 1 (empty lines included).
        line: u64,
        /// The engine's error.
        #[source]
        source: helios::Error,
    },
    /// Every line was appended, but the sync after the last one failed.
    #[error(
        "every line was appended, but syncing the store afterwards failed: {source} (versions \
         printed without --durability critical may be lost)"
    )]
    SyncAfterAppend {
        /// The engine's error.
        #[source]
        source: helios::Error,
    },
    /// Every line was imported, but the sync after the last one failed.
    #[error(
        "every line was imported, but syncing the store afterwards failed: {source} (lines \
         imported without --durability critical may be lost)"
    )]
    SyncAfterImport {
        /// The engine's error.
        #[source]
        source: helios::Error,
    },
    /// A latency histogram could not be created.
    #[error("could not create a latency histogram: {0}")]
    Histogram(String),
    /// Rendering `--json` output failed.
    #[error("could not render JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The demo's search stopped: an engine call failed or the engine returned a state other
    /// than the one the search expects.
    #[error("the demo's search stopped: {0}")]
    Search(#[source] helios_workloads::mcts::MctsError),
    /// The demo's record of the search's branches and commits disagrees with the ops it saw.
    #[error("the demo's record of the search broke: {0}")]
    DemoRecord(String),
    /// The demo's naive peer failed (its own store, outside the demo's engine).
    #[error("the demo's naive peer failed: {0}")]
    Peer(#[source] helios::Error),
    /// The workload found the engine acknowledging something other than what it asked for.
    #[error("workload check failed on stream `{}`: {reason}", short_name(.stream))]
    WorkloadCheck {
        /// The stream.
        stream: String,
        /// What differs.
        reason: String,
    },
}

impl CliError {
    /// Wraps an I/O error of the CLI's own, for `map_err`.
    pub fn io(op: &'static str) -> impl FnOnce(io::Error) -> CliError {
        move |source| CliError::Io { op, source }
    }
}
