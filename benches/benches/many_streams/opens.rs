//! Open time: `Engine::open` in this process, and a whole `helios get DIR STREAM k0` process
//! (spawned, waited for, its answer checked against the workload's reference state).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use helios::{Engine, Version};
use helios_benches::open_engine;
use helios_benches::runs::Runs;
use helios_workloads::Rng;
use helios_workloads::many_streams::{ManyStreams, StreamIndex};

use crate::Result;

/// The key every `helios get` run reads.
pub const GET_KEY: &str = "k0";

/// In-process opens and closes of the store.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Opens {
    /// `Engine::open` (default options, background threads on), each.
    pub open: Runs,
    /// `Engine::close` after each open but the last.
    pub close: Runs,
}

/// Opens the store in `dir` `count` times (at least once), closing it after each open but the
/// last; returns the times and the engine of the last open.
pub fn reopen(dir: &Path, count: u64) -> Result<(Opens, Engine)> {
    let mut opens = Opens::default();
    let mut index = 0;
    loop {
        let started = Instant::now();
        let engine = open_engine(dir);
        opens.open.push(started.elapsed());
        index += 1;
        eprintln!(
            "open {index}/{count}: {:.2} ms",
            opens.open.ms.last().copied().unwrap_or_default()
        );
        if index >= count.max(1) {
            return Ok((opens, engine));
        }
        let started = Instant::now();
        engine.close()?;
        opens.close.push(started.elapsed());
    }
}

/// `helios get` processes, whole.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GetRuns {
    /// Spawn to exit of each timed run.
    pub runs: Runs,
    /// Runs that printed a value (exit status 0), checked against the reference.
    pub present: u64,
    /// Runs that found the key absent (exit status 1), checked against the reference.
    pub absent: u64,
}

/// Runs `helios get DIR STREAM k0` once untimed (to warm the binary's pages), then `count`
/// times timed, each on a random stream, and checks every answer (value and exit status)
/// against the workload's state at the stream's last version.
pub fn get_processes(
    bin: &Path,
    dir: &Path,
    workload: &ManyStreams,
    names: &[String],
    count: u64,
    rng: &mut Rng,
) -> Result<GetRuns> {
    if !bin.is_file() {
        return Err(format!(
            "no helios binary at {}: build it with `cargo build --release -p helios-cli`, or \
             name one with --helios-bin",
            bin.display()
        )
        .into());
    }
    let head = Version(u64::from(workload.events_per_stream));
    let mut runs = GetRuns::default();
    for run in 0..=count {
        let stream = StreamIndex(u32::try_from(rng.below(u64::from(workload.streams)))?);
        let name = &names[usize::try_from(stream.0)?];
        let started = Instant::now();
        let output = Command::new(bin)
            .arg("get")
            .arg(dir)
            .arg(name)
            .arg(GET_KEY)
            .output()
            .map_err(|e| format!("run {}: {e}", bin.display()))?;
        let elapsed = started.elapsed();
        let expected = workload.state_at(stream, head).remove(GET_KEY.as_bytes());
        match (output.status.code(), expected) {
            (Some(0), Some(mut value)) => {
                value.push(b'\n');
                if output.stdout != value {
                    return Err(format!(
                        "helios get {name} {GET_KEY} printed {:?}, the reference is {:?}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&value)
                    )
                    .into());
                }
                runs.present += u64::from(run > 0);
            }
            (Some(1), None) => runs.absent += u64::from(run > 0),
            (status, expected) => {
                return Err(format!(
                    "helios get {name} {GET_KEY} exited with {status:?} (stderr: {}), the \
                     reference value is {:?}",
                    String::from_utf8_lossy(&output.stderr).trim(),
                    expected.map(|v| String::from_utf8_lossy(&v).into_owned())
                )
                .into());
            }
        }
        if run > 0 {
            runs.runs.push(elapsed);
        } else {
            eprintln!(
                "helios get, untimed first run: {:.1} ms",
                elapsed.as_secs_f64() * 1e3
            );
        }
    }
    Ok(runs)
}
