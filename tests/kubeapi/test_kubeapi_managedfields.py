"""metadata.managedFields on every write, as kube-apiserver's field manager records them.

Update operations (POST, PUT, merge and JSON patch) are attributed to the fieldManager parameter, else to the
User-Agent's program name; /status and /scale writes carry their subresource; a /scale write moves the
ownership of spec.replicas (managedfields.ScaleHandler).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import ApiException

from kubeapi import KubeAPIServer
from kubeapi_helpers import APPLY, GROUP, PLURAL, VERSION, WIDGETS, call, managed, owners, widget

pytestmark = pytest.mark.usefixtures("crd")

API_VERSION = f"{GROUP}/{VERSION}"


async def create(custom: Any, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return await call(custom.create_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, body, **kwargs)


async def merge(custom: Any, name: str, body: Any, **kwargs: Any) -> dict[str, Any]:
    return await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, name, body,
                      **kwargs)


async def test_create_records_an_update_entry_in_fields_v1_format(custom: Any) -> None:
    body = widget("w1", tags={"team": "a"})
    body["metadata"]["labels"] = {"app": "web"}
    obj = await create(custom, body, field_manager="creator")
    [entry] = obj["metadata"]["managedFields"]
    assert entry["manager"] == "creator" and entry["operation"] == "Update"
    assert entry["apiVersion"] == API_VERSION and entry["fieldsType"] == "FieldsV1"
    assert entry["time"].endswith("Z") and "subresource" not in entry
    # A created map (labels, tags, spec of a custom resource) is a member itself (".") and has its children;
    # defaults applied on create (size, tier) belong to the creator; name/namespace/uid... are never owned.
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {".": {}, "f:location": {}, "f:size": {}, "f:tags": {".": {}, "f:team": {}}, "f:tier": {}},
    }


async def test_the_manager_is_the_field_manager_or_the_user_agent_program(api: KubeAPIServer, http: Any,
                                                                          custom: Any) -> None:
    kubectl_ua = {"User-Agent": "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd"}
    async with http.post(WIDGETS, json=widget("w1"), headers=kubectl_ua) as r:
        assert [e["manager"] for e in (await r.json())["metadata"]["managedFields"]] == ["kubectl"]
    async with http.post(WIDGETS, json=widget("w2"), skip_auto_headers=["User-Agent"]) as r:
        assert [e["manager"] for e in (await r.json())["metadata"]["managedFields"]] == ["unknown"]
    obj = await create(custom, widget("w3"))  # the kubernetes client: "OpenAPI-Generator/37.0.2/python"
    assert [e["manager"] for e in obj["metadata"]["managedFields"]] == ["OpenAPI-Generator"]
    obj = await merge(custom, "w3", {"spec": {"size": 2}}, field_manager="kubectl-edit")
    assert set(managed(obj)) == {("OpenAPI-Generator", "Update", ""), ("kubectl-edit", "Update", "")}


async def test_writes_take_ownership_of_what_they_change(custom: Any, http: Any) -> None:
    await create(custom, widget("w1", tags={"a": "1"}), field_manager="creator")
    obj = await merge(custom, "w1", {"spec": {"size": 3}}, field_manager="sizer")
    assert owners(obj, "f:spec", "f:size") == [("sizer", "Update", "")]
    assert owners(obj, "f:spec", "f:location") == [("creator", "Update", "")]
    obj = await merge(custom, "w1", [{"op": "add", "path": "/spec/tags/b", "value": "2"},
                                     {"op": "remove", "path": "/spec/tags/a"}],
                      field_manager="jsonpatcher", _content_type="application/json-patch+json")
    assert managed(obj)[("jsonpatcher", "Update", "")]["fieldsV1"] == {"f:spec": {"f:tags": {"f:b": {}}}}
    assert "f:a" not in managed(obj)[("creator", "Update", "")]["fieldsV1"]["f:spec"]["f:tags"]  # removed: disowned
    obj["spec"]["location"] = "northeurope"
    obj = await call(custom.replace_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1", obj,
                     field_manager="replacer")
    assert owners(obj, "f:spec", "f:location") == [("replacer", "Update", "")]


async def test_unchanged_writes_keep_managed_fields_and_resource_version(custom: Any) -> None:
    obj = await create(custom, widget("w1"), field_manager="creator")
    again = await merge(custom, "w1", {"spec": {"location": "westeurope"}}, field_manager="other")
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert again["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


async def test_status_writes_are_recorded_for_the_status_subresource(custom: Any) -> None:
    await create(custom, {**widget("w1"), "status": {"phase": "ignored"}}, field_manager="creator")
    obj = await call(custom.patch_namespaced_custom_object_status, GROUP, VERSION, "default", PLURAL, "w1",
                     {"status": {"phase": "Running"}, "spec": {"size": 9}}, field_manager="controller")
    assert managed(obj)[("controller", "Update", "status")]["fieldsV1"] == {"f:status": {".": {}, "f:phase": {}}}
    assert "f:status" not in managed(obj)[("creator", "Update", "")]["fieldsV1"]  # status is reset on create.
    obj = await merge(custom, "w1", {"spec": {"size": 2}, "status": {"phase": "no"}}, field_manager="controller")
    assert managed(obj)[("controller", "Update", "")]["fieldsV1"] == {"f:spec": {"f:size": {}}}


async def test_managed_fields_sent_by_a_client_are_kept_or_reset(custom: Any, http: Any) -> None:
    obj = await create(custom, widget("w1"), field_manager="creator")
    entries = obj["metadata"]["managedFields"]
    entries[0]["manager"] = "renamed"
    obj = await merge(custom, "w1", {"metadata": {"managedFields": entries}}, field_manager="x")
    assert [e["manager"] for e in obj["metadata"]["managedFields"]] == ["renamed"]
    obj = await merge(custom, "w1", {"metadata": {"managedFields": [{}]}}, field_manager="x")
    assert "managedFields" not in obj["metadata"]
    # An object without managedFields stays untracked on updates (skipNonApplied)...
    obj = await merge(custom, "w1", {"spec": {"size": 4}}, field_manager="x")
    assert "managedFields" not in obj["metadata"]
    # ...until it is applied: the existing fields go to "before-first-apply".
    async with http.patch(f"{WIDGETS}/w1", params={"fieldManager": "applier"}, headers={"Content-Type": APPLY},
                          json={"apiVersion": API_VERSION, "kind": "Widget", "metadata": {"name": "w1"},
                                "spec": {"maxSize": 10}}) as r:
        obj = await r.json()
    assert set(managed(obj)) == {("applier", "Apply", ""), ("before-first-apply", "Update", "")}
    assert owners(obj, "f:spec", "f:size") == [("before-first-apply", "Update", "")]


async def test_scale_writes_take_replicas_from_its_owner(custom: Any) -> None:
    await create(custom, widget("w1", replicas=2), field_manager="gitops")
    scale = await call(custom.patch_namespaced_custom_object_scale, GROUP, VERSION, "default", PLURAL, "w1",
                       {"spec": {"replicas": 5}}, field_manager="hpa")
    assert scale["spec"]["replicas"] == 5
    obj = await call(custom.get_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1")
    entry = managed(obj)[("hpa", "Update", "scale")]
    # ScaleHandler.ToParent: the parent's apiVersion, the parent's replicas path, and no time of its own.
    assert entry["apiVersion"] == API_VERSION and "time" not in entry
    assert entry["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert owners(obj, "f:spec", "f:replicas") == [("hpa", "Update", "scale")]
    assert owners(obj, "f:spec", "f:location") == [("gitops", "Update", "")]


async def test_scale_writes_are_not_tracked_when_nobody_owned_replicas(custom: Any) -> None:
    """kube-apiserver maps the parent's owners of spec.replicas onto the Scale; with none, the Scale has no
    managedFields and its field manager skips tracking (kubernetes/kubernetes#131892)."""
    obj = await create(custom, widget("w1"), field_manager="gitops")
    await call(custom.patch_namespaced_custom_object_scale, GROUP, VERSION, "default", PLURAL, "w1",
               {"spec": {"replicas": 5}}, field_manager="hpa")
    scaled = await call(custom.get_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1")
    assert scaled["spec"]["replicas"] == 5
    assert scaled["metadata"]["managedFields"] == obj["metadata"]["managedFields"]
    assert owners(scaled, "f:spec", "f:replicas") == []


async def test_field_manager_option_is_validated(custom: Any) -> None:
    with pytest.raises(ApiException) as e:
        await create(custom, widget("w1"), field_manager="m" * 129)
    assert e.value.status == 422
    assert '"CreateOptions.meta.k8s.io \\"\\" is invalid: fieldManager: Too long' in e.value.body


async def test_update_entries_are_capped_at_ten(custom: Any) -> None:
    await create(custom, widget("w1"), field_manager="m0")
    for i in range(1, 13):
        obj = await merge(custom, "w1", {"metadata": {"labels": {f"l{i}": "x"}}}, field_manager=f"m{i}")
    updates = [e["manager"] for e in obj["metadata"]["managedFields"] if e["operation"] == "Update"]
    assert len(updates) == 10 and "ancient-changes" in updates
    assert "m12" in updates  # the newest are kept as they are.


async def test_get_object_and_other_versions_show_the_same_entries(api: KubeAPIServer, custom: Any) -> None:
    obj = await create(custom, widget("w1"), field_manager="creator")
    stored = api.get_object(GROUP, VERSION, PLURAL, "default", "w1")
    assert stored is not None and stored["metadata"]["managedFields"] == obj["metadata"]["managedFields"]
