//! The floors timed beside the samples: what the machine alone costs for work of the same
//! length, so that a sample's tail can be told apart from the machine's noise.
//!
//! - [`NoiseFloor`]: fixed arithmetic, no memory traffic (interrupts, the hypervisor);
//! - [`MemoryFloor`]: chains of dependent random loads, on the heap or over a file map (memory
//!   latency shared with the host's other tenants, address translation);
//! - [`DiskFloor`]: dependent random page reads of a file dropped from the page cache (the
//!   disk's part of a cold sample).

use std::hint::black_box;
use std::time::Instant;

use helios_benches::{ThreadIo, scratch_dir};
use helios_workloads::Rng;
use helios_workloads::latency::Latencies;
use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};

use crate::Result;

/// Fixed CPU work (arithmetic in registers, no memory traffic) that takes about as long as a
/// warm Helios sample, timed right after each one: its spread is what the machine alone adds
/// to a sample of that length (interrupts, the hypervisor taking the CPU away), the floor
/// under Helios's own p99.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NoiseFloor {
    /// Rounds of arithmetic per sample.
    pub(crate) rounds: u64,
}

/// How many units of `work` (called with a count of units) take about `target_us`: the median
/// of nine timed calls of `probe_units` units, scaled. At least 1.
fn units_taking(target_us: f64, probe_units: u64, mut work: impl FnMut(u64)) -> u64 {
    let mut times: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            work(probe_units);
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let us_per_unit = times[times.len() / 2] / probe_units as f64;
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a positive count of a few microseconds of work, far below u64::MAX"
    )]
    let units = (target_us / us_per_unit) as u64;
    units.max(1)
}

impl NoiseFloor {
    /// Finds the rounds that take about `target_us`.
    pub(crate) fn calibrate(target_us: f64) -> NoiseFloor {
        NoiseFloor {
            rounds: units_taking(target_us, 100_000, NoiseFloor::spin),
        }
    }

    pub(crate) fn run(self) {
        NoiseFloor::spin(self.rounds);
    }

    fn spin(rounds: u64) {
        let mut x = black_box(0x9e37_79b9_7f4a_7c15_u64);
        for _ in 0..rounds {
            x = x.rotate_left(5) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        }
        black_box(x);
    }
}

/// Memory work that takes about as long as a warm Helios sample: a chain of dependent loads at
/// random over a buffer far larger than the CPU caches (each load's address is the previous
/// load's value), timed right after each warm Helios sample. A Helios sample is mostly cache
/// misses, so this is its floor for memory-latency noise (other tenants of the host sharing
/// its caches and memory), which the arithmetic [`NoiseFloor`] does not see.
///
/// Three of them run: one over 64 MiB of heap (beyond any last-level cache here), and two as
/// large as the checkpoint files Helios reads from, so that address translation costs what it
/// costs Helios (a VM's page walks grow with the memory a program touches): one on the heap,
/// one over a file written with one call and mapped `MADV_RANDOM`, the kind of memory Helios's
/// checkpoints are (page cache, in 2 MiB folios).
pub(crate) struct MemoryFloor {
    /// A single cycle through every slot (Sattolo's algorithm), so a chase never repeats early.
    next: Slots,
    /// Dependent loads per sample.
    pub(crate) loads: u64,
    at: u32,
}

/// Where a [`MemoryFloor`]'s slots live.
enum Slots {
    Heap(Vec<u32>),
    /// The slots as native-endian bytes in a mapped file; the directory holding the file goes
    /// when the floor does, after the map.
    File {
        map: memmap2::Mmap,
        _dir: tempfile::TempDir,
    },
}

/// The only `unsafe` of the benches: mapping the file-backed memory floor.
#[expect(
    unsafe_code,
    reason = "memory-mapping a file is unsafe in memmap2's API"
)]
mod floor_map {
    /// Maps `file` read-only.
    pub(super) fn map(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
        // SAFETY: memmap2 requires that the file not be modified or truncated while mapped.
        // `MemoryFloor::over_file` creates the file in a temporary directory of its own, writes
        // it whole and only then maps it; nothing writes it afterwards, and the directory is
        // removed only after the map is dropped (field order in `Slots::File`).
        unsafe { memmap2::Mmap::map(file) }
    }
}

impl MemoryFloor {
    /// Bytes of the small floor's buffer.
    pub(crate) const SMALL_BYTES: u64 = 64 << 20;

    /// A floor over `bytes` of heap memory (rounded down to 4-byte slots).
    pub(crate) fn new(rng: &mut Rng, bytes: u64) -> Result<MemoryFloor> {
        Ok(MemoryFloor {
            next: Slots::Heap(MemoryFloor::cycle(rng, bytes)?),
            loads: 1,
            at: 0,
        })
    }

