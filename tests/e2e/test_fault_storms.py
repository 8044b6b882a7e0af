"""Fault storms (issue #12): the operator (Kopf) against the Azure emulator and the test Kubernetes API while one
kind of fault goes on. For each fault: the resource it hits converges once it ends, the resources it does not hit
keep being served during it, and the operator stays bounded while it lasts (requests sent, ERROR log records).

Already covered elsewhere, not repeated here: a single 429 burst on one VM (test_virtualmachine.py
test_throttling_burst_ends_ready), a VM's transient LRO failure and a 403 (same file), transient and permanent LRO
failures in the reconcile frame (test_frame.py), client-side throttling (test_throttle_client.py), the emulator's
fault rules themselves (tests/emulator/test_faults.py), a failed rollout batch (test_scaleset.py), the emulator
killed (tests/chaos/test_emulator_kill.py).

Fault windows are a few seconds; every wait is on a condition with a deadline."""

from __future__ import annotations

import logging
import time
from typing import Any

import kubernetes.client
import pytest
from azure.mgmt.compute import ComputeManagementClient
from e2e_helpers import SSH_KEY, Cluster, vm_manifest, wait_for

from azure_vm_operator.api.constants import GROUP, SCALESET_PLURAL, VERSION
from azvm_sandbox.harness import SUBSCRIPTION_ID

OTHER_SUBSCRIPTION = "00000000-0000-0000-0000-0000000000f2"


@pytest.fixture
def sets(env) -> Cluster:
    return Cluster(env.kube_api_client(), SCALESET_PLURAL)


def scale_set_manifest(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location": "westeurope", "resourceGroup": "storm-ss-rg", "size": "Standard_B2s",
        "image": {"marketplace": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                  "sku": "22_04-lts-gen2"}},
        "adminUsername": "azureuser", "sshPublicKeys": [SSH_KEY], "replicas": 1,
    }
    body.update(spec)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ScaleSet", "metadata": {"name": name, "namespace": "default"},
            "spec": body}


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def arm_requests(env, path_contains: str = "", since: int = 0) -> list[dict[str, Any]]:
    return [r for r in env.arm_requests() if r["seq"] > since and path_contains.lower() in r["path"].lower()]


def last_seq(env) -> int:
    return max((r["seq"] for r in env.arm_requests()), default=0)


def ready_reason(cluster: Cluster, name: str) -> str | None:
    ready = cluster.condition(name, "Ready")
    return ready.get("reason") if ready.get("status") == "False" else None


def wait_until(seconds: float) -> None:
    """The end of a fault window (a deadline, checked by wait_for, never a bare sleep of the test's own)."""
    end = time.monotonic() + seconds
    wait_for(lambda: time.monotonic() >= end, seconds + 5, interval=0.2, what="the fault window to end")


# ---- Azure Resource Manager faults ---------------------------------------------------------------------------


def test_a_429_storm_on_one_subscription_is_waited_out_without_amplification(env, operator, cluster, caplog):
    """ARM throttles the whole subscription (every request: 429, Retry-After 2) for 6 s. A VM in another
    subscription, created during the storm, becomes Ready. The operator sends few requests into the storm (its
    client-side throttle blocks on Retry-After and its circuit breaker opens), logs no ERROR flood, and the
    throttled VM is Ready soon after the storm ends."""
    caplog.set_level(logging.WARNING)
    storm = env.inject_fault(path=f"^/subscriptions/{SUBSCRIPTION_ID}/", status=429, retry_after=2,
                             error_code="SubscriptionRequestsThrottled")
    started, seq = time.monotonic(), last_seq(env)
    cluster.apply(vm_manifest("stormy", resourceGroup="storm-rg"))
    cluster.apply(vm_manifest("calm", resourceGroup="storm-rg", subscriptionId=OTHER_SUBSCRIPTION))
    cluster.wait_condition("calm", "Ready", timeout=30)  # served during the storm
    wait_until(6 - (time.monotonic() - started))
    env.admin(lambda a: a.remove_fault(storm))
    during = arm_requests(env, f"/subscriptions/{SUBSCRIPTION_ID}/", since=seq)
    throttled = [r for r in during if r["status"] == 429]
    cluster.wait_condition("stormy", "Ready", timeout=30)
    recovered = time.monotonic() - started
    # 6 s of storm, Retry-After 2: a client that honours it sends a handful of requests (the SDK's own 3 retries
    # of the first call, the breaker's half-open probes); one that hammered would send hundreds.
    assert 1 <= len(throttled) <= 12, [(r["method"], r["path"]) for r in throttled]
    assert recovered < 6 + 15, recovered
    assert len(errors(caplog)) <= 3, [r.getMessage() for r in errors(caplog)]


