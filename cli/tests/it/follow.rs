//! `helios read --follow` and `helios tail` in processes of their own beside a writer's: they
//! wait for a store that does not exist yet, print each durable event once and in order, copy
//! a store through `helios import`, and survive the writer's SIGKILL and reopen without
//! printing a record the reopen removed.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{KILL_SEGMENT_SIZE_BYTES, helios, ok, run_in, sigkill, stderr};

const WAIT: Duration = Duration::from_secs(60);

/// A follower process whose stdout and stderr lines arrive on channels.
struct Following {
    child: Child,
    lines: mpsc::Receiver<String>,
    errors: mpsc::Receiver<String>,
}

/// Sends each line `from` prints on a channel, from a thread of its own.
fn lines_of(from: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

impl Following {
    fn spawn(args: &[&str]) -> Following {
        let mut child = helios()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the follower");
        let lines = lines_of(child.stdout.take().expect("stdout"));
        let errors = lines_of(child.stderr.take().expect("stderr"));
        Following {
            child,
            lines,
            errors,
        }
    }

    /// Waits until the follower says `what` on stderr (for example that it waits for the
    /// store), so that what the test does next happens after it.
    fn said(&self, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.errors.recv_timeout(left) {
                Ok(line) if line.contains(what) => return,
                Ok(_) => {}
                Err(e) => panic!("the follower did not say {what:?}: {e}"),
            }
        }
    }

    /// The next `n` lines, each within the wait.
    fn take(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                self.lines
                    .recv_timeout(WAIT)
                    .unwrap_or_else(|e| panic!("line {i} of {n} did not come: {e}"))
            })
            .collect()
    }

    /// Lines printed until `quiet` passes without one.
    fn drain(&self, quiet: Duration) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(quiet) {
            out.push(line);
        }
        out
    }

    /// Kills the follower (it was still running: it neither crashed nor stopped), returning
    /// its stderr.
    fn stop(mut self, what: &str) -> String {
        assert!(
            self.child.try_wait().expect("try_wait").is_none(),
            "{what}: the follower exited on its own"
        );
        sigkill(&mut self.child, what);
        // The process is gone, so its stderr ends: every line left is on the channel.
        self.errors.iter().collect::<Vec<_>>().join("\n")
    }
}

fn path(dir: &Path) -> &str {
    dir.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn read_follow_waits_for_the_store_then_prints_each_durable_event_of_another_process() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let follower = Following::spawn(&["read", path(&dir), "orders", "--follow"]);
    // The store is made after the follower started looking for it.
    follower.said("waiting for it");
    ok(&run_in(
        &dir,
        &["append", "orders", "--durability", "critical"],
        b"set a 1\nset b 2\nset c 3\n",
    ));
    assert_eq!(follower.take(3), ["1\tset a 1", "2\tset b 2", "3\tset c 3"]);
    // Another stream's events are not printed; normal appends are, once synced (at the
    // appending process's close).
    ok(&run_in(&dir, &["append", "other"], b"set x 1\n"));
    ok(&run_in(&dir, &["append", "orders"], b"set d 4\nset e 5\n"));
    assert_eq!(follower.take(2), ["4\tset d 4", "5\tset e 5"]);
    assert_eq!(
        follower.drain(Duration::from_millis(300)),
        Vec::<String>::new()
    );
    let stderr = follower.stop("read --follow");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // A second follower from a version on prints the rest, then waits for the next.
    let from = Following::spawn(&["read", path(&dir), "orders", "--follow", "--from", "4"]);
    assert_eq!(from.take(2), ["4\tset d 4", "5\tset e 5"]);
    ok(&run_in(&dir, &["append", "orders"], b"set f 6\n"));
    assert_eq!(from.take(1), ["6\tset f 6"]);
    from.stop("read --follow --from 4");
}

#[test]
fn tail_prints_the_store_in_log_order_and_copies_it_through_import() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let mut lines = String::new();
    for i in 0..300 {
        lines.push_str(&format!("s{}\tset k{} v{i}\n", i % 7, i % 5));
    }
    ok(&run_in(&dir, &["import"], lines.as_bytes()));
    let tail = ok(&run_in(&dir, &["tail", "--no-follow"], b""));
    let expected: Vec<String> = (0..300)
        .map(|i| format!("s{}\t{}\tset k{} v{i}", i % 7, i / 7 + 1, i % 5))
        .collect();
    assert_eq!(tail.lines().collect::<Vec<_>>(), expected);

    let copy = tmp.path().join("copy");
    let no_version = ok(&run_in(&dir, &["tail", "--no-follow", "--no-version"], b""));
    assert_eq!(no_version, lines);
    ok(&run_in(&copy, &["import"], no_version.as_bytes()));
    for s in 0..7 {
        let stream = format!("s{s}");
        assert_eq!(
            ok(&run_in(&copy, &["read", &stream], b"")),
            ok(&run_in(&dir, &["read", &stream], b"")),
            "{stream}"
        );
    }
}

