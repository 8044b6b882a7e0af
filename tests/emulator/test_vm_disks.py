"""OS and data disks of VMs, and managed disks as resources, through the real async Compute SDK."""

from __future__ import annotations

import copy

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.compute.models import DataDisk, StorageProfile, VirtualMachineUpdate
from compute_helpers import Net, create_vm, power_state, storage
from emulator_helpers import LOCATION, Arm


async def test_os_and_data_disks_are_disk_resources(arm: Arm) -> None:
    net = await Net.create(arm)
    body = await net.body()
    storage(body)["osDisk"].update(diskSizeGB=64, caching="ReadOnly", deleteOption="Delete")
    storage(body)["dataDisks"] = [
        {"lun": 0, "createOption": "Empty", "diskSizeGB": 32, "deleteOption": "Delete",
         "managedDisk": {"storageAccountType": "StandardSSD_LRS"}},
        {"lun": 1, "createOption": "Empty", "diskSizeGB": 16, "name": "logs"},
    ]
    vm = await create_vm(arm, "rg", "vm1", body)
    os_disk = vm.storage_profile.os_disk
    assert os_disk.name.startswith("vm1_OsDisk_1_") and len(os_disk.name) == len("vm1_OsDisk_1_") + 32
    assert os_disk.disk_size_gb == 64 and os_disk.caching == "ReadOnly" and os_disk.delete_option == "Delete"
    assert os_disk.managed_disk.storage_account_type == "Premium_LRS"
    data = {d.lun: d for d in vm.storage_profile.data_disks}
    assert data[0].name.startswith("vm1_disk2_") and data[0].caching == "None" and data[0].delete_option == "Delete"
    assert data[1].name == "logs" and data[1].delete_option == "Detach"  # ARM's default
    assert data[1].managed_disk.id.endswith("/providers/Microsoft.Compute/disks/logs")

    disks = {d.name: d async for d in arm.compute.disks.list_by_resource_group("rg")}
    assert set(disks) == {os_disk.name, data[0].name, "logs"}
    osd = disks[os_disk.name]
    assert osd.disk_size_gb == 64 and osd.sku.name == "Premium_LRS" and osd.os_type == "Linux"
    assert osd.disk_state == "Attached" and osd.managed_by == vm.id and osd.id == os_disk.managed_disk.id
    assert osd.creation_data.create_option == "FromImage" and "/Publishers/Canonical/" in osd.creation_data.image_reference.id
    assert disks[data[0].name].sku.name == "StandardSSD_LRS" and disks["logs"].disk_size_gb == 16

    with pytest.raises(ResourceExistsError) as attached:
        await (await arm.compute.disks.begin_delete("rg", "logs")).result()
    assert attached.value.error.code == "OperationNotAllowed"
    assert attached.value.error.message == f"Disk logs is attached to VM {vm.id}."

    await (await arm.compute.virtual_machines.begin_delete("rg", "vm1")).result()
    left = {d.name: d async for d in arm.compute.disks.list_by_resource_group("rg")}
    assert set(left) == {"logs"}  # deleteOption Delete took the others
    assert left["logs"].disk_state == "Unattached" and left["logs"].managed_by is None

    # the detached disk can be attached to another VM, then deleted once free again
    body = await net.body()
    storage(body)["dataDisks"] = [{"lun": 3, "createOption": "Attach", "managedDisk": {"id": left["logs"].id}}]
    vm2 = await create_vm(arm, "rg", "vm2", body)
    assert vm2.storage_profile.data_disks[0].name == "logs" and vm2.storage_profile.data_disks[0].disk_size_gb == 16
    assert (await arm.compute.disks.get("rg", "logs")).managed_by == vm2.id
    await (await arm.compute.virtual_machines.begin_delete("rg", "vm2")).result()
    os_left = [d async for d in arm.compute.disks.list_by_resource_group("rg") if d.name.startswith("vm2_OsDisk")]
    assert os_left and os_left[0].disk_state == "Unattached"  # the OS disk's default deleteOption is Detach
    await (await arm.compute.disks.begin_delete("rg", "logs")).result()
    with pytest.raises(ResourceNotFoundError):
        await arm.compute.disks.get("rg", "logs")


