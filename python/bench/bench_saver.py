"""HeliosSaver against SqliteSaver, in the same run, on a graph whose state grows.

The graph appends one message of about 200 bytes to an ordinary ``operator.add`` list channel
per step, for ``--steps`` steps (1,000 by default): every step is one ``put_writes`` and one
``put``. Both savers sync every put: HeliosSaver's puts are critical (fdatasync, group
commit); SqliteSaver runs in WAL mode with ``PRAGMA synchronous=FULL``, so each commit is
fsynced too.

Measured, per saver:

- put latency (p50, p99) during the single-thread run, timed around ``saver.put``;
- get_tuple latency (p50, p99): the newest checkpoint, then ``--reads`` random checkpoints of
  the thread (time travel); as its floor, LangGraph's decode of the same values alone; and
  HeliosSaver's own part, its native get of the same checkpoints (values as bytes);
- list latency: ``list(config)`` of the whole thread, and ``list(config, limit=10)``;
- bytes on disk: allocated blocks (``st_blocks * 512``) of every file the saver wrote;
- put throughput with ``--threads`` graph threads at once (8 by default), each on its own
  thread id, ``--threaded-steps`` steps each; and, as the ceiling of that figure, the same
  threads on LangGraph's ``InMemorySaver``, which does no I/O (in one CPython process the
  graphs' own Python code, under the GIL, bounds every saver's throughput).

Run: ``python bench/bench_saver.py [--steps N] [--threads T] [--rounds R] [--work-dir DIR]
[--json]``. On a shared machine, ``--rounds 3`` alternates the savers and reports each metric's
median. ``--work-dir /dev/shm`` runs both savers on a tmpfs, where a sync costs nothing.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from helios_store._native import SaverCore
from helios_store.langgraph import HeliosSaver

WORDS = (
    "agent plan tool call result observation memory context search graph node edge state "
    "checkpoint thread reply user system assistant answer question reason step value"
).split()


class State(TypedDict):
    messages: Annotated[list[str], operator.add]
    step: int


def build_graph(steps: int, checkpointer: BaseCheckpointSaver) -> Any:
    """A loop of ``steps`` steps, each appending one ~200-byte message."""

    def work(state: State) -> dict[str, Any]:
        rng = random.Random(state["step"])
        text = " ".join(rng.choice(WORDS) for _ in range(40))[:190]
        return {"messages": [f"{state['step']:05d} {text}"], "step": state["step"] + 1}

    def route(state: State) -> str:
        return END if state["step"] >= steps else "work"

    g = StateGraph(State)
    g.add_node("work", work)
    g.add_edge(START, "work")
    g.add_conditional_edges("work", route)
    return g.compile(checkpointer=checkpointer)


def timed(saver: BaseCheckpointSaver, samples: dict[str, list[float]]) -> None:
    """Wraps the saver's put so each call's latency lands in ``samples['put']``."""
    put = saver.put

    def put_timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return put(*args, **kwargs)
        finally:
            samples["put"].append(time.perf_counter() - t)

    saver.put = put_timed  # type: ignore[method-assign]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def allocated_bytes(paths: list[str]) -> int:
    total = 0
    for path in paths:
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                for f in files:
                    total += os.stat(os.path.join(root, f)).st_blocks * 512
        elif os.path.exists(path):
            total += os.stat(path).st_blocks * 512
    return total




def run_one(
    name: str,
    make: Callable[[str], tuple[BaseCheckpointSaver, Callable[[], None], list[str]]],
    steps: int,
    reads: int,
    threads: int,
    threaded_steps: int,
    work_root: str | None,
) -> dict[str, Any]:
    work_dir = tempfile.mkdtemp(prefix=f"bench-{name}-", dir=work_root)
    out: dict[str, Any] = {"saver": name}
    try:
        saver, close, paths = make(os.path.join(work_dir, "single"))
        samples: dict[str, list[float]] = {"put": []}
        timed(saver, samples)
        graph = build_graph(steps, saver)
        config = {"configurable": {"thread_id": "bench"}, "recursion_limit": steps + 10}
        t = time.perf_counter()
        graph.invoke({"messages": [], "step": 0}, config)
        out["run_s"] = time.perf_counter() - t
        out["puts"] = len(samples["put"])
        out["put_p50_us"] = pct(samples["put"], 0.50) * 1e6
        out["put_p99_us"] = pct(samples["put"], 0.99) * 1e6

        thread_config = {"configurable": {"thread_id": "bench", "checkpoint_ns": ""}}
        ids = [t.config["configurable"]["checkpoint_id"] for t in saver.list(thread_config)]
        out["checkpoints"] = len(ids)
        latest = [0.0] * 50
        for i in range(len(latest)):
            t = time.perf_counter()
            tup = saver.get_tuple(thread_config)
            latest[i] = time.perf_counter() - t
        assert tup is not None and len(tup.checkpoint["channel_values"]["messages"]) == steps
        rng = random.Random(7)
        lat = []
        # HeliosSaver's own part of the same reads: its native get alone, values as bytes.
        own = []
        # The floor under every saver's get_tuple: LangGraph's decode of the same values.
        decode = []
        for _ in range(reads):
            cid = rng.choice(ids)
            cfg = {"configurable": {**thread_config["configurable"], "checkpoint_id": cid}}
            t = time.perf_counter()
            tup = saver.get_tuple(cfg)
            lat.append(time.perf_counter() - t)
            assert tup is not None and tup.checkpoint["id"] == cid
            if isinstance(saver, HeliosSaver):
                t = time.perf_counter()
                saver._core.get("bench", "", cid)
                own.append(time.perf_counter() - t)
            typed = [saver.serde.dumps_typed(v) for v in tup.checkpoint["channel_values"].values()]
            t = time.perf_counter()
            for value in typed:
                saver.serde.loads_typed(value)
            decode.append(time.perf_counter() - t)
        out["decode_p50_us"] = pct(decode, 0.50) * 1e6
        out["decode_p99_us"] = pct(decode, 0.99) * 1e6
        out["get_latest_p50_us"] = pct(latest, 0.5) * 1e6
        out["get_p50_us"] = pct(lat, 0.50) * 1e6
        out["get_p99_us"] = pct(lat, 0.99) * 1e6
        if own:
            out["own_p50_us"] = pct(own, 0.50) * 1e6
            out["own_p99_us"] = pct(own, 0.99) * 1e6
        t = time.perf_counter()
        n = sum(1 for _ in saver.list(thread_config))
        out["list_all_ms"] = (time.perf_counter() - t) * 1e3
        assert n == len(ids)
        lim = []
        for _ in range(20):
            t = time.perf_counter()
            got = list(saver.list(thread_config, limit=10))
            lim.append(time.perf_counter() - t)
            assert len(got) == 10
        out["list_10_p50_ms"] = pct(lim, 0.5) * 1e3
        if isinstance(saver, HeliosSaver):
            stream = SaverCore.stream_name("bench")
            out["record_bytes"] = sum(len(e.payload) for e in saver.store.read(stream))
            out["value_encodings"] = saver._core.value_encodings("bench")
        close()
        out["bytes_on_disk"] = allocated_bytes(paths)
        out["bytes_by_part"] = {
            os.path.basename(p) if not os.path.isdir(p) else sub: allocated_bytes(
                [os.path.join(p, sub)] if os.path.isdir(p) else [p]
            )
            for p in paths
            for sub in (sorted(os.listdir(p)) if os.path.isdir(p) else [""])
        }

        out.update(run_threads(make, os.path.join(work_dir, "threads"), threads, threaded_steps))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return out


def run_threads(
    make: Callable[[str], tuple[BaseCheckpointSaver, Callable[[], None], list[str]]],
    path: str,
    threads: int,
    threaded_steps: int,
) -> dict[str, Any]:
    """Several graphs at once, each on its own thread id, one saver: put throughput."""
    out: dict[str, Any] = {}
    saver, close, _ = make(path)
    samples: dict[str, list[float]] = {"put": []}
    timed(saver, samples)
    graph = build_graph(threaded_steps, saver)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            cfg = {
                "configurable": {"thread_id": f"t{i}"},
                "recursion_limit": threaded_steps + 10,
            }
            graph.invoke({"messages": [], "step": 0}, cfg)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    t = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t
    close()
    if errors:
        raise errors[0]
    out["threads"] = threads
    out["threaded_puts"] = len(samples["put"])
    out["threaded_puts_per_s"] = len(samples["put"]) / wall
    out["threaded_put_p50_us"] = pct(samples["put"], 0.5) * 1e6
    out["threaded_put_p99_us"] = pct(samples["put"], 0.99) * 1e6
    return out


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each numeric metric's median over the runs; other fields from the first run."""
    out = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = statistics.median(r[key] for r in runs)
    out["rounds"] = len(runs)
    return out


