"""Small helpers shared by the emulator modules."""

from __future__ import annotations

import copy
import time
import uuid
from datetime import datetime, timezone
from typing import Any


def now() -> float:
    """Wall-clock seconds; operations are timed by wall clock so they survive restarts."""
    return time.time()


def iso(ts: float) -> str:
    """ARM timestamp format, e.g. ``2021-06-27T01:02:38.313846+00:00``."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def normalize_location(location: str) -> str:
    """ARM answers ``westus`` for ``West US``."""
    return location.replace(" ", "").lower()


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``patch`` merged in: dicts merge recursively, other values (lists too) replace."""
    merged = copy.deepcopy(base)
    for k, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(k), dict):
            merged[k] = deep_merge(merged[k], value)
        else:
            merged[k] = copy.deepcopy(value)
    return merged


def get_path(document: Any, *path: str) -> Any:
    """``document[path[0]][path[1]]...`` or None when any step is missing."""
    current = document
    for step in path:
        if not isinstance(current, dict):
            return None
        current = current.get(step)
    return current

