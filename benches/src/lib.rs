//! Shared workload code for the benches: one place for what every append bench needs, so the
//! criterion groups (`benches/append.rs`) and the latency harness (`benches/append_latency.rs`)
//! measure exactly the same things.
//!
//! - [`Payloads`]: deterministic 100-byte event payloads.
//! - [`RawFloor`]: the durable-write floor, `pwrite` + `fdatasync` of one engine-sized frame
//!   per event into a file preallocated with real zeros.
//! - [`SqlitePeer`]: the peer a user would pick, SQLite in WAL mode with `synchronous=FULL`,
//!   one `INSERT` per transaction.
//! - [`Latencies`]: an HDR histogram of per-operation latencies, summarised as median, p99,
//!   p99.9 and max in microseconds.
//! - [`scratch_dir`] and [`Machine`]: where the benches put their files (never on tmpfs, where
//!   `fdatasync` is free and every durable number would be meaningless) and what they ran on.
//! - [`Rng`]: the deterministic generator behind every workload.
//! - [`state`]: the random-access state-read workload (`benches/checkpoint_reads.rs`), its
//!   reference answers and its two peers (replay from the start, rkyv snapshots).

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

pub mod mcts;
pub mod state;

/// Payload size of every event the benches append, in bytes.
pub const PAYLOAD_LEN: usize = 100;

/// Bytes the engine writes to its log per event of [`PAYLOAD_LEN`] bytes (record header plus
/// payload): the raw floor writes this many bytes per event, so both move the same data.
pub const FRAME_LEN: usize = helios_log::format::frame_len(PAYLOAD_LEN);

/// Size of the raw floor's preallocated file: the engine's default segment size, 64 MiB.
pub const RAW_FLOOR_FILE_BYTES: u64 = helios_log::DEFAULT_SEGMENT_SIZE_BYTES;

/// Seed of the payloads every bench uses.
pub const SEED: u64 = 0x4865_6c69_6f73_2121;

/// Number of distinct payloads in a [`Payloads`] ring.
const RING_LEN: usize = 1024;

/// One step of splitmix64: a small, fast, deterministic generator.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A deterministic pseudo-random generator (splitmix64): the same seed gives the same workload
/// on every machine and in every run.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator started from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        splitmix64(&mut self.state)
    }

    /// A number in `0..bound` (`bound` must be positive). The modulo bias is below
    /// `bound / 2^64`, far below anything a bench could notice.
    ///
    /// # Panics
    /// If `bound` is 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "Rng::below needs a positive bound");
        self.next_u64() % bound
    }

    /// A number in `0..bound`, as an index (`bound` must be positive).
    ///
    /// # Panics
    /// If `bound` is 0.
    pub fn index(&mut self, bound: usize) -> usize {
        // The result is below `bound`, which is a usize.
        usize::try_from(self.below(bound as u64)).unwrap_or(0)
    }
}

/// Deterministic event payloads of [`PAYLOAD_LEN`] bytes: a ring of 1024 pseudo-random payloads
/// generated from a seed, so that a run never pays for generation inside a timed region and two
/// runs (or two peers) append the same bytes.
#[derive(Clone, Debug)]
pub struct Payloads {
    ring: Vec<[u8; PAYLOAD_LEN]>,
}

impl Payloads {
    /// Generates the ring from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Payloads {
        let mut state = seed;
        let ring = (0..RING_LEN)
            .map(|_| {
                let mut payload = [0u8; PAYLOAD_LEN];
                for chunk in payload.chunks_mut(8) {
                    let word = splitmix64(&mut state).to_le_bytes();
                    chunk.copy_from_slice(&word[..chunk.len()]);
                }
                payload
            })
            .collect();
        Payloads { ring }
    }

    /// The payload of event number `index` (the ring repeats every 1024 events).
    #[must_use]
    pub fn get(&self, index: u64) -> &[u8; PAYLOAD_LEN] {
        // The remainder is below RING_LEN, so it fits any usize.
        let slot = usize::try_from(index % RING_LEN as u64).unwrap_or(0);
        &self.ring[slot]
    }
}

