"""ARM bodies shared by VMs and scale set models: image, OS profile, disks. Pure."""

from __future__ import annotations

import base64
from typing import Any, Mapping, Protocol

from ..api.machine import DataDiskSpec, Machine


#: Power states as a VM's (or scale set instance's) instance view spells them.
POWER_STATE_NAMES = {"running": "Running", "starting": "Starting", "stopping": "Stopping", "stopped": "Stopped",
                     "deallocating": "Deallocating", "deallocated": "Deallocated"}


def power_state(instance_view: Mapping[str, Any] | None) -> str | None:
    """'Running', 'Stopped', 'Deallocated', ... from an instanceView's PowerState/<x> status; None if unknown."""
    for status in (instance_view or {}).get("statuses") or []:
        code = str(status.get("code") or "")
        if code.startswith("PowerState/"):
            raw = code.split("/", 1)[1]
            return POWER_STATE_NAMES.get(raw.lower(), raw.capitalize())
    return None


class MachineSecrets(Protocol):
    """What a machine is created with besides its spec (resolved by I/O beforehand; never logged)."""

    @property
    def admin_password(self) -> str | None: ...

    @property
    def custom_data(self) -> str | None: ...  #: base64, as ARM wants it


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def image_reference(spec: Machine) -> dict[str, Any]:
    if spec.image.id:
        return {"id": spec.image.id}
    m = spec.image.marketplace
    assert m is not None
    return {"publisher": m.publisher, "offer": m.offer, "sku": m.sku, "version": m.version}


def os_disk_body(spec: Machine) -> dict[str, Any]:
    disk: dict[str, Any] = {
        "createOption": "FromImage",
        "caching": spec.os_disk.caching or "ReadWrite",
        "deleteOption": "Delete" if spec.os_disk.delete_with_vm else "Detach",
        "managedDisk": {"storageAccountType": spec.os_disk.storage_account_type or "StandardSSD_LRS"},
    }
    if spec.os_disk.size_gb:
        disk["diskSizeGB"] = spec.os_disk.size_gb
    return disk


def new_data_disk_body(disk: DataDiskSpec) -> dict[str, Any]:
    return {
        "lun": disk.lun,
        "createOption": "Empty",
        "diskSizeGB": disk.size_gb,
        "caching": disk.caching,
        "deleteOption": "Delete" if disk.delete_with_vm else "Detach",
        "managedDisk": {"storageAccountType": disk.storage_account_type},
    }


def os_profile(spec: Machine, inputs: MachineSecrets, *, scale_set: bool = False) -> dict[str, Any]:
    """osProfile of a VM (computerName) or of a scale set model (computerNamePrefix)."""
    user = spec.admin_username
    profile: dict[str, Any] = {"adminUsername": user}
    if scale_set:  # instance names are the prefix plus 6 characters; Windows allows 15 in all
        profile["computerNamePrefix"] = spec.azure_name[:9 if spec.os_type == "Windows" else 58]
    else:
        profile["computerName"] = spec.azure_name[:15 if spec.os_type == "Windows" else 64]
    if inputs.admin_password:
        profile["adminPassword"] = inputs.admin_password
    if inputs.custom_data:
        profile["customData"] = inputs.custom_data
    if spec.os_type == "Windows":
        profile["windowsConfiguration"] = {"provisionVMAgent": True, "enableAutomaticUpdates": True}
    else:
        linux: dict[str, Any] = {"disablePasswordAuthentication": not inputs.admin_password}
        if spec.ssh_public_keys:
            linux["ssh"] = {"publicKeys": [{"path": f"/home/{user}/.ssh/authorized_keys", "keyData": key}
                                           for key in spec.ssh_public_keys]}
        profile["linuxConfiguration"] = linux
    return profile
