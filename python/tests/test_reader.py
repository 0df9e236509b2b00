"""Reader: a read-only handle beside a writer. It sees only what the writer made durable,
catches up on refresh (events, new streams, deletions), never blocks the writer, and keeps
working after the writer process is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helios_store import NotAStoreError, Reader, Store, StoreClosedError, kv_set


def test_a_reader_sees_what_the_writer_made_durable_and_catches_up(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with Store(path, background_threads=False) as writer:
        writer.append("a", [kv_set(b"k", b"1"), kv_set(b"k", b"2")])
        with Reader(path) as reader:
            assert reader.writer_holds_the_store()
            assert reader.head("a") == 2
            assert reader.get("a", b"k") == b"2"
            assert reader.get("a", b"k", version=1) == b"1"
            # A normal append, not synced: not published, not seen.
            writer.append("a", [kv_set(b"k", b"3")], durability="normal")
            reader.refresh()
            assert reader.head("a") == 2
            writer.sync()
            before, after, events = reader.refresh()
            assert (after - before, events) == (1, 1)
            assert reader.head("a") == 3
            assert reader.state("a") == {b"k": b"3"}
            # A new stream and a deletion.
            writer.append("b", [kv_set(b"x", b"y")])
            writer.delete_stream("a")
            reader.refresh()
            assert reader.head("a") is None
            assert [s.name for s in reader.streams()] == ["b"]
            assert [e.payload for e in reader.read("b")] == [kv_set(b"x", b"y")]
    with pytest.raises(StoreClosedError):
        reader.head("b")


def test_a_reader_needs_a_store(tmp_path: Path) -> None:
    with pytest.raises(NotAStoreError):
        Reader(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


WRITER = r"""
import sys
from helios_store import Store, kv_set
store = Store(sys.argv[1])
for i in range(200):
    store.append("s", [kv_set(b"k%d" % (i % 7), b"v%d" % i)])
print("appended", flush=True)
sys.stdin.readline()
"""


def test_a_reader_follows_a_writer_in_another_process_and_survives_its_kill(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store"
    Store(path).close()
    reader = Reader(path)
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # Not the source tree, whose helios_store has no built extension.
        cwd=tmp_path,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "appended"
        assert reader.writer_holds_the_store()
        reader.refresh()
        assert reader.head("s") == 200
        assert reader.get("s", b"k3") == b"v199"
        assert reader.get("s", b"k3", version=11) == b"v10"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    # The writer is gone: the reader still reads, and a refresh finds nothing new.
    assert not reader.writer_holds_the_store()
    reader.refresh()
    assert reader.head("s") == 200
    assert len(reader.read("s")) == 200
    reader.close()


def test_a_reader_with_refresh_ms_follows_by_itself(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with Store(path, background_threads=False) as writer:
        writer.append("a", [kv_set(b"k", b"1")])
        with Reader(path, refresh_ms=0) as auto, Reader(path) as manual:
            writer.append("a", [kv_set(b"k", b"2")])
            assert auto.get("a", b"k") == b"2"
            assert manual.get("a", b"k") == b"1"
