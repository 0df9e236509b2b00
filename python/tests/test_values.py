"""Channel values of every shape read back exactly at every checkpoint: appended to (splices),
edited in the middle (zstd deltas), replaced by unrelated bytes (whole values), shrunk,
emptied, tiny and large; from the cache, and after a reopen from the log alone."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import empty_checkpoint

from helios_store import Store
from helios_store.langgraph import HeliosSaver


def evolve(rng: random.Random, value: Any) -> Any:
    """The next value of a channel: mostly appends, sometimes something else entirely."""
    roll = rng.random()
    if roll < 0.55:
        return value + [f"item {len(value)} " + "lorem ipsum " * rng.randrange(1, 30)]
    if roll < 0.70 and value:
        i = rng.randrange(len(value))
        return value[:i] + ["edited " + str(rng.random())] + value[i + 1 :]
    if roll < 0.80:
        return value[: len(value) // 2]
    if roll < 0.90:
        return [rng.randbytes(rng.randrange(0, 4000)).hex()]
    return []


def test_every_version_of_every_value_reads_back(tmp_path: Path) -> None:
    rng = random.Random(20261206)
    channels = ["a", "b", "c"]
    values: dict[str, Any] = {c: [] for c in channels}
    versions: dict[str, str] = {}
    expected: dict[str, dict[str, Any]] = {}
    configs = []
    store_dir = tmp_path / "store"
    with HeliosSaver(store_dir, deltas_per_full=8) as saver:
        parent = None
        for step in range(150):
            changed = [c for c in channels if rng.random() < 0.6] or [rng.choice(channels)]
            new_versions = {}
            for c in changed:
                values[c] = evolve(rng, values[c])
                versions[c] = saver.get_next_version(versions.get(c), None)
                new_versions[c] = versions[c]
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {c: v for c, v in values.items() if c in versions}
            checkpoint["channel_versions"] = dict(versions)
            config: dict[str, Any] = {"configurable": {"thread_id": "v", "checkpoint_ns": ""}}
            if parent is not None:
                config["configurable"]["checkpoint_id"] = parent
            stored = saver.put(config, checkpoint, {"step": step}, new_versions)
            parent = stored["configurable"]["checkpoint_id"]
            expected[parent] = {c: list(v) for c, v in checkpoint["channel_values"].items()}
            configs.append(stored)

        def check(saver: HeliosSaver) -> None:
            order = list(configs)
            rng.shuffle(order)  # Random access, not only in write order.
            for cfg in order:
                tup = saver.get_tuple(cfg)
                assert tup is not None
                assert tup.checkpoint["channel_values"] == expected[tup.checkpoint["id"]]

        check(saver)
        # Every way of storing a value was used, so every decoder was checked.
        encodings = saver._core.value_encodings("v")
        assert all(encodings[k] > 0 for k in ("raw", "zstd", "delta", "splice")), encodings
    with HeliosSaver(store_dir, cache_bytes=0) as reopened:  # Nothing cached: every decode.
        check(reopened)
    with HeliosSaver(store_dir) as reopened:  # Decoded and cached, then read from the cache.
        check(reopened)
        check(reopened)


def test_cache_keeps_grown_values_as_their_parts_and_copies_no_whole_value(
    tmp_path: Path,
) -> None:
    """A list channel that grows by appending is cached as splices (a few KiB each) over a
    shared base, not as one whole value per version; and a value the cache holds whole (and a
    checkpoint's own bytes, its metadata and its pending writes) is handed out as the same
    ``bytes`` object every time, not copied."""
    store_dir = tmp_path / "store"
    with HeliosSaver(store_dir) as saver:
        messages: list[str] = []
        version = None
        config: dict[str, Any] = {"configurable": {"thread_id": "grow", "checkpoint_ns": ""}}
        for step in range(200):
            messages = messages + [f"{step:04d} " + "x" * 500]
            version = saver.get_next_version(version, None)
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"messages": messages}
            checkpoint["channel_versions"] = {"messages": version}
            config = saver.put(config, checkpoint, {"step": step}, {"messages": version})
        assert saver._core.value_encodings("grow")["splice"] > 150
        saver.put_writes(config, [("messages", ["pending " + "y" * 200])], "task-1")
    with HeliosSaver(store_dir) as reopened:
        core = reopened._core
        ids = [c for _, c in core.list("grow", "", None)]
        assert len(ids) == 200
        value_bytes = 0
        for checkpoint_id in ids:
            row = core.get("grow", "", checkpoint_id)
            value_bytes += sum(len(data) for _, _, data in row[4])
        cached_bytes, cached = core.cache_stats()
        assert cached >= 200, "every value read is cached, whole or as its parts"
        assert cached_bytes * 4 < value_bytes, (cached_bytes, value_bytes)
        first = core.get("grow", "", ids[-1])  # The oldest checkpoint: its value is whole.
        again = core.get("grow", "", ids[-1])
        assert first[4][0][2] is again[4][0][2]
        assert first[2][1] is again[2][1]  # The checkpoint and metadata too.
        assert first[3][1] is again[3][1]
        newest = core.get("grow", "", ids[0])  # A splice: written out for each get, equal.
        again = core.get("grow", "", ids[0])
        assert newest[4][0][2] == again[4][0][2]
        assert len(newest[5]) == 1 and newest[5][0][3] is again[5][0][3]  # A pending write.



def _framed(data: bytes) -> bytes:
    """A length-prefixed field of a saver record."""
    return struct.pack("<I", len(data)) + data


def _raw(data: bytes) -> bytes:
    """A value stored as is (encoding 1)."""
    return bytes([1]) + _framed(b"msgpack") + _framed(data)


def _put(checkpoint_id: str, channel_version: bytes, value: bytes) -> bytes:
    """A saver put record in `saver/src/record.rs`'s layout: kind 1, namespace, id, no parent, no run
    id, the checkpoint and metadata (raw, empty msgpack maps), one channel version and one
    value of channel `c` at that version."""
    return (
        bytes([1])
        + _framed(b"")
        + _framed(checkpoint_id.encode())
        + b"\x00\x00"
        + _raw(b"\x80")
        + _raw(b"\x80")
        + struct.pack("<I", 1)
        + _framed(b"c")
        + _framed(channel_version)
        + struct.pack("<I", 1)
        + _framed(b"c")
        + _framed(channel_version)
        + value
    )


def _forged_delta(raw_len: int) -> bytes:
    """A delta (encoding 3) against the value of the thread's first record whose frame, zstd's
    smallest (magic, a single-segment header stating 5 bytes, one raw block), says it holds
    `raw_len` bytes."""
    frame = bytes.fromhex("28b52ffd") + bytes([0x20, 5]) + bytes([0x29, 0, 0]) + b"hello"
    return (
        bytes([3])
        + _framed(b"msgpack")
        + struct.pack("<IQII", raw_len, 1, 0, 1)
        + _framed(frame)
    )


# Run in a process whose address space cannot hold 4 GiB: a read that allocated what the
# record says before checking the frame would abort it.
_READ_UNDER_A_MEMORY_LIMIT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from helios_store import CorruptRecordError
from helios_store.langgraph import HeliosSaver
with HeliosSaver(sys.argv[1]) as saver:
    try:
        saver.get_tuple({"configurable": {"thread_id": "forged", "checkpoint_ns": ""}})
    except CorruptRecordError as e:
        print("refused:", e)
"""


def test_a_record_that_states_a_huge_value_is_refused_before_anything_is_allocated(
    tmp_path: Path,
) -> None:
    store_dir = tmp_path / "store"
    with Store(store_dir) as store:
        store.append(
            "helios.langgraph/forged",
            [
                _put("00000000-0000-0000-0000-000000000001", b"1", _raw(b"\x90")),
                _put("00000000-0000-0000-0000-000000000002", b"2", _forged_delta(0xFFFF_FFF0)),
            ],
        )
    # From the temporary directory: run from a checkout's `python/`, `-c` would import the
    # source package there, which has no native module, instead of the installed one.
    run = subprocess.run(
        [sys.executable, "-c", _READ_UNDER_A_MEMORY_LIMIT, str(store_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "refused:" in run.stdout, run.stdout
    assert "forged" in run.stdout
    assert "holds 5 bytes, its record says 4294967280" in run.stdout
