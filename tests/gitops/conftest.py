"""A Kubernetes API server (the project's, with kube-apiserver's validation, defaulting and pruning) serving the
repository's CRDs, for the GitOps tests: no operator, no Azure."""

from __future__ import annotations

from pathlib import Path

import kubernetes.client
import kubernetes.config
import pytest

from azvm_sandbox.crds import load_crds
from azvm_sandbox.harness import LoopThread
from kubeapi import KubeAPIServer

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"


@pytest.fixture(scope="module")
def kube(tmp_path_factory):
    """An ApiClient for a fresh API server with every CRD of crds/ registered."""
    loop = LoopThread("gitops-kubeapi")
    api = KubeAPIServer()
    loop.call(api.start(host="127.0.0.1", port=0))
    for crd in load_crds(CRDS):
        api.register_crd(crd)
    client = kubernetes.config.new_client_from_config(
        api.write_kubeconfig(str(tmp_path_factory.mktemp("kube") / "kubeconfig")))
    yield client
    client.close()
    loop.call(api.stop())
    loop.close()


@pytest.fixture(scope="module")
def custom(kube) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(kube)
