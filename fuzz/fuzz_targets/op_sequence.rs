//! Engine operations against a model, with simulated crashes.
//!
//! The input is decoded into options (segment size, write buffer, checkpoint policy, branch
//! memory budget) and a sequence of operations: create a stream, append critical or normal
//! key-value events (now and then one the key-value machine refuses), sync, build checkpoints,
//! view a version, read a stream, reopen cleanly (optionally damaging a checkpoint file while
//! closed), arm a crash point (`SimStorage::crash_after_ops`: every I/O after it fails, as if
//! the machine stopped) and crash (`SimStorage::crash` with a fault: lose the unsynced writes,
//! keep a prefix of them, tear the last, keep all, flip a bit), then reopen; and speculative
//! branches: fork from a stream or a branch, append to a branch, view it, promote a prefix of
//! it (critical or normal), discard it. The log lives on `SimStorage`; fjall's
//! `meta/` and the checkpoints live in a scratch directory on the real file system, so they
//! survive every simulated crash whole, as derived data that runs ahead of the log would.
//!
//! The model holds every acknowledged event in log order, the prefix that must survive (every
//! event up to the last acknowledged critical append or sync), and the batch boundaries. What
//! must hold:
//! - no operation panics; without an armed crash point, none fails (but for views of refused
//!   events, which must fail with `Error::Replay`);
//! - after a crash, the surviving events are a prefix of the acknowledged ones, at a batch
//!   boundary, at least as long as the durable prefix: every acknowledged critical event (and
//!   every event before it) is there, and every stream a critical `create_stream` made exists;
//! - reads, heads and views (at the head and at a version the input picks) agree with the
//!   model: a view is the `BTreeMap` fold of the stream's first `v` events, or `Error::Replay`
//!   if one of them is refused;
//! - a flipped bit may make the next open fail, but only as `LogError::Corrupt` naming a
//!   segment (damage followed by valid records is not a torn tail);
//! - branches: a view is the fold of the branch's history (its fork's prefix, then its own
//!   events); a promotion is one atomic append (all or nothing after a crash, never lost once
//!   acknowledged critical), succeeds only if the branch's history extends the stream's
//!   events, and must succeed for a branch forked at the head while the stream has not changed;
//!   no branch and no unpromoted speculative event survives a reopen or a crash; with the small
//!   memory budget a branch may be evicted (then `UnknownBranch`), and an append or a fork may
//!   be refused (`BranchMemoryFull`), otherwise never.
#![no_main]

#[path = "common.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use arbitrary::{Result as ArbResult, Unstructured};
use helios::{
    BranchId, CrashFault, Durability, Engine, Error, LevelPolicy, LogError, Lsn, Options,
    SimStorage, Version,
};
use libfuzzer_sys::fuzz_target;

const STREAMS: [&str; 3] = ["s0", "s1", "s2"];
/// Most operations one input runs, and most reopens (each opens fjall: the slow part).
const OPS_MAX: usize = 48;
const REOPENS_MAX: usize = 6;

#[derive(Default)]
struct Model {
    /// Every acknowledged event in log order: (stream index, payload). After a failure, the
    /// failed append's events too: their outcome is unknown, all or nothing.
    log: Vec<(usize, String)>,
    /// Length of the prefix of `log` that must survive any crash.
    durable: usize,
    /// Lengths of `log` at which a crash may cut it (appends are all or nothing).
    boundaries: BTreeSet<usize>,
    /// Streams made by an acknowledged (critical) `create_stream`.
    created: BTreeSet<usize>,
    /// Live speculative branches.
    branches: BTreeMap<BranchId, Branch>,
    /// Per stream, how many appends and promotions changed its head: a branch forked at the
    /// head must promote while this has not moved.
    changes: [u64; STREAMS.len()],
}

