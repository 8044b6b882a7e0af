"""The emulator (durable state dir) is killed with SIGKILL while the operator's operations are in flight, once during
creation and once during deletion, and restarted on the same port with the same state dir: the operator, never
restarted, recovers on its own. Everything converges, nothing is duplicated or orphaned, no finalizer is stuck.
(The request log lives in the emulator's memory, so second PUTs are checked by the operator chaos run, not here.)"""

from __future__ import annotations

import random
import time

import pytest
from chaos_helpers import load_chaos


@pytest.mark.timeout(300)
def test_operator_recovers_from_an_emulator_killed_mid_flight_and_restarted_on_its_state(tmp_path):
    chaos = load_chaos()
    run = chaos.Run(chaos.Options(kills=0, latency_scale=0.05, workdir=tmp_path / "chaos"))
    rng = random.Random(run.seed)
    print(f"seed {run.seed}")
    try:
        run.operator.start()
        pid = run.operator.proc.pid
        a = chaos.Action("create", "VirtualMachine", "emu-vm",
                         chaos.vm("emu-vm", network={"publicIP": True, "openPorts": [22]}))
        b = chaos.Action("create", "ScaleSet", "emu-ss", chaos.scaleset("emu-ss", replicas=2, loadBalancer={
            "enabled": True, "rules": [{"name": "http", "protocol": "Tcp", "frontendPort": 80, "backendPort": 80}]}))
        c = chaos.Action("create", "VirtualMachine", "emu-vm-2", chaos.vm("emu-vm-2"))
        for action in (a, b, c):
            run.apply(action)

        def kill_emulator_when(states: tuple[str, ...]) -> int:
            """SIGKILL the emulator once a resource of ours is in one of these states; returns how many were."""
            def busy() -> int:
                return sum(1 for x in run.emulator.resources()
                           if x.get("provisioningState") in states and "/emu-" in x["id"])
            in_flight = chaos.wait_until(busy, 60, f"an Azure operation in {states}", interval=0.05)
            run.emulator.kill9()
            return in_flight

        def noticed() -> list[str]:
            """Resources whose Ready condition says Azure could not be reached (the operator saw the outage)."""
            return [f"{k}/{i['metadata']['name']}" for k in chaos.PLURALS for i in run.kube.list(k)
                    for c in (i.get("status") or {}).get("conditions") or []
                    if c["type"] == "Ready" and c.get("reason") == "ConnectionError"]

        assert kill_emulator_when(("Creating",)) >= 1
        print("the operator saw the outage on", chaos.wait_until(noticed, 90, "a Ready=False ConnectionError"))
        time.sleep(rng.uniform(0.0, 2.0))  # and Azure stays down a little longer
        run.emulator.start()
        run.wait_converged(120, "converged after the emulator's restart (creation)")

        run.apply(chaos.Action("patch", "VirtualMachine", "emu-vm-2", {"size": "Standard_B2ms"}))
        run.apply(chaos.Action("delete", "VirtualMachine", "emu-vm"))
        run.apply(chaos.Action("delete", "ScaleSet", "emu-ss"))
        assert kill_emulator_when(("Deleting", "Updating")) >= 1
        time.sleep(rng.uniform(0.0, 2.0))
        run.emulator.start()
        run.wait_converged(120, "converged after the emulator's restart (deletion)")

        assert run.operator.proc.poll() is None and run.operator.proc.pid == pid, "the operator had to restart"
        run.emulator.resources()
        resources, _ = run.emulator.records()
        crs = {(k, "default", i["metadata"]["name"]) for k in chaos.PLURALS for i in run.kube.list(k)}
        assert crs == {("VirtualMachine", "default", "emu-vm-2")}
        assert chaos.find_duplicates(resources) == []
        assert chaos.find_orphans(resources, crs) == []
        assert run.final_state_mismatches(resources, {("VirtualMachine", "emu-vm-2"):
                                                      run.kube.get("VirtualMachine", "emu-vm-2")}) == []
        assert run.emulator.starts == 3
    finally:
        run.close()
