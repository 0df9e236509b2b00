//! `helios get`: the value of one key in a stream's state at any version, optionally with how
//! the state was rebuilt (checkpoint layers and events replayed).

use std::io::{ErrorKind, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use helios::{Version, ViewReport, short_name};

use crate::error::CliError;
use crate::json;
use crate::limits;
use crate::store::OpenArgs;

/// Exit code when the key is absent at that version (2 stays reserved for errors).
const EXIT_ABSENT: u8 = 1;

/// The long help of `helios get`.
pub const LONG_ABOUT: &str = "Print the value of KEY in the state of STREAM at a version (by \
    default the stream's head), followed by a newline. The state is the stream's events read \
    as key-value events (`set KEY VALUE`, `del KEY`, the format `helios append` writes), \
    rebuilt from the nearest checkpoints plus the few events after them. The value is printed \
    as its bytes, unchanged (with `--json`, as UTF-8 with invalid bytes replaced by U+FFFD).\n\n\
    With `--explain`, the value line is followed by how the state was rebuilt: the checkpoint \
    layers read (level, version and entries, newest first) and the number of events replayed \
    on top of them.\n\n\
    Exit status: 0 when the key has a value, 1 when it is absent at that version (never set, \
    or deleted; a message says so on stderr, or `\"value\": null` with `--json`), 2 on errors \
    (a store or stream that does not exist, a version past the stream's head, an event that \
    is not a key-value event). The store is opened read-only: nothing in it is created, \
    written or removed, so it may be open in a writer meanwhile, sit on a read-only file \
    system, or be damaged in a way a writer refuses (a damaged checkpoint is read around).";

/// Arguments of `helios get`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory.
    pub dir: PathBuf,
    /// The stream whose state to read.
    pub stream: String,
    /// The key to look up.
    pub key: String,
    /// The version of the stream's state to read (0 is the empty state). [default: the
    /// stream's head]
    #[arg(long, value_name = "VERSION", allow_negative_numbers = true,
          value_parser = limits::VERSION.parser())]
    pub at: Option<u64>,
    /// After the value, print the checkpoint layers the state was read from and how many
    /// events were replayed on top of them.
    #[arg(long)]
    pub explain: bool,
    /// Print JSON instead of the value.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// Runs `helios get`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let engine = args.open.open_read_only(&args.dir)?;
    let version = match args.at {
        Some(version) => Version(version),
        None => engine
            .head(&args.stream)
            .ok_or_else(|| helios::Error::UnknownStream {
                stream: args.stream.clone(),
            })?,
    };
    let view = engine.view(&args.stream, version)?;
    let value = view.get(args.key.as_bytes());
    let absent = value.is_none();

    let mut out = Vec::new();
    if args.json {
        out.extend_from_slice(
            json::pretty(&to_json(args, version, value, view.report()))?.as_bytes(),
        );
    } else {
        if let Some(value) = value {
            out.extend_from_slice(value);
            out.push(b'\n');
        }
        if args.explain {
            out.extend_from_slice(format!("{}\n", view.report()).as_bytes());
        }
    }
    let written = {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&out).and_then(|()| stdout.flush())
    };
    match written {
        // A reader that stopped early (`helios get ... | head -c 1`) is not an error.
        Err(source) if source.kind() == ErrorKind::BrokenPipe => {}
        other => other.map_err(CliError::io("write to stdout"))?,
    }
    // A read-only handle holds no lock, no thread and nothing unwritten: the process exits
    // next, and freeing its catalogs one allocation at a time (7% of a `get` at 100,000
    // streams) is better left to the kernel's unmapping of the whole process.
    std::mem::forget(engine);

    if absent {
        if !args.json {
            // The message goes to stderr so that `$(helios get ...)` is empty for an absent
            // key rather than holding the message.
            let _ = writeln!(
                std::io::stderr().lock(),
                "absent: key `{}` is not set in stream `{}` at version {}",
                short_name(&args.key),
                short_name(&args.stream),
                version.get()
            );
        }
        return Ok(ExitCode::from(EXIT_ABSENT));
    }
    Ok(ExitCode::SUCCESS)
}

/// `helios get --json`: the key's value at a version of a stream's state.
#[derive(serde::Serialize)]
struct GetJson<'a> {
    /// The stream.
    stream: &'a str,
    /// The version read.
    version: u64,
    /// The key.
    key: &'a str,
    /// The value as UTF-8 (invalid bytes replaced by U+FFFD); `null` when the key is absent.
    value: Option<String>,
    /// With `--explain`: how the state was rebuilt.
    #[serde(skip_serializing_if = "Option::is_none")]
    explain: Option<ExplainJson>,
}

/// How a view was rebuilt: its checkpoint layers, newest first, and the replay on top.
#[derive(serde::Serialize)]
struct ExplainJson {
    layers: Vec<LayerJson>,
    events_replayed: u64,
    keys_changed_by_replay: u64,
}

/// One checkpoint layer of a view.
#[derive(serde::Serialize)]
struct LayerJson {
    level: u32,
    version: u64,
    entries: u64,
}

fn to_json<'a>(
    args: &'a Args,
    version: Version,
    value: Option<&[u8]>,
    report: &ViewReport,
) -> GetJson<'a> {
    GetJson {
        stream: &args.stream,
        version: version.get(),
        key: &args.key,
        value: value.map(|v| String::from_utf8_lossy(v).into_owned()),
        explain: args.explain.then(|| ExplainJson {
            layers: report
                .layers
                .iter()
                .map(|layer| LayerJson {
                    level: layer.info.level,
                    version: layer.info.version,
                    entries: layer.entries_count as u64,
                })
                .collect(),
            events_replayed: report.events_replayed,
            keys_changed_by_replay: report.overlay_entries_count as u64,
        }),
    }
}
