//! The workloads `helios tune` sweeps over: every event of every stream, in the order and the
//! batches in which they are appended to each scratch store, plus the keys each stream writes
//! (the point reads of a sample pick among them).
//!
//! Three sources, all held in memory:
//! - [`uniform`]: one generated stream, `helios_workloads::kv::KvWorkload` (the workload of
//!   the random-access read bench): N events over K keys, each changing 1 to 4 keys, one
//!   `set`/`del` line per key, applied by `KvBatchMachine`.
//! - [`mcts()`]: the durable events of a Monte Carlo tree search over Connect Four
//!   (`helios_workloads::mcts`): one stream per game, one `set cell/R/C P` event per move played,
//!   recorded from the search's promotions and replayed in the same batches.
//! - [`from_store`]: the streams of an existing store, read in log order; streams with an event
//!   that is not a key-value event are left out (their views would fail).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use helios::kv;
use helios::{Engine, Lsn, Version};
use helios_workloads::kv::{KvBatchMachine, KvWorkload};
use helios_workloads::mcts::{self, MctsConfig, Op};

use super::TuneError;
use crate::error::CliError;

/// Events per append when the source has no batches of its own (uniform, `--from`): the
/// random-access read bench's batch.
pub const APPEND_BATCH: usize = 1000;

/// What an event read with `--from` holds in memory beside its payload: its buffer and its
/// place in a batch, with the allocator's overhead.
const HELD_BYTES_PER_EVENT: u64 = 64;

/// The name of the uniform workload's one stream.
pub const UNIFORM_STREAM: &str = "tune-uniform";

/// How a workload's events become state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// The built-in key-value machine: one `set KEY VALUE` or `del KEY` per event.
    Kv,
    /// `KvBatchMachine`: one `set`/`del` line per key, several lines per event.
    KvBatch,
}

impl Machine {
    /// The keys `event` writes, or why it is not an event of this machine.
    fn keys<'a>(self, event: &'a [u8]) -> Result<Vec<&'a [u8]>, kv::KvError> {
        let key = |line: &'a [u8]| {
            kv::parse(line).map(|parsed| match parsed {
                kv::KvEvent::Set { key, .. } | kv::KvEvent::Del { key } => key,
            })
        };
        match self {
            Machine::Kv => Ok(vec![key(event)?]),
            Machine::KvBatch => event.split(|&b| b == b'\n').map(key).collect(),
        }
    }

    /// Opens a builder with this machine as the default one.
    pub fn configure(self, builder: helios::EngineBuilder) -> helios::EngineBuilder {
        match self {
            Machine::Kv => builder,
            Machine::KvBatch => builder.state_machine(KvBatchMachine),
        }
    }
}

/// One stream of a workload.
#[derive(Clone, Debug)]
pub struct Stream {
    /// Its name, in the source and in every scratch store.
    pub name: String,
    /// Its events: its head once appended.
    pub events_count: u64,
    /// Every key its events write, sorted: what the point reads of a sample pick from.
    pub keys: Vec<Vec<u8>>,
}

/// One `Engine::append` call: events of one stream.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Index into [`Workload::streams`].
    pub stream: usize,
    /// The events, in version order.
    pub events: Vec<Vec<u8>>,
}

/// A workload: what to append to each scratch store, in order.
#[derive(Clone, Debug)]
pub struct Workload {
    /// `uniform`, `mcts` or `from`.
    pub kind: &'static str,
    /// One line for reports: the source and its parameters.
    pub description: String,
    /// The state machine of every stream.
    pub machine: Machine,
    /// The streams with at least one event.
    pub streams: Vec<Stream>,
    /// The appends, in order.
    pub batches: Vec<Batch>,
    /// Streams of the source left out, with the reason (only `--from`).
    pub skipped: Vec<(String, String)>,
}

impl Workload {
    /// Every event of every stream.
    pub fn events_count(&self) -> u64 {
        self.streams.iter().map(|s| s.events_count).sum()
    }

    /// Bytes of event payloads.
    pub fn payload_bytes(&self) -> u64 {
        self.batches
            .iter()
            .flat_map(|b| &b.events)
            .map(|e| e.len() as u64)
            .sum()
    }

