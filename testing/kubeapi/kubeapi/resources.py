"""Resource types: the built-in ones and those served from registered CustomResourceDefinitions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import Cause, invalid, required_field
from .schema import CompiledSchema
from .typed import Type

__all__ = ["ResourceType", "ScaleSpec", "builtin_resources", "crd_resources", "validate_crd", "parse_json_path",
           "OBJECT_META_SCHEMA", "SCALE_SCHEMA"]

ALL_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
META_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


def parse_json_path(path: str) -> list[str]:
    """``.spec.replicas`` -> ``["spec", "replicas"]`` (the simple paths CRD scale subresources allow)."""
    return [p for p in path.strip().lstrip(".").split(".") if p]


# -- schemas for server-side apply (how the field manager types objects) ----------------------------------

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_ANY: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
_STR_MAP: dict[str, Any] = {"type": "object", "additionalProperties": _STR}


def _obj(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def _list_map(keys: list[str], items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": keys, "items": items}


# ObjectMeta as the field manager sees it: labels/annotations are granular maps, finalizers a set,
# ownerReferences a map list keyed by uid, managedFields atomic.
OBJECT_META_SCHEMA: dict[str, Any] = _obj(
    name=_STR, generateName=_STR, namespace=_STR, selfLink=_STR, uid=_STR, resourceVersion=_STR,
    generation=_INT, creationTimestamp=_STR, deletionTimestamp=_STR, deletionGracePeriodSeconds=_INT,
    labels=_STR_MAP, annotations=_STR_MAP,
    finalizers={"type": "array", "x-kubernetes-list-type": "set", "items": _STR},
    ownerReferences=_list_map(["uid"], _obj(apiVersion=_STR, kind=_STR, name=_STR, uid=_STR, controller=_BOOL,
                                            blockOwnerDeletion=_BOOL)),
    managedFields={"type": "array", "items": _ANY},
)


def _root(**properties: dict[str, Any]) -> dict[str, Any]:
    return _obj(apiVersion=_STR, kind=_STR, metadata=OBJECT_META_SCHEMA, **properties)


_CONDITIONS = _list_map(["type"], _obj(type=_STR, status=_STR, lastTransitionTime=_STR, reason=_STR, message=_STR))

SCALE_SCHEMA = _root(spec=_obj(replicas=_INT), status=_obj(replicas=_INT, selector=_STR))

_BUILTIN_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("", "namespaces"): _root(spec=_obj(finalizers={"type": "array", "items": _STR}),
                              status=_obj(phase=_STR, conditions=_CONDITIONS)),
    ("", "configmaps"): _root(data=_STR_MAP, binaryData=_STR_MAP, immutable=_BOOL),
    ("", "secrets"): _root(data=_STR_MAP, stringData=_STR_MAP, type=_STR, immutable=_BOOL),
    ("autoscaling", "horizontalpodautoscalers"): _root(
        spec=_obj(scaleTargetRef=_obj(apiVersion=_STR, kind=_STR, name=_STR), minReplicas=_INT, maxReplicas=_INT,
                  metrics={"type": "array", "items": _ANY}, behavior=_ANY),
        status=_obj(observedGeneration=_INT, lastScaleTime=_STR, currentReplicas=_INT, desiredReplicas=_INT,
                    currentMetrics={"type": "array", "items": _ANY}, conditions=_CONDITIONS)),
}


def _apply_schema(root: dict[str, Any]) -> dict[str, Any]:
    """A CRD's schema with the properties every object has (kube-apiserver adds them from ObjectMeta)."""
    props = dict(root.get("properties") or {})
    props.update(apiVersion=_STR, kind=_STR, metadata=OBJECT_META_SCHEMA)
    return {**root, "properties": props}


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
    apply_schema: dict[str, Any] | None = None   # the schema the field manager types objects with
    _apply_type: Type | None = field(default=None, init=False, repr=False)

    @property
    def apply_type(self) -> Type:
        if self._apply_type is None:
            self._apply_type = Type(self.apply_schema or _BUILTIN_SCHEMAS.get((self.group, self.plural)) or _root())
        return self._apply_type

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
        ResourceType("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True,
                     "horizontalpodautoscaler", ["hpa"], categories=["all"], status_subresource=True,
                     has_generation=True, printer_columns=_HPA_COLUMNS),
    ]


# The columns of `kubectl get hpa` that are plain JSONPaths (REFERENCE and TARGETS are computed by the real
# server's printer and are left out).
_HPA_COLUMNS = [
    {"name": "MinPods", "type": "integer", "jsonPath": ".spec.minReplicas"},
    {"name": "MaxPods", "type": "integer", "jsonPath": ".spec.maxReplicas"},
    {"name": "Replicas", "type": "integer", "jsonPath": ".status.currentReplicas"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
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
            apply_schema=_apply_schema(compiled[i].schema) if i in compiled else _root(),
        ))
    return out

