"""The Image and AvailabilitySet kinds in ARM's terms (pure): specs, bodies, diffs, status; and the references
VirtualMachine and ScaleSet specs make to them."""

from __future__ import annotations

import dataclasses

import pytest

from azure_vm_operator.api import availabilityset as avapi
from azure_vm_operator.api import image as imgapi
from azure_vm_operator.api import scaleset as ssapi
from azure_vm_operator.api import virtualmachine as vmapi
from azure_vm_operator.api.fields import SpecError
from azure_vm_operator.azure import availabilityset as avt
from azure_vm_operator.azure import image as imt
from azure_vm_operator.azure import virtualmachine as vmt
from azure_vm_operator.azure.machine import image_reference
from azure_vm_operator.azure.ownership import Identity

SUB = "00000000-0000-0000-0000-000000000001"
IMG_ID = f"/subscriptions/{SUB}/resourceGroups/img-rg/providers/Microsoft.Compute/images/golden"
SET_ID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/availabilitySets/web"
VM_ID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/src"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVxUo3ZP3wv0vY3W4nKJt2f5Q0mPp0m2v7O1l8h4aDm x@y"
PLACE = {"location": "westeurope", "resourceGroup": "rg"}


def identity(kind: str) -> Identity:
    return Identity("c1", kind, "ns", "x", "uid-1")


# ---- Image ---------------------------------------------------------------------------------------------------


def test_an_image_from_a_vm_defaults_and_body():
    spec = imgapi.parse_spec({**PLACE, "fromVirtualMachine": {"name": "src"}}, "golden", SUB)
    assert (spec.source, spec.source_vm, spec.after_capture, spec.os_state) == (
        "fromVirtualMachine", "src", "KeepDeallocated", "Generalized")
    assert spec.hyper_v_generation is None  # the VM's own
    body = imt.image_body(spec, identity("Image"), VM_ID)
    assert body["properties"] == {"sourceVirtualMachine": {"id": VM_ID}}
    assert body["tags"]["azvm-owner"] == "c1/Image/ns/x"
    assert spec.image_id.endswith("/resourceGroups/rg/providers/Microsoft.Compute/images/golden")


def test_images_from_a_disk_and_a_blob():
    disk = imgapi.parse_spec({**PLACE, "fromManagedDisk": {"id": "/d"}, "osType": "Windows",
                              "osState": "Specialized", "hyperVGeneration": "V2"}, "i", SUB)
    assert imt.image_body(disk, identity("Image"))["properties"] == {
        "storageProfile": {"osDisk": {"osType": "Windows", "osState": "Specialized", "managedDisk": {"id": "/d"}}},
        "hyperVGeneration": "V2"}
    blob = imgapi.parse_spec({**PLACE, "fromBlob": {"uri": "https://a/b.vhd"}, "osType": "Linux"}, "i", SUB)
    assert imt.image_body(blob, identity("Image"))["properties"] == {
        "storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized", "blobUri": "https://a/b.vhd"}},
        "hyperVGeneration": "V1"}


@pytest.mark.parametrize("spec, message", [
    ({}, "exactly one source"),
    ({"fromBlob": {"uri": "https://a"}, "fromManagedDisk": {"id": "/d"}, "osType": "Linux"}, "exactly one source"),
    ({"fromBlob": {"uri": "https://a"}}, "osType is required"),
    ({"fromVirtualMachine": {"name": "src"}, "osState": "Specialized"}, "Generalized"),
    ({"fromVirtualMachine": {"name": "src", "afterCapture": "Stop"}}, "afterCapture"),
])
def test_invalid_image_specs(spec, message):
    with pytest.raises(SpecError, match=message):
        imgapi.parse_spec({**PLACE, **spec}, "i", SUB)


def test_an_image_changes_only_its_tags():
    spec = imgapi.parse_spec({**PLACE, "fromBlob": {"uri": "https://a/b.vhd"}, "osType": "Linux",
                              "tags": {"team": "a"}}, "i", SUB)
    observed = {"id": IMG_ID, "tags": {"team": "b"}, "properties": {
        "provisioningState": "Succeeded", "hyperVGeneration": "V1",
        "storageProfile": {"osDisk": {"osType": "Windows", "osState": "Generalized", "blobUri": "https://a/b.vhd",
                                      "diskSizeGB": 30}}}}
    diff = imt.diff_image(spec, identity("Image"), observed)
    assert diff.patch["tags"]["team"] == "a" and diff.drifted == ("spec.tags",)
    assert diff.immutable == ("spec.osType",)
    status = imt.image_status(observed, spec)
    assert status["azureResourceId"] == IMG_ID and status["osDiskSizeGB"] == 30
    assert status["source"] == "blob https://a/b.vhd"


