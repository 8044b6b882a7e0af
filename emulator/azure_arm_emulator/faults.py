"""Fault injection rules and the request log (both in memory, driven by the ``/_admin/`` API)."""

from __future__ import annotations

import random
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import util

DEFAULT_ERROR_CODES: dict[int, str] = {
    408: "RequestTimeout",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass
class FaultRule:
    """One injected fault. ``method`` ``*`` matches every method; ``path`` is a regex searched in the URL path."""

    id: str
    method: str = "*"
    path: str = ".*"
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    count: int | None = None
    probability: float = 1.0
    delay: float = 0.0
    drop: bool = False
    lro_failure: dict[str, Any] | None = None
    hits: int = 0

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path)

    @classmethod
    def from_request(cls, doc: dict[str, Any]) -> FaultRule:
        allowed = {"method", "path", "status", "body", "headers", "count", "probability", "delay", "drop", "lro_failure"}
        unknown = set(doc) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        rule = cls(id=util.new_uuid(), **doc)
        if rule.status is None and not rule.drop and rule.lro_failure is None and not rule.delay:
            raise ValueError("a fault needs at least one of status, drop, lro_failure or delay")
        if rule.lro_failure is not None and not {"code", "message"} <= set(rule.lro_failure):
            raise ValueError("lro_failure needs code and message")
        rule.method = rule.method.upper()
        rule.headers = {str(k): str(v) for k, v in (rule.headers or {}).items()}
        return rule

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.hits >= self.count

    def matches(self, method: str, path: str) -> bool:
        if self.exhausted:
            return False
        if self.method not in ("*", method.upper()):
            return False
        return self._pattern.search(path) is not None

    def error_body(self) -> Any:
        if self.body is not None:
            return self.body
        status = self.status or 500
        code = DEFAULT_ERROR_CODES.get(status, "InjectedFault")
        return {"error": {"code": code, "message": f"Injected fault {self.id}: HTTP {status}."}}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "body": self.body,
            "headers": self.headers,
            "count": self.count,
            "probability": self.probability,
            "delay": self.delay,
            "drop": self.drop,
            "lro_failure": self.lro_failure,
            "hits": self.hits,
            "remaining": None if self.count is None else max(0, self.count - self.hits),
        }


class FaultInjector:
    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[FaultRule] = []
        self._random = random.Random(seed)

    def add(self, rule: FaultRule) -> FaultRule:
        self._rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        before = len(self._rules)
        self._rules = [r for r in self._rules if r.id != rule_id]
        return len(self._rules) != before

    def clear(self) -> None:
        self._rules.clear()

    def list(self) -> list[FaultRule]:
        return list(self._rules)

    def match(self, method: str, path: str) -> FaultRule | None:
        """The first rule that fires for this request (counting the hit), or None."""
        for rule in self._rules:
            if not rule.matches(method, path):
                continue
            if rule.probability < 1.0 and self._random.random() >= rule.probability:
                continue
            rule.hits += 1
            return rule
        return None


@dataclass
class LogEntry:
    seq: int
    time: str
    method: str
    path: str
    query: dict[str, str]
    status: int | None = None
    operation: str | None = None
    resource_id: str | None = None
    fault: str | None = None
    duration_ms: float | None = None
    policy: str | None = None  #: throttling policy charged (or that rejected the request), e.g. ``Microsoft.Compute/PutVM``
    #: The shape of the JSON request body (:func:`body_paths`); never its values.
    body_paths: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "body_paths": list(self.body_paths)}


def body_paths(document: Any) -> list[str]:
    """The sorted leaf key paths of a JSON body, dot-separated, list elements written ``[]``; values are dropped.

    ``{"tags": {"a": "1"}, "properties": {"x": [{"y": 1}]}}`` gives ``["properties.x[].y", "tags.a"]``. An empty
    object or list is a leaf at its own path (``{"tags": {}}`` gives ``["tags"]``); a body that is not an object or
    a list (or no body) gives ``[]``.
    """
    found: set[str] = set()

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict) and value:
            for key, child in value.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list) and value:
            for child in value:
                walk(child, f"{path}[]")
        elif path:
            found.add(path)

    if isinstance(document, dict | list):
        walk(document, "")
    return sorted(found)


class RequestLog:
    """The last ``capacity`` requests (ARM and token endpoint; never ``/_admin/``)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        self._seq = 0

    def start(self, method: str, path: str, query: dict[str, str]) -> LogEntry:
        self._seq += 1
        entry = LogEntry(seq=self._seq, time=util.iso(util.now()), method=method, path=path, query=query)
        self._entries.append(entry)
        return entry

    def entries(self) -> list[LogEntry]:
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()
