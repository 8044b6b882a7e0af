"""End to end: a real Kopf operator logs in through the kubeconfig we write, discovers and watches a CRD,
adds its finalizer, runs create/delete handlers, writes status, and lets the object go."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf
import pytest

from kubeapi import KubeAPIServer
from kubeapi_helpers import GROUP, PLURAL, VERSION, call, make_crd, wait_for, widget

FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


@pytest.fixture
async def secured_api() -> Any:
    server = KubeAPIServer(token="e2e-token", bookmark_interval=1.0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_kopf_operator_end_to_end(secured_api: KubeAPIServer, tmp_path: Any,
                                        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import kubernetes

    caplog.set_level(logging.INFO)
    api = secured_api
    api.register_crd(make_crd())
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    # Kopf's own kubeconfig login reads $KUBECONFIG at login time, exactly as against a real cluster.
    monkeypatch.setenv("KUBECONFIG", kubeconfig)

    registry = kopf.OperatorRegistry()
    created: list[str] = []
    deleted: list[str] = []

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.create(GROUP, VERSION, PLURAL, id="on_create", registry=registry)
    async def on_create(name: str, spec: Any, patch: kopf.Patch, **_: Any) -> dict[str, Any]:
        created.append(name)
        patch.status["phase"] = "Created"
        return {"location": spec["location"]}

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="on_delete", registry=registry)
    async def on_delete(name: str, **_: Any) -> None:
        deleted.append(name)

    ready = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    operator = asyncio.create_task(kopf.operator(
        registry=registry, clusterwide=True, standalone=True, ready_flag=ready,
    ))
    try:
        await asyncio.wait_for(ready.wait(), 10)

        client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
        custom = kubernetes.client.CustomObjectsApi(client)
        await call(custom.create_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, widget("vm1"))

        def current() -> dict[str, Any] | None:
            return api.get_object(GROUP, VERSION, PLURAL, "default", "vm1")

        await wait_for(lambda: created == ["vm1"], timeout=10)
        obj = await wait_for(lambda: (o := current()) and (o.get("status") or {}).get("on_create") and o, timeout=10)
        assert obj["status"]["phase"] == "Created"
        assert obj["status"]["on_create"] == {"location": "westeurope"}
        assert FINALIZER in obj["metadata"]["finalizers"]
        assert obj["metadata"]["generation"] == 1  # Kopf's annotations and status never bump generation.

        await call(custom.delete_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "vm1")
        await wait_for(lambda: deleted == ["vm1"], timeout=10)
        await wait_for(lambda: current() is None, timeout=10)
        client.close()
    finally:
        operator.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(operator, 10)

    assert loop.time() - started < 15, "a watch lost events: Kopf waited for its inactivity reconnect"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], \
        [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
