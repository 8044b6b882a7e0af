"""``kubectl azvm import <ARM id>``: an existing Azure VM or VM scale set as a manifest. Pure: ARM JSON in, a
manifest and its preview out (the plugin does the reading).

The manifest has ``reconcilePolicy: Observe`` (the operator reads, never writes) and ``deletionPolicy: Orphan``
(deleting the custom resource never deletes what was imported), and a spec that reproduces what Azure has, so that
observing it reports no drift. The preview says what the spec cannot express (Azure fields the operator neither
reads nor writes) and what the operator would write if ``reconcilePolicy`` were switched to ``Manage``: computed
with the operator's own diff (``diff_vm`` / ``diff_scale_set``), so it is what the operator would do.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..api import scaleset as ss_api
from ..api import virtualmachine as vm_api
from ..api.constants import GROUP, OWNER_TAG, SCALESET_KIND, VERSION, VM_KIND
from ..api.fields import SpecError
from . import ids
from . import scaleset as sst
from . import virtualmachine as vmt
from .machine import power_state
from .ownership import Identity, adoption_verdict

VM_TYPE = "microsoft.compute/virtualmachines"
SCALE_SET_TYPE = "microsoft.compute/virtualmachinescalesets"

#: ARM's read-only or identity fields: nothing to express.
_READ_ONLY = {"id", "name", "type", "etag", "systemData", "managedBy", "location", "tags", "zones", "sku",
              "provisioningState", "vmId", "timeCreated", "instanceView", "uniqueId", "resources"}
#: what the VirtualMachine spec expresses, under ``properties``
_VM_PROPERTIES = {"hardwareProfile", "storageProfile", "osProfile", "networkProfile", "availabilitySet", "priority",
                  "evictionPolicy", "billingProfile", "userData"}
_SCALE_SET_PROPERTIES = {"virtualMachineProfile", "upgradePolicy", "scaleInPolicy", "overprovision",
                         "singlePlacementGroup", "orchestrationMode", "platformFaultDomainCount"}
_PROFILE_PROPERTIES = {"storageProfile", "osProfile", "networkProfile", "priority", "evictionPolicy",
                       "billingProfile", "userData"}


class NotImportable(ValueError):
    """The ARM resource cannot be imported (another type, missing fields)."""


@dataclass
class Imported:
    manifest: dict[str, Any]
    #: Azure's fields the spec cannot express (they stay as they are; the operator neither reads nor writes them)
    not_expressible: list[str] = field(default_factory=list)
    #: what the operator would do if spec.reconcilePolicy were switched to Manage
    on_manage: list[str] = field(default_factory=list)

    def comments(self) -> str:
        """The preview as YAML comments, to put above the manifest."""
        lines = ["# Imported from Azure with reconcilePolicy: Observe (the operator only reads it) and "
                 "deletionPolicy: Orphan."]
        lines.append("# Azure has, and the spec cannot express (left as they are):")
        lines += [f"#   - {line}" for line in self.not_expressible] or ["#   (nothing)"]
        lines.append("# Switching spec.reconcilePolicy to Manage would:")
        lines += [f"#   - {line}" for line in self.on_manage]
        return "\n".join(lines) + "\n"


def kubernetes_name(azure_name: str) -> str:
    """A DNS-1123 name for the custom resource (``spec.azureName`` keeps Azure's own)."""
    name = re.sub(r"[^a-z0-9.-]+", "-", azure_name.lower()).strip("-.")
    return name[:253] or "imported"


def import_resource(arm: Mapping[str, Any], *, namespace: str = "default", cluster_id: str = "default",
                    name: str | None = None, nic: Mapping[str, Any] | None = None) -> Imported:
    """The manifest and preview of a VM (``nic``: its primary network interface, for the subnet) or scale set, as
    ARM returns it (a VM with ``$expand=instanceView`` for its power state)."""
    kind = str(arm.get("type") or "").lower()
    if kind == VM_TYPE:
        return import_vm(arm, namespace=namespace, cluster_id=cluster_id, name=name, nic=nic)
    if kind == SCALE_SET_TYPE:
        return import_scale_set(arm, namespace=namespace, cluster_id=cluster_id, name=name)
    raise NotImportable(f"cannot import a {arm.get('type') or 'resource of unknown type'}: a virtual machine or a "
                       "virtual machine scale set (Uniform) only")


# ---- the template: what VirtualMachine and ScaleSet share ----------------------------------------------------


def _user_tags(arm: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (arm.get("tags") or {}).items() if not str(k).startswith("azvm-")}


def _image(storage: Mapping[str, Any], out: list[str]) -> dict[str, Any]:
    ref = storage.get("imageReference") or {}
    if ref.get("id"):
        return {"id": str(ref["id"])}
    if ref.get("communityGalleryImageId") or ref.get("sharedGalleryImageId"):
        out.append("storageProfile.imageReference: a community or shared gallery image (spec.image takes a "
                   "marketplace image or an image id); the spec names the marketplace fields it has, if any")
    image = {k: str(ref[k]) for k in ("publisher", "offer", "sku") if ref.get(k)}
    if len(image) != 3:
        raise NotImportable("the image is neither a marketplace image nor an image id: spec.image cannot name it")
    image["version"] = str(ref.get("version") or "latest")
    return {"marketplace": image}


def _credentials(name: str, os_profile: Mapping[str, Any], os_type: str, spec: dict[str, Any],
                 out: list[str]) -> None:
    if os_profile.get("adminUsername"):
        spec["adminUsername"] = str(os_profile["adminUsername"])
    linux = os_profile.get("linuxConfiguration") or {}
    keys = [str(k.get("keyData", "")).strip() for k in (linux.get("ssh") or {}).get("publicKeys") or []]
    keys = [k for k in keys if k]
    if os_type == "Windows":
        spec["osType"] = "Windows"
    if keys and os_type != "Windows":
        spec["sshPublicKeys"] = keys
    else:
        # Azure never returns a password: a spec needs a Secret for it (read only when the operator creates)
        spec["adminPasswordSecretRef"] = {"name": f"{name}-admin-password"}
        out.append(f"an admin password: Azure never returns it; spec.adminPasswordSecretRef names a Secret "
                   f"{name}-admin-password that is read only if the operator ever has to create the machine")
    if os_profile.get("secrets"):
        out.append("osProfile.secrets (Key Vault certificates)")
    if linux.get("disablePasswordAuthentication") is False and keys:
        out.append("osProfile.linuxConfiguration.disablePasswordAuthentication: false (password login allowed)")


def _disks(storage: Mapping[str, Any], spec: dict[str, Any], scale_set: bool) -> None:
    os_disk = storage.get("osDisk") or {}
    disk: dict[str, Any] = {}
    if os_disk.get("diskSizeGB"):
        disk["sizeGB"] = int(os_disk["diskSizeGB"])
    account = (os_disk.get("managedDisk") or {}).get("storageAccountType")
    if account:
        disk["storageAccountType"] = str(account)
    if os_disk.get("caching"):
        disk["caching"] = str(os_disk["caching"])
    if not scale_set and os_disk.get("deleteOption"):
        disk["deleteWithVM"] = os_disk["deleteOption"] == "Delete"
    if disk:
        spec["osDisk"] = disk
    data = []
    for d in storage.get("dataDisks") or []:
        entry: dict[str, Any] = {"lun": int(d["lun"]), "sizeGB": int(d.get("diskSizeGB") or 0)}
        account = (d.get("managedDisk") or {}).get("storageAccountType")
        if account:
            entry["storageAccountType"] = str(account)
        if d.get("caching"):
            entry["caching"] = str(d["caching"])
        if not scale_set and d.get("deleteOption"):
            entry["deleteWithVM"] = d["deleteOption"] == "Delete"
        data.append(entry)
    if data:
        spec["dataDisks"] = sorted(data, key=lambda e: e["lun"])


def _priority(props: Mapping[str, Any], spec: dict[str, Any]) -> None:
    if props.get("priority") == "Spot":
        spec["priority"] = "Spot"
        if props.get("evictionPolicy"):
            spec["evictionPolicy"] = str(props["evictionPolicy"])
        price = (props.get("billingProfile") or {}).get("maxPrice")
        if price is not None:
            spec["maxPrice"] = float(price)
    elif props.get("priority") not in (None, "Regular"):
        spec["priority"] = str(props["priority"])  # Low (classic): the spec refuses it, as it should


def _unexpressed(where: str, raw: Mapping[str, Any], known: set[str], out: list[str]) -> None:
    for key in sorted(raw):
        if key not in known and key not in _READ_ONLY and raw[key] not in (None, {}, [], ""):
            out.append(f"{where}{key}")


def _manifest(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


def _policies(arm: Mapping[str, Any], identity: Identity, spec: dict[str, Any]) -> None:
    spec["reconcilePolicy"] = "Observe"
    spec["deletionPolicy"] = "Orphan"
    if not (arm.get("tags") or {}).get(OWNER_TAG):
        spec["adoptionPolicy"] = "Always"  # untagged: Manage may take it over only with Always


def _on_manage(arm: Mapping[str, Any], identity: Identity, policy: str, tags_patch: Mapping[str, str] | None,
               changes: list[str], noun: str) -> list[str]:
    verdict = adoption_verdict(arm, identity, policy)
    if verdict == "OwnershipConflict":
        return [f"nothing: the {noun} is tagged {OWNER_TAG}={(arm.get('tags') or {}).get(OWNER_TAG)}, another "
                f"owner than {identity.owner}; the resource would be Stalled (OwnershipConflict)"]
    if verdict is not None:
        return [f"nothing: adoptionPolicy {policy} does not take over an untagged {noun} (Stalled, {verdict}); "
                "set adoptionPolicy: Always"]
    lines = []
    observed_tags = dict(arm.get("tags") or {})
    if tags_patch is not None:
        added = {k: v for k, v in tags_patch.items() if observed_tags.get(k) != v}
        removed = sorted(set(observed_tags) - set(tags_patch))
        if added:
            lines.append("tag it " + ", ".join(f"{k}={v}" for k, v in sorted(added.items()))
                         + (f" ({OWNER_TAG}: the operator's ownership; azvm-uid is added with the resource's uid "
                            f"once it exists)" if OWNER_TAG in added else ""))
        if removed:
            lines.append("remove the tags " + ", ".join(removed))
    lines += changes
    if not changes:
        lines.append(f"change nothing else: the spec reproduces the {noun}")
    lines.append(f"with deletionPolicy: Orphan, deleting the resource still leaves the {noun} in Azure; "
                 f"deletionPolicy: Delete would delete it (and what is tagged as its own) with the resource")
    return lines


# ---- VirtualMachine ------------------------------------------------------------------------------------------


def import_vm(arm: Mapping[str, Any], *, namespace: str = "default", cluster_id: str = "default",
              name: str | None = None, nic: Mapping[str, Any] | None = None) -> Imported:
    rid = ids.ResourceId.parse(str(arm.get("id") or ""))
    if rid is None:
        raise NotImportable("the resource has no ARM id")
    props = arm.get("properties") or {}
    storage = props.get("storageProfile") or {}
    azure_name = str(arm.get("name") or rid.name)
    name = name or kubernetes_name(azure_name)
    out: list[str] = []
    spec: dict[str, Any] = {
        "location": str(arm.get("location") or ""),
        "resourceGroup": rid.resource_group,
        "subscriptionId": rid.subscription,
        "azureName": azure_name,
        "size": str((props.get("hardwareProfile") or {}).get("vmSize") or ""),
        "image": _image(storage, out),
    }
    os_type = str((storage.get("osDisk") or {}).get("osType") or "Linux")
    _credentials(name, props.get("osProfile") or {}, os_type, spec, out)
    _disks(storage, spec, scale_set=False)
    zones = arm.get("zones") or []
    if zones:
        spec["zone"] = str(zones[0])
    avset = ids.ResourceId.parse((props.get("availabilitySet") or {}).get("id"))
    if avset is not None:
        if (avset.subscription.lower(), avset.resource_group.lower()) == (rid.subscription.lower(),
                                                                          rid.resource_group.lower()):
            spec["availabilitySet"] = avset.name
        else:
            out.append(f"properties.availabilitySet: {avset.name} in resource group {avset.resource_group} "
                       "(spec.availabilitySet names one in the VM's own resource group)")
    _priority(props, spec)
    nics = (props.get("networkProfile") or {}).get("networkInterfaces") or []
    if len(nics) > 1:
        out.append(f"networkProfile: {len(nics)} network interfaces (the spec describes the primary one)")
    subnet = _nic_subnet(nic)
    if subnet:
        spec["network"] = {"subnetId": subnet}
    if nic is not None and _nic_public_ip(nic):
        out.append("the network interface's public IP address (spec.network.publicIP creates one the operator "
                   "owns; the existing one is left as it is)")
    if props.get("userData"):
        out.append("properties.userData (not copied: it may hold secrets; set spec.userData to manage it)")
    power = power_state(props.get("instanceView"))
    if power in ("Running", "Stopped", "Deallocated"):
        spec["powerState"] = power
    tags = _user_tags(arm)
    if tags:
        spec["tags"] = tags
    _unexpressed("", arm, {"properties"}, out)  # plan, identity, extendedLocation ...
    _unexpressed("properties.", props, _VM_PROPERTIES, out)
    if arm.get("resources"):
        out.append("extensions: " + ", ".join(str(r.get("name") or r.get("id", "?").rsplit("/", 1)[-1])
                                              for r in arm["resources"]))

    identity = Identity(cluster_id, VM_KIND, namespace, name)
    _policies(arm, identity, spec)
    imported = Imported(_manifest(VM_KIND, name, namespace, spec), out)
    managed = {**copy.deepcopy(spec), "reconcilePolicy": "Manage"}
    try:
        typed = vm_api.parse_spec(managed, name, rid.subscription)
    except SpecError as exc:
        imported.on_manage = [f"nothing: the spec is invalid ({exc}); fix it first"]
        return imported
    diff = vmt.diff_vm(typed, identity, arm)
    changes = [f"correct {p}" for p in diff.drifted if p != "spec.tags"]
    changes += [f"report {p} as differing from Azure (it cannot change on an existing VM)" for p in diff.immutable]
    changes += [f"refuse {r}" for r in diff.rejected]
    if diff.os_disk_resize:
        changes.append(f"grow the OS disk to {diff.os_disk_resize} GB once the VM is deallocated")
    if power and power != typed.power_state and power in ("Running", "Stopped", "Deallocated"):
        changes.append(f"set the power state {typed.power_state}")
    imported.on_manage = _on_manage(arm, identity, typed.policies.adoption,
                                    diff.patch.get("tags") if "tags" in diff.patch else None, changes, "VM")
    return imported


def _nic_subnet(nic: Mapping[str, Any] | None) -> str | None:
    configs = ((nic or {}).get("properties") or {}).get("ipConfigurations") or []
    primary = next((c for c in configs if (c.get("properties") or {}).get("primary")), configs[0] if configs else None)
    subnet = (((primary or {}).get("properties") or {}).get("subnet") or {}).get("id")
    return str(subnet) if subnet else None


def _nic_public_ip(nic: Mapping[str, Any]) -> bool:
    return any(((c.get("properties") or {}).get("publicIPAddress") or {}).get("id")
               for c in (nic.get("properties") or {}).get("ipConfigurations") or [])


# ---- ScaleSet ------------------------------------------------------------------------------------------------


def import_scale_set(arm: Mapping[str, Any], *, namespace: str = "default", cluster_id: str = "default",
                     name: str | None = None) -> Imported:
    rid = ids.ResourceId.parse(str(arm.get("id") or ""))
    if rid is None:
        raise NotImportable("the resource has no ARM id")
    props = arm.get("properties") or {}
    if props.get("orchestrationMode") not in (None, "Uniform"):
        raise NotImportable(f"a {props['orchestrationMode']} scale set: the ScaleSet kind is a Uniform scale set")
    profile = props.get("virtualMachineProfile") or {}
    storage = profile.get("storageProfile") or {}
    azure_name = str(arm.get("name") or rid.name)
    name = name or kubernetes_name(azure_name)
    out: list[str] = []
    sku = arm.get("sku") or {}
    spec: dict[str, Any] = {
        "location": str(arm.get("location") or ""),
        "resourceGroup": rid.resource_group,
        "subscriptionId": rid.subscription,
        "azureName": azure_name,
        "size": str(sku.get("name") or ""),
        "replicas": int(sku.get("capacity") or 0),
        "image": _image(storage, out),
    }
    os_type = str((storage.get("osDisk") or {}).get("osType") or "Linux")
    _credentials(name, profile.get("osProfile") or {}, os_type, spec, out)
    _disks(storage, spec, scale_set=True)
    zones = sorted(str(z) for z in arm.get("zones") or [])
    if zones:
        spec["zones"] = zones
    _priority(profile, spec)
    mode = (props.get("upgradePolicy") or {}).get("mode")
    if mode in ("Manual", "Automatic"):
        spec["upgradePolicy"] = {"mode": mode}
    elif mode == "Rolling":
        out.append("upgradePolicy.mode Rolling: the spec allows it only with the load balancer the operator owns "
                   "(spec.loadBalancer); imported as Manual (the operator rolls model changes out in batches)")
        spec["upgradePolicy"] = {"mode": "Manual"}
    rules = (props.get("scaleInPolicy") or {}).get("rules") or []
    if rules and rules[0] in ("Default", "NewestVM", "OldestVM"):
        spec["scaleInPolicy"] = str(rules[0])
    configs = (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []
    if len(configs) > 1:
        out.append(f"networkProfile: {len(configs)} network interface configurations (the spec describes one)")
    ip_configs = ((configs[0].get("properties") or {}).get("ipConfigurations") or []) if configs else []
    ip_props = (ip_configs[0].get("properties") or {}) if ip_configs else {}
    subnet = (ip_props.get("subnet") or {}).get("id")
    if subnet:
        spec["network"] = {"subnetId": str(subnet)}
    if ip_props.get("loadBalancerBackendAddressPools") or ip_props.get("applicationGatewayBackendAddressPools"):
        out.append("a load balancer or application gateway backend pool (spec.loadBalancer describes one the "
                   "operator creates and owns; the existing one is left as it is)")
    tags = _user_tags(arm)
    if tags:
        spec["tags"] = tags
    _unexpressed("properties.", props, _SCALE_SET_PROPERTIES, out)
    _unexpressed("properties.virtualMachineProfile.", profile, _PROFILE_PROPERTIES, out)
    if profile.get("userData"):
        out.append("virtualMachineProfile.userData (not copied: it may hold secrets)")

    identity = Identity(cluster_id, SCALESET_KIND, namespace, name)
    _policies(arm, identity, spec)
    imported = Imported(_manifest(SCALESET_KIND, name, namespace, spec), out)
    managed = {**copy.deepcopy(spec), "reconcilePolicy": "Manage"}
    try:
        typed = ss_api.parse_spec(managed, name, rid.subscription)
    except SpecError as exc:
        imported.on_manage = [f"nothing: the spec is invalid ({exc}); fix it first"]
        return imported
    diff = sst.diff_scale_set(typed, identity, arm, None, None)
    changes = [f"correct {p} (instances get a new model: the operator rolls it out)" for p in diff.model]
    changes += [f"correct {p}" for p in diff.settings if p != "spec.tags"]
    changes += [f"report {p} as differing from Azure (it cannot change on an existing scale set)"
                for p in diff.immutable]
    changes += [f"refuse {r}" for r in diff.rejected]
    imported.on_manage = _on_manage(arm, identity, typed.policies.adoption,
                                    diff.patch.get("tags") if "tags" in diff.patch else None, changes, "scale set")
    return imported

