"""Long-running operation protocol: headers, latency model, intermediate states, continuation tokens."""

from __future__ import annotations

import ssl

import aiohttp
from emulator_helpers import Arm, create_network, vm_body, wait_for


async def put_raw(arm: Arm, path: str, body: dict) -> tuple[int, dict[str, str], dict]:
    context = ssl.create_default_context(cafile=arm.emulator.ca_path)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async with session.put(
            f"{arm.emulator.url}{path}?api-version=2025-04-01", json=body, headers={"Authorization": "Bearer t"}
        ) as response:
            return response.status, dict(response.headers), await response.json()


async def test_lro_headers_and_instant_completion(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    path = f"/subscriptions/{arm.subscription}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
    status, headers, body = await put_raw(arm, path, vm_body(network["nic"].id))
    assert status == 201
    assert body["properties"]["provisioningState"] == "Creating"
    operation_url = headers["Azure-AsyncOperation"]
    assert operation_url.startswith(
        f"{arm.emulator.url}/subscriptions/{arm.subscription}/providers/Microsoft.Compute/locations/westeurope/operations/"
    )
    assert "api-version=2025-04-01" in operation_url
    assert headers["Retry-After"] == "0"
    # latency_scale 0: the first look already sees the final state
    vm = await arm.compute.virtual_machines.get("rg", "vm1")
    assert vm.provisioning_state == "Succeeded"


async def test_scaled_latency_shows_intermediate_states(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    arm.emulator.latency_scale = 0.02  # VM create ~0.6 s, power off ~0.2 s
    poller = await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id))
    vm = await arm.compute.virtual_machines.get("rg", "vm1", expand="instanceView")
    assert vm.provisioning_state == "Creating"
    codes = [s.code for s in vm.instance_view.statuses]
    assert codes == ["ProvisioningState/creating", "PowerState/starting"]
    assert poller.status() == "InProgress"
    result = await poller.result()
    assert result.provisioning_state == "Succeeded"
    assert await arm.admin.count(operation="operations/read") >= 2  # polled more than once

    poller = await arm.compute.virtual_machines.begin_power_off("rg", "vm1")
    view = await arm.compute.virtual_machines.instance_view("rg", "vm1")
    assert [s.code for s in view.statuses] == ["ProvisioningState/updating", "PowerState/stopping"]
    await poller.result()

    async def stopped() -> bool:
        view = await arm.compute.virtual_machines.instance_view("rg", "vm1")
        return [s.code for s in view.statuses] == ["ProvisioningState/succeeded", "PowerState/stopped"]

    await wait_for(stopped, timeout=5, what="VM stopped")


async def test_state_advances_on_plain_get(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    arm.emulator.latency_scale = 0.01
    await arm.admin.clear_requests()
    await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id))

    async def succeeded() -> bool:
        return (await arm.compute.virtual_machines.get("rg", "vm1")).provisioning_state == "Succeeded"

    await wait_for(succeeded, timeout=5, what="VM provisioned without polling the operation")
    assert await arm.admin.count(operation="operations/read") == 0


async def test_continuation_token(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    arm.emulator.latency_scale = 0.02
    body = vm_body(network["nic"].id)
    poller = await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", body)
    token = poller.continuation_token()
    resumed = await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", body, continuation_token=token)
    vm = await resumed.result()
    assert vm.provisioning_state == "Succeeded"


async def test_realistic_retry_after(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    arm.emulator.latency_scale = 1.0
    path = f"/subscriptions/{arm.subscription}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
    status, headers, _ = await put_raw(arm, path, vm_body(network["nic"].id))
    assert status == 201 and 1 <= int(headers["Retry-After"]) <= 10
    operation = arm.emulator.engine.get(headers["Azure-AsyncOperation"].split("/operations/")[1].split("?")[0])
    assert operation is not None and 29 < operation.duration < 31
