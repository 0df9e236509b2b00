"""A LangGraph graph on HeliosSaver: run it, travel back in time, fork the past, resume.

A small "research" graph (plan -> search, looped -> write) keeps its notes in an ordinary
``operator.add`` list channel. The run's checkpoints are durable (each ``put`` is a critical
append); the script then replays the history, forks the thread at an earlier checkpoint with
``update_state`` (a new branch of checkpoints beside the old ones), resumes the fork, and
reopens the store to show that both branches are still there.

Run: ``python examples/langgraph_time_travel.py [store-dir]``.
"""

from __future__ import annotations

import operator
import sys
import tempfile
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from helios_store.langgraph import HeliosSaver


class State(TypedDict):
    topic: str
    notes: Annotated[list[str], operator.add]
    searches: int
    report: str


def plan(state: State) -> dict[str, Any]:
    return {"notes": [f"plan: research {state['topic']!r} in 3 searches"]}


def search(state: State) -> dict[str, Any]:
    n = state["searches"] + 1
    return {"notes": [f"search {n}: found fact #{n} about {state['topic']}"], "searches": n}


def write(state: State) -> dict[str, Any]:
    return {"report": f"{state['topic']}: " + "; ".join(state["notes"][1:])}


def build(saver: HeliosSaver) -> Any:
    g = StateGraph(State)
    g.add_node("plan", plan)
    g.add_node("search", search)
    g.add_node("write", write)
    g.add_edge(START, "plan")
    g.add_edge("plan", "search")
    g.add_conditional_edges("search", lambda s: "search" if s["searches"] < 3 else "write")
    g.add_edge("write", END)
    return g.compile(checkpointer=saver)


def main() -> None:
    directory = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="helios-lg-")
    config = {"configurable": {"thread_id": "research-1"}}
    with HeliosSaver(directory) as saver:
        graph = build(saver)
        result = graph.invoke({"topic": "tides", "notes": [], "searches": 0, "report": ""}, config)
        print("report:", result["report"])

        print("\nhistory, newest first:")
        history = list(graph.get_state_history(config))
        for snapshot in history:
            print(
                f"  step {snapshot.metadata['step']:>2}  next={snapshot.next!s:<14}"
                f" searches={snapshot.values.get('searches')}"
            )

        # Time travel: the checkpoint before the second search.
        past = next(s for s in history if s.next == ("search",) and s.values["searches"] == 1)
        print(f"\nback to step {past.metadata['step']}: notes = {past.values['notes']}")

        # Fork: change the past (a different topic from here on) and resume from the fork.
        fork_config = graph.update_state(past.config, {"topic": "moon phases"})
        forked = graph.invoke(None, fork_config)
        print("forked report:", forked["report"])

    # Reopen: both branches are durable; the thread's head is the fork's end.
    with HeliosSaver(directory) as saver:
        graph = build(saver)
        print("\nafter reopening:")
        print("  head report:  ", graph.get_state(config).values["report"])
        print("  old branch:   ", graph.get_state(history[0].config).values["report"])
        print("  checkpoints:  ", len(list(saver.list(config))))
        print(f"  store:         {directory}")


if __name__ == "__main__":
    main()
