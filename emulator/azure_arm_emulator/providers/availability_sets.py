"""Microsoft.Compute/availabilitySets: fault and update domains for VMs.

Writes are synchronous (PUT/PATCH answer 200, DELETE 200/204), as in ARM. A VM joins a set at creation
(``properties.availabilitySet.id``) and never changes set. The set lists its members in
``properties.virtualMachines``; each member gets a fault domain and an update domain, assigned round-robin (the
lowest free slot index ``i`` gives fault domain ``i % platformFaultDomainCount`` and update domain
``i % platformUpdateDomainCount``), shown in the VM's instance view as ``platformFaultDomain`` /
``platformUpdateDomain``.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import catalog, ids, util
from ..errors import ArmError, invalid_parameter
from ..routing import RESOURCE_GROUP, SUBSCRIPTION, Call, Reply, Router
from ..services import Services
from ..store import Resource

NS = "Microsoft.Compute"
AVSET = "Microsoft.Compute/availabilitySets"

MAX_FAULT_DOMAINS = 3
MAX_UPDATE_DOMAINS = 20
SKUS = ("Aligned", "Classic")


def _count(value: Any, default: int, kind: str, maximum: int, target: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise invalid_parameter(
            f"The specified {kind} domain count {value} must fall in the range 1 to {maximum}.", target
        )
    return value


def not_found(avset_id: str) -> ArmError:
    return ArmError(404, "NotFound", f"The Availability Set '{avset_id}' cannot be found.",
                    target="availabilitySet.id")


def find(services: Services, avset_id: str, location: str) -> Resource:
    """The availability set a VM refers to; 404 ``NotFound`` if it does not exist in that location."""
    avset_id = "/" + str(avset_id).lstrip("/")
    parsed = ids.parse(avset_id)
    avset = services.store.get(avset_id) if parsed is not None and parsed.type_name.lower() == AVSET.lower() else None
    if avset is None or avset.body["location"] != location:
        raise not_found(avset_id)
    return avset


def join(services: Services, avset_id: str, vm_id: str) -> tuple[int, int]:
    """Add a VM to a set; returns its ``(fault domain, update domain)``."""
    avset = services.store.edit(avset_id)
    assert avset is not None
    slots: dict[str, int] = avset.private.setdefault("slots", {})
    index = slots.get(ids.key(vm_id))
    if index is None:
        used = set(slots.values())
        index = next(i for i in range(len(used) + 1) if i not in used)
        slots[ids.key(vm_id)] = index
    members = [m for m in avset.properties.get("virtualMachines", []) if ids.key(m["id"]) != ids.key(vm_id)]
    avset.properties["virtualMachines"] = [*members, {"id": vm_id}]
    services.store.put(avset)
    return index % avset.properties["platformFaultDomainCount"], index % avset.properties["platformUpdateDomainCount"]


def leave(services: Services, avset_id: str, vm_id: str) -> None:
    avset = services.store.edit(avset_id)
    if avset is None:
        return
    avset.private.setdefault("slots", {}).pop(ids.key(vm_id), None)
    avset.properties["virtualMachines"] = [
        m for m in avset.properties.get("virtualMachines", []) if ids.key(m["id"]) != ids.key(vm_id)
    ]
    services.store.put(avset)


def statuses(avset: Resource) -> list[dict[str, Any]]:
    """The set's status list, in ARM's instance view status shape (code, level, displayStatus, time): its
    provisioning state (the set has no other state the emulator models)."""
    return [{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
             "time": avset.private.get("created") or util.iso(util.now())}]


class AvailabilitySetsProvider:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store

    def register(self, router: Router) -> None:
        sets = router.register(RESOURCE_GROUP, NS, ("availabilitySets",))
        sets.on_item("PUT", self.put_set).on_item("PATCH", self.patch_set).on_item("GET", self.get_set)
        sets.on_item("DELETE", self.delete_set).on_collection("GET", self.list_sets)
        sets.on_action("GET", "vmSizes", self.list_sizes)
        router.register(SUBSCRIPTION, NS, ("availabilitySets",)).on_collection("GET", self.list_all_sets)

    def _require(self, call: Call) -> Resource:
        return self.services.require(call, AVSET)

    def get_set(self, call: Call) -> Reply:
        """A set's GET answers with ``properties.statuses`` (InstanceViewStatus objects, as the Get example shows
        them); a listing does not carry them."""
        avset = self._require(call)
        body = copy.deepcopy(avset.body)
        body["properties"]["statuses"] = statuses(avset)
        return Reply(200, body)

    def list_sets(self, call: Call) -> Reply:
        return self.services.list_in_group(call, AVSET)

    def list_all_sets(self, call: Call) -> Reply:
        return self.services.list_in_subscription(call, AVSET)

    def list_sizes(self, call: Call) -> Reply:
        self._require(call)
        return Reply(200, catalog.sizes_json())

    def put_set(self, call: Call) -> Reply:
        assert call.resource_group is not None
        self.services.require_resource_group(call.subscription, call.resource_group)
        request = call.body if isinstance(call.body, dict) else {}
        resource_id = self.services.canonical_id(call)
        existing = self.store.get(resource_id)
        location = self.services.write_location(request, existing)
        return self._write(resource_id, call.name, location, existing, request, replace=True)

    def patch_set(self, call: Call) -> Reply:
        existing = self._require(call)
        request = call.body if isinstance(call.body, dict) else {}
        return self._write(existing.id, existing.body["name"], existing.body["location"], existing, request,
                           replace=False)

    def _write(
        self, resource_id: str, name: str, location: str, existing: Resource | None, request: dict[str, Any],
        *, replace: bool,
    ) -> Reply:
        props = copy.deepcopy(request.get("properties") or {})
        old_props = existing.properties if existing is not None else {}
        faults = _count(props.get("platformFaultDomainCount"), old_props.get("platformFaultDomainCount", 2),
                        "fault", MAX_FAULT_DOMAINS, "platformFaultDomainCount")
        updates = _count(props.get("platformUpdateDomainCount"), old_props.get("platformUpdateDomainCount", 5),
                         "update", MAX_UPDATE_DOMAINS, "platformUpdateDomainCount")
        old_sku = util.get_path(existing.body, "sku", "name") if existing is not None else None
        sku_name = util.get_path(request, "sku", "name") or old_sku or "Classic"
        sku_name = next((s for s in SKUS if s.lower() == str(sku_name).lower()), None)
        if sku_name is None:
            raise invalid_parameter(
                f"The value '{util.get_path(request, 'sku', 'name')}' of parameter 'sku.name' is not valid. "
                "Allowed values are Aligned, Classic.", "sku.name"
            )
        if old_sku == "Aligned" and sku_name == "Classic":
            raise ArmError(409, "OperationNotAllowed",
                           "Changing availability set SKU from 'Aligned' to 'Classic' is not allowed.")
        members = list(old_props.get("virtualMachines", []))
        if members:
            for label, old, new in (
                ("platformFaultDomainCount", old_props.get("platformFaultDomainCount"), faults),
                ("platformUpdateDomainCount", old_props.get("platformUpdateDomainCount"), updates),
            ):
                if old != new:
                    raise ArmError(409, "PropertyChangeNotAllowed", f"Changing property '{label}' is not allowed "
                                   "while the availability set contains virtual machines.", target=label)
        props.pop("virtualMachines", None)
        props.pop("statuses", None)
        props.update(platformFaultDomainCount=faults, platformUpdateDomainCount=updates, virtualMachines=members)
        if existing is not None and not replace:
            props = {**copy.deepcopy(old_props), **props}
        body: dict[str, Any] = {"name": name, "id": resource_id, "type": AVSET, "location": location}
        tags = request.get("tags") if ("tags" in request or replace) else (existing.body.get("tags") if existing else None)
        if tags:
            body["tags"] = tags
        body["sku"] = {"name": sku_name}
        body["properties"] = props
        private = copy.deepcopy(existing.private) if existing is not None else {"slots": {},
                                                                               "created": util.iso(util.now())}
        self.store.put(Resource(id=resource_id, type=AVSET, body=body, private=private))
        return Reply(200, body)

    def delete_set(self, call: Call) -> Reply:
        avset = self.store.get(call.resource_id)
        if avset is None:
            return Reply(204)
        if avset.properties.get("virtualMachines"):
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Availability Set {avset.body['name']} cannot be deleted. Before deleting an Availability Set please "
                "ensure that it does not contain any VM.",
            )
        self.services.remove(avset.id)
        return Reply(200)
