"""Microsoft.Network: virtual networks (with subnets), subnets, network interfaces, public IPs and NSGs.

Writes are long-running (201/200 with ``Azure-AsyncOperation``; provisioningState Updating -> Succeeded), deletes
are 202 (204 when missing). References between resources are validated and mirrored as ARM does: a subnet lists
the NIC ip configurations in it, a public IP its ``ipConfiguration``, an NSG its NICs and subnets, a NIC the VM
that uses it. Private IPs are allocated from the subnet prefix from ``.4`` (Azure reserves the first four and the
last address); public IPs from a fake ``20.64.0.0/10`` pool.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
from collections.abc import Callable
from typing import Any

from .. import ids, util
from ..errors import ArmError, bad_request, parent_not_found, resource_not_found
from ..lro import Operation
from ..routing import RESOURCE_GROUP, SUBSCRIPTION, Call, Reply, Router
from ..services import Services
from ..store import Resource

NS = "Microsoft.Network"
VNET = "Microsoft.Network/virtualNetworks"
SUBNET = "Microsoft.Network/virtualNetworks/subnets"
NIC = "Microsoft.Network/networkInterfaces"
PIP = "Microsoft.Network/publicIPAddresses"
NSG = "Microsoft.Network/networkSecurityGroups"

_PIP_COUNTER = "public_ip_next"
_PIP_POOL = ipaddress.ip_network("20.64.0.0/10")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def invalid_reference(referenced: str, referencing: str) -> ArmError:
    return bad_request(
        "InvalidResourceReference",
        f"Resource {referenced} referenced by resource {referencing} was not found. Please make sure that the "
        "referenced resource exists, and that both resources are in the same region.",
    )


def ref_id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) and value.get("id") else None


def _parse_prefix(prefix: Any, target: str) -> Network:
    try:
        return ipaddress.ip_network(str(prefix), strict=True)
    except ValueError:
        raise bad_request(
            "InvalidAddressPrefixFormat", f"Address prefix {prefix} has an invalid format.", target
        ) from None


def subnet_prefixes(subnet_body: dict[str, Any]) -> list[Network]:
    props = subnet_body.get("properties") or {}
    raw = props.get("addressPrefixes") or ([props["addressPrefix"]] if props.get("addressPrefix") else [])
    return [_parse_prefix(p, "addressPrefix") for p in raw]


def find_named(items: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The item of a list of named sub-resources with this name (case-insensitive), or None."""
    return next((item for item in items if item["name"].lower() == name.lower()), None)


def _find_subnet(vnet: Resource, name: str) -> dict[str, Any] | None:
    return find_named(vnet.properties.get("subnets", []), name)


def _is_deleting(resource: Resource | None) -> bool:
    return resource is not None and resource.properties.get("provisioningState") == "Deleting"


def _is_subnet_id(resource_id: str) -> bool:
    parsed = ids.parse(resource_id)
    return parsed is not None and parsed.type_name.lower() == SUBNET.lower()


def put_target(services: Services, call: Call) -> tuple[dict[str, Any], str, Resource | None, str]:
    """``(request, id, existing, location)`` of a PUT of a top-level network resource, after ARM's checks: resource
    group, not being deleted (409 ``AnotherOperationInProgress``), location required and unchanged (409
    ``InvalidResourceLocation``)."""
    assert call.resource_group is not None
    services.require_resource_group(call.subscription, call.resource_group)
    request = call.body if isinstance(call.body, dict) else {}
    resource_id = services.canonical_id(call)
    existing = services.store.get(resource_id)
    if _is_deleting(existing):
        raise ArmError(
            409, "AnotherOperationInProgress", "Another operation on this or dependent resource is in progress."
        )

    def moved(location: str) -> ArmError:
        assert existing is not None
        return ArmError(
            409,
            "InvalidResourceLocation",
            f"The resource '{call.name}' already exists in location '{existing.body['location']}' in resource "
            f"group '{call.resource_group}'. A resource with the same name cannot be created in location "
            f"'{location}'. Please select a new resource name.",
        )

    return request, resource_id, existing, services.write_location(request, existing, moved)


def nested_parent(services: Services, call: Call, *, for_write: bool) -> Resource | None:
    """The parent (``{type}/{name}``) of a call on a sub-resource kept in the parent's properties (subnets, NSG
    rules), with the resource group's stored casing; None if missing."""
    assert call.resource_group is not None
    group = services.require_resource_group(call.subscription, call.resource_group, for_write=for_write)
    parent_id = ids.resource_id(call.subscription, group.body["name"], call.namespace, call.types[:1], call.names[:1])
    return services.store.get(parent_id)


def nested_get(call: Call, parent: Resource | None) -> Reply:
    """GET of a sub-resource kept in ``parent.properties[{child type}]``."""
    child = find_named(parent.properties.get(call.types[1], []), call.names[1]) if parent is not None else None
    if child is None:
        assert call.resource_group is not None
        parent_path = f"{call.namespace}/{call.types[0]}/{call.names[0]}/{call.types[1]}"
        raise resource_not_found(parent_path, call.names[1], call.resource_group)
    return Reply(200, child)


def nested_list(services: Services, call: Call, parent: Resource | None) -> Reply:
    """LIST of the sub-resources kept in ``parent.properties[{child type}]``."""
    if parent is None:
        assert call.resource_group is not None
        raise resource_not_found(f"{call.namespace}/{call.types[0]}", call.names[0], call.resource_group)
    return services.page(call, list(parent.properties.get(call.types[1], [])))


