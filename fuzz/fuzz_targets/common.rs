//! Helpers shared by the engine-level targets (`store_image`, `op_sequence`): the reference
//! model of the key-value state machine, scratch directories, and an allocator that enforces
//! libFuzzer's malloc limit without a sanitizer.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The state a key-value stream must have after `events`: a `BTreeMap` fold of `set KEY VALUE`
/// and `del KEY` (the format in `replay/src/kv.rs`). `None` if an event is not one of those:
/// the engine must then refuse the view with `Error::Replay`.
pub fn kv_fold<E: AsRef<[u8]>>(events: &[E]) -> Option<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut state = BTreeMap::new();
    for event in events {
        let event = event.as_ref();
        if let Some(rest) = event.strip_prefix(b"set ") {
            let space = rest.iter().position(|&b| b == b' ')?;
            let (key, value) = (&rest[..space], &rest[space + 1..]);
            if key.is_empty() {
                return None;
            }
            state.insert(key.to_vec(), value.to_vec());
        } else if let Some(key) = event.strip_prefix(b"del ") {
            if key.is_empty() || key.contains(&b' ') {
                return None;
            }
            state.remove(key);
        } else {
            return None;
        }
    }
    Some(state)
}

/// A fresh scratch directory, on tmpfs when the machine has one: executions write and sync
/// files, and a real disk's fsync would dominate their time.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new()
        .prefix("helios-fuzz-")
        .tempdir_in(shm);
    match builder {
        Ok(dir) => dir,
        Err(_) => tempfile::tempdir().expect("a temporary directory"),
    }
}

/// Whether `HELIOS_FUZZ_TRACE` is set: the targets then print what each input decodes to and
/// what happened, to explain a reproducer or a seed (`cargo fuzz run T FILE`).
pub fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("HELIOS_FUZZ_TRACE").is_some())
}

/// Prints `message()` when tracing.
pub fn trace(message: impl FnOnce() -> String) {
    if tracing() {
        eprintln!("helios-fuzz: {}", message());
    }
}

/// libFuzzer's default `-rss_limit_mb`, which its `-malloc_limit_mb` defaults to.
const RSS_LIMIT_MB_DEFAULT: usize = 2048;

/// The largest single allocation an execution may make, in bytes (0: no limit).
static MALLOC_LIMIT_BYTES: AtomicUsize = AtomicUsize::new(RSS_LIMIT_MB_DEFAULT << 20);

/// The engine-level targets' allocator: the system's, but an allocation larger than libFuzzer's
/// malloc limit is reported as libFuzzer reports it and aborts the process, which libFuzzer
/// saves as a crash. libFuzzer enforces `-malloc_limit_mb` only through a sanitizer's
/// allocator hooks, and these targets are run without a sanitizer (fuzz/README.md, "Speed"):
/// this keeps "never allocate without bound" checked there. `-rss_limit_mb` needs no hook and
/// applies as ever.
struct LimitedAlloc;

#[global_allocator]
static ALLOCATOR: LimitedAlloc = LimitedAlloc;

/// Sets the malloc limit from the command line as libFuzzer reads it: `-malloc_limit_mb=N`,
/// else `-rss_limit_mb=N`, else 2048; 0 means none. Called once, before the first input.
pub fn init_malloc_limit() {
    let flag = |name: &str| -> Option<usize> {
        std::env::args()
            .filter_map(|arg| arg.strip_prefix(name)?.parse::<usize>().ok())
            .next_back()
    };
    let rss_limit_mb = flag("-rss_limit_mb=").unwrap_or(RSS_LIMIT_MB_DEFAULT);
    let limit_mb = match flag("-malloc_limit_mb=") {
        Some(0) | None => rss_limit_mb,
        Some(mb) => mb,
    };
    MALLOC_LIMIT_BYTES.store(limit_mb.saturating_mul(1 << 20), Ordering::Relaxed);
}

/// Aborts if `size` bytes are past the malloc limit. Allocates nothing: the report is
/// formatted straight into the unbuffered stderr.
fn check_allocation(size: usize) {
    let limit = MALLOC_LIMIT_BYTES.load(Ordering::Relaxed);
    if limit != 0 && size > limit {
        let _ = writeln!(
            std::io::stderr(),
            "=={}== ERROR: libFuzzer: out-of-memory (malloc({size})), past the malloc limit of \
             {limit} bytes (fuzz_targets/common.rs)",
            std::process::id()
        );
        std::process::abort();
    }
}

// SAFETY: every method forwards to `System`, which upholds `GlobalAlloc`'s contract, with the
// caller's arguments unchanged; the only addition is a check that may abort the process before
// an allocation, and never returns a pointer of its own.
unsafe impl GlobalAlloc for LimitedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_allocation(layout.size());
        // SAFETY: the caller's layout, under the caller's obligations.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_allocation(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_allocation(new_size);
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller's `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
