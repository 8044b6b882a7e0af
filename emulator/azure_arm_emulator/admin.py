"""Async client of the emulator's ``/_admin/`` API (fault injection, request log, simulated events).

Works from any process: it only needs the emulator URL and its CA file::

    async with AdminClient(emu.url, emu.ca_path) as admin:
        await admin.inject_fault(method="PUT", path="/virtualMachines/", status=429, headers={"Retry-After": "1"}, count=1)
        ...
        assert await admin.count(method="PUT", operation="Microsoft.Compute/virtualMachines/write") == 2
"""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp


class AdminError(RuntimeError):
    pass


class AdminClient:
    def __init__(self, url: str, ca_path: str) -> None:
        self.url = url.rstrip("/")
        self._ssl = ssl.create_default_context(cafile=ca_path)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl))
        async with self._session.request(method, f"{self.url}/_admin/{path}", json=body) as response:
            text = await response.text()
            if response.status >= 400:
                raise AdminError(f"{method} /_admin/{path}: HTTP {response.status}: {text}")
            return await response.json(content_type=None) if text else None

    # faults ---------------------------------------------------------------------------------------------------

    async def inject_fault(
        self,
        *,
        method: str = "*",
        path: str = ".*",
        status: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        count: int | None = None,
        probability: float = 1.0,
        delay: float = 0.0,
        drop: bool = False,
        lro_failure: dict[str, Any] | None = None,
    ) -> str:
        """Add a fault rule; returns its id. ``path`` is a regex searched in the URL path; ``count=None`` = unlimited."""
        spec: dict[str, Any] = {
            "method": method,
            "path": path,
            "count": count,
            "probability": probability,
            "delay": delay,
            "drop": drop,
        }
        if status is not None:
            spec["status"] = status
        if body is not None:
            spec["body"] = body
        if headers:
            spec["headers"] = headers
        if lro_failure is not None:
            spec["lro_failure"] = lro_failure
        result = await self._request("POST", "faults", spec)
        return str(result["id"])

    async def faults(self) -> list[dict[str, Any]]:
        return list((await self._request("GET", "faults"))["faults"])

    async def remove_fault(self, fault_id: str) -> None:
        await self._request("DELETE", f"faults/{fault_id}")

    async def clear_faults(self) -> None:
        await self._request("DELETE", "faults")

    # request log ----------------------------------------------------------------------------------------------

    async def requests(self) -> list[dict[str, Any]]:
        return list((await self._request("GET", "requests"))["requests"])

    async def clear_requests(self) -> None:
        await self._request("DELETE", "requests")

    async def count(
        self, method: str | None = None, operation: str | None = None, path_contains: str | None = None
    ) -> int:
        """Logged requests matching all given filters. ``operation`` matches exactly or as a ``/``-suffix
        (``"operations/read"`` matches ``Microsoft.Compute/locations/operations/read``); case-insensitive."""
        return sum(1 for entry in await self.requests() if _matches(entry, method, operation, path_contains))

    # simulated events and state -------------------------------------------------------------------------------

    async def evict_vm(self, vm_id: str) -> dict[str, Any]:
        """Simulate a Spot eviction (the VM becomes deallocated, or is deleted with evictionPolicy Delete)."""
        return dict(await self._request("POST", "vms/evict", {"id": vm_id}))

    async def resources(self) -> list[dict[str, Any]]:
        return list((await self._request("GET", "resources"))["resources"])

    async def set_latency_scale(self, scale: float) -> None:
        await self._request("PUT", "config", {"latency_scale": scale})

    async def config(self) -> dict[str, Any]:
        """``{"latency_scale", "throttling", "throttle_scale"}``."""
        return dict(await self._request("GET", "config"))

    async def configure(
        self, *, latency_scale: float | None = None, throttling: bool | None = None, throttle_scale: float | None = None
    ) -> dict[str, Any]:
        """Change the given settings at run time (a new ``throttle_scale`` refills every bucket); returns the config."""
        body: dict[str, Any] = {}
        if latency_scale is not None:
            body["latency_scale"] = latency_scale
        if throttling is not None:
            body["throttling"] = throttling
        if throttle_scale is not None:
            body["throttle_scale"] = throttle_scale
        return dict(await self._request("PUT", "config", body))

    async def set_throttling(self, enabled: bool, scale: float | None = None) -> dict[str, Any]:
        return await self.configure(throttling=enabled, throttle_scale=scale)

    async def throttling(self) -> dict[str, Any]:
        """``{"enabled", "scale", "buckets": [{"policy", "scope", "subscription", "principal"|"resource_id",
        "tokens", "capacity", "refill_per_second"}]}`` with levels refilled to now."""
        return dict(await self._request("GET", "throttling"))

    async def set_load(
        self, resource_id: str, cpu_percent: float, reference_capacity: int | None = None
    ) -> dict[str, Any]:
        """Simulated CPU load of a VM or scale set (see docs/emulator.md, "Metrics"); returns the resource's load
        state with its per-instance CPU."""
        body: dict[str, Any] = {"resource_id": resource_id, "cpu_percent": cpu_percent}
        if reference_capacity is not None:
            body["reference_capacity"] = reference_capacity
        return dict(await self._request("PUT", "load", body))

    async def loads(self) -> list[dict[str, Any]]:
        """Load state of every VM and scale set: ``cpu_percent``, ``reference_capacity``, ``capacity``,
        ``running_instances`` and ``instances`` with their current CPU."""
        return list((await self._request("GET", "load"))["loads"])

    async def set_health(self, instance_id: str, healthy: bool) -> dict[str, Any]:
        """Mark a scale set instance healthy or unhealthy: its instance view's ``vmHealth`` (shown when the scale
        set has a health probe or an application health extension) follows. Returns ``{"resource_id", "healthy",
        "vmHealth"}`` (``vmHealth`` is None without a health signal)."""
        return dict(await self._request("PUT", "instance-health", {"resource_id": instance_id, "healthy": healthy}))

    async def instance_health(self) -> list[dict[str, Any]]:
        """``{"resource_id", "healthy", "vmHealth"}`` of every scale set instance."""
        return list((await self._request("GET", "instance-health"))["instances"])

    async def prometheus_text(self) -> str:
        """The Prometheus exposition served at ``GET /metrics``."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl))
        async with self._session.get(f"{self.url}/metrics") as response:
            text = await response.text()
            if response.status >= 400:
                raise AdminError(f"GET /metrics: HTTP {response.status}: {text}")
            return text

    async def health(self) -> bool:
        return bool((await self._request("GET", "health"))["status"] == "ok")


def _matches(entry: dict[str, Any], method: str | None, operation: str | None, path_contains: str | None) -> bool:
    if method is not None and entry.get("method", "").upper() != method.upper():
        return False
    if operation is not None:
        logged = (entry.get("operation") or "").lower()
        wanted = operation.lower()
        if logged != wanted and not logged.endswith("/" + wanted):
            return False
    if path_contains is not None and path_contains.lower() not in entry.get("path", "").lower():
        return False
    return True
