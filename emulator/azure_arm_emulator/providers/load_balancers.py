"""Microsoft.Network/loadBalancers: frontends, backend pools, probes, rules, inbound NAT rules/pools, outbound rules.

Writes are long-running like the other network resources (201/200 + ``Azure-AsyncOperation``), deletes 202 (204
when missing). Sub-resource ids, ``type`` and ``etag`` are filled in, and the cross references ARM shows are
derived from the rules: a frontend lists the rules that use it, a pool its rules and outbound rules, a probe its
rules. A frontend's public IP records the frontend as its ``ipConfiguration``; an internal frontend gets a private
IP from its subnet through the network provider's allocator (so NICs, scale set instances and frontends never
collide).

A pool's ``backendIPConfigurations`` is computed when the load balancer is read, from the pool *users*: standalone
NIC ip configurations (here) and scale set instances (registered by the scale set provider in
:attr:`LoadBalancerProvider.pool_users`). It is therefore always in sync with instances coming and going.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import ids, lro, util
from ..errors import bad_request, resource_not_found
from ..lro import Operation
from ..routing import RESOURCE_GROUP, SUBSCRIPTION, Call, Reply, Router
from ..services import Services
from ..store import Resource
from .network import NIC, NetworkProvider, invalid_reference, ip_configuration_links, put_target, ref_id

NS = "Microsoft.Network"
LB = "Microsoft.Network/loadBalancers"
CHILDREN = (
    "frontendIPConfigurations",
    "backendAddressPools",
    "loadBalancingRules",
    "probes",
    "inboundNatRules",
    "inboundNatPools",
    "outboundRules",
)

LATENCY_SECONDS = {"lb.put": 2.0, "lb.delete": 2.0}
for _kind, _seconds in LATENCY_SECONDS.items():
    lro.LATENCY_SECONDS.setdefault(_kind, _seconds)


@dataclass(frozen=True)
class PoolUse:
    """One use of a load balancer child (backend pool, NAT pool, probe) by a NIC or a scale set.

    ``ip_configuration`` is the id listed in the pool's ``backendIPConfigurations`` (None for a use by a scale set
    model that has no instance, or by a health probe reference).
    """

    child_id: str
    owner_id: str
    owner_type: str
    ip_configuration: str | None = None


#: Returns every use of the children of the given load balancer id.
PoolUsers = Callable[[str], list[PoolUse]]


def lb_id_of(child_id: str) -> str | None:
    """The load balancer id of a child id (``.../loadBalancers/{lb}/{children}/{name}``), or None."""
    parsed = ids.parse(child_id)
    if parsed is None or len(parsed.types) != 2 or parsed.types[0].lower() != "loadbalancers":
        return None
    if parsed.namespace.lower() != NS.lower():
        return None
    return parsed.parent_id


class LoadBalancerProvider:
    def __init__(self, services: Services, network: NetworkProvider) -> None:
        self.services = services
        self.store = services.store
        self.network = network
        #: Who uses the children of a load balancer (NICs here; the scale set provider appends its own).
        self.pool_users: list[PoolUsers] = [self._nic_pool_users]
        network.ip_configuration_checks.append(self._check_nic_ip_configuration)
        network.private_ip_users.append(self._frontend_private_ips)

    def register(self, router: Router) -> None:
        routes = router.register(RESOURCE_GROUP, NS, ("loadBalancers",))
        routes.on_item("PUT", self.put_lb).on_item("GET", self.get_lb).on_item("DELETE", self.delete_lb)
        routes.on_item("PATCH", self.patch_tags).on_collection("GET", self.list_lbs)
        router.register(SUBSCRIPTION, NS, ("loadBalancers",)).on_collection("GET", self.list_all_lbs)
        for child in CHILDREN:
            child_routes = router.register(RESOURCE_GROUP, NS, ("loadBalancers", child))
            child_routes.on_item("GET", self.get_child).on_collection("GET", self.list_children)
        self.services.engine.register("lb.put", self._complete_put)
        self.services.engine.register("lb.delete", self._complete_delete)
        self.services.on_release(LB, self._release_lb)

    # lookups used by other providers -------------------------------------------------------------------------

    def find_child(self, child_id: str, collection: str) -> dict[str, Any] | None:
        """The child (e.g. a backend pool) with this id in ``collection`` of a live load balancer, or None."""
        lb_id = lb_id_of(child_id)
        parsed = ids.parse(child_id)
        if lb_id is None or parsed is None or parsed.types[1].lower() != collection.lower():
            return None
        lb = self.store.get(lb_id)
        if lb is None or lb.properties.get("provisioningState") == "Deleting":
            return None
        for child in lb.properties.get(collection, []):
            if child["name"].lower() == parsed.name.lower():
                return child
        return None

    def require_child(self, child_id: Any, collection: str, referencing: str) -> str:
        """The canonical id of an existing child, else 400 ``InvalidResourceReference``."""
        child = self.find_child(child_id, collection) if isinstance(child_id, str) else None
        if child is None:
            raise invalid_reference(str(child_id), referencing)
        return str(child["id"])

    def uses(self, lb_id: str) -> list[PoolUse]:
        found: list[PoolUse] = []
        for users in self.pool_users:
            found.extend(users(lb_id))
        return found

    # reads ----------------------------------------------------------------------------------------------------

    def _require_lb(self, call: Call, name: str | None = None) -> Resource:
        assert call.resource_group is not None
        self.services.require_resource_group(call.subscription, call.resource_group, for_write=False)
        lb_name = name or call.names[0]
        lb_id = ids.resource_id(call.subscription, call.resource_group, NS, ("loadBalancers",), (lb_name,))
        lb = self.store.get(lb_id)
        if lb is None:
            raise resource_not_found(LB, lb_name, call.resource_group)
        return lb

    def view(self, lb: Resource) -> dict[str, Any]:
        """The ARM body with the derived ``backendIPConfigurations`` of each pool."""
        body = copy.deepcopy(lb.body)
        members: dict[str, list[str]] = {}
        for use in self.uses(lb.id):
            if use.ip_configuration is not None:
                members.setdefault(ids.key(use.child_id), []).append(use.ip_configuration)
        for pool in body["properties"].get("backendAddressPools", []):
            refs = sorted(set(members.get(ids.key(pool["id"]), [])), key=str.lower)
            if refs:
                pool["properties"]["backendIPConfigurations"] = [{"id": r} for r in refs]
        return body

    def get_lb(self, call: Call) -> Reply:
        return Reply(200, self.view(self._require_lb(call)))

    def list_lbs(self, call: Call) -> Reply:
        assert call.resource_group is not None
        group = self.services.require_resource_group(call.subscription, call.resource_group, for_write=False)
        return self.services.page(call, [self.view(lb) for lb in self.store.list(LB, group.id)])

    def list_all_lbs(self, call: Call) -> Reply:
        lbs = self.store.list(LB, ids.subscription_id(call.subscription))
        return self.services.page(call, [self.view(lb) for lb in lbs])

    def get_child(self, call: Call) -> Reply:
        lb = self._require_lb(call)
        collection = call.types[1]
        for child in self.view(lb)["properties"].get(_canonical_collection(collection), []):
            if child["name"].lower() == call.names[1].lower():
                return Reply(200, child)
        assert call.resource_group is not None
        raise resource_not_found(f"{LB}/{call.names[0]}/{collection}", call.names[1], call.resource_group)

    def list_children(self, call: Call) -> Reply:
        lb = self._require_lb(call)
        return self.services.page(call, list(self.view(lb)["properties"].get(_canonical_collection(call.types[1]), [])))

    # writes ---------------------------------------------------------------------------------------------------

    def patch_tags(self, call: Call) -> Reply:
        lb = self._require_lb(call)
        edited = self.store.edit(lb.id)
        assert edited is not None
        request = call.body if isinstance(call.body, dict) else {}
        if "tags" in request:
            edited.body["tags"] = request["tags"] or {}
        edited.body["etag"] = util.new_etag()
        self.store.put(edited)
        return Reply(200, self.view(edited))

    def put_lb(self, call: Call) -> Reply:
        request, lb_id, existing, location = put_target(self.services, call)
        sku = copy.deepcopy(request.get("sku") or (existing.body.get("sku") if existing else None) or {"name": "Standard"})
        if sku.get("name") not in ("Basic", "Standard", "Gateway"):
            raise bad_request("InvalidParameter", f"Load balancer SKU '{sku.get('name')}' is not valid.", "sku.name")
        sku.setdefault("tier", "Regional")
        props = self._build_properties(lb_id, request.get("properties") or {}, existing)
        if existing is not None:
            self._check_removed_children_unused(existing, props)
        props["provisioningState"] = "Updating"
        props["resourceGuid"] = existing.properties.get("resourceGuid") if existing else util.new_uuid()
        props.setdefault("scope", existing.properties.get("scope", "Public") if existing else "Public")
        body: dict[str, Any] = {
            "name": call.name,
            "id": lb_id,
            "etag": util.new_etag(),
            "type": LB,
            "location": location,
            "sku": sku,
        }
        if request.get("tags"):
            body["tags"] = request["tags"]
        for extra in ("zones", "extendedLocation"):
            if extra in request:
                body[extra] = request[extra]
        body["properties"] = props
        operation = self.services.begin(call, "lb.put", lb_id, location, NS)
        lb = Resource(id=lb_id, type=LB, body=body, private={"active_operation": operation.id})
        self.store.put(lb)
        self._relink(existing, lb)
        return Reply(200 if existing is not None else 201, self.view(lb), self.services.lro_headers(call, operation))

    def _build_properties(self, lb_id: str, requested: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
        props = copy.deepcopy(requested)
        children: dict[str, list[dict[str, Any]]] = {}
        for collection in CHILDREN:
            built = []
            seen: set[str] = set()
            for index, child in enumerate(props.get(collection) or []):
                name = child.get("name") if isinstance(child, dict) else None
                if not name:
                    raise bad_request(
                        "InvalidRequestFormat", f"Cannot parse the request: {collection}[{index}] needs a name."
                    )
                if name.lower() in seen:
                    raise bad_request(
                        "DuplicateResourceName", f"Load balancer {lb_id} has two {collection} named '{name}'."
                    )
                seen.add(name.lower())
                built.append(
                    {
                        "name": name,
                        "id": f"{lb_id}/{collection}/{name}",
                        "etag": util.new_etag(),
                        "type": f"{LB}/{collection}",
                        "properties": {**copy.deepcopy(child.get("properties") or {}), "provisioningState": "Updating"},
                    }
                )
            children[collection] = built
        by_id = {
            collection: {ids.key(c["id"]): c for c in built} for collection, built in children.items()
        }

        def internal(ref_holder: dict[str, Any], field: str, collection: str, referencing: str, required: bool) -> str | None:
            ref = ref_id(ref_holder.get(field))
            if ref is None:
                if required:
                    raise bad_request(
                        "InvalidRequestFormat", f"Cannot parse the request: {referencing} needs '{field}'.", field
                    )
                ref_holder.pop(field, None)
                return None
            child = by_id[collection].get(ids.key(ref))
            if child is None:
                raise invalid_reference(ref, referencing)
            ref_holder[field] = {"id": child["id"]}
            return str(child["id"])

        old_frontends = {
            f["name"].lower(): f for f in (existing.properties.get("frontendIPConfigurations", []) if existing else [])
        }
        taken: dict[str, set[str]] = {}
        for frontend in children["frontendIPConfigurations"]:
            p = frontend["properties"]
            pip_id = ref_id(p.get("publicIPAddress"))
            subnet_id = ref_id(p.get("subnet"))
            if pip_id is None and subnet_id is None:
                raise bad_request(
                    "InvalidRequestFormat",
                    f"Frontend IP configuration {frontend['id']} needs a publicIPAddress or a subnet.",
                )
            if pip_id is not None:
                pip = self.store.get(pip_id)
                if pip is None or pip.properties.get("provisioningState") == "Deleting":
                    raise invalid_reference(pip_id, lb_id)
                holder = ref_id(pip.properties.get("ipConfiguration"))
                if holder is not None and holder.lower() != frontend["id"].lower():
                    raise bad_request(
                        "PublicIPAddressInUse", f"Public IP address {pip.id} is already allocated to resource {holder}."
                    )
                p["publicIPAddress"] = {"id": pip.id}
            if subnet_id is not None:
                old = old_frontends.get(frontend["name"].lower())
                old_subnet = ref_id(util.get_path(old, "properties", "subnet"))
                old_address = util.get_path(old, "properties", "privateIPAddress")
                if p.get("privateIPAllocationMethod") == "Static" and p.get("privateIPAddress"):
                    canonical = self.network.require_subnet(subnet_id, lb_id)
                    address = str(p["privateIPAddress"])
                elif old_address and old_subnet and old_subnet.lower() == subnet_id.lower():
                    canonical, address = self.network.require_subnet(subnet_id, lb_id), old_address
                else:
                    canonical, address = self.network.allocate_private_ip(
                        subnet_id, lb_id, taken.setdefault(subnet_id.lower(), set())
                    )
                taken.setdefault(subnet_id.lower(), set()).add(address)
                p["subnet"] = {"id": canonical}
                p["privateIPAddress"] = address
            p.setdefault("privateIPAllocationMethod", "Dynamic")
            p.setdefault("privateIPAddressVersion", "IPv4")
        for probe in children["probes"]:
            p = probe["properties"]
            if p.get("protocol") not in ("Tcp", "Http", "Https") or not isinstance(p.get("port"), int):
                raise bad_request(
                    "InvalidRequestFormat",
                    f"Probe {probe['id']} needs a protocol (Tcp, Http or Https) and a port.",
                )
            p.setdefault("intervalInSeconds", 15)
            p.setdefault("numberOfProbes", 2)
            p.setdefault("probeThreshold", 1)
        for rule in children["loadBalancingRules"]:
            p = rule["properties"]
            internal(p, "frontendIPConfiguration", "frontendIPConfigurations", rule["id"], True)
            internal(p, "backendAddressPool", "backendAddressPools", rule["id"], False)
            internal(p, "probe", "probes", rule["id"], False)
            if p.get("protocol") not in ("Tcp", "Udp", "All") or not isinstance(p.get("frontendPort"), int):
                raise bad_request(
                    "InvalidRequestFormat", f"Load balancing rule {rule['id']} needs a protocol and a frontendPort."
                )
            p.setdefault("backendPort", p["frontendPort"])
            p.setdefault("enableFloatingIP", False)
            p.setdefault("idleTimeoutInMinutes", 4)
            p.setdefault("enableTcpReset", False)
            p.setdefault("loadDistribution", "Default")
            p.setdefault("disableOutboundSnat", False)
            p.setdefault("enableConnectionTracking", False)
            if not isinstance(p["enableConnectionTracking"], bool):
                raise bad_request(
                    "InvalidRequestFormat",
                    f"Load balancing rule {rule['id']}: enableConnectionTracking must be true or false.",
                    "enableConnectionTracking",
                )
        for nat in children["inboundNatRules"] + children["inboundNatPools"]:
            p = nat["properties"]
            internal(p, "frontendIPConfiguration", "frontendIPConfigurations", nat["id"], True)
            p.setdefault("enableFloatingIP", False)
            p.setdefault("idleTimeoutInMinutes", 4)
            p.setdefault("enableTcpReset", False)
        for rule in children["outboundRules"]:
            p = rule["properties"]
            internal(p, "backendAddressPool", "backendAddressPools", rule["id"], True)
            refs = p.get("frontendIPConfigurations") or []
            if not refs:
                raise bad_request(
                    "InvalidRequestFormat", f"Outbound rule {rule['id']} needs frontendIPConfigurations.", "frontendIPConfigurations"
                )
            canonical_refs = []
            for ref in refs:
                holder = {"frontendIPConfiguration": ref}
                canonical_refs.append({"id": internal(holder, "frontendIPConfiguration", "frontendIPConfigurations", rule["id"], True)})
            p["frontendIPConfigurations"] = canonical_refs
            p.setdefault("allocatedOutboundPorts", 1024)
            p.setdefault("enableTcpReset", False)
            p.setdefault("idleTimeoutInMinutes", 4)
        # back references derived from the rules, as ARM shows them
        for collection, back_fields in (
            ("loadBalancingRules", (("frontendIPConfiguration", "loadBalancingRules"), ("backendAddressPool", "loadBalancingRules"), ("probe", "loadBalancingRules"))),
            ("inboundNatRules", (("frontendIPConfiguration", "inboundNatRules"),)),
            ("inboundNatPools", (("frontendIPConfiguration", "inboundNatPools"),)),
            ("outboundRules", (("backendAddressPool", "outboundRules"),)),
        ):
            for rule in children[collection]:
                for field, back in back_fields:
                    target = ref_id(rule["properties"].get(field))
                    if target is not None:
                        _add_back_ref(by_id, target, back, rule["id"])
        for rule in children["outboundRules"]:
            for ref in rule["properties"]["frontendIPConfigurations"]:
                _add_back_ref(by_id, ref["id"], "outboundRules", rule["id"])
        props.update(children)
        return props

    def _check_removed_children_unused(self, existing: Resource, props: dict[str, Any]) -> None:
        kept = {ids.key(c["id"]) for collection in CHILDREN for c in props.get(collection, [])}
        for use in self.uses(existing.id):
            if ids.key(use.child_id) not in kept:
                raise bad_request(
                    "InUseLoadBalancerChildCannotBeRemoved" if use.owner_type == NIC else
                    "LoadBalancerChildInUseByVirtualMachineScaleSet",
                    f"Cannot remove {use.child_id} from load balancer {existing.id} since it is in use by "
                    f"{'network interface' if use.owner_type == NIC else 'virtual machine scale set'} {use.owner_id}.",
                )

    # delete ---------------------------------------------------------------------------------------------------

    def delete_lb(self, call: Call) -> Reply:
        assert call.resource_group is not None
        lb = self.store.get(call.resource_id)
        if lb is None:
            return Reply(204)
        self.check_deletable(lb)
        return self.services.begin_delete(call, "lb.delete", lb.id, lb.body["location"], NS)

    def check_deletable(self, lb: Resource) -> None:
        uses = self.uses(lb.id)
        by_scale_set = [u for u in uses if u.owner_type != NIC]
        if by_scale_set:
            owner = by_scale_set[0].owner_id
            names = sorted({ids.parse(u.child_id).name for u in by_scale_set if u.owner_id == owner})  # type: ignore[union-attr]
            raise bad_request(
                "LoadBalancerInUseByVirtualMachineScaleSet",
                f"Cannot delete load balancer {lb.id} since its child resources {', '.join(names)} are in use by "
                f"virtual machine scale set {owner}.",
            )
        if uses:
            raise bad_request(
                "InUseLoadBalancerCannotBeDeleted",
                f"Cannot delete load balancer {lb.id} since its child resource {uses[0].child_id} is in use by "
                f"{uses[0].ip_configuration or uses[0].owner_id}.",
            )

    # completions and links ------------------------------------------------------------------------------------

    def _complete_put(self, operation: Operation, error: dict[str, Any] | None) -> None:
        lb = self.store.edit(operation.resource_id)
        if lb is None or lb.private.get("active_operation") != operation.id:
            return
        state = "Failed" if error else "Succeeded"
        lb.properties["provisioningState"] = state
        for collection in CHILDREN:
            for child in lb.properties.get(collection, []):
                child["properties"]["provisioningState"] = state
        lb.private.pop("active_operation", None)
        self.store.put(lb)

    def _complete_delete(self, operation: Operation, error: dict[str, Any] | None) -> None:
        if error is not None:
            self._complete_put(operation, error)
            return
        lb = self.store.get(operation.resource_id)
        if lb is not None and lb.private.get("active_operation") == operation.id:
            self.services.remove(lb.id)

    def _release_lb(self, lb: Resource) -> None:
        self._relink(lb, None)

    def _relink(self, old: Resource | None, new: Resource | None) -> None:
        old_links, new_links = _links(old), _links(new)
        for target, kind, ref in sorted(old_links - new_links):
            self.network.link_reference(target, kind, ref, add=False)
        for target, kind, ref in sorted(new_links - old_links):
            self.network.link_reference(target, kind, ref, add=True)

    # hooks into the network provider --------------------------------------------------------------------------

    def _nic_pool_users(self, lb_id: str) -> list[PoolUse]:
        prefix = ids.key(lb_id) + "/"
        found = []
        for nic in self.store.list(NIC):
            for config in nic.properties.get("ipConfigurations", []):
                for field in ("loadBalancerBackendAddressPools", "loadBalancerInboundNatRules"):
                    for ref in config.get("properties", {}).get(field) or []:
                        used = ref_id(ref)
                        if used and ids.key(used).startswith(prefix):
                            found.append(PoolUse(used, nic.id, NIC, config["id"]))
        return found

    def _check_nic_ip_configuration(self, config_props: dict[str, Any], nic_id: str) -> None:
        for field, collection in (
            ("loadBalancerBackendAddressPools", "backendAddressPools"),
            ("loadBalancerInboundNatRules", "inboundNatRules"),
        ):
            refs = config_props.get(field)
            if not refs:
                continue
            config_props[field] = [{"id": self.require_child(ref_id(r), collection, nic_id)} for r in refs]

    def _frontend_private_ips(self, subnet_id: str) -> set[str]:
        used: set[str] = set()
        for lb in self.store.list(LB):
            for frontend in lb.properties.get("frontendIPConfigurations", []):
                p = frontend.get("properties", {})
                subnet = ref_id(p.get("subnet"))
                if subnet and subnet.lower() == subnet_id.lower() and p.get("privateIPAddress"):
                    used.add(p["privateIPAddress"])
        return used


def _canonical_collection(segment: str) -> str:
    for collection in CHILDREN:
        if collection.lower() == segment.lower():
            return collection
    return segment


def _add_back_ref(by_id: dict[str, dict[str, dict[str, Any]]], target: str, field: str, ref: str) -> None:
    for children in by_id.values():
        child = children.get(ids.key(target))
        if child is not None:
            refs = child["properties"].setdefault(field, [])
            if all(r["id"].lower() != ref.lower() for r in refs):
                refs.append({"id": ref})
            return


def _links(lb: Resource | None) -> set[tuple[str, str, str]]:
    return ip_configuration_links(lb.properties.get("frontendIPConfigurations", [])) if lb is not None else set()

