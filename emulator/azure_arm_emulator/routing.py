"""ARM URL parsing and dispatch.

A path is ``[/subscriptions/{sub}[/resourceGroups/{rg}]][/providers/{namespace}]/{type}/{name}/{type}/{name}...``
optionally followed by an action segment (``.../virtualMachines/vm1/start``). Providers register handlers per
``(scope, namespace, type chain)``; matching is case-insensitive as in ARM, and the canonical casing of the
registration is used in ids, ``type`` fields and log operation names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import ids
from .errors import ArmError

ROOT = "root"  # /subscriptions, /subscriptions/{sub}, .../resourceGroups/{rg}
SUBSCRIPTION = "subscription"  # /subscriptions/{sub}/providers/{ns}/...
RESOURCE_GROUP = "resourceGroup"  # /subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/...
ANY_NAMESPACE = "*"


@dataclass
class Call:
    """One ARM request as a handler sees it (handlers are synchronous: they validate, then mutate)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    base_url: str
    api_version: str
    scope: str
    subscription: str
    resource_group: str | None
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]
    action: str | None
    body: Any = None
    lro_failure: dict[str, Any] | None = None
    log_resource_id: str | None = None
    handler: Callable[[Call], Reply] | None = None

    def param(self, name: str) -> str | None:
        lowered = name.lower()
        for k, value in self.query.items():
            if k.lower() == lowered:
                return value
        return None

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def type_name(self) -> str:
        return "/".join((self.namespace, *self.types))

    @property
    def resource_id(self) -> str:
        """Id of the addressed resource (item and action routes under a resource group)."""
        assert self.resource_group is not None
        return ids.resource_id(self.subscription, self.resource_group, self.namespace, self.types, self.names)


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Reply]


@dataclass
class TypeRoutes:
    """Handlers of one resource type: on the item, on the collection, and actions on the item."""

    scope: str
    namespace: str
    types: tuple[str, ...]
    item: dict[str, Handler] = field(default_factory=dict)
    collection: dict[str, Handler] = field(default_factory=dict)
    actions: dict[tuple[str, str], tuple[str, Handler]] = field(default_factory=dict)

    def on_item(self, method: str, handler: Handler) -> TypeRoutes:
        self.item[method] = handler
        return self

    def on_collection(self, method: str, handler: Handler) -> TypeRoutes:
        self.collection[method] = handler
        return self

    def on_action(self, method: str, action: str, handler: Handler) -> TypeRoutes:
        self.actions[(method, action.lower())] = (action, handler)
        return self


@dataclass
class Route:
    """A resolved request: the handler plus everything the request log needs."""

    handler: Handler
    scope: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]
    action: str | None
    subscription: str
    resource_group: str | None
    operation: str
    resource_id: str | None


@dataclass(frozen=True)
class _Parsed:
    scope: str
    subscription: str
    resource_group: str | None
    namespace: str
    segments: tuple[str, ...]


def _parse(path: str) -> _Parsed | None:
    segments = [s for s in path.split("/") if s]
    if not segments or segments[0].lower() != "subscriptions":
        return None
    if len(segments) <= 2:
        return _Parsed(ROOT, segments[1] if len(segments) == 2 else "", None, "Microsoft.Resources", tuple(segments))
    sub = segments[1]
    if segments[2].lower() == "providers":
        if len(segments) < 5:
            return None
        return _Parsed(SUBSCRIPTION, sub, None, segments[3], tuple(segments[4:]))
    if segments[2].lower() != "resourcegroups":
        return None
    rg = segments[3] if len(segments) > 3 else None
    if len(segments) > 5 and segments[4].lower() == "providers" and rg is not None:
        if len(segments) < 7:
            return None
        return _Parsed(RESOURCE_GROUP, sub, rg, segments[5], tuple(segments[6:]))
    return _Parsed(ROOT, sub, rg, "Microsoft.Resources", tuple(segments))


def _verb(method: str) -> str:
    return {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}.get(method, "action")


