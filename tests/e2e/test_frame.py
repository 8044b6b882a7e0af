"""The reconcile frame on its own: a minimal kind (one Azure public IP per custom resource) driven pass by pass,
against the Azure emulator and the Kubernetes API, without Kopf. What the frame promises every kind: policies,
ownership, conditions, and long-running operations that are followed, never waited on, and resumed after a
restart without a second write."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Mapping

import pytest
from azure.core.rest import HttpRequest
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from e2e_helpers import CRDS, Cluster, vm_manifest

from azure_vm_operator.api import conditions as cond
from azure_vm_operator.api.constants import OWNER_TAG, RECONCILE_REQUESTED_ANNOTATION, VM_PLURAL
from azure_vm_operator.api.fields import Policies, subscription_of
from azure_vm_operator.azure import infrastructure as infra
from azure_vm_operator.azure.clients import AzureClients
from azure_vm_operator.azure.ownership import owned_tags
from azure_vm_operator.controllers.frame import Context, InProgress, Reconciler, StatusView, TransientError
from azure_vm_operator.controllers.status import ResourceRef, StatusReporter
from azure_vm_operator.kube import KubeClient, load_configuration
from azvm_sandbox.harness import Environment

RG = "frame-rg"


@dataclass(frozen=True)
class IpSpec:
    subscription_id: str
    resource_group: str
    location: str
    azure_name: str
    policies: Policies


class PublicIpKind:
    """The smallest kind: a Standard public IP named after the resource (stored as VirtualMachine objects so the
    test needs no CRD of its own; only location, resourceGroup and the policies are read)."""

    kind = "TestPublicIP"
    plural = VM_PLURAL
    noun = "public IP"

    def parse(self, raw: Mapping[str, Any], name: str, default_subscription: str | None,
              credentials_subscription: str | None) -> IpSpec:
        return IpSpec(subscription_of(raw, credentials_subscription, default_subscription), raw["resourceGroup"],
                      raw["location"], raw.get("azureName") or name, Policies.parse(raw))

    async def observe(self, ctx: Context[IpSpec]) -> dict[str, Any] | None:
        return await ctx.get(ctx.az.network.public_ip_addresses.get(ctx.spec.resource_group, ctx.spec.azure_name))

    def primary(self, observed: dict[str, Any] | None) -> Mapping[str, Any] | None:
        return observed

    async def create(self, ctx: Context[IpSpec], observed: Any) -> None:
        spec = ctx.spec
        await ctx.ensure_resource_group()
        await ctx.start(ctx.az.network.public_ip_addresses.begin_create_or_update, spec.resource_group,
                        spec.azure_name, infra.public_ip_body(spec.location, owned_tags({}, ctx.identity)),
                        action="create", target=spec.azure_name, reason="Creating")

    async def update(self, ctx: Context[IpSpec], observed: Any) -> bool:
        return False

    async def delete(self, ctx: Context[IpSpec], observed: Any) -> None:
        await ctx.delete_if_ours(ctx.az.network.public_ip_addresses, ctx.spec.resource_group, ctx.spec.azure_name,
                                 observed, "public IP address")

    def status(self, ctx: Context[IpSpec], observed: Any) -> StatusView:
        state = infra.provisioning_state(observed)
        return StatusView({"azureResourceId": observed.get("id"), "provisioningState": state,
                           "publicIP": infra.public_ip_address(observed), "lastObservedTime": cond.now_rfc3339()},
                          state == "Succeeded", f"public IP {ctx.spec.azure_name}: {state}", "Running")

    def observe_only(self, ctx: Context[IpSpec], observed: Any) -> tuple[StatusView, list[str]]:
        if observed is None:
            return StatusView({}, False, "not found", "Observing"), []
        return self.status(ctx, observed), []

    def forget(self, ref: ResourceRef) -> None:
        pass


class Frame:
    """One operator process's reconciler for the test kind; a new Frame is what a restart looks like."""

    def __init__(self, env: Environment) -> None:
        config = env.operator_config()
        self.kube = KubeClient(load_configuration(env.kubeconfig))
        self.azure = AzureClients(config)
        self.reconciler = Reconciler(PublicIpKind(), config, self.azure, StatusReporter(self.kube), self.kube)
        self.cluster = Cluster(env.kube_api_client())

    def ref(self, name: str) -> ResourceRef:
        return ResourceRef(VM_PLURAL, self.cluster.get(name))

    async def until_done(self, call: Any, name: str, timeout: float = 30) -> Any:
        """Run passes (as Kopf's retries would) until one ends without InProgress."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await call(self.ref(name))
            except InProgress as exc:
                assert time.monotonic() < deadline, f"still in progress after {timeout}s: {exc}"
                await asyncio.sleep(min(exc.delay or 0.1, 0.5))

    async def close(self) -> None:
        await self.azure.close()
        self.kube.close()


@pytest.fixture
def slow_env(tmp_path):
    environment = Environment(workdir=tmp_path, crds_dir=CRDS, latency_scale=2.0)  # a public IP takes ~4 s
    yield environment
    environment.close()


def ip_writes(env: Environment, name: str, method: str) -> list[dict[str, Any]]:
    return [r for r in env.arm_requests() if r["method"] == method
            and r["path"].lower().endswith(f"/publicipaddresses/{name}")]


def arm_writes(env: Environment) -> list[dict[str, Any]]:
    """Every ARM request but reads (token requests are not ARM's)."""
    return [r for r in env.arm_requests() if r["method"] != "GET" and r["path"].startswith("/subscriptions/")]


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in obj["status"].get("conditions") or [] if c["type"] == type_), {})


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    return vm_manifest(name, resourceGroup=RG, **spec)


