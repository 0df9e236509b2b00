//! The reading commands (`read`, `get`, `inspect`, `stats`, `verify`) change nothing in a store:
//! a checkpoint they cannot read (damaged, or unreadable to them) is read around and left in
//! place, a store on a read-only file system is read, and `repair` is the way back from damage
//! that a writer refuses.

use std::path::Path;
use std::process::Command;

use helios_checkpoint::pack;

use crate::support::{
    assert_error, ok, permission_checked_prefix, run, run_in, run_prefixed, snapshot,
};

/// A store of one stream with checkpoints (25 events: checkpoints at 10 and 20).
fn make_store(dir: &Path) -> String {
    let input: String = (0..25).map(|i| format!("set k{} v{i}\n", i % 4)).collect();
    ok(&run_in(dir, &["append", "s"], input.as_bytes()));
    input
}

/// Every reading command, with what its output must contain.
fn read_everything(dir: &Path) {
    assert_eq!(
        ok(&run_in(dir, &["get", "s", "k0", "--at", "21"], b"")),
        "v20\n"
    );
    assert!(ok(&run_in(dir, &["read", "s"], b"")).ends_with("25\tset k0 v24\n"));
    assert!(ok(&run_in(dir, &["inspect"], b"")).contains("store format"));
    assert!(ok(&run_in(dir, &["stats"], b"")).contains("25"));
}

/// The store's pack and the checkpoints in it, as the pack's headers say.
fn pack_entries(dir: &Path) -> (std::path::PathBuf, Vec<pack::PackEntry>) {
    let path = dir.join("checkpoints").join(pack::pack_file_name(1));
    let bytes = std::fs::read(&path).expect("the store's pack");
    let scan = pack::scan(
        &path,
        &bytes,
        pack::pack_header::LEN as u64,
        bytes.len() as u64,
    );
    (path, scan.entries)
}

#[test]
fn a_damaged_checkpoint_is_read_around_and_left_in_place() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    make_store(&dir);
    let (pack_path, entries) = pack_entries(&dir);
    let victim = entries
        .iter()
        .find(|e| e.meta.version == 20)
        .expect("the checkpoint at version 20");
    // The last byte of its archive.
    let mut bytes = std::fs::read(&pack_path).expect("read");
    let last = usize::try_from(victim.offset + victim.len - 1).expect("small");
    bytes[last] ^= 0xFF;
    std::fs::write(&pack_path, &bytes).expect("damage");
    let before = snapshot(&dir);
    read_everything(&dir);
    assert_eq!(
        snapshot(&dir),
        before,
        "a reading command changed the store"
    );
    // The writer's next open reads around it too, and its builder rebuilds it: appended as a
    // new checkpoint, the damaged one left as it is.
    ok(&run_in(&dir, &["append", "s"], b"set k9 x\n"));
    let (_, entries) = pack_entries(&dir);
    let at_20: Vec<u64> = entries
        .iter()
        .filter(|e| e.meta.version == 20)
        .map(|e| e.offset)
        .collect();
    assert_eq!(at_20.len(), 2, "rebuilt by the writer: {entries:?}");
    assert_eq!(
        std::fs::read(&pack_path).expect("read")[last],
        bytes[last],
        "the damaged bytes are left in place"
    );
}

#[test]
fn a_checkpoint_this_user_cannot_read_is_left_in_place() {
    use std::os::unix::fs::PermissionsExt as _;
    let prefix = match permission_checked_prefix() {
        Ok(prefix) => prefix,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    make_store(&dir);
    for name in [
        pack::pack_file_name(1).as_str(),
        pack::PUBLISHED_END_FILE_NAME,
    ] {
        let victim = dir.join("checkpoints").join(name);
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        let before = snapshot(&dir);
        let store = dir.to_str().expect("UTF-8");
        let out = run_prefixed(&prefix, &["get", store, "s", "k0", "--at", "21"], b"");
        assert_eq!(ok(&out), "v20\n", "{name} unreadable");
        let out = run_prefixed(&prefix, &["read", store, "s"], b"");
        assert!(ok(&out).ends_with("25\tset k0 v24\n"));
        assert!(
            victim.exists(),
            "a reader deleted {name}, which it could not read"
        );
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(snapshot(&dir), before);
    }
}

/// Runs `cmd` and says whether it succeeded; `None` when it could not run at all.
fn sh(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_store_on_a_read_only_file_system_is_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let image = tmp.path().join("fs.img");
    let mount = tmp.path().join("mnt");
    std::fs::create_dir(&mount).expect("mkdir");
    let made = sh(Command::new("truncate").args(["-s", "16M"]).arg(&image))
        && sh(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))
        && sh(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount));
    if !made {
        eprintln!("skipped: cannot mount a loop file system here (needs root and mkfs.ext4)");
        return;
    }
    // Unmounted however the test ends.
    struct Mounted<'a>(&'a Path);
    impl Drop for Mounted<'_> {
        fn drop(&mut self) {
            let _ = sh(Command::new("umount").arg(self.0));
        }
    }
    let _mounted = Mounted(&mount);
    let dir = mount.join("store");
    make_store(&dir);
    assert!(
        sh(Command::new("mount").args(["-o", "remount,ro"]).arg(&mount)),
        "the file system could not be made read-only"
    );
    read_everything(&dir);
    let verified = ok(&run_in(&dir, &["verify"], b""));
    assert!(verified.contains("sound"), "{verified}");
    // A writer cannot open it, and says why.
    assert_error(
        &run_in(&dir, &["append", "s"], b"set a 1\n"),
        "Read-only file system",
    );
}

#[test]
fn repair_is_the_way_back_from_lost_records() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    make_store(&dir);
    let segment = dir.join("log").join("00000000000000000001.log");
    let bytes = std::fs::read(&segment).expect("read");
    // Cut the segment inside its last records: acknowledged (critical) records are lost.
    let written = bytes.iter().rposition(|b| *b != 0).expect("records");
    std::fs::write(&segment, &bytes[..written - 100]).expect("cut");

    let refused = run_in(&dir, &["append", "s"], b"set a 1\n");
    assert_error(&refused, "helios repair");
    // Readers still read the intact part, and say nothing is changed.
    let read = ok(&run_in(&dir, &["read", "s"], b""));
    assert!(read.starts_with("1\tset k0 v0\n"), "{read}");
    let verify = run_in(&dir, &["verify"], b"");
    assert_eq!(verify.status.code(), Some(1), "verify finds the loss");

    let repaired = ok(&run_in(&dir, &["repair"], b""));
    // The range is exact (the log's published end says what was durable); the cut records no
    // longer decode, and no catalog snapshot covers them, so no stream is named.
    assert!(repaired.contains("lost: lsns 25 to 26"), "{repaired}");
    assert!(
        repaired.contains("set aside, not deleted, in"),
        "{repaired}"
    );
    let kept = ok(&run_in(&dir, &["read", "s"], b""));
    assert_eq!(kept, read, "the repair keeps what a reader could read");
    ok(&run_in(&dir, &["append", "s"], b"set a 1\n"));
    assert!(ok(&run_in(&dir, &["verify"], b"")).contains("sound"));
    let again = ok(&run_in(&dir, &["repair"], b""));
    assert!(again.contains("nothing to repair"), "{again}");
    let _ = run(&["--version"], b"");
}
