//! Integration tests of speculative branches: views against a model for random interleavings
//! of fork, append, promote, discard and prune; crashes; the memory budget.

use crate::support::{fold, set};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use helios::{
    BranchId, BranchMemoryPolicy, CrashFault, Durability, Engine, Error, LevelPolicy, Lsn,
    SimStorage, Version,
};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

const SMALL_SEGMENT: u64 = 64 * 1024;

fn open(dir: &Path, fanout: u64) -> Engine {
    Engine::builder(dir)
        .options({
            let mut options = helios::Options::default();
            options.log.segment_size_bytes = SMALL_SEGMENT;
            options.checkpoints.policy = Some(LevelPolicy::new(fanout, 2).expect("policy"));
            options.background_threads = false;
            options
        })
        .open()
        .expect("open")
}

fn view_map(view: &helios::View) -> BTreeMap<Vec<u8>, Vec<u8>> {
    view.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

#[derive(Clone, Debug)]
enum Op {
    /// Durable append of n events.
    Append(u8),
    /// Fork the durable history at a version (a fraction of the head).
    Fork(u8),
    /// Fork branch i at a version (a fraction of its head).
    ForkBranch(u8, u8),
    /// Append n events to branch i.
    AppendBranch(u8, u8),
    /// View branch i at a version (a fraction of its head).
    View(u8, u8),
    /// Promote branch i through a version (a fraction of its head), critical or normal.
    Promote(u8, u8, bool),
    Discard(u8),
    Prune,
    SyncCheckpoints,
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        let small = |g: &mut Gen| u8::arbitrary(g) % 12 + 1;
        match u8::arbitrary(g) % 20 {
            0 | 1 => Op::Append(small(g)),
            // Forks at the head half the time: those are the branches promotions can take.
            2 | 3 => Op::Fork(if bool::arbitrary(g) {
                255
            } else {
                u8::arbitrary(g)
            }),
            4 | 5 => Op::ForkBranch(
                u8::arbitrary(g),
                if bool::arbitrary(g) {
                    255
                } else {
                    u8::arbitrary(g)
                },
            ),
            6..=9 => Op::AppendBranch(u8::arbitrary(g), small(g)),
            10..=13 => Op::View(u8::arbitrary(g), u8::arbitrary(g)),
            14 | 15 => Op::Promote(u8::arbitrary(g), u8::arbitrary(g), bool::arbitrary(g)),
            16 => Op::Discard(u8::arbitrary(g)),
            17 => Op::Prune,
            _ => Op::SyncCheckpoints,
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Op>> {
        Box::new(std::iter::empty())
    }
}

#[derive(Clone, Debug)]
struct Case {
    fanout: u64,
    ops: Vec<Op>,
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Case {
        let len = usize::from(u8::arbitrary(g) % 80) + 10;
        Case {
            fanout: u64::from(u8::arbitrary(g) % 7) + 2,
            ops: (0..len).map(|_| Op::arbitrary(g)).collect(),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Case>> {
        let fanout = self.fanout;
        Box::new(self.ops.shrink().map(move |ops| Case { fanout, ops }))
    }
}

/// Scales `fraction` (0-255) to `0..=max`.
fn scaled(fraction: u8, max: usize) -> usize {
    usize::from(fraction) * max / 255
}

struct Model {
    durable: Vec<Vec<u8>>,
    /// Live branches: their whole history, version 1 first.
    branches: Vec<(BranchId, Vec<Vec<u8>>)>,
    next_event: u64,
}

impl Model {
    fn events(&mut self, n: u8) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                self.next_event += 1;
                // Unique values: equal events are the same node of the tree.
                set(
                    &format!("k{}", self.next_event % 7),
                    &format!("e{}", self.next_event),
                )
            })
            .collect()
    }

    fn descends(&self, path: &[Vec<u8>]) -> bool {
        path.len() >= self.durable.len() && path[..self.durable.len()] == self.durable[..]
    }
}

fn run_case(case: Case) -> TestResult {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), case.fanout);
    let mut model = Model {
        durable: Vec::new(),
        branches: Vec::new(),
        next_event: 0,
    };
    engine
        .append("s", &[set("start", "1")], Durability::Critical, None)
        .expect("create");
    model.durable.push(set("start", "1"));
    for op in &case.ops {
        let pick = |i: u8, model: &Model| -> Option<usize> {
            (!model.branches.is_empty()).then(|| usize::from(i) % model.branches.len())
        };
        match *op {
            Op::Append(n) => {
                let events = model.events(n);
                engine
                    .append("s", &events, Durability::Normal, None)
                    .expect("append");
                model.durable.extend(events);
            }
            Op::Fork(f) => {
                let at = scaled(f, model.durable.len());
                let id = engine
                    .branches()
                    .fork("s", Version(at as u64))
                    .expect("fork");
                let path = model.durable[..at].to_vec();
                model.branches.push((id, path));
            }
            Op::ForkBranch(i, f) => {
                let Some(i) = pick(i, &model) else { continue };
                let (parent, path) = &model.branches[i];
                let at = scaled(f, path.len());
                let id = engine
                    .branches()
                    .fork_branch(*parent, Version(at as u64))
                    .expect("fork branch");
                let path = path[..at].to_vec();
                model.branches.push((id, path));
            }
            Op::AppendBranch(i, n) => {
                let Some(i) = pick(i, &model) else { continue };
                let events = model.events(n);
                let (id, path) = &mut model.branches[i];
                let appended = engine
                    .branches()
                    .append(*id, &events, Some(Version(path.len() as u64)))
                    .expect("append to branch");
                path.extend(events);
                assert_eq!(appended.last, Version(path.len() as u64));
            }
            Op::View(i, f) => {
                let Some(i) = pick(i, &model) else { continue };
                let (id, path) = &model.branches[i];
                let v = scaled(f, path.len());
                let view = engine
                    .branches()
                    .view(*id, Version(v as u64))
                    .expect("view");
                let info = engine.branches().info(*id).expect("info");
                if view_map(&view) != fold(&path[..v]) {
                    return TestResult::error(format!("{id} at {v} differs from the model"));
                }
                if v as u64 > info.fork.0 && view.report().events_replayed > case.fanout - 1 {
                    return TestResult::error(format!(
                        "{id} at {v} replayed {} events",
                        view.report().events_replayed
                    ));
                }
            }
            Op::Promote(i, f, critical) => {
                let Some(i) = pick(i, &model) else { continue };
                let (id, path) = model.branches[i].clone();
                let upto = scaled(f, path.len());
                let class = if critical {
                    Durability::Critical
                } else {
                    Durability::Normal
                };
                let result = engine.branches().promote(id, Version(upto as u64), class);
                if model.descends(&path) {
                    result.expect("promotion of a descendant");
                    if upto > model.durable.len() {
                        model.durable = path[..upto].to_vec();
                    }
                } else {
                    match result {
                        Err(Error::PromotionConflict { head, .. }) => {
                            assert_eq!(head, Version(model.durable.len() as u64));
                        }
                        other => {
                            return TestResult::error(format!(
                                "promoting {id} (not a descendant) gave {other:?}"
                            ));
                        }
                    }
                }
            }
            Op::Discard(i) => {
                let Some(i) = pick(i, &model) else { continue };
                let (id, _) = model.branches.remove(i);
                engine.branches().discard(id).expect("discard");
                assert!(matches!(
                    engine.branches().view(id, Version(0)),
                    Err(Error::UnknownBranch { .. })
                ));
            }
            Op::Prune => {
                let pruned = engine.branches().prune("s").expect("prune");
                let before = model.branches.len();
                let durable = model.durable.clone();
                model.branches.retain(|(_, path)| {
                    path.len() >= durable.len() && path[..durable.len()] == durable[..]
                });
                assert_eq!(pruned, before - model.branches.len());
                let mut live: Vec<BranchId> = model.branches.iter().map(|(id, _)| *id).collect();
                live.sort_unstable();
                assert_eq!(engine.branches().of_stream("s"), live);
            }
            Op::SyncCheckpoints => {
                engine.checkpoints().sync().expect("sync checkpoints");
            }
        }
    }
    // The durable history is what the model says, whatever was promoted.
    let durable: Vec<Vec<u8>> = engine
        .read("s", ..)
        .expect("read")
        .map(|e| e.expect("event").payload)
        .collect();
    if durable != model.durable {
        return TestResult::error("the durable history differs from the model");
    }
    let head = model.durable.len() as u64;
    let view = engine.view("s", Version(head)).expect("durable view");
    TestResult::from_bool(view_map(&view) == fold(&model.durable))
}

