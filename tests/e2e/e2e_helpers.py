"""Helpers of the end-to-end tests: waiting on conditions, manifests, kubectl-like calls."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import kubernetes.client

from azure_vm_operator.api.constants import GROUP, VERSION, VM_PLURAL

T = TypeVar("T")

CRDS = Path(__file__).resolve().parents[2] / "crds"  # the repository's CRDs, served by the test Kubernetes API

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVxUo3ZP3wv0vY3W4nKJt2f5Q0mPp0m2v7O1l8h4aDm test@example"


def wait_for(predicate: Callable[[], T], timeout: float = 30, interval: float = 0.1, what: str = "condition") -> T:
    """Poll until predicate() returns something truthy; fail with the last value after the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def vm_manifest(name: str, namespace: str = "default", **spec_changes: Any) -> dict[str, Any]:
    spec = {
        "location": "westeurope",
        "resourceGroup": "e2e-rg",
        "size": "Standard_B2s",
        "image": {"marketplace": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                  "sku": "22_04-lts-gen2"}},
        "adminUsername": "azureuser",
        "sshPublicKeys": [SSH_KEY],
        "tags": {"team": "platform"},
    }
    spec.update(copy.deepcopy(spec_changes))
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


class Cluster:
    """What a user holds: kubectl-like calls through the kubernetes client."""

    def __init__(self, api_client: Any, plural: str = VM_PLURAL) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.plural = plural

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, meta.get("namespace", "default"),
                                                           self.plural, manifest)

    def get(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, self.plural, name)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_spec(self, name: str, spec: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, self.plural, name, {"spec": spec})

    def annotate(self, name: str, annotations: dict[str, str], namespace: str = "default") -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, self.plural, name,
                                                   {"metadata": {"annotations": annotations}})

    def delete(self, name: str, namespace: str = "default") -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, self.plural, name)

    def condition(self, name: str, type_: str, namespace: str = "default") -> dict[str, Any]:
        obj = self.get(name, namespace) or {}
        for c in (obj.get("status") or {}).get("conditions") or []:
            if c["type"] == type_:
                return c
        return {}

    def wait_condition(self, name: str, type_: str, status: str = "True", timeout: float = 30,
                       namespace: str = "default") -> dict[str, Any]:
        """Wait until the condition has the status for the object's current generation (never a stale one)."""

        def current() -> dict[str, Any] | None:
            obj = self.get(name, namespace) or {}
            for c in (obj.get("status") or {}).get("conditions") or []:
                if (c["type"] == type_ and c["status"] == status
                        and c.get("observedGeneration") == obj["metadata"].get("generation")):
                    return c
            return None

        return wait_for(current, timeout, what=f"{type_}={status} on {namespace}/{name}")

    def events(self, name: str, namespace: str = "default") -> list[Any]:
        return [e for e in self.core.list_namespaced_event(namespace).items
                if e.involved_object and e.involved_object.name == name]


def create_azure_vm(env: Any, name: str, resource_group: str = "e2e-rg", tags: dict[str, str] | None = None,
                    size: str = "Standard_B2s") -> dict[str, Any]:
    """A VM made directly through the Azure SDK, the way a VM made outside Kubernetes exists (brownfield)."""
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    resources = env.azure_client(ResourceManagementClient)
    network = env.azure_client(NetworkManagementClient)
    compute = env.azure_client(ComputeManagementClient)
    resources.resource_groups.create_or_update(resource_group, {"location": "westeurope"})
    vnet = network.virtual_networks.begin_create_or_update(resource_group, "brownfield-vnet", {
        "location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.50.0.0/16"]},
                                                 "subnets": [{"name": "s", "properties": {"addressPrefix": "10.50.0.0/24"}}]},
    }).result().as_dict()
    nic = network.network_interfaces.begin_create_or_update(resource_group, f"{name}-byhand-nic", {
        "location": "westeurope", "properties": {"ipConfigurations": [{"name": "c", "properties": {
            "subnet": {"id": vnet["properties"]["subnets"][0]["id"]}}}]},
    }).result().as_dict()
    return compute.virtual_machines.begin_create_or_update(resource_group, name, {
        "location": "westeurope", "tags": tags or {},
        "properties": {
            "hardwareProfile": {"vmSize": size},
            "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                                  "sku": "22_04-lts-gen2", "version": "latest"}},
            "osProfile": {"computerName": name, "adminUsername": "azureuser", "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": SSH_KEY}]}}},
            "networkProfile": {"networkInterfaces": [{"id": nic["id"]}]},
        },
    }).result().as_dict()


def arm_calls(env: Any, name: str, methods: tuple[str, ...] = ("PUT", "PATCH", "POST", "DELETE")) -> list[dict]:
    """Requests the emulator logged for one VM (its path or its actions), by method."""
    suffix = f"/virtualmachines/{name.lower()}"
    return [r for r in env.arm_requests() if r["method"] in methods
            and (r["path"].lower().endswith(suffix) or f"{suffix}/" in r["path"].lower())]
