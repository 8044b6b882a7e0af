"""Helpers of the compute feature tests (disks, availability sets, images, zones, Spot, etags ...)."""

from __future__ import annotations

import copy
import json
import ssl
from typing import Any

import aiohttp
from emulator_helpers import Arm, create_network, create_nic, vm_body

API = "2025-04-01"


class Net:
    """One resource group with a VNet and a factory of NICs (one per VM)."""

    def __init__(self, arm: Arm, rg: str, subnet_id: str, first_nic: str) -> None:
        self.arm = arm
        self.rg = rg
        self.subnet_id = subnet_id
        self._free = [first_nic]
        self._count = 1

    @classmethod
    async def create(cls, arm: Arm, rg: str = "rg") -> Net:
        network = await create_network(arm, rg, with_public_ip=False)
        return cls(arm, rg, network["subnet"].id, network["nic"].id)

    async def nic(self) -> str:
        if self._free:
            return self._free.pop()
        self._count += 1
        return str((await create_nic(self.arm, self.rg, f"nic{self._count}", self.subnet_id)).id)

    async def body(self, **kwargs: Any) -> dict[str, Any]:
        return vm_body(await self.nic(), **kwargs)


def storage(body: dict[str, Any]) -> dict[str, Any]:
    return body["properties"]["storageProfile"]


async def create_vm(arm: Arm, rg: str, name: str, body: dict[str, Any]) -> Any:
    poller = await arm.compute.virtual_machines.begin_create_or_update(rg, name, copy.deepcopy(body))
    return await poller.result()


async def raw(
    arm: Arm, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, api_version: str = API
) -> tuple[int, Any, dict[str, str]]:
    """A plain HTTPS request to the emulator (status, JSON body, headers)."""
    context = ssl.create_default_context(cafile=arm.emulator.ca_path)
    separator = "&" if "?" in path else "?"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async with session.request(
            method,
            f"{arm.emulator.url}{path}{separator}api-version={api_version}",
            json=body,
            headers={"Authorization": "Bearer t", **(headers or {})},
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None, dict(response.headers)


def power_state(view: Any) -> str:
    return next(s.code for s in view.statuses if s.code.startswith("PowerState/"))
