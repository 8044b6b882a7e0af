"""spec.autoscale as users write it: defaults, inheritance by profiles and a SpecError that says what to change."""

from __future__ import annotations

import copy
from datetime import datetime, time, timedelta, timezone

import pytest

from azure_vm_operator.api.fields import SpecError
from azure_vm_operator.autoscale.spec import (
    FIELDS, AzureMonitorMetric, PrometheusQuery, Target, parse_autoscale)

CPU_HIGH = {"name": "cpu-high", "azureMonitor": {}, "operator": "GreaterThan", "threshold": 75,
            "action": {"direction": "Increase", "value": 1}}
BASE = {"minReplicas": 2, "maxReplicas": 10, "rules": [CPU_HIGH]}
BUSINESS = {"name": "business", "minReplicas": 5,
            "recurrence": {"days": ["Monday", "Friday"], "start": "09:00", "end": "17:00",
                           "timeZone": "Europe/Berlin"}}


def parse(**changes):
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return parse_autoscale(raw)


def rule(**changes):
    raw = copy.deepcopy(CPU_HIGH)
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def rejects(fragment, **changes):
    with pytest.raises(SpecError) as caught:
        parse(**changes)
    assert fragment in str(caught.value)
    return str(caught.value)


def test_no_autoscale_is_none():
    assert parse_autoscale(None) is None


def test_defaults_are_the_issues_and_fields_declares_them():
    spec = parse()
    assert (spec.min_replicas, spec.max_replicas, spec.default_replicas) == (2, 10, 2)
    assert spec.evaluation_interval == 60 and spec.mode == "Enabled" and spec.profiles == ()
    (only,) = spec.rules
    assert only.source == AzureMonitorMetric("Percentage CPU", "Average", 60, 300)
    assert only.threshold.cooldown == 300 and only.threshold.action.type == "ChangeCount"
    assert spec.behavior.scale_up.stabilization_window_seconds == 0
    assert spec.behavior.scale_up.select_policy == spec.behavior.scale_down.select_policy == "Max"
    assert FIELDS["spec.autoscale.evaluationInterval"].default == "60s"
    assert FIELDS["spec.autoscale.rules[].azureMonitor.metricName"].default == "Percentage CPU"
    assert FIELDS["spec.autoscale.rules[].cooldown"].fallback == "5m"
    assert FIELDS["spec.autoscale.mode"].enum == ("Enabled", "ForecastOnly", "Disabled")


def test_fields_are_declared_alike_for_the_rules_of_the_default_profile_and_of_profiles():
    top = {k.removeprefix("spec.autoscale.rules[]."): f for k, f in FIELDS.items()
           if k.startswith("spec.autoscale.rules[].")}
    nested = {k.removeprefix("spec.autoscale.profiles[].rules[]."): f for k, f in FIELDS.items()
              if k.startswith("spec.autoscale.profiles[].rules[].")}
    assert top == nested and "operator" in top
    for path, field in FIELDS.items():
        assert path.startswith("spec.autoscale.")
        assert field.default is None or field.enum is None or field.default in field.enum, path


def test_minimum_spec_takes_min_1_and_default_min():
    spec = parse_autoscale({"maxReplicas": 3})
    assert (spec.min_replicas, spec.max_replicas, spec.default_replicas, spec.rules) == (1, 3, 1, ())


@pytest.mark.parametrize("changes, fragment", [
    ({"maxReplicas": None}, "spec.autoscale.maxReplicas is required"),
    ({"minReplicas": 11}, "minReplicas 11 is greater than maxReplicas 10"),
    ({"defaultReplicas": 1}, "defaultReplicas 1 is outside [minReplicas 2, maxReplicas 10]"),
    ({"maxReplicas": 1001}, "spec.autoscale.maxReplicas must be between 0 and 1000"),
    ({"minReplicas": -1}, "between 0 and 1000"),
    ({"minReplicas": "two"}, "spec.autoscale.minReplicas must be a whole number"),
    ({"minReplicas": True}, "whole number"),
    ({"evaluationInterval": "4s"}, "spec.autoscale.evaluationInterval must be at least 5s, not 4s"),
    ({"evaluationInterval": "soon"}, "is not a duration like 30s"),
    ({"mode": "Auto"}, "spec.autoscale.mode must be one of Enabled, ForecastOnly, Disabled"),
    ({"rules": {"name": "x"}}, "spec.autoscale.rules must be a list"),
])
def test_bounds_and_settings_are_checked(changes, fragment):
    rejects(fragment, **changes)


