"""Typed view of an Image custom resource's spec: a managed image captured from a VirtualMachine of the same
namespace, or made from a managed disk or a VHD blob."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .fields import POLICY_FIELDS, Field, Policies, SpecError, subscription_of

__all__ = ["ImageSpec", "FIELDS", "parse_spec", "SpecError", "SOURCES"]

SOURCES = ("fromVirtualMachine", "fromManagedDisk", "fromBlob")
#: What becomes of the source VirtualMachine once its image is captured.
AFTER_CAPTURE = ("KeepDeallocated", "Delete")

#: Every enum-valued or defaulted field of the Image spec, as the CRD declares it.
FIELDS: dict[str, Field] = {
    **POLICY_FIELDS,
    "spec.fromVirtualMachine.afterCapture": Field(AFTER_CAPTURE, "KeepDeallocated"),
    "spec.osType": Field(("Linux", "Windows")),  # required for a disk or blob; a VM's own otherwise
    "spec.osState": Field(("Generalized", "Specialized")),  # fallback Generalized (the only state from a VM)
    "spec.hyperVGeneration": Field(("V1", "V2")),  # unset: the source VM's, V1 for a disk or blob
}


@dataclass(frozen=True)
class ImageSpec:
    subscription_id: str
    resource_group: str
    location: str
    azure_name: str
    source: str  #: one of SOURCES
    source_vm: str | None = None  #: fromVirtualMachine.name
    after_capture: str = "KeepDeallocated"
    managed_disk_id: str | None = None
    blob_uri: str | None = None
    os_type: str | None = None
    os_state: str = "Generalized"
    hyper_v_generation: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    policies: Policies = Policies()
    credentials_secret: str | None = None

    @property
    def image_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.Compute/images/{self.azure_name}")

    @property
    def source_description(self) -> str:
        if self.source == "fromVirtualMachine":
            return f"VirtualMachine {self.source_vm}"
        if self.source == "fromManagedDisk":
            return f"managed disk {self.managed_disk_id}"
        return f"blob {self.blob_uri}"


def parse_spec(spec: Mapping[str, Any], name: str, default_subscription_id: str | None,
               credentials_subscription_id: str | None = None) -> ImageSpec:
    subscription_id = subscription_of(spec, credentials_subscription_id, default_subscription_id)
    for required in ("location", "resourceGroup"):
        if not spec.get(required):
            raise SpecError(f"spec.{required} is required")
    given = [s for s in SOURCES if spec.get(s)]
    if len(given) != 1:
        raise SpecError(f"an Image needs exactly one source: {', '.join(SOURCES)}")
    source = given[0]
    raw = spec[source]
    os_type = FIELDS["spec.osType"].pick(spec.get("osType"), "spec.osType")
    os_state = str(FIELDS["spec.osState"].pick(spec.get("osState"), "spec.osState") or "Generalized")
    generation = FIELDS["spec.hyperVGeneration"].pick(spec.get("hyperVGeneration"), "spec.hyperVGeneration")
    values: dict[str, Any] = {}
    if source == "fromVirtualMachine":
        if not raw.get("name"):
            raise SpecError("spec.fromVirtualMachine.name is required")
        if os_state != "Generalized":
            raise SpecError("an image captured from a VM is Generalized (Azure captures managed images only from "
                            "generalized VMs); spec.osState Specialized applies to fromManagedDisk and fromBlob")
        values = dict(source_vm=str(raw["name"]), after_capture=str(FIELDS["spec.fromVirtualMachine.afterCapture"]
                                                                     .pick(raw.get("afterCapture"),
                                                                           "spec.fromVirtualMachine.afterCapture")))
    else:
        key = "id" if source == "fromManagedDisk" else "uri"
        if not raw.get(key):
            raise SpecError(f"spec.{source}.{key} is required")
        if not os_type:
            raise SpecError(f"spec.osType is required for an image {source[4:].lower()} (Linux or Windows)")
        values = {"managed_disk_id" if key == "id" else "blob_uri": str(raw[key])}
        generation = generation or "V1"
    credentials = (spec.get("credentialsSecretRef") or {}).get("name")
    return ImageSpec(
        subscription_id=subscription_id,
        resource_group=str(spec["resourceGroup"]),
        location=str(spec["location"]),
        azure_name=str(spec.get("azureName") or name),
        source=source,
        os_type=str(os_type) if os_type else None,
        os_state=os_state,
        hyper_v_generation=str(generation) if generation else None,
        tags={str(k): str(v) for k, v in (spec.get("tags") or {}).items()},
        policies=Policies.parse(spec),
        credentials_secret=str(credentials) if credentials else None,
        **values,
    )
