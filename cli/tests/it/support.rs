//! What the end-to-end tests share: the binary and running it with its output captured, the
//! CLI's error contract, the store's layout facts the tests rely on, copies and snapshots of
//! stores, SIGKILL, and reading `--json` output.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Segment size for tests that want several segments quickly (the engine's minimum is 4 KiB).
pub(crate) const SMALL_SEGMENT_SIZE_BYTES: u64 = 64 * 1024;
/// Segment size for the kill tests: small enough that the store rolls segments (and creates
/// spare ones) several times across the kills.
pub(crate) const KILL_SEGMENT_SIZE_BYTES: u64 = 16 * 1024;
/// Name of the first segment of every store: the first LSN, zero-padded to 20 digits.
pub(crate) const FIRST_SEGMENT: &str = "00000000000000000001.log";
/// Segment header length in bytes; the first record frame starts here.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 32;
/// Record header length in bytes (the frame prefix and fixed fields); the payload follows.
pub(crate) const RECORD_HEADER_LEN: u64 = 56;

/// The `helios` binary under test, as a command to add arguments to.
pub(crate) fn helios() -> Command {
    Command::new(env!("CARGO_BIN_EXE_helios"))
}

/// Runs `helios args...` with `stdin` as its input and waits for it.
pub(crate) fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = helios()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn helios");
    let mut input = child.stdin.take().expect("piped stdin");
    // A command that fails early (a locked store, a bad name) may exit before reading its
    // input: a broken pipe here is that, not a test failure; its output says the rest.
    if let Err(e) = input.write_all(stdin) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "write helios's stdin: {e}"
        );
    }
    drop(input);
    child.wait_with_output().expect("wait for helios")
}

/// Runs `helios args...` with `first` on stdin, then a line of `line_bytes` bytes written a
/// MiB at a time for as long as the command reads; returns its output and how many bytes it
/// took before it stopped reading (a command that refuses an over-long line early stops well
/// before its end).
pub(crate) fn run_with_a_long_line(
    args: &[&str],
    first: &'static [u8],
    line_bytes: usize,
) -> (Output, usize) {
    const MIB: usize = 1 << 20;
    let mut child = helios()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let mut written = 0;
        if input.write_all(first).is_err() {
            return written;
        }
        written += first.len();
        let chunk = vec![b'x'; MIB];
        while written < line_bytes {
            if input.write_all(&chunk).is_err() {
                return written;
            }
            written += chunk.len();
        }
        let _ = input.write_all(b"\n");
        written
    });
    let out = child.wait_with_output().expect("wait");
    (out, writer.join().expect("writer"))
}

/// Runs `helios COMMAND DIR args...` (`args[0]` is the command) with `stdin` as its input.
pub(crate) fn run_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let dir = dir.to_str().expect("a UTF-8 temporary path");
    let mut full = vec![args[0], dir];
    full.extend_from_slice(&args[1..]);
    run(&full, stdin)
}

/// The captured stdout, which must be UTF-8.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout")
}

/// The captured stderr, which must be UTF-8.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 stderr")
}

/// Asserts a successful run and returns its stdout.
pub(crate) fn ok(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "helios failed: stderr: {}\nstdout: {}",
        stderr(output),
        stdout(output)
    );
    stdout(output)
}

/// Asserts the CLI's error contract: exit code 2 and one `helios: ...` sentence on stderr that
/// contains `needle`, with no panic and no Debug dump.
pub(crate) fn assert_error(output: &Output, needle: &str) {
    let err = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(2),
        "expected exit 2, stderr: {err}"
    );
    assert!(
        err.starts_with("helios: "),
        "stderr is not `helios: ...`: {err:?}"
    );
    assert_eq!(err.lines().count(), 1, "stderr is not one line: {err:?}");
    assert!(
        err.contains(needle),
        "stderr {err:?} does not mention {needle:?}"
    );
    for debug in ["panicked", "RUST_BACKTRACE", " { ", "Os {", "kind:"] {
        assert!(
            !err.contains(debug),
            "stderr looks like a panic or Debug dump: {err:?}"
        );
    }
}

/// Every file under `dir` with its bytes, to prove a command changed nothing.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            }
            let bytes = if path.is_dir() {
                Vec::new()
            } else {
                std::fs::read(&path).expect("read")
            };
            out.insert(path, bytes);
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

