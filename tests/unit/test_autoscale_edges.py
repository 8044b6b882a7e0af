"""Edges around the autoscaler's pure core: reading Azure Monitor's answer over a time window
(``azure.monitor``), and what survives a restart of the operator through status.autoscale
(``controllers.autoscaler.history_from_status`` / ``decision_status``), checked against ``decide``."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from azure_vm_operator.autoscale.decide import Decision, Direction, History, Reason, Sample, ScaleEvent, decide
from azure_vm_operator.autoscale.spec import parse_autoscale
from azure_vm_operator.azure import monitor
from azure_vm_operator.controllers.autoscaler import decision_status, history_from_status

T0 = datetime(2024, 1, 8, 12, 0, 30, tzinfo=timezone.utc)  # half a minute past a grain boundary
SCALE_SET = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/"
             "Microsoft.Compute/virtualMachineScaleSets/web")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Azure Monitor's answer --------------------------------------------------------------------------------------

def point(minute: str, **values: float) -> dict:
    """A data point as Azure Monitor writes it: a timeStamp, and the requested aggregations when it has values."""
    return {"timeStamp": f"2024-01-08T{minute}:00Z", **values}


def answer(*points: dict, series: int = 1) -> dict:
    """The body of GET {resource}/providers/Microsoft.Insights/metrics (as in the REST examples and the emulator)."""
    return {
        "cost": 0,
        "timespan": "2024-01-08T11:55:00Z/2024-01-08T12:00:30Z",
        "interval": "PT1M",
        "namespace": "Microsoft.Compute/virtualMachineScaleSets",
        "resourceregion": "westeurope",
        "value": [{
            "id": f"{SCALE_SET}/providers/Microsoft.Insights/metrics/Percentage CPU",
            "type": "Microsoft.Insights/metrics",
            "name": {"value": "Percentage CPU", "localizedValue": "Percentage CPU"},
            "displayDescription": "The percentage of allocated compute units in use by the instances.",
            "unit": "Percent",
            "errorCode": "Success",
            "timeseries": [{"metadatavalues": [], "data": list(points)} for _ in range(series)],
        }],
    }


SINCE = at(-300)  # a 5-minute window ending at T0: 11:55:30


def test_window_value_averages_the_points_inside_the_window():
    body = answer(point("11:55", average=100.0),  # the aligned first point: starts before the window
                  point("11:56", average=10.0), point("11:57", average=20.0), point("11:58", average=30.0),
                  point("11:59", average=40.0),
                  point("12:00"))  # the current grain, not reported yet
    assert monitor.window_value(body, "Average", SINCE) == pytest.approx(25.0)


def test_a_point_starting_exactly_at_the_window_start_is_inside():
    body = answer(point("11:55", average=90.0), point("11:56", average=10.0))
    assert monitor.window_value(body, "Average", datetime(2024, 1, 8, 11, 55, tzinfo=timezone.utc)) \
        == pytest.approx(50.0)


def test_points_without_a_value_are_left_out_not_counted_as_zero():
    body = answer(point("11:56"), point("11:57", average=60.0), point("11:58"), point("11:59", average=20.0))
    assert monitor.window_value(body, "Average", SINCE) == pytest.approx(40.0)


def test_a_value_of_zero_is_a_value():
    body = answer(point("11:56", average=0.0), point("11:57", average=30.0))
    assert monitor.window_value(body, "Average", SINCE) == pytest.approx(15.0)


def test_the_aligned_point_before_the_window_stands_in_when_nothing_inside_has_a_value():
    body = answer(point("11:54", average=80.0), point("11:55", average=60.0), point("11:56"), point("11:57"))
    assert monitor.window_value(body, "Average", SINCE) == pytest.approx(60.0)  # the newest one, not a mean


def test_only_an_aligned_first_point_is_read():
    assert monitor.window_value(answer(point("11:55", maximum=70.0)), "Maximum", SINCE) == pytest.approx(70.0)


@pytest.mark.parametrize("aggregation, expected", [
    ("Average", (11 + 13 + 12) / 3),  # the mean of the points' averages
    ("Minimum", 2.0),  # the lowest of the points' minimums
    ("Maximum", 31.0),  # the highest of the points' maximums
    ("Total", 100 + 300 + 200),  # summed over time
    ("Count", 4 + 5 + 6),  # summed over time
])
def test_each_aggregation_reads_its_own_field_and_combines_over_time_its_own_way(aggregation, expected):
    body = answer(
        point("11:55", average=99.0, minimum=0.5, maximum=99.0, total=999.0, count=99.0),  # before the window
        point("11:56", average=11.0, minimum=3.0, maximum=29.0, total=100.0, count=4.0),
        point("11:57", average=13.0, minimum=2.0, maximum=31.0, total=300.0, count=5.0),
        point("11:58", average=12.0, minimum=4.0, maximum=30.0, total=200.0, count=6.0),
    )
    assert monitor.window_value(body, aggregation, SINCE) == pytest.approx(expected)


def test_an_aggregation_the_answer_does_not_carry_has_no_value():
    body = answer(point("11:56", average=50.0), point("11:57", average=60.0))
    assert monitor.window_value(body, "Maximum", SINCE) is None


@pytest.mark.parametrize("body", [
    {},
    {"value": []},
    {"value": None},
    answer(),  # a metric without data points
    {"value": [{"name": {"value": "Percentage CPU"}, "timeseries": []}]},  # no instance ever ran
    answer(point("11:56"), point("11:57"), point("11:58")),  # points, none with a value
    answer(point("11:55"), point("11:56")),  # the aligned point has none either
])
def test_an_answer_without_values_is_none(body):
    assert monitor.window_value(body, "Average", SINCE) is None


def test_window_value_agrees_with_latest_value_on_one_point():
    body = answer(point("11:59", average=42.0))
    assert monitor.window_value(body, "Average", SINCE) == monitor.latest_value(body, "Average") == 42.0


# --- the request -------------------------------------------------------------------------------------------------

def query_of(path: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(path)
    query = parse_qs(parts.query, strict_parsing=True)
    assert all(len(v) == 1 for v in query.values()), query
    return parts.path, {k: v[0] for k, v in query.items()}


@pytest.mark.parametrize("grain, window, interval, start", [
    (60, 300, "PT1M", "2024-01-08T11:55:30Z"),
    (300, 3600, "PT5M", "2024-01-08T11:00:30Z"),
    (3600, 6 * 3600, "PT1H", "2024-01-08T06:00:30Z"),
    (90, 600, "PT1M30S", "2024-01-08T11:50:30Z"),
])
def test_metrics_path_asks_for_the_time_window_at_the_time_grain(grain, window, interval, start):
    path = monitor.metrics_path(SCALE_SET, "Percentage CPU", "Maximum", grain, window, T0)
    where, query = query_of(path)
    assert where == f"{SCALE_SET}/providers/Microsoft.Insights/metrics"
    assert query["metricnames"] == "Percentage CPU"
    assert query["aggregation"] == "maximum"
    assert query["interval"] == interval
    assert query["timespan"] == f"{start}/2024-01-08T12:00:30Z"
    assert query["api-version"]
    # the window the answer is read over starts where the request's timespan does
    assert query["timespan"].split("/")[0] == stamp(T0 - timedelta(seconds=window))


def test_metrics_path_encodes_metric_names_for_a_url():
    path = monitor.metrics_path(SCALE_SET, "Network In Total", "Total", 60, 300, T0)
    assert " " not in path and "Network%20In%20Total" in path
    assert query_of(path)[1]["metricnames"] == "Network In Total"


# --- status.autoscale after a restart ------------------------------------------------------------------------------

def stored(*decisions: dict, last_scale: datetime | None = None) -> dict:
    """status.autoscale as the API server hands it back (JSON), decisions given oldest first, stored newest first."""
    status = {"recentDecisions": list(reversed(decisions))}
    if last_scale is not None:
        status["lastScaleTime"] = stamp(last_scale)
    return json.loads(json.dumps(status))


def entry(seconds: float, frm, to, direction="None", reason="NoRuleFired", applied=False, **extra) -> dict:
    return {"time": stamp(at(seconds)), "from": frm, "to": to, "direction": direction, "profile": "default",
            "reason": reason, "message": "", "applied": applied, **extra}


def test_history_from_status_rebuilds_decisions_oldest_first_and_the_scale_events():
    status = stored(
        entry(-900, 2, 3, "Up", "RuleFired", True, rule="cpu_high", observed=81.5, threshold=75, recommendation=3),
        entry(-600, 3, 3, "None", "Cooldown", False, rule="cpu_high", observed=80, threshold=75),
        entry(-300, 3, 4, "Up", "RuleFired", False, recommendation=4),  # wanted but not written (ForecastOnly)
        entry(-60, 3, 2, "Down", "RuleFired", True, recommendation=2),
    )
    history = history_from_status(status, 2)
    assert [d.time for d in history.decisions] == [at(-900), at(-600), at(-300), at(-60)]
    first = history.decisions[0]
    assert (first.current, first.desired, first.direction, first.reason, first.rule, first.observed,
            first.threshold, first.recommendation, first.apply) == \
        (2, 3, Direction.UP, Reason.RULE_FIRED, "cpu_high", 81.5, 75, 3, True)
    assert history.decisions[1].recommendation == 3  # none stored: the count decided
    assert history.scale_events == (ScaleEvent(at(-900), 2, 3), ScaleEvent(at(-60), 3, 2))
    assert history.last_scale_time == at(-60)


@pytest.mark.parametrize("bad", [
    {"from": 2, "to": 3, "direction": "Up", "reason": "RuleFired", "applied": True},  # no time
    {"time": "yesterday", "from": 2, "to": 3, "direction": "Up", "reason": "RuleFired", "applied": True},
    {"time": None, "from": 2, "to": 3, "direction": "Up", "reason": "RuleFired", "applied": True},
    {"time": stamp(at(-30)), "from": 2, "to": 3, "direction": "Up", "reason": "GutFeeling", "applied": True},
    {"time": stamp(at(-30)), "from": 2, "to": 3, "direction": "Up", "applied": True},  # no reason
    {"time": stamp(at(-30)), "from": 2, "to": 3, "direction": "Sideways", "reason": "RuleFired", "applied": True},
    {"time": stamp(at(-30)), "from": 2, "to": 3, "direction": None, "reason": "RuleFired", "applied": True},
])
def test_history_from_status_ignores_malformed_entries(bad):
    good = entry(-600, 1, 2, "Up", "RuleFired", True)
    history = history_from_status({"recentDecisions": [bad, good]}, 2)
    assert [(d.time, d.current, d.desired) for d in history.decisions] == [(at(-600), 1, 2)]
    assert history.scale_events == (ScaleEvent(at(-600), 1, 2),)


def test_history_from_status_of_an_empty_status_is_empty():
    assert history_from_status({}, 3) == History()
    assert history_from_status({"recentDecisions": None, "lastScaleTime": None}, 3) == History()


def test_last_scale_time_beyond_the_kept_decisions_counts_for_cooldowns_only():
    status = stored(entry(-100, 4, 4, "None", "Cooldown"), last_scale=at(-200))
    history = history_from_status(status, 4)
    assert history.scale_events == (ScaleEvent(at(-200), 4, 4),)  # no change of the count: no rate-limit weight
    assert history.last_scale_time == at(-200)


def test_last_scale_time_of_a_kept_decision_is_not_counted_twice():
    status = stored(entry(-200, 2, 3, "Up", "RuleFired", True), entry(-100, 3, 3), last_scale=at(-200))
    assert history_from_status(status, 3).scale_events == (ScaleEvent(at(-200), 2, 3),)


def test_last_scale_time_is_sorted_among_the_events():
    status = stored(entry(-100, 2, 3, "Up", "RuleFired", True), last_scale=at(-50))
    assert [e.time for e in history_from_status(status, 3).scale_events] == [at(-100), at(-50)]


def test_last_scale_time_without_a_current_count_is_not_an_event():
    assert history_from_status(stored(last_scale=at(-60)), None).scale_events == ()


# --- a cooldown across a restart ---------------------------------------------------------------------------------

def spec_with_cooldown(cooldown: str = "5m"):
    rules = [
        {"name": "cpu_high", "azureMonitor": {"metricName": "Percentage CPU"}, "operator": "GreaterThan",
         "threshold": 75, "action": {"direction": "Increase", "type": "ChangeCount", "value": 1}, "cooldown": cooldown},
        {"name": "cpu_low", "azureMonitor": {"metricName": "Percentage CPU"}, "operator": "LessThan",
         "threshold": 25, "action": {"direction": "Decrease", "type": "ChangeCount", "value": 1}, "cooldown": cooldown},
    ]
    return parse_autoscale({"minReplicas": 1, "maxReplicas": 10, "evaluationInterval": "30s", "rules": rules})


def cpu(value: float, when: datetime) -> dict[str, Sample]:
    return {"cpu_high": Sample(value, when), "cpu_low": Sample(value, when)}


def restarted(decision: Decision, current: int) -> History:
    """What a new operator process starts from: the status the old one wrote, through the API server (JSON)."""
    status = stored(decision_status(decision, applied=True), last_scale=decision.time)
    return history_from_status(status, current)


def test_a_scale_out_cooldown_holds_across_a_restart():
    spec = spec_with_cooldown("5m")
    out = decide(2, cpu(90, T0), T0, spec, History())
    assert (out.desired, out.reason) == (3, Reason.RULE_FIRED)
    history = restarted(out, 3)

    later = at(120)
    assert decide(3, cpu(90, later), later, spec, History()).desired == 4  # without history it would scale again
    held = decide(3, cpu(90, later), later, spec, history)
    assert (held.desired, held.reason, held.direction) == (3, Reason.COOLDOWN, Direction.NONE)

    after = at(301)
    again = decide(3, cpu(90, after), after, spec, history)
    assert (again.desired, again.reason) == (4, Reason.RULE_FIRED)


def test_a_scale_in_cooldown_holds_across_a_restart():
    spec = spec_with_cooldown("10m")
    down = decide(5, cpu(10, T0), T0, spec, History())
    assert (down.desired, down.direction) == (4, Direction.DOWN)
    history = restarted(down, 4)
    held = decide(4, cpu(10, at(540)), at(540), spec, history)
    assert (held.desired, held.reason) == (4, Reason.COOLDOWN)
    assert decide(4, cpu(10, at(601)), at(601), spec, history).desired == 3


def test_only_last_scale_time_still_holds_the_cooldown():
    """The scale action itself fell out of recentDecisions (20 later decisions without a change)."""
    spec = spec_with_cooldown("5m")
    fillers = [entry(-(i + 1), 3, 3, "None", "Cooldown" if i % 2 else "NoRuleFired") for i in range(20)]
    history = history_from_status(stored(*reversed(fillers), last_scale=at(-120)), 3)
    assert decide(3, cpu(90, T0), T0, spec, history).reason == Reason.COOLDOWN
    assert decide(3, cpu(90, at(181)), at(181), spec, history).desired == 4


def test_a_decision_that_was_not_applied_starts_no_cooldown_after_a_restart():
    spec = spec_with_cooldown("5m")
    forecast = decide(2, cpu(90, T0), T0, spec, History())
    status = stored(decision_status(forecast, applied=False))  # e.g. ForecastOnly: no lastScaleTime either
    history = history_from_status(status, 2)
    assert decide(2, cpu(90, at(60)), at(60), spec, history).desired == 3


# --- decision_status -----------------------------------------------------------------------------------------------

def test_decision_status_writes_absent_values_as_null():
    decision = Decision(T0, None, None, Direction.NONE, Reason.DISABLED, "default", apply=False)
    written = decision_status(decision, False)
    for key in ("from", "to", "rule", "observed", "threshold", "recommendation"):
        assert key in written and written[key] is None, key
    assert written["applied"] is False and written["reason"] == "Disabled" and written["direction"] == "None"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_decision_status_writes_non_numbers_as_null(value):
    decision = Decision(T0, 2, 2, Direction.NONE, Reason.NO_RULE_FIRED, "default", observed=value, threshold=value)
    written = decision_status(decision, False)
    assert written["observed"] is None and written["threshold"] is None
    json.dumps(written, allow_nan=False)  # what the API server accepts


def test_decision_status_keeps_numbers_and_time_in_utc():
    moment = datetime(2024, 1, 8, 14, 0, 30, 999000, tzinfo=timezone(timedelta(hours=2)))
    decision = Decision(moment, 2, 3, Direction.UP, Reason.RULE_FIRED, "business-hours", rule="cpu_high",
                        observed=80.25, threshold=75.0, recommendation=3, message="rule cpu_high: 80.25 > 75: 2 -> 3")
    written = decision_status(decision, True)
    assert written["time"] == "2024-01-08T12:00:30Z"
    assert (written["from"], written["to"], written["direction"], written["profile"], written["rule"]) == \
        (2, 3, "Up", "business-hours", "cpu_high")
    assert (written["observed"], written["threshold"], written["recommendation"]) == (80.25, 75.0, 3)
    assert written["message"] == "rule cpu_high: 80.25 > 75: 2 -> 3" and written["applied"] is True


def test_decision_status_cuts_the_message_at_1024_characters():
    long = "".join(f"rule r{i}: {i} > 1; " for i in range(400))
    assert len(long) > 2000
    written = decision_status(Decision(T0, 2, 2, Direction.NONE, Reason.NO_RULE_FIRED, "default", message=long), False)
    assert len(written["message"]) == 1024 and long.startswith(written["message"])
    short = decision_status(Decision(T0, 2, 2, Direction.NONE, Reason.NO_RULE_FIRED, "default", message="ok"), False)
    assert short["message"] == "ok"


def test_decision_status_round_trips_through_history_from_status():
    decision = Decision(T0, 4, 3, Direction.DOWN, Reason.FLAPPING_AVOIDED, "default", rule="cpu_high",
                        observed=70.0, threshold=75.0, recommendation=3, message="x")
    rebuilt, = history_from_status(stored(decision_status(decision, True)), 3).decisions
    assert (rebuilt.time, rebuilt.current, rebuilt.desired, rebuilt.direction, rebuilt.reason, rebuilt.profile,
            rebuilt.rule, rebuilt.observed, rebuilt.threshold, rebuilt.recommendation) == \
        (T0, 4, 3, Direction.DOWN, Reason.FLAPPING_AVOIDED, "default", "cpu_high", 70.0, 75.0, 3)


# ---- hold_while_scaling: no second step on metrics that do not see the first one yet ----------------------------

def _up(now, current=2, desired=3):
    from azure_vm_operator.autoscale.decide import Decision, Direction, Reason

    return Decision(now, current, desired, Direction.UP, Reason.TARGET_TRACKING, "default", rule="cpu",
                    observed=90.0, threshold=60.0, recommendation=desired, message="rule cpu: 90 against 60")


def test_a_change_right_after_a_scale_is_held_until_the_new_instances_are_settled():
    from datetime import datetime, timedelta, timezone

    from azure_vm_operator.autoscale.decide import Direction, Reason, hold_while_scaling

    now = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
    held = hold_while_scaling(_up(now), settled=False, last_scale=now - timedelta(seconds=5))
    assert (held.current, held.desired, held.direction, held.reason) == (2, 2, Direction.NONE,
                                                                         Reason.SCALING_IN_PROGRESS)
    assert "2 -> 3" in held.message and held.rule == "cpu"
    assert hold_while_scaling(_up(now), settled=True, last_scale=now - timedelta(seconds=5)).desired == 3
    assert hold_while_scaling(_up(now), settled=False, last_scale=None).desired == 3  # no scale: nothing to wait for
    # an instance that never becomes ready does not stop the autoscaler for good
    assert hold_while_scaling(_up(now), settled=False, last_scale=now - timedelta(minutes=6)).desired == 3
    unchanged = _up(now, 2, 2)
    assert hold_while_scaling(unchanged, settled=False, last_scale=now) is unchanged


def test_the_bounds_are_never_held():
    from dataclasses import replace
    from datetime import datetime, timedelta, timezone

    from azure_vm_operator.autoscale.decide import Direction, Reason, hold_while_scaling

    now = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
    clamped = replace(_up(now, 6, 4), direction=Direction.DOWN, reason=Reason.CLAMPED_TO_MAX)
    assert hold_while_scaling(clamped, settled=False, last_scale=now - timedelta(seconds=5)) is clamped