    /// Events of the longest stream.
    pub fn longest_stream_events(&self) -> u64 {
        self.streams
            .iter()
            .map(|s| s.events_count)
            .max()
            .unwrap_or(0)
    }

    /// Builds a workload from appends in order, collecting each stream's keys and checking
    /// that every event belongs to `machine`: a stream with one that does not is left out
    /// whole, with the reason, in [`Workload::skipped`].
    fn from_batches(
        kind: &'static str,
        description: String,
        machine: Machine,
        names: Vec<String>,
        batches: Vec<Batch>,
    ) -> Workload {
        let mut keys: Vec<BTreeSet<Vec<u8>>> = vec![BTreeSet::new(); names.len()];
        let mut counts = vec![0u64; names.len()];
        let mut rejected: Vec<Option<String>> = vec![None; names.len()];
        for batch in &batches {
            let stream = batch.stream;
            for event in &batch.events {
                counts[stream] += 1;
                if rejected[stream].is_some() {
                    continue;
                }
                match machine.keys(event) {
                    Ok(event_keys) => {
                        keys[stream].extend(event_keys.into_iter().map(<[u8]>::to_vec));
                    }
                    Err(error) => {
                        rejected[stream] = Some(format!(
                            "event {} is not a key-value event: {error}",
                            counts[stream]
                        ));
                    }
                }
            }
        }
        // Renumber the streams that stay, in their order of first append.
        let mut renumbered: Vec<Option<usize>> = vec![None; names.len()];
        let mut streams = Vec::new();
        let mut skipped = Vec::new();
        for (index, name) in names.into_iter().enumerate() {
            if let Some(reason) = rejected[index].take() {
                skipped.push((name, reason));
            } else if counts[index] > 0 {
                renumbered[index] = Some(streams.len());
                streams.push(Stream {
                    name,
                    events_count: counts[index],
                    keys: std::mem::take(&mut keys[index]).into_iter().collect(),
                });
            }
        }
        let batches = batches
            .into_iter()
            .filter_map(|batch| {
                renumbered[batch.stream].map(|stream| Batch {
                    stream,
                    events: batch.events,
                })
            })
            .collect();
        Workload {
            kind,
            description,
            machine,
            streams,
            batches,
            skipped,
        }
    }
}

/// The uniform workload: `events` events over `keys` keys, 1 to `keys_per_event` keys each.
pub fn uniform(events: u64, keys: u64, keys_per_event: u64, seed: u64) -> Workload {
    let generated = KvWorkload::generate(events, keys, keys_per_event, seed);
    let batches = generated
        .events()
        .chunks(APPEND_BATCH)
        .map(|chunk| Batch {
            stream: 0,
            events: chunk.to_vec(),
        })
        .collect();
    let description = format!(
        "uniform: one stream of {events} events over {keys} keys, 1-{keys_per_event} keys per \
         event, 32-byte values, seed {seed:#x}"
    );
    Workload::from_batches(
        "uniform",
        description,
        Machine::KvBatch,
        vec![UNIFORM_STREAM.to_owned()],
        batches,
    )
}

