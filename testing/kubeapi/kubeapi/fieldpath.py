"""Field sets as structured-merge-diff keeps them (``sigs.k8s.io/structured-merge-diff/fieldpath``).

A path is a tuple of path elements, each already in the FieldsV1 spelling: ``f:name`` (a field),
``k:{"name":"http"}`` (an item of a map list, by its keys), ``v:"1"`` (an item of a set list) and
``i:0`` (an index). A :class:`FieldSet` holds *members* (owned paths) and *children* (sets under a path
element), like SMD's ``Set{Members, Children}``: a path may have children without being a member itself.

``to_fields_v1``/``from_fields_v1`` convert to and from the ``metadata.managedFields[].fieldsV1`` format,
where ``{}`` is a member leaf and ``".": {}`` marks a path that is a member and has children.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

__all__ = ["FieldSet", "Path", "field_pe", "key_pe", "value_pe", "path_string"]

Path = tuple[str, ...]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def field_pe(name: str) -> str:
    return f"f:{name}"


def key_pe(keys: dict[str, Any]) -> str:
    return f"k:{_json(keys)}"


def value_pe(value: Any) -> str:
    return f"v:{_json(value)}"


def _go_string(value: Any) -> str:
    """``value.ToString`` of SMD: strings quoted, numbers and booleans bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return _json(value)


def _pe_string(pe: str) -> str:
    kind, rest = pe[:2], pe[2:]
    if kind == "f:":
        return f".{rest}"
    if kind == "k:":
        keys = json.loads(rest)
        return "[" + ",".join(f"{k}={_go_string(v)}" for k, v in sorted(keys.items())) + "]"
    if kind == "v:":
        return f"[={_go_string(json.loads(rest))}]"
    return f"[{rest}]"


def path_string(path: Path) -> str:
    """``fieldpath.Path.String()``: ``.spec.rules[name="http"].port``, ``.spec.zones[="1"]``."""
    return "".join(_pe_string(pe) for pe in path)


def _order(pe: str) -> tuple[int, str]:
    return ({"f:": 0, "k:": 1, "v:": 2, "i:": 3}.get(pe[:2], 4), pe[2:])


class FieldSet:
    """An SMD ``fieldpath.Set``. Methods returning sets never mutate their inputs."""

    __slots__ = ("members", "children")

    def __init__(self, members: set[str] | None = None, children: dict[str, FieldSet] | None = None) -> None:
        self.members: set[str] = members if members is not None else set()
        self.children: dict[str, FieldSet] = children if children is not None else {}

    # -- building and reading ----------------------------------------------------------------------

    @classmethod
    def of(cls, *paths: Path) -> FieldSet:
        out = cls()
        for path in paths:
            out.insert(path)
        return out

    def insert(self, path: Path) -> None:
        if not path:
            return
        node = self
        for pe in path[:-1]:
            child = node.children.get(pe)
            if child is None:
                child = node.children[pe] = FieldSet()
            node = child
        node.members.add(path[-1])

    def has(self, path: Path) -> bool:
        if not path:
            return False
        node: FieldSet | None = self
        for pe in path[:-1]:
            node = node.children.get(pe) if node is not None else None
            if node is None:
                return False
        return node is not None and path[-1] in node.members

    def with_prefix(self, pe: str) -> FieldSet:
        return self.children.get(pe) or FieldSet()

    def empty(self) -> bool:
        return not self.members and all(c.empty() for c in self.children.values())

    def __bool__(self) -> bool:
        return not self.empty()

    def paths(self) -> Iterator[Path]:
        """Every member path: members of a node first, then its children (SMD's ``Iterate`` order)."""
        for pe in sorted(self.members, key=_order):
            yield (pe,)
        for pe in sorted(self.children, key=_order):
            for sub in self.children[pe].paths():
                yield (pe, *sub)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSet) and self.to_fields_v1() == other.to_fields_v1()

    def __repr__(self) -> str:
        return f"FieldSet({[path_string(p) for p in self.paths()]})"

    # -- algebra ---------------------------------------------------------------------------------------

    @staticmethod
    def _make(members: set[str], children: dict[str, FieldSet]) -> FieldSet:
        return FieldSet(members, {pe: c for pe, c in children.items() if not c.empty()})

    def union(self, other: FieldSet) -> FieldSet:
        children = dict(self.children)
        for pe, c in other.children.items():
            children[pe] = children[pe].union(c) if pe in children else c
        return self._make(self.members | other.members, children)

    def intersection(self, other: FieldSet) -> FieldSet:
        children = {pe: c.intersection(other.children[pe]) for pe, c in self.children.items()
                    if pe in other.children}
        return self._make(self.members & other.members, children)

    def difference(self, other: FieldSet) -> FieldSet:
        """Members of self not in other; a member of other does not remove self's children below it."""
        children = {pe: (c.difference(other.children[pe]) if pe in other.children else c)
                    for pe, c in self.children.items()}
        return self._make(self.members - other.members, children)

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """Like difference, but a member of other removes everything of self below it too."""
        children = {pe: (c.recursive_difference(other.children[pe]) if pe in other.children else c)
                    for pe, c in self.children.items() if pe not in other.members}
        return self._make(self.members - other.members, children)

    # -- FieldsV1 ------------------------------------------------------------------------------------

    def to_fields_v1(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for pe in sorted(self.members | set(self.children), key=_order):
            child = self.children.get(pe)
            sub = child.to_fields_v1() if child is not None else {}
            if sub and pe in self.members:
                sub = {".": {}, **sub}
            if sub or pe in self.members:
                out[pe] = sub
        return out

    @classmethod
    def from_fields_v1(cls, fields: Any) -> FieldSet:
        if not isinstance(fields, dict):
            raise ValueError("FieldsV1 must be a JSON object")
        out = cls()
        for pe, sub in fields.items():
            if pe == ".":
                continue
            if not isinstance(pe, str) or pe[:2] not in ("f:", "k:", "v:", "i:"):
                raise ValueError(f"unknown path element {pe!r}")
            if not isinstance(sub, dict):
                raise ValueError(f"the value of {pe!r} must be a JSON object")
            if not sub or "." in sub:
                out.members.add(pe)
            child = cls.from_fields_v1(sub)
            if not child.empty():
                out.children[pe] = child
        return out
