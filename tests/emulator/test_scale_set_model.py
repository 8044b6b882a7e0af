"""Issue #8's gaps, found by replaying the official REST examples: data disk defaults of a scale set model,
``hardwareProfile.vmSizeProperties`` on the instances, ``{vmss}/skus`` and ``{vm}/vmSizes`` (through the sync SDK
client, as a user's code calls them), instance redeploy, and ``enableConnectionTracking`` of load-balancing rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from compute_helpers import create_vm, raw
from emulator_helpers import Arm, create_network, create_vnet, in_thread, sync_client, vm_body
from scale_set_helpers import create_lb_network, create_vmss, instances, vmss_body

from azure_arm_emulator import catalog

RG = "rg"
CATALOGUE = [size.name for size in catalog.VM_SIZES]


def profile(body: dict[str, Any]) -> dict[str, Any]:
    return body["properties"]["virtualMachineProfile"]


async def subnet(arm: Arm) -> str:
    return str((await create_vnet(arm, RG)).subnets[0].id)


# data disks of the model ------------------------------------------------------------------------------------------


async def test_model_data_disks_get_arm_defaults(arm: Arm) -> None:
    body = vmss_body(await subnet(arm), capacity=1)  # Standard_B2s: premium storage
    profile(body)["storageProfile"]["dataDisks"] = [
        {"lun": 0, "createOption": "Empty", "diskSizeGB": 64},
        {"lun": 1, "createOption": "empty", "diskSizeGB": 32, "caching": "readonly",
         "managedDisk": {"storageAccountType": "StandardSSD_LRS"}},
    ]
    vmss = await create_vmss(arm, RG, "web", body)
    first, second = vmss.virtual_machine_profile.storage_profile.data_disks
    assert (first.caching, first.managed_disk.storage_account_type, first.create_option) == (
        "None", "Premium_LRS", "Empty")
    assert (second.caching, second.managed_disk.storage_account_type, second.create_option) == (
        "ReadOnly", "StandardSSD_LRS", "Empty")
    (instance,) = await instances(arm, RG, "web")
    disks = instance.storage_profile.data_disks
    assert [(d.lun, d.caching, d.managed_disk.storage_account_type) for d in disks] == [
        (0, "None", "Premium_LRS"), (1, "ReadOnly", "StandardSSD_LRS")]
    # sending the same disks again (without the defaults) is not a new model
    await (await arm.compute.virtual_machine_scale_sets.begin_update(RG, "web", {"properties": {
        "virtualMachineProfile": {"storageProfile": {"dataDisks": profile(body)["storageProfile"]["dataDisks"]}}}}
    )).result()
    assert (await instances(arm, RG, "web"))[0].latest_model_applied


async def test_model_data_disks_on_a_standard_size_and_validation(arm: Arm) -> None:
    subnet_id = await subnet(arm)
    body = vmss_body(subnet_id, capacity=0, size="Standard_D2_v2")
    profile(body)["storageProfile"]["osDisk"]["managedDisk"]["storageAccountType"] = "Standard_LRS"
    profile(body)["storageProfile"]["dataDisks"] = [{"lun": 3, "diskSizeGB": 16}]
    vmss = await create_vmss(arm, RG, "std", body)
    (disk,) = vmss.virtual_machine_profile.storage_profile.data_disks
    assert (disk.caching, disk.managed_disk.storage_account_type, disk.create_option) == ("None", "Standard_LRS", "Empty")

    bad_disks = {
        "premium on a size without premium storage": (
            [{"lun": 0, "diskSizeGB": 8, "managedDisk": {"storageAccountType": "Premium_LRS"}}], 400),
        "same LUN twice": ([{"lun": 0, "diskSizeGB": 8}, {"lun": 0, "diskSizeGB": 8}], 400),
        "LUN out of range": ([{"lun": 64, "diskSizeGB": 8}], 400),
        "attach is not for scale sets": ([{"lun": 0, "createOption": "Attach"}], 400),
        "empty disk without a size": ([{"lun": 0, "createOption": "Empty"}], 400),
        "from an image without data disks": ([{"lun": 0, "createOption": "FromImage"}], 400),
        "unknown caching": ([{"lun": 0, "diskSizeGB": 8, "caching": "Sometimes"}], 400),
        "more disks than the size takes": ([{"lun": n, "diskSizeGB": 8} for n in range(9)], 409),
    }
    for reason, (data_disks, status) in bad_disks.items():
        bad = copy.deepcopy(body)
        profile(bad)["storageProfile"]["dataDisks"] = data_disks
        with pytest.raises(HttpResponseError) as caught:
            await create_vmss(arm, RG, "bad", bad)
        assert caught.value.status_code == status, reason


# vmSizeProperties -------------------------------------------------------------------------------------------------


async def test_vm_size_properties_reach_the_instances(arm: Arm) -> None:
    body = vmss_body(await subnet(arm), capacity=2)  # Standard_B2s: 2 vCPUs
    profile(body)["hardwareProfile"] = {"vmSizeProperties": {"vCPUsAvailable": 1, "vCPUsPerCore": 1}}
    vmss = await create_vmss(arm, RG, "web", body)
    assert vmss.virtual_machine_profile.hardware_profile.vm_size_properties.v_cpus_available == 1
    for instance in await instances(arm, RG, "web"):
        hardware = instance.hardware_profile
        assert hardware.vm_size == "Standard_B2s"
        assert (hardware.vm_size_properties.v_cpus_available, hardware.vm_size_properties.v_cpus_per_core) == (1, 1)
    # a change of vmSizeProperties is a new model (Manual: applied by manualUpgrade)
    sets = arm.compute.virtual_machine_scale_sets
    await (await sets.begin_update(RG, "web", {"properties": {"virtualMachineProfile": {
        "hardwareProfile": {"vmSizeProperties": {"vCPUsAvailable": 2}}}}})).result()
    assert [vm.latest_model_applied for vm in await instances(arm, RG, "web")] == [False, False]
    await (await sets.begin_update_instances(RG, "web", {"instanceIds": ["1"]})).result()
    upgraded = await arm.compute.virtual_machine_scale_set_vms.get(RG, "web", "1")
    assert upgraded.hardware_profile.vm_size_properties.v_cpus_available == 2

    for wrong in ({"vCPUsAvailable": 3}, {"vCPUsAvailable": 0}, {"vCPUsPerCore": 3}, {"vCPUsAvailable": "1"}):
        bad = copy.deepcopy(body)
        profile(bad)["hardwareProfile"] = {"vmSizeProperties": wrong}
        with pytest.raises(HttpResponseError) as caught:
            await create_vmss(arm, RG, "bad", bad)
        assert caught.value.status_code == 400 and caught.value.error.code == "InvalidParameter"


# the new endpoints, through the sync SDK -------------------------------------------------------------------------


async def test_list_skus_of_a_scale_set_with_the_sync_sdk(arm: Arm) -> None:
    subnet_id = await subnet(arm)
    await create_vmss(arm, RG, "web", vmss_body(subnet_id, capacity=1))
    await create_vmss(arm, RG, "big", vmss_body(subnet_id, capacity=0, singlePlacementGroup=False))
    compute = sync_client(arm.emulator, ComputeManagementClient)
    try:
        skus = await in_thread(lambda: list(compute.virtual_machine_scale_sets.list_skus(RG, "web")))
        big = await in_thread(lambda: list(compute.virtual_machine_scale_sets.list_skus(RG, "big")))
        with pytest.raises(ResourceNotFoundError):
            await in_thread(lambda: list(compute.virtual_machine_scale_sets.list_skus(RG, "missing")))
    finally:
        compute.close()
    assert [s.sku.name for s in skus] == CATALOGUE  # the page size is 3: nextLink paging was followed
    first = skus[0]
    assert first.resource_type == "Microsoft.Compute/virtualMachineScaleSets" and first.sku.tier == "Standard"
    capacity = first.capacity
    assert (capacity.minimum, capacity.maximum, capacity.default_capacity, capacity.scale_type) == (
        0, 100, 1, "Automatic")
    assert {s.capacity.maximum for s in big} == {1000}


async def test_list_available_sizes_of_a_vm_with_the_sync_sdk(arm: Arm) -> None:
    network = await create_network(arm, RG, with_public_ip=False)
    await create_vm(arm, RG, "vm1", vm_body(network["nic"].id))
    compute = sync_client(arm.emulator, ComputeManagementClient)
    try:
        sizes = await in_thread(lambda: list(compute.virtual_machines.list_available_sizes(RG, "vm1")))
        with pytest.raises(ResourceNotFoundError):
            await in_thread(lambda: list(compute.virtual_machines.list_available_sizes(RG, "missing")))
    finally:
        compute.close()
    assert [s.name for s in sizes] == CATALOGUE
    b2s = next(s for s in sizes if s.name == "Standard_B2s")
    assert (b2s.number_of_cores, b2s.memory_in_mb, b2s.max_data_disk_count, b2s.os_disk_size_in_mb) == (
        2, 4096, 4, 1047552)
    assert await arm.admin.count(method="GET", operation="virtualMachines/vmSizes/read") == 2


async def test_redeploy_an_instance_with_the_sync_sdk(arm: Arm) -> None:
    await create_vmss(arm, RG, "web", vmss_body(await subnet(arm), capacity=2))
    vms = arm.compute.virtual_machine_scale_set_vms
    await (await vms.begin_power_off(RG, "web", "1")).result()
    await arm.admin.clear_requests()
    compute = sync_client(arm.emulator, ComputeManagementClient)
    try:
        for instance in ("0", "1"):
            await in_thread(lambda i=instance: compute.virtual_machine_scale_set_vms.begin_redeploy(RG, "web", i)
                            .result())
        with pytest.raises(HttpResponseError) as caught:
            await in_thread(lambda: compute.virtual_machine_scale_set_vms.begin_redeploy(RG, "web", "9").result())
    finally:
        compute.close()
    assert caught.value.status_code == 404
    # the instances keep their power state and are provisioned again
    powers = {}
    for instance in await instances(arm, RG, "web", expand="instanceView"):
        assert instance.provisioning_state == "Succeeded"
        powers[instance.instance_id] = [s.code for s in instance.instance_view.statuses if s.code.startswith("Power")]
    assert powers == {"0": ["PowerState/running"], "1": ["PowerState/stopped"]}
    assert await arm.admin.count(method="POST", operation="virtualMachines/redeploy/action") == 3


async def test_redeploy_is_an_operation_of_the_instance(arm: Arm) -> None:
    await create_vmss(arm, RG, "web", vmss_body(await subnet(arm), capacity=1))
    arm.emulator.latency_scale = 1.0  # 30 s realistic: still running when the next request comes
    vms = arm.compute.virtual_machine_scale_set_vms
    poller = await vms.begin_redeploy(RG, "web", "0", polling=False)
    await poller.result()
    instance = await vms.get(RG, "web", "0")
    assert instance.provisioning_state == "Updating"
    with pytest.raises(HttpResponseError) as caught:
        await (await vms.begin_restart(RG, "web", "0")).result()
    assert caught.value.status_code == 409 and caught.value.error.code == "OperationNotAllowed"
    assert "redeploy" in caught.value.error.message


# load-balancing rules ------------------------------------------------------------------------------------------------


async def test_load_balancing_rule_enable_connection_tracking(arm: Arm) -> None:
    env = await create_lb_network(arm, RG)
    rule = env["lb"].load_balancing_rules[0]
    assert rule.enable_connection_tracking is False
    lb_id = arm.id(RG, "Microsoft.Network/loadBalancers", "lb1")
    status, body, _ = await raw(arm, "GET", lb_id, api_version="2025-05-01")
    assert status == 200
    props = body["properties"]["loadBalancingRules"][0]["properties"]
    props["enableConnectionTracking"] = True
    props["protocol"] = "Udp"
    status, answer, _ = await raw(arm, "PUT", lb_id, body, api_version="2025-05-01")
    assert status == 200, answer
    got = await arm.network.load_balancer_load_balancing_rules.get(RG, "lb1", "ssh")
    assert got.enable_connection_tracking is True
    props["enableConnectionTracking"] = "yes"
    status, answer, _ = await raw(arm, "PUT", lb_id, body, api_version="2025-05-01")
    assert status == 400 and answer["error"]["code"] == "InvalidRequestFormat"
