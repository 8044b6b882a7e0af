"""Typed view of a VirtualMachine custom resource's spec, with defaults and validation beyond the CRD schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

POWER_STATES = ("Running", "Stopped", "Deallocated")


class SpecError(ValueError):
    """The spec cannot be acted upon as written; the user must change it (reported as Stalled/InvalidSpec)."""


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
class NetworkSpec:
    subnet_id: str | None = None
    public_ip: bool = False


@dataclass(frozen=True)
class VirtualMachineSpec:
    subscription_id: str
    resource_group: str
    location: str
    azure_name: str
    size: str
    image: MarketplaceImage
    admin_username: str
    ssh_public_keys: tuple[str, ...]
    network: NetworkSpec = NetworkSpec()
    power_state: str = "Running"
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def vm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{self.azure_name}"
        )


def parse_spec(spec: Mapping[str, Any], name: str, default_subscription_id: str | None) -> VirtualMachineSpec:
    """Build the typed spec; raise SpecError with a message the user can act on."""
    subscription_id = spec.get("subscriptionId") or default_subscription_id
    if not subscription_id:
        raise SpecError(
            "spec.subscriptionId is not set and the operator has no default subscription "
            "(set AZURE_SUBSCRIPTION_ID or --subscription-id on the operator)"
        )
    for required in ("location", "resourceGroup", "size", "adminUsername"):
        if not spec.get(required):
            raise SpecError(f"spec.{required} is required")

    image = spec.get("image") or {}
    marketplace = image.get("marketplace")
    if not marketplace:
        raise SpecError("spec.image.marketplace is required (other image kinds are not supported yet)")
    for key in ("publisher", "offer", "sku"):
        if not marketplace.get(key):
            raise SpecError(f"spec.image.marketplace.{key} is required")

    keys = tuple(k.strip() for k in spec.get("sshPublicKeys") or [] if k and k.strip())
    if not keys:
        raise SpecError("spec.sshPublicKeys must list at least one SSH public key")

    power_state = spec.get("powerState") or "Running"
    if power_state not in POWER_STATES:
        raise SpecError(f"spec.powerState must be one of {', '.join(POWER_STATES)}, not {power_state!r}")

    network = spec.get("network") or {}
    return VirtualMachineSpec(
        subscription_id=str(subscription_id),
        resource_group=str(spec["resourceGroup"]),
        location=str(spec["location"]),
        azure_name=str(spec.get("azureName") or name),
        size=str(spec["size"]),
        image=MarketplaceImage(
            publisher=str(marketplace["publisher"]),
            offer=str(marketplace["offer"]),
            sku=str(marketplace["sku"]),
            version=str(marketplace.get("version") or "latest"),
        ),
        admin_username=str(spec["adminUsername"]),
        ssh_public_keys=keys,
        network=NetworkSpec(subnet_id=network.get("subnetId") or None, public_ip=bool(network.get("publicIP"))),
        power_state=power_state,
        tags={str(k): str(v) for k, v in (spec.get("tags") or {}).items()},
    )
