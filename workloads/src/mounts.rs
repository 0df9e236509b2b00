//! Which file system a run's files are on: reports of `helios tune` and of the benches name it,
//! because a durable write costs what that file system's `fdatasync` costs (nothing on tmpfs).
//!
//! It lives with the workloads rather than with the benches' measuring tools because the
//! `helios` binary reports it too (`helios tune`) and must not depend on the benches.

use std::path::Path;

/// File system type and device of the mount holding `path`, from `/proc/self/mounts` (the
/// longest mount point that is a prefix of the canonical path).
#[must_use]
pub fn mount_of(path: &Path) -> Option<(String, String)> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let mut best: Option<(usize, String, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(device), Some(mount_point), Some(fs_type)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let mount_point = mount_point.replace("\\040", " ");
        let depth = Path::new(&mount_point).components().count();
        if path.starts_with(&mount_point) && best.as_ref().is_none_or(|(d, _, _)| depth >= *d) {
            best = Some((depth, fs_type.to_owned(), device.to_owned()));
        }
    }
    best.map(|(_, fs_type, device)| (fs_type, device))
}

/// `FS_TYPE on DEVICE` for the mount holding `path`, or `unknown`: how reports name it.
#[must_use]
pub fn describe_mount(path: &Path) -> String {
    mount_of(path).map_or_else(
        || "unknown".to_owned(),
        |(fs_type, device)| format!("{fs_type} on {device}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_mounted() {
        let (fs_type, device) = mount_of(Path::new("/")).expect("/ is a mount point");
        assert!(!fs_type.is_empty() && !device.is_empty());
        assert_eq!(
            describe_mount(Path::new("/")),
            format!("{fs_type} on {device}")
        );
        assert_eq!(describe_mount(Path::new("/no/such/path")), "unknown");
    }
}
