"""Deletion with finalizers, DELETE preconditions, CRD and namespace deletion."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client import ApiException

from kubeapi import KubeAPIServer
from kubeapi_helpers import GROUP, PLURAL, VERSION, WIDGETS, call, make_crd, widget

pytestmark = pytest.mark.usefixtures("crd")


async def get(custom: Any, name: str = "w1") -> dict[str, Any]:
    return await call(custom.get_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, name)


async def test_delete_without_finalizers_is_immediate(custom: Any) -> None:
    await call(custom.create_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, widget("w1"))
    await call(custom.delete_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1")
    with pytest.raises(ApiException) as e:
        await get(custom)
    assert e.value.status == 404


async def test_finalizers_block_deletion_until_removed(custom: Any) -> None:
    body = widget("w1")
    body["metadata"]["finalizers"] = ["a/one", "b/two"]
    await call(custom.create_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, body)
    deleted = await call(custom.delete_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1")
    assert deleted["metadata"]["deletionTimestamp"]
    obj = await get(custom)
    assert obj["metadata"]["deletionTimestamp"] and obj["metadata"]["deletionGracePeriodSeconds"] == 0
    assert obj["metadata"]["generation"] == 2  # kube-apiserver bumps generation when marking as deleting.
    # A second DELETE changes nothing.
    again = await call(custom.delete_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1")
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    # Adding finalizers is forbidden now (422), removing them is fine.
    with pytest.raises(ApiException) as e:
        await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                   {"metadata": {"finalizers": ["a/one", "b/two", "c/three"]}})
    assert e.value.status == 422
    cause = json.loads(e.value.body)["details"]["causes"][0]
    assert cause["field"] == "metadata.finalizers"
    assert "no new finalizers can be added if the object is being deleted" in cause["message"]
    await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
               {"metadata": {"finalizers": ["b/two"]}})
    assert (await get(custom))["metadata"]["finalizers"] == ["b/two"]
    # Removing the last one (the way Kopf does: JSON-patch guarded by a resourceVersion test) deletes it.
    rv = (await get(custom))["metadata"]["resourceVersion"]
    await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1", [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ], _content_type="application/json-patch+json")
    with pytest.raises(ApiException) as e:
        await get(custom)
    assert e.value.status == 404


async def test_delete_preconditions(custom: Any, http: Any) -> None:
    obj = await call(custom.create_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, widget("w1"))
    async with http.delete(f"{WIDGETS}/w1", json={"preconditions": {"uid": "wrong"}}) as r:
        assert r.status == 409 and "Precondition failed: UID in precondition" in (await r.json())["message"]
    async with http.delete(f"{WIDGETS}/w1", json={"preconditions": {"resourceVersion": "1"}}) as r:
        assert r.status == 409
    pre = {"uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"]}
    async with http.delete(f"{WIDGETS}/w1", json={"kind": "DeleteOptions", "preconditions": pre}) as r:
        assert r.status == 200


async def test_deleting_a_crd_stops_serving_it(api: KubeAPIServer, custom: Any, http: Any, client: Any) -> None:
    import kubernetes

    await call(custom.create_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, widget("w1"))
    ext = kubernetes.client.ApiextensionsV1Api(client)
    crd = await call(ext.read_custom_resource_definition, f"{PLURAL}.{GROUP}")
    assert {c.type: c.status for c in crd.status.conditions}["Established"] == "True"
    await call(ext.delete_custom_resource_definition, f"{PLURAL}.{GROUP}")
    async with http.get(WIDGETS) as r:
        assert r.status == 404
    async with http.get(f"/apis/{GROUP}/{VERSION}") as r:
        assert r.status == 404
    # Re-creating it starts from an empty collection.
    api.register_crd(make_crd())
    async with http.get(WIDGETS) as r:
        assert r.status == 200 and (await r.json())["items"] == []


async def test_crd_created_through_the_client_is_served(custom: Any, client: Any) -> None:
    import kubernetes

    ext = kubernetes.client.ApiextensionsV1Api(client)
    await call(ext.create_custom_resource_definition, make_crd(plural="things", kind="Thing"))
    obj = await call(custom.create_namespaced_custom_object, GROUP, VERSION, "default", "things",
                     {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Thing", "metadata": {"name": "t"},
                      "spec": {"location": "x"}})
    assert obj["spec"]["size"] == 1


async def test_namespace_deletion_removes_its_objects(api: KubeAPIServer, core: Any, custom: Any) -> None:
    await call(core.create_namespace, {"metadata": {"name": "team"}})
    await call(custom.create_namespaced_custom_object, GROUP, VERSION, "team", PLURAL, widget("w1"))
    await call(core.create_namespaced_config_map, "team", {"metadata": {"name": "c"}})
    await call(core.delete_namespace, "team")
    assert api.get_object(GROUP, VERSION, PLURAL, "team", "w1") is None
    assert api.get_object("", "v1", "configmaps", "team", "c") is None
    assert api.get_object("", "v1", "namespaces", None, "team") is None
