"""Conformance with the official Azure REST API examples (shared/azure-rest-examples).

Each example request is sent (placeholders replaced by real ids of this emulator) and every key path of the
example's response body must exist in the emulator's answer.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from emulator_helpers import Arm, create_network

#: ``shared/`` sits beside the clone (``<clone>/../shared``); a missing folder fails the tests, it never skips them.
EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "azure-rest-examples"
#: What the examples' ``{your-password}`` placeholder becomes (the placeholder fails ARM's complexity rules).
EXAMPLE_PASSWORD = "Examp1e-Passw0rd!"

#: Response keys the emulator does not model (yet), or that only appear in a different state than the example's
#: (a fresh public IP has no ``ipConfiguration`` until a NIC uses it).
NOT_MODELED = {"properties.ipConfiguration", "properties.ipConfiguration.id"}


def key_paths(document: Any, prefix: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(document, dict):
        for key, value in document.items():
            found.add(prefix + key)
            found |= key_paths(value, prefix + key + ".")
    elif isinstance(document, list):
        for item in document:
            found |= key_paths(item, prefix + "[].")
    return found


async def send(arm: Arm, method: str, path: str, body: Any = None, api_version: str = "2025-05-01") -> tuple[int, Any]:
    context = ssl.create_default_context(cafile=arm.emulator.ca_path)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async with session.request(
            method,
            f"{arm.emulator.url}{path}?api-version={api_version}",
            json=body,
            headers={"Authorization": "Bearer t"},
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None


def load(relative: str) -> dict[str, Any]:
    assert EXAMPLES.is_dir(), f"REST examples not found at {EXAMPLES} (shared/ must sit beside the clone)"
    return json.loads((EXAMPLES / relative).read_text())


async def check(arm: Arm, relative: str, path: str, request: Any) -> None:
    example = load(relative)
    status, _ = await send(arm, "PUT", path, request, example["parameters"]["api-version"])
    assert status in (200, 201), (relative, status, _)
    status, body = await send(arm, "GET", path, api_version=example["parameters"]["api-version"])
    assert status == 200
    expected_status = "201" if "201" in example["responses"] else "200"
    missing = key_paths(example["responses"][expected_status]["body"]) - key_paths(body) - NOT_MODELED
    assert not missing, (relative, sorted(missing))


VM_EXAMPLES = [
    "VirtualMachine_Create_WithPasswordAuthentication.json",
    "VirtualMachine_Create_WithBootDiagnostics.json",
    "VirtualMachine_Create_WithUserData.json",
    "VirtualMachine_Create_WithEmptyDataDisks.json",
    "VirtualMachine_Create_FromASharedGalleryImage.json",
]


@pytest.mark.parametrize("name", VM_EXAMPLES)
async def test_vm_create_examples(arm: Arm, name: str) -> None:
    network = await create_network(arm, "myResourceGroup")
    request = load(f"compute/virtualMachines/{name}")["parameters"]["parameters"]
    request["location"] = "westeurope"
    request["properties"]["osProfile"]["adminUsername"] = "azureuser"
    if "adminPassword" in request["properties"]["osProfile"]:
        request["properties"]["osProfile"]["adminPassword"] = EXAMPLE_PASSWORD
    for nic in request["properties"]["networkProfile"]["networkInterfaces"]:
        nic["id"] = network["nic"].id
    path = f"/subscriptions/{arm.subscription}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/virtualMachines/myVM"
    await check(arm, f"compute/virtualMachines/{name}", path, request)


async def test_resource_group_example(arm: Arm) -> None:
    request = load("resources/CreateResourceGroup.json")["parameters"]["parameters"]
    path = f"/subscriptions/{arm.subscription}/resourcegroups/my-resource-group"
    await check(arm, "resources/CreateResourceGroup.json", path, request)


async def test_network_examples(arm: Arm) -> None:
    await arm.resources.resource_groups.create_or_update("rg1", {"location": "eastus"})
    base = f"/subscriptions/{arm.subscription}/resourceGroups/rg1/providers/Microsoft.Network"
    await check(arm, "network/VirtualNetworkCreate.json", f"{base}/virtualNetworks/plain-vnet",
                load("network/VirtualNetworkCreate.json")["parameters"]["parameters"])
    await check(arm, "network/VirtualNetworkCreateSubnet.json", f"{base}/virtualNetworks/rg1-vnet",
                load("network/VirtualNetworkCreateSubnet.json")["parameters"]["parameters"])
    await check(arm, "network/SubnetCreate.json", f"{base}/virtualNetworks/plain-vnet/subnets/subnet1",
                load("network/SubnetCreate.json")["parameters"]["subnetParameters"])
    await check(arm, "network/PublicIpAddressCreateDefaults.json", f"{base}/publicIPAddresses/test-ip",
                load("network/PublicIpAddressCreateDefaults.json")["parameters"]["parameters"])
    await check(arm, "network/NetworkSecurityGroupCreateWithRule.json", f"{base}/networkSecurityGroups/testnsg",
                load("network/NetworkSecurityGroupCreateWithRule.json")["parameters"]["parameters"])
    nic_request = json.loads(
        json.dumps(load("network/NetworkInterfaceCreate.json")["parameters"]["parameters"])
        .replace("/subscriptions/subid/resourceGroups/rg1", f"/subscriptions/{arm.subscription}/resourceGroups/rg1")
        .replace("/virtualNetworks/rg1-vnet/subnets/default", "/virtualNetworks/rg1-vnet/subnets/test-1")
    )
    await check(arm, "network/NetworkInterfaceCreate.json", f"{base}/networkInterfaces/test-nic", nic_request)
