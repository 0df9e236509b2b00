//! The store's directory on the real file system: every wrong path gets an error that says
//! what the path is (a file, a dangling link, a loop of links, a directory it may not read, a
//! directory of other files), a new store is created only in an empty or missing directory,
//! and nothing is written where the engine refuses. Also: messages cut long stream names.

use std::fs;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::Path;

use helios::{Durability, Engine, Error, Options};

fn open(dir: &Path) -> Result<Engine, Error> {
    Engine::open(dir, Options::default())
}

fn open_existing(dir: &Path) -> Result<Engine, Error> {
    let options = Options {
        create_if_missing: false,
        ..Options::default()
    };
    Engine::open(dir, options)
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_path_that_is_a_file_is_named_as_one_and_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("notes.txt");
    fs::write(&file, b"mine").expect("write");
    for result in [open(&file), open_existing(&file)] {
        match result {
            Err(error @ Error::NotADirectory { .. }) => {
                assert_eq!(
                    error.to_string(),
                    format!("{} is a file, not a directory", file.display())
                );
            }
            other => panic!("expected NotADirectory, got {other:?}"),
        }
    }
    // A directory on the way to the store that is a file: the file is the one named.
    let below = file.join("store");
    for result in [open(&below), open_existing(&below)] {
        match result {
            Err(Error::NotADirectory { path, kind }) => {
                assert_eq!((path.as_path(), kind), (file.as_path(), "a file"));
            }
            other => panic!("expected NotADirectory, got {other:?}"),
        }
    }
    assert_eq!(fs::read(&file).expect("read"), b"mine");
    assert_eq!(listing(tmp.path()), ["notes.txt"]);
}

#[test]
fn a_new_store_is_created_only_in_an_empty_or_missing_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let other = tmp.path().join("photos");
    fs::create_dir(&other).expect("mkdir");
    fs::write(other.join("cat.jpg"), b"jpeg").expect("write");
    match open(&other) {
        Err(error @ Error::NotEmpty { .. }) => {
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("{} is not empty", other.display()))
                    && message.contains("`cat.jpg`")
                    && message.contains("only in an empty or missing directory"),
                "{message}"
            );
        }
        other => panic!("expected NotEmpty, got {other:?}"),
    }
    assert_eq!(
        listing(&other),
        ["cat.jpg"],
        "the engine wrote beside foreign files"
    );
    // A `log` that is a file is not a store's log: the directory is not empty.
    let log_file = tmp.path().join("log-file");
    fs::create_dir(&log_file).expect("mkdir");
    fs::write(log_file.join("log"), b"a file").expect("write");
    match open(&log_file) {
        Err(Error::NotEmpty { found, .. }) => assert_eq!(found, "log"),
        other => panic!("expected NotEmpty, got {other:?}"),
    }
    assert_eq!(listing(&log_file), ["log"]);
    // Not creating: the same directory is simply not a store.
    assert!(matches!(
        open_existing(&other),
        Err(Error::NotAStore { .. })
    ));

    // Missing and empty directories get a store.
    let missing = tmp.path().join("a").join("b");
    open(&missing)
        .expect("open a missing directory")
        .close()
        .expect("close");
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    let engine = open(&empty).expect("open an empty directory");
    engine
        .append("s", &["set a 1"], Durability::Critical, None)
        .expect("append");
    engine.close().expect("close");
    // A store reopens, with or without permission to create.
    open(&empty).expect("reopen").close().expect("close");
    open_existing(&empty)
        .expect("reopen")
        .close()
        .expect("close");

    // A store whose creation stopped after its lock file and metadata (no log/ yet) is
    // finished, not refused.
    let cut_short = tmp.path().join("cut-short");
    fs::create_dir(&cut_short).expect("mkdir");
    fs::write(cut_short.join("LOCK"), b"").expect("write");
    fs::create_dir(cut_short.join("meta")).expect("mkdir");
    open(&cut_short).expect("open").close().expect("close");
    assert!(cut_short.join("log").is_dir());
}

