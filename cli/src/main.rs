//! The `helios` command-line tool.

fn main() {}