def test_a_5xx_burst_on_one_resource_type_is_retried_while_other_kinds_are_served(env, operator, cluster, sets,
                                                                                   caplog):
    """The next 12 requests for network interfaces answer 503. The VM that needs one is Ready after the burst;
    a ScaleSet created at the same time (it has no NIC resource) is served meanwhile."""
    caplog.set_level(logging.WARNING)
    burst = env.inject_fault(path="(?i)/providers/Microsoft.Network/networkInterfaces", status=503, count=12,
                             error_code="ServiceUnavailable")
    cluster.apply(vm_manifest("bursty", resourceGroup="burst-rg"))
    sets.apply(scale_set_manifest("unaffected"))
    sets.wait_condition("unaffected", "Ready", timeout=60)
    cluster.wait_condition("bursty", "Ready", timeout=60)
    rule = next(f for f in env.admin(lambda a: a.faults()) if f["id"] == burst)
    assert rule["hits"] == 12 and rule["remaining"] == 0
    assert len(errors(caplog)) <= 3, [r.getMessage() for r in errors(caplog)]


def test_dropped_connections_are_retried_and_others_are_served(env, operator, cluster, caplog):
    """Every connection for one VM is dropped without an answer for a few seconds. The operator reports
    ConnectionError (Ready=False), keeps serving another VM, and converges once connections work again."""
    caplog.set_level(logging.WARNING)
    drop = env.inject_fault(path="(?i)/virtualMachines/unreachable", drop=True)
    seq = last_seq(env)
    cluster.apply(vm_manifest("unreachable", resourceGroup="drop-rg"))
    cluster.apply(vm_manifest("reachable", resourceGroup="drop-rg"))
    cluster.wait_condition("reachable", "Ready", timeout=30)
    wait_for(lambda: ready_reason(cluster, "unreachable") == "ConnectionError", 30,
             what="unreachable reporting ConnectionError")
    env.admin(lambda a: a.remove_fault(drop))
    dropped = [r for r in arm_requests(env, "/virtualMachines/unreachable", since=seq) if r["status"] is None]
    cluster.wait_condition("unreachable", "Ready", timeout=30)
    assert dropped and len(dropped) <= 20, len(dropped)
    assert [vm.name for vm in env.azure_client(ComputeManagementClient).virtual_machines.list("drop-rg")].count(
        "unreachable") == 1
    assert len(errors(caplog)) <= 3, [r.getMessage() for r in errors(caplog)]


def test_scale_set_operations_failing_transiently_are_retried_and_permanently_stall(env, operator, sets):
    """The ScaleSet half of LRO failures (VMs: test_virtualmachine.py; the frame: test_frame.py): a create whose
    operation ends Failed with AllocationFailed is PUT again, its Failed instance reimaged, and it becomes Ready; one that ends with
    InvalidParameter is Stalled with that reason and is not retried in a loop."""
    env.inject_fault(method="PUT", path="(?i)virtualMachineScaleSets/unlucky$", count=1,
                     lro_failure={"code": "AllocationFailed", "message": "Allocation failed. Please try again."})
    env.inject_fault(method="PUT", path="(?i)virtualMachineScaleSets/doomed$", count=1,
                     lro_failure={"code": "InvalidParameter", "message": "the image does not fit this size"})
    sets.apply(scale_set_manifest("unlucky"))
    sets.apply(scale_set_manifest("doomed"))
    sets.wait_condition("unlucky", "Ready", timeout=60)
    assert [e for e in sets.events("unlucky") if e.reason == "AllocationFailed" and e.type == "Warning"]
    stalled = sets.wait_condition("doomed", "Stalled", timeout=60)
    assert stalled["reason"] == "InvalidParameter" and "does not fit" in stalled["message"]
    assert sets.condition("doomed", "Ready")["status"] == "False"
    puts = [r for r in env.arm_requests() if r["method"] == "PUT"
            and r["path"].lower().endswith("/virtualmachinescalesets/unlucky")]
    assert len(puts) == 2, puts  # recovered by PUTting the model again
    # ... and by reimaging the instance the failed create left Failed (the PUT does not touch it)
    assert [r for r in env.arm_requests() if r["method"] == "POST"
            and r["path"].lower().endswith("/virtualmachinescalesets/unlucky/reimage")]
    assert [e for e in sets.events("unlucky") if e.reason == "InstancesRepaired"]
    doomed_puts = lambda: [r for r in env.arm_requests() if r["method"] == "PUT"  # noqa: E731
                           and r["path"].lower().endswith("/virtualmachinescalesets/doomed")]
    assert len(doomed_puts()) == 1


