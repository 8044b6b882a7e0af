"""Virtual machine scale sets through the real async Azure SDK: capacity, scale-in policy, upgrade policies,
instance actions, load balancer pools, private IPs, validation, request log, durability (the REST examples: test_conformance)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from emulator_helpers import LOCATION, Arm, create_nic, running_emulator, wait_for
from scale_set_helpers import (
    create_lb_network,
    create_vmss,
    instance_ids,
    instance_ips,
    instances,
    pool_members,
    vmss_body,
)

RG = "rg"


def member_id(arm: Arm, vmss: str, instance: str) -> str:
    return (
        f"{arm.id(RG, 'Microsoft.Compute/virtualMachineScaleSets', vmss)}/virtualMachines/{instance}"
        "/networkInterfaces/nic/ipConfigurations/ipconfig1"
    )


async def test_create_scale_out_and_scale_in_with_load_balancer(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    nic = await create_nic(arm, RG, "standalone", env["subnet_id"])
    vmss = await create_vmss(arm, RG, "web", vmss_body(env["subnet_id"], pool_id=env["pool_id"], scale_in="NewestVM"))
    assert vmss.provisioning_state == "Succeeded"
    assert vmss.sku.capacity == 3 and vmss.unique_id and vmss.time_created
    assert vmss.upgrade_policy.mode == "Manual" and vmss.orchestration_mode == "Uniform"
    os_profile = vmss.virtual_machine_profile.os_profile
    assert os_profile.admin_password is None and os_profile.custom_data is None
    listed = await instances(arm, RG, "web")
    assert [vm.instance_id for vm in listed] == ["0", "1", "2"]
    assert [vm.name for vm in listed] == ["web_0", "web_1", "web_2"]
    first = listed[0]
    assert first.latest_model_applied and first.provisioning_state == "Succeeded" and first.vm_id
    assert first.hardware_profile.vm_size == "Standard_B2s"
    assert first.storage_profile.image_reference.exact_version
    assert first.os_profile.computer_name == "web000000"
    assert first.network_profile_configuration.network_interface_configurations[0].name == "nic"
    ips = await instance_ips(arm, RG, "web")
    assert len(set(ips)) == 3 and nic.ip_configurations[0].private_ip_address not in ips
    assert sorted(await pool_members(arm, RG)) == sorted(member_id(arm, "web", i) for i in "012")

    await (await arm.compute.virtual_machine_scale_sets.begin_update(RG, "web", {"sku": {"capacity": 5}})).result()
    assert await instance_ids(arm, RG, "web") == ["0", "1", "2", "3", "4"]
    assert len(set(await instance_ips(arm, RG, "web"))) == 5
    assert len(await pool_members(arm, RG)) == 5

    scaled = await (await arm.compute.virtual_machine_scale_sets.begin_update(RG, "web", {"sku": {"capacity": 2}})).result()
    assert scaled.sku.capacity == 2
    assert await instance_ids(arm, RG, "web") == ["0", "1"]  # NewestVM removes the highest ids
    assert sorted(await pool_members(arm, RG)) == sorted(member_id(arm, "web", i) for i in "01")
    subnet = await arm.network.subnets.get(RG, "vnet1", "default")
    assert len(subnet.ip_configurations) == 3  # the standalone NIC + two instances

    # instance ids are never reused
    await (await arm.compute.virtual_machine_scale_sets.begin_update(RG, "web", {"sku": {"capacity": 3}})).result()
    assert await instance_ids(arm, RG, "web") == ["0", "1", "5"]


async def test_oldest_vm_policy_and_protected_instance(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    await create_vmss(arm, RG, "old", vmss_body(env["subnet_id"], capacity=3, scale_in="OldestVM"))
    await (await arm.compute.virtual_machine_scale_sets.begin_update(RG, "old", {"sku": {"capacity": 2}})).result()
    assert await instance_ids(arm, RG, "old") == ["1", "2"]

    await create_vmss(arm, RG, "prot", vmss_body(env["subnet_id"], capacity=3))
    updated = await (
        await arm.compute.virtual_machine_scale_set_vms.begin_update(
            RG, "prot", "2", {"location": LOCATION, "properties": {"protectionPolicy": {"protectFromScaleIn": True}}}
        )
    ).result()
    assert updated.protection_policy.protect_from_scale_in is True
    await (await arm.compute.virtual_machine_scale_sets.begin_update(RG, "prot", {"sku": {"capacity": 1}})).result()
    assert await instance_ids(arm, RG, "prot") == ["2"]  # Default removes the highest ids, skipping the protected one
    # nothing left that may be removed: the protected instance stays and capacity follows the instance count
    result = await (await arm.compute.virtual_machine_scale_sets.begin_update(RG, "prot", {"sku": {"capacity": 0}})).result()
    assert await instance_ids(arm, RG, "prot") == ["2"]
    assert result.sku.capacity == 1


async def test_default_policy_balances_zones(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    body = vmss_body(env["subnet_id"], capacity=3)
    body["zones"] = ["1", "2", "3"]
    await create_vmss(arm, RG, "zonal", body)
    await (await arm.compute.virtual_machine_scale_sets.begin_update(RG, "zonal", {"sku": {"capacity": 4}})).result()
    assert {vm.instance_id: vm.zones for vm in await instances(arm, RG, "zonal")} == {
        "0": ["1"], "1": ["2"], "2": ["3"], "3": ["1"]
    }
    await (await arm.compute.virtual_machine_scale_sets.begin_update(RG, "zonal", {"sku": {"capacity": 2}})).result()
    # zone 1 had two instances: its highest id goes first, then the highest id overall
    assert await instance_ids(arm, RG, "zonal") == ["0", "1"]


async def test_manual_upgrade_policy(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    await create_vmss(arm, RG, "man", vmss_body(env["subnet_id"], capacity=3))
    await (
        await arm.compute.virtual_machine_scale_sets.begin_update(RG, "man", {"sku": {"name": "Standard_D2s_v5"}})
    ).result()
    listed = await instances(arm, RG, "man")
    assert [vm.latest_model_applied for vm in listed] == [False, False, False]
    assert listed[0].hardware_profile.vm_size == "Standard_B2s"
    outdated = await instance_ids(arm, RG, "man", filter="properties/latestModelApplied eq false")
    assert outdated == ["0", "1", "2"]
    await (
        await arm.compute.virtual_machine_scale_sets.begin_update_instances(RG, "man", {"instanceIds": ["1"]})
    ).result()
    assert await instance_ids(arm, RG, "man", filter="properties/latestModelApplied eq true") == ["1"]
    upgraded = await arm.compute.virtual_machine_scale_set_vms.get(RG, "man", "1")
    assert upgraded.latest_model_applied and upgraded.hardware_profile.vm_size == "Standard_D2s_v5"
    assert upgraded.sku.name == "Standard_D2s_v5"
    with pytest.raises(HttpResponseError) as bad:
        await instances(arm, RG, "man", filter="name eq 'x'")
    assert bad.value.error.code == "InvalidParameter"


async def test_automatic_upgrade_policy(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    await create_vmss(arm, RG, "auto", vmss_body(env["subnet_id"], capacity=3, mode="Automatic"))
    image = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
    await (
        await arm.compute.virtual_machine_scale_sets.begin_update(
            RG, "auto", {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": image}}}}
        )
    ).result()
    listed = await instances(arm, RG, "auto")
    assert all(vm.latest_model_applied for vm in listed)
    assert {vm.storage_profile.image_reference.offer for vm in listed} == {"ubuntu-24_04-lts"}
    assert all(vm.provisioning_state == "Succeeded" for vm in listed)


async def test_rolling_upgrade_needs_a_health_signal_and_goes_in_batches(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    with pytest.raises(HttpResponseError) as missing:
        await create_vmss(arm, RG, "roll", vmss_body(env["subnet_id"], mode="Rolling"))
    assert missing.value.status_code == 400 and missing.value.error.code == "BadRequest"
    assert "health probe" in missing.value.error.message

    body = vmss_body(env["subnet_id"], capacity=5, mode="Rolling", probe_id=env["probe_id"])
    body["properties"]["upgradePolicy"]["rollingUpgradePolicy"] = {"maxBatchInstancePercent": 40}
    vmss = await create_vmss(arm, RG, "roll", body)
    assert vmss.virtual_machine_profile.network_profile.health_probe.id.lower() == env["probe_id"].lower()
    arm.emulator.latency_scale = 0.01  # 0.1 s per model update, 0.3 s per batch of two instances
    await (
        await arm.compute.virtual_machine_scale_sets.begin_update(RG, "roll", {"sku": {"name": "Standard_D2s_v5"}})
    ).result()
    seen: set[int] = set()

    async def upgraded() -> bool:
        flags = [vm.latest_model_applied for vm in await instances(arm, RG, "roll")]
        seen.add(sum(flags))
        return all(flags)

    await wait_for(upgraded, timeout=10, what="rolling upgrade to finish")
    assert seen & {1, 2, 3, 4}, f"no intermediate state observed: {seen}"
    assert {vm.hardware_profile.vm_size for vm in await instances(arm, RG, "roll")} == {"Standard_D2s_v5"}
    assert await arm.admin.count(operation="Microsoft.Compute/virtualMachineScaleSets/write") >= 2


async def test_power_actions_delete_instances_and_instance_views(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    await create_vmss(arm, RG, "pw", vmss_body(env["subnet_id"], capacity=3, pool_id=env["pool_id"]))
    sets = arm.compute.virtual_machine_scale_sets
    vms = arm.compute.virtual_machine_scale_set_vms

    async def summary() -> dict[str, int]:
        view = await sets.get_instance_view(RG, "pw")
        return {s.code: s.count for s in view.virtual_machine.statuses_summary}

    assert (await summary())["PowerState/running"] == 3
    assert (await sets.get_instance_view(RG, "pw")).statuses[0].code == "ProvisioningState/succeeded"
    await (await sets.begin_power_off(RG, "pw")).result()
    assert (await summary()).get("PowerState/stopped") == 3
    await (await vms.begin_start(RG, "pw", "1")).result()
    view = await vms.get_instance_view(RG, "pw", "1")
    assert [s.code for s in view.statuses] == ["ProvisioningState/succeeded", "PowerState/running"]
    with pytest.raises(HttpResponseError) as not_running:
        await (await vms.begin_restart(RG, "pw", "0")).result()
    assert not_running.value.error.code == "OperationNotAllowed"
    await (await sets.begin_deallocate(RG, "pw", {"instanceIds": ["0", "2"]})).result()
    assert await summary() == {"ProvisioningState/succeeded": 3, "PowerState/deallocated": 2, "PowerState/running": 1}
    await (await sets.begin_start(RG, "pw")).result()
    await (await sets.begin_restart(RG, "pw")).result()
    await (await sets.begin_reimage(RG, "pw", {"instanceIds": ["2"]})).result()
    await (await vms.begin_power_off(RG, "pw", "2")).result()
    got = await vms.get(RG, "pw", "2", expand="instanceView")
    assert got.instance_view.statuses[1].code == "PowerState/stopped"
    assert got.instance_view.computer_name == "web000002"

    await (await sets.begin_delete_instances(RG, "pw", {"instanceIds": ["0", "2"]})).result()
    assert await instance_ids(arm, RG, "pw") == ["1"]
    assert (await sets.get(RG, "pw")).sku.capacity == 1
    assert await pool_members(arm, RG) == [member_id(arm, "pw", "1")]
    await (await vms.begin_delete(RG, "pw", "1", force_deletion=True)).result()
    assert await instance_ids(arm, RG, "pw") == []
    assert (await sets.get(RG, "pw")).sku.capacity == 0
    with pytest.raises(ResourceNotFoundError):
        await vms.get(RG, "pw", "1")
    await (await sets.begin_update(RG, "pw", {"sku": {"capacity": 1}})).result()
    assert await instance_ids(arm, RG, "pw") == ["3"]

    log = arm.admin
    assert await log.count(operation="Microsoft.Compute/virtualMachineScaleSets/powerOff/action") == 1
    assert await log.count(operation="Microsoft.Compute/virtualMachineScaleSets/delete/action") == 1
    assert await log.count(operation="Microsoft.Compute/virtualMachineScaleSets/manualUpgrade/action") == 0
    assert await log.count(operation="Microsoft.Compute/virtualMachineScaleSets/virtualMachines/start/action") == 1
    assert await log.count(operation="Microsoft.Compute/virtualMachineScaleSets/virtualMachines/delete") == 1
    assert await log.count(operation="Microsoft.Compute/virtualMachineScaleSets/instanceView/read") >= 1


async def test_list_paging_and_delete_releases_ips_and_pool(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    for index in range(4):
        await create_vmss(arm, RG, f"s{index}", vmss_body(env["subnet_id"], capacity=1, pool_id=env["pool_id"]))
    names = [v.name async for v in arm.compute.virtual_machine_scale_sets.list(RG)]  # page size 3: two pages
    assert names == ["s0", "s1", "s2", "s3"]
    assert len([v async for v in arm.compute.virtual_machine_scale_sets.list_all()]) == 4
    assert len(await pool_members(arm, RG)) == 4
    for index in range(4):
        await (await arm.compute.virtual_machine_scale_sets.begin_delete(RG, f"s{index}", force_deletion=True)).result()
    assert await pool_members(arm, RG) == []
    with pytest.raises(ResourceNotFoundError):
        await arm.compute.virtual_machine_scale_sets.get(RG, "s0")
    subnet = await arm.network.subnets.get(RG, "vnet1", "default")
    assert not subnet.ip_configurations
    nic = await create_nic(arm, RG, "after", env["subnet_id"])
    assert nic.ip_configurations[0].private_ip_address == "10.0.1.4"  # freed
    # the load balancer can go now
    await (await arm.network.load_balancers.begin_delete(RG, "lb1")).result()


async def test_validation(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    subnet = env["subnet_id"]
    sets = arm.compute.virtual_machine_scale_sets

    async def error_of(body: dict[str, Any]) -> HttpResponseError:
        with pytest.raises(HttpResponseError) as caught:
            await create_vmss(arm, RG, "bad", body)
        return caught.value

    assert (await error_of(vmss_body(subnet, size="Standard_Nope"))).error.code == "InvalidParameter"
    missing_subnet = subnet.replace("/default", "/nope")
    assert (await error_of(vmss_body(missing_subnet))).error.code == "InvalidResourceReference"
    missing_pool = env["pool_id"].replace("/pool", "/nope")
    assert (await error_of(vmss_body(subnet, pool_id=missing_pool))).error.code == "InvalidResourceReference"
    flexible = await error_of(vmss_body(subnet, orchestrationMode="Flexible"))
    assert flexible.status_code == 400 and "not supported by the emulator" in flexible.error.message
    bad_image = vmss_body(subnet)
    bad_image["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]["sku"] = "nope"
    assert (await error_of(bad_image)).error.code == "PlatformImageNotFound"
    no_user = vmss_body(subnet)
    no_user["properties"]["virtualMachineProfile"]["osProfile"]["adminUsername"] = "admin"
    assert (await error_of(no_user)).error.code == "InvalidParameter"
    with pytest.raises(ResourceNotFoundError):
        await sets.get(RG, "bad")
    await create_vmss(arm, RG, "ok", vmss_body(subnet, capacity=1))
    with pytest.raises(HttpResponseError) as immutable:
        await (await sets.begin_update(RG, "ok", {"location": "eastus"})).result()
    assert immutable.value.error.code == "PropertyChangeNotAllowed"
    with pytest.raises(HttpResponseError) as bad_ids:
        await (await sets.begin_update_instances(RG, "ok", {"instanceIds": ["7"]})).result()
    assert bad_ids.value.error.code == "InvalidParameter"


async def test_concurrent_write_is_rejected_while_in_flight(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    sets = arm.compute.virtual_machine_scale_sets
    arm.emulator.latency_scale = 1.0
    creating = await sets.begin_create_or_update(RG, "busy", vmss_body(env["subnet_id"], capacity=2))
    with pytest.raises(HttpResponseError) as busy:
        await sets.begin_update(RG, "busy", {"sku": {"capacity": 3}})
    assert busy.value.error.code == "OperationNotAllowed"
    assert [vm.provisioning_state for vm in await instances(arm, RG, "busy")] == ["Creating", "Creating"]
    arm.emulator.latency_scale = 0.0
    await (await sets.begin_delete(RG, "busy")).result()  # a delete preempts the create
    with pytest.raises(HttpResponseError):
        await creating.result()
    with pytest.raises(ResourceNotFoundError):
        await sets.get(RG, "busy")
    assert not (await arm.network.subnets.get(RG, "vnet1", "default")).ip_configurations


async def test_state_survives_restart(state_dir: Path) -> None:
    async with running_emulator(state_dir) as arm:
        env = await create_lb_network(arm, RG)
        await create_vmss(arm, RG, "dur", vmss_body(env["subnet_id"], capacity=2, pool_id=env["pool_id"]))
        await (await arm.compute.virtual_machine_scale_sets.begin_delete_instances(RG, "dur", {"instanceIds": ["0"]})
               ).result()
        ips = await instance_ips(arm, RG, "dur")
        port = arm.emulator.port

    async with running_emulator(state_dir, port) as arm:
        assert await instance_ids(arm, RG, "dur") == ["1"]
        assert await instance_ips(arm, RG, "dur") == ips
        assert await pool_members(arm, RG) == [member_id(arm, "dur", "1")]
        await (await arm.compute.virtual_machine_scale_sets.begin_update(RG, "dur", {"sku": {"capacity": 2}})).result()
        assert await instance_ids(arm, RG, "dur") == ["1", "2"]  # the id counter survived
        assert len(set(await instance_ips(arm, RG, "dur"))) == 2
