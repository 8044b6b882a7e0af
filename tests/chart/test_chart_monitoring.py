"""The chart's monitoring objects: the PrometheusRule's alerts parse and check with Prometheus' own promtool (Debian's
prometheus package, installed by `make prometheus`), the Grafana dashboard is valid dashboard JSON whose every query
parses and names only metrics the operator exports (read from its prometheus-client registry), and the
ServiceMonitor scrapes the Service's metrics port."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHART, VALUE_SETS, objects, of_kind

PROMQL_WORDS = {"sum", "by", "max", "min", "rate", "increase", "histogram_quantile", "absent", "le", "on",
                "without", "avg", "count", "bool", "and", "or", "unless", "ignoring", "group_left", "group_right"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("AZVM_ALLOW_MISSING_PROMETHEUS") == "1":
            pytest.skip("promtool (Debian's prometheus package) is not installed")
        pytest.fail("promtool is not installed: `make prometheus` (Debian's prometheus package)", pytrace=False)
    return path


def exported_metrics() -> set[str]:
    """Every series name the operator's registry can export (histograms: _bucket, _sum, _count)."""
    from prometheus_client import REGISTRY

    import azure_vm_operator.metrics  # noqa: F401 - registers the operator's metrics

    names = set()
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001
        names |= set(REGISTRY._collector_to_names[collector])  # noqa: SLF001
    return {n for n in names if n.startswith("azvm_")}


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # selectors
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if w not in PROMQL_WORDS}


def check_rules(tmp_path: Path, groups: list[dict]) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_alerts_check_with_promtool_and_use_real_metrics(tmp_path):
    objs = objects(VALUE_SETS["observability"])
    [rule] = of_kind(objs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = rule["spec"]["groups"]
    alerts = {r["alert"]: r for g in groups for r in g["rules"]}
    # what the issue asks for: reconcile errors, ARM throttling, stuck provisioning, autoscaler unhealthy
    assert 'azvm_reconcile_total{result="permanent_error"}' in alerts["AzvmReconcileErrors"]["expr"]
    assert "azvm_arm_throttled_responses_total" in alerts["AzvmArmThrottled"]["expr"]
    assert {"AzvmVirtualMachineStuck", "AzvmScaleSetStuck"} <= set(alerts)
    assert "azvm_autoscale_evaluation_errors_total" in alerts["AzvmAutoscalerUnhealthy"]["expr"]
    known = exported_metrics() | {"up"}
    for name, alert in alerts.items():
        assert metric_names(alert["expr"]) <= known, (name, metric_names(alert["expr"]) - known)
        assert alert["labels"]["severity"] in ("warning", "critical") and alert["annotations"]["summary"]
    assert 'service="azvm-azure-vm-operator-metrics"' in alerts["AzvmOperatorDown"]["expr"]
    check_rules(tmp_path, groups)


def test_dashboard_is_grafana_json_over_real_metrics(tmp_path):
    objs = objects(VALUE_SETS["observability"])
    [config_map] = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")]
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    [text] = config_map["data"].values()
    assert text == (CHART / "dashboards" / "azure-vm-operator.json").read_text().rstrip("\n")
    dashboard = json.loads(text)
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("virtualmachines by power state", "arm requests", "quota", "desired / current / ready",
                  "autoscale decisions"):
        assert topic in titles, topic
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    known = exported_metrics()
    used = set().union(*(metric_names(e) for e in exprs))
    assert used <= known, used - known
    # the sections the issue names are there, each on its metrics
    assert {"azvm_virtualmachine_info", "azvm_arm_requests_total", "azvm_arm_ratelimit_remaining",
            "azvm_scaleset_replicas", "azvm_autoscale_decisions_total"} <= used
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["gridPos"]["w"] <= 24
    # every query parses: as recording rules, with Grafana's variables replaced as Grafana would
    grafana = {"$__rate_interval": "5m", "$namespace": ".*"}
    rules = []
    for i, expr in enumerate(exprs):
        for var, value in grafana.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    check_rules(tmp_path, [{"name": "dashboard", "rules": rules}])


def test_service_monitor_scrapes_the_metrics_port():
    objs = objects(VALUE_SETS["observability"])
    [monitor] = of_kind(objs, "ServiceMonitor")
    [service] = of_kind(objs, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    assert not of_kind(objects(), "ServiceMonitor") and not of_kind(objects(), "PrometheusRule")
