//! SIGKILL of `helios append --durability critical` at random moments: every version it
//! printed survives, with the payload sent.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use helios::{Durability, Engine, Version};
use helios_testkit::Rng;

use crate::support::{KILL_SEGMENT_SIZE_BYTES, copy_dir, helios, ok, run_in, sigkill};

/// The `n`th line (0-based) the kill test feeds to the child of `round`: a key-value event,
/// distinct, with a length that varies so records straddle buffer and segment boundaries
/// differently (and with a few keys, so the checkpoints the engine builds meanwhile hold
/// overwritten keys).
fn kill_line(round: u64, n: u64) -> String {
    let pad = usize::try_from((n * 37 + round * 11) % 97).expect("small");
    format!("set k{} {round}-{n}-{}", n % 7, "p".repeat(pad))
}

/// Opens the store in `dir` with the library and checks stream `s` against `expected`
/// (version `i + 1` has payload `expected[i]`) for every version up to the head, which must be
/// at least `durable`. Returns the head.
fn check_store(dir: &Path, expected: &[String], durable: u64) -> u64 {
    let engine = Engine::builder(dir)
        .options({
            let mut options = helios::Options::default();
            options.log.segment_size_bytes = KILL_SEGMENT_SIZE_BYTES;
            options
        })
        .open()
        .expect("open after the crash");
    let head = engine.head("s").unwrap_or(Version::ZERO).get();
    assert!(
        head >= durable,
        "head {head} lost printed (durable) version {durable}"
    );
    let mut next = 1;
    for event in engine.read("s", ..).expect("read") {
        let event = event.expect("event");
        assert_eq!(
            event.version.get(),
            next,
            "versions are not contiguous from 1"
        );
        let index = usize::try_from(next - 1).expect("small");
        let want = expected.get(index).unwrap_or_else(|| {
            panic!(
                "v{next} exists but only {} lines were ever sent",
                expected.len()
            )
        });
        assert_eq!(
            String::from_utf8_lossy(&event.payload),
            want.as_str(),
            "v{next} holds the wrong payload"
        );
        assert_eq!(event.durability, Durability::Critical);
        next += 1;
    }
    assert_eq!(next - 1, head, "read stopped before the head");
    engine.close().expect("close");
    head
}

/// Spawns `helios append --durability critical` on `dir`, feeds it lines and SIGKILLs it after
/// `delay_ms` (counted from its first printed version when `after_first_ack`, else from the
/// spawn, which may kill it while it recovers). Returns the printed versions, in order.
fn append_and_kill(dir: &Path, round: u64, delay_ms: u64, after_first_ack: bool) -> Vec<u64> {
    let size = KILL_SEGMENT_SIZE_BYTES.to_string();
    let dir_arg = dir.to_str().expect("UTF-8 path");
    let mut child: Child = helios()
        .args([
            "append",
            dir_arg,
            "s",
            "--durability",
            "critical",
            "--segment-size-bytes",
            &size,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn helios append");
    let spawned = Instant::now();
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = thread::spawn(move || {
        // Writes until the child dies (EPIPE: the test runner ignores SIGPIPE, as every Rust
        // program does).
        for n in 0.. {
            if writeln!(stdin, "{}", kill_line(round, n)).is_err() {
                break;
            }
        }
    });
    let stdout = child.stdout.take().expect("stdout");
    let (first_ack, first_ack_rx) = mpsc::channel();
    let collector = thread::spawn(move || {
        let mut versions = Vec::new();
        for line in BufReader::new(stdout).lines() {
            // A line cut by the kill is not an acknowledgement; only whole lines count.
            let Ok(line) = line else { break };
            versions.push(line.parse::<u64>().expect("a version per line"));
            if versions.len() == 1 {
                let _ = first_ack.send(());
            }
        }
        versions
    });

    if after_first_ack && first_ack_rx.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("round {round}: the child printed no version within 20 s");
    }
    let start = if after_first_ack {
        Instant::now()
    } else {
        spawned
    };
    thread::sleep(Duration::from_millis(delay_ms).saturating_sub(start.elapsed()));
    sigkill(&mut child, &format!("round {round}"));
    feeder.join().expect("feeder thread");
    collector.join().expect("collector thread")
}

/// Kills `helios append --durability critical` at random moments, over and over on one store,
/// and checks after each kill that every version it printed is durable with the payload sent.
///
/// The check runs on a copy of the crashed store, so the original is left exactly as the kill
/// left it and the next child must recover it itself. Opening the copy runs the same recovery
/// on the same bytes, so the copy's head is the head the next child starts from.
#[test]
fn every_printed_critical_version_survives_sigkill() {
    const ROUNDS: u64 = 30;
    const SEED: u64 = 0x4865_6c69_6f73_4b31;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let started = Instant::now();
    // expected[i] is the payload of version i + 1.
    let mut expected: Vec<String> = Vec::new();
    let mut acknowledged_total = 0usize;
    let mut rounds_with_acks = 0;
    for round in 0..ROUNDS {
        let mut rng = Rng::new(SEED ^ round);
        let delay_ms = 5 + rng.next_u64() % 76;
        // One round in four is killed counting from the spawn: often during recovery.
        let after_first_ack = round % 4 != 3;
        let head_before = u64::try_from(expected.len()).expect("small");
        let printed = append_and_kill(&dir, round, delay_ms, after_first_ack);

        for (k, &version) in printed.iter().enumerate() {
            let k = u64::try_from(k).expect("small");
            assert_eq!(
                version,
                head_before + k + 1,
                "round {round}: versions printed out of order"
            );
        }
        acknowledged_total += printed.len();
        rounds_with_acks += usize::from(!printed.is_empty());

        // Every line this child could have appended, in order, after what earlier rounds left.
        let sent = (0..).map(|n| kill_line(round, n));
        let durable = printed.last().copied().unwrap_or(head_before);
        let check = tmp.path().join(format!("check-{round}"));
        copy_dir(&dir, &check);
        let mut candidates = expected.clone();
        candidates.extend(sent.take(printed.len() + 1));
        let head = check_store(&check, &candidates, durable);
        // The child appends one line at a time, so at most the append it was in when killed
        // can have survived unprinted (check_store fails on a version past `candidates`).
        assert!(
            head <= durable + 1,
            "round {round}: head {head} is past {durable} + 1"
        );
        std::fs::remove_dir_all(&check).expect("remove the check copy");
        expected.truncate(usize::try_from(head_before).expect("small"));
        expected.extend((0..head - head_before).map(|n| kill_line(round, n)));
    }
    assert!(
        rounds_with_acks >= usize::try_from(ROUNDS / 2).expect("small"),
        "only {rounds_with_acks} of {ROUNDS} children acknowledged anything"
    );
    assert!(acknowledged_total > 0);

    // The last crash is recovered by this open; then the whole store must verify clean.
    let head = check_store(
        &dir,
        &expected,
        u64::try_from(expected.len()).expect("small"),
    );
    assert_eq!(head, u64::try_from(expected.len()).expect("small"));
    let out = run_in(&dir, &["verify"], b"");
    let summary = ok(&out);
    assert!(summary.contains("sound"), "{summary}");
    eprintln!(
        "{ROUNDS} kills, {acknowledged_total} acknowledged critical appends, head v{head}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
