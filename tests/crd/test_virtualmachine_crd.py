"""The VirtualMachine CRD as a real API server applies it: structural schema, defaults, validation, immutability.

The CRD is registered in the project's Kubernetes API server (which enforces structural schemas, OpenAPI validation,
defaulting, pruning and CEL rules as kube-apiserver does) and, independently, checked with jsonschema.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import kubernetes.client
import pytest
import yaml

from azure_vm_operator.api.constants import GROUP, VERSION, VM_PLURAL
from azvm_sandbox.crds import load_crds
from azvm_sandbox.harness import kube_api

ROOT = Path(__file__).resolve().parents[2]
CRDS, EXAMPLES = ROOT / "crds", ROOT / "examples"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVxUo3ZP3wv0vY3W4nKJt2f5Q0mPp0m2v7O1l8h4aDm x@y"
VALID_SPEC = {
    "location": "westeurope",
    "resourceGroup": "rg-1",
    "size": "Standard_B2s",
    "image": {"marketplace": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}},
    "adminUsername": "azureuser",
    "sshPublicKeys": [KEY],
}


def vm_crd():
    return next(c for c in load_crds(CRDS) if c["spec"]["names"]["kind"] == "VirtualMachine")


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    with kube_api(tmp_path_factory.mktemp("kube"), CRDS, "crd-test-api") as client:
        yield kubernetes.client.CustomObjectsApi(client)


_counter = iter(range(10_000))


def create(custom, spec, name=None):
    name = name or f"vm-{next(_counter)}"
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}
    return custom.create_namespaced_custom_object(GROUP, VERSION, "default", VM_PLURAL, body)


def rejected(custom, spec) -> str:
    with pytest.raises(kubernetes.client.ApiException) as info:
        create(custom, spec)
    assert info.value.status == 422, info.value.body
    return json.loads(info.value.body)["message"]


def with_(**changes):
    spec = copy.deepcopy(VALID_SPEC)
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


# ---- the schema itself ---------------------------------------------------------------------------------------


def _walk(node, path="$"):
    yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from _walk(child, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _walk(node[key], f"{path}.{key}")


def test_every_schema_node_is_typed_as_a_structural_schema_requires():
    schema = vm_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "type" in node or node.get("x-kubernetes-int-or-string") or \
            node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), f"{path}: both properties kinds"
    assert vm_crd()["apiVersion"] == "apiextensions.k8s.io/v1"
    assert vm_crd()["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_crds_dir_holds_only_valid_yaml():
    for path in CRDS.glob("*.yaml"):
        assert list(yaml.safe_load_all(path.read_text()))


def test_examples_validate_with_an_independent_json_schema_validator():
    schema = vm_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    examples = [d for p in sorted(EXAMPLES.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())
                if d and d.get("kind") == "VirtualMachine"]
    assert examples
    for example in examples:
        jsonschema.validate(example["spec"], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(with_(size="B2s"), schema)


# ---- through the API server ----------------------------------------------------------------------------------


def test_examples_are_accepted(custom):
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "VirtualMachine":
                doc = copy.deepcopy(doc)
                doc["metadata"]["name"] = f"example-{next(_counter)}"
                assert custom.create_namespaced_custom_object(GROUP, VERSION, "default", VM_PLURAL, doc)


def test_defaults_are_applied(custom):
    obj = create(custom, with_(network={}))
    assert obj["spec"]["image"]["marketplace"]["version"] == "latest"
    assert obj["spec"]["powerState"] == "Running"
    assert obj["spec"]["network"]["publicIP"] is False


def test_unknown_fields_are_pruned(custom):
    obj = create(custom, with_(sizee="Standard_B1s"))
    assert "sizee" not in obj["spec"]


@pytest.mark.parametrize("changes, field", [
    ({"location": None}, "spec.location"),
    ({"size": "B2s"}, "spec.size"),
    ({"size": "Standard B2s"}, "spec.size"),
    ({"sshPublicKeys": []}, "set sshPublicKeys or adminPasswordSecretRef"),
    ({"sshPublicKeys": None}, "set sshPublicKeys or adminPasswordSecretRef"),
    ({"sshPublicKeys": ["not a key"]}, "spec.sshPublicKeys"),
    ({"powerState": "Paused"}, "spec.powerState"),
    ({"resourceGroup": "ends-with-dot."}, "spec.resourceGroup"),
    ({"azureName": "-bad"}, "spec.azureName"),
    ({"subscriptionId": "not-a-uuid"}, "spec.subscriptionId"),
    ({"image": {"marketplace": {"publisher": "Canonical", "offer": "x"}}}, "spec.image.marketplace.sku"),
    ({"image": {"marketplace": {"publisher": "C", "offer": "x", "sku": "s", "version": "newest"}}},
     "spec.image.marketplace.version"),
    ({"network": {"subnetId": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v"}},
     "spec.network.subnetId"),
])
def test_invalid_specs_are_rejected_naming_the_field(custom, changes, field):
    assert field in rejected(custom, with_(**changes))


@pytest.mark.parametrize("changes, message", [
    ({"zone": "1", "availabilitySet": "avset"}, "either zonal"),
    ({"zone": "4"}, "spec.zone"),
    ({"evictionPolicy": "Delete"}, "priority Spot only"),
    ({"maxPrice": 0.5}, "priority Spot only"),
    ({"priority": "Spot", "maxPrice": 0}, "maxPrice is -1 or a positive price"),
    ({"image": {"marketplace": {"publisher": "C", "offer": "x", "sku": "s"},
                "id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/i"}}, "exactly one of"),
    ({"image": {"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/blobs/i"}}, "spec.image.id"),
    ({"customDataSecretRef": {"name": "a"}, "customDataConfigMapRef": {"name": "b"}}, "only one of"),
    ({"dataDisks": [{"lun": 1, "sizeGB": 10}, {"lun": 1, "sizeGB": 20}]}, "Duplicate value"),
    ({"dataDisks": [{"lun": 64, "sizeGB": 10}]}, "spec.dataDisks[0].lun"),
    ({"osDisk": {"sizeGB": 10}}, "spec.osDisk.sizeGB"),
    ({"network": {"openPorts": [22, 22]}}, "Duplicate value"),
    ({"network": {"openPorts": [70000]}}, "spec.network.openPorts[0]"),
    ({"deletionPolicy": "Keep"}, "spec.deletionPolicy"),
    ({"reconcilePolicy": "Ignore"}, "spec.reconcilePolicy"),
    ({"ignoreDriftFields": ["location"]}, "spec.ignoreDriftFields[0]"),
])
def test_cross_field_rules(custom, changes, message):
    assert message in rejected(custom, with_(**changes))


def test_password_only_linux_and_spot_accepted(custom):
    assert create(custom, with_(sshPublicKeys=None, adminPasswordSecretRef={"name": "pw"}))["spec"][
        "adminPasswordSecretRef"]["key"] == "password"
    spot = create(custom, with_(priority="Spot", evictionPolicy="Deallocate", maxPrice=-1))
    assert spot["spec"]["maxPrice"] == -1


@pytest.mark.parametrize("field, old, new, message", [
    ("zone", "1", "2", "zone is immutable"),
    ("availabilitySet", "avset-a", "avset-b", "availabilitySet is immutable"),
    ("osDisk", {"sizeGB": 64}, {"sizeGB": 32}, "cannot shrink"),
    ("dataDisks", [{"lun": 0, "sizeGB": 100}], [{"lun": 0, "sizeGB": 50}], "cannot shrink"),
])
def test_placement_is_immutable_and_disks_only_grow(custom, field, old, new, message):
    name = create(custom, with_(**{field: old}))["metadata"]["name"]
    with pytest.raises(kubernetes.client.ApiException) as info:
        custom.patch_namespaced_custom_object(GROUP, VERSION, "default", VM_PLURAL, name, {"spec": {field: new}})
    assert info.value.status == 422
    assert message in json.loads(info.value.body)["message"]


def test_disks_can_grow_and_be_added(custom):
    name = create(custom, with_(dataDisks=[{"lun": 0, "sizeGB": 100}]))["metadata"]["name"]
    patched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", VM_PLURAL, name,
        {"spec": {"dataDisks": [{"lun": 0, "sizeGB": 200}, {"lun": 1, "sizeGB": 10}]}})
    assert [d["sizeGB"] for d in patched["spec"]["dataDisks"]] == [200, 10]
    assert patched["spec"]["dataDisks"][1]["storageAccountType"] == "StandardSSD_LRS"


def test_reserved_admin_username_rejected_by_cel_rule(custom):
    assert "reserved name" in rejected(custom, with_(adminUsername="root"))


@pytest.mark.parametrize("field, new_value", [
    ("location", "northeurope"),
    ("resourceGroup", "other-rg"),
    ("subscriptionId", "11111111-1111-1111-1111-111111111111"),
    ("azureName", "renamed"),
])
def test_identity_fields_are_immutable(custom, field, new_value):
    obj = create(custom, with_())
    name = obj["metadata"]["name"]
    with pytest.raises(kubernetes.client.ApiException) as info:
        custom.patch_namespaced_custom_object(GROUP, VERSION, "default", VM_PLURAL, name, {"spec": {field: new_value}})
    assert info.value.status == 422
    assert f"{field} is immutable" in json.loads(info.value.body)["message"]


def test_mutable_fields_can_change(custom):
    obj = create(custom, with_())
    name = obj["metadata"]["name"]
    patched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", VM_PLURAL, name,
        {"spec": {"size": "Standard_D2s_v5", "powerState": "Deallocated", "tags": {"a": "b"}}})
    assert patched["spec"]["size"] == "Standard_D2s_v5"
    assert patched["metadata"]["generation"] == obj["metadata"]["generation"] + 1
