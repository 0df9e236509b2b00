//! SQLite as an event store for many key-value streams, built as an event-sourcing user would
//! build it on SQLite (the `many_streams` bench's peer): events in one table, a snapshot of
//! each stream's state every [`SNAPSHOT_EVERY`] events in another, and state loaded as the
//! latest snapshot plus the events after it, folded.
//!
//! - `events(stream TEXT, version INTEGER, payload BLOB, PRIMARY KEY(stream, version))` and
//!   `snapshots(stream TEXT, version INTEGER, state BLOB, PRIMARY KEY(stream, version))`, in WAL
//!   mode with `synchronous=FULL` (every commit syncs the WAL), checked after setting; the
//!   default page cache and WAL auto-checkpoint.
//! - An append inserts the event and, when its version is a multiple of [`SNAPSHOT_EVERY`],
//!   the stream's state at that version, in the same transaction. The state comes from the
//!   aggregate the application holds in memory (a user appending to a stream has just loaded
//!   it to decide the event), which this peer keeps per stream: writing a snapshot reads
//!   nothing back from the database.
//! - A state is serialized simply: its pairs in key order, each as key length `u32` LE, key,
//!   value length `u32` LE, value ([`encode_state`]).
//! - Events are key-value events folded by the reference fold, [`helios::kv::fold_into`].
//!
//! Invariant: the `snapshots` row of `(stream, v)` holds exactly the fold of the stream's
//! events `1..=v` as this peer appended them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use helios::Version;

/// Events of a stream between two snapshots: a snapshot is written at every version that is a
/// multiple of it.
pub const SNAPSHOT_EVERY: u64 = 10;

/// SQLite's `PRAGMA synchronous` value for FULL: every commit syncs the WAL.
const SYNCHRONOUS_FULL: i64 = 2;

/// Bytes of each length prefix in an encoded state.
const LEN_PREFIX_BYTES: usize = 4;

/// A stream's state: every key and value, in key order.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// A failed call of [`SqliteEventStore`]: the database it concerned and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("sqlite event store {}: {reason}", path.display())]
pub struct EventStoreError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: Reason,
}

/// What went wrong in an [`EventStoreError`].
#[derive(Debug, thiserror::Error)]
pub enum Reason {
    /// An SQLite call failed.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A column read back does not have the type the schema gives it.
    #[error("a column read back has the wrong type: {0}")]
    Column(#[from] rusqlite::types::FromSqlError),
    /// A pragma did not take effect.
    #[error("expected {expected}, got {actual}")]
    Pragma {
        /// The setting asked for.
        expected: &'static str,
        /// What SQLite reports.
        actual: String,
    },
    /// An event (appended, or read back) is not a key-value event.
    #[error("event {version} of stream `{stream}` is not a key-value event: {kv}")]
    BadEvent {
        /// The stream.
        stream: String,
        /// The event's version.
        version: u64,
        /// Why it does not parse.
        kv: helios::kv::KvError,
    },
    /// A snapshot read back does not decode.
    #[error("the snapshot of stream `{stream}` at version {version} is cut at byte {offset}")]
    BadSnapshot {
        /// The stream.
        stream: String,
        /// The snapshot's version.
        version: u64,
        /// The offset in the snapshot's bytes where decoding stopped.
        offset: usize,
    },
    /// A version that does not fit an SQLite integer.
    #[error("version {0} does not fit an SQLite integer")]
    VersionRange(u64),
}

/// What this module's public calls return.
pub type Result<T> = std::result::Result<T, EventStoreError>;

/// What the calls inside this module return, before the path is added.
type Inner<T> = std::result::Result<T, Reason>;

/// One event to append: its stream, its version (the stream's head plus one) and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct NewEvent<'a> {
    /// The stream.
    pub stream: &'a str,
    /// Its version.
    pub version: Version,
    /// A key-value event.
    pub payload: &'a [u8],
}

/// The event store (see the module documentation).
#[derive(Debug)]
pub struct SqliteEventStore {
    conn: rusqlite::Connection,
    path: PathBuf,
    /// The aggregate of every stream as the application holds it: the fold of its events.
    states: HashMap<String, State>,
    snapshots_written: u64,
}

impl SqliteEventStore {
    /// Creates the database at `path` with both tables, and checks that WAL mode and
    /// `synchronous=FULL` took effect.
    ///
    /// # Errors
    /// SQLite errors, or a pragma that did not take effect.
    pub fn create(path: &Path) -> Result<SqliteEventStore> {
        let error = |reason| EventStoreError {
            path: path.to_path_buf(),
            reason,
        };
        let conn = create_tables(path).map_err(error)?;
        Ok(SqliteEventStore {
            conn,
            path: path.to_path_buf(),
            states: HashMap::new(),
            snapshots_written: 0,
        })
    }

