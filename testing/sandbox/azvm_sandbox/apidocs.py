"""Generate docs/api.md from the CRD schemas (`python -m azvm_sandbox.apidocs crds > docs/api.md`).

A test keeps docs/api.md equal to the output, so the reference never drifts from the CRDs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

from .crds import load_crds


def _type(node: dict[str, Any]) -> str:
    kind = node.get("type", "any")
    if kind == "array":
        return f"[]{_type(node.get('items') or {})}"
    if kind == "object" and "additionalProperties" in node:
        return f"map[string]{_type(node['additionalProperties'])}"
    return str(kind)


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    if "default" in node:
        parts.append(f"default `{json.dumps(node['default'])}`")
    for key in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "maxProperties"):
        if key in node:
            parts.append(f"{key} {node[key]}")
    if "pattern" in node:
        parts.append(f"pattern `{node['pattern']}`")
    for rule in node.get("x-kubernetes-validations") or []:
        parts.append(f"rule: {rule.get('message', rule['rule'])}")
    return "; ".join(parts)


def _rows(node: dict[str, Any], path: str, required: bool) -> Iterator[str]:
    description = " ".join(str(node.get("description", "")).split())
    if path:
        mark = " (required)" if required else ""
        constraints = _constraints(node)
        cell = (description + (f" ({constraints})" if constraints and description else constraints)).replace("|", "\\|")
        yield f"| `{path}`{mark} | {_type(node)} | {cell} |"
    required_children = set(node.get("required") or [])
    for name, child in (node.get("properties") or {}).items():
        yield from _rows(child, f"{path}.{name}" if path else name, name in required_children)
    items = node.get("items")
    if isinstance(items, dict) and items.get("properties"):
        for name, child in items["properties"].items():
            yield from _rows(child, f"{path}[].{name}", name in set(items.get("required") or []))


def render(crds_dir: str | Path) -> str:
    """The API reference of every CRD in ``crds_dir`` (the repository's crds/), as Markdown."""
    out = ["# API reference", "", "Generated from `crds/` by `python -m azvm_sandbox.apidocs crds`; do not edit.", ""]
    for crd in load_crds(crds_dir):
        names = crd["spec"]["names"]
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            out += [f"## {names['kind']} ({crd['spec']['group']}/{version['name']})", ""]
            if schema.get("description"):
                out += [schema["description"], ""]
            short = ", ".join(names.get("shortNames") or [])
            out += [f"Plural `{names['plural']}`" + (f", short names `{short}`" if short else "")
                    + f", scope {crd['spec']['scope']}.", ""]
            for section in ("spec", "status"):
                node = schema["properties"].get(section)
                if not node:
                    continue
                out += [f"### {section}", "", "| field | type | description |", "|---|---|---|"]
                out += list(_rows(node, "", False))
                rules = node.get("x-kubernetes-validations") or []
                if rules:
                    out += ["", "Rules on the whole " + section + ":", ""]
                    out += [f"- {r.get('message', r['rule'])}" for r in rules]
                out.append("")
            columns = version.get("additionalPrinterColumns") or []
            if columns:
                out += ["### kubectl get columns", "", ", ".join(c["name"] for c in columns), ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render(sys.argv[1] if len(sys.argv) > 1 else "crds"))
