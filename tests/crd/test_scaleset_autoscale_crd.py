"""ScaleSet.spec.autoscale and status.autoscale as the API server applies them, and in agreement with the parser.

The ScaleSet CRD is created over HTTP in the project's Kubernetes API server (structural-schema check, CEL
compilation), and ScaleSets are created through it (pruning, defaulting, OpenAPI validation, CEL rules). Every
autoscale spec the API server accepts here must also parse with ``parse_autoscale``, and every one it rejects must be
rejected by the parser too: the schema says early what the operator would otherwise report as InvalidSpec.

kube-apiserver also rejects a CRD whose CEL rules have too high an *estimated* cost; the project's API server does not
estimate costs, so ``test_cel_cost_is_bounded`` bounds them offline, conservatively, in the way kube-apiserver's
estimator works (cost x the largest number of times a rule can run, from the maxItems of the lists around it).
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import kubernetes.client
import pytest
import yaml

from azure_vm_operator.api.constants import GROUP, SCALESET_KIND, SCALESET_PLURAL, VERSION
from azure_vm_operator.api.fields import SpecError
from azure_vm_operator.autoscale.spec import parse_autoscale
from azvm_sandbox.crds import load_crds
from azvm_sandbox.harness import kube_api

ROOT = Path(__file__).resolve().parents[2]
CRDS, EXAMPLES = ROOT / "crds", ROOT / "examples"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVxUo3ZP3wv0vY3W4nKJt2f5Q0mPp0m2v7O1l8h4aDm x@y"
BASE_SPEC = {
    "location": "westeurope",
    "resourceGroup": "rg-autoscale",
    "size": "Standard_B2s",
    "image": {"marketplace": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}},
    "adminUsername": "azureuser",
    "sshPublicKeys": [KEY],
}
CPU = {"metricName": "Percentage CPU", "aggregation": "Average", "timeGrain": "1m", "timeWindow": "5m"}
CPU_RULES = [
    {"name": "cpu-high", "azureMonitor": CPU, "operator": "GreaterThan", "threshold": 70,
     "action": {"direction": "Increase", "type": "ChangeCount", "value": 2}, "cooldown": "5m"},
    {"name": "cpu-low", "azureMonitor": CPU, "operator": "LessThan", "threshold": 30,
     "action": {"direction": "Decrease", "type": "ChangeCount", "value": 1}, "cooldown": "5m"},
]
BUSINESS_HOURS = {"name": "business-hours", "minReplicas": 4,
                  "recurrence": {"days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
                                 "start": "08:00", "end": "18:00", "timeZone": "Europe/Berlin"}}
AZURE_MONITOR = {"minReplicas": 2, "maxReplicas": 10, "defaultReplicas": 2, "rules": CPU_RULES,
                 "profiles": [BUSINESS_HOURS]}
PROMETHEUS = {"minReplicas": 1, "maxReplicas": 8, "rules": [
    {"name": "cpu-target", "prometheus": {"query": 'avg(azure_vm_cpu_percent{scale_set="web-prom"})'},
     "target": {"value": 60}}]}

#: kube-apiserver's limits (k8s.io/apiserver/pkg/apis/cel): per expression, and for the whole schema.
STATIC_ESTIMATED_COST_LIMIT = 10_000_000
STATIC_ESTIMATED_CRD_COST_LIMIT = 100_000_000


def scaleset_crd() -> dict:
    return next(c for c in load_crds(CRDS) if c["spec"]["names"]["kind"] == SCALESET_KIND)


def schema() -> dict:
    return scaleset_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.fixture(scope="module")
def kube(tmp_path_factory):
    """The API server with the ScaleSet CRD created over HTTP, as kubectl apply -f crds/ would."""
    with kube_api(tmp_path_factory.mktemp("kube"), name="autoscale-crd-api") as client:
        created = kubernetes.client.ApiextensionsV1Api(client).create_custom_resource_definition(
            scaleset_crd(), _preload_content=False)
        assert created.status == 201
        yield client


@pytest.fixture(scope="module")
def custom(kube):
    return kubernetes.client.CustomObjectsApi(kube)


_counter = iter(range(100_000))


def body(autoscale, **spec_changes) -> dict:
    spec = {**copy.deepcopy(BASE_SPEC), **spec_changes}
    if autoscale is not None:
        spec["autoscale"] = copy.deepcopy(autoscale)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": SCALESET_KIND,
            "metadata": {"name": f"as-{next(_counter)}", "namespace": "default"}, "spec": spec}


def accepted(custom, autoscale, **spec_changes) -> dict:
    """Created by the API server, and both what was sent and what was stored parse: schema and parser agree."""
    obj = custom.create_namespaced_custom_object(GROUP, VERSION, "default", SCALESET_PLURAL,
                                                 body(autoscale, **spec_changes))
    parse_autoscale(autoscale)
    assert parse_autoscale(obj["spec"]["autoscale"]) is not None
    return obj


def rejected(custom, autoscale) -> str:
    with pytest.raises(kubernetes.client.ApiException) as info:
        custom.create_namespaced_custom_object(GROUP, VERSION, "default", SCALESET_PLURAL, body(autoscale))
    assert info.value.status == 422, info.value.body
    return json.loads(info.value.body)["message"]


def with_(base=None, **changes) -> dict:
    autoscale = copy.deepcopy(AZURE_MONITOR if base is None else base)
    for key, value in changes.items():
        if value is None:
            autoscale.pop(key, None)
        else:
            autoscale[key] = value
    return autoscale


def rule(**changes) -> dict:
    result = copy.deepcopy(CPU_RULES[0])
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def profile(**changes) -> dict:
    result = copy.deepcopy(BUSINESS_HOURS)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def recurrence(**changes) -> dict:
    return profile(recurrence={**BUSINESS_HOURS["recurrence"], **changes})


# ---- the schema itself ---------------------------------------------------------------------------------------


def _walk(node, path):
    yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from _walk(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")


def test_autoscale_is_a_structural_schema_with_bounded_lists_and_strings():
    root = schema()["properties"]
    spec_nodes = list(_walk(root["spec"]["properties"]["autoscale"], "spec.autoscale"))
    status_nodes = list(_walk(root["status"]["properties"]["autoscale"], "status.autoscale"))
    for path, node in spec_nodes + status_nodes:
        assert node.get("type") in ("object", "array", "string", "integer", "number", "boolean"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        if node["type"] == "array":
            assert isinstance(node.get("items"), dict) and "maxItems" in node, f"{path}: an unbounded list"
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            assert set(keys) <= set(node["items"].get("required") or []), f"{path}: map keys must be required"
    for path, node in spec_nodes:
        if not path.endswith("[]"):
            assert node.get("description"), f"{path} has no description"
        if node["type"] == "string":
            assert "maxLength" in node or "enum" in node, f"{path}: an unbounded string"
    assert "maxReplicas" in root["spec"]["properties"]["autoscale"]["required"]


def test_the_status_has_the_shape_the_operator_writes():
    status = schema()["properties"]["status"]["properties"]["autoscale"]["properties"]
    assert set(status) == {"mode", "activeProfile", "currentReplicas", "desiredReplicas", "lastEvaluationTime",
                           "lastScaleTime", "metrics", "lastDecision", "recentDecisions"}
    # every key the operator writes for a decision is in the schema (else the API server would prune it)
    from datetime import datetime, timezone

    from azure_vm_operator.autoscale.decide import Decision, Direction, Reason
    from azure_vm_operator.controllers.autoscaler import decision_status

    written = decision_status(Decision(datetime.now(timezone.utc), 2, 4, Direction.UP, Reason.RULE_FIRED, "default",
                                       rule="cpu", observed=80.0, threshold=70.0, recommendation=4), True)
    assert set(status["lastDecision"]["properties"]) == set(written)
    assert status["recentDecisions"]["items"] == status["lastDecision"] | {"description": "A decision."}
    assert status["recentDecisions"]["maxItems"] == 20 and status["metrics"]["maxItems"] == 50
    assert set(status["metrics"]["items"]["properties"]) == {"rule", "value", "time", "error", "stale"}
    assert status["lastDecision"]["properties"]["direction"]["enum"] == ["Up", "Down", "None"]


def test_the_default_profile_and_every_profile_take_the_same_rules():
    autoscale = schema()["properties"]["spec"]["properties"]["autoscale"]["properties"]
    top, in_profile = autoscale["rules"], autoscale["profiles"]["items"]["properties"]["rules"]
    assert top["items"] == in_profile["items"]


def test_replicas_says_the_autoscaler_owns_it():
    replicas = schema()["properties"]["spec"]["properties"]["replicas"]["description"]
    assert "autoscale" in replicas and "/scale" in replicas and "left out" in replicas
    columns = {c["name"]: c for c in scaleset_crd()["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Autoscale"]["jsonPath"] == ".status.autoscale.activeProfile"
    assert columns["Desired"]["jsonPath"] == ".spec.replicas"


def _rules_with_cardinality(node, cardinality=1, path="spec"):
    """(path, node, rule, how often the rule can run at most) for every CEL rule under spec."""
    for rule in node.get("x-kubernetes-validations") or []:
        yield path, node, rule, cardinality
    for key, child in (node.get("properties") or {}).items():
        yield from _rules_with_cardinality(child, cardinality, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        assert "maxItems" in node, f"{path}: a list around CEL rules needs maxItems"
        yield from _rules_with_cardinality(node["items"], cardinality * node["maxItems"], f"{path}[]")


def _strings(node):
    """Property name -> the longest string of that name under node."""
    found: dict[str, int] = {}
    for _, sub in _walk(node, ""):
        for key, child in (sub.get("properties") or {}).items():
            if child.get("type") == "string":
                length = child.get("maxLength") or max((len(v) for v in child.get("enum") or []), default=None)
                assert length is not None, f"string {key} used near a CEL rule has no maxLength"
                found[key] = max(found.get(key, 0), length)
    return found


def _expression_cost(expression: str, node: dict) -> int:
    """An upper bound in the units of cel-go's estimator: 1 per token, comprehensions multiply by the maxItems of
    the lists they iterate (nested or not, as if nested), string operations by a tenth of the longest string."""
    tokens = len(re.findall(r"\w+|[^\s\w]", expression))
    iterations = 1
    for name in re.findall(r"self\.(\w+)\.(?:all|exists|exists_one|filter|map)\(", expression):
        iterations *= node["properties"][name]["maxItems"]
    strings = _strings(node)
    longest = max((strings[name] for name in re.findall(r"\.(\w+)", expression) if name in strings), default=0)
    if node.get("type") == "string":
        longest = max(longest, node.get("maxLength", 0))
    return tokens * iterations * (1 + math.ceil(longest / 10))


def test_cel_cost_is_bounded():
    autoscale = schema()["properties"]["spec"]["properties"]["autoscale"]
    total = 0
    found = list(_rules_with_cardinality(autoscale, 1, "spec.autoscale"))
    assert len(found) >= 12
    for path, node, rule, cardinality in found:
        for expression in (rule["rule"], rule.get("messageExpression")):
            if expression:
                cost = _expression_cost(expression, node)
                assert cost < STATIC_ESTIMATED_COST_LIMIT, (path, expression, cost)
                total += cost * cardinality
    assert total < STATIC_ESTIMATED_CRD_COST_LIMIT / 10, total


def test_autoscale_rules_need_not_mention_old_self():
    """No transition rules: an autoscale spec is valid or not by itself (edits are never refused for history)."""
    for _, _, rule, _ in _rules_with_cardinality(schema()["properties"]["spec"]["properties"]["autoscale"]):
        assert "oldSelf" not in rule["rule"]


def test_a_rule_that_does_not_compile_is_refused_when_the_crd_is_created(kube):
    crd = scaleset_crd()
    crd["metadata"]["name"] = "brokenscalesets.compute.azvm.io"
    crd["spec"]["names"] = {"kind": "BrokenScaleSet", "plural": "brokenscalesets", "singular": "brokenscaleset",
                            "listKind": "BrokenScaleSetList"}
    autoscale = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "autoscale"]
    autoscale["x-kubernetes-validations"].append({"rule": "self.minReplicas <=", "message": "broken"})
    with pytest.raises(kubernetes.client.ApiException) as info:
        kubernetes.client.ApiextensionsV1Api(kube).create_custom_resource_definition(crd, _preload_content=False)
    assert info.value.status == 422 and "compilation failed" in info.value.body


# ---- accepted, with defaults -----------------------------------------------------------------------------------


def test_azure_monitor_thresholds_and_a_business_hours_profile_are_accepted(custom):
    obj = accepted(custom, AZURE_MONITOR)
    autoscale = obj["spec"]["autoscale"]
    assert "replicas" not in obj["spec"]
    assert autoscale["mode"] == "Enabled" and autoscale["evaluationInterval"] == "60s"
    assert [r["name"] for r in autoscale["rules"]] == ["cpu-high", "cpu-low"]
    assert autoscale["profiles"][0]["recurrence"]["timeZone"] == "Europe/Berlin"
    parsed = parse_autoscale(autoscale)
    assert parsed.profiles[0].min_replicas == 4 and parsed.profiles[0].max_replicas == 10


def test_defaults_appear_and_match_the_parser(custom):
    sparse = {"maxReplicas": 5,
              "rules": [{"name": "cpu", "azureMonitor": {}, "operator": "GreaterThan", "threshold": 80,
                         "action": {"direction": "Increase", "value": 1}}],
              "behavior": {"scaleUp": {}, "scaleDown": {}},
              "profiles": [{"name": "night", "maxReplicas": 2,
                            "rules": [{"name": "cpu", "azureMonitor": {}, "target": {"value": 50}}],
                            "recurrence": {"days": ["Saturday"], "start": "22:00", "end": "06:00",
                                           "timeZone": "UTC"}}]}
    autoscale = accepted(custom, sparse)["spec"]["autoscale"]
    assert autoscale["minReplicas"] == 1 and autoscale["mode"] == "Enabled"
    assert autoscale["evaluationInterval"] == "60s"
    assert "defaultReplicas" not in autoscale  # the parser's: minReplicas, brought into a profile's range
    [cpu] = autoscale["rules"]
    assert cpu["azureMonitor"] == {"metricName": "Percentage CPU", "aggregation": "Average", "timeGrain": "1m",
                                   "timeWindow": "5m"}
    assert cpu["action"]["type"] == "ChangeCount"
    assert "cooldown" not in cpu  # the parser's default (5m): a CRD default would land on target rules too
    assert autoscale["behavior"]["scaleUp"] == {"stabilizationWindowSeconds": 0, "selectPolicy": "Max"}
    assert autoscale["behavior"]["scaleDown"] == {"selectPolicy": "Max"}  # 300 or 0: the parser decides
    night = autoscale["profiles"][0]
    assert night["rules"][0]["azureMonitor"]["aggregation"] == "Average" and "cooldown" not in night["rules"][0]
    assert "minReplicas" not in night  # inherited, not defaulted
    parsed = parse_autoscale(autoscale)
    assert parsed.rules[0].threshold.cooldown == 300
    assert parsed.profiles[0].min_replicas == 1 and parsed.behavior.scale_down.stabilization_window_seconds == 300


def test_a_prometheus_target_rule_is_accepted(custom):
    autoscale = accepted(custom, PROMETHEUS)["spec"]["autoscale"]
    [target] = autoscale["rules"]
    assert target == PROMETHEUS["rules"][0]  # nothing defaulted into a target rule
    assert parse_autoscale(autoscale).rules[0].target.value == 60


@pytest.mark.parametrize("autoscale", [
    with_(PROMETHEUS, rules=[{"name": "load", "prometheus": {"query": "sum(rate(http_requests_total[1m]))",
                                                            "serverAddress": "https://prometheus.example:9090"},
                              "target": {"averageValue": 100.5}}]),
    with_(rules=[rule(action={"direction": "Decrease", "type": "PercentChangeCount", "value": 100})]),
    with_(rules=[rule(action={"direction": "Increase", "type": "ExactCount", "value": 0})]),
    with_(rules=[rule(operator="NotEquals", threshold=-1.5, cooldown="1h30m",
                      azureMonitor={"metricName": "Network In Total", "aggregation": "Total", "timeGrain": "5m",
                                    "timeWindow": "1h"})]),
    with_(minReplicas=0, maxReplicas=0, defaultReplicas=0, profiles=None, mode="ForecastOnly", evaluationInterval="5s"),
    with_(minReplicas=3, maxReplicas=1000, defaultReplicas=1000, evaluationInterval="1m30s", mode="Disabled"),
    with_(rules=[], profiles=[profile(name="holidays", recurrence=None, maxReplicas=3, minReplicas=3,
                                      fixedDate={"start": "2024-12-24T08:00:00+01:00",
                                                 "end": "2024-12-27T07:00:00Z"})]),
    with_(profiles=[recurrence(days=["Sunday"], start="23:00", end="24:00", timeZone="America/New_York"),
                    profile(name="weekend", minReplicas=None, defaultReplicas=10,
                            recurrence={"days": ["Saturday", "Sunday"], "start": "00:00", "end": "00:00",
                                        "timeZone": "UTC"}, rules=[CPU_RULES[0]])]),
    with_(behavior={"scaleUp": {"stabilizationWindowSeconds": 3600, "selectPolicy": "Min",
                                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 60},
                                             {"type": "Percent", "value": 100, "periodSeconds": 1800}]},
                    "scaleDown": {"selectPolicy": "Disabled"}}),
], ids=["prometheus-average-value", "percent-decrease-100", "exact-count-0", "network-total", "forecast-zero",
        "bounds-at-limits", "fixed-date", "recurrences", "behavior"])
def test_more_valid_specs_are_accepted(custom, autoscale):
    accepted(custom, autoscale)


def test_replicas_may_be_given_with_autoscale_and_scale_writes_it(custom):
    obj = accepted(custom, AZURE_MONITOR, replicas=3)
    name = obj["metadata"]["name"]
    scale = custom.patch_namespaced_custom_object_scale(GROUP, VERSION, "default", SCALESET_PLURAL, name,
                                                        {"spec": {"replicas": 6}})
    assert scale["spec"]["replicas"] == 6


def test_the_examples_are_accepted_and_parse(custom):
    examples = {"scaleset-autoscale.yaml", "scaleset-prometheus.yaml"}
    seen = set()
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == SCALESET_KIND and "autoscale" in doc["spec"]:
                seen.add(path.name)
                doc = copy.deepcopy(doc)
                doc["metadata"]["name"] = f"example-{next(_counter)}"
                obj = custom.create_namespaced_custom_object(GROUP, VERSION, "default", SCALESET_PLURAL, doc)
                assert parse_autoscale(obj["spec"]["autoscale"]) is not None
                assert "replicas" not in obj["spec"]
    assert examples <= seen


def test_the_prometheus_example_selects_its_own_instances():
    [doc] = [d for d in yaml.safe_load_all((EXAMPLES / "scaleset-prometheus.yaml").read_text()) if d]
    azure_name = doc["spec"].get("azureName", doc["metadata"]["name"])
    query = doc["spec"]["autoscale"]["rules"][0]["prometheus"]["query"]
    assert f'scale_set="{azure_name}"' in query and "azure_vm_cpu_percent" in query
    assert f'resource_group="{doc["spec"]["resourceGroup"]}"' in query
    assert "serverAddress" not in doc["spec"]["autoscale"]["rules"][0]["prometheus"]


def test_status_autoscale_is_kept_as_written(custom):
    name = accepted(custom, AZURE_MONITOR)["metadata"]["name"]
    decision = {"time": "2025-01-06T08:00:05Z", "from": 2, "to": 4, "direction": "Up", "profile": "business-hours",
                "rule": "cpu-high", "observed": 82.5, "threshold": 70, "reason": "RuleFired",
                "message": "cpu-high: Percentage CPU 82.5 > 70: 2 -> 4", "applied": True}
    status = {"autoscale": {
        "mode": "Enabled", "activeProfile": "business-hours", "currentReplicas": 2, "desiredReplicas": 4,
        "lastEvaluationTime": "2025-01-06T08:00:05Z", "lastScaleTime": "2025-01-06T08:00:05Z",
        "metrics": [{"rule": "cpu-high", "value": 82.5, "time": "2025-01-06T08:00:00Z", "stale": False},
                    {"rule": "cpu-low", "error": "timed out", "stale": True}],
        "lastDecision": decision, "recentDecisions": [decision]}}
    written = custom.patch_namespaced_custom_object_status(GROUP, VERSION, "default", SCALESET_PLURAL, name,
                                                           {"status": status})
    assert written["status"]["autoscale"] == status["autoscale"]
    with pytest.raises(kubernetes.client.ApiException) as info:
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, "default", SCALESET_PLURAL, name,
            {"status": {"autoscale": {"lastDecision": {**decision, "direction": "Sideways"}}}})
    assert info.value.status == 422 and "status.autoscale.lastDecision.direction" in info.value.body


# ---- rejected, naming the field -------------------------------------------------------------------------------

TWO_SOURCES = rule(prometheus={"query": "up"})
THRESHOLD_AND_TARGET = rule(target={"value": 50})


@pytest.mark.parametrize("autoscale, expected", [
    (with_(rules=[TWO_SOURCES]), ["spec.autoscale.rules[0]", "exactly one metric source", "(it has both)"]),
    (with_(rules=[rule(azureMonitor=None)]), ["spec.autoscale.rules[0]", "exactly one metric source",
                                              "(it has none)"]),
    (with_(rules=[THRESHOLD_AND_TARGET]), ["spec.autoscale.rules[0]", "not both"]),
    (with_(rules=[rule(operator=None, threshold=None, action=None, cooldown=None,
                       target={"value": 50, "averageValue": 10})]), ["spec.autoscale.rules[0].target",
                                                                      "exactly one of value"]),
    (with_(rules=[rule(operator=None, threshold=None, action=None, cooldown=None, target={})]),
     ["spec.autoscale.rules[0].target", "exactly one of value"]),
    (with_(rules=[rule(operator=None, threshold=None, action=None, cooldown=None, target={"value": 0})]),
     ["spec.autoscale.rules[0].target.value"]),
    (with_(rules=[rule(operator=None, threshold=None, action=None, cooldown="1m", target={"value": 50})]),
     ["spec.autoscale.rules[0]", "not both"]),
    (with_(rules=[rule(operator=None)]), ["spec.autoscale.rules[0]", "needs a decision"]),
    (with_(rules=[rule(operator=None, threshold=None, action=None, cooldown=None)]),
     ["spec.autoscale.rules[0]", "needs a decision"]),
    (with_(minReplicas=5, maxReplicas=3, defaultReplicas=None),
     ["spec.autoscale", "minReplicas 5 is greater than maxReplicas 3"]),
    (with_(minReplicas=2, maxReplicas=10, defaultReplicas=11),
     ["spec.autoscale", "defaultReplicas 11 is outside [minReplicas 2, maxReplicas 10]"]),
    (with_(maxReplicas=None), ["spec.autoscale.maxReplicas", "Required value"]),
    (with_(maxReplicas=1001), ["spec.autoscale.maxReplicas"]),
    (with_(minReplicas=-1), ["spec.autoscale.minReplicas"]),
    (with_(evaluationInterval="2s"), ["spec.autoscale.evaluationInterval", "at least 5s"]),
    (with_(evaluationInterval="5 minutes"), ["spec.autoscale.evaluationInterval"]),
    (with_(evaluationInterval="5s1m"), ["spec.autoscale.evaluationInterval"]),
    (with_(mode="Auto"), ["spec.autoscale.mode"]),
    (with_(rules=[rule(operator="Above")]), ["spec.autoscale.rules[0].operator"]),
    (with_(rules=[rule(azureMonitor={"aggregation": "Mean"})]), ["spec.autoscale.rules[0].azureMonitor.aggregation"]),
    (with_(rules=[rule(azureMonitor={"timeWindow": "30s", "timeGrain": "30s"})]),
     ["spec.autoscale.rules[0].azureMonitor.timeWindow", "at least 1m"]),
    (with_(rules=[rule(azureMonitor={"timeWindow": "1m", "timeGrain": "5m"})]),
     ["spec.autoscale.rules[0].azureMonitor", "timeWindow must be at least its timeGrain"]),
    (with_(rules=[rule(cooldown="five")]), ["spec.autoscale.rules[0].cooldown"]),
    (with_(rules=[rule(action={"direction": "Up", "value": 1})]), ["spec.autoscale.rules[0].action.direction"]),
    (with_(rules=[rule(action={"direction": "Increase"})]), ["spec.autoscale.rules[0].action.value",
                                                              "Required value"]),
    (with_(rules=[rule(action={"direction": "Increase", "value": 0})]),
     ["spec.autoscale.rules[0].action", "value must be at least 1"]),
    (with_(rules=[rule(action={"direction": "Decrease", "type": "PercentChangeCount", "value": 150})]),
     ["spec.autoscale.rules[0].action", "at most 100"]),
    (with_(rules=[rule(azureMonitor=None, prometheus={"query": "up", "serverAddress": "prometheus:9090"})]),
     ["spec.autoscale.rules[0].prometheus.serverAddress"]),
    (with_(rules=[rule(azureMonitor=None, prometheus={})]), ["spec.autoscale.rules[0].prometheus.query"]),
    (with_(rules=[CPU_RULES[0], {**CPU_RULES[1], "name": "cpu-high"}]), ["spec.autoscale.rules[1]",
                                                                        "Duplicate value"]),
    (with_(rules=[rule(name="")]), ["spec.autoscale.rules[0].name"]),
    (with_(profiles=[recurrence(days=["Monday", "Funday"])]), ["spec.autoscale.profiles[0].recurrence.days[1]"]),
    (with_(profiles=[recurrence(days=[])]), ["spec.autoscale.profiles[0].recurrence.days"]),
    (with_(profiles=[recurrence(start="8:00")]), ["spec.autoscale.profiles[0].recurrence.start"]),
    (with_(profiles=[recurrence(start="24:00")]), ["spec.autoscale.profiles[0].recurrence.start"]),
    (with_(profiles=[recurrence(end="18:60")]), ["spec.autoscale.profiles[0].recurrence.end"]),
    (with_(profiles=[recurrence(timeZone=None)]), ["spec.autoscale.profiles[0].recurrence.timeZone",
                                                   "Required value"]),
    (with_(profiles=[recurrence(timeZone="Europe Berlin")]), ["spec.autoscale.profiles[0].recurrence.timeZone"]),
    (with_(profiles=[profile(recurrence=None)]), ["spec.autoscale.profiles[0]", "(it has none)"]),
    (with_(profiles=[profile(fixedDate={"start": "2024-12-24T08:00:00Z", "end": "2024-12-25T08:00:00Z"})]),
     ["spec.autoscale.profiles[0]", "(it has both)"]),
    (with_(profiles=[profile(recurrence=None, fixedDate={"start": "2024-12-24T08:00:00Z",
                                                         "end": "2024-12-24T08:00:00Z"})]),
     ["spec.autoscale.profiles[0].fixedDate", "end must be after start"]),
    (with_(profiles=[profile(recurrence=None, fixedDate={"start": "2024-12-24T08:00:00",
                                                         "end": "2024-12-25T08:00:00Z"})]),
     ["spec.autoscale.profiles[0].fixedDate.start"]),
    (with_(profiles=[profile(name="default")]), ["spec.autoscale.profiles[0].name", "'default'"]),
    (with_(profiles=[profile(), profile(minReplicas=5)]), ["spec.autoscale.profiles[1]", "Duplicate value"]),
    (with_(profiles=[profile(minReplicas=11)]), ["spec.autoscale", "profiles business-hours: minReplicas is greater"]),
    (with_(maxReplicas=3, minReplicas=1, profiles=[profile(minReplicas=4)]),
     ["spec.autoscale", "profiles business-hours: minReplicas is greater"]),
    (with_(profiles=[profile(defaultReplicas=3)]),
     ["spec.autoscale", "profiles business-hours: defaultReplicas is outside"]),
    (with_(profiles=[profile(rules=[TWO_SOURCES])]), ["spec.autoscale.profiles[0].rules[0]",
                                                      "exactly one metric source"]),
    (with_(behavior={"scaleUp": {"policies": [{"type": "Nodes", "value": 1, "periodSeconds": 60}]}}),
     ["spec.autoscale.behavior.scaleUp.policies[0].type"]),
    (with_(behavior={"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 0}]}}),
     ["spec.autoscale.behavior.scaleDown.policies[0].periodSeconds"]),
    (with_(behavior={"scaleDown": {"policies": [{"type": "Pods", "value": 1}]}}),
     ["spec.autoscale.behavior.scaleDown.policies[0].periodSeconds", "Required value"]),
    (with_(behavior={"scaleDown": {"stabilizationWindowSeconds": 3601}}),
     ["spec.autoscale.behavior.scaleDown.stabilizationWindowSeconds"]),
    (with_(behavior={"scaleUp": {"selectPolicy": "Both"}}), ["spec.autoscale.behavior.scaleUp.selectPolicy"]),
], ids=lambda value: None)
def test_invalid_specs_are_rejected_naming_the_field_and_the_parser_agrees(custom, autoscale, expected):
    message = rejected(custom, autoscale)
    for text in expected:
        assert text in message, message
    with pytest.raises(SpecError):
        parse_autoscale(autoscale)
