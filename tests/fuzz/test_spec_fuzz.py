"""Property-based fuzzing of VirtualMachine and ScaleSet specs through the whole path, in process (fast): the
CRD schema as the test Kubernetes API applies it (prune, default, OpenAPI validation, CEL), then the operator's
parsing (api/virtualmachine.py, api/scaleset.py, autoscale/spec.py) and its ARM translation.

The property: a spec the schema admits either parses (and translates to ARM bodies) or raises the operator's
SpecError with a message; never another exception (which would be a crash loop instead of a Stalled condition)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azure_vm_operator.api import scaleset as ss_api
from azure_vm_operator.api import virtualmachine as vm_api
from azure_vm_operator.api.fields import SpecError
from azure_vm_operator.api.machine import ImageSpec
from azure_vm_operator.autoscale.spec import parse_autoscale
from azure_vm_operator.azure import scaleset as ss_arm
from azure_vm_operator.azure import virtualmachine as vm_arm
from azure_vm_operator.azure.ownership import Identity

from fuzz_helpers import BASE, NAMES, SCALESET_FIELDS, VM_FIELDS, admit, hostile_spec, schema_of

VM_SCHEMA, SS_SCHEMA = schema_of("VirtualMachine"), schema_of("ScaleSet")
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
FUZZ = settings(max_examples=1500, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])
TALLY: dict[str, int] = {}


def count(key: str) -> None:
    TALLY[key] = TALLY.get(key, 0) + 1


IMAGE_ID = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/resolved"


def resolved(parsed):
    """What the controller does before building bodies: an imageRef resolved to its Image's id."""
    if parsed.image.image_ref:
        parsed = dataclasses.replace(parsed, image=ImageSpec(id=IMAGE_ID))
    return parsed


def through_the_operator_vm(name: str, spec: dict) -> None:
    try:
        parsed = vm_api.parse_spec(spec, name, SUBSCRIPTION)
    except SpecError as exc:
        assert str(exc) and exc.reason, "a SpecError needs a message and a reason"
        count("vm rejected by the operator")
        return
    parsed = resolved(parsed)
    identity = Identity("c", "VirtualMachine", "default", name, "uid")
    body = vm_arm.vm_body(parsed, identity, vm_arm.VmInputs("/nic", "pw", "Y3VzdG9t"))
    json.dumps(body)
    vm_arm.diff_vm(parsed, identity, body)
    count("vm parsed")


def through_the_operator_ss(name: str, spec: dict) -> None:
    try:
        parsed = ss_api.parse_spec(spec, name, SUBSCRIPTION)
        parse_autoscale(spec.get("autoscale"))
    except SpecError as exc:
        assert str(exc) and exc.reason
        count("scaleset rejected by the operator")
        return
    parsed = resolved(parsed)
    identity = Identity("c", "ScaleSet", "default", name, "uid")
    body = ss_arm.scale_set_body(parsed, identity, ss_arm.Inputs("/subnet", "/nsg", "pw", "Y3VzdG9t"),
                                 ss_arm.desired_capacity(parsed, None))
    json.dumps(body)
    if parsed.load_balancer.enabled:
        json.dumps(ss_arm.load_balancer_body(parsed, identity, "/pip"))
    count("scaleset parsed")


@FUZZ
@given(name=NAMES, spec=hostile_spec(VM_FIELDS))
def test_admitted_virtualmachine_specs_parse_or_raise_spec_error(name, spec):
    stored, causes = admit(VM_SCHEMA, "VirtualMachine", name, spec)
    if stored is None:
        assert all(c.get("message") for c in causes)
        count("vm refused at admission")
        return
    through_the_operator_vm(name, stored["spec"])


@FUZZ
@given(name=NAMES, spec=hostile_spec(SCALESET_FIELDS))
def test_admitted_scaleset_specs_parse_or_raise_spec_error(name, spec):
    stored, causes = admit(SS_SCHEMA, "ScaleSet", name, spec)
    if stored is None:
        assert all(c.get("message") for c in causes)
        count("scaleset refused at admission")
        return
    through_the_operator_ss(name, stored["spec"])


