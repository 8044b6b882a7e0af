"""The request log's ``body_paths``: the shape of each JSON request body (its leaf key paths), never its values."""

from __future__ import annotations

import json
import ssl

import aiohttp
from compute_helpers import raw
from emulator_helpers import Arm, create_network, vm_body
from scale_set_helpers import create_vmss, vmss_body

from azure_arm_emulator.faults import body_paths

PASSWORD = "Zq7!unique-Pa55word"


def test_body_paths_are_sorted_leaf_paths_without_values() -> None:
    assert body_paths({"sku": {"capacity": 4}}) == ["sku.capacity"]
    assert body_paths({"tags": {"a": "1"}, "properties": {"x": [{"y": 1}]}}) == ["properties.x[].y", "tags.a"]
    # list elements share one path; lists of values end in []; empty containers are leaves at their own path
    assert body_paths({"instanceIds": ["0", "1"], "x": [{"a": 1}, {"a": 2, "b": None}]}) == [
        "instanceIds[]", "x[].a", "x[].b"]
    assert body_paths({"tags": {}, "zones": []}) == ["tags", "zones"]
    assert body_paths([{"a": 1}]) == ["[].a"]
    for no_shape in (None, {}, [], "text", 3):
        assert body_paths(no_shape) == []


async def test_request_log_records_body_paths_and_never_the_password(arm: Arm) -> None:
    network = await create_network(arm, "rg", with_public_ip=False)
    await arm.admin.clear_requests()
    body = vm_body(network["nic"].id)
    body["properties"]["osProfile"]["adminPassword"] = PASSWORD
    body["properties"]["osProfile"]["customData"] = "I2Nsb3VkLWNvbmZpZw=="
    await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", body)).result()
    await (await arm.compute.virtual_machines.begin_update("rg", "vm1", {"tags": {"team": "web"}})).result()
    await arm.compute.virtual_machines.get("rg", "vm1")

    entries = await arm.admin.requests()
    assert PASSWORD not in json.dumps(entries)
    assert "I2Nsb3VkLWNvbmZpZw==" not in json.dumps(entries)
    put = next(e for e in entries if e["method"] == "PUT")
    assert "properties.osProfile.adminPassword" in put["body_paths"]
    assert "properties.osProfile.linuxConfiguration.ssh.publicKeys[].keyData" in put["body_paths"]
    assert "properties.networkProfile.networkInterfaces[].id" in put["body_paths"]
    assert put["body_paths"] == sorted(put["body_paths"])
    patch = next(e for e in entries if e["method"] == "PATCH")
    assert patch["body_paths"] == ["tags.team"]
    assert all(e["body_paths"] == [] for e in entries if e["method"] == "GET")
    token = [e for e in entries if e["operation"] == "oauth2/token"]
    assert all(e["body_paths"] == [] for e in token)  # a form, not JSON


async def test_scale_set_bodies_and_bodies_that_are_not_json(arm: Arm) -> None:
    network = await create_network(arm, "rg", with_public_ip=False)
    await create_vmss(arm, "rg", "web", vmss_body(network["subnet"].id, capacity=2))
    await arm.admin.clear_requests()
    sets = arm.compute.virtual_machine_scale_sets
    await (await sets.begin_update("rg", "web", {"sku": {"capacity": 4}})).result()
    await (await sets.begin_delete_instances("rg", "web", {"instanceIds": ["0"]})).result()
    vmss_path = arm.id("rg", "Microsoft.Compute/virtualMachineScaleSets", "web")
    status, answer, _ = await raw(arm, "PATCH", vmss_path, None, {"Content-Type": "application/json"})
    assert status == 200, answer  # no body: nothing to change
    status, _, _ = await raw(arm, "POST", f"{vmss_path}/restart")

    entries = [e for e in await arm.admin.requests() if e["method"] in ("PATCH", "POST")]
    assert [e["body_paths"] for e in entries] == [["sku.capacity"], ["instanceIds[]"], [], []]
    await arm.admin.clear_requests()
    context = ssl.create_default_context(cafile=arm.emulator.ca_path)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async with session.patch(f"{arm.emulator.url}{vmss_path}?api-version=2025-04-01", data=b"{not json",
                                 headers={"Authorization": "Bearer t"}) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "InvalidRequestContent"
    (entry,) = await arm.admin.requests()
    assert entry["status"] == 400 and entry["body_paths"] == []