/// The writer is SIGKILLed in the middle of its appends and reopened (its torn tail cut) while
/// `helios tail` follows: the follower keeps running and printed only records the reopened
/// store holds, each once, in order.
#[test]
fn a_follower_survives_the_writer_killed_and_reopened() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let size = KILL_SEGMENT_SIZE_BYTES.to_string();
    let follower = Following::spawn(&["tail", path(&dir)]);
    for round in 0..3 {
        let mut writer = helios()
            .args([
                "workload",
                path(&dir),
                "--seed",
                &round.to_string(),
                "--segment-size-bytes",
                &size,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn helios workload");
        thread::sleep(Duration::from_millis(400));
        sigkill(&mut writer, &format!("workload round {round}"));
    }
    // Reopened by a writer: recovery cuts the torn tail, and the marker is appended after it.
    ok(&run_in(
        &dir,
        &[
            "append",
            "marker",
            "--durability",
            "critical",
            "--segment-size-bytes",
            &size,
        ],
        b"set end 1\n",
    ));
    let deadline = Instant::now() + WAIT;
    let mut printed = Vec::new();
    while !printed.iter().any(|l: &String| l.starts_with("marker\t")) {
        assert!(Instant::now() < deadline, "the marker was not printed");
        printed.extend(follower.drain(Duration::from_millis(200)));
    }
    let stderr = follower.stop("tail");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let store = ok(&run_in(&dir, &["tail", "--no-follow"], b""));
    let held: Vec<&str> = store.lines().collect();
    assert!(
        printed.len() > 10,
        "the workload's events were followed: {printed:?}"
    );
    assert_eq!(
        printed, held,
        "the follower printed exactly what the reopened store holds, in order"
    );
}

/// A follower of a store it cannot read stops with a clear error (exit 2), instead of waiting
/// or panicking: a store of a newer format, and a store whose log is damaged.
#[test]
fn a_follower_of_a_newer_or_damaged_store_stops_with_an_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    ok(&run_in(&dir, &["append", "s"], b"set a 1\nset b 2\n"));

    // A newer format: version 99 in the FORMAT file, its checksum made to match.
    let newer = tmp.path().join("newer");
    crate::support::copy_dir(&dir, &newer);
    let mut format = std::fs::read(newer.join("FORMAT")).expect("FORMAT");
    format[8..12].copy_from_slice(&99u32.to_le_bytes());
    let crc = crc32fast::hash(&format[..16]);
    format[16..20].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(newer.join("FORMAT"), &format).expect("write FORMAT");
    for args in [&["read", "s", "--follow"][..], &["tail"][..]] {
        let out = run_in(&newer, args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("99"), "{args:?}: {}", stderr(&out));
    }

    // A flipped byte inside the first record of the log.
    let damaged = tmp.path().join("damaged");
    crate::support::copy_dir(&dir, &damaged);
    let segment = damaged.join("log").join(crate::support::FIRST_SEGMENT);
    let mut bytes = std::fs::read(&segment).expect("segment");
    let at = usize::try_from(crate::support::SEGMENT_HEADER_LEN + 60).expect("small");
    bytes[at] ^= 0xff;
    std::fs::write(&segment, &bytes).expect("write");
    for args in [&["read", "s", "--follow"][..], &["tail"][..]] {
        let out = run_in(&damaged, args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("00000000000000000001.log"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// `verify` beside a writer at work checks the log up to the end the writer published: the
/// bytes it is writing past that end are not a torn tail, and the store is sound every time.
#[test]
fn verify_beside_a_live_writer_finds_the_store_sound() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let mut writer = helios()
        .args(["workload", path(&dir), "--segment-size-bytes", "65536"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn helios workload");
    let deadline = Instant::now() + WAIT;
    while !dir.join("log").is_dir() {
        assert!(Instant::now() < deadline, "the writer created no store");
        thread::sleep(Duration::from_millis(10));
    }
    let mut checked = 0;
    for _ in 0..25 {
        let out = run_in(&dir, &["verify"], b"");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        if text.contains("not a Helios store") || text.contains("has no segment") {
            continue; // Still being created.
        }
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(
            text.contains("sound") && text.contains("a writer holds the store"),
            "{text}"
        );
        checked += 1;
        thread::sleep(Duration::from_millis(40));
    }
    sigkill(&mut writer, "workload beside verify");
    assert!(checked >= 20, "only {checked} verifications ran");
}
