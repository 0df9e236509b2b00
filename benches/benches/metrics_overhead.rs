//! What recording latency histograms costs: the cheapest operations (a speculative append, a
//! normal append, a warm view) with `Options::metrics` on and off, side by side.
//!
//! Run: `cargo bench -p helios-benches --bench metrics_overhead -- --noplot`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use helios::{Durability, Engine, Version, kv};

fn event(i: u64) -> Vec<u8> {
    let key = format!("k{}", i % 1000);
    let value = format!("{i:032}");
    kv::encode(&kv::KvEvent::Set {
        key: key.as_bytes(),
        value: value.as_bytes(),
    })
}

fn open(dir: &std::path::Path, metrics: bool) -> Engine {
    let options = helios::Options {
        metrics,
        ..helios::Options::default()
    };
    let engine = Engine::open(dir, options).expect("open a scratch store");
    let events: Vec<Vec<u8>> = (0..5_000).map(event).collect();
    engine
        .append("s", &events, Durability::Normal, None)
        .expect("load");
    engine.checkpoints().sync().expect("checkpoints");
    engine
}

fn overhead(c: &mut Criterion) {
    for metrics in [false, true] {
        let label = if metrics { "metrics_on" } else { "metrics_off" };
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = open(dir.path(), metrics);
        let mut group = c.benchmark_group(label);
        let mut branch = engine.branches().fork("s", Version(5_000)).expect("fork");
        let payload = event(7);
        let mut appended = 0u64;
        group.bench_function("append_speculative", |b| {
            b.iter(|| {
                appended += 1;
                if appended.is_multiple_of(100_000) {
                    // Keep the branch's memory bounded.
                    engine.branches().discard(branch).expect("discard");
                    branch = engine.branches().fork("s", Version(5_000)).expect("fork");
                }
                black_box(
                    engine
                        .branches()
                        .append(branch, &[&payload], None)
                        .expect("append"),
                )
            });
        });
        group.bench_function("append_normal", |b| {
            b.iter(|| {
                black_box(
                    engine
                        .append("n", &[&payload], Durability::Normal, None)
                        .expect("append"),
                )
            });
        });
        let mut v = 0u64;
        group.bench_function("view_get", |b| {
            b.iter(|| {
                v = (v + 997) % 5_000 + 1;
                let view = engine.view("s", Version(v)).expect("view");
                black_box(view.get(b"k42").map(<[u8]>::len))
            });
        });
        group.finish();
    }
}

criterion_group!(benches, overhead);
criterion_main!(benches);
