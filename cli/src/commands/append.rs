//! `helios append`: one event per line of stdin, one append per event; key-value events
//! (checked before they are appended) unless `--raw`.

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
    Each line must be a key-value event, `set KEY VALUE` or `del KEY` (KEY has no spaces; VALUE \
    is the rest of the line and may be empty or hold spaces), so that `helios get` can read \
    the stream's state. A line that is not one stops the command with exit status 2 and a \
    message naming its line number, before it is appended; the lines before it stay appended. \
    With `--raw`, lines are appended unchecked, as opaque payloads.\n\n\
    The payload is the line's bytes without the trailing newline (a carriage return before it \
    is kept, and becomes part of a value or key); empty lines are skipped. Each acknowledged \
    version is printed on its own line and flushed as soon as the append returns, so with \
    `--durability critical` every printed version is on stable storage. The store and the \
    stream are created if they do not exist.\n\n\
    Before exiting, a key-value append builds every checkpoint due up to each stream's head \
    (the engine otherwise builds them in the background), so that the next `helios get` \
    replays at most a few events past a checkpoint. If an earlier event of STREAM is not a \
    key-value event, a warning names it: the state cannot be read from that version on.";

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
    /// Append lines unchecked, as opaque payloads, instead of key-value events.
    #[arg(long)]
    pub raw: bool,
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
    let mut line_number = 0u64;
    let mut appended_count = 0u64;
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(CliError::io("read stdin"))?;
        if read == 0 {
            break;
        }
        line_number += 1;
        let payload = line.strip_suffix(b"\n").unwrap_or(&line);
        if payload.is_empty() {
            continue;
        }
        if !args.raw {
            helios::kv::parse(payload).map_err(|source| CliError::NotKeyValue {
                line: line_number,
                source,
            })?;
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
        appended_count += 1;
    }
    // Raw payloads need not be key-value events, so only key-value appends build checkpoints
    // here (the stream's state machine would reject a raw line).
    if !args.raw && appended_count > 0 {
        let stats = engine
            .checkpoints()
            .sync()
            .map_err(|source| CliError::Checkpoints {
                stream: args.stream.clone(),
                source,
            })?;
        // The events were appended, but an earlier event of the stream (appended with
        // `--raw`, or by a program) is not one the state machine accepts: say so now rather
        // than let the first `helios get` be the surprise.
        for stalled in stats.stalled.iter().filter(|s| s.stream == args.stream) {
            let _ = writeln!(
                std::io::stderr().lock(),
                "helios: warning: the state of stream `{}` cannot be read from {} on: {}",
                stalled.stream,
                stalled.version,
                stalled.reason
            );
        }
    }
    engine.close()?;
    Ok(ExitCode::SUCCESS)
}
