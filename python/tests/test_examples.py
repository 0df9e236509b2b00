"""The examples run to the end and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, check=True
    )
    return done.stdout


def test_mcts(tmp_path: Path) -> None:
    out = run(str(EXAMPLES / "mcts.py"), str(tmp_path / "store"), "--simulations", "60")
    assert "result:" in out and "critical promotions" in out
    moves = [line for line in out.splitlines() if " plays " in line]
    assert 5 <= len(moves) <= 9


def test_langgraph_time_travel(tmp_path: Path) -> None:
    out = run(str(EXAMPLES / "langgraph_time_travel.py"), str(tmp_path / "store"))
    assert "forked report: moon phases" in out
    assert "old branch:    tides" in out
