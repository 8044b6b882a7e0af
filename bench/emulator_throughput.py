"""Throughput of the ARM emulator: simple GETs per second over HTTPS with a bearer token.

Starts ``python -m azure_arm_emulator`` as a subprocess (``--latency-scale 0 --no-throttling``), creates a
VM with plain REST calls, then:

1. throttling off: ``--requests`` GETs of the VM by ``--concurrency`` concurrent aiohttp clients; requests/s and
   p50/p99 latency;
2. throttling on at scale 1 (switched through ``PUT /_admin/config``): the same burst, to show how much of it
   Azure's buckets would answer with 429 (the per-VM ``LowCostGetVM`` bucket holds 36 tokens and refills 12/min;
   ARM's reads bucket holds 250 and refills 25/s), with the counts per rejecting policy from the request log;
3. throttling on at scale 1000: buckets far too big to run dry, to show what the bookkeeping costs.

Usage: ``.venv/bin/python bench/emulator_throughput.py [--requests 5000] [--concurrency 32] [--in-process]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import ssl
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

SUB = "00000000-0000-0000-0000-0000000000be"
RG = f"/subscriptions/{SUB}/resourceGroups/bench"
API = "api-version=2025-04-01"
SSH_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCeClRAk2ipUs/l5voIsDC5q9RI+YSRd1Bvd/O+axgY4WiBzG+4FwJWZm bench"


@dataclass
class Result:
    label: str
    wall: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    policies: Counter[str] = field(default_factory=Counter)
    timed_out: bool = False

    @property
    def rate(self) -> float:
        return sum(self.statuses.values()) / self.wall if self.wall else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Server:
    """The emulator, as a subprocess (default) or in this process's event loop."""

    def __init__(self, in_process: bool) -> None:
        self.in_process = in_process
        self.url = ""
        self.ca = ""
        self._process: subprocess.Popen[str] | None = None
        self._emulator: Any = None

    async def start(self) -> None:
        if self.in_process:
            from azure_arm_emulator import Emulator

            self._emulator = Emulator(latency_scale=0.0, throttling=False)
            await self._emulator.start()
            self.url, self.ca = self._emulator.url, self._emulator.ca_path
            return
        self._process = subprocess.Popen(
            [sys.executable, "-m", "azure_arm_emulator", "--port", "0", "--latency-scale", "0",
             "--no-throttling"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._process.stdout is not None
        deadline = time.monotonic() + 30
        while not (self.url and self.ca):
            if time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start within 30 s")
            line = await asyncio.get_running_loop().run_in_executor(None, self._process.stdout.readline)
            if not line:
                raise RuntimeError("the emulator exited")
            if match := re.search(r"listening on (https://\S+)", line):
                self.url = match.group(1)
            if match := re.search(r"CA certificate: (\S+)", line):
                self.ca = match.group(1)

    async def stop(self) -> None:
        if self._emulator is not None:
            await self._emulator.stop()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)


async def token(session: aiohttp.ClientSession, url: str) -> str:
    async with session.post(f"{url}/bench-tenant/oauth2/v2.0/token", data={
        "client_id": "bench", "client_secret": "x", "grant_type": "client_credentials",
        "scope": "https://management.azure.com/.default",
    }) as response:
        response.raise_for_status()
        return str((await response.json())["access_token"])


async def call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with session.request(method, url, json=body) as response:
        text = await response.text()
        return response.status, text


async def create_vm(session: aiohttp.ClientSession, url: str) -> str:
    """Resource group, VNet, NIC and VM with plain REST calls (latency scale 0: done on the first poll)."""
    net = f"{RG}/providers/Microsoft.Network"
    steps: list[tuple[str, dict[str, Any]]] = [
        (RG, {"location": "westeurope"}),
        (f"{net}/virtualNetworks/vnet", {"location": "westeurope", "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.1.0/24"}}]}}),
        (f"{net}/networkInterfaces/nic", {"location": "westeurope", "properties": {"ipConfigurations": [
            {"name": "ip", "properties": {"subnet": {"id": f"{net}/virtualNetworks/vnet/subnets/default"}}}]}}),
        (f"{RG}/providers/Microsoft.Compute/virtualMachines/vm", {"location": "westeurope", "properties": {
            "hardwareProfile": {"vmSize": "Standard_B2s"},
            "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                                  "sku": "22_04-lts-gen2", "version": "latest"}},
            "osProfile": {"computerName": "vm", "adminUsername": "azureuser", "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": SSH_KEY}]}}},
            "networkProfile": {"networkInterfaces": [{"id": f"{net}/networkInterfaces/nic"}]}}}),
    ]
    for path, body in steps:
        status, text = await call(session, "PUT", f"{url}{path}?{API}", body)
        if status not in (200, 201):
            raise RuntimeError(f"PUT {path}: {status} {text}")
        for _ in range(100):  # wait for the long-running operation (instant at latency scale 0)
            status, text = await call(session, "GET", f"{url}{path}?{API}")
            if '"provisioningState": "Succeeded"' in text or status == 200 and "provisioningState" not in text:
                break
            await asyncio.sleep(0.01)
    return f"{RG}/providers/Microsoft.Compute/virtualMachines/vm"


