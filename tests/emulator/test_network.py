"""Virtual networks, subnets, NICs, public IPs and NSGs through the real async Network SDK."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from emulator_helpers import LOCATION, Arm, create_network, create_nic


async def test_vnet_subnet_shapes(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    vnet = network["vnet"].as_dict()
    assert vnet["id"] == arm.id("rg", "Microsoft.Network/virtualNetworks", "vnet1")
    assert vnet["type"] == "Microsoft.Network/virtualNetworks" and vnet["etag"].startswith('W/"')
    assert vnet["properties"]["provisioningState"] == "Succeeded"
    subnet = vnet["properties"]["subnets"][0]
    assert subnet["id"] == vnet["id"] + "/subnets/default"
    assert subnet["properties"]["addressPrefix"] == "10.0.1.0/24"
    fetched = await arm.network.subnets.get("rg", "vnet1", "default")
    assert fetched.ip_configurations[0].id.endswith("/networkInterfaces/nic1/ipConfigurations/ipconfig1")

    created = await (
        await arm.network.subnets.begin_create_or_update("rg", "vnet1", "second", {"properties": {"addressPrefix": "10.0.2.0/24"}})
    ).result()
    assert created.provisioning_state == "Succeeded"
    assert sorted([s.name async for s in arm.network.subnets.list("rg", "vnet1")]) == ["default", "second"]

    with pytest.raises(HttpResponseError) as outside:
        await (
            await arm.network.subnets.begin_create_or_update("rg", "vnet1", "x", {"properties": {"addressPrefix": "192.168.0.0/24"}})
        ).result()
    assert outside.value.error.code == "NetcfgSubnetRangeOutsideVnet"
    with pytest.raises(HttpResponseError) as overlap:
        await (
            await arm.network.subnets.begin_create_or_update("rg", "vnet1", "x", {"properties": {"addressPrefix": "10.0.2.128/25"}})
        ).result()
    assert overlap.value.error.code == "NetcfgSubnetRangesOverlap"
    with pytest.raises(ResourceNotFoundError) as parent:
        await (
            await arm.network.subnets.begin_create_or_update("rg", "ghost", "x", {"properties": {"addressPrefix": "10.0.9.0/24"}})
        ).result()
    assert parent.value.error.code == "ParentResourceNotFound"

    with pytest.raises(HttpResponseError) as in_use:
        await (await arm.network.subnets.begin_delete("rg", "vnet1", "default")).result()
    assert in_use.value.error.code == "InUseSubnetCannotBeDeleted"
    await (await arm.network.subnets.begin_delete("rg", "vnet1", "second")).result()
    assert [s.name async for s in arm.network.subnets.list("rg", "vnet1")] == ["default"]
    assert len([v async for v in arm.network.virtual_networks.list("rg")]) == 1
    assert len([v async for v in arm.network.virtual_networks.list_all()]) == 1


async def test_nic_and_public_ip_shapes(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    nic = network["nic"].as_dict()
    assert nic["type"] == "Microsoft.Network/networkInterfaces" and nic["location"] == LOCATION
    config = nic["properties"]["ipConfigurations"][0]
    assert config["properties"]["privateIPAddress"] == "10.0.1.4"
    assert config["properties"]["privateIPAllocationMethod"] == "Dynamic"
    assert config["properties"]["primary"] is True
    assert config["properties"]["publicIPAddress"]["id"] == network["pip"].id
    pip = await arm.network.public_ip_addresses.get("rg", "nic1-ip")
    assert ipaddress.ip_address(pip.ip_address) in ipaddress.ip_network("20.64.0.0/10")
    assert pip.ip_configuration.id == config["id"]
    assert pip.sku.name == "Standard" and pip.public_ip_allocation_method == "Static"

    with pytest.raises(HttpResponseError) as pip_in_use:
        await (await arm.network.public_ip_addresses.begin_delete("rg", "nic1-ip")).result()
    assert pip_in_use.value.error.code == "PublicIPAddressInUse"

    missing_subnet = network["vnet"].id + "/subnets/nope"
    with pytest.raises(HttpResponseError) as reference:
        await create_nic(arm, "rg", "nic-bad", missing_subnet)
    assert reference.value.error.code == "InvalidResourceReference"

    # detaching the public IP frees it
    await create_nic(arm, "rg", "nic1", network["subnet"].id)
    pip = await arm.network.public_ip_addresses.get("rg", "nic1-ip")
    assert pip.ip_configuration is None
    await (await arm.network.public_ip_addresses.begin_delete("rg", "nic1-ip")).result()


async def test_private_ip_allocation_is_unique_and_freed(arm: Arm) -> None:
    network = await create_network(arm, "rg", with_public_ip=False)
    subnet_id = network["subnet"].id
    nics = await asyncio.gather(*(create_nic(arm, "rg", f"n{index}", subnet_id) for index in range(12)))
    addresses = [n.ip_configurations[0].private_ip_address for n in nics] + ["10.0.1.4"]
    assert len(set(addresses)) == 13
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("10.0.1.0/24") for a in addresses)
    assert min(ipaddress.ip_address(a) for a in addresses) == ipaddress.ip_address("10.0.1.4")
    freed = nics[0].ip_configurations[0].private_ip_address
    await (await arm.network.network_interfaces.begin_delete("rg", "n0")).result()
    again = await create_nic(arm, "rg", "again", subnet_id)
    assert again.ip_configurations[0].private_ip_address == freed
    # updating a NIC keeps its address
    updated = await create_nic(arm, "rg", "again", subnet_id)
    assert updated.ip_configurations[0].private_ip_address == freed

    static = {
        "location": LOCATION,
        "properties": {
            "ipConfigurations": [
                {
                    "name": "ipconfig1",
                    "properties": {
                        "subnet": {"id": subnet_id},
                        "privateIPAllocationMethod": "Static",
                        "privateIPAddress": "10.0.1.4",
                    },
                }
            ]
        },
    }
    with pytest.raises(HttpResponseError) as taken:
        await (await arm.network.network_interfaces.begin_create_or_update("rg", "static", static)).result()
    assert taken.value.error.code == "PrivateIPAddressInUse"
    static["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] = "10.0.1.200"
    nic = await (await arm.network.network_interfaces.begin_create_or_update("rg", "static", static)).result()
    assert nic.ip_configurations[0].private_ip_address == "10.0.1.200"


async def test_small_subnet_fills_up(arm: Arm) -> None:
    await arm.resources.resource_groups.create_or_update("rg", {"location": LOCATION})
    vnet = await (
        await arm.network.virtual_networks.begin_create_or_update(
            "rg",
            "tiny",
            {
                "location": LOCATION,
                "properties": {
                    "addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
                    "subnets": [{"name": "s", "properties": {"addressPrefix": "10.1.0.0/29"}}],
                },
            },
        )
    ).result()
    subnet_id = vnet.subnets[0].id
    nics = [await create_nic(arm, "rg", name, subnet_id) for name in ("a", "b", "c")]  # /29: .4 .5 .6 usable
    assert [n.ip_configurations[0].private_ip_address for n in nics] == ["10.1.0.4", "10.1.0.5", "10.1.0.6"]
    with pytest.raises(HttpResponseError) as full:
        await create_nic(arm, "rg", "d", subnet_id)
    assert full.value.error.code == "SubnetIsFull"


async def test_public_ips_unique(arm: Arm) -> None:
    await arm.resources.resource_groups.create_or_update("rg", {"location": LOCATION})
    async def create(name: str) -> object:
        poller = await arm.network.public_ip_addresses.begin_create_or_update("rg", name, {"location": LOCATION})
        return await poller.result()

    pips = await asyncio.gather(*(create(f"ip{i}") for i in range(8)))
    assert len({p.ip_address for p in pips}) == 8


async def test_network_security_group(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    nsg = await (
        await arm.network.network_security_groups.begin_create_or_update(
            "rg",
            "nsg1",
            {
                "location": LOCATION,
                "properties": {
                    "securityRules": [
                        {
                            "name": "ssh",
                            "properties": {
                                "protocol": "Tcp",
                                "sourcePortRange": "*",
                                "destinationPortRange": "22",
                                "sourceAddressPrefix": "*",
                                "destinationAddressPrefix": "*",
                                "access": "Allow",
                                "priority": 100,
                                "direction": "Inbound",
                            },
                        }
                    ]
                },
            },
        )
    ).result()
    assert nsg.security_rules[0].id.endswith("/networkSecurityGroups/nsg1/securityRules/ssh")
    assert len(nsg.default_security_rules) == 6
    body = network["nic"].as_dict()
    body["properties"]["networkSecurityGroup"] = {"id": nsg.id}
    await (await arm.network.network_interfaces.begin_create_or_update("rg", "nic1", body)).result()
    nsg = await arm.network.network_security_groups.get("rg", "nsg1")
    assert nsg.network_interfaces[0].id == network["nic"].id
    with pytest.raises(HttpResponseError) as in_use:
        await (await arm.network.network_security_groups.begin_delete("rg", "nsg1")).result()
    assert in_use.value.error.code == "InUseNetworkSecurityGroupCannotBeDeleted"
    with pytest.raises(HttpResponseError) as bad_rule:
        await (
            await arm.network.network_security_groups.begin_create_or_update(
                "rg", "nsg2", {"location": LOCATION, "properties": {"securityRules": [{"name": "r", "properties": {"priority": 5}}]}}
            )
        ).result()
    assert bad_rule.value.error.code == "SecurityRuleInvalidPriority"


async def test_tags_update_and_delete_missing(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    tagged = await arm.network.virtual_networks.update_tags("rg", "vnet1", {"tags": {"env": "test"}})
    assert tagged.tags == {"env": "test"}
    await (await arm.network.network_interfaces.begin_delete("rg", "does-not-exist")).result()
    with pytest.raises(HttpResponseError) as vnet_in_use:
        await (await arm.network.virtual_networks.begin_delete("rg", "vnet1")).result()
    assert vnet_in_use.value.error.code == "InUseSubnetCannotBeDeleted"
    await (await arm.network.network_interfaces.begin_delete("rg", network["nic"].name)).result()
    await (await arm.network.virtual_networks.begin_delete("rg", "vnet1")).result()
    with pytest.raises(ResourceNotFoundError):
        await arm.network.virtual_networks.get("rg", "vnet1")
