"""Builders shared by the scale set and load balancer tests (real async SDK clients, see emulator_helpers)."""

from __future__ import annotations

from typing import Any

from emulator_helpers import LOCATION, SSH_KEY, UBUNTU, Arm, create_public_ip, create_vnet


async def create_lb_network(arm: Arm, rg: str, *, lb: str = "lb1") -> dict[str, Any]:
    """Resource group, VNet 10.0.0.0/16 with subnet ``default`` (10.0.1.0/24), a public IP and a load balancer
    with frontend ``fe``, pool ``pool``, probe ``probe`` and a rule."""
    vnet = await create_vnet(arm, rg)
    pip = await create_public_ip(arm, rg, f"{lb}-ip")
    lb_id = arm.id(rg, "Microsoft.Network/loadBalancers", lb)
    created = await (
        await arm.network.load_balancers.begin_create_or_update(
            rg,
            lb,
            {
                "location": LOCATION,
                "sku": {"name": "Standard"},
                "properties": {
                    "frontendIPConfigurations": [{"name": "fe", "properties": {"publicIPAddress": {"id": pip.id}}}],
                    "backendAddressPools": [{"name": "pool"}],
                    "probes": [{"name": "probe", "properties": {"protocol": "Tcp", "port": 22}}],
                    "inboundNatPools": [
                        {
                            "name": "natpool",
                            "properties": {
                                "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/fe"},
                                "protocol": "Tcp",
                                "frontendPortRangeStart": 50000,
                                "frontendPortRangeEnd": 50099,
                                "backendPort": 22,
                            },
                        }
                    ],
                    "loadBalancingRules": [
                        {
                            "name": "ssh",
                            "properties": {
                                "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/fe"},
                                "backendAddressPool": {"id": f"{lb_id}/backendAddressPools/pool"},
                                "probe": {"id": f"{lb_id}/probes/probe"},
                                "protocol": "Tcp",
                                "frontendPort": 22,
                                "backendPort": 22,
                            },
                        }
                    ],
                },
            },
        )
    ).result()
    return {
        "vnet": vnet,
        "subnet_id": vnet.subnets[0].id,
        "pip": pip,
        "lb": created,
        "pool_id": f"{lb_id}/backendAddressPools/pool",
        "probe_id": f"{lb_id}/probes/probe",
    }


def vmss_body(
    subnet_id: str,
    *,
    capacity: int = 3,
    size: str = "Standard_B2s",
    pool_id: str | None = None,
    probe_id: str | None = None,
    mode: str = "Manual",
    scale_in: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    ip_config: dict[str, Any] = {"name": "ipconfig1", "properties": {"subnet": {"id": subnet_id}}}
    if pool_id:
        ip_config["properties"]["loadBalancerBackendAddressPools"] = [{"id": pool_id}]
    network_profile: dict[str, Any] = {
        "networkInterfaceConfigurations": [{"name": "nic", "properties": {"primary": True, "ipConfigurations": [ip_config]}}]
    }
    if probe_id:
        network_profile["healthProbe"] = {"id": probe_id}
    props: dict[str, Any] = {
        "upgradePolicy": {"mode": mode},
        "virtualMachineProfile": {
            "storageProfile": {
                "imageReference": dict(UBUNTU),
                "osDisk": {"createOption": "FromImage", "managedDisk": {"storageAccountType": "Premium_LRS"}},
            },
            "osProfile": {
                "computerNamePrefix": "web",
                "adminUsername": "azureuser",
                "adminPassword": "Sup3r-Secret!",
                "customData": "I2Nsb3VkLWNvbmZpZw==",
                "linuxConfiguration": {
                    "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": SSH_KEY}]}
                },
            },
            "networkProfile": network_profile,
        },
        **properties,
    }
    if scale_in:
        props["scaleInPolicy"] = {"rules": [scale_in]}
    return {"location": LOCATION, "sku": {"name": size, "tier": "Standard", "capacity": capacity}, "properties": props}


async def create_vmss(arm: Arm, rg: str, name: str, body: dict[str, Any]) -> Any:
    return await (await arm.compute.virtual_machine_scale_sets.begin_create_or_update(rg, name, body)).result()


async def instances(arm: Arm, rg: str, vmss: str, **kwargs: Any) -> list[Any]:
    return [vm async for vm in arm.compute.virtual_machine_scale_set_vms.list(rg, vmss, **kwargs)]


async def instance_ids(arm: Arm, rg: str, vmss: str, **kwargs: Any) -> list[str]:
    return [vm.instance_id for vm in await instances(arm, rg, vmss, **kwargs)]


async def instance_ips(arm: Arm, rg: str, vmss: str) -> list[str]:
    nics = [
        nic async for nic in arm.network.network_interfaces.list_virtual_machine_scale_set_network_interfaces(rg, vmss)
    ]
    return [nic.ip_configurations[0].private_ip_address for nic in nics]


async def pool_members(arm: Arm, rg: str, lb: str = "lb1", pool: str = "pool") -> list[str]:
    got = await arm.network.load_balancer_backend_address_pools.get(rg, lb, pool)
    return [c.id for c in got.backend_ip_configurations or []]
