"""Deletion safety for every kind (issue #12, ASO #2607 and #1273): a resource whose creation never reached Azure
deletes cleanly, without finalizer surgery, and leaves nothing behind; Orphan and Observe never delete in Azure.

Creation refused through the emulator's fault injection: Azure rejects the name (400 InvalidParameter on every PUT
of the resource itself, after the pieces made before it, such as a VM's NIC, public IP and NSG, exist); Azure accepts
the PUT and its operation ends Failed (InvalidParameter: the resource stays in Azure, provisioningState Failed); no
permission (403 AuthorizationFailed on every PUT and DELETE of the subscription, with the resource group there or not,
so the first write already fails and a delete could not succeed either). The VirtualMachine Orphan and Observe
cases are in test_virtualmachine_lifecycle.py (test_orphan_leaves_the_vm_in_azure,
test_observe_policy_never_writes_and_reports_drift, on a VM not tagged as its own) and the ScaleSet Orphan case in
test_scaleset.py; here each kind is first created and Ready as its own, then switched to Orphan or Observe."""

from __future__ import annotations

from typing import Any

import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from e2e_helpers import Cluster, vm_manifest, wait_for
from test_scaleset import scale_set_manifest

from azure_vm_operator.api.constants import (AVSET_PLURAL, GROUP, IMAGE_PLURAL, OWNER_TAG, SCALESET_PLURAL, VERSION,
                                             VM_PLURAL)

RG = "safe-rg"
SHARED = ("resourcegroups", "virtualnetworks", "subnets")  # shared infrastructure, never deleted by the operator

KINDS: dict[str, tuple[str, str]] = {  # kind: (plural, the ARM path segment of its Azure resource)
    "VirtualMachine": (VM_PLURAL, "virtualMachines"),
    "ScaleSet": (SCALESET_PLURAL, "virtualMachineScaleSets"),
    "Image": (IMAGE_PLURAL, "images"),
    "AvailabilitySet": (AVSET_PLURAL, "availabilitySets"),
}


def manifest(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    if kind == "VirtualMachine":
        return vm_manifest(name, resourceGroup=RG, network={"publicIP": True, "openPorts": [22]}, **spec)
    if kind == "ScaleSet":
        return scale_set_manifest(name, resourceGroup=RG, replicas=1, **spec)
    extra = ({"fromBlob": {"uri": "https://acct.blob.core.windows.net/vhds/os.vhd"}, "osType": "Linux",
              "hyperVGeneration": "V2"} if kind == "Image" else {})
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name, "namespace": "default"},
            "spec": {"location": "westeurope", "resourceGroup": RG, **extra, **spec}}


def inventory(env) -> set[str]:
    """Every Azure resource but the shared infrastructure (resource groups, the shared VNet and its subnets)."""
    return {r["id"].lower() for r in env.admin(lambda a: a.resources())
            if r["id"].lower().split("/")[-2] not in SHARED}


def deletes(env) -> list[dict[str, Any]]:
    return [r for r in env.arm_requests() if r["method"] == "DELETE"]


@pytest.mark.parametrize("kind, fault", [
    *[(kind, fault) for fault in ("InvalidParameter", "AuthorizationFailed", "AuthorizationFailed-no-group")
      for kind in KINDS],
    # the availability set's PUT is synchronous: no operation to fail
    *[(kind, "OperationFailed") for kind in ("VirtualMachine", "ScaleSet", "Image")],
])
def test_a_resource_whose_creation_never_reached_azure_deletes_cleanly(env, operator, kind, fault):
    plural, segment = KINDS[kind]
    objects = Cluster(env.kube_api_client(), plural)
    name = f"never-{kind.lower()}"
    failed_operation = False
    if fault.startswith("AuthorizationFailed"):  # no role at all: the first write fails, and so would any delete
        if fault == "AuthorizationFailed":  # else the first write is the resource group's
            env.azure_client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": "westeurope"})
        fault = "AuthorizationFailed"
        for method in ("PUT", "DELETE"):
            env.inject_fault(method=method, path="^/subscriptions/", status=403, error_code="AuthorizationFailed")
    elif fault == "InvalidParameter":  # Azure refuses the name: only the resource's own PUT fails
        env.inject_fault(method="PUT", path=f"(?i)/{segment}/{name}$", status=400, error_code="InvalidParameter")
    else:  # accepted, then its operation fails for good: the resource exists in Azure, provisioningState Failed
        env.inject_fault(method="PUT", path=f"(?i)/{segment}/{name}$", lro_failure={
            "code": "InvalidParameter", "message": "injected: the name is not valid"})
        fault, failed_operation = "InvalidParameter", True
    before = inventory(env)
    env.clear_arm_requests()
    objects.apply(manifest(kind, name))
    stalled = objects.wait_condition(name, "Stalled", timeout=30)
    assert stalled["reason"] == fault, stalled
    writes = [r for r in env.arm_requests() if r["method"] in ("PUT", "PATCH")]
    if fault == "AuthorizationFailed":
        assert writes and all(r["status"] == 403 for r in writes), writes
    own = [r for r in writes if r["path"].lower().endswith(f"/{segment.lower()}/{name}")]
    # accepted (201 Created; 200 if a retry found it created) then failed, or refused at once
    refused = {403} if fault == "AuthorizationFailed" else {200, 201} if failed_operation else {400}
    assert all(r["status"] in refused for r in own) and (own or fault == "AuthorizationFailed"), \
        [(r["method"], r["status"]) for r in own]
    if failed_operation:
        states = {r["id"].lower().rsplit("/", 1)[-1]: r.get("provisioningState")
                  for r in env.admin(lambda a: a.resources())}
        assert states[name] == "Failed", states
    if fault == "InvalidParameter" and kind == "VirtualMachine" and not failed_operation:
        assert len(inventory(env) - before) == 3, "its NIC, public IP and NSG were made before the VM was refused"

    objects.delete(name)
    wait_for(lambda: objects.get(name) is None, 30, what=f"{kind} {name} released (finalizer removed)")
    assert inventory(env) == before, "nothing made for it is left in Azure"
    if fault == "AuthorizationFailed":
        assert deletes(env) == [], "nothing existed, so nothing was deleted (and a delete would have failed)"