async def test_data_disks_change_on_a_running_vm(arm: Arm) -> None:
    net = await Net.create(arm)
    await create_vm(arm, "rg", "vm1", await net.body())
    ops = arm.compute.virtual_machines
    add = VirtualMachineUpdate(storage_profile=StorageProfile(data_disks=[
        DataDisk(lun=0, create_option="Empty", disk_size_gb=32)]))
    vm = await (await ops.begin_update("rg", "vm1", add)).result()
    assert [(d.lun, d.disk_size_gb) for d in vm.storage_profile.data_disks] == [(0, 32)]
    assert power_state(await ops.instance_view("rg", "vm1")) == "PowerState/running"
    name = vm.storage_profile.data_disks[0].name

    vm.storage_profile.data_disks[0].disk_size_gb = 64  # grow: done in place
    vm = await (await ops.begin_create_or_update("rg", "vm1", vm)).result()
    assert vm.storage_profile.data_disks[0].disk_size_gb == 64
    assert (await arm.compute.disks.get("rg", name)).disk_size_gb == 64

    vm.storage_profile.data_disks[0].disk_size_gb = 16
    with pytest.raises(ResourceExistsError) as shrink:
        await (await ops.begin_create_or_update("rg", "vm1", vm)).result()
    assert shrink.value.error.code == "ResizeDiskError" and "reduction is not supported" in shrink.value.error.message

    vm.storage_profile.data_disks[0].disk_size_gb = 64
    vm.storage_profile.data_disks[0].to_be_detached = True
    poller = await ops.begin_create_or_update("rg", "vm1", vm)
    vm = await poller.result()
    assert vm.storage_profile.data_disks == []
    disk = await arm.compute.disks.get("rg", name)
    assert disk.disk_state == "Unattached" and disk.managed_by is None
    assert power_state(await ops.instance_view("rg", "vm1")) == "PowerState/running"


async def test_os_disk_size_rules(arm: Arm) -> None:
    net = await Net.create(arm)
    ops = arm.compute.virtual_machines
    body = await net.body()
    storage(body)["osDisk"]["diskSizeGB"] = 20
    with pytest.raises(ResourceExistsError) as small:
        await create_vm(arm, "rg", "vm1", body)
    assert small.value.error.code == "OperationNotAllowed" and small.value.error.target == "osDisk.diskSizeGB"
    assert "corresponding disk in the VM image: 30 GB" in small.value.error.message
    storage(body)["osDisk"]["diskSizeGB"] = 40
    vm = await create_vm(arm, "rg", "vm1", body)
    assert vm.storage_profile.os_disk.disk_size_gb == 40

    vm.storage_profile.os_disk.disk_size_gb = 35
    with pytest.raises(ResourceExistsError) as shrink:
        await (await ops.begin_create_or_update("rg", "vm1", vm)).result()
    assert shrink.value.error.code == "ResizeDiskError" and shrink.value.error.target == "osDisk.diskSizeGB"
    vm.storage_profile.os_disk.disk_size_gb = 50
    with pytest.raises(ResourceExistsError) as running:
        await (await ops.begin_create_or_update("rg", "vm1", vm)).result()
    assert running.value.error.code == "Conflict"
    assert running.value.error.message == ("Disk resizing is allowed only when creating a VM or when the VM is "
                                           "deallocated.")
    await (await ops.begin_deallocate("rg", "vm1")).result()
    vm = await (await ops.begin_create_or_update("rg", "vm1", vm)).result()
    assert vm.storage_profile.os_disk.disk_size_gb == 50
    assert (await arm.compute.disks.get("rg", vm.storage_profile.os_disk.name)).disk_size_gb == 50


