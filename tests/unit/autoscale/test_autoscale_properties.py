"""Properties of decide() over generated specs, loads and histories (hypothesis): bounds always respected, no
oscillation under a constant load, cooldowns honoured, any-out / all-in."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azure_vm_operator.autoscale.decide import Direction, History, Reason, Sample, ScaleEvent, decide, record
from azure_vm_operator.autoscale.spec import parse_autoscale

T0 = datetime(2024, 1, 8, 12, 0, tzinfo=timezone.utc)
INTERVAL = 60  # seconds: the specs' evaluationInterval
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COOLDOWNS = st.sampled_from(["0s", "1m", "2m", "3m"])


def action(draw, direction: str) -> dict:
    kind = draw(st.sampled_from(["ChangeCount", "PercentChangeCount", "ExactCount"] if direction == "Increase"
                                else ["ChangeCount", "PercentChangeCount"]))
    value = draw(st.integers(1, 3) if kind == "ChangeCount" else st.integers(10, 100) if kind != "ExactCount"
                 else st.integers(0, 20))
    return {"direction": direction, "type": kind, "value": value}


@st.composite
def specs(draw, targets: bool = True, behavior: bool = True, aggregation: str = "Average"):
    """Specs on one per-instance metric; mostly sane ones (out-rules above the in-rules, as users write them)."""
    sane = draw(st.booleans())
    low = draw(st.integers(0, 4))
    high = draw(st.integers(max(low, 1), 15))
    default = draw(st.integers(low, high))
    out_at = draw(st.lists(st.integers(30, 90), min_size=1, max_size=2))
    rules = [{"name": f"out{i}", "azureMonitor": {"aggregation": aggregation}, "operator": "GreaterThan",
              "threshold": t, "action": action(draw, "Increase"), "cooldown": draw(COOLDOWNS)}
             for i, t in enumerate(out_at)]
    rules += [{"name": f"in{i}", "azureMonitor": {"aggregation": aggregation}, "operator": "LessThan",
               "threshold": draw(st.integers(1, min(out_at) - 1) if sane else st.integers(1, 100)),
               "action": action(draw, "Decrease"),
               "cooldown": draw(COOLDOWNS)}
              for i in range(draw(st.integers(0, 2)))]
    if targets and draw(st.booleans()):
        rules.append({"name": "target", "azureMonitor": {"aggregation": aggregation},
                      "target": {"value": draw(st.integers(20, 80))}})
    raw = {"minReplicas": low, "maxReplicas": high, "defaultReplicas": default, "rules": rules,
           "evaluationInterval": f"{INTERVAL}s"}
    if behavior:
        raw["behavior"] = {
            "scaleUp": {"stabilizationWindowSeconds": draw(st.sampled_from([0, 60, 120])),
                        "policies": draw(st.sampled_from([[], [{"type": "Pods", "value": 2, "periodSeconds": 120}],
                                                           [{"type": "Percent", "value": 50,
                                                             "periodSeconds": 60}]]))},
            "scaleDown": {"stabilizationWindowSeconds": draw(st.sampled_from([0, 120, 300])),
                          "policies": draw(st.sampled_from([[], [{"type": "Pods", "value": 1,
                                                                  "periodSeconds": 60}]]))}}
    return parse_autoscale(raw)


def spread(spec, load: float, current: int, now: datetime) -> dict[str, Sample]:
    """The metric every rule reads: the load spread over the count (none at zero instances, as a per-instance
    metric of no instances)."""
    return {} if current == 0 else {r.name: Sample(load / current, now) for r in spec.rules}


def simulate(spec, loads, start: int) -> list[int]:
    """One decision per evaluation interval, each applied."""
    history, current, counts = History(), start, []
    for i, load in enumerate(loads):
        now = T0 + timedelta(seconds=INTERVAL * i)
        decision = decide(current, spread(spec, load, current, now), now, spec, history)
        history = record(history, decision, spec)
        counts.append(decision.desired)
        current = decision.desired
    return counts


@FAST
@given(spec=specs(), current=st.none() | st.integers(0, 1000),
       values=st.lists(st.none() | st.floats(-10, 1e4, allow_nan=False), min_size=6, max_size=6),
       events=st.lists(st.tuples(st.integers(0, 900), st.integers(0, 30), st.integers(0, 30)), max_size=4),
       recommendations=st.lists(st.tuples(st.integers(0, 900), st.integers(0, 1000)), max_size=4))
def test_bounds_are_always_respected(spec, current, values, events, recommendations):
    names = [r.name for r in spec.rules]
    samples = {n: Sample(v, T0) for n, v in zip(names, values) if v is not None}
    history = History(
        decisions=tuple(decide(rec, {}, T0 - timedelta(seconds=ago), spec) for ago, rec in sorted(recommendations,
                                                                                                   reverse=True)),
        scale_events=tuple(ScaleEvent(T0 - timedelta(seconds=ago), a, b) for ago, a, b in sorted(events,
                                                                                                 reverse=True)))
    decision = decide(current, samples, T0, spec, history)
    assert spec.min_replicas <= decision.desired <= spec.max_replicas
    assert decision.apply
    expected = Direction.NONE if current is None and decision.desired == 0 else \
        Direction.UP if current is None or decision.desired > current else \
        Direction.DOWN if decision.desired < current else Direction.NONE
    assert decision.direction == expected
    forecast = decide(current, samples, T0, replace(spec, mode="ForecastOnly"), history)
    assert (forecast.desired, forecast.reason, forecast.apply) == (decision.desired, decision.reason, False)


@FAST
@given(spec=specs(), load=st.floats(0, 3000, allow_nan=False), start=st.integers(0, 25))
def test_a_constant_load_converges_and_stays(spec, load, start):
    counts = simulate(spec, [load] * 300, start)
    settled = counts[-100:]
    assert len(set(settled)) == 1, counts  # converged, then stayed
    visited, previous = set(), start
    for count in counts:  # and never came back to a count it had left: no oscillation
        if count != previous:
            assert count not in visited, counts
            visited.add(previous)
            previous = count


@FAST
@given(spec=specs(targets=False, behavior=False),
       loads=st.lists(st.floats(0, 3000, allow_nan=False), min_size=30, max_size=60),
       start_share=st.floats(0, 1))
def test_cooldowns_are_honoured(spec, loads, start_share):
    start = max(1, round(spec.min_replicas + start_share * (spec.max_replicas - spec.min_replicas)))
    if start > spec.max_replicas:
        return
    cooldown = {r.name: r.threshold.cooldown for r in spec.rules}
    scale_in_cooldown = max((c for n, c in cooldown.items() if n.startswith("in")), default=0)
    history, current, last_change = History(), start, None
    for i, load in enumerate(loads):
        now = T0 + timedelta(seconds=INTERVAL * i)
        decision = decide(current, spread(spec, load, current, now), now, spec, history)
        if decision.desired != current and decision.reason != Reason.METRICS_MISSING:
            waited = (now - last_change).total_seconds() if last_change else float("inf")
            needed = cooldown[decision.rule] if decision.desired > current else scale_in_cooldown
            assert waited >= needed, (decision, waited)
            last_change = now
        history = record(history, decision, spec)
        current = decision.desired


def _expected(rules, values, current):
    """Any out-rule -> the largest result; else every in-rule -> the smallest step; else no change."""
    def result(rule):
        act = rule["action"]["value"]
        return current + act if rule["action"]["direction"] == "Increase" else max(0, current - act)

    fired = [r for r in rules if r["action"]["direction"] == "Increase" and values[r["name"]] > r["threshold"]]
    if fired:
        return max(result(r) for r in fired)
    ins = [r for r in rules if r["action"]["direction"] == "Decrease"]
    if ins and all(values[r["name"]] < r["threshold"] for r in ins):
        return max(result(r) for r in ins)
    return current


@settings(max_examples=200, deadline=None)
@given(data=st.data(), current=st.integers(1, 100), n_out=st.integers(0, 3), n_in=st.integers(0, 3))
def test_any_out_all_in(data, current, n_out, n_in):
    """Totals (never projected: the flapping guard stays out of it), ChangeCount steps, no cooldown history."""
    rules = [{"name": f"{direction}{i}", "azureMonitor": {"aggregation": "Total"},
              "operator": "GreaterThan" if direction == "out" else "LessThan",
              "threshold": data.draw(st.integers(0, 100)),
              "action": {"direction": "Increase" if direction == "out" else "Decrease",
                         "value": data.draw(st.integers(1, 5))}}
             for direction, n in (("out", n_out), ("in", n_in)) for i in range(n)]
    values = {r["name"]: data.draw(st.floats(-1, 101, allow_nan=False)) for r in rules}
    spec = parse_autoscale({"minReplicas": 0, "maxReplicas": 1000, "rules": rules})
    decision = decide(current, {n: Sample(v, T0) for n, v in values.items()}, T0, spec)
    assert decision.desired == _expected(rules, values, current)


@settings(max_examples=200, deadline=None)
@given(spec=specs(targets=False, behavior=False), current=st.integers(1, 15), metric=st.floats(0, 100))
def test_a_scale_in_never_lands_where_an_out_rule_fires(spec, current, metric):
    """The flapping guard: after a scale-in, the projected per-instance metric fires no out-rule."""
    decision = decide(current, {r.name: Sample(metric, T0) for r in spec.rules}, T0, spec)
    if decision.desired < current and decision.reason != Reason.CLAMPED_TO_MAX:
        assert decision.desired > 0 or metric == 0 or spec.default_replicas == 0
        projected = metric * current / decision.desired if decision.desired else 0
        assert not any(r.threshold.fires(projected) for r in spec.rules if r.threshold.action.direction == "Increase")
