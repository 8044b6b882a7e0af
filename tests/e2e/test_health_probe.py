"""The health endpoint the Helm chart's probes use (`--health-port` / AZVM_HEALTH_PORT): two `azure-vm-operator run`
processes with leader election against the test Kubernetes API, as the chart's two replicas run. Both answer
/healthz (liveness) and /readyz (readiness): the leader once Kopf is ready, the standby while it waits for the
Lease, so a rollout never waits on a standby and the kubelet never kills one. Both serve /metrics too (the standby
from the start), so no scrape target of the chart's Service is down."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from e2e_helpers import CRDS, wait_for
from test_processes import Process, free_port, processes  # noqa: F401 - the fixture


def probe(port: int, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None  # not listening (yet)


def test_leader_and_standby_answer_liveness_and_readiness(tmp_path: Path, processes: list[Process]):  # noqa: F811
    kubeconfig = str(tmp_path / "kubeconfig")
    kubeapi = Process([sys.executable, "-m", "kubeapi", "--port", "0", "--token", "t0k3n",
                       "--kubeconfig", kubeconfig, *sum((["--crd", str(p)] for p in CRDS.glob("*.yaml")), [])])
    processes.append(kubeapi)
    kubeapi.expect(r"^http://")

    bin_dir = Path(sys.executable).parent
    ports, metrics_ports = [], []
    for replica in range(2):
        port, metrics_port = free_port(), free_port()
        ports.append(port)
        metrics_ports.append(metrics_port)
        operator = Process(
            [str(bin_dir / "azure-vm-operator"), "run", "--kubeconfig", kubeconfig, "--leader-elect",
             "--metrics-port", str(metrics_port)],
            # the chart sets the port through the environment
            env={"AZVM_HEALTH_PORT": str(port), "POD_NAMESPACE": "default", "AZURE_TENANT_ID": "t",
                 "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s",
                 "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-0000000000aa"},
        )
        processes.append(operator)
        operator.expect(r"health endpoint on port %d" % port)

    for port in ports:
        wait_for(lambda: probe(port, "/healthz") == 200, 20, what=f"/healthz on {port}")
        wait_for(lambda: probe(port, "/readyz") == 200, 30, what=f"/readyz on {port}")
    assert probe(ports[0], "/nothing") == 404
    for port in metrics_ports:
        assert probe(port, "/metrics") == 200
    for process in processes[1:]:
        assert process.proc.poll() is None, "".join(process.output)
    for process in reversed(processes[1:]):
        assert process.stop() in (0, 1), "".join(process.output)
