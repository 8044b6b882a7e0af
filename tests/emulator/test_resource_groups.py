"""Resource groups, subscriptions, authentication and routing errors through the real SDK."""

from __future__ import annotations

import ssl

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from emulator_helpers import LOCATION, Arm, create_network, vm_body


async def raw(arm: Arm, method: str, path: str, *, token: bool = True, body: bytes | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer test-token"
    context = ssl.create_default_context(cafile=arm.emulator.ca_path)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async with session.request(method, arm.emulator.url + path, headers=headers, data=body) as response:
            text = await response.text()
            return response.status, (await response.json(content_type=None)) if text else {}


async def test_create_get_update_list_head(arm: Arm) -> None:
    created = await arm.resources.resource_groups.create_or_update("rg-a", {"location": "West Europe", "tags": {"a": "1"}})
    assert created.id == arm.rg_id("rg-a")
    assert created.location == "westeurope"
    assert created.type == "Microsoft.Resources/resourceGroups"
    assert created.properties.provisioning_state == "Succeeded"
    updated = await arm.resources.resource_groups.create_or_update("rg-a", {"location": LOCATION, "tags": {"b": "2"}})
    assert updated.tags == {"b": "2"}
    fetched = await arm.resources.resource_groups.get("rg-a")
    assert fetched.tags == {"b": "2"}
    patched = await arm.resources.resource_groups.update("rg-a", {"tags": {"c": "3"}})
    assert patched.tags == {"c": "3"}
    assert await arm.resources.resource_groups.check_existence("rg-a") is True
    assert await arm.resources.resource_groups.check_existence("missing") is False
    for index in range(4):
        await arm.resources.resource_groups.create_or_update(f"rg-{index}", {"location": LOCATION})
    names = [group.name async for group in arm.resources.resource_groups.list()]
    assert sorted(names) == ["rg-0", "rg-1", "rg-2", "rg-3", "rg-a"]  # page size 3: nextLink followed


async def test_location_change_and_missing_group(arm: Arm) -> None:
    await arm.resources.resource_groups.create_or_update("rg-b", {"location": LOCATION})
    with pytest.raises(ResourceExistsError) as exc_info:
        await arm.resources.resource_groups.create_or_update("rg-b", {"location": "eastus"})
    assert exc_info.value.error.code == "InvalidResourceGroupLocation"
    with pytest.raises(ResourceNotFoundError) as not_found:
        await arm.resources.resource_groups.get("nope")
    assert not_found.value.error.code == "ResourceGroupNotFound"


async def test_delete_cascades(arm: Arm) -> None:
    network = await create_network(arm, "rg-c")
    await (await arm.compute.virtual_machines.begin_create_or_update("rg-c", "vm1", vm_body(network["nic"].id))).result()
    await arm.resources.resource_groups.create_or_update("rg-keep", {"location": LOCATION})
    listed = [r.name async for r in arm.resources.resources.list_by_resource_group("rg-c")]
    assert sorted(n for n in listed if "_OsDisk_1_" not in n) == ["nic1", "nic1-ip", "vm1", "vnet1"]
    assert [n for n in listed if n.startswith("vm1_OsDisk_1_")]  # the OS disk is a resource too, as in ARM
    await (await arm.resources.resource_groups.begin_delete("rg-c")).result()
    assert await arm.resources.resource_groups.check_existence("rg-c") is False
    assert await arm.resources.resource_groups.check_existence("rg-keep") is True
    with pytest.raises(ResourceNotFoundError):
        await arm.compute.virtual_machines.get("rg-c", "vm1")
    assert [vm async for vm in arm.compute.virtual_machines.list_all()] == []
    assert [nic async for nic in arm.network.network_interfaces.list_all()] == []
    assert [r for r in await arm.admin.resources() if "rg-c" in r["id"].lower()] == []


async def test_authentication_api_version_and_routing_errors(arm: Arm) -> None:
    sub = f"/subscriptions/{arm.subscription}"
    status, body = await raw(arm, "GET", f"{sub}/resourcegroups?api-version=2025-04-01", token=False)
    assert status == 401 and body["error"]["code"] == "AuthenticationFailed"
    status, body = await raw(arm, "GET", f"{sub}/resourcegroups")
    assert status == 400 and body["error"]["code"] == "MissingApiVersionParameter"
    status, body = await raw(arm, "GET", f"{sub}/resourceGroups/x/providers/Microsoft.Compute/widgets?api-version=1")
    assert status == 404 and body["error"]["code"] == "InvalidResourceType"
    await arm.resources.resource_groups.create_or_update("rg-d", {"location": LOCATION})
    path = f"{sub}/resourceGroups/rg-d/providers/Microsoft.Compute/virtualMachines/vm?api-version=2025-04-01"
    status, body = await raw(arm, "PUT", path, body=b"{not json")
    assert status == 400 and body["error"]["code"] == "InvalidRequestContent"
    status, body = await raw(arm, "GET", path)
    assert status == 404 and body["error"]["code"] == "ResourceNotFound"
    assert body["error"]["message"].startswith(
        "The Resource 'Microsoft.Compute/virtualMachines/vm' under resource group 'rg-d' was not found."
    )
    status, body = await raw(arm, "GET", f"{sub}?api-version=2022-12-01")
    assert status == 200 and body["subscriptionId"] == arm.subscription and body["state"] == "Enabled"


async def test_sdk_maps_errors(arm: Arm) -> None:
    with pytest.raises(ResourceNotFoundError) as exc_info:
        await arm.compute.virtual_machines.get("nope", "vm")
    assert exc_info.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(HttpResponseError) as bad:
        await arm.resources.resource_groups.create_or_update("bad/name.", {"location": LOCATION})
    assert bad.value.status_code in (400, 404)
