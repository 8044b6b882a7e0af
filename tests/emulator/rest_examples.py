"""The official Azure REST API examples (``tests/emulator/rest-examples``): where they are, loading, and their shape.

The examples are part of the repository (copied unchanged from github.com/Azure/azure-rest-api-specs, MIT; see the
folder's README and LICENSE), so a fresh clone has them. A missing folder FAILS the tests that need it; it never
skips them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent / "rest-examples"


def examples_dir() -> Path:
    """The examples folder; fails the calling test with a clear message when it is missing."""
    if not EXAMPLES_DIR.is_dir():
        pytest.fail(f"Azure REST examples not found at {EXAMPLES_DIR} (they belong to the repository)", pytrace=False)
    return EXAMPLES_DIR


def example_files() -> list[str]:
    """Every example below the folder, as sorted relative POSIX paths (empty when the folder is missing)."""
    folder = EXAMPLES_DIR
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json")) if folder.is_dir() else []


def load_example(relative: str) -> dict[str, Any]:
    return json.loads((examples_dir() / relative).read_text())


def key_paths(document: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON document (``a.b``, list elements as ``[]``: ``a.[].b``)."""
    found: set[str] = set()
    if isinstance(document, dict):
        for key, value in document.items():
            found.add(prefix + key)
            found |= key_paths(value, prefix + key + ".")
    elif isinstance(document, list):
        for item in document:
            found |= key_paths(item, prefix + "[].")
    return found


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def shape(document: Any, prefix: str = "") -> dict[str, set[str]]:
    """Key path -> JSON types found there; list elements are merged (``a[].b``), the root is ``""``."""
    found: dict[str, set[str]] = {prefix: {json_type(document)}}

    def merge(more: dict[str, set[str]]) -> None:
        for path, types in more.items():
            found.setdefault(path, set()).update(types)

    if isinstance(document, dict):
        for key, value in document.items():
            merge(shape(value, f"{prefix}.{key}" if prefix else key))
    elif isinstance(document, list):
        for item in document:
            merge(shape(item, prefix + "[]"))
    return found


def structure_mismatches(expected: Any, actual: Any, allowed: dict[str, str] | None = None) -> list[str]:
    """What ``actual`` lacks of ``expected``'s structure: every key path of ``expected`` must exist in ``actual``
    with the same JSON type (``null`` in ``expected`` matches any type or absence). A path in ``allowed``, or below
    one, is not checked."""
    allowed = allowed or {}
    got = shape(actual)
    problems = []
    for path, types in sorted(shape(expected).items()):
        if any(path == a or path.startswith(a + ".") or path.startswith(a + "[]") for a in allowed):
            continue
        wanted = types - {"null"}
        if path not in got:
            if wanted:  # a key the example shows only as null may be left out (ARM's usual way of "no value")
                problems.append(f"missing {path or '<root>'}")
            continue
        if wanted and not wanted <= got[path]:
            problems.append(f"type of {path or '<root>'}: example {sorted(wanted)}, emulator {sorted(got[path])}")
    return problems
