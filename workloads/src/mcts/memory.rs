//! [`InMemory`]: the limit of the MCTS workload, the same search with its positions as plain
//! [`Board`] values in hash maps and no engine at all. Nothing is durable, nothing is
//! serialised; a read is a copy of a board. What the search does per second here bounds what
//! it can do on any store, so the engine's rate is reported as a fraction of this one.

use std::collections::HashMap;

use helios::{BranchId, Version};

use super::{At, Board, BoardError, BranchTree, MctsError, Positions};

/// One branch: where it starts and its boards from there on.
#[derive(Clone, Debug)]
struct MemoryBranch {
    /// The node it was forked at.
    from: At,
    /// The board at version `from.version() + i`, at index `i` (index 0 is the fork point).
    boards: Vec<Board>,
}

impl MemoryBranch {
    /// The branch's head.
    fn head(&self) -> Version {
        Version(self.from.version().0 + self.boards.len() as u64 - 1)
    }
}

/// Positions as plain boards in memory: per game stream, the board at every durable version;
/// per branch, the board at every version from its fork point. Branches are tracked with the
/// generator's own [`BranchTree`], as any store without branches must, so that a prune takes
/// the same branches the engine's would and a discarded branch stays readable while a branch
/// forked from it lives.
#[derive(Clone, Debug, Default)]
pub struct InMemory {
    /// The board at durable version `v` of each stream, at index `v`.
    streams: HashMap<String, Vec<Board>>,
    /// Branches whose boards may still be read.
    branches: HashMap<BranchId, MemoryBranch>,
    tree: BranchTree,
    /// Per stream, the node promoted last: its owner branch and version. The branches that
    /// do not descend from it are what a prune takes.
    promoted: HashMap<String, (BranchId, Version)>,
    /// The id of the next branch.
    next_branch: u64,
}

impl InMemory {
    /// No streams, no branches.
    #[must_use]
    pub fn new() -> InMemory {
        InMemory::default()
    }

    /// The board at `at`, following fork points down to the durable history.
    fn board_at(&self, at: &At) -> Result<Board, String> {
        let mut at = at.clone();
        loop {
            match at {
                At::Durable { stream, version } => {
                    let boards = self
                        .streams
                        .get(&stream)
                        .ok_or_else(|| format!("unknown stream `{stream}`"))?;
                    return index(version)
                        .and_then(|i| boards.get(i))
                        .copied()
                        .ok_or_else(|| format!("version {} is past the head", version.0));
                }
                At::Branch { branch, version } => {
                    let entry = self
                        .branches
                        .get(&branch)
                        .ok_or_else(|| format!("{branch} is not held"))?;
                    let fork = entry.from.version();
                    if version < fork {
                        // Below the fork point the branch reads what it was forked from.
                        at = entry.from.clone();
                        match &mut at {
                            At::Durable { version: v, .. } | At::Branch { version: v, .. } => {
                                *v = version;
                            }
                        }
                        continue;
                    }
                    return index(Version(version.0 - fork.0))
                        .and_then(|i| entry.boards.get(i))
                        .copied()
                        .ok_or_else(|| {
                            format!("version {} is past the head of {branch}", version.0)
                        });
                }
            }
        }
    }

    /// The branch holding version `version` of `branch`'s history (the branch itself, or the
    /// ancestor it was forked from at or past that version).
    fn owner(&self, branch: BranchId, version: Version) -> Option<BranchId> {
        let mut current = branch;
        loop {
            let entry = self.branches.get(&current)?;
            if version > entry.from.version() {
                return Some(current);
            }
            match entry.from {
                At::Branch { branch: parent, .. } => current = parent,
                At::Durable { .. } => return None,
            }
        }
    }
}

/// A version as an index into a vector of boards.
fn index(version: Version) -> Option<usize> {
    usize::try_from(version.0).ok()
}

impl Positions for InMemory {
    type Error = String;

    fn create_stream(&mut self, stream: &str) -> Result<(), String> {
        self.streams
            .entry(stream.to_owned())
            .or_insert_with(|| vec![Board::new()]);
        Ok(())
    }

    fn head(&self, stream: &str) -> Version {
        self.streams.get(stream).map_or(Version::ZERO, |boards| {
            Version(boards.len().saturating_sub(1) as u64)
        })
    }

    fn fork(&mut self, from: &At) -> Result<BranchId, String> {
        let board = self.board_at(from)?;
        let branch = BranchId(self.next_branch);
        self.tree.fork(branch, from).map_err(|e| e.to_string())?;
        self.next_branch += 1;
        self.branches.insert(
            branch,
            MemoryBranch {
                from: from.clone(),
                boards: vec![board],
            },
        );
        Ok(branch)
    }

    fn append(
        &mut self,
        branch: BranchId,
        events: &[Vec<u8>],
        expected: Version,
    ) -> Result<(Version, Version), String> {
        if self.tree.head(branch).is_none() {
            return Err(format!("{branch} is not live"));
        }
        let entry = self
            .branches
            .get_mut(&branch)
            .ok_or_else(|| format!("{branch} is not held"))?;
        let head = entry.head();
        if head != expected {
            return Err(format!(
                "{branch}: expected head {}, the head is {}",
                expected.0, head.0
            ));
        }
        let mut board = entry.boards.last().copied().unwrap_or_default();
        for event in events {
            board.apply_event(event).map_err(|e| e.to_string())?;
            entry.boards.push(board);
        }
        let last = entry.head();
        self.tree
            .appended(branch, last)
            .map_err(|e| e.to_string())?;
        Ok((Version(expected.0 + 1), last))
    }

    fn board(&mut self, at: &At) -> Result<Result<Board, BoardError>, String> {
        self.board_at(at).map(Ok)
    }

    fn promote(&mut self, branch: BranchId, upto: Version) -> Result<(Version, Version), String> {
        let stream = self
            .tree
            .stream(branch)
            .ok_or_else(|| format!("{branch} is not held"))?
            .to_owned();
        let head = self.head(&stream);
        let mut path = Vec::new();
        for version in head.0 + 1..=upto.0 {
            path.push(self.board_at(&At::Branch {
                branch,
                version: Version(version),
            })?);
        }
        if upto > head {
            let owner = self
                .owner(branch, upto)
                .ok_or_else(|| format!("no branch holds version {} of {branch}", upto.0))?;
            self.promoted.insert(stream.clone(), (owner, upto));
        }
        self.streams
            .get_mut(&stream)
            .ok_or_else(|| format!("unknown stream `{stream}`"))?
            .extend(path);
        Ok((Version(head.0 + 1), Version(head.0.max(upto.0))))
    }

    fn discard(&mut self, branch: BranchId) -> Result<(), String> {
        for freed in self.tree.discard(branch).map_err(|e| e.to_string())? {
            self.branches.remove(&freed);
        }
        Ok(())
    }

    fn prune(&mut self, stream: &str) -> Result<usize, String> {
        let Some(&(owner, version)) = self.promoted.get(stream) else {
            return Ok(0);
        };
        let stale = self.tree.not_descending(stream, owner, version);
        for &branch in &stale {
            self.discard(branch)?;
        }
        Ok(stale.len())
    }

    fn branches_count(&self, stream: &str) -> usize {
        self.tree
            .live()
            .filter(|&branch| self.tree.stream(branch) == Some(stream))
            .count()
    }

    fn error(operation: &'static str, at: String, reason: String) -> MctsError {
        MctsError::InMemory {
            operation,
            at,
            reason,
        }
    }
}