async def test_an_operation_in_flight_is_followed_and_resumed_after_a_restart_without_a_second_put(slow_env):
    first = Frame(slow_env)
    first.cluster.apply(manifest("ip-1"))
    with pytest.raises(InProgress) as started:
        await first.reconciler.reconcile(first.ref("ip-1"))
    assert started.value.reason == "Creating" and started.value.delay >= 1  # Azure's Retry-After, not a busy loop
    status = first.cluster.get("ip-1")["status"]
    assert status["operation"]["action"] == "create" and "/operations/" in status["operation"]["url"]
    assert condition(first.cluster.get("ip-1"), "Reconciling")["status"] == "True"
    await first.close()  # the process goes away while Azure is still creating

    second = Frame(slow_env)  # a new process: nothing in memory, the operation comes from status
    with pytest.raises(InProgress) as resumed:
        await second.reconciler.reconcile(second.ref("ip-1"))
    assert resumed.value.reason == "Creating"  # reported as what it is, not as an unknown operation
    ready = await second.until_done(second.reconciler.reconcile, "ip-1")
    assert ready is True
    assert len(ip_writes(slow_env, "ip-1", "PUT")) == 1
    polls = [r for r in slow_env.arm_requests() if r["method"] == "GET" and "/operations/" in r["path"]]
    assert polls, "the second process followed the operation the first one started"
    obj = second.cluster.get("ip-1")
    assert "operation" not in obj["status"]
    assert condition(obj, "Ready")["status"] == "True" and obj["status"]["provisioningState"] == "Succeeded"
    await second.close()


