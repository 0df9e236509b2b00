//! SIGKILL of `helios workload` (critical and normal appends, promotions, syncs) at random
//! moments: nothing acknowledged as durable is lost, nothing speculative is visible.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::Path;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use helios::Engine;
use helios_testkit::Rng;

use crate::support::{KILL_SEGMENT_SIZE_BYTES, copy_dir, helios, ok, run_in, sigkill};

/// Streams `helios workload` writes by default (`workload-0`, ...).
const WORKLOAD_STREAMS: usize = 3;
/// Kills one store takes before the kill test starts a new one.
const WORKLOAD_ROUNDS_PER_STORE: u64 = 10;

/// One line `helios workload` printed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ack {
    /// `KIND STREAM FIRST LAST TAG`.
    Write {
        kind: String,
        stream: String,
        first: u64,
        last: u64,
        /// `SEED-SEQ`: `seq` is the write's place in the run, which is its place in the log.
        seq: u64,
    },
    /// `sync`: every write printed before it is durable.
    Sync,
}

impl Ack {
    fn parse(line: &str, seed: u64) -> Ack {
        if line == "sync" {
            return Ack::Sync;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let [kind, stream, first, last, tag] = fields[..] else {
            panic!("not a workload line: {line:?}");
        };
        assert!(
            ["critical", "normal", "promote-critical", "promote-normal"].contains(&kind),
            "unknown kind in {line:?}"
        );
        let (tag_seed, seq) = tag.split_once('-').expect("a SEED-SEQ tag");
        assert_eq!(tag_seed, seed.to_string(), "{line:?}");
        let number = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("{line:?}"));
        let (first, last) = (number(first), number(last));
        assert!(first >= 1 && first <= last, "{line:?}");
        Ack::Write {
            kind: kind.to_owned(),
            stream: stream.to_owned(),
            first,
            last,
            seq: number(seq),
        }
    }

    /// Whether the write must survive any crash: critical ones at once, normal ones once a
    /// `sync` line follows (`synced`).
    fn durable(&self, synced: bool) -> bool {
        match self {
            Ack::Write { kind, .. } => synced || !kind.ends_with("normal"),
            Ack::Sync => false,
        }
    }
}

/// The payload `helios workload` writes for event `i` of a write of `kind` tagged `seed-seq`.
fn workload_payload(kind: &str, seed: u64, seq: u64, i: u64) -> String {
    format!("set k{i} {kind}-{seed}-{seq}-{i}")
}

/// Parses a payload `set k<i> <KIND>-<SEED>-<SEQ>-<i>` into (kind, seed, seq, i), checking that
/// both `i` agree.
fn parse_workload_payload(payload: &str) -> (String, u64, u64, u64) {
    let parsed = (|| {
        let rest = payload.strip_prefix("set k")?;
        let (key_i, value) = rest.split_once(' ')?;
        let mut parts = value.rsplitn(4, '-');
        let i: u64 = parts.next()?.parse().ok()?;
        let seq: u64 = parts.next()?.parse().ok()?;
        let seed: u64 = parts.next()?.parse().ok()?;
        let kind = parts.next()?.to_owned();
        (key_i.parse::<u64>().ok()? == i).then_some((kind, seed, seq, i))
    })();
    parsed.unwrap_or_else(|| panic!("not a workload payload: {payload:?}"))
}

/// Spawns `helios workload` on `dir` with `seed`, SIGKILLs it `delay_ms` after the spawn, and
/// returns the lines it printed (a line cut by the kill is not one).
fn workload_and_kill(dir: &Path, seed: u64, delay_ms: u64) -> Vec<Ack> {
    let size = KILL_SEGMENT_SIZE_BYTES.to_string();
    let seed_arg = seed.to_string();
    let mut child: Child = helios()
        .args([
            "workload",
            dir.to_str().expect("UTF-8 path"),
            "--seed",
            &seed_arg,
            "--segment-size-bytes",
            &size,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn helios workload");
    let spawned = Instant::now();
    let stdout = child.stdout.take().expect("stdout");
    let collector = thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut BufReader::new(stdout), &mut text);
        text
    });
    thread::sleep(Duration::from_millis(delay_ms).saturating_sub(spawned.elapsed()));
    sigkill(&mut child, &format!("seed {seed}"));
    let text = collector.join().expect("collector thread");
    let text = String::from_utf8(text).expect("UTF-8 stdout");
    // Only whole lines count: the kill may cut the last one.
    let whole = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    whole.lines().map(|line| Ack::parse(line, seed)).collect()
}

