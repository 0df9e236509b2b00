//! SQLite, the peer a user would pick, in the two shapes the benches compare Helios with:
//! [`SqlitePeer`], an event table with one durable `INSERT` per transaction (the append
//! benches), and [`SqliteBackend`], the whole MCTS workload on SQLite (`mixed_workload`).
//!
//! Built only with the `sqlite` feature: it compiles SQLite itself (rusqlite, bundled), which
//! the `helios` binary must not.

use std::path::Path;

use helios::{BranchId, Version};
use helios_workloads::mcts::{At, Backend, BackendError, Board, BranchTree, Op};

/// SQLite as an event store, the way a user would set it up for durable appends: WAL mode,
/// `synchronous=FULL` (every commit fsyncs the WAL), a table
/// `events(stream TEXT, version INTEGER, payload BLOB, PRIMARY KEY(stream, version))`, and one
/// `INSERT` per transaction.
#[derive(Debug)]
pub struct SqlitePeer {
    conn: rusqlite::Connection,
    next_version: i64,
}

impl SqlitePeer {
    /// Creates the database at `path` and checks that the pragmas took effect.
    ///
    /// # Errors
    /// SQLite errors, or a pragma that did not take effect.
    pub fn create(path: &Path) -> rusqlite::Result<SqlitePeer> {
        let conn = rusqlite::Connection::open(path)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") || synchronous != 2 {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "expected journal_mode=wal, synchronous=2 (FULL); got {mode}, {synchronous}"
            )));
        }
        conn.execute_batch(
            "CREATE TABLE events (
                stream TEXT NOT NULL,
                version INTEGER NOT NULL,
                payload BLOB NOT NULL,
                PRIMARY KEY (stream, version)
            )",
        )?;
        Ok(SqlitePeer {
            conn,
            next_version: 1,
        })
    }

    /// Inserts one event into `stream` in its own transaction and commits it (durably, with
    /// `synchronous=FULL`).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn append(&mut self, stream: &str, payload: &[u8]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        tx.prepare_cached("INSERT INTO events (stream, version, payload) VALUES (?1, ?2, ?3)")?
            .execute(rusqlite::params![stream, self.next_version, payload])?;
        tx.commit()?;
        self.next_version += 1;
        Ok(())
    }
}

/// SQLite as the store of the same workload: a user's straightforward design.
///
/// - `events(stream, version, payload)`: durable history; a promotion inserts the promoted
///   path in one transaction committed with `synchronous=FULL` (the WAL is fsynced).
/// - `speculative(branch, version, payload)`: branch events; each speculative commit is one
///   transaction committed with `synchronous=NORMAL` (written to the WAL, not fsynced: the
///   same "lost in a crash" promise as Helios's speculative class). A branch's rows are
///   deleted (in a `NORMAL` transaction) when it is discarded or pruned, once no branch forked
///   from it is left.
/// - Branch parents and fork points live in memory ([`BranchTree`]), as the search's tree
///   does; a fork costs SQLite nothing.
/// - A view selects the node's durable rows and the rows of each branch on its path, in
///   version order, and folds them into a board (no snapshots: at most 42 events).
#[derive(Debug)]
pub struct SqliteBackend {
    conn: rusqlite::Connection,
    tree: BranchTree,
}

/// SQLite's `PRAGMA synchronous` value for NORMAL: commits are written to the WAL, not synced.
const SYNCHRONOUS_NORMAL: i64 = 1;
/// SQLite's `PRAGMA synchronous` value for FULL: every commit syncs the WAL.
const SYNCHRONOUS_FULL: i64 = 2;

fn to_i64(value: u64) -> Result<i64, BackendError> {
    i64::try_from(value).map_err(|_| format!("{value} does not fit an SQLite integer").into())
}

