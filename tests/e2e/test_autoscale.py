"""The autoscaler of a ScaleSet end to end, on Azure Monitor metrics: the emulator's simulated load drives the
Percentage CPU the operator reads through the metrics API; decisions become spec.replicas through /scale.

Timings: evaluationInterval 5s and cooldowns of 15s keep the scenarios short; every wait has a deadline."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from azure.mgmt.compute import ComputeManagementClient
from e2e_helpers import Cluster, wait_for
from test_scaleset import RG, scale_set_manifest, vmss

from azure_vm_operator.api.constants import GROUP, SCALESET_PLURAL, VERSION

INTERVAL = 5  #: evaluationInterval, seconds
COOLDOWN = 15

CPU_RULES = [
    {"name": "cpu-high", "azureMonitor": {"metricName": "Percentage CPU", "timeWindow": "1m"},
     "operator": "GreaterThan", "threshold": 70,
     "action": {"direction": "Increase", "type": "ChangeCount", "value": 2}, "cooldown": f"{COOLDOWN}s"},
    {"name": "cpu-low", "azureMonitor": {"metricName": "Percentage CPU", "timeWindow": "1m"},
     "operator": "LessThan", "threshold": 30,
     "action": {"direction": "Decrease", "type": "ChangeCount", "value": 1}, "cooldown": f"{COOLDOWN}s"},
]


def autoscaled(name: str, **autoscale: Any) -> dict[str, Any]:
    manifest = scale_set_manifest(name)
    del manifest["spec"]["replicas"]  # with autoscale on, the first count is defaultReplicas
    manifest["spec"]["autoscale"] = {"minReplicas": 2, "maxReplicas": 4, "defaultReplicas": 2,
                                     "evaluationInterval": f"{INTERVAL}s", "rules": copy.deepcopy(CPU_RULES),
                                     **autoscale}
    return manifest


@pytest.fixture
def sets(env) -> Cluster:
    return Cluster(env.kube_api_client(), SCALESET_PLURAL)


def set_load(env, compute: ComputeManagementClient, name: str, cpu_percent: float,
             reference_capacity: int | None = None, resource_group: str = RG) -> None:
    """The emulator's simulated CPU of the set: ``cpu_percent`` on each of ``reference_capacity`` instances (by
    default its current count); the same total demand spreads over however many instances run."""
    scale_set_id = compute.virtual_machine_scale_sets.get(resource_group, name).id  # read first: the admin call runs on the emulator's own loop
    env.admin(lambda admin: admin.set_load(scale_set_id, cpu_percent, reference_capacity))


def spec_replicas(sets: Cluster, name: str) -> int | None:
    return (sets.get(name) or {}).get("spec", {}).get("replicas")


def autoscale_status(sets: Cluster, name: str) -> dict[str, Any]:
    return ((sets.get(name) or {}).get("status") or {}).get("autoscale") or {}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def evaluations_pass(sets: Cluster, name: str, count: int = 2) -> None:
    """Wait until the autoscaler evaluated ``count`` more times (its lastEvaluationTime moved on)."""
    for _ in range(count):
        before = autoscale_status(sets, name).get("lastEvaluationTime")
        wait_for(lambda: autoscale_status(sets, name).get("lastEvaluationTime") not in (None, before),
                 3 * INTERVAL + 10, what="another autoscale evaluation")


def managers_of_replicas(sets: Cluster, name: str) -> set[str]:
    return {entry.get("manager") for entry in (sets.get(name) or {})["metadata"].get("managedFields") or []
            if '"f:replicas"' in str(entry.get("fieldsV1")) or "f:replicas" in (entry.get("fieldsV1") or {}).get(
                "f:spec", {})}


def test_cpu_load_scales_out_at_once_and_in_only_after_cooldown_never_below_min(env, operator, sets, compute):
    sets.apply(autoscaled("cpu"))
    # no replicas in the manifest: the autoscaler writes defaultReplicas through /scale, the reconciler creates
    wait_for(lambda: spec_replicas(sets, "cpu") == 2, 30, what="defaultReplicas written to spec.replicas")
    assert sets.get("cpu")["metadata"]["managedFields"] and "azure-vm-operator-autoscaler" in managers_of_replicas(
        sets, "cpu")
    first = wait_for(lambda: autoscale_status(sets, "cpu").get("recentDecisions"), 10, what="status.autoscale")[-1]
    assert (first.get("from"), first["to"], first["reason"], first["applied"]) == (None, 2, "ProfileDefault", True)
    sets.wait_condition("cpu", "Ready", timeout=60)
    healthy = sets.wait_condition("cpu", "AutoscaleHealthy", timeout=3 * INTERVAL + 10)
    assert healthy["reason"] == "MetricsAvailable" and "cpu-high=0" in healthy["message"]
    assert vmss(compute, "cpu")["sku"]["capacity"] == 2

    # Load: 90 % on each of the 2 instances. cpu-high fires: +2, within two evaluation intervals.
    set_load(env, compute, "cpu", 90.0)
    loaded_at = datetime.now(timezone.utc)
    wait_for(lambda: spec_replicas(sets, "cpu") == 4, 2 * INTERVAL + 10, what="the scale-out to 4")
    out = wait_for(lambda: next((d for d in autoscale_status(sets, "cpu").get("recentDecisions") or []
                                 if d.get("from") == 2 and d["to"] == 4), None), 10, what="the decision in status")
    status = autoscale_status(sets, "cpu")
    assert (out["from"], out["to"], out["rule"], out["reason"], out["applied"]) == (2, 4, "cpu-high", "RuleFired", True)
    assert out["observed"] == pytest.approx(90.0, abs=1) and out["threshold"] == 70
    assert parse_time(out["time"]) - loaded_at <= timedelta(seconds=2 * INTERVAL + 1)
    assert status["lastScaleTime"] == out["time"] and status["activeProfile"] == "default"
    scaled_out = [e for e in sets.events("cpu") if e.reason == "ScaledOut"]
    assert len(scaled_out) == 1 and "2 -> 4" in scaled_out[0].message and "cpu-high" in scaled_out[0].message
    sets.wait_condition("cpu", "Ready", timeout=60)
    assert vmss(compute, "cpu")["sku"]["capacity"] == 4  # the ScaleSet reconciler followed spec.replicas

    # The same demand over 4 instances is 45 % each: no rule fires, the count holds.
    evaluations_pass(sets, "cpu")
    assert spec_replicas(sets, "cpu") == 4

    # Load drops to 10 % per instance: one instance at a time, each only after the cooldown, down to min.
    set_load(env, compute, "cpu", 10.0)
    wait_for(lambda: spec_replicas(sets, "cpu") == 2, 2 * COOLDOWN + 4 * INTERVAL + 20, what="the scale-in to min")
    evaluations_pass(sets, "cpu", 3)
    assert spec_replicas(sets, "cpu") == 2  # never below minReplicas, though cpu-low still fires
    status = autoscale_status(sets, "cpu")
    applied = sorted((d for d in status["recentDecisions"] if d["applied"] and d.get("from") is not None),
                     key=lambda d: d["time"])
    assert [(d["from"], d["to"]) for d in applied] == [(2, 4), (4, 3), (3, 2)]
    for before, after in zip(applied, applied[1:]):
        assert parse_time(after["time"]) - parse_time(before["time"]) >= timedelta(seconds=COOLDOWN)
    assert status["lastDecision"]["to"] == 2 and status["lastDecision"]["reason"] in ("ClampedToMin", "Cooldown")
    assert [e.reason for e in sets.events("cpu")].count("ScaledIn") == 2


def test_forecast_only_publishes_decisions_and_never_writes(env, operator, sets, compute):
    manifest = autoscaled("forecast", mode="ForecastOnly")
    manifest["spec"]["replicas"] = 2
    sets.apply(manifest)
    sets.wait_condition("forecast", "Ready", timeout=60)
    set_load(env, compute, "forecast", 95.0)
    wait_for(lambda: autoscale_status(sets, "forecast").get("desiredReplicas") == 4, 2 * INTERVAL + 10,
             what="the forecast of 4")
    status = autoscale_status(sets, "forecast")
    assert status["mode"] == "ForecastOnly" and status["lastDecision"]["applied"] is False
    assert "not applied" in status["lastDecision"]["message"]
    evaluations_pass(sets, "forecast")
    assert spec_replicas(sets, "forecast") == 2 and vmss(compute, "forecast")["sku"]["capacity"] == 2
    assert "azure-vm-operator-autoscaler" not in managers_of_replicas(sets, "forecast")
    assert not [e for e in sets.events("forecast") if e.reason in ("ScaledOut", "ScaledIn")]


def test_a_count_set_through_scale_is_taken_as_current_then_brought_into_bounds(env, operator, sets, compute):
    sets.apply(autoscaled("owned"))
    sets.wait_condition("owned", "Ready", timeout=60)
    # a total demand of 160 %: 80 % each on 2 instances (cpu-high fires), 40 % on 4, 53 % on 3, 27 % on 6
    set_load(env, compute, "owned", 40.0, reference_capacity=4)
    wait_for(lambda: spec_replicas(sets, "owned") == 4, 2 * INTERVAL + 10, what="the scale-out to 4")
    # what `kubectl scale scalesets/owned --replicas=6` sends: beyond maxReplicas 4
    sets.custom.patch_namespaced_custom_object_scale(GROUP, VERSION, "default", SCALESET_PLURAL, "owned",
                                                     {"spec": {"replicas": 6}}, field_manager="kubectl")
    decision = wait_for(lambda: (lambda d: d if d.get("from") == 6 else None)(
        autoscale_status(sets, "owned").get("lastDecision") or {}), 2 * INTERVAL + 10,
        what="a decision starting from the count set by hand")
    assert (decision["to"], decision["reason"], decision["applied"]) == (4, "ClampedToMax", True)
    assert spec_replicas(sets, "owned") == 4
    told = [e for e in sets.events("owned") if e.reason == "ReplicasSetOutsideAutoscaler"]
    assert told and "spec.replicas was set to 6 by kubectl (/scale)" in told[0].message

    # Within bounds and with no rule firing (53 % on 3), a count set by hand stays.
    sets.custom.patch_namespaced_custom_object_scale(GROUP, VERSION, "default", SCALESET_PLURAL, "owned",
                                                     {"spec": {"replicas": 3}}, field_manager="kubectl")
    wait_for(lambda: (autoscale_status(sets, "owned").get("lastDecision") or {}).get("from") == 3,
             2 * INTERVAL + 10, what="a decision starting from 3")
    evaluations_pass(sets, "owned")
    assert spec_replicas(sets, "owned") == 3
    assert autoscale_status(sets, "owned")["lastDecision"]["reason"] == "NoRuleFired"


def test_a_recurrence_window_raises_min_then_releases_it(env, operator, sets, compute):
    # Windows are HH:MM in a time zone: start at the next minute that is at least 10 s away, last one minute.
    zone = ZoneInfo("Europe/Berlin")
    now = datetime.now(zone)
    start = (now + timedelta(seconds=70)).replace(second=0, microsecond=0)
    if start - now < timedelta(seconds=10):
        start += timedelta(minutes=1)
    end = start + timedelta(minutes=1)
    day = start.strftime("%A")
    profile = {"name": "busy-minute", "minReplicas": 3, "maxReplicas": 4, "defaultReplicas": 3,
               "recurrence": {"days": [day], "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M"),
                              "timeZone": "Europe/Berlin"}}
    sets.apply(autoscaled("windowed", profiles=[profile]))
    sets.wait_condition("windowed", "Ready", timeout=60)
    assert autoscale_status(sets, "windowed")["activeProfile"] == "default"
    set_load(env, compute, "windowed", 10.0)  # cpu-low would scale in

    wait_for(lambda: spec_replicas(sets, "windowed") == 3, (start - datetime.now(zone)).total_seconds()
             + 2 * INTERVAL + 10, what="min 3 of the busy-minute profile")
    in_window = wait_for(lambda: (lambda st: st if st.get("lastScaleTime") and st.get("desiredReplicas") == 3
                                  else None)(autoscale_status(sets, "windowed")), 10, what="the status of the window")
    assert in_window["activeProfile"] == "busy-minute"
    assert parse_time(in_window["lastScaleTime"]) >= start - timedelta(seconds=1)
    # After the window, the default profile's min (2) is back and cpu-low (10 % < 30 %) scales in again.
    wait_for(lambda: spec_replicas(sets, "windowed") == 2, (end - datetime.now(zone)).total_seconds()
             + COOLDOWN + 2 * INTERVAL + 10, what="the window released")
    wait_for(lambda: autoscale_status(sets, "windowed").get("desiredReplicas") == 2, 10, what="status after it")
    assert autoscale_status(sets, "windowed")["activeProfile"] == "default"


def test_invalid_autoscale_spec_the_schema_cannot_catch_is_reported(env, operator, sets):
    manifest = autoscaled("bad-zone", profiles=[{
        "name": "nowhere", "minReplicas": 2, "recurrence": {"days": ["Monday"], "start": "08:00", "end": "18:00",
                                                            "timeZone": "Mars/Olympus_Mons"}}])
    sets.apply(manifest)
    unhealthy = sets.wait_condition("bad-zone", "AutoscaleHealthy", status="False", timeout=3 * INTERVAL + 10)
    assert unhealthy["reason"] == "InvalidAutoscaleSpec" and "Mars/Olympus_Mons" in unhealthy["message"]
    warnings = wait_for(lambda: [e for e in sets.events("bad-zone") if e.reason == "InvalidAutoscaleSpec"], 10,
                        what="the Warning Event")
    assert warnings[0].type == "Warning"


def test_removing_autoscale_clears_its_status_and_leaves_the_count(env, operator, sets):
    sets.apply(autoscaled("removed"))
    sets.wait_condition("removed", "AutoscaleHealthy", timeout=60)
    sets.custom.patch_namespaced_custom_object(GROUP, VERSION, "default", SCALESET_PLURAL, "removed",
                                               {"spec": {"autoscale": None}})
    wait_for(lambda: not autoscale_status(sets, "removed")
             and not sets.condition("removed", "AutoscaleHealthy"), 30, what="status.autoscale cleared")
    assert spec_replicas(sets, "removed") == 2
