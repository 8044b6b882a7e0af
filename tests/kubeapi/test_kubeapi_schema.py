"""CRD schemas: structural check on registration, pruning, defaulting, validation (422 with causes), CEL."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes.client import ApiException

from kubeapi import APIError, KubeAPIServer
from kubeapi_helpers import GROUP, KIND, PLURAL, VERSION, WIDGET_SCHEMA, call, make_crd, widget


async def create(custom: Any, body: dict[str, Any]) -> dict[str, Any]:
    return await call(custom.create_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, body)


async def rejected(coro: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as e:
        await coro
    assert e.value.status == 422, e.value.body
    status = json.loads(e.value.body)
    assert status["reason"] == "Invalid" and status["kind"] == "Status"
    return status


@pytest.mark.usefixtures("crd")
async def test_defaulting_and_pruning(custom: Any) -> None:
    body = widget("w1", unknown="dropped", extra={"free": {"form": 1}},
                  disks=[{"name": "os", "bogus": True}], tags={"a": "b"}, port="http")
    body["metadata"]["unknownMeta"] = "dropped"
    body["topLevelUnknown"] = 1
    obj = await create(custom, body)
    assert obj["spec"] == {"location": "westeurope", "size": 1, "tier": "basic", "extra": {"free": {"form": 1}},
                           "disks": [{"name": "os", "sizeGB": 30}], "tags": {"a": "b"}, "port": "http"}
    assert "topLevelUnknown" not in obj and "unknownMeta" not in obj["metadata"]


@pytest.mark.usefixtures("crd")
async def test_validation_errors_are_422_with_causes(custom: Any) -> None:
    status = await rejected(create(custom, {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
                                            "metadata": {"name": "w1"}, "spec": {}}))
    assert status["message"] == f'{KIND}.{GROUP} "w1" is invalid: spec.location: Required value'
    assert status["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.location"}]
    assert status["details"]["kind"] == KIND and status["details"]["group"] == GROUP

    status = await rejected(create(custom, widget("w1", size="big", tier="gold", port=1.5)))
    fields = {c["field"]: c for c in status["details"]["causes"]}
    assert set(fields) == {"spec.size", "spec.tier", "spec.port"}
    assert fields["spec.size"]["message"] == \
        'Invalid value: "string": spec.size in body must be of type integer: "string"'
    assert fields["spec.tier"]["reason"] == "FieldValueNotSupported"
    assert status["message"].startswith(f'{KIND}.{GROUP} "w1" is invalid: [')

    status = await rejected(create(custom, widget("w1", size=0)))
    assert status["details"]["causes"][0]["message"] == \
        "Invalid value: 0: spec.size in body should be greater than or equal to 1"


@pytest.mark.usefixtures("crd")
async def test_validation_on_update_and_status(custom: Any) -> None:
    await create(custom, widget("w1"))
    await rejected(call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                        {"spec": {"size": 5000}}))
    await rejected(call(custom.patch_namespaced_custom_object_status, GROUP, VERSION, "default", PLURAL, "w1",
                        {"status": {"replicas": "many"}}))


@pytest.mark.usefixtures("crd")
async def test_cel_rules(custom: Any) -> None:
    # A plain rule applies on create and on update, reported at its fieldPath with its message.
    status = await rejected(create(custom, widget("w1", size=10, maxSize=5)))
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.size",
                                            "message": 'Invalid value: "object": size must not exceed maxSize'}]
    # A transition rule (self == oldSelf) allows the create, and rejects changing the field afterwards.
    await create(custom, widget("w1", immutableName="first"))
    status = await rejected(call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                                 {"spec": {"immutableName": "second"}}))
    assert status["details"]["causes"][0]["field"] == "spec.immutableName"
    assert "immutableName is immutable" in status["message"]
    # Unchanged, it passes; other fields can change.
    ok = await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                    {"spec": {"size": 7}})
    assert ok["spec"]["immutableName"] == "first"
    # A field absent before has no oldSelf: setting it later is allowed (as in Kubernetes).
    await create(custom, widget("w2"))
    await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w2",
               {"spec": {"immutableName": "late"}})


async def test_cel_functions_and_message_expression(api: KubeAPIServer, custom: Any) -> None:
    schema = copy.deepcopy(WIDGET_SCHEMA)
    spec = schema["properties"]["spec"]
    spec["x-kubernetes-validations"] = [
        {"rule": "self.location.startsWith('west') || self.location.endsWith('us')",
         "messageExpression": "'bad location ' + self.location"},
        {"rule": "size(self.location) <= 20 && self.location.lowerAscii() == self.location",
         "message": "lowercase, at most 20 chars", "reason": "FieldValueForbidden"},
        {"rule": "!has(self.tags) || self.tags.all(k, k.matches('^[a-z]+$'))", "message": "bad tag keys"},
        {"rule": "self == oldSelf || oldSelf.tier == 'basic'", "message": "premium is sticky"},
    ]
    api.register_crd(make_crd(schema=schema))
    status = await rejected(create(custom, widget("w1", location="eastasia")))
    assert "bad location eastasia" in status["message"]
    status = await rejected(create(custom, widget("w1", location="westEurope")))
    assert status["details"]["causes"][0]["reason"] == "FieldValueForbidden"
    assert status["details"]["causes"][0]["message"] == "Forbidden: lowercase, at most 20 chars"
    await rejected(create(custom, widget("w1", tags={"A1": "x"})))
    await create(custom, widget("w1", tier="premium"))
    await rejected(call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                        {"spec": {"tier": "basic"}}))


@pytest.mark.parametrize("mutate, field", [
    (lambda s: s["properties"]["spec"]["properties"].__setitem__("notype", {"description": "x"}),
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[notype].type"),
    (lambda s: s["properties"]["spec"].__setitem__("additionalProperties", {"type": "string"}),
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].additionalProperties"),
    (lambda s: s["properties"].__setitem__("metadata", {"type": "object", "properties": {
        "labels": {"type": "object"}}}),
     "spec.versions[0].schema.openAPIV3Schema.properties[metadata]"),
    (lambda s: s["properties"]["spec"]["properties"].__setitem__("list", {"type": "array"}),
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[list].items"),
    (lambda s: s["properties"]["spec"].__setitem__("x-kubernetes-validations", [{"rule": "self.x =="}]),
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"),
    (lambda s: s.__setitem__("type", "string"), "spec.versions[0].schema.openAPIV3Schema.type"),
])
async def test_non_structural_crd_is_rejected(api: KubeAPIServer, client: Any, mutate: Any, field: str) -> None:
    import kubernetes

    schema = copy.deepcopy(WIDGET_SCHEMA)
    mutate(schema)
    crd = make_crd(schema=schema)
    ext = kubernetes.client.ApiextensionsV1Api(client)
    with pytest.raises(ApiException) as e:
        await call(ext.create_custom_resource_definition, crd)
    assert e.value.status == 422
    status = json.loads(e.value.body)
    assert field in [c["field"] for c in status["details"]["causes"]], status
    assert status["message"].startswith(f'CustomResourceDefinition.apiextensions.k8s.io "{PLURAL}.{GROUP}" is invalid')
    with pytest.raises(APIError) as ae:  # the in-process registration raises the same Status.
        api.register_crd(crd)
    assert ae.value.code == 422
    assert api.registry.lookup(GROUP, VERSION, PLURAL) is None


async def test_crd_metadata_checks(api: KubeAPIServer) -> None:
    crd = make_crd()
    crd["metadata"]["name"] = "wrong.name.io"
    with pytest.raises(APIError) as e:
        api.register_crd(crd)
    assert e.value.code == 422 and "metadata.name" in e.value.message


async def test_crd_without_status_subresource(api: KubeAPIServer, custom: Any) -> None:
    api.register_crd(make_crd(status=False, scale=False))
    obj = await create(custom, {**widget("w1"), "status": {"phase": "Set"}})
    assert obj["status"] == {"phase": "Set"}  # no status subresource: status is an ordinary field...
    patched = await call(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1",
                         {"status": {"phase": "Changed"}})
    assert patched["metadata"]["generation"] == 2  # ...and changing it bumps generation.
    with pytest.raises(ApiException) as e:
        await call(custom.get_namespaced_custom_object_status, GROUP, VERSION, "default", PLURAL, "w1")
    assert e.value.status == 404


async def test_list_type_map_and_set_reject_duplicates(api, custom):
    import asyncio
    """kube-apiserver answers 422 "Duplicate value" for repeated keys of x-kubernetes-list-type map/set."""
    import json as _json

    import kubernetes.client

    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "lists.dup.example.com"},
        "spec": {"group": "dup.example.com", "scope": "Namespaced",
                 "names": {"kind": "List", "plural": "lists", "singular": "list"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"spec": {"type": "object", "properties": {
                         "disks": {"type": "array", "x-kubernetes-list-type": "map",
                                   "x-kubernetes-list-map-keys": ["lun"],
                                   "items": {"type": "object", "required": ["lun"],
                                             "properties": {"lun": {"type": "integer"}, "size": {"type": "integer"}}}},
                         "ports": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}},
                     }}}}}}]},
    }
    api.register_crd(crd)

    def create(spec):
        body = {"apiVersion": "dup.example.com/v1", "kind": "List", "metadata": {"name": "x"}, "spec": spec}
        return custom.create_namespaced_custom_object("dup.example.com", "v1", "default", "lists", body)

    for spec, field in (({"disks": [{"lun": 1, "size": 1}, {"lun": 1, "size": 2}]}, "spec.disks[1]"),
                        ({"ports": [22, 22]}, "spec.ports[1]")):
        with pytest.raises(kubernetes.client.ApiException) as info:
            await asyncio.to_thread(create, spec)
        assert info.value.status == 422
        assert field in _json.loads(info.value.body)["message"]
    assert await asyncio.to_thread(create, {"disks": [{"lun": 1}, {"lun": 2}], "ports": [22, 443]})
