"""Rendering the Helm chart with Helm's own engine (helm-python-sdk: Helm's Go SDK in a shared library, offline),
and the value sets the tests render."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "azure-vm-operator"
CRDS = ROOT / "crds"
RELEASE, NAMESPACE = "azvm", "azvm-system"

#: The value sets rendered and validated: the defaults and each non-default mode.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "namespace-scoped": {"watchNamespaces": ["team-a"], "operator": {"clusterId": "prod-west"}},
    "namespace-scoped-minimal": {"watchNamespaces": ["team-b"], "rbac": {"kopfObservation": False},
                                 "leaderElection": {"enabled": False}, "replicaCount": 1,
                                 "podDisruptionBudget": {"enabled": False}},
    "workload-identity": {
        "azure": {"subscriptionId": "00000000-0000-0000-0000-0000000000aa", "tenantId": "tenant-1",
                  "credentialAllowedNamespaces": ["platform", "team-*"],
                  "workloadIdentity": {"enabled": True, "clientId": "11111111-2222-3333-4444-555555555555",
                                       "tenantId": "tenant-1"}},
        "serviceAccount": {"annotations": {"team": "platform"}},
    },
    "observability": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
                      "prometheusRule": {"enabled": True}, "dashboard": {"enabled": True, "namespace": "monitoring"},
                      "operator": {"prometheusUrl": "http://prometheus.monitoring:9090"}},
    "shards": {"sharding": {"count": 3}, "operator": {"selector": "team=a"}},
    "sovereign-cloud-ca": {"azure": {"cloud": "AzureUSGovernment", "ca": {"configMap": "azure-ca", "key": "ca.pem"},
                                     "credentialsSecret": "azure-sp"},
                           "image": {"digest": "sha256:" + "a" * 64},
                           "podDisruptionBudget": {"minAvailable": 1},
                           "operator": {"lroPollingInterval": 5, "verbose": True}},
    "custom-cloud": {"azure": {"cloud": "Custom", "endpoint": "https://arm.example.internal",
                               "authorityHost": "https://login.example.internal", "disableInstanceDiscovery": True,
                               "ca": {"secret": "azure-ca"}}},
}


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` produces it."""
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        return chart.render(copy.deepcopy(values or {}), name=RELEASE, namespace=NAMESPACE, is_install=True)


def objects(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every Kubernetes object the chart renders for these values (NOTES.txt excluded)."""
    found = []
    for path, text in sorted(render(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        found.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return found


def of_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def load_chart() -> Any:
    import helm_python as helm

    return helm.Chart.load(str(CHART))