    /// A floor over a file of `bytes`, written with one call (as checkpoints are), mapped
    /// `MADV_RANDOM` and read through once, so that its pages are in the page cache.
    pub(crate) fn over_file(rng: &mut Rng, bytes: u64) -> Result<MemoryFloor> {
        let bytes: Vec<u8> = MemoryFloor::cycle(rng, bytes)?
            .into_iter()
            .flat_map(u32::to_ne_bytes)
            .collect();
        let dir = scratch_dir("helios-floor-");
        let path = dir.path().join("floor");
        std::fs::write(&path, &bytes)?;
        drop(bytes);
        let map = floor_map::map(&std::fs::File::open(&path)?)?;
        map.advise(memmap2::Advice::Random)?;
        let mut sum = 0u64;
        for page in map.chunks(4096) {
            sum = sum.wrapping_add(u64::from(page[0]));
        }
        black_box(sum);
        Ok(MemoryFloor {
            next: Slots::File { map, _dir: dir },
            loads: 1,
            at: 0,
        })
    }

    /// A random single cycle over `bytes / 4` slots.
    fn cycle(rng: &mut Rng, bytes: u64) -> Result<Vec<u32>> {
        let slots = u32::try_from(bytes / 4)?.max(2);
        let mut next: Vec<u32> = (0..slots).collect();
        for i in (1..next.len()).rev() {
            let j = rng.index(i);
            next.swap(i, j);
        }
        Ok(next)
    }

    /// Bytes of memory the chase runs over.
    pub(crate) fn bytes(&self) -> u64 {
        match &self.next {
            Slots::Heap(next) => 4 * next.len() as u64,
            Slots::File { map, .. } => map.len() as u64,
        }
    }

    /// The floor with its chain length set so that a run takes about `target_us`.
    pub(crate) fn calibrated(mut self, target_us: f64) -> MemoryFloor {
        self.loads = units_taking(target_us, 20_000, |loads| self.chase(loads));
        self
    }

    pub(crate) fn run(&mut self) {
        self.chase(self.loads);
    }

    fn chase(&mut self, loads: u64) {
        let mut at = self.at;
        match &self.next {
            Slots::Heap(next) => {
                for _ in 0..loads {
                    at = next[at as usize];
                }
            }
            Slots::File { map, .. } => {
                for _ in 0..loads {
                    let i = 4 * at as usize;
                    at = map
                        .get(i..i + 4)
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map_or(0, u32::from_ne_bytes);
                }
            }
        }
        self.at = black_box(at);
    }
}

/// The cold samples' floor: the disk alone. A file of its own, written and synced at set-up,
/// read with `POSIX_FADV_RANDOM` (no read-ahead, as Helios's `MADV_RANDOM` maps); before each
/// sample its pages are dropped with `posix_fadvise(DONTNEED)`, then [`DiskFloor::READS`]
/// dependent `pread`s of one 4 KiB page each at random offsets are timed: the page reads of a
/// cold Helios sample (2.1 on average) without anything else. Timed after each cold Helios
/// sample, so that a slow spell of the virtual disk shows in both.
pub(crate) struct DiskFloor {
    file: std::fs::File,
    pages: u64,
    /// The directory holding the file; removed when the floor goes.
    _dir: tempfile::TempDir,
}

impl DiskFloor {
    /// Bytes of the floor's file.
    const BYTES: u64 = 64 << 20;
    /// Page reads per sample.
    pub(crate) const READS: u32 = 2;
    /// Bytes of one read.
    const PAGE: usize = 4096;

    pub(crate) fn new() -> Result<DiskFloor> {
        let dir = scratch_dir("helios-disk-floor-");
        let path = dir.path().join("floor");
        // Real bytes, not a hole: a hole would be read without touching the disk.
        std::fs::write(&path, vec![0xa5u8; usize::try_from(DiskFloor::BYTES)?])?;
        let file = std::fs::File::open(&path)?;
        // Dirty pages are not dropped by DONTNEED: write them out first.
        file.sync_all()?;
        posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_RANDOM)?;
        Ok(DiskFloor {
            file,
            pages: DiskFloor::BYTES / DiskFloor::PAGE as u64,
            _dir: dir,
        })
    }

    /// Drops the file's pages, then times [`DiskFloor::READS`] page reads into `latencies`.
    /// Returns the I/O the reads did, as the cold Helios samples count it.
    pub(crate) fn sample(&self, rng: &mut Rng, latencies: &mut Latencies) -> Result<ThreadIo> {
        use std::os::unix::fs::FileExt;
        posix_fadvise(&self.file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)?;
        let mut page = [0u8; DiskFloor::PAGE];
        let before = ThreadIo::now()?;
        let started = Instant::now();
        let mut at = rng.below(self.pages);
        for _ in 0..DiskFloor::READS {
            self.file
                .read_exact_at(&mut page, at * DiskFloor::PAGE as u64)?;
            // The next offset depends on the bytes read, as a lookup's next page does.
            at = (at ^ u64::from(black_box(page[0]))).wrapping_add(rng.below(self.pages))
                % self.pages;
        }
        latencies.record(started.elapsed());
        Ok(ThreadIo::now()?.since(before))
    }
}