/// Copies the directory `from`, with everything under it, to `to`.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// SIGKILLs `child`, waits for it, and checks that SIGKILL is what ended it (`what` names the
/// round in the failure message, with the child's stderr).
pub(crate) fn sigkill(child: &mut std::process::Child, what: &str) {
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert_eq!(
        status.signal(),
        Some(9),
        "{what}: the child was not killed by SIGKILL ({status}); stderr: {err}"
    );
}

/// Parses `text` as one JSON value, naming the text when it is not JSON.
pub(crate) fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// `value[path...]` as a u64, failing with the path when it is missing or not one.
pub(crate) fn json_u64(value: &serde_json::Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(value, |v, key| &v[*key])
        .as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not an unsigned integer in:\n{value:#}"))
}

/// `value[path...]` as a finite f64.
pub(crate) fn json_f64(value: &serde_json::Value, path: &[&str]) -> f64 {
    let x = path
        .iter()
        .fold(value, |v, key| &v[*key])
        .as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in:\n{value:#}"));
    assert!(x.is_finite(), "{path:?} = {x}");
    x
}

/// Most virtual memory a hostile-input run of `helios` may map (`ulimit -v`, in KiB): enough
/// for every command on small inputs (the engine's maps and threads included), far below an
/// allocation bomb, so that one fails the test instead of the machine.
pub(crate) const HOSTILE_MEMORY_KIB: u64 = 2 << 20;

/// Runs `helios args...` under `ulimit -v memory_kib` (through `sh`), with `stdin` as its
/// input, and kills it if it runs past `timeout_s` seconds (a failure naming the arguments).
pub(crate) fn run_limited(args: &[&str], stdin: &[u8], memory_kib: u64, timeout_s: u64) -> Output {
    let script = format!("ulimit -v {memory_kib} && exec \"$0\" \"$@\"");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_helios"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let mut input = child.stdin.take().expect("piped stdin");
    if let Err(e) = input.write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    drop(input);
    // Pipes are drained on threads so that a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_thread = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut bytes);
        bytes
    });
    let err_thread = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut bytes);
        bytes
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout_s);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("helios {args:?} ran past {timeout_s} s and was killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_thread.join().expect("stdout thread"),
        stderr: err_thread.join().expect("stderr thread"),
    }
}

/// Asserts that `output` is neither a panic nor an abort nor a kill: a status a script can
/// read (0, 1 or 2), and no panic message.
pub(crate) fn assert_no_crash(output: &Output, what: &str) {
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(0..=2)),
        "{what}: exit status {:?} (signal {:?}); stderr: {err}",
        output.status.code(),
        output.status.signal()
    );
    for crash in ["panicked", "memory allocation of", "RUST_BACKTRACE"] {
        assert!(!err.contains(crash), "{what}: stderr shows a crash: {err}");
    }
}

/// How to run `helios` so that file permissions apply to it: no prefix when this process is
/// already subject to them; `setpriv` dropping every capability (CAP_DAC_OVERRIDE among
/// them) when it runs as root; `None` (with the reason) when neither works here.
pub(crate) fn permission_checked_prefix() -> Result<Vec<&'static str>, String> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let locked = tmp.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    let mode = |m| std::fs::Permissions::from_mode(m);
    std::fs::set_permissions(&locked, mode(0o000)).expect("chmod");
    let denied_here = std::fs::read_dir(&locked).is_err();
    let prefix = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"];
    let denied_with_setpriv = !denied_here
        && Command::new(prefix[0])
            .args(&prefix[1..])
            .arg("ls")
            .arg(&locked)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.code() == Some(2));
    std::fs::set_permissions(&locked, mode(0o755)).expect("chmod");
    if denied_here {
        Ok(Vec::new())
    } else if denied_with_setpriv {
        Ok(prefix.to_vec())
    } else {
        Err("this process bypasses file permissions (root) and `setpriv` cannot drop that".into())
    }
}

/// Runs `helios args...` behind `prefix` (see [`permission_checked_prefix`]).
pub(crate) fn run_prefixed(prefix: &[&str], args: &[&str], stdin: &[u8]) -> Output {
    let helios = env!("CARGO_BIN_EXE_helios");
    let mut full: Vec<&str> = prefix.to_vec();
    full.push(helios);
    full.extend_from_slice(args);
    let mut child = Command::new(full[0])
        .args(&full[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("piped stdin");
    if let Err(e) = input.write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    drop(input);
    child.wait_with_output().expect("wait")
}
