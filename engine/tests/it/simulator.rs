//! The deterministic crash simulator: a seeded workload of every durability class, branches,
//! promotions, checkpoint building and reopens runs on the simulated storage, stops at a
//! chosen I/O step, suffers a fault, "crashes", reopens, and is checked against a model.
//!
//! Every crash point of each seeded workload is enumerated, with every crash fault, plus
//! failed fsyncs (at each sync) and a full disk (at several capacities). A failing scenario
//! panics with a one-line command that replays exactly that scenario.
//!
//! Scale: `HELIOS_SIM_SEEDS` (default 16 per shard, 4 shards) sets the seeds per shard; the
//! default runs over 10,000 scenarios.

use crate::support::fold;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use helios::{
    CrashFault, Durability, Engine, Error, LevelPolicy, LogError, Lsn, SimStorage, Version, kv,
};
use helios_testkit::Rng;

const SEGMENT: u64 = 4096;
const STREAMS: [&str; 3] = ["alpha", "beta", "gamma"];

#[derive(Clone, Copy, Debug)]
enum Op {
    Append {
        stream: usize,
        count: u64,
        critical: bool,
    },
    Sync,
    /// Fork at the head, append speculative events, fork a rollout off it, and discard both.
    Speculate {
        stream: usize,
        count: u64,
    },
    /// Fork at the head, append events, promote them all (critical or normal), prune.
    Promote {
        stream: usize,
        count: u64,
        critical: bool,
    },
    SyncCheckpoints,
    /// A clean close and reopen.
    Reopen,
}

fn workload(seed: u64, len: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    (0..len)
        .map(|_| {
            let stream = usize::try_from(rng.below(STREAMS.len() as u64)).unwrap_or(0);
            match rng.below(20) {
                0..=2 => Op::Sync,
                3..=7 => Op::Append {
                    stream,
                    count: 1 + rng.below(4),
                    critical: rng.below(3) == 0,
                },
                8..=11 => Op::Speculate {
                    stream,
                    count: 1 + rng.below(6),
                },
                12..=15 => Op::Promote {
                    stream,
                    count: 1 + rng.below(4),
                    critical: rng.below(2) == 0,
                },
                16 | 17 => Op::SyncCheckpoints,
                _ => Op::Reopen,
            }
        })
        .collect()
}

/// What the storage does wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The machine stops after `at` I/O operations and crashes with this fault.
    Crash { at: u64, fault: CrashFault },
    /// The `nth` fsync fails (the writer must refuse writes after it); then a crash.
    FailSync { nth: u64 },
    /// The disk holds only this many bytes; then a crash.
    DiskFull { capacity: u64 },
}

impl Fault {
    fn to_arg(self) -> String {
        match self {
            Fault::Crash { at, fault } => format!("crash:{at}:{fault:?}"),
            Fault::FailSync { nth } => format!("failsync:{nth}"),
            Fault::DiskFull { capacity } => format!("diskfull:{capacity}"),
        }
    }

