"""Discovery documents: /version, /api, /api/v1, /apis, /apis/{group}, /apis/{group}/{version}."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .resources import ResourceType

__all__ = ["version_info", "core_versions", "group_list", "api_group", "resource_list", "version_sort_key"]

KUBE_MAJOR, KUBE_MINOR = "1", "33"


def version_info() -> dict[str, Any]:
    return {
        "major": KUBE_MAJOR, "minor": KUBE_MINOR, "gitVersion": f"v{KUBE_MAJOR}.{KUBE_MINOR}.0+kubeapi",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64",
    }


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_sort_key(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version priority: GA > beta > alpha, higher numbers first; non-kube names last (sorted)."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)


def core_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_versions(group: str, resources: Iterable[ResourceType]) -> list[str]:
    versions = {rt.version for rt in resources if rt.group == group}
    return sorted(versions, key=version_sort_key)


def api_group(group: str, resources: Iterable[ResourceType]) -> dict[str, Any] | None:
    versions = _group_versions(group, resources)
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
            "preferredVersion": entries[0]}


def group_list(resources: Iterable[ResourceType]) -> dict[str, Any]:
    resources = list(resources)
    groups = sorted({rt.group for rt in resources if rt.group})
    out = [g for g in (api_group(group, resources) for group in groups) if g is not None]
    for g in out:
        g.pop("kind")
        g.pop("apiVersion")
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}


def resource_list(group: str, version: str, resources: Iterable[ResourceType]) -> dict[str, Any] | None:
    gv = f"{group}/{version}" if group else version
    entries: list[dict[str, Any]] = []
    found = False
    for rt in sorted(resources, key=lambda r: r.plural):
        if rt.group != group or rt.version != version:
            continue
        found = True
        entry: dict[str, Any] = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                                 "kind": rt.kind, "verbs": list(rt.verbs)}
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        entries.append(entry)
        if rt.status_subresource:
            entries.append({"name": f"{rt.plural}/status", "singularName": "", "namespaced": rt.namespaced,
                            "kind": rt.kind, "verbs": ["get", "patch", "update"]})
        if rt.scale is not None:
            entries.append({"name": f"{rt.plural}/scale", "singularName": "", "namespaced": rt.namespaced,
                            "group": "autoscaling", "version": "v1", "kind": "Scale",
                            "verbs": ["get", "patch", "update"]})
    if not found:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}
