//! Criterion append benches, 100-byte payloads, every peer in the same process:
//!
//! - `append_critical`: one durable append per iteration, Helios `Durability::Critical` side by
//!   side with the raw floor (`pwrite` + `fdatasync`) and SQLite (WAL, `synchronous=FULL`).
//! - `append_normal`: Helios `Durability::Normal`, one append per iteration.
//! - `group_commit`: Helios critical appends from 1 and 8 threads; one iteration is one append
//!   on every thread, so the reported throughput is events/s across threads.
//!
//! Criterion gives no tail latency: `benches/append_latency.rs` prints medians with p99.
//!
//! Run: `cargo bench -p helios-benches --bench append -- --noplot`.

use std::fmt;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use helios::Durability;
use helios_benches::{Machine, open_engine, scratch_dir};
use helios_peers::floor::{RAW_FLOOR_FILE_BYTES, RawFloor};
use helios_peers::sqlite::SqlitePeer;
use helios_workloads::payloads::{PAYLOAD_LEN, Payloads};

/// Who performs a durable append.
#[derive(Clone, Copy, Debug)]
enum Peer {
    /// Helios, `Durability::Critical`.
    Helios,
    /// `pwrite` + `fdatasync` into a pre-zeroed file.
    RawFloor,
    /// SQLite, WAL, `synchronous=FULL`, one insert per transaction.
    Sqlite,
}

/// A durable-append case; its `Display` is the benchmark id.
#[derive(Clone, Copy, Debug)]
struct CriticalCase {
    peer: Peer,
    payload_len: usize,
}

impl fmt::Display for CriticalCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peer = match self.peer {
            Peer::Helios => "helios",
            Peer::RawFloor => "raw_floor",
            Peer::Sqlite => "sqlite",
        };
        write!(f, "{peer}/{}B", self.payload_len)
    }
}

/// A normal-append case; its `Display` is the benchmark id.
#[derive(Clone, Copy, Debug)]
struct NormalCase {
    payload_len: usize,
}

impl fmt::Display for NormalCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "helios/{}B", self.payload_len)
    }
}

/// A group-commit case; its `Display` is the benchmark id.
#[derive(Clone, Copy, Debug)]
struct GroupCase {
    threads: usize,
    payload_len: usize,
}

impl fmt::Display for GroupCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "threads={}/{}B", self.threads, self.payload_len)
    }
}

const STREAM: &str = "bench";

fn append_critical(c: &mut Criterion) {
    eprintln!("machine: {}", Machine::describe());
    let payloads = Payloads::default();
    let dir = scratch_dir("helios-criterion-critical-");
    let engine = open_engine(&dir.path().join("helios"));
    let mut floor =
        RawFloor::create(&dir.path().join("floor"), RAW_FLOOR_FILE_BYTES).expect("create floor");
    let mut sqlite = SqlitePeer::create(&dir.path().join("events.db")).expect("create sqlite");

    let mut group = c.benchmark_group("append_critical");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for peer in [Peer::RawFloor, Peer::Helios, Peer::Sqlite] {
        let case = CriticalCase {
            peer,
            payload_len: PAYLOAD_LEN,
        };
        let mut i = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(case), &case, |b, case| {
            b.iter(|| {
                let payload = payloads.get(i);
                i += 1;
                match case.peer {
                    Peer::Helios => {
                        black_box(
                            engine
                                .append(STREAM, &[payload], Durability::Critical, None)
                                .expect("critical append"),
                        );
                    }
                    Peer::RawFloor => floor.append(payload).expect("raw floor append"),
                    Peer::Sqlite => sqlite.append(STREAM, payload).expect("sqlite insert"),
                }
            });
        });
    }
    group.finish();
}

fn append_normal(c: &mut Criterion) {
    let payloads = Payloads::default();
    let dir = scratch_dir("helios-criterion-normal-");
    let engine = open_engine(dir.path());
    let mut group = c.benchmark_group("append_normal");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let case = NormalCase {
        payload_len: PAYLOAD_LEN,
    };
    let mut i = 0u64;
    group.bench_with_input(BenchmarkId::from_parameter(case), &case, |b, _| {
        b.iter(|| {
            let payload = payloads.get(i);
            i += 1;
            black_box(
                engine
                    .append(STREAM, &[payload], Durability::Normal, None)
                    .expect("normal append"),
            )
        });
    });
    group.finish();
}

fn group_commit(c: &mut Criterion) {
    let payloads = Payloads::default();
    let dir = scratch_dir("helios-criterion-group-");
    let engine = open_engine(dir.path());
    let mut group = c.benchmark_group("group_commit");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for threads in [1, 8] {
        let case = GroupCase {
            threads,
            payload_len: PAYLOAD_LEN,
        };
        // One iteration is one critical append on each thread.
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_with_input(BenchmarkId::from_parameter(case), &case, |b, case| {
            b.iter_custom(|iters| {
                let barrier = Barrier::new(case.threads + 1);
                std::thread::scope(|s| {
                    let handles: Vec<_> = (0..case.threads)
                        .map(|k| {
                            let (engine, payloads, barrier) = (&engine, &payloads, &barrier);
                            s.spawn(move || {
                                let stream = format!("group-{}-{k}", case.threads);
                                barrier.wait();
                                for n in 0..iters {
                                    engine
                                        .append(
                                            &stream,
                                            &[payloads.get(n)],
                                            Durability::Critical,
                                            None,
                                        )
                                        .expect("critical append");
                                }
                            })
                        })
                        .collect();
                    barrier.wait();
                    let start = Instant::now();
                    for h in handles {
                        h.join().expect("appending thread");
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, append_critical, append_normal, group_commit);
criterion_main!(benches);