async def test_a_delete_does_not_wait_behind_a_create(slow_env):
    frame = Frame(slow_env)
    frame.cluster.apply(manifest("ip-2"))
    with pytest.raises(InProgress):
        await frame.reconciler.reconcile(frame.ref("ip-2"))  # the create is running in Azure for ~4 s
    create_monitor = frame.cluster.get("ip-2")["status"]["operation"]["url"]
    with pytest.raises(InProgress) as deleting:
        await frame.reconciler.delete(frame.ref("ip-2"))
    assert deleting.value.reason == "Deleting"
    assert ip_writes(slow_env, "ip-2", "DELETE"), "the delete was sent at once"
    network = slow_env.azure_client(NetworkManagementClient)
    create = network.send_request(HttpRequest("GET", create_monitor)).json()
    assert create["status"] != "Succeeded", "the delete was sent before the create had finished"
    await frame.until_done(frame.reconciler.delete, "ip-2")
    assert len(ip_writes(slow_env, "ip-2", "PUT")) == 1
    assert "ip-2" not in [ip.name for ip in network.public_ip_addresses.list(RG)]
    await frame.close()


async def test_pause_observe_and_orphan_never_write(env):
    frame = Frame(env)
    frame.cluster.apply(manifest("paused", reconcilePolicy="Pause"))
    env.clear_arm_requests()
    assert await frame.reconciler.reconcile(frame.ref("paused")) is True
    assert [r for r in env.arm_requests() if r["path"].startswith("/subscriptions/")] == []
    assert frame.cluster.get("paused")["status"]["printableStatus"] == "Paused"

    frame.cluster.apply(manifest("observed", reconcilePolicy="Observe"))
    assert await frame.reconciler.reconcile(frame.ref("observed")) is False
    assert condition(frame.cluster.get("observed"), "Ready")["reason"] == "NotFound"
    assert arm_writes(env) == []

    frame.cluster.apply(manifest("orphan", deletionPolicy="Orphan"))
    assert await frame.until_done(frame.reconciler.reconcile, "orphan") is True
    env.clear_arm_requests()
    await frame.reconciler.delete(frame.ref("orphan"))
    assert [r for r in env.arm_requests() if r["path"].startswith("/subscriptions/")] == []  # not even a read
    network = env.azure_client(NetworkManagementClient)
    assert network.public_ip_addresses.get(RG, "orphan").provisioning_state == "Succeeded"
    await frame.close()


