"""Resource types: the built-in ones and those served from registered CustomResourceDefinitions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import Cause, invalid, required_field
from .schema import CompiledSchema

__all__ = ["ResourceType", "ScaleSpec", "builtin_resources", "crd_resources", "validate_crd", "parse_json_path"]

ALL_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
META_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


def parse_json_path(path: str) -> list[str]:
    """``.spec.replicas`` -> ``["spec", "replicas"]`` (the simple paths CRD scale subresources allow)."""
    return [p for p in path.strip().lstrip(".").split(".") if p]


@dataclass(frozen=True)
class ScaleSpec:
    spec_replicas: list[str]
    status_replicas: list[str]
    label_selector: list[str] | None


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    verbs: list[str] = field(default_factory=lambda: list(ALL_VERBS))
    custom: bool = False                     # a custom resource (served from a CRD)
    status_subresource: bool = False
    scale: ScaleSpec | None = None
    schema: CompiledSchema | None = None
    has_generation: bool = False             # metadata.generation is maintained (CRs, CRDs)
    unconditional_update: bool = True        # PUT without metadata.resourceVersion allowed (not for CRs)
    field_selectors: frozenset[str] = META_FIELDS
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    ready_at: float = 0.0                    # loop time before which requests get 429 (storage initializing)
    storage_version: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def gv(self) -> tuple[str, str]:
        return (self.group, self.version)


def builtin_resources() -> list[ResourceType]:
    event_fields = META_FIELDS | {
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
        "reason", "reportingComponent", "source", "type",
    }
    return [
        ResourceType("", "v1", "namespaces", "Namespace", False, "namespace", ["ns"],
                     verbs=["create", "delete", "get", "list", "patch", "update", "watch"],
                     field_selectors=META_FIELDS | {"status.phase"}),
        ResourceType("", "v1", "events", "Event", True, "event", ["ev"], field_selectors=event_fields),
        ResourceType("", "v1", "secrets", "Secret", True, "secret", [], field_selectors=META_FIELDS | {"type"}),
        ResourceType("", "v1", "configmaps", "ConfigMap", True, "configmap", ["cm"]),
        ResourceType("events.k8s.io", "v1", "events", "Event", True, "event", ["ev"],
                     field_selectors=META_FIELDS | {"regarding.kind", "regarding.name", "regarding.namespace",
                                                    "regarding.uid", "reason", "type", "reportingController"}),
        ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True, "lease", []),
        ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                     False, "customresourcedefinition", ["crd", "crds"], categories=["api-extensions"],
                     status_subresource=True, has_generation=True),
    ]


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def validate_crd(crd: dict[str, Any]) -> dict[int, CompiledSchema]:
    """Validate a CRD like kube-apiserver; return the compiled schema of each version or raise 422."""
    causes: list[Cause] = []
    name = (crd.get("metadata") or {}).get("name", "")
    spec = crd.get("spec") or {}
    group = spec.get("group") or ""
    names = spec.get("names") or {}
    plural = names.get("plural") or ""
    if not group:
        causes.append(required_field("spec.group"))
    elif not _DNS_SUBDOMAIN.match(group) or "." not in group:
        causes.append({"reason": "FieldValueInvalid", "field": "spec.group",
                       "message": f'Invalid value: "{group}": should be a domain with at least one dot'})
    if not plural:
        causes.append(required_field("spec.names.plural"))
    elif not _DNS_LABEL.match(plural):
        causes.append({"reason": "FieldValueInvalid", "field": "spec.names.plural",
                       "message": f'Invalid value: "{plural}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\''})
    if not names.get("kind"):
        causes.append(required_field("spec.names.kind"))
    if plural and group and name != f"{plural}.{group}":
        causes.append({"reason": "FieldValueInvalid", "field": "metadata.name",
                       "message": f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'})
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append({"reason": "FieldValueNotSupported", "field": "spec.scope",
                       "message": f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"'})
    versions = spec.get("versions") or []
    if not versions:
        causes.append(required_field("spec.versions", "must have exactly one version marked as storage version"))
    storage = [v for v in versions if v.get("storage")]
    if versions and len(storage) != 1:
        causes.append({"reason": "FieldValueInvalid", "field": "spec.versions",
                       "message": f"Invalid value: {len(storage)}: must have exactly one version marked as storage version"})
    compiled: dict[int, CompiledSchema] = {}
    for i, version in enumerate(versions):
        vpath = f"spec.versions[{i}]"
        if not version.get("name"):
            causes.append(required_field(f"{vpath}.name"))
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        spath = f"{vpath}.schema.openAPIV3Schema"
        if schema is None:
            causes.append(required_field(spath, "schemas are required"))
            continue
        cs = CompiledSchema(schema, spath)
        causes.extend(cs.errors)
        compiled[i] = cs
        scale = (version.get("subresources") or {}).get("scale")
        if scale is not None:
            if not str(scale.get("specReplicasPath", "")).startswith(".spec."):
                causes.append({"reason": "FieldValueInvalid", "field": f"{vpath}.subresources.scale.specReplicasPath",
                               "message": f'Invalid value: "{scale.get("specReplicasPath", "")}": should be a json path under .spec'})
            if not str(scale.get("statusReplicasPath", "")).startswith(".status."):
                causes.append({"reason": "FieldValueInvalid", "field": f"{vpath}.subresources.scale.statusReplicasPath",
                               "message": f'Invalid value: "{scale.get("statusReplicasPath", "")}": should be a json path under .status'})
    if causes:
        raise invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes)
    return compiled


def crd_resources(crd: dict[str, Any], compiled: dict[int, CompiledSchema]) -> list[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    out: list[ResourceType] = []
    for i, version in enumerate(spec["versions"]):
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        scale = subresources.get("scale")
        scale_spec = None
        if scale is not None:
            scale_spec = ScaleSpec(
                spec_replicas=parse_json_path(scale["specReplicasPath"]),
                status_replicas=parse_json_path(scale["statusReplicasPath"]),
                label_selector=parse_json_path(scale["labelSelectorPath"]) if scale.get("labelSelectorPath") else None,
            )
        out.append(ResourceType(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            kind=names["kind"],
            namespaced=spec["scope"] == "Namespaced",
            singular=names.get("singular") or names["kind"].lower(),
            short_names=list(names.get("shortNames") or []),
            categories=list(names.get("categories") or []),
            custom=True,
            status_subresource="status" in subresources,
            scale=scale_spec,
            schema=compiled.get(i),
            has_generation=True,
            unconditional_update=False,
            printer_columns=list(version.get("additionalPrinterColumns") or []),
            storage_version=bool(version.get("storage")),
        ))
    return out