/// Every view of every branch equals the model; promotions succeed exactly for branches that
/// descend from the head; prune keeps exactly those.
#[test]
fn branches_match_a_model() {
    let cases = std::env::var("HELIOS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    QuickCheck::new()
        .tests(cases)
        .quickcheck(run_case as fn(Case) -> TestResult);
}

#[test]
fn mcts_style_promotion_then_prune() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 10);
    engine
        .append("game", &[set("turn", "x")], Durability::Critical, None)
        .expect("create");
    // Three candidate moves, each explored by a rollout branched off the move.
    let moves: Vec<BranchId> = (0..3)
        .map(|m| {
            let id = engine.branches().fork("game", Version(1)).expect("fork");
            engine
                .branches()
                .append(id, &[set("move", &format!("m{m}"))], None)
                .expect("move");
            id
        })
        .collect();
    let rollouts: Vec<BranchId> = moves
        .iter()
        .map(|&m| {
            let r = engine
                .branches()
                .fork_branch(m, Version(2))
                .expect("rollout");
            let events: Vec<Vec<u8>> = (0..25).map(|i| set(&format!("r{i}"), "1")).collect();
            engine
                .branches()
                .append(r, &events, None)
                .expect("rollout events");
            r
        })
        .collect();
    let view = engine
        .branches()
        .view(rollouts[1], Version(27))
        .expect("view");
    assert_eq!(view.get(b"move"), Some(&b"m1"[..]));
    assert!(view.report().events_replayed <= 9);
    // Advance the root: move 1 is chosen, critically.
    let promoted = engine
        .branches()
        .promote(moves[1], Version(2), Durability::Critical)
        .expect("promote");
    assert_eq!((promoted.first, promoted.last), (Version(2), Version(2)));
    // A sibling move as long as the head, but another node: not a descendant.
    assert!(matches!(
        engine
            .branches()
            .promote(moves[0], Version(2), Durability::Critical),
        Err(Error::PromotionConflict { .. })
    ));
    assert_eq!(engine.branches().prune("game").expect("prune"), 4);
    let mut left = vec![moves[1], rollouts[1]];
    left.sort_unstable();
    assert_eq!(engine.branches().of_stream("game"), left);
    // The rollout under the chosen move still descends and can be promoted further.
    engine
        .branches()
        .promote(rollouts[1], Version(5), Durability::Normal)
        .expect("promote the rollout's start");
    assert_eq!(engine.head("game"), Some(Version(5)));
    // A sibling forked before the promotion is refused, naming the head and its base.
    let stale = engine
        .branches()
        .fork("game", Version(1))
        .expect("fork at an old version");
    engine
        .branches()
        .append(stale, &[set("move", "late")], None)
        .expect("append");
    let error = engine
        .branches()
        .promote(stale, Version(2), Durability::Critical)
        .expect_err("stale");
    let message = error.to_string();
    assert!(
        message.contains("based on v1") && message.contains("the head is v5"),
        "{message}"
    );
    // Speculative appends are refused by the durable append and must go through a branch.
    assert!(matches!(
        engine.append("game", &[set("a", "b")], Durability::Speculative, None),
        Err(Error::InvalidDurability { .. })
    ));
}

