"""Load balancers through the real async Azure SDK: sub-resource ids and back references, public IP and subnet
links, backend pool membership of NICs and scale set instances, in-use checks (the REST examples: test_conformance)."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from emulator_helpers import LOCATION, Arm, create_nic
from scale_set_helpers import create_lb_network, create_vmss, pool_members, vmss_body

RG = "rg"


async def test_create_get_list_and_children(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    lb = env["lb"]
    lb_id = arm.id(RG, "Microsoft.Network/loadBalancers", "lb1")
    assert lb.provisioning_state == "Succeeded" and lb.sku.name == "Standard" and lb.resource_guid
    frontend = lb.frontend_ip_configurations[0]
    assert frontend.id == f"{lb_id}/frontendIPConfigurations/fe"
    assert frontend.public_ip_address.id == env["pip"].id
    assert [r.id for r in frontend.load_balancing_rules] == [f"{lb_id}/loadBalancingRules/ssh"]
    assert [r.id for r in frontend.inbound_nat_pools] == [f"{lb_id}/inboundNatPools/natpool"]
    pool = lb.backend_address_pools[0]
    assert pool.type == "Microsoft.Network/loadBalancers/backendAddressPools"
    assert [r.id for r in pool.load_balancing_rules] == [f"{lb_id}/loadBalancingRules/ssh"]
    assert [r.id for r in lb.probes[0].load_balancing_rules] == [f"{lb_id}/loadBalancingRules/ssh"]
    rule = lb.load_balancing_rules[0]
    assert rule.probe.id == env["probe_id"] and rule.idle_timeout_in_minutes == 4 and rule.enable_tcp_reset is False
    assert lb.probes[0].interval_in_seconds == 15 and lb.probes[0].number_of_probes == 2

    pip = await arm.network.public_ip_addresses.get(RG, "lb1-ip")
    assert pip.ip_configuration.id == frontend.id
    with pytest.raises(HttpResponseError) as in_use:
        await (await arm.network.public_ip_addresses.begin_delete(RG, "lb1-ip")).result()
    assert in_use.value.error.code == "PublicIPAddressInUse"

    got_pool = await arm.network.load_balancer_backend_address_pools.get(RG, "lb1", "pool")
    assert got_pool.id == env["pool_id"]
    pools = [p async for p in arm.network.load_balancer_backend_address_pools.list(RG, "lb1")]
    assert [p.name for p in pools] == ["pool"]
    probe = await arm.network.load_balancer_probes.get(RG, "lb1", "probe")
    assert probe.port == 22
    with pytest.raises(ResourceNotFoundError):
        await arm.network.load_balancer_backend_address_pools.get(RG, "lb1", "nope")
    assert [x.name async for x in arm.network.load_balancers.list(RG)] == ["lb1"]
    assert [x.name async for x in arm.network.load_balancers.list_all()] == ["lb1"]

    await (await arm.network.load_balancers.begin_delete(RG, "lb1")).result()
    with pytest.raises(ResourceNotFoundError):
        await arm.network.load_balancers.get(RG, "lb1")
    assert (await arm.network.public_ip_addresses.get(RG, "lb1-ip")).ip_configuration is None
    assert await arm.admin.count(operation="Microsoft.Network/loadBalancers/write") == 1
    assert await arm.admin.count(operation="Microsoft.Network/loadBalancers/delete") == 1
    assert await arm.admin.count(operation="Microsoft.Network/loadBalancers/backendAddressPools/read") >= 2


async def test_internal_frontend_and_reference_checks(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    nic = await create_nic(arm, RG, "nic1", env["subnet_id"])
    lb_id = arm.id(RG, "Microsoft.Network/loadBalancers", "ilb")
    internal = await (
        await arm.network.load_balancers.begin_create_or_update(
            RG,
            "ilb",
            {
                "location": LOCATION,
                "properties": {
                    "frontendIPConfigurations": [{"name": "fe", "properties": {"subnet": {"id": env["subnet_id"]}}}],
                    "backendAddressPools": [{"name": "pool"}],
                },
            },
        )
    ).result()
    frontend_ip = internal.frontend_ip_configurations[0].private_ip_address
    assert frontend_ip.startswith("10.0.1.") and frontend_ip != nic.ip_configurations[0].private_ip_address
    other = await create_nic(arm, RG, "nic2", env["subnet_id"])
    assert other.ip_configurations[0].private_ip_address not in (frontend_ip, nic.ip_configurations[0].private_ip_address)
    subnet = await arm.network.subnets.get(RG, "vnet1", "default")
    assert f"{lb_id}/frontendIPConfigurations/fe".lower() in {c.id.lower() for c in subnet.ip_configurations}

    with pytest.raises(HttpResponseError) as bad_rule:
        await arm.network.load_balancers.begin_create_or_update(
            RG,
            "broken",
            {
                "location": LOCATION,
                "properties": {
                    "frontendIPConfigurations": [{"name": "fe", "properties": {"subnet": {"id": env["subnet_id"]}}}],
                    "loadBalancingRules": [
                        {
                            "name": "r",
                            "properties": {
                                "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/nope"},
                                "protocol": "Tcp",
                                "frontendPort": 80,
                            },
                        }
                    ],
                },
            },
        )
    assert bad_rule.value.error.code == "InvalidResourceReference"
    with pytest.raises(HttpResponseError) as taken:
        await arm.network.load_balancers.begin_create_or_update(
            RG,
            "second",
            {
                "location": LOCATION,
                "properties": {"frontendIPConfigurations": [{"name": "fe", "properties": {"publicIPAddress": {"id": env["pip"].id}}}]},
            },
        )
    assert taken.value.error.code == "PublicIPAddressInUse"


async def test_nic_in_backend_pool(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    config = {
        "name": "ipconfig1",
        "properties": {"subnet": {"id": env["subnet_id"]}, "loadBalancerBackendAddressPools": [{"id": env["pool_id"]}]},
    }
    nic = await (
        await arm.network.network_interfaces.begin_create_or_update(
            RG, "member", {"location": LOCATION, "properties": {"ipConfigurations": [config]}}
        )
    ).result()
    assert await pool_members(arm, RG) == [nic.ip_configurations[0].id]
    with pytest.raises(HttpResponseError) as in_use:
        await (await arm.network.load_balancers.begin_delete(RG, "lb1")).result()
    assert in_use.value.status_code == 400
    bad = json.loads(json.dumps(config).replace("/backendAddressPools/pool", "/backendAddressPools/nope"))
    with pytest.raises(HttpResponseError) as missing:
        await arm.network.network_interfaces.begin_create_or_update(
            RG, "bad", {"location": LOCATION, "properties": {"ipConfigurations": [bad]}}
        )
    assert missing.value.error.code == "InvalidResourceReference"
    await (await arm.network.network_interfaces.begin_delete(RG, "member")).result()
    assert await pool_members(arm, RG) == []
    await (await arm.network.load_balancers.begin_delete(RG, "lb1")).result()


async def test_delete_while_used_by_scale_set(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    await create_vmss(arm, RG, "web", vmss_body(env["subnet_id"], capacity=2, pool_id=env["pool_id"]))
    assert len(await pool_members(arm, RG)) == 2
    with pytest.raises(HttpResponseError) as in_use:
        await (await arm.network.load_balancers.begin_delete(RG, "lb1")).result()
    assert in_use.value.status_code == 400
    assert in_use.value.error.code == "LoadBalancerInUseByVirtualMachineScaleSet"
    assert "virtualMachineScaleSets/web" in in_use.value.error.message
    # removing the pool the scale set uses is refused too
    lb = await arm.network.load_balancers.get(RG, "lb1")
    lb.backend_address_pools = []
    lb.load_balancing_rules = []
    with pytest.raises(HttpResponseError):
        await arm.network.load_balancers.begin_create_or_update(RG, "lb1", lb)
    # deleting the scale set empties the pool, then the load balancer can go
    await (await arm.compute.virtual_machine_scale_sets.begin_delete(RG, "web")).result()
    assert await pool_members(arm, RG) == []
    await (await arm.network.load_balancers.begin_delete(RG, "lb1")).result()


async def test_resource_group_delete_removes_scale_sets_and_load_balancers(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    await create_vmss(arm, RG, "web", vmss_body(env["subnet_id"], capacity=2, pool_id=env["pool_id"]))
    before = [r for r in await arm.admin.resources() if "/resourcegroups/rg/" in r["id"].lower()]
    assert {r["type"] for r in before} >= {"Microsoft.Compute/virtualMachineScaleSets", "Microsoft.Network/loadBalancers"}
    await (await arm.resources.resource_groups.begin_delete(RG)).result()
    assert [r for r in await arm.admin.resources() if "/resourcegroups/rg/" in r["id"].lower()] == []
