"""Label and field selectors, parsed like ``k8s.io/apimachinery/pkg/labels`` and ``.../fields``.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a`` (exists), ``!a`` (absent),
comma-separated (AND). Field selectors: ``path=value``, ``path==value``, ``path!=value`` over a per-resource
whitelist of fields (anything else is a 400, as kube-apiserver answers ``field label not supported``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

__all__ = ["LabelSelector", "FieldSelector", "parse_label_selector", "parse_field_selector", "field_value"]

_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        if self.op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        # "!=" and "notin" match objects without the label too.
        return self.key not in labels or labels[self.key] not in self.values


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if not self.requirements:
            return True
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise bad_request(f"unable to parse requirement: unbalanced parentheses in {text!r}")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if depth != 0:
        raise bad_request(f"unable to parse requirement: unbalanced parentheses in {text!r}")
    parts.append(current)
    return parts


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key) or len(key.split("/")[-1]) > 63:
        raise bad_request(f"unable to parse requirement: invalid label key {key!r}")
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise bad_request(f"unable to parse requirement: invalid label value: {value!r}")
    return value


_SET_RE = re.compile(r"^\s*(\S+)\s+(in|notin)\s*\((.*)\)\s*$")


def parse_label_selector(text: str | None) -> LabelSelector:
    if not text or not text.strip():
        return LabelSelector()
    requirements: list[Requirement] = []
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise bad_request(f"unable to parse requirement: found '', expected: identifier in {text!r}")
        if m := _SET_RE.match(part):
            key, op, values = m.group(1), m.group(2), m.group(3)
            vals = frozenset(_check_value(v.strip()) for v in values.split(",")) if values.strip() else frozenset()
            if op == "in" and not vals:
                raise bad_request("unable to parse requirement: for 'in' operator, values set can't be empty")
            requirements.append(Requirement(_check_key(key), op, vals))
        elif part.startswith("!") and "=" not in part:
            requirements.append(Requirement(_check_key(part[1:].strip()), "!"))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            requirements.append(Requirement(_check_key(key.strip()), "!=", frozenset([_check_value(value.strip())])))
        elif "==" in part:
            key, value = part.split("==", 1)
            requirements.append(Requirement(_check_key(key.strip()), "=", frozenset([_check_value(value.strip())])))
        elif "=" in part:
            key, value = part.split("=", 1)
            requirements.append(Requirement(_check_key(key.strip()), "=", frozenset([_check_value(value.strip())])))
        elif " " in part or "(" in part or ")" in part:
            raise bad_request(f"unable to parse requirement: {part!r}")
        else:
            requirements.append(Requirement(_check_key(part), "exists"))
    return LabelSelector(tuple(requirements))


def field_value(obj: Mapping[str, Any], path: str) -> str | None:
    """The string value of a dotted field path, as field selectors compare them (absent -> "")."""
    node: Any = obj
    for key in path.split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(key)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[str, bool, str], ...] = ()  # (path, equal?, value)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for path, equal, value in self.terms:
            if (field_value(obj, path) == value) != equal:
                return False
        return True

    @property
    def empty(self) -> bool:
        return not self.terms


def parse_field_selector(text: str | None, supported: Collection[str]) -> FieldSelector:
    if not text or not text.strip():
        return FieldSelector()
    terms: list[tuple[str, bool, str]] = []
    for raw in text.split(","):
        part = raw.strip()
        if "!=" in part:
            path, value = part.split("!=", 1)
            equal = False
        elif "==" in part:
            path, value = part.split("==", 1)
            equal = True
        elif "=" in part:
            path, value = part.split("=", 1)
            equal = True
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        path = path.strip()
        if path not in supported:
            raise bad_request(f'field label not supported: {path}')
        terms.append((path, equal, value.strip()))
    return FieldSelector(tuple(terms))


Matcher = Callable[[Mapping[str, Any]], bool]