#[test]
fn commit_classifies_kinds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 10);
    engine
        .append("g", &[set("turn", "x")], Durability::Critical, None)
        .expect("create");
    let rollout = engine
        .commit("g", None, "rollout", &[set("a", "1")])
        .expect("speculative commit");
    assert_eq!(rollout.class, Durability::Speculative);
    let branch = rollout.branch.expect("a new branch");
    assert_eq!(engine.head("g"), Some(Version(1)), "nothing durable yet");
    let decided = engine
        .commit("g", Some(branch), "move", &[set("b", "2")])
        .expect("critical commit");
    assert_eq!(decided.class, Durability::Critical);
    assert_eq!((decided.first, decided.last), (Version(2), Version(3)));
    let plain = engine
        .commit("g", None, "note", &[set("c", "3")])
        .expect("normal commit");
    assert_eq!(plain.class, Durability::Normal);
    assert_eq!(engine.head("g"), Some(Version(4)));
    // A caller's own classifier.
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::builder(dir.path())
        .options(helios::Options {
            background_threads: false,
            ..helios::Options::default()
        })
        .classifier(|_stream: &str, kind: &str| {
            if kind == "bet" {
                Durability::Critical
            } else {
                Durability::Speculative
            }
        })
        .open()
        .expect("open");
    engine
        .append("g", &[set("x", "1")], Durability::Critical, None)
        .expect("create");
    assert_eq!(
        engine
            .commit("g", None, "bet", &[set("y", "1")])
            .expect("bet")
            .class,
        Durability::Critical
    );
}

