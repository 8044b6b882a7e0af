"""Fixtures for the in-repo Kubernetes API server tests.

The server runs in the test's event loop; the synchronous `kubernetes` client is called through
``asyncio.to_thread`` (``kubeapi_helpers.call``) so it never blocks that loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import kubernetes
import pytest

from kubeapi import KubeAPIServer
from kubeapi_helpers import Kubectl, make_crd, scaleset_crd


@pytest.fixture
async def api() -> AsyncIterator[KubeAPIServer]:
    server = KubeAPIServer(bookmark_interval=0.2)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def crd(api: KubeAPIServer) -> dict[str, Any]:
    return api.register_crd(make_crd())


@pytest.fixture
def kubeconfig(api: KubeAPIServer, tmp_path: Any) -> str:
    return api.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def client(kubeconfig: str) -> Iterator[Any]:
    """A real `kubernetes` ApiClient configured from the kubeconfig we wrote (never from ~/.kube or KUBECONFIG)."""
    api_client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    yield api_client
    api_client.close()


@pytest.fixture
def custom(client: Any) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(client)


@pytest.fixture
def core(client: Any) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(client)


@pytest.fixture
async def http(api: KubeAPIServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=api.url) as session:
        yield session


@pytest.fixture
def ss_crd(api: KubeAPIServer) -> dict[str, Any]:
    """The repository's ScaleSet CRD (crds/compute.azvm.io_scalesets.yaml), registered."""
    return api.register_crd(scaleset_crd())


@pytest.fixture
def kubectl(kubeconfig: str, tmp_path: Any) -> Kubectl:
    """The real kubectl binary with the test kubeconfig and a discovery cache of this test's own."""
    return Kubectl(kubeconfig, str(tmp_path / "kube-cache"))
