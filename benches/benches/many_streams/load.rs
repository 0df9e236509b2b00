//! Appends: the bulk load of each store (events/s) and the sample of critical appends
//! (latencies), from the same generated events.
//!
//! The workload's order is split in two: the first `events - critical` events are the bulk
//! load, the last `critical` events the critical sample, so every event of the run comes from
//! the generator and every stream ends with exactly `events_per_stream` events (the reference
//! answers of the loads hold). Events are generated in chunks of [`CHUNK_EVENTS`] before each
//! timed loop: the clocks time the stores, not the generator.

use std::time::{Duration, Instant};

use helios::{Durability, Engine, Version};
use helios_peers::sqlite_event_store::{NewEvent, SqliteEventStore};
use helios_workloads::latency::Latencies;
use helios_workloads::many_streams::{Chunk, Cursor, EventRef, ManyStreams};

use crate::Result;

/// Events generated ahead of each timed loop.
const CHUNK_EVENTS: usize = 100_000;
/// Events per SQLite transaction in its bulk load.
pub const SQLITE_BULK_TRANSACTION_EVENTS: usize = 1_000;
/// Events per store per turn of the interleaved critical sample.
const CRITICAL_TURN_EVENTS: usize = 100;

/// A bulk load: how many events, how long the append calls took.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct BulkLoad {
    /// Events appended.
    pub events: u64,
    /// Their payloads' bytes.
    pub payload_bytes: u64,
    /// Time inside the append calls (or transactions), generation excluded.
    pub append_seconds: f64,
    /// For Helios: `Engine::sync` after the last append (making every normal append durable
    /// and indexed); for SQLite: 0 (every transaction commits durably).
    pub sync_seconds: f64,
}

impl BulkLoad {
    /// Events per second over the append calls.
    pub fn events_per_s(&self) -> f64 {
        self.events as f64 / self.append_seconds.max(f64::MIN_POSITIVE)
    }

    /// Events per second up to durability (append calls plus the final sync).
    pub fn durable_events_per_s(&self) -> f64 {
        self.events as f64 / (self.append_seconds + self.sync_seconds).max(f64::MIN_POSITIVE)
    }
}

/// The name of an event's stream.
fn name<'n>(names: &'n [String], event: &EventRef<'_>) -> &'n str {
    &names[usize::try_from(event.stream.0).expect("stream indices fit usize")]
}

/// Loads the first `count` events of the workload into SQLite in transactions of
/// [`SQLITE_BULK_TRANSACTION_EVENTS`] events, each committed durably.
pub fn sqlite_bulk(
    store: &mut SqliteEventStore,
    workload: &ManyStreams,
    names: &[String],
    count: u64,
) -> Result<BulkLoad> {
    let mut cursor = workload.cursor();
    let mut chunk = Chunk::default();
    let mut load = BulkLoad {
        events: 0,
        payload_bytes: 0,
        append_seconds: 0.0,
        sync_seconds: 0.0,
    };
    let mut elapsed = Duration::ZERO;
    while load.events < count {
        next_chunk(&mut cursor, count - load.events, &mut chunk);
        let events: Vec<NewEvent<'_>> = chunk
            .iter()
            .map(|event| NewEvent {
                stream: name(names, &event),
                version: event.version,
                payload: event.payload,
            })
            .collect();
        let started = Instant::now();
        for transaction in events.chunks(SQLITE_BULK_TRANSACTION_EVENTS) {
            store.append(transaction)?;
        }
        elapsed += started.elapsed();
        load.events += chunk.len() as u64;
        load.payload_bytes += chunk.payload_bytes();
        progress("sqlite bulk load", load.events, count, elapsed);
    }
    load.append_seconds = elapsed.as_secs_f64();
    Ok(load)
}

