"""Schema-typed walks over objects, after structured-merge-diff's ``typed`` package.

A :class:`Type` wraps an OpenAPI v3 schema node the way kube-apiserver's type converter reads a CRD schema:

- an object with ``properties`` is a struct (its properties are *declared fields*); ``additionalProperties``
  gives the type of the other keys; ``x-kubernetes-map-type: atomic`` makes it a single value;
- an array is a list whose ``x-kubernetes-list-type`` is ``atomic`` (the default for CRDs), ``set`` (items are
  scalars, identified by value) or ``map`` (items identified by ``x-kubernetes-list-map-keys``);
- anything untyped (``x-kubernetes-preserve-unknown-fields``, no schema) is *deduced* from the value: objects
  are granular maps, lists are atomic, everything else is a scalar.

The walks are ``to_field_set`` (``TypedValue.ToFieldSet``), ``compare`` (``TypedValue.Compare``), ``merge``
(``TypedValue.Merge``, the apply merge), ``remove_items`` (``TypedValue.RemoveItems``) and
``ensure_named_fields_are_members`` (``Set.EnsureNamedFieldsAreMembers``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .fieldpath import FieldSet, Path, field_pe, key_pe, value_pe

__all__ = ["Type", "DEDUCED", "MISSING", "Comparison", "to_field_set", "compare", "merge", "remove_items",
           "ensure_named_fields_are_members", "drop_nulls"]

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()

SCALAR, MAP, LIST = "scalar", "map", "list"


class Type:
    """One node of a schema, with its children built lazily. ``Type(None)`` is the deduced type."""

    __slots__ = ("schema", "kind", "atomic", "nullable", "list_type", "keys", "_fields", "_elem", "_children")

    def __init__(self, schema: dict[str, Any] | None) -> None:
        self.schema = schema
        self._children: dict[str, Type] = {}
        self._fields: dict[str, Any] = {}
        self._elem: Any = None
        self.list_type = "atomic"
        self.keys: list[str] = []
        self.atomic = False
        self.nullable = bool(schema and schema.get("nullable"))
        if schema is None or schema.get("x-kubernetes-int-or-string"):
            self.kind = None if schema is None else SCALAR
            return
        type_ = schema.get("type")
        if type_ == "array":
            self.kind = LIST
            self.list_type = schema.get("x-kubernetes-list-type") or "atomic"
            self.keys = list(schema.get("x-kubernetes-list-map-keys") or [])
            self.atomic = self.list_type == "atomic"
            self._elem = schema.get("items") if isinstance(schema.get("items"), dict) else None
        elif type_ == "object" or "properties" in schema or isinstance(schema.get("additionalProperties"), dict):
            self.kind = MAP
            self._fields = schema.get("properties") or {}
            addl = schema.get("additionalProperties")
            self._elem = addl if isinstance(addl, dict) else None
            self.atomic = schema.get("x-kubernetes-map-type") == "atomic"
        elif type_ is None and schema.get("x-kubernetes-preserve-unknown-fields"):
            self.kind = None
        else:
            self.kind = SCALAR

    def shape(self, value: Any) -> str:
        """How a value is walked: by the schema, or by the value itself where the schema says nothing."""
        if self.kind is None:
            return MAP if isinstance(value, dict) else LIST if isinstance(value, list) else SCALAR
        if self.kind == MAP and not (value is None or value is MISSING or isinstance(value, dict)):
            return SCALAR
        if self.kind == LIST and not (value is None or value is MISSING or isinstance(value, list)):
            return SCALAR
        return self.kind

    def is_atomic(self, shape: str) -> bool:
        if self.kind is None:
            return shape == LIST  # deduced lists are atomic, deduced maps granular.
        return self.atomic

    def declared(self, key: str) -> bool:
        return key in self._fields

    def field(self, key: str) -> Type:
        child = self._children.get(key)
        if child is None:
            schema = self._fields.get(key, self._elem)
            child = self._children[key] = DEDUCED if schema is None else Type(schema)
        return child

    def item(self) -> Type:
        """The type of a list's items (cached under a key no property can have)."""
        return self.field("[]") if self.kind == LIST else DEDUCED

    def __repr__(self) -> str:
        return f"Type({self.kind}, atomic={self.atomic}, list_type={self.list_type})"


DEDUCED = Type(None)


def item_pe(t: Type, index: int, item: Any) -> str:
    """The path element of a list item: by keys (map lists), by value (sets), else by index."""
    if t.list_type == "map" and isinstance(item, dict) and t.keys:
        return key_pe({k: item[k] for k in t.keys if k in item})
    if t.list_type == "set" and not isinstance(item, (dict, list)):
        return value_pe(item)
    return f"i:{index}"


