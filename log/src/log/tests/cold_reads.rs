//! Cold reads of sealed segments on the real file system: the pages a read brings in, counted
//! with `mincore` (`helios_storage::resident_pages`) and the thread's major faults.

use std::path::Path;
use std::sync::Arc;

use super::append_event;
use crate::log::{Log, LogOptions, segment_name};
use crate::storage::Storage;
use crate::types::Location;

/// How many of `path`'s pages are in the page cache.
fn resident_pages(path: &Path) -> usize {
    crate::storage::resident_pages(path).expect("mincore")
}

/// The calling thread's major page faults.
#[expect(unsafe_code, reason = "getrusage is a libc call")]
mod faults {
    /// The calling thread's major page faults so far (`getrusage(RUSAGE_THREAD)`).
    pub(super) fn major_faults() -> i64 {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes one `rusage` into the pointer it is given, which points
        // to a zeroed `rusage` that lives across the call.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
        assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
        // SAFETY: getrusage succeeded, so it initialized the struct (and zeroed memory is
        // a valid `rusage` anyway: it holds only integers).
        unsafe { usage.assume_init() }.ru_majflt
    }
}

/// The payload of record `i` in [`log_with_sealed_segments`]: about 960 bytes.
fn sealed_payload(i: u64) -> Vec<u8> {
    format!("{i:>6} {}", "p".repeat(900)).into_bytes()
}

/// A log of 1 MiB segments on the real file system holding 3,000 records of about 960
/// bytes; returns it with the number and location of each record in a sealed segment.
fn log_with_sealed_segments(dir: &Path, options: &LogOptions) -> (Log, Vec<(u64, Location)>) {
    const RECORDS: u64 = 3_000;
    let storage: Arc<dyn Storage> = Arc::new(crate::storage::FsStorage);
    let (log, _) = Log::open(storage, dir, options.clone(), None, &mut |_, _| {}).expect("open");
    let mut locations: Vec<Location> = Vec::new();
    for i in 1..=RECORDS {
        append_event(&log, i, &sealed_payload(i), &mut locations);
    }
    log.sync_all().expect("sync");
    let active = locations[locations.len() - 1].segment;
    let sealed: Vec<(u64, Location)> = (1..=RECORDS)
        .zip(locations.iter().copied())
        .filter(|(_, l)| l.segment != active)
        .collect();
    assert!(
        sealed.len() as u64 > RECORDS / 2,
        "most records are in sealed segments"
    );
    (log, sealed)
}

fn sealed_options() -> LogOptions {
    LogOptions {
        segment_size_bytes: 1 << 20,
        ..LogOptions::default()
    }
}

#[test]
fn a_cold_read_in_a_sealed_segment_reads_its_own_pages() {
    const READS: usize = 40;
    let dir = tempfile::tempdir().expect("temp dir");
    let options = sealed_options();
    let (log, sealed) = log_with_sealed_segments(dir.path(), &options);
    // Pages per cold read, or None where eviction does not work.
    let measure = |log: &Log| -> Option<f64> {
        let mut pages = 0;
        for n in 0..READS {
            let (i, location) = sealed[n * 7919 % sealed.len()];
            let path = dir.path().join(segment_name(location.segment));
            log.evict_cached_pages().expect("evict");
            let before = resident_pages(&path);
            if before > 0 {
                eprintln!(
                    "posix_fadvise(DONTNEED) left {before} pages of {} cached on this \
                     machine: cannot measure cold reads here, skipping",
                    path.display()
                );
                return None;
            }
            assert_eq!(log.read(location).expect("read").payload, sealed_payload(i));
            pages += resident_pages(&path);
        }
        Some(pages as f64 / READS as f64)
    };
    // The segments sealed by rolls, then the same ones mapped by the next open.
    let Some(rolled) = measure(&log) else { return };
    drop(log);
    let storage: Arc<dyn Storage> = Arc::new(crate::storage::FsStorage);
    let (log, _) = Log::open(storage, dir.path(), options, None, &mut |_, _| {}).expect("reopen");
    let Some(reopened) = measure(&log) else {
        return;
    };
    eprintln!(
        "a cold read of a ~960-byte record in a sealed segment: {rolled:.2} pages (sealed by \
         a roll), {reopened:.2} (after reopening)"
    );
    // A record spans at most two pages; read-around would bring in dozens.
    assert!(rolled <= 2.0, "{rolled} pages per cold read after rolls");
    assert!(
        reopened <= 2.0,
        "{reopened} pages per cold read after reopening"
    );
}

#[test]
fn a_cold_range_read_asks_for_its_pages_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, sealed) = log_with_sealed_segments(dir.path(), &sealed_options());
    // 300 consecutive records of one sealed segment, about 70 pages.
    let segment = sealed[0].1.segment;
    let run: Vec<(u64, Location)> = sealed
        .iter()
        .filter(|(_, l)| l.segment == segment)
        .take(300)
        .copied()
        .collect();
    let locations: Vec<Location> = run.iter().map(|&(_, l)| l).collect();
    let (first, last) = (locations[0], locations[locations.len() - 1]);
    let span_pages = last.end().div_ceil(4096) - first.offset / 4096;
    let path = dir.path().join(segment_name(segment));
    log.evict_cached_pages().expect("evict");
    let before = resident_pages(&path);
    if before > 0 {
        eprintln!(
            "posix_fadvise(DONTNEED) left {before} pages of {} cached on this machine: \
             cannot measure cold reads here, skipping",
            path.display()
        );
        return;
    }
    let faults_before = faults::major_faults();
    let read = log
        .read_many_with(&locations, |r| r.payload.to_vec())
        .expect("read many");
    let faults = faults::major_faults() - faults_before;
    let pages = resident_pages(&path);
    let want: Vec<Vec<u8>> = run.iter().map(|&(i, _)| sealed_payload(i)).collect();
    assert_eq!(read, want);
    eprintln!(
        "a cold read of {} consecutive records over {span_pages} pages: {faults} major \
         faults, {pages} pages read",
        locations.len()
    );
    // The pages it needs and none around them (a page more where a request is rounded).
    assert!(pages as u64 <= span_pages + 1, "{pages} pages read");
    // Asked for by the run, not faulted in one at a time (which takes a fault per page).
    assert!(
        (faults as u64) * 4 <= span_pages,
        "{faults} major faults for {span_pages} pages"
    );
}
