"""Drift seen from the shared listings (issue #10): with a resync interval of 600 s and listings taken every 2 s,
a VM resized behind the operator's back is corrected or reported within a few observe intervals, and the pass that
sees it reads the VM from the listing, not with a GET of its own."""

from __future__ import annotations

import time

import pytest
from e2e_helpers import vm_manifest, wait_for

OBSERVE = 2.0


def single_reads(env, name):
    """GETs of one resource made for ``name`` (its VM, NIC...), not listings nor operation polls."""
    return [r for r in env.arm_requests() if r["method"] == "GET" and f"/{name}" in r["path"].lower()
            and "/operations/" not in r["path"].lower() and "operationstatuses" not in r["path"].lower()]


@pytest.mark.parametrize("policy", ["Report", "Correct"])
def test_a_vm_resized_behind_the_operators_back_is_seen_within_a_few_observe_intervals(env, cluster, compute, policy):
    env.start_operator(resync_interval=600.0, observe_interval=OBSERVE)
    cluster.apply(vm_manifest("drifty", driftPolicy=policy))
    cluster.wait_condition("drifty", "Ready", timeout=60)
    time.sleep(2.5 * OBSERVE)  # the creation's echoes in the listings are over
    env.clear_arm_requests()
    # resized through the SDK; polling=False: the test's own reads stay out of the request log
    compute.virtual_machines.begin_update("e2e-rg", "drifty", {"properties": {"hardwareProfile": {
        "vmSize": "Standard_D4s_v5"}}}, polling=False)
    started = time.monotonic()
    cluster.wait_condition("drifty", "Drifted", "True", timeout=6 * OBSERVE)
    seen = time.monotonic() - started
    drift = cluster.get("drifty")["status"]["drift"]
    assert any(f.startswith("spec.size") for f in drift["fields"])
    assert drift["action"] == ("Reported" if policy == "Report" else "Corrected")
    assert seen < 6 * OBSERVE  # the resync interval is 600 s: only the listings can have seen it
    if policy == "Report":
        time.sleep(OBSERVE)
        assert single_reads(env, "drifty") == []  # every read was served by a listing
        writes = [r for r in env.arm_requests() if r["method"] != "GET" and "/drifty" in r["path"].lower()]
        assert [r["method"] for r in writes] == ["PATCH"]  # the test's own resize: reported, never corrected
        size = "Standard_D4s_v5"
    else:
        size = "Standard_B2s"
    wait_for(lambda: compute.virtual_machines.get("e2e-rg", "drifty").as_dict()["properties"]["hardwareProfile"][
        "vmSize"] == size, 6 * OBSERVE, what=f"size {size}")


def test_listings_that_do_not_change_wake_nothing_and_the_echo_of_a_write_writes_nothing(env, cluster):
    """A converged VM, listings every 2 s and no resync for 600 s: nothing changes, so nothing is read by GET or
    written (ARM or status). Then its size is changed through Kubernetes: once that is done, the listings' view of
    the operator's own write (at most one woken pass) writes nothing more."""
    env.start_operator(resync_interval=600.0, observe_interval=OBSERVE)
    cluster.apply(vm_manifest("quiet"))
    cluster.wait_condition("quiet", "Ready", timeout=60)
    time.sleep(2.5 * OBSERVE)
    env.clear_arm_requests()
    version = cluster.get("quiet")["metadata"]["resourceVersion"]
    time.sleep(3 * OBSERVE)
    requests = env.arm_requests()
    assert [r for r in requests if r["method"] != "GET"] == []
    assert single_reads(env, "quiet") == []
    assert any(r["method"] == "GET" and r["path"].lower().endswith("/virtualmachines") for r in requests)  # listed
    assert cluster.get("quiet")["metadata"]["resourceVersion"] == version  # no status write either

    generation = cluster.patch_spec("quiet", {"size": "Standard_D2s_v5"})["metadata"]["generation"]
    wait_for(lambda: (cluster.get("quiet")["status"].get("observedGeneration") == generation
                      and cluster.condition("quiet", "Ready").get("status") == "True"
                      and cluster.condition("quiet", "Reconciling").get("status") == "False"), 30, what="resized")
    time.sleep(OBSERVE)
    env.clear_arm_requests()
    version = cluster.get("quiet")["metadata"]["resourceVersion"]
    time.sleep(3 * OBSERVE)
    assert [r for r in env.arm_requests() if r["method"] != "GET"] == []
    assert cluster.get("quiet")["metadata"]["resourceVersion"] == version
