"""Helpers shared by the kubeapi tests (a sample CRD, objects, thread-offloaded client calls, waiting)."""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

GROUP = "test.kubeapi.io"
VERSION = "v1"
PLURAL = "widgets"
KIND = "Widget"

WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["location"],
            "x-kubernetes-validations": [
                {"rule": "!has(self.maxSize) || self.size <= self.maxSize",
                 "message": "size must not exceed maxSize", "fieldPath": ".size"},
            ],
            "properties": {
                "location": {"type": "string", "minLength": 1},
                "size": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
                "maxSize": {"type": "integer"},
                "replicas": {"type": "integer", "minimum": 0},
                "tier": {"type": "string", "enum": ["basic", "premium"], "default": "basic"},
                "immutableName": {
                    "type": "string",
                    "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutableName is immutable"}],
                },
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                "port": {"x-kubernetes-int-or-string": True},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "disks": {
                    "type": "array",
                    "items": {"type": "object", "required": ["name"],
                              "properties": {"name": {"type": "string"},
                                             "sizeGB": {"type": "integer", "default": 30}}},
                },
            },
        },
        "status": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "replicas": {"type": "integer"},
                "selector": {"type": "string"},
                "phase": {"type": "string"},
                "conditions": {"type": "array", "items": {
                    "type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}},
            },
        },
    },
}


def make_crd(*, group: str = GROUP, plural: str = PLURAL, kind: str = KIND, scope: str = "Namespaced",
             schema: dict[str, Any] | None = None, status: bool = True, scale: bool = True,
             versions: list[str] | None = None) -> dict[str, Any]:
    subresources: dict[str, Any] = {}
    if status:
        subresources["status"] = {}
    if scale:
        subresources["scale"] = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                                 "labelSelectorPath": ".status.selector"}
    names = versions or [VERSION]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "shortNames": ["wd"],
                      "categories": ["all"]},
            "versions": [{
                "name": name, "served": True, "storage": i == 0,
                "schema": {"openAPIV3Schema": copy.deepcopy(schema or WIDGET_SCHEMA)},
                "subresources": subresources,
                "additionalPrinterColumns": [
                    {"name": "Location", "type": "string", "jsonPath": ".spec.location"},
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                ],
            } for i, name in enumerate(names)],
        },
    }


def widget(name: str | None = "w1", *, location: str = "westeurope", **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name} if name else {"generateName": "w-"}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": meta,
            "spec": {"location": location, **spec}}


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking `kubernetes` client call off the event loop that serves it."""
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


async def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll a condition with a deadline (no sleep-and-hope)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        await asyncio.sleep(interval)



WIDGETS = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"
