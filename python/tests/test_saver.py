"""HeliosSaver running real graphs, compared step by step with LangGraph's InMemorySaver."""

from __future__ import annotations

import operator
import os
import threading
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from helios_store import Store, StoreClosedError
from helios_store._native import SaverCore
from helios_store.langgraph import HeliosSaver


class State(TypedDict):
    log: Annotated[list[str], operator.add]
    count: int
    note: str


def build(checkpointer: BaseCheckpointSaver, *, interrupt: bool = False) -> Any:
    """plan -> act (loops 3 times) -> review; `review` can be interrupted before."""

    def plan(state: State) -> dict[str, Any]:
        return {"log": [f"plan {state['count']}"], "note": "planned"}

    def act(state: State) -> dict[str, Any]:
        return {"log": [f"act {state['count']} " + "x" * 150], "count": state["count"] + 1}

    def review(state: State) -> dict[str, Any]:
        return {"log": ["review"], "note": f"reviewed after {state['count']}"}

    g = StateGraph(State)
    g.add_node("plan", plan)
    g.add_node("act", act)
    g.add_node("review", review)
    g.add_edge(START, "plan")
    g.add_edge("plan", "act")
    g.add_conditional_edges("act", lambda s: "act" if s["count"] < 3 else "review")
    g.add_edge("review", END)
    return g.compile(
        checkpointer=checkpointer, interrupt_before=["review"] if interrupt else None
    )


