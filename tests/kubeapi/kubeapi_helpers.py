"""Helpers shared by the kubeapi tests (a sample CRD, objects, thread-offloaded client calls, waiting)."""

from __future__ import annotations

import asyncio
import copy
import functools
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

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

APPLY = "application/apply-patch+yaml"


def managed(obj: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """metadata.managedFields by (manager, operation, subresource)."""
    return {(e["manager"], e["operation"], e.get("subresource", "")): e
            for e in obj["metadata"].get("managedFields") or []}


def owners(obj: dict[str, Any], *path: str) -> list[tuple[str, str, str]]:
    """The entries whose fieldsV1 own the path, e.g. ``owners(obj, "f:spec", "f:replicas")``."""
    out = []
    for key, entry in managed(obj).items():
        node = entry["fieldsV1"]
        for pe in path[:-1]:
            node = node.get(pe, {})
        leaf = node.get(path[-1])
        if leaf is not None and (leaf == {} or "." in leaf):
            out.append(key)
    return sorted(out)


# -- the ScaleSet CRD from crds/ and manifests for it ------------------------------------------------------

CRDS = Path(__file__).resolve().parents[2] / "crds"
SS_GROUP, SS_VERSION, SS_PLURAL = "compute.azvm.io", "v1alpha1", "scalesets"
SS_API_VERSION = f"{SS_GROUP}/{SS_VERSION}"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVxUo3ZP3wv0vY3W4nKJt2f5Q0mPp0m2v7O1l8h4aDm x@y"


def scaleset_crd() -> dict[str, Any]:
    """The repository's ScaleSet CRD, loaded as the other tests load CRDs (azvm_sandbox.crds)."""
    from azvm_sandbox.crds import load_crds

    return next(c for c in load_crds(CRDS) if c["spec"]["names"]["kind"] == "ScaleSet")


def scaleset(name: str = "web", **spec: Any) -> dict[str, Any]:
    """A GitOps-style ScaleSet manifest; no ``replicas`` unless given."""
    return {
        "apiVersion": SS_API_VERSION, "kind": "ScaleSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "location": "westeurope", "resourceGroup": "rg-web", "size": "Standard_B2s",
            "image": {"marketplace": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}},
            "adminUsername": "azureuser", "sshPublicKeys": [SSH_KEY], **spec,
        },
    }


# -- the real kubectl ---------------------------------------------------------------------------------------

KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl")
requires_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed: `make install` installs it with apt-get (package kubectl, "
                            "from the Kubernetes apt repository; see docs/kubeapi.md), or set KUBECTL=/path/to/kubectl")


class Kubectl:
    """Runs the real kubectl against the test server, without blocking the event loop that serves it.

    ``--validate=false`` is passed to apply: the server publishes no OpenAPI documents, which kubectl's default
    client-side validation downloads (see docs/kubeapi.md).
    """

    def __init__(self, kubeconfig: str, cache_dir: str) -> None:
        self.base = [str(KUBECTL), f"--kubeconfig={kubeconfig}", f"--cache-dir={cache_dir}"]

    async def __call__(self, *args: str, stdin: Any = None, check: bool = True) -> tuple[int, str, str]:
        if stdin is not None and not isinstance(stdin, (str, bytes)):
            stdin = yaml.safe_dump(stdin, sort_keys=False)
        proc = await asyncio.create_subprocess_exec(
            *self.base, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "KUBECONFIG": ""})
        data = stdin.encode() if isinstance(stdin, str) else stdin
        out, err = await asyncio.wait_for(proc.communicate(data), 60)
        rc = proc.returncode or 0
        if check and rc != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({rc}): {err.decode()}")
        return rc, out.decode(), err.decode()

    async def apply(self, manifest: dict[str, Any], *args: str, check: bool = True) -> tuple[int, str, str]:
        return await self("apply", "--validate=false", "-f", "-", *args, stdin=manifest, check=check)

    async def get(self, *args: str) -> dict[str, Any]:
        _, out, _ = await self("get", *args, "-o", "yaml", "--show-managed-fields")
        return yaml.safe_load(out)