class NetworkProvider:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        #: Other holders of private IPs (scale set instances, load balancer frontends): subnet id -> addresses.
        self.private_ip_users: list[Callable[[str], set[str]]] = []
        #: Extra checks of a NIC ip configuration ``(properties, nic id)`` (e.g. load balancer pool references).
        self.ip_configuration_checks: list[Callable[[dict[str, Any], str], None]] = []

    # registration ---------------------------------------------------------------------------------------------

    def register(self, router: Router) -> None:
        tops: dict[str, Callable[[Call, Resource | None, dict[str, Any], str], dict[str, Any]]] = {
            "virtualNetworks": self._build_vnet,
            "networkInterfaces": self._build_nic,
            "publicIPAddresses": self._build_pip,
            "networkSecurityGroups": self._build_nsg,
        }
        for type_segment, builder in tops.items():
            routes = router.register(RESOURCE_GROUP, NS, (type_segment,))
            routes.on_item("PUT", self._put_handler(builder)).on_item("GET", self.get_top)
            routes.on_item("DELETE", self.delete_top).on_item("PATCH", self.patch_tags)
            routes.on_collection("GET", self.list_in_group)
            router.register(SUBSCRIPTION, NS, (type_segment,)).on_collection("GET", self.list_in_subscription)
        subnets = router.register(RESOURCE_GROUP, NS, ("virtualNetworks", "subnets"))
        subnets.on_item("PUT", self.put_subnet).on_item("GET", self.get_subnet).on_item("DELETE", self.delete_subnet)
        subnets.on_collection("GET", self.list_subnets)
        engine = self.services.engine
        engine.register("network.put", self._complete_put)
        engine.register("network.delete", self._complete_delete)
        self.services.on_release(NIC, self._release_nic)
        self.services.on_release(VNET, self._release_vnet)

    # generic top-level resources ------------------------------------------------------------------------------

    def _put_handler(
        self, builder: Callable[[Call, Resource | None, dict[str, Any], str], dict[str, Any]]
    ) -> Callable[[Call], Reply]:
        def handler(call: Call) -> Reply:
            return self._put_top(call, builder)

        return handler

    def _put_top(
        self, call: Call, builder: Callable[[Call, Resource | None, dict[str, Any], str], dict[str, Any]]
    ) -> Reply:
        request, resource_id, existing, location = put_target(self.services, call)
        properties = builder(call, existing, request, resource_id)
        properties["provisioningState"] = "Updating"
        properties.setdefault(
            "resourceGuid", existing.properties.get("resourceGuid") if existing else util.new_uuid()
        )
        body: dict[str, Any] = {
            "name": call.name,
            "id": resource_id,
            "etag": util.new_etag(),
            "type": call.type_name,
            "location": location,
        }
        if request.get("tags"):
            body["tags"] = request["tags"]
        for extra in ("sku", "zones", "extendedLocation"):
            if extra in request:
                body[extra] = request[extra]
            elif existing is not None and extra in existing.body:
                body[extra] = existing.body[extra]
        if call.type_name == PIP:
            body["sku"] = properties.pop("_sku")
        body["properties"] = properties
        resource = Resource(id=resource_id, type=call.type_name, body=body, private={})
        operation = self._begin(call, "network.put", resource_id, location)
        resource.private["active_operation"] = operation.id
        self.store.put(resource)
        self._relink(existing, resource)
        stored = self.store.get(resource_id)
        assert stored is not None
        return Reply(200 if existing is not None else 201, stored.body, self.services.lro_headers(call, operation))

    def _begin(self, call: Call, kind: str, resource_id: str, location: str) -> Operation:
        return self.services.begin(call, kind, resource_id, location, NS)

    def get_top(self, call: Call) -> Reply:
        return Reply(200, self.services.require(call).body)

    def patch_tags(self, call: Call) -> Reply:
        assert call.resource_group is not None
        resource = self.store.edit(call.resource_id)
        if resource is None:
            raise resource_not_found(call.type_name, call.name, call.resource_group)
        request = call.body if isinstance(call.body, dict) else {}
        if "tags" in request:
            resource.body["tags"] = request["tags"] or {}
        resource.body["etag"] = util.new_etag()
        self.store.put(resource)
        return Reply(200, resource.body)

    def list_in_group(self, call: Call) -> Reply:
        return self.services.list_in_group(call)

    def list_in_subscription(self, call: Call) -> Reply:
        return self.services.list_in_subscription(call)

    def delete_top(self, call: Call) -> Reply:
        resource = self.store.get(call.resource_id)
        if resource is None:
            return Reply(204)
        props = resource.properties
        if call.type_name == NIC and ref_id(props.get("virtualMachine")):
            raise bad_request(
                "NicInUse",
                f"Network Interface {resource.id} is used by existing resource {props['virtualMachine']['id']}. "
                "In order to delete the network interface, it must be dissociated from the resource. To learn more, "
                "see aka.ms/deletenic.",
            )
        if call.type_name == PIP and ref_id(props.get("ipConfiguration")):
            raise bad_request(
                "PublicIPAddressInUse",
                f"Public IP address {resource.id} can not be deleted since it is still allocated to resource "
                f"{props['ipConfiguration']['id']}. In order to delete the public IP, disassociate/detach the Public "
                "IP address from the resource. To learn how to do this, see aka.ms/deletepublicip.",
            )
        if call.type_name == NSG and (props.get("networkInterfaces") or props.get("subnets")):
            users = [r["id"] for r in props.get("networkInterfaces", []) + props.get("subnets", [])]
            raise bad_request(
                "InUseNetworkSecurityGroupCannotBeDeleted",
                f"Network security group {resource.id} cannot be deleted because it is in use by the following "
                f"resources: {', '.join(users)}.",
            )
        if call.type_name == VNET:
            for subnet in props.get("subnets", []):
                self._check_subnet_unused(subnet)
        return self._begin_delete(call, resource.id)

    def _begin_delete(self, call: Call, resource_id: str) -> Reply:
        resource = self.store.get(resource_id)
        assert resource is not None
        location = resource.body.get("location") or self._location_of_parent(resource_id)
        return self.services.begin_delete(call, "network.delete", resource_id, location, NS)

    def _location_of_parent(self, resource_id: str) -> str:
        parsed = ids.parse(resource_id)
        parent = self.store.get(parsed.parent_id) if parsed is not None else None
        return parent.body.get("location", "global") if parent is not None else "global"

    def _edit_subnet(self, resource_id: str) -> tuple[Resource, dict[str, Any]] | None:
        """``(VNet being edited, its subnet)`` for a subnet id whose VNet and subnet exist, else None."""
        parsed = ids.parse(resource_id)
        vnet = self.store.edit(parsed.parent_id) if parsed is not None else None
        subnet = _find_subnet(vnet, parsed.name) if vnet is not None and parsed is not None else None
        return (vnet, subnet) if vnet is not None and subnet is not None else None

    def _complete_put(self, operation: Operation, error: dict[str, Any] | None) -> None:
        if _is_subnet_id(operation.resource_id):
            found = self._edit_subnet(operation.resource_id)
            if found is not None:
                found[1]["properties"]["provisioningState"] = "Failed" if error else "Succeeded"
                self.store.put(found[0])
            return
        resource = self.store.edit(operation.resource_id)
        if resource is None or resource.private.get("active_operation") != operation.id:
            return
        state = "Failed" if error else "Succeeded"
        resource.properties["provisioningState"] = state
        for nested in resource.properties.get("subnets", []) + resource.properties.get("ipConfigurations", []):
            nested.setdefault("properties", {})["provisioningState"] = state
        resource.private.pop("active_operation", None)
        self.store.put(resource)

    def _complete_delete(self, operation: Operation, error: dict[str, Any] | None) -> None:
        if error is not None:
            self._complete_put(operation, error)
            return
        if _is_subnet_id(operation.resource_id):
            found = self._edit_subnet(operation.resource_id)
            if found is not None:
                vnet, subnet = found
                self._link_subnet_nsg(subnet, vnet, unlink=True)
                vnet.properties["subnets"] = [s for s in vnet.properties["subnets"] if s is not subnet]
                vnet.body["etag"] = util.new_etag()
                self.store.put(vnet)
            return
        self.services.remove(operation.resource_id)

    # virtual networks and subnets -----------------------------------------------------------------------------

    def _build_vnet(
        self, call: Call, existing: Resource | None, request: dict[str, Any], resource_id: str
    ) -> dict[str, Any]:
        props = copy.deepcopy(request.get("properties") or {})
        prefixes = util.get_path(props, "addressSpace", "addressPrefixes")
        if not prefixes:
            raise bad_request(
                "InvalidRequestFormat", "Cannot parse the request: addressSpace.addressPrefixes is required."
            )
        spaces = [_parse_prefix(p, "addressSpace") for p in prefixes]
        old_subnets = {s["name"].lower(): s for s in (existing.properties.get("subnets", []) if existing else [])}
        subnets: list[dict[str, Any]] = []
        for requested in props.get("subnets") or []:
            name = requested.get("name")
            if not name:
                raise bad_request("InvalidRequestFormat", "Cannot parse the request: every subnet needs a name.")
            subnets.append(self._build_subnet(resource_id, name, requested, old_subnets.get(name.lower())))
        self._check_subnet_layout(call.name, spaces, subnets)
        new_names = {s["name"].lower() for s in subnets}
        for name, old in old_subnets.items():
            if name not in new_names:
                self._check_subnet_unused(old)
        props["subnets"] = subnets
        props.setdefault("virtualNetworkPeerings", existing.properties.get("virtualNetworkPeerings", []) if existing else [])
        props.setdefault("enableDdosProtection", False)
        return props

    def _build_subnet(
        self, vnet_id: str, name: str, requested: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        props = copy.deepcopy(requested.get("properties") or {})
        if not props.get("addressPrefix") and not props.get("addressPrefixes"):
            raise bad_request("InvalidRequestFormat", f"Subnet '{name}' needs an addressPrefix.", "addressPrefix")
        subnet_id = f"{vnet_id}/subnets/{name}"
        nsg_id = ref_id(props.get("networkSecurityGroup"))
        if nsg_id is not None:
            nsg = self.store.get(nsg_id)
            if nsg is None or _is_deleting(nsg):
                raise invalid_reference(nsg_id, subnet_id)
        if old is not None:
            in_use = old["properties"].get("ipConfigurations")
            if in_use and subnet_prefixes(old) != subnet_prefixes({"properties": props}):
                raise bad_request(
                    "InUseSubnetCannotBeUpdated",
                    f"Subnet {name} is in use and cannot be updated: its address prefix cannot change while "
                    f"{len(in_use)} IP configuration(s) use it.",
                )
            if in_use:
                props["ipConfigurations"] = in_use
        props["provisioningState"] = "Updating"
        props.setdefault("privateEndpointNetworkPolicies", "Disabled")
        props.setdefault("privateLinkServiceNetworkPolicies", "Enabled")
        props.setdefault("delegations", [])
        return {
            "name": name,
            "id": subnet_id,
            "etag": util.new_etag(),
            "type": SUBNET,
            "properties": props,
        }

    def _check_subnet_layout(self, vnet_name: str, spaces: list[Network], subnets: list[dict[str, Any]]) -> None:
        seen: list[tuple[str, Network]] = []
        for subnet in subnets:
            for prefix in subnet_prefixes(subnet):
                if not any(prefix.version == s.version and prefix.subnet_of(s) for s in spaces):  # type: ignore[arg-type]
                    raise bad_request(
                        "NetcfgSubnetRangeOutsideVnet",
                        f"Subnet '{subnet['name']}' is not valid because its IP address range is outside the IP "
                        f"address range of virtual network '{vnet_name}'.",
                    )
                for other_name, other in seen:
                    if prefix.overlaps(other):  # type: ignore[arg-type]
                        raise bad_request(
                            "NetcfgSubnetRangesOverlap",
                            f"Subnet '{subnet['name']}' is not valid because its IP address range overlaps with "
                            f"that of an existing subnet '{other_name}' in virtual network '{vnet_name}'.",
                        )
                seen.append((subnet["name"], prefix))

    def _check_subnet_unused(self, subnet: dict[str, Any]) -> None:
        users = subnet["properties"].get("ipConfigurations") or []
        if users:
            raise bad_request(
                "InUseSubnetCannotBeDeleted",
                f"Subnet {subnet['name']} is in use by {users[0]['id']} and cannot be deleted. In order to delete "
                "the subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.",
            )

    def _vnet_for_subnet_call(self, call: Call, *, for_write: bool) -> Resource | None:
        return nested_parent(self.services, call, for_write=for_write)

    def put_subnet(self, call: Call) -> Reply:
        vnet = self._vnet_for_subnet_call(call, for_write=True)
        if vnet is None or _is_deleting(vnet):
            raise parent_not_found(call.names[0])
        request = call.body if isinstance(call.body, dict) else {}
        name = call.names[1]
        old = _find_subnet(vnet, name)
        subnet = self._build_subnet(vnet.id, old["name"] if old else name, request, old)
        edited = self.store.edit(vnet.id)
        assert edited is not None
        others = [s for s in edited.properties.get("subnets", []) if s["name"].lower() != name.lower()]
        spaces = [_parse_prefix(p, "addressSpace") for p in edited.properties["addressSpace"]["addressPrefixes"]]
        self._check_subnet_layout(vnet.body["name"], spaces, [*others, subnet])
        if old is not None:
            self._link_subnet_nsg(old, edited, unlink=True)
        edited.properties["subnets"] = [*others, subnet] if old is None else [
            subnet if s["name"].lower() == name.lower() else s for s in edited.properties["subnets"]
        ]
        edited.body["etag"] = util.new_etag()
        self.store.put(edited)
        self._link_subnet_nsg(subnet, edited)
        operation = self._begin(call, "network.put", subnet["id"], vnet.body["location"])
        return Reply(201 if old is None else 200, subnet, self.services.lro_headers(call, operation))

    def get_subnet(self, call: Call) -> Reply:
        return nested_get(call, self._vnet_for_subnet_call(call, for_write=False))

    def list_subnets(self, call: Call) -> Reply:
        return nested_list(self.services, call, self._vnet_for_subnet_call(call, for_write=False))

    def delete_subnet(self, call: Call) -> Reply:
        vnet = self._vnet_for_subnet_call(call, for_write=True)
        subnet = _find_subnet(vnet, call.names[1]) if vnet is not None else None
        if vnet is None or subnet is None:
            return Reply(204)
        self._check_subnet_unused(subnet)
        operation = self._begin(call, "network.delete", subnet["id"], vnet.body["location"])
        edited = self.store.edit(vnet.id)
        assert edited is not None
        edited_subnet = _find_subnet(edited, call.names[1])
        assert edited_subnet is not None
        edited_subnet["properties"]["provisioningState"] = "Deleting"
        self.store.put(edited)
        return Reply(202, None, self.services.lro_headers(call, operation, location=True))

    def _release_vnet(self, vnet: Resource) -> None:
        for subnet in vnet.properties.get("subnets", []):
            self._link_subnet_nsg(subnet, vnet, unlink=True)

    def _link_subnet_nsg(self, subnet: dict[str, Any], vnet: Resource, *, unlink: bool = False) -> None:
        nsg_id = ref_id(subnet["properties"].get("networkSecurityGroup"))
        if nsg_id is not None:
            self._backref_list(nsg_id, "subnets", subnet["id"], add=not unlink)

    # public IP addresses --------------------------------------------------------------------------------------

    def _build_pip(
        self, call: Call, existing: Resource | None, request: dict[str, Any], resource_id: str
    ) -> dict[str, Any]:
        props = copy.deepcopy(request.get("properties") or {})
        sku = copy.deepcopy(request.get("sku") or (existing.body.get("sku") if existing else None) or {"name": "Standard"})
        sku.setdefault("tier", "Regional")
        if sku["name"] not in ("Basic", "Standard"):
            raise bad_request("InvalidParameter", f"Public IP SKU '{sku['name']}' is not valid.", "sku.name")
        method = props.get("publicIPAllocationMethod") or ("Static" if sku["name"] == "Standard" else "Dynamic")
        if sku["name"] == "Standard" and method != "Static":
            raise bad_request(
                "StandardSkuPublicIPAddressesMustBeStatic",
                f"Standard sku publicIp {resource_id} must be Static allocation method.",
            )
        props["publicIPAllocationMethod"] = method
        props.setdefault("publicIPAddressVersion", "IPv4")
        props.setdefault("idleTimeoutInMinutes", 4)
        props.setdefault("ipTags", [])
        if existing is not None:
            for kept in ("ipAddress", "ipConfiguration"):
                if kept in existing.properties:
                    props[kept] = existing.properties[kept]
        if "ipAddress" not in props:
            props["ipAddress"] = self._allocate_public_ip()
        label = util.get_path(props, "dnsSettings", "domainNameLabel")
        if label:
            location = util.normalize_location(request.get("location") or existing.body["location"])  # type: ignore[union-attr]
            props["dnsSettings"]["fqdn"] = f"{label}.{location}.cloudapp.azure.com"
        props["_sku"] = sku
        return props

    def _allocate_public_ip(self) -> str:
        used = {r.properties.get("ipAddress") for r in self.store.list(PIP)}
        index = int(self.store.get_meta(_PIP_COUNTER, 0))
        while True:
            address = str(_PIP_POOL[4 + index])
            index += 1
            if address not in used and not address.endswith((".0", ".255")):
                break
        self.store.put_meta(_PIP_COUNTER, index)
        return address

    # network security groups ----------------------------------------------------------------------------------

    def _build_nsg(
        self, call: Call, existing: Resource | None, request: dict[str, Any], resource_id: str
    ) -> dict[str, Any]:
        props = copy.deepcopy(request.get("properties") or {})
        rules = []
        for rule in props.get("securityRules") or []:
            name = rule.get("name")
            rule_props = rule.get("properties") or {}
            priority = rule_props.get("priority")
            if not name or not isinstance(priority, int) or not 100 <= priority <= 4096:
                raise bad_request(
                    "SecurityRuleInvalidPriority",
                    f"Security rule {name} has invalid Priority. Value provided: {priority} Allowed range 100-4096.",
                )
            if rule_props.get("access") not in ("Allow", "Deny") or rule_props.get("direction") not in (
                "Inbound",
                "Outbound",
            ):
                raise bad_request(
                    "SecurityRuleParameterContainsUnsupportedValue",
                    f"Security rule {name} needs access Allow|Deny and direction Inbound|Outbound.",
                )
            rule_props = check_security_rule(name, rule_props)
            rule_props = {**rule_props, "provisioningState": "Succeeded"}
            rules.append(
                {
                    "name": name,
                    "id": f"{resource_id}/securityRules/{name}",
                    "etag": util.new_etag(),
                    "type": f"{NSG}/securityRules",
                    "properties": rule_props,
                }
            )
        check_security_rule_conflicts(rules)
        props["securityRules"] = rules
        props["defaultSecurityRules"] = _default_security_rules(resource_id)
        if existing is not None:
            for kept in ("networkInterfaces", "subnets"):
                if existing.properties.get(kept):
                    props[kept] = existing.properties[kept]
        return props

    # network interfaces ---------------------------------------------------------------------------------------

    def _build_nic(
        self, call: Call, existing: Resource | None, request: dict[str, Any], resource_id: str
    ) -> dict[str, Any]:
        props = copy.deepcopy(request.get("properties") or {})
        configs = props.get("ipConfigurations") or []
        if not configs:
            raise bad_request(
                "InvalidRequestFormat", "Cannot parse the request: a network interface needs at least one IP configuration."
            )
        old_configs = {
            c["name"].lower(): c for c in (existing.properties.get("ipConfigurations", []) if existing else [])
        }
        has_primary = any(util.get_path(c, "properties", "primary") for c in configs)
        primary_subnet = None
        taken_here: dict[str, set[str]] = {}
        built = []
        for index, config in enumerate(configs):
            name = config.get("name") or f"ipconfig{index + 1}"
            config_id = f"{resource_id}/ipConfigurations/{name}"
            config_props = copy.deepcopy(config.get("properties") or {})
            for check in self.ip_configuration_checks:
                check(config_props, resource_id)
            subnet_id = ref_id(config_props.get("subnet")) or primary_subnet
            if subnet_id is None:
                raise bad_request(
                    "InvalidRequestFormat", f"IP configuration {config_id} needs a subnet reference.", "subnet"
                )
            vnet, subnet = self._resolve_subnet(subnet_id, resource_id)
            if primary_subnet is None:
                primary_subnet = subnet["id"]
            prefix = subnet_prefixes(subnet)[0]
            old = old_configs.get(name.lower())
            old_address = util.get_path(old, "properties", "privateIPAddress")
            old_subnet = ref_id(util.get_path(old, "properties", "subnet"))
            method = config_props.get("privateIPAllocationMethod") or "Dynamic"
            used = self._used_private_ips(subnet["id"], exclude_nic=resource_id) | taken_here.setdefault(
                subnet["id"].lower(), set()
            )
            if method == "Static" and config_props.get("privateIPAddress"):
                address = self._check_static_ip(str(config_props["privateIPAddress"]), prefix, used, subnet["id"])
            elif old_address and old_subnet and old_subnet.lower() == subnet["id"].lower() and old_address not in used:
                address = old_address
            else:
                address = _allocate_private_ip(prefix, used, subnet["id"])
            taken_here[subnet["id"].lower()].add(address)
            pip_id = ref_id(config_props.get("publicIPAddress"))
            if pip_id is not None:
                pip = self.store.get(pip_id)
                if pip is None or _is_deleting(pip):
                    raise invalid_reference(pip_id, resource_id)
                holder = ref_id(pip.properties.get("ipConfiguration"))
                if holder is not None and holder.lower() != config_id.lower():
                    raise bad_request(
                        "PublicIPAddressInUse",
                        f"Public IP address {pip.id} is already allocated to resource {holder}.",
                    )
                config_props["publicIPAddress"] = {"id": pip.id}
            config_props.update(
                {
                    "provisioningState": "Updating",
                    "privateIPAddress": address,
                    "privateIPAllocationMethod": method,
                    "subnet": {"id": subnet["id"]},
                    "primary": bool(config_props.get("primary")) or (not has_primary and index == 0),
                    "privateIPAddressVersion": config_props.get("privateIPAddressVersion") or "IPv4",
                }
            )
            built.append(
                {
                    "name": name,
                    "id": config_id,
                    "etag": util.new_etag(),
                    "type": f"{NIC}/ipConfigurations",
                    "properties": config_props,
                }
            )
        props["ipConfigurations"] = built
        nsg_id = ref_id(props.get("networkSecurityGroup"))
        if nsg_id is not None:
            nsg = self.store.get(nsg_id)
            if nsg is None or _is_deleting(nsg):
                raise invalid_reference(nsg_id, resource_id)
            props["networkSecurityGroup"] = {"id": nsg.id}
        props.setdefault("dnsSettings", {"dnsServers": []})
        props["dnsSettings"].setdefault("appliedDnsServers", [])
        props["dnsSettings"]["internalDomainNameSuffix"] = _internal_dns_suffix(resource_id)
        props.setdefault("enableAcceleratedNetworking", False)
        props.setdefault("enableIPForwarding", False)
        props.setdefault("disableTcpStateTracking", False)
        props.setdefault("vnetEncryptionSupported", False)
        props.setdefault("nicType", "Standard")
        props.setdefault("auxiliaryMode", "None")
        props.setdefault("hostedWorkloads", [])
        props.setdefault("tapConfigurations", [])
        if existing is not None:
            for kept in ("virtualMachine", "macAddress", "primary"):
                if kept in existing.properties:
                    props[kept] = existing.properties[kept]
        return props

    def _resolve_subnet(self, subnet_id: str, referencing: str) -> tuple[Resource, dict[str, Any]]:
        parsed = ids.parse(subnet_id)
        if parsed is None or parsed.type_name.lower() != SUBNET.lower():
            raise invalid_reference(subnet_id, referencing)
        vnet = self.store.get(parsed.parent_id)
        subnet = _find_subnet(vnet, parsed.name) if vnet is not None and not _is_deleting(vnet) else None
        if vnet is None or subnet is None or subnet["properties"].get("provisioningState") == "Deleting":
            raise invalid_reference(subnet_id, referencing)
        return vnet, subnet

    def _used_private_ips(self, subnet_id: str, exclude_nic: str) -> set[str]:
        used: set[str] = set()
        for nic in self.store.list(NIC):
            if nic.key == ids.key(exclude_nic):
                continue
            for config in nic.properties.get("ipConfigurations", []):
                config_subnet = ref_id(config["properties"].get("subnet"))
                if config_subnet and config_subnet.lower() == subnet_id.lower():
                    used.add(config["properties"]["privateIPAddress"])
        for users in self.private_ip_users:
            used |= users(subnet_id)
        return used

    def allocate_private_ip(self, subnet_id: str, referencing: str, taken: set[str] | None = None) -> tuple[str, str]:
        """``(canonical subnet id, free address)`` in an existing subnet, avoiding every holder and ``taken``."""
        _, subnet = self._resolve_subnet(subnet_id, referencing)
        used = self._used_private_ips(subnet["id"], exclude_nic="") | (taken or set())
        return subnet["id"], _allocate_private_ip(subnet_prefixes(subnet)[0], used, subnet["id"])

    def require_subnet(self, subnet_id: str, referencing: str) -> str:
        """The canonical id of an existing subnet (400 ``InvalidResourceReference`` otherwise)."""
        return self._resolve_subnet(subnet_id, referencing)[1]["id"]

    def link_reference(self, target: str, kind: str, ref: str, *, add: bool) -> None:
        """Record (or drop) ``ref`` on ``target``: kind ``subnet`` (its ipConfigurations) or ``pip`` (ipConfiguration)."""
        self._apply_link(target, kind, ref, add=add)

    def _check_static_ip(self, address: str, prefix: Network, used: set[str], subnet_id: str) -> str:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise bad_request("InvalidPrivateIPAddressFormat", f"Private IP address {address} is invalid.") from None
        if ip not in prefix:
            raise bad_request(
                "PrivateIPAddressNotInSubnet",
                f"IP configuration private IP address {address} does not belong to the subnet {subnet_id} "
                f"with address prefix {prefix}.",
            )
        hosts = list(prefix.hosts()) if prefix.num_addresses <= 65536 else []
        if hosts and (ip in hosts[:3] or ip == prefix.broadcast_address):
            raise bad_request(
                "PrivateIPAddressIsReserved",
                f"Private IP address {address} is reserved by Azure in subnet {subnet_id}.",
            )
        if address in used:
            raise bad_request(
                "PrivateIPAddressInUse",
                f"IP configuration private IP address {address} is already in use in subnet {subnet_id}.",
            )
        return address

    def _release_nic(self, nic: Resource) -> None:
        self._relink(nic, None)

    # back-references ------------------------------------------------------------------------------------------

    def _relink(self, old: Resource | None, new: Resource | None) -> None:
        """Update what other resources record about this one (subnet ipConfigurations, PIP, NSG)."""
        old_links = _links(old) if old is not None and old.type == NIC else set()
        new_links = _links(new) if new is not None and new.type == NIC else set()
        for target, kind, ref in sorted(old_links - new_links):
            self._apply_link(target, kind, ref, add=False)
        for target, kind, ref in sorted(new_links - old_links):
            self._apply_link(target, kind, ref, add=True)
        if new is not None and new.type == VNET:
            for subnet in new.properties.get("subnets", []):
                self._link_subnet_nsg(subnet, new)
        if old is not None and old.type == VNET:
            new_ids = {s["id"].lower() for s in (new.properties.get("subnets", []) if new else [])}
            for subnet in old.properties.get("subnets", []):
                if subnet["id"].lower() not in new_ids:
                    self._link_subnet_nsg(subnet, old, unlink=True)

    def _apply_link(self, target: str, kind: str, ref: str, *, add: bool) -> None:
        if kind == "subnet":
            parsed = ids.parse(target)
            vnet = self.store.edit(parsed.parent_id) if parsed is not None else None
            subnet = _find_subnet(vnet, parsed.name) if vnet is not None and parsed is not None else None
            if vnet is None or subnet is None:
                return
            refs = [r for r in subnet["properties"].get("ipConfigurations", []) if r["id"].lower() != ref.lower()]
            if add:
                refs.append({"id": ref})
            if refs:
                subnet["properties"]["ipConfigurations"] = refs
            else:
                subnet["properties"].pop("ipConfigurations", None)
            self.store.put(vnet)
        elif kind == "pip":
            pip = self.store.edit(target)
            if pip is None:
                return
            if add:
                pip.properties["ipConfiguration"] = {"id": ref}
            elif (ref_id(pip.properties.get("ipConfiguration")) or "").lower() == ref.lower():
                pip.properties.pop("ipConfiguration", None)
            self.store.put(pip)
        elif kind == "nsg":
            self._backref_list(target, "networkInterfaces", ref, add=add)

    def _backref_list(self, target: str, field: str, ref: str, *, add: bool) -> None:
        resource = self.store.edit(target)
        if resource is None:
            return
        refs = [r for r in resource.properties.get(field, []) if r["id"].lower() != ref.lower()]
        if add:
            refs.append({"id": ref})
        if refs:
            resource.properties[field] = refs
        else:
            resource.properties.pop(field, None)
        self.store.put(resource)


def ip_configuration_links(configs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """``(target, kind, ref)`` links of ip configurations (NIC ones, load balancer frontends): each one's subnet
    (kind ``subnet``) and public IP (kind ``pip``) record the configuration's id."""
    links: set[tuple[str, str, str]] = set()
    for config in configs:
        props = config.get("properties", {})
        subnet_id = ref_id(props.get("subnet"))
        if subnet_id:
            links.add((subnet_id, "subnet", config["id"]))
        pip_id = ref_id(props.get("publicIPAddress"))
        if pip_id:
            links.add((pip_id, "pip", config["id"]))
    return links


def _links(nic: Resource) -> set[tuple[str, str, str]]:
    links = ip_configuration_links(nic.properties.get("ipConfigurations", []))
    nsg_id = ref_id(nic.properties.get("networkSecurityGroup"))
    if nsg_id:
        links.add((nsg_id, "nsg", nic.id))
    return links


def _allocate_private_ip(prefix: Network, used: set[str], subnet_id: str) -> str:
    """The lowest free address from ``.4``; the first four and the last address are reserved by Azure."""
    first = int(prefix.network_address) + 4
    last = int(prefix.broadcast_address) - 1
    for value in range(first, last + 1):
        address = str(ipaddress.ip_address(value))
        if address not in used:
            return address
    raise bad_request("SubnetIsFull", f"Subnet {subnet_id} with address prefix {prefix} does not have enough capacity.")


# NIC <-> VM association (used by the compute provider) --------------------------------------------------------


def attach_nic(services: Services, nic_id: str, vm_id: str, *, primary: bool = True) -> None:
    """Record the VM on its NIC (``virtualMachine``, ``primary`` as ARM shows them, and a MAC address)."""
    nic = services.store.edit(nic_id)
    if nic is None:
        return
    nic.properties["virtualMachine"] = {"id": vm_id}
    nic.properties["primary"] = primary
    nic.properties.setdefault("macAddress", _mac_address(nic.id))
    nic.body["etag"] = util.new_etag()
    services.store.put(nic)


def detach_nic(services: Services, nic_id: str, vm_id: str) -> None:
    nic = services.store.edit(nic_id)
    if nic is None or (ref_id(nic.properties.get("virtualMachine")) or "").lower() != vm_id.lower():
        return
    nic.properties.pop("virtualMachine", None)
    nic.properties.pop("primary", None)
    nic.body["etag"] = util.new_etag()
    services.store.put(nic)


def _internal_dns_suffix(nic_id: str) -> str:
    """Azure's internal DNS suffix of a NIC (one per resource group here), e.g. ``<26 chars>.ax.internal.cloudapp.net``."""
    parsed = ids.parse(nic_id)
    seed = ids.resource_group_id(parsed.subscription, parsed.resource_group) if parsed is not None else nic_id
    digest = hashlib.sha256(seed.lower().encode()).hexdigest()
    return f"{digest[:26]}.ax.internal.cloudapp.net"


def _mac_address(seed: str) -> str:
    digest = hashlib.sha256(seed.lower().encode()).digest()
    return "00-0D-3A-" + "-".join(f"{b:02X}" for b in digest[:3])


def _default_security_rules(nsg_id: str) -> list[dict[str, Any]]:
    specs = [
        ("AllowVnetInBound", "Allow inbound traffic from all VMs in VNET", "Allow", "Inbound", 65000, "VirtualNetwork", "VirtualNetwork"),
        ("AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer", "Allow", "Inbound", 65001, "AzureLoadBalancer", "*"),
        ("DenyAllInBound", "Deny all inbound traffic", "Deny", "Inbound", 65500, "*", "*"),
        ("AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET", "Allow", "Outbound", 65000, "VirtualNetwork", "VirtualNetwork"),
        ("AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", "Allow", "Outbound", 65001, "*", "Internet"),
        ("DenyAllOutBound", "Deny all outbound traffic", "Deny", "Outbound", 65500, "*", "*"),
    ]
    return [
        {
            "name": name,
            "id": f"{nsg_id}/defaultSecurityRules/{name}",
            "type": f"{NSG}/defaultSecurityRules",
            "properties": {
                "description": description,
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": source,
                "destinationAddressPrefix": destination,
                "access": access,
                "priority": priority,
                "direction": direction,
                "provisioningState": "Succeeded",
            },
        }
        for name, description, access, direction, priority, source, destination in specs
    ]


# security rule checks (also used by the securityRules sub-resource, providers/security_rules.py) ---------------------

SECURITY_RULE_PROTOCOLS = ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")


def _check_port_range(name: str, value: Any) -> None:
    text = str(value).strip()
    if text == "*":
        return
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high) if high else int(low)
    except ValueError:
        first, last = -1, -1
    if not (low.strip().isdigit() and (not high or high.strip().isdigit()) and 0 <= first <= last <= 65535):
        raise bad_request(
            "SecurityRuleInvalidPortRange",
            f"Security rule {name} has invalid Port range. Value provided: {value}. Value should be an integer OR "
            "integer range with '-' delimiter. Valid range 0-65535.",
        )


def check_security_rule(name: str, rule_props: dict[str, Any]) -> dict[str, Any]:
    """Protocol and port ranges of one rule (priority/access/direction are checked by the caller)."""
    protocol = rule_props.get("protocol")
    canonical = next((p for p in SECURITY_RULE_PROTOCOLS if isinstance(protocol, str) and p.lower() == protocol.lower()), None)
    if canonical is None:
        raise bad_request(
            "SecurityRuleParameterContainsUnsupportedValue",
            f"Security rule {name} has invalid Protocol. Value provided: {protocol}. Allowed values: "
            f"{', '.join(SECURITY_RULE_PROTOCOLS)}.",
        )
    for single, plural in (("sourcePortRange", "sourcePortRanges"), ("destinationPortRange", "destinationPortRanges")):
        if rule_props.get(single) is not None:
            _check_port_range(name, rule_props[single])
        for value in rule_props.get(plural) or []:
            _check_port_range(name, value)
    return {**rule_props, "protocol": canonical}


def check_security_rule_conflicts(rules: list[dict[str, Any]]) -> None:
    """Two rules of an NSG cannot share a priority in the same direction (nor a name)."""
    seen: dict[tuple[str, int], str] = {}
    names: set[str] = set()
    for rule in rules:
        props = rule["properties"]
        if rule["name"].lower() in names:
            raise bad_request("InvalidRequestFormat", f"Cannot parse the request: duplicate security rule name "
                              f"{rule['name']}.")
        names.add(rule["name"].lower())
        slot = (str(props.get("direction")), int(props.get("priority", 0)))
        if slot in seen:
            raise bad_request(
                "SecurityRuleConflict",
                f"Security rule {rule['name']} conflicts with rule {seen[slot]}. Rules cannot have the same Priority "
                "and Direction. To learn more, see aka.ms/nsgrules.",
            )
        seen[slot] = rule["name"]
