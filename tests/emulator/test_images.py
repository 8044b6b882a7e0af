"""Managed images and gallery images through the real async Compute SDK, and plain REST calls with the bodies of the
official image REST examples (their answers' structure: test_conformance)."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from compute_helpers import Net, create_vm, raw, storage
from emulator_helpers import LOCATION, Arm, vm_body, wait_for
from rest_examples import key_paths, load_example


async def _golden_vm(arm: Arm, net: Net) -> object:
    body = await net.body()
    storage(body)["osDisk"]["diskSizeGB"] = 48
    storage(body)["dataDisks"] = [{"lun": 0, "createOption": "Empty", "diskSizeGB": 10}]
    return await create_vm(arm, "rg", "golden", body)


async def test_image_from_a_vm_and_vms_from_the_image(arm: Arm) -> None:
    net = await Net.create(arm)
    golden = await _golden_vm(arm, net)
    images = arm.compute.images
    request = {"location": LOCATION, "properties": {"sourceVirtualMachine": {"id": golden.id}}}
    with pytest.raises(ResourceExistsError) as running:
        await images.begin_create_or_update("rg", "golden-image", request)
    assert running.value.error.code == "OperationNotAllowed" and "deallocated" in running.value.error.message
    await (await arm.compute.virtual_machines.begin_deallocate("rg", "golden")).result()
    image = await (await images.begin_create_or_update("rg", "golden-image", request)).result()
    assert image.provisioning_state == "Succeeded" and image.source_virtual_machine.id == golden.id
    osd = image.storage_profile.os_disk
    assert osd.os_type == "Linux" and osd.os_state == "Generalized"
    assert osd.managed_disk.id == golden.storage_profile.os_disk.managed_disk.id
    assert [d.lun for d in image.storage_profile.data_disks] == [0]
    assert [i.name async for i in images.list_by_resource_group("rg")] == ["golden-image"]

    body = await net.body(image={"id": image.id})
    storage(body)["dataDisks"] = [{"lun": 0, "createOption": "FromImage"}]
    vm = await create_vm(arm, "rg", "clone", body)
    assert vm.storage_profile.image_reference.id == image.id
    assert vm.storage_profile.os_disk.disk_size_gb == 48 and vm.storage_profile.data_disks[0].disk_size_gb == 10
    osd_resource = await arm.compute.disks.get("rg", vm.storage_profile.os_disk.name)
    assert osd_resource.creation_data.image_reference.id == image.id

    small = await net.body(image={"id": image.id})
    storage(small)["osDisk"]["diskSizeGB"] = 40
    with pytest.raises(ResourceExistsError) as too_small:
        await create_vm(arm, "rg", "small", small)
    assert "corresponding disk in the VM image: 48 GB" in too_small.value.error.message
    no_data = await net.body(image={"id": image.id})
    storage(no_data)["dataDisks"] = [{"lun": 5, "createOption": "FromImage"}]
    with pytest.raises(HttpResponseError) as no_lun:
        await create_vm(arm, "rg", "nolun", no_data)
    assert no_lun.value.status_code == 400

    await (await images.begin_delete("rg", "golden-image")).result()
    with pytest.raises(ResourceNotFoundError):
        await images.get("rg", "golden-image")
    gone = await net.body(image={"id": image.id})
    with pytest.raises(ResourceNotFoundError) as unknown:
        await create_vm(arm, "rg", "orphan", gone)
    assert unknown.value.error.code == "NotFound"


async def test_a_vm_cannot_use_an_image_still_being_created(arm: Arm) -> None:
    net = await Net.create(arm)
    golden = await _golden_vm(arm, net)
    await (await arm.compute.virtual_machines.begin_deallocate("rg", "golden")).result()
    image_id = golden.id.replace("virtualMachines/golden", "images/slow")
    early = await net.body(image={"id": image_id})
    arm.emulator.latency_scale = 1.0  # image creation now takes 20 s
    poller = await arm.compute.images.begin_create_or_update(
        "rg", "slow", {"location": LOCATION, "properties": {"sourceVirtualMachine": {"id": golden.id}}})
    with pytest.raises(ResourceExistsError) as not_ready:
        await create_vm(arm, "rg", "early", early)
    assert "until Image has been successfully created" in not_ready.value.error.message
    arm.emulator.latency_scale = 0.0
    await (await arm.compute.images.begin_delete("rg", "slow")).result()
    with pytest.raises(ResourceNotFoundError):
        await arm.compute.images.get("rg", "slow")
    assert not poller.done()  # the creation never finished: the image was deleted first


async def test_gallery_image_versions(arm: Arm) -> None:
    net = await Net.create(arm)
    golden = await _golden_vm(arm, net)
    await (await arm.compute.virtual_machines.begin_deallocate("rg", "golden")).result()
    image = await (await arm.compute.images.begin_create_or_update(
        "rg", "golden-image", {"location": LOCATION, "properties": {"sourceVirtualMachine": {"id": golden.id}}})).result()
    gallery = await (await arm.compute.galleries.begin_create_or_update(
        "rg", "gallery1", {"location": LOCATION, "properties": {"description": "team images"}})).result()
    assert gallery.provisioning_state == "Succeeded" and gallery.identifier.unique_name
    definition = await (await arm.compute.gallery_images.begin_create_or_update(
        "rg", "gallery1", "ubuntu", {
            "location": LOCATION,
            "properties": {"osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
                           "identifier": {"publisher": "contoso", "offer": "web", "sku": "22.04"}},
        })).result()
    versions = arm.compute.gallery_image_versions
    for name in ("1.0.0", "1.2.0"):
        version = await (await versions.begin_create_or_update(
            "rg", "gallery1", "ubuntu", name,
            {"location": LOCATION, "properties": {"storageProfile": {"source": {"id": image.id}}}})).result()
        assert version.provisioning_state == "Succeeded"
        assert version.storage_profile.os_disk_image.size_in_gb == 48
        assert version.storage_profile.data_disk_images[0].lun == 0
    with pytest.raises(HttpResponseError) as bad_name:
        await versions.begin_create_or_update("rg", "gallery1", "ubuntu", "latest",
                                              {"location": LOCATION, "properties": {"storageProfile": {"source": {"id": image.id}}}})
    assert bad_name.value.status_code == 400

    pinned = await create_vm(arm, "rg", "pinned", await net.body(image={"id": version.id}))
    assert pinned.storage_profile.os_disk.disk_size_gb == 48
    latest = await create_vm(arm, "rg", "latest", await net.body(image={"id": definition.id}))
    assert latest.storage_profile.image_reference.id == definition.id
    view = await arm.compute.virtual_machines.instance_view("rg", "latest")
    assert view.hyper_v_generation == "V2"
    with pytest.raises(ResourceNotFoundError) as unknown:
        await create_vm(arm, "rg", "nope", await net.body(image={"id": definition.id + "/versions/9.9.9"}))
    assert unknown.value.error.code == "NotFound"

    with pytest.raises(ResourceExistsError) as nested:
        await (await arm.compute.galleries.begin_delete("rg", "gallery1")).result()
    assert nested.value.error.code == "CannotDeleteResource"
    for name in ("1.0.0", "1.2.0"):
        await (await versions.begin_delete("rg", "gallery1", "ubuntu", name)).result()
    assert [v async for v in versions.list_by_gallery_image("rg", "gallery1", "ubuntu")] == []
    await (await arm.compute.gallery_images.begin_delete("rg", "gallery1", "ubuntu")).result()
    await (await arm.compute.galleries.begin_delete("rg", "gallery1")).result()


def _fill(example: dict, arm: Arm) -> dict:
    text = json.dumps(example).replace("{subscription-id}", arm.subscription).replace("{subscriptionId}", arm.subscription)
    return json.loads(text)


async def _ready(arm: Arm, path: str) -> bool:
    status, body, _ = await raw(arm, "GET", path)
    return status == 200 and body["properties"]["provisioningState"] == "Succeeded"


async def test_rest_example_requests(arm: Arm) -> None:
    """Every Image_* request is accepted as a long-running create; listing pages; deleting twice."""
    rg = "myResourceGroup"
    base = f"/subscriptions/{arm.subscription}/resourceGroups/{rg}/providers/Microsoft.Compute"
    await arm.resources.resource_groups.create_or_update(rg, {"location": "westus"})
    # what the examples refer to: a managed disk and a deallocated VM, in West US
    for disk in ("myManagedDisk", "myManagedDisk1", "myManagedDisk2"):
        status, answer, _ = await raw(arm, "PUT", f"{base}/disks/{disk}", {
            "location": "westus", "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 20}})
        assert status == 202, answer
    vnet = await (await arm.network.virtual_networks.begin_create_or_update(rg, "vnet", {
        "location": "westus", "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
                                             "subnets": [{"name": "s", "properties": {"addressPrefix": "10.1.0.0/24"}}]}})).result()
    nic = await (await arm.network.network_interfaces.begin_create_or_update(rg, "nic", {
        "location": "westus", "properties": {"ipConfigurations": [{"name": "ip", "properties": {"subnet": {"id": vnet.subnets[0].id}}}]}})).result()
    vm = vm_body(nic.id)
    vm["location"] = "westus"
    await create_vm(arm, rg, "myVM", vm)
    await (await arm.compute.virtual_machines.begin_deallocate(rg, "myVM")).result()

    for name in ("Image_CreateFromABlob.json", "Image_CreateFromAManagedDisk.json", "Image_CreateFromAVM.json"):
        example = _fill(load_example(f"compute/images/{name}"), arm)
        path = f"{base}/images/{name.removesuffix('.json')}"
        status, body, headers = await raw(arm, "PUT", path, example["parameters"]["parameters"],
                                          api_version=example["parameters"]["api-version"])
        assert status == 201 and "Azure-AsyncOperation" in headers, body
        assert body["properties"]["provisioningState"] == "Creating" and body["location"] == "westus"
        await wait_for(lambda path=path: _ready(arm, path), timeout=5, what=name)

    # the Get example shows every source at once (blob, snapshot, managed disk); send that shape and read it back
    get_example = _fill(load_example("compute/images/Image_Get.json"), arm)
    expected = get_example["responses"]["200"]["body"]
    request = {"location": expected["location"], "properties": json.loads(json.dumps(expected["properties"]))}
    request["properties"].pop("provisioningState")
    status, body, _ = await raw(arm, "PUT", f"{base}/images/myImage", request)
    assert status == 201, body
    await wait_for(lambda: _ready(arm, f"{base}/images/myImage"), timeout=5, what="myImage")
    status, got, _ = await raw(arm, "GET", f"{base}/images/myImage")
    # nothing beyond the Get example's keys but osDisk.caching (the Create examples show the server adding it)
    assert status == 200 and key_paths(got) - key_paths(expected) == {"properties.storageProfile.osDisk.caching"}
    status, page, _ = await raw(arm, "GET", f"{base}/images")
    assert status == 200 and len(page["value"]) == 3 and "nextLink" in page  # the tests' page size is 3
    assert len([i async for i in arm.compute.images.list_by_resource_group(rg)]) == 4

    delete = load_example("compute/images/Images_Delete_MinimumSet_Gen.json")
    status, _, headers = await raw(arm, "DELETE", f"{base}/images/myImage", api_version=delete["parameters"]["api-version"])
    assert str(status) in delete["responses"] and "Location" in headers
    await wait_for(lambda: _gone(arm, f"{base}/images/myImage"), timeout=5, what="image deletion")
    status, _, _ = await raw(arm, "DELETE", f"{base}/images/myImage")
    assert status == 204


async def _gone(arm: Arm, path: str) -> bool:
    return (await raw(arm, "GET", path))[0] == 404


async def test_an_image_captured_from_a_vm_reports_its_disks_as_arm_does(arm: Arm) -> None:
    """A captured image's disks carry diskSizeGB and storageAccountType (the source disks'), as the Get example's
    osDisk and dataDisks do; the image reports the generation of the source VM."""
    net = await Net.create(arm)
    body = await net.body()
    storage(body)["osDisk"]["diskSizeGB"] = 48  # Premium_LRS (vm_body)
    storage(body)["dataDisks"] = [{"lun": 0, "createOption": "Empty", "diskSizeGB": 10,
                                   "managedDisk": {"storageAccountType": "StandardSSD_LRS"}},
                                  {"lun": 1, "createOption": "Empty", "diskSizeGB": 20,
                                   "managedDisk": {"storageAccountType": "Standard_LRS"}}]
    golden = await create_vm(arm, "rg", "golden", body)
    await (await arm.compute.virtual_machines.begin_deallocate("rg", "golden")).result()
    await arm.compute.virtual_machines.generalize("rg", "golden")
    request = {"location": LOCATION, "properties": {"sourceVirtualMachine": {"id": golden.id}}}
    image = await (await arm.compute.images.begin_create_or_update("rg", "captured", request)).result()
    osd = image.storage_profile.os_disk
    assert (osd.disk_size_gb, osd.storage_account_type, osd.caching) == (48, "Premium_LRS", "ReadWrite")
    assert [(d.lun, d.disk_size_gb, d.storage_account_type) for d in image.storage_profile.data_disks] == [
        (0, 10, "StandardSSD_LRS"), (1, 20, "Standard_LRS")]
    view = await arm.compute.virtual_machines.instance_view("rg", "golden")
    assert image.hyper_v_generation == view.hyper_v_generation

    status, got, _ = await raw(arm, "GET", image.id)
    shown = load_example("compute/images/Image_Get.json")["responses"]["200"]["body"]["properties"]["storageProfile"]
    source_keys = {"blobUri", "snapshot"}  # the Get example's image has every source at once; this one a VM's disks
    assert status == 200
    assert set(got["properties"]["storageProfile"]["osDisk"]) == set(shown["osDisk"]) - source_keys | {"caching"}
    for disk in got["properties"]["storageProfile"]["dataDisks"]:
        assert set(shown["dataDisks"][0]) - source_keys <= set(disk)
