//! The bench programs' command lines, parsed with clap.
//!
//! `cargo bench` runs a bench built with `harness = false` with `--bench` among its arguments;
//! [`parse`] accepts it (hidden) and ignores it, so each program declares only its own options.

use clap::{Arg, ArgAction, Command};

/// The argument cargo adds when it runs a bench.
const CARGO_BENCH_FLAG: &str = "--bench";

/// Parses the process's arguments into `T`, the options of the bench program `name`, which
/// `--help` describes with `about`; on an error or `--help`, prints clap's message and exits
/// (status 2 for errors).
#[must_use]
pub fn parse<T: clap::Args>(name: &'static str, about: &'static str) -> T {
    // `about` after `augment_args`, which would otherwise take `T`'s doc comment.
    let command = T::augment_args(Command::new(name)).about(about).arg(
        Arg::new("cargo-bench")
            .long("bench")
            .hide(true)
            .action(ArgAction::SetTrue)
            .help("Passed by `cargo bench`; ignored"),
    );
    T::from_arg_matches(&command.get_matches()).unwrap_or_else(|error| error.exit())
}

/// The options given to this process, without cargo's `--bench`: what a report quotes.
#[must_use]
pub fn given() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| a != CARGO_BENCH_FLAG)
        .collect()
}

/// The command that ran the bench `name` as a user would type it:
/// `cargo bench -p helios-benches --bench NAME`, then ` -- ` and the options, if any.
#[must_use]
pub fn command_line(name: &str, options: &[String]) -> String {
    format!(
        "cargo bench -p helios-benches --bench {name}{}{}",
        if options.is_empty() { "" } else { " -- " },
        options.join(" ")
    )
}