impl Default for Payloads {
    /// The ring for [`SEED`].
    fn default() -> Self {
        Payloads::new(SEED)
    }
}

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

/// Per-operation latencies in an HDR histogram (1 ns to 100 s, 3 significant digits).
#[derive(Clone, Debug)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Latencies {
        Latencies {
            histogram: Histogram::new_with_bounds(1, 100_000_000_000, 3)
                .expect("constant bounds are valid"),
        }
    }

    /// Records one latency (saturating at the upper bound).
    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(nanos.max(1));
    }

    /// Runs `f`, records how long it took, returns its result.
    pub fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = f();
        self.record(start.elapsed());
        result
    }

    /// Adds every latency of `other` (for per-thread histograms).
    pub fn merge(&mut self, other: &Latencies) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms with the same bounds always add");
    }

    /// Number of latencies recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Number of latencies recorded above `bound` (to the histogram's precision, 3
    /// significant digits).
    #[must_use]
    pub fn count_above(&self, bound: Duration) -> u64 {
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.len() - self.histogram.count_between(0, nanos)
    }

    /// Median, p99, p99.9, max and mean, in microseconds.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let us = |nanos: u64| nanos as f64 / 1000.0;
        Summary {
            count: self.histogram.len(),
            median_us: us(self.histogram.value_at_quantile(0.5)),
            p99_us: us(self.histogram.value_at_quantile(0.99)),
            p999_us: us(self.histogram.value_at_quantile(0.999)),
            max_us: us(self.histogram.max()),
            mean_us: self.histogram.mean() / 1000.0,
        }
    }
}

/// A summary of [`Latencies`], in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Number of operations.
    pub count: u64,
    /// 50th percentile.
    pub median_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} median={:.1}us p99={:.1}us p99.9={:.1}us max={:.1}us",
            self.count, self.median_us, self.p99_us, self.p999_us, self.max_us
        )
    }
}

/// File system type and device of the mount holding `path`, from `/proc/self/mounts` (the
/// longest mount point that is a prefix of the canonical path).
#[must_use]
pub fn mount_of(path: &Path) -> Option<(String, String)> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let mut best: Option<(usize, String, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(device), Some(mount_point), Some(fs_type)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let mount_point = mount_point.replace("\\040", " ");
        let depth = Path::new(&mount_point).components().count();
        if path.starts_with(&mount_point) && best.as_ref().is_none_or(|(d, _, _)| depth >= *d) {
            best = Some((depth, fs_type.to_owned(), device.to_owned()));
        }
    }
    best.map(|(_, fs_type, device)| (fs_type, device))
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
        let scratch_fs = mount_of(&scratch).map_or_else(
            || "unknown".to_owned(),
            |(fs_type, device)| format!("{fs_type} on {device}"),
        );
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
    use super::*;

    #[test]
    fn counts_latencies_above_a_bound() {
        let mut latencies = Latencies::new();
        for micros in [100, 900, 4_999, 5_100, 12_000] {
            latencies.record(Duration::from_micros(micros));
        }
        assert_eq!(latencies.count_above(Duration::from_millis(5)), 2);
        assert_eq!(latencies.count_above(Duration::from_micros(50)), 5);
        assert_eq!(latencies.count_above(Duration::from_secs(1)), 0);
    }

    #[test]
    fn payloads_are_deterministic_and_distinct() {
        let a = Payloads::new(SEED);
        let b = Payloads::new(SEED);
        assert_eq!(a.get(7), b.get(7));
        assert_ne!(a.get(7), a.get(8));
        assert_eq!(a.get(3), a.get(3 + RING_LEN as u64));
        assert_eq!(a.get(0).len(), PAYLOAD_LEN);
    }

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

    #[test]
    fn latencies_summarise_in_microseconds() {
        let mut l = Latencies::new();
        for us in 1..=100u64 {
            l.record(Duration::from_micros(us));
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        assert!((s.median_us - 50.0).abs() < 0.5, "{s}");
        assert!((s.max_us - 100.0).abs() < 0.5, "{s}");
    }
}
