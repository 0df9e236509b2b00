//! [`Search`]: the MCTS itself, selection, expansion, rollout and backpropagation over a tree
//! held in memory, with every position read from and written to a [`Positions`] store, each
//! call timed and reported as an [`Op`].

use std::fmt;
use std::time::{Duration, Instant};

use helios::{BranchId, Engine, Version};

use super::game::nth_bit;
use super::{
    At, Board, BranchTree, CommitKind, InMemory, MctsConfig, MctsError, MctsReport, Move, Op,
    Outcome, Piece, Positions, UnknownBranch,
};
use crate::Rng;

/// A node of the search tree.
#[derive(Clone, Debug)]
struct Node {
    at: At,
    parent: Option<usize>,
    /// The move that led here (`None` at a game's first root).
    mv: Option<Move>,
    children: Vec<usize>,
    /// Columns already expanded.
    tried: u8,
    /// Legal columns (0 when terminal).
    legal: u8,
    outcome: Option<Outcome>,
    visits: u32,
    /// Sum of rewards for the player who made `mv`.
    reward: f64,
}

impl Node {
    fn new(at: At, parent: Option<usize>, mv: Option<Move>, board: &Board) -> Node {
        Node {
            at,
            parent,
            mv,
            children: Vec::new(),
            tried: 0,
            legal: board.moves(),
            outcome: board.outcome(),
            visits: 0,
            reward: 0.0,
        }
    }
}

/// The reward of `result` for the player who made `mv`: 1 win, 0 loss, 0.5 draw or unknown.
fn reward(mv: Option<Move>, result: Option<Outcome>) -> f64 {
    match (mv, result) {
        (Some(mv), Some(Outcome::Win(winner))) if winner == mv.piece => 1.0,
        (Some(_), Some(Outcome::Win(_))) => 0.0,
        _ => 0.5,
    }
}

/// An MCTS over Connect Four whose positions live in `positions`: see the module
/// documentation. [`Search::step`] runs one simulation; [`run_mcts`] runs a whole
/// configuration on an engine, [`run_in_memory`] the same search on plain boards.
pub struct Search<P: Positions> {
    positions: P,
    config: MctsConfig,
    rng: Rng,
    tree: BranchTree,
    nodes: Vec<Node>,
    root: usize,
    /// The current game's stream; `None` before the first game and after one ends.
    stream: Option<String>,
    simulations_this_move: u32,
    report: MctsReport,
}

/// The search of the workload: positions in a Helios engine.
pub type Mcts<'e> = Search<&'e Engine>;

impl<P: Positions> fmt::Debug for Search<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Search")
            .field("config", &self.config)
            .field("stream", &self.stream)
            .field("nodes", &self.nodes.len())
            .field("simulations", &self.report.simulations)
            .finish_non_exhaustive()
    }
}

impl<'e> Search<&'e Engine> {
    /// A search on `engine`; nothing happens until [`Search::step`].
    ///
    /// # Errors
    /// [`MctsError::InvalidConfig`] when `promote_every` is 0.
    pub fn new(engine: &'e Engine, config: MctsConfig) -> Result<Mcts<'e>, MctsError> {
        Search::with_positions(engine, config)
    }
}

impl Search<InMemory> {
    /// The same search with its positions in memory and no engine: the limit of the workload.
    ///
    /// # Errors
    /// [`MctsError::InvalidConfig`] when `promote_every` is 0.
    pub fn in_memory(config: MctsConfig) -> Result<Search<InMemory>, MctsError> {
        Search::with_positions(InMemory::new(), config)
    }
}

impl<P: Positions> Search<P> {
    /// A search on `positions`; nothing happens until [`Search::step`].
    ///
    /// # Errors
    /// [`MctsError::InvalidConfig`] when `promote_every` is 0.
    pub fn with_positions(positions: P, config: MctsConfig) -> Result<Search<P>, MctsError> {
        if config.promote_every == 0 {
            return Err(MctsError::InvalidConfig("promote_every must be at least 1"));
        }
        Ok(Search {
            positions,
            rng: Rng::new(config.seed),
            config,
            tree: BranchTree::new(),
            nodes: Vec::new(),
            root: 0,
            stream: None,
            simulations_this_move: 0,
            report: MctsReport::default(),
        })
    }

