//! The work a writing command does after its appends are synced that only derived data
//! depends on (`append` and `import`): build the checkpoints due, and check that the state of
//! the streams it wrote reads at their heads.
//!
//! Invariant: nothing here can fail the command. Every event is appended and synced before
//! [`derive()`] runs, so each failure is a warning on stderr: exiting with the error status would
//! tell a script that retries on failure to append its lines twice. Checkpoints are derived
//! from the log and rebuilt later; reads stay exact without them.

use std::collections::BTreeSet;
use std::io::{self, Write as _};

use helios::{Engine, short_name};

/// Most streams whose state cannot be read that are named one warning each; past it, one
/// more warning gives the count of the others, so that an import of many streams cannot flood
/// stderr.
pub const UNREADABLE_WARNINGS_MAX: usize = 10;

/// Builds every checkpoint due up to each stream's head, then checks that the state of each of
/// `streams` reads at its head, warning on stderr about what fails. `appended` says what the
/// command did, as the start of a sentence ("every event was appended to stream `s`").
pub fn derive(engine: &Engine, appended: &str, streams: &[&str]) {
    let mut stalled = Vec::new();
    // `build`, not `sync`: its statistics would read the catalog of every checkpoint.
    match engine.checkpoints().build() {
        Ok(stats) => {
            // A failure of the builder's background thread (before this sync took over) is
            // reported there, not by the sync.
            if let Some(error) = engine.inspect().background_error() {
                warn(&format!(
                    "{appended}, but the engine's background work (the checkpoint builder) \
                     failed: {error} (checkpoints are derived from the log and rebuilt later; \
                     reads stay exact)"
                ));
            }
            stalled = stats.stalled;
        }
        Err(error) => warn(&format!(
            "{appended}, but building checkpoints failed: {error} (checkpoints are derived from \
             the log and rebuilt later; reads stay exact)"
        )),
    }
    // An earlier event of a stream (appended with `--raw`, or by a program) that the state
    // machine does not accept: say so now rather than let the first `helios get` be the
    // surprise. The builder names it when it stopped on it; otherwise a view at the head finds
    // it, replaying at most the events since the last checkpoint.
    let asked: BTreeSet<&str> = streams.iter().copied().collect();
    let mut unreadable: Vec<(String, String)> = stalled
        .into_iter()
        .filter(|s| asked.contains(s.stream.as_str()))
        .map(|s| (s.stream, format!("{} on: {}", s.version, s.reason)))
        .collect();
    let named: BTreeSet<String> = unreadable.iter().map(|(s, _)| s.clone()).collect();
    for &stream in &asked {
        if named.contains(stream) {
            continue;
        }
        if let Some(Err(helios::Error::Replay {
            version, source, ..
        })) = engine.head(stream).map(|head| engine.view(stream, head))
        {
            unreadable.push((stream.to_owned(), format!("{version} on: {source}")));
        }
    }
    for (stream, why) in unreadable.iter().take(UNREADABLE_WARNINGS_MAX) {
        warn(&format!(
            "the state of stream `{}` cannot be read from {why}",
            short_name(stream)
        ));
    }
    if let Some(more) = unreadable.len().checked_sub(UNREADABLE_WARNINGS_MAX)
        && more > 0
    {
        warn(&format!(
            "the state of {more} more streams cannot be read at their heads (`helios get` names \
             the event of each)"
        ));
    }
    // A view may have found a damaged checkpoint (then deleted and queued): rebuild it now,
    // so that the store is whole when the command exits rather than at the next writer's read.
    // (A build with nothing queued is one empty round.)
    if let Err(error) = engine.checkpoints().build() {
        warn(&format!(
            "rebuilding a damaged checkpoint failed: {error} (checkpoints are derived from the \
             log and rebuilt later; reads stay exact)"
        ));
    }
}

/// Prints `helios: warning: MESSAGE` on stderr.
pub fn warn(message: &str) {
    // Nothing sensible is left to do if stderr itself cannot be written.
    let _ = writeln!(io::stderr().lock(), "helios: warning: {message}");
}
