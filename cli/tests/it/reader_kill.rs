//! A `ReadOnly` reader in this process beside `helios workload` in another, across SIGKILLs and
//! restarts of that writer: the reader never sees a stream's head go back or an event it read
//! change, and every view it makes equals the fold of the events it reads.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use helios::{Options, ReadOnly, Version};
use helios_testkit::Rng;

use crate::support::{KILL_SEGMENT_SIZE_BYTES, helios, sigkill};

/// Writer processes started (and killed) one after the other on the same store.
const WRITERS: u64 = 4;

fn spawn_workload(dir: &Path, seed: u64) -> Child {
    helios()
        .args([
            "workload",
            dir.to_str().expect("UTF-8 path"),
            "--seed",
            &seed.to_string(),
            "--segment-size-bytes",
            &KILL_SEGMENT_SIZE_BYTES.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn helios workload")
}

/// Refreshes the reader and checks what it reads now against what it read before.
fn check(reader: &ReadOnly, seen: &mut BTreeMap<String, Vec<Vec<u8>>>, rng: &mut Rng) {
    reader.refresh().expect("refresh beside the writer");
    for info in reader.streams() {
        let events: Vec<Vec<u8>> = reader
            .read(&info.name, ..)
            .expect("read")
            .map(|e| e.expect("an event").payload)
            .collect();
        assert_eq!(events.len() as u64, info.head.0, "{}", info.name);
        let before = seen.entry(info.name.clone()).or_default();
        assert!(
            events.len() >= before.len(),
            "{}: the head went back from {} to {}",
            info.name,
            before.len(),
            events.len()
        );
        assert_eq!(
            &events[..before.len()],
            &before[..],
            "{}: an event the reader read changed",
            info.name
        );
        let head = info.head.0;
        for v in [head, rng.below(head + 1)] {
            let upto = usize::try_from(v).expect("small");
            assert_eq!(
                reader.state_at(&info.name, Version(v)).expect("state"),
                helios::kv::fold(events[..upto].iter().map(Vec::as_slice))
                    .expect("key-value events"),
                "{} at {v}",
                info.name
            );
        }
        *before = events;
    }
}

#[test]
fn a_reader_follows_a_writer_across_sigkills() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let mut rng = Rng::new(0x5eed);
    let mut seen = BTreeMap::new();
    let mut reader: Option<ReadOnly> = None;
    let mut checks = 0;
    for writer in 1..=WRITERS {
        let mut child = spawn_workload(&dir, writer);
        let run_for = Duration::from_millis(300 + rng.below(500));
        let started = Instant::now();
        while started.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(15));
            if reader.is_none() {
                // The writer creates the store: open once it is there.
                reader = ReadOnly::open(&dir, Options::default()).ok();
            }
            if let Some(reader) = &reader {
                check(reader, &mut seen, &mut rng);
                checks += 1;
            }
        }
        sigkill(&mut child, &format!("writer {writer}"));
        // The writer is gone: what the reader has read stays, and reads on.
        if let Some(reader) = &reader {
            check(reader, &mut seen, &mut rng);
            checks += 1;
        }
    }
    let reader = reader.expect("the writers created the store");
    // A last writer recovers the store; the reader follows it and still agrees.
    let mut child = spawn_workload(&dir, WRITERS + 1);
    std::thread::sleep(Duration::from_millis(300));
    sigkill(&mut child, "the last writer");
    check(&reader, &mut seen, &mut rng);
    let events: u64 = seen.values().map(|e| e.len() as u64).sum();
    // Not a vacuous run: the reader read events, and checked after every kill at least.
    assert!(
        checks > WRITERS && events > 0,
        "{checks} checks, {events} events read"
    );
    // What the reader read is what a writer's open finds (a prefix of it).
    let mut options = Options {
        create_if_missing: false,
        ..Options::default()
    };
    options.log.segment_size_bytes = KILL_SEGMENT_SIZE_BYTES;
    let engine = helios::Engine::open(&dir, options).expect("open after the kills");
    for (name, read) in &seen {
        let now: Vec<Vec<u8>> = engine
            .read(name, ..)
            .expect("read")
            .map(|e| e.expect("an event").payload)
            .collect();
        assert!(now.len() >= read.len(), "{name}");
        assert_eq!(&now[..read.len()], &read[..], "{name}");
    }
}
