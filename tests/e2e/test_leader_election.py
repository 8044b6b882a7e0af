"""Several replicas with --leader-elect: one acts, the others stand by and take over when it stops or dies."""

from __future__ import annotations

import time

import kubernetes.client
from e2e_helpers import vm_manifest, wait_for

from azvm_sandbox.harness import OperatorThread


def holder(env) -> str | None:
    lease = kubernetes.client.CoordinationV1Api(env.kube_api_client()).read_namespaced_lease(
        "azure-vm-operator", "default")
    return lease.spec.holder_identity


def test_one_leader_acts_and_a_standby_takes_over(env, cluster):
    config = env.operator_config(leader_elect=True, lease_duration=3.0)
    first, second, third = OperatorThread(config), OperatorThread(config), OperatorThread(config)
    try:
        first.start(identity="replica-a")
        second.start(wait_ready=False, identity="replica-b")
        assert holder(env) == "replica-a"
        cluster.apply(vm_manifest("ha-1"))
        cluster.wait_condition("ha-1", "Ready")
        assert not second.ready, "the standby runs no handlers while the leader renews its Lease"

        # A graceful stop releases the Lease: the standby leads at once.
        assert first.stop() is False
        wait_for(lambda: second.ready, 10, what="the standby to take over")
        assert holder(env) == "replica-b"
        cluster.apply(vm_manifest("ha-2"))
        cluster.wait_condition("ha-2", "Ready")

        # A crash releases nothing: a new replica waits for the Lease to expire, then leads.
        third.start(wait_ready=False, identity="replica-c")
        crashed_at = time.monotonic()
        second.crash()
        wait_for(lambda: third.ready, 15, what="the Lease to expire and replica-c to lead")
        assert time.monotonic() - crashed_at >= 2.0, "took over only after the 3 s Lease expired"
        assert holder(env) == "replica-c"
        cluster.apply(vm_manifest("ha-3"))
        cluster.wait_condition("ha-3", "Ready")
    finally:
        for replica in (first, second, third):
            replica.stop()
