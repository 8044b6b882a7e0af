"""``kubectl azvm`` (operator/azure_vm_operator/kubectl_plugin.py, console script kubectl-azvm) against the project's
Kubernetes API with the repository's CRDs; no operator runs: the statuses it would write are written through
/status, so every command is checked on a known state, quickly. Once more through kubectl's plugin discovery when
kubectl is on PATH."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from azvm_sandbox.harness import Environment
from e2e_helpers import CRDS, Cluster

from azure_vm_operator import kubectl_plugin
from azure_vm_operator.api.constants import (
    GROUP,
    RECONCILE_REQUESTED_ANNOTATION,
    RESTART_REQUESTED_ANNOTATION,
    SCALESET_PLURAL,
    VERSION,
)

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "gitops" / "argocd" / "compute.azvm.io"

AUTOSCALE_STATUS = {
    "mode": "Enabled", "activeProfile": "business-hours", "currentReplicas": 4, "desiredReplicas": 6,
    "lastEvaluationTime": "2025-01-10T09:05:00Z", "lastScaleTime": "2025-01-10T09:05:00Z",
    "metrics": [{"rule": "cpu-high", "value": 91.5, "time": "2025-01-10T09:05:00Z"},
                {"rule": "cpu-low", "error": "MetricsUnavailable", "time": "2025-01-10T09:05:00Z", "stale": True}],
    "recentDecisions": [
        {"time": "2025-01-10T09:05:00Z", "from": 4, "to": 6, "direction": "Up", "profile": "business-hours",
         "rule": "cpu-high", "observed": 91.5, "threshold": 70, "reason": "RuleFired", "applied": True,
         "message": "cpu-high: Percentage CPU 91.5 > 70"},
        {"time": "2025-01-10T08:00:00Z", "from": 2, "to": 4, "direction": "Up", "profile": "business-hours",
         "reason": "ClampedToMin", "applied": True, "message": "business-hours starts: at least 4"},
    ],
}


@pytest.fixture
def env(tmp_path):
    # kube_token None: kubectl sends no bearer token over plain HTTP, as the test API serves it
    environment = Environment(workdir=tmp_path, crds_dir=CRDS, kube_token=None)
    yield environment
    environment.close()


def put(cluster: Cluster, path: Path, name: str, namespace: str = "default", **spec) -> dict:
    """Create the object of a gitops testdata file, then write its status as the operator would."""
    obj = yaml.safe_load(path.read_text())
    body = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": {"name": name, "namespace": namespace},
            "spec": {**obj["spec"], **spec}}
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, cluster.plural, body)
    status = obj.get("status") or {}
    if status:
        status = {**status, "observedGeneration": 1,
                  "conditions": [{**c, "observedGeneration": 1} for c in status["conditions"]]}
        cluster.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, cluster.plural, name,
                                                             {"status": status})
    return cluster.get(name, namespace)


@pytest.fixture
def fleet(env, cluster):
    scalesets = Cluster(env.kube_api_client(), SCALESET_PLURAL)
    cluster.core.create_namespace({"metadata": {"name": "team-b"}})
    put(cluster, TESTDATA / "VirtualMachine" / "testdata" / "healthy.yaml", "web-1")
    put(cluster, TESTDATA / "VirtualMachine" / "testdata" / "degraded-stalled.yaml", "db-1")
    put(cluster, TESTDATA / "VirtualMachine" / "testdata" / "healthy.yaml", "other-1", namespace="team-b")
    put(scalesets, TESTDATA / "ScaleSet" / "testdata" / "healthy.yaml", "web")
    autoscaled = yaml.safe_load((ROOT / "examples" / "scaleset-autoscale.yaml").read_text())
    scalesets.apply(autoscaled)
    scalesets.custom.patch_namespaced_custom_object_status(GROUP, VERSION, "default", SCALESET_PLURAL,
                                                           "web-autoscale", {"status": {"autoscale": AUTOSCALE_STATUS}})
    return cluster, scalesets


def azvm(env, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = kubectl_plugin.main(["--kubeconfig", env.kubeconfig, *args], out=out)
    return code, out.getvalue()


def rows(text: str) -> dict[str, list[str]]:
    lines = text.strip().split("\n")
    return {line.split()[1]: line.split() for line in lines[1:]}


def test_status_table_of_a_namespace_and_of_all(env, fleet):
    code, text = azvm(env, "status", "-n", "default")
    assert code == 0, text
    assert text.split("\n")[0].split() == ["KIND", "NAME", "READY", "REASON", "STATUS", "POWER", "SIZE", "REPLICAS",
                                           "AGE"]
    table = rows(text)
    assert set(table) == {"web-1", "db-1", "web", "web-autoscale"}
    assert table["web-1"][:8] == ["VirtualMachine", "web-1", "True", "Reconciled", "Running", "Running",
                                  "Standard_B2s", "-"]
    assert table["db-1"][:5] == ["VirtualMachine", "db-1", "False", "ImmutableFieldChanged", "Failed"]
    assert table["web"][:8] == ["ScaleSet", "web", "True", "Reconciled", "Running", "Running", "Standard_B2s", "3/3"]
    assert table["web-autoscale"][2:4] == ["Unknown", "NoStatus"]
    code, text = azvm(env, "status", "--all-namespaces")
    assert code == 0 and "NAMESPACE" in text.split("\n")[0]
    assert {line.split()[2] for line in text.strip().split("\n")[1:]} == {"web-1", "db-1", "web", "web-autoscale",
                                                                          "other-1"}
    code, text = azvm(env, "status", "-n", "nobody")
    assert code == 0 and "No resources of compute.azvm.io found in namespace nobody" in text


def test_status_of_one_resource(env, fleet):
    code, text = azvm(env, "status", "vm/db-1")
    assert code == 0, text
    assert "VirtualMachine default/db-1" in text and "Ready:        False (ImmutableFieldChanged)" in text
    stalled = next(line.split() for line in text.split("\n") if line.strip().startswith("Stalled"))
    assert stalled[:3] == ["Stalled", "True", "ImmutableFieldChanged"] and "spec.location cannot change" in text
    code, text = azvm(env, "status", "vmss/web")
    assert "Replicas:     3/3 ready, 3 current, 3 updated" in text and "LoadBalancer: 20.50.1.10" in text
    assert "Instances:" in text and "web_2" in text
    code, text = azvm(env, "status", "scalesets.compute.azvm.io/web-autoscale")
    assert "Autoscale:" in text and "scaled out 4 -> 6" in text


def test_reconcile_restart_and_power(env, fleet):
    cluster, scalesets = fleet
    assert azvm(env, "reconcile", "virtualmachine/web-1") == (0, "virtualmachines/web-1: reconcile requested\n")
    first = cluster.get("web-1")["metadata"]["annotations"][RECONCILE_REQUESTED_ANNOTATION]
    assert azvm(env, "reconcile", "azvm/web-1")[0] == 0
    assert cluster.get("web-1")["metadata"]["annotations"][RECONCILE_REQUESTED_ANNOTATION] != first  # a new value
    assert azvm(env, "restart", "web-1") == (0, "virtualmachines/web-1: restart requested\n")
    assert cluster.get("web-1")["metadata"]["annotations"][RESTART_REQUESTED_ANNOTATION]
    assert azvm(env, "restart", "ss/web")[0] == 0
    assert scalesets.get("web")["metadata"]["annotations"][RESTART_REQUESTED_ANNOTATION]
    assert azvm(env, "deallocate", "web-1")[0] == 0
    assert cluster.get("web-1")["spec"]["powerState"] == "Deallocated"
    assert azvm(env, "start", "vm/web-1")[0] == 0
    assert cluster.get("web-1")["spec"]["powerState"] == "Running"


def test_pause_and_resume_restore_the_policy_before(env, fleet):
    cluster, _ = fleet
    cluster.patch_spec("web-1", {"reconcilePolicy": "Observe"})
    assert azvm(env, "pause", "vm/web-1") == (0, "virtualmachines/web-1: paused (reconcilePolicy Observe -> Pause)\n")
    assert cluster.get("web-1")["spec"]["reconcilePolicy"] == "Pause"
    assert azvm(env, "pause", "vm/web-1")[1] == "virtualmachines/web-1: already paused\n"
    assert azvm(env, "resume", "vm/web-1")[1] == "virtualmachines/web-1: resumed (reconcilePolicy Pause -> Observe)\n"
    obj = cluster.get("web-1")
    assert obj["spec"]["reconcilePolicy"] == "Observe"
    assert kubectl_plugin.PAUSED_FROM_ANNOTATION not in (obj["metadata"].get("annotations") or {})
    assert azvm(env, "pause", "scaleset/web")[0] == 0 and azvm(env, "resume", "scaleset/web")[0] == 0
    assert fleet[1].get("web")["spec"]["reconcilePolicy"] == "Manage"


def test_scale_and_describe_autoscale(env, fleet, capsys):
    _, scalesets = fleet
    assert azvm(env, "scale", "web", "5") == (0, "scalesets/web: scaled to 5\n")
    assert scalesets.get("web")["spec"]["replicas"] == 5
    code, text = azvm(env, "describe-autoscale", "web-autoscale")
    assert code == 0, text
    assert text.split("\n")[:6] == [
        "ScaleSet default/web-autoscale",
        "Mode:        Enabled (profile business-hours)",
        "Bounds:      2 .. 10",
        "Replicas:    4 now, 6 wanted",
        "Evaluated:   2025-01-10T09:05:00Z (last scale 2025-01-10T09:05:00Z)",
        "Metrics:",
    ]
    assert "  cpu-high: 91.5 at 2025-01-10T09:05:00Z" in text
    assert "  cpu-low: unreadable: MetricsUnavailable at 2025-01-10T09:05:00Z" in text
    decisions = text.split("Decisions (newest first):\n")[1].rstrip("\n").split("\n")
    assert decisions == [
        "  2025-01-10T09:05:00Z  scaled out 4 -> 6 (reason RuleFired, rule cpu-high observed 91.5 vs 70): "
        "cpu-high: Percentage CPU 91.5 > 70",
        "  2025-01-10T08:00:00Z  scaled out 2 -> 4 (reason ClampedToMin): business-hours starts: at least 4",
    ]
    assert azvm(env, "describe-autoscale", "web")[0] == 1
    assert "has no spec.autoscale" in capsys.readouterr().err


def test_errors_are_one_line_and_exit_1(env, fleet, capsys):
    assert azvm(env, "reconcile", "vm/missing")[0] == 1
    assert capsys.readouterr().err == "error: VirtualMachine default/missing not found\n"
    assert azvm(env, "pause", "web-1")[0] == 1
    assert "give it as KIND/NAME" in capsys.readouterr().err
    assert azvm(env, "pause", "pod/web-1")[0] == 1
    assert "unknown kind 'pod'" in capsys.readouterr().err
    assert azvm(env, "scale", "vm/web-1", "2")[0] == 1


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
def test_through_kubectl_plugin_discovery(env, fleet):
    script = Path(sys.executable).parent / "kubectl-azvm"
    assert script.exists(), "the console script kubectl-azvm is not installed (pip install -e .)"
    environ = {**os.environ, "PATH": f"{script.parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "KUBECONFIG": env.kubeconfig}
    listed = subprocess.run(["kubectl", "plugin", "list"], env=environ, capture_output=True, text=True, timeout=30)
    assert str(script) in listed.stdout
    result = subprocess.run(["kubectl", "azvm", "status", "-n", "default"], env=environ, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert rows(result.stdout)["web-1"][2:4] == ["True", "Reconciled"]
    result = subprocess.run(["kubectl", "azvm", "reconcile", "vm/web-1"], env=environ, capture_output=True,
                            text=True, timeout=30)
    assert result.stdout == "virtualmachines/web-1: reconcile requested\n", result.stderr


# ---- import: an Azure VM made outside Kubernetes, observed -----------------------------------------------------


def test_import_prints_an_observe_manifest_the_operator_observes_without_writing(env, monkeypatch):
    from azvm_sandbox.harness import CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_ID, TENANT_ID
    from e2e_helpers import create_azure_vm, wait_for

    vm = create_azure_vm(env, "legacy-web", resource_group="legacy-rg", tags={"team": "web", "costCenter": "42"})
    # the operator's own settings, from the environment as `azure-vm-operator run` reads them
    for key, value in {"AZURE_ENDPOINT": env.emulator.url, "AZURE_CA": env.emulator.ca_path,
                       "AZURE_AUTHORITY_HOST": env.emulator.url, "AZURE_DISABLE_INSTANCE_DISCOVERY": "true",
                       "AZURE_TENANT_ID": TENANT_ID, "AZURE_CLIENT_ID": CLIENT_ID,
                       "AZURE_CLIENT_SECRET": CLIENT_SECRET, "AZVM_CLUSTER_ID": "test-cluster"}.items():
        monkeypatch.setenv(key, value)
    env.clear_arm_requests()
    out = io.StringIO()
    assert kubectl_plugin.main(["import", vm["id"], "-n", "default", "--kubeconfig", env.kubeconfig], out=out) == 0
    text = out.getvalue()
    assert all(r["method"] == "GET" for r in env.arm_requests() if "/providers/" in r.get("path", "")), \
        "import only reads"

    manifest = yaml.safe_load(text)
    assert manifest["kind"] == "VirtualMachine" and manifest["metadata"] == {"name": "legacy-web",
                                                                             "namespace": "default"}
    spec = manifest["spec"]
    assert {k: spec[k] for k in ("location", "resourceGroup", "subscriptionId", "azureName", "size",
                                 "adminUsername", "reconcilePolicy", "deletionPolicy", "adoptionPolicy")} == {
        "location": "westeurope", "resourceGroup": "legacy-rg", "subscriptionId": SUBSCRIPTION_ID,
        "azureName": "legacy-web", "size": "Standard_B2s", "adminUsername": "azureuser",
        "reconcilePolicy": "Observe", "deletionPolicy": "Orphan", "adoptionPolicy": "Always"}
    assert spec["image"]["marketplace"]["offer"] == "0001-com-ubuntu-server-jammy"
    assert spec["tags"] == {"team": "web", "costCenter": "42"} and len(spec["sshPublicKeys"]) == 1
    assert spec["network"]["subnetId"].endswith("/virtualNetworks/brownfield-vnet/subnets/s")
    assert spec["powerState"] == "Running"
    # the preview, as comments: what Manage would write (the ownership tag, nothing else)
    preview = [line for line in text.splitlines() if line.startswith("#")]
    assert any("azvm-owner=test-cluster/VirtualMachine/default/legacy-web" in line for line in preview), preview
    assert any("change nothing else" in line for line in preview), preview

    env.clear_arm_requests()
    env.start_operator()
    cluster = Cluster(env.kube_api_client())
    cluster.apply(manifest)
    cluster.wait_condition("legacy-web", "Ready", timeout=60)
    obj = cluster.get("legacy-web")
    assert obj["spec"]["reconcilePolicy"] == "Observe"
    assert obj["status"]["printableStatus"] == "Observing"
    assert obj["status"]["azureResourceId"].lower() == vm["id"].lower()
    assert not obj["status"].get("drift"), obj["status"].get("drift")  # the spec reproduces the VM
    wait_for(lambda: cluster.get("legacy-web")["status"].get("lastObservedTime"), 10, what="an observation")
    writes = [r for r in env.arm_requests() if r["method"] not in ("GET", "HEAD")
              and "/oauth2/" not in r.get("path", "") and "/providers/" in r.get("path", "")]
    assert not writes, writes
    assert (cluster.condition("legacy-web", "Drifted") or {}).get("status") != "True"


def test_import_refuses_what_is_not_a_vm_or_scale_set(env, monkeypatch, capsys):
    assert kubectl_plugin.main(["import", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/"
                                          "networkInterfaces/nic", "--kubeconfig", env.kubeconfig]) == 1
    assert "is not the ARM id of a VM" in capsys.readouterr().err
