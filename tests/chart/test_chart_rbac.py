"""The chart's RBAC grants exactly what the operator calls, derived from the code rather than a hand-kept list:

- the kinds: every CRD in crds/ (a kind added there is covered with no chart edit), with /status and /scale where
  the CRD declares those subresources;
- the operator's own Kubernetes calls: every `<verb>_namespaced_<resource>` method of the kubernetes client called
  anywhere in operator/azure_vm_operator (kube.py, leader.py, ...), mapped to its RBAC verb and resource;
- Kopf's calls (kopf/_cogs/clients: fetching and watching lists and watches, patching patches finalizers and
  annotations, events posts Events; reactor/observation lists and watches CRDs, and Namespaces when not
  cluster-wide), as Kopf's deployment docs list them;
- the leader Leases, named as sharding.Shard names them, in the release namespace.

Nothing more: no wildcard, no verb or resource outside that set, Secrets and ConfigMaps only where resources are
watched."""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from chart_helpers import CRDS, NAMESPACE, ROOT, VALUE_SETS, objects, of_kind

OPERATOR = ROOT / "operator" / "azure_vm_operator"
#: kubectl-azvm runs with the user's credentials, not the operator's ServiceAccount
NOT_THE_OPERATOR = {"kubectl_plugin.py"}
CLIENT_VERB = {"read": "get", "get": "get", "list": "list", "create": "create", "replace": "update", "patch": "patch",
               "delete": "delete"}
CORE_RESOURCES = {"secret": ("", "secrets"), "config_map": ("", "configmaps"),
                  "lease": ("coordination.k8s.io", "leases"), "event": ("", "events")}

Rule = tuple[str, str, str]  # (apiGroup, resource, verb)


@functools.cache
def crd_rules() -> frozenset[Rule]:
    rules: set[Rule] = set()
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        subresources = set().union(*(v.get("subresources", {}).keys() for v in crd["spec"]["versions"]))
        rules |= {(group, plural, "list"), (group, plural, "watch"), (group, plural, "patch")}  # Kopf
        rules |= {(group, f"{plural}/{sub}", "patch") for sub in subresources & {"status", "scale"}}
    return frozenset(rules)


@functools.cache
def operator_calls() -> frozenset[Rule]:
    """The kubernetes-client calls in the operator's code, as RBAC rules (custom objects: on every kind)."""
    declared = {(g, r) for g, r, _ in crd_rules()}  # kinds and the subresources they declare
    kinds = {(g, r) for g, r in declared if "/" not in r}
    calls: set[Rule] = set()
    pattern = re.compile(r"^(read|get|list|create|replace|patch|delete)_namespaced_(\w+?)(_status|_scale)?$")
    for path in OPERATOR.rglob("*.py"):
        if path.name in NOT_THE_OPERATOR:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Attribute) and (m := pattern.match(node.attr))):
                continue
            verb, resource, sub = CLIENT_VERB[m.group(1)], m.group(2), (m.group(3) or "").replace("_", "/")
            if resource == "custom_object":
                calls |= {(g, plural + sub, verb) for g, plural in kinds if (g, plural + sub) in declared}
            else:
                assert resource in CORE_RESOURCES, f"{path.name}: {node.attr}: map it to an RBAC resource here"
                group, plural = CORE_RESOURCES[resource]
                calls.add((group, plural + sub, verb))
    return frozenset(calls)


def uses_kopf_events() -> bool:
    return any("kopf.event(" in p.read_text() for p in OPERATOR.rglob("*.py"))


def expected(namespace_scoped: bool, kopf_observation: bool = True) -> tuple[set[Rule], set[Rule], set[Rule]]:
    """(rules where resources are watched, cluster-wide observation rules, rules in the release namespace)."""
    calls = operator_calls()
    leases = {r for r in calls if r[1] == "leases"}
    watched = set(crd_rules() | (calls - leases))
    watched.add(("", "events", "create"))  # Kopf posts Events (kopf/_cogs/clients/events.py), and so do we
    observation: set[Rule] = set()
    if kopf_observation:
        observation = {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")}
        if namespace_scoped:
            observation |= {("", "namespaces", v) for v in ("list", "watch")}
    return watched, observation, leases


def assert_exact(granted_rules: set[Rule], wanted: set[Rule], where: str) -> None:
    missing, extra = sorted(wanted - granted_rules), sorted(granted_rules - wanted)
    assert not missing, (f"{where}: the operator calls these and the chart does not grant them (add them to "
                         f"charts/azure-vm-operator/templates/_helpers.tpl): {missing}")
    assert not extra, f"{where}: granted but never called by the operator: {extra}"


def granted(role: dict) -> tuple[set[Rule], dict[Rule, set[str]]]:
    rules: set[Rule] = set()
    names: dict[Rule, set[str]] = defaultdict(set)
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), rule
                    rules.add((group, resource, verb))
                    names[(group, resource, verb)] |= set(rule.get("resourceNames", []))
    return rules, names


