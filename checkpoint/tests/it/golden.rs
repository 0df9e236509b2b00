//! The golden fixture of format version 1: the committed file must stay readable, and while
//! the format version is 1 the writer must produce it byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use helios_checkpoint::format;
use helios_checkpoint::{
    Checkpoint, CheckpointKind, CheckpointMeta, Lookup, SortedRun, encode_checkpoint,
    write_checkpoint,
};

use crate::support::{Entries, all};

/// The committed fixture. Regenerate with `HELIOS_REGENERATE_FIXTURES=1 cargo test -p
/// helios-checkpoint --test it golden` only when it must change; a format change that can no
/// longer read it needs a new fixture next to it, not a replacement.
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