def test_a_token_endpoint_outage_is_reported_as_authentication_failed_and_recovers(env, operator, cluster):
    """The token endpoint of one tenant answers 503 (an Entra ID outage for the service principal that a
    credentials Secret names). Its VM is Ready=False with reason AuthenticationFailed; a VM on the operator's
    own credential is Ready meanwhile; once tokens are issued again the first VM is Ready."""
    cluster.core.create_namespaced_secret("default", kubernetes.client.V1Secret(
        metadata=kubernetes.client.V1ObjectMeta(name="storm-sp"),
        string_data={"tenantId": "storm-tenant", "clientId": "storm-client", "clientSecret": "s3cret-value"}))
    outage = env.inject_fault(path="(?i)^/storm-tenant/oauth2", status=503, error_code="temporarily_unavailable")
    cluster.apply(vm_manifest("locked", resourceGroup="token-rg", credentialsSecretRef={"name": "storm-sp"}))
    cluster.apply(vm_manifest("open", resourceGroup="token-rg"))
    cluster.wait_condition("open", "Ready", timeout=30)
    failed = wait_for(lambda: ready_reason(cluster, "locked") == "AuthenticationFailed"
                      and cluster.condition("locked", "Ready"), 30, what="locked reporting AuthenticationFailed")
    assert "s3cret-value" not in str(failed)
    # Reported as Stalled (a wrong secret is the usual cause), and still looked at again each resync:
    assert cluster.condition("locked", "Stalled")["reason"] == "AuthenticationFailed"
    assert not [r for r in env.arm_requests() if "/virtualmachines/locked" in r["path"].lower()]
    env.admin(lambda a: a.remove_fault(outage))
    cluster.wait_condition("locked", "Ready", timeout=30)


# ---- Kubernetes API faults -----------------------------------------------------------------------------------


def test_status_patch_conflicts_are_retried_and_the_status_ends_right(env, operator, cluster, caplog):
    """The next 4 status patches of one VM answer 409 Conflict. Its status ends Ready for its generation, with
    its Azure id; another VM is Ready meanwhile."""
    caplog.set_level(logging.WARNING)
    env.kubeapi.inject_fault("PATCH", r"/virtualmachines/conflicted/status$", 409, count=4)
    cluster.apply(vm_manifest("conflicted", resourceGroup="conflict-rg"))
    cluster.apply(vm_manifest("unbothered", resourceGroup="conflict-rg"))
    cluster.wait_condition("unbothered", "Ready", timeout=30)
    cluster.wait_condition("conflicted", "Ready", timeout=30)
    assert env.kubeapi.faults()[0]["hits"] == 4
    status = cluster.get("conflicted")["status"]
    assert status["azureResourceId"].lower().endswith("/virtualmachines/conflicted")
    assert status["observedGeneration"] == cluster.get("conflicted")["metadata"]["generation"]
    assert cluster.condition("conflicted", "Stalled")["status"] == "False"
    assert len(errors(caplog)) <= 4, [r.getMessage() for r in errors(caplog)]


@pytest.mark.parametrize("expire", [False, True], ids=["disconnect", "410-gone"])
def test_a_change_made_while_the_watch_is_down_is_reconciled(env, operator, cluster, expire):
    """The operator's watch of VirtualMachines is cut and its reconnection held for 3 s; a tag is changed
    meanwhile. Resumed from its resourceVersion, the watch delivers the change; with the history compacted
    (expire), the API server answers 410 Gone and Kopf lists again. Either way Azure gets the new tag."""
    compute = env.azure_client(ComputeManagementClient)
    cluster.apply(vm_manifest("watched", resourceGroup="watch-rg"))
    cluster.wait_condition("watched", "Ready", timeout=30)
    env.kubeapi.inject_fault("GET", r"/virtualmachines\?(.*&)?watch=", delay=3.0, count=1)
    assert env.kubeapi.drop_watches("virtualmachines") >= 1
    cluster.patch_spec("watched", {"tags": {"team": "platform", "changed": "while-down"}})
    if expire:
        env.kubeapi.expire_history("virtualmachines")
    wait_for(lambda: (compute.virtual_machines.get("watch-rg", "watched").tags or {}).get("changed") == "while-down",
             30, what="the tag changed while the watch was down to reach Azure")
    cluster.wait_condition("watched", "Ready", timeout=30)
    assert env.kubeapi.faults()[0]["hits"] == 1  # the watch was reconnected through the held request
    if expire:
        assert env.kubeapi.watches_gone >= 1
