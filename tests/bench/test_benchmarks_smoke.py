"""The fleet benchmark (bench/operator_fleet.py) at a tiny size, only to keep it working: convergence, steady state,
drift, the ASO-style baseline and deletion run, and the JSON and PNG are written. Timings are never asserted: they
belong to docs/benchmarks.md, measured on a quiet machine. (The restart and memory phases are left out to stay
well under a minute.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_fleet_benchmark_runs_every_phase_and_writes_its_results(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("psutil")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}  # the embedded Kubernetes API
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "operator_fleet.py"), "--vms", "3", "--latency-scale", "0.01",
         "--resync-interval", "4", "--observe-interval", "2", "--settle", "0", "--steady", "6", "--baseline", "6",
         "--drift-samples", "1", "--no-restart",
         "--timeout", "60", "--crds", str(ROOT / "crds"), "--out", str(tmp_path), "--label", "smoke"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    result = json.loads((tmp_path / "smoke.json").read_text())
    for phase in ("converge", "steady", "drift", "baseline", "delete"):
        assert phase in result, phase
    assert result["converge"]["all_ready"] and result["delete"]["all_deleted"]
    assert result["converge"]["arm"]["by_kind"].get("PUT", 0) >= 3  # a NIC and a VM per VirtualMachine
    assert result["baseline"]["arm"]["by_kind"].get("PUT", 0) > 0
    assert (tmp_path / "smoke.png").stat().st_size > 10_000
