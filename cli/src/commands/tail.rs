//! `helios tail`: every event of a store as `STREAM<TAB>VERSION<TAB>PAYLOAD` lines, then each
//! new one as soon as it is durable.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::commands::follow::{self, Followed, Mode, Scope, Sink};
use crate::error::CliError;
use crate::store::OpenArgs;

/// The long help of `helios tail`.
pub const LONG_ABOUT: &str = "Print every event of the store in log order as \
    `STREAM<TAB>VERSION<TAB>PAYLOAD` lines, then each new event as soon as the writer has made \
    it durable, until interrupted. With `--no-version`, `STREAM<TAB>PAYLOAD`: the input of \
    `helios import`, so that `helios tail SRC --no-version --no-follow | helios import DST` \
    copies a store's events (the streams' events in order; deletions and forks are not \
    copied: a deleted stream's events are printed as they were appended, and a fork's shared \
    history is printed once, under its source).\n\n\
    Only durable events are printed: a writer in another process publishes how far its log is \
    durable after each sync, and nothing past that is read, so nothing printed can be taken \
    back by a crash. Lines are flushed as they are printed. The store is opened read-only and \
    no lock is taken: it may be open in a writer, and a writer can open it meanwhile. A store \
    that does not exist yet is waited for (said once on stderr).\n\n\
    `--no-follow` prints the events durable when the command starts and exits.\n\n\
    Exit status: 0 when interrupted by the end of the output (a closed pipe) or, with \
    `--no-follow`, at the end; 2 on errors (a damaged store, a read that failed).";

/// Arguments of `helios tail`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory.
    pub dir: PathBuf,
    /// Print `STREAM<TAB>PAYLOAD`, the input of `helios import`.
    #[arg(long)]
    pub no_version: bool,
    /// Stop at the end durable when the command starts instead of following.
    #[arg(long)]
    pub no_follow: bool,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// Lines of `helios tail`.
struct TailSink<W: Write> {
    out: W,
    no_version: bool,
}

impl<W: Write> Sink for TailSink<W> {
    fn emit(&mut self, e: &Followed<'_>) -> std::io::Result<()> {
        self.out.write_all(e.stream.as_bytes())?;
        if self.no_version {
            self.out.write_all(b"\t")?;
        } else {
            write!(self.out, "\t{}\t", e.event.version.get())?;
        }
        self.out
            .write_all(String::from_utf8_lossy(&e.event.payload).as_bytes())?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Runs `helios tail`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let mut sink = TailSink {
        out: std::io::BufWriter::new(std::io::stdout().lock()),
        no_version: args.no_version,
    };
    let mode = if args.no_follow {
        Mode::UpToNow
    } else {
        Mode::Follow
    };
    follow::follow(&args.dir, &args.open, Scope::All, mode, &mut sink)?;
    Ok(ExitCode::SUCCESS)
}
