//! `helios verify`: offline verification of a whole store.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::CliError;
use crate::json;

/// Exit code when the store has problems (2 stays reserved for errors).
const EXIT_FINDINGS: u8 = 1;

/// The long help of `helios verify`.
pub const LONG_ABOUT: &str = "Check every segment header and record checksum, LSN continuity and \
    batch framing of the log; every checkpoint pack (its header, its checkpoints' headers \
    against what was written and published, every checkpoint's checksums and structure, and \
    its level and base against the default level policy); then every index entry against the \
    record it points at. The \
    store is not changed (no recovery runs, no lock file is taken, and the metadata is \
    checked on a copy); while a writer holds the store, the metadata is not checked, the log is \
    checked up to the end the writer published as durable (past it, bytes are being written), \
    and the report says so.\n\n\
    Exit status: 0 when the store is sound, 1 when problems were found (each printed with its \
    file and byte offset), 2 on errors (for example a directory that is not a store).\n\n\
    With `--json`, one object: `dir`, `sound` (true or false), the counts `records`, `events`, \
    `index_entries`, `unindexed_events`, `packs` and `checkpoints`, and `findings`, each with `path`, `offset` (null \
    when the problem has none) and `reason`. The exit status is the same.";

/// Arguments of `helios verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory.
    pub dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `helios verify --json`.
#[derive(serde::Serialize)]
struct VerifyJson {
    dir: String,
    /// Whether no problem was found.
    sound: bool,
    /// Log records read and checksum-verified.
    records: u64,
    /// Of which, events.
    events: u64,
    /// Index entries checked against the log.
    index_entries: u64,
    /// Events past the recovery point, not yet indexed (the next open indexes them).
    unindexed_events: u64,
    /// Checkpoint packs read.
    packs: u64,
    /// Checkpoints in them, each checked whole and against the default level policy.
    checkpoints: u64,
    /// Whether a writer held the store (its index was then not checked).
    writer_holds_the_store: bool,
    findings: Vec<FindingJson>,
}

/// One problem found.
#[derive(serde::Serialize)]
struct FindingJson {
    /// The file (a segment) or directory (the metadata) concerned.
    path: String,
    /// Byte offset in that file, when the problem has one.
    offset: Option<u64>,
    /// What is wrong.
    reason: String,
}

/// Runs `helios verify`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let report = helios::verify(&args.dir)?;
    let code = if report.is_sound() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    };
    let out = if args.json {
        json::pretty(&VerifyJson {
            dir: args.dir.to_string_lossy().into_owned(),
            sound: report.is_sound(),
            records: report.records,
            events: report.events,
            index_entries: report.index_entries,
            unindexed_events: report.unindexed_events,
            packs: report.packs,
            checkpoints: report.checkpoints,
            writer_holds_the_store: report.writer_holds_the_store,
            findings: report
                .findings
                .iter()
                .map(|f| FindingJson {
                    path: f.path.to_string_lossy().into_owned(),
                    offset: f.offset,
                    reason: f.reason.clone(),
                })
                .collect(),
        })?
    } else {
        to_text(args, &report)
    };
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(CliError::io("write to stdout"))?;
    Ok(code)
}

fn to_text(args: &Args, report: &helios::VerifyReport) -> String {
    let mut out = String::new();
    let mut checked = format!(
        "{} records ({} events) checksummed, {} index entries checked, {} events not yet \
         indexed, {} checkpoints in {} packs checked",
        report.records,
        report.events,
        report.index_entries,
        report.unindexed_events,
        report.checkpoints,
        report.packs
    );
    if report.writer_holds_the_store {
        checked.push_str(
            " (a writer holds the store: its index was not checked, and the log only up to \
             the end the writer published as durable)",
        );
    }
    if report.is_sound() {
        out.push_str(&format!("{}: sound: {checked}\n", args.dir.display()));
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
    }
    out
}
