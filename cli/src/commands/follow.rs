//! Following a store that another process writes, for `helios read --follow` and
//! `helios tail`: what a read-only open sees up to the writer's published durable end, then
//! every event the writer publishes after it, in log order.
//!
//! Invariants:
//! - Only durable events are printed: the read-only open's events up to the end the writer
//!   published (all of them when no writer holds the store: no recovery will remove them),
//!   then what `helios_log::Follower` reads up to each new published end.
//! - Nothing in the store is created, written or removed; no lock is taken, so the writer is
//!   never stopped from opening it.
//! - Each event is printed once, in order: the follower starts exactly where the printed part
//!   ends.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::Duration;

use helios::{Event, Lsn, Position, ReadOnly, SegmentId, StreamId, Version};
use helios_log::{Follower, RecordKind};
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::os::fd::AsFd as _;

use crate::error::CliError;
use crate::store::OpenArgs;

/// How long a follower waits when the writer published nothing new, if the system cannot
/// wake it when the published end changes (no inotify): bounds the lag between an
/// acknowledgement and the printed line, at a thousand cheap reads a second.
const IDLE_POLL: Duration = Duration::from_millis(1);

/// How long a follower woken by inotify waits at most before it looks again anyway (a missed
/// event, or a published end written before the watch existed, costs at most this).
const WAKE_TIMEOUT_MS: u16 = 100;

/// How long to wait between looks for a store that does not exist yet.
const STORE_POLL: Duration = Duration::from_millis(100);

/// What is followed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scope<'a> {
    /// One stream, by name, from a version on.
    Stream(&'a str, Version),
    /// Every event of the store.
    All,
}

/// One event to print, and its stream's name.
#[derive(Debug)]
pub(crate) struct Followed<'a> {
    pub stream: &'a str,
    pub event: &'a Event,
}

/// Whether to go on after the events durable now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Print the new events as they become durable, until interrupted.
    Follow,
    /// Stop at the end durable when the command started.
    UpToNow,
}