class Router:
    def __init__(self) -> None:
        self._types: dict[tuple[str, str, tuple[str, ...]], TypeRoutes] = {}

    def register(self, scope: str, namespace: str, types: tuple[str, ...]) -> TypeRoutes:
        """The routes of a type (created on first registration, shared afterwards)."""
        slot = (scope, namespace.lower(), tuple(t.lower() for t in types))
        if slot not in self._types:
            self._types[slot] = TypeRoutes(scope=scope, namespace=namespace, types=types)
        return self._types[slot]

    def _lookup(self, scope: str, namespace: str, types: tuple[str, ...]) -> TypeRoutes | None:
        lowered = tuple(t.lower() for t in types)
        return self._types.get((scope, namespace.lower(), lowered)) or self._types.get((scope, ANY_NAMESPACE, lowered))

    def describe(self, method: str, path: str) -> tuple[str | None, str | None]:
        """``(operation, resource_id)`` for the request log, without raising."""
        try:
            route = self.resolve(method, path, api_version="")
        except ArmError:
            return None, None
        return route.operation, route.resource_id

    def resolve(self, method: str, path: str, *, api_version: str) -> Route:
        parsed = _parse(path)
        if parsed is None:
            raise ArmError(404, "NotFound", f"The requested path '{path}' is not a known ARM route.")
        segments = parsed.segments
        types = segments[0::2]
        names = segments[1::2]
        known_namespace = any(k[1] in (parsed.namespace.lower(), ANY_NAMESPACE) for k in self._types)
        if len(types) == len(names):
            routes = self._lookup(parsed.scope, parsed.namespace, types)
            if routes is not None:
                return self._route(routes, routes.item, method, parsed, names, None, api_version)
        else:
            routes = self._lookup(parsed.scope, parsed.namespace, types)
            if routes is not None:
                return self._route(routes, routes.collection, method, parsed, names, None, api_version)
            owner = self._lookup(parsed.scope, parsed.namespace, types[:-1]) if len(types) > 1 else None
            if owner is not None:
                action = owner.actions.get((method, types[-1].lower()))
                if action is not None:
                    canonical, handler = action
                    return self._build(owner, handler, method, parsed, names, canonical)
                if any(a == types[-1].lower() for _, a in owner.actions):
                    raise _method_not_allowed(method, path)
        if not known_namespace:
            raise ArmError(
                404,
                "InvalidResourceNamespace",
                f"The resource namespace '{parsed.namespace}' is invalid.",
            )
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type '{'/'.join(types)}' could not be found in the namespace '{parsed.namespace}' "
            f"for api version '{api_version}'.",
        )

    def _route(
        self,
        routes: TypeRoutes,
        handlers: dict[str, Handler],
        method: str,
        parsed: _Parsed,
        names: tuple[str, ...],
        action: str | None,
        api_version: str,
    ) -> Route:
        handler = handlers.get(method)
        if handler is None and method == "HEAD":
            handler = handlers.get("GET")
        if handler is None:
            raise _method_not_allowed(method, "/".join(parsed.segments))
        return self._build(routes, handler, method, parsed, names, action)

    def _build(
        self,
        routes: TypeRoutes,
        handler: Handler,
        method: str,
        parsed: _Parsed,
        names: tuple[str, ...],
        action: str | None,
    ) -> Route:
        type_path = "/".join((routes.namespace, *routes.types))
        if action is not None:
            operation = f"{type_path}/{action}/{'read' if method == 'GET' else 'action'}"
        else:
            operation = f"{type_path}/{_verb(method)}"
        resource_id: str | None = None
        is_item = len(names) == len(routes.types)
        if parsed.scope == RESOURCE_GROUP and is_item and parsed.resource_group is not None:
            resource_id = ids.resource_id(
                parsed.subscription, parsed.resource_group, routes.namespace, routes.types, names
            )
        elif parsed.scope == ROOT and is_item and parsed.resource_group is not None:
            resource_id = ids.resource_group_id(parsed.subscription, parsed.resource_group)
        elif parsed.scope == ROOT and is_item and parsed.subscription:
            resource_id = ids.subscription_id(parsed.subscription)
        namespace = routes.namespace if routes.namespace != ANY_NAMESPACE else parsed.namespace
        return Route(
            handler=handler,
            scope=parsed.scope,
            namespace=namespace,
            types=routes.types,
            names=names,
            action=action,
            subscription=parsed.subscription,
            resource_group=parsed.resource_group,
            operation=operation if routes.namespace != ANY_NAMESPACE else f"{parsed.namespace}/{operation[2:]}",
            resource_id=resource_id,
        )


def _method_not_allowed(method: str, path: str) -> ArmError:
    return ArmError(405, "MethodNotAllowed", f"The HTTP method '{method}' is not supported at '{path}'.")
