"""The Image and AvailabilitySet CRDs (and the VirtualMachine's availabilitySetRef) as the API server applies them.

The three CRDs are created over HTTP in the project's Kubernetes API server (structural-schema check, CEL
compilation), and resources are created and patched through it (pruning, defaulting, OpenAPI validation, CEL rules,
CEL transition rules against the stored object). What the API server accepts must also parse with the operator's own
``parse_spec``, and the cross-field mistakes it rejects are rejected by the parser too: the schema says at
admission what the operator would otherwise report as InvalidSpec.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import kubernetes.client
import pytest
import yaml

from azure_vm_operator.api import availabilityset as avset_api
from azure_vm_operator.api import image as image_api
from azure_vm_operator.api.constants import (AVSET_KIND, AVSET_PLURAL, GROUP, IMAGE_KIND, IMAGE_PLURAL, VERSION,
                                             VM_KIND, VM_PLURAL)
from azure_vm_operator.api.fields import SpecError
from azvm_sandbox.crds import load_crds
from azvm_sandbox.harness import kube_api

ROOT = Path(__file__).resolve().parents[2]
CRDS, EXAMPLES = ROOT / "crds", ROOT / "examples"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVxUo3ZP3wv0vY3W4nKJt2f5Q0mPp0m2v7O1l8h4aDm x@y"
DISK_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-img/providers/Microsoft.Compute/disks/os-disk"
BLOB_URI = "https://acct.blob.core.windows.net/vhds/os.vhd"
PLACEMENT = {"location": "westeurope", "resourceGroup": "rg-img"}
FROM_VM = {**PLACEMENT, "fromVirtualMachine": {"name": "golden-src"}}
AVSET = {**PLACEMENT}
VM_SPEC = {
    **PLACEMENT,
    "size": "Standard_B2s",
    "image": {"marketplace": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}},
    "adminUsername": "azureuser",
    "sshPublicKeys": [KEY],
}
PLURALS = {IMAGE_KIND: IMAGE_PLURAL, AVSET_KIND: AVSET_PLURAL, VM_KIND: VM_PLURAL}
PARSERS = {IMAGE_KIND: image_api.parse_spec, AVSET_KIND: avset_api.parse_spec}


def crd(kind: str) -> dict:
    return next(c for c in load_crds(CRDS) if c["spec"]["names"]["kind"] == kind)


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    """The API server with the three CRDs created over HTTP, as kubectl apply -f crds/ would."""
    with kube_api(tmp_path_factory.mktemp("kube"), name="image-avset-crd-api") as client:
        extensions = kubernetes.client.ApiextensionsV1Api(client)
        for kind in (IMAGE_KIND, AVSET_KIND, VM_KIND):
            assert extensions.create_custom_resource_definition(crd(kind), _preload_content=False).status == 201
        yield kubernetes.client.CustomObjectsApi(client)


_counter = iter(range(100_000))


def spec_with(base: dict, **changes) -> dict:
    spec = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


def create(custom, kind: str, spec: dict, name: str | None = None) -> dict:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
            "metadata": {"name": name or f"{kind.lower()}-{next(_counter)}", "namespace": "default"}, "spec": spec}
    return custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURALS[kind], body)


def accepted(custom, kind: str, spec: dict) -> dict:
    """Created, and what was stored (defaults applied) parses as the operator reads it."""
    obj = create(custom, kind, spec)
    if kind in PARSERS:
        PARSERS[kind](obj["spec"], obj["metadata"]["name"], SUBSCRIPTION)
    return obj


def rejected(custom, kind: str, spec: dict) -> str:
    with pytest.raises(kubernetes.client.ApiException) as info:
        create(custom, kind, spec)
    assert info.value.status == 422, info.value.body
    return json.loads(info.value.body)["message"]


def patch_rejected(custom, kind: str, name: str, spec_patch: dict) -> str:
    with pytest.raises(kubernetes.client.ApiException) as info:
        custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURALS[kind], name, {"spec": spec_patch})
    assert info.value.status == 422, info.value.body
    return json.loads(info.value.body)["message"]


def patched(custom, kind: str, name: str, spec_patch: dict) -> dict:
    return custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURALS[kind], name, {"spec": spec_patch})


# ---- the schemas themselves ----------------------------------------------------------------------------------


def _walk(node, path="$"):
    yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from _walk(child, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _walk(node[key], f"{path}.{key}")


@pytest.mark.parametrize("kind, short", [(IMAGE_KIND, "azimg"), (AVSET_KIND, "azavset")])
def test_structural_schema_status_subresource_and_names(kind, short):
    definition = crd(kind)
    version = definition["spec"]["versions"][0]
    for path, node in _walk(version["schema"]["openAPIV3Schema"]):
        assert "type" in node or node.get("x-kubernetes-int-or-string") or \
            node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), f"{path}: both properties kinds"
    assert version["subresources"] == {"status": {}}
    assert short in definition["spec"]["names"]["shortNames"]
    assert {"Ready", "Status", "Location", "Age"} <= {c["name"] for c in version["additionalPrinterColumns"]}


# ---- Image ---------------------------------------------------------------------------------------------------


def test_an_image_from_a_vm_gets_its_defaults(custom):
    spec = accepted(custom, IMAGE_KIND, FROM_VM)["spec"]
    assert spec["fromVirtualMachine"] == {"name": "golden-src", "afterCapture": "KeepDeallocated"}
    assert (spec["deletionPolicy"], spec["reconcilePolicy"], spec["adoptionPolicy"], spec["driftPolicy"]) == (
        "Delete", "Manage", "IfTagged", "Correct")
    assert "osType" not in spec and "osState" not in spec and "hyperVGeneration" not in spec, "the VM's own"


@pytest.mark.parametrize("changes", [
    {"fromVirtualMachine": {"name": "golden-src", "afterCapture": "Delete"}, "osState": "Generalized",
     "hyperVGeneration": "V2"},
    {"fromVirtualMachine": None, "fromManagedDisk": {"id": DISK_ID}, "osType": "Linux"},
    {"fromVirtualMachine": None, "fromManagedDisk": {"id": DISK_ID}, "osType": "Windows", "osState": "Specialized",
     "hyperVGeneration": "V1"},
    {"fromVirtualMachine": None, "fromBlob": {"uri": BLOB_URI}, "osType": "Linux", "hyperVGeneration": "V2",
     "azureName": "golden.v1_0", "tags": {"team": "platform"}},
])
def test_valid_images_are_accepted_and_parse(custom, changes):
    accepted(custom, IMAGE_KIND, spec_with(FROM_VM, **changes))


def test_unknown_image_fields_are_pruned(custom):
    spec = accepted(custom, IMAGE_KIND, spec_with(FROM_VM, fromVm={"name": "x"}))["spec"]
    assert "fromVm" not in spec


#: Cross-field mistakes: rejected at admission, and by the operator's parser (the same rule, twice).
IMAGE_CROSS_FIELD = [
    ({"fromManagedDisk": {"id": DISK_ID}, "osType": "Linux"}, "exactly one source"),
    ({"fromBlob": {"uri": BLOB_URI}, "osType": "Linux"}, "exactly one source"),
    ({"fromVirtualMachine": None}, "exactly one source"),
    ({"fromVirtualMachine": None, "fromManagedDisk": {"id": DISK_ID}}, "osType is required"),
    ({"fromVirtualMachine": None, "fromBlob": {"uri": BLOB_URI}}, "osType is required"),
    ({"osState": "Specialized"}, "captured from a VM is Generalized"),
]


@pytest.mark.parametrize("changes, message", IMAGE_CROSS_FIELD)
def test_image_cross_field_rules_agree_with_the_parser(custom, changes, message):
    spec = spec_with(FROM_VM, **changes)
    assert message in rejected(custom, IMAGE_KIND, spec)
    with pytest.raises(SpecError):
        image_api.parse_spec(spec, "x", SUBSCRIPTION)


@pytest.mark.parametrize("changes, field", [
    ({"location": None}, "spec.location"),
    ({"resourceGroup": None}, "spec.resourceGroup"),
    ({"resourceGroup": "r" * 91}, "spec.resourceGroup"),
    ({"azureName": "-bad"}, "spec.azureName"),
    ({"fromVirtualMachine": {}}, "spec.fromVirtualMachine.name"),
    ({"fromVirtualMachine": {"name": ""}}, "spec.fromVirtualMachine.name"),
    ({"fromVirtualMachine": {"name": "Golden_Src"}}, "spec.fromVirtualMachine.name"),
    ({"fromVirtualMachine": {"name": "golden-src", "afterCapture": "Stop"}}, "spec.fromVirtualMachine.afterCapture"),
    ({"fromVirtualMachine": None, "fromManagedDisk": {"id": "os-disk"}, "osType": "Linux"},
     "spec.fromManagedDisk.id"),
    ({"fromVirtualMachine": None, "fromManagedDisk": {"id": DISK_ID.replace("/disks/", "/snapshots/")},
      "osType": "Linux"}, "spec.fromManagedDisk.id"),
    ({"fromVirtualMachine": None, "fromBlob": {"uri": "http://acct.blob.core.windows.net/v/os.vhd"},
      "osType": "Linux"}, "spec.fromBlob.uri"),
    ({"fromVirtualMachine": None, "fromBlob": {}, "osType": "Linux"}, "spec.fromBlob.uri"),
    ({"osType": "Solaris"}, "spec.osType"),
    ({"hyperVGeneration": "V3"}, "spec.hyperVGeneration"),
    ({"deletionPolicy": "Keep"}, "spec.deletionPolicy"),
    ({"adoptionPolicy": "Sometimes"}, "spec.adoptionPolicy"),
    ({"tags": {"azvm-owner": "me"}}, "operator's own"),
    ({"ignoreDriftFields": ["osType"]}, "spec.ignoreDriftFields[0]"),
])
def test_invalid_images_are_rejected_naming_the_field(custom, changes, field):
    assert field in rejected(custom, IMAGE_KIND, spec_with(FROM_VM, **changes))


@pytest.mark.parametrize("base, change, message", [
    (FROM_VM, {"location": "northeurope"}, "location is immutable"),
    (FROM_VM, {"resourceGroup": "rg-other"}, "resourceGroup is immutable"),
    (FROM_VM, {"subscriptionId": "11111111-1111-1111-1111-111111111111"}, "subscriptionId is immutable"),
    (FROM_VM, {"azureName": "renamed"}, "azureName is immutable"),
    (FROM_VM, {"fromVirtualMachine": {"name": "another-src"}}, "the source (fromVirtualMachine) is immutable"),
    (FROM_VM, {"hyperVGeneration": "V2"}, "hyperVGeneration is immutable"),
    (FROM_VM, {"osType": "Linux"}, "osType is immutable"),
    (FROM_VM, {"osState": "Generalized"}, "osState is immutable"),
    ({**PLACEMENT, "fromManagedDisk": {"id": DISK_ID}, "osType": "Linux"},
     {"fromManagedDisk": {"id": DISK_ID.replace("os-disk", "other-disk")}},
     "the source (fromManagedDisk) is immutable"),
    ({**PLACEMENT, "fromBlob": {"uri": BLOB_URI}, "osType": "Linux"},
     {"fromBlob": {"uri": BLOB_URI + "2"}}, "the source (fromBlob) is immutable"),
    ({**PLACEMENT, "fromBlob": {"uri": BLOB_URI}, "osType": "Linux"}, {"osType": "Windows"}, "osType is immutable"),
    ({**PLACEMENT, "fromBlob": {"uri": BLOB_URI}, "osType": "Linux", "osState": "Specialized"},
     {"osState": "Generalized"}, "osState is immutable"),
])
def test_image_identity_and_source_are_immutable(custom, base, change, message):
    name = accepted(custom, IMAGE_KIND, base)["metadata"]["name"]
    assert message in patch_rejected(custom, IMAGE_KIND, name, change)


def test_image_source_kind_cannot_be_swapped(custom):
    name = accepted(custom, IMAGE_KIND, {**PLACEMENT, "fromBlob": {"uri": BLOB_URI}, "osType": "Linux"})[
        "metadata"]["name"]
    message = patch_rejected(custom, IMAGE_KIND, name, {"fromBlob": None, "fromManagedDisk": {"id": DISK_ID}})
    assert "the source (fromBlob) is immutable" in message
    assert "the source (fromManagedDisk) is immutable" in message


def test_image_tags_policies_and_after_capture_can_change(custom):
    obj = accepted(custom, IMAGE_KIND, FROM_VM)
    changed = patched(custom, IMAGE_KIND, obj["metadata"]["name"], {
        "tags": {"team": "platform"}, "deletionPolicy": "Orphan", "reconcilePolicy": "Observe",
        "fromVirtualMachine": {"name": "golden-src", "afterCapture": "Delete"}})
    assert changed["spec"]["tags"] == {"team": "platform"}
    assert changed["spec"]["fromVirtualMachine"]["afterCapture"] == "Delete"
    assert changed["metadata"]["generation"] == obj["metadata"]["generation"] + 1


# ---- AvailabilitySet -----------------------------------------------------------------------------------------


def test_an_availability_set_gets_its_defaults(custom):
    spec = accepted(custom, AVSET_KIND, AVSET)["spec"]
    assert (spec["platformFaultDomainCount"], spec["platformUpdateDomainCount"], spec["sku"]) == (2, 5, "Aligned")
    assert (spec["deletionPolicy"], spec["reconcilePolicy"], spec["adoptionPolicy"], spec["driftPolicy"]) == (
        "Delete", "Manage", "IfTagged", "Correct")


@pytest.mark.parametrize("faults, updates, sku", [(1, 1, "Aligned"), (3, 20, "Aligned"), (2, 5, "Classic")])
def test_valid_availability_sets_are_accepted_and_parse(custom, faults, updates, sku):
    spec = accepted(custom, AVSET_KIND, spec_with(AVSET, platformFaultDomainCount=faults,
                                                  platformUpdateDomainCount=updates, sku=sku))["spec"]
    assert avset_api.parse_spec(spec, "x", SUBSCRIPTION).fault_domains == faults


@pytest.mark.parametrize("changes, field", [
    ({"platformFaultDomainCount": 0}, "spec.platformFaultDomainCount"),
    ({"platformFaultDomainCount": 4}, "spec.platformFaultDomainCount"),
    ({"platformFaultDomainCount": -1}, "spec.platformFaultDomainCount"),
    ({"platformFaultDomainCount": "2"}, "spec.platformFaultDomainCount"),
    ({"platformUpdateDomainCount": 0}, "spec.platformUpdateDomainCount"),
    ({"platformUpdateDomainCount": 21}, "spec.platformUpdateDomainCount"),
    ({"sku": "Premium"}, "spec.sku"),
    ({"sku": "aligned"}, "spec.sku"),
    ({"location": None}, "spec.location"),
    ({"location": ""}, "spec.location"),
    ({"resourceGroup": None}, "spec.resourceGroup"),
    ({"azureName": "bad name"}, "spec.azureName"),
    ({"reconcilePolicy": "Ignore"}, "spec.reconcilePolicy"),
    ({"driftPolicy": "Ignore"}, "spec.driftPolicy"),
    ({"tags": {"azvm-managed": "x"}}, "operator's own"),
])
def test_invalid_availability_sets_are_rejected_naming_the_field(custom, changes, field):
    spec = spec_with(AVSET, **changes)
    assert field in rejected(custom, AVSET_KIND, spec)
    if "platform" in field and isinstance(next(iter(changes.values())), int):  # the parser agrees on the ranges
        with pytest.raises(SpecError, match=field):
            avset_api.parse_spec(spec, "x", SUBSCRIPTION)


@pytest.mark.parametrize("base, change, message", [
    (AVSET, {"location": "northeurope"}, "location is immutable"),
    (AVSET, {"resourceGroup": "rg-other"}, "resourceGroup is immutable"),
    (AVSET, {"azureName": "renamed"}, "azureName is immutable"),
    (AVSET, {"platformFaultDomainCount": 3}, "platformFaultDomainCount is immutable"),
    (AVSET, {"platformUpdateDomainCount": 10}, "platformUpdateDomainCount is immutable"),
    (AVSET, {"sku": "Classic"}, "sku Aligned cannot go back to Classic"),
])
def test_availability_set_shape_is_immutable(custom, base, change, message):
    name = accepted(custom, AVSET_KIND, base)["metadata"]["name"]
    assert message in patch_rejected(custom, AVSET_KIND, name, change)


def test_a_classic_set_may_become_aligned_and_tags_change(custom):
    obj = accepted(custom, AVSET_KIND, spec_with(AVSET, sku="Classic"))
    changed = patched(custom, AVSET_KIND, obj["metadata"]["name"], {"sku": "Aligned", "tags": {"tier": "web"}})
    assert (changed["spec"]["sku"], changed["spec"]["tags"]) == ("Aligned", {"tier": "web"})
    assert "sku Aligned cannot go back" in patch_rejected(custom, AVSET_KIND, obj["metadata"]["name"],
                                                          {"sku": "Classic"})


# ---- VirtualMachine: availabilitySetRef and image.imageRef ---------------------------------------------------


def test_a_vm_may_name_an_availability_set_resource_and_an_image_resource(custom):
    spec = accepted(custom, VM_KIND, spec_with(VM_SPEC, availabilitySetRef={"name": "web-avset"},
                                               image={"imageRef": {"name": "golden"}}))["spec"]
    assert spec["availabilitySetRef"] == {"name": "web-avset"} and spec["image"] == {"imageRef": {"name": "golden"}}


@pytest.mark.parametrize("changes, message", [
    ({"availabilitySet": "avset-a", "availabilitySetRef": {"name": "web-avset"}},
     "set only one of availabilitySet and availabilitySetRef"),
    ({"zone": "1", "availabilitySetRef": {"name": "web-avset"}}, "either zonal (zone) or in an availability set"),
    ({"availabilitySetRef": {}}, "spec.availabilitySetRef.name"),
    ({"availabilitySetRef": {"name": "Web_AvSet"}}, "spec.availabilitySetRef.name"),
    ({"image": {"imageRef": {"name": "golden"}, "marketplace": VM_SPEC["image"]["marketplace"]}}, "exactly one of"),
    ({"image": {"imageRef": {"name": ""}}}, "spec.image.imageRef.name"),
])
def test_vm_references_are_validated(custom, changes, message):
    assert message in rejected(custom, VM_KIND, spec_with(VM_SPEC, **changes))


@pytest.mark.parametrize("old, new", [
    ({"availabilitySetRef": {"name": "set-a"}}, {"availabilitySetRef": {"name": "set-b"}}),
    ({"availabilitySetRef": {"name": "set-a"}}, {"availabilitySetRef": None}),
    ({}, {"availabilitySetRef": {"name": "set-a"}}),
])
def test_vm_availability_set_ref_is_immutable(custom, old, new):
    name = accepted(custom, VM_KIND, spec_with(VM_SPEC, **old))["metadata"]["name"]
    assert "availabilitySetRef is immutable" in patch_rejected(custom, VM_KIND, name, new)


# ---- the examples --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("example, kinds", [
    ("image-from-vm.yaml", [VM_KIND, IMAGE_KIND, VM_KIND]),
    ("availability-set.yaml", [AVSET_KIND, VM_KIND, VM_KIND]),
])
def test_examples_are_accepted(custom, example, kinds):
    docs = [d for d in yaml.safe_load_all((EXAMPLES / example).read_text()) if d]
    assert [d["kind"] for d in docs] == kinds
    suffix = f"-{next(_counter)}"  # the examples' names, apart from other tests' objects
    for doc in docs:
        doc["metadata"]["name"] += suffix
        if doc["kind"] == IMAGE_KIND:
            doc["spec"]["fromVirtualMachine"]["name"] += suffix
        if doc["kind"] == VM_KIND:
            for ref in (doc["spec"].get("availabilitySetRef"), doc["spec"]["image"].get("imageRef")):
                if ref:
                    ref["name"] += suffix
        stored = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURALS[doc["kind"]], doc)
        assert stored["spec"]["location"] == doc["spec"]["location"]
        if doc["kind"] in PARSERS:
            PARSERS[doc["kind"]](stored["spec"], stored["metadata"]["name"], SUBSCRIPTION)
