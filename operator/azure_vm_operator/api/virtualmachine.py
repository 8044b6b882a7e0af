"""Typed view of a VirtualMachine custom resource's spec, with defaults and validation beyond the CRD schema."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .fields import POLICY_FIELDS, Field, Policies, SecretKeyRef, SpecError, secret_key_ref, subscription_of

__all__ = ["SpecError", "SecretKeyRef", "Policies", "VirtualMachineSpec", "parse_spec", "FIELDS"]

POWER_STATES = ("Running", "Stopped", "Deallocated")
#: Azure's rule for VM names (the CRD pattern of spec.azureName; metadata.name may be longer than 64).
AZURE_VM_NAME = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62}[a-zA-Z0-9])?")
STORAGE_ACCOUNT_TYPES = ("Standard_LRS", "StandardSSD_LRS", "Premium_LRS", "StandardSSD_ZRS", "Premium_ZRS")
CACHING = ("None", "ReadOnly", "ReadWrite")
WINDOWS_PUBLISHERS = ("MicrosoftWindowsServer", "MicrosoftWindowsDesktop", "MicrosoftSQLServer")


#: Every enum-valued or defaulted field of the VirtualMachine spec, as the CRD declares it (a test keeps the two
#: in step); parse_spec takes enums and defaults from here.
FIELDS: dict[str, Field] = {
    **POLICY_FIELDS,
    "spec.image.marketplace.version": Field(default="latest"),
    "spec.osType": Field(("Linux", "Windows")),  # fallback: Windows for Windows publishers, else Linux
    "spec.adminPasswordSecretRef.key": Field(default="password"),
    "spec.customDataSecretRef.key": Field(default="customData"),
    "spec.customDataConfigMapRef.key": Field(default="customData"),
    "spec.osDisk.storageAccountType": Field(STORAGE_ACCOUNT_TYPES),  # unset: StandardSSD_LRS at creation only
    "spec.osDisk.caching": Field(CACHING),  # unset: ReadWrite at creation only
    "spec.osDisk.deleteWithVM": Field(default=True),
    "spec.dataDisks[].storageAccountType": Field(STORAGE_ACCOUNT_TYPES, "StandardSSD_LRS"),
    "spec.dataDisks[].caching": Field(CACHING, "None"),
    "spec.dataDisks[].deleteWithVM": Field(default=True),
    "spec.zone": Field(("1", "2", "3")),
    "spec.availabilitySetOptions.platformFaultDomainCount": Field(default=2),
    "spec.availabilitySetOptions.platformUpdateDomainCount": Field(default=5),
    "spec.priority": Field(("Regular", "Spot"), "Regular"),
    "spec.evictionPolicy": Field(("Deallocate", "Delete"), fallback="Deallocate"),
    "spec.network.publicIP": Field(default=False),
    "spec.powerState": Field(POWER_STATES, "Running"),
}


def _pick(path: str, value: Any, where: str | None = None) -> Any:
    return FIELDS[path].pick(value, where or path)


@dataclass(frozen=True)
class MarketplaceImage:
    publisher: str
    offer: str
    sku: str
    version: str = "latest"

    @property
    def urn(self) -> str:
        return f"{self.publisher}:{self.offer}:{self.sku}:{self.version}"


@dataclass(frozen=True)
class ImageSpec:
    marketplace: MarketplaceImage | None = None
    id: str | None = None  #: a managed image, a gallery image or a gallery image version


@dataclass(frozen=True)
class OsDiskSpec:
    size_gb: int | None = None
    storage_account_type: str | None = None  #: None: StandardSSD_LRS at creation, whatever Azure has afterwards
    caching: str | None = None  #: None: ReadWrite at creation, whatever Azure has afterwards
    delete_with_vm: bool = True


@dataclass(frozen=True)
class DataDiskSpec:
    lun: int
    size_gb: int
    storage_account_type: str = "StandardSSD_LRS"
    caching: str = "None"
    delete_with_vm: bool = True


@dataclass(frozen=True)
class NetworkSpec:
    subnet_id: str | None = None
    public_ip: bool = False
    open_ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class AvailabilitySetSpec:
    name: str
    fault_domains: int = 2
    update_domains: int = 5


@dataclass(frozen=True)
class VirtualMachineSpec:
    subscription_id: str
    resource_group: str
    location: str
    azure_name: str
    size: str
    image: ImageSpec
    os_type: str
    admin_username: str
    ssh_public_keys: tuple[str, ...] = ()
    admin_password_ref: SecretKeyRef | None = None
    custom_data_secret_ref: SecretKeyRef | None = None
    custom_data_config_map_ref: SecretKeyRef | None = None
    user_data: str | None = None
    os_disk: OsDiskSpec = OsDiskSpec()
    data_disks: tuple[DataDiskSpec, ...] = ()
    zone: str | None = None
    availability_set: AvailabilitySetSpec | None = None
    priority: str = "Regular"
    eviction_policy: str = "Deallocate"
    max_price: float = -1.0
    network: NetworkSpec = NetworkSpec()
    power_state: str = "Running"
    tags: Mapping[str, str] = field(default_factory=dict)
    policies: Policies = Policies()
    credentials_secret: str | None = None

    @property
    def vm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{self.azure_name}"
        )


def parse_spec(
    spec: Mapping[str, Any],
    name: str,
    default_subscription_id: str | None,
    credentials_subscription_id: str | None = None,
) -> VirtualMachineSpec:
    """Build the typed spec; raise SpecError with a message the user can act on."""
    subscription_id = subscription_of(spec, credentials_subscription_id, default_subscription_id)
    for required in ("location", "resourceGroup", "size", "adminUsername"):
        if not spec.get(required):
            raise SpecError(f"spec.{required} is required")

    image_raw = spec.get("image") or {}
    kinds = [k for k in ("marketplace", "id", "imageRef") if image_raw.get(k)]
    if len(kinds) != 1:
        raise SpecError("spec.image needs exactly one of marketplace, id, imageRef")
    if kinds[0] == "imageRef":
        raise SpecError("spec.image.imageRef (an Image resource) is not supported yet; use image.id or "
                        "image.marketplace", reason="UnsupportedField")
    marketplace = None
    if kinds[0] == "marketplace":
        m = image_raw["marketplace"]
        for key in ("publisher", "offer", "sku"):
            if not m.get(key):
                raise SpecError(f"spec.image.marketplace.{key} is required")
        marketplace = MarketplaceImage(str(m["publisher"]), str(m["offer"]), str(m["sku"]),
                                       str(_pick("spec.image.marketplace.version", m.get("version"))))
    image = ImageSpec(marketplace=marketplace, id=image_raw.get("id") or None)

    default_os = "Windows" if marketplace and marketplace.publisher in WINDOWS_PUBLISHERS else "Linux"
    os_type = str(_pick("spec.osType", spec.get("osType") or default_os))

    keys = tuple(k.strip() for k in spec.get("sshPublicKeys") or [] if k and k.strip())
    password_ref = secret_key_ref(spec.get("adminPasswordSecretRef"), FIELDS["spec.adminPasswordSecretRef.key"].default,
                                  "spec.adminPasswordSecretRef")
    if os_type == "Windows" and not password_ref:
        raise SpecError("a Windows VM needs spec.adminPasswordSecretRef")
    if os_type == "Windows" and keys:
        raise SpecError("spec.sshPublicKeys applies to Linux VMs only")
    if os_type == "Linux" and not keys and not password_ref:
        raise SpecError("a Linux VM needs spec.sshPublicKeys or spec.adminPasswordSecretRef")

    custom_secret = secret_key_ref(spec.get("customDataSecretRef"), FIELDS["spec.customDataSecretRef.key"].default,
                                   "spec.customDataSecretRef")
    custom_map = secret_key_ref(spec.get("customDataConfigMapRef"), FIELDS["spec.customDataConfigMapRef.key"].default,
                                "spec.customDataConfigMapRef")
    if custom_secret and custom_map:
        raise SpecError("set only one of spec.customDataSecretRef and spec.customDataConfigMapRef")

    os_disk_raw = spec.get("osDisk") or {}
    os_disk = OsDiskSpec(
        size_gb=int(os_disk_raw["sizeGB"]) if os_disk_raw.get("sizeGB") else None,
        storage_account_type=_pick("spec.osDisk.storageAccountType", os_disk_raw.get("storageAccountType")),
        caching=_pick("spec.osDisk.caching", os_disk_raw.get("caching")),
        delete_with_vm=bool(_pick("spec.osDisk.deleteWithVM", os_disk_raw.get("deleteWithVM"))),
    )
    data_disks = []
    for i, d in enumerate(spec.get("dataDisks") or []):
        data_disks.append(DataDiskSpec(
            lun=int(d["lun"]), size_gb=int(d["sizeGB"]),
            storage_account_type=_pick("spec.dataDisks[].storageAccountType", d.get("storageAccountType"),
                                       f"spec.dataDisks[{i}].storageAccountType"),
            caching=_pick("spec.dataDisks[].caching", d.get("caching"), f"spec.dataDisks[{i}].caching"),
            delete_with_vm=bool(_pick("spec.dataDisks[].deleteWithVM", d.get("deleteWithVM"))),
        ))
    luns = [d.lun for d in data_disks]
    if len(set(luns)) != len(luns):
        raise SpecError("spec.dataDisks: each lun may appear once")

    zone = _pick("spec.zone", str(spec["zone"]) if spec.get("zone") else None)
    avset = None
    if spec.get("availabilitySet"):
        options = spec.get("availabilitySetOptions") or {}
        avset = AvailabilitySetSpec(
            str(spec["availabilitySet"]),
            int(_pick("spec.availabilitySetOptions.platformFaultDomainCount", options.get("platformFaultDomainCount"))),
            int(_pick("spec.availabilitySetOptions.platformUpdateDomainCount",
                      options.get("platformUpdateDomainCount"))))
    if zone and avset:
        raise SpecError("a VM is either zonal (spec.zone) or in an availability set, not both")

    priority = str(_pick("spec.priority", spec.get("priority")))
    eviction = str(_pick("spec.evictionPolicy", spec.get("evictionPolicy")))
    max_price = float(spec.get("maxPrice", -1))
    if priority == "Regular" and (spec.get("evictionPolicy") or "maxPrice" in spec):
        raise SpecError("spec.evictionPolicy and spec.maxPrice apply to priority: Spot only")

    network = spec.get("network") or {}
    ports = tuple(sorted({int(p) for p in network.get("openPorts") or []}))
    policies = Policies.parse(spec)
    credentials = (spec.get("credentialsSecretRef") or {}).get("name")
    azure_name = str(spec.get("azureName") or name)
    if not AZURE_VM_NAME.fullmatch(azure_name):
        raise SpecError(f"{azure_name!r} is not a valid Azure VM name (1-64 letters, digits, '-' and '.', starting "
                        "and ending with a letter or digit); set spec.azureName")
    return VirtualMachineSpec(
        subscription_id=str(subscription_id),
        resource_group=str(spec["resourceGroup"]),
        location=str(spec["location"]),
        azure_name=azure_name,
        size=str(spec["size"]),
        image=image,
        os_type=os_type,
        admin_username=str(spec["adminUsername"]),
        ssh_public_keys=keys,
        admin_password_ref=password_ref,
        custom_data_secret_ref=custom_secret,
        custom_data_config_map_ref=custom_map,
        user_data=spec.get("userData") or None,
        os_disk=os_disk,
        data_disks=tuple(sorted(data_disks, key=lambda d: d.lun)),
        zone=zone,
        availability_set=avset,
        priority=priority,
        eviction_policy=eviction,
        max_price=max_price,
        network=NetworkSpec(subnet_id=network.get("subnetId") or None,
                            public_ip=bool(_pick("spec.network.publicIP", network.get("publicIP"))),
                            open_ports=ports),
        power_state=str(_pick("spec.powerState", spec.get("powerState"))),
        tags={str(k): str(v) for k, v in (spec.get("tags") or {}).items()},
        policies=policies,
        credentials_secret=str(credentials) if credentials else None,
    )