#[test]
fn links_are_followed_and_a_loop_or_a_dangling_link_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    symlink(&b, &a).expect("symlink");
    symlink(&a, &b).expect("symlink");
    for dir in [a.clone(), a.join("store")] {
        for result in [open(&dir), open_existing(&dir)] {
            match result {
                Err(error @ Error::SymlinkLoop { .. }) => assert_eq!(
                    error.to_string(),
                    format!(
                        "{} cannot be reached: the symbolic links on its way form a loop",
                        dir.display()
                    )
                ),
                other => panic!("{}: expected SymlinkLoop, got {other:?}", dir.display()),
            }
        }
    }

    let dangling = tmp.path().join("dangling");
    symlink(tmp.path().join("nowhere"), &dangling).expect("symlink");
    match open(&dangling) {
        Err(Error::NotADirectory { kind, .. }) => {
            assert_eq!(kind, "a symbolic link to a missing target");
        }
        other => panic!("expected NotADirectory, got {other:?}"),
    }
    assert!(!tmp.path().join("nowhere").exists());

    // A link to a directory is that directory.
    let real = tmp.path().join("real");
    fs::create_dir(&real).expect("mkdir");
    let link = tmp.path().join("link");
    symlink(&real, &link).expect("symlink");
    open(&link)
        .expect("open through a link")
        .close()
        .expect("close");
    assert!(real.join("log").is_dir());
}

#[test]
fn permission_denied_is_named_as_such() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let locked = tmp.path().join("locked");
    fs::create_dir(&locked).expect("mkdir");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    if fs::read_dir(&locked).is_ok() {
        // Root (CAP_DAC_OVERRIDE) reads any directory: there is nothing to deny here. The CLI's
        // tests cover this case as root by dropping the capability in a child process.
        println!("skipped: this process reads a mode-000 directory (it runs as root)");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod");
        return;
    }
    for result in [open(&locked), open_existing(&locked)] {
        match result {
            Err(error @ Error::PermissionDenied { .. }) => assert_eq!(
                error.to_string(),
                format!(
                    "permission denied: cannot list directory {}",
                    locked.display()
                )
            ),
            other => panic!("expected PermissionDenied, got {other:?}"),
        }
    }
    match open(&locked.join("store")) {
        Err(Error::PermissionDenied { op, .. }) => assert_eq!(op, "look up"),
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn messages_cut_a_long_stream_name_and_the_error_keeps_it_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = open(tmp.path()).expect("open");
    let long = "n".repeat(70_000);
    let cut = format!(
        "{}… (70000 bytes)",
        "n".repeat(helios::NAME_SHOWN_CHARS_MAX)
    );

    let error = engine
        .append(&long, &["set a 1"], Durability::Normal, None)
        .expect_err("a 70 KB name is refused");
    assert_eq!(
        error.to_string(),
        format!("invalid stream name `{cut}`: it is longer than 1024 bytes")
    );
    assert!(matches!(&error, Error::InvalidStreamName { stream, .. } if *stream == long));

    let Err(error) = engine.read(&long, ..) else {
        panic!("an unknown stream is an error");
    };
    assert_eq!(error.to_string(), format!("unknown stream `{cut}`"));

    // A long but valid name, in a conflict and past the head.
    let name = "s".repeat(1000);
    engine
        .append(&name, &["set a 1"], Durability::Normal, None)
        .expect("append");
    let error = engine
        .append(
            &name,
            &["set a 2"],
            Durability::Normal,
            Some(helios::Version(5)),
        )
        .expect_err("conflict");
    let message = error.to_string();
    assert!(
        message.len() < 200 && message.contains("… (1000 bytes)`: expected head v5"),
        "{message}"
    );
    let Err(error) = engine.view(&name, helios::Version(9)) else {
        panic!("a view past the head is an error");
    };
    let message = error.to_string();
    assert!(
        message.len() < 200
            && message.ends_with("… (1000 bytes)` has no version v9: its head is v1"),
        "{message}"
    );
    engine.close().expect("close");
}

/// A store that holds a few events is small on disk (blocks allocated, not apparent sizes):
/// its first segment starts small, no pack exists before a checkpoint is due, and fjall's
/// journal is sparse. Measured while open (with the spare segment) and after a close.
#[test]
fn a_store_of_a_few_events_takes_at_most_a_megabyte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = helios::Engine::open(dir.path(), helios::Options::default()).expect("create");
    for i in 0..3 {
        engine
            .append(
                "s",
                &[format!("set k{i} v{i}").into_bytes()],
                helios::Durability::Critical,
                None,
            )
            .expect("append");
    }
    engine.sync().expect("sync");
    let open = helios::disk_usage(dir.path()).expect("usage").total();
    engine.close().expect("close");
    let closed = helios::disk_usage(dir.path()).expect("usage").total();
    for (when, usage) in [("open", open), ("closed", closed)] {
        assert!(
            usage.allocated_bytes <= 1 << 20,
            "{when}: {} bytes allocated in {} files",
            usage.allocated_bytes,
            usage.files
        );
    }
}
