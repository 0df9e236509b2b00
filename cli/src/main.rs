//! The `helios` command-line tool.
//!
//! This binary is responsible for turning the `helios` engine's public API into commands a person
//! or a script can run against a store directory: appending events from stdin (to one stream, or
//! `STREAM<TAB>EVENT` lines to many with `import`), reading a stream back, reading one key of a
//! stream's state at any version, inspecting segments, streams and what recovery did, per-stream
//! and total sizes (`stats`), verifying a store offline, the demo (an MCTS search on speculative
//! branches, measured against naive designs in the same run) and a crash-test workload that prints
//! every write it had acknowledged. It owns argument parsing, output formats (aligned text, and
//! `--json` through serde_json) and exit codes.
//!
//! It is not responsible for anything about the bytes on disk: every read, write, recovery step
//! and check goes through the `helios` crate, and this crate never opens a log or metadata file
//! itself. It only lists a store's files and their sizes, for `stats` (`disk`).
//!
//! Exit codes: 0 on success, 1 when `helios verify` finds problems, when the key asked of `helios
//! get` is absent at that version, or when no setting of `helios tune` meets its budget, 2 for
//! every error (including wrong arguments and numbers out of range, which clap reports before
//! anything runs: see `limits`). `helios append` and `helios import` exit 0 once every line is
//! appended and synced, even when building checkpoints afterwards fails (a warning says so). Each
//! command's `--help` states its own. Errors are printed to stderr as one sentence, `helios: <what
//! happened>`, with long stream names and keys cut to a readable length.

mod commands;
mod derive;
mod error;
mod json;
mod limits;
mod lines;
mod store;
mod text;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;

/// Exit code of every error: I/O, engine errors, bad input.
const EXIT_ERROR: u8 = 2;

/// Helios: an embeddable event-sourced storage engine.
///
/// Each command works on a store directory (created on first append, in an empty or missing
/// directory only). A store has one writer at a time (`append`, `import`, `workload`, `demo`,
/// `repair`): a second one fails with a "locked" error. The reading commands (`read`, `tail`,
/// `get`, `inspect`, `stats`, `verify`) change nothing in the store, not even a lock file: they
/// work while a writer holds it (reading what it has made durable; `read --follow` and `tail`
/// follow it), on a read-only file system, and on a damaged store that a writer refuses.
///
/// Exit status: 0 on success; 1 when `verify` finds problems, `get` finds the key absent, or
/// no setting of `tune` meets its budget; 2 on every error, including arguments out of range
/// (every number has a stated range, refused before anything runs). Each command's `--help`
/// says more.
#[derive(Debug, Parser)]
#[command(name = "helios", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Append one event per line of stdin (`set KEY VALUE` or `del KEY`; any line with
    /// `--raw`), printing each acknowledged version.
    #[command(long_about = commands::append::LONG_ABOUT)]
    Append(commands::append::Args),
    /// Append `STREAM<TAB>EVENT` lines of stdin to the streams they name, consecutive lines of
    /// one stream as one atomic batch, and print how many.
    #[command(long_about = commands::import::LONG_ABOUT)]
    Import(commands::import::Args),
    /// Print a stream's events as `VERSION<TAB>PAYLOAD` lines.
    #[command(long_about = commands::read::LONG_ABOUT)]
    Read(commands::read::Args),
    /// Print every event of the store as `STREAM<TAB>VERSION<TAB>PAYLOAD` lines, then each new
    /// one as soon as it is durable.
    #[command(long_about = commands::tail::LONG_ABOUT)]
    Tail(commands::tail::Args),
    /// Print the value of a key in a stream's state at any version (default: the head).
    #[command(long_about = commands::get::LONG_ABOUT)]
    Get(commands::get::Args),
    /// Show a store's segments, streams, last LSN and what recovery did when opening it.
    #[command(long_about = commands::inspect::LONG_ABOUT)]
    Inspect(commands::inspect::Args),
    /// Check every record's checksum and the index against the log, without changing the store.
    #[command(long_about = commands::verify::LONG_ABOUT)]
    Verify(commands::verify::Args),
    /// Keep the intact prefix of a damaged store's log, set the rest aside (never deleted), and
    /// print what was lost.
    #[command(long_about = commands::repair::LONG_ABOUT)]
    Repair(commands::repair::Args),
    /// Show per stream its events and checkpoint files per level, and the store's totals.
    #[command(long_about = commands::stats::LONG_ABOUT)]
    Stats(commands::stats::Args),
    /// Run an MCTS search over Connect Four on a store (speculative branches, critical moves)
    /// and print what it cost against naive designs.
    #[command(long_about = commands::demo::LONG_ABOUT)]
    Demo(commands::demo::Args),
    /// Write mixed critical, normal and promoted events until killed, printing one line per
    /// acknowledged write (for crash testing).
    #[command(long_about = commands::workload::LONG_ABOUT)]
    Workload(commands::workload::Args),
    /// Sweep checkpoint settings (fanout, levels) over a workload: view latency against
    /// storage, the Pareto front, and a recommendation for a budget.
    #[command(long_about = commands::tune::LONG_ABOUT)]
    Tune(commands::tune::Args),
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Append(args) => commands::append::run(&args),
        Command::Import(args) => commands::import::run(&args),
        Command::Read(args) => commands::read::run(&args),
        Command::Tail(args) => commands::tail::run(&args),
        Command::Get(args) => commands::get::run(&args),
        Command::Inspect(args) => commands::inspect::run(&args),
        Command::Verify(args) => commands::verify::run(&args),
        Command::Repair(args) => commands::repair::run(&args),
        Command::Stats(args) => commands::stats::run(&args),
        Command::Demo(args) => commands::demo::run(&args),
        Command::Workload(args) => commands::workload::run(&args),
        Command::Tune(args) => commands::tune::run(&args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            // Nothing sensible is left to do if stderr itself cannot be written.
            let _ = writeln!(std::io::stderr().lock(), "helios: {error}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