/// What the workload's streams held after the last check: `events[stream][v - 1]` is the
/// payload of version `v`.
type WorkloadModel = BTreeMap<String, Vec<String>>;

/// Opens the (copied, crashed) store in `dir` with the library and checks it against `model`
/// (what survived earlier rounds) and `acks` (what this round's child, run with `seed`,
/// printed). Returns the new model and the number of this round's writes that survived.
fn check_workload_store(
    dir: &Path,
    model: &WorkloadModel,
    acks: &[Ack],
    seed: u64,
) -> (WorkloadModel, u64) {
    // What each acknowledged write put where, and which writes must have survived.
    let last_sync = acks.iter().rposition(|a| *a == Ack::Sync);
    let mut expected: BTreeMap<(String, u64), String> = BTreeMap::new();
    let mut must: BTreeMap<String, u64> = BTreeMap::new();
    let mut acked_seqs = Vec::new();
    for (index, ack) in acks.iter().enumerate() {
        let Ack::Write {
            kind,
            stream,
            first,
            last,
            seq,
        } = ack
        else {
            continue;
        };
        acked_seqs.push(*seq);
        for (i, version) in (*first..=*last).enumerate() {
            let payload = workload_payload(kind, seed, *seq, i as u64);
            expected.insert((stream.clone(), version), payload);
        }
        if ack.durable(last_sync.is_some_and(|s| index < s)) {
            let head = must.entry(stream.clone()).or_default();
            *head = (*head).max(*last);
        }
    }
    assert!(
        acked_seqs.iter().enumerate().all(|(i, &s)| s == i as u64),
        "seed {seed}: writes not printed in order: {acked_seqs:?}"
    );

    // Without background threads: recovery runs as in any open, and nothing else (the
    // checkpoint builder would spend the test's time catching up on every copy).
    let engine = Engine::builder(dir)
        .options({
            let mut options = helios::Options::default();
            options.log.segment_size_bytes = KILL_SEGMENT_SIZE_BYTES;
            options.background_threads = false;
            options
        })
        .open()
        .expect("open after the crash");
    let mut next_model = WorkloadModel::new();
    // This round's surviving writes: seq -> (events seen, events the write has).
    let mut survivors: BTreeMap<u64, (u64, Option<u64>)> = BTreeMap::new();
    for index in 0..WORKLOAD_STREAMS {
        let stream = format!("workload-{index}");
        let before = model.get(&stream).map_or(&[][..], Vec::as_slice);
        let mut events = Vec::new();
        if engine.head(&stream).is_some() {
            for (n, event) in engine.read(&stream, ..).expect("read").enumerate() {
                let event = event.expect("an intact event");
                let version = event.version.get();
                assert_eq!(
                    version,
                    n as u64 + 1,
                    "seed {seed}: {stream} has a gap at v{version}"
                );
                let payload = String::from_utf8(event.payload).expect("a UTF-8 payload");
                assert!(
                    !payload.contains("spec-"),
                    "seed {seed}: {stream} v{version} is a speculative event: {payload}"
                );
                if let Some(earlier) = before.get(n) {
                    assert_eq!(
                        &payload, earlier,
                        "seed {seed}: {stream} v{version} changed"
                    );
                } else {
                    let (kind, payload_seed, seq, _) = parse_workload_payload(&payload);
                    assert!(
                        ["critical", "normal", "promote-critical", "promote-normal"]
                            .contains(&kind.as_str()),
                        "seed {seed}: {stream} v{version}: {payload}"
                    );
                    assert_eq!(payload_seed, seed, "{stream} v{version}: {payload}");
                    if let Some(want) = expected.get(&(stream.clone(), version)) {
                        assert_eq!(&payload, want, "seed {seed}: {stream} v{version}");
                    } else {
                        // Not printed: only the write in flight at the kill can be here.
                        assert_eq!(
                            seq,
                            acked_seqs.len() as u64,
                            "seed {seed}: {stream} v{version} ({payload}) was never printed \
                             and is not the write in flight"
                        );
                    }
                    survivors.entry(seq).or_insert((0, None)).0 += 1;
                }
                events.push(payload);
            }
        }
        assert!(
            events.len() >= before.len(),
            "seed {seed}: {stream} lost events of earlier rounds: {} < {}",
            events.len(),
            before.len()
        );
        let head = events.len() as u64;
        let required = must.get(&stream).copied().unwrap_or(0);
        assert!(
            head >= required,
            "seed {seed}: {stream} has v{head}, but v{required} was acknowledged durable"
        );
        next_model.insert(stream, events);
    }
    engine.close().expect("close");

    // The survivors are a prefix of the run's writes (the log keeps a prefix), and each is
    // whole (a write is one atomic batch).
    for ack in acks {
        if let Ack::Write {
            seq, first, last, ..
        } = ack
            && let Some(entry) = survivors.get_mut(seq)
        {
            entry.1 = Some(last - first + 1);
        }
    }
    let survived = survivors.len() as u64;
    for (position, (&seq, &(seen, size))) in survivors.iter().enumerate() {
        assert_eq!(
            seq, position as u64,
            "seed {seed}: write {seq} survived but write {position} did not: {survivors:?}"
        );
        if let Some(size) = size {
            assert_eq!(seen, size, "seed {seed}: write {seq} survived in part");
        }
    }
    (next_model, survived)
}

