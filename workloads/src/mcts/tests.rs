//! Unit tests of the MCTS workload: the game, the branch bookkeeping, the search on an engine
//! and in memory, and replay.

use std::path::Path;
use std::time::Duration;

use helios::{BranchId, Durability, Engine, Version};

use super::game::ALL_COLUMNS;
use super::*;

/// An engine with default options, as a user opens one.
fn open_engine(dir: &Path) -> Engine {
    Engine::builder(dir)
        .open()
        .expect("open the engine in a fresh directory")
}

fn board_of(columns: &[usize]) -> Board {
    let mut board = Board::new();
    for &c in columns {
        board.play(c).expect("a legal move");
    }
    board
}

#[test]
fn pieces_fall_and_turns_alternate() {
    let mut board = Board::new();
    assert_eq!(board.moves(), ALL_COLUMNS);
    let first = board.play(3).expect("legal");
    assert_eq!((first.row, first.column, first.piece), (0, 3, Piece::X));
    let second = board.play(3).expect("legal");
    assert_eq!((second.row, second.piece), (1, Piece::O));
    assert_eq!(board.to_move(), Piece::X);
    assert_eq!(first.event(), b"set cell/0/3 X");
    for _ in 0..4 {
        board.play(3).expect("legal");
    }
    assert_eq!(board.free_row(3), None);
    assert_eq!(board.moves(), ALL_COLUMNS & !(1 << 3));
    assert_eq!(board.play(3), None);
}

#[test]
fn wins_in_every_direction_and_draws() {
    // Horizontal: X on 0..4 of the bottom row, O above.
    let horizontal = board_of(&[0, 0, 1, 1, 2, 2, 3]);
    assert_eq!(horizontal.outcome(), Some(Outcome::Win(Piece::X)));
    assert_eq!(horizontal.moves(), 0, "no moves once the game is over");
    // Vertical for O.
    let vertical = board_of(&[0, 1, 0, 1, 0, 1, 2, 1]);
    assert_eq!(vertical.outcome(), Some(Outcome::Win(Piece::O)));
    // Rising diagonal for X: (0,0) (1,1) (2,2) (3,3).
    let rising = board_of(&[0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3]);
    assert_eq!(rising.outcome(), Some(Outcome::Win(Piece::X)));
    // Falling diagonal for X: (3,0) (2,1) (1,2) (0,3).
    let falling = board_of(&[3, 2, 2, 1, 1, 0, 1, 0, 0, 6, 0]);
    assert_eq!(falling.outcome(), Some(Outcome::Win(Piece::X)));
    assert_eq!(board_of(&[0, 1, 2]).outcome(), None);
    // A full board without four in a row: columns filled in pairs so no line forms.
    let mut draw = Board::new();
    for pair in [[0, 1], [2, 3], [4, 5]] {
        for _ in 0..3 {
            for &c in &pair {
                draw.play(c).expect("legal");
            }
        }
        for _ in 0..3 {
            for &c in pair.iter().rev() {
                draw.play(c).expect("legal");
            }
        }
    }
    for _ in 0..ROWS {
        draw.play(6).expect("legal");
    }
    assert_eq!(draw.pieces(), CELLS, "{draw}");
    assert_eq!(draw.outcome(), Some(Outcome::Draw), "{draw}");
}

#[test]
fn boards_round_trip_through_events_and_entries() {
    let mut board = Board::new();
    let mut folded = Board::new();
    for c in [3, 3, 4, 2, 6] {
        let mv = board.play(c).expect("legal");
        folded.apply_event(&mv.event()).expect("a cell event");
    }
    assert_eq!(folded, board);
    let entries = [(&b"cell/0/3"[..], &b"X"[..]), (b"cell/1/3", b"O")];
    let read = Board::from_entries(entries).expect("cells");
    assert_eq!(read.get(1, 3), Some(Piece::O));
    assert!(Board::from_entries([(&b"cell/9/3"[..], &b"X"[..])]).is_err());
    assert!(Board::from_entries([(&b"cell/0/3"[..], &b"Z"[..])]).is_err());
    assert!(folded.apply_event(b"del cell/0/3").is_ok());
    assert_eq!(folded.get(0, 3), None);
    assert!(folded.apply_event(b"bogus").is_err());
}

