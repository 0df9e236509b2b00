//! Catch-up subscriptions (`Engine::subscribe`, `Engine::subscribe_stream`): every durable
//! event once and in order, then new ones as they become durable; resumption from a persisted
//! position with no gap and no duplicate; streams that do not exist yet, and deleted ones.

use std::path::Path;
use std::time::Duration;

use helios::{Durability, Engine, Error, Event, Lsn, Options, Version};
use helios_testkit::Rng;

use crate::support::set;

const WAIT: Duration = Duration::from_secs(30);

fn options(background: bool) -> Options {
    let mut options = Options::default();
    options.log.segment_size_bytes = 64 * 1024; // Several segments, and rolls while following.
    options.background_threads = background;
    options
}

fn open(dir: &Path, background: bool) -> Engine {
    Engine::open(dir, options(background)).expect("open")
}

fn all_events(engine: &Engine) -> Vec<Event> {
    engine
        .events_from(Lsn(1))
        .expect("events")
        .map(|e| e.expect("event"))
        .collect()
}

/// A writer thread appends batches to random streams with both persistent classes while a
/// subscriber follows the store from the start: it gets exactly the events the log holds, in
/// LSN order, each durable when delivered.
#[test]
fn a_subscription_delivers_every_durable_event_once_in_order_while_the_writer_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), true);
    let mut rng = Rng::new(7);
    let batches: Vec<(String, Vec<Vec<u8>>, Durability)> = (0..400)
        .map(|i| {
            let stream = format!("s{}", rng.next_u64() % 5);
            let len = 1 + rng.next_u64() % 4;
            let events = (0..len)
                .map(|j| set(&format!("k{j}"), &format!("{i}-{}", "x".repeat(100))))
                .collect();
            let class = if rng.next_u64().is_multiple_of(3) {
                Durability::Critical
            } else {
                Durability::Normal
            };
            (stream, events, class)
        })
        .collect();
    let total: usize = batches.iter().map(|(_, events, _)| events.len()).sum();
    let delivered = std::thread::scope(|scope| {
        scope.spawn(|| {
            for (stream, events, class) in &batches {
                engine.append(stream, events, *class, None).expect("append");
            }
        });
        let mut subscription = engine.subscribe(Lsn::ZERO);
        let mut delivered: Vec<Event> = Vec::with_capacity(total);
        while delivered.len() < total {
            // Normal appends become durable within the flusher's interval.
            let event = subscription
                .next_timeout(WAIT)
                .expect("next")
                .expect("an event within the wait");
            assert!(
                event.lsn <= engine.inspect().durable_lsn(),
                "{:?} delivered before it was durable",
                event.lsn
            );
            delivered.push(event);
        }
        assert!(
            subscription.try_next().expect("next").is_none(),
            "nothing more"
        );
        delivered
    });
    let expected = all_events(&engine);
    assert_eq!(delivered.len(), expected.len());
    for (got, want) in delivered.iter().zip(&expected) {
        assert_eq!(
            (got.lsn, got.stream, got.version, &got.payload),
            (want.lsn, want.stream, want.version, &want.payload)
        );
    }
    assert!(
        engine.inspect().segments().expect("segments").len() > 1,
        "the log rolled while followed"
    );
}

/// Appends that are not durable yet are not delivered; a sync makes them so.
#[test]
fn only_durable_events_are_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), false);
    engine
        .append("a", &[set("k", "1")], Durability::Critical, None)
        .expect("append");
    engine
        .append("a", &[set("k", "2")], Durability::Normal, None)
        .expect("append");
    let mut all = engine.subscribe(Lsn::ZERO);
    let mut one = engine.subscribe_stream("a", Version::ZERO);
    assert_eq!(
        all.try_next().expect("next").map(|e| e.version),
        Some(Version(1))
    );
    assert_eq!(
        one.try_next().expect("next").map(|e| e.version),
        Some(Version(1))
    );
    assert!(
        all.try_next().expect("next").is_none(),
        "a normal append not yet synced"
    );
    assert!(
        one.try_next().expect("next").is_none(),
        "a normal append not yet synced"
    );
    engine.sync().expect("sync");
    assert_eq!(
        all.try_next().expect("next").map(|e| e.version),
        Some(Version(2))
    );
    assert_eq!(
        one.try_next().expect("next").map(|e| e.version),
        Some(Version(2))
    );
}