    /// What the search did so far.
    #[must_use]
    pub fn report(&self) -> &MctsReport {
        &self.report
    }

    /// The report, consuming the search.
    #[must_use]
    pub fn into_report(self) -> MctsReport {
        self.report
    }

    /// Runs one simulation (starting a game first if none is on), then, if it was the
    /// `promote_every`-th of this move, plays the best move for real. Every engine call is
    /// passed to `observer` with its latency.
    ///
    /// # Errors
    /// A failed engine call, or a state that disagrees with the search.
    pub fn step(&mut self, observer: &mut impl FnMut(&Op, Duration)) -> Result<(), MctsError> {
        if self.stream.is_none() {
            self.start_game(observer)?;
        }
        self.simulate(observer)?;
        if self.simulations_this_move >= self.config.promote_every {
            self.play_best(observer)?;
        }
        Ok(())
    }

    /// Runs [`MctsConfig::simulations`] simulations (counting those already run).
    ///
    /// # Errors
    /// As [`Search::step`].
    pub fn run(&mut self, observer: &mut impl FnMut(&Op, Duration)) -> Result<(), MctsError> {
        let start = Instant::now();
        while self.report.simulations < self.config.simulations {
            self.step(observer)?;
        }
        self.report.elapsed += start.elapsed();
        Ok(())
    }

    fn record(&mut self, op: &Op, latency: Duration, observer: &mut impl FnMut(&Op, Duration)) {
        let report = &mut self.report;
        report.latencies.record(op.kind(), latency);
        let events = op.events_count() as u64;
        match op {
            Op::Append { kind, .. } => {
                report.commits_speculative += 1;
                report.events_speculative += events;
                if *kind == CommitKind::Expansion {
                    report.expansions += 1;
                }
            }
            Op::Promote { .. } => {
                report.commits_critical += 1;
                report.events_critical += events;
            }
            Op::Fork { .. } => report.forks += 1,
            Op::View { .. } => report.views += 1,
            Op::Discard { .. } => report.discards += 1,
            Op::Prune { .. } => report.prunes += 1,
            Op::CreateStream { .. } => report.games_started += 1,
        }
        observer(op, latency);
    }

    fn start_game(&mut self, observer: &mut impl FnMut(&Op, Duration)) -> Result<(), MctsError> {
        let stream = format!(
            "{}-g{}",
            self.config.stream_prefix,
            self.report.games_started + 1
        );
        let start = Instant::now();
        let created = self.positions.create_stream(&stream);
        let latency = start.elapsed();
        created.map_err(|source| {
            P::error(
                "Engine::create_stream",
                format!("stream `{stream}`"),
                source,
            )
        })?;
        let head = self.positions.head(&stream);
        if head != Version::ZERO {
            return Err(MctsError::StreamNotEmpty { stream, head });
        }
        self.record(
            &Op::CreateStream {
                stream: stream.clone(),
            },
            latency,
            observer,
        );
        let root = At::Durable {
            stream: stream.clone(),
            version: Version::ZERO,
        };
        self.nodes = vec![Node::new(root, None, None, &Board::new())];
        self.root = 0;
        self.simulations_this_move = 0;
        self.stream = Some(stream);
        Ok(())
    }

    fn simulate(&mut self, observer: &mut impl FnMut(&Op, Duration)) -> Result<(), MctsError> {
        let mut path = vec![self.root];
        let mut node = self.root;
        // Selection: down through fully expanded nodes.
        loop {
            let n = &self.nodes[node];
            if n.outcome.is_some() || n.tried != n.legal || n.children.is_empty() {
                break;
            }
            node = self.best_child(node);
            path.push(node);
        }
        let result = match self.nodes[node].outcome {
            Some(outcome) => Some(outcome),
            None => {
                let (child, board) = self.expand(node, observer)?;
                path.push(child);
                match board.outcome() {
                    Some(outcome) => Some(outcome),
                    None => self.rollout(child, board, observer)?,
                }
            }
        };
        // Backpropagation.
        for &index in &path {
            let n = &mut self.nodes[index];
            n.visits += 1;
            n.reward += reward(n.mv, result);
        }
        self.report.simulations += 1;
        self.simulations_this_move += 1;
        Ok(())
    }

