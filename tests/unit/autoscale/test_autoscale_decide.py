"""decide(): Azure autoscale's rule semantics, HPA's targets and behavior, the flapping guard, missing metrics,
profiles and modes, with a fake clock (plain datetimes)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from azure_vm_operator.autoscale.decide import (
    Decision, Direction, History, Reason, Sample, ScaleEvent, decide, horizon, record)
from azure_vm_operator.autoscale.spec import parse_autoscale

T0 = datetime(2024, 1, 8, 12, 0, tzinfo=timezone.utc)  # a Monday


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def threshold(name, operator, value, direction, step=1, kind="ChangeCount", cooldown=None, aggregation="Average"):
    rule = {"name": name, "azureMonitor": {"aggregation": aggregation}, "operator": operator, "threshold": value,
            "action": {"direction": direction, "type": kind, "value": step}}
    return {**rule, "cooldown": cooldown} if cooldown else rule


def high(value=75, step=1, name="cpu_high", **kw):
    return threshold(name, "GreaterThan", value, "Increase", step, **kw)


def low(value=25, step=1, name="cpu_low", **kw):
    return threshold(name, "LessThan", value, "Decrease", step, **kw)


def target(name="cpu", **goal):
    return {"name": name, "prometheus": {"query": name}, "target": goal}


def autoscale(*rules, low=1, high=10, **extra):
    return parse_autoscale({"minReplicas": low, "maxReplicas": high, "rules": list(rules), **extra})


def run(spec, current, when=T0, history=History(), **values) -> Decision:
    return decide(current, {name: Sample(v, when) for name, v in values.items()}, when, spec, history)


def scaled(seconds_ago: float, before=2, after=3) -> History:
    return History(scale_events=(ScaleEvent(at(-seconds_ago), before, after),))


def recommended(*pairs: tuple[float, int]) -> History:
    """Past decisions: (seconds ago, recommendation)."""
    return History(decisions=tuple(
        Decision(at(-ago), rec, rec, Direction.NONE, Reason.NO_RULE_FIRED, "default", recommendation=rec)
        for ago, rec in pairs))


# --- modes and the first count

def test_disabled_decides_nothing():
    spec = autoscale(high(), mode="Disabled")
    d = run(spec, 3, cpu_high=99)
    assert (d.desired, d.direction, d.reason, d.apply) == (3, Direction.NONE, Reason.DISABLED, False)
    assert run(spec, None).desired is None


def test_forecast_only_decides_the_same_but_is_not_to_be_applied():
    enabled, forecast = run(autoscale(high()), 3, cpu_high=80), run(autoscale(high(), mode="ForecastOnly"), 3,
                                                                      cpu_high=80)
    assert (forecast.desired, forecast.reason, forecast.rule) == (enabled.desired, enabled.reason, enabled.rule) \
        == (4, Reason.RULE_FIRED, "cpu_high")
    assert enabled.apply and not forecast.apply and "ForecastOnly: not applied" in forecast.message


def test_without_a_count_the_first_is_default_replicas():
    d = run(autoscale(high(), low=2, high=10, defaultReplicas=4), None, cpu_high=99)
    assert (d.desired, d.reason, d.direction, d.apply) == (4, Reason.PROFILE_DEFAULT, Direction.UP, True)
    assert run(autoscale(), None).desired == 1  # defaultReplicas defaults to minReplicas


def test_the_first_count_is_the_active_profiles_default():
    spec = parse_autoscale({"minReplicas": 1, "maxReplicas": 10, "profiles": [
        {"name": "sale", "minReplicas": 6, "fixedDate": {"start": "2024-01-08T00:00:00Z",
                                                          "end": "2024-01-09T00:00:00Z"}}]})
    d = run(spec, None)
    assert (d.desired, d.profile) == (6, "sale")


def test_a_naive_clock_is_refused():
    with pytest.raises(ValueError):
        decide(3, {}, datetime(2024, 1, 1), autoscale())


# --- any out, all in

def test_an_out_rule_fires():
    d = run(autoscale(high(), low()), 3, cpu_high=80, cpu_low=80)
    assert (d.desired, d.direction, d.reason, d.rule, d.observed, d.threshold, d.healthy) == \
        (4, Direction.UP, Reason.RULE_FIRED, "cpu_high", 80, 75, True)
    assert d.message == "rule cpu_high: 80 > 75: 3 -> 4"


def test_any_out_rule_scales_out_and_the_largest_result_wins():
    spec = autoscale(high(step=1), high(90, step=3, name="cpu_spike"), high(name="queue"))
    d = run(spec, 3, cpu_high=95, cpu_spike=95, queue=10)
    assert (d.desired, d.rule) == (6, "cpu_spike")
    assert run(spec, 3, cpu_high=80, cpu_spike=80, queue=10).desired == 4


def test_out_wins_over_in():
    spec = autoscale(high(50), low(90))
    assert run(spec, 3, cpu_high=70, cpu_low=70).desired == 4


def test_scale_in_needs_every_in_rule():
    spec = autoscale(high(), low(), low(name="queue_low", value=10))
    d = run(spec, 5, cpu_high=20, cpu_low=20, queue_low=50)
    assert (d.desired, d.reason) == (5, Reason.IN_RULES_DISAGREE)
    assert "rule queue_low: 50 is not < 10" in d.message
    assert run(spec, 5, cpu_high=20, cpu_low=20, queue_low=5).desired == 4


def test_scale_in_takes_the_smallest_step():
    spec = autoscale(high(), low(step=1), low(name="queue_low", value=10, step=3))
    d = run(spec, 6, cpu_high=20, cpu_low=20, queue_low=5)
    assert (d.desired, d.rule, d.reason) == (5, "cpu_low", Reason.RULE_FIRED)


def test_nothing_fires():
    d = run(autoscale(high(), low()), 3, cpu_high=50, cpu_low=50)
    assert (d.desired, d.reason, d.direction) == (3, Reason.NO_RULE_FIRED, Direction.NONE)
    assert d.message == "no rule fired (cpu_high 50, cpu_low 50)"


def test_without_in_rules_there_is_no_scale_in():
    assert run(autoscale(high()), 5, cpu_high=1).desired == 5


def test_at_zero_an_in_rule_has_nothing_to_remove():
    d = run(autoscale(low(), low=0), 0, cpu_low=0)
    assert (d.desired, d.reason) == (0, Reason.NO_RULE_FIRED)


@pytest.mark.parametrize("kind, direction, step, current, expected", [
    ("ChangeCount", "Increase", 2, 3, 5),
    ("ChangeCount", "Decrease", 2, 3, 1),
    ("ChangeCount", "Decrease", 5, 3, 0),
    ("PercentChangeCount", "Increase", 50, 3, 5),  # ceil(1.5)
    ("PercentChangeCount", "Increase", 10, 3, 4),  # at least one
    ("PercentChangeCount", "Increase", 10, 0, 1),  # even from zero
    ("PercentChangeCount", "Decrease", 50, 3, 2),  # floor(1.5)
    ("PercentChangeCount", "Decrease", 10, 3, 2),  # at least one
    ("ExactCount", "Increase", 7, 3, 7),
    ("ExactCount", "Increase", 2, 3, 3),  # an increase never lowers
    ("ExactCount", "Decrease", 1, 3, 1),
    ("ExactCount", "Decrease", 5, 3, 3),  # a decrease never raises
])
def test_actions(kind, direction, step, current, expected):
    op = "GreaterThan" if direction == "Increase" else "LessThan"
    spec = autoscale(threshold("r", op, 50, direction, step, kind), low=0, high=100)
    assert run(spec, current, r=60 if direction == "Increase" else 40).desired == expected


@pytest.mark.parametrize("operator, value, fires", [
    ("GreaterThan", 50, False), ("GreaterThan", 50.01, True),
    ("GreaterThanOrEqual", 50, True), ("GreaterThanOrEqual", 49.99, False),
    ("LessThan", 50, False), ("LessThan", 49.99, True),
    ("LessThanOrEqual", 50, True), ("LessThanOrEqual", 50.01, False),
    ("Equals", 50, True), ("Equals", 51, False),
    ("NotEquals", 51, True), ("NotEquals", 50, False),
])
def test_operators(operator, value, fires):
    assert run(autoscale(threshold("r", operator, 50, "Increase")), 3, r=value).desired == (4 if fires else 3)


# --- cooldowns

def test_a_rule_waits_for_its_cooldown_after_any_change_of_the_count():
    spec = autoscale(high(cooldown="5m"))
    d = run(spec, 3, history=scaled(120), cpu_high=80)
    assert (d.desired, d.reason, d.rule, d.observed) == (3, Reason.COOLDOWN, "cpu_high", 80)
    assert "its cooldown has 180s to run" in d.message
    assert run(spec, 3, history=scaled(300), cpu_high=80).desired == 4


def test_cooldowns_are_per_rule():
    spec = autoscale(high(cooldown="10m"), high(name="fast", cooldown="1m"))
    d = run(spec, 3, history=scaled(120), cpu_high=80, fast=80)
    assert (d.desired, d.rule) == (4, "fast")


def test_a_cooling_in_rule_holds_the_scale_in():
    spec = autoscale(high(), low(cooldown="10m"), low(name="queue_low", cooldown="1m"))
    d = run(spec, 5, history=scaled(120), cpu_high=10, cpu_low=10, queue_low=10)
    assert (d.desired, d.reason, d.rule) == (5, Reason.COOLDOWN, "cpu_low")
    assert run(spec, 5, history=scaled(600), cpu_high=10, cpu_low=10, queue_low=10).desired == 4


def test_a_cooling_out_rule_still_blocks_a_scale_in():
    d = run(autoscale(high(50), low(90)), 3, history=scaled(10), cpu_high=70, cpu_low=70)
    assert (d.desired, d.reason) == (3, Reason.COOLDOWN)


def test_cooldown_follows_the_recorded_history():
    spec = autoscale(high(cooldown="5m"))
    history = History()
    counts = []
    current = 3
    for minute in range(12):
        d = run(spec, current, at(60 * minute), history, cpu_high=90)
        history = record(history, d, spec)
        current = d.desired
        counts.append(current)
    assert counts == [4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 6, 6]


# --- target tracking (HPA)

@pytest.mark.parametrize("goal, current, metric, expected", [
    ({"value": 60}, 4, 90, 6),  # ceil(4 x 90 / 60)
    ({"value": 60}, 4, 30, 2),
    ({"value": 60}, 4, 64, 4),  # within 10 %
    ({"value": 60}, 4, 55, 4),
    ({"value": 60}, 3, 70, 4),  # ceil(3.5)
    ({"value": 60}, 0, 90, 0),  # a per-instance metric of no instances says nothing
    ({"averageValue": 100}, 4, 1000, 10),  # ceil(1000 / 100): the metric is the set's total
    ({"averageValue": 100}, 0, 1000, 10),  # which can start from zero
    ({"averageValue": 100}, 12, 1000, 10),
    ({"averageValue": 0.3}, 3, 0.9, 3),  # exactly on target, whatever the floating point says
])
def test_target_tracking(goal, current, metric, expected):
    d = run(autoscale(target(**goal), low=0, high=20), current, cpu=metric)
    assert d.desired == expected
    if expected != current:
        assert (d.reason, d.rule, d.observed, d.threshold) == (Reason.TARGET_TRACKING, "cpu", metric,
                                                               next(iter(goal.values())))


def test_the_larger_of_target_and_threshold_scales_out():
    spec = autoscale(target(value=60), high(), low=0, high=20)
    assert run(spec, 4, cpu=120, cpu_high=80).desired == 8
    assert run(spec, 4, cpu=61, cpu_high=80).desired == 5


def test_a_target_scales_in_only_with_the_other_in_rules():
    spec = autoscale(target(value=60), low(), low=0, high=20)
    assert run(spec, 6, cpu=30, cpu_low=50).reason == Reason.IN_RULES_DISAGREE
    d = run(spec, 6, cpu=30, cpu_low=10)  # target says 3, the threshold 5: the smaller step
    assert (d.desired, d.rule) == (5, "cpu_low")


def test_a_target_within_tolerance_holds_another_targets_scale_in():
    spec = autoscale(target(value=60), target(name="rps", averageValue=100), low=0, high=20)
    assert run(spec, 6, cpu=30, rps=600).desired == 6
    assert run(spec, 6, cpu=30, rps=300).desired == 3


# --- the flapping guard

def test_a_scale_in_that_would_trigger_a_scale_out_is_skipped():
    spec = autoscale(high(60), low(50))
    d = run(spec, 3, cpu_high=45, cpu_low=45)  # at 2 instances: 45 x 3 / 2 = 67.5 > 60
    assert (d.desired, d.reason, d.rule, d.observed, d.threshold) == (3, Reason.FLAPPING_AVOIDED, "cpu_high",
                                                                       67.5, 60)
    assert "at 2 instances rule cpu_high would read about 67.5 > 60 and scale out again: staying at 3" in d.message
    assert run(spec, 3, cpu_high=35, cpu_low=35).desired == 2  # 52.5: fine


def test_a_scale_in_is_shrunk_to_a_count_that_does_not_flap():
    d = run(autoscale(high(60), low(40, step=2)), 4, cpu_high=35, cpu_low=35)  # 2: 70 flaps, 3: 46.7 does not
    assert (d.desired, d.reason, d.direction, d.recommendation) == (3, Reason.FLAPPING_AVOIDED, Direction.DOWN, 3)
    assert "4 -> 3 instead" in d.message


def test_a_total_is_not_spread_over_the_count():
    in_rule = low(30, name="cpu_low")
    per_instance = autoscale(high(1000, name="net", aggregation="Average"), in_rule)
    total = autoscale(high(1000, name="net", aggregation="Total"), in_rule)
    assert run(per_instance, 4, net=900, cpu_low=20).reason == Reason.FLAPPING_AVOIDED  # 1200 at 3
    assert run(total, 4, net=900, cpu_low=20).desired == 3


def test_scaling_in_to_zero_is_guarded_by_any_load():
    spec = autoscale(high(50, name="load"), low(10, name="idle"), low=0)
    assert run(spec, 1, load=5, idle=5).reason == Reason.FLAPPING_AVOIDED
    assert run(spec, 1, load=0, idle=0).desired == 0


def test_scaling_to_zero_waits_for_default_replicas_zero():
    """At zero instances the metrics go missing, and missing metrics scale back up to defaultReplicas."""
    d = run(autoscale(low(10, name="idle"), low=0, defaultReplicas=1), 1, idle=0)
    assert (d.desired, d.reason) == (1, Reason.FLAPPING_AVOIDED)
    assert "defaultReplicas 0 allows scaling to zero" in d.message
    shrunk = run(autoscale(low(10, name="idle", step=3), low=0, defaultReplicas=1), 3, idle=0)
    assert (shrunk.desired, shrunk.reason) == (1, Reason.FLAPPING_AVOIDED)
    assert run(autoscale(low(10, name="idle"), low=0, defaultReplicas=0), 1, idle=0).desired == 0


# --- missing and failing metrics

def test_a_missing_metric_never_scales_in():
    d = run(autoscale(high(), low()), 5, cpu_low=10)
    assert (d.desired, d.reason, d.healthy) == (5, Reason.METRICS_MISSING, False)
    assert "cpu_high: no value yet" in d.message and "holding at 5" in d.message


def test_a_missing_metric_below_default_scales_to_default():
    d = run(autoscale(high(), low(), defaultReplicas=4), 2, cpu_low=10)
    assert (d.desired, d.reason, d.direction, d.healthy) == (4, Reason.METRICS_MISSING, Direction.UP, False)


def test_an_out_rule_with_a_value_still_scales_out_when_another_is_missing():
    d = run(autoscale(high(), high(name="queue")), 3, cpu_high=90)
    assert (d.desired, d.reason, d.healthy) == (4, Reason.RULE_FIRED, False)
    assert "metrics missing (queue: no value yet)" in d.message


def test_the_last_good_value_stands_in_while_fresh_enough():
    spec = autoscale(high())  # evaluationInterval 60s: 120s of staleness
    last = Sample(80, at(-100))
    d = decide(3, {"cpu_high": Sample.failed("timeout", last)}, T0, spec)
    assert (d.desired, d.healthy) == (4, True)
    assert "cpu_high: last good value 80 from 100s ago stands in (timeout)" in d.message
    stale = decide(3, {"cpu_high": Sample.failed("timeout", Sample(80, at(-121)))}, T0, spec)
    assert (stale.desired, stale.healthy, stale.reason) == (3, False, Reason.METRICS_MISSING)
    assert "last value 80 is 121s old, more than 120s (timeout)" in stale.message
    assert decide(3, {"cpu_high": Sample.failed("timeout", Sample(80, at(-121)))}, T0, spec,
                  staleness=300).desired == 4


def test_an_old_value_is_stale_even_without_an_error():
    assert not decide(3, {"cpu_high": Sample(80, at(-600))}, T0, autoscale(high())).healthy


@pytest.mark.parametrize("sample, note", [
    (Sample.failed("prometheus: connection refused"), "prometheus: connection refused"),
    (Sample(math.nan, T0), "nan is not a number to act on"),
    (Sample(None, None), "no value yet"),
])
def test_failures_are_reported(sample, note):
    d = decide(5, {"cpu_high": sample, "cpu_low": Sample(1, T0)}, T0, autoscale(high(), low()))
    assert (d.desired, d.healthy) == (5, False) and note in d.message


# --- behavior (HPA)

def test_scale_down_stabilization_holds_the_highest_recent_recommendation():
    spec = autoscale(high(), low(), behavior={"scaleDown": {"stabilizationWindowSeconds": 300}})
    d = run(spec, 5, history=recommended((200, 5), (100, 4)), cpu_high=10, cpu_low=10)
    assert (d.desired, d.reason, d.recommendation) == (5, Reason.STABILIZATION_WINDOW, 4)
    assert "the highest recommendation in it is 5" in d.message
    assert run(spec, 5, history=recommended((301, 5), (100, 4)), cpu_high=10, cpu_low=10).desired == 4


def test_scale_up_stabilization_waits_for_a_sustained_signal():
    spec = autoscale(high(), behavior={"scaleUp": {"stabilizationWindowSeconds": 60}})
    d = run(spec, 3, history=recommended((30, 3)), cpu_high=90)
    assert (d.desired, d.reason) == (3, Reason.STABILIZATION_WINDOW)
    assert run(spec, 3, history=recommended((30, 4)), cpu_high=90).desired == 4


def test_stabilization_follows_the_recorded_history():
    spec = autoscale(target(averageValue=50), low=1, high=20)  # target rules: HPA's 300 s scale-down window
    history, current, counts = recommended((1, 10)), 10, []  # as HPA: no past recommendation, no holding back
    for minute in range(8):
        d = run(spec, current, at(60 * minute), history, cpu=200)  # wants 4
        history, current = record(history, d, spec), d.desired
        counts.append(current)
    assert counts == [10, 10, 10, 10, 10, 4, 4, 4]


@pytest.mark.parametrize("policies, select, expected", [
    ([{"type": "Pods", "value": 2, "periodSeconds": 60}], "Max", 5),
    ([{"type": "Percent", "value": 100, "periodSeconds": 60}], "Max", 6),
    ([{"type": "Pods", "value": 4, "periodSeconds": 60}, {"type": "Percent", "value": 100, "periodSeconds": 60}],
     "Max", 7),
    ([{"type": "Pods", "value": 4, "periodSeconds": 60}, {"type": "Percent", "value": 100, "periodSeconds": 60}],
     "Min", 6),
    ([], "Disabled", 3),
])
def test_scale_up_policies(policies, select, expected):
    spec = autoscale(target(value=10), high=20, behavior={"scaleUp": {"policies": policies, "selectPolicy": select}})
    d = run(spec, 3, cpu=100)  # wants 30, clamped to 20 unless limited
    assert (d.desired, d.reason) == (expected, Reason.SCALE_UP_LIMIT)


@pytest.mark.parametrize("policies, select, expected", [
    ([{"type": "Pods", "value": 1, "periodSeconds": 60}], "Max", 9),
    ([{"type": "Percent", "value": 50, "periodSeconds": 60}], "Max", 5),
    ([{"type": "Pods", "value": 1, "periodSeconds": 60}, {"type": "Percent", "value": 50, "periodSeconds": 60}],
     "Max", 5),
    ([{"type": "Pods", "value": 1, "periodSeconds": 60}, {"type": "Percent", "value": 50, "periodSeconds": 60}],
     "Min", 9),
    ([], "Disabled", 10),
])
def test_scale_down_policies(policies, select, expected):
    spec = autoscale(target(value=100), high=20, behavior={"scaleDown": {
        "policies": policies, "selectPolicy": select, "stabilizationWindowSeconds": 0}})
    d = run(spec, 10, cpu=20)  # wants 2
    assert (d.desired, d.reason) == (expected, Reason.SCALE_DOWN_LIMIT)


def test_a_policy_counts_what_its_period_already_added():
    spec = autoscale(target(value=10), high=20, behavior={"scaleUp": {
        "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]}})
    assert run(spec, 4, history=scaled(30, 2, 4), cpu=100).desired == 4  # 2 -> 4 within the last minute
    assert run(spec, 4, history=scaled(61, 2, 4), cpu=100).desired == 6


def test_bounds_override_a_disabled_direction():
    spec = autoscale(high(), high=10, behavior={"scaleDown": {"selectPolicy": "Disabled"}})
    d = run(spec, 12, cpu_high=10)
    assert (d.desired, d.reason, d.direction) == (10, Reason.CLAMPED_TO_MAX, Direction.DOWN)


# --- bounds and profiles

def test_an_out_rule_at_max_is_clamped():
    d = run(autoscale(high(), high=4), 4, cpu_high=90)
    assert (d.desired, d.reason, d.direction, d.rule) == (4, Reason.CLAMPED_TO_MAX, Direction.NONE, "cpu_high")
    assert run(autoscale(high(step=5), high=6), 4, cpu_high=90).desired == 6


def test_a_count_below_min_is_raised_at_once():
    d = run(autoscale(high(), low=3), 1, history=scaled(5), cpu_high=10)
    assert (d.desired, d.reason, d.direction) == (3, Reason.CLAMPED_TO_MIN, Direction.UP)
    assert "minReplicas of profile default is 3" in d.message


def test_a_profile_raising_min_applies_despite_cooldown_and_stabilization():
    spec = parse_autoscale({
        "minReplicas": 1, "maxReplicas": 10, "rules": [high(), low()],
        "behavior": {"scaleUp": {"stabilizationWindowSeconds": 600}},
        "profiles": [{"name": "business", "minReplicas": 6,
                      "recurrence": {"days": ["Monday"], "start": "12:00", "end": "18:00", "timeZone": "UTC"}}]})
    before = run(spec, 3, at(-60), scaled(10), cpu_high=50, cpu_low=50)
    during = run(spec, 3, T0, scaled(10), cpu_high=50, cpu_low=50)
    assert (before.desired, before.profile) == (3, "default")
    assert (during.desired, during.reason, during.profile) == (6, Reason.CLAMPED_TO_MIN, "business")
    after = run(spec, 8, at(6 * 3600), History(), cpu_high=50, cpu_low=50)
    assert (after.desired, after.profile) == (8, "default")


def test_a_profile_with_its_own_rules_or_none():
    spec = parse_autoscale({
        "minReplicas": 1, "maxReplicas": 10, "rules": [high()],
        "profiles": [{"name": "busy", "rules": [high(95)],
                      "fixedDate": {"start": "2024-01-08T00:00:00Z", "end": "2024-01-08T12:30:00Z"}},
                     {"name": "frozen", "rules": [],
                      "fixedDate": {"start": "2024-01-08T12:30:00Z", "end": "2024-01-09T00:00:00Z"}}]})
    assert run(spec, 3, cpu_high=90).desired == 3  # the busy profile's rule fires at 95
    assert run(spec, 3, at(-3600 * 24), cpu_high=90).desired == 4
    frozen = run(spec, 3, at(3600), cpu_high=99)
    assert (frozen.desired, frozen.profile, frozen.healthy) == (3, "frozen", True)


# --- the history

def test_record_keeps_scale_events_of_applied_changes_only():
    spec = autoscale(high())
    up = run(spec, 3, cpu_high=90)
    assert record(History(), up, spec).scale_events == (ScaleEvent(T0, 3, 4),)
    assert record(History(), up, spec, applied=False).scale_events == ()
    assert record(History(), run(autoscale(high(), mode="ForecastOnly"), 3, cpu_high=90), spec).scale_events == ()
    assert record(History(), run(spec, 3, cpu_high=10), spec).scale_events == ()


def test_record_forgets_what_no_rule_can_look_back_to():
    spec = autoscale(high(cooldown="10m"), behavior={"scaleDown": {"stabilizationWindowSeconds": 900}})
    assert horizon(spec) == timedelta(minutes=15)
    history = History()
    for minute in range(0, 40, 5):
        history = record(history, run(spec, 3 + minute, at(60 * minute), cpu_high=90), spec)
    assert [d.time for d in history.decisions] == [at(60 * m) for m in (25, 30, 35)]
    assert [e.time for e in history.scale_events] == [at(60 * m) for m in (25, 30, 35)]
    assert history.last_scale_time == at(60 * 35)