async def burst(label: str, session: aiohttp.ClientSession, target: str, requests: int, concurrency: int,
                timeout: float) -> Result:
    result = Result(label, 0.0)
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            async with session.get(target) as response:
                await response.read()
                result.statuses[response.status] += 1
            result.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    result.timed_out = bool(pending)
    result.wall = time.perf_counter() - started
    for task in done:
        task.result()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000, help="GETs per phase (default 5000)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--timeout", type=float, default=60.0, help="time bound of each phase in seconds")
    parser.add_argument("--in-process", action="store_true", help="run the emulator in this process's event loop")
    args = parser.parse_args()
    console = Console(width=160)
    server = Server(args.in_process)
    await server.start()
    try:
        context = ssl.create_default_context(cafile=server.ca)
        connector = aiohttp.TCPConnector(ssl=context, limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as anonymous:
            bearer = await token(anonymous, server.url)
        connector = aiohttp.TCPConnector(ssl=context, limit=args.concurrency)
        headers = {"Authorization": f"Bearer {bearer}"}
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            vm = await create_vm(session, server.url)
            target = f"{server.url}{vm}?{API}"
            await burst("warm-up", session, target, 200, args.concurrency, args.timeout)
            off = await burst("throttling off", session, target, args.requests, args.concurrency, args.timeout)
            status, _ = await call(session, "PUT", f"{server.url}/_admin/config",
                                   {"throttling": True, "throttle_scale": 1.0})
            assert status == 200
            await call(session, "DELETE", f"{server.url}/_admin/requests")
            on = await burst("throttling on, scale 1", session, target, args.requests, args.concurrency, args.timeout)
            async with session.get(f"{server.url}/_admin/requests") as response:
                log = (await response.json())["requests"]
            for entry in log:
                if entry["status"] == 429:
                    on.policies[entry["policy"]] += 1
            status, _ = await call(session, "PUT", f"{server.url}/_admin/config", {"throttle_scale": 1000.0})
            assert status == 200
            big = await burst("throttling on, scale 1000", session, target, args.requests, args.concurrency,
                              args.timeout)
    finally:
        await server.stop()

    table = Table(title=f"ARM emulator: GET virtualMachines/vm, {args.requests} requests, {args.concurrency} clients, "
                        f"emulator {'in-process' if args.in_process else 'subprocess'}, {os.cpu_count()} CPUs")
    for column in ("phase", "requests/s", "p50 ms", "p99 ms", "200", "429", "429 %", "429 by policy", "wall s"):
        table.add_column(column, justify="right" if column not in ("phase", "429 by policy") else "left")
    for result in (off, on, big):
        total = sum(result.statuses.values()) or 1
        table.add_row(
            result.label + (" (timed out)" if result.timed_out else ""),
            f"{result.rate:,.0f}",
            f"{result.percentile(0.50):.1f}",
            f"{result.percentile(0.99):.1f}",
            str(result.statuses.get(200, 0)),
            str(result.statuses.get(429, 0)),
            f"{100 * result.statuses.get(429, 0) / total:.1f}",
            ", ".join(f"{k}: {v}" for k, v in result.policies.most_common()) or "-",
            f"{result.wall:.2f}",
        )
    console.print(table)
    console.print(f"mean latency (off): {statistics.fmean(off.latencies) * 1000:.1f} ms; "
                  f"target >= 500 GETs/s: {'met' if off.rate >= 500 else 'NOT met'}")


if __name__ == "__main__":
    asyncio.run(main())