def test_the_fuzzing_reached_every_outcome():
    """Runs after the two properties (file order): each outcome was seen, so the generators are not degenerate."""
    print("fuzz tally:", json.dumps(TALLY, sort_keys=True))
    for outcome in ("refused at admission", "rejected by the operator", "parsed"):
        for kind in ("vm", "scaleset"):
            assert TALLY.get(f"{kind} {outcome}", 0) > 0, (kind, outcome, TALLY)


# ---- specific hostile values: refused with a reason that names the field --------------------------------------


def refusal(kind: str, spec: dict, name: str = "vm-1") -> str:
    """The reason the whole path gives for a spec: the admission causes, else the operator's SpecError."""
    schema = VM_SCHEMA if kind == "VirtualMachine" else SS_SCHEMA
    stored, causes = admit(schema, kind, name, spec)
    if stored is None:
        return "admission: " + "; ".join(f"{c.get('field')}: {c['message']}" for c in causes)
    parse = vm_api.parse_spec if kind == "VirtualMachine" else ss_api.parse_spec
    with pytest.raises(SpecError) as info:
        parse(stored["spec"], name, SUBSCRIPTION)
        if kind == "ScaleSet":
            parse_autoscale(stored["spec"].get("autoscale"))
    return "operator: " + str(info.value)


