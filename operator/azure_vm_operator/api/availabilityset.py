"""Typed view of an AvailabilitySet custom resource's spec, with defaults and validation beyond the CRD schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .fields import POLICY_FIELDS, Field, Policies, SpecError, subscription_of

__all__ = ["AvailabilitySetSpec", "FIELDS", "parse_spec", "SpecError"]

SKUS = ("Aligned", "Classic")

#: Every enum-valued or defaulted field of the AvailabilitySet spec, as the CRD declares it.
FIELDS: dict[str, Field] = {
    **POLICY_FIELDS,
    "spec.platformFaultDomainCount": Field(default=2),
    "spec.platformUpdateDomainCount": Field(default=5),
    "spec.sku": Field(SKUS, "Aligned"),
}


@dataclass(frozen=True)
class AvailabilitySetSpec:
    subscription_id: str
    resource_group: str
    location: str
    azure_name: str
    fault_domains: int = 2
    update_domains: int = 5
    sku: str = "Aligned"  #: Aligned: for VMs with managed disks; Classic: unmanaged disks only
    tags: Mapping[str, str] = field(default_factory=dict)
    policies: Policies = Policies()
    credentials_secret: str | None = None

    @property
    def set_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.Compute/availabilitySets/{self.azure_name}")


def parse_spec(spec: Mapping[str, Any], name: str, default_subscription_id: str | None,
               credentials_subscription_id: str | None = None) -> AvailabilitySetSpec:
    subscription_id = subscription_of(spec, credentials_subscription_id, default_subscription_id)
    for required in ("location", "resourceGroup"):
        if not spec.get(required):
            raise SpecError(f"spec.{required} is required")
    faults = int(FIELDS["spec.platformFaultDomainCount"].pick(spec.get("platformFaultDomainCount"),
                                                               "spec.platformFaultDomainCount"))
    updates = int(FIELDS["spec.platformUpdateDomainCount"].pick(spec.get("platformUpdateDomainCount"),
                                                                 "spec.platformUpdateDomainCount"))
    if not 1 <= faults <= 3:
        raise SpecError("spec.platformFaultDomainCount must be 1 to 3")
    if not 1 <= updates <= 20:
        raise SpecError("spec.platformUpdateDomainCount must be 1 to 20")
    credentials = (spec.get("credentialsSecretRef") or {}).get("name")
    return AvailabilitySetSpec(
        subscription_id=subscription_id,
        resource_group=str(spec["resourceGroup"]),
        location=str(spec["location"]),
        azure_name=str(spec.get("azureName") or name),
        fault_domains=faults,
        update_domains=updates,
        sku=str(FIELDS["spec.sku"].pick(spec.get("sku"), "spec.sku")),
        tags={str(k): str(v) for k, v in (spec.get("tags") or {}).items()},
        policies=Policies.parse(spec),
        credentials_secret=str(credentials) if credentials else None,
    )