def test_evaluation_interval_and_mode_as_given():
    spec = parse(evaluationInterval="5s", mode="ForecastOnly")
    assert (spec.evaluation_interval, spec.mode) == (5, "ForecastOnly")


@pytest.mark.parametrize("changes, fragment", [
    ({"name": None}, "spec.autoscale.rules[0].name is required"),
    ({"azureMonitor": None}, "rules[0] needs exactly one metric source, azureMonitor or prometheus"),
    ({"prometheus": {"query": "up"}}, "(it has azureMonitor and prometheus)"),
    ({"operator": "Above"}, "rules[0].operator must be one of GreaterThan, GreaterThanOrEqual"),
    ({"threshold": None}, "rules[0].threshold is required for a threshold rule"),
    ({"threshold": "high"}, "rules[0].threshold must be a number"),
    ({"action": {"value": 1}}, "rules[0].action.direction is required: one of Increase, Decrease"),
    ({"action": {"direction": "Increase"}}, "rules[0].action.value is required"),
    ({"action": {"direction": "Up", "value": 1}}, "action.direction must be one of Increase, Decrease"),
    ({"action": {"direction": "Increase", "type": "Double", "value": 1}}, "action.type must be one of"),
    ({"action": {"direction": "Increase", "value": 0}}, "action.value must be between 1 and 1000"),
    ({"action": {"direction": "Decrease", "type": "PercentChangeCount", "value": 150}}, "between 1 and 100"),
    ({"cooldown": "5 minutes"}, "rules[0].cooldown: '5 minutes' is not a duration"),
    ({"target": {"value": 50}}, "has a target and operator, threshold, action: a rule either tracks"),
    ({"operator": None, "threshold": None, "action": None}, "needs a decision: operator, threshold and action"),
    ({"azureMonitor": {"timeWindow": "30s"}}, "azureMonitor.timeWindow must be at least 1m, not 30s"),
    ({"azureMonitor": {"timeGrain": "10m", "timeWindow": "5m"}}, "timeWindow (5m) must be at least its timeGrain"),
    ({"azureMonitor": {"aggregation": "Median"}}, "azureMonitor.aggregation must be one of Average, Minimum"),
    ({"azureMonitor": None, "prometheus": {}}, "rules[0].prometheus.query is required"),
    ({"azureMonitor": None, "prometheus": {"query": "up", "serverAddress": "prom:9090"}}, "http:// or https://"),
])
def test_rules_are_checked(changes, fragment):
    rejects(fragment, rules=[rule(**changes)])


def test_rule_names_are_unique():
    rejects("the rule name 'cpu-high' appears more than once", rules=[CPU_HIGH, CPU_HIGH])


def test_threshold_rule_as_written():
    (r,) = parse(rules=[rule(azureMonitor={"metricName": "Network In Total", "aggregation": "Total",
                                           "timeGrain": "5m", "timeWindow": "10m"},
                             operator="LessThanOrEqual", threshold=2.5, cooldown="1m30s",
                             action={"direction": "Decrease", "type": "PercentChangeCount", "value": 20})]).rules
    assert r.source == AzureMonitorMetric("Network In Total", "Total", 300, 600)
    assert (r.threshold.operator, r.threshold.threshold, r.threshold.cooldown) == ("LessThanOrEqual", 2.5, 90)
    assert (r.threshold.action.direction, r.threshold.action.type, r.threshold.action.value) == \
        ("Decrease", "PercentChangeCount", 20)
    assert not r.per_instance  # a Total is the whole set's load


def test_target_rules_and_prometheus():
    rules = parse(rules=[
        {"name": "rps", "prometheus": {"query": "sum(rate(http_requests_total[2m]))"},
         "target": {"averageValue": 100}},
        {"name": "cpu", "prometheus": {"query": "avg(cpu)", "serverAddress": "http://prom:9090"},
         "target": {"value": 60}},
    ]).rules
    assert rules[0].source == PrometheusQuery("sum(rate(http_requests_total[2m]))", None)
    assert rules[0].target == Target(average_value=100) and rules[0].target.goal == 100
    assert rules[1].source.server_address == "http://prom:9090" and rules[1].target == Target(value=60)
    assert rules[0].per_instance and rules[0].threshold is None


