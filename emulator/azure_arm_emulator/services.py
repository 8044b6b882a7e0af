"""What every provider shares: the store, the operation engine, paging, LRO replies and removal hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from . import ids, util
from .errors import ArmError, resource_group_not_found, resource_not_found
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

    def require(self, call: Call, type_name: str | None = None, name: str | None = None) -> Resource:
        """The addressed resource (read), else 404 ``ResourceGroupNotFound`` / ``ResourceNotFound``."""
        assert call.resource_group is not None
        self.require_resource_group(call.subscription, call.resource_group, for_write=False)
        resource = self.store.get(call.resource_id)
        if resource is None:
            raise resource_not_found(type_name or call.type_name, name or call.name, call.resource_group)
        return resource

    def list_in_group(self, call: Call, type_name: str | None = None) -> Reply:
        """A page of the resources of the call's type (or ``type_name``) in the call's resource group."""
        assert call.resource_group is not None
        group = self.require_resource_group(call.subscription, call.resource_group, for_write=False)
        return self.page(call, [r.body for r in self.store.list(type_name or call.type_name, group.id)])

    def list_in_subscription(self, call: Call, type_name: str | None = None) -> Reply:
        resources = self.store.list(type_name or call.type_name, ids.subscription_id(call.subscription))
        return self.page(call, [r.body for r in resources])

    # writes -------------------------------------------------------------------------------------------------

    @staticmethod
    def write_location(
        request: dict[str, Any], existing: Resource | None, moved: Callable[[str], ArmError] | None = None
    ) -> str:
        """The normalized location of a PUT: required on create; a change gives ``moved(location)`` (by default
        409 ``PropertyChangeNotAllowed``)."""
        location = request.get("location") or (existing.body["location"] if existing else None)
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        location = util.normalize_location(location)
        if existing is not None and existing.body["location"] != location:
            if moved is not None:
                raise moved(location)
            raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'location' is not allowed.",
                           target="location")
        return location

    def begin(
        self,
        call: Call,
        kind: str,
        resource_id: str,
        location: str,
        namespace: str,
        *,
        name: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> Operation:
        """Start the operation of a call; ``name`` defaults to ``delete`` for ``*.delete`` kinds, else ``write``."""
        return self.engine.begin(
            kind,
            name=name or ("delete" if kind.endswith("delete") else "write"),
            resource_id=resource_id,
            subscription=call.subscription,
            namespace=namespace,
            location=location,
            injected_error=call.lro_failure,
            params=params,
        )

    def begin_delete(self, call: Call, kind: str, resource_id: str, location: str, namespace: str) -> Reply:
        """Mark a resource ``Deleting`` under a new delete operation: 202 with ``Location``."""
        operation = self.begin(call, kind, resource_id, location, namespace)
        edited = self.store.edit(resource_id)
        assert edited is not None
        edited.properties["provisioningState"] = "Deleting"
        edited.private["active_operation"] = operation.id
        self.store.put(edited)
        return Reply(202, None, self.lro_headers(call, operation, location=True))

    def complete_write(self, operation: Operation, error: dict[str, Any] | None) -> None:
        """Completion of a plain write: ``provisioningState`` Succeeded (Failed on error), unless preempted."""
        resource = self.store.edit(operation.resource_id)
        if resource is None or resource.private.get("active_operation") != operation.id:
            return
        resource.properties["provisioningState"] = "Failed" if error else "Succeeded"
        resource.private.pop("active_operation", None)
        self.store.put(resource)

    def complete_delete(self, operation: Operation, error: dict[str, Any] | None) -> None:
        """Completion of a plain delete: the resource goes (on error it stays, Failed), unless preempted."""
        resource = self.store.get(operation.resource_id)
        if resource is None or resource.private.get("active_operation") != operation.id:
            return
        if error:
            self.complete_write(operation, error)
            return
        self.remove(resource.id)

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
