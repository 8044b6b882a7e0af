"""Create/get/list/update/patch/delete through the real `kubernetes` client, pinned to kube-apiserver behaviour."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes.client import ApiException

from kubeapi import KubeAPIServer
from kubeapi_helpers import GROUP, KIND, PLURAL, VERSION, WIDGETS, call, widget

pytestmark = pytest.mark.usefixtures("crd")

JSON_PATCH = "application/json-patch+json"


def status_of(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


async def create(custom: Any, body: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    return await call(custom.create_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, body)


async def test_create_fills_server_metadata(custom: Any) -> None:
    obj = await create(custom, widget("w1"))
    meta = obj["metadata"]
    assert obj["apiVersion"] == f"{GROUP}/{VERSION}" and obj["kind"] == KIND
    assert meta["name"] == "w1" and meta["namespace"] == "default"
    assert len(meta["uid"]) == 36
    assert int(meta["resourceVersion"]) > 0
    assert meta["generation"] == 1
    assert meta["creationTimestamp"].endswith("Z")
    got = await call(custom.get_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1")
    assert got == obj


async def test_duplicate_create_is_409_already_exists(custom: Any) -> None:
    await create(custom, widget("w1"))
    with pytest.raises(ApiException) as e:
        await create(custom, widget("w1"))
    assert e.value.status == 409
    status = status_of(e.value)
    assert status["kind"] == "Status" and status["status"] == "Failure" and status["reason"] == "AlreadyExists"
    assert status["message"] == f'{PLURAL}.{GROUP} "w1" already exists'
    assert status["details"] == {"name": "w1", "group": GROUP, "kind": PLURAL}


async def test_get_missing_is_404_not_found(custom: Any) -> None:
    with pytest.raises(ApiException) as e:
        await call(custom.get_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "nope")
    assert e.value.status == 404
    assert status_of(e.value)["reason"] == "NotFound"
    assert status_of(e.value)["message"] == f'{PLURAL}.{GROUP} "nope" not found'


async def test_create_in_missing_namespace_is_404(custom: Any) -> None:
    with pytest.raises(ApiException) as e:
        await create(custom, widget("w1"), namespace="ghost")
    assert e.value.status == 404
    assert status_of(e.value)["message"] == 'namespaces "ghost" not found'


async def test_namespace_mismatch_is_400(custom: Any) -> None:
    body = widget("w1")
    body["metadata"]["namespace"] = "kube-system"
    with pytest.raises(ApiException) as e:
        await create(custom, body)
    assert e.value.status == 400


async def test_generate_name(custom: Any) -> None:
    a = await create(custom, widget(None))
    b = await create(custom, widget(None))
    assert a["metadata"]["name"].startswith("w-") and len(a["metadata"]["name"]) == len("w-") + 5
    assert a["metadata"]["name"] != b["metadata"]["name"]


async def test_resource_version_is_global_and_monotonic(custom: Any, core: Any) -> None:
    rvs = []
    for i in range(5):
        rvs.append(int((await create(custom, widget(f"w{i}")))["metadata"]["resourceVersion"]))
        cm = await call(core.create_namespaced_config_map, "default", {"metadata": {"name": f"cm{i}"}})
        rvs.append(int(cm.metadata.resource_version))
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)
    patched = await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w0",
                         {"metadata": {"labels": {"a": "b"}}})
    assert int(patched["metadata"]["resourceVersion"]) > rvs[-1]


async def test_generation_bumps_on_spec_change_only(custom: Any) -> None:
    await create(custom, widget("w1", size=2))
    labelled = await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                          {"metadata": {"labels": {"x": "y"}, "annotations": {"k": "v"}}})
    assert labelled["metadata"]["generation"] == 1
    status = await call(custom.patch_namespaced_custom_object_status, GROUP, VERSION, "default", PLURAL, "w1",
                        {"status": {"phase": "Running"}})
    assert status["metadata"]["generation"] == 1
    spec = await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                      {"spec": {"size": 3}})
    assert spec["metadata"]["generation"] == 2


async def test_noop_patch_keeps_resource_version(custom: Any) -> None:
    obj = await create(custom, widget("w1", size=2))
    same = await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                      {"spec": {"size": 2}})
    assert same["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


async def test_status_subresource_separation(custom: Any) -> None:
    created = await create(custom, {**widget("w1"), "status": {"phase": "Bogus"}})
    assert "status" not in created  # create cannot set status when the status subresource is enabled.
    # The main endpoint ignores status changes...
    patched = await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                         {"spec": {"size": 5}, "status": {"phase": "Ignored"}})
    assert patched["spec"]["size"] == 5 and "status" not in patched
    # ...and the status endpoint ignores everything but status (spec, labels) and never bumps generation.
    status = await call(custom.patch_namespaced_custom_object_status, GROUP, VERSION, "default", PLURAL, "w1",
                        {"spec": {"size": 9}, "metadata": {"labels": {"l": "v"}}, "status": {"phase": "Running"}})
    assert status["status"] == {"phase": "Running"}
    assert status["spec"]["size"] == 5 and "labels" not in status["metadata"]
    assert status["metadata"]["generation"] == 2
    # PUT of the whole object keeps the current status.
    current = await call(custom.get_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1")
    current["status"] = {"phase": "Overwritten"}
    current["spec"]["size"] = 6
    replaced = await call(custom.replace_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1", current)
    assert replaced["status"] == {"phase": "Running"} and replaced["spec"]["size"] == 6
    # PUT of /status replaces the status only.
    replaced["status"] = {"phase": "Done"}
    replaced["spec"]["size"] = 7
    rs = await call(custom.replace_namespaced_custom_object_status, GROUP, VERSION, "default", PLURAL, "w1", replaced)
    assert rs["status"] == {"phase": "Done"} and rs["spec"]["size"] == 6
    got = await call(custom.get_namespaced_custom_object_status, GROUP, VERSION, "default", PLURAL, "w1")
    assert got["status"] == {"phase": "Done"}


async def test_put_requires_matching_resource_version(custom: Any) -> None:
    obj = await create(custom, widget("w1"))
    stale = json.loads(json.dumps(obj))
    obj["spec"]["size"] = 2
    await call(custom.replace_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1", obj)
    stale["spec"]["size"] = 3
    with pytest.raises(ApiException) as e:
        await call(custom.replace_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1", stale)
    assert e.value.status == 409
    status = status_of(e.value)
    assert status["reason"] == "Conflict"
    assert status["message"] == (f'Operation cannot be fulfilled on {PLURAL}.{GROUP} "w1": the object has been '
                                 "modified; please apply your changes to the latest version and try again")
    # Custom resources do not allow unconditional updates.
    del stale["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as e:
        await call(custom.replace_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1", stale)
    assert e.value.status == 422


async def test_put_missing_is_404(custom: Any) -> None:
    body = widget("ghost")
    body["metadata"]["resourceVersion"] = "1"
    with pytest.raises(ApiException) as e:
        await call(custom.replace_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "ghost", body)
    assert e.value.status == 404


async def test_merge_patch_with_resource_version_is_a_precondition(custom: Any) -> None:
    obj = await create(custom, widget("w1"))
    rv = obj["metadata"]["resourceVersion"]
    ok = await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                    {"metadata": {"resourceVersion": rv}, "spec": {"size": 2}})
    with pytest.raises(ApiException) as e:
        await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                   {"metadata": {"resourceVersion": rv}, "spec": {"size": 3}})
    assert e.value.status == 409 and status_of(e.value)["reason"] == "Conflict"
    assert ok["spec"]["size"] == 2


async def test_json_patch_and_failed_test_is_422(custom: Any) -> None:
    obj = await create(custom, widget("w1"))
    rv = obj["metadata"]["resourceVersion"]
    patched = await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1", [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
        {"op": "replace", "path": "/spec/size", "value": 4},
    ], _content_type=JSON_PATCH)
    assert patched["metadata"]["finalizers"] == ["x/y"] and patched["spec"]["size"] == 4
    with pytest.raises(ApiException) as e:  # the same test again: the resourceVersion has moved on.
        await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1", [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "remove", "path": "/metadata/finalizers"},
        ], _content_type=JSON_PATCH)
    assert e.value.status == 422 and status_of(e.value)["reason"] == "Invalid"
    with pytest.raises(ApiException) as e:
        await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1", [
            {"op": "remove", "path": "/spec/no/such/path"}], _content_type=JSON_PATCH)
    assert e.value.status == 422


async def test_strategic_merge_patch_is_415_for_custom_resources(api: KubeAPIServer, http: Any) -> None:
    api.registry.create(api.registry.lookup(GROUP, VERSION, PLURAL), "default", widget("w1"))
    for ctype in ("application/strategic-merge-patch+json", "text/plain"):
        async with http.patch(f"{WIDGETS}/w1", data=b'{"spec":{"size":2}}', headers={"Content-Type": ctype}) as r:
            assert r.status == 415, ctype
            assert (await r.json())["reason"] == "UnsupportedMediaType"
    # Server-side apply is served for the object, not for its scale subresource (test_kubeapi_apply.py).
    async with http.patch(f"{WIDGETS}/w1/scale", data=b'{"spec":{"replicas":2}}',
                          params={"fieldManager": "m"}, headers={"Content-Type": "application/apply-patch+yaml"}) as r:
        assert r.status == 415


async def test_builtin_configmap_and_secret(core: Any) -> None:
    cm = await call(core.create_namespaced_config_map, "default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert cm.metadata.generation is None  # built-ins like ConfigMap do not maintain generation.
    # Strategic merge patch on built-ins has merge semantics (lists are replaced, not merged by key).
    cm = await call(core.patch_namespaced_config_map, "c", "default", {"data": {"b": "2"}},
                    _content_type="application/strategic-merge-patch+json")
    assert cm.data == {"a": "1", "b": "2"}
    secret = await call(core.create_namespaced_secret, "default",
                        {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})
    assert secret.data == {"password": "aHVudGVyMg=="} and secret.type == "Opaque"
    status = await call(core.delete_namespaced_config_map, "c", "default")
    assert status["status"] == "Success"
    names = [ns.metadata.name for ns in (await call(core.list_namespace)).items]
    assert {"default", "kube-system"} <= set(names)


async def test_events_with_generate_name(core: Any, http: Any) -> None:
    body = {"metadata": {"generateName": "kopf-event-"}, "reason": "Test", "message": "hello",
            "involvedObject": {"kind": KIND, "name": "w1", "namespace": "default"}}
    for _ in range(2):
        async with http.post("/api/v1/namespaces/default/events", json=body) as r:
            assert r.status == 201
    async with http.post("/apis/events.k8s.io/v1/namespaces/default/events",
                         json={**body, "note": "x", "metadata": {"generateName": "e-"}}) as r:
        assert r.status == 201
    events = await call(core.list_namespaced_event, "default", field_selector="involvedObject.name=w1")
    assert len(events.items) == 2


async def test_scale_subresource(custom: Any) -> None:
    await create(custom, widget("w1", replicas=2))
    await call(custom.patch_namespaced_custom_object_status, GROUP, VERSION, "default", PLURAL, "w1",
               {"status": {"replicas": 1, "selector": "app=w1"}})
    scale = await call(custom.get_namespaced_custom_object_scale, GROUP, VERSION, "default", PLURAL, "w1")
    assert scale["apiVersion"] == "autoscaling/v1" and scale["kind"] == "Scale"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 1, "selector": "app=w1"}
    scale = await call(custom.patch_namespaced_custom_object_scale, GROUP, VERSION, "default", PLURAL, "w1",
                       {"spec": {"replicas": 5}})
    assert scale["spec"]["replicas"] == 5
    scale["spec"]["replicas"] = 7
    scale = await call(custom.replace_namespaced_custom_object_scale, GROUP, VERSION, "default", PLURAL, "w1", scale)
    obj = await call(custom.get_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1")
    assert obj["spec"]["replicas"] == 7 and obj["metadata"]["generation"] == 3


async def test_in_process_get_object_is_a_copy(api: KubeAPIServer, custom: Any) -> None:
    await create(custom, widget("w1"))
    obj = api.get_object(GROUP, VERSION, PLURAL, "default", "w1")
    assert obj is not None and obj["spec"]["location"] == "westeurope"
    obj["spec"]["location"] = "mutated"
    assert api.get_object(GROUP, VERSION, PLURAL, "default", "w1")["spec"]["location"] == "westeurope"
    assert api.get_object(GROUP, VERSION, PLURAL, "default", "nope") is None
    assert api.get_object("", "v1", "namespaces", None, "default") is not None


async def test_cluster_scoped_custom_resource(api: KubeAPIServer, custom: Any) -> None:
    from kubeapi_helpers import make_crd

    api.register_crd(make_crd(plural="gadgets", kind="Gadget", scope="Cluster"))
    obj = await call(custom.create_cluster_custom_object, GROUP, VERSION, "gadgets",
                     {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Gadget", "metadata": {"name": "g"},
                      "spec": {"location": "x"}})
    assert "namespace" not in obj["metadata"]
    got = await call(custom.list_cluster_custom_object, GROUP, VERSION, "gadgets")
    assert [i["metadata"]["name"] for i in got["items"]] == ["g"]


async def test_invalid_names_are_422(custom: Any, http: Any) -> None:
    with pytest.raises(ApiException) as e:
        await create(custom, widget("Not_Valid"))
    assert e.value.status == 422 and status_of(e.value)["details"]["causes"][0]["field"] == "metadata.name"
    async with http.post(WIDGETS, json={"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
                                        "metadata": {}, "spec": {"location": "x"}}) as r:
        assert r.status == 422
        assert "name or generateName is required" in (await r.json())["message"]


async def test_register_crd_twice_is_409(api: KubeAPIServer) -> None:
    from kubeapi import APIError
    from kubeapi_helpers import make_crd

    with pytest.raises(APIError) as e:
        api.register_crd(make_crd())
    assert e.value.code == 409 and e.value.reason == "AlreadyExists"


async def test_routing_errors(http: Any) -> None:
    async with http.get(f"/apis/{GROUP}/{VERSION}/{PLURAL}/w1") as r:  # namespaced object without a namespace
        assert r.status == 404
    async with http.get("/api/v1/namespaces/default/nothings") as r:
        assert r.status == 404 and (await r.json())["kind"] == "Status"
    async with http.delete(WIDGETS) as r:
        assert r.status == 405


async def test_fresh_crd_answers_429_while_initializing() -> None:
    import aiohttp

    from kubeapi_helpers import make_crd

    server = KubeAPIServer(crd_init_delay=0.3)
    await server.start()
    try:
        server.register_crd(make_crd())
        async with aiohttp.ClientSession(base_url=server.url) as http:
            async with http.get(WIDGETS) as r:
                assert r.status == 429 and r.headers["Retry-After"] == "1"
                assert (await r.json())["message"] == "storage is (re)initializing"
            await asyncio.sleep(0.35)
            async with http.get(WIDGETS) as r:
                assert r.status == 200
    finally:
        await server.stop()


async def test_server_on_its_own_loop_thread(tmp_path: Any) -> None:
    """As the test harness runs it: the server in a loop thread, register_crd/get_object from another thread."""
    import threading

    import kubernetes

    from kubeapi_helpers import make_crd

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = KubeAPIServer(token="t")
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)

        def in_other_thread() -> dict[str, Any] | None:
            server.register_crd(make_crd())
            client = kubernetes.config.new_client_from_config(server.write_kubeconfig(tmp_path / "kc"))
            kubernetes.client.CustomObjectsApi(client).create_namespaced_custom_object(
                GROUP, VERSION, "default", PLURAL, widget("w1"))
            client.close()
            return server.get_object(GROUP, VERSION, PLURAL, "default", "w1")

        obj = await asyncio.to_thread(in_other_thread)
        assert obj is not None and obj["spec"]["size"] == 1
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
