"""The fleet benchmark (bench/operator_fleet.py) at a tiny size, only to keep it working: convergence, steady state,
drift, the ASO-style baseline and deletion run, and the JSON and PNG are written; and a ScaleSet fleet (convergence,
steady state, restart, deletion). Timings are never asserted: they belong to docs/benchmarks.md, measured on a quiet
machine. (The VirtualMachine run leaves the restart and memory phases out to stay well under a minute.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(tmp_path: Path, *args: str) -> dict[str, Any]:
    """bench/operator_fleet.py with ``args`` (label ``smoke``) against the embedded Kubernetes API: its JSON."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("psutil")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}  # the embedded Kubernetes API
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "operator_fleet.py"), *args,
         "--timeout", "60", "--crds", str(ROOT / "crds"), "--out", str(tmp_path), "--label", "smoke"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert (tmp_path / "smoke.png").stat().st_size > 10_000
    result: dict[str, Any] = json.loads((tmp_path / "smoke.json").read_text())
    return result


@pytest.mark.timeout(120)
def test_fleet_benchmark_runs_every_phase_and_writes_its_results(tmp_path: Path) -> None:
    result = run_benchmark(
        tmp_path, "--vms", "3", "--latency-scale", "0.01",
        "--resync-interval", "4", "--observe-interval", "2", "--settle", "0", "--steady", "6", "--baseline", "6",
        "--drift-samples", "1", "--no-restart")
    for phase in ("converge", "steady", "drift", "baseline", "delete"):
        assert phase in result, phase
    assert result["converge"]["all_ready"] and result["delete"]["all_deleted"]
    assert result["converge"]["arm"]["by_kind"].get("PUT", 0) >= 3  # a NIC and a VM per VirtualMachine
    assert result["baseline"]["arm"]["by_kind"].get("PUT", 0) > 0


@pytest.mark.timeout(120)
def test_fleet_benchmark_converges_and_deletes_a_scale_set_fleet(tmp_path: Path) -> None:
    result = run_benchmark(
        tmp_path, "--scale-sets", "2", "--instances", "1", "--latency-scale", "0.01",
        "--resync-interval", "4", "--observe-interval", "2", "--settle", "0", "--steady", "4")
    assert result["kind"] == "ScaleSet"
    for phase in ("converge", "steady", "restart", "delete"):
        assert phase in result, phase
    assert "drift" not in result and "baseline" not in result and "drift" in result["skipped_phases"]
    assert result["converge"]["all_ready"] and result["delete"]["all_deleted"]
    assert result["converge"]["arm"]["by_kind_and_type"].get("PUT virtualMachineScaleSets") == 2
    assert result["converge"]["floor"]["writes"]["Compute/PutVMSS"] == 2
    assert result["converge"]["azure_resources_when_ready"].get("virtualMachineScaleSets/virtualMachines") == 2
    assert result["delete"]["scale_sets_instances_left"] == 0
