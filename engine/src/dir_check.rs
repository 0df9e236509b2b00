//! The checks `Engine::open` makes of the store's directory before it creates or opens anything
//! in it, so that a wrong path gets an error that says what the path is.
//!
//! Responsible for: a path that is a file (or a socket, a device, a dangling symbolic link), a
//! directory on the way to it that is a file, symbolic links that form a loop, permission
//! denied, a missing directory when creating is not allowed, and the rule that a new store is
//! created only in an empty or missing directory: a directory that holds anything but a store's
//! own entries (`log/`, `meta/`, `checkpoints/`, `LOCK`, `FORMAT`) and has no `log/` is refused rather
//! than filled with store files beside the ones already there. A directory with only some of a
//! store's entries is a store whose creation was cut short, and opening it finishes the job.
//!
//! Not responsible for anything inside `log/`, `meta/` or `checkpoints/`: recovery checks those.
//! The checks read the real file system (where `meta/` always lives); `log/` is looked up through
//! the engine's [`Storage`], which may be the simulated one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use helios_log::{LogError, Storage};

use crate::checkpoints::CHECKPOINT_DIR;
use crate::engine::{LOCK_FILE, LOG_DIR, META_DIR};
use crate::error::{Error, Result};

/// Most symbolic links followed while resolving a path before calling it a loop (Linux's
/// `MAXSYMLINKS`, past which the kernel itself answers `ELOOP`).
const SYMLINK_HOPS_MAX: usize = 40;

/// Checks `dir` before [`crate::Engine::open`] uses it, and creates it when it is missing and
/// `create_if_missing` allows.
///
/// # Errors
/// [`Error::NotADirectory`], [`Error::SymlinkLoop`], [`Error::PermissionDenied`],
/// [`Error::NotEmpty`] (creating, in a directory that holds other files), [`Error::NotAStore`]
/// (not creating, and there is no store), and other I/O errors naming the path.
pub(crate) fn check(dir: &Path, create_if_missing: bool, storage: &dyn Storage) -> Result<()> {
    match fs::metadata(dir) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(metadata) => {
            return Err(Error::NotADirectory {
                path: dir.to_path_buf(),
                kind: describe(&metadata.file_type()),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::NotADirectory {
                    path: dir.to_path_buf(),
                    kind: "a symbolic link to a missing target",
                });
            }
            if !create_if_missing {
                return Err(Error::NotAStore {
                    path: dir.to_path_buf(),
                });
            }
            return fs::create_dir_all(dir).map_err(|e| classify(dir, e, "create directory"));
        }
        Err(e) => return Err(classify(dir, e, "look up")),
    }
    if create_if_missing {
        let listing = fs::read_dir(dir).map_err(|e| classify(dir, e, "list directory"))?;
        let mut foreign = None;
        for entry in listing {
            let entry = entry.map_err(|e| classify(dir, e, "list directory"))?;
            let name = entry.file_name();
            if name == LOG_DIR && fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
                // A store (or the start of one): recovery checks the rest.
                return Ok(());
            }
            // The store's own entries, as its creation makes them in turn: the format first,
            // then the lock, the metadata, the checkpoints and the log.
            let own = [
                META_DIR,
                CHECKPOINT_DIR,
                LOCK_FILE,
                crate::store_format::FORMAT_FILE,
                crate::store_format::FORMAT_TMP,
                crate::store_id::STORE_ID_FILE,
                crate::store_id::STORE_ID_TMP,
            ]
            .iter()
            .any(|own| name == *own);
            if !own && foreign.is_none() {
                foreign = Some(name.to_string_lossy().into_owned());
            }
        }
        return match foreign {
            Some(found) => Err(Error::NotEmpty {
                path: dir.to_path_buf(),
                found,
            }),
            None => Ok(()),
        };
    }
    let log_dir = dir.join(LOG_DIR);
    match storage.list_files(&log_dir) {
        Ok(_) => Ok(()),
        // No `log/`, or a `log` that is not a directory: either way, no store.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Err(Error::NotAStore {
                path: dir.to_path_buf(),
            })
        }
        Err(e) => Err(classify(&log_dir, e, "list directory")),
    }
}

/// The error for `source`, met while doing `op` on `path`: named for what it is when the
/// operating system says permission denied, not a directory, or (found by resolving the path
/// again) a loop of symbolic links.
fn classify(path: &Path, source: io::Error, op: &'static str) -> Error {
    match source.kind() {
        io::ErrorKind::PermissionDenied => Error::PermissionDenied {
            op,
            path: path.to_path_buf(),
        },
        io::ErrorKind::NotADirectory => match first_non_directory(path) {
            Some((culprit, kind)) => Error::NotADirectory {
                path: culprit,
                kind,
            },
            None => io_error(path, source, op),
        },
        _ if symlink_loop(path) => Error::SymlinkLoop {
            path: path.to_path_buf(),
        },
        _ => io_error(path, source, op),
    }
}

fn io_error(path: &Path, source: io::Error, op: &'static str) -> Error {
    Error::Log(LogError::Io {
        op,
        path: path.to_path_buf(),
        source,
    })
}

/// What a file that is not a directory is, as a noun phrase.
fn describe(file_type: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if file_type.is_file() {
        "a file"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_fifo() {
        "a named pipe"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "something other than a directory"
    }
}

/// The shortest prefix of `path` that exists and is not a directory, with what it is: the
/// culprit when the operating system says "not a directory" for `path`.
fn first_non_directory(path: &Path) -> Option<(PathBuf, &'static str)> {
    let mut prefix = PathBuf::new();
    for component in path.components() {
        prefix.push(component);
        match fs::metadata(&prefix) {
            Ok(metadata) if !metadata.is_dir() => {
                return Some((prefix, describe(&metadata.file_type())));
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Whether resolving `path` follows more than [`SYMLINK_HOPS_MAX`] symbolic links, which is
/// what the kernel calls a loop. Resolved by hand, component by component, because the
/// standard library has no stable name for `ELOOP`.
fn symlink_loop(path: &Path) -> bool {
    let mut resolved = PathBuf::new();
    // Components still to resolve, the next one last.
    let mut pending: Vec<PathBuf> = components_reversed(path);
    let mut hops = 0;
    while let Some(component) = pending.pop() {
        let candidate = resolved.join(&component);
        match fs::symlink_metadata(&candidate) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                hops += 1;
                if hops > SYMLINK_HOPS_MAX {
                    return true;
                }
                let Ok(target) = fs::read_link(&candidate) else {
                    return false;
                };
                // An absolute target starts over from the root; a relative one is resolved
                // from the directory holding the link.
                pending.extend(components_reversed(&target));
            }
            Ok(_) => resolved = candidate,
            Err(_) => return false,
        }
    }
    false
}

/// `path`'s components as paths, last first (so that popping yields them in order).
fn components_reversed(path: &Path) -> Vec<PathBuf> {
    path.components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_of_links_is_found_and_a_chain_is_not() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        std::os::unix::fs::symlink(&b, &a).expect("symlink");
        std::os::unix::fs::symlink(&a, &b).expect("symlink");
        assert!(symlink_loop(&a));
        assert!(symlink_loop(&a.join("store")));

        let target = tmp.path().join("target");
        fs::create_dir(&target).expect("mkdir");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink("target", &link).expect("symlink");
        assert!(!symlink_loop(&link));
        assert!(!symlink_loop(&link.join("missing")));
    }
}