    /// The UCB1 choice among `node`'s children (the first of equals).
    fn best_child(&self, node: usize) -> usize {
        let n = &self.nodes[node];
        let log_visits = f64::from(n.visits.max(1)).ln();
        let mut best = n.children[0];
        let mut best_score = f64::NEG_INFINITY;
        for &child in &n.children {
            let c = &self.nodes[child];
            let visits = f64::from(c.visits.max(1));
            let score = c.reward / visits + self.config.exploration * (log_visits / visits).sqrt();
            if score > best_score {
                best = child;
                best_score = score;
            }
        }
        best
    }

    /// Reads the board at `at` from the store (one timed op).
    fn view(
        &mut self,
        at: &At,
        observer: &mut impl FnMut(&Op, Duration),
    ) -> Result<Board, MctsError> {
        let start = Instant::now();
        let board = self.positions.board(at);
        let latency = start.elapsed();
        let operation = match at {
            At::Durable { .. } => "Engine::view",
            At::Branch { .. } => "Engine::view_branch",
        };
        let board = board
            .map_err(|source| P::error(operation, at.to_string(), source))?
            .map_err(|source| MctsError::Board {
                at: at.clone(),
                source,
            })?;
        self.record(
            &Op::View {
                at: at.clone(),
                board,
            },
            latency,
            observer,
        );
        Ok(board)
    }

    /// Forks a branch at `from` (one timed op).
    fn fork(
        &mut self,
        from: &At,
        observer: &mut impl FnMut(&Op, Duration),
    ) -> Result<BranchId, MctsError> {
        let start = Instant::now();
        let forked = self.positions.fork(from);
        let latency = start.elapsed();
        let branch = forked.map_err(|source| P::error("Engine::fork", from.to_string(), source))?;
        self.tree.fork(branch, from)?;
        self.record(
            &Op::Fork {
                branch,
                from: from.clone(),
            },
            latency,
            observer,
        );
        Ok(branch)
    }

    /// Appends one move to `branch`, whose head is `expected` (one timed op). Returns the
    /// new node.
    fn append(
        &mut self,
        kind: CommitKind,
        branch: BranchId,
        expected: Version,
        mv: Move,
        observer: &mut impl FnMut(&Op, Duration),
    ) -> Result<At, MctsError> {
        let events = vec![mv.event()];
        let start = Instant::now();
        let appended = self.positions.append(branch, &events, expected);
        let latency = start.elapsed();
        let at = At::Branch {
            branch,
            version: expected,
        };
        let (first, last) =
            appended.map_err(|source| P::error("Engine::append_branch", at.to_string(), source))?;
        let next = Version(expected.0 + 1);
        if first != next || last != next {
            return Err(MctsError::Mismatch {
                at,
                what: format!(
                    "one event appended at head {} got versions {}..={}",
                    expected.0, first.0, last.0
                ),
            });
        }
        self.tree.appended(branch, next)?;
        self.record(
            &Op::Append {
                kind,
                branch,
                expected,
                events,
            },
            latency,
            observer,
        );
        Ok(At::Branch {
            branch,
            version: next,
        })
    }