    /// Opens a database [`SqliteEventStore::create`] made (to read it again in another run),
    /// in WAL mode with `synchronous=FULL`, both checked. The aggregates an append keeps are
    /// not loaded: appending to a stream that already has events would write wrong snapshots,
    /// so a store opened this way is for loads only.
    ///
    /// # Errors
    /// SQLite errors (a missing file is one: nothing is created), or a pragma that did not
    /// take effect.
    pub fn open_for_loads(path: &Path) -> Result<SqliteEventStore> {
        let error = |reason| EventStoreError {
            path: path.to_path_buf(),
            reason,
        };
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
        )
        .map_err(|e| error(e.into()))?;
        set_pragmas(&conn).map_err(error)?;
        Ok(SqliteEventStore {
            conn,
            path: path.to_path_buf(),
            states: HashMap::new(),
            snapshots_written: 0,
        })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The files SQLite keeps for this database: the database itself, its WAL (`-wal`) and
    /// the WAL's shared-memory index (`-shm`).
    #[must_use]
    pub fn files(&self) -> [PathBuf; 3] {
        let with = |suffix: &str| {
            let mut name = self.path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        [self.path.clone(), with("-wal"), with("-shm")]
    }

    /// Snapshot rows written so far.
    #[must_use]
    pub fn snapshots_written(&self) -> u64 {
        self.snapshots_written
    }

    /// Appends `events` in one transaction, committed durably: each event's row, and a
    /// snapshot row after each event whose version is a multiple of [`SNAPSHOT_EVERY`].
    /// Versions are the caller's (the primary key refuses a version twice).
    ///
    /// # Errors
    /// SQLite errors (the transaction is rolled back, and the in-memory aggregates may then be
    /// ahead of the database: drop the store), an event that is not a key-value event.
    pub fn append(&mut self, events: &[NewEvent<'_>]) -> Result<()> {
        let appended = self.try_append(events);
        appended.map_err(|reason| self.error(reason))
    }

    /// The latest state of `stream`: its newest snapshot, then every event after it, folded.
    /// Returns the version reached (0 and an empty state for an unknown stream).
    ///
    /// # Errors
    /// SQLite errors, rows that do not decode.
    pub fn latest_state(&self, stream: &str) -> Result<(Version, State)> {
        self.try_latest_state(stream)
            .map_err(|reason| self.error(reason))
    }

    /// The state of `stream` at `version`: its newest snapshot at or below `version`, then the
    /// events after it up to `version`, folded. Returns the version reached (below `version`
    /// when the stream is shorter).
    ///
    /// # Errors
    /// SQLite errors, rows that do not decode.
    pub fn state_at(&self, stream: &str, version: Version) -> Result<(Version, State)> {
        self.try_state_at(stream, version)
            .map_err(|reason| self.error(reason))
    }

    fn error(&self, reason: Reason) -> EventStoreError {
        EventStoreError {
            path: self.path.clone(),
            reason,
        }
    }

    fn try_append(&mut self, events: &[NewEvent<'_>]) -> Inner<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert_event = tx.prepare_cached(
                "INSERT INTO events (stream, version, payload) VALUES (?1, ?2, ?3)",
            )?;
            let mut insert_snapshot = tx.prepare_cached(
                "INSERT INTO snapshots (stream, version, state) VALUES (?1, ?2, ?3)",
            )?;
            for event in events {
                let version = to_i64(event.version.0)?;
                insert_event.execute(rusqlite::params![event.stream, version, event.payload])?;
                let state = match self.states.get_mut(event.stream) {
                    Some(state) => state,
                    None => self.states.entry(event.stream.to_owned()).or_default(),
                };
                helios::kv::fold_into(state, event.payload).map_err(|kv| Reason::BadEvent {
                    stream: event.stream.to_owned(),
                    version: event.version.0,
                    kv,
                })?;
                if event.version.0 % SNAPSHOT_EVERY == 0 {
                    insert_snapshot.execute(rusqlite::params![
                        event.stream,
                        version,
                        encode_state(state)
                    ])?;
                    self.snapshots_written += 1;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn try_latest_state(&self, stream: &str) -> Inner<(Version, State)> {
        let mut snapshot = self.conn.prepare_cached(
            "SELECT version, state FROM snapshots WHERE stream = ?1
             ORDER BY version DESC LIMIT 1",
        )?;
        let (from, state) = snapshot_from(&mut snapshot, rusqlite::params![stream], stream)?;
        let mut events = self.conn.prepare_cached(
            "SELECT version, payload FROM events WHERE stream = ?1 AND version > ?2
             ORDER BY version",
        )?;
        let rows = events.query(rusqlite::params![stream, from])?;
        fold_rows(rows, stream, from, state)
    }

    fn try_state_at(&self, stream: &str, version: Version) -> Inner<(Version, State)> {
        let upto = to_i64(version.0)?;
        let mut snapshot = self.conn.prepare_cached(
            "SELECT version, state FROM snapshots WHERE stream = ?1 AND version <= ?2
             ORDER BY version DESC LIMIT 1",
        )?;
        let (from, state) = snapshot_from(&mut snapshot, rusqlite::params![stream, upto], stream)?;
        let mut events = self.conn.prepare_cached(
            "SELECT version, payload FROM events WHERE stream = ?1 AND version > ?2
             AND version <= ?3 ORDER BY version",
        )?;
        let rows = events.query(rusqlite::params![stream, from, upto])?;
        fold_rows(rows, stream, from, state)
    }
}

/// Creates the database at `path` in WAL mode with `synchronous=FULL`, checks both, and
/// creates the two tables.
fn create_tables(path: &Path) -> Inner<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    set_pragmas(&conn)?;
    conn.execute_batch(
        "CREATE TABLE events (
             stream TEXT NOT NULL,
             version INTEGER NOT NULL,
             payload BLOB NOT NULL,
             PRIMARY KEY (stream, version)
         );
         CREATE TABLE snapshots (
             stream TEXT NOT NULL,
             version INTEGER NOT NULL,
             state BLOB NOT NULL,
             PRIMARY KEY (stream, version)
         );",
    )?;
    Ok(conn)
}

/// Sets WAL mode and `synchronous=FULL` on `conn`, and checks that both took effect.
fn set_pragmas(conn: &rusqlite::Connection) -> Inner<()> {
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Reason::Pragma {
            expected: "journal_mode=wal",
            actual: mode,
        });
    }
    conn.pragma_update(None, "synchronous", SYNCHRONOUS_FULL)?;
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |row| row.get(0))?;
    if synchronous != SYNCHRONOUS_FULL {
        return Err(Reason::Pragma {
            expected: "synchronous=2 (FULL)",
            actual: synchronous.to_string(),
        });
    }
    Ok(())
}

