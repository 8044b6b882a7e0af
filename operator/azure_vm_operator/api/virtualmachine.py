"""Typed view of a VirtualMachine custom resource's spec, with defaults and validation beyond the CRD schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .fields import Field, Policies, SecretKeyRef, SpecError
from .machine import MACHINE_FIELDS, DataDiskSpec, ImageSpec, MachineSpec, MarketplaceImage, OsDiskSpec, parse_machine

__all__ = ["SpecError", "SecretKeyRef", "Policies", "VirtualMachineSpec", "parse_spec", "FIELDS", "DataDiskSpec",
           "ImageSpec", "MarketplaceImage", "OsDiskSpec"]


#: Every enum-valued or defaulted field of the VirtualMachine spec, as the CRD declares it (a test keeps the two
#: in step); parse_spec takes enums and defaults from here.
FIELDS: dict[str, Field] = {
    **MACHINE_FIELDS,
    "spec.osDisk.deleteWithVM": Field(default=True),
    "spec.dataDisks[].deleteWithVM": Field(default=True),
    "spec.zone": Field(("1", "2", "3")),
    "spec.availabilitySetOptions.platformFaultDomainCount": Field(default=2),
    "spec.availabilitySetOptions.platformUpdateDomainCount": Field(default=5),
    "spec.network.publicIP": Field(default=False),
}


def _pick(path: str, value: Any, where: str | None = None) -> Any:
    return FIELDS[path].pick(value, where or path)


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
class VirtualMachineSpec(MachineSpec):
    zone: str | None = None
    availability_set: AvailabilitySetSpec | None = None
    #: an AvailabilitySet resource of the same namespace (spec.availabilitySetRef.name)
    availability_set_ref: str | None = None
    #: the Azure id of that set, once the controller resolved it
    resolved_availability_set_id: str | None = None
    network: NetworkSpec = NetworkSpec()

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
    machine = parse_machine(spec, name, FIELDS, default_subscription_id, credentials_subscription_id, "VM")
    zone = _pick("spec.zone", str(spec["zone"]) if spec.get("zone") else None)
    avset = None
    if spec.get("availabilitySet"):
        options = spec.get("availabilitySetOptions") or {}
        avset = AvailabilitySetSpec(
            str(spec["availabilitySet"]),
            int(_pick("spec.availabilitySetOptions.platformFaultDomainCount", options.get("platformFaultDomainCount"))),
            int(_pick("spec.availabilitySetOptions.platformUpdateDomainCount",
                      options.get("platformUpdateDomainCount"))))
    avset_ref = str((spec.get("availabilitySetRef") or {}).get("name") or "") or None
    if avset and avset_ref:
        raise SpecError("set only one of spec.availabilitySet and spec.availabilitySetRef")
    if zone and (avset or avset_ref):
        raise SpecError("a VM is either zonal (spec.zone) or in an availability set, not both")
    network = spec.get("network") or {}
    return VirtualMachineSpec(
        **machine,
        zone=zone,
        availability_set=avset,
        availability_set_ref=avset_ref,
        network=NetworkSpec(subnet_id=network.get("subnetId") or None,
                            public_ip=bool(_pick("spec.network.publicIP", network.get("publicIP"))),
                            open_ports=tuple(sorted({int(p) for p in network.get("openPorts") or []}))),
    )
