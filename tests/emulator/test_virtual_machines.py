"""Virtual machines through the real async Compute SDK: shapes, power states, updates and validation."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.compute.models import HardwareProfile, VirtualMachineUpdate
from emulator_helpers import LOCATION, UBUNTU, Arm, create_network, create_nic, vm_body


async def create_vm(arm: Arm, rg: str = "rg", name: str = "vm1", **kwargs: object) -> object:
    network = await create_network(arm, rg)
    poller = await arm.compute.virtual_machines.begin_create_or_update(rg, name, vm_body(network["nic"].id, **kwargs))
    return await poller.result()


def power_state(view: object) -> str:
    return next(s.code for s in view.statuses if s.code.startswith("PowerState/"))  # type: ignore[attr-defined]


async def test_create_and_get_shapes(arm: Arm) -> None:
    vm = await create_vm(arm)
    raw = vm.as_dict()  # type: ignore[attr-defined]  # wire format
    assert raw["id"] == arm.id("rg", "Microsoft.Compute/virtualMachines", "vm1")
    assert raw["type"] == "Microsoft.Compute/virtualMachines"
    assert raw["location"] == LOCATION and raw["tags"] == {"owner": "tests"}
    props = raw["properties"]
    assert props["provisioningState"] == "Succeeded"
    uuid.UUID(props["vmId"])
    assert props["timeCreated"]
    storage = props["storageProfile"]
    assert storage["imageReference"]["exactVersion"] == "22.04.202501140"
    assert storage["osDisk"]["osType"] == "Linux"
    assert storage["osDisk"]["name"].startswith("vm1_OsDisk_1_")
    assert storage["osDisk"]["managedDisk"]["id"].endswith(f"/providers/Microsoft.Compute/disks/{storage['osDisk']['name']}")
    assert storage["osDisk"]["managedDisk"]["storageAccountType"] == "Premium_LRS"
    assert "adminPassword" not in props["osProfile"] and "customData" not in props["osProfile"]
    assert props["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is True
    assert props["networkProfile"]["networkInterfaces"][0]["id"].endswith("/networkInterfaces/nic1")
    nic = await arm.network.network_interfaces.get("rg", "nic1")
    assert nic.virtual_machine.id == vm.id  # type: ignore[attr-defined]
    assert nic.mac_address

    expanded = await arm.compute.virtual_machines.get("rg", "vm1", expand="instanceView")
    statuses = [s.as_dict() for s in expanded.instance_view.statuses]
    assert statuses[0]["code"] == "ProvisioningState/succeeded"
    assert statuses[0]["displayStatus"] == "Provisioning succeeded" and statuses[0]["level"] == "Info"
    assert statuses[0]["time"]
    assert statuses[1] == {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}
    plain = await arm.compute.virtual_machines.get("rg", "vm1")
    assert plain.instance_view is None


async def test_password_never_returned(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    body = vm_body(network["nic"].id)
    body["properties"]["osProfile"] = {"adminUsername": "azureuser", "adminPassword": "S3cret!Passw0rd", "customData": "Zm9v"}
    await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", body)).result()
    requests = await arm.admin.resources()
    assert any(r["id"].endswith("/vm1") for r in requests)
    vm = await arm.compute.virtual_machines.get("rg", "vm1")
    assert vm.os_profile.admin_password is None and vm.os_profile.custom_data is None
    assert vm.os_profile.linux_configuration.disable_password_authentication is False
    assert "S3cret" not in str(arm.emulator.store.get(vm.id).to_json())


async def test_power_states(arm: Arm) -> None:
    await create_vm(arm)
    ops = arm.compute.virtual_machines

    async def state() -> str:
        return power_state(await ops.instance_view("rg", "vm1"))

    await (await ops.begin_power_off("rg", "vm1")).result()
    assert await state() == "PowerState/stopped"
    await (await ops.begin_start("rg", "vm1")).result()
    assert await state() == "PowerState/running"
    await (await ops.begin_restart("rg", "vm1")).result()
    assert await state() == "PowerState/running"
    await (await ops.begin_deallocate("rg", "vm1")).result()
    assert await state() == "PowerState/deallocated"
    with pytest.raises(ResourceExistsError) as exc_info:
        await (await ops.begin_restart("rg", "vm1")).result()
    assert exc_info.value.error.code == "OperationNotAllowed"
    assert "deallocated" in exc_info.value.error.message
    await (await ops.begin_start("rg", "vm1")).result()
    assert await state() == "PowerState/running"
    view = await ops.instance_view("rg", "vm1")
    assert view.computer_name == "vm1" and view.vm_agent is not None


async def test_update_size_with_put_and_patch(arm: Arm) -> None:
    vm = await create_vm(arm)
    vm.hardware_profile.vm_size = "Standard_D2s_v5"  # type: ignore[attr-defined]
    updated = await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm)).result()
    assert updated.hardware_profile.vm_size == "Standard_D2s_v5"
    assert updated.vm_id == vm.vm_id  # type: ignore[attr-defined]
    patched = await (
        await arm.compute.virtual_machines.begin_update(
            "rg", "vm1", VirtualMachineUpdate(hardware_profile=HardwareProfile(vm_size="Standard_B4ms"), tags={"x": "y"})
        )
    ).result()
    assert patched.hardware_profile.vm_size == "Standard_B4ms"
    assert patched.tags == {"x": "y"}
    assert patched.os_profile.admin_username == "azureuser"
    assert power_state(await arm.compute.virtual_machines.instance_view("rg", "vm1")) == "PowerState/running"


async def test_validation_errors(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    nic_id = network["nic"].id
    ops = arm.compute.virtual_machines

    async def create(body: dict, name: str = "bad") -> None:
        await (await ops.begin_create_or_update("rg", name, body)).result()

    with pytest.raises(HttpResponseError) as exc_info:
        await create(vm_body(nic_id, size="Standard_Huge"))
    assert exc_info.value.status_code == 400
    assert exc_info.value.error.code == "InvalidParameter" and exc_info.value.error.target == "vmSize"

    with pytest.raises(ResourceNotFoundError) as not_found:
        await create(vm_body(nic_id, image={**UBUNTU, "sku": "99_04"}))
    assert not_found.value.error.code == "PlatformImageNotFound"
    assert not_found.value.error.message == (
        "The platform image 'Canonical:0001-com-ubuntu-server-jammy:99_04:latest' is not available. "
        "Verify that all fields in the storage profile are correct."
    )
    with pytest.raises(ResourceNotFoundError) as bad_version:
        await create(vm_body(nic_id, image={**UBUNTU, "version": "1.2.3"}))
    assert bad_version.value.error.code == "PlatformImageNotFound"

    with pytest.raises(ResourceNotFoundError) as custom:
        await create(vm_body(nic_id, image={"id": arm.id("rg", "Microsoft.Compute/images", "golden")}))
    assert custom.value.error.code == "NotFound"

    missing_nic = arm.id("rg", "Microsoft.Network/networkInterfaces", "ghost")
    with pytest.raises(HttpResponseError) as nic_error:
        await create(vm_body(missing_nic))
    assert nic_error.value.error.code == "InvalidParameter" and "ghost" in nic_error.value.error.message

    body = vm_body(nic_id)
    del body["properties"]["osProfile"]["adminUsername"]
    with pytest.raises(HttpResponseError) as username:
        await create(body)
    assert username.value.error.code == "InvalidParameter"

    body = vm_body(nic_id)
    body["properties"]["osProfile"]["linuxConfiguration"] = {}
    with pytest.raises(HttpResponseError) as credentials:
        await create(body)
    assert credentials.value.error.code == "InvalidParameter" and credentials.value.error.target == "adminPassword"

    body = vm_body(nic_id)
    del body["location"]
    with pytest.raises(HttpResponseError) as location:
        await create(body)
    assert location.value.error.code == "LocationRequired"

    with pytest.raises(ResourceNotFoundError) as group:
        await (await ops.begin_create_or_update("no-such-rg", "vm", vm_body(nic_id))).result()
    assert group.value.error.code == "ResourceGroupNotFound"

    # nothing half-created by the failed attempts
    assert [vm async for vm in ops.list("rg")] == []
    nic = await arm.network.network_interfaces.get("rg", "nic1")
    assert nic.virtual_machine is None


async def test_nic_in_use_by_another_vm(arm: Arm) -> None:
    vm = await create_vm(arm)
    nic_id = vm.network_profile.network_interfaces[0].id  # type: ignore[attr-defined]
    with pytest.raises(HttpResponseError) as exc_info:
        await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm2", vm_body(nic_id))).result()
    assert exc_info.value.error.code == "NicInUse"


async def test_immutable_properties(arm: Arm) -> None:
    await create_vm(arm)
    network = await arm.network.network_interfaces.get("rg", "nic1")
    ops = arm.compute.virtual_machines
    changes = [
        ("osProfile.adminUsername", lambda b: b["properties"]["osProfile"].update(adminUsername="other")),
        ("osProfile.computerName", lambda b: b["properties"]["osProfile"].update(computerName="other")),
        ("imageReference", lambda b: b["properties"]["storageProfile"]["imageReference"].update(sku="22_04-lts")),
        ("location", lambda b: b.update(location="eastus")),
    ]
    for target, change in changes:
        body = vm_body(network.id)
        change(body)
        with pytest.raises(ResourceExistsError) as exc_info:
            await (await ops.begin_create_or_update("rg", "vm1", body)).result()
        assert exc_info.value.status_code == 409
        assert exc_info.value.error.code == "PropertyChangeNotAllowed"
        assert exc_info.value.error.target == target


async def test_operation_in_progress_conflict(arm: Arm) -> None:
    await create_vm(arm)
    arm.emulator.latency_scale = 1.0  # power off now takes ~10 s
    poller = await arm.compute.virtual_machines.begin_power_off("rg", "vm1")
    with pytest.raises(ResourceExistsError) as exc_info:
        await arm.compute.virtual_machines.begin_start("rg", "vm1")
    assert exc_info.value.error.code == "OperationNotAllowed"
    assert "in the middle of operation 'powerOff'" in exc_info.value.error.message
    arm.emulator.latency_scale = 0.0
    # deletion preempts the running operation
    await (await arm.compute.virtual_machines.begin_delete("rg", "vm1")).result()
    with pytest.raises(HttpResponseError):
        await poller.result()


async def test_delete_vm_then_nic_and_listing(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    ops = arm.compute.virtual_machines
    await (await ops.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id))).result()
    subnet_id = network["subnet"].id
    for index in range(2, 6):
        nic = await create_nic(arm, "rg", f"nic{index}", subnet_id)
        await (await ops.begin_create_or_update("rg", f"vm{index}", vm_body(nic.id))).result()
    names = [vm.name async for vm in ops.list("rg")]
    assert names == ["vm1", "vm2", "vm3", "vm4", "vm5"]  # across pages of 3
    assert len([vm async for vm in ops.list_all()]) == 5
    with pytest.raises(HttpResponseError) as in_use:
        await (await arm.network.network_interfaces.begin_delete("rg", "nic1")).result()
    assert in_use.value.error.code == "NicInUse"
    await (await ops.begin_delete("rg", "vm1")).result()
    nic = await arm.network.network_interfaces.get("rg", "nic1")
    assert nic.virtual_machine is None
    await (await arm.network.network_interfaces.begin_delete("rg", "nic1")).result()
    with pytest.raises(ResourceNotFoundError):
        await arm.network.network_interfaces.get("rg", "nic1")
    await (await ops.begin_delete("rg", "vm1")).result()  # already gone: 204, no error


async def test_nic_delete_option_and_spot_eviction(arm: Arm) -> None:
    network = await create_network(arm, "rg")
    body = vm_body(network["nic"].id, size="Standard_D2s_v5")
    body["properties"].update(priority="Spot", evictionPolicy="Deallocate", billingProfile={"maxPrice": -1})
    body["properties"]["networkProfile"]["networkInterfaces"][0]["properties"]["deleteOption"] = "Delete"
    vm = await (await arm.compute.virtual_machines.begin_create_or_update("rg", "spot", body)).result()
    assert vm.priority == "Spot"
    result = await arm.admin.evict_vm(vm.id)
    assert result["result"] == "deallocated"
    view = await arm.compute.virtual_machines.instance_view("rg", "spot")
    assert power_state(view) == "PowerState/deallocated"
    await arm.compute.virtual_machines.simulate_eviction("rg", "spot")
    await (await arm.compute.virtual_machines.begin_delete("rg", "spot")).result()
    with pytest.raises(ResourceNotFoundError):
        await arm.network.network_interfaces.get("rg", "nic1")