/// A speculative branch as the model sees it.
struct Branch {
    stream: usize,
    /// Its events from version 1 to its head: the durable prefix it was forked from (or its
    /// parent's), then its own speculative events.
    history: Vec<String>,
    /// `Some(changes)` if it descends from the stream's head as of `changes`: forked at the
    /// head, or promoted through. Then a promotion must not conflict while the stream's
    /// `changes` is the same.
    descends_at: Option<u64>,
}

impl Model {
    fn events(&self, stream: usize) -> Vec<&str> {
        self.log
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, p)| p.as_str())
            .collect()
    }
}

struct Setup {
    segment_bytes: u64,
    write_buffer_bytes: usize,
    policy: LevelPolicy,
    /// A branch memory budget small enough that branches get evicted (then a branch may
    /// vanish, and an append or a fork fail with `BranchMemoryFull`); `None` for the default.
    branch_memory_bytes: Option<u64>,
}

fn open(dir: &Path, sim: &SimStorage, setup: &Setup) -> helios::Result<Engine> {
    let mut options = Options::default();
    if let Some(bytes) = setup.branch_memory_bytes {
        options.branches.memory_bytes = bytes;
    }
    options.log.segment_size_bytes = setup.segment_bytes;
    options.log.write_buffer_bytes = setup.write_buffer_bytes;
    options.checkpoints.policy = Some(setup.policy);
    options.background_threads = false;
    Engine::builder(dir)
        .options(options)
        .storage(Arc::new(sim.clone()))
        .open()
}

/// One key-value event, or (rarely) one the key-value machine refuses.
fn event(u: &mut Unstructured<'_>, serial: usize) -> ArbResult<String> {
    let key = u.int_in_range(0..=4u8)?;
    Ok(match u.int_in_range(0..=15u8)? {
        0 => format!("bogus {serial}"),
        1..=3 => format!("del k{key}"),
        _ => format!("set k{key} v{serial}"),
    })
}

/// Checks the engine's events, heads and views against the model.
fn check(engine: &Engine, model: &Model, version_pick: u64) {
    let mut count = 0usize;
    for event in engine.events_from(Lsn::ZERO).expect("iterate the log") {
        event.expect("a readable event");
        count += 1;
    }
    assert_eq!(count, model.log.len(), "events in the log");
    for (i, name) in STREAMS.iter().enumerate() {
        let want = model.events(i);
        let got: Vec<Vec<u8>> = match engine.read(name, ..) {
            Ok(iter) => iter.map(|e| e.expect("a readable event").payload).collect(),
            Err(Error::UnknownStream { .. }) => {
                assert!(
                    want.is_empty(),
                    "stream {name} is gone, with {} events",
                    want.len()
                );
                assert!(
                    !model.created.contains(&i),
                    "stream {name}'s creation was acknowledged"
                );
                continue;
            }
            Err(e) => panic!("read {name}: {e}"),
        };
        assert!(
            got.iter()
                .map(Vec::as_slice)
                .eq(want.iter().map(|p| p.as_bytes())),
            "stream {name}: {} events read, the model has {}",
            got.len(),
            want.len()
        );
        let head = want.len() as u64;
        assert_eq!(engine.head(name), Some(Version(head)), "head of {name}");
        for v in [head, version_pick % (head + 1)] {
            check_view(engine, name, &want, v);
        }
    }
}

fn check_view(engine: &Engine, name: &str, events: &[&str], v: u64) {
    let prefix = &events[..usize::try_from(v).expect("small")];
    match (engine.state_at(name, Version(v)), common::kv_fold(prefix)) {
        (Ok(state), Some(want)) => assert_eq!(state, want, "view of {name} at {v}"),
        (Err(Error::Replay { .. }), None) => {}
        (got, want) => panic!(
            "view of {name} at {v}: got {:?}, the model says {}",
            got.map(|s| s.len()),
            if want.is_some() {
                "a state"
            } else {
                "a refused event"
            }
        ),
    }
}

