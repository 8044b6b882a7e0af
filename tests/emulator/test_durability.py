"""Durable state: restarts with the same state directory, in-flight operations resuming, and kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from emulator_helpers import create_network, make_arm, vm_body, wait_for

from azure_arm_emulator import Emulator


async def test_restart_keeps_resources(state_dir: Path) -> None:
    first = Emulator(state_dir=state_dir)
    await first.start()
    arm = make_arm(first.url, first.ca_path, first)
    network = await create_network(arm, "rg")
    vm = await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id))).result()
    await (await arm.compute.virtual_machines.begin_deallocate("rg", "vm1")).result()
    ca_before = Path(first.ca_path).read_bytes()
    port = first.port
    await arm.close()
    await first.stop()

    second = Emulator(state_dir=state_dir)
    await second.start(port=port)
    try:
        assert Path(second.ca_path).read_bytes() == ca_before
        arm = make_arm(second.url, second.ca_path, second)
        again = await arm.compute.virtual_machines.get("rg", "vm1", expand="instanceView")
        assert again.vm_id == vm.vm_id
        assert again.instance_view.statuses[1].code == "PowerState/deallocated"
        nic = await arm.network.network_interfaces.get("rg", "nic1")
        assert nic.virtual_machine.id == vm.id
        assert nic.ip_configurations[0].private_ip_address == "10.0.1.4"
        pip = await arm.network.public_ip_addresses.get("rg", "nic1-ip")
        assert pip.ip_address == network["pip"].ip_address
        # allocation state survives too: the next NIC gets the next address, the next public IP a new one
        second_nic = await (
            await arm.network.network_interfaces.begin_create_or_update(
                "rg",
                "nic2",
                {"location": "westeurope", "properties": {"ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": network["subnet"].id}}}]}},
            )
        ).result()
        assert second_nic.ip_configurations[0].private_ip_address == "10.0.1.5"
        await arm.close()
    finally:
        await second.stop()


async def test_in_flight_operation_resumes_after_restart(state_dir: Path) -> None:
    first = Emulator(state_dir=state_dir, latency_scale=0.0)
    await first.start()
    arm = make_arm(first.url, first.ca_path, first)
    network = await create_network(arm, "rg")
    first.latency_scale = 0.04  # VM create ~1.2 s
    body = vm_body(network["nic"].id)
    poller = await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", body)
    token = poller.continuation_token()
    port = first.port
    await arm.close()
    await first.stop()

    second = Emulator(state_dir=state_dir, latency_scale=0.0)
    await second.start(port=port)
    try:
        arm = make_arm(second.url, second.ca_path, second)
        vm = await arm.compute.virtual_machines.get("rg", "vm1")
        assert vm.provisioning_state == "Creating"  # still in flight: its persisted start time + duration decide
        resumed = await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", body, continuation_token=token)
        done = await asyncio.wait_for(resumed.result(), timeout=10)
        assert done.provisioning_state == "Succeeded"
        view = await arm.compute.virtual_machines.instance_view("rg", "vm1")
        assert view.statuses[1].code == "PowerState/running"
        await arm.close()
    finally:
        await second.stop()


async def _start_process(state_dir: Path, port: int = 0, latency: str = "0") -> tuple[asyncio.subprocess.Process, str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "azure_arm_emulator",
        "--port",
        str(port),
        "--state-dir",
        str(state_dir),
        "--latency-scale",
        latency,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    url = ca = ""

    async def read_banner() -> None:
        nonlocal url, ca
        while not (url and ca):
            line = (await process.stdout.readline()).decode()  # type: ignore[union-attr]
            if not line:
                raise AssertionError("emulator process exited early")
            if "export AZURE_ENDPOINT=" in line:
                url = line.split("=", 1)[1].strip()
            if "export AZURE_CA=" in line:
                ca = line.split("=", 1)[1].strip()

    await asyncio.wait_for(read_banner(), timeout=20)
    return process, url, ca


async def test_kill_9_keeps_acknowledged_writes(state_dir: Path) -> None:
    process, url, ca = await _start_process(state_dir)
    try:
        arm = make_arm(url, ca)
        network = await create_network(arm, "rg")
        vm = await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id))).result()
        await arm.admin.set_latency_scale(0.05)  # power off ~0.5 s: still in flight at the kill
        poller = await arm.compute.virtual_machines.begin_power_off("rg", "vm1")
        token = poller.continuation_token()
        await arm.resources.resource_groups.create_or_update("last-write", {"location": "westeurope"})
        await arm.close()
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    port = int(url.rsplit(":", 1)[1])
    process, url2, ca2 = await _start_process(state_dir, port=port)
    try:
        assert (url2, ca2) == (url, ca)
        arm = make_arm(url, ca)
        assert await arm.resources.resource_groups.check_existence("last-write")
        again = await arm.compute.virtual_machines.get("rg", "vm1")
        assert again.vm_id == vm.vm_id
        resumed = await arm.compute.virtual_machines.begin_power_off("rg", "vm1", continuation_token=token)
        await asyncio.wait_for(resumed.result(), timeout=10)

        async def stopped() -> bool:
            view = await arm.compute.virtual_machines.instance_view("rg", "vm1")
            return view.statuses[1].code == "PowerState/stopped"

        await wait_for(stopped, timeout=5, what="power off to complete after kill -9")
        await arm.close()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except asyncio.TimeoutError:
            process.kill()
            pytest.fail("emulator did not stop on SIGTERM")
    assert process.returncode == 0




async def test_parallel_writes_with_durable_state(state_dir: Path) -> None:
    emulator = Emulator(state_dir=state_dir)
    await emulator.start()
    try:
        arm = make_arm(emulator.url, emulator.ca_path, emulator)
        network = await create_network(arm, "rg", with_public_ip=False)
        subnet_id = network["subnet"].id

        async def create(index: int) -> object:
            nic = await (
                await arm.network.network_interfaces.begin_create_or_update(
                    "rg",
                    f"p{index}",
                    {"location": "westeurope", "properties": {"ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": subnet_id}}}]}},
                )
            ).result()
            poller = await arm.compute.virtual_machines.begin_create_or_update("rg", f"pvm{index}", vm_body(nic.id))
            return await poller.result()

        vms = await asyncio.gather(*(create(i) for i in range(10)))
        assert {vm.provisioning_state for vm in vms} == {"Succeeded"}  # type: ignore[attr-defined]
        addresses = [nic.ip_configurations[0].private_ip_address async for nic in arm.network.network_interfaces.list("rg")]
        assert len(addresses) == 11 and len(set(addresses)) == 11
        await arm.close()
    finally:
        await emulator.stop()
    reopened = Emulator(state_dir=state_dir)
    await reopened.start()
    try:
        assert len(reopened.store.list("Microsoft.Compute/virtualMachines")) == 10
    finally:
        await reopened.stop()