HOSTILE = [
    # (kind, change, expected where, expected words in the reason)
    ("VirtualMachine", {"azureName": "-bad-"}, "admission", "azureName"),
    ("VirtualMachine", {"azureName": "a" * 65}, "admission", "azureName"),
    ("VirtualMachine", {"azureName": "名前"}, "admission", "azureName"),
    ("VirtualMachine", {"azureName": "vm\n"}, "admission", "azureName"),
    ("VirtualMachine", {"resourceGroup": "rg/../x"}, "admission", "resourceGroup"),
    ("VirtualMachine", {"resourceGroup": "rg."}, "admission", "resourceGroup"),
    ("VirtualMachine", {"location": "West Europe"}, "admission", "location"),
    ("VirtualMachine", {"size": "B2s"}, "admission", "size"),
    ("VirtualMachine", {"size": "Standard_B2s; rm -rf"}, "admission", "size"),
    ("VirtualMachine", {"subscriptionId": "not-a-uuid"}, "admission", "subscriptionId"),
    ("VirtualMachine", {"adminUsername": "root"}, "admission", "adminUsername"),
    ("VirtualMachine", {"adminUsername": "ünïcode"}, "admission", "adminUsername"),
    ("VirtualMachine", {"userData": "A" * 65536}, "admission", "userData"),
    ("VirtualMachine", {"network": {"subnetId": "10.0.0.0/24"}}, "admission", "subnetId"),
    ("VirtualMachine", {"network": {"openPorts": [0]}}, "admission", "openPorts"),
    ("VirtualMachine", {"network": {"openPorts": [70000]}}, "admission", "openPorts"),
    ("VirtualMachine", {"osDisk": {"sizeGB": -1}}, "admission", "sizeGB"),
    ("VirtualMachine", {"osDisk": {"sizeGB": 10**12}}, "admission", "sizeGB"),
    ("VirtualMachine", {"dataDisks": [{"lun": 64, "sizeGB": 10}]}, "admission", "lun"),
    ("VirtualMachine", {"tags": {"k": "v" * 257}}, "admission", "tags"),
    ("VirtualMachine", {"tags": {"azvm-owner": "someone/else"}}, "admission", "tags"),
    ("VirtualMachine", {"tags": {"a/b": "v"}}, "operator", "spec.tags"),
    ("ScaleSet", {"tags": {"x<y": "v"}}, "operator", "spec.tags"),
    ("VirtualMachine", {"tags": {"k" * 513: "v"}}, "admission", "tags"),
    ("VirtualMachine", {"adminPasswordSecretRef": {"name": "../kube-system/x"}}, "admission",
     "adminPasswordSecretRef"),
    ("VirtualMachine", {"credentialsSecretRef": {"name": "UPPER"}}, "admission", "credentialsSecretRef"),
    ("VirtualMachine", {"customDataSecretRef": {"name": "ok", "key": "a/b"}}, "admission", "customDataSecretRef"),
    ("VirtualMachine", {"priority": "Spot", "maxPrice": -5}, "admission", "maxPrice"),
    ("VirtualMachine", {"priority": "Spot", "maxPrice": 0}, "admission", "maxPrice"),
    ("VirtualMachine", {"zone": "4"}, "admission", "zone"),
    ("ScaleSet", {"replicas": -1}, "admission", "replicas"),
    ("ScaleSet", {"replicas": 10**9}, "admission", "replicas"),
    ("ScaleSet", {"replicas": 2**63}, "admission", "replicas"),
    ("ScaleSet", {"autoscale": {"minReplicas": 5, "maxReplicas": 2}}, "admission", "minReplicas"),
    ("ScaleSet", {"autoscale": {"maxReplicas": -3}}, "admission", "maxReplicas"),
    ("ScaleSet", {"protectedInstances": ["x"]}, "admission", "protectedInstances"),
    ("ScaleSet", {"loadBalancer": {"enabled": True}}, "admission", "loadBalancer"),
    ("ScaleSet", {"rollout": {"pauseBetweenBatches": "forever"}}, "admission", "pauseBetweenBatches"),
    ("ScaleSet", {"tags": {"azvm-uid": "x"}}, "admission", "tags"),
    ("VirtualMachine", {"sshPublicKeys": None}, "admission", "sshPublicKeys"),
    ("VirtualMachine", {"evictionPolicy": "Delete"}, "admission", "Spot"),
    ("VirtualMachine", {"availabilitySet": "set", "zone": "1"}, "admission", "zone"),
    ("ScaleSet", {"userData": "A" * 65536}, "admission", "userData"),
    # what only the operator can say (it depends on another field, the object's name, or the operator's config)
    ("VirtualMachine", {"osType": "Windows"}, "operator", "adminPasswordSecretRef"),
    ("ScaleSet", {"upgradePolicy": {"mode": "Rolling"}}, "operator", "loadBalancer"),
    ("ScaleSet", {"loadBalancer": {"enabled": True, "rules": [
        {"name": "a", "frontendPort": 80, "backendPort": 80},
        {"name": "b", "frontendPort": 80, "backendPort": 8080}]}}, "operator", "frontendPort"),
]


@pytest.mark.parametrize("kind,change,where,words", HOSTILE,
                         ids=[f"{k}-{'-'.join(c)}-{i}" for i, (k, c, _, _) in enumerate(HOSTILE)])
def test_hostile_values_are_refused_with_a_specific_reason(kind, change, where, words):
    spec = {**BASE, **change}
    spec = {k: v for k, v in spec.items() if v is not None}
    reason = refusal(kind, spec)
    assert reason.startswith(where), reason
    assert words in reason, reason


def test_a_default_azure_name_from_a_long_metadata_name_is_refused_by_the_operator():
    reason = refusal("VirtualMachine", dict(BASE), name="a" * 70)
    assert reason.startswith("operator") and "spec.azureName" in reason


@settings(max_examples=300, deadline=None, derandomize=True)
@given(replicas=st.integers(min_value=-2**70, max_value=2**70))
def test_replica_counts_outside_0_to_1000_never_reach_the_operator(replicas):
    stored, causes = admit(SS_SCHEMA, "ScaleSet", "ss", {**BASE, "replicas": replicas})
    if 0 <= replicas <= 1000:
        assert stored is not None and ss_api.parse_spec(stored["spec"], "ss", SUBSCRIPTION).replicas == replicas
    else:
        assert stored is None and "replicas" in json.dumps(causes)
