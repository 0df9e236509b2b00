//! Shared workload code for the benches.