/// Flips a byte of one checkpoint file (the store is closed): checkpoints are derived data, so
/// views must stay exact.
fn damage_checkpoint(dir: &Path, u: &mut Unstructured<'_>) -> ArbResult<()> {
    let Ok(listing) = std::fs::read_dir(dir.join("checkpoints")) else {
        return Ok(());
    };
    let mut files: Vec<_> = listing.filter_map(|e| e.ok().map(|e| e.path())).collect();
    if files.is_empty() {
        return Ok(());
    }
    files.sort();
    let path = &files[u.choose_index(files.len())?];
    let mut bytes = std::fs::read(path).expect("read a checkpoint");
    if bytes.is_empty() {
        return Ok(());
    }
    let at = u.choose_index(bytes.len())?;
    bytes[at] ^= u.int_in_range(1..=255u8)?;
    // The engine is closed, so no map of the file is alive to see it change.
    std::fs::write(path, bytes).expect("write");
    Ok(())
}

/// Reopens after a simulated crash and checks the survivors; returns the new engine, or `None`
/// if a flipped bit made the log unreadable (the documented outcome).
fn crash_and_reopen(
    engine: Engine,
    dir: &Path,
    sim: &SimStorage,
    setup: &Setup,
    model: &mut Model,
    fault: CrashFault,
    seed: u64,
) -> Option<Engine> {
    sim.crash(fault, seed);
    drop(engine);
    let engine = match open(dir, sim, setup) {
        Ok(engine) => engine,
        Err(Error::Damaged {
            source: LogError::Corrupt { path, .. },
            ..
        }) if fault == CrashFault::FlipBit => {
            assert!(path.to_string_lossy().ends_with(".log"), "{path:?}");
            common::trace(|| {
                format!(
                    "the flipped bit is refused as corruption of {}",
                    path.display()
                )
            });
            return None;
        }
        Err(e) => panic!("recovery after {fault:?} (seed {seed}) failed: {e}"),
    };
    let survived = engine
        .events_from(Lsn::ZERO)
        .expect("iterate the log")
        .count();
    assert!(
        survived >= model.durable && survived <= model.log.len(),
        "{survived} events survived {fault:?}; durable {}, acknowledged {}",
        model.durable,
        model.log.len()
    );
    assert!(
        model.boundaries.contains(&survived),
        "{survived} events survived {fault:?}, which cuts an append in two"
    );
    common::trace(|| {
        format!(
            "{survived} events survived (durable {}, acknowledged {})",
            model.durable,
            model.log.len()
        )
    });
    model.log.truncate(survived);
    model.boundaries.retain(|&b| b <= survived);
    model.durable = survived;
    forget_branches(&engine, model);
    Some(engine)
}

/// After a reopen: branches live in memory only, so none survives, and their ids are unknown.
fn forget_branches(engine: &Engine, model: &mut Model) {
    for name in STREAMS {
        assert!(
            engine.branches().of_stream(name).is_empty(),
            "branches of {name} survived a reopen"
        );
    }
    for id in std::mem::take(&mut model.branches).into_keys() {
        assert!(
            matches!(engine.branches().info(id), Err(Error::UnknownBranch { .. })),
            "{id} survived a reopen"
        );
    }
}

/// The fold of a branch's first `v` events, against `view_branch`.
fn check_branch_view(engine: &Engine, id: BranchId, history: &[String], v: u64) {
    let got = engine
        .branches()
        .view(id, Version(v))
        .map(|view| view.to_map());
    let Some(prefix) = history.get(..usize::try_from(v).unwrap_or(usize::MAX)) else {
        assert!(
            matches!(got, Err(Error::VersionPastHead { .. })),
            "{id}: a view past its head must be refused"
        );
        return;
    };
    match (got, common::kv_fold(prefix)) {
        (Ok(state), Some(want)) => assert_eq!(state, want, "view of {id} at {v}"),
        (Err(Error::Replay { .. }), None) => {}
        (got, want) => panic!(
            "view of {id} at {v}: got {:?}, the model says {}",
            got.map(|s| s.len()),
            if want.is_some() {
                "a state"
            } else {
                "a refused event"
            }
        ),
    }
}

