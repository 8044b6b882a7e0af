"""End-to-end fixtures: the Azure emulator, the Kubernetes API and the operator, each reached only over HTTP."""

from __future__ import annotations

import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient
from azvm_sandbox.harness import Environment
from e2e_helpers import CRDS, Cluster


@pytest.fixture
def env(tmp_path):
    environment = Environment(workdir=tmp_path, crds_dir=CRDS)
    yield environment
    environment.close()


@pytest.fixture
def operator(env):
    return env.start_operator()


@pytest.fixture
def cluster(env) -> Cluster:
    return Cluster(env.kube_api_client())


@pytest.fixture
def compute(env) -> ComputeManagementClient:
    return env.azure_client(ComputeManagementClient)


@pytest.fixture
def network(env) -> NetworkManagementClient:
    return env.azure_client(NetworkManagementClient)