/// Loads the first `count` events of the workload into Helios, one `Durability::Normal`
/// append per event with the expected head, then syncs. Returns the cursor, at the first
/// event not loaded.
pub fn helios_bulk(
    engine: &Engine,
    workload: &ManyStreams,
    names: &[String],
    count: u64,
) -> Result<(BulkLoad, Cursor)> {
    let mut cursor = workload.cursor();
    let mut chunk = Chunk::default();
    let mut load = BulkLoad {
        events: 0,
        payload_bytes: 0,
        append_seconds: 0.0,
        sync_seconds: 0.0,
    };
    let mut elapsed = Duration::ZERO;
    while load.events < count {
        next_chunk(&mut cursor, count - load.events, &mut chunk);
        let started = Instant::now();
        for event in chunk.iter() {
            engine.append(
                name(names, &event),
                &[event.payload],
                Durability::Normal,
                Some(Version(event.version.0 - 1)),
            )?;
        }
        elapsed += started.elapsed();
        load.events += chunk.len() as u64;
        load.payload_bytes += chunk.payload_bytes();
        progress("helios bulk load", load.events, count, elapsed);
    }
    load.append_seconds = elapsed.as_secs_f64();
    let started = Instant::now();
    engine.sync()?;
    load.sync_seconds = started.elapsed().as_secs_f64();
    Ok((load, cursor))
}

/// The critical sample's latencies, per store.
#[derive(Debug)]
pub struct Critical {
    /// Helios `Durability::Critical` appends of one event.
    pub helios: Latencies,
    /// SQLite transactions of one event (and its snapshot row, every 10th event of a stream),
    /// committed with `synchronous=FULL`; `None` with `--skip-sqlite`.
    pub sqlite: Option<Latencies>,
}

/// Appends the next `count` events of `cursor` (the end of the workload) to each store, one
/// durable append per event, timing each: in turns of [`CRITICAL_TURN_EVENTS`] events per
/// store, the store that goes first alternating, so drift on a shared machine hits both alike.
pub fn critical_sample(
    engine: &Engine,
    mut sqlite: Option<&mut SqliteEventStore>,
    cursor: &mut Cursor,
    names: &[String],
    count: u64,
) -> Result<Critical> {
    let mut chunk = Chunk::default();
    cursor.next_chunk(usize::try_from(count)?, &mut chunk);
    let mut critical = Critical {
        helios: Latencies::new(),
        sqlite: sqlite.as_ref().map(|_| Latencies::new()),
    };
    let indices: Vec<usize> = (0..chunk.len()).collect();
    for (turn, range) in indices.chunks(CRITICAL_TURN_EVENTS).enumerate() {
        for store in 0..2 {
            let helios_now = (turn + store) % 2 == 0;
            for &i in range {
                let event = chunk.get(i);
                let stream = name(names, &event);
                if helios_now {
                    let started = Instant::now();
                    engine.append(
                        stream,
                        &[event.payload],
                        Durability::Critical,
                        Some(Version(event.version.0 - 1)),
                    )?;
                    critical.helios.record(started.elapsed());
                } else if let (Some(store), Some(latencies)) =
                    (sqlite.as_deref_mut(), critical.sqlite.as_mut())
                {
                    let new = [NewEvent {
                        stream,
                        version: event.version,
                        payload: event.payload,
                    }];
                    let started = Instant::now();
                    store.append(&new)?;
                    latencies.record(started.elapsed());
                }
            }
        }
    }
    Ok(critical)
}

/// Takes the next `left` events at most, in a chunk of at most [`CHUNK_EVENTS`].
fn next_chunk(cursor: &mut Cursor, left: u64, chunk: &mut Chunk) {
    let count = usize::try_from(left).map_or(CHUNK_EVENTS, |left| left.min(CHUNK_EVENTS));
    cursor.next_chunk(count, chunk);
}

/// A progress line on stderr every ten chunks and at the end.
fn progress(what: &str, done: u64, total: u64, elapsed: Duration) {
    if done == total || (done / CHUNK_EVENTS as u64).is_multiple_of(10) {
        eprintln!(
            "{what}: {done} / {total} events, {:.1} s in appends",
            elapsed.as_secs_f64()
        );
    }
}