    /// Plays one untried move at `node`; returns the new child and its board.
    fn expand(
        &mut self,
        node: usize,
        observer: &mut impl FnMut(&Op, Duration),
    ) -> Result<(usize, Board), MctsError> {
        let at = self.nodes[node].at.clone();
        let mut board = self.view(&at, observer)?;
        let (legal, tried) = (self.nodes[node].legal, self.nodes[node].tried);
        if board.moves() != legal || board.outcome().is_some() {
            return Err(MctsError::Mismatch {
                at,
                what: format!(
                    "expected an unfinished position with legal columns {legal:07b}, read {board:?} \
                     (legal {:07b}, outcome {:?})",
                    board.moves(),
                    board.outcome()
                ),
            });
        }
        let untried = legal & !tried;
        let k = self.rng.index(untried.count_ones() as usize);
        let column = nth_bit(untried, k).unwrap_or(0);
        let mv = board.play(column).ok_or_else(|| MctsError::Mismatch {
            at: at.clone(),
            what: format!("column {column} is not playable on {board:?}"),
        })?;
        // Extend the node's own branch when the node is its head; otherwise fork at the node.
        let branch = match &at {
            At::Branch { branch, version } if self.tree.head(*branch) == Some(*version) => *branch,
            _ => self.fork(&at, observer)?,
        };
        let child_at = self.append(CommitKind::Expansion, branch, at.version(), mv, observer)?;
        self.nodes[node].tried |= 1 << column;
        let child = self.nodes.len();
        self.nodes
            .push(Node::new(child_at, Some(node), Some(mv), &board));
        self.nodes[node].children.push(child);
        Ok((child, board))
    }

    /// Random moves from `node` (whose position is `board`) on a branch of their own, then
    /// the final position read back and the branch discarded. Returns the outcome, `None` if
    /// the depth ran out first.
    fn rollout(
        &mut self,
        node: usize,
        mut board: Board,
        observer: &mut impl FnMut(&Op, Duration),
    ) -> Result<Option<Outcome>, MctsError> {
        if self.config.rollout_depth == 0 {
            return Ok(None);
        }
        let at = self.nodes[node].at.clone();
        let branch = self.fork(&at, observer)?;
        let mut version = at.version();
        let mut moves = 0;
        while moves < self.config.rollout_depth && board.outcome().is_none() {
            let legal = board.moves();
            let k = self.rng.index(legal.count_ones() as usize);
            let column = nth_bit(legal, k).unwrap_or(0);
            let Some(mv) = board.play(column) else {
                break;
            };
            version = self
                .append(CommitKind::Rollout, branch, version, mv, observer)?
                .version();
            moves += 1;
        }
        if moves > 0 {
            let end = At::Branch { branch, version };
            let read = self.view(&end, observer)?;
            if read != board {
                return Err(MctsError::Mismatch {
                    at: end,
                    what: format!("the rollout played {board:?}, the engine holds {read:?}"),
                });
            }
        }
        self.discard(branch, observer)?;
        let outcome = board.outcome();
        if outcome.is_none() {
            self.report.rollouts_truncated += 1;
        }
        Ok(outcome)
    }

    fn discard(
        &mut self,
        branch: BranchId,
        observer: &mut impl FnMut(&Op, Duration),
    ) -> Result<(), MctsError> {
        let start = Instant::now();
        let discarded = self.positions.discard(branch);
        let latency = start.elapsed();
        discarded.map_err(|source| P::error("Engine::discard", branch.to_string(), source))?;
        self.tree.discard(branch)?;
        self.record(&Op::Discard { branch }, latency, observer);
        Ok(())
    }

