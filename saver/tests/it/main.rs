//! The saver's storage format: its records, its value codec, and its index's state machine in
//! a real engine.

mod codec;
mod machine;
mod records;
mod support;
