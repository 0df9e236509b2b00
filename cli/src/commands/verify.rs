//! `helios verify`: offline verification of a whole store.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::CliError;

/// Exit code when the store has problems (2 stays reserved for errors).
const EXIT_FINDINGS: u8 = 1;

/// The long help of `helios verify`.
pub const LONG_ABOUT: &str = "Check every segment header and record checksum, LSN continuity and \
    batch framing of the log, then every index entry against the record it points at. The \
    store is not changed (no recovery runs), and it must not be open elsewhere.\n\n\
    Exit status: 0 when the store is sound, 1 when problems were found (each printed with its \
    file and byte offset), 2 on errors (for example a directory that is not a store).";

/// Arguments of `helios verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory.
    pub dir: PathBuf,
}

/// Runs `helios verify`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let report = helios::verify(&args.dir)?;
    let mut out = String::new();
    let checked = format!(
        "{} records ({} events) checksummed, {} index entries checked, {} events not yet indexed",
        report.records, report.events, report.index_entries, report.unindexed_events
    );
    let code = if report.is_sound() {
        out.push_str(&format!("{}: sound: {checked}\n", args.dir.display()));
        ExitCode::SUCCESS
    } else {
        for finding in &report.findings {
            out.push_str(&format!("{finding}\n"));
        }
        let count = report.findings.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        out.push_str(&format!(
            "{}: {count} {noun} found; {checked}\n",
            args.dir.display()
        ));
        ExitCode::from(EXIT_FINDINGS)
    };
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(CliError::io("write to stdout"))?;
    Ok(code)
}
