//! Fails when something the workspace defines once is defined a second time: the seeded
//! generator (testkit's `Rng`), the reference fold of the key-value machine (`kv::fold_into` in
//! helios-replay), and the shared constants below. A copy drifts; one definition cannot.
//!
//! It scans every `.rs` file of the workspace (and the fuzz crate) outside build output, so it
//! also catches a copy in a test, a bench or a fuzz target.

use std::path::{Path, PathBuf};

/// What must be defined in one file only: a name for the failure message, a test on a whole
/// source file squeezed (whitespace and `_` removed, lower case), and the one file allowed.
struct Single {
    what: &'static str,
    matches: fn(&str) -> bool,
    home: &'static str,
}

const SINGLES: &[Single] = &[
    Single {
        what: "the splitmix64 generator (its multiplier 0xbf58476d1ce4e5b9)",
        matches: |line| line.contains("wrappingmul(0xbf58476d1ce4e5b9)"),
        home: "testkit/src/lib.rs",
    },
    Single {
        what: "the default seed 0x48656c696f732121 (\"Helios!!\")",
        matches: |line| line.contains(":u64=0x48656c696f732121"),
        home: "testkit/src/lib.rs",
    },
    Single {
        what: "the reference fold of the key-value machine (a `Del` that removes from a map)",
        matches: |line| {
            line.contains("kvevent::del{key}=>{") || line.contains("del{key}=>state.remove(key)")
        },
        home: "replay/src/kv.rs",
    },
    Single {
        what: "DEFAULT_SIMULATIONS",
        matches: |line| line.contains("constdefaultsimulations:"),
        home: "workloads/src/mcts/mod.rs",
    },
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the workspace root")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            // Build output, and other checkouts or tools' folders, are not the workspace's code.
            if name == "target" || name.starts_with('.') || name == "node_modules" {
                continue;
            }
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Lower case, without whitespace or `_`, so that formatting and digit separators do not hide
/// a copy.
fn squeeze(line: &str) -> String {
    line.chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

#[test]
fn each_shared_definition_has_one_home() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(
        files.len() > 50,
        "found only {} Rust files under {}",
        files.len(),
        root.display()
    );
    let this_file = root.join("testkit/tests/single_definitions.rs");
    let mut problems = Vec::new();
    for single in SINGLES {
        let mut homes = Vec::new();
        for file in &files {
            if *file == this_file {
                continue;
            }
            let text = std::fs::read_to_string(file).expect("read a source file");
            // The whole file squeezed: a definition split over lines still matches.
            if (single.matches)(&squeeze(&text)) {
                homes.push(
                    file.strip_prefix(&root)
                        .unwrap_or(file)
                        .display()
                        .to_string(),
                );
            }
        }
        if homes != [single.home] {
            problems.push(format!(
                "{} must be defined once, in {}; found in: {:?}",
                single.what, single.home, homes
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn squeeze_removes_what_formatting_changes() {
    assert_eq!(squeeze("0xBF58_476D_1CE4_E5B9"), "0xbf58476d1ce4e5b9");
    assert_eq!(squeeze("KvEvent::Del { key } => {"), "kvevent::del{key}=>{");
}