@pytest.mark.parametrize("target, fragment", [
    ({}, "target needs exactly one of averageValue"),
    ({"value": 1, "averageValue": 1}, "target needs exactly one of averageValue"),
    ({"value": 0}, "target.value must be greater than 0"),
    ({"averageValue": "lots"}, "target.averageValue must be a number"),
])
def test_targets_are_checked(target, fragment):
    rejects(fragment, rules=[{"name": "t", "azureMonitor": {}, "target": target}])


def test_a_target_rule_takes_no_cooldown():
    rejects("has a target and cooldown", rules=[{"name": "t", "azureMonitor": {}, "target": {"value": 5},
                                                 "cooldown": "1m"}])


def test_behavior_as_written_and_scale_down_window_by_rule_kind():
    spec = parse(behavior={
        "scaleUp": {"stabilizationWindowSeconds": 30, "selectPolicy": "Min",
                    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 60},
                                 {"type": "Percent", "value": 100, "periodSeconds": 60}]},
        "scaleDown": {"selectPolicy": "Disabled"}})
    up, down = spec.behavior.scale_up, spec.behavior.scale_down
    assert up.stabilization_window_seconds == 30 and up.select_policy == "Min"
    assert [(p.type, p.value, p.period_seconds) for p in up.policies] == [("Pods", 4, 60), ("Percent", 100, 60)]
    assert down.select_policy == "Disabled" and down.stabilization_window_seconds == 0  # thresholds: cooldowns
    tracking = parse(rules=[{"name": "t", "azureMonitor": {}, "target": {"value": 50}}])
    assert tracking.behavior.scale_down.stabilization_window_seconds == 300  # HPA's


