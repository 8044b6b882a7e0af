"""Fixtures for the ARM emulator tests: an emulator per test and the real async Azure SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from emulator_helpers import Arm, make_arm

from azure_vm_operator.emulator import Emulator


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(latency_scale=0.0, page_size=3)
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
