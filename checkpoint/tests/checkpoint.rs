//! Checkpoint files on disk: writing and opening through the filesystem, errors naming files,
//! sharing across threads, the size limits, and the golden fixture of format version 1.

use std::fs;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use helios_checkpoint::format::{self, header};
use helios_checkpoint::{
    Checkpoint, CheckpointError, CheckpointKind, CheckpointMeta, Lookup, SortedRun,
    encode_checkpoint, write_checkpoint,
};

type Entries = Vec<(Vec<u8>, Option<Vec<u8>>)>;

fn all(run: &dyn SortedRun) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    run.range(Bound::Unbounded, Bound::Unbounded)
        .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
        .collect()
}

fn some_entries(count: u32) -> Entries {
    (0..count)
        .map(|i| {
            let key = format!("k{i:06}").into_bytes();
            let value = (i % 3 != 0).then(|| i.to_le_bytes().repeat(3));
            (key, value)
        })
        .collect()
}

#[test]
fn written_files_open_and_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("000100.ckpt");
    let entries = some_entries(3000);
    let meta = CheckpointMeta::delta(9, 110, 1, 100);
    let written =
        write_checkpoint(&path, meta, entries.iter().map(|(k, v)| (k, v.as_ref()))).expect("write");
    assert_eq!(written.path, path);
    assert_eq!(written.entry_count, 3000);
    assert!(written.block_count > 1);
    assert_eq!(
        written.file_len_bytes,
        fs::metadata(&path).expect("stat").len()
    );
    let names: Vec<_> = fs::read_dir(dir.path())
        .expect("readdir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["000100.ckpt"], "the temporary file is gone");
    assert_eq!(
        fs::read(&path).expect("read"),
        encode_checkpoint(meta, entries.iter().map(|(k, v)| (k, v.as_ref()))).expect("encode"),
        "the file holds exactly the encoded bytes"
    );

    let checkpoint = Checkpoint::open(&path).expect("open");
    assert_eq!(checkpoint.meta(), &meta);
    assert_eq!(checkpoint.path(), path);
    assert_eq!(checkpoint.file_len_bytes(), written.file_len_bytes);
    assert_eq!(checkpoint.len(), 3000);
    assert_eq!(all(&checkpoint), entries);
    assert_eq!(
        checkpoint.get(b"k000001"),
        Lookup::Value(&1u32.to_le_bytes().repeat(3))
    );
    assert_eq!(checkpoint.get(b"k000003"), Lookup::Deleted);
    assert_eq!(checkpoint.get(b"k0000015"), Lookup::Absent);
    assert_eq!(checkpoint.get(b"zzz"), Lookup::Absent);

    // Shared across reader threads.
    let shared: Arc<dyn SortedRun> = Arc::new(checkpoint);
    std::thread::scope(|s| {
        for t in 0..2u32 {
            let run = Arc::clone(&shared);
            s.spawn(move || {
                for i in (t..3000).step_by(2) {
                    let key = format!("k{i:06}");
                    let expected = (i % 3 != 0).then(|| i.to_le_bytes().repeat(3));
                    let expected = expected.as_deref().map_or(Lookup::Deleted, Lookup::Value);
                    assert_eq!(run.get(key.as_bytes()), expected);
                }
            });
        }
    });
}

#[test]
fn bad_input_writes_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.ckpt");
    let err = write_checkpoint(
        &path,
        CheckpointMeta::full(1, 1000, 3),
        [(&b"b"[..], None::<&[u8]>), (b"a", None)],
    )
    .expect_err("unsorted accepted");
    assert!(
        matches!(err, CheckpointError::Unsorted { index: 1, .. }),
        "{err}"
    );
    assert_eq!(fs::read_dir(dir.path()).expect("readdir").count(), 0);
}

#[test]
fn damaged_files_are_named_in_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.ckpt");
    write_checkpoint(
        &good,
        CheckpointMeta::full(1, 1000, 3),
        some_entries(100).iter().map(|(k, v)| (k, v.as_ref())),
    )
    .expect("write");
    let bytes = fs::read(&good).expect("read");
    let path = dir.path().join("damaged.ckpt");
    let open_with = |content: &[u8]| -> CheckpointError {
        fs::write(&path, content).expect("write");
        let err = Checkpoint::open(&path).expect_err("damage accepted");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        err
    };
    for len in [0, 1, header::LEN - 1, header::LEN, bytes.len() - 1] {
        let err = open_with(&bytes[..len]);
        assert!(
            matches!(err, CheckpointError::Truncated { len_bytes, .. } if len_bytes == len as u64),
            "{len}: {err}"
        );
    }
    let mut wrong = bytes.clone();
    wrong[0] = b'X';
    assert!(matches!(
        open_with(&wrong),
        CheckpointError::WrongMagic { .. }
    ));
    let mut future = bytes.clone();
    future[header::FORMAT_VERSION] = 7;
    format::reseal_crcs(&mut future);
    assert!(matches!(
        open_with(&future),
        CheckpointError::UnsupportedVersion { found: 7, .. }
    ));
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    assert!(matches!(
        open_with(&flipped),
        CheckpointError::ArchiveChecksum { .. }
    ));
    let missing = dir.path().join("missing.ckpt");
    let err = Checkpoint::open(&missing).expect_err("missing file opened");
    assert!(
        matches!(&err, CheckpointError::Io { op: "open", path, .. } if *path == missing),
        "{err}"
    );
}

