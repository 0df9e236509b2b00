"""LangGraph's checkpointer conformance suite against HeliosSaver, every capability.

All eight capabilities are detected, run (none skipped) and pass.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncGenerator

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import CapabilityReport, ProgressCallbacks

from helios_store import Store
from helios_store.langgraph import HeliosSaver

ALL = ["put", "put_writes", "get_tuple", "list", "delete_thread", "delete_for_runs",
       "copy_thread", "prune"]


@checkpointer_test(name="HeliosSaver")
async def helios_saver() -> AsyncGenerator[HeliosSaver, None]:
    directory = tempfile.mkdtemp(prefix="helios-conformance-")
    async with HeliosSaver(directory) as saver:
        yield saver
    shutil.rmtree(directory, ignore_errors=True)


def run_suite() -> tuple[CapabilityReport, list[str]]:
    failures: list[str] = []

    def on_test_result(cap: str, name: str, passed: bool, error: str | None) -> None:
        if not passed:
            failures.append(f"{cap}/{name}: {(error or '').strip().splitlines()[-1]}")

    progress = ProgressCallbacks(on_test_result=on_test_result)
    report = asyncio.run(validate(helios_saver, progress=progress))
    report.print_report()
    return report, failures


def test_conformance_all_capabilities() -> None:
    report, failures = run_suite()
    results = report.results
    assert sorted(results) == sorted(ALL)
    for cap in ALL:
        assert results[cap].detected, f"{cap} not detected"
        assert results[cap].tests_skipped == 0, f"{cap} skipped"
    assert all(results[cap].passed for cap in ALL), failures
    assert not failures, failures


if __name__ == "__main__":
    # `python tests/test_conformance.py` prints the suite's report (CI shows it).
    run_suite()
