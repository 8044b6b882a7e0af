"""Helpers of the ARM emulator tests: the real async Azure SDK clients pointed at an emulator, and builders."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from azure.identity import ClientSecretCredential as SyncClientSecretCredential
from azure.identity.aio import ClientSecretCredential
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.resource.resources.aio import ResourceManagementClient

from azure_arm_emulator import Emulator
from azure_arm_emulator.admin import AdminClient

T = TypeVar("T")

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
LOCATION = "westeurope"
SSH_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCeClRAk2ipUs/l5voIsDC5q9RI+YSRd1Bvd/O+axgY4WiBzG+4FwJWZm test"
UBUNTU = {
    "publisher": "Canonical",
    "offer": "0001-com-ubuntu-server-jammy",
    "sku": "22_04-lts-gen2",
    "version": "latest",
}


@dataclass
class Arm:
    """The SDK clients of one emulator."""

    emulator: Emulator
    credential: ClientSecretCredential
    compute: ComputeManagementClient
    network: NetworkManagementClient
    resources: ResourceManagementClient
    admin: AdminClient
    subscription: str = SUBSCRIPTION

    def rg_id(self, rg: str) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{rg}"

    def id(self, rg: str, provider_type: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/{provider_type}/{name}"

    async def close(self) -> None:
        for client in (self.compute, self.network, self.resources):
            await client.close()
        await self.credential.close()
        await self.admin.close()


def make_arm(url: str, ca_path: str, emulator: Emulator | None = None, polling_interval: float = 0.05) -> Arm:
    credential = ClientSecretCredential("tenant", "client", "secret", authority=url, connection_verify=ca_path)
    common: dict[str, Any] = {
        "base_url": url,
        "credential_scopes": ["https://management.azure.com/.default"],
        "connection_verify": ca_path,
        "polling_interval": polling_interval,
    }
    return Arm(
        emulator=emulator,  # type: ignore[arg-type]
        credential=credential,
        compute=ComputeManagementClient(credential, SUBSCRIPTION, **common),
        network=NetworkManagementClient(credential, SUBSCRIPTION, **common),
        resources=ResourceManagementClient(credential, SUBSCRIPTION, **common),
        admin=AdminClient(url, ca_path),
    )


@asynccontextmanager
async def running_emulator(state_dir: Path, port: int = 0) -> AsyncIterator[Arm]:
    """An emulator on ``state_dir`` (on ``port``: pass the first run's port to restart it) and its SDK clients."""
    emulator = Emulator(state_dir=state_dir)
    await emulator.start(port=port)
    arm = make_arm(emulator.url, emulator.ca_path, emulator)
    try:
        yield arm
    finally:
        await arm.close()
        await emulator.stop()


def sync_client(emulator: Emulator, client_type: Callable[..., T], polling_interval: float = 0.05) -> T:
    """A synchronous Azure SDK management client (``azure.mgmt.compute.ComputeManagementClient``, ...) pointed at
    the emulator. The sync credential goes through MSAL, hence ``disable_instance_discovery``. A test running the
    emulator in its event loop calls it in a thread (:func:`in_thread`)."""
    credential = SyncClientSecretCredential(
        "tenant", "client", "secret", authority=emulator.url, connection_verify=emulator.ca_path,
        disable_instance_discovery=True,
    )
    return client_type(
        credential,
        SUBSCRIPTION,
        base_url=emulator.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=emulator.ca_path,
        polling_interval=polling_interval,
    )


async def in_thread(call: Callable[[], T]) -> T:
    """Run a blocking (sync SDK) call off the event loop that serves the emulator."""
    return await asyncio.to_thread(call)


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"
) -> None:
    """Poll an async condition until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if await condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def create_vnet(arm: Arm, rg: str) -> Any:
    """Resource group + VNet ``vnet1`` (10.0.0.0/16, subnet ``default`` 10.0.1.0/24)."""
    await arm.resources.resource_groups.create_or_update(rg, {"location": LOCATION})
    return await (
        await arm.network.virtual_networks.begin_create_or_update(
            rg,
            "vnet1",
            {
                "location": LOCATION,
                "properties": {
                    "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                    "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.1.0/24"}}],
                },
            },
        )
    ).result()


async def create_public_ip(arm: Arm, rg: str, name: str) -> Any:
    """A Standard public IP."""
    poller = await arm.network.public_ip_addresses.begin_create_or_update(
        rg, name, {"location": LOCATION, "sku": {"name": "Standard"}}
    )
    return await poller.result()


async def create_network(arm: Arm, rg: str, *, nic: str = "nic1", with_public_ip: bool = True) -> dict[str, Any]:
    """Resource group + VNet (10.0.0.0/16, subnet default 10.0.1.0/24) + optional public IP + NIC."""
    vnet = await create_vnet(arm, rg)
    pip = await create_public_ip(arm, rg, f"{nic}-ip") if with_public_ip else None
    created_nic = await create_nic(arm, rg, nic, vnet.subnets[0].id, pip.id if pip else None)
    return {"vnet": vnet, "subnet": vnet.subnets[0], "pip": pip, "nic": created_nic}


async def create_nic(arm: Arm, rg: str, name: str, subnet_id: str, pip_id: str | None = None) -> Any:
    ip_config: dict[str, Any] = {"name": "ipconfig1", "properties": {"subnet": {"id": subnet_id}}}
    if pip_id:
        ip_config["properties"]["publicIPAddress"] = {"id": pip_id}
    poller = await arm.network.network_interfaces.begin_create_or_update(
        rg, name, {"location": LOCATION, "properties": {"ipConfigurations": [ip_config]}}
    )
    return await poller.result()


def vm_body(nic_id: str, *, size: str = "Standard_B2s", image: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location": LOCATION,
        "tags": {"owner": "tests"},
        "properties": {
            "hardwareProfile": {"vmSize": size},
            "storageProfile": {
                "imageReference": dict(image or UBUNTU),
                "osDisk": {"createOption": "FromImage", "managedDisk": {"storageAccountType": "Premium_LRS"}},
            },
            "osProfile": {
                "computerName": "vm1",
                "adminUsername": "azureuser",
                "linuxConfiguration": {
                    "disablePasswordAuthentication": True,
                    "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": SSH_KEY}]},
                },
            },
            "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True}}]},
        },
    }
    body.update(extra)
    return body