/// The MCTS workload: runs the search in a scratch store under `scratch`, records every
/// promotion (the durable events: one move per event, one stream per game) and checks them
/// against what the store read back.
pub fn mcts(
    simulations: u64,
    promote_every: u32,
    seed: u64,
    scratch: &Path,
) -> Result<Workload, CliError> {
    let config = MctsConfig {
        seed,
        simulations,
        promote_every,
        ..MctsConfig::default()
    };
    let dir = tempfile::Builder::new()
        .prefix("helios-tune-mcts-")
        .tempdir_in(scratch)
        .map_err(CliError::io("create a scratch directory for the MCTS run"))?;
    let engine = Engine::builder(dir.path())
        .options({
            let mut options = helios::Options::default();
            options.log.segment_size_bytes = super::measure::SCRATCH_SEGMENT_SIZE_BYTES;
            options
        })
        .open()?;
    let mut names: Vec<String> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut batches: Vec<Batch> = Vec::new();
    let mut observe = |op: &Op, _latency: Duration| {
        if let Op::Promote { stream, events, .. } = op {
            let next = names.len();
            let stream_index = *index.entry(stream.clone()).or_insert(next);
            if stream_index == next {
                names.push(stream.clone());
            }
            batches.push(Batch {
                stream: stream_index,
                events: events.clone(),
            });
        }
    };
    let report = mcts::run_mcts(&engine, &config, &mut observe)
        .map_err(|e| TuneError::Mcts(e.to_string()))?;
    // The recorded promotions must be exactly the streams' durable events.
    for (stream_index, name) in names.iter().enumerate() {
        let recorded: Vec<&Vec<u8>> = batches
            .iter()
            .filter(|b| b.stream == stream_index)
            .flat_map(|b| &b.events)
            .collect();
        let read: Vec<Vec<u8>> = engine
            .read(name, ..)?
            .map(|event| event.map(|e| e.payload))
            .collect::<Result<_, _>>()?;
        if read.len() != recorded.len() || read.iter().zip(&recorded).any(|(a, b)| a != *b) {
            return Err(CliError::WorkloadCheck {
                stream: name.clone(),
                reason: format!(
                    "the MCTS run promoted {} events, the store holds {} others",
                    recorded.len(),
                    read.len()
                ),
            });
        }
    }
    engine.close()?;
    let description = format!(
        "mcts: the moves played by a Connect Four MCTS ({simulations} simulations, a move every \
         {promote_every}, seed {seed:#x}): {} games, {} moves, one stream per game",
        names.len(),
        report.events_critical
    );
    Ok(Workload::from_batches(
        "mcts",
        description,
        Machine::Kv,
        names,
        batches,
    ))
}

/// The streams of the store in `dir`, in log order, at most `events_max` events: read through a
/// read-only handle, which changes nothing in the store (and works while a writer holds it).
pub fn from_store(dir: &Path, events_max: Option<u64>) -> Result<Workload, CliError> {
    let engine = helios::ReadOnly::open(dir, helios::Options::default())?;
    let infos: Vec<_> = engine.streams().collect();
    let mut names: Vec<String> = Vec::new();
    // Stream id -> index into `names`, in order of first event.
    let mut index: BTreeMap<u64, usize> = BTreeMap::new();
    let mut batches: Vec<Batch> = Vec::new();
    let mut read = 0u64;
    // What the events read so far hold in memory: bounded as they are read, since a store's
    // size is not known before.
    let mut held_bytes = 0u64;
    for event in engine.events_from(Lsn(1))? {
        if events_max.is_some_and(|max| read >= max) {
            break;
        }
        let event = event?;
        read += 1;
        held_bytes = held_bytes.saturating_add(event.payload.len() as u64 + HELD_BYTES_PER_EVENT);
        if held_bytes > super::MEMORY_BYTES_MAX {
            return Err(TuneError::Usage(format!(
                "the first {read} events of {} take more than the sweep's memory limit of {}: \
                 sweep over fewer with --events N",
                dir.display(),
                crate::text::bytes(super::MEMORY_BYTES_MAX)
            ))
            .into());
        }
        let next = names.len();
        let stream = *index.entry(event.stream.0).or_insert(next);
        if stream == next {
            let info = infos.iter().find(|i| i.id == event.stream);
            names.push(
                info.map_or_else(|| format!("stream-{}", event.stream.0), |i| i.name.clone()),
            );
        }
        match batches.last_mut() {
            Some(batch) if batch.stream == stream && batch.events.len() < APPEND_BATCH => {
                batch.events.push(event.payload);
            }
            _ => batches.push(Batch {
                stream,
                events: vec![event.payload],
            }),
        }
    }
    drop(engine);
    let streams_total = infos.iter().filter(|i| i.head > Version::ZERO).count();
    let mut workload = Workload::from_batches("from", String::new(), Machine::Kv, names, batches);
    let limit = events_max.map_or_else(String::new, |max| format!(", at most the first {max}"));
    let skipped = match workload.skipped.len() {
        0 => String::new(),
        1 => ", 1 stream skipped as not key-value".to_owned(),
        n => format!(", {n} streams skipped as not key-value"),
    };
    workload.description = format!(
        "from {}: {} events of {} key-value streams in log order ({read} events read of {} \
         streams{limit}{skipped})",
        dir.display(),
        workload.events_count(),
        workload.streams.len(),
        streams_total,
    );
    Ok(workload)
}
