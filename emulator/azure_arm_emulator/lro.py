"""Asynchronous (long-running) operations, timed by wall clock.

An operation is a persisted record ``{id, kind, resource_id, start, duration, status, ...}``. Nothing runs in the
background: before every request the engine *settles* the operations whose time has come, calling the completion
handler registered for their ``kind`` (which moves the resource to its final state). Because records carry their
wall-clock start time and are persisted with the resources, in-flight operations resume after a restart.

Latencies are the realistic ones (VM create ~30 s, ...) multiplied by ``latency_scale``; with a scale of 0 an
operation completes on the first poll.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import util
from .errors import ArmError
from .store import Store

#: Realistic duration of each operation kind in seconds, before ``latency_scale``.
LATENCY_SECONDS: dict[str, float] = {
    "vm.create": 30.0,
    "vm.update": 10.0,
    "vm.start": 15.0,
    "vm.powerOff": 10.0,
    "vm.deallocate": 20.0,
    "vm.restart": 15.0,
    "vm.delete": 20.0,
    "network.put": 2.0,
    "network.delete": 2.0,
    "rg.delete": 20.0,
}

#: Finished operations are forgotten this long after they ended (their status URL then answers 404).
RETENTION_SECONDS = 24 * 3600

IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
CANCELED = "Canceled"

#: Completion handler: ``(operation, error or None)``; applies the final state of the resource.
Completion = Callable[["Operation", dict[str, Any] | None], None]


@dataclass
class Operation:
    id: str
    kind: str
    name: str
    subscription: str
    namespace: str
    location: str
    resource_id: str
    start: float
    duration: float
    status: str = IN_PROGRESS
    end: float | None = None
    error: dict[str, Any] | None = None
    injected_error: dict[str, Any] | None = None
    params: dict[str, Any] | None = None

    @property
    def due(self) -> float:
        return self.start + self.duration

    @property
    def done(self) -> bool:
        return self.status != IN_PROGRESS

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Operation:
        return cls(**doc)

    def status_body(self) -> dict[str, Any]:
        """The body of ``GET .../operations/{id}`` (the Azure-AsyncOperation URL)."""
        body: dict[str, Any] = {"name": self.id, "status": self.status, "startTime": util.iso(self.start)}
        if self.end is not None:
            body["endTime"] = util.iso(self.end)
        if self.error is not None:
            body["error"] = self.error
        return body


class OperationEngine:
    def __init__(self, store: Store, latency_scale: float) -> None:
        self._store = store
        self.latency_scale = latency_scale
        self._completions: dict[str, Completion] = {}
        self._pending: list[tuple[float, str]] = []

    def register(self, kind: str, completion: Completion) -> None:
        self._completions[kind] = completion

    def load(self) -> None:
        """Rebuild the pending queue from the store (after a restart); forget long-finished operations."""
        self._pending = []
        horizon = util.now() - RETENTION_SECONDS
        for doc in self._store.operations():
            if doc["status"] == IN_PROGRESS:
                heapq.heappush(self._pending, (doc["start"] + doc["duration"], doc["id"]))
            elif (doc.get("end") or 0) < horizon:
                self._store.delete_operation(doc["id"])

    def get(self, operation_id: str) -> Operation | None:
        doc = self._store.get_operation(operation_id)
        return None if doc is None else Operation.from_json(doc)

    def begin(
        self,
        kind: str,
        *,
        name: str,
        resource_id: str,
        subscription: str,
        namespace: str,
        location: str,
        injected_error: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Operation:
        operation = Operation(
            id=util.new_uuid(),
            kind=kind,
            name=name,
            subscription=subscription,
            namespace=namespace,
            location=location or "global",
            resource_id=resource_id,
            start=util.now(),
            duration=LATENCY_SECONDS.get(kind, 2.0) * self.latency_scale,
            injected_error=injected_error,
            params=params,
        )
        self._store.put_operation(operation.to_json())
        heapq.heappush(self._pending, (operation.due, operation.id))
        return operation

    def settle_due(self) -> None:
        """Complete every operation whose time has come, in due order."""
        current = util.now()
        while self._pending and self._pending[0][0] <= current:
            _, operation_id = heapq.heappop(self._pending)
            operation = self.get(operation_id)
            if operation is None or operation.done:
                continue
            self._complete(operation)

    def _complete(self, operation: Operation) -> None:
        error = operation.injected_error
        completion = self._completions.get(operation.kind)
        if completion is not None:
            try:
                completion(operation, error)
            except ArmError as exc:
                error = exc.error_dict()
        operation.status = FAILED if error else SUCCEEDED
        operation.error = error
        operation.end = util.now()
        self._store.put_operation(operation.to_json())

    def cancel(self, operation_id: str, code: str, message: str) -> None:
        operation = self.get(operation_id)
        if operation is None or operation.done:
            return
        operation.status = CANCELED
        operation.error = {"code": code, "message": message}
        operation.end = util.now()
        self._store.put_operation(operation.to_json())

    def active(self, operation_id: str | None) -> Operation | None:
        """The operation if it is still in progress (after settling due ones)."""
        if not operation_id:
            return None
        operation = self.get(operation_id)
        return operation if operation is not None and not operation.done else None

    def retry_after(self, operation: Operation) -> int:
        """Retry-After seconds for an in-progress operation: whole seconds, at least 1 while work remains (a 0
        makes the SDK fall back to its own polling interval, 30 s by default), 0 once it is due (instant mode)."""
        remaining = operation.due - util.now()
        if remaining <= 0:
            return 0
        return max(1, min(10, math.ceil(remaining / 4)))
