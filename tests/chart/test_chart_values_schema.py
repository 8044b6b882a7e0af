"""values.schema.json: Helm refuses bad values before rendering anything (the same check `helm install` makes)."""

from __future__ import annotations

import pytest
from chart_helpers import VALUE_SETS, render

BAD_VALUES = {
    "two watched namespaces (the operator takes one --namespace)": {"watchNamespaces": ["a", "b"]},
    "a namespace that is no DNS label": {"watchNamespaces": ["Team_A"]},
    "no shards": {"sharding": {"count": 0}},
    "a misspelt key": {"replicaCount": 2, "replicas": 3},
    "a misspelt nested key": {"azure": {"subscriptionID": "x"}},
    "a subscription that is no UUID": {"azure": {"subscriptionId": "my-subscription"}},
    "an unknown cloud": {"azure": {"cloud": "AzureGermanCloud"}},
    "a custom cloud without an endpoint": {"azure": {"cloud": "Custom"}},
    "an endpoint over plain http": {"azure": {"endpoint": "http://management.azure.com"}},
    "workload identity without a client id": {"azure": {"workloadIdentity": {"enabled": True}}},
    "a CA from both a ConfigMap and a Secret": {"azure": {"ca": {"configMap": "a", "secret": "b"}}},
    "the latest tag": {"image": {"tag": "latest"}},
    "a digest that is none": {"image": {"digest": "abc"}},
    "root": {"securityContext": {"runAsUser": 0}},
    "privilege escalation": {"securityContext": {"allowPrivilegeEscalation": True}},
    "runAsNonRoot off": {"podSecurityContext": {"runAsNonRoot": False}},
    "a port out of range": {"ports": {"metrics": 70000}},
    "a negative replica count": {"replicaCount": -1},
    "a throttle scale of 0": {"operator": {"armThrottleScale": 0}},
    "a resync interval as text": {"operator": {"resyncInterval": "5m"}},
    "a scrape interval that is no duration": {"serviceMonitor": {"enabled": True, "interval": "often"}},
    "a Prometheus URL without a scheme": {"operator": {"prometheusUrl": "prometheus:9090"}},
}


@pytest.mark.parametrize("reason", sorted(BAD_VALUES))
def test_the_schema_rejects(reason):
    with pytest.raises(ValueError, match="schema"):
        render(BAD_VALUES[reason])


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_the_schema_accepts_the_tested_value_sets(name):
    assert render(VALUE_SETS[name])
