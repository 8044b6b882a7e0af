"""Pure translation between the VirtualMachine spec and ARM request/response bodies (plain dicts, ARM wire names).

Nothing here does I/O, so every decision (what to create, what changed, what the status says) is unit-testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..api.constants import CREATED_BY_TAG, CREATED_BY_VALUE, OWNER_TAG
from ..api.virtualmachine import VirtualMachineSpec

#: Address plan of the virtual network the operator creates per resource group and location.
AUTO_VNET_PREFIX = "10.224.0.0/16"
AUTO_SUBNET_NAME = "azvm-subnet"
AUTO_SUBNET_PREFIX = "10.224.0.0/20"

POWER_STATE_NAMES = {
    "running": "Running",
    "starting": "Starting",
    "stopping": "Stopping",
    "stopped": "Stopped",
    "deallocating": "Deallocating",
    "deallocated": "Deallocated",
}


def created_by_tags() -> dict[str, str]:
    return {CREATED_BY_TAG: CREATED_BY_VALUE}


def owned_tags(spec: VirtualMachineSpec, owner: str) -> dict[str, str]:
    """The tags the VM and the resources created only for it carry: the user's tags plus ownership."""
    return {**spec.tags, OWNER_TAG: owner, CREATED_BY_TAG: CREATED_BY_VALUE}


def is_owned_by(resource: Mapping[str, Any], owner: str) -> bool:
    return (resource.get("tags") or {}).get(OWNER_TAG) == owner


# ---- names and ids -------------------------------------------------------------------------------------------


def auto_vnet_name(location: str) -> str:
    return f"azvm-vnet-{location}"


def nic_name(spec: VirtualMachineSpec) -> str:
    return f"{spec.azure_name}-nic"


def public_ip_name(spec: VirtualMachineSpec) -> str:
    return f"{spec.azure_name}-pip"


def subnet_id(subscription_id: str, resource_group: str, vnet: str, subnet: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}"
    )


# ---- desired bodies ------------------------------------------------------------------------------------------


def resource_group_body(location: str) -> dict[str, Any]:
    return {"location": location, "tags": created_by_tags()}


def auto_vnet_body(location: str) -> dict[str, Any]:
    return {
        "location": location,
        "tags": created_by_tags(),
        "properties": {
            "addressSpace": {"addressPrefixes": [AUTO_VNET_PREFIX]},
            "subnets": [{"name": AUTO_SUBNET_NAME, "properties": {"addressPrefix": AUTO_SUBNET_PREFIX}}],
        },
    }


def public_ip_body(spec: VirtualMachineSpec, owner: str) -> dict[str, Any]:
    return {
        "location": spec.location,
        "tags": owned_tags(spec, owner),
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"},
    }


def nic_body(spec: VirtualMachineSpec, owner: str, subnet: str, public_ip_id: str | None) -> dict[str, Any]:
    ip_config: dict[str, Any] = {"subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic"}
    if public_ip_id:
        ip_config["publicIPAddress"] = {"id": public_ip_id}
    return {
        "location": spec.location,
        "tags": owned_tags(spec, owner),
        "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": ip_config}]},
    }


def vm_body(spec: VirtualMachineSpec, owner: str, nic_id: str) -> dict[str, Any]:
    user = spec.admin_username
    return {
        "location": spec.location,
        "tags": owned_tags(spec, owner),
        "properties": {
            "hardwareProfile": {"vmSize": spec.size},
            "storageProfile": {
                "imageReference": {
                    "publisher": spec.image.publisher,
                    "offer": spec.image.offer,
                    "sku": spec.image.sku,
                    "version": spec.image.version,
                },
                "osDisk": {
                    "createOption": "FromImage",
                    "deleteOption": "Delete",
                    "managedDisk": {"storageAccountType": "Standard_LRS"},
                },
            },
            "osProfile": {
                "computerName": spec.azure_name[:64],
                "adminUsername": user,
                "linuxConfiguration": {
                    "disablePasswordAuthentication": True,
                    "ssh": {
                        "publicKeys": [
                            {"path": f"/home/{user}/.ssh/authorized_keys", "keyData": key}
                            for key in spec.ssh_public_keys
                        ]
                    },
                },
            },
            "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True}}]},
        },
    }