# ---- AvailabilitySet -----------------------------------------------------------------------------------------


def test_an_availability_set_defaults_body_and_diff():
    spec = avapi.parse_spec(PLACE, "web", SUB)
    assert (spec.fault_domains, spec.update_domains, spec.sku) == (2, 5, "Aligned")
    body = avt.set_body(spec, identity("AvailabilitySet"))
    assert body["sku"] == {"name": "Aligned"} and body["properties"]["platformFaultDomainCount"] == 2
    observed = {**body, "id": SET_ID, "sku": {"name": "Classic"},
                "properties": {"platformFaultDomainCount": 3, "platformUpdateDomainCount": 5}}
    diff = avt.diff_set(spec, identity("AvailabilitySet"), observed)
    assert diff.patch == {"sku": {"name": "Aligned"}} and diff.immutable == ("spec.platformFaultDomainCount",)
    back = avt.diff_set(dataclasses.replace(spec, sku="Classic"), identity("AvailabilitySet"),
                        {**body, "sku": {"name": "Aligned"}})
    assert back.immutable == ("spec.sku",)
    with pytest.raises(SpecError, match="1 to 3"):
        avapi.parse_spec({**PLACE, "platformFaultDomainCount": 4}, "web", SUB)


def test_members_carry_the_domains_of_their_instance_views():
    avset = {"id": SET_ID, "properties": {"virtualMachines": [{"id": VM_ID.replace("src", "b")},
                                                              {"id": VM_ID.replace("src", "a").upper()}]}}
    vms = {VM_ID.replace("src", "a").lower(): {"name": "a", "properties": {"instanceView": {
        "platformFaultDomain": 1, "platformUpdateDomain": 3}}}}
    assert avt.members(avset, vms) == [
        {"name": "a", "id": VM_ID.replace("src", "a").upper(), "faultDomain": 1, "updateDomain": 3},
        {"name": "b", "id": VM_ID.replace("src", "b")}]  # a member not read yet has no domains


# ---- references from VirtualMachine and ScaleSet -------------------------------------------------------------

VM_SPEC = {**PLACE, "size": "Standard_B2s", "adminUsername": "azureuser", "sshPublicKeys": [KEY],
           "image": {"imageRef": {"name": "golden"}}}


def test_a_vm_names_an_image_and_an_availability_set_resource():
    spec = vmapi.parse_spec({**VM_SPEC, "availabilitySetRef": {"name": "web"}}, "vm", SUB)
    assert spec.image.image_ref == "golden" and spec.image.id is None
    assert spec.availability_set_ref == "web" and vmt.availability_set_id(spec) is None  # not resolved yet
    resolved = dataclasses.replace(spec, image=dataclasses.replace(spec.image, id=IMG_ID),
                                   resolved_availability_set_id=SET_ID)
    body = vmt.vm_body(resolved, identity("VirtualMachine"), "/nic")
    assert body["properties"]["storageProfile"]["imageReference"] == {"id": IMG_ID}
    assert body["properties"]["availabilitySet"] == {"id": SET_ID}
    observed = {**body, "properties": {**body["properties"], "provisioningState": "Succeeded"}}
    assert "spec.availabilitySetRef" not in vmt.diff_vm(resolved, identity("VirtualMachine"), observed).immutable


@pytest.mark.parametrize("extra, message", [
    ({"availabilitySet": "other"}, "only one of"),
    ({"zone": "1"}, "zonal"),
])
def test_an_availability_set_ref_excludes_an_inline_set_and_a_zone(extra, message):
    with pytest.raises(SpecError, match=message):
        vmapi.parse_spec({**VM_SPEC, "availabilitySetRef": {"name": "web"}, **extra}, "vm", SUB)


def test_a_scale_set_names_an_image_resource():
    spec = ssapi.parse_spec({**VM_SPEC, "replicas": 2}, "web", SUB)
    assert spec.image.image_ref == "golden"
    resolved = dataclasses.replace(spec, image=dataclasses.replace(spec.image, id=IMG_ID))
    assert image_reference(resolved) == {"id": IMG_ID}