def _index(t: Type, items: Any) -> tuple[list[str], dict[str, Any]]:
    """Path elements in order (first occurrence wins) and the item of each."""
    order: list[str] = []
    seen: dict[str, Any] = {}
    for i, item in enumerate(items if isinstance(items, list) else ()):
        pe = item_pe(t, i, item)
        if pe not in seen:
            seen[pe] = item
            order.append(pe)
    return order, seen


def json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and bool(a == b)
    return bool(a == b)


# -- ToFieldSet ---------------------------------------------------------------------------------------

def to_field_set(value: Any, t: Type) -> FieldSet:
    out = FieldSet()
    _to_set(value, t, (), out)
    return out


def _to_set(v: Any, t: Type, path: Path, out: FieldSet) -> None:
    shape = t.shape(v)
    if shape == SCALAR:
        out.insert(path)
    elif shape == LIST:
        if t.is_atomic(shape):
            out.insert(path)
            return
        it = t.item()
        for i, item in enumerate(v or ()):
            sub = (*path, item_pe(t, i, item))
            _to_set(item, it, sub, out)
            out.insert(sub)
    else:
        if t.is_atomic(shape):
            out.insert(path)
            return
        for key, val in (v or {}).items():
            sub = (*path, field_pe(key))
            _to_set(val, t.field(key), sub, out)
            if not t.declared(key):
                out.insert(sub)


# -- Compare ------------------------------------------------------------------------------------------

@dataclass
class Comparison:
    added: FieldSet = field(default_factory=FieldSet)
    modified: FieldSet = field(default_factory=FieldSet)
    removed: FieldSet = field(default_factory=FieldSet)

    def exclude(self, ignored: FieldSet | None) -> Comparison:
        if ignored is None or ignored.empty():
            return self
        return Comparison(self.added.recursive_difference(ignored), self.modified.recursive_difference(ignored),
                          self.removed.recursive_difference(ignored))

    def changed(self) -> FieldSet:
        return self.modified.union(self.added)


def compare(lhs: Any, rhs: Any, t: Type) -> Comparison:
    out = Comparison()
    _compare(lhs, rhs, t, (), out)
    return out


def _leaf(lhs: Any, rhs: Any, path: Path, out: Comparison) -> None:
    if lhs is MISSING:
        out.added.insert(path)
    elif rhs is MISSING:
        out.removed.insert(path)
    elif not json_equal(lhs, rhs):
        out.modified.insert(path)


def _compare(lhs: Any, rhs: Any, t: Type, path: Path, out: Comparison) -> None:
    if type(lhs) is type(rhs) and lhs is not MISSING and lhs == rhs:
        return  # identical values have nothing to compare, however large.
    shape = t.shape(rhs if rhs is not MISSING else lhs)
    if shape == SCALAR or (lhs is not MISSING and rhs is not MISSING and t.shape(lhs) != t.shape(rhs)):
        _leaf(lhs, rhs, path, out)
        return
    container = list if shape == LIST else dict
    lv: Any = lhs if isinstance(lhs, container) else None
    rv: Any = rhs if isinstance(rhs, container) else None
    if t.is_atomic(shape) or (not lv and not rv):
        _leaf(lhs, rhs, path, out)
        return
    if shape == LIST:
        lorder, litems = _index(t, lv)
        rorder, ritems = _index(t, rv)
        it = t.item()
        for pe in lorder + [pe for pe in rorder if pe not in litems]:
            _compare(litems.get(pe, MISSING), ritems.get(pe, MISSING), it, (*path, pe), out)
    else:
        lmap, rmap = lv or {}, rv or {}
        for key in [*lmap, *(k for k in rmap if k not in lmap)]:
            _compare(lmap.get(key, MISSING), rmap.get(key, MISSING), t.field(key), (*path, field_pe(key)), out)
    if path:
        if lhs is MISSING:
            out.added.insert(path)
        elif rhs is MISSING:
            out.removed.insert(path)


# -- Merge (the applied configuration over the live object) -------------------------------------------

def merge(lhs: Any, rhs: Any, t: Type) -> Any:
    """Leaves and atomic values of rhs win; maps merge by key; associative lists merge by item identity."""
    result = _merge(lhs, rhs, t)
    return {} if result is MISSING else result


def _keep_rhs(lhs: Any, rhs: Any) -> Any:
    return rhs if rhs is not MISSING else lhs


