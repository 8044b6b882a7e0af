"""The emulator server: HTTPS (aiohttp), identity endpoints, the ARM request pipeline and the admin API.

ARM request pipeline, in order: body parsing and request log (the body's key paths, never its values) -> fault
injection -> authentication -> api-version -> routing -> request policies (throttling hook) -> body check -> settle
due operations -> handler (synchronous) -> durable flush -> response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from . import auth, certs
from .admin_api import AdminApi
from .errors import ArmError, invalid_request_content
from .faults import FaultInjector, RequestLog, body_paths
from .lro import OperationEngine
from .policies import PolicyRequest, RequestPolicy
from .providers.availability_sets import AvailabilitySetsProvider
from .providers.compute import ComputeProvider
from .providers.disks import DisksProvider
from .providers.images import ImagesProvider
from .providers.insights import InsightsProvider
from .providers.load_balancers import LoadBalancerProvider
from .providers.network import NetworkProvider
from .providers.resources import ResourcesProvider
from .providers.scale_sets import ScaleSetProvider
from .providers.security_rules import SecurityRulesProvider
from .routing import Call, Reply, Router
from .services import Services
from .store import Store
from .throttle import Throttler

#: The largest request body accepted (a larger one is an ARM-shaped 413).
MAX_BODY = 16 * 1024 * 1024

log = logging.getLogger(__name__)

JSON_TYPE = "application/json; charset=utf-8"


class _DropConnection(Exception):
    """Raised to close the connection without answering (fault ``drop``)."""


class Emulator:
    """A local Azure Resource Manager for VMs, networking and resource groups.

    :param state_dir: where state (SQLite, ``synchronous=FULL``) and the CA live; ``None`` keeps everything in
        memory and puts the CA in a temporary directory.
    :param latency_scale: multiplier of the realistic operation latencies (VM create ~30 s, ...); ``0`` makes every
        long-running operation complete on its first poll.
    :param throttling: enforce ARM/Compute/Network throttling (token buckets, see :mod:`.throttle`); may be
        changed at run time (``emulator.throttling = ...``).
    :param page_size: items per page of list responses (``nextLink`` paging).
    :param fault_seed: seed of the random generator used by probabilistic faults.
    :param throttle_scale: multiplier of every throttling bucket size and refill rate.
    """

    def __init__(
        self,
        state_dir: str | Path | None = None,
        latency_scale: float = 0.0,
        throttling: bool = True,
        *,
        page_size: int = 100,
        fault_seed: int | None = None,
        throttle_scale: float = 1.0,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.store = Store(self.state_dir)
        self.engine = OperationEngine(self.store, latency_scale)
        self.services = Services(self.store, self.engine, page_size)
        self.router = Router()
        self.resources = ResourcesProvider(self.services)
        self.compute = ComputeProvider(self.services)
        self.network = NetworkProvider(self.services)
        for provider in (self.resources, self.compute, self.network):
            provider.register(self.router)
        self.load_balancers = LoadBalancerProvider(self.services, self.network)
        self.scale_sets = ScaleSetProvider(self.services, self.compute, self.network, self.load_balancers)
        for extra in (self.load_balancers, self.scale_sets):
            extra.register(self.router)
        self.insights = InsightsProvider(self.services)  # metrics API, simulated load
        self.insights.register(self.router)
        self.disks = DisksProvider(self.services)
        self.availability_sets = AvailabilitySetsProvider(self.services)
        self.images = ImagesProvider(self.services, self.compute)  # also resolves VMs' imageReference.id
        self.security_rules = SecurityRulesProvider(self.services)  # NSG rules as sub-resources
        for compute_extra in (self.disks, self.availability_sets, self.images, self.security_rules):
            compute_extra.register(self.router)
        self.metrics_registry = CollectorRegistry(auto_describe=False)  # served at GET /metrics (Prometheus)
        self.metrics_registry.register(self.insights.collector())
        self.faults = FaultInjector(fault_seed)
        self.request_log = RequestLog()
        self.throttle = Throttler(
            enabled=throttling,
            scale=throttle_scale,
            resource_exists=lambda resource_id: self.store.get(resource_id) is not None,
            operation_resource=lambda operation_id: getattr(self.engine.get(operation_id), "resource_id", None),
        )
        self.policies: list[RequestPolicy] = [self.throttle]
        self._runner: web.AppRunner | None = None
        self._temp_dir: str | None = None
        self._url: str | None = None
        self._ca_path: str | None = None
        self._port: int | None = None

    # lifecycle ------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the emulator is not started")
        return self._url

    @property
    def ca_path(self) -> str:
        if self._ca_path is None:
            raise RuntimeError("the emulator is not started")
        return self._ca_path

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def throttling(self) -> bool:
        return self.throttle.enabled

    @throttling.setter
    def throttling(self, value: bool) -> None:
        self.throttle.enabled = bool(value)

    @property
    def throttle_scale(self) -> float:
        return self.throttle.scale

    @throttle_scale.setter
    def throttle_scale(self, value: float) -> None:
        self.throttle.scale = value

    @property
    def latency_scale(self) -> float:
        return self.engine.latency_scale

    @latency_scale.setter
    def latency_scale(self, value: float) -> None:
        self.engine.latency_scale = value

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            tls_dir = self.state_dir
        else:
            self._temp_dir = tempfile.mkdtemp(prefix="arm-emulator-")
            tls_dir = Path(self._temp_dir)
        tls = await asyncio.get_running_loop().run_in_executor(None, certs.prepare, tls_dir, host)
        await self.store.open()
        self.engine.load()
        await self.store.flush()
        app = web.Application(client_max_size=MAX_BODY)
        AdminApi(self).register(app)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=tls.server_context)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        url_host = "127.0.0.1" if host in ("", "0.0.0.0") else ("[::1]" if host == "::" else host)
        if ":" in url_host and not url_host.startswith("["):
            url_host = f"[{url_host}]"
        self._url = f"https://{url_host}:{self._port}"
        self._ca_path = tls.ca_path
        log.info("ARM emulator listening on %s (CA %s)", self._url, self._ca_path)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.store.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    async def __aenter__(self) -> Emulator:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # request pipeline -----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        entry = self.request_log.start(request.method, request.path, dict(request.query))
        body: _Body | None = None
        if auth.is_identity_path(request.path):
            entry.operation = "oauth2/token" if "token" in request.path.lower() else "identity/discovery"
        else:
            entry.operation, entry.resource_id = self.router.describe(request.method, request.path)
            try:
                body = await _read_body(request)
            except web.HTTPRequestEntityTooLarge:
                entry.status = 413
                return _json_response(413, {"error": {
                    "code": "RequestEntityTooLarge",
                    "message": f"The request content is larger than the {MAX_BODY} bytes allowed."}}, {}, request)
            entry.body_paths = body_paths(body.value)
        try:
            response = await self._dispatch(request, entry, body)
        except _DropConnection:
            entry.duration_ms = (time.monotonic() - started) * 1000
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError() from None
        entry.status = response.status
        entry.duration_ms = (time.monotonic() - started) * 1000
        return response

    async def _dispatch(self, request: web.Request, entry: Any, body: _Body | None) -> web.StreamResponse:
        fault = self.faults.match(request.method, request.path)
        lro_failure = None
        if fault is not None:
            entry.fault = fault.id
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                raise _DropConnection()
            if fault.status is not None:
                return _json_response(fault.status, fault.error_body(), fault.headers, request)
            lro_failure = fault.lro_failure
        base_url = f"{request.scheme}://{request.host}"
        if body is None:
            return await self._identity(request, base_url)
        try:
            call, route_resource, policy_request = self._prepare(request, body, base_url, lro_failure, entry)
        except ArmError as exc:
            return _error_response(exc, request)
        reply = self._run(call)
        if call.log_resource_id:
            entry.resource_id = call.log_resource_id
        elif entry.resource_id is None:
            entry.resource_id = route_resource
        await self.store.flush()
        headers = dict(reply.headers)
        for policy in self.policies:
            headers.update(policy.response_headers(policy_request))
        return _json_response(reply.status, reply.body, headers, request)

    def _prepare(
        self, request: web.Request, body: _Body, base_url: str, lro_failure: dict[str, Any] | None, entry: Any
    ) -> tuple[Call, str | None, PolicyRequest]:
        auth.require_bearer(request.headers.get("Authorization"))
        api_version = request.query.get("api-version")
        if not api_version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        route = self.router.resolve(request.method, request.path, api_version=api_version)
        call = Call(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            base_url=base_url,
            api_version=api_version,
            scope=route.scope,
            subscription=route.subscription,
            resource_group=route.resource_group,
            namespace=route.namespace,
            types=route.types,
            names=route.names,
            action=route.action,
            lro_failure=lro_failure,
        )
        policy_request = self._policy_request(call, entry)
        for policy in self.policies:
            rejection = policy.admit(policy_request)
            entry.policy = policy_request.state.get("policy", entry.policy)
            if rejection is not None:
                error = (rejection.body or {}).get("error", {})
                raise ArmError(
                    rejection.status,
                    str(error.get("code", "TooManyRequests")),
                    str(error.get("message", "Throttled.")),
                    target=error.get("target"),
                    details=error.get("details"),
                    headers=rejection.headers,
                )
        if body.error is not None:
            raise invalid_request_content(body.error)
        call.body = body.value
        if request.method in ("PUT", "PATCH") and body.present and not isinstance(call.body, dict):
            raise invalid_request_content("the request body must be a JSON object")
        call.handler = route.handler
        return call, route.resource_id, policy_request

    def _run(self, call: Call) -> Reply:
        """Settle due operations, then run the handler; synchronous, hence atomic w.r.t. other requests."""
        self.resources.register_subscription(call.subscription)
        self.engine.settle_due()
        self.store.checkpoint()
        try:
            assert call.handler is not None
            return call.handler(call)
        except ArmError as exc:
            self.store.rollback()
            return Reply(exc.status, exc.body(), dict(exc.headers))
        except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
            self.store.rollback()
            if call.body is None:  # nothing of the client's could be ill-typed: the emulator's own failure
                log.exception("ARM emulator handler failed for %s %s", call.method, call.path)
                return Reply(500, {"error": {"code": "InternalServerError", "message": "The emulator failed."}})
            # A field of the body with a JSON type the resource's model does not have (a list where an object
            # belongs, a number for a name...): ARM's deserializer refuses the request with 400, never a 500.
            log.info("%s %s: ill-typed request body (%s: %s)", call.method, call.path, type(exc).__name__, exc)
            error = invalid_request_content(f"a field of the body has the wrong JSON type ({type(exc).__name__})")
            return Reply(error.status, error.body(), dict(error.headers))
        except Exception:
            self.store.rollback()
            log.exception("ARM emulator handler failed for %s %s", call.method, call.path)
            return Reply(500, {"error": {"code": "InternalServerError", "message": "The emulator failed."}})

    def _policy_request(self, call: Call, entry: Any) -> PolicyRequest:
        return PolicyRequest(
            method=call.method,
            path=call.path,
            subscription=call.subscription,
            operation=entry.operation or "",
            resource_id=entry.resource_id,
            principal=auth.principal_of(call.headers.get("Authorization")),
        )

    async def _identity(self, request: web.Request, base_url: str) -> web.StreamResponse:
        path = request.path
        token_match = auth.TOKEN_PATH.match(path)
        if token_match is not None:
            if request.method != "POST":
                return _json_response(405, {"error": "invalid_request"}, {}, request)
            form = await request.post()
            tenant = token_match.group("tenant")
            client_id = str(form.get("client_id") or "unknown")
            scope = str(form.get("scope") or form.get("resource") or "https://management.azure.com/.default")
            return _json_response(200, auth.issue_token(tenant, client_id, scope, base_url), {}, request)
        openid_match = auth.OPENID_PATH.match(path)
        if openid_match is not None:
            return _json_response(200, auth.openid_configuration(openid_match.group("tenant"), base_url), {}, request)
        return _json_response(
            200, auth.instance_discovery(base_url, request.query.get("authorization_endpoint")), {}, request
        )

    def settle(self) -> None:
        """Settle due operations outside a request (admin API)."""
        self.engine.settle_due()
        self.store.checkpoint()


@dataclass(frozen=True)
class _Body:
    """The JSON body of an ARM request: whether there is one, its value, or why it is not JSON."""

    present: bool = False
    value: Any = None
    error: str | None = None


async def _read_body(request: web.Request) -> _Body:
    """The body of a PUT, PATCH or POST (other methods carry none in ARM), parsed once for the log and the call."""
    if request.method not in ("PUT", "PATCH", "POST") or not request.can_read_body:
        return _Body()
    raw = await request.read()
    if not raw.strip():
        return _Body()
    try:
        return _Body(True, json.loads(raw))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _Body(True, error=str(exc))


def _json_response(
    status: int, body: Any, headers: dict[str, str], request: web.Request
) -> web.Response:
    all_headers = {
        "x-ms-request-id": str(uuid.uuid4()),
        "x-ms-correlation-request-id": request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4()),
        **headers,
    }
    client_request_id = request.headers.get("x-ms-client-request-id")
    if client_request_id:
        all_headers["x-ms-client-request-id"] = client_request_id
    if body is None or status == 204 or request.method == "HEAD":
        return web.Response(status=status, headers=all_headers)
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json",
                        charset="utf-8", headers=all_headers)


def _error_response(error: ArmError, request: web.Request) -> web.Response:
    return _json_response(error.status, error.body(), error.headers, request)
