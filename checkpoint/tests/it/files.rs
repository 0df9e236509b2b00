//! Writing checkpoint files and opening them again: the bytes on disk, reads across threads,
//! refused input, damaged files named in errors, and the largest keys and values.

use std::fs;
use std::ops::Bound;
use std::sync::Arc;

use helios_checkpoint::format::{self, header};
use helios_checkpoint::{
    Checkpoint, CheckpointError, CheckpointMeta, Lookup, SortedRun, encode_checkpoint,
    write_checkpoint,
};

use crate::support::{all, some_entries};

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