/// A stream subscription waits for a stream that does not exist yet, delivers only its
/// events, and a new subscription after a persisted version resumes right after it, also
/// after a reopen.
#[test]
fn a_stream_subscription_waits_for_its_stream_and_resumes_after_a_persisted_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), true);
    let mut sub = engine.subscribe_stream("orders", Version::ZERO);
    assert!(sub.try_next().expect("next").is_none());
    assert!(
        sub.next_timeout(Duration::from_millis(20))
            .expect("next")
            .is_none()
    );
    for i in 0..10 {
        engine
            .append(
                "other",
                &[set("x", &i.to_string())],
                Durability::Critical,
                None,
            )
            .expect("append");
        engine
            .append(
                "orders",
                &[set("n", &i.to_string())],
                Durability::Critical,
                None,
            )
            .expect("append");
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        let event = sub.next_timeout(WAIT).expect("next").expect("event");
        seen.push((event.version, event.payload));
    }
    let persisted = seen.last().expect("four").0;
    drop(sub);
    drop(engine);

    let engine = open(dir.path(), true);
    let mut sub = engine.subscribe_stream("orders", persisted);
    while let Some(event) = sub.try_next().expect("next") {
        seen.push((event.version, event.payload));
    }
    let expected: Vec<(Version, Vec<u8>)> = (0..10)
        .map(|i| (Version(i + 1), set("n", &i.to_string())))
        .collect();
    assert_eq!(
        seen, expected,
        "no gap and no duplicate across the resumption"
    );
}

/// A consumer that persists the LSN of the last event it processed and resumes from it after
/// its engine was closed gets every event exactly once.
#[test]
fn a_store_subscription_resumed_from_a_persisted_lsn_has_no_gap_and_no_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), false);
    for i in 0..300 {
        let stream = format!("s{}", i % 7);
        engine
            .append(
                &stream,
                &[set("k", &i.to_string())],
                Durability::Normal,
                None,
            )
            .expect("append");
    }
    engine.sync().expect("sync");
    let expected: Vec<Lsn> = all_events(&engine).iter().map(|e| e.lsn).collect();
    let mut got = Vec::new();
    let mut sub = engine.subscribe(Lsn::ZERO);
    for _ in 0..123 {
        got.push(sub.try_next().expect("next").expect("event").lsn);
    }
    let persisted = *got.last().expect("events");
    drop(sub);
    engine.close().expect("close");

    let engine = open(dir.path(), false);
    let mut sub = engine.subscribe(persisted);
    while let Some(event) = sub.try_next().expect("next") {
        got.push(event.lsn);
    }
    assert_eq!(got, expected);
    assert_eq!(
        engine.stream_name(all_events(&engine)[0].stream).as_deref(),
        Some("s0")
    );
}

/// A followed stream that is deleted ends its subscription with an error naming it, rather
/// than following a new stream of the same name.
#[test]
fn a_deleted_stream_ends_its_subscription() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), false);
    engine
        .append("a", &[set("k", "1")], Durability::Critical, None)
        .expect("append");
    let mut sub = engine.subscribe_stream("a", Version::ZERO);
    assert!(sub.try_next().expect("next").is_some());
    engine.delete_stream("a").expect("delete");
    engine
        .append("a", &[set("k", "new")], Durability::Critical, None)
        .expect("append");
    match sub.try_next() {
        Err(Error::UnknownStream { stream }) => assert_eq!(stream, "a"),
        other => panic!("expected UnknownStream, got {other:?}"),
    }
}