async def test_disk_validation(arm: Arm) -> None:
    net = await Net.create(arm)
    nic_body = await net.body()

    async def rejected(change: object, size: str = "Standard_B2s") -> HttpResponseError:
        body = {**nic_body, "properties": {**nic_body["properties"], "hardwareProfile": {"vmSize": size}}}
        body = copy.deepcopy(body)
        change(storage(body))  # type: ignore[operator]
        with pytest.raises(HttpResponseError) as exc_info:
            await create_vm(arm, "rg", "bad", body)
        return exc_info.value

    premium = await rejected(lambda s: None, size="Standard_A1_v2")  # the default body asks for Premium_LRS
    assert premium.status_code == 400 and premium.error.code == "InvalidParameter"
    assert "'Premium_LRS' is not supported for VM size 'Standard_A1_v2'" in premium.error.message

    def standard(s: dict) -> None:
        s["osDisk"]["managedDisk"]["storageAccountType"] = "Standard_LRS"
        s["dataDisks"] = [{"lun": i, "createOption": "Empty", "diskSizeGB": 8} for i in range(3)]

    too_many = await rejected(standard, size="Standard_A1_v2")
    assert too_many.status_code == 409 and too_many.error.code == "OperationNotAllowed"
    assert too_many.error.message == "The maximum number of data disks allowed to be attached to a VM of this size is 2."

    duplicate = await rejected(lambda s: s.update(dataDisks=[{"lun": 1, "createOption": "Empty", "diskSizeGB": 8}] * 2))
    assert duplicate.status_code == 400 and duplicate.error.message == "A disk at LUN 1 already exists."
    lun = await rejected(lambda s: s.update(dataDisks=[{"lun": 64, "createOption": "Empty", "diskSizeGB": 8}]))
    assert lun.status_code == 400 and lun.error.code == "InvalidParameter"
    caching = await rejected(lambda s: s["osDisk"].update(caching="WriteBack"))
    assert caching.status_code == 400 and caching.error.target == "osDisk.caching"
    sku = await rejected(lambda s: s["osDisk"]["managedDisk"].update(storageAccountType="Turbo_LRS"))
    assert sku.status_code == 400 and sku.error.code == "InvalidParameter"
    no_size = await rejected(lambda s: s.update(dataDisks=[{"lun": 0, "createOption": "Empty"}]))
    assert no_size.status_code == 400 and no_size.error.target == "dataDisks[0].diskSizeGB"
    ghost = f"/subscriptions/{arm.subscription}/resourceGroups/rg/providers/Microsoft.Compute/disks/ghost"
    missing = await rejected(lambda s: s.update(dataDisks=[{"lun": 0, "createOption": "Attach", "managedDisk": {"id": ghost}}]))
    assert missing.status_code == 404 and missing.error.code == "NotFound"
    assert [d async for d in arm.compute.disks.list_by_resource_group("rg")] == []  # nothing half-created

    # a standalone empty disk; attached to one VM it cannot be attached to another
    disk = await (await arm.compute.disks.begin_create_or_update(
        "rg", "shared", {"location": LOCATION, "sku": {"name": "Premium_LRS"},
                         "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 100}})).result()
    assert disk.disk_state == "Unattached" and disk.tier == "P10" and disk.provisioning_state == "Succeeded"
    body = await net.body()
    storage(body)["dataDisks"] = [{"lun": 0, "createOption": "Attach", "managedDisk": {"id": disk.id}}]
    owner = await create_vm(arm, "rg", "owner", body)
    taken = await rejected(lambda s: s.update(dataDisks=[{"lun": 0, "createOption": "Attach", "managedDisk": {"id": disk.id}}]))
    assert taken.status_code == 409 and taken.error.code == "ConflictingUserInput"
    assert f"already owned by VM '{owner.id}'" in taken.error.message

    # resizing the VM to a size with fewer data disk slots is refused
    owner.storage_profile.data_disks += [DataDisk(lun=i, create_option="Empty", disk_size_gb=4) for i in (1, 2, 3)]
    owner = await (await arm.compute.virtual_machines.begin_create_or_update("rg", "owner", owner)).result()
    assert len(owner.storage_profile.data_disks) == 4
    owner.hardware_profile.vm_size = "Standard_B1s"
    with pytest.raises(ResourceExistsError) as fewer:
        await (await arm.compute.virtual_machines.begin_create_or_update("rg", "owner", owner)).result()
    assert fewer.value.error.message.endswith("of this size is 2.")
