"""The operator's own ARM clients (AzureClients) against the emulator with Azure's real limits: a burst of reads
larger than ARM's regional read bucket (250, refilling 25/s) gets no 429 with the client-side throttle, and some
without it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from azvm_sandbox.harness import Environment
from e2e_helpers import CRDS

from azure_vm_operator.azure.clients import AzureClients

BURST = 500
WITH_THROTTLE = "00000000-0000-0000-0000-00000000c0de"
WITHOUT_THROTTLE = "00000000-0000-0000-0000-00000000f00d"  # ARM's buckets are per subscription: no shared state


@pytest.fixture
def azure_limits(tmp_path):
    environment = Environment(workdir=tmp_path, crds_dir=CRDS, throttling=True, throttle_scale=1.0)
    yield environment
    environment.close()


async def burst(config: Any, subscription: str) -> tuple[int, list[BaseException], float]:
    """Create a resource group, then GET it BURST times at once; returns (successes, errors, seconds)."""
    clients = AzureClients(config)
    try:
        groups = clients.for_subscription(subscription).resources.resource_groups
        await groups.create_or_update("burst-rg", {"location": "westeurope"})
        started = time.monotonic()
        results = await asyncio.gather(*(groups.get("burst-rg") for _ in range(BURST)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        return len(results) - len(errors), errors, time.monotonic() - started
    finally:
        await clients.close()


def answers(env: Environment, subscription: str) -> list[int]:
    return [r["status"] for r in env.arm_requests()
            if subscription in r["path"] and r["method"] == "GET" and r["path"].lower().endswith("/burst-rg")]


def test_a_burst_of_reads_waits_for_tokens_instead_of_being_throttled(azure_limits):
    ok, errors, seconds = asyncio.run(burst(azure_limits.operator_config(arm_throttle=True), WITH_THROTTLE))
    statuses = answers(azure_limits, WITH_THROTTLE)
    assert (ok, errors) == (BURST, [])
    assert len(statuses) == BURST and statuses.count(429) == 0, sorted(set(statuses))
    # 225 at once (25 kept in reserve), then 25 a second: the time ARM's bucket needs, and not much more
    assert (BURST - 250) / 25 <= seconds <= (BURST - 250) / 25 + 5

    asyncio.run(burst(azure_limits.operator_config(arm_throttle=False), WITHOUT_THROTTLE))
    statuses = answers(azure_limits, WITHOUT_THROTTLE)
    assert statuses.count(429) > 0, statuses  # the same burst without the throttle: ARM says no (azure-core retries)
