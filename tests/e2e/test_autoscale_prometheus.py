"""The autoscaler on a Prometheus rule, with the real Prometheus (Debian's package, `make prometheus`) scraping the
emulator's /metrics (the simulated per-instance CPU) and the operator's own metrics: examples/scaleset-prometheus.yaml
applied as written, with a 5s evaluation interval and no scale-down stabilization so the scenario is short.

Without the prometheus binary these tests fail, telling to run `make prometheus`; with
AZVM_ALLOW_MISSING_PROMETHEUS=1 they skip instead."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from azvm_sandbox.prometheus import PrometheusServer
from e2e_helpers import Cluster, wait_for
from test_autoscale import INTERVAL, autoscale_status, evaluations_pass, set_load, spec_replicas
from test_prometheus_source import free_port, require_prometheus

from azure_vm_operator.api.constants import SCALESET_PLURAL

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scaleset-prometheus.yaml"
NAME, RESOURCE_GROUP = "web-prom", "web-prom-rg"


@pytest.fixture
def prometheus_binary() -> None:
    require_prometheus()


def example() -> dict:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["autoscale"]["evaluationInterval"] = f"{INTERVAL}s"
    doc["spec"]["autoscale"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    return doc


def value_of(prometheus: PrometheusServer, query: str) -> float | None:
    result = prometheus.query(query)["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_target_rule_scales_and_never_scales_in_while_prometheus_is_down(env, prometheus_binary, compute,
                                                                                   tmp_path):
    sets = Cluster(env.kube_api_client(), SCALESET_PLURAL)
    metrics_port = free_port()
    targets = [("emulator", f"{env.emulator.url}/metrics"), ("operator", f"http://127.0.0.1:{metrics_port}/metrics")]
    prometheus = PrometheusServer(targets, ca_file=env.emulator.ca_path, scrape_interval=1.0,
                                  workdir=tmp_path / "prometheus-1")
    prometheus.start(wait_for_targets=False)
    try:
        env.start_operator(metrics_port=metrics_port, metrics_host="127.0.0.1", prometheus_url=prometheus.url)
        prometheus.wait_for_targets_up()
        sets.apply(example())
        sets.wait_condition(NAME, "Ready", timeout=60)
        assert spec_replicas(sets, NAME) == 1  # defaultReplicas: minReplicas

        # 90 % on the one instance; the target is 60 %: ceil(1 x 90 / 60) = 2
        set_load(env, compute, NAME, 90.0, resource_group=RESOURCE_GROUP)
        wait_for(lambda: spec_replicas(sets, NAME) == 2, 2 * INTERVAL + 15, what="the scale-out to 2")
        decision = wait_for(lambda: (lambda d: d if d.get("to") == 2 and d.get("from") == 1 else None)(
            autoscale_status(sets, NAME).get("lastDecision") or {}), 10, what="the decision in status")
        assert decision["reason"] == "TargetTracking" and decision["rule"] == "cpu-target"
        assert decision["observed"] == pytest.approx(90, abs=1) and decision["threshold"] == 60
        assert sets.condition(NAME, "AutoscaleHealthy")["reason"] == "MetricsAvailable"
        sets.wait_condition(NAME, "Ready", timeout=60)
        # Prometheus scrapes the operator too: its autoscale series are queryable there
        wait_for(lambda: value_of(prometheus, f'azvm_autoscale_replicas{{name="{NAME}",bound="desired"}}') == 2,
                 20, what="the operator's desired replicas in Prometheus")
        assert value_of(prometheus, f'azvm_autoscale_rule_threshold{{name="{NAME}",rule="cpu-target"}}') == 60
    finally:
        prometheus.stop()

    # Prometheus is gone and the load drops (10 % would mean 1 instance): no scale-in on a missing metric.
    set_load(env, compute, NAME, 10.0, resource_group=RESOURCE_GROUP)
    unhealthy = sets.wait_condition(NAME, "AutoscaleHealthy", status="False", timeout=4 * INTERVAL + 15)
    assert unhealthy["reason"] == "MetricsUnavailable" and "PrometheusUnreachable" in unhealthy["message"]
    evaluations_pass(sets, NAME, 2)
    status = autoscale_status(sets, NAME)
    assert spec_replicas(sets, NAME) == 2 and status["lastDecision"]["reason"] == "MetricsMissing"
    assert status["metrics"][0]["stale"] is True and "PrometheusUnreachable" in status["metrics"][0]["error"]
    warnings = wait_for(lambda: [e for e in sets.events(NAME) if e.reason == "MetricsUnavailable"], 10,
                        what="the Warning Event")
    assert warnings[0].type == "Warning"

    # Prometheus back (the operator restarted with its new address): the low load now scales in.
    prometheus = PrometheusServer([targets[0]], ca_file=env.emulator.ca_path, scrape_interval=1.0,
                                  workdir=tmp_path / "prometheus-2")
    prometheus.start()
    try:
        env.start_operator(prometheus_url=prometheus.url)
        wait_for(lambda: spec_replicas(sets, NAME) == 1, 4 * INTERVAL + 15, what="the scale-in once metrics are back")
        sets.wait_condition(NAME, "AutoscaleHealthy", timeout=2 * INTERVAL + 10)
    finally:
        prometheus.stop()
