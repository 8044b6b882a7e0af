"""What VirtualMachine and ScaleSet have in common: the machine template (image, OS, credentials, custom and user
data, disks, priority) with its enums and defaults, parsed once for both kinds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .fields import POLICY_FIELDS, Field, Policies, SecretKeyRef, SpecError, secret_key_ref, subscription_of

POWER_STATES = ("Running", "Stopped", "Deallocated")
#: Azure's rule for VM names (the CRD pattern of spec.azureName; metadata.name may be longer than 64).
AZURE_VM_NAME = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62}[a-zA-Z0-9])?")
STORAGE_ACCOUNT_TYPES = ("Standard_LRS", "StandardSSD_LRS", "Premium_LRS", "StandardSSD_ZRS", "Premium_ZRS")
CACHING = ("None", "ReadOnly", "ReadWrite")
#: Characters Azure refuses in a tag name.
TAG_NAME_FORBIDDEN = "<>%&\\?/"
WINDOWS_PUBLISHERS = ("MicrosoftWindowsServer", "MicrosoftWindowsDesktop", "MicrosoftSQLServer")


#: The template's enum-valued or defaulted fields, as both CRDs declare them.
MACHINE_FIELDS: dict[str, Field] = {
    **POLICY_FIELDS,
    "spec.image.marketplace.version": Field(default="latest"),
    "spec.osType": Field(("Linux", "Windows")),  # fallback: Windows for Windows publishers, else Linux
    "spec.adminPasswordSecretRef.key": Field(default="password"),
    "spec.customDataSecretRef.key": Field(default="customData"),
    "spec.customDataConfigMapRef.key": Field(default="customData"),
    "spec.osDisk.storageAccountType": Field(STORAGE_ACCOUNT_TYPES),  # unset: StandardSSD_LRS at creation only
    "spec.osDisk.caching": Field(CACHING),  # unset: ReadWrite at creation only
    "spec.dataDisks[].storageAccountType": Field(STORAGE_ACCOUNT_TYPES, "StandardSSD_LRS"),
    "spec.dataDisks[].caching": Field(CACHING, "None"),
    "spec.priority": Field(("Regular", "Spot"), "Regular"),
    "spec.evictionPolicy": Field(("Deallocate", "Delete"), fallback="Deallocate"),
    "spec.powerState": Field(POWER_STATES, "Running"),
}


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
    #: an Image resource of the same namespace (image.imageRef.name); the controller resolves it to ``id``
    image_ref: str | None = None


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
class MachineSpec:
    """The typed template every kind of machine shares (VirtualMachine, ScaleSet): what ``parse_machine`` reads."""

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
    priority: str = "Regular"
    eviction_policy: str = "Deallocate"
    max_price: float = -1.0
    power_state: str = "Running"
    tags: Mapping[str, str] = field(default_factory=dict)
    policies: Policies = Policies()
    credentials_secret: str | None = None


#: What the ARM body builders accept: any machine spec.
Machine = MachineSpec


def parse_machine(
    spec: Mapping[str, Any],
    name: str,
    fields: Mapping[str, Field],
    default_subscription_id: str | None,
    credentials_subscription_id: str | None,
    noun: str,
) -> dict[str, Any]:
    """The template's typed values, as keyword arguments of the kind's spec class; SpecError with a message the
    user can act on. ``noun`` names the Azure resource in messages (VM, scale set)."""

    def pick(path: str, value: Any, where: str | None = None) -> Any:
        return fields[path].pick(value, where or path)

    subscription_id = subscription_of(spec, credentials_subscription_id, default_subscription_id)
    for required in ("location", "resourceGroup", "size", "adminUsername"):
        if not spec.get(required):
            raise SpecError(f"spec.{required} is required")

    image_raw = spec.get("image") or {}
    kinds = [k for k in ("marketplace", "id", "imageRef") if image_raw.get(k)]
    if len(kinds) != 1:
        raise SpecError("spec.image needs exactly one of marketplace, id, imageRef")
    image_ref = None
    if kinds[0] == "imageRef":
        image_ref = str((image_raw["imageRef"] or {}).get("name") or "")
        if not image_ref:
            raise SpecError("spec.image.imageRef.name is required")
    marketplace = None
    if kinds[0] == "marketplace":
        m = image_raw["marketplace"]
        for key in ("publisher", "offer", "sku"):
            if not m.get(key):
                raise SpecError(f"spec.image.marketplace.{key} is required")
        marketplace = MarketplaceImage(str(m["publisher"]), str(m["offer"]), str(m["sku"]),
                                       str(pick("spec.image.marketplace.version", m.get("version"))))
    image = ImageSpec(marketplace=marketplace, id=image_raw.get("id") or None, image_ref=image_ref)

    default_os = "Windows" if marketplace and marketplace.publisher in WINDOWS_PUBLISHERS else "Linux"
    os_type = str(pick("spec.osType", spec.get("osType") or default_os))

    keys = tuple(k.strip() for k in spec.get("sshPublicKeys") or [] if k and k.strip())
    password_ref = secret_key_ref(spec.get("adminPasswordSecretRef"), fields["spec.adminPasswordSecretRef.key"].default,
                                  "spec.adminPasswordSecretRef")
    if os_type == "Windows" and not password_ref:
        raise SpecError(f"a Windows {noun} needs spec.adminPasswordSecretRef")
    if os_type == "Windows" and keys:
        raise SpecError(f"spec.sshPublicKeys applies to Linux {noun}s only")
    if os_type == "Linux" and not keys and not password_ref:
        raise SpecError(f"a Linux {noun} needs spec.sshPublicKeys or spec.adminPasswordSecretRef")

    custom_secret = secret_key_ref(spec.get("customDataSecretRef"), fields["spec.customDataSecretRef.key"].default,
                                   "spec.customDataSecretRef")
    custom_map = secret_key_ref(spec.get("customDataConfigMapRef"), fields["spec.customDataConfigMapRef.key"].default,
                                "spec.customDataConfigMapRef")
    if custom_secret and custom_map:
        raise SpecError("set only one of spec.customDataSecretRef and spec.customDataConfigMapRef")

    os_disk_raw = spec.get("osDisk") or {}
    delete_os = fields.get("spec.osDisk.deleteWithVM")
    os_disk = OsDiskSpec(
        size_gb=int(os_disk_raw["sizeGB"]) if os_disk_raw.get("sizeGB") else None,
        storage_account_type=pick("spec.osDisk.storageAccountType", os_disk_raw.get("storageAccountType")),
        caching=pick("spec.osDisk.caching", os_disk_raw.get("caching")),
        delete_with_vm=bool(delete_os.pick(os_disk_raw.get("deleteWithVM"), "spec.osDisk.deleteWithVM"))
        if delete_os else True,
    )
    delete_data = fields.get("spec.dataDisks[].deleteWithVM")
    data_disks = []
    for i, d in enumerate(spec.get("dataDisks") or []):
        data_disks.append(DataDiskSpec(
            lun=int(d["lun"]), size_gb=int(d["sizeGB"]),
            storage_account_type=pick("spec.dataDisks[].storageAccountType", d.get("storageAccountType"),
                                      f"spec.dataDisks[{i}].storageAccountType"),
            caching=pick("spec.dataDisks[].caching", d.get("caching"), f"spec.dataDisks[{i}].caching"),
            delete_with_vm=bool(delete_data.pick(d.get("deleteWithVM"), f"spec.dataDisks[{i}].deleteWithVM"))
            if delete_data else True,
        ))
    luns = [d.lun for d in data_disks]
    if len(set(luns)) != len(luns):
        raise SpecError("spec.dataDisks: each lun may appear once")

    priority = str(pick("spec.priority", spec.get("priority")))
    eviction = str(pick("spec.evictionPolicy", spec.get("evictionPolicy")))
    max_price = float(spec.get("maxPrice", -1))
    if priority == "Regular" and (spec.get("evictionPolicy") or "maxPrice" in spec):
        raise SpecError("spec.evictionPolicy and spec.maxPrice apply to priority: Spot only")

    tags = {str(k): str(v) for k, v in (spec.get("tags") or {}).items()}
    for tag in tags:
        if not tag or len(tag) > 512 or set(tag) & set(TAG_NAME_FORBIDDEN):
            raise SpecError(f"spec.tags: {tag!r} is not a valid Azure tag name (1-512 characters, none of "
                            f"{' '.join(TAG_NAME_FORBIDDEN)})")
    credentials = (spec.get("credentialsSecretRef") or {}).get("name")
    azure_name = str(spec.get("azureName") or name)
    if not AZURE_VM_NAME.fullmatch(azure_name):
        raise SpecError(f"{azure_name!r} is not a valid Azure {noun} name (1-64 letters, digits, '-' and '.', "
                        "starting and ending with a letter or digit); set spec.azureName")
    return dict(
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
        priority=priority,
        eviction_policy=eviction,
        max_price=max_price,
        power_state=str(pick("spec.powerState", spec.get("powerState"))),
        tags=tags,
        policies=Policies.parse(spec),
        credentials_secret=str(credentials) if credentials else None,
    )