#[test]
fn largest_keys_and_values_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("large.ckpt");
    let big_key = vec![b'k'; format::KEY_LEN_MAX];
    let big_value: Vec<u8> = (0..format::VALUE_LEN_MAX)
        .map(|i| (i % 251).to_le_bytes()[0])
        .collect();
    let entries: Vec<(&[u8], Option<&[u8]>)> = vec![
        (b"a", Some(b"small")),
        (&big_key, Some(&big_value)),
        (b"l", None),
        (b"m", Some(&big_value[..5000])),
        (b"n", Some(b"")),
    ];
    write_checkpoint(&path, CheckpointMeta::full(1, 1000, 3), entries.clone()).expect("write");
    let checkpoint = Checkpoint::open(&path).expect("open");
    assert_eq!(checkpoint.get(&big_key), Lookup::Value(&big_value));
    assert_eq!(checkpoint.get(b"l"), Lookup::Deleted);
    assert_eq!(checkpoint.get(b"n"), Lookup::Value(b""));
    let got: Vec<_> = checkpoint
        .range(Bound::Excluded(b"a"), Bound::Included(b"m"))
        .collect();
    assert_eq!(got, entries[1..4]);
}

// ---- Golden fixture of format version 1 ----

/// The committed fixture. Regenerate with `HELIOS_REGENERATE_FIXTURES=1 cargo test -p
/// helios-checkpoint --test checkpoint golden` only when it must change; a format change that
/// can no longer read it needs a new fixture next to it, not a replacement.
fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-delta.ckpt")
}

fn fixture_meta() -> CheckpointMeta {
    CheckpointMeta::delta(42, 1230, 1, 1200)
}

/// 50 entries: values, tombstones, an empty key and value, binary keys, and one value larger
/// than a page. Deterministic, without a random generator. Laid out in 3 blocks: one ends with
/// zero padding before a page boundary, one is an entry that spans pages without padding.
fn fixture_entries() -> Entries {
    let mut entries: Entries = (0u32..47)
        .map(|i| {
            let key = format!("account/{:04}", i * 37 % 1000).into_bytes();
            let value = match i % 4 {
                0 => None,
                1 => Some(format!("balance={}", i * 1000).into_bytes()),
                2 => Some(vec![]),
                _ => Some((0..i * 16).map(|b| (b * 7 + i).to_le_bytes()[0]).collect()),
            };
            (key, value)
        })
        .collect();
    entries.push((Vec::new(), Some(b"empty key".to_vec())));
    entries.push((vec![0x00, 0xff, 0x00], None));
    entries.push((
        b"zz/large".to_vec(),
        Some((0..4500u32).map(|b| b.to_le_bytes()[0]).collect()),
    ));
    entries.sort();
    entries
}

#[test]
fn golden_fixture_v1_still_reads() {
    let path = fixture_path();
    let entries = fixture_entries();
    assert_eq!(entries.len(), 50);
    if std::env::var_os("HELIOS_REGENERATE_FIXTURES").is_some_and(|v| v == "1") {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        write_checkpoint(
            &path,
            fixture_meta(),
            entries.iter().map(|(k, v)| (k, v.as_ref())),
        )
        .expect("write fixture");
        eprintln!("regenerated {}", path.display());
    }
    let checkpoint = Checkpoint::open(&path).expect("the v1 fixture must stay readable");
    assert_eq!(checkpoint.meta(), &fixture_meta());
    assert_eq!(checkpoint.meta().kind, CheckpointKind::Delta);
    assert_eq!(checkpoint.len(), 50);
    assert_eq!(checkpoint.block_count(), 3);
    assert_eq!(all(&checkpoint), entries);
    for (key, value) in &entries {
        let expected = value.as_deref().map_or(Lookup::Deleted, Lookup::Value);
        assert_eq!(checkpoint.get(key), expected, "{key:?}");
    }
    assert_eq!(checkpoint.get(b"account/0001"), Lookup::Absent);
    // While the format version is 1, the writer must produce the fixture byte for byte: a
    // change to the bytes without a version bump would be a silent format change.
    if format::FORMAT_VERSION == 1 {
        let encoded =
            encode_checkpoint(fixture_meta(), entries.iter().map(|(k, v)| (k, v.as_ref())))
                .expect("encode");
        assert!(
            encoded == fs::read(&path).expect("read fixture"),
            "the writer's bytes differ from the v1 fixture: bump FORMAT_VERSION and add a fixture"
        );
    }
}
