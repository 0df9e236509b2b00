//! Branch bookkeeping: [`BranchTree`], the parents, fork points and heads of branches as a
//! store without branches must track them, and which of them a prune should take.

use std::collections::BTreeMap;
use std::fmt;

use helios::{BranchId, Version};

use super::At;

/// A branch id the [`BranchTree`] does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownBranch(pub BranchId);

impl fmt::Display for UnknownBranch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not in the branch tree", self.0)
    }
}

impl std::error::Error for UnknownBranch {}

/// One segment of a node's history: `branch`'s events at versions `after + 1 ..= upto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// The branch holding the events.
    pub branch: BranchId,
    /// The version before the first event: the branch's fork point.
    pub after: Version,
    /// The last version.
    pub upto: Version,
}

/// A node's whole history: the durable events `1 ..= durable_upto` of `stream`, then the
/// links, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History {
    /// The stream.
    pub stream: String,
    /// The last durable version below the branches.
    pub durable_upto: Version,
    /// Branch segments, oldest first.
    pub links: Vec<Link>,
}

#[derive(Clone, Debug)]
struct TreeEntry {
    stream: String,
    parent: Option<BranchId>,
    fork: Version,
    head: Version,
    live: bool,
    /// Children not freed yet: they may still read this branch's events.
    holders: u32,
}

/// Branches as a backend without branches must track them: parent, fork point and head of
/// each, which are live, and when a discarded branch's events can really go (once no branch
/// forked from it is left, as Helios frees them).
#[derive(Clone, Debug, Default)]
pub struct BranchTree {
    entries: BTreeMap<BranchId, TreeEntry>,
}

impl BranchTree {
    /// No branches.
    #[must_use]
    pub fn new() -> BranchTree {
        BranchTree::default()
    }

    /// Records `branch`, forked at `from`.
    ///
    /// # Errors
    /// A parent branch the tree does not hold.
    pub fn fork(&mut self, branch: BranchId, from: &At) -> Result<(), UnknownBranch> {
        let (stream, parent) = match from {
            At::Durable { stream, .. } => (stream.clone(), None),
            At::Branch { branch: parent, .. } => {
                let entry = self.entries.get_mut(parent).ok_or(UnknownBranch(*parent))?;
                entry.holders += 1;
                (entry.stream.clone(), Some(*parent))
            }
        };
        self.entries.insert(
            branch,
            TreeEntry {
                stream,
                parent,
                fork: from.version(),
                head: from.version(),
                live: true,
                holders: 0,
            },
        );
        Ok(())
    }

    /// Records `branch`'s new head.
    ///
    /// # Errors
    /// A branch the tree does not hold.
    pub fn appended(&mut self, branch: BranchId, head: Version) -> Result<(), UnknownBranch> {
        self.entries
            .get_mut(&branch)
            .ok_or(UnknownBranch(branch))?
            .head = head;
        Ok(())
    }

    /// The head of a live branch.
    #[must_use]
    pub fn head(&self, branch: BranchId) -> Option<Version> {
        self.entries.get(&branch).filter(|e| e.live).map(|e| e.head)
    }

    /// The stream of a branch the tree holds.
    #[must_use]
    pub fn stream(&self, branch: BranchId) -> Option<&str> {
        self.entries.get(&branch).map(|e| e.stream.as_str())
    }

    /// The live branches, by id.
    pub fn live(&self) -> impl DoubleEndedIterator<Item = BranchId> + '_ {
        self.entries
            .iter()
            .filter(|(_, e)| e.live)
            .map(|(id, _)| *id)
    }

    /// Marks `branch` discarded and returns the branches whose events can go now: `branch`
    /// itself unless a branch forked from it is left, then its ancestors that were waiting
    /// for it, child before parent.
    ///
    /// # Errors
    /// A branch the tree does not hold as live.
    pub fn discard(&mut self, branch: BranchId) -> Result<Vec<BranchId>, UnknownBranch> {
        let entry = self
            .entries
            .get_mut(&branch)
            .filter(|e| e.live)
            .ok_or(UnknownBranch(branch))?;
        entry.live = false;
        let mut freed = Vec::new();
        let mut current = Some(branch);
        while let Some(id) = current {
            let Some(entry) = self.entries.get(&id) else {
                break;
            };
            if entry.live || entry.holders > 0 {
                break;
            }
            let parent = entry.parent;
            self.entries.remove(&id);
            freed.push(id);
            current = parent.and_then(|p| {
                let parent = self.entries.get_mut(&p)?;
                parent.holders -= 1;
                Some(p)
            });
        }
        Ok(freed)
    }

    /// Where the state of `branch` at `version` comes from.
    ///
    /// # Errors
    /// A branch the tree does not hold (or a broken parent chain).
    pub fn history(&self, branch: BranchId, version: Version) -> Result<History, UnknownBranch> {
        let mut links = Vec::new();
        let mut upto = version;
        let mut current = branch;
        loop {
            let entry = self.entries.get(&current).ok_or(UnknownBranch(current))?;
            if upto > entry.fork {
                links.push(Link {
                    branch: current,
                    after: entry.fork,
                    upto,
                });
                upto = entry.fork;
            }
            match entry.parent {
                Some(parent) => current = parent,
                None => {
                    links.reverse();
                    return Ok(History {
                        stream: entry.stream.clone(),
                        durable_upto: upto,
                        links,
                    });
                }
            }
        }
    }

    /// Whether the node `(owner, version)` is in `branch`'s history (the node itself or an
    /// ancestor of its head).
    #[must_use]
    pub fn descends(&self, branch: BranchId, owner: BranchId, version: Version) -> bool {
        let mut current = branch;
        let Some(mut upto) = self.entries.get(&branch).map(|e| e.head) else {
            return false;
        };
        loop {
            let Some(entry) = self.entries.get(&current) else {
                return false;
            };
            if version > upto {
                // The history stops before the node's version.
                return false;
            }
            if version > entry.fork {
                // This branch holds the history's node at that version.
                return current == owner;
            }
            upto = entry.fork;
            match entry.parent {
                Some(parent) => current = parent,
                // Below every fork: a durable version, which no branch owns.
                None => return false,
            }
        }
    }

    /// The live branches of `stream` that do not descend from the node `(owner, version)`:
    /// what `Engine::prune` should discard once that node is the stream's head.
    #[must_use]
    pub fn not_descending(&self, stream: &str, owner: BranchId, version: Version) -> Vec<BranchId> {
        self.entries
            .iter()
            .filter(|(id, e)| e.live && e.stream == stream && !self.descends(**id, owner, version))
            .map(|(id, _)| *id)
            .collect()
    }
}
