//! `helios repair`: keep the intact prefix of a damaged store's log, set the rest aside, say
//! what was lost.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::CliError;
use crate::json;

/// The long help of `helios repair`.
pub const LONG_ABOUT: &str = "Repair a store that an open refuses because acknowledged \
    records are gone or the log is damaged (a segment cut short, emptied, removed, or written \
    past its end). The longest intact prefix of the log is kept; everything else is moved, \
    never deleted, into a folder `repair-<UTC time>/` inside the store: the metadata, the \
    checkpoints, the segments after the damage and the damaged segment itself (its intact part \
    is written back). Then the metadata and the checkpoints are rebuilt from the kept log, and \
    what was lost is printed: the range of LSNs (through the durable end the log publishes \
    after each sync), and per stream the versions, where the catalog snapshot (exact to the \
    end of the last sealed segment) or records that still decode past the damage say which \
    streams the lost records were of. A sound store, \
    or one whose only damage is a torn tail that the next open removes, is left as it is.\n\n\
    The store must not be open in another process (the repair takes its lock).\n\n\
    Exit status: 0 when the store is sound or was repaired, 2 on errors.\n\n\
    With `--json`, one object: `dir`, `repaired`, `damage` (null, or `path`, `offset`, \
    `reason`), `kept_through_lsn`, `events_kept`, `lost_lsns` (null, or `first` and `last`), \
    `lost_versions` (each `stream`, `first`, `last`), `set_aside` (null, or the folder) and \
    `moved` (paths relative to the store).";

/// Arguments of `helios repair`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory.
    pub dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(serde::Serialize)]
struct RepairJson {
    dir: String,
    repaired: bool,
    damage: Option<DamageJson>,
    kept_through_lsn: u64,
    events_kept: u64,
    lost_lsns: Option<RangeJson>,
    lost_versions: Vec<LostJson>,
    set_aside: Option<String>,
    moved: Vec<String>,
}

#[derive(serde::Serialize)]
struct DamageJson {
    path: String,
    offset: u64,
    reason: String,
}

#[derive(serde::Serialize)]
struct RangeJson {
    first: u64,
    last: u64,
}

#[derive(serde::Serialize)]
struct LostJson {
    stream: String,
    first: u64,
    last: u64,
}

/// Runs `helios repair`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let report = helios::repair(&args.dir)?;
    let out = if args.json {
        json::pretty(&RepairJson {
            dir: args.dir.to_string_lossy().into_owned(),
            repaired: report.repaired,
            damage: report
                .damage
                .as_ref()
                .map(|(path, offset, reason)| DamageJson {
                    path: path.to_string_lossy().into_owned(),
                    offset: *offset,
                    reason: reason.clone(),
                }),
            kept_through_lsn: report.kept_through.get(),
            events_kept: report.events_kept,
            lost_lsns: report.lost_lsns.map(|(first, last)| RangeJson {
                first: first.get(),
                last: last.get(),
            }),
            lost_versions: report
                .lost_versions
                .iter()
                .map(|l| LostJson {
                    stream: l.stream.clone(),
                    first: l.first.get(),
                    last: l.last.get(),
                })
                .collect(),
            set_aside: report
                .set_aside
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            moved: report
                .moved
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
        })?
    } else {
        to_text(args, &report)
    };
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(CliError::io("write to stdout"))?;
    Ok(ExitCode::SUCCESS)
}

fn to_text(args: &Args, report: &helios::RepairReport) -> String {
    let mut out = String::new();
    let dir = args.dir.display();
    if !report.repaired {
        let why = match &report.damage {
            None => "the store is sound".to_owned(),
            Some((path, offset, reason)) => format!(
                "only a torn tail ({} at byte {offset}: {reason}), which the next open removes",
                path.display()
            ),
        };
        out.push_str(&format!("{dir}: nothing to repair: {why}\n"));
        return out;
    }
    if let Some((path, offset, reason)) = &report.damage {
        out.push_str(&format!(
            "damage: {} at byte {offset}: {reason}\n",
            path.display()
        ));
    }
    out.push_str(&format!(
        "kept: the log through lsn {} ({} events)\n",
        report.kept_through.get(),
        report.events_kept
    ));
    match report.lost_lsns {
        None => out.push_str("lost: nothing\n"),
        Some((first, last)) => {
            out.push_str(&format!("lost: lsns {} to {}\n", first.get(), last.get()));
            for lost in &report.lost_versions {
                out.push_str(&format!(
                    "  stream {}: versions {} to {}\n",
                    helios::short_name(&lost.stream),
                    lost.first.get(),
                    lost.last.get()
                ));
            }
        }
    }
    if let Some(aside) = &report.set_aside {
        let moved: Vec<String> = report
            .moved
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        out.push_str(&format!(
            "set aside, not deleted, in {}: {}\n",
            aside.display(),
            moved.join(", ")
        ));
    }
    out.push_str(&format!(
        "{dir}: repaired: the metadata and the checkpoints were rebuilt from the kept log\n"
    ));
    out
}
