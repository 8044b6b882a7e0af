"""kstatus conditions (Ready, Reconciling, Stalled) as pure functions over plain dicts."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
CONDITION_TYPES = (READY, RECONCILING, STALLED)
#: ScaleSet with spec.autoscale: whether the autoscaler can read its metrics and write its decisions
AUTOSCALE_HEALTHY = "AutoscaleHealthy"


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str = ""


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: Any) -> datetime.datetime | None:
    """A Kubernetes or ARM timestamp (``2026-12-03T10:00:00Z`` or with an offset; without one it is UTC); None
    when absent or not a timestamp."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def merge_conditions(
    current: Iterable[Mapping[str, Any]] | None,
    updates: Iterable[Condition],
    generation: int | None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """Return the new conditions list.

    ``lastTransitionTime`` changes only when a condition's status flips, as Kubernetes conventions ask;
    conditions not named in ``updates`` are kept as they are.
    """
    now = now or now_rfc3339()
    result: dict[str, dict[str, Any]] = {c["type"]: dict(c) for c in (current or []) if "type" in c}
    for update in updates:
        status = "True" if update.status else "False"
        old = result.get(update.type)
        transition = old.get("lastTransitionTime") if old and old.get("status") == status else None
        result[update.type] = {
            "type": update.type,
            "status": status,
            "reason": update.reason,
            "message": update.message,
            "lastTransitionTime": transition or now,
            "observedGeneration": generation,
        }
    ordered = [result.pop(t) for t in CONDITION_TYPES if t in result]
    return ordered + sorted(result.values(), key=lambda c: c["type"])


def changed_conditions(
    before: Iterable[Mapping[str, Any]] | None, after: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Conditions whose status or reason differ between two lists (for emitting Events)."""
    old = {c.get("type"): (c.get("status"), c.get("reason")) for c in (before or [])}
    return [c for c in after if old.get(c["type"]) != (c["status"], c["reason"])]


def find(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for c in conditions or []:
        if c.get("type") == type_:
            return c
    return None