/// Where followed events go: printed, and flushed after each group.
pub(crate) trait Sink {
    /// Prints one event.
    fn emit(&mut self, event: &Followed<'_>) -> io::Result<()>;
    /// Flushes what was printed.
    fn flush(&mut self) -> io::Result<()>;
}

/// Gives `sink` every durable event of `scope`, in order, then (with [`Mode::Follow`]) each
/// new one, flushing after each group. Returns when the sink fails with a broken pipe (the
/// consumer went away), or at the end for [`Mode::UpToNow`].
///
/// # Errors
/// Opening or reading the store; a write error other than a broken pipe.
pub(crate) fn follow(
    dir: &Path,
    open: &OpenArgs,
    scope: Scope<'_>,
    mode: Mode,
    sink: &mut dyn Sink,
) -> Result<(), CliError> {
    match follow_inner(dir, open, scope, mode, sink) {
        Err(CliError::Io { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn follow_inner(
    dir: &Path,
    open: &OpenArgs,
    scope: Scope<'_>,
    mode: Mode,
    sink: &mut dyn Sink,
) -> Result<(), CliError> {
    let engine = wait_for_store(dir, open, mode)?;
    let Some(engine) = engine else {
        return Ok(());
    };
    let log_dir = dir.join("log");
    let scanned = engine.inspect().log_end();
    let published = helios_log::read_published_end(&log_dir).map_err(helios::Error::from)?;
    let start = match published {
        Some(published) if published.lsn < scanned.lsn => published,
        Some(_) => scanned,
        // A writer that has not published yet: everything may still be taken back, so the
        // follower reads from the start once it publishes.
        None if engine.writer_holds_the_store() => Position {
            lsn: Lsn::ZERO,
            segment: SegmentId(1),
            offset: 0,
        },
        None => scanned,
    };
    let mut state = State {
        names: HashMap::new(),
        scope,
        bound: None,
        next_version: match scope {
            Scope::Stream(_, from) => Version(from.0.max(1)),
            Scope::All => Version(1),
        },
    };
    state.print_opened(&engine, start.lsn, sink)?;
    if let (Scope::Stream(name, _), None) = (scope, state.bound) {
        eprintln!(
            "helios: stream {} does not exist yet{}",
            helios::short_name(name),
            if mode == Mode::Follow {
                "; waiting for it"
            } else {
                ""
            }
        );
    }
    sink.flush().map_err(CliError::io("write to stdout"))?;
    drop(engine);
    if mode == Mode::UpToNow {
        return Ok(());
    }
    let mut follower = Follower::new(&log_dir, start);
    let mut records: Vec<(RecordKind, Event)> = Vec::new();
    // Watched before the first look, so that a publish between a look and the wait wakes it.
    let wake = Wake::new(&log_dir);
    loop {
        records.clear();
        follower
            .poll(&mut |r, _| records.push((r.header.kind, Event::from_record(r))))
            .map_err(helios::Error::from)?;
        if records.is_empty() {
            match &wake {
                Some(wake) => wake.wait(WAKE_TIMEOUT_MS),
                None => std::thread::sleep(IDLE_POLL),
            }
            continue;
        }
        for (kind, record) in &records {
            state.apply(dir, open, *kind, record, sink)?;
        }
        sink.flush().map_err(CliError::io("write to stdout"))?;
    }
}

/// Wakes a follower when the writer rewrites the published end: an inotify watch on the file
/// (and on the log's directory, for the file's creation or replacement).
struct Wake {
    inotify: Inotify,
    file: std::path::PathBuf,
}

impl Wake {
    /// `None` where inotify is not available: the follower then polls.
    fn new(log_dir: &Path) -> Option<Wake> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        inotify
            .add_watch(
                log_dir,
                AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO,
            )
            .ok()?;
        let wake = Wake {
            inotify,
            file: log_dir.join(helios_log::format::PUBLISHED_END_FILE_NAME),
        };
        wake.watch_file();
        Some(wake)
    }

    /// Watches the published end's file, if it exists (again: a new file is a new watch; the
    /// same file keeps its watch).
    fn watch_file(&self) {
        let _ = self.inotify.add_watch(&self.file, AddWatchFlags::IN_MODIFY);
    }

    /// Returns when the published end changed (or may have), or after `timeout_ms`.
    fn wait(&self, timeout_ms: u16) {
        self.watch_file();
        let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, timeout_ms).is_ok_and(|ready| ready > 0) {
            // Drain what is queued: the caller looks at the file itself.
            while self
                .inotify
                .read_events()
                .is_ok_and(|events| !events.is_empty())
            {}
        }
    }
}

/// Opens the store read-only, waiting for it to exist (saying so once) when following.
fn wait_for_store(dir: &Path, open: &OpenArgs, mode: Mode) -> Result<Option<ReadOnly>, CliError> {
    let mut said = false;
    loop {
        match open.open_read_only(dir) {
            Ok(engine) => return Ok(Some(engine)),
            // No store yet, or one being created (no segment yet): wait for it.
            Err(_) if mode == Mode::Follow && !has_a_segment(dir) => {
                if !said {
                    eprintln!("helios: no store at {} yet; waiting for it", dir.display());
                    said = true;
                }
                std::thread::sleep(STORE_POLL);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether the store's log has a segment file: a store whose creation got that far can be
/// opened (or is damaged, and says so).
fn has_a_segment(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("log")).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .any(|name| name.ends_with(".log"))
    })
}

/// What the follower knows: stream names by id, and the followed stream.
struct State<'a> {
    names: HashMap<StreamId, String>,
    scope: Scope<'a>,
    /// The followed stream's id, once it exists.
    bound: Option<StreamId>,
    /// The next version of the followed stream to print.
    next_version: Version,
}

impl State<'_> {
    /// Prints what the read-only open holds up to `until`.
    fn print_opened(
        &mut self,
        engine: &ReadOnly,
        until: Lsn,
        sink: &mut dyn Sink,
    ) -> Result<(), CliError> {
        match self.scope {
            Scope::All => {
                for event in engine.events_from(Lsn(1))? {
                    let event = event?;
                    if event.lsn > until {
                        break;
                    }
                    let name = self
                        .names
                        .entry(event.stream)
                        .or_insert_with(|| engine.stream_name(event.stream).unwrap_or_default());
                    sink.emit(&Followed {
                        stream: name,
                        event: &event,
                    })
                    .map_err(CliError::io("write to stdout"))?;
                }
                // Streams created without events yet: their names for what follows.
                for info in engine.streams() {
                    self.names.entry(info.id).or_insert(info.name);
                }
            }
            Scope::Stream(name, _) => {
                let Some(info) = engine.stream(name) else {
                    return Ok(());
                };
                self.bound = Some(info.id);
                self.print_versions(engine, name, until, sink)?;
            }
        }
        Ok(())
    }

    /// Prints the followed stream's versions from `next_version` on, up to LSN `until`.
    fn print_versions(
        &mut self,
        engine: &ReadOnly,
        name: &str,
        until: Lsn,
        sink: &mut dyn Sink,
    ) -> Result<(), CliError> {
        let head = engine.head(name).unwrap_or(Version::ZERO);
        if self.next_version > head {
            return Ok(());
        }
        for event in engine.read(name, self.next_version..)? {
            let event = event?;
            if event.lsn > until {
                break;
            }
            sink.emit(&Followed {
                stream: name,
                event: &event,
            })
            .map_err(CliError::io("write to stdout"))?;
            self.next_version = Version(event.version.0 + 1);
        }
        Ok(())
    }

    /// Applies one record the follower read.
    fn apply(
        &mut self,
        dir: &Path,
        open: &OpenArgs,
        kind: RecordKind,
        record: &Event,
        sink: &mut dyn Sink,
    ) -> Result<(), CliError> {
        let (stream, version, lsn) = (record.stream, record.version, record.lsn);
        match kind {
            RecordKind::CreateStream | RecordKind::ForkStream => {
                let payload = &record.payload;
                let name_bytes = match kind {
                    RecordKind::ForkStream => payload.get(8..).unwrap_or_default(),
                    _ => payload,
                };
                let name = String::from_utf8_lossy(name_bytes).into_owned();
                if let Scope::Stream(followed, _) = self.scope
                    && followed == name
                    && self.bound.is_none()
                {
                    self.bound = Some(stream);
                    if kind == RecordKind::ForkStream && version > Version::ZERO {
                        // A fork's first versions are its source's: print them from a fresh
                        // read-only open, which knows the fork (its record is durable).
                        let engine = open.open_read_only(dir)?;
                        self.print_versions(&engine, followed, lsn, sink)?;
                    }
                }
                self.names.insert(stream, name);
            }
            RecordKind::DeleteStream => {
                if self.bound == Some(stream)
                    && let Scope::Stream(name, _) = self.scope
                {
                    eprintln!(
                        "helios: stream {} was deleted; waiting for a new stream of that name",
                        helios::short_name(name)
                    );
                    self.bound = None;
                    self.next_version = Version(1);
                }
            }
            RecordKind::Event => match self.scope {
                Scope::All => {
                    let name = self.names.get(&stream).map_or("", String::as_str);
                    sink.emit(&Followed {
                        stream: name,
                        event: record,
                    })
                    .map_err(CliError::io("write to stdout"))?;
                }
                Scope::Stream(name, _) => {
                    if self.bound == Some(stream) && version >= self.next_version {
                        sink.emit(&Followed {
                            stream: name,
                            event: record,
                        })
                        .map_err(CliError::io("write to stdout"))?;
                        self.next_version = Version(version.0 + 1);
                    }
                }
            },
        }
        Ok(())
    }
}
