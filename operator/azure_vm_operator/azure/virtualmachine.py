"""The VirtualMachine kind in ARM's terms: names of what is created for a VM, the VM body, and the diff between
the spec and what Azure has (plain dicts, ARM wire names). Pure: every decision is unit-testable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..api.virtualmachine import VirtualMachineSpec
from . import ids
from .machine import b64, image_reference, new_data_disk_body, os_disk_body, os_profile
from .ownership import Identity, created_by_tags, owned_tags



# ---- names of what is created for one VM ---------------------------------------------------------------------


def nic_name(spec: VirtualMachineSpec) -> str:
    return f"{spec.azure_name}-nic"


def public_ip_name(spec: VirtualMachineSpec) -> str:
    return f"{spec.azure_name}-pip"


def nsg_name(spec: VirtualMachineSpec) -> str:
    return f"{spec.azure_name}-nsg"


def availability_set_id(spec: VirtualMachineSpec) -> str | None:
    if spec.availability_set_ref is not None:
        return spec.resolved_availability_set_id  # an AvailabilitySet resource's, resolved by the controller
    if spec.availability_set is None:
        return None
    return ids.availability_set_id(spec.subscription_id, spec.resource_group, spec.availability_set.name)


def availability_set_body(spec: VirtualMachineSpec) -> dict[str, Any]:
    assert spec.availability_set is not None
    return {
        "location": spec.location,
        "tags": created_by_tags(),
        "sku": {"name": "Aligned"},
        "properties": {
            "platformFaultDomainCount": spec.availability_set.fault_domains,
            "platformUpdateDomainCount": spec.availability_set.update_domains,
        },
    }


def vm_tags(spec: VirtualMachineSpec, identity: Identity) -> dict[str, str]:
    """The tags of the VM and of what is created only for it (NIC, public IP, NSG)."""
    return owned_tags(spec.tags, identity)


def zones(spec: VirtualMachineSpec) -> tuple[str, ...]:
    return (spec.zone,) if spec.zone else ()


@dataclass(frozen=True)
class VmInputs:
    """What the VM body needs besides the spec, resolved by I/O beforehand (never logged: holds secrets)."""

    nic_id: str
    admin_password: str | None = field(default=None, repr=False)
    custom_data: str | None = field(default=None, repr=False)  #: base64, as ARM wants it


def vm_body(spec: VirtualMachineSpec, identity: Identity, inputs: VmInputs | str) -> dict[str, Any]:
    if isinstance(inputs, str):
        inputs = VmInputs(nic_id=inputs)
    properties: dict[str, Any] = {
        "hardwareProfile": {"vmSize": spec.size},
        "storageProfile": {
            "imageReference": image_reference(spec),
            "osDisk": os_disk_body(spec),
            "dataDisks": [new_data_disk_body(d) for d in spec.data_disks],
        },
        "osProfile": os_profile(spec, inputs),
        "networkProfile": {"networkInterfaces": [{"id": inputs.nic_id, "properties": {"primary": True}}]},
    }
    if spec.user_data:
        properties["userData"] = b64(spec.user_data)
    if availability_set_id(spec):
        properties["availabilitySet"] = {"id": availability_set_id(spec)}
    if spec.priority == "Spot":
        properties["priority"] = "Spot"
        properties["evictionPolicy"] = spec.eviction_policy
        properties["billingProfile"] = {"maxPrice": spec.max_price}
    body: dict[str, Any] = {"location": spec.location, "tags": vm_tags(spec, identity), "properties": properties}
    if spec.zone:
        body["zones"] = [spec.zone]
    return body


# ---- observed -> diff ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VmDiff:
    """What differs between the spec and the VM in Azure."""

    patch: dict[str, Any] = field(default_factory=dict)  #: a PATCH body for what can change in place
    drifted: tuple[str, ...] = ()  #: spec paths that differ and can be corrected in place
    immutable: tuple[str, ...] = ()  #: spec paths that differ but Azure cannot change on an existing VM
    rejected: tuple[str, ...] = ()  #: changes Azure refuses outright (e.g. shrinking a disk), with the reason
    detached_luns: tuple[int, ...] = ()  #: data disks the PATCH detaches (the disks themselves are kept)
    os_disk_resize: int | None = None  #: a bigger OS disk, which Azure applies only to a deallocated VM

    @property
    def empty(self) -> bool:
        return not self.patch and not self.immutable and not self.rejected and self.os_disk_resize is None


def os_disk_resize_patch(size_gb: int) -> dict[str, Any]:
    return {"properties": {"storageProfile": {"osDisk": {"diskSizeGB": size_gb}}}}


def ignored_paths(spec: VirtualMachineSpec) -> tuple[str, ...]:
    """spec.ignoreDriftFields as full spec paths ("size" and "spec.size" both mean spec.size)."""
    return tuple(f if f.startswith("spec.") else f"spec.{f}" for f in spec.policies.ignore_drift_fields)


def is_ignored(path: str, ignore: tuple[str, ...]) -> bool:
    return any(path == i or path.startswith(i + ".") or path.startswith(i + "[") for i in ignore)


def _desired_tags(spec: VirtualMachineSpec, identity: Identity, observed: Mapping[str, str],
                  ignore: tuple[str, ...]) -> dict[str, str]:
    desired = vm_tags(spec, identity)
    if is_ignored("spec.tags", ignore):
        return {**observed, **{k: v for k, v in desired.items() if k not in spec.tags}}
    for key, value in observed.items():
        if is_ignored(f"spec.tags.{key}", ignore):
            desired[key] = value
    return desired


def diff_vm(spec: VirtualMachineSpec, identity: Identity, observed: Mapping[str, Any]) -> VmDiff:
    props = observed.get("properties") or {}
    ignore = ignored_paths(spec)
    patch: dict[str, Any] = {}
    drifted: list[str] = []
    immutable: list[str] = []
    rejected: list[str] = []
    os_disk_resize: int | None = None

    def changeable(path: str) -> bool:
        return not is_ignored(path, ignore)

    observed_size = (props.get("hardwareProfile") or {}).get("vmSize")
    if changeable("spec.size") and observed_size is not None and str(observed_size).lower() != spec.size.lower():
        patch.setdefault("properties", {})["hardwareProfile"] = {"vmSize": spec.size}
        drifted.append("spec.size")

    observed_tags = dict(observed.get("tags") or {})
    desired_tags = _desired_tags(spec, identity, observed_tags, ignore)
    if observed_tags != desired_tags:
        patch["tags"] = desired_tags
        if _user_tags(observed_tags) != _user_tags(desired_tags):
            drifted.append("spec.tags")
        # else: only the operator's own tags (azvm-*: ownership, created-by, uid) are written, e.g. on a VM
        # taken over or imported: not drift the user made, nor one reconcilePolicy Observe reports

    storage = props.get("storageProfile") or {}
    image = storage.get("imageReference") or {}
    if spec.image.marketplace is not None:
        if image.get("id"):
            immutable.append("spec.image")
        for key in ("publisher", "offer", "sku"):
            if image.get(key) is not None and str(image[key]).lower() != getattr(spec.image.marketplace, key).lower():
                immutable.append(f"spec.image.marketplace.{key}")
        version = spec.image.marketplace.version
        if version != "latest" and image.get("version") not in (None, version):
            immutable.append("spec.image.marketplace.version")
    elif image.get("id") is not None and str(image["id"]).lower() != str(spec.image.id).lower():
        immutable.append("spec.image.id")

    os_disk = storage.get("osDisk") or {}
    observed_os_size = os_disk.get("diskSizeGB")
    if spec.os_disk.size_gb and observed_os_size and changeable("spec.osDisk.sizeGB"):
        if spec.os_disk.size_gb > observed_os_size:
            os_disk_resize = spec.os_disk.size_gb  # Azure resizes an OS disk only while the VM is deallocated
        elif spec.os_disk.size_gb < observed_os_size:
            rejected.append(f"spec.osDisk.sizeGB: {spec.os_disk.size_gb} GB is smaller than the OS disk in Azure "
                            f"({observed_os_size} GB); managed disks cannot shrink")
    observed_os_type = (os_disk.get("managedDisk") or {}).get("storageAccountType")
    if spec.os_disk.storage_account_type and observed_os_type and observed_os_type != spec.os_disk.storage_account_type:
        immutable.append("spec.osDisk.storageAccountType")

    data_patch, data_drift, data_rejected, data_immutable, detached = _diff_data_disks(
        spec, storage.get("dataDisks") or [], ignore)
    if data_patch is not None:
        patch.setdefault("properties", {}).setdefault("storageProfile", {})["dataDisks"] = data_patch
        drifted.extend(data_drift)
    rejected.extend(data_rejected)
    immutable.extend(data_immutable)

    if spec.user_data is not None and changeable("spec.userData"):  # observed with $expand=userData
        if props.get("userData") != b64(spec.user_data):
            patch.setdefault("properties", {})["userData"] = b64(spec.user_data)
            drifted.append("spec.userData")

    os_profile_observed = props.get("osProfile") or {}
    if os_profile_observed.get("adminUsername") not in (None, spec.admin_username):
        immutable.append("spec.adminUsername")
    observed_keys = [
        k.get("keyData", "").strip()
        for k in ((os_profile_observed.get("linuxConfiguration") or {}).get("ssh") or {}).get("publicKeys") or []
    ]
    if observed_keys and sorted(observed_keys) != sorted(spec.ssh_public_keys):
        immutable.append("spec.sshPublicKeys")

    zones = observed.get("zones") or []
    if (zones[0] if zones else None) != spec.zone and (zones or spec.zone):
        immutable.append("spec.zone")
    observed_avset = ((props.get("availabilitySet") or {}).get("id") or "").lower()
    if observed_avset != (availability_set_id(spec) or "").lower():
        immutable.append("spec.availabilitySetRef" if spec.availability_set_ref else "spec.availabilitySet")
    if (props.get("priority") or "Regular") != spec.priority:
        immutable.append("spec.priority")
    elif spec.priority == "Spot":
        if props.get("evictionPolicy") and props["evictionPolicy"] != spec.eviction_policy:
            immutable.append("spec.evictionPolicy")
        observed_price = (props.get("billingProfile") or {}).get("maxPrice")
        if observed_price is not None and float(observed_price) != spec.max_price and changeable("spec.maxPrice"):
            patch.setdefault("properties", {})["billingProfile"] = {"maxPrice": spec.max_price}
            drifted.append("spec.maxPrice")

    return VmDiff(patch=patch, drifted=tuple(drifted), immutable=tuple(immutable), rejected=tuple(rejected),
                  detached_luns=tuple(detached), os_disk_resize=os_disk_resize)


def _diff_data_disks(
    spec: VirtualMachineSpec, observed: list[Mapping[str, Any]], ignore: tuple[str, ...]
) -> tuple[list[dict[str, Any]] | None, list[str], list[str], list[str], list[int]]:
    """The full dataDisks list for a PATCH (None when nothing changes), plus drift, refusals and detaches."""
    if is_ignored("spec.dataDisks", ignore):
        return None, [], [], [], []
    by_lun = {int(d["lun"]): d for d in observed if d.get("lun") is not None}
    desired = {d.lun: d for d in spec.data_disks}
    result: list[dict[str, Any]] = []
    drift: list[str] = []
    rejected: list[str] = []
    immutable: list[str] = []
    for lun in sorted(set(by_lun) | set(desired)):
        have, want = by_lun.get(lun), desired.get(lun)
        if want is None:
            drift.append(f"spec.dataDisks[lun={lun}] (detach)")
            continue
        if have is None:
            result.append(new_data_disk_body(want))
            drift.append(f"spec.dataDisks[lun={lun}] (attach new)")
            continue
        existing = {
            "lun": lun,
            "name": have.get("name"),
            "createOption": "Attach",
            "caching": have.get("caching") or want.caching,
            "deleteOption": have.get("deleteOption") or ("Delete" if want.delete_with_vm else "Detach"),
            "diskSizeGB": have.get("diskSizeGB"),
            "managedDisk": {k: v for k, v in (have.get("managedDisk") or {}).items()
                            if k in ("id", "storageAccountType")},
        }
        size = have.get("diskSizeGB")
        if size and want.size_gb > size:
            existing["diskSizeGB"] = want.size_gb
            drift.append(f"spec.dataDisks[lun={lun}].sizeGB")
        elif size and want.size_gb < size:
            rejected.append(f"spec.dataDisks[lun={lun}].sizeGB: {want.size_gb} GB is smaller than the disk in "
                            f"Azure ({size} GB); managed disks cannot shrink")
        observed_type = (have.get("managedDisk") or {}).get("storageAccountType")
        if observed_type and observed_type != want.storage_account_type:
            immutable.append(f"spec.dataDisks[lun={lun}].storageAccountType")
        if have.get("caching") and have["caching"] != want.caching:
            existing["caching"] = want.caching
            drift.append(f"spec.dataDisks[lun={lun}].caching")
        result.append(existing)
    detached = [lun for lun in by_lun if lun not in desired]
    return (result if drift else None), drift, rejected, immutable, detached


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
    if desired == "Stopped" and observed == "Deallocated":
        return "start"  # a deallocated VM gets hardware back first; the next pass powers it off
    return None


def vm_primary_nic_id(vm: Mapping[str, Any] | None) -> str | None:
    nics = (((vm or {}).get("properties") or {}).get("networkProfile") or {}).get("networkInterfaces") or []
    primary = next((n for n in nics if (n.get("properties") or {}).get("primary")), nics[0] if nics else None)
    return str(primary["id"]) if primary and primary.get("id") else None


def _user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags without the operator's own (azvm-*, which no spec sets: the CRD refuses them)."""
    return {k: v for k, v in tags.items() if not k.startswith("azvm-")}