def bound_roles(objs: list[dict]) -> dict[tuple[str, str, str | None], dict]:
    """(kind, name, namespace) of every role bound to the operator's ServiceAccount -> the role."""
    [sa] = of_kind(objs, "ServiceAccount")
    roles = {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")): o
             for o in objs if o["kind"] in ("Role", "ClusterRole")}
    bound = {}
    for binding in (o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                        "namespace": NAMESPACE}]
        ref = binding["roleRef"]
        key = (ref["kind"], ref["name"], binding["metadata"].get("namespace") if ref["kind"] == "Role" else None)
        bound[key] = roles[key]
    assert len(bound) == len(roles), "a role nobody is bound to"
    return bound


def test_the_operator_calls_are_found_in_the_code():
    calls = operator_calls()
    # the calls made today (kube.py, leader.py): a sanity check of the scan itself
    assert {("", "secrets", "get"), ("", "configmaps", "get"), ("coordination.k8s.io", "leases", "create"),
            ("coordination.k8s.io", "leases", "update"), ("compute.azvm.io", "scalesets/scale", "patch"),
            ("compute.azvm.io", "virtualmachines/status", "patch")} <= calls
    assert uses_kopf_events()


def test_every_kind_the_operator_serves_has_a_crd_and_rules():
    from azure_vm_operator.controllers.handlers import KINDS

    plurals = {r.split("/")[0] for _, r, _ in crd_rules()}
    assert {make().plural for make in KINDS} <= plurals


@pytest.mark.parametrize("name", ["default", "observability", "workload-identity"])
def test_cluster_wide_rbac_is_exactly_what_the_operator_calls(name):
    bound = bound_roles(objects(VALUE_SETS[name]))
    watched, observation, leases = expected(namespace_scoped=False)
    cluster = {k[1]: granted(v)[0] for k, v in bound.items() if k[0] == "ClusterRole"}
    assert set(cluster) == {"azvm-azure-vm-operator", "azvm-azure-vm-operator-observer"}
    assert_exact(cluster["azvm-azure-vm-operator"], watched, "ClusterRole")
    assert_exact(cluster["azvm-azure-vm-operator-observer"], observation, "ClusterRole (Kopf's observation)")
    [(key, role)] = [(k, v) for k, v in bound.items() if k[0] == "Role"]
    assert key[2] == NAMESPACE
    assert_leases(role, leases, VALUE_SETS[name])


@pytest.mark.parametrize("name", ["namespace-scoped", "namespace-scoped-minimal"])
def test_namespace_scoped_rbac_stays_in_the_watched_namespace(name):
    values = VALUE_SETS[name]
    minimal = values.get("rbac", {}).get("kopfObservation") is False
    bound = bound_roles(objects(values))
    watched, observation, leases = expected(namespace_scoped=True, kopf_observation=not minimal)
    [watch_namespace] = values["watchNamespaces"]
    roles = {k: v for k, v in bound.items() if k[0] == "Role"}
    assert_exact(granted(roles.pop(("Role", "azvm-azure-vm-operator", watch_namespace)))[0], watched,
                 f"Role in {watch_namespace}")
    cluster = [granted(v)[0] for k, v in bound.items() if k[0] == "ClusterRole"]
    assert cluster == ([observation] if observation else [])
    if values.get("leaderElection", {}).get("enabled", True):
        [role] = roles.values()
        assert_leases(role, leases, values)
    else:
        assert not roles
    for rules in cluster:  # nothing cluster-wide reads Secrets, ConfigMaps or the kinds
        assert {r[1] for r in rules} <= {"customresourcedefinitions", "namespaces"}
        assert {r[2] for r in rules} <= {"list", "watch"}


def test_shards_get_one_lease_each():
    values = VALUE_SETS["shards"]
    [role] = [v for k, v in bound_roles(objects(values)).items() if k[0] == "Role"]
    assert_leases(role, expected(False)[2], values)


def assert_leases(role: dict, leases: set[Rule], values: dict) -> None:
    from azure_vm_operator.leader import LEASE_NAME
    from azure_vm_operator.sharding import Shard

    assert role["metadata"]["namespace"] == NAMESPACE  # POD_NAMESPACE: the Lease lives beside the operator
    rules, names = granted(role)
    assert_exact(rules, leases, "leader election Role")
    count = values.get("sharding", {}).get("count", 1)
    selector = values.get("operator", {}).get("selector") or None
    lease_names = {Shard(i, count, selector).lease_name(LEASE_NAME) for i in range(count)}
    for rule in rules:
        # create cannot be limited by name (the name is in the body); reads and updates are
        assert names[rule] == (set() if rule[2] == "create" else lease_names), rule