    /// Promotes the most visited child of the root, advances the root to it and prunes.
    fn play_best(&mut self, observer: &mut impl FnMut(&Op, Duration)) -> Result<(), MctsError> {
        self.simulations_this_move = 0;
        let root = &self.nodes[self.root];
        let Some(&best) = root
            .children
            .iter()
            .rev()
            .max_by_key(|&&child| self.nodes[child].visits)
        else {
            // A finished position has no children: the game is over.
            return self.end_game(observer);
        };
        let head = root.at.version();
        let (At::Branch { branch, version }, Some(mv)) =
            (self.nodes[best].at.clone(), self.nodes[best].mv)
        else {
            return Err(MctsError::Mismatch {
                at: self.nodes[best].at.clone(),
                what: "a child of the root is not a branch node".to_owned(),
            });
        };
        let stream = self
            .tree
            .stream(branch)
            .ok_or(UnknownBranch(branch))?
            .to_owned();
        let at = At::Branch { branch, version };
        let start = Instant::now();
        let promoted = self.positions.promote(branch, version);
        let latency = start.elapsed();
        let (first, last) =
            promoted.map_err(|source| P::error("Engine::promote", at.to_string(), source))?;
        if first != Version(head.0 + 1) || last != version {
            return Err(MctsError::Mismatch {
                at,
                what: format!(
                    "promoting from head {} made versions {}..={}",
                    head.0, first.0, last.0
                ),
            });
        }
        self.record(
            &Op::Promote {
                stream: stream.clone(),
                branch,
                head,
                upto: version,
                events: vec![mv.event()],
            },
            latency,
            observer,
        );

        // Prune: what should go, by the tree, then what the engine does.
        let discarded = self.tree.not_descending(&stream, branch, version);
        for &gone in &discarded {
            self.tree.discard(gone)?;
        }
        let start = Instant::now();
        let pruned = self.positions.prune(&stream);
        let latency = start.elapsed();
        let pruned = pruned
            .map_err(|source| P::error("Engine::prune", format!("stream `{stream}`"), source))?;
        self.report.branches_pruned += pruned as u64;
        if pruned != discarded.len() {
            self.report.prune_mismatches += 1;
        }
        self.record(&Op::Prune { stream, discarded }, latency, observer);

        self.reroot(best);
        if self.nodes[self.root].outcome.is_some() {
            self.end_game(observer)?;
        }
        Ok(())
    }

    /// Keeps only the subtree of `new_root`.
    fn reroot(&mut self, new_root: usize) {
        let mut nodes = Vec::new();
        let mut stack = vec![(new_root, None)];
        while let Some((old, parent)) = stack.pop() {
            let index = nodes.len();
            let mut node = self.nodes[old].clone();
            node.parent = parent;
            let children = std::mem::take(&mut node.children);
            nodes.push(node);
            if let Some(parent) = parent {
                let parent: &mut Node = &mut nodes[parent];
                parent.children.push(index);
            }
            // Reversed so that children keep their order (UCB1 ties go to the first).
            stack.extend(children.into_iter().rev().map(|child| (child, Some(index))));
        }
        self.nodes = nodes;
        self.root = 0;
    }

    /// Tallies the result, discards every branch left (newest first) and leaves the next
    /// step to start a new game.
    fn end_game(&mut self, observer: &mut impl FnMut(&Op, Duration)) -> Result<(), MctsError> {
        match self.nodes[self.root].outcome {
            Some(Outcome::Win(Piece::X)) => self.report.x_wins += 1,
            Some(Outcome::Win(Piece::O)) => self.report.o_wins += 1,
            Some(Outcome::Draw) | None => self.report.draws += 1,
        }
        self.report.games_finished += 1;
        let live: Vec<BranchId> = self.tree.live().rev().collect();
        for branch in live {
            self.discard(branch, observer)?;
        }
        if let Some(stream) = self.stream.take() {
            self.report.branches_left_after_game += self.positions.branches_count(&stream) as u64;
        }
        self.nodes.clear();
        Ok(())
    }
}

/// Runs `config` on `engine` from scratch and returns what it did; every engine call goes to
/// `observer` with its latency (record them to [`super::replay`] the same workload elsewhere).
///
/// # Errors
/// As [`Search::step`].
pub fn run_mcts(
    engine: &Engine,
    config: &MctsConfig,
    observer: &mut impl FnMut(&Op, Duration),
) -> Result<MctsReport, MctsError> {
    let mut mcts = Mcts::new(engine, config.clone())?;
    mcts.run(observer)?;
    Ok(mcts.into_report())
}

/// Runs `config` from scratch with the positions in memory and no engine ([`InMemory`]): the
/// same search as [`run_mcts`], whose rate bounds what it can reach on any store. Every call
/// goes to `observer` with its latency.
///
/// # Errors
/// As [`Search::step`].
pub fn run_in_memory(
    config: &MctsConfig,
    observer: &mut impl FnMut(&Op, Duration),
) -> Result<MctsReport, MctsError> {
    let mut search = Search::in_memory(config.clone())?;
    search.run(observer)?;
    Ok(search.into_report())
}