@pytest.mark.parametrize("behavior, fragment", [
    ({"scaleUp": {"selectPolicy": "Average"}}, "behavior.scaleUp.selectPolicy must be one of Max, Min, Disabled"),
    ({"scaleDown": {"stabilizationWindowSeconds": 7200}}, "stabilizationWindowSeconds must be between 0 and 3600"),
    ({"scaleUp": {"policies": [{"value": 1, "periodSeconds": 60}]}}, "policies[0].type is required: one of Pods"),
    ({"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 3600}]}},
     "policies[0].periodSeconds must be between 1 and 1800"),
    ({"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 60}]}}, "policies[0].value must be"),
])
def test_behavior_is_checked(behavior, fragment):
    rejects(fragment, behavior=behavior)


def test_a_profile_inherits_what_it_leaves_out():
    spec = parse(defaultReplicas=3, profiles=[BUSINESS])
    (business,) = spec.profiles
    assert (business.min_replicas, business.max_replicas, business.default_replicas) == (5, 10, 5)
    assert business.rules == spec.rules  # no rules of its own
    assert business.recurrence.days == ("Monday", "Friday")
    assert (business.recurrence.start, business.recurrence.end) == (time(9), time(17))
    assert business.recurrence.time_zone == "Europe/Berlin" and business.fixed_date is None


def test_a_profile_may_replace_the_rules_or_drop_them():
    own = {**BUSINESS, "rules": [rule(name="busy", threshold=50)]}
    none = {**BUSINESS, "name": "quiet", "rules": []}
    busy, quiet = parse(profiles=[own, none]).profiles
    assert [r.name for r in busy.rules] == ["busy"] and quiet.rules == ()


def test_fixed_date_profiles_take_rfc3339():
    spec = parse(profiles=[{"name": "sale", "maxReplicas": 50, "defaultReplicas": 20,
                            "fixedDate": {"start": "2024-11-29T00:00:00+01:00", "end": "2024-12-02T00:00:00Z"}}])
    (sale,) = spec.profiles
    assert sale.fixed_date.start == datetime(2024, 11, 28, 23, tzinfo=timezone.utc)
    assert sale.fixed_date.end - sale.fixed_date.start == timedelta(days=3, hours=1)
    assert (sale.min_replicas, sale.max_replicas, sale.default_replicas) == (2, 50, 20)


def test_yaml_timestamps_are_taken_as_they_come():
    start = datetime(2024, 12, 24, tzinfo=timezone.utc)
    spec = parse(profiles=[{"name": "x", "fixedDate": {"start": start, "end": start + timedelta(days=1)}}])
    assert spec.profiles[0].fixed_date.start == start


def test_end_24_00_and_midnight_windows():
    spec = parse(profiles=[{**BUSINESS, "recurrence": {**BUSINESS["recurrence"], "start": "22:00", "end": "24:00"}}])
    assert spec.profiles[0].recurrence.end == time(0)


@pytest.mark.parametrize("profile, fragment", [
    ({"name": None}, "profiles[0].name is required"),
    ({"name": "default"}, "'default' is the name of spec.autoscale itself"),
    ({"recurrence": None}, "profiles[0] needs exactly one window, recurrence or fixedDate"),
    ({"fixedDate": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"}}, "(it has both)"),
    ({"minReplicas": 11}, "minReplicas 11 is greater than maxReplicas 10 (with what it leaves out taken from"),
    ({"defaultReplicas": 3}, "profiles[0].defaultReplicas 3 is outside [minReplicas 5, maxReplicas 10]"),
    ({"recurrence": {**BUSINESS["recurrence"], "days": ["Mon"]}}, "recurrence.days[0] must be one of Monday,"),
    ({"recurrence": {**BUSINESS["recurrence"], "days": []}}, "recurrence.days needs at least one day"),
    ({"recurrence": {**BUSINESS["recurrence"], "start": "9:00"}}, "recurrence.start must be a time of day HH:MM"),
    ({"recurrence": {**BUSINESS["recurrence"], "start": "24:00"}}, "(00:00 to 23:59), not '24:00'"),
    ({"recurrence": {**BUSINESS["recurrence"], "end": "17:60"}}, "recurrence.end must be a time of day"),
    ({"recurrence": {**BUSINESS["recurrence"], "timeZone": None}}, "recurrence.timeZone is required: an IANA"),
    ({"recurrence": {**BUSINESS["recurrence"], "timeZone": "CET+1"}}, "'CET+1' is not an IANA time zone name"),
    ({"recurrence": {**BUSINESS["recurrence"], "timeZone": "Europe"}}, "'Europe' is not an IANA time zone name"),
    ({"recurrence": {**BUSINESS["recurrence"], "timeZone": "../etc/passwd"}}, "is not an IANA time zone name"),
    ({"recurrence": None, "fixedDate": {"start": "2024-01-01T00:00:00Z"}}, "fixedDate.end is required"),
    ({"recurrence": None, "fixedDate": {"start": "2024-01-01T00:00:00", "end": "2024-01-02T00:00:00Z"}},
     "fixedDate.start needs a UTC offset (RFC 3339)"),
    ({"recurrence": None, "fixedDate": {"start": "Christmas", "end": "2024-01-02T00:00:00Z"}},
     "fixedDate.start must be an RFC 3339 date-time"),
    ({"recurrence": None, "fixedDate": {"start": "2024-01-02T00:00:00Z", "end": "2024-01-02T01:00:00+01:00"}},
     "must be after start"),
    ({"rules": [rule(name="cpu-high", azureMonitor={"aggregation": "Maximum"})]},
     "rule 'cpu-high' reads a different metric in profile 'business' than in profile 'default'"),
])
def test_profiles_are_checked(profile, fragment):
    rejects(fragment, profiles=[{k: v for k, v in {**BUSINESS, **profile}.items() if v is not None}])


def test_profile_names_are_unique_and_a_rule_name_may_change_its_decision():
    rejects("the name 'business' appears more than once", profiles=[BUSINESS, BUSINESS])
    spec = parse(profiles=[{**BUSINESS, "rules": [rule(threshold=90)]}])
    assert spec.rules[0].threshold.threshold == 75 and spec.profiles[0].rules[0].threshold.threshold == 90
    assert list(spec.all_rules()) == ["cpu-high"]


def test_an_inherited_default_is_brought_into_the_profiles_range():
    spec = parse(defaultReplicas=2, profiles=[{**BUSINESS, "minReplicas": 6}, {**BUSINESS, "name": "night",
                                                                               "maxReplicas": 1, "minReplicas": 0}])
    assert spec.profiles[0].default_replicas == 6 and spec.profiles[1].default_replicas == 1