#[test]
fn memory_budget_evicts_or_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::builder(dir.path())
        .options({
            let mut options = helios::Options::default();
            options.branches.memory_bytes = 20_000;
            options.background_threads = false;
            options
        })
        .open()
        .expect("open");
    engine
        .append("s", &[set("a", "1")], Durability::Critical, None)
        .expect("create");
    let event = set("key", &"v".repeat(92));
    let pinned = engine.branches().fork("s", Version(1)).expect("fork");
    engine.branches().pin(pinned, true).expect("pin");
    engine
        .branches()
        .append(pinned, &vec![event.clone(); 50], None)
        .expect("append");
    let mut ids = Vec::new();
    for _ in 0..40 {
        let id = engine.branches().fork("s", Version(1)).expect("fork");
        engine
            .branches()
            .append(id, &vec![event.clone(); 20], None)
            .expect("append");
        ids.push(id);
    }
    let stats = engine.branches().stats();
    assert!(stats.bytes <= 20_000, "{stats:?}");
    assert!(stats.evictions > 0, "{stats:?}");
    // The oldest unpinned went first; the pinned one and the newest stayed.
    assert!(engine.branches().info(ids[0]).is_err());
    assert!(engine.branches().info(pinned).is_ok());
    assert!(engine.branches().info(ids[39]).is_ok());
    // Discarding everything gives all the memory back.
    for id in engine.branches().of_stream("s") {
        engine.branches().discard(id).expect("discard");
    }
    assert_eq!(engine.branches().stats().bytes, 0);

    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::builder(dir.path())
        .options({
            let mut options = helios::Options::default();
            options.branches.memory_bytes = 5_000;
            options.branches.memory_policy = BranchMemoryPolicy::Refuse;
            options.background_threads = false;
            options
        })
        .open()
        .expect("open");
    engine
        .append("s", &[set("a", "1")], Durability::Critical, None)
        .expect("create");
    let id = engine.branches().fork("s", Version(1)).expect("fork");
    let error = engine
        .branches()
        .append(id, &vec![event; 60], None)
        .expect_err("over budget");
    assert!(error.to_string().contains("budget of 5000"), "{error}");
    assert_eq!(engine.branches().info(id).expect("intact").head, Version(1));
}

