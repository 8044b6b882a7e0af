"""What every provider shares: the store, the operation engine, paging, LRO replies and removal hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from . import ids
from .errors import ArmError, resource_group_not_found
from .lro import Operation, OperationEngine
from .routing import Call, Reply
from .store import Resource, Store

RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups"

#: Called just before a resource is removed from the store, to release what it holds (IPs, back-references).
ReleaseHook = Callable[[Resource], None]


class Services:
    def __init__(self, store: Store, engine: OperationEngine, page_size: int) -> None:
        self.store = store
        self.engine = engine
        self.page_size = page_size
        self._release_hooks: dict[str, ReleaseHook] = {}

    # resource groups ----------------------------------------------------------------------------------------

    def resource_group(self, subscription: str, name: str) -> Resource | None:
        return self.store.get(ids.resource_group_id(subscription, name))

    def require_resource_group(self, subscription: str, name: str, *, for_write: bool = True) -> Resource:
        group = self.resource_group(subscription, name)
        if group is None:
            raise resource_group_not_found(name)
        if for_write and group.properties.get("provisioningState") == "Deleting":
            raise ArmError(
                409,
                "ResourceGroupBeingDeleted",
                f"The resource group '{group.body['name']}' is in deprovisioning state and cannot perform this "
                "operation.",
            )
        return group

    def canonical_id(self, call: Call) -> str:
        """The addressed resource id, using the resource group's stored casing."""
        assert call.resource_group is not None
        group = self.resource_group(call.subscription, call.resource_group)
        rg_name = group.body["name"] if group is not None else call.resource_group
        return ids.resource_id(call.subscription, rg_name, call.namespace, call.types, call.names)

    # removal ------------------------------------------------------------------------------------------------

    def on_release(self, type_name: str, hook: ReleaseHook) -> None:
        self._release_hooks[type_name.lower()] = hook

    def remove(self, resource_id: str) -> None:
        """Remove a resource and release what it holds; cancels its in-flight operation."""
        resource = self.store.get(resource_id)
        if resource is None:
            return
        hook = self._release_hooks.get(resource.type.lower())
        if hook is not None:
            hook(resource)
        active = resource.private.get("active_operation")
        if active:
            self.engine.cancel(active, "OperationPreempted", "The operation was preempted by a delete.")
        self.store.delete(resource_id)

    # replies ------------------------------------------------------------------------------------------------

    def operation_url(self, call: Call, operation: Operation, *, monitor: bool = False) -> str:
        query = {"monitor": "true", "api-version": call.api_version} if monitor else {"api-version": call.api_version}
        return (
            f"{call.base_url}/subscriptions/{operation.subscription}/providers/{operation.namespace}"
            f"/locations/{operation.location}/operations/{operation.id}?{urlencode(query)}"
        )

    def lro_headers(self, call: Call, operation: Operation, *, location: bool = False) -> dict[str, str]:
        headers = {
            "Azure-AsyncOperation": self.operation_url(call, operation),
            "Retry-After": str(self.engine.retry_after(operation)),
        }
        if location:
            headers["Location"] = self.operation_url(call, operation, monitor=True)
        return headers

    def page(self, call: Call, values: list[dict[str, Any]]) -> Reply:
        """A list response with ``nextLink`` paging (``$skiptoken`` offset; ``api-version`` kept)."""
        token = call.param("$skiptoken")
        start = int(token) if token and token.isdigit() else 0
        size = self.page_size
        chunk = values[start : start + size]
        body: dict[str, Any] = {"value": chunk}
        if start + size < len(values):
            query = {k: v for k, v in call.query.items() if k.lower() != "$skiptoken"}
            query["api-version"] = call.api_version
            query["$skiptoken"] = str(start + size)
            body["nextLink"] = f"{call.base_url}{call.path}?{urlencode(query)}"
        return Reply(200, body)