/// One branch operation: fork from a stream or a branch, append speculative events, view,
/// promote, discard. With an eviction budget, a branch may be gone (evicted): then the
/// operation must say `UnknownBranch`, and the model forgets it.
fn branch_op(
    u: &mut Unstructured<'_>,
    engine: &Engine,
    model: &mut Model,
    armed: bool,
    stopped: &mut bool,
    step: usize,
    serial: &mut usize,
) -> ArbResult<()> {
    let evicting = engine_evicts(engine);
    let op = u.int_in_range(0..=6u8)?;
    if op == 0 || model.branches.is_empty() {
        // Fork from a stream.
        if armed || model.branches.len() >= 8 {
            return Ok(());
        }
        let stream = u.choose_index(STREAMS.len())?;
        let events: Vec<String> = model
            .events(stream)
            .into_iter()
            .map(str::to_owned)
            .collect();
        // Mostly at the head: only a branch of the head can be promoted.
        let at = if u.ratio(2, 3)? {
            events.len() as u64
        } else {
            u.int_in_range(0..=events.len() as u64)?
        };
        let result = engine.branches().fork(STREAMS[stream], Version(at));
        common::trace(|| format!("step {step}: fork {} at {at}: {result:?}", STREAMS[stream]));
        let history = events[..usize::try_from(at).expect("small")].to_vec();
        match result {
            Ok(id) => {
                let descends_at = (at == events.len() as u64).then_some(model.changes[stream]);
                model.branches.insert(
                    id,
                    Branch {
                        stream,
                        history,
                        descends_at,
                    },
                );
            }
            Err(Error::UnknownStream { .. }) if engine.head(STREAMS[stream]).is_none() => {}
            Err(Error::Replay { .. }) if common::kv_fold(&history).is_none() => {}
            Err(Error::BranchMemoryFull { .. }) if evicting => {}
            Err(e) => panic!("step {step}: fork failed: {e}"),
        }
        return Ok(());
    }
    let ids: Vec<BranchId> = model.branches.keys().copied().collect();
    let id = ids[u.choose_index(ids.len())?];
    let gone = |result: &Result<_, Error>| matches!(result, Err(Error::UnknownBranch { .. }));
    match op {
        // Fork from a branch.
        1 => {
            if model.branches.len() >= 8 {
                return Ok(());
            }
            let parent = &model.branches[&id];
            let at = u.int_in_range(0..=parent.history.len() as u64)?;
            let result = engine.branches().fork_branch(id, Version(at));
            common::trace(|| format!("step {step}: fork {id} at {at}: {result:?}"));
            let history = parent.history[..usize::try_from(at).expect("small")].to_vec();
            let stream = parent.stream;
            match result {
                Ok(child) => {
                    model.branches.insert(
                        child,
                        Branch {
                            stream,
                            history,
                            descends_at: None,
                        },
                    );
                }
                Err(Error::UnknownBranch { .. }) if evicting => {
                    model.branches.remove(&id);
                }
                Err(Error::Replay { .. }) if common::kv_fold(&history).is_none() => {}
                Err(Error::BranchMemoryFull { .. }) if evicting => {}
                Err(_) if armed => {}
                Err(e) => panic!("step {step}: fork of {id} failed: {e}"),
            }
        }
        // Append speculative events.
        2 | 3 => {
            let count = u.int_in_range(1..=3usize)?;
            let mut batch = Vec::with_capacity(count);
            for _ in 0..count {
                *serial += 1;
                batch.push(event(u, *serial)?);
            }
            let result = engine.branches().append(id, &batch, None);
            common::trace(|| format!("step {step}: append {batch:?} to {id}: {result:?}"));
            match result {
                Ok(appended) => {
                    let branch = model.branches.get_mut(&id).expect("live");
                    assert_eq!(appended.first.0, branch.history.len() as u64 + 1, "{id}");
                    branch.history.extend(batch);
                    assert_eq!(appended.last.0, branch.history.len() as u64, "{id}");
                }
                Err(Error::UnknownBranch { .. }) if evicting => {
                    model.branches.remove(&id);
                }
                Err(Error::BranchMemoryFull { .. }) if evicting => {}
                Err(e) => panic!("step {step}: append to {id} failed: {e}"),
            }
        }
        // View a version of a branch.
        4 => {
            let len = model.branches[&id].history.len() as u64;
            let v = u.int_in_range(0..=len + 1)?;
            common::trace(|| format!("step {step}: view {id} at {v}"));
            if armed {
                let _ = engine.branches().view(id, Version(v));
            } else if evicting && gone(&engine.branches().info(id)) {
                model.branches.remove(&id);
            } else {
                check_branch_view(engine, id, &model.branches[&id].history, v);
            }
        }
        // Promote a prefix of a branch.
        5 => {
            if *stopped {
                return Ok(());
            }
            let branch = &model.branches[&id];
            let stream = branch.stream;
            let upto = if u.ratio(2, 3)? {
                branch.history.len() as u64
            } else {
                u.int_in_range(0..=branch.history.len() as u64)?
            };
            let critical: bool = u.arbitrary()?;
            let class = if critical {
                Durability::Critical
            } else {
                Durability::Normal
            };
            let durable: Vec<String> = model
                .events(stream)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let head = durable.len();
            let must_succeed = branch.descends_at == Some(model.changes[stream]);
            let result = engine.branches().promote(id, Version(upto), class);
            common::trace(|| {
                format!("step {step}: promote {id} up to {upto} ({class}): {result:?}")
            });
            match result {
                Ok(appended) => {
                    let branch = model.branches.get_mut(&id).expect("live");
                    assert!(
                        branch.history.len() >= head && branch.history[..head] == durable[..],
                        "step {step}: {id} promoted, but it does not extend the stream's events"
                    );
                    let upto = usize::try_from(upto).expect("small");
                    if upto > head {
                        assert_eq!(
                            (appended.first.0, appended.last.0),
                            (head as u64 + 1, upto as u64)
                        );
                        model.log.extend(
                            branch.history[head..upto]
                                .iter()
                                .map(|p| (stream, p.clone())),
                        );
                        model.boundaries.insert(model.log.len());
                        if critical {
                            model.durable = model.log.len();
                        }
                        model.changes[stream] += 1;
                    }
                    branch.descends_at = Some(model.changes[stream]);
                }
                Err(Error::PromotionConflict { .. }) if !must_succeed => {}
                Err(Error::UnknownBranch { .. }) if evicting => {
                    model.branches.remove(&id);
                }
                Err(e) if armed => {
                    // The promotion's append may or may not have reached the log: all or
                    // nothing, like a failed append.
                    common::trace(|| format!("step {step}: promotion failed: {e}"));
                    let branch = &model.branches[&id];
                    let upto = usize::try_from(upto).expect("small");
                    if upto > head
                        && branch.history.len() >= head
                        && branch.history[..head] == durable[..]
                    {
                        model.log.extend(
                            branch.history[head..upto]
                                .iter()
                                .map(|p| (stream, p.clone())),
                        );
                        model.boundaries.insert(model.log.len());
                    }
                    *stopped = true;
                }
                Err(e) => panic!("step {step}: promotion of {id} failed: {e}"),
            }
        }
        // Discard.
        _ => {
            let result = engine.branches().discard(id);
            common::trace(|| format!("step {step}: discard {id}: {result:?}"));
            match result {
                Ok(()) => {}
                Err(Error::UnknownBranch { .. }) if evicting => {}
                Err(e) => panic!("step {step}: discard of {id} failed: {e}"),
            }
            model.branches.remove(&id);
            assert!(gone(&engine.branches().info(id)), "{id} was discarded");
        }
    }
    Ok(())
}

