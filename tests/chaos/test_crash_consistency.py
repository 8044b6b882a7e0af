"""Crash consistency, the CI version of bench/chaos.py (issue #12): the operator runs as its own process against
the emulator (its own process, durable state dir, LRO latencies x 0.05) and the test Kubernetes API; it is killed
with SIGKILL 10 times (2 per phase: create, update, scale and power, rollout, delete of VirtualMachines, ScaleSets
and an AvailabilitySet with member VMs; half of the kills while an Azure operation of the phase is in flight) and
restarted. At the end: everything converged to its final spec, and 0 duplicates, 0 orphans, 0 stuck finalizers,
0 second PUTs (definitions: docs/reliability.md). The seed is printed; AZVM_CHAOS_SEED reruns one."""

from __future__ import annotations

import os

import pytest
from chaos_helpers import load_chaos


@pytest.mark.timeout(420)
def test_operator_killed_ten_times_leaves_no_duplicate_orphan_stuck_finalizer_or_second_put(tmp_path):
    chaos = load_chaos()
    seed = int(os.environ["AZVM_CHAOS_SEED"]) if os.environ.get("AZVM_CHAOS_SEED") else None
    run = chaos.Run(chaos.Options(kills=10, seed=seed, kills_per_phase=2, latency_scale=0.05,
                                  workdir=tmp_path / "chaos", phase_timeout=120, converge_timeout=120))
    print(f"chaos seed {run.seed} (AZVM_CHAOS_SEED={run.seed} reruns it)")
    try:
        tally = run.run()
    finally:
        run.close()
    print(chaos.table(tally))
    assert tally["kills"] == 10
    assert set(tally["kills_by_phase"].values()) == {2}, tally["kills_by_phase"]
    assert tally["kills_in_flight"] >= 1, "no kill landed while Azure was working: the run proved little"
    assert tally["accepted_writes_and_actions"] > 10, "the second-PUT check found no accepted operation to check"
    assert tally["arm_requests_lost"] == 0
    assert chaos.failures(tally) == [], f"seed {run.seed}: {chaos.failures(tally)}"
    # what remains: one VM (stopped, retagged) and one ScaleSet (3 instances on the new model)
    assert tally["resources"] == {"VirtualMachine": 1, "ScaleSet": 1, "AvailabilitySet": 0}
