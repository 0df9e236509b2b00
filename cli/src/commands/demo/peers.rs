//! The naive durable peer (`helios_peers::naive::EveryCommitDurable`): the search's commits,
//! in order, each made durable in a store of its own, timed against what the same commits cost
//! Helios during the search.

use std::path::Path;
use std::time::{Duration, Instant};

use helios_peers::naive::EveryCommitDurable;

use super::search::Recorder;
use super::summary::{DurablePeerJson, Percentiles};
use super::{histogram, progress, record};
use crate::error::CliError;
use crate::json;
use crate::store::{OpenArgs, log_size};
use crate::text::thousands;

/// The search's commits, in order, each a critical append to a store of its own in
/// `dir`, for at most `budget`. `helios_log_bytes` is what the whole run added to the demo's
/// log.
pub(super) fn durable_peer(
    dir: &Path,
    open: &OpenArgs,
    recorder: &Recorder,
    budget: Duration,
    helios_log_bytes: u64,
) -> Result<DurablePeerJson, CliError> {
    let mut peer = EveryCommitDurable::new(open.open(dir).map_err(|e| match e {
        CliError::Engine(e) => CliError::Peer(e),
        e => e,
    })?);
    let before = log_size(peer.engine().inspect())?;
    const BAR_STEPS: u64 = 1000;
    let bar = progress(BAR_STEPS, "naive peer");
    let mut naive = histogram()?;
    let mut helios = histogram()?;
    let mut helios_total = Duration::ZERO;
    let mut naive_total = Duration::ZERO;
    let started = Instant::now();
    let mut done = 0usize;
    for commit in &recorder.commits {
        if started.elapsed() >= budget {
            break;
        }
        // Stream creation is not a commit: outside the timing.
        let name = peer
            .stream_for(&recorder.streams[commit.stream], commit.speculative)
            .map_err(CliError::Peer)?;
        let t = Instant::now();
        peer.commit(&name, &commit.events).map_err(CliError::Peer)?;
        let elapsed = t.elapsed();
        record(&mut naive, elapsed);
        naive_total += elapsed;
        record(&mut helios, commit.latency);
        helios_total += commit.latency;
        done += 1;
        if done.is_multiple_of(64) {
            // Whichever ends first: the commits or the time budget.
            let by_count = done as f64 / recorder.commits.len().max(1) as f64;
            let by_time = started.elapsed().as_secs_f64() / budget.as_secs_f64().max(1e-9);
            #[expect(
                clippy::cast_possible_truncation,
                reason = "a fraction of BAR_STEPS, clamped to it"
            )]
            let position = (by_count.max(by_time).min(1.0) * BAR_STEPS as f64) as u64;
            bar.set_message(format!("{} commits", thousands(done as u64)));
            bar.set_position(position);
        }
    }
    bar.finish_and_clear();
    let after = log_size(peer.engine().inspect())?;
    peer.close().map_err(CliError::Peer)?;
    let commits = done as u64;
    let helios_per_commit = helios_log_bytes as f64 / recorder.commit_count.max(1) as f64;
    let naive_per_commit =
        after.used_bytes.saturating_sub(before.used_bytes) as f64 / commits.max(1) as f64;
    Ok(DurablePeerJson {
        commits,
        complete: done == recorder.commits.len(),
        helios: Percentiles::from_histogram(&helios, "ns"),
        naive: Percentiles::from_histogram(&naive, "ns"),
        time_ratio: json::round(
            naive_total.as_secs_f64() / helios_total.as_secs_f64().max(1e-12),
            1,
        ),
        helios_log_bytes_per_commit: json::round(helios_per_commit, 2),
        naive_log_bytes_per_commit: json::round(naive_per_commit, 2),
        bytes_ratio: json::round(naive_per_commit / helios_per_commit.max(1e-12), 1),
    })
}