/// Whether the engine's branch budget is the small one that evicts.
fn engine_evicts(engine: &Engine) -> bool {
    engine.branches().stats().budget_bytes < helios::DEFAULT_BRANCH_MEMORY_BYTES
}

fn run(data: &[u8]) -> ArbResult<()> {
    let mut u = Unstructured::new(data);
    let setup = Setup {
        segment_bytes: *u.choose(&[4096u64, 4096, 8192])?,
        write_buffer_bytes: *u.choose(&[0usize, 128, 512, 4096])?,
        policy: LevelPolicy::new(u.int_in_range(2..=4)?, u.int_in_range(1..=3)?)
            .expect("a valid policy"),
        branch_memory_bytes: if u.ratio(1, 4)? { Some(256) } else { None },
    };
    common::trace(|| {
        format!(
            "segment {} bytes, write buffer {} bytes, policy {:?}",
            setup.segment_bytes, setup.write_buffer_bytes, setup.policy
        )
    });
    let dir = common::scratch_dir();
    let sim = SimStorage::new();
    let mut engine = open(dir.path(), &sim, &setup).expect("a new store opens");
    let mut model = Model {
        boundaries: BTreeSet::from([0]),
        ..Model::default()
    };
    // Armed: a crash point is set, so operations may fail. Stopped: one did (the engine may be
    // poisoned, or the storage gone); only a crash brings it back.
    let mut armed = false;
    let mut stopped = false;
    let mut reopens = 0usize;
    let mut serial = 0usize;
    for step in 0..OPS_MAX {
        if u.is_empty() {
            break;
        }
        match u.int_in_range(0..=21u8)? {
            0..=6 => {
                if stopped {
                    continue;
                }
                let stream = u.choose_index(STREAMS.len())?;
                let critical: bool = u.arbitrary()?;
                let count = u.int_in_range(1..=4usize)?;
                let mut batch = Vec::with_capacity(count);
                for _ in 0..count {
                    serial += 1;
                    batch.push(event(&mut u, serial)?);
                }
                let class = if critical {
                    Durability::Critical
                } else {
                    Durability::Normal
                };
                let result = engine.append(STREAMS[stream], &batch, class, None);
                common::trace(|| {
                    format!(
                        "step {step}: append {batch:?} to {} ({class}): {:?}",
                        STREAMS[stream],
                        result.as_ref().map(|a| a.last)
                    )
                });
                if let Err(e) = &result {
                    assert!(
                        armed,
                        "step {step}: append failed without a crash point: {e}"
                    );
                    stopped = true;
                }
                model.log.extend(batch.into_iter().map(|p| (stream, p)));
                model.boundaries.insert(model.log.len());
                if result.is_ok() && critical {
                    model.durable = model.log.len();
                }
                model.changes[stream] += 1;
            }
            7 => {
                if stopped {
                    continue;
                }
                let stream = u.choose_index(STREAMS.len())?;
                common::trace(|| format!("step {step}: create {}", STREAMS[stream]));
                let new = engine.head(STREAMS[stream]).is_none();
                match engine.create_stream(STREAMS[stream]) {
                    // A new stream is one critical record: it and everything before it are
                    // durable. An existing one is only looked up: nothing is written or synced.
                    Ok(_) if new => {
                        model.created.insert(stream);
                        model.durable = model.log.len();
                    }
                    Ok(_) => {}
                    Err(e) => {
                        assert!(armed, "step {step}: create_stream failed: {e}");
                        stopped = true;
                    }
                }
            }
            8 => {
                if stopped {
                    continue;
                }
                common::trace(|| format!("step {step}: sync"));
                match engine.sync() {
                    Ok(_) => model.durable = model.log.len(),
                    Err(e) => {
                        assert!(armed, "step {step}: sync failed: {e}");
                        stopped = true;
                    }
                }
            }
            9 => {
                if stopped {
                    continue;
                }
                common::trace(|| format!("step {step}: sync_checkpoints"));
                match engine.checkpoints().sync() {
                    Ok(_) => model.durable = model.log.len(),
                    Err(e) => {
                        assert!(armed, "step {step}: sync_checkpoints failed: {e}");
                        stopped = true;
                    }
                }
            }
            10 => {
                let pick: u64 = u.arbitrary()?;
                common::trace(|| format!("step {step}: check (armed: {armed})"));
                if !armed {
                    check(&engine, &model, pick);
                }
            }
            11 => {
                let stream = u.choose_index(STREAMS.len())?;
                let want = model.events(stream);
                let v = u.int_in_range(0..=want.len() as u64 + 1)?;
                common::trace(|| format!("step {step}: view {} at {v}", STREAMS[stream]));
                if armed {
                    // Reads may need I/O that the crash point refuses: only no panic.
                    let _ = engine.state_at(STREAMS[stream], Version(v));
                } else if v > want.len() as u64 {
                    let past = engine.state_at(STREAMS[stream], Version(v));
                    assert!(
                        matches!(
                            past,
                            Err(Error::VersionPastHead { .. } | Error::UnknownStream { .. })
                        ),
                        "a view past the head must be refused: {:?}",
                        past.map(|s| s.len())
                    );
                } else if engine.head(STREAMS[stream]).is_some() {
                    check_view(&engine, STREAMS[stream], &want, v);
                }
            }
            12 => {
                if reopens >= REOPENS_MAX {
                    continue;
                }
                reopens += 1;
                common::trace(|| format!("step {step}: reopen (armed: {armed})"));
                if armed {
                    // A clean close needs I/O the crash point may refuse: treat it as a
                    // process crash, where the OS keeps every write.
                    let seed = step as u64;
                    match crash_and_reopen(
                        engine,
                        dir.path(),
                        &sim,
                        &setup,
                        &mut model,
                        CrashFault::KeepAll,
                        seed,
                    ) {
                        Some(e) => engine = e,
                        None => return Ok(()),
                    }
                    armed = false;
                    stopped = false;
                } else {
                    engine.close().expect("a clean close");
                    model.durable = model.log.len();
                    if u.arbitrary()? {
                        damage_checkpoint(dir.path(), &mut u)?;
                    }
                    engine = open(dir.path(), &sim, &setup).expect("a clean reopen");
                    forget_branches(&engine, &mut model);
                }
                check(&engine, &model, u.arbitrary()?);
            }
            13 => {
                if !armed {
                    let ops = u.int_in_range(0..=24)?;
                    common::trace(|| format!("step {step}: crash after {ops} more I/O operations"));
                    sim.crash_after_ops(Some(ops));
                    armed = true;
                }
            }
            14 => {
                if reopens >= REOPENS_MAX {
                    continue;
                }
                reopens += 1;
                let fault = *u.choose(&[
                    CrashFault::LoseUnsynced,
                    CrashFault::KeepPrefix,
                    CrashFault::TearLast,
                    CrashFault::KeepAll,
                    CrashFault::FlipBit,
                ])?;
                let seed: u64 = u.arbitrary()?;
                common::trace(|| format!("step {step}: crash {fault:?} seed {seed}"));
                match crash_and_reopen(engine, dir.path(), &sim, &setup, &mut model, fault, seed) {
                    Some(e) => engine = e,
                    None => return Ok(()),
                }
                armed = false;
                stopped = false;
                check(&engine, &model, u.arbitrary()?);
            }
            _ => branch_op(
                &mut u,
                &engine,
                &mut model,
                armed,
                &mut stopped,
                step,
                &mut serial,
            )?,
        }
    }
    if !armed {
        check(&engine, &model, 0);
    }
    Ok(())
}

fuzz_target!(init: common::init_malloc_limit(), |data: &[u8]| {
    let _ = run(data);
});