def make_helios(segment_size_bytes: int) -> Callable[[str], Any]:
    def make(path: str) -> tuple[BaseCheckpointSaver, Callable[[], None], list[str]]:
        saver = HeliosSaver(path, segment_size_bytes=segment_size_bytes)
        return saver, saver.close, [path]

    return make


def make_memory(path: str) -> tuple[BaseCheckpointSaver, Callable[[], None], list[str]]:
    del path  # Nothing on disk.
    return InMemorySaver(), lambda: None, []


def make_sqlite(path: str) -> tuple[BaseCheckpointSaver, Callable[[], None], list[str]]:
    os.makedirs(path, exist_ok=True)
    db = os.path.join(path, "checkpoints.sqlite")
    conn = sqlite3.connect(db, check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()  # Sets journal_mode=WAL.
    conn.execute("PRAGMA synchronous=FULL")
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    assert mode == "wal" and sync == 2, (mode, sync)
    return saver, conn.close, [db, db + "-wal", db + "-shm"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--reads", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--threaded-steps", type=int, default=200)
    ap.add_argument("--segment-size-bytes", type=int, default=64 << 20)  # the saver's default
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run both savers this many times, alternating, and report each metric's median",
    )
    ap.add_argument(
        "--work-dir",
        default=None,
        help="where both savers' files go (default: the system's temporary directory); on a "
        "tmpfs such as /dev/shm a sync costs nothing, which separates the syncs from the rest",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"helios": [], "sqlite": []}
    ceiling: list[dict[str, Any]] = []
    makers = {"helios": make_helios(args.segment_size_bytes), "sqlite": make_sqlite}
    for r in range(args.rounds):
        order = ["helios", "sqlite"] if r % 2 == 0 else ["sqlite", "helios"]
        for name in order:
            runs[name].append(
                run_one(
                    name,
                    makers[name],
                    args.steps,
                    args.reads,
                    args.threads,
                    args.threaded_steps,
                    args.work_dir,
                )
            )
        # The ceiling: the same threads on a saver that does no I/O at all.
        ceiling.append(run_threads(make_memory, "", args.threads, args.threaded_steps))
    results = [median_run(runs["helios"]), median_run(runs["sqlite"])]
    memory = median_run(ceiling)
    if args.json:
        print(json.dumps([*results, {"saver": "memory", **memory}], indent=2))
        return 0
    h, s = results
    rows = [
        ("single-thread put p50 (us)", "put_p50_us", "lower"),
        ("single-thread put p99 (us)", "put_p99_us", "lower"),
        ("get_tuple newest p50 (us)", "get_latest_p50_us", "lower"),
        ("get_tuple random p50 (us)", "get_p50_us", "lower"),
        ("get_tuple random p99 (us)", "get_p99_us", "lower"),
        ("list whole thread (ms)", "list_all_ms", "lower"),
        ("list limit=10 p50 (ms)", "list_10_p50_ms", "lower"),
        ("bytes on disk (allocated)", "bytes_on_disk", "lower"),
        (f"{args.threads} threads: puts/s", "threaded_puts_per_s", "higher"),
        (f"{args.threads} threads: put p50 (us)", "threaded_put_p50_us", "lower"),
        (f"{args.threads} threads: put p99 (us)", "threaded_put_p99_us", "lower"),
    ]
    print(
        f"{args.steps} steps, ~200 B appended per step; {h['checkpoints']:.0f} checkpoints; "
        f"segments {args.segment_size_bytes / 2**20:g} MiB; SqliteSaver WAL + synchronous=FULL; "
        f"median of {args.rounds} alternating round(s)"
    )
    print(f"{'':34} {'HELIOS':>14} {'SQLITE':>14} {'advantage':>10}")
    for label, key, better in rows:
        hv, sv = h[key], s[key]
        adv = (sv / hv if better == "lower" else hv / sv) if hv and sv else float("nan")
        print(f"{label:34} {hv:14,.1f} {sv:14,.1f} {adv:9.1f}x")
    parts = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in h["bytes_by_part"].items() if v)
    print(
        f"helios on disk: {parts}; records in the log {h['record_bytes'] / 1e6:.1f} MB "
        f"(after close; the active segment is preallocated)"
    )
    enc = ", ".join(f"{k} {v}" for k, v in h["value_encodings"].items() if v)
    print(f"helios channel values stored as: {enc}")
    parts = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in s["bytes_by_part"].items() if v)
    print(f"sqlite on disk: {parts}")
    print(f"run time: helios {h['run_s']:.1f} s, sqlite {s['run_s']:.1f} s")
    d99 = (h["decode_p99_us"] + s["decode_p99_us"]) / 2
    print(
        f"floor: decoding the values alone (LangGraph's serde), p50 "
        f"{(h['decode_p50_us'] + s['decode_p50_us']) / 2:,.1f} us, p99 {d99:,.1f} us: a saver "
        f"that read nothing would be {s['get_p99_us'] / d99:.1f}x SqliteSaver's get_tuple p99"
    )
    print(
        f"helios's own part of get_tuple (its native get of the same checkpoints, values as "
        f"bytes, after the get_tuple): p50 {h['own_p50_us']:,.1f} us, p99 {h['own_p99_us']:,.1f} us"
    )
    m = memory["threaded_puts_per_s"]
    print(
        f"ceiling: InMemorySaver (no I/O) with {args.threads} threads: {m:,.1f} puts/s, "
        f"{m / s['threaded_puts_per_s']:.1f}x SqliteSaver's; "
        f"HeliosSaver reaches {h['threaded_puts_per_s'] / m:.0%} of it"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
