//! Shared peers and measuring tools for the benches: one place for what every append bench
//! needs, so the criterion groups (`benches/append.rs`) and the latency harness
//! (`benches/append_latency.rs`) measure exactly the same things. The workloads themselves
//! (payloads, the MCTS search, the key-value stream) and the latency histograms are in
//! `helios-workloads`.
//!
//! - [`RawFloor`]: the durable-write floor, `pwrite` + `fdatasync` of one engine-sized frame
//!   per event into a file preallocated with real zeros.
//! - [`SqlitePeer`]: the peer a user would pick, SQLite in WAL mode with `synchronous=FULL`,
//!   one `INSERT` per transaction.
//! - [`scratch_dir`] and [`Machine`]: where the benches put their files (never on tmpfs, where
//!   `fdatasync` is free and every durable number would be meaningless) and what they ran on.
//! - [`state`]: the peers of the random-access state-read bench (`benches/checkpoint_reads.rs`):
//!   replay from the start and rkyv snapshots; and what its cold reads need.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use helios_workloads::mounts::{describe_mount, mount_of};
use helios_workloads::payloads::PAYLOAD_LEN;

pub mod state;

/// Bytes the engine writes to its log per event of [`PAYLOAD_LEN`] bytes (record header plus
/// payload): the raw floor writes this many bytes per event, so both move the same data.
pub const FRAME_LEN: usize = helios_log::format::frame_len(PAYLOAD_LEN);

/// Size of the raw floor's preallocated file: the engine's default segment size, 64 MiB.
pub const RAW_FLOOR_FILE_BYTES: u64 = helios_log::DEFAULT_SEGMENT_SIZE_BYTES;

/// The floor of a durable append: per event, one `pwrite` of a [`FRAME_LEN`]-byte frame at the
/// next offset of a file that was preallocated with real zeros (written, then fsynced), then
/// one `fdatasync`. Because the blocks already exist, the sync flushes only data, never file
/// size or block-allocation metadata: this is what the engine's log does with its pre-zeroed
/// segments, minus all of its CPU work (framing, CRC, index, locks).
///
/// When the file is full the offset wraps to zero, so any number of appends stays within the
/// preallocated blocks.
#[derive(Debug)]
pub struct RawFloor {
    file: File,
    path: PathBuf,
    capacity_bytes: u64,
    offset: u64,
    sequence: u64,
    frame: Vec<u8>,
}

impl RawFloor {
    /// Creates `path` (which must not exist) and preallocates `capacity_bytes` of zeros in it,
    /// then fsyncs it and its directory.
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(path: &Path, capacity_bytes: u64) -> io::Result<RawFloor> {
        let mut file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = capacity_bytes;
        while left > 0 {
            let n = left.min(zeros.len() as u64);
            file.write_all(&zeros[..usize::try_from(n).unwrap_or(zeros.len())])?;
            left -= n;
        }
        file.sync_all()?;
        if let Some(parent) = path.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(RawFloor {
            file,
            path: path.to_path_buf(),
            capacity_bytes,
            offset: 0,
            sequence: 0,
            frame: Vec::with_capacity(FRAME_LEN),
        })
    }

    /// Writes one frame holding `payload` at the next offset and waits for `fdatasync`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn append(&mut self, payload: &[u8]) -> io::Result<()> {
        let frame_len = helios_log::format::frame_len(payload.len());
        let header_len = frame_len - payload.len();
        self.sequence += 1;
        self.frame.clear();
        // A length prefix and a sequence number, zero-padded to the engine's header size.
        self.frame
            .extend_from_slice(&u32::try_from(frame_len).unwrap_or(u32::MAX).to_le_bytes());
        self.frame.extend_from_slice(&self.sequence.to_le_bytes());
        self.frame.resize(header_len, 0);
        self.frame.extend_from_slice(payload);
        if self.offset + frame_len as u64 > self.capacity_bytes {
            self.offset = 0;
        }
        self.file.write_all_at(&self.frame, self.offset)?;
        self.file.sync_data()?;
        self.offset += frame_len as u64;
        Ok(())
    }

    /// The preallocated file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

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

/// Whether `fs_type` keeps files in memory, where `fdatasync` costs nothing.
fn in_memory(fs_type: &str) -> bool {
    matches!(fs_type, "tmpfs" | "ramfs")
}

/// Directory under which the benches create their scratch directories: `$HELIOS_BENCH_DIR` if
/// set, else the system temporary directory if it is on a real disk, else `target/bench-tmp`
/// of this workspace (a temporary directory on tmpfs would make every sync free).
#[must_use]
pub fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("HELIOS_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    let tmp = std::env::temp_dir();
    match mount_of(&tmp) {
        Some((fs_type, _)) if !in_memory(&fs_type) => tmp,
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-tmp"),
    }
}

/// A fresh scratch directory under [`scratch_root`], removed when dropped.
///
/// # Panics
/// If the directory cannot be created, or if it lies on an in-memory file system.
#[must_use]
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    let root = scratch_root();
    std::fs::create_dir_all(&root).expect("create the bench scratch root");
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&root)
        .expect("create a bench scratch directory");
    if let Some((fs_type, _)) = mount_of(dir.path()) {
        assert!(
            !in_memory(&fs_type),
            "{} is on {fs_type}: fdatasync is free there, set HELIOS_BENCH_DIR to a real disk",
            dir.path().display()
        );
    }
    dir
}

/// Opens an engine in `dir` with default options, as a user would.
///
/// # Panics
/// If the engine does not open.
#[must_use]
pub fn open_engine(dir: &Path) -> helios::Engine {
    helios::Engine::builder(dir)
        .open()
        .expect("open the engine in a fresh directory")
}

/// What the benches ran on, for the report.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// CPU model name, from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Total memory, from `/proc/meminfo`.
    pub memory: String,
    /// Kernel release.
    pub kernel: String,
    /// Where the bench files live.
    pub scratch: PathBuf,
    /// File system type and device of `scratch`.
    pub scratch_fs: String,
}

impl Machine {
    /// Describes this machine.
    #[must_use]
    pub fn describe() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_else(|| "unknown".to_owned())
        };
        let scratch = scratch_root();
        let _ = std::fs::create_dir_all(&scratch);
        let scratch_fs = describe_mount(&scratch);
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            cpu_model: field(&read("/proc/cpuinfo"), "model name"),
            memory: field(&read("/proc/meminfo"), "MemTotal"),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            scratch,
            scratch_fs,
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} CPUs ({}), {} memory, Linux {}, files in {} ({})",
            self.cpus,
            self.cpu_model,
            self.memory,
            self.kernel,
            self.scratch.display(),
            self.scratch_fs
        )
    }
}

#[cfg(test)]
mod tests {
    use helios_workloads::payloads::Payloads;

    use super::*;

    #[test]
    fn raw_floor_writes_frames_and_wraps() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("floor");
        let capacity = 3 * FRAME_LEN as u64 + 10;
        let mut floor = RawFloor::create(&path, capacity).expect("create");
        let payloads = Payloads::default();
        for i in 0..4 {
            floor.append(payloads.get(i)).expect("append");
        }
        let bytes = std::fs::read(floor.path()).expect("read back");
        assert_eq!(bytes.len() as u64, capacity, "the file never grows");
        // The fourth frame wrapped to offset 0.
        assert_eq!(&bytes[FRAME_LEN - PAYLOAD_LEN..FRAME_LEN], payloads.get(3));
        assert_eq!(
            &bytes[2 * FRAME_LEN - PAYLOAD_LEN..2 * FRAME_LEN],
            payloads.get(1)
        );
    }

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