impl SqliteBackend {
    /// Creates the database at `path` (WAL mode, both tables) and checks that each
    /// `synchronous` level takes effect.
    ///
    /// # Errors
    /// SQLite errors, or a pragma that did not take effect.
    pub fn create(path: &Path) -> Result<SqliteBackend, BackendError> {
        let conn = rusqlite::Connection::open(path)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("expected journal_mode=wal, got {mode}").into());
        }
        conn.execute_batch(
            "CREATE TABLE streams (name TEXT PRIMARY KEY);
             CREATE TABLE events (
                 stream TEXT NOT NULL,
                 version INTEGER NOT NULL,
                 payload BLOB NOT NULL,
                 PRIMARY KEY (stream, version)
             );
             CREATE TABLE speculative (
                 branch INTEGER NOT NULL,
                 version INTEGER NOT NULL,
                 payload BLOB NOT NULL,
                 PRIMARY KEY (branch, version)
             );",
        )?;
        let backend = SqliteBackend {
            conn,
            tree: BranchTree::new(),
        };
        backend.set_synchronous(SYNCHRONOUS_FULL)?;
        backend.set_synchronous(SYNCHRONOUS_NORMAL)?;
        Ok(backend)
    }

    /// Sets `PRAGMA synchronous` and checks that it took effect.
    fn set_synchronous(&self, level: i64) -> Result<(), BackendError> {
        self.conn.pragma_update(None, "synchronous", level)?;
        let now: i64 = self
            .conn
            .query_row("PRAGMA synchronous", [], |row| row.get(0))?;
        if now != level {
            return Err(format!("PRAGMA synchronous={level} did not take: {now}").into());
        }
        Ok(())
    }

    /// Runs `f` in a transaction committed with `synchronous=FULL`.
    fn durable(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), BackendError> {
        self.conn
            .pragma_update(None, "synchronous", SYNCHRONOUS_FULL)?;
        let tx = self.conn.transaction()?;
        f(&tx)?;
        tx.commit()?;
        self.conn
            .pragma_update(None, "synchronous", SYNCHRONOUS_NORMAL)?;
        Ok(())
    }

    /// Runs `f` in a transaction committed with `synchronous=NORMAL`.
    fn speculative(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), BackendError>,
    ) -> Result<(), BackendError> {
        let tx = self.conn.transaction()?;
        f(&tx)?;
        tx.commit()?;
        Ok(())
    }

    fn delete(&mut self, freed: &[BranchId]) -> Result<(), BackendError> {
        if freed.is_empty() {
            return Ok(());
        }
        self.speculative(|tx| {
            let mut delete = tx.prepare_cached("DELETE FROM speculative WHERE branch = ?1")?;
            for branch in freed {
                delete.execute([to_i64(branch.0)?])?;
            }
            Ok(())
        })
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
        let mut durable = self.conn.prepare_cached(
            "SELECT payload FROM events WHERE stream = ?1 AND version <= ?2 ORDER BY version",
        )?;
        let mut rows = durable.query(rusqlite::params![stream, to_i64(durable_upto.0)?])?;
        while let Some(row) = rows.next()? {
            board.apply_event(row.get_ref(0)?.as_blob()?)?;
        }
        let mut speculative = self.conn.prepare_cached(
            "SELECT payload FROM speculative
             WHERE branch = ?1 AND version > ?2 AND version <= ?3 ORDER BY version",
        )?;
        for link in links {
            let mut rows = speculative.query([
                to_i64(link.branch.0)?,
                to_i64(link.after.0)?,
                to_i64(link.upto.0)?,
            ])?;
            while let Some(row) = rows.next()? {
                board.apply_event(row.get_ref(0)?.as_blob()?)?;
            }
        }
        Ok(board)
    }
}

impl Backend for SqliteBackend {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn apply(&mut self, op: &Op) -> Result<(), BackendError> {
        match op {
            Op::CreateStream { stream } => self.durable(|tx| {
                tx.prepare_cached("INSERT INTO streams (name) VALUES (?1)")?
                    .execute([stream])?;
                Ok(())
            })?,
            Op::Fork { branch, from } => self.tree.fork(*branch, from)?,
            Op::Append {
                branch,
                expected,
                events,
                ..
            } => {
                let id = to_i64(branch.0)?;
                let first = to_i64(expected.0 + 1)?;
                self.speculative(|tx| {
                    let mut insert = tx.prepare_cached(
                        "INSERT INTO speculative (branch, version, payload) VALUES (?1, ?2, ?3)",
                    )?;
                    for (version, event) in (first..).zip(events) {
                        insert.execute(rusqlite::params![id, version, event])?;
                    }
                    Ok(())
                })?;
                self.tree
                    .appended(*branch, Version(expected.0 + events.len() as u64))?;
            }
            Op::View { at, board } => {
                let read = self.board(at)?;
                if read != *board {
                    return Err(format!("read {read:?}, recorded {board:?}").into());
                }
            }
            Op::Promote {
                stream,
                head,
                events,
                ..
            } => {
                let first = to_i64(head.0 + 1)?;
                self.durable(|tx| {
                    let mut insert = tx.prepare_cached(
                        "INSERT INTO events (stream, version, payload) VALUES (?1, ?2, ?3)",
                    )?;
                    for (version, event) in (first..).zip(events) {
                        insert.execute(rusqlite::params![stream, version, event])?;
                    }
                    Ok(())
                })?;
            }
            Op::Discard { branch } => {
                let freed = self.tree.discard(*branch)?;
                self.delete(&freed)?;
            }
            Op::Prune { discarded, .. } => {
                let mut freed = Vec::new();
                for branch in discarded {
                    freed.extend(self.tree.discard(*branch)?);
                }
                self.delete(&freed)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use helios_workloads::payloads::Payloads;

    use super::*;

    #[test]
    fn sqlite_peer_commits_each_event() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut peer = SqlitePeer::create(&dir.path().join("events.db")).expect("create");
        let payloads = Payloads::default();
        for i in 0..3 {
            peer.append("s", payloads.get(i)).expect("append");
        }
        let count: i64 = peer
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .expect("count");
        assert_eq!(count, 3);
    }
}