@pytest.mark.parametrize("kind, policy", [
    ("VirtualMachine", {"reconcilePolicy": "Observe"}),
    ("ScaleSet", {"reconcilePolicy": "Observe"}),
    ("Image", {"deletionPolicy": "Orphan"}),
    ("Image", {"reconcilePolicy": "Observe"}),
    ("AvailabilitySet", {"deletionPolicy": "Orphan"}),
    ("AvailabilitySet", {"reconcilePolicy": "Observe"}),
])
def test_orphan_and_observe_never_delete_what_is_its_own(env, operator, kind, policy):
    plural, segment = KINDS[kind]
    objects = Cluster(env.kube_api_client(), plural)
    name = f"kept-{kind.lower()}"
    objects.apply(manifest(kind, name))
    objects.wait_condition(name, "Ready", timeout=60)
    made = inventory(env)
    own_id = objects.get(name)["status"]["azureResourceId"]
    assert own_id.lower() in made
    objects.patch_spec(name, policy)
    objects.wait_condition(name, "Ready", timeout=30)  # seen at the new generation
    env.clear_arm_requests()
    objects.delete(name)
    wait_for(lambda: objects.get(name) is None, 30, what=f"{kind} {name} released")
    assert deletes(env) == [] and [r for r in env.arm_requests() if r["method"] != "GET"
                                   and r["path"].startswith("/subscriptions/")] == []
    assert inventory(env) == made, "everything it made is still in Azure"
    compute = env.azure_client(ComputeManagementClient)
    group = {"VirtualMachine": compute.virtual_machines, "ScaleSet": compute.virtual_machine_scale_sets,
             "Image": compute.images, "AvailabilitySet": compute.availability_sets}[kind]
    assert group.get(RG, name).tags[OWNER_TAG] == f"test-cluster/{kind}/default/{name}"


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_delete_azure_refuses_is_held_and_released_by_orphan(env, operator, kind):
    """The other side: the resource exists in Azure and its DELETE is refused (403). Releasing the custom resource
    would leave it in Azure unseen, so the deletion is held and says why; deletionPolicy Orphan releases it."""
    plural, segment = KINDS[kind]
    objects = Cluster(env.kube_api_client(), plural)
    name = f"held-{kind.lower()}"
    objects.apply(manifest(kind, name))
    objects.wait_condition(name, "Ready", timeout=60)
    made = inventory(env)
    env.inject_fault(method="DELETE", path="^/subscriptions/", status=403, error_code="AuthorizationFailed")
    objects.delete(name)
    wait_for(lambda: objects.condition(name, "Stalled").get("reason") == "AuthorizationFailed", 30,
             what="the refused delete reported")
    assert "deletionPolicy: Orphan" in objects.condition(name, "Stalled")["message"]
    assert objects.condition(name, "Ready")["reason"] == "AuthorizationFailed"
    assert objects.get(name)["metadata"].get("deletionTimestamp"), "held, not released"
    assert inventory(env) == made
    objects.patch_spec(name, {"deletionPolicy": "Orphan"})
    wait_for(lambda: objects.get(name) is None, 30, what=f"{kind} {name} released by deletionPolicy Orphan")
    assert inventory(env) == made


@pytest.mark.parametrize("kind", ["VirtualMachine", "ScaleSet", "Image"])  # an availability set DELETE: synchronous
def test_a_delete_operation_that_fails_for_good_is_reported_and_retried(env, operator, kind):
    """Azure accepts the DELETE and its operation ends Failed with a permanent code: the deletion is held, says so
    in the conditions, and is tried again; it completes once Azure lets it."""
    plural, segment = KINDS[kind]
    objects = Cluster(env.kube_api_client(), plural)
    name = f"stuck-{kind.lower()}"
    objects.apply(manifest(kind, name))
    objects.wait_condition(name, "Ready", timeout=60)
    before = inventory(env)
    env.inject_fault(method="DELETE", path=f"(?i)/{segment}/{name}$", count=1, lro_failure={
        "code": "LinkedAuthorizationFailed", "message": "injected: no permission on a linked resource"})
    objects.delete(name)
    wait_for(lambda: objects.condition(name, "Stalled").get("reason") == "LinkedAuthorizationFailed", 30,
             what="the failed delete reported")
    assert "deletionPolicy: Orphan" in objects.condition(name, "Stalled")["message"]
    wait_for(lambda: objects.get(name) is None, 60, what=f"{kind} {name} deleted on a later try")
    assert not [i for i in inventory(env) if i.endswith(f"/{segment.lower()}/{name}")]
    assert inventory(env) < before