def _merge(lhs: Any, rhs: Any, t: Type) -> Any:
    shape = t.shape(rhs if rhs is not MISSING else lhs)
    if shape == SCALAR or (lhs is not MISSING and rhs is not MISSING and t.shape(lhs) != t.shape(rhs)):
        return _keep_rhs(lhs, rhs)
    container = list if shape == LIST else dict
    lv: Any = lhs if isinstance(lhs, container) else None
    rv: Any = rhs if isinstance(rhs, container) else None
    if t.is_atomic(shape) or (not lv and not rv):
        return _keep_rhs(lhs, rhs)
    if shape == LIST:
        out = _merge_list(t, lv or [], rv or [])
    else:
        lmap, rmap = lv or {}, rv or {}
        out_map: dict[str, Any] = {}
        for key in [*lmap, *(k for k in rmap if k not in lmap)]:
            value = _merge(lmap.get(key, MISSING), rmap.get(key, MISSING), t.field(key))
            if value is not MISSING:
                out_map[key] = value
        return out_map if out_map else MISSING
    return out if out else MISSING


def _merge_list(t: Type, lhs: list[Any], rhs: list[Any]) -> list[Any]:
    """SMD's item order: the live order, with the applied items' relative order where they are shared."""
    rorder, ritems = _index(t, rhs)
    lorder, litems = _index(t, lhs)
    shared = [pe for pe in rorder if pe in litems]
    next_shared = shared.pop(0) if shared else None
    merged_rhs: set[str] = set()
    it = t.item()
    out: list[Any] = []

    def emit(pe: str) -> None:
        value = _merge(litems.get(pe, MISSING), ritems.get(pe, MISSING), it)
        if value is not MISSING:
            out.append(value)

    li = ri = 0
    while li < len(lorder) or ri < len(rorder):
        if li < len(lorder) and ri < len(rorder):
            pe = lorder[li]
            if pe == rorder[ri]:
                merged_rhs.add(pe)
                emit(pe)
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in ritems and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lorder):
            pe = lorder[li]
            if pe not in ritems:
                emit(pe)
                li += 1
                continue
            if pe in merged_rhs:
                li += 1
                continue
        if ri < len(rorder):
            pe = rorder[ri]
            merged_rhs.add(pe)
            emit(pe)
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


# -- RemoveItems --------------------------------------------------------------------------------------

def remove_items(value: Any, items: FieldSet, t: Type) -> Any:
    """Remove every member path of ``items`` from the value. Emptied maps and lists become null, as in SMD."""
    return _remove(value, items, t)


def _remove(v: Any, items: FieldSet, t: Type) -> Any:
    shape = t.shape(v)
    if shape == SCALAR:
        return v
    if not v or t.is_atomic(shape) or not isinstance(v, list if shape == LIST else dict):
        return None
    if isinstance(v, list):
        it = t.item()
        new_items = []
        for i, item in enumerate(v):
            pe = item_pe(t, i, item)
            if pe in items.members:
                continue
            sub = items.children.get(pe)
            new_items.append(_remove(item, sub, it) if sub is not None and not sub.empty() else item)
        return new_items or None
    new_map = {}
    for key, val in v.items():
        pe = field_pe(key)
        if pe in items.members:
            continue
        sub = items.children.get(pe)
        new_map[key] = _remove(val, sub, t.field(key)) if sub is not None and not sub.empty() else val
    return new_map or None


# -- EnsureNamedFieldsAreMembers ----------------------------------------------------------------------

def ensure_named_fields_are_members(s: FieldSet, t: Type) -> FieldSet:
    """Also own a struct field that only has owned children (``a.b.c`` owns ``a`` if ``a`` is a field)."""
    members = set(s.members)
    children: dict[str, FieldSet] = {}
    for pe, child in s.children.items():
        if pe.startswith("f:"):
            name = pe[2:]
            if t.kind == MAP and t.declared(name):
                members.add(pe)
            child_type = t.field(name) if t.kind in (MAP, None) else DEDUCED
        elif pe.startswith("k:"):
            child_type = t.item()
        else:
            child_type = DEDUCED
        children[pe] = ensure_named_fields_are_members(child, child_type)
    return FieldSet(members, children)


def drop_nulls(value: Any, t: Type) -> Any:
    """Drop the nulls that item removal left where a schema does not allow null (in place), as CR defaulting
    drops non-nullable nulls; untyped (deduced) parts are left alone."""
    if t.kind is None:
        return value
    if isinstance(value, dict) and t.kind == MAP:
        for key in list(value):
            ft = t.field(key)
            if value[key] is None and ft.schema is not None and not ft.nullable:
                del value[key]
            else:
                drop_nulls(value[key], ft)
    elif isinstance(value, list) and t.kind == LIST:
        it = t.item()
        for item in value:
            drop_nulls(item, it)
    return value