/// The budget bounds the states views cache and the states forks start from, not only the
/// events appends add: a view that cannot cache still answers (it replays from the last
/// cached state), a fork that does not fit is refused or evicts, and the accounted bytes
/// never pass the budget.
#[test]
fn memory_budget_bounds_cached_states_and_forks() {
    const BUDGET: u64 = 30_000;
    let events: Vec<Vec<u8>> = (0..200).map(|i| set(&format!("k{i:03}"), "v")).collect();
    for policy in [
        BranchMemoryPolicy::Refuse,
        BranchMemoryPolicy::EvictLeastRecentlyUsed,
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::builder(dir.path())
            .options({
                let mut options = helios::Options::default();
                options.branches.memory_bytes = BUDGET;
                options.branches.memory_policy = policy;
                options.background_threads = false;
                options
            })
            .open()
            .expect("open");
        engine
            .append("s", &[set("a", "1")], Durability::Critical, None)
            .expect("create");
        let bystander = engine.branches().fork("s", Version(1)).expect("fork");
        engine
            .branches()
            .append(bystander, &events[..5], None)
            .expect("append");
        let id = engine.branches().fork("s", Version(1)).expect("fork");
        engine.branches().append(id, &events, None).expect("append");
        let within = |what: &str| {
            let stats = engine.branches().stats();
            assert!(stats.bytes <= BUDGET, "{policy:?}, {what}: {stats:?}");
        };
        within("after the appends");
        // Every 10th version: each caches one more state, 10 entries larger than the last.
        for version in (11..=201).step_by(10) {
            let view = engine.branches().view(id, Version(version)).expect("view");
            let mut want = fold(&events[..usize::try_from(version - 1).expect("fits")]);
            want.insert(b"a".to_vec(), b"1".to_vec());
            assert_eq!(view_map(&view), want, "{policy:?} at {version}");
            assert!(view.report().events_replayed <= 9 || policy == BranchMemoryPolicy::Refuse);
            within(&format!("after the view at {version}"));
        }
        // The fork's starting state does not fit beside the states `id` cached, and `id`
        // itself is never evicted to make room for a fork from it.
        let error = engine
            .branches()
            .fork_branch(id, Version(201))
            .expect_err("the fork's state does not fit");
        assert!(matches!(error, Error::BranchMemoryFull { .. }), "{error}");
        within("after the refused fork");
        match policy {
            BranchMemoryPolicy::Refuse => {
                assert!(engine.branches().info(bystander).is_ok(), "nothing evicted");
            }
            BranchMemoryPolicy::EvictLeastRecentlyUsed => {
                // The bystander, least recently used, made room for the cached states.
                assert!(engine.branches().info(bystander).is_err());
                assert!(engine.branches().stats().evictions > 0);
            }
        }
        // With room made, the same fork fits and reads the branch's state.
        engine.branches().discard(id).expect("discard");
        let id = engine.branches().fork("s", Version(1)).expect("fork");
        engine
            .branches()
            .append(id, &events[..20], None)
            .expect("append");
        let fork = engine
            .branches()
            .fork_branch(id, Version(21))
            .expect("fits now");
        let view = engine.branches().view(fork, Version(21)).expect("view");
        assert_eq!(view.get(b"k019"), Some(&b"v"[..]));
        within("at the end");
    }
}

#[test]
fn a_deep_chain_of_branches_is_dropped_without_recursion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 10);
    engine
        .append("s", &[set("a", "0")], Durability::Critical, None)
        .expect("create");
    let mut branch = engine.branches().fork("s", Version(1)).expect("fork");
    for depth in 0..20_000u64 {
        engine
            .branches()
            .append(branch, &[set("a", &depth.to_string())], None)
            .expect("append");
        let child = engine
            .branches()
            .fork_branch(branch, Version(depth + 2))
            .expect("fork");
        engine.branches().discard(branch).expect("discard");
        branch = child;
    }
    let view = engine
        .branches()
        .view(branch, Version(20_001))
        .expect("view");
    assert_eq!(view.get(b"a"), Some(&b"19999"[..]));
    engine
        .branches()
        .discard(branch)
        .expect("discard the deepest");
    assert_eq!(engine.branches().stats().bytes, 0);
}