/// Runs a snapshot query and decodes its row: the snapshot's version and state, or 0 and the
/// empty state when there is none.
fn snapshot_from(
    query: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
    stream: &str,
) -> Inner<(i64, State)> {
    let mut rows = query.query(params)?;
    let Some(row) = rows.next()? else {
        return Ok((0, State::new()));
    };
    let version: i64 = row.get(0)?;
    let state = decode_state(row.get_ref(1)?.as_blob()?).map_err(|offset| Reason::BadSnapshot {
        stream: stream.to_owned(),
        version: u64::try_from(version).unwrap_or(0),
        offset,
    })?;
    Ok((version, state))
}

/// Folds `(version, payload)` rows into `state`, which is the state at version `from`.
fn fold_rows(
    mut rows: rusqlite::Rows<'_>,
    stream: &str,
    from: i64,
    mut state: State,
) -> Inner<(Version, State)> {
    let mut reached = from;
    while let Some(row) = rows.next()? {
        reached = row.get(0)?;
        helios::kv::fold_into(&mut state, row.get_ref(1)?.as_blob()?).map_err(|kv| {
            Reason::BadEvent {
                stream: stream.to_owned(),
                version: u64::try_from(reached).unwrap_or(0),
                kv,
            }
        })?;
    }
    Ok((Version(u64::try_from(reached).unwrap_or(0)), state))
}

fn to_i64(version: u64) -> Inner<i64> {
    i64::try_from(version).map_err(|_| Reason::VersionRange(version))
}

/// A state as the `snapshots` table stores it: its pairs in key order, each as key length
/// (`u32` LE), key, value length (`u32` LE), value.
///
/// # Panics
/// If a key or value is 4 GiB or longer.
#[must_use]
pub fn encode_state(state: &State) -> Vec<u8> {
    let len = state
        .iter()
        .map(|(k, v)| 2 * LEN_PREFIX_BYTES + k.len() + v.len())
        .sum();
    let mut out = Vec::with_capacity(len);
    for (key, value) in state {
        for bytes in [key, value] {
            let prefix = u32::try_from(bytes.len()).expect("keys and values are below 4 GiB");
            out.extend_from_slice(&prefix.to_le_bytes());
            out.extend_from_slice(bytes);
        }
    }
    out
}

