"""A Kubernetes API server (the project's, with kube-apiserver's validation, defaulting and pruning) serving the
repository's CRDs, for the GitOps tests: no operator, no Azure."""

from __future__ import annotations

from pathlib import Path

import kubernetes.client
import pytest

from azvm_sandbox.harness import kube_api

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"


@pytest.fixture(scope="module")
def kube(tmp_path_factory):
    """An ApiClient for a fresh API server with every CRD of crds/ registered."""
    with kube_api(tmp_path_factory.mktemp("kube"), CRDS, "gitops-kubeapi") as client:
        yield client


@pytest.fixture(scope="module")
def custom(kube) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(kube)
