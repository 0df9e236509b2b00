"""A Python process running a graph on HeliosSaver is killed (SIGKILL) mid-run; reopening the
store must find every checkpoint whose put had returned, each with the values it was put with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helios_store.langgraph import HeliosSaver

CHILD = r'''
import json, operator, sys
from typing import Annotated, TypedDict
from langgraph.graph import END, START, StateGraph
from helios_store.langgraph import HeliosSaver

class S(TypedDict):
    items: Annotated[list[str], operator.add]
    n: int

saver = HeliosSaver(sys.argv[1])
put = saver.put
def put_then_report(config, checkpoint, metadata, new_versions):
    out = put(config, checkpoint, metadata, new_versions)
    # Acknowledged: the put returned. Report the id and what it holds.
    values = checkpoint["channel_values"]
    print(json.dumps([out["configurable"]["checkpoint_id"], values.get("n"),
                      len(values.get("items", []))]), flush=True)
    return out
saver.put = put_then_report

def step(s):
    return {"items": [f"{s['n']} " + "y" * 180], "n": s["n"] + 1}

g = StateGraph(S)
g.add_node("step", step)
g.add_edge(START, "step")
g.add_conditional_edges("step", lambda s: END if s["n"] >= 100000 else "step")
graph = g.compile(checkpointer=saver)
graph.invoke({"items": [], "n": 0}, {"configurable": {"thread_id": "k"}, "recursion_limit": 10**6})
'''


def test_kill_mid_run_loses_no_acknowledged_checkpoint(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(store)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Not the source tree: `-c` puts the working directory first on sys.path.
            cwd=tmp_path,
        )
        acked: list[list] = []
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        # Let it run a varying while, then kill it without warning.
        target = 40 + 37 * round_
        while len(acked) < target and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(json.loads(line))
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
        # Lines already written before the kill were acknowledged too.
        acked += [json.loads(line) for line in rest.splitlines() if line.strip()]
        assert len(acked) >= target, err
        with HeliosSaver(store) as saver:
            for checkpoint_id, n, items in acked:
                tup = saver.get_tuple(
                    {"configurable": {"thread_id": "k", "checkpoint_ns": "",
                                      "checkpoint_id": checkpoint_id}}
                )
                assert tup is not None, f"acknowledged checkpoint {checkpoint_id} lost"
                values = tup.checkpoint["channel_values"]
                assert values.get("n") == n
                assert len(values.get("items", [])) == items
            latest = saver.get_tuple({"configurable": {"thread_id": "k"}})
            assert latest is not None
        # The next round resumes the same thread in the same store: `invoke` with new input
        # starts a new run on top of what survived.