#[test]
fn branch_tree_histories_descent_and_frees() {
    let mut tree = BranchTree::new();
    let (a, b, c) = (BranchId(1), BranchId(2), BranchId(3));
    let durable = At::Durable {
        stream: "s".to_owned(),
        version: Version(5),
    };
    tree.fork(a, &durable).expect("fork a");
    tree.appended(a, Version(8)).expect("append a");
    // b forks a at 7, c forks the durable stream at 5.
    tree.fork(
        b,
        &At::Branch {
            branch: a,
            version: Version(7),
        },
    )
    .expect("fork b");
    tree.appended(b, Version(9)).expect("append b");
    tree.fork(c, &durable).expect("fork c");
    tree.appended(c, Version(6)).expect("append c");

    let history = tree.history(b, Version(9)).expect("history");
    assert_eq!(history.durable_upto, Version(5));
    assert_eq!(
        history.links,
        [
            Link {
                branch: a,
                after: Version(5),
                upto: Version(7)
            },
            Link {
                branch: b,
                after: Version(7),
                upto: Version(9)
            },
        ]
    );
    // A version at or below the fork reads the parent.
    assert_eq!(tree.history(b, Version(6)).expect("history").links.len(), 1);

    // The node (a, 6) is in a's and b's histories, not c's.
    assert!(tree.descends(a, a, Version(6)));
    assert!(tree.descends(b, a, Version(6)));
    assert!(!tree.descends(c, a, Version(6)));
    assert_eq!(tree.not_descending("s", a, Version(6)), [c]);
    // (a, 8) is past b's fork: b holds its own node at 8.
    assert_eq!(tree.not_descending("s", a, Version(8)), [b, c]);

    // Discarding a keeps its events while b reads them; discarding b frees both.
    assert_eq!(tree.discard(a).expect("discard a"), []);
    assert_eq!(tree.head(a), None);
    assert!(tree.history(b, Version(9)).is_ok());
    assert_eq!(tree.discard(b).expect("discard b"), [b, a]);
    assert_eq!(tree.live().collect::<Vec<_>>(), [c]);
    assert!(tree.discard(a).is_err());
}

fn small_config(seed: u64) -> MctsConfig {
    MctsConfig {
        seed,
        simulations: 400,
        promote_every: 4,
        ..MctsConfig::default()
    }
}

fn record(engine: &Engine, config: &MctsConfig) -> (MctsReport, Vec<Op>) {
    let mut ops = Vec::new();
    let report =
        run_mcts(engine, config, &mut |op: &Op, _| ops.push(op.clone())).expect("the search");
    (report, ops)
}

#[test]
fn the_search_repeats_and_replays() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = open_engine(&dir.path().join("a"));
    let second = open_engine(&dir.path().join("b"));
    let (report, ops) = record(&first, &small_config(7));
    let (again, ops_again) = record(&second, &small_config(7));
    assert_eq!(ops, ops_again, "the same seed gives the same ops");
    assert_eq!(report.commits(), again.commits());
    let (_, other) = record(
        &second,
        &MctsConfig {
            stream_prefix: "other".to_owned(),
            ..small_config(8)
        },
    );
    assert_ne!(ops.len(), 0);
    assert_ne!(
        ops.iter()
            .filter_map(|op| match op {
                Op::Append { events, .. } => Some(events.clone()),
                _ => None,
            })
            .collect::<Vec<_>>(),
        other
            .iter()
            .filter_map(|op| match op {
                Op::Append { events, .. } => Some(events.clone()),
                _ => None,
            })
            .collect::<Vec<_>>(),
        "another seed plays other moves"
    );

    assert_eq!(report.simulations, 400);
    assert!(report.games_finished >= 1, "{report:?}");
    assert!(report.commits_critical > 0 && report.commits_speculative > report.commits_critical);
    assert_eq!(report.commits_critical, report.events_critical);
    assert_eq!(report.prune_mismatches, 0, "{report:?}");
    assert_eq!(report.branches_left_after_game, 0, "{report:?}");
    let count = |kind| ops.iter().filter(|op| op.kind() == kind).count() as u64;
    assert_eq!(count(OpKind::Append), report.commits_speculative);
    assert_eq!(count(OpKind::Promote), report.commits_critical);

    // Every durable move is on disk, in order, and a finished game's stream ends won or
    // full.
    let stream = "mcts-g1";
    let events: Vec<Vec<u8>> = first
        .read(stream, Version(1)..)
        .expect("read")
        .map(|e| e.expect("event").payload)
        .collect();
    let mut board = Board::new();
    for event in &events {
        board.apply_event(event).expect("a move");
    }
    assert!(board.outcome().is_some(), "game 1 finished: {board}");

    // The recorded ops replay on a fresh engine, every view matching.
    let third = open_engine(&dir.path().join("c"));
    let mut backend = HeliosBackend::new(&third);
    let replayed = replay(&ops, &mut backend).expect("replay");
    assert_eq!(replayed.commits(), report.commits());
    assert_eq!(backend.prune_mismatches, 0);
    assert_eq!(
        third.branches().stats().live_branches,
        first.branches().stats().live_branches
    );
}

