"""One writer of spec.replicas at a time, with the operator running: a GitOps tool re-applying a ScaleSet manifest
that leaves replicas out never undoes a count set through /scale (kubectl scale, an HPA, KEDA), whether it applies
client-side (kubectl apply, Argo CD) or server-side (Flux). The real kubectl against the test Kubernetes API."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from azure.mgmt.compute import ComputeManagementClient
from e2e_helpers import CRDS, Cluster, wait_for
from test_scaleset import instances, scale_set_manifest, vmss

from azure_vm_operator.api.constants import SCALESET_PLURAL
from azvm_sandbox.harness import Environment

KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (make install installs it)")


@pytest.fixture
def env(tmp_path):
    """kubectl sends no bearer token over plain HTTP: this Kubernetes API asks for none."""
    environment = Environment(workdir=tmp_path, crds_dir=CRDS, kube_token=None)
    yield environment
    environment.close()


def kubectl(env, *args: str, manifest: dict[str, Any] | None = None) -> str:
    command = [str(KUBECTL), f"--kubeconfig={env.kubeconfig}", f"--cache-dir={env.workdir / 'kubectl-cache'}", *args]
    result = subprocess.run(command, input=yaml.safe_dump(manifest) if manifest else None, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "KUBECONFIG": ""})
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


@pytest.mark.parametrize("apply", [
    ("apply", "--validate=false", "-f", "-"),  # client-side three-way merge: kubectl apply, Argo CD
    ("apply", "--validate=false", "--server-side", "--field-manager=flux", "-f", "-"),  # server-side apply: Flux
], ids=["client-side", "server-side"])
def test_reapplying_a_manifest_without_replicas_keeps_the_scaled_count(env, operator, apply):
    sets = Cluster(env.kube_api_client(), SCALESET_PLURAL)
    compute = env.azure_client(ComputeManagementClient)
    manifest = scale_set_manifest("gitops")
    del manifest["spec"]["replicas"]  # the manifest in Git leaves the count to whoever scales the set
    kubectl(env, *apply, manifest=manifest)
    sets.wait_condition("gitops", "Ready", timeout=60)
    assert vmss(compute, "gitops")["sku"]["capacity"] == 1  # nothing asked for more: Azure's default count

    kubectl(env, "scale", "scalesets/gitops", "--replicas=3")  # what an HPA does through /scale
    wait_for(lambda: len(instances(compute, "gitops")) == 3, 60, what="three instances")
    sets.wait_condition("gitops", "Ready", timeout=60)

    manifest["spec"]["tags"] = {"team": "platform", "release": "2"}  # the next sync from Git: a change, no replicas
    kubectl(env, *apply, manifest=manifest)
    wait_for(lambda: vmss(compute, "gitops")["tags"].get("release") == "2", 30, what="the synced change in Azure")
    sets.wait_condition("gitops", "Ready", timeout=60)
    assert sets.get("gitops")["spec"]["replicas"] == 3
    assert vmss(compute, "gitops")["sku"]["capacity"] == 3 and len(instances(compute, "gitops")) == 3
    status = yaml.safe_load(kubectl(env, "get", "scalesets/gitops", "-o", "yaml"))["status"]
    assert status["replicas"] == 3 and status["selector"] == "compute.azvm.io/scaleset=gitops"


def test_status_shows_who_owns_the_count(env, operator):
    sets = Cluster(env.kube_api_client(), SCALESET_PLURAL)
    manifest = scale_set_manifest("owned", replicas=1)
    kubectl(env, "apply", "--validate=false", "--server-side", "--field-manager=flux", "-f", "-", manifest=manifest)
    sets.wait_condition("owned", "Ready", timeout=60)
    wait_for(lambda: sets.get("owned")["status"].get("replicasOwner") == "flux", 30, what="flux owns replicas")
    kubectl(env, "scale", "scalesets/owned", "--replicas=2")  # an HPA/KEDA-like writer takes the field over
    wait_for(lambda: sets.get("owned")["status"].get("replicasOwner") == "kubectl (/scale)", 60,
             what="the scaler named as the owner")
    sets.wait_condition("owned", "Ready", timeout=60)
