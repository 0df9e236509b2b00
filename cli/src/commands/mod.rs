//! One module per subcommand: its arguments (clap derive) and its `run`.

pub mod append;
pub mod demo;
pub(crate) mod follow;
pub mod get;
pub mod import;
pub mod inspect;
pub mod read;
pub mod repair;
pub mod stats;
pub mod tail;
pub mod tune;
pub mod verify;
pub mod workload;

/// A durability class as a command-line value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityArg {
    /// Return only once the event is on stable storage (fdatasync); never lost once printed.
    Critical,
    /// Return after a buffered write; synced within the engine's window (10 ms by default).
    Normal,
}

impl From<DurabilityArg> for helios::Durability {
    fn from(arg: DurabilityArg) -> Self {
        match arg {
            DurabilityArg::Critical => helios::Durability::Critical,
            DurabilityArg::Normal => helios::Durability::Normal,
        }
    }
}
