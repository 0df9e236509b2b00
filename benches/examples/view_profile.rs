//! The instructions of a warm view, for callgrind (instruction counts do not drift with the
//! machine's load the way timings do). The store is the `checkpoint_reads` bench's workload:
//! one event setting every key, then events of 1 to 4 keys each, checkpoints built under the
//! level policy given; then views at random versions, each with 10 point reads of random keys,
//! after every checkpoint was opened once (the steady state of a long-running reader).
//!
//! ```text
//! cargo build --release -p helios-benches --example view_profile
//! target/release/examples/view_profile build DIR --first 10 --fanout 3 --levels 9
//! valgrind --tool=callgrind --toggle-collect='*view_profile*measured*' \
//!     target/release/examples/view_profile read DIR --samples 2000
//! ```
//!
//! Instructions per view and its point reads = callgrind's "Collected" / `--samples`. `read`
//! opens the store with the policy it records.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use helios::{Durability, Engine, LevelPolicy, Version};
use helios_workloads::kv::{KvBatchMachine, KvWorkload};
use helios_workloads::{DEFAULT_SEED, Rng};

/// Point reads per view, as in `checkpoint_reads`.
const POINT_READS: usize = 10;
/// Events per append while building the store.
const APPEND_BATCH: usize = 100;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the workload into a new store and builds its checkpoints.
    Build {
        dir: PathBuf,
        /// Events between two checkpoints of the finest level.
        #[arg(long, default_value_t = 10)]
        first: u64,
        /// Fanout of the levels above the finest.
        #[arg(long, default_value_t = 10)]
        fanout: u64,
        /// Checkpoint levels.
        #[arg(long, default_value_t = 3)]
        levels: u32,
        #[command(flatten)]
        workload: Workload,
    },
    /// Views the store built by `build`: `--warm` untimed views, then `--samples` in
    /// `measured`, the function to count.
    Read {
        dir: PathBuf,
        #[arg(long, default_value_t = 2_000)]
        samples: u64,
        #[arg(long, default_value_t = 40_000)]
        warm: u64,
        #[command(flatten)]
        workload: Workload,
    },
}

/// The workload's size (the same for `build` and `read`).
#[derive(clap::Args)]
struct Workload {
    /// Events after the one that sets every key.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Keys.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
}

impl Workload {
    fn generate(&self) -> KvWorkload {
        KvWorkload::generate_loaded(self.keys, self.events, self.keys, 4, DEFAULT_SEED)
    }
}

const STREAM: &str = "state";

fn open(dir: &PathBuf, policy: Option<LevelPolicy>) -> Result<Engine, helios::Error> {
    let mut options = helios::Options::default();
    options.checkpoints.policy = policy;
    options.background_threads = false;
    Engine::builder(dir)
        .options(options)
        .state_machine(KvBatchMachine)
        .open()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Args::parse().command {
        Command::Build {
            dir,
            first,
            fanout,
            levels,
            workload,
        } => {
            let policy = LevelPolicy::with_first(first, fanout, levels)?;
            let workload = workload.generate();
            let engine = open(&dir, Some(policy))?;
            for batch in workload.events().chunks(APPEND_BATCH) {
                engine.append(STREAM, batch, Durability::Normal, None)?;
            }
            let stats = engine.checkpoints().sync()?;
            engine.close()?;
            eprintln!(
                "{} checkpoints, {} bytes, {policy}",
                stats.count, stats.bytes
            );
        }
        Command::Read {
            dir,
            samples,
            warm,
            workload,
        } => {
            let engine = open(&dir, None)?;
            let head = engine
                .head(STREAM)
                .ok_or("no stream `state`: run `build` first")?;
            let names: Vec<Vec<u8>> = {
                let workload = workload.generate();
                (0..workload.keys_count())
                    .map(|i| workload.key(i))
                    .collect()
            };
            let mut rng = Rng::new(DEFAULT_SEED);
            let mut replayed = 0;
            views(&engine, head, &names, &mut rng, warm, &mut replayed)?;
            replayed = 0;
            measured(&engine, head, &names, &mut rng, samples, &mut replayed)?;
            eprintln!(
                "{samples} views measured under {}: {:.2} events replayed on average",
                engine.checkpoints().policy(),
                replayed as f64 / samples.max(1) as f64
            );
        }
    }
    Ok(())
}

/// `count` views at random versions up to `head`, each with its point reads.
fn views(
    engine: &Engine,
    head: Version,
    names: &[Vec<u8>],
    rng: &mut Rng,
    count: u64,
    replayed: &mut u64,
) -> Result<(), helios::Error> {
    for _ in 0..count {
        let view = engine.view(STREAM, Version(1 + rng.below(head.0)))?;
        *replayed += view.report().events_replayed;
        for _ in 0..POINT_READS {
            let key = &names[usize::try_from(rng.below(names.len() as u64)).unwrap_or(0)];
            std::hint::black_box(view.get(key));
        }
    }
    Ok(())
}

/// [`views`], in a function of its own for callgrind's `--toggle-collect`.
#[inline(never)]
fn measured(
    engine: &Engine,
    head: Version,
    names: &[Vec<u8>],
    rng: &mut Rng,
    count: u64,
    replayed: &mut u64,
) -> Result<(), helios::Error> {
    views(engine, head, names, rng, count, replayed)
}
