"""The three programs as separate processes, started from their command lines as a user would start them:
`azure-arm-emulator`, a Kubernetes API server, and `azure-vm-operator run` configured only by flags and
environment variables. Also checks the metrics endpoint and that the client secret never reaches the logs."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import kubernetes.client
import kubernetes.config
import pytest
from e2e_helpers import CRDS, Cluster, vm_manifest, wait_for


SECRET = "s3cr3t-value-that-must-not-leak"


class Process:
    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.output: list[str] = []
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, **(env or {})})
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"{pattern!r} not printed; output so far:\n{''.join(self.output)}")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def processes():
    started: list[Process] = []
    yield started
    for process in reversed(started):
        if process.proc.poll() is None:
            process.proc.kill()


def start_processes(tmp_path: Path, processes: list[Process], *operator_args: str,
                    env: dict[str, str] | None = None) -> tuple[Process, Process, Process, str]:
    """The emulator, the Kubernetes API and `azure-vm-operator run` (with these extra arguments) as processes;
    returns them and the kubeconfig's path."""
    bin_dir = Path(sys.executable).parent
    emulator = Process([str(bin_dir / "azure-arm-emulator"), "--port", "0", "--latency-scale", "0",
                        "--state-dir", str(tmp_path / "azure")])
    processes.append(emulator)
    url = emulator.expect(r"listening on (https://\S+)").group(1)
    ca = emulator.expect(r"CA certificate: (\S+)").group(1)

    kubeconfig = str(tmp_path / "kubeconfig")
    kubeapi = Process([sys.executable, "-m", "kubeapi", "--port", "0", "--token", "t0k3n",
                       "--kubeconfig", kubeconfig, *sum((["--crd", str(p)] for p in CRDS.glob("*.yaml")), [])])
    processes.append(kubeapi)
    kubeapi.expect(r"^http://")

    operator = Process(
        [str(bin_dir / "azure-vm-operator"), "run", "--kubeconfig", kubeconfig, "--azure-endpoint", url,
         "--azure-ca", ca, "--resync-interval", "2", "--cluster-id", "proc", *operator_args],
        env={"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": SECRET,
             "AZURE_AUTHORITY_HOST": url, "AZURE_DISABLE_INSTANCE_DISCOVERY": "true",
             "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-0000000000aa", **(env or {})},
    )
    processes.append(operator)
    return emulator, kubeapi, operator, kubeconfig


def test_operator_process_against_emulator_process(tmp_path: Path, processes: list[Process]):
    metrics_port = free_port()
    emulator, kubeapi, operator, kubeconfig = start_processes(tmp_path, processes,
                                                              "--metrics-port", str(metrics_port))

    api_client = kubernetes.config.new_client_from_config(kubeconfig)
    cluster = Cluster(api_client)
    cluster.apply(vm_manifest("proc-vm"))
    cluster.wait_condition("proc-vm", "Ready", timeout=60)
    assert operator.proc.poll() is None
    assert cluster.get("proc-vm")["status"]["azureResourceId"].startswith(
        "/subscriptions/00000000-0000-0000-0000-0000000000aa/")

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            return response.read().decode()

    text = wait_for(lambda: 'name="proc-vm"' in (t := scrape()) and t, 10, what="metrics for the VM")
    assert re.search(r'azvm_reconcile_total\{kind="VirtualMachine",result="success"\} [1-9]', text)
    assert re.search(r'azvm_virtualmachine_info\{[^}]*name="proc-vm"[^}]*power_state="Running"', text)
    # The emulator throttles by default, like Azure: the operator exports what ARM says is left.
    assert re.search(r'azvm_arm_requests_total\{method="PUT",status="20[01]"\} [1-9]', text)
    assert re.search(r'azvm_arm_ratelimit_remaining\{bucket="subscription-reads",'
                     r'subscription="00000000-0000-0000-0000-0000000000aa"\} [1-9]', text)
    assert re.search(r'azvm_arm_ratelimit_remaining\{bucket="Microsoft.Compute/PutVM3Min",[^}]*\} \d', text)

    cluster.delete("proc-vm")
    wait_for(lambda: cluster.get("proc-vm") is None, 30, what="the VirtualMachine to be released")
    assert operator.stop() == 0, "".join(operator.output)
    api_client.close()
    everything = "".join(operator.output) + "".join(emulator.output) + "".join(kubeapi.output) + text
    assert SECRET not in everything


def test_json_logs_carry_the_resource_identity(tmp_path: Path, processes: list[Process]):
    """`--log-format json`: every line the operator prints is one JSON object with time, level, logger and message;
    every line about the VM (Kopf's handler lines, the frame's own) names it by kind, namespace and name."""
    emulator, kubeapi, operator, kubeconfig = start_processes(tmp_path, processes, "--log-format", "json",
                                                              "--metrics-port", str(free_port()))
    api_client = kubernetes.config.new_client_from_config(kubeconfig)
    cluster = Cluster(api_client)
    cluster.apply(vm_manifest("json-vm", deletionPolicy="Orphan"))
    cluster.wait_condition("json-vm", "Ready", timeout=60)
    cluster.delete("json-vm")  # Orphan: the frame logs that it leaves the VM in Azure
    wait_for(lambda: cluster.get("json-vm") is None, 30, what="the VirtualMachine to be released")
    assert operator.stop() == 0, "".join(operator.output)
    api_client.close()

    lines = [json.loads(line) for line in operator.output if line.strip()]  # each one parses, or this fails
    assert lines and all(isinstance(line, dict) for line in lines)
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
    identity = {"kind": "VirtualMachine", "namespace": "default", "name": "json-vm"}
    about_vm = [line for line in lines if line.get("name") == "json-vm"]
    assert about_vm, lines
    assert all(line.items() >= identity.items() for line in about_vm), about_vm
    assert any(line["logger"] == "kopf.objects" for line in about_vm), about_vm  # Kopf's per-object lines
    assert any(line["logger"].startswith("azure_vm_operator.") and "leaving its Azure resources" in line["message"]
               for line in about_vm), about_vm  # and ours
    # the operator's (or Kopf's) line mentioning the VM without its identity would be one a query by name misses
    assert not [line for line in lines if line["logger"].startswith(("azure_vm_operator", "kopf"))
                and "json-vm" in line["message"] and line.get("name") != "json-vm"]
    assert SECRET not in "".join(operator.output)
