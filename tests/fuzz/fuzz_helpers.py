"""Hypothesis strategies for hostile VirtualMachine and ScaleSet specs, and the in-process admission of the test
Kubernetes API (the same CompiledSchema the API server runs: OpenAPI validation, defaulting, pruning, CEL)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from azvm_sandbox.crds import load_crds
from kubeapi.schema import CompiledSchema

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVxUo3ZP3wv0vY3W4nKJt2f5Q0mPp0m2v7O1l8h4aDm x@y"

BASE = {
    "location": "westeurope",
    "resourceGroup": "rg-1",
    "size": "Standard_B2s",
    "image": {"marketplace": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}},
    "adminUsername": "azureuser",
    "sshPublicKeys": [KEY],
}


def schema_of(kind: str) -> CompiledSchema:
    crd = next(c for c in load_crds(CRDS) if c["spec"]["names"]["kind"] == kind)
    return CompiledSchema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def admit(schema: CompiledSchema, kind: str, name: str, spec: dict[str, Any]) -> tuple[dict[str, Any] | None, list]:
    """What a create does to the object: prune, default, validate. (object as stored, []) or (None, causes)."""
    obj = {"apiVersion": "compute.azvm.io/v1alpha1", "kind": kind,
           "metadata": {"name": name, "namespace": "default"}, "spec": copy.deepcopy(spec)}
    schema.prune(obj)
    schema.default(obj)
    causes = schema.validate(obj, None)
    return (None, causes) if causes else (obj, [])


# ---- hostile values ---------------------------------------------------------------------------------------------

UNICODE = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
HOSTILE_TEXT = st.one_of(
    UNICODE,
    st.sampled_from(["", " ", "-", ".", "a" * 65, "a" * 300, "../etc/passwd", "x/y", "名前", "vm\x00", "vm\n",
                     "UPPER", "-lead", "trail-", "trail.", "ok-name", "a.b", "%2e%2e", "${jndi:x}", "'; DROP",
                     "Standard_B2s", "westeurope", "10.0.0.0/8", "1", "0"]),
)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**64) | st.floats(allow_nan=False)
    | HOSTILE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(HOSTILE_TEXT, inner, max_size=3),
    max_leaves=6,
)
INTS = st.one_of(st.integers(min_value=-3, max_value=70000), st.sampled_from([-2**31, 2**31, 2**63, 10**20]),
                 st.floats(allow_nan=False, allow_infinity=False), HOSTILE_TEXT)

MACHINE_FIELDS = {
    "location": HOSTILE_TEXT | st.sampled_from(["westeurope", "eastus2"]),
    "resourceGroup": HOSTILE_TEXT | st.sampled_from(["rg-1", "rg_(x).y", "rg."]),
    "subscriptionId": HOSTILE_TEXT | st.uuids().map(str),
    "azureName": HOSTILE_TEXT,
    "size": HOSTILE_TEXT | st.sampled_from(["Standard_D4s_v5", "Basic_A0", "Standard_", "standard_b2s"]),
    "image": st.one_of(
        ANY_JSON,
        st.fixed_dictionaries({"marketplace": st.fixed_dictionaries(
            {"publisher": HOSTILE_TEXT, "offer": HOSTILE_TEXT, "sku": HOSTILE_TEXT},
            optional={"version": HOSTILE_TEXT | st.just("1.2.3")})}),
        st.fixed_dictionaries({"id": HOSTILE_TEXT | st.just(
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/i")}),
        st.fixed_dictionaries({"imageRef": st.fixed_dictionaries({"name": HOSTILE_TEXT})}),
        st.fixed_dictionaries({"marketplace": st.just(BASE["image"]["marketplace"]),
                               "imageRef": st.just({"name": "x"})}),
    ),
    "osType": HOSTILE_TEXT | st.sampled_from(["Linux", "Windows"]),
    "adminUsername": HOSTILE_TEXT | st.sampled_from(["root", "Admin", "_x", "a" * 64]),
    "sshPublicKeys": st.lists(HOSTILE_TEXT | st.just(KEY) | st.just("ssh-rsa AAAA x"), max_size=12),
    "adminPasswordSecretRef": ANY_JSON | st.fixed_dictionaries({"name": HOSTILE_TEXT},
                                                               optional={"key": HOSTILE_TEXT}),
    "customDataSecretRef": ANY_JSON | st.fixed_dictionaries({"name": HOSTILE_TEXT}, optional={"key": HOSTILE_TEXT}),
    "customDataConfigMapRef": st.fixed_dictionaries({"name": HOSTILE_TEXT}, optional={"key": HOSTILE_TEXT}),
    "credentialsSecretRef": ANY_JSON | st.fixed_dictionaries({"name": HOSTILE_TEXT}),
    "userData": HOSTILE_TEXT | st.integers(0, 3).map(lambda n: "A" * (65535 + n)),
    "osDisk": ANY_JSON | st.fixed_dictionaries({}, optional={
        "sizeGB": INTS, "storageAccountType": HOSTILE_TEXT | st.just("Premium_LRS"),
        "caching": HOSTILE_TEXT | st.just("ReadOnly"), "deleteWithVM": ANY_JSON}),
    "dataDisks": ANY_JSON | st.lists(st.fixed_dictionaries({"lun": INTS, "sizeGB": INTS}, optional={
        "storageAccountType": HOSTILE_TEXT, "caching": HOSTILE_TEXT, "deleteWithVM": st.booleans()}), max_size=4),
    "priority": HOSTILE_TEXT | st.sampled_from(["Regular", "Spot"]),
    "evictionPolicy": HOSTILE_TEXT | st.sampled_from(["Deallocate", "Delete"]),
    "maxPrice": INTS,
    "network": ANY_JSON | st.fixed_dictionaries({}, optional={
        "subnetId": HOSTILE_TEXT | st.just("/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/"
                                           "virtualNetworks/v/subnets/default"),
        "publicIP": ANY_JSON, "openPorts": st.lists(INTS, max_size=4)}),
    "powerState": HOSTILE_TEXT | st.sampled_from(["Running", "Stopped", "Deallocated"]),
    "tags": ANY_JSON | st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT | st.just("v" * 257), max_size=4)
    | st.just({"azvm-owner": "other-cluster/VirtualMachine/default/x"}),
    "deletionPolicy": HOSTILE_TEXT | st.sampled_from(["Delete", "Orphan"]),
    "reconcilePolicy": HOSTILE_TEXT | st.sampled_from(["Manage", "Observe", "Pause"]),
    "adoptionPolicy": HOSTILE_TEXT | st.sampled_from(["Never", "IfTagged", "Always"]),
    "driftPolicy": HOSTILE_TEXT | st.sampled_from(["Correct", "Report"]),
    "ignoreDriftFields": st.lists(HOSTILE_TEXT | st.just("tags.x"), max_size=3),
}

VM_FIELDS = {
    **MACHINE_FIELDS,
    "zone": HOSTILE_TEXT | st.sampled_from(["1", "2", "3"]) | INTS,
    "availabilitySet": HOSTILE_TEXT,
    "availabilitySetRef": ANY_JSON | st.fixed_dictionaries({"name": HOSTILE_TEXT}),
    "availabilitySetOptions": ANY_JSON | st.fixed_dictionaries({}, optional={
        "platformFaultDomainCount": INTS, "platformUpdateDomainCount": INTS}),
}

RULE = st.fixed_dictionaries({"name": HOSTILE_TEXT, "frontendPort": INTS, "backendPort": INTS},
                             optional={"protocol": HOSTILE_TEXT | st.sampled_from(["Tcp", "Udp"])})
AUTOSCALE = st.one_of(ANY_JSON, st.fixed_dictionaries({"maxReplicas": INTS}, optional={
    "mode": HOSTILE_TEXT | st.sampled_from(["Enabled", "Disabled"]),
    "minReplicas": INTS, "defaultReplicas": INTS, "evaluationInterval": HOSTILE_TEXT | st.just("30s"),
    "rules": st.lists(st.fixed_dictionaries({"name": HOSTILE_TEXT}, optional={
        "azureMonitor": ANY_JSON | st.just({}),
        "prometheus": st.fixed_dictionaries({"query": HOSTILE_TEXT}, optional={"serverAddress": HOSTILE_TEXT}),
        "operator": HOSTILE_TEXT | st.just("GreaterThan"), "threshold": INTS,
        "action": ANY_JSON | st.fixed_dictionaries({"direction": st.sampled_from(["Increase", "Decrease"]),
                                                    "value": INTS}),
        "target": ANY_JSON | st.fixed_dictionaries({}, optional={"value": INTS, "averageValue": INTS}),
        "cooldown": HOSTILE_TEXT}), max_size=2),
    "profiles": ANY_JSON,
    "behavior": ANY_JSON,
}))
SCALESET_FIELDS = {
    **MACHINE_FIELDS,
    "zones": st.lists(HOSTILE_TEXT | st.sampled_from(["1", "2", "3"]), max_size=4),
    "replicas": INTS | st.none(),
    "autoscale": AUTOSCALE,
    "loadBalancer": ANY_JSON | st.fixed_dictionaries({}, optional={
        "enabled": ANY_JSON | st.booleans(), "public": st.booleans(), "rules": st.lists(RULE, max_size=3),
        "probe": ANY_JSON | st.fixed_dictionaries({}, optional={
            "protocol": HOSTILE_TEXT | st.sampled_from(["Tcp", "Http"]), "port": INTS, "path": HOSTILE_TEXT,
            "intervalSeconds": INTS})}),
    "upgradePolicy": ANY_JSON | st.fixed_dictionaries({}, optional={
        "mode": HOSTILE_TEXT | st.sampled_from(["Manual", "Automatic", "Rolling"]),
        "rolling": ANY_JSON | st.fixed_dictionaries({}, optional={
            "maxBatchInstancePercent": INTS, "maxUnhealthyInstancePercent": INTS,
            "pauseTimeBetweenBatches": HOSTILE_TEXT | st.just("1h30m")})}),
    "rollout": ANY_JSON | st.fixed_dictionaries({}, optional={
        "maxUnavailable": INTS, "pauseBetweenBatches": HOSTILE_TEXT | st.just("99999999999h"),
        "batchHealthTimeout": HOSTILE_TEXT}),
    "scaleInPolicy": HOSTILE_TEXT | st.sampled_from(["Default", "NewestVM"]),
    "protectedInstances": st.lists(HOSTILE_TEXT | st.just("0") | st.just("99999999999999999999"), max_size=3),
}

NAMES = st.sampled_from(["vm-1", "a" * 63, "a" * 65, "b" * 200, "web.prod", "x"]) | st.from_regex(
    r"[a-z0-9]([-a-z0-9.]{0,80}[a-z0-9])?", fullmatch=True)


def hostile_spec(fields: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The valid base spec with 1-3 fields replaced by hostile values (a few removed)."""

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        spec = copy.deepcopy(BASE)
        for key in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3, unique=True)):
            if draw(st.integers(0, 9)) == 0:
                spec.pop(key, None)
            else:
                spec[key] = draw(fields[key])
        return spec

    return build()