/// Crashes at every I/O step of a workload of critical and normal appends, branches and
/// promotions: afterwards no speculative event is visible, every acknowledged critical
/// promotion is, and promotions are all or nothing.
#[test]
fn crashes_never_show_speculation_and_keep_promotions() {
    let run = |sim: &SimStorage, dir: &Path| -> (Vec<Vec<u8>>, usize, Vec<usize>) {
        // Returns (the events in the order they were sent to the log, the count acknowledged
        // durable, the batch boundaries).
        let mut sent: Vec<Vec<u8>> = Vec::new();
        let mut durable = 0;
        let mut boundaries = vec![0];
        let Ok(engine) = Engine::builder(dir)
            .options({
                let mut options = helios::Options::default();
                options.log.segment_size_bytes = 4096;
                options.log.write_buffer_bytes = 200;
                options.background_threads = false;
                options
            })
            .storage(Arc::new(sim.clone()))
            .open()
        else {
            return (sent, durable, boundaries);
        };
        let mut counter = 0;
        let mut events = |n: usize| -> Vec<Vec<u8>> {
            (0..n)
                .map(|_| {
                    counter += 1;
                    set(&format!("k{}", counter % 5), &format!("e{counter}"))
                })
                .collect()
        };
        for round in 0..10usize {
            let batch = events(2);
            let critical = round % 2 == 0;
            let class = if critical {
                Durability::Critical
            } else {
                Durability::Normal
            };
            sent.extend(batch.clone());
            boundaries.push(sent.len());
            if engine.append("s", &batch, class, None).is_err() {
                return (sent, durable, boundaries);
            }
            if critical {
                durable = sent.len();
            }
            let head = engine.head("s").expect("stream").0;
            // Reading the state may fail once the simulated machine has stopped.
            let Ok(branch) = engine.branches().fork("s", Version(head)) else {
                return (sent, durable, boundaries);
            };
            let speculative = events(3);
            engine
                .branches()
                .append(branch, &speculative, None)
                .expect("branch");
            let Ok(rollout) = engine.branches().fork_branch(branch, Version(head + 3)) else {
                return (sent, durable, boundaries);
            };
            let never = vec![set("never", "visible")];
            engine
                .branches()
                .append(rollout, &never, None)
                .expect("rollout");
            sent.extend(speculative);
            boundaries.push(sent.len());
            if engine
                .branches()
                .promote(branch, Version(head + 3), class)
                .is_err()
            {
                return (sent, durable, boundaries);
            }
            if critical {
                durable = sent.len();
            }
            engine.branches().prune("s").expect("prune");
        }
        (sent, durable, boundaries)
    };
    let total_ops = {
        let dir = tempfile::tempdir().expect("tempdir");
        let sim = SimStorage::new();
        let before = sim.io_op_count();
        run(&sim, dir.path());
        sim.io_op_count() - before
    };
    let mut scenarios = 0;
    for crash_at in 0..=total_ops {
        for (f, fault) in [
            CrashFault::LoseUnsynced,
            CrashFault::KeepPrefix,
            CrashFault::TearLast,
        ]
        .into_iter()
        .enumerate()
        {
            let dir = tempfile::tempdir().expect("tempdir");
            let sim = SimStorage::new();
            sim.crash_after_ops(Some(crash_at));
            let (sent, durable, boundaries) = run(&sim, dir.path());
            sim.crash(fault, crash_at * 7 + f as u64);
            let replay = format!("crash after {crash_at} of {total_ops} operations, {fault:?}");
            let engine = Engine::builder(dir.path())
                .options({
                    let mut options = helios::Options::default();
                    options.log.segment_size_bytes = 4096;
                    options.background_threads = false;
                    options
                })
                .storage(Arc::new(sim.clone()))
                .open()
                .unwrap_or_else(|e| panic!("{replay}: reopen failed: {e}"));
            let survived: Vec<Vec<u8>> = engine
                .events_from(Lsn::ZERO)
                .expect("iterate")
                .map(|e| e.expect("event").payload)
                .collect();
            assert!(
                survived.len() >= durable && survived.len() <= sent.len(),
                "{replay}: {} survived, {durable} acknowledged durable",
                survived.len()
            );
            assert_eq!(
                survived[..],
                sent[..survived.len()],
                "{replay}: not a prefix"
            );
            assert!(
                boundaries.contains(&survived.len()),
                "{replay}: a promotion or append was cut in two"
            );
            assert!(
                !survived.iter().any(|e| e == &set("never", "visible")),
                "{replay}: a speculative event is visible"
            );
            assert!(
                engine.branches().of_stream("s").is_empty(),
                "{replay}: branches survived"
            );
            if !survived.is_empty() {
                let head = survived.len() as u64;
                let view = engine.view("s", Version(head)).expect("view");
                assert_eq!(view_map(&view), fold(&survived), "{replay}");
            }
            scenarios += 1;
        }
    }
    assert!(
        total_ops > 30,
        "the workload must do real I/O ({total_ops} operations)"
    );
    assert_eq!(scenarios, 3 * (total_ops + 1));
}

