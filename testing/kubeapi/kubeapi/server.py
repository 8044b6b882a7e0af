"""The aiohttp application: authentication, URL routing, content negotiation, watch streaming."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from aiohttp import web

from . import errors, tables
from .discovery import api_group, core_versions, group_list, resource_list, version_info
from .errors import APIError
from .managedfields import manager_from_user_agent, validate_options
from .registry import Registry
from .resources import ResourceType
from .selectors import parse_field_selector, parse_label_selector
from .store import Event, Store, Watcher

__all__ = ["KubeAPIServer"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml")
APPLY_PATCH = "application/apply-patch+yaml"


# YAML as sigs.k8s.io/yaml reads it: timestamps stay strings.
_YAMLLoader: Any = type("_YAMLLoader", (yaml.SafeLoader,), {})
_YAMLLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode(), status=status,
                        content_type="application/json", headers=headers)


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


@dataclass
class Fault:
    """A fault rule (``KubeAPIServer.inject_fault``): matches ``method`` (``*`` for any) and the regex ``path``
    searched in the path with its query string; waits ``delay`` seconds, then answers ``status`` (with a Status
    of ``reason``) or, with no status, lets the request through. ``count``: hits left (None: unlimited)."""

    id: int
    method: str
    path: str
    status: int | None
    reason: str
    message: str
    count: int | None
    delay: float
    hits: int = 0

    def matches(self, method: str, path_qs: str) -> bool:
        return ((self.method == "*" or self.method.upper() == method)
                and re.search(self.path, path_qs) is not None and (self.count is None or self.count > 0))


class KubeAPIServer:
    """A small in-process kube-apiserver for tests and demos (HTTP, one event loop, in-memory).

    ``token``: if given, every request (except health checks) needs ``Authorization: Bearer <token>``.
    ``history_size``: events kept per resource for watch resumption (older resourceVersions get 410 Gone).
    ``bookmark_interval``: seconds between BOOKMARK events on watches that allow them.
    ``crd_init_delay``: seconds a newly created CRD answers 429 "storage is (re)initializing" (real: ~1 s).
    """

    def __init__(self, token: str | None = None, *, history_size: int = 10_000,
                 bookmark_interval: float = 10.0, crd_init_delay: float = 0.0) -> None:
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.store = Store(history_size=history_size)
        self.registry = Registry(self.store, crd_init_delay=crd_init_delay, clock=self._clock)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._watchers: set[Watcher] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._faults: list[Fault] = []
        self._fault_ids = 0
        #: watches answered with 410 Gone (an expired resourceVersion), see expire_history
        self.watches_gone = 0
        self.host = "127.0.0.1"
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def _clock(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the server is not started")
        return f"http://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._loop = asyncio.get_running_loop()
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port)
        await self._site.start()
        self.host = host
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        for watcher in list(self._watchers):
            watcher.put(None)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> KubeAPIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- in-process helpers ------------------------------------------------------------------------

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> str:
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubeapi", "cluster": {"server": self.url}}],
            "users": [{"name": "kubeapi", "user": user}],
            "contexts": [{"name": "kubeapi", "context": {"cluster": "kubeapi", "user": "kubeapi",
                                                         "namespace": "default"}}],
            "current-context": "kubeapi",
            "preferences": {},
        }
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        return os.fspath(path)

    def register_crd(self, crd: dict[str, Any]) -> dict[str, Any]:
        """Same as POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions; raises APIError (e.g. 422).

        Callable from the server's loop or from any other thread (then it runs in the server's loop).
        """
        def register() -> dict[str, Any]:
            return copy.deepcopy(self.registry.create(self.registry.crd_type, None, crd, manager="kubeapi"))
        return self._in_loop(register)

    def _in_loop(self, fn: Callable[[], T]) -> T:
        """Run a registry mutation in the server's loop thread (directly if already there or not started)."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or not loop.is_running() or loop.is_closed():
            return fn()
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                result.set_result(fn())
            except BaseException as e:
                result.set_exception(e)
        loop.call_soon_threadsafe(run)
        return result.result()

    def get_object(self, group: str, version: str, plural: str, namespace: str | None,
                   name: str) -> dict[str, Any] | None:
        rt = self.registry.lookup(group, version, plural)
        if rt is None:
            return None
        obj = self.store.get(rt, (namespace or "" if rt.namespaced else "", name))
        return copy.deepcopy(self.registry._out(rt, obj)) if obj is not None else None

    # -- fault injection (tests only; any thread) ---------------------------------------------------

    def inject_fault(self, method: str = "*", path: str = ".*", status: int | None = None, *,
                     reason: str | None = None, message: str | None = None, count: int | None = None,
                     delay: float = 0.0) -> int:
        """Add a fault rule; returns its id. The first rule that matches a request applies (see ``Fault``).
        E.g. ``inject_fault("PATCH", r"/virtualmachines/vm1/status$", 409, count=3)``: three status patches
        of vm1 answer 409 Conflict."""
        reason = reason or {409: "Conflict", 410: "Expired", 429: "TooManyRequests", 500: "InternalError",
                            503: "ServiceUnavailable"}.get(status or 0, "InternalError")

        def add() -> int:
            self._fault_ids += 1
            self._faults.append(Fault(self._fault_ids, method, path, status, reason,
                                      message or f"injected fault: {reason}", count, delay))
            return self._fault_ids
        return self._in_loop(add)

    def faults(self) -> list[dict[str, Any]]:
        """The rules, with their ``hits``."""
        return self._in_loop(lambda: [dict(vars(f)) for f in self._faults])

    def clear_faults(self) -> None:
        self._in_loop(self._faults.clear)

    def drop_watches(self, plural: str | None = None) -> int:
        """End every open watch stream (of one resource plural, or all), as an API server restart or a load
        balancer's idle timeout does; clients reconnect from their last resourceVersion. Returns how many."""
        def drop() -> int:
            dropped = [w for w in self._watchers if plural is None or w.plural == plural]
            for watcher in dropped:
                watcher.put(None)
            return len(dropped)
        return self._in_loop(drop)

    def expire_history(self, plural: str | None = None) -> None:
        """Compact the watch history (of one plural, or all): any watch resumed from a resourceVersion before now
        gets 410 Gone (``Expired``) and must list again, as after etcd compaction."""
        def expire() -> None:
            with self.store.lock:
                for (_, name), coll in self.store.collections.items():
                    if plural is None or name == plural:
                        coll.history.clear()
                        coll.compacted_rv = self.store.rv
        self._in_loop(expire)

    async def _fault(self, request: web.Request) -> None:
        rule = next((f for f in self._faults if f.matches(request.method, request.path_qs)), None)
        if rule is None:
            return
        rule.hits += 1
        if rule.count is not None:
            rule.count -= 1
        if rule.delay:
            await asyncio.sleep(rule.delay)
        if rule.status is not None:
            raise APIError(rule.status, rule.reason, rule.message)

    # -- HTTP --------------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            if self.token is not None and request.path not in _UNAUTHENTICATED_PATHS:
                if request.headers.get("Authorization", "") != f"Bearer {self.token}":
                    raise errors.unauthorized()
            if self._faults and request.path not in _UNAUTHENTICATED_PATHS:
                await self._fault(request)
            response: web.StreamResponse = await handler(request)
            return response
        except APIError as e:
            return _json(e.as_status(), status=e.code, headers=e.headers)
        except web.HTTPException:
            raise
        except Exception as e:  # never leak a traceback page: answer a Status like kube-apiserver.
            logger.exception("kubeapi: internal error on %s %s", request.method, request.path_qs)
            status = APIError(500, "InternalError", f"Internal error occurred: {e!r}").as_status()
            return _json(status, status=500)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path in _UNAUTHENTICATED_PATHS:
            return web.Response(text="ok")
        if path == "/version":
            return _json(version_info())
        segs = path.strip("/").split("/")
        if segs[0] == "api":
            if len(segs) == 1:
                return _json(core_versions(f"{self.host}:{self.port}"))
            group, version, rest = "", segs[1], segs[2:]
        elif segs[0] == "apis":
            if len(segs) == 1:
                return _json(group_list(self.registry.resources.values()))
            if len(segs) == 2:
                doc = api_group(segs[1], self.registry.resources.values())
                if doc is None:
                    raise errors.path_not_found()
                return _json(doc)
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise errors.path_not_found()
        if not rest:
            doc = resource_list(group, version, self.registry.resources.values())
            if doc is None:
                raise errors.path_not_found()
            return _json(doc)

        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise errors.path_not_found()
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        rt = self.registry.lookup(group, version, plural)
        if rt is None or (namespace is not None and not rt.namespaced):
            raise errors.path_not_found()
        if rt.namespaced and name is not None and namespace is None:
            raise errors.path_not_found()
        if subresource is not None and not ((subresource == "status" and rt.status_subresource)
                                            or (subresource == "scale" and rt.scale is not None)):
            raise errors.path_not_found()
        self.registry.check_ready(rt)
        method = request.method
        # The field manager of a write: the fieldManager parameter, else the User-Agent's program name.
        field_manager = request.query.get("fieldManager") or None
        manager = field_manager or manager_from_user_agent(request.headers.get("User-Agent"))
        if name is None:
            if method == "GET":
                if _truthy(request.query.get("watch")):
                    return await self._watch(request, rt, namespace)
                return self._list(request, rt, namespace)
            if method == "POST":
                validate_options("CreateOptions", field_manager, apply=None, force=None)
                created = self.registry.create(rt, namespace, await self._body(request), manager=manager)
                return _json(created, status=201)
            raise errors.method_not_allowed(method)
        if method == "GET":
            if subresource == "scale":
                return _json(self.registry.get_scale(rt, namespace, name))
            obj = self.registry.get(rt, namespace, name)
            if tables.wants_table(request.headers.get("Accept", "")):
                return _json(tables.table(rt, [obj], obj["metadata"]["resourceVersion"], None))
            return _json(obj)
        if method == "PUT":
            validate_options("UpdateOptions", field_manager, apply=None, force=None)
            body = await self._body(request)
            if subresource == "scale":
                return _json(self.registry.update_scale(rt, namespace, name, body=body, manager=manager))
            return _json(self.registry.replace(rt, namespace, name, body, subresource, manager=manager))
        if method == "PATCH":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type not in _PATCH_TYPES or (
                    content_type == "application/strategic-merge-patch+json" and rt.custom
                    and subresource != "scale") or (content_type == APPLY_PATCH and subresource == "scale"):
                raise errors.unsupported_media_type(content_type, scale=subresource == "scale")
            validate_options("PatchOptions", field_manager, apply=content_type == APPLY_PATCH,
                             force=request.query.get("force"))
            if content_type == APPLY_PATCH:
                applied, was_created = self.registry.apply(rt, namespace, name, self._yaml(await request.read()),
                                                           subresource, manager=manager,
                                                           force=_truthy(request.query.get("force")))
                return _json(applied, status=201 if was_created else 200)
            body = await self._body(request)
            if subresource == "scale":
                return _json(self.registry.update_scale(rt, namespace, name, patch=(content_type, body),
                                                        manager=manager))
            return _json(self.registry.patch(rt, namespace, name, content_type, body, subresource, manager=manager))
        if method == "DELETE":
            if subresource is not None:
                raise errors.method_not_allowed(method)
            options = await self._body(request, optional=True)
            obj, removed = self.registry.delete(rt, namespace, name, options)
            if removed and not rt.custom:
                return _json(errors.status_success(name=name, group=rt.group, kind=rt.plural,
                                                   uid=obj["metadata"].get("uid")))
            return _json(obj)
        raise errors.method_not_allowed(method)

    async def _body(self, request: web.Request, optional: bool = False) -> Any:
        raw = await request.read()
        if not raw.strip():
            if optional:
                return None
            raise errors.bad_request("the request body is empty")
        try:
            return json.loads(raw)
        except ValueError:
            try:
                return yaml.load(raw, Loader=_YAMLLoader)  # noqa: S506 - a SafeLoader subclass
            except yaml.YAMLError as e:
                raise errors.bad_request(f"couldn't decode the request body: {e}") from None

    @staticmethod
    def _yaml(raw: bytes) -> Any:
        """An apply configuration: YAML (or JSON, which is YAML)."""
        try:
            return yaml.load(raw, Loader=_YAMLLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as e:
            raise errors.bad_request(f"error decoding YAML: {e}") from None

    def _selectors(self, request: web.Request, rt: ResourceType) -> tuple[Any, Any]:
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(request.query.get("fieldSelector"), rt.field_selectors)
        return labels, fields

    def _list(self, request: web.Request, rt: ResourceType, namespace: str | None) -> web.Response:
        labels, fields = self._selectors(request, rt)
        limit_text = request.query.get("limit")
        try:
            limit = int(limit_text) if limit_text else None
        except ValueError:
            raise errors.bad_request(f"invalid limit: {limit_text!r}") from None
        result = self.registry.list_objects(rt, namespace, labels, fields, limit, request.query.get("continue"))
        if tables.wants_table(request.headers.get("Accept", "")):
            return _json(tables.table(rt, result["items"], result["metadata"]["resourceVersion"],
                                      result["metadata"].get("continue")))
        return _json(result)

    async def _watch(self, request: web.Request, rt: ResourceType, namespace: str | None) -> web.StreamResponse:
        assert self._loop is not None
        labels, fields = self._selectors(request, rt)
        since = request.query.get("resourceVersion")
        bookmarks = _truthy(request.query.get("allowWatchBookmarks"))
        send_initial = _truthy(request.query.get("sendInitialEvents"))
        timeout_text = request.query.get("timeoutSeconds")
        try:
            timeout = float(timeout_text) if timeout_text else None
        except ValueError:
            raise errors.bad_request(f"invalid timeoutSeconds: {timeout_text!r}") from None
        deadline = self._loop.time() + timeout if timeout is not None else None

        watcher = Watcher(namespace=namespace, labels=labels, fields=fields, loop=self._loop, plural=rt.plural)
        initial = self.registry.watch(rt, watcher, since, send_initial)  # subscribed + snapshot, atomically.

        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        self._watchers.add(watcher)
        try:
            await response.prepare(request)
            if initial is None:
                coll = self.store.collection(rt)
                self.watches_gone += 1
                status = errors.gone(f"too old resource version: {since} ({coll.compacted_rv + 1})").as_status()
                await response.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
                return response
            if initial:
                await response.write(b"".join(etype_event[1].encode(rt.api_version, etype_event[0])
                                              for etype_event in initial))
            if send_initial and bookmarks:
                await response.write(self._bookmark(rt, initial_end=True))
            next_bookmark = self._loop.time() + self.bookmark_interval
            while True:
                now = self._loop.time()
                if deadline is not None and now >= deadline:
                    break
                wait = next_bookmark - now if bookmarks else None
                if deadline is not None:
                    wait = deadline - now if wait is None else min(wait, deadline - now)
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), timeout=wait) if wait is not None \
                        else await watcher.queue.get()
                except TimeoutError:
                    if bookmarks and self._loop.time() >= next_bookmark:
                        await response.write(self._bookmark(rt))
                        next_bookmark = self._loop.time() + self.bookmark_interval
                    continue
                items: list[tuple[str, Event] | None] = [item]
                while not watcher.queue.empty():
                    items.append(watcher.queue.get_nowait())
                chunk = b"".join(i[1].encode(rt.api_version, i[0]) for i in items if i is not None)
                if chunk:
                    await response.write(chunk)
                if any(i is None for i in items):
                    break
        except ConnectionResetError:
            pass
        finally:
            self._watchers.discard(watcher)
            self.store.unsubscribe(rt, watcher)
        with contextlib.suppress(Exception):
            await response.write_eof()
        return response

    def _bookmark(self, rt: ResourceType, *, initial_end: bool = False) -> bytes:
        metadata: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        if initial_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        event = {"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": metadata}}
        return json.dumps(event, separators=(",", ":")).encode() + b"\n"