/// Copies a store's log and metadata, not its checkpoints: they are derived (an open rebuilds
/// a missing one when a view needs it), the workload's checks read events only, and copying
/// thousands of small checkpoint files would dominate the test's time.
fn copy_store_without_checkpoints(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            if entry.file_name() != "checkpoints" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Kills `helios workload` (critical and normal appends, critical and normal promotions of
/// speculative branches, syncs) at random moments, over and over, and checks after each kill:
/// every acknowledged critical write and promotion is there byte for byte, every normal one
/// printed before a `sync` line too, nothing speculative is visible, each stream is gapless,
/// the round's survivors are a prefix of its writes, each of them whole, and `helios verify`
/// finds the recovered store sound.
///
/// A store takes [`WORKLOAD_ROUNDS_PER_STORE`] kills in a row (each child recovers what the
/// previous one left), then the next round starts a new one, so that the checks, which read
/// every event, stay short. As in the append test (`append_kill`), the checks run on a copy, so
/// the next child recovers the crashed store itself.
#[test]
fn workload_survives_sigkill_with_every_acknowledged_write() {
    const ROUNDS: u64 = 50;
    const SEED: u64 = 0x776f_726b_6c6f_6164;
    let tmp = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut model = WorkloadModel::new();
    let mut rounds_with_acks = 0;
    let mut seen_kinds = BTreeMap::<String, u64>::new();
    let mut syncs = 0;
    let mut survived_total = 0;
    let mut events_total = 0;
    for round in 0..ROUNDS {
        let dir = tmp
            .path()
            .join(format!("store-{}", round / WORKLOAD_ROUNDS_PER_STORE));
        if round % WORKLOAD_ROUNDS_PER_STORE == 0 {
            model = WorkloadModel::new();
        }
        let mut rng = Rng::new(SEED ^ round);
        let delay_ms = 50 + rng.next_u64() % 251;
        let seed = 1000 + round;
        let acks = workload_and_kill(&dir, seed, delay_ms);
        rounds_with_acks += usize::from(!acks.is_empty());
        for ack in &acks {
            match ack {
                Ack::Write { kind, .. } => *seen_kinds.entry(kind.clone()).or_default() += 1,
                Ack::Sync => syncs += 1,
            }
        }
        let check = tmp.path().join(format!("check-{round}"));
        copy_store_without_checkpoints(&dir, &check);
        let (next, survived) = check_workload_store(&check, &model, &acks, seed);
        model = next;
        survived_total += survived;
        let summary = ok(&run_in(&check, &["verify"], b""));
        assert!(summary.contains("sound"), "round {round}: {summary}");
        std::fs::remove_dir_all(&check).expect("remove the check copy");

        if (round + 1) % WORKLOAD_ROUNDS_PER_STORE == 0 || round + 1 == ROUNDS {
            // The store's last crash, recovered here by the library on the store itself; then
            // the whole store verifies.
            let (last, _) = check_workload_store(&dir, &model, &[], 0);
            assert_eq!(
                last, model,
                "round {round}: opening the store again changed it"
            );
            ok(&run_in(&dir, &["verify"], b""));
            events_total += model.values().map(Vec::len).sum::<usize>();
        }
    }
    assert!(
        rounds_with_acks >= usize::try_from(ROUNDS / 2).expect("small"),
        "only {rounds_with_acks} of {ROUNDS} children acknowledged anything"
    );
    for kind in ["critical", "normal", "promote-critical", "promote-normal"] {
        assert!(
            seen_kinds.get(kind).is_some_and(|&n| n > 0),
            "no `{kind}` line in {ROUNDS} rounds: {seen_kinds:?}"
        );
    }
    assert!(syncs > 0, "no `sync` line in {ROUNDS} rounds");
    eprintln!(
        "{ROUNDS} kills, {seen_kinds:?} acknowledged, {syncs} syncs, {survived_total} writes \
         survived, {events_total} events in the end, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
