"""The Python API over the engine: appends, reads, views, branches, errors, closing, threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import helios_store
from helios_store import (
    ConflictError,
    EmptyAppendError,
    HeliosError,
    InvalidDurabilityError,
    InvalidOptionsError,
    InvalidStreamNameError,
    LockedError,
    NotAStoreError,
    PromotionConflictError,
    Reader,
    ReplayError,
    Store,
    StoreClosedError,
    UnknownBranchError,
    UnknownStreamError,
    VersionPastHeadError,
    kv_del,
    kv_set,
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store")
    yield s
    s.close()


def test_append_read_and_heads(store: Store) -> None:
    a = store.append("cart", [kv_set(b"color", b"red"), kv_set(b"size", b"L")], expected=0)
    assert (a.first, a.last) == (1, 2)
    b = store.append("cart", [kv_del(b"color")], durability="normal", expected=2)
    assert (b.first, b.last) == (3, 3) and b.lsn > a.lsn
    assert store.head("cart") == 3
    assert store.head("missing") is None
    events = store.read("cart")
    assert [e.version for e in events] == [1, 2, 3]
    assert events[0].payload == b"set color red"
    assert [e.durability for e in events] == ["critical", "critical", "normal"]
    assert [e.version for e in store.read("cart", start=2, end=2)] == [2]
    assert [(s.name, s.head) for s in store.streams()] == [("cart", 3)]
    assert store.sync() >= b.lsn
    assert [e.payload for e in store.events_from(0)][-1] == b"del color"


def test_state_at_any_version(store: Store) -> None:
    for i in range(25):
        store.append("counter", [kv_set(b"n", str(i).encode())])
    store.sync_checkpoints()
    assert store.get("counter", b"n") == b"24"
    assert store.get("counter", b"n", version=7) == b"6"
    assert store.get("counter", b"absent") is None
    view = store.view("counter", 23)
    assert view.version == 23 and view[b"n"] == b"22" and b"n" in view
    assert view.events_replayed <= 9
    assert view.layers, "version 23 reads a checkpoint layer"
    assert store.state("counter", 1) == {b"n": b"0"}
    store.append("counter", [kv_set(b"m", b"x"), kv_set(b"a", b"y")])
    v = store.view("counter")
    assert v.items() == [(b"a", b"y"), (b"m", b"x"), (b"n", b"24")]
    assert v.prefix(b"m") == [(b"m", b"x")]
    assert v.range(b"b", b"n") == [(b"m", b"x")]
    assert len(v) == 3 and v.to_dict()[b"a"] == b"y"
    with pytest.raises(KeyError):
        v[b"zzz"]


def test_errors_mirror_the_engine(store: Store, tmp_path: Path) -> None:
    store.append("s", [kv_set(b"k", b"v")])
    with pytest.raises(ConflictError) as conflict:
        store.append("s", [kv_set(b"k", b"w")], expected=0)
    assert (conflict.value.stream, conflict.value.expected, conflict.value.actual) == ("s", 0, 1)
    assert isinstance(conflict.value, HeliosError)
    with pytest.raises(UnknownStreamError) as unknown:
        store.view("nope")
    assert unknown.value.stream == "nope"
    with pytest.raises(VersionPastHeadError) as past:
        store.view("s", 5)
    assert (past.value.version, past.value.head) == (5, 1)
    with pytest.raises(EmptyAppendError):
        store.append("s", [])
    with pytest.raises(InvalidStreamNameError):
        store.append("bad\nname", [b"x"])
    with pytest.raises(InvalidDurabilityError):
        store.append("s", [b"x"], durability="speculative")
    store.append("raw", [b"not a kv event"])
    with pytest.raises(ReplayError) as replay:
        store.view("raw", 1)
    assert replay.value.version == 1
    with pytest.raises(LockedError):
        Store(store.path)
    with pytest.raises(NotAStoreError):
        Store(tmp_path / "elsewhere", create_if_missing=False)
    with pytest.raises(InvalidOptionsError):
        Store(tmp_path / "other", sync_window_ms=0)
    with pytest.raises(InvalidOptionsError):
        Store(tmp_path / "other", checkpoint_fanout=1)
    for first in (1, 26):
        with pytest.raises(InvalidOptionsError, match="checkpoint_first"):
            Store(tmp_path / "other", checkpoint_first=first)


def test_a_first_interval_apart_from_the_fanout(tmp_path: Path) -> None:
    """Every 10 events, then fanout 3 above, 4 levels: levels every 10, 30, 90 and 270."""
    with Store(
        tmp_path / "s",
        background_threads=False,
        checkpoint_first=10,
        checkpoint_fanout=3,
        checkpoint_levels=4,
    ) as store:
        for i in range(300):
            store.append("s", [kv_set(b"k%d" % (i % 7), b"%d" % i)], durability="normal")
        stats = store.sync_checkpoints()
        counts = [count for count, _ in stats["by_level"]]
        # 30 checkpoints: 270 at level 4, 90 and 180 at 3, the other multiples of 30 at 2.
        assert counts == [20, 7, 2, 1], stats
        view = store.view("s", 299)
        assert view.events_replayed <= 9
        assert view.get(b"k5") == b"292"  # version 299: events 0..=298


def test_later_opens_use_the_policy_the_store_records(tmp_path: Path) -> None:
    """Opened again with no policy named, by a writer or a reader, the store keeps the
    policy it was written with: its checkpoints are used, not rebuilt or read around."""
    path = tmp_path / "s"
    custom = (10, 3, 4)
    with Store(
        path,
        background_threads=False,
        checkpoint_first=10,
        checkpoint_fanout=3,
        checkpoint_levels=4,
    ) as store:
        for i in range(1000):
            store.append("s", [kv_set(b"k%d" % (i % 500), b"%d" % i)], durability="normal")
        store.sync_checkpoints()
    with Reader(path) as reader:
        assert reader.checkpoint_policy == custom
        # With the default policy's grid, a view at 999 would replay 989 events.
        assert reader.view("s", 999).events_replayed <= 9
        assert reader.get("s", b"k498", 999) == b"998"
    with Store(path, background_threads=False) as store:
        assert store.checkpoint_policy == custom
        assert store.view("s", 999).events_replayed <= 9
        written = store.sync_checkpoints()["written"]
        assert written == 0, "the writer rebuilt the checkpoints"
    with Store(path, background_threads=False, checkpoint_fanout=10) as store:
        assert store.checkpoint_policy == (10, 10, 3)
    with Reader(path) as reader:
        assert reader.checkpoint_policy == (10, 10, 3)


def test_bad_arguments(store: Store) -> None:
    with pytest.raises(TypeError, match="sequence of bytes"):
        store.append("s", b"one event, not a list")
    with pytest.raises(TypeError, match=r"events\[1\] must be bytes, not str"):
        store.append("s", [b"ok", "text"])
    with pytest.raises(ValueError, match="durability"):
        store.append("s", [b"x"], durability="sometimes")
    store.append("s", [kv_set(b"k", b"v")])
    with pytest.raises(TypeError, match="key must be bytes"):
        store.get("s", "k")
    with pytest.raises(TypeError):
        Store("/tmp/x", no_such_option=1)
    with pytest.raises(ValueError, match="branch_memory_policy"):
        Store(store.path.parent / "y", branch_memory_policy="maybe")
    with pytest.raises(OverflowError):
        store.append("s", [b"x"], expected=-1)
    with pytest.raises(ValueError):
        kv_set(b"two words", b"v")
    assert store.head("s") == 1, "no bad call appended anything"


def test_closed_store(tmp_path: Path) -> None:
    with Store(tmp_path / "s") as store:
        store.append("a", [kv_set(b"k", b"v")])
    assert store.closed
    for call in (
        lambda: store.append("a", [kv_set(b"k", b"w")]),
        lambda: store.head("a"),
        lambda: store.view("a"),
        lambda: store.read("a"),
        lambda: store.metrics(),
        lambda: store.fork("a", 1),
    ):
        with pytest.raises(StoreClosedError, match="closed"):
            call()
    store.close()  # Idempotent.
    # The lock is released: the store opens again, with the append durable.
    with Store(tmp_path / "s") as again:
        assert again.get("a", b"k") == b"v"


def test_branches(store: Store) -> None:
    store.append("game", [kv_set(b"turn", b"x")])
    a = store.fork("game", 1)
    assert store.append_branch(a, [kv_set(b"move", b"a")]) == (2, 2)
    rollout = store.fork_branch(a, 2)
    store.append_branch(rollout, [kv_set(b"score", b"7")], expected=2)
    with pytest.raises(ConflictError):
        store.append_branch(rollout, [kv_set(b"score", b"8")], expected=2)
    b = store.fork("game", 1)
    store.append_branch(b, [kv_set(b"move", b"b")])
    assert store.view_branch(rollout).get(b"move") == b"a"
    assert store.view_branch(rollout, 3).get(b"score") == b"7"
    assert store.view_branch(b, 1).get(b"move") is None
    info = store.branch_info(rollout)
    assert (info["parent"], info["fork"], info["head"]) == (a, 2, 3)
    assert sorted(store.branches("game")) == sorted([a, rollout, b])
    promoted = store.promote(a, 2, durability="critical")
    assert (promoted.first, promoted.last) == (2, 2)
    assert store.get("game", b"move") == b"a"
    assert store.prune("game") == 1  # b no longer descends from the head
    with pytest.raises(UnknownBranchError):
        store.view_branch(b)
    late = store.fork("game", 1)
    store.append_branch(late, [kv_set(b"move", b"c")])
    with pytest.raises(PromotionConflictError) as pc:
        store.promote(late)
    assert pc.value.head == 2
    store.pin(rollout)
    store.discard(rollout)
    stats = store.branch_stats()
    assert stats["promotions"] == 1 and stats["live_branches"] == 2


def test_metrics(store: Store) -> None:
    for i in range(5):
        store.append("m", [kv_set(b"k", str(i).encode())])
    store.view("m")
    metrics = store.metrics()
    assert metrics["append_critical"]["count"] == 5
    assert metrics["append_critical"]["unit"] == "ns"
    assert metrics["append_critical"]["p50"] > 0
    assert metrics["view"]["count"] >= 1
    assert "helios_append_critical_seconds" in store.metrics_prometheus()
    store.reset_metrics()
    assert store.metrics()["append_critical"]["count"] == 0
    # Five events: no checkpoint is due yet (every 10 by default), so no pack exists.
    stats = store.checkpoint_stats()
    assert (stats["count"], stats["packs"], stats["pack_bytes"]) == (0, 0, 0)
    for i in range(5, 25):
        store.append("m", [kv_set(b"k", str(i).encode())])
    stats = store.sync_checkpoints()
    assert (stats["count"], stats["packs"]) == (2, 1)


def test_concurrent_threads_share_syncs(store: Store) -> None:
    """Eight Python threads append critically at once: the GIL is released while each waits
    for its sync, so they overlap; every append lands, in order per stream."""
    per_thread = 50
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for n in range(per_thread):
                store.append(f"t{i}", [kv_set(b"n", str(n).encode())], expected=n)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    for i in range(8):
        assert store.head(f"t{i}") == per_thread
        assert store.get(f"t{i}", b"n") == str(per_thread - 1).encode()
    metrics = store.metrics()["append_critical"]
    assert metrics["count"] == 8 * per_thread


def test_close_while_other_threads_work(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    stop = threading.Event()
    seen: list[type] = []

    def work() -> None:
        n = 0
        while not stop.is_set():
            try:
                store.append("c", [kv_set(b"n", str(n).encode())])
                n += 1
            except StoreClosedError:
                seen.append(StoreClosedError)
                return

    t = threading.Thread(target=work)
    t.start()
    while store.head("c") is None:
        pass
    store.close()
    t.join(timeout=60)
    stop.set()
    assert seen == [StoreClosedError]


def test_package_exports() -> None:
    for name in helios_store.__all__:
        assert hasattr(helios_store, name), name
    assert issubclass(helios_store.LogError, HeliosError)
