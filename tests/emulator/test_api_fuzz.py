"""The emulator's API fuzzed (issue #12): malformed JSON, wrong types anywhere in valid bodies, huge bodies,
unknown api-versions and bad headers against its main routes. Every answer is ARM-shaped: a 4xx carries
``{"error": {"code", "message"}}``; never a 500 (which would make the operator's error classification -- and the
tests built on it -- lie)."""

from __future__ import annotations

import copy
import http.client
import json
import ssl
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azure_arm_emulator import Emulator
from azvm_sandbox.harness import LoopThread
from emulator_helpers import SSH_KEY, UBUNTU, vm_body

SUB = "00000000-0000-0000-0000-0000000000f1"
RG = f"/subscriptions/{SUB}/resourceGroups/fuzz-rg"
COMPUTE, NETWORK, RESOURCES = "2025-04-01", "2024-05-01", "2024-03-01"
NIC = f"{RG}/providers/Microsoft.Network/networkInterfaces/nic1"
SUBNET = f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/default"
VMSS = {
    "location": "westeurope", "sku": {"name": "Standard_B2s", "tier": "Standard", "capacity": 2},
    "properties": {"upgradePolicy": {"mode": "Manual"}, "virtualMachineProfile": {
        "storageProfile": {"imageReference": dict(UBUNTU), "osDisk": {"createOption": "FromImage"}},
        "osProfile": {"computerNamePrefix": "ss", "adminUsername": "azureuser", "linuxConfiguration": {
            "disablePasswordAuthentication": True,
            "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": SSH_KEY}]}}},
        "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
            "primary": True, "ipConfigurations": [{"name": "ip", "properties": {"subnet": {"id": SUBNET}}}]}}]}}},
}
# (method, path, api-version, a valid body to mutate)
ROUTES: list[tuple[str, str, str, Any]] = [
    ("PUT", RG, RESOURCES, {"location": "westeurope", "tags": {"a": "b"}}),
    ("PATCH", RG, RESOURCES, {"tags": {"a": "c"}}),
    ("PUT", f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet2", NETWORK,
     {"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
                                               "subnets": [{"name": "s", "properties": {"addressPrefix": "10.1.0.0/24"}}]}}),
    ("PUT", f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/s2", NETWORK,
     {"properties": {"addressPrefix": "10.0.9.0/24"}}),
    ("PUT", f"{RG}/providers/Microsoft.Network/publicIPAddresses/pip2", NETWORK,
     {"location": "westeurope", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}}),
    ("PUT", f"{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg2", NETWORK,
     {"location": "westeurope", "properties": {"securityRules": [{"name": "r", "properties": {
         "protocol": "Tcp", "access": "Allow", "direction": "Inbound", "priority": 100, "sourceAddressPrefix": "*",
         "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "22"}}]}}),
    ("PUT", f"{RG}/providers/Microsoft.Network/networkInterfaces/nic2", NETWORK,
     {"location": "westeurope", "properties": {"ipConfigurations": [{"name": "ip", "properties": {
         "subnet": {"id": SUBNET}}}]}}),
    ("PUT", f"{RG}/providers/Microsoft.Network/loadBalancers/lb2", NETWORK,
     {"location": "westeurope", "sku": {"name": "Standard"}, "properties": {
         "frontendIPConfigurations": [{"name": "fe", "properties": {"subnet": {"id": SUBNET}}}],
         "backendAddressPools": [{"name": "pool"}],
         "probes": [{"name": "p", "properties": {"protocol": "Tcp", "port": 80, "intervalInSeconds": 15}}]}}),
    ("PUT", f"{RG}/providers/Microsoft.Compute/virtualMachines/vm2", COMPUTE, vm_body(NIC)),
    ("PATCH", f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1", COMPUTE,
     {"properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}, "tags": {"x": "y"}}),
    ("POST", f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1/powerOff", COMPUTE, None),
    ("PUT", f"{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/ss2", COMPUTE, VMSS),
    ("PATCH", f"{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/ss1", COMPUTE, {"sku": {"capacity": 3}}),
    ("POST", f"{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/ss1/delete", COMPUTE, {"instanceIds": ["0"]}),
    ("POST", f"{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/ss1/manualupgrade", COMPUTE,
     {"instanceIds": ["0"]}),
    ("PUT", f"{RG}/providers/Microsoft.Compute/availabilitySets/as2", COMPUTE,
     {"location": "westeurope", "sku": {"name": "Aligned"},
      "properties": {"platformFaultDomainCount": 2, "platformUpdateDomainCount": 5}}),
    ("PUT", f"{RG}/providers/Microsoft.Compute/images/img2", COMPUTE,
     {"location": "westeurope", "properties": {"sourceVirtualMachine": {
         "id": f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1"}}}),
    ("PUT", f"{RG}/providers/Microsoft.Compute/disks/disk2", COMPUTE,
     {"location": "westeurope", "sku": {"name": "Premium_LRS"},
      "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32}}),
]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8)
FUZZ = settings(max_examples=600, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def emulator():
    loop = LoopThread("fuzz-emulator")
    emu = Emulator(latency_scale=0.0, throttle_scale=1000)
    loop.call(emu.start(host="127.0.0.1", port=0))
    yield emu
    loop.call(emu.stop())
    loop.close()


class Raw:
    def __init__(self, emulator: Emulator) -> None:
        host, port = emulator.url.removeprefix("https://").split(":")
        self.host, self.port = host, int(port)
        self.context = ssl.create_default_context(cafile=emulator.ca_path)
        self.connection: http.client.HTTPSConnection | None = None

    def send(self, method: str, path: str, api_version: str | None, body: bytes | None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        query = f"?api-version={urllib.parse.quote(api_version)}" if api_version is not None else ""
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=30)
            try:
                self.connection.request(method, path + query, body=body, headers={
                    "Authorization": "Bearer t", "Content-Type": "application/json", **(headers or {})})
                response = self.connection.getresponse()
                text = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
        return response.status, (json.loads(text) if text.strip() else None)


def arm_shaped(status: int, body: Any, what: str) -> None:
    assert status < 500, (status, body, what)
    if status >= 400:
        assert isinstance(body, dict) and isinstance(body.get("error"), dict), (status, body, what)
        assert isinstance(body["error"].get("code"), str) and body["error"]["code"], (body, what)
        assert isinstance(body["error"].get("message"), str), (body, what)


@pytest.fixture(scope="module")
def raw(emulator):
    client = Raw(emulator)
    network = f"{RG}/providers/Microsoft.Network"
    for method, path, version, body in [
        ("PUT", RG, RESOURCES, {"location": "westeurope"}),
        ("PUT", f"{network}/virtualNetworks/vnet1", NETWORK, {"location": "westeurope", "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}]}}),
        ("PUT", NIC, NETWORK, {"location": "westeurope", "properties": {"ipConfigurations": [
            {"name": "ip", "properties": {"subnet": {"id": SUBNET}}}]}}),
        ("PUT", f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1", COMPUTE, vm_body(NIC)),
        ("PUT", f"{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/ss1", COMPUTE, VMSS),
    ]:
        status, answer = client.send(method, path, version, json.dumps(body).encode())
        assert status in (200, 201), (path, answer)
    return client


def mutate(draw: Any, body: Any) -> Any:
    """The valid body with one node (anywhere in it) replaced by arbitrary JSON, or removed."""
    body = copy.deepcopy(body)
    nodes: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in node:
                nodes.append((node, key))
                walk(node[key])
        elif isinstance(node, list):
            for i in range(len(node)):
                nodes.append((node, i))
                walk(node[i])

    walk(body)
    if not nodes or draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    parent, key = draw(st.sampled_from(nodes))
    if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
        del parent[key]
    else:
        parent[key] = draw(JSON)
    return body


@FUZZ
@given(data=st.data())
def test_wrong_types_anywhere_in_a_body_are_arm_shaped_4xx(raw, data):
    method, path, version, valid = data.draw(st.sampled_from(ROUTES))
    body = mutate(data.draw, valid if valid is not None else {"x": 1})
    status, answer = raw.send(method, path, version, json.dumps(body).encode())
    arm_shaped(status, answer, f"{method} {path} {json.dumps(body)[:500]}")


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), payload=st.one_of(
    st.binary(max_size=200), st.sampled_from([b"{", b"[1,", b'{"location": }', b"\xff\xfe", b"null", b"0", b'"s"',
                                             b"[]", b'{"a":' * 2000, b"NaN", b'{"location": "x"}garbage'])),
       version=st.one_of(st.none(), st.sampled_from(["", "2099-01-01", "garbage", "2025-04-01-preview", "x" * 500]),
                         st.text(max_size=20)))
def test_malformed_json_and_unknown_api_versions_are_arm_shaped_4xx(raw, route, payload, version):
    method, path, good_version, _ = route
    status, answer = raw.send(method, path, good_version if version is None else version, payload)
    arm_shaped(status, answer, f"{method} {path} {payload[:100]!r} {version!r}")
    status, answer = raw.send("GET", path.rsplit("/", 1)[0] if method == "POST" else path, version, None)
    arm_shaped(status, answer, f"GET {path} {version!r}")


@pytest.mark.parametrize("size", [5 * 1024 * 1024, 20 * 1024 * 1024])
def test_huge_bodies_are_arm_shaped_4xx(raw, size):
    body = vm_body(NIC)
    body["properties"]["osProfile"]["customData"] = "A" * size
    status, answer = raw.send("PUT", f"{RG}/providers/Microsoft.Compute/virtualMachines/huge", COMPUTE,
                              json.dumps(body).encode())
    arm_shaped(status, answer, f"{size} bytes")
    assert 400 <= status < 500


def test_missing_or_malformed_authorization_is_arm_shaped_401(raw):
    for header in ({"Authorization": ""}, {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer"}):
        status, answer = raw.send("GET", RG, RESOURCES, None, header)
        arm_shaped(status, answer, repr(header))
        assert status == 401
