"""Fault injection and the request log, driven through AdminClient while the real SDK talks to the emulator."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError
from emulator_helpers import Arm, create_network, vm_body

from azure_arm_emulator.admin import AdminError

VM_PATH = r"/virtualMachines/vm1$"


async def test_throttled_put_is_retried(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    throttle_body = {
        "error": {
            "code": "OperationNotAllowed",
            "message": "The server rejected the request because too many requests have been received for this subscription.",
            "details": [{"code": "TooManyRequests", "target": "PutVM3Min"}],
        }
    }
    fault_id = await arm.admin.inject_fault(
        method="PUT", path=VM_PATH, status=429, body=throttle_body, headers={"Retry-After": "1"}, count=1
    )
    await arm.admin.clear_requests()
    started = time.monotonic()
    vm = await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id))).result()
    assert vm.provisioning_state == "Succeeded"
    assert time.monotonic() - started >= 0.9  # Retry-After honoured
    puts = [r for r in await arm.admin.requests() if r["method"] == "PUT"]
    assert [r["status"] for r in puts] == [429, 201]
    assert puts[0]["fault"] == fault_id
    assert await arm.admin.count(method="PUT", operation="Microsoft.Compute/virtualMachines/write") == 2
    faults = await arm.admin.faults()
    assert faults[0]["hits"] == 1 and faults[0]["remaining"] == 0


async def test_lro_failure_allocation_failed(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    await arm.admin.inject_fault(
        method="PUT",
        path=VM_PATH,
        lro_failure={"code": "AllocationFailed", "message": "Allocation failed. We do not have sufficient capacity."},
        count=1,
    )
    with pytest.raises(HttpResponseError) as exc_info:
        await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id))).result()
    assert exc_info.value.error.code == "AllocationFailed"
    vm = await arm.compute.virtual_machines.get("rg", "vm1", expand="instanceView")
    assert vm.provisioning_state == "Failed"
    assert vm.instance_view.statuses[0].code == "ProvisioningState/failed/AllocationFailed"
    assert vm.instance_view.statuses[0].level == "Error"
    # the fault was used up: retrying the PUT succeeds and the VM runs
    vm = await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id))).result()
    assert vm.provisioning_state == "Succeeded"
    view = await arm.compute.virtual_machines.instance_view("rg", "vm1")
    assert view.statuses[1].code == "PowerState/running"


async def test_count_limits_server_errors(arm: Arm) -> None:
    await arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    await arm.admin.inject_fault(method="GET", path=r"/resourcegroups/rg$", status=503, count=2)
    await arm.admin.clear_requests()
    group = await arm.resources.resource_groups.get("rg")  # retried by azure-core (retry_status=3)
    assert group.name == "rg"
    statuses = [r["status"] for r in await arm.admin.requests() if r["method"] == "GET"]
    assert statuses == [503, 503, 200]
    await arm.admin.inject_fault(method="GET", path=r"/resourcegroups/rg$", status=404, count=1, probability=0.0)
    assert (await arm.resources.resource_groups.get("rg")).name == "rg"  # probability 0 never fires


async def test_dropped_connection_is_retried(arm: Arm) -> None:
    await arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    await arm.admin.inject_fault(method="GET", path=r"/resourcegroups/rg$", drop=True, count=1)
    await arm.admin.clear_requests()
    assert (await arm.resources.resource_groups.get("rg")).name == "rg"
    gets = [r for r in await arm.admin.requests() if r["method"] == "GET"]
    assert [r["status"] for r in gets] == [None, 200]


async def test_delay_and_fault_management(arm: Arm) -> None:
    await arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    fault_id = await arm.admin.inject_fault(method="GET", path=r"/resourcegroups/rg$", delay=0.3)
    started = time.monotonic()
    await arm.resources.resource_groups.get("rg")
    assert time.monotonic() - started >= 0.3
    assert [f["id"] for f in await arm.admin.faults()] == [fault_id]
    await arm.admin.remove_fault(fault_id)
    assert await arm.admin.faults() == []
    await arm.admin.inject_fault(status=500, path="/nothing-matches-this")
    await arm.admin.clear_faults()
    assert await arm.admin.faults() == []
    with pytest.raises(AdminError):
        await arm.admin.inject_fault(path="(unclosed")
    with pytest.raises(AdminError):
        await arm.admin.inject_fault(path=".*")  # no effect requested


async def test_request_log(arm: Arm) -> None:
    await arm.admin.clear_requests()
    network = await create_network(arm, "rg")
    await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id))).result()
    await (await arm.compute.virtual_machines.begin_start("rg", "vm1")).result()
    entries = await arm.admin.requests()
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    writes = [e for e in entries if e["operation"] == "Microsoft.Compute/virtualMachines/write"]
    assert len(writes) == 1 and writes[0]["resource_id"] == arm.id("rg", "Microsoft.Compute/virtualMachines", "vm1")
    assert writes[0]["status"] == 201 and writes[0]["query"]["api-version"]
    assert await arm.admin.count(operation="Microsoft.Compute/virtualMachines/start/action") == 1
    assert await arm.admin.count(operation="virtualMachines/start/action") == 1
    polls = [e for e in entries if e["operation"] == "Microsoft.Compute/locations/operations/read"]
    assert polls and all(p["resource_id"] == writes[0]["resource_id"] for p in polls)
    assert await arm.admin.count(method="PUT", path_contains="networkInterfaces") == 1
    assert await arm.admin.count(operation="oauth2/token") <= 1
    await arm.admin.clear_requests()
    assert await arm.admin.count() == 0
