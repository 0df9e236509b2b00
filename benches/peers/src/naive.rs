//! The naive durable design: every commit made durable on its own, speculative or not, in
//! the two forms Helios is compared with.
//!
//! - [`NaiveBackend`] (`mixed_workload`): the MCTS workload with every commit one `pwrite` and
//!   one `fdatasync` of its events ([`RawFloor`]), everything else in memory: the cheapest
//!   design that never loses a commit.
//! - [`EveryCommitDurable`] (`helios demo`): the search's commits, in order, each a critical
//!   append to a Helios store of its own, so that the demo compares classes of one engine on
//!   one disk.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use helios::{BranchId, Durability, Engine, Version};
use helios_workloads::mcts::{At, Backend, BackendError, Board, BranchTree, Op};

use crate::floor::{RAW_FLOOR_FILE_BYTES, RawFloor};

/// The naive design: every commit (speculative or not) is made durable on its own, one
/// `pwrite` of its events and one `fdatasync` ([`RawFloor`]: a preallocated file, the cheapest
/// durable write there is on this disk). Everything else is in memory and free: forks,
/// discards, and views, which fold the node's events from memory.
#[derive(Debug)]
pub struct NaiveBackend {
    log: RawFloor,
    tree: BranchTree,
    speculative: HashMap<BranchId, Vec<Vec<u8>>>,
    durable: HashMap<String, Vec<Vec<u8>>>,
    record: Vec<u8>,
}

impl NaiveBackend {
    /// Creates the backend's log at `path` (which must not exist), preallocated as the raw
    /// floor's.
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(path: &Path) -> Result<NaiveBackend, BackendError> {
        Ok(NaiveBackend {
            log: RawFloor::create(path, RAW_FLOOR_FILE_BYTES)?,
            tree: BranchTree::new(),
            speculative: HashMap::new(),
            durable: HashMap::new(),
            record: Vec::new(),
        })
    }

    /// Writes `events` as one record and waits for `fdatasync`.
    fn write(&mut self, events: &[Vec<u8>]) -> Result<(), BackendError> {
        self.record.clear();
        for event in events {
            self.record.extend_from_slice(event);
            self.record.push(b'\n');
        }
        self.log.append(&self.record)?;
        Ok(())
    }

    fn board(&self, at: &At) -> Result<Board, BackendError> {
        let (stream, durable_upto, links) = match at {
            At::Durable { stream, version } => (stream.clone(), *version, Vec::new()),
            At::Branch { branch, version } => {
                let history = self.tree.history(*branch, *version)?;
                (history.stream, history.durable_upto, history.links)
            }
        };
        let mut board = Board::new();
        let durable = self.durable.get(&stream).ok_or("unknown stream")?;
        let upto = usize::try_from(durable_upto.0)?;
        for event in durable.get(..upto).ok_or("durable version past the head")? {
            board.apply_event(event)?;
        }
        for link in links {
            let events = self.speculative.get(&link.branch).ok_or("freed branch")?;
            // A link starts at its branch's fork point: the branch's event `i` is version
            // `after + 1 + i`.
            let count = usize::try_from(link.upto.0 - link.after.0)?;
            for event in events.get(..count).ok_or("version past the branch head")? {
                board.apply_event(event)?;
            }
        }
        Ok(board)
    }
}

impl Backend for NaiveBackend {
    fn name(&self) -> &str {
        "naive durable"
    }

    fn apply(&mut self, op: &Op) -> Result<(), BackendError> {
        match op {
            Op::CreateStream { stream } => {
                self.write(&[[b"create ".as_slice(), stream.as_bytes()].concat()])?;
                self.durable.insert(stream.clone(), Vec::new());
            }
            Op::Fork { branch, from } => {
                self.tree.fork(*branch, from)?;
                self.speculative.insert(*branch, Vec::new());
            }
            Op::Append {
                branch,
                expected,
                events,
                ..
            } => {
                self.write(events)?;
                self.speculative
                    .get_mut(branch)
                    .ok_or("append to an unknown branch")?
                    .extend(events.iter().cloned());
                self.tree
                    .appended(*branch, Version(expected.0 + events.len() as u64))?;
            }
            Op::View { at, board } => {
                let read = self.board(at)?;
                if read != *board {
                    return Err(format!("read {read:?}, recorded {board:?}").into());
                }
            }
            Op::Promote { stream, events, .. } => {
                self.write(events)?;
                self.durable
                    .get_mut(stream)
                    .ok_or("promote to an unknown stream")?
                    .extend(events.iter().cloned());
            }
            Op::Discard { branch } => {
                for freed in self.tree.discard(*branch)? {
                    self.speculative.remove(&freed);
                }
            }
            Op::Prune { discarded, .. } => {
                for branch in discarded {
                    for freed in self.tree.discard(*branch)? {
                        self.speculative.remove(&freed);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The naive durable peer of `helios demo`: each commit of the search, speculative or not, a
/// critical append to a Helios store of its own. A game's speculative commits go to a stream
/// of their own (`{game}-speculative`), so that the game's stream holds the same moves as in
/// the demo's store.
#[derive(Debug)]
pub struct EveryCommitDurable {
    engine: Engine,
    /// Streams created so far.
    created: HashSet<String>,
}

impl EveryCommitDurable {
    /// The peer on `engine`, which should be a fresh store on the same file system as the one
    /// it is compared with.
    #[must_use]
    pub fn new(engine: Engine) -> EveryCommitDurable {
        EveryCommitDurable {
            engine,
            created: HashSet::new(),
        }
    }

    /// The stream a commit of `game` goes to, created on first use: creating a stream is not
    /// a commit, so a caller timing commits calls this before starting the clock.
    ///
    /// # Errors
    /// The engine's errors.
    pub fn stream_for(&mut self, game: &str, speculative: bool) -> Result<String, helios::Error> {
        let name = if speculative {
            format!("{game}-speculative")
        } else {
            game.to_owned()
        };
        if !self.created.contains(&name) {
            self.engine.create_stream(&name)?;
            self.created.insert(name.clone());
        }
        Ok(name)
    }

    /// Makes one commit durable: its events appended to `stream` as one critical append.
    ///
    /// # Errors
    /// The engine's errors.
    pub fn commit(&self, stream: &str, events: &[Vec<u8>]) -> Result<(), helios::Error> {
        self.engine
            .append(stream, events, Durability::Critical, None)
            .map(drop)
    }

    /// The peer's store.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Closes the peer's store.
    ///
    /// # Errors
    /// The engine's errors.
    pub fn close(self) -> Result<(), helios::Error> {
        self.engine.close()
    }
}