def history(graph: Any, config: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The state history without ids and timestamps, which differ between savers."""
    return [
        (
            s.values,
            s.next,
            s.metadata.get("step"),
            s.metadata.get("source"),
            s.parent_config is not None,
            [(t.name, t.error) for t in s.tasks],
        )
        for s in graph.get_state_history(config)
    ]


def scenario(saver: BaseCheckpointSaver) -> dict[str, Any]:
    """Runs to an interrupt, resumes, travels back in time, forks and resumes the fork."""
    graph = build(saver, interrupt=True)
    config = {"configurable": {"thread_id": "main"}}
    out: dict[str, Any] = {}
    graph.invoke({"log": [], "count": 0, "note": ""}, config)
    out["interrupted"] = (graph.get_state(config).values, graph.get_state(config).next)
    graph.invoke(None, config)  # Resume.
    out["final"] = graph.get_state(config).values
    out["history"] = history(graph, config)
    # Time travel: the checkpoint just before the second `act`.
    states = list(graph.get_state_history(config))
    target = next(s for s in states if s.next == ("act",) and s.values["count"] == 1)
    out["replayed_from"] = target.values
    # Fork: change the past and resume from there.
    forked = graph.update_state(target.config, {"note": "forked", "count": 2})
    graph.invoke(None, forked)  # Runs to the interrupt before review.
    graph.invoke(None, config)
    out["after_fork"] = graph.get_state(config).values
    out["history_after_fork"] = history(graph, config)
    # The original branch is intact: its checkpoints are still readable.
    out["old_branch"] = graph.get_state(states[0].config).values
    return out


def test_graph_matches_in_memory_saver(tmp_path: Path) -> None:
    expected = scenario(InMemorySaver())
    with HeliosSaver(tmp_path / "store") as saver:
        actual = scenario(saver)
    assert actual == expected
    assert expected["final"]["note"] == "reviewed after 3"
    assert expected["after_fork"]["note"] == "reviewed after 3"
    assert len(expected["history_after_fork"]) > len(expected["history"])


def test_threads_at_once_with_readers_match_in_memory_saver(tmp_path: Path) -> None:
    """Six graphs run at once on one saver while two readers poll their newest checkpoints and
    their lists: every tuple a reader gets is whole (its config names its checkpoint, its
    values are its step's), and every thread ends with InMemorySaver's history."""
    reference = build(InMemorySaver())
    reference.invoke({"log": [], "count": 0, "note": ""}, {"configurable": {"thread_id": "r"}})
    expected = history(reference, {"configurable": {"thread_id": "r"}})
    ids = [f"t{i}" for i in range(6)]
    errors: list[BaseException] = []
    stop = threading.Event()
    checked = [0]
    with HeliosSaver(tmp_path / "store") as saver:
        graph = build(saver)

        def check(tup: Any) -> None:
            checked[0] += 1
            assert tup.config["configurable"]["checkpoint_id"] == tup.checkpoint["id"]
            log = tup.checkpoint["channel_values"].get("log", [])
            assert len(log) == max(tup.metadata["step"], 0), (tup.metadata, log)

        def write(thread_id: str) -> None:
            try:
                config = {"configurable": {"thread_id": thread_id}}
                graph.invoke({"log": [], "count": 0, "note": ""}, config)
            except BaseException as e:  # noqa: BLE001 - raised below
                errors.append(e)

        def read() -> None:
            try:
                while not stop.is_set():
                    for thread_id in ids:
                        config = {"configurable": {"thread_id": thread_id}}
                        tup = saver.get_tuple(config)
                        if tup is not None:
                            check(tup)
                        for tup in saver.list(config, limit=3):
                            check(tup)
            except BaseException as e:  # noqa: BLE001 - raised below
                errors.append(e)

        readers = [threading.Thread(target=read) for _ in range(2)]
        writers = [threading.Thread(target=write, args=(t,)) for t in ids]
        for t in readers + writers:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        for t in readers:
            t.join()
        if errors:
            raise errors[0]
        assert checked[0] > 0
        for thread_id in ids:
            assert history(graph, {"configurable": {"thread_id": thread_id}}) == expected


def test_checkpoints_survive_reopen(tmp_path: Path) -> None:
    config = {"configurable": {"thread_id": "t"}}
    with HeliosSaver(tmp_path / "store") as saver:
        graph = build(saver)
        graph.invoke({"log": [], "count": 0, "note": ""}, config)
        before = history(graph, config)
        final = graph.get_state(config).values
    with HeliosSaver(tmp_path / "store") as saver:
        graph = build(saver)
        assert graph.get_state(config).values == final
        assert history(graph, config) == before


def test_deletions_are_durable(tmp_path: Path) -> None:
    with HeliosSaver(tmp_path / "store") as saver:
        graph = build(saver)
        for thread in ("a", "b"):
            graph.invoke(
                {"log": [], "count": 0, "note": ""},
                {"configurable": {"thread_id": thread}, "metadata": {"run_id": f"run-{thread}"}},
            )
        assert len(list(saver.list({"configurable": {"thread_id": "a"}}))) > 1
        saver.delete_for_runs(["run-a"])
        saver.prune(["b"], strategy="keep_latest")
        latest_b = saver.get_tuple({"configurable": {"thread_id": "b"}})
        assert latest_b is not None
    with HeliosSaver(tmp_path / "store") as saver:
        assert list(saver.list({"configurable": {"thread_id": "a"}})) == []
        kept = list(saver.list({"configurable": {"thread_id": "b"}}))
        assert [t.checkpoint["id"] for t in kept] == [latest_b.checkpoint["id"]]
        assert kept[0].checkpoint["channel_values"] == latest_b.checkpoint["channel_values"]


def test_a_thread_deleted_and_written_again_reads_its_new_checkpoints(tmp_path: Path) -> None:
    """A saver reuses a thread's view while its stream has not moved. Another saver on the same
    store deletes the thread and writes it again to the same head: that is another stream, and
    the first saver reads the new checkpoints, not the view it kept."""
    with Store(tmp_path / "store") as store:
        reader, writer = HeliosSaver(store=store), HeliosSaver(store=store)
        config = {"configurable": {"thread_id": "t"}}
        build(writer).invoke({"log": [], "count": 0, "note": "first"}, config)
        first = reader.get_tuple(config)
        assert first is not None
        head = reader._core.head("t")
        writer.delete_thread("t")
        build(writer).invoke({"log": [], "count": 0, "note": "second"}, config)
        assert reader._core.head("t") == head  # The same head, in another stream.
        second, expected = reader.get_tuple(config), writer.get_tuple(config)
        assert second is not None and expected is not None
        assert second.config["configurable"]["checkpoint_id"] != first.checkpoint["id"]
        assert second.config == expected.config
        assert second.checkpoint == expected.checkpoint


def test_storage_grows_with_what_changed(tmp_path: Path) -> None:
    """A channel that grows by ~200 B a step costs about that per step in the log, not its
    whole size: 300 steps of a list reaching ~60 KB stay far below the ~9 MB of full copies."""
    steps = 300

    class Grow(TypedDict):
        items: Annotated[list[str], operator.add]
        n: int

    def step(s: Grow) -> dict[str, Any]:
        return {"items": [f"{s['n']:04d} " + "lorem ipsum dolor " * 11], "n": s["n"] + 1}

    g = StateGraph(Grow)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", lambda s: END if s["n"] >= steps else "step")
    store_dir = tmp_path / "store"
    with HeliosSaver(store_dir) as saver:
        graph = g.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "grow"}, "recursion_limit": steps + 5}
        graph.invoke({"items": [], "n": 0}, config)
        assert len(graph.get_state(config).values["items"]) == steps
        events = saver.store.read(SaverCore.stream_name("grow"))
        log_bytes = sum(len(e.payload) for e in events)
        value_bytes = sum(200 * i for i in range(steps + 1))
        # Whole values every 32 steps plus small deltas: well under a tenth of full copies.
        assert log_bytes < value_bytes / 10, (log_bytes, value_bytes)
        # Every checkpoint still reads back exactly.
        for i, snapshot in enumerate(graph.get_state_history(config)):
            assert len(snapshot.values.get("items", [])) == max(0, steps - i)
    assert os.path.isdir(store_dir)


def test_closed_saver_raises(tmp_path: Path) -> None:
    config = {"configurable": {"thread_id": "x"}}
    with HeliosSaver(tmp_path / "store") as saver:
        build(saver).invoke({"log": [], "count": 0, "note": ""}, config)
        assert saver.get_tuple(config) is not None
        assert saver._core.cache_stats()[1] > 0
    assert saver._core.cache_stats() == (0, 0), "a closed saver holds no values"
    with pytest.raises(StoreClosedError):
        saver.get_tuple(config)
    with pytest.raises(StoreClosedError):
        build(saver).invoke({"log": [], "count": 0, "note": ""}, config)


def test_shared_store_and_bad_arguments(tmp_path: Path) -> None:
    with Store(tmp_path / "store") as store:
        saver = HeliosSaver(store=store)
        build(saver).invoke({"log": [], "count": 0, "note": ""}, {"configurable": {"thread_id": "s"}})
        saver.close()  # Does not close a store it did not open.
        assert not store.closed
        assert saver.get_tuple({"configurable": {"thread_id": "s"}}) is not None
        with pytest.raises(ValueError, match="NUL"):
            saver.put(
                {"configurable": {"thread_id": "s", "checkpoint_ns": "a\x00b"}},
                {"v": 1, "id": "x", "ts": "", "channel_values": {}, "channel_versions": {},
                 "versions_seen": {}},
                {},
                {},
            )
        with pytest.raises(TypeError):
            HeliosSaver(store=store, sync_window_ms=5)
    with pytest.raises(TypeError):
        HeliosSaver()
    with pytest.raises(ValueError):
        HeliosSaver(tmp_path / "other", writes_durability="speculative")
