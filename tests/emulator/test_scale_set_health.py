"""Scale set instance health: ``vmHealth`` in instance views (with a health probe or an application health
extension) and the admin API that marks an instance unhealthy (``AdminClient.set_health``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import Arm, create_vnet, running_emulator
from scale_set_helpers import create_lb_network, create_vmss, instances, vmss_body

from azure_arm_emulator.admin import AdminError

RG = "rg"
HEALTH_EXTENSION = {
    "name": "health",
    "properties": {
        "publisher": "Microsoft.ManagedServices",
        "type": "ApplicationHealthLinux",
        "typeHandlerVersion": "1.0",
        "settings": {"protocol": "http", "port": 80, "requestPath": "/healthz"},
    },
}


def instance_id(arm: Arm, vmss: str, instance: str) -> str:
    return f"{arm.id(RG, 'Microsoft.Compute/virtualMachineScaleSets', vmss)}/virtualMachines/{instance}"


async def health_code(arm: Arm, vmss: str, instance: str) -> str | None:
    view = await arm.compute.virtual_machine_scale_set_vms.get_instance_view(RG, vmss, instance)
    return view.vm_health.status.code if view.vm_health is not None else None


async def probed_set(arm: Arm, name: str = "web", **kwargs: Any) -> None:
    env = await create_lb_network(arm, RG)
    await create_vmss(arm, RG, name, vmss_body(env["subnet_id"], pool_id=env["pool_id"], probe_id=env["probe_id"],
                                               **kwargs))


async def test_vm_health_with_a_health_probe(arm: Arm) -> None:
    await probed_set(arm, capacity=2)
    view = await arm.compute.virtual_machine_scale_set_vms.get_instance_view(RG, "web", "0")
    status = view.vm_health.status
    assert (status.code, status.level, status.display_status) == ("HealthState/healthy", "Info", "The VM is healthy")
    listed = await instances(arm, RG, "web", expand="instanceView")
    assert [vm.instance_view.vm_health.status.code for vm in listed] == ["HealthState/healthy"] * 2
    got = await arm.compute.virtual_machine_scale_set_vms.get(RG, "web", "1", expand="instanceView")
    assert got.instance_view.vm_health.status.code == "HealthState/healthy"


async def test_vm_health_with_an_application_health_extension_and_absent_without_signal(arm: Arm) -> None:
    vnet = await create_vnet(arm, RG)
    subnet_id = vnet.subnets[0].id
    body = vmss_body(subnet_id, capacity=1)
    body["properties"]["virtualMachineProfile"]["extensionProfile"] = {"extensions": [HEALTH_EXTENSION]}
    await create_vmss(arm, RG, "ext", body)
    await create_vmss(arm, RG, "plain", vmss_body(subnet_id, capacity=1))
    assert await health_code(arm, "ext", "0") == "HealthState/healthy"
    assert await health_code(arm, "plain", "0") is None
    listed = await instances(arm, RG, "plain", expand="instanceView")
    assert listed[0].instance_view.vm_health is None
    # the admin API accepts it (the setting applies once the set has a signal) and says there is no vmHealth
    result = await arm.admin.set_health(instance_id(arm, "plain", "0"), False)
    assert result == {"resource_id": instance_id(arm, "plain", "0"), "healthy": False, "vmHealth": None}
    assert await health_code(arm, "plain", "0") is None


async def test_set_health_and_what_keeps_it(arm: Arm) -> None:
    await probed_set(arm, capacity=2)
    vms = arm.compute.virtual_machine_scale_set_vms
    sets = arm.compute.virtual_machine_scale_sets
    result = await arm.admin.set_health(instance_id(arm, "web", "0"), False)
    assert result["healthy"] is False
    assert result["vmHealth"] == {"status": {"code": "HealthState/unhealthy", "level": "Warning",
                                             "displayStatus": "The VM is unhealthy"}}
    assert await health_code(arm, "web", "0") == "HealthState/unhealthy"
    assert await health_code(arm, "web", "1") == "HealthState/healthy"
    listed = {e["resource_id"].rsplit("/", 1)[-1]: e["healthy"] for e in await arm.admin.instance_health()}
    assert listed == {"0": False, "1": True}

    # a new model, manually applied: the upgraded instance stays unhealthy
    await (await sets.begin_update(RG, "web", {"sku": {"name": "Standard_B2ms"}})).result()
    await (await sets.begin_update_instances(RG, "web", {"instanceIds": ["0"]})).result()
    upgraded = await vms.get(RG, "web", "0")
    assert upgraded.latest_model_applied and upgraded.hardware_profile.vm_size == "Standard_B2ms"
    assert await health_code(arm, "web", "0") == "HealthState/unhealthy"
    for action in (vms.begin_reimage, vms.begin_redeploy):
        await (await action(RG, "web", "0")).result()
        assert await health_code(arm, "web", "0") == "HealthState/unhealthy"

    # not running: unknown, whatever the setting; running again: the setting shows again
    await (await vms.begin_power_off(RG, "web", "0")).result()
    await (await vms.begin_deallocate(RG, "web", "1")).result()
    assert await health_code(arm, "web", "0") == await health_code(arm, "web", "1") == "HealthState/unknown"
    view = await vms.get_instance_view(RG, "web", "1")
    assert (view.vm_health.status.level, view.vm_health.status.display_status) == (
        "Warning", "The VM health is unknown")
    await (await vms.begin_start(RG, "web", "0")).result()
    assert await health_code(arm, "web", "0") == "HealthState/unhealthy"
    await arm.admin.set_health(instance_id(arm, "web", "0"), True)
    assert await health_code(arm, "web", "0") == "HealthState/healthy"


async def test_set_health_errors(arm: Arm) -> None:
    await probed_set(arm, capacity=1)
    with pytest.raises(AdminError, match="404"):
        await arm.admin.set_health(instance_id(arm, "web", "7"), False)
    with pytest.raises(AdminError, match="404"):  # a scale set is not an instance
        await arm.admin.set_health(arm.id(RG, "Microsoft.Compute/virtualMachineScaleSets", "web"), False)
    with pytest.raises(AdminError, match="400"):
        await arm.admin._request("PUT", "instance-health", {"resource_id": instance_id(arm, "web", "0")})
    with pytest.raises(AdminError, match="400"):
        await arm.admin._request("PUT", "instance-health", {"resource_id": instance_id(arm, "web", "0"),
                                                            "healthy": "no"})
    assert await health_code(arm, "web", "0") == "HealthState/healthy"
    assert await arm.admin.count(path_contains="instance-health") == 0  # the admin API is never logged


async def test_health_setting_survives_restart(state_dir: Path) -> None:
    async with running_emulator(state_dir) as arm:
        await probed_set(arm, capacity=1)
        await arm.admin.set_health(instance_id(arm, "web", "0"), False)
        port = arm.emulator.port
    async with running_emulator(state_dir, port) as arm:
        assert await health_code(arm, "web", "0") == "HealthState/unhealthy"