async def test_a_resource_tagged_for_someone_else_is_never_taken_or_deleted(env):
    network = env.azure_client(NetworkManagementClient)
    env.azure_client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": "westeurope"})
    network.public_ip_addresses.begin_create_or_update(RG, "taken", {
        "location": "westeurope", "sku": {"name": "Standard"}, "tags": {OWNER_TAG: "other-cluster/TestPublicIP/x/y"},
        "properties": {"publicIPAllocationMethod": "Static"}}).result()
    frame = Frame(env)
    frame.cluster.apply(manifest("taken"))
    env.clear_arm_requests()
    assert await frame.reconciler.reconcile(frame.ref("taken")) is False
    obj = frame.cluster.get("taken")
    stalled = condition(obj, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "OwnershipConflict"
    assert "other-cluster/TestPublicIP/x/y" in stalled["message"]
    assert condition(obj, "Ready")["status"] == "False" and obj["status"]["printableStatus"] == "Failed"
    await frame.reconciler.delete(frame.ref("taken"))
    assert arm_writes(env) == []
    assert network.public_ip_addresses.get(RG, "taken").tags[OWNER_TAG] == "other-cluster/TestPublicIP/x/y"
    await frame.close()


async def test_an_operation_that_fails_transiently_is_retried_and_a_permanent_one_stalls(env):
    frame = Frame(env)
    env.inject_fault(method="PUT", path="publicIPAddresses/flaky$", count=1,
                     lro_failure={"code": "InternalExecutionError", "message": "try again"})
    frame.cluster.apply(manifest("flaky"))
    with pytest.raises(TransientError) as failed:
        await frame.until_done(frame.reconciler.reconcile, "flaky")
    assert failed.value.failure.code == "InternalExecutionError"
    ready = condition(frame.cluster.get("flaky"), "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InternalExecutionError"
    assert await frame.until_done(frame.reconciler.reconcile, "flaky") is True  # the retry succeeds

    env.inject_fault(method="PUT", path="publicIPAddresses/doomed$", count=1,
                     lro_failure={"code": "InvalidParameter", "message": "bad address"})
    frame.cluster.apply(manifest("doomed"))
    assert await frame.until_done(frame.reconciler.reconcile, "doomed") is False
    stalled = condition(frame.cluster.get("doomed"), "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "InvalidParameter"
    assert frame.cluster.get("doomed")["status"]["failedOperation"]["code"] == "InvalidParameter"

    # Looked at again (a resync, a change seen in a listing): the same write would fail the same way, so it is
    # not made, whatever state the failed operation left in Azure; the resource stays Stalled with the reason.
    assert await frame.until_done(frame.reconciler.reconcile, "doomed") is False
    assert ip_puts(env, "doomed") == 1
    stalled = condition(frame.cluster.get("doomed"), "Stalled")
    assert stalled["reason"] == "InvalidParameter" and "reconcile is requested" in stalled["message"]
    # A requested reconcile (kubectl azvm reconcile) tries again; here Azure accepts it, and the record goes.
    frame.cluster.annotate("doomed", {RECONCILE_REQUESTED_ANNOTATION: "2026-12-03T19:00:00Z"})
    assert await frame.until_done(frame.reconciler.reconcile, "doomed") is True
    assert ip_puts(env, "doomed") == 2
    assert "failedOperation" not in frame.cluster.get("doomed")["status"]
    await frame.close()


def ip_puts(env: Environment, name: str) -> int:
    return len([r for r in env.arm_requests()
                if r["method"] == "PUT" and r["path"].lower().endswith(f"/publicipaddresses/{name}")])


async def test_a_permanently_failed_operation_is_tried_again_when_the_spec_changes(env):
    frame = Frame(env)
    env.inject_fault(method="PUT", path="publicIPAddresses/respecced$", count=1,
                     lro_failure={"code": "InvalidParameter", "message": "bad address"})
    frame.cluster.apply(manifest("respecced"))
    for _ in range(2):  # the failure, then a pass that holds it: no second PUT
        assert await frame.until_done(frame.reconciler.reconcile, "respecced") is False
    assert ip_puts(env, "respecced") == 1
    frame.cluster.patch_spec("respecced", {"tags": {"attempt": "2"}})  # any spec change: a new generation
    assert await frame.until_done(frame.reconciler.reconcile, "respecced") is True
    assert ip_puts(env, "respecced") == 2
    await frame.close()


async def test_a_pass_that_only_observed_again_writes_no_status_until_the_observation_time_is_old(env):
    """A converged resource looked at again: nothing changed but the time, so nothing is written (a write per
    resource per resync would load the API server and every watcher). A requested reconcile is recorded, with the
    time it was done; an old observation time is refreshed."""
    frame = Frame(env)
    frame.cluster.apply(manifest("quiet"))
    assert await frame.until_done(frame.reconciler.reconcile, "quiet") is True
    first = frame.cluster.get("quiet")
    await asyncio.sleep(1.1)  # the next pass's lastObservedTime is a later second
    assert await frame.reconciler.reconcile(frame.ref("quiet")) is True
    assert frame.cluster.get("quiet")["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    frame.cluster.annotate("quiet", {RECONCILE_REQUESTED_ANNOTATION: "now-please"})
    assert await frame.reconciler.reconcile(frame.ref("quiet")) is True
    status = frame.cluster.get("quiet")["status"]
    assert status["lastReconcileRequest"] == "now-please"
    assert status["lastObservedTime"] > first["status"]["lastObservedTime"]

    frame.reconciler.reporter.observed_time_refresh = 0.0  # as if ten minutes had passed
    await asyncio.sleep(1.1)
    seen = frame.cluster.get("quiet")["status"]["lastObservedTime"]
    assert await frame.reconciler.reconcile(frame.ref("quiet")) is True
    assert frame.cluster.get("quiet")["status"]["lastObservedTime"] > seen
    await frame.close()
