"""Shared Azure infrastructure as ARM bodies and readers: resource groups, the operator's VNet, public IPs, NSGs,
NICs. Kind-neutral (location, tags and zones come in as values), so every kind builds on the same shapes. Pure."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from . import ids
from .ownership import created_by_tags

#: Address plan of the virtual network the operator creates per resource group and location.
AUTO_VNET_PREFIX = "10.224.0.0/16"
AUTO_SUBNET_NAME = "azvm-subnet"
AUTO_SUBNET_PREFIX = "10.224.0.0/20"

#: provisioningState values that mean Azure is still working on a resource.
IN_PROGRESS_STATES = ("Creating", "Updating", "Deleting", "Migrating")


def provisioning_state(resource: Mapping[str, Any] | None) -> str | None:
    state = ((resource or {}).get("properties") or {}).get("provisioningState")
    return str(state) if state else None


def in_progress(resource: Mapping[str, Any] | None) -> str | None:
    """The provisioningState when Azure is still working on the resource, else None."""
    state = provisioning_state(resource)
    return state if state in IN_PROGRESS_STATES else None


# ---- resource group and the operator's VNet ------------------------------------------------------------------


def resource_group_body(location: str) -> dict[str, Any]:
    return {"location": location, "tags": created_by_tags()}


def auto_vnet_name(location: str) -> str:
    return f"azvm-vnet-{location}"


def auto_subnet_id(subscription: str, resource_group: str, location: str) -> str:
    return ids.subnet_id(subscription, resource_group, auto_vnet_name(location), AUTO_SUBNET_NAME)


def auto_vnet_body(location: str) -> dict[str, Any]:
    return {
        "location": location,
        "tags": created_by_tags(),
        "properties": {
            "addressSpace": {"addressPrefixes": [AUTO_VNET_PREFIX]},
            "subnets": [{"name": AUTO_SUBNET_NAME, "properties": {"addressPrefix": AUTO_SUBNET_PREFIX}}],
        },
    }


# ---- public IP -----------------------------------------------------------------------------------------------


def public_ip_body(location: str, tags: Mapping[str, str], zones: Sequence[str] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location": location,
        "tags": dict(tags),
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"},
    }
    if zones:
        body["zones"] = list(zones)
    return body


def public_ip_address(public_ip: Mapping[str, Any] | None) -> str | None:
    address = ((public_ip or {}).get("properties") or {}).get("ipAddress")
    return str(address) if address else None


# ---- network security group ----------------------------------------------------------------------------------


def nsg_rules(ports: Sequence[int], protocol: str = "Tcp") -> list[dict[str, Any]]:
    return [
        {
            "name": f"allow-{protocol.lower()}-{port}",
            "properties": {
                "priority": 100 + i * 10,
                "direction": "Inbound",
                "access": "Allow",
                "protocol": protocol,
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": str(port),
            },
        }
        for i, port in enumerate(ports)
    ]


def nsg_body(location: str, tags: Mapping[str, str], ports: Sequence[int]) -> dict[str, Any]:
    return {"location": location, "tags": dict(tags), "properties": {"securityRules": nsg_rules(ports)}}


def nsg_open_ports(nsg: Mapping[str, Any] | None) -> tuple[int, ...]:
    ports = set()
    for rule in ((nsg or {}).get("properties") or {}).get("securityRules") or []:
        props = rule.get("properties") or {}
        if props.get("direction") == "Inbound" and props.get("access") == "Allow":
            port = str(props.get("destinationPortRange") or "")
            if port.isdigit():
                ports.add(int(port))
    return tuple(sorted(ports))


# ---- network interface ---------------------------------------------------------------------------------------


def nic_body(location: str, tags: Mapping[str, str], subnet: str, public_ip_id: str | None,
             nsg_id: str | None = None) -> dict[str, Any]:
    ip_config: dict[str, Any] = {"subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic"}
    if public_ip_id:
        ip_config["publicIPAddress"] = {"id": public_ip_id}
    properties: dict[str, Any] = {"ipConfigurations": [{"name": "ipconfig1", "properties": ip_config}]}
    if nsg_id:
        properties["networkSecurityGroup"] = {"id": nsg_id}
    return {"location": location, "tags": dict(tags), "properties": properties}


def nic_nsg_id(nic: Mapping[str, Any] | None) -> str | None:
    ref = ((nic or {}).get("properties") or {}).get("networkSecurityGroup") or {}
    return str(ref["id"]) if ref.get("id") else None


def _ip_config_reference(nic: Mapping[str, Any] | None, key: str) -> str | None:
    """The id a NIC's first IP configuration that has one refers to under `key` (subnet, publicIPAddress)."""
    for config in ((nic or {}).get("properties") or {}).get("ipConfigurations") or []:
        ref = (config.get("properties") or {}).get(key) or {}
        if ref.get("id"):
            return str(ref["id"])
    return None


def nic_public_ip_id(nic: Mapping[str, Any] | None) -> str | None:
    return _ip_config_reference(nic, "publicIPAddress")


def nic_subnet_id(nic: Mapping[str, Any] | None) -> str | None:
    return _ip_config_reference(nic, "subnet")


def private_ip(nic: Mapping[str, Any] | None) -> str | None:
    for config in ((nic or {}).get("properties") or {}).get("ipConfigurations") or []:
        address = (config.get("properties") or {}).get("privateIPAddress")
        if address:
            return str(address)
    return None


def nic_needs_update(nic: Mapping[str, Any] | None, subnet: str, public_ip_id: str | None,
                     nsg_id: str | None) -> bool:
    """The NIC is missing or refers to another subnet, public IP or NSG than wanted."""
    return (nic is None or not ids.same(nic_subnet_id(nic), subnet)
            or not ids.same(nic_public_ip_id(nic), public_ip_id) or not ids.same(nic_nsg_id(nic), nsg_id))