# ---- observed -> diff ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VmDiff:
    """What differs between the spec and the VM in Azure."""

    patch: dict[str, Any] = field(default_factory=dict)  #: a PATCH body for what can change in place
    drifted: tuple[str, ...] = ()  #: spec paths that differ and can be corrected in place
    immutable: tuple[str, ...] = ()  #: spec paths that differ but Azure cannot change on an existing VM

    @property
    def empty(self) -> bool:
        return not self.patch and not self.immutable


def diff_vm(spec: VirtualMachineSpec, owner: str, observed: Mapping[str, Any]) -> VmDiff:
    props = observed.get("properties") or {}
    patch: dict[str, Any] = {}
    drifted: list[str] = []
    immutable: list[str] = []

    observed_size = (props.get("hardwareProfile") or {}).get("vmSize")
    if observed_size is not None and str(observed_size).lower() != spec.size.lower():
        patch.setdefault("properties", {})["hardwareProfile"] = {"vmSize": spec.size}
        drifted.append("spec.size")

    desired_tags = owned_tags(spec, owner)
    if dict(observed.get("tags") or {}) != desired_tags:
        patch["tags"] = desired_tags
        drifted.append("spec.tags")

    image = (props.get("storageProfile") or {}).get("imageReference") or {}
    for key in ("publisher", "offer", "sku"):
        if image.get(key) is not None and str(image[key]).lower() != getattr(spec.image, key).lower():
            immutable.append(f"spec.image.marketplace.{key}")
    if spec.image.version != "latest" and image.get("version") not in (None, spec.image.version):
        immutable.append("spec.image.marketplace.version")

    os_profile = props.get("osProfile") or {}
    if os_profile.get("adminUsername") not in (None, spec.admin_username):
        immutable.append("spec.adminUsername")
    observed_keys = [
        k.get("keyData", "").strip()
        for k in ((os_profile.get("linuxConfiguration") or {}).get("ssh") or {}).get("publicKeys") or []
    ]
    if observed_keys and sorted(observed_keys) != sorted(spec.ssh_public_keys):
        immutable.append("spec.sshPublicKeys")

    return VmDiff(patch=patch, drifted=tuple(drifted), immutable=tuple(immutable))


def power_state(instance_view: Mapping[str, Any] | None) -> str | None:
    """'Running', 'Stopped', 'Deallocated', ... from an instanceView's PowerState/<x> status; None if unknown."""
    for status in (instance_view or {}).get("statuses") or []:
        code = str(status.get("code") or "")
        if code.startswith("PowerState/"):
            raw = code.split("/", 1)[1]
            return POWER_STATE_NAMES.get(raw.lower(), raw.capitalize())
    return None


def power_action(desired: str, observed: str | None) -> str | None:
    """The ARM action ('start', 'power_off', 'deallocate') that moves observed power state to desired, if any."""
    if observed is None or observed in ("Starting", "Stopping", "Deallocating"):
        return None  # unknown or already moving: look again later
    if desired == "Running" and observed in ("Stopped", "Deallocated"):
        return "start"
    if desired == "Stopped" and observed == "Running":
        return "power_off"
    if desired == "Deallocated" and observed in ("Running", "Stopped"):
        return "deallocate"
    return None


def private_ip(nic: Mapping[str, Any] | None) -> str | None:
    for config in ((nic or {}).get("properties") or {}).get("ipConfigurations") or []:
        address = (config.get("properties") or {}).get("privateIPAddress")
        if address:
            return str(address)
    return None


def nic_public_ip_id(nic: Mapping[str, Any] | None) -> str | None:
    for config in ((nic or {}).get("properties") or {}).get("ipConfigurations") or []:
        ref = (config.get("properties") or {}).get("publicIPAddress") or {}
        if ref.get("id"):
            return str(ref["id"])
    return None


def nic_subnet_id(nic: Mapping[str, Any] | None) -> str | None:
    for config in ((nic or {}).get("properties") or {}).get("ipConfigurations") or []:
        ref = (config.get("properties") or {}).get("subnet") or {}
        if ref.get("id"):
            return str(ref["id"])
    return None


def public_ip_address(public_ip: Mapping[str, Any] | None) -> str | None:
    address = ((public_ip or {}).get("properties") or {}).get("ipAddress")
    return str(address) if address else None
