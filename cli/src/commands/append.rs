//! `helios append`: one event per line of stdin, one append per event.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use helios::Version;

use super::DurabilityArg;
use crate::error::CliError;
use crate::store::OpenArgs;

/// The long help of `helios append`.
pub const LONG_ABOUT: &str = "Append one event per line of stdin to STREAM, one append per \
    line.\n\n\
    The payload is the line's bytes without the trailing newline (a carriage return before it \
    is kept); empty lines are skipped. Each acknowledged version is printed on its own line \
    and flushed as soon as the append returns, so with `--durability critical` every printed \
    version is on stable storage. The store and the stream are created if they do not exist.";

/// Arguments of `helios append`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory (created if missing).
    pub dir: PathBuf,
    /// The stream to append to (created on its first event).
    pub stream: String,
    /// Durability class of every append.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Normal)]
    pub durability: DurabilityArg,
    /// Optimistic concurrency: fail unless the stream's head is V before the first line (0 for
    /// a new or empty stream). Each following line then expects the version just appended.
    #[arg(long, value_name = "V")]
    pub expected: Option<u64>,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// Runs `helios append`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let engine = args.open.open(&args.dir)?;
    let durability = helios::Durability::from(args.durability);
    let mut expected = args.expected.map(Version);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(CliError::io("read stdin"))?;
        if read == 0 {
            break;
        }
        let payload = line.strip_suffix(b"\n").unwrap_or(&line);
        if payload.is_empty() {
            continue;
        }
        let appended = engine.append(&args.stream, &[payload], durability, expected)?;
        if expected.is_some() {
            expected = Some(appended.last);
        }
        // Printed and flushed only after the append returned: for critical appends, a version
        // on stdout is a version on stable storage.
        writeln!(out, "{}", appended.last.get())
            .and_then(|()| out.flush())
            .map_err(CliError::io("write to stdout"))?;
    }
    engine.close()?;
    Ok(ExitCode::SUCCESS)
}
