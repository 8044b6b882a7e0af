"""ARM resource ids: one parser (azure-mgmt-core's) and the builders the operator needs. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from azure.mgmt.core.tools import parse_resource_id, resource_id


@dataclass(frozen=True)
class ResourceId:
    """The parts of an ARM resource id the operator acts on (the SDK calls take resource group and name)."""

    subscription: str
    resource_group: str
    namespace: str
    type: str
    name: str  #: the last (child) name: a subnet id names the subnet

    @classmethod
    def parse(cls, value: str | None) -> "ResourceId | None":
        """None for anything that is not a full resource id (no subscription, group or name)."""
        if not value:
            return None
        parts = parse_resource_id(value)
        if not parts.get("subscription") or not parts.get("resource_group") or not parts.get("resource_name"):
            return None
        return cls(str(parts["subscription"]), str(parts["resource_group"]), str(parts.get("namespace") or ""),
                   str(parts.get("resource_type") or ""), str(parts["resource_name"]))


def arm_id(subscription: str, resource_group: str, namespace: str, type_: str, name: str,
           child_type: str | None = None, child_name: str | None = None) -> str:
    kwargs = {"child_type_1": child_type, "child_name_1": child_name} if child_type else {}
    return str(resource_id(subscription=subscription, resource_group=resource_group, namespace=namespace,
                           type=type_, name=name, **kwargs))


def resource_group_id(subscription: str, resource_group: str) -> str:
    return str(resource_id(subscription=subscription, resource_group=resource_group))


def subnet_id(subscription: str, resource_group: str, vnet: str, subnet: str) -> str:
    return arm_id(subscription, resource_group, "Microsoft.Network", "virtualNetworks", vnet, "subnets", subnet)


def availability_set_id(subscription: str, resource_group: str, name: str) -> str:
    return arm_id(subscription, resource_group, "Microsoft.Compute", "availabilitySets", name)


def virtual_machine_id(subscription: str, resource_group: str, name: str) -> str:
    return arm_id(subscription, resource_group, "Microsoft.Compute", "virtualMachines", name)


def same(a: str | None, b: str | None) -> bool:
    """ARM ids compare case-insensitively."""
    return (a or "").lower() == (b or "").lower()