    fn parse(arg: &str) -> Option<Fault> {
        let mut parts = arg.split(':');
        match parts.next()? {
            "crash" => {
                let at = parts.next()?.parse().ok()?;
                let fault = match parts.next()? {
                    "KeepAll" => CrashFault::KeepAll,
                    "LoseUnsynced" => CrashFault::LoseUnsynced,
                    "KeepPrefix" => CrashFault::KeepPrefix,
                    "TearLast" => CrashFault::TearLast,
                    "FlipBit" => CrashFault::FlipBit,
                    _ => return None,
                };
                Some(Fault::Crash { at, fault })
            }
            "failsync" => Some(Fault::FailSync {
                nth: parts.next()?.parse().ok()?,
            }),
            "diskfull" => Some(Fault::DiskFull {
                capacity: parts.next()?.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// Everything the workload sent to the log, in log order, and what was acknowledged.
#[derive(Default)]
struct Model {
    /// (stream, payload) in the order the log received them.
    sent: Vec<(usize, Vec<u8>)>,
    /// Positions in `sent` that end an atomic batch.
    boundaries: Vec<usize>,
    /// Events acknowledged as durable: everything before this position.
    durable: usize,
    /// Speculative events that were never promoted: none may ever be visible.
    never: Vec<Vec<u8>>,
    /// Whether an operation failed (the workload stops at the first failure).
    failed: bool,
    /// A guarantee broken while running.
    violation: Option<String>,
}

impl Model {
    fn failed_now(mut self) -> Model {
        self.failed = true;
        self
    }
}

/// A tempdir on tmpfs when there is one, for the few files outside the simulated storage (the
/// lock file): the store itself lives in the simulated storage.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("helios-sim")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("tempdir")
}

fn open(dir: &Path, sim: &SimStorage) -> Result<Engine, Error> {
    Engine::builder(dir)
        .options({
            let mut options = helios::Options::default();
            options.log.segment_size_bytes = SEGMENT;
            options.log.write_buffer_bytes = 256;
            options.checkpoints.policy = Some(LevelPolicy::new(4, 2).expect("policy"));
            options.background_threads = false;
            options
        })
        .storage(Arc::new(sim.clone()))
        .open()
}

/// Runs the workload until the storage fails; returns the model of what was sent.
fn run(dir: &Path, sim: &SimStorage, ops: &[Op], seed: u64, sync_fails: bool) -> Model {
    let mut model = Model::default();
    model.boundaries.push(0);
    let Ok(engine) = open(dir, sim) else {
        return model;
    };
    let (mut model, engine) = run_ops(engine, dir, sim, ops, seed, model);
    if let Some(engine) = engine
        && sync_fails
        && engine.head(STREAMS[0]).is_some()
    {
        // After a failed fsync the writer must refuse every write.
        let probe = vec![kv::encode(&kv::KvEvent::Set {
            key: b"probe",
            value: b"after-failure",
        })];
        let acknowledged = engine
            .append(STREAMS[0], &probe, Durability::Critical, None)
            .is_ok();
        if acknowledged && model.failed {
            model.violation = Some("a write succeeded after a failed fsync".into());
        }
        // Whatever happened, the probe may be in the log: whole, or (if refused) not at all.
        model.sent.extend(probe.into_iter().map(|e| (0, e)));
        model.boundaries.push(model.sent.len());
        if acknowledged {
            model.durable = model.sent.len();
        }
    }
    model
}

fn run_ops(
    mut engine: Engine,
    dir: &Path,
    sim: &SimStorage,
    ops: &[Op],
    seed: u64,
    mut model: Model,
) -> (Model, Option<Engine>) {
    let mut rng = Rng::new(seed ^ 0xDEAD_BEEF);
    let mut counter = 0u64;
    let mut events = |stream: usize, count: u64, tag: &str| -> Vec<Vec<u8>> {
        (0..count)
            .map(|_| {
                counter += 1;
                let key = format!("{}{}", STREAMS[stream], counter % 5);
                if counter.is_multiple_of(7) {
                    kv::encode(&kv::KvEvent::Del {
                        key: key.as_bytes(),
                    })
                } else {
                    let value = format!("{tag}-{counter}");
                    kv::encode(&kv::KvEvent::Set {
                        key: key.as_bytes(),
                        value: value.as_bytes(),
                    })
                }
            })
            .collect()
    };
    for op in ops {
        match *op {
            Op::Append {
                stream,
                count,
                critical,
            } => {
                let batch = events(stream, count, "plain");
                let class = if critical {
                    Durability::Critical
                } else {
                    Durability::Normal
                };
                let result = engine.append(STREAMS[stream], &batch, class, None);
                // A failed append may still reach the log whole (its sync failed): it is in
                // `sent`, at a boundary, but not acknowledged.
                model.sent.extend(batch.into_iter().map(|e| (stream, e)));
                model.boundaries.push(model.sent.len());
                if result.is_err() {
                    return (model.failed_now(), Some(engine));
                }
                if critical {
                    model.durable = model.sent.len();
                }
            }
            Op::Sync => {
                if engine.sync().is_err() {
                    return (model.failed_now(), Some(engine));
                }
                model.durable = model.sent.len();
            }
            Op::Speculate { stream, count } => {
                let Some(head) = engine.head(STREAMS[stream]) else {
                    continue;
                };
                let Ok(branch) = engine.branches().fork(STREAMS[stream], head) else {
                    return (model.failed_now(), Some(engine));
                };
                let batch = events(stream, count, "never");
                engine
                    .branches()
                    .append(branch, &batch, None)
                    .expect("branch");
                let rollout = engine
                    .branches()
                    .fork_branch(branch, Version(head.0 + 1))
                    .expect("rollout");
                let more = events(stream, 2, "never");
                engine
                    .branches()
                    .append(rollout, &more, None)
                    .expect("rollout");
                if engine
                    .branches()
                    .view(rollout, Version(head.0 + 3))
                    .is_err()
                {
                    return (model.failed_now(), Some(engine));
                }
                // Deletes carry no unique value: only the sets identify a speculative event.
                let unique = |e: &Vec<u8>| e.windows(6).any(|w| w == b"never-");
                model.never.extend(batch.into_iter().filter(unique));
                model.never.extend(more.into_iter().filter(unique));
                if rng.below(2) == 0 {
                    engine.branches().discard(branch).expect("discard");
                }
            }
            Op::Promote {
                stream,
                count,
                critical,
            } => {
                let Some(head) = engine.head(STREAMS[stream]) else {
                    continue;
                };
                let Ok(branch) = engine.branches().fork(STREAMS[stream], head) else {
                    return (model.failed_now(), Some(engine));
                };
                let batch = events(stream, count, "promoted");
                let appended = engine
                    .branches()
                    .append(branch, &batch, None)
                    .expect("branch");
                let class = if critical {
                    Durability::Critical
                } else {
                    Durability::Normal
                };
                let result = engine.branches().promote(branch, appended.last, class);
                model.sent.extend(batch.into_iter().map(|e| (stream, e)));
                model.boundaries.push(model.sent.len());
                if result.is_err() {
                    return (model.failed_now(), Some(engine));
                }
                if critical {
                    model.durable = model.sent.len();
                }
                engine.branches().prune(STREAMS[stream]).expect("prune");
            }
            Op::SyncCheckpoints => {
                if engine.checkpoints().sync().is_err() {
                    return (model.failed_now(), Some(engine));
                }
                model.durable = model.sent.len();
            }
            Op::Reopen => {
                if engine.close().is_err() {
                    return (model.failed_now(), None);
                }
                model.durable = model.sent.len();
                engine = match open(dir, sim) {
                    Ok(engine) => engine,
                    Err(_) => return (model.failed_now(), None),
                };
            }
        }
    }
    (model, Some(engine))
}

/// Runs one scenario; `Err` says what broke.
fn scenario(seed: u64, fault: Fault) -> Result<(), String> {
    let ops = workload(seed, 30);
    let dir = scratch_dir();
    let sim = SimStorage::new();
    let crash_fault = match fault {
        Fault::Crash { at, fault } => {
            sim.crash_after_ops(Some(at));
            fault
        }
        Fault::FailSync { nth } => {
            sim.fail_sync_after(Some(nth));
            CrashFault::LoseUnsynced
        }
        Fault::DiskFull { capacity } => {
            sim.set_capacity_bytes(Some(capacity));
            CrashFault::LoseUnsynced
        }
    };
    let model = run(
        dir.path(),
        &sim,
        &ops,
        seed,
        matches!(fault, Fault::FailSync { .. }),
    );
    if let Some(violation) = &model.violation {
        return Err(violation.clone());
    }
    sim.crash(crash_fault, seed.wrapping_mul(31).wrapping_add(7));
    sim.crash_after_ops(None);
    sim.fail_sync_after(None);
    sim.set_capacity_bytes(None);
    // Damage one checkpoint file now and then: it must be found and rebuilt.
    let damaged = damage_a_checkpoint(dir.path(), &sim, seed);
    let engine = match open(dir.path(), &sim) {
        Ok(engine) => engine,
        // A flipped bit in unsynced bytes followed by intact records is damage, not a torn
        // tail: refusing to open, naming the segment, is the documented outcome.
        Err(Error::Damaged {
            source: LogError::Corrupt { path, .. },
            ..
        }) if matches!(
            fault,
            Fault::Crash {
                fault: CrashFault::FlipBit,
                ..
            }
        ) && path.to_string_lossy().ends_with(".log") =>
        {
            return Ok(());
        }
        Err(e) => return Err(format!("reopen failed: {e}")),
    };
    check(&engine, &model, damaged)
}

/// Flips a byte in the middle of one checkpoint's archive in the packs (on the simulated
/// storage), for one seed in three. Returns whether it did.
fn damage_a_checkpoint(dir: &Path, sim: &SimStorage, seed: u64) -> bool {
    use helios::Storage as _;
    use helios_checkpoint::pack;
    if !seed.is_multiple_of(3) {
        return false;
    }
    let ckpt_dir = dir.join("checkpoints");
    let Ok(mut names) = sim.list_files(&ckpt_dir) else {
        return false;
    };
    names.retain(|n| pack::parse_pack_name(n).is_some());
    names.sort();
    let mut found = Vec::new();
    for name in &names {
        let path = ckpt_dir.join(name);
        let Ok(bytes) = sim.map_readonly(&path) else {
            continue;
        };
        let scan = pack::scan(
            &path,
            &bytes,
            pack::pack_header::LEN as u64,
            bytes.len() as u64,
        );
        found.extend(scan.entries.into_iter().map(|e| (path.clone(), e)));
    }
    let Some((path, entry)) = found.get((seed / 3) as usize % found.len().max(1)) else {
        return false;
    };
    let at = entry.offset + entry.len / 2 + 32;
    let Ok(file) = sim.open(path) else {
        return false;
    };
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, at).is_ok() && file.write_all_at(&[byte[0] ^ 0x5A], at).is_ok()
}

fn check(engine: &Engine, model: &Model, damaged: bool) -> Result<(), String> {
    let survived: Vec<(String, Vec<u8>)> = {
        let names: BTreeMap<u64, String> = engine.streams().map(|s| (s.id.0, s.name)).collect();
        let mut out = Vec::new();
        for event in engine.events_from(Lsn::ZERO).map_err(|e| e.to_string())? {
            let event = event.map_err(|e| format!("reading the log: {e}"))?;
            let name = names.get(&event.stream.0).cloned().unwrap_or_default();
            out.push((name, event.payload));
        }
        out
    };
    let n = survived.len();
    if n < model.durable || n > model.sent.len() {
        return Err(format!(
            "{n} events survived; {} were acknowledged durable, {} sent",
            model.durable,
            model.sent.len()
        ));
    }
    if !model.boundaries.contains(&n) {
        return Err(format!(
            "{n} events survived, which cuts an atomic append in two"
        ));
    }
    for (i, ((name, payload), (stream, sent))) in survived.iter().zip(&model.sent).enumerate() {
        if name != STREAMS[*stream] || payload != sent {
            return Err(format!("event {i} differs from what was sent"));
        }
    }
    if let Some((_, p)) = survived.iter().find(|(_, p)| model.never.contains(p)) {
        return Err(format!(
            "speculative event {:?} is visible",
            String::from_utf8_lossy(p)
        ));
    }
    for (s, name) in STREAMS.iter().enumerate() {
        let expected: Vec<&[u8]> = model.sent[..n]
            .iter()
            .filter(|(stream, _)| *stream == s)
            .map(|(_, p)| p.as_slice())
            .collect();
        let Some(head) = engine.head(name) else {
            if expected.is_empty() {
                continue;
            }
            return Err(format!("stream {name} is missing"));
        };
        if head.0 != expected.len() as u64 {
            return Err(format!("{name}: head {head}, expected {}", expected.len()));
        }
        // The index agrees with the log.
        let read: Vec<Vec<u8>> = engine
            .read(name, ..)
            .map_err(|e| e.to_string())?
            .map(|e| e.map(|e| e.payload).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        if read.iter().map(Vec::as_slice).ne(expected.iter().copied()) {
            return Err(format!("{name}: the index disagrees with the log"));
        }
        // Views equal the model, before and after the checkpoints catch up.
        for v in [head.0 / 2, head.0] {
            let view = engine.view(name, Version(v)).map_err(|e| e.to_string())?;
            let state: BTreeMap<Vec<u8>, Vec<u8>> =
                view.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
            if state != fold(&expected[..usize::try_from(v).unwrap_or(usize::MAX)]) {
                return Err(format!("{name} at {v}: the view differs from the model"));
            }
        }
    }
    let stats = engine.checkpoints().sync().map_err(|e| e.to_string())?;
    if damaged && stats.damaged > 0 && stats.rebuilt == 0 {
        return Err(format!("a damaged checkpoint was not rebuilt: {stats:?}"));
    }
    for name in STREAMS {
        let Some(head) = engine.head(name) else {
            continue;
        };
        let view = engine.view(name, head).map_err(|e| e.to_string())?;
        if view.report().events_replayed > 3 {
            return Err(format!(
                "{name}: {} events replayed after the checkpoints caught up ({}; open: {:?}; stats: {:?})",
                view.report().events_replayed,
                view.report(),
                engine.inspect().open_report().checkpoints,
                engine.checkpoints().stats()
            ));
        }
    }
    Ok(())
}

/// Every fault of one seed: every crash point with every crash fault, a failed fsync at each
/// sync, and a full disk at several capacities.
fn faults_of(seed: u64) -> Vec<Fault> {
    let ops = workload(seed, 30);
    let (total_ops, syncs) = {
        let dir = scratch_dir();
        let sim = SimStorage::new();
        run(dir.path(), &sim, &ops, seed, false);
        (sim.io_op_count(), 40)
    };
    let mut faults = Vec::new();
    for at in 0..=total_ops {
        for fault in [
            CrashFault::LoseUnsynced,
            CrashFault::KeepPrefix,
            CrashFault::TearLast,
            CrashFault::KeepAll,
            CrashFault::FlipBit,
        ] {
            faults.push(Fault::Crash { at, fault });
        }
    }
    for nth in 0..syncs {
        faults.push(Fault::FailSync { nth });
    }
    for k in 0..20 {
        faults.push(Fault::DiskFull {
            capacity: 2048 + k * 1500,
        });
    }
    faults
}

fn replay_command(seed: u64, fault: Fault) -> String {
    format!(
        "HELIOS_SIM_REPLAY={seed}/{} cargo nextest run -p helios --test it simulator::replay_one",
        fault.to_arg()
    )
}

/// Runs every fault of `seeds`; panics on the first failure with the command that replays it.
fn run_seeds(seeds: impl Iterator<Item = u64>) -> usize {
    let mut scenarios = 0;
    for seed in seeds {
        for fault in faults_of(seed) {
            if let Err(message) = scenario(seed, fault) {
                panic!(
                    "seed {seed}, {fault:?}: {message}\nreplay: {}",
                    replay_command(seed, fault)
                );
            }
            scenarios += 1;
        }
    }
    scenarios
}

fn seeds_per_shard() -> u64 {
    std::env::var("HELIOS_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

fn shard(index: u64) {
    let per = seeds_per_shard();
    let scenarios = run_seeds(index * per + 1..=(index + 1) * per);
    eprintln!("shard {index}: {scenarios} scenarios");
    assert!(scenarios as u64 >= per * 100, "{scenarios} scenarios");
}

// Four shards, so that nextest runs them on both cores.
#[test]
fn simulator_shard_0() {
    shard(0);
}

#[test]
fn simulator_shard_1() {
    shard(1);
}

#[test]
fn simulator_shard_2() {
    shard(2);
}

#[test]
fn simulator_shard_3() {
    shard(3);
}

/// Replays the scenario `HELIOS_SIM_REPLAY=SEED/FAULT` names (as a failure prints it), or a
/// fixed one when unset.
#[test]
fn replay_one() {
    let (seed, fault) = match std::env::var("HELIOS_SIM_REPLAY") {
        Ok(arg) => {
            let (seed, fault) = arg.split_once('/').expect("SEED/FAULT");
            (
                seed.parse().expect("a numeric seed"),
                Fault::parse(fault).expect("a fault as printed by a failure"),
            )
        }
        Err(_) => (
            3,
            Fault::Crash {
                at: 40,
                fault: CrashFault::TearLast,
            },
        ),
    };
    if let Err(message) = scenario(seed, fault) {
        panic!("seed {seed}, {fault:?}: {message}");
    }
}

#[test]
fn fault_arguments_round_trip() {
    for fault in [
        Fault::Crash {
            at: 12,
            fault: CrashFault::FlipBit,
        },
        Fault::FailSync { nth: 3 },
        Fault::DiskFull { capacity: 4096 },
    ] {
        assert_eq!(Fault::parse(&fault.to_arg()), Some(fault));
    }
}