#[test]
fn metrics_count_every_operation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 4);
    for i in 0..10 {
        let class = if i % 2 == 0 {
            Durability::Critical
        } else {
            Durability::Normal
        };
        engine
            .append("s", &[set("k", &i.to_string())], class, None)
            .expect("append");
    }
    engine.sync().expect("sync");
    engine.checkpoints().sync().expect("checkpoints");
    let branch = engine.branches().fork("s", Version(10)).expect("fork");
    for i in 0..7 {
        engine
            .branches()
            .append(branch, &[set("b", &i.to_string())], None)
            .expect("speculative");
    }
    for v in 1..=10 {
        engine.view("s", Version(v)).expect("view");
    }
    engine
        .branches()
        .view(branch, Version(17))
        .expect("branch view");
    engine
        .branches()
        .promote(branch, Version(12), Durability::Critical)
        .expect("promote");
    let metrics = engine.inspect().metrics();
    let count = |m: helios::Metric| metrics.get(m).map_or(0, |s| s.count);
    assert_eq!(count(helios::Metric::AppendCritical), 5);
    assert_eq!(count(helios::Metric::AppendNormal), 5);
    assert_eq!(count(helios::Metric::AppendSpeculative), 7);
    assert!(count(helios::Metric::Sync) >= 1);
    assert_eq!(count(helios::Metric::View), 10);
    assert_eq!(count(helios::Metric::ViewBranch), 1);
    assert_eq!(count(helios::Metric::ReplayedEvents), 11);
    assert_eq!(count(helios::Metric::PromoteCritical), 1);
    // Checkpoints at 4 and 8 (level 1) and... 16 is level 2 with fanout 4: not reached.
    assert_eq!(count(helios::Metric::CheckpointBuild), 2);
    for m in &metrics.metrics {
        assert!(
            m.p50 <= m.p95 && m.p95 <= m.p99 && m.p99 <= m.p999 && m.p999 <= m.max,
            "{m:?}"
        );
    }
    let replayed = metrics
        .get(helios::Metric::ReplayedEvents)
        .expect("replayed");
    assert!(replayed.max <= 3, "{replayed:?}");
    assert!(
        engine
            .inspect()
            .metrics()
            .to_prometheus()
            .contains("helios_append_critical_seconds_count 5")
    );
    engine.inspect().reset_metrics();
    assert_eq!(
        engine
            .inspect()
            .metrics()
            .get(helios::Metric::View)
            .map(|m| m.count),
        Some(0)
    );
}