#[test]
fn commit_kinds_match_the_default_classifier() {
    assert_eq!(CommitKind::Expansion.class(), Durability::Speculative);
    assert_eq!(CommitKind::Rollout.class(), Durability::Speculative);
    assert_eq!(CommitKind::Move.class(), Durability::Critical);
}

/// The ops of a run with every branch id replaced by its rank of first appearance, so that
/// runs on stores that number branches differently compare equal.
fn normalised(ops: &[Op]) -> Vec<Op> {
    let mut ids: std::collections::HashMap<BranchId, BranchId> = std::collections::HashMap::new();
    let mut id = |branch: &mut BranchId| {
        let next = BranchId(ids.len() as u64);
        *branch = *ids.entry(*branch).or_insert(next);
    };
    let at = |at: &mut At, id: &mut dyn FnMut(&mut BranchId)| {
        if let At::Branch { branch, .. } = at {
            id(branch);
        }
    };
    ops.iter()
        .cloned()
        .map(|mut op| {
            match &mut op {
                Op::Fork { branch, from } => {
                    at(from, &mut id);
                    id(branch);
                }
                Op::Append { branch, .. } | Op::Promote { branch, .. } | Op::Discard { branch } => {
                    id(branch)
                }
                Op::View { at: node, .. } => at(node, &mut id),
                Op::Prune { discarded, .. } => discarded.iter_mut().for_each(&mut id),
                Op::CreateStream { .. } => {}
            }
            op
        })
        .collect()
}

#[test]
fn the_search_in_memory_makes_the_same_moves_as_on_an_engine() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let engine = open_engine(dir.path());
    let config = small_config(5);
    let (on_engine, engine_ops) = record(&engine, &config);
    let mut memory_ops = Vec::new();
    let in_memory = run_in_memory(&config, &mut |op: &Op, _: Duration| {
        memory_ops.push(op.clone());
    })
    .expect("the search in memory");
    assert_eq!(normalised(&memory_ops), normalised(&engine_ops));
    assert_eq!(in_memory.simulations, on_engine.simulations);
    assert_eq!(in_memory.commits(), on_engine.commits());
    assert_eq!(in_memory.games_finished, on_engine.games_finished);
    assert_eq!(in_memory.prune_mismatches, 0, "{in_memory:?}");
    assert_eq!(in_memory.branches_left_after_game, 0, "{in_memory:?}");
    assert!(in_memory.simulations_per_s() > 0.0);
}

#[test]
fn in_memory_positions_fork_read_promote_and_prune() {
    let mut store = InMemory::new();
    store.create_stream("s").expect("create");
    let root = At::Durable {
        stream: "s".to_owned(),
        version: Version::ZERO,
    };
    let mut board = Board::new();
    let a = store.fork(&root).expect("fork a");
    let first = board.play(3).expect("legal");
    assert_eq!(
        store.append(a, &[first.event()], Version::ZERO),
        Ok((Version(1), Version(1)))
    );
    assert!(
        store.append(a, &[first.event()], Version::ZERO).is_err(),
        "a stale head"
    );
    let b = store
        .fork(&At::Branch {
            branch: a,
            version: Version(1),
        })
        .expect("fork b");
    let second = board.play(4).expect("legal");
    store
        .append(b, &[second.event()], Version(1))
        .expect("append b");
    let c = store.fork(&root).expect("fork c");
    let at_b = At::Branch {
        branch: b,
        version: Version(2),
    };
    assert_eq!(store.board(&at_b), Ok(Ok(board)));
    // Below its fork point, b reads a's board.
    let below = At::Branch {
        branch: b,
        version: Version(1),
    };
    assert_eq!(
        store.board(&below).map(|r| r.map(|b| b.pieces())),
        Ok(Ok(1))
    );

    assert_eq!(store.promote(b, Version(2)), Ok((Version(1), Version(2))));
    assert_eq!(store.head("s"), Version(2));
    let durable = At::Durable {
        stream: "s".to_owned(),
        version: Version(2),
    };
    assert_eq!(store.board(&durable), Ok(Ok(board)));
    // Neither c (forked from the empty board) nor a (whose head is below the new head) holds
    // the head's node: both go, b stays.
    assert_eq!(store.prune("s"), Ok(2));
    assert_eq!(store.branches_count("s"), 1);
    assert!(store.discard(c).is_err(), "c was pruned");
    assert!(store.discard(a).is_err(), "a was pruned");
    assert_eq!(
        store.board(&below).map(|r| r.is_ok()),
        Ok(true),
        "b still reads what it was forked from"
    );
    store.discard(b).expect("discard b");
    assert_eq!(store.branches_count("s"), 0);
}