/// Decodes what [`encode_state`] wrote.
///
/// # Errors
/// The offset where the bytes stop making sense (a length past the end).
pub fn decode_state(mut bytes: &[u8]) -> std::result::Result<State, usize> {
    let total = bytes.len();
    let mut state = State::new();
    let take = |bytes: &mut &[u8]| -> std::result::Result<Vec<u8>, usize> {
        let offset = total - bytes.len();
        let (prefix, rest) = bytes
            .split_first_chunk::<LEN_PREFIX_BYTES>()
            .ok_or(offset)?;
        let len = usize::try_from(u32::from_le_bytes(*prefix)).map_err(|_| offset)?;
        if rest.len() < len {
            return Err(offset);
        }
        let (item, rest) = rest.split_at(len);
        *bytes = rest;
        Ok(item.to_vec())
    };
    while !bytes.is_empty() {
        let key = take(&mut bytes)?;
        let value = take(&mut bytes)?;
        state.insert(key, value);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model: every stream's events, folded from the first at any version.
    fn model_state(events: &[Vec<u8>], version: usize) -> State {
        helios::kv::fold(events[..version].iter().map(Vec::as_slice)).expect("key-value events")
    }

    #[test]
    fn states_round_trip_through_their_encoding() {
        let state: State = [
            (b"k0".to_vec(), b"a value".to_vec()),
            (b"k7".to_vec(), Vec::new()),
        ]
        .into();
        assert_eq!(decode_state(&encode_state(&state)), Ok(state));
        assert_eq!(decode_state(&[]), Ok(State::new()));
        let encoded = encode_state(&[(b"k".to_vec(), b"v".to_vec())].into());
        assert_eq!(decode_state(&encoded[..encoded.len() - 1]), Err(5));
        assert_eq!(decode_state(&encoded[..2]), Err(0));
    }

    #[test]
    fn loads_match_a_fold_from_the_first_event_at_every_version() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = SqliteEventStore::create(&dir.path().join("events.db")).expect("create");
        let streams = ["order-000000", "order-000001"];
        // 25 events per stream, alternating, in batches of 7 and then one at a time.
        let events: Vec<Vec<Vec<u8>>> = (0..2)
            .map(|s| {
                (0..25)
                    .map(|i| match (i + s) % 4 {
                        3 => format!("del k{}", i % 3).into_bytes(),
                        _ => format!("set k{} value {s}-{i}", i % 3).into_bytes(),
                    })
                    .collect()
            })
            .collect();
        let order: Vec<NewEvent<'_>> = (0..25)
            .flat_map(|i| (0..2).map(move |s| (s, i)))
            .map(|(s, i)| NewEvent {
                stream: streams[s],
                version: Version(i as u64 + 1),
                payload: &events[s][i],
            })
            .collect();
        let (batched, single) = order.split_at(30);
        for batch in batched.chunks(7) {
            store.append(batch).expect("append a batch");
        }
        for event in single {
            store
                .append(std::slice::from_ref(event))
                .expect("append one");
        }
        assert_eq!(store.snapshots_written(), 4);
        for (s, stream) in streams.iter().enumerate() {
            assert_eq!(
                store.latest_state(stream).expect("latest"),
                (Version(25), model_state(&events[s], 25))
            );
            for version in 0..=25 {
                assert_eq!(
                    store
                        .state_at(stream, Version(version as u64))
                        .expect("state at"),
                    (Version(version as u64), model_state(&events[s], version)),
                    "{stream} at {version}"
                );
            }
        }
        assert_eq!(
            store.latest_state("order-000009").expect("unknown stream"),
            (Version::ZERO, State::new())
        );
        // Opened again, another connection loads the same states.
        let again = SqliteEventStore::open_for_loads(store.path()).expect("open for loads");
        assert_eq!(
            again.state_at(streams[1], Version(17)).expect("state at"),
            (Version(17), model_state(&events[1], 17))
        );
        assert!(SqliteEventStore::open_for_loads(&dir.path().join("missing.db")).is_err());
        // A version twice is refused by the primary key.
        assert!(store.append(&order[..1]).is_err());
        assert!(store.files().iter().all(|f| f.starts_with(dir.path())));
        assert!(store.files()[0].exists() && store.files()[1].exists());
    }
}
