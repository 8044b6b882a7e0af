"""Two operator replicas, each owning one of two shards (--shard-count 2, --shard-index 0|1, each also with
--leader-elect and a --selector), against one Kubernetes API and one Azure emulator: every selected resource is
reconciled, and deleted, by exactly one of them; a resource the selector leaves out is touched by neither.

The replicas run as separate processes, as they would in two pods. Kopf would also run two operators in one process
(its handler registry is global, but each operator passes its own memo, hence its own shard, to the handlers'
filters), but then both would share prometheus-client's global registry: as processes, each replica's /metrics lists
exactly the resources that replica handled."""

from __future__ import annotations

import re
import sys
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient
from azvm_sandbox.harness import SUBSCRIPTION_ID
from e2e_helpers import Cluster, vm_manifest, wait_for
from test_processes import Process, free_port
from test_scaleset import scale_set_manifest

from azure_vm_operator.api.constants import FINALIZER, SCALESET_PLURAL
from azure_vm_operator.leader import LEASE_NAME
from azure_vm_operator.sharding import Shard, shard_of

VMS = [f"shard-vm-{i}" for i in range(6)]
SETS = [f"shard-set-{i}" for i in range(2)]
SELECTOR = "azvm-test=sharding"


class Replica:
    """`azure-vm-operator run` for one shard of two, against the harness's Kubernetes API and emulator."""

    def __init__(self, env, index: int, by_environment: bool = False) -> None:
        self.shard = Shard(index, 2, SELECTOR)
        self.metrics_port = free_port()
        shard_flags = ["--shard-count", "2", "--shard-index", str(index), "--selector", SELECTOR]
        shard_env = {"AZVM_SHARD_COUNT": "2", "AZVM_SHARD_INDEX": str(index), "AZVM_SELECTOR": SELECTOR}
        self.process = Process(
            [str(Path(sys.executable).parent / "azure-vm-operator"), "run", "--kubeconfig", env.kubeconfig,
             "--azure-endpoint", env.emulator.url, "--azure-ca", env.emulator.ca_path, "--cluster-id", "test-cluster",
             "--resync-interval", "2", "--metrics-port", str(self.metrics_port), "--leader-elect",
             *([] if by_environment else shard_flags)],
            env={"AZURE_AUTHORITY_HOST": env.emulator.url, "AZURE_DISABLE_INSTANCE_DISCOVERY": "true",
                 "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION_ID, "POD_NAMESPACE": "default",
                 "AZVM_LRO_POLLING_INTERVAL": "0.05", "AZVM_BACKOFF_BASE": "0.2", "AZVM_BACKOFF_MAX": "2",
                 **(shard_env if by_environment else {})},
        )

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return response.read().decode()

    def handled(self) -> set[str]:
        """The resources this replica reports on /metrics: every one it reconciled (and has not deleted)."""
        text = self.metrics()
        vms = re.findall(r'^azvm_virtualmachine_info\{[^}]*name="([^"]+)"', text, re.MULTILINE)
        sets = re.findall(r'^azvm_scaleset_replicas\{[^}]*name="([^"]+)"', text, re.MULTILINE)
        return set(vms) | set(sets)


def owner(name: str) -> int:
    return shard_of("default", name, 2)


def machine_writes(env, method: str) -> list[str]:
    """The names of the VMs and scale sets the emulator saw a request of this method for (not their parts)."""
    pattern = re.compile(r"/providers/microsoft\.compute/virtualmachine(scaleset)?s/([^/]+)$")
    return sorted(m.group(2) for r in env.arm_requests()
                  if r["method"] == method and (m := pattern.search(r["path"].lower())))


def selected(manifest: dict[str, Any]) -> dict[str, Any]:
    manifest["metadata"]["labels"] = {"azvm-test": "sharding"}
    return manifest


@pytest.fixture
def replicas(env):
    started = [Replica(env, 0), Replica(env, 1, by_environment=True)]
    yield started
    for replica in started:
        if replica.process.proc.poll() is None:
            replica.process.proc.kill()


def test_two_shards_reconcile_and_delete_each_resource_exactly_once(env, replicas):
    expected = {index: {n for n in VMS + SETS if owner(n) == index} for index in (0, 1)}
    assert all(expected[i] & set(VMS) and expected[i] & set(SETS) for i in (0, 1)), "both kinds in both shards"
    for replica in replicas:
        replica.process.expect(rf"became the leader \(Lease default/{replica.shard.lease_name(LEASE_NAME)},", 30)

    vms, sets = Cluster(env.kube_api_client()), Cluster(env.kube_api_client(), SCALESET_PLURAL)
    left_out = vms.apply(vm_manifest("not-selected"))
    for name in VMS:
        vms.apply(selected(vm_manifest(name)))
    for name in SETS:
        sets.apply(selected(scale_set_manifest(name, replicas=1)))
    for cluster, names in ((vms, VMS), (sets, SETS)):
        for name in names:
            cluster.wait_condition(name, "Ready", timeout=60)

    # Each replica reconciled exactly its shard's resources: its own /metrics names them.
    for index, replica in enumerate(replicas):
        wait_for(lambda: replica.handled() == expected[index], 10, what=f"shard {index}'s resources on its /metrics")
    # One creating PUT per VM and per scale set, although both replicas watch all of them.
    assert machine_writes(env, "PUT") == sorted(VMS + SETS)
    # The finalizer is the owning shard's only; every Event of a resource names its shard.
    for cluster, names in ((vms, VMS), (sets, SETS)):
        for name in names:
            shard = Shard(owner(name), 2)
            assert cluster.get(name)["metadata"]["finalizers"] == [shard.finalizer(FINALIZER)]
            events = cluster.events(name)
            assert events and {e.source.component for e in events} == {shard.component("azure-vm-operator")}, \
                [(e.reason, e.source.component) for e in events]
    # The API server never sent the unlabelled VM to either replica: nothing wrote to it.
    assert vms.get("not-selected")["metadata"]["resourceVersion"] == left_out["metadata"]["resourceVersion"]
    # One leader per shard, each on its own Lease.
    leases = kubernetes.client.CoordinationV1Api(env.kube_api_client())
    holders = {leases.read_namespaced_lease(r.shard.lease_name(LEASE_NAME), "default").spec.holder_identity
               for r in replicas}
    assert len(holders) == 2 and None not in holders

    env.clear_arm_requests()
    for cluster, names in ((vms, VMS), (sets, SETS)):
        for name in names:
            cluster.delete(name)
    for cluster, names in ((vms, VMS), (sets, SETS)):
        for name in names:
            wait_for(lambda: cluster.get(name) is None, 60, what=f"{name} deleted")
    assert machine_writes(env, "DELETE") == sorted(VMS + SETS)  # each deleted once, by its shard's replica
    compute, network = env.azure_client(ComputeManagementClient), env.azure_client(NetworkManagementClient)
    assert [vm.name for vm in compute.virtual_machines.list_all()] == []
    assert [s.name for s in compute.virtual_machine_scale_sets.list_all()] == []
    assert [n.name for n in network.network_interfaces.list_all()] == []
    assert [i.name for i in network.public_ip_addresses.list_all()] == []
    assert [lb.name for lb in network.load_balancers.list_all()] == []
    assert [d.name for d in compute.disks.list() if d.name.startswith("shard-")] == []
    for replica in replicas:
        wait_for(lambda: replica.handled() == set(), 10, what="every resource forgotten")
        assert replica.process.stop() == 0, "".join(replica.process.output)
