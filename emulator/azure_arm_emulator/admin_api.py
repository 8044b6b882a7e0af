"""The ``/_admin/`` HTTP API (no authentication): faults, request log, simulated events, config, state dump."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .errors import ArmError
from .faults import FaultRule

if TYPE_CHECKING:
    from .app import Emulator


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def _bad_request(message: str) -> web.Response:
    return _json({"error": {"code": "BadRequest", "message": message}}, 400)


async def _read_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


class AdminApi:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def register(self, app: web.Application) -> None:
        router = app.router
        router.add_get("/_admin/health", self.health)
        router.add_post("/_admin/faults", self.add_fault)
        router.add_get("/_admin/faults", self.list_faults)
        router.add_delete("/_admin/faults", self.clear_faults)
        router.add_delete("/_admin/faults/{fault_id}", self.remove_fault)
        router.add_get("/_admin/requests", self.list_requests)
        router.add_delete("/_admin/requests", self.clear_requests)
        router.add_post("/_admin/vms/evict", self.evict_vm)
        router.add_get("/_admin/resources", self.list_resources)
        router.add_get("/_admin/config", self.get_config)
        router.add_put("/_admin/config", self.put_config)
        router.add_get("/_admin/throttling", self.get_throttling)
        router.add_get("/_admin/load", self.get_load)
        router.add_put("/_admin/load", self.put_load)
        router.add_get("/_admin/instance-health", self.get_instance_health)
        router.add_put("/_admin/instance-health", self.put_instance_health)
        router.add_get("/metrics", self.prometheus)

    async def health(self, request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def add_fault(self, request: web.Request) -> web.Response:
        try:
            rule = FaultRule.from_request(await _read_object(request))
        except (ValueError, TypeError) as exc:
            return _bad_request(str(exc))
        self.emulator.faults.add(rule)
        return _json({"id": rule.id}, 201)

    async def list_faults(self, request: web.Request) -> web.Response:
        return _json({"faults": [rule.to_json() for rule in self.emulator.faults.list()]})

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.emulator.faults.clear()
        return web.Response(status=204)

    async def remove_fault(self, request: web.Request) -> web.Response:
        found = self.emulator.faults.remove(request.match_info["fault_id"])
        return web.Response(status=204 if found else 404)

    async def list_requests(self, request: web.Request) -> web.Response:
        return _json({"requests": [entry.to_json() for entry in self.emulator.request_log.entries()]})

    async def clear_requests(self, request: web.Request) -> web.Response:
        self.emulator.request_log.clear()
        return web.Response(status=204)

    async def evict_vm(self, request: web.Request) -> web.Response:
        try:
            body = await _read_object(request)
        except ValueError as exc:
            return _bad_request(str(exc))
        vm_id = body.get("id")
        if not isinstance(vm_id, str):
            return _bad_request("'id' (a virtual machine resource id) is required")
        return await self._change(lambda: {"id": vm_id, "result": self.emulator.compute.evict(vm_id)})

    async def list_resources(self, request: web.Request) -> web.Response:
        self.emulator.settle()
        await self.emulator.store.flush()
        store = self.emulator.store
        resources = []
        for resource in store.under("/subscriptions"):
            entry: dict[str, Any] = {
                "id": resource.id,
                "type": resource.type,
                "provisioningState": resource.properties.get("provisioningState"),
            }
            if "power" in resource.private:
                entry["powerState"] = resource.private["power"]
            resources.append(entry)
        return _json({"resources": resources})

    async def get_config(self, request: web.Request) -> web.Response:
        return _json({
            "latency_scale": self.emulator.latency_scale,
            "throttling": self.emulator.throttling,
            "throttle_scale": self.emulator.throttle_scale,
        })

    async def put_config(self, request: web.Request) -> web.Response:
        try:
            body = await _read_object(request)
            if "latency_scale" in body:
                scale = float(body["latency_scale"])
                if scale < 0:
                    raise ValueError("latency_scale must be >= 0")
                self.emulator.latency_scale = scale
            if "throttling" in body:
                if not isinstance(body["throttling"], bool):
                    raise ValueError("throttling must be true or false")
                self.emulator.throttling = body["throttling"]
            if "throttle_scale" in body:
                throttle_scale = float(body["throttle_scale"])
                if not throttle_scale > 0:
                    raise ValueError("throttle_scale must be > 0")
                self.emulator.throttle_scale = throttle_scale
        except (ValueError, TypeError) as exc:
            return _bad_request(str(exc))
        return await self.get_config(request)

    async def get_throttling(self, request: web.Request) -> web.Response:
        return _json(self.emulator.throttle.snapshot())

    async def get_load(self, request: web.Request) -> web.Response:
        self.emulator.settle()
        await self.emulator.store.flush()
        return _json({"loads": self.emulator.insights.describe_all()})

    async def put_load(self, request: web.Request) -> web.Response:
        try:
            body = await _read_object(request)
            resource_id = body.get("resource_id")
            if not isinstance(resource_id, str):
                raise ValueError("'resource_id' (a virtual machine or scale set id) is required")
            cpu_percent = float(body["cpu_percent"])
            reference = body.get("reference_capacity")
            reference_capacity = None if reference is None else int(reference)
        except (ValueError, TypeError, KeyError) as exc:
            return _bad_request(f"invalid load: {exc}")
        return await self._change(lambda: self.emulator.insights.set_load(resource_id, cpu_percent, reference_capacity))

    async def get_instance_health(self, request: web.Request) -> web.Response:
        self.emulator.settle()
        await self.emulator.store.flush()
        return _json({"instances": self.emulator.scale_sets.describe_health()})

    async def put_instance_health(self, request: web.Request) -> web.Response:
        """``{"resource_id": <scale set instance id>, "healthy": bool}``: the instance's application health."""
        try:
            body = await _read_object(request)
        except ValueError as exc:
            return _bad_request(str(exc))
        resource_id, healthy = body.get("resource_id"), body.get("healthy")
        if not isinstance(resource_id, str) or not isinstance(healthy, bool):
            return _bad_request("'resource_id' (a scale set instance id) and 'healthy' (true or false) are required")
        return await self._change(lambda: self.emulator.scale_sets.set_health(resource_id, healthy))

    async def _change(self, change: Callable[[], Any]) -> web.Response:
        """Settle due operations, apply an admin change (undone if it raises ArmError, whose error is answered),
        make it durable and answer its outcome."""
        self.emulator.settle()
        try:
            outcome = change()
        except ArmError as exc:
            self.emulator.store.rollback()
            return _json(exc.body(), exc.status)
        await self.emulator.store.flush()
        return _json(outcome)

    async def prometheus(self, request: web.Request) -> web.Response:
        """Prometheus text format: per-instance CPU, scale set capacity and running instances (no authentication)."""
        self.emulator.settle()
        await self.emulator.store.flush()
        return web.Response(body=generate_latest(self.emulator.metrics_registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
