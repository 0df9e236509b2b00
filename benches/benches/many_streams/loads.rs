//! Loads of a stream's state, warm: the latest state of a random stream, and the state of a
//! random stream at a random version, by Helios and by SQLite side by side, every answer
//! checked against the workload's reference state.
//!
//! Helios loads as a user would: `Engine::head` then `Engine::state_at(stream, head)` for the
//! latest state, `Engine::state_at(stream, v)` for a version. SQLite loads the newest snapshot
//! (at or below the version) plus the events after it, folded
//! (`SqliteEventStore::latest_state`, `SqliteEventStore::state_at`). The clock covers the
//! load and the owned state it returns; the check against the reference (regenerating the
//! stream's events and folding them) and dropping the state are outside it.
//!
//! Samples run in turns of [`TURN_SAMPLES`] per store, the store that goes first alternating,
//! after [`WARMUP_SAMPLES`] untimed samples each, so drift on a shared machine hits both alike.

use std::time::Instant;

use helios::{Engine, Version};
use helios_peers::sqlite_event_store::SqliteEventStore;
use helios_workloads::Rng;
use helios_workloads::latency::Latencies;
use helios_workloads::many_streams::{ManyStreams, State, StreamIndex};

use crate::Result;

/// Samples per store per turn.
const TURN_SAMPLES: u64 = 100;
/// Untimed samples per store before the timed ones.
const WARMUP_SAMPLES: u64 = 200;

/// Which state a sample loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The stream's latest state (its head unknown to the caller).
    Latest,
    /// The stream's state at a uniformly random version in `1..=events_per_stream`.
    RandomVersion,
}

/// Latencies of one kind of load, per store.
#[derive(Debug)]
pub struct Loads {
    /// Helios.
    pub helios: Latencies,
    /// SQLite; `None` without it.
    pub sqlite: Option<Latencies>,
    /// Answers checked against the reference (every timed and untimed sample of both stores).
    pub checked: u64,
}

/// One sample: the stream and, for [`Target::RandomVersion`], the version.
struct Sample {
    stream: StreamIndex,
    version: Version,
}

/// Times `samples` loads of `target` per store, each on a random stream (and version), and
/// checks every answer against `workload`'s reference state.
///
/// # Errors
/// Either store's errors, or an answer that differs from the reference (a wrong answer ends
/// the run: a fast wrong load is not a measurement).
pub fn measure(
    engine: &Engine,
    sqlite: Option<&SqliteEventStore>,
    workload: &ManyStreams,
    names: &[String],
    target: Target,
    samples: u64,
    rng: &mut Rng,
) -> Result<Loads> {
    let mut loads = Loads {
        helios: Latencies::new(),
        sqlite: sqlite.map(|_| Latencies::new()),
        checked: 0,
    };
    let head = Version(u64::from(workload.events_per_stream));
    let draw = |rng: &mut Rng| -> Result<Sample> {
        let stream = StreamIndex(u32::try_from(rng.below(u64::from(workload.streams)))?);
        let version = match target {
            Target::Latest => head,
            Target::RandomVersion => Version(1 + rng.below(head.0)),
        };
        Ok(Sample { stream, version })
    };
    let mut done = 0;
    let mut turn = 0u64;
    // Warm-up first (untimed), then the timed turns.
    for (timed, total) in [(false, WARMUP_SAMPLES.min(samples)), (true, samples)] {
        let mut left = total;
        while left > 0 {
            let count = left.min(TURN_SAMPLES);
            for store in 0..2u64 {
                let helios_now = (turn + store).is_multiple_of(2);
                if !helios_now && sqlite.is_none() {
                    continue;
                }
                for _ in 0..count {
                    let sample = draw(rng)?;
                    let name = &names[usize::try_from(sample.stream.0)?];
                    let started = Instant::now();
                    let (version, state) = if helios_now {
                        load_helios(engine, name, target, sample.version)?
                    } else if let Some(store) = sqlite {
                        match target {
                            Target::Latest => store.latest_state(name)?,
                            Target::RandomVersion => store.state_at(name, sample.version)?,
                        }
                    } else {
                        unreachable!("SQLite turns are skipped without SQLite")
                    };
                    let elapsed = started.elapsed();
                    check(
                        workload,
                        &sample,
                        name,
                        if helios_now { "helios" } else { "sqlite" },
                        version,
                        &state,
                    )?;
                    loads.checked += 1;
                    if timed {
                        if helios_now {
                            loads.helios.record(elapsed);
                        } else if let Some(latencies) = loads.sqlite.as_mut() {
                            latencies.record(elapsed);
                        }
                    }
                    drop(state);
                }
            }
            left -= count;
            turn += 1;
        }
        done += total;
    }
    eprintln!(
        "{target:?} loads: {done} per store, {} answers checked",
        loads.checked
    );
    Ok(loads)
}

/// One Helios load, as a user would write it.
fn load_helios(
    engine: &Engine,
    name: &str,
    target: Target,
    version: Version,
) -> Result<(Version, State)> {
    let version = match target {
        Target::Latest => engine
            .head(name)
            .ok_or_else(|| format!("helios has no stream `{name}`"))?,
        Target::RandomVersion => version,
    };
    Ok((version, engine.state_at(name, version)?))
}

/// Checks one answer: the version reached and the state, against the reference.
fn check(
    workload: &ManyStreams,
    sample: &Sample,
    name: &str,
    store: &str,
    version: Version,
    state: &State,
) -> Result<()> {
    if version != sample.version {
        return Err(format!(
            "{store} loaded `{name}` at version {}, expected version {}",
            version.0, sample.version.0
        )
        .into());
    }
    let reference = workload.state_at(sample.stream, sample.version);
    if *state != reference {
        return Err(format!(
            "{store} loaded a wrong state of `{name}` at version {}: {} keys, the reference has \
             {} (first difference at key {:?})",
            version.0,
            state.len(),
            reference.len(),
            first_difference(state, &reference).map(|k| String::from_utf8_lossy(k).into_owned())
        )
        .into());
    }
    Ok(())
}

/// The first key (in key order) whose value differs between two states, or that only one has.
fn first_difference<'s>(a: &'s State, b: &'s State) -> Option<&'s [u8]> {
    let mut keys: Vec<&[u8]> = a.keys().chain(b.keys()).map(Vec::as_slice).collect();
    keys.sort_unstable();
    keys.into_iter().find(|k| a.get(*k) != b.get(*k))
}
