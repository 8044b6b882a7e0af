"""``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``: server-side printing from additionalPrinterColumns."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from .resources import ResourceType

__all__ = ["wants_table", "table", "json_path"]

_DEFAULT_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
                "description": "CreationTimestamp is a timestamp representing the server time when this object was created."}
_TOKEN_RE = re.compile(r"""\.([A-Za-z0-9_\-]+)|\[(\d+|\*)\]|\[\?\(@((?:\.[A-Za-z0-9_\-]+)+)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|([^)\]]+))\)\]""")


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def json_path(obj: Any, path: str) -> list[Any]:
    """The simple JSONPath subset used by printer columns: ``.a.b``, ``[0]``, ``[*]``, ``[?(@.k=="v")]``."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    nodes = [obj]
    pos = 0
    while pos < len(path):
        m = _TOKEN_RE.match(path, pos)
        if m is None:
            return []
        pos = m.end()
        nxt: list[Any] = []
        for node in nodes:
            if m.group(1) is not None:
                if isinstance(node, dict) and m.group(1) in node:
                    nxt.append(node[m.group(1)])
            elif m.group(2) is not None:
                if isinstance(node, list):
                    if m.group(2) == "*":
                        nxt.extend(node)
                    elif int(m.group(2)) < len(node):
                        nxt.append(node[int(m.group(2))])
            else:
                keys = [k for k in m.group(3).split(".") if k]
                expected = next(g for g in (m.group(5), m.group(6), m.group(7), "") if g is not None).strip()
                for item in node if isinstance(node, list) else []:
                    value: Any = item
                    for key in keys:
                        value = value.get(key) if isinstance(value, dict) else None
                    text = value if isinstance(value, str) else json.dumps(value)
                    if (text == expected) == (m.group(4) == "=="):
                        nxt.append(item)
        nodes = nxt
    return nodes


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``: 5s, 3m20s, 5h30m, 3d4h, 2y45d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(value: Any) -> str:
    try:
        when = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return human_duration((datetime.datetime.now(datetime.UTC) - when).total_seconds())


def _cell(value: Any, column: dict[str, Any]) -> Any:
    """``cellForJSONValue`` of the CRD table convertor: typed cells, dates as an age, strings printed."""
    if value is None:
        return None
    kind = column.get("type")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "integer":
        return int(value) if number else None
    if kind == "number":
        return value if number else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "date":
        return _age(value) if isinstance(value, str) else None
    if isinstance(value, str):
        return value
    return json.dumps(value) if not isinstance(value, bool) else ("true" if value else "false")


def table(rt: ResourceType, items: list[dict[str, Any]], resource_version: str,
          continue_token: str | None) -> dict[str, Any]:
    columns = list(rt.printer_columns) if rt.printer_columns else [_DEFAULT_AGE]
    definitions = [{"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}]
    for col in columns:
        definitions.append({"name": col["name"], "type": col.get("type", "string"), "format": col.get("format", ""),
                            "description": col.get("description", ""), "priority": int(col.get("priority", 0))})
    rows = []
    for obj in items:
        cells: list[Any] = [obj["metadata"]["name"]]
        for col in columns:
            found = json_path(obj, col["jsonPath"])
            cells.append(_cell(found[0] if found else None, col))
        rows.append({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                                "metadata": obj["metadata"]}})
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": definitions, "rows": rows}
