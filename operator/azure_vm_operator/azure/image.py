"""The Image kind in ARM's terms: the managed image's body per source, the diff (only tags change in place) and
the status read from what Azure has. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..api.constants import OWNER_TAG
from ..api.image import ImageSpec
from .ownership import Identity, owned_tags


def image_body(spec: ImageSpec, identity: Identity, source_vm_id: str | None = None) -> dict[str, Any]:
    """The PUT body of the managed image; ``source_vm_id``: the Azure id of the source VirtualMachine (resolved by
    the controller) for fromVirtualMachine."""
    properties: dict[str, Any] = {}
    if spec.source == "fromVirtualMachine":
        assert source_vm_id, "fromVirtualMachine needs the source VM's Azure id"
        properties["sourceVirtualMachine"] = {"id": source_vm_id}
    else:
        os_disk: dict[str, Any] = {"osType": spec.os_type, "osState": spec.os_state}
        if spec.managed_disk_id:
            os_disk["managedDisk"] = {"id": spec.managed_disk_id}
        else:
            os_disk["blobUri"] = spec.blob_uri
        properties["storageProfile"] = {"osDisk": os_disk}
    if spec.hyper_v_generation:
        properties["hyperVGeneration"] = spec.hyper_v_generation
    return {"location": spec.location, "tags": owned_tags(spec.tags, identity), "properties": properties}


@dataclass(frozen=True)
class ImageDiff:
    patch: dict[str, Any] = field(default_factory=dict)
    drifted: tuple[str, ...] = ()
    immutable: tuple[str, ...] = ()  #: an image is never changed but for its tags


def diff_image(spec: ImageSpec, identity: Identity, observed: Mapping[str, Any],
               source_vm_id: str | None = None) -> ImageDiff:
    props = observed.get("properties") or {}
    patch: dict[str, Any] = {}
    drifted: list[str] = []
    immutable: list[str] = []
    observed_tags = dict(observed.get("tags") or {})
    desired_tags = owned_tags(spec.tags, identity)
    if observed_tags != desired_tags:
        patch["tags"] = desired_tags
        if {**observed_tags, OWNER_TAG: desired_tags.get(OWNER_TAG)} != desired_tags:
            drifted.append("spec.tags")
    os_disk = (props.get("storageProfile") or {}).get("osDisk") or {}
    if spec.os_type and os_disk.get("osType") and os_disk["osType"] != spec.os_type:
        immutable.append("spec.osType")
    if os_disk.get("osState") and os_disk["osState"] != spec.os_state:
        immutable.append("spec.osState")
    if spec.hyper_v_generation and props.get("hyperVGeneration") and props["hyperVGeneration"] != spec.hyper_v_generation:
        immutable.append("spec.hyperVGeneration")
    if spec.managed_disk_id and (os_disk.get("managedDisk") or {}).get("id", "").lower() != spec.managed_disk_id.lower():
        immutable.append("spec.fromManagedDisk.id")
    if spec.blob_uri and os_disk.get("blobUri") != spec.blob_uri:
        immutable.append("spec.fromBlob.uri")
    observed_vm = ((props.get("sourceVirtualMachine") or {}).get("id") or "").lower()
    if source_vm_id and observed_vm and observed_vm != source_vm_id.lower():
        immutable.append("spec.fromVirtualMachine.name")
    return ImageDiff(patch=patch, drifted=tuple(drifted), immutable=tuple(immutable))


def image_status(image: Mapping[str, Any] | None, spec: ImageSpec) -> dict[str, Any]:
    """The Azure facts of status: id, provisioning state, source, OS and generation."""
    image = image or {}
    props = image.get("properties") or {}
    os_disk = (props.get("storageProfile") or {}).get("osDisk") or {}
    source_vm = (props.get("sourceVirtualMachine") or {}).get("id")
    return {
        "azureResourceId": image.get("id"),
        "provisioningState": props.get("provisioningState"),
        "source": spec.source_description,
        "sourceVirtualMachineId": source_vm,
        "osType": os_disk.get("osType"),
        "osState": os_disk.get("osState"),
        "hyperVGeneration": props.get("hyperVGeneration"),
        "osDiskSizeGB": os_disk.get("diskSizeGB"),
    }
