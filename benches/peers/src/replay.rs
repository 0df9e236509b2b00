//! Replay from the start: the peer without checkpoints. The state at version `v` is every event
//! from the first to `v` folded into a map with `helios::kv::fold`, the reference fold.
//!
//! - [`kv_state_at`]: over a generated [`KvWorkload`], its events in memory (the most
//!   favourable setting for this peer: no I/O at all), for `checkpoint_reads`.
//! - [`durable_events`] and [`BranchReplay`]: over a Helios store and the branches of a search,
//!   for `helios demo`: a durable version's events read back from the log, a branch node's
//!   from the durable events below its history and the branch events mirrored from the
//!   search's ops, since a design without checkpoints keeps every event it may need again.

use std::collections::HashMap;
use std::fmt;

use helios::{BranchId, Engine, Version};
use helios_workloads::kv::{KvWorkload, State, lines};
use helios_workloads::mcts::{BranchTree, Op};

/// The state of a [`KvWorkload`] at `version`, folded from its first event.
///
/// # Panics
/// If `version` is past the last event, or on an event that does not parse (every event of a
/// [`KvWorkload`] does).
#[must_use]
pub fn kv_state_at(workload: &KvWorkload, version: u64) -> State {
    let count = usize::try_from(version).expect("versions fit in usize");
    helios::kv::fold(lines(&workload.events()[..count])).expect("workload events parse")
}

/// The payloads of `stream`'s versions `1..=upto`, read from `engine`'s log.
///
/// # Errors
/// The engine's errors.
pub fn durable_events(
    engine: &Engine,
    stream: &str,
    upto: Version,
) -> Result<Vec<Vec<u8>>, helios::Error> {
    if upto == Version::ZERO {
        return Ok(Vec::new());
    }
    let mut events = Vec::with_capacity(usize::try_from(upto.0).unwrap_or(0));
    for event in engine.read(stream, Version(1)..=upto)? {
        events.push(event?.payload);
    }
    Ok(events)
}

/// Why [`BranchReplay`] could not gather a node's events.
#[derive(Debug)]
pub enum ReplayError {
    /// Reading the durable events failed.
    Engine(helios::Error),
    /// The mirror does not hold what the node needs: a bug in the mirror or in what it was
    /// shown.
    Mirror {
        /// The stream (or, when the branch itself is unknown, the branch) concerned.
        stream: String,
        /// What is missing.
        reason: String,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Engine(error) => error.fmt(f),
            ReplayError::Mirror { stream, reason } => write!(f, "{stream}: {reason}"),
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplayError::Engine(error) => Some(error),
            ReplayError::Mirror { .. } => None,
        }
    }
}

impl From<helios::Error> for ReplayError {
    fn from(error: helios::Error) -> Self {
        ReplayError::Engine(error)
    }
}

/// The branches of a search, mirrored from its ops: each live branch's fork point and own
/// events (version `fork + 1 + i` at index `i`), kept while the branch or one forked from it
/// lives. With the durable events from the log, that is every event a branch node's state is
/// made of.
#[derive(Debug, Default)]
pub struct BranchReplay {
    /// Branches as the generator sees them.
    tree: BranchTree,
    /// Each branch's fork version and own events.
    events: HashMap<BranchId, (Version, Vec<Vec<u8>>)>,
}

impl BranchReplay {
    /// No branches.
    #[must_use]
    pub fn new() -> BranchReplay {
        BranchReplay::default()
    }

