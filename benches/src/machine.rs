//! What the benches ran on, for the first lines of every report.

use std::fmt;
use std::path::PathBuf;

use helios_workloads::mounts::describe_mount;

use crate::scratch::scratch_root;

/// What the benches ran on, for the report.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// CPU model name, from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Total memory, from `/proc/meminfo`.
    pub memory: String,
    /// Kernel release.
    pub kernel: String,
    /// Where the bench files live.
    pub scratch: PathBuf,
    /// File system type and device of `scratch`.
    pub scratch_fs: String,
}

impl Machine {
    /// Describes this machine.
    #[must_use]
    pub fn describe() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_else(|| "unknown".to_owned())
        };
        let scratch = scratch_root();
        let _ = std::fs::create_dir_all(&scratch);
        let scratch_fs = describe_mount(&scratch);
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            cpu_model: field(&read("/proc/cpuinfo"), "model name"),
            memory: field(&read("/proc/meminfo"), "MemTotal"),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            scratch,
            scratch_fs,
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} CPUs ({}), {} memory, Linux {}, files in {} ({})",
            self.cpus,
            self.cpu_model,
            self.memory,
            self.kernel,
            self.scratch.display(),
            self.scratch_fs
        )
    }
}

/// The 1-minute load average from `/proc/loadavg`, or `?`: how busy the machine was around a
/// run, printed beside the numbers because other builders share it.
#[must_use]
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// The commit of the workspace this bench was built from, as `git describe` would name it for
/// a report: the short hash, with ` (with uncommitted changes)` when tracked files differ from
/// it, or `unknown` without git. Read at run time from the source tree the bench was compiled
/// in.
#[must_use]
pub fn source_commit() -> String {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&workspace)
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(changes) if !changes.is_empty() => format!("{hash} (with uncommitted changes)"),
            _ => hash,
        },
        None => "unknown".to_owned(),
    }
}
