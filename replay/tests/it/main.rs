//! Views built exactly as the checkpoint hierarchy builds them, checked against a `BTreeMap`
//! model; isolation of failing events; the typed `BankAccount` example; merge edge cases.
//!
//! One binary for all of the crate's integration tests, a module per area, because linking
//! dominates build time on two cores.

mod bank_account;
mod failures;
mod support;
mod views;