    /// Mirrors one op of the search: forks, appends, discards and prunes change the mirror;
    /// other ops do nothing.
    ///
    /// # Errors
    /// An op that does not fit what the mirror holds (a branch it does not know, an append
    /// at a version other than the branch's head), as one sentence.
    pub fn observe(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Fork { branch, from } => {
                self.tree.fork(*branch, from).map_err(|e| e.to_string())?;
                self.events.insert(*branch, (from.version(), Vec::new()));
            }
            Op::Append {
                branch,
                expected,
                events,
                ..
            } => {
                let (fork, own) = self
                    .events
                    .get_mut(branch)
                    .ok_or_else(|| format!("append to unknown {branch}"))?;
                if fork.0 + own.len() as u64 != expected.0 {
                    return Err(format!(
                        "{branch}: append at {expected} after {}",
                        own.len()
                    ));
                }
                own.extend(events.iter().cloned());
                let head = Version(expected.0 + events.len() as u64);
                self.tree
                    .appended(*branch, head)
                    .map_err(|e| e.to_string())?;
            }
            Op::Discard { branch } => self.free(*branch)?,
            Op::Prune { discarded, .. } => {
                for branch in discarded {
                    self.free(*branch)?;
                }
            }
            Op::CreateStream { .. } | Op::View { .. } | Op::Promote { .. } => {}
        }
        Ok(())
    }

    fn free(&mut self, branch: BranchId) -> Result<(), String> {
        for gone in self.tree.discard(branch).map_err(|e| e.to_string())? {
            self.events.remove(&gone);
        }
        Ok(())
    }

    /// The live branches that hold events of their own, by id: each with its fork point and
    /// its head, so that `fork + 1 ..= head` are its own nodes.
    #[must_use]
    pub fn live_branches(&self) -> Vec<(BranchId, Version, Version)> {
        self.tree
            .live()
            .filter_map(|branch| {
                let head = self.tree.head(branch)?;
                let (fork, _) = self.events.get(&branch)?;
                (head > *fork).then_some((branch, *fork, head))
            })
            .collect()
    }

    /// The events of the branch node `(branch, version)` from the first: the durable events
    /// below its history's root (read from `engine`), then each link's branch events.
    ///
    /// # Errors
    /// The engine's errors, or a node the mirror cannot rebuild.
    pub fn events(
        &self,
        engine: &Engine,
        branch: BranchId,
        version: Version,
    ) -> Result<Vec<Vec<u8>>, ReplayError> {
        let history = self
            .tree
            .history(branch, version)
            .map_err(|e| ReplayError::Mirror {
                stream: branch.to_string(),
                reason: e.to_string(),
            })?;
        let mut events = durable_events(engine, &history.stream, history.durable_upto)?;
        for link in &history.links {
            let (fork, own) = self
                .events
                .get(&link.branch)
                .ok_or_else(|| ReplayError::Mirror {
                    stream: history.stream.clone(),
                    reason: format!("no events kept for {}", link.branch),
                })?;
            let from = usize::try_from(link.after.0 - fork.0).unwrap_or(usize::MAX);
            let to = usize::try_from(link.upto.0 - fork.0).unwrap_or(usize::MAX);
            let slice = own.get(from..to).ok_or_else(|| ReplayError::Mirror {
                stream: history.stream.clone(),
                reason: format!("{} is shorter than {}", link.branch, link.upto),
            })?;
            events.extend(slice.iter().cloned());
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use helios::Durability;
    use helios_workloads::mcts::{At, CommitKind};

    use super::*;

    #[test]
    fn kv_state_at_folds_the_workload_from_the_start() {
        let workload = KvWorkload::generate(500, 60, 4, 21);
        for version in [0, 1, 250, 500] {
            let state = kv_state_at(&workload, version);
            for index in 0..workload.keys_count() {
                assert_eq!(
                    state.get(&workload.key(index)).map(Vec::as_slice),
                    workload.value_at(index, version),
                    "key {index} at {version}"
                );
            }
        }
    }

    #[test]
    fn a_branch_node_is_its_durable_events_then_its_branches() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let engine = Engine::builder(dir.path()).open().expect("open");
        engine
            .append("s", &["set a 1", "set b 2"], Durability::Critical, None)
            .expect("append");
        let mut mirror = BranchReplay::new();
        let (a, b) = (BranchId(1), BranchId(2));
        let append = |branch, expected, event: &str| Op::Append {
            kind: CommitKind::Rollout,
            branch,
            expected: Version(expected),
            events: vec![event.as_bytes().to_vec()],
        };
        let ops = [
            Op::Fork {
                branch: a,
                from: At::Durable {
                    stream: "s".to_owned(),
                    version: Version(1),
                },
            },
            append(a, 1, "set c 3"),
            append(a, 2, "set d 4"),
            Op::Fork {
                branch: b,
                from: At::Branch {
                    branch: a,
                    version: Version(2),
                },
            },
            append(b, 2, "set e 5"),
            Op::Discard { branch: a },
        ];
        for op in &ops {
            mirror.observe(op).expect("the ops fit");
        }
        assert!(
            mirror.observe(&append(b, 1, "set x 0")).is_err(),
            "a stale head"
        );
        let events = mirror.events(&engine, b, Version(3)).expect("events");
        assert_eq!(events, [&b"set a 1"[..], b"set c 3", b"set e 5"]);
        assert_eq!(mirror.live_branches(), [(b, Version(2), Version(3))]);
        assert!(
            mirror.events(&engine, a, Version(2)).is_ok(),
            "b still holds a"
        );
        assert!(mirror.events(&engine, BranchId(9), Version(1)).is_err());
    }
}
