"""Microsoft.Resources: subscriptions, resource groups (with cascading delete) and async operation status."""

from __future__ import annotations

from typing import Any

from .. import ids, util
from ..errors import ArmError, bad_request, resource_group_not_found
from ..lro import FAILED, SUCCEEDED, Operation
from ..routing import ANY_NAMESPACE, ROOT, SUBSCRIPTION, Call, Reply, Router
from ..services import RESOURCE_GROUP_TYPE, Services
from ..store import Resource

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUBSCRIPTIONS_META = "subscriptions"

#: Order in which a resource group's content is removed (dependents first), like ARM's ordered delete.
_DELETE_ORDER = (
    "microsoft.compute/virtualmachines",
    "microsoft.network/networkinterfaces",
    "microsoft.network/publicipaddresses",
    "microsoft.network/virtualnetworks",
    "microsoft.network/networksecuritygroups",
)


class ResourcesProvider:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store

    def register(self, router: Router) -> None:
        router.register(ROOT, "Microsoft.Resources", ("subscriptions",)).on_item("GET", self.get_subscription)
        router.register(ROOT, "Microsoft.Resources", ("subscriptions",)).on_collection("GET", self.list_subscriptions)
        groups = router.register(ROOT, "Microsoft.Resources", ("subscriptions", "resourceGroups"))
        groups.on_item("PUT", self.put_group).on_item("GET", self.get_group).on_item("HEAD", self.head_group)
        groups.on_item("PATCH", self.patch_group).on_item("DELETE", self.delete_group)
        groups.on_collection("GET", self.list_groups)
        router.register(ROOT, "Microsoft.Resources", ("subscriptions", "resourceGroups", "resources")).on_collection(
            "GET", self.list_group_resources
        )
        router.register(SUBSCRIPTION, ANY_NAMESPACE, ("locations", "operations")).on_item("GET", self.get_operation)
        router.register(SUBSCRIPTION, ANY_NAMESPACE, ("locations", "operationResults")).on_item(
            "GET", self.get_operation
        )
        self.services.engine.register("rg.delete", self._complete_delete)

    # subscriptions --------------------------------------------------------------------------------------------

    def register_subscription(self, subscription: str) -> None:
        """Any subscription id is accepted; it is registered on first use."""
        known: list[str] = self.store.get_meta(SUBSCRIPTIONS_META, [])
        if subscription and subscription not in known:
            self.store.put_meta(SUBSCRIPTIONS_META, [*known, subscription])

    def _subscription_body(self, subscription: str) -> dict[str, Any]:
        return {
            "id": ids.subscription_id(subscription),
            "subscriptionId": subscription,
            "tenantId": TENANT_ID,
            "displayName": f"Emulated subscription {subscription}",
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
            "authorizationSource": "RoleBased",
        }

    def get_subscription(self, call: Call) -> Reply:
        return Reply(200, self._subscription_body(call.subscription))

    def list_subscriptions(self, call: Call) -> Reply:
        known: list[str] = self.store.get_meta(SUBSCRIPTIONS_META, [])
        return self.services.page(call, [self._subscription_body(s) for s in known])

    # resource groups ------------------------------------------------------------------------------------------

    def _group_name(self, call: Call) -> str:
        return call.names[1]

    def put_group(self, call: Call) -> Reply:
        name = self._group_name(call)
        body = call.body if isinstance(call.body, dict) else {}
        _validate_group_name(name)
        location = body.get("location")
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        location = util.normalize_location(location)
        existing = self.services.resource_group(call.subscription, name)
        if existing is not None:
            if existing.properties.get("provisioningState") == "Deleting":
                self.services.require_resource_group(call.subscription, name)
            if existing.body["location"] != location:
                raise ArmError(
                    409,
                    "InvalidResourceGroupLocation",
                    f"Invalid resource group location '{location}'. The Resource group already exists in location "
                    f"'{existing.body['location']}'.",
                )
            group = self.store.edit(existing.id)
            assert group is not None
            group.body["tags"] = body.get("tags") or {}
            if "managedBy" in body:
                group.body["managedBy"] = body["managedBy"]
            self.store.put(group)
            return Reply(200, group.body)
        group_id = ids.resource_group_id(call.subscription, name)
        group_body: dict[str, Any] = {
            "id": group_id,
            "name": name,
            "type": RESOURCE_GROUP_TYPE,
            "location": location,
            "properties": {"provisioningState": "Succeeded"},
        }
        if body.get("tags"):
            group_body["tags"] = body["tags"]
        if body.get("managedBy"):
            group_body["managedBy"] = body["managedBy"]
        self.store.put(Resource(id=group_id, type=RESOURCE_GROUP_TYPE, body=group_body))
        return Reply(201, group_body)

    def get_group(self, call: Call) -> Reply:
        group = self.services.require_resource_group(call.subscription, self._group_name(call), for_write=False)
        return Reply(200, group.body)

    def head_group(self, call: Call) -> Reply:
        group = self.services.resource_group(call.subscription, self._group_name(call))
        return Reply(204 if group is not None else 404)

    def patch_group(self, call: Call) -> Reply:
        existing = self.services.require_resource_group(call.subscription, self._group_name(call))
        body = call.body if isinstance(call.body, dict) else {}
        group = self.store.edit(existing.id)
        assert group is not None
        if "tags" in body:
            group.body["tags"] = body["tags"] or {}
        if "managedBy" in body:
            group.body["managedBy"] = body["managedBy"]
        self.store.put(group)
        return Reply(200, group.body)

    def list_groups(self, call: Call) -> Reply:
        groups = self.store.list(RESOURCE_GROUP_TYPE, ids.subscription_id(call.subscription))
        return self.services.page(call, [g.body for g in groups])

    def list_group_resources(self, call: Call) -> Reply:
        group = self.services.require_resource_group(call.subscription, self._group_name(call), for_write=False)
        values = []
        for resource in self.store.under(group.id):
            parsed = ids.parse(resource.id)
            if parsed is None or len(parsed.types) != 1:
                continue
            entry = {k: resource.body[k] for k in ("id", "name", "type", "location", "tags") if k in resource.body}
            values.append(entry)
        return self.services.page(call, values)

    def delete_group(self, call: Call) -> Reply:
        name = self._group_name(call)
        group = self.services.resource_group(call.subscription, name)
        if group is None:
            raise resource_group_not_found(name)
        active = self.services.engine.active(group.private.get("active_operation"))
        if active is not None:
            return Reply(202, None, self.services.lro_headers(call, active, location=True))
        return self.services.begin_delete(call, "rg.delete", group.id, group.body["location"], "Microsoft.Resources")

    def _complete_delete(self, operation: Operation, error: dict[str, Any] | None) -> None:
        group = self.store.edit(operation.resource_id)
        if group is None:
            return
        if error is not None:
            group.properties["provisioningState"] = "Succeeded"
            group.private.pop("active_operation", None)
            self.store.put(group)
            return
        contained = self.store.under(group.id)
        rank = {t: i for i, t in enumerate(_DELETE_ORDER)}
        contained.sort(key=lambda r: rank.get(r.type.lower(), len(rank)))
        for resource in contained:
            self.services.remove(resource.id)
        group.private.pop("active_operation", None)
        self.store.put(group)
        self.store.delete(group.id)

    # async operations -----------------------------------------------------------------------------------------

    def get_operation(self, call: Call) -> Reply:
        operation = self.services.engine.get(call.names[-1])
        if operation is None or operation.subscription.lower() != call.subscription.lower():
            raise ArmError(404, "NotFound", f"The operation '{call.names[-1]}' was not found.")
        call.log_resource_id = operation.resource_id
        monitor = (call.param("monitor") or "").lower() == "true"
        if not monitor:
            headers = {}
            if not operation.done:
                headers["Retry-After"] = str(self.services.engine.retry_after(operation))
            return Reply(200, operation.status_body(), headers)
        if not operation.done:
            return Reply(
                202,
                None,
                {
                    "Location": self.services.operation_url(call, operation, monitor=True),
                    "Retry-After": str(self.services.engine.retry_after(operation)),
                },
            )
        if operation.status == SUCCEEDED:
            return Reply(204)
        error = operation.error or {"code": "OperationFailed", "message": "The operation failed."}
        status = 400 if operation.status == FAILED else 409
        return Reply(status, {"error": error})


def _validate_group_name(name: str) -> None:
    allowed = all(ch.isalnum() or ch in "-_.()" for ch in name)
    if not name or len(name) > 90 or not allowed or name.endswith("."):
        raise bad_request(
            "InvalidResourceGroupName",
            f"Resource group name '{name}' is invalid. It can contain alphanumeric characters, periods, underscores, "
            "hyphens and parenthesis, cannot end in a period, and must be 1-90 characters long.",
        )
