"""Server-side apply (PATCH application/apply-patch+yaml), pinned to kube-apiserver's behaviour."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client import ApiException

from kubeapi_helpers import (APPLY, GROUP, PLURAL, SS_API_VERSION, SS_GROUP, SS_PLURAL, SS_VERSION, VERSION,
                             WIDGETS, call, managed, owners, scaleset)

API_VERSION = f"{GROUP}/{VERSION}"


def config(name: str = "w1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "Widget", "metadata": {"name": name}, "spec": spec}


async def apply(custom: Any, body: dict[str, Any], manager: str, *, force: bool | None = None,
                name: str | None = None) -> dict[str, Any]:
    return await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL,
                      name or body["metadata"]["name"], body, field_manager=manager, force=force,
                      _content_type=APPLY)


async def conflict(custom: Any, body: dict[str, Any], manager: str) -> dict[str, Any]:
    with pytest.raises(ApiException) as e:
        await apply(custom, body, manager)
    assert e.value.status == 409
    return json.loads(e.value.body)


@pytest.mark.usefixtures("crd")
async def test_apply_needs_a_field_manager_and_force_needs_apply(http: Any) -> None:
    async with http.patch(f"{WIDGETS}/w1", json=config(location="x"), headers={"Content-Type": APPLY}) as r:
        status = await r.json()
    assert r.status == 422 and status["reason"] == "Invalid"
    assert status["message"] == ('PatchOptions.meta.k8s.io "" is invalid: '
                                 "fieldManager: Required value: is required for apply patch")
    assert status["details"] == {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
        {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
         "field": "fieldManager"}]}
    async with http.patch(f"{WIDGETS}/w1", json={}, params={"force": "true"},
                          headers={"Content-Type": "application/merge-patch+json"}) as r:
        status = await r.json()
    assert r.status == 422
    assert status["message"].endswith("force: Forbidden: may not be specified for non-apply patch")


@pytest.mark.usefixtures("crd")
async def test_apply_creates_and_owns_exactly_the_applied_fields(http: Any, custom: Any) -> None:
    yaml_body = (f"apiVersion: {API_VERSION}\nkind: Widget\nmetadata:\n  name: w1\n  labels:\n    app: web\n"
                 "spec:\n  location: westeurope\n  tags:\n    team: a\n")
    async with http.patch(f"{WIDGETS}/w1", data=yaml_body.encode(), params={"fieldManager": "flux"},
                          headers={"Content-Type": APPLY}) as r:
        obj = await r.json()
    assert r.status == 201
    assert obj["spec"] == {"location": "westeurope", "tags": {"team": "a"}, "size": 1, "tier": "basic"}
    [entry] = obj["metadata"]["managedFields"]
    assert entry["manager"] == "flux" and entry["operation"] == "Apply" and entry["time"]
    # Applied fields only: struct fields are not members themselves, defaults belong to nobody.
    assert entry["fieldsV1"] == {"f:metadata": {"f:labels": {"f:app": {}}},
                                 "f:spec": {"f:location": {}, "f:tags": {"f:team": {}}}}
    again = await apply(custom, config(location="westeurope", tags={"team": "a"}) | {
        "metadata": {"name": "w1", "labels": {"app": "web"}}}, "flux")
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]  # a no-op is not written.


@pytest.mark.usefixtures("crd")
async def test_apply_rejects_another_kind_and_managed_fields(custom: Any) -> None:
    for body, message in (
        ({**config(location="x"), "kind": "Gadget"}, "invalid object type: test.kubeapi.io/v1, Kind=Gadget"),
        ({**config(location="x"), "apiVersion": "test.kubeapi.io/v2"},
         "invalid object type: test.kubeapi.io/v2, Kind=Widget"),
        ({**config(location="x"), "metadata": {"name": "w1", "managedFields": []}},
         "metadata.managedFields must be nil"),
    ):
        with pytest.raises(ApiException) as e:
            await apply(custom, body, "flux")
        assert e.value.status == 400 and json.loads(e.value.body)["message"] == message
    with pytest.raises(ApiException) as e:
        await apply(custom, config("other", location="x"), "flux", name="w1")
    assert e.value.status == 400 and "does not match the name on the URL" in e.value.body


@pytest.mark.usefixtures("crd")
async def test_reapply_removes_what_the_manager_no_longer_applies(custom: Any) -> None:
    await apply(custom, config(location="x", maxSize=10, tags={"a": "1", "b": "2"}), "flux")
    obj = await apply(custom, config(location="x", tags={"a": "1"}), "flux")
    assert obj["spec"] == {"location": "x", "tags": {"a": "1"}, "size": 1, "tier": "basic"}
    assert managed(obj)[("flux", "Apply", "")]["fieldsV1"] == {"f:spec": {"f:location": {},
                                                                          "f:tags": {"f:a": {}}}}


@pytest.mark.usefixtures("crd")
async def test_a_field_another_manager_owns_is_not_removed(custom: Any) -> None:
    await apply(custom, config(location="x", replicas=3, maxSize=10), "flux")
    await apply(custom, config(replicas=3), "scaler")  # the same value: shared ownership, no conflict.
    obj = await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                     {"spec": {"maxSize": 20}}, field_manager="editor")
    assert owners(obj, "f:spec", "f:replicas") == [("flux", "Apply", ""), ("scaler", "Apply", "")]
    obj = await apply(custom, config(location="x"), "flux")
    assert obj["spec"]["replicas"] == 3  # still owned by "scaler"
    assert obj["spec"]["maxSize"] == 20  # taken over by "editor" (an Update), so no longer flux's to remove
    assert owners(obj, "f:spec", "f:replicas") == [("scaler", "Apply", "")]


@pytest.mark.usefixtures("crd")
async def test_conflicts_name_the_manager_and_the_field(custom: Any) -> None:
    await apply(custom, config(location="x", size=3), "flux")
    status = await conflict(custom, config(size=4), "argo")
    assert status["reason"] == "Conflict" and status["code"] == 409
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "flux": .spec.size'
    assert status["details"] == {"causes": [{"reason": "FieldManagerConflict", "message": 'conflict with "flux"',
                                             "field": ".spec.size"}]}
    await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
               {"spec": {"maxSize": 20}}, field_manager="editor")
    status = await conflict(custom, config(size=4, maxSize=30), "argo")
    assert status["message"] == (
        'Apply failed with 2 conflicts: conflicts with "editor" using test.kubeapi.io/v1:\n- .spec.maxSize\n'
        'conflicts with "flux":\n- .spec.size')
    assert {c["field"] for c in status["details"]["causes"]} == {".spec.size", ".spec.maxSize"}


@pytest.mark.usefixtures("crd")
async def test_force_takes_ownership(custom: Any) -> None:
    await apply(custom, config(location="x", size=3), "flux")
    obj = await apply(custom, config(size=4), "argo", force=True)
    assert obj["spec"]["size"] == 4
    assert owners(obj, "f:spec", "f:size") == [("argo", "Apply", "")]
    assert managed(obj)[("flux", "Apply", "")]["fieldsV1"] == {"f:spec": {"f:location": {}}}


@pytest.mark.usefixtures("crd")
async def test_apply_to_the_status_subresource(custom: Any) -> None:
    await apply(custom, config(location="x"), "flux")
    obj = await call(custom.patch_namespaced_custom_object_status, GROUP, VERSION, "default", PLURAL, "w1",
                     {**config(location="ignored"), "status": {"phase": "Running"}}, field_manager="ctrl",
                     _content_type=APPLY)
    assert obj["status"] == {"phase": "Running"} and obj["spec"]["location"] == "x"
    assert managed(obj)[("ctrl", "Apply", "status")]["fieldsV1"] == {"f:status": {"f:phase": {}}}


@pytest.mark.usefixtures("crd")
async def test_kubectl_takes_over_fields_of_its_client_side_apply(custom: Any) -> None:
    """lastAppliedManager: for the manager "kubectl", conflicts on fields the last-applied annotation shows are
    forced (the client-side to server-side upgrade); lastAppliedUpdater keeps the annotation current."""
    last = config(location="x", size=3)
    body = {**last, "metadata": {"name": "w1", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(last)}}}
    await call(custom.create_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, body,
               field_manager="kubectl-client-side-apply")
    await conflict(custom, config(location="x", size=5), "someone-else")
    obj = await apply(custom, config(location="x", size=5), "kubectl")
    assert obj["spec"]["size"] == 5 and owners(obj, "f:spec", "f:size") == [("kubectl", "Apply", "")]
    annotation = obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert json.loads(annotation)["spec"] == {"location": "x", "size": 5}


# -- list types (the ScaleSet CRD: x-kubernetes-list-type map, set and atomic) ----------------------------------

async def ss_apply(custom: Any, body: dict[str, Any], manager: str, force: bool | None = None) -> dict[str, Any]:
    return await call(custom.patch_namespaced_custom_object, SS_GROUP, SS_VERSION, "default", SS_PLURAL,
                      body["metadata"]["name"], body, field_manager=manager, force=force, _content_type=APPLY)


def partial(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": SS_API_VERSION, "kind": "ScaleSet", "metadata": {"name": "web"}, "spec": spec}


@pytest.mark.usefixtures("ss_crd")
async def test_map_lists_merge_by_key(custom: Any) -> None:
    await ss_apply(custom, scaleset(dataDisks=[{"lun": 0, "sizeGB": 32}]), "flux")
    obj = await ss_apply(custom, partial(dataDisks=[{"lun": 1, "sizeGB": 64}]), "storage-team")
    assert [(d["lun"], d["sizeGB"]) for d in obj["spec"]["dataDisks"]] == [(0, 32), (1, 64)]
    fields = managed(obj)[("storage-team", "Apply", "")]["fieldsV1"]
    assert fields == {"f:spec": {"f:dataDisks": {'k:{"lun":1}': {".": {}, "f:lun": {}, "f:sizeGB": {}}}}}
    with pytest.raises(ApiException) as e:
        await ss_apply(custom, partial(dataDisks=[{"lun": 0, "sizeGB": 128}]), "storage-team")
    assert json.loads(e.value.body)["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "flux"', "field": ".spec.dataDisks[lun=0].sizeGB"}]
    obj = await ss_apply(custom, scaleset(), "flux")  # flux no longer applies its disk: only lun 1 is left.
    assert [d["lun"] for d in obj["spec"]["dataDisks"]] == [1]


@pytest.mark.usefixtures("ss_crd")
async def test_set_lists_merge_by_value_and_atomic_lists_are_replaced(custom: Any) -> None:
    await ss_apply(custom, scaleset(protectedInstances=["1"], ignoreDriftFields=["tags"]), "flux")
    obj = await ss_apply(custom, partial(protectedInstances=["2"]), "ops")
    assert obj["spec"]["protectedInstances"] == ["1", "2"]
    assert managed(obj)[("ops", "Apply", "")]["fieldsV1"] == {"f:spec": {"f:protectedInstances": {'v:"2"': {}}}}
    # ignoreDriftFields has no list type: atomic, owned and replaced as a whole.
    assert managed(obj)[("flux", "Apply", "")]["fieldsV1"]["f:spec"]["f:ignoreDriftFields"] == {}
    with pytest.raises(ApiException) as e:
        await ss_apply(custom, partial(ignoreDriftFields=["size"]), "ops")
    assert json.loads(e.value.body)["details"]["causes"][0]["field"] == ".spec.ignoreDriftFields"
    obj = await ss_apply(custom, partial(ignoreDriftFields=["size"]), "ops", force=True)
    assert obj["spec"]["ignoreDriftFields"] == ["size"]
