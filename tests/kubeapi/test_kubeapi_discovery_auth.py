"""Discovery documents (as Kopf and the client read them), bearer-token auth, kubeconfig, Table output."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp
import kubernetes
import pytest
from kubernetes.client import ApiException

from kubeapi import KubeAPIServer
from kubeapi_helpers import GROUP, KIND, PLURAL, VERSION, WIDGETS, call, make_crd, widget


@pytest.mark.usefixtures("crd")
async def test_discovery(api: KubeAPIServer, http: Any) -> None:
    async with http.get("/version") as r:
        assert (await r.json())["major"] == "1"
    async with http.get("/api") as r:
        assert (await r.json())["versions"] == ["v1"]
    async with http.get("/api/v1") as r:
        core = {res["name"]: res for res in (await r.json())["resources"]}
    assert {"namespaces", "events", "secrets", "configmaps"} <= set(core)
    assert core["namespaces"]["namespaced"] is False and core["events"]["namespaced"] is True
    async with http.get("/apis") as r:
        groups = {g["name"]: g for g in (await r.json())["groups"]}
    assert {GROUP, "apiextensions.k8s.io", "coordination.k8s.io", "events.k8s.io"} <= set(groups)
    assert groups[GROUP]["preferredVersion"] == {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
    async with http.get(f"/apis/{GROUP}") as r:
        assert (await r.json())["kind"] == "APIGroup"
    async with http.get(f"/apis/{GROUP}/{VERSION}") as r:
        doc = await r.json()
    resources = {res["name"]: res for res in doc["resources"]}
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == f"{GROUP}/{VERSION}"
    main = resources[PLURAL]
    assert main["kind"] == KIND and main["singularName"] == "widget" and main["namespaced"] is True
    assert main["shortNames"] == ["wd"] and main["categories"] == ["all"]
    assert {"get", "list", "watch", "create", "update", "patch", "delete"} <= set(main["verbs"])
    assert resources[f"{PLURAL}/status"]["verbs"] == ["get", "patch", "update"]
    assert resources[f"{PLURAL}/scale"]["kind"] == "Scale" and resources[f"{PLURAL}/scale"]["group"] == "autoscaling"
    async with http.get("/apis/nope.example.com/v1") as r:
        assert r.status == 404


async def test_multiple_versions_share_storage(api: KubeAPIServer, http: Any) -> None:
    api.register_crd(make_crd(versions=["v1", "v1beta1"]))
    async with http.get(f"/apis/{GROUP}") as r:
        assert (await r.json())["preferredVersion"]["version"] == "v1"
    async with http.post(WIDGETS, json=widget("w1")) as r:
        assert r.status == 201
    async with http.get(f"/apis/{GROUP}/v1beta1/namespaces/default/{PLURAL}/w1") as r:
        assert (await r.json())["apiVersion"] == f"{GROUP}/v1beta1"


async def test_kopf_scanning_sees_the_crd(api: KubeAPIServer) -> None:
    """Kopf's own discovery parser (kopf._cogs.clients.scanning) reads our documents."""
    import logging

    from kopf._cogs.clients import scanning
    from kopf._cogs.clients.auth import vault_var
    from kopf._cogs.configs.configuration import OperatorSettings
    from kopf._cogs.structs import credentials

    api.register_crd(make_crd())
    vault = credentials.Vault()
    await vault.populate({"test": credentials.ConnectionInfo(server=api.url)})
    token = vault_var.set(vault)
    try:
        resources = await scanning.scan_resources(settings=OperatorSettings(), logger=logging.getLogger(__name__))
    finally:
        vault_var.reset(token)
        await vault.close()
    widgets = [r for r in resources if r.group == GROUP]
    assert len(widgets) == 1
    assert widgets[0].subresources == frozenset({"status", "scale"}) and widgets[0].namespaced
    assert any(r.plural == "namespaces" and r.group == "" for r in resources)


async def test_token_auth(tmp_path: Any) -> None:
    server = KubeAPIServer(token="s3cret")
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/api/v1/namespaces") as r:
                assert r.status == 401
                status = await r.json()
                assert status["kind"] == "Status" and status["reason"] == "Unauthorized"
            async with http.get(f"{server.url}/api/v1/namespaces", headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401
            async with http.get(f"{server.url}/healthz") as r:
                assert r.status == 200
        path = server.write_kubeconfig(tmp_path / "kubeconfig")
        client = kubernetes.config.new_client_from_config(config_file=path)
        core = kubernetes.client.CoreV1Api(client)
        assert "default" in [ns.metadata.name for ns in (await call(core.list_namespace)).items]
        client.close()
        # load_kube_config (the global default configuration) works with it too.
        await call(kubernetes.config.load_kube_config, config_file=path)
        assert kubernetes.client.Configuration.get_default_copy().host == server.url
        anonymous = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(
            kubernetes.client.Configuration(host=server.url)))
        with pytest.raises(ApiException) as e:
            await call(anonymous.list_namespace)
        assert e.value.status == 401
    finally:
        await server.stop()


@pytest.mark.usefixtures("crd")
async def test_table_output(api: KubeAPIServer, http: Any) -> None:
    rt = api.registry.lookup(GROUP, VERSION, PLURAL)
    api.registry.create(rt, "default", widget("w1", size=3))
    api.registry.patch(rt, "default", "w1", "application/merge-patch+json",
                       {"status": {"conditions": [{"type": "Other", "status": "False"},
                                                  {"type": "Ready", "status": "True"}]}}, "status")
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    async with http.get(WIDGETS, headers={"Accept": accept}) as r:
        table = await r.json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Location", "Size", "Ready"]
    assert table["rows"][0]["cells"] == ["w1", "westeurope", 3, "True"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    async with http.get(f"{WIDGETS}/w1", headers={"Accept": accept}) as r:
        assert (await r.json())["rows"][0]["cells"][0] == "w1"


async def test_standalone_cli(tmp_path: Any) -> None:
    kubeconfig = tmp_path / "kc"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubeapi", "--port", "0", "--kubeconfig", str(kubeconfig),
        stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        assert url.startswith("http://127.0.0.1:")
        assert url in kubeconfig.read_text()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/api/v1/namespaces/default") as r:
                assert (await r.json())["metadata"]["name"] == "default"
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
