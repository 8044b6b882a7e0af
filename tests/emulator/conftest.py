"""Fixtures for the ARM emulator tests: an emulator per test and the real async Azure SDK clients pointed at it.

Also the summary line of the REST example conformance suite (``test_conformance.py``), printed at the end of every
run that ran some of it::

    REST example conformance: 74 examples, 73 run, 73 passed, 1 unsupported: createOrUpdateAutoscaleSetting
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import Arm, make_arm
from rest_examples import example_files

from azure_arm_emulator import Emulator


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    # Throttling stays on (the default, as in Azure) with roomy buckets: tests here are about other behaviour.
    emu = Emulator(latency_scale=0.0, page_size=3, throttle_scale=100)
    await emu.start(host="127.0.0.1", port=0)
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def arm(emulator: Emulator) -> AsyncIterator[Arm]:
    clients = make_arm(emulator.url, emulator.ca_path, emulator)
    try:
        yield clients
    finally:
        await clients.close()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


# REST example conformance summary ----------------------------------------------------------------------------------

_CONFORMANCE_TEST = "test_conformance.py::test_example["
#: example id -> "passed" | "failed" | "skipped", for the examples run in this session.
_conformance: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _CONFORMANCE_TEST not in report.nodeid:
        return
    name = report.nodeid.split("[", 1)[1].removesuffix("]")
    if report.failed:
        _conformance[name] = "failed"
    elif report.skipped:
        _conformance[name] = "skipped"
    elif report.when == "call":
        _conformance.setdefault(name, "passed")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _conformance:
        return
    module = sys.modules.get("test_conformance")
    unsupported: dict[str, str] = getattr(module, "UNSUPPORTED", {})
    ran = [n for n, outcome in _conformance.items() if outcome != "skipped"]
    passed = [n for n, outcome in _conformance.items() if outcome == "passed"]
    names = ", ".join(f"{p.rsplit('/', 1)[-1].removesuffix('.json')} ({reason})" for p, reason in sorted(unsupported.items()))
    line = (f"REST example conformance: {len(example_files())} examples, {len(ran)} run, {len(passed)} passed, "
            f"{len(unsupported)} unsupported" + (f": {names}" if names else ""))
    failed = sorted(n for n, outcome in _conformance.items() if outcome == "failed")
    terminalreporter.write_line(line + (f"; failed: {', '.join(failed)}" if failed else ""))
