"""The autoscaler's decision: a pure function of the current count, the latest samples, the clock, the spec and
the history of past decisions and scale actions. No I/O: the loop around it fetches metrics, writes the count
and keeps the history (``record``).

The order, each step working on the previous one's count:
1. profile: the one in force at ``now`` gives [min, max], defaultReplicas and the rules (profiles.py);
   no current count: defaultReplicas within [min, max] (ProfileDefault), nothing else;
2. readings: each rule's sample, or its last good value while no older than ``staleness`` (default
   2 x evaluationInterval); older or never seen: missing;
3. rules, as Azure autoscale: scale out if ANY out-rule fires (threshold rules with direction Increase, target
   rules asking for more), the largest result wins (RuleFired, TargetTracking); else scale in only if ALL in-rules
   agree (Decrease rules and target rules), the smallest step wins. A threshold rule may not act until its
   ``cooldown`` has passed since the last change of the count (Cooldown). A target rule asks for
   ceil(current x metric / value), or ceil(metric / averageValue), unless within HPA's 10 % tolerance;
4. flapping guard, as Azure: before scaling in, each out-rule's metric is projected onto the new count
   (metric x current / new, for per-instance metrics); a step after which an out-rule would fire at once is
   shrunk to the smallest count where none would, or skipped (FlappingAvoided);
5. missing metrics: never a scale-in; below defaultReplicas, defaultReplicas (MetricsMissing); healthy=False;
   the result so far is the *recommendation*, kept in the history for the stabilization windows;
6. behavior, as HPA: stabilization (scale up to the lowest recommendation of the scaleUp window, down to the
   highest of the scaleDown window: StabilizationWindow), then the rate policies (at most N instances or P % per
   period, selectPolicy Max/Min/Disabled: ScaleUpLimit, ScaleDownLimit);
7. bounds: the active profile's [min, max] always wins (ClampedToMin, ClampedToMax), cooldowns and behavior
   included.
Mode ForecastOnly decides the same and marks the decision as not to be applied; Disabled decides nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Callable, Mapping

from .profiles import active_profile
from .spec import SYMBOLS, AutoscaleSpec, Behavior, Profile, Rule, ScaleAction, ScalingRules

#: HPA's tolerance: a target rule leaves the count alone while metric / target is within 10 % of 1.
TOLERANCE = 0.1


class Direction(StrEnum):
    UP = "Up"
    DOWN = "Down"
    NONE = "None"


class Reason(StrEnum):
    RULE_FIRED = "RuleFired"
    TARGET_TRACKING = "TargetTracking"
    NO_RULE_FIRED = "NoRuleFired"
    IN_RULES_DISAGREE = "InRulesDisagree"
    COOLDOWN = "Cooldown"
    FLAPPING_AVOIDED = "FlappingAvoided"
    METRICS_MISSING = "MetricsMissing"
    PROFILE_DEFAULT = "ProfileDefault"
    STABILIZATION_WINDOW = "StabilizationWindow"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"
    CLAMPED_TO_MIN = "ClampedToMin"
    CLAMPED_TO_MAX = "ClampedToMax"
    DISABLED = "Disabled"
    SCALING_IN_PROGRESS = "ScalingInProgress"  #: set by the loop: the last count is not reached yet


@dataclass(frozen=True)
class Sample:
    """A rule's latest good value and when it was measured; ``error`` says the latest fetch failed (the value,
    if any, is then the last good one)."""

    value: float | None
    at: datetime | None
    error: str | None = None

    @classmethod
    def failed(cls, error: str, last: "Sample | None" = None) -> "Sample":
        return cls(last.value if last else None, last.at if last else None, error)


@dataclass(frozen=True)
class ScaleEvent:
    """A change of the count (made by the autoscaler, or any other the loop wants cooldowns to count)."""

    time: datetime
    from_replicas: int
    to_replicas: int


@dataclass(frozen=True)
class Decision:
    time: datetime
    current: int | None
    desired: int | None  #: None only when Disabled and there is no count
    direction: Direction
    reason: Reason
    profile: str
    healthy: bool = True  #: False: a metric is missing beyond its staleness bound
    apply: bool = True  #: False: ForecastOnly or Disabled, publish but never write
    rule: str | None = None
    observed: float | None = None
    threshold: float | None = None
    recommendation: int | None = None  #: the rules' count before behavior and bounds (stabilization input)
    message: str = ""


@dataclass(frozen=True)
class History:
    decisions: tuple[Decision, ...] = ()  #: oldest first
    scale_events: tuple[ScaleEvent, ...] = ()  #: oldest first

    @property
    def last_scale_time(self) -> datetime | None:
        return max((e.time for e in self.scale_events), default=None)


@dataclass(frozen=True)
class _Reading:
    rule: Rule
    value: float | None  #: None: missing
    note: str | None = None  #: why missing, or that a last good value stands in


@dataclass(frozen=True)
class _Step:
    count: int
    reason: Reason
    rule: str | None = None
    observed: float | None = None
    threshold: float | None = None
    message: str = ""


def _g(value: float) -> str:
    return f"{value:g}"


def _read(rule: Rule, sample: Sample | None, now: datetime, staleness: float) -> _Reading:
    if sample is None or sample.value is None or sample.at is None:
        return _Reading(rule, None, sample.error if sample and sample.error else "no value yet")
    if not math.isfinite(sample.value):
        return _Reading(rule, None, f"{sample.value} is not a number to act on")
    age = max(0.0, (now - sample.at).total_seconds())
    failing = f" ({sample.error})" if sample.error else ""
    if age > staleness:
        return _Reading(rule, None, f"last value {_g(sample.value)} is {age:.0f}s old, more than {staleness:g}s"
                                    + failing)
    note = f"last good value {_g(sample.value)} from {age:.0f}s ago stands in{failing}" if sample.error else None
    return _Reading(rule, sample.value, note)


def _act(action: ScaleAction, current: int) -> int:
    """The count a threshold rule's action asks for (ExactCount the wrong way asks for no change)."""
    if action.type == "ExactCount":
        wanted = action.value
        if (action.direction == "Increase") == (wanted > current):
            return wanted
        return current
    if action.type == "PercentChangeCount":
        share = current * action.value / 100
        step = max(1, math.ceil(share) if action.direction == "Increase" else math.floor(share))
    else:
        step = action.value
    return current + step if action.direction == "Increase" else max(0, current - step)


def _track(rule: Rule, current: int, metric: float) -> int:
    """HPA: ceil(current x metric / value), or ceil(metric / averageValue); no change within the tolerance."""
    assert rule.target is not None
    goal = rule.target.goal
    if rule.target.value is not None:
        if current == 0:
            return 0  # a per-instance metric of no instances says nothing: averageValue can scale from zero
        ratio = metric / goal
    elif current == 0:
        return max(0, math.ceil(metric / goal - 1e-9))
    else:
        ratio = metric / (goal * current)
    if abs(ratio - 1) <= TOLERANCE:
        return current
    wanted = current * ratio
    return max(0, math.ceil(wanted - 1e-9 * max(1.0, abs(wanted))))


def _describe(rule: Rule, value: float) -> str:
    if rule.threshold is not None:
        return f"rule {rule.name}: {_g(value)} {SYMBOLS[rule.threshold.operator]} {_g(rule.threshold.threshold)}"
    assert rule.target is not None
    kind = "value" if rule.target.value is not None else "averageValue"
    return f"rule {rule.name}: {_g(value)} against target {kind} {_g(rule.target.goal)}"


def _not_met(rule: Rule, value: float) -> str:
    assert rule.threshold is not None
    return (f"rule {rule.name}: {_g(value)} is not {SYMBOLS[rule.threshold.operator]} "
            f"{_g(rule.threshold.threshold)}")


def _fired(reading: _Reading, count: int, current: int) -> _Step:
    rule, value = reading.rule, float(reading.value or 0.0)
    limit = rule.threshold.threshold if rule.threshold else rule.target.goal if rule.target else None
    reason = Reason.RULE_FIRED if rule.threshold else Reason.TARGET_TRACKING
    return _Step(count, reason, rule.name, value, limit, f"{_describe(rule, value)}: {current} -> {count}")


def _project(reading: _Reading, current: int, count: int) -> float:
    """The metric the rule would read at ``count`` instances under the same load."""
    value = float(reading.value or 0.0)
    if not reading.rule.per_instance or count == current:
        return value
    if count == 0:
        return math.copysign(math.inf, value) if value else 0.0
    return value * current / count


def _rules(current: int, readings: list[_Reading], now: datetime, history: History) -> _Step:
    """Step 3: any out-rule scales out (largest result), all in-rules must agree to scale in (smallest step)."""
    last = history.last_scale_time

    def cooling(rule: Rule) -> float:
        """Seconds of the rule's cooldown still to run (0: it may act)."""
        if rule.threshold is None or last is None:
            return 0.0
        return max(0.0, rule.threshold.cooldown - (now - last).total_seconds())

    out: list[_Step] = []
    out_cooling: list[_Reading] = []
    ins: list[_Step] = []
    in_cooling: list[_Reading] = []
    against: list[str] = []
    in_rules = [r for r in readings
                if r.rule.target is not None or (r.rule.threshold and r.rule.threshold.action.direction == "Decrease")]
    for reading in readings:
        rule, value = reading.rule, reading.value
        if value is None:
            continue
        if rule.target is not None:
            count = _track(rule, current, value)
            if count > current:
                out.append(_fired(reading, count, current))
            elif count < current:
                ins.append(_fired(reading, count, current))
            else:
                against.append(f"{_describe(rule, value)} (asks for no change)")
            continue
        assert rule.threshold is not None
        fires = rule.threshold.fires(value)
        count = _act(rule.threshold.action, current)
        if rule.threshold.action.direction == "Increase":
            if fires and count > current and cooling(rule):
                out_cooling.append(reading)
            elif fires and count > current:
                out.append(_fired(reading, count, current))
        elif not fires:
            against.append(_not_met(rule, value))
        elif cooling(rule):
            in_cooling.append(reading)
        else:
            ins.append(_fired(reading, count, current))
    if out:
        return max(out, key=lambda step: step.count)  # the first of the largest
    if out_cooling:
        return _cooldown(out_cooling, current, cooling)
    if not in_rules:
        return _Step(current, Reason.NO_RULE_FIRED, message="no scale-out rule fired, and there is no scale-in rule")
    missing = [r.rule.name for r in readings if r.value is None]
    if missing:
        return _Step(current, Reason.METRICS_MISSING, message=f"no scale-in while {', '.join(missing)} "
                                                              "has no value")
    if against:
        reason = Reason.IN_RULES_DISAGREE if ins or in_cooling else Reason.NO_RULE_FIRED
        values = ", ".join(f"{r.rule.name} {_g(r.value)}" for r in readings if r.value is not None)
        return _Step(current, reason, message=f"no rule fired ({values})" if reason is Reason.NO_RULE_FIRED else
                     "scale-in needs every scale-in rule: " + "; ".join(against))
    if in_cooling:
        return _cooldown(in_cooling, current, cooling)
    smallest = max(ins, key=lambda step: step.count)
    if smallest.count >= current:
        return _Step(current, Reason.NO_RULE_FIRED, message=f"the scale-in rules agree, but {current} cannot go lower")
    return smallest


def _cooldown(readings: list[_Reading], current: int, cooling: Callable[[Rule], float]) -> _Step:
    reading = readings[0]
    rule = reading.rule
    assert rule.threshold is not None and reading.value is not None
    return _Step(current, Reason.COOLDOWN, rule.name, reading.value, rule.threshold.threshold,
                 f"{_describe(rule, reading.value)}, but its cooldown has {cooling(rule):.0f}s to run")


def _flapping_guard(current: int, step: _Step, readings: list[_Reading], profile: Profile) -> _Step:
    """Step 4: shrink or skip a scale-in after which an out-rule would fire at once.

    Zero instances is a flap of its own while defaultReplicas is above it: the metrics go missing with the last
    instance, and missing metrics scale straight back to defaultReplicas."""
    outs = [r for r in readings
            if r.value is not None and r.rule.threshold and r.rule.threshold.action.direction == "Increase"]

    def flap(count: int) -> _Step | None:
        """Why ``count`` would scale out again at once (the rule, its projected value, its threshold)."""
        if count == 0 and profile.default_replicas > 0 and readings:
            return _Step(count, Reason.FLAPPING_AVOIDED, message=(
                f"at 0 instances the metrics go missing and defaultReplicas {profile.default_replicas} would "
                "scale out again (defaultReplicas 0 allows scaling to zero)"))
        for reading in outs:
            projected = _project(reading, current, count)
            assert reading.rule.threshold is not None
            if reading.rule.threshold.fires(projected):
                return _Step(count, Reason.FLAPPING_AVOIDED, reading.rule.name, projected,
                             reading.rule.threshold.threshold,
                             f"at {count} instances rule {reading.rule.name} would read about {_g(projected)} "
                             f"{SYMBOLS[reading.rule.threshold.operator]} {_g(reading.rule.threshold.threshold)} "
                             "and scale out again")
        return None

    count, first = step.count, flap(step.count)
    if first is None:
        return step
    while count < current and flap(count):
        count += 1
    what = f"{current} -> {count} instead" if count < current else f"staying at {current}"
    return replace(first, count=count, message=f"{step.message}; {first.message}: {what}")


def _missing(current: int, step: _Step, readings: list[_Reading], profile: Profile) -> _Step:
    """Step 5: without a metric, never in; below defaultReplicas, up to it."""
    notes = "; ".join(f"{r.rule.name}: {r.note}" for r in readings if r.value is None)
    default = profile.default_replicas
    if current < default and step.count < default:
        return _Step(default, Reason.METRICS_MISSING,
                     message=f"metrics missing ({notes}): up to defaultReplicas {default}")
    if step.count > current:
        return replace(step, message=f"{step.message}; metrics missing ({notes})")
    return _Step(current, Reason.METRICS_MISSING,
                 message=f"metrics missing ({notes}): holding at {current}, never scaling in without them")


def _stabilize(current: int, recommendation: int, now: datetime, behavior: Behavior,
               history: History) -> tuple[int, str | None]:
    """Step 6a, as HPA: up to the lowest recommendation of the scaleUp window, down to the highest of the
    scaleDown window."""
    def within(seconds: int) -> list[int]:
        cutoff = now - timedelta(seconds=seconds)
        return [d.recommendation for d in history.decisions
                if seconds and d.recommendation is not None and d.time > cutoff]

    up = min([recommendation, *within(behavior.scale_up.stabilization_window_seconds)])
    down = max([recommendation, *within(behavior.scale_down.stabilization_window_seconds)])
    count = current
    if count < up:
        count = up
    if count > down:
        count = down
    if count == recommendation:
        return count, None
    if recommendation > current:
        window, which, value = behavior.scale_up.stabilization_window_seconds, "lowest", up
    else:
        window, which, value = behavior.scale_down.stabilization_window_seconds, "highest", down
    return count, (f"behavior stabilization window {window}s: the {which} recommendation in it is {value}, "
                   f"so {current} -> {count} rather than {recommendation}")


def _rate_limit(current: int, count: int, now: datetime, rules: ScalingRules, events: tuple[ScaleEvent, ...]) -> int:
    """Step 6b, as HPA: the furthest ``count`` may go from ``current`` under the direction's policies."""
    up = count > current
    if rules.select_policy == "Disabled":
        return current
    if not rules.policies:
        return count
    limits = []
    for policy in rules.policies:
        cutoff = now - timedelta(seconds=policy.period_seconds)
        recent = [e for e in events if e.time > cutoff]
        added = sum(e.to_replicas - e.from_replicas for e in recent if e.to_replicas > e.from_replicas)
        removed = sum(e.from_replicas - e.to_replicas for e in recent if e.to_replicas < e.from_replicas)
        start = current - added + removed
        if up:
            limits.append(start + policy.value if policy.type == "Pods"
                          else math.ceil(start * (1 + policy.value / 100)))
        else:
            limits.append(start - policy.value if policy.type == "Pods"
                          else int(start * (1 - policy.value / 100)))
    widest = (max if up else min)(limits) if rules.select_policy == "Max" else (min if up else max)(limits)
    return min(count, max(widest, current)) if up else max(count, min(widest, current))


def decide(current: int | None, samples: Mapping[str, Sample], now: datetime, spec: AutoscaleSpec,
           history: History = History(), *, staleness: float | None = None) -> Decision:
    """What the count should be at ``now`` (timezone-aware), and why. See the module's docstring for the order."""
    profile = active_profile(spec, now)
    if spec.mode == "Disabled":
        return Decision(now, current, current, Direction.NONE, Reason.DISABLED, profile.name, apply=False,
                        message="autoscale mode is Disabled: the count is left to spec.replicas")
    apply = spec.mode == "Enabled"
    forecast = "" if apply else " (ForecastOnly: not applied)"
    if current is None:
        first = profile.clamp(profile.default_replicas)
        return Decision(now, None, first, Direction.UP if first else Direction.NONE, Reason.PROFILE_DEFAULT,
                        profile.name, apply=apply, recommendation=first,
                        message=f"no count yet: defaultReplicas {first} of profile {profile.name}{forecast}")
    bound = 2 * spec.evaluation_interval if staleness is None else staleness
    readings = [_read(rule, samples.get(rule.name), now, bound) for rule in profile.rules]
    step = _rules(current, readings, now, history)
    if step.count < current:
        step = _flapping_guard(current, step, readings, profile)
    healthy = all(r.value is not None for r in readings)
    if not healthy:
        step = _missing(current, step, readings, profile)
    notes = [f"{r.rule.name}: {r.note}" for r in readings if r.value is not None and r.note]
    messages = [step.message, *notes]
    reason = step.reason

    count, held = _stabilize(current, step.count, now, spec.behavior, history)
    if held:
        reason = Reason.STABILIZATION_WINDOW
        messages.append(held)
    if count != current:
        up = count > current
        rules = spec.behavior.scale_up if up else spec.behavior.scale_down
        limited = _rate_limit(current, count, now, rules, history.scale_events)
        if limited != count:
            reason = Reason.SCALE_UP_LIMIT if up else Reason.SCALE_DOWN_LIMIT
            name = "scaleUp" if up else "scaleDown"
            why = "selectPolicy Disabled" if rules.select_policy == "Disabled" else "policies"
            messages.append(f"behavior.{name} {why} allow {current} -> {limited} now")
            count = limited
    bounded = profile.clamp(count)
    if bounded != count:
        reason = Reason.CLAMPED_TO_MIN if bounded > count else Reason.CLAMPED_TO_MAX
        side = "minReplicas" if bounded > count else "maxReplicas"
        messages.append(f"{side} of profile {profile.name} is {bounded}")
    direction = Direction.UP if bounded > current else Direction.DOWN if bounded < current else Direction.NONE
    return Decision(now, current, bounded, direction, reason, profile.name, healthy=healthy, apply=apply,
                    rule=step.rule, observed=step.observed, threshold=step.threshold,
                    recommendation=step.count, message="; ".join(m for m in messages if m) + forecast)


def horizon(spec: AutoscaleSpec) -> timedelta:
    """How far back a decision can look: the longest stabilization window, policy period or cooldown."""
    behavior = [spec.behavior.scale_up, spec.behavior.scale_down]
    seconds = [spec.evaluation_interval, *(b.stabilization_window_seconds for b in behavior),
               *(p.period_seconds for b in behavior for p in b.policies),
               *(r.threshold.cooldown for r in spec.all_rules().values() if r.threshold)]
    return timedelta(seconds=max(seconds))


def record(history: History, decision: Decision, spec: AutoscaleSpec, applied: bool | None = None) -> History:
    """The history after ``decision``, with a scale event when it changed the count (``applied``: whether the
    loop wrote it, by default ``decision.apply``), and nothing older than the spec can look back to."""
    events = history.scale_events
    applied = decision.apply if applied is None else applied
    if applied and decision.current is not None and decision.desired is not None \
            and decision.desired != decision.current:
        events = (*events, ScaleEvent(decision.time, decision.current, decision.desired))
    cutoff = decision.time - horizon(spec)
    return History(decisions=tuple(d for d in (*history.decisions, decision) if d.time > cutoff),
                   scale_events=tuple(e for e in events if e.time > cutoff))


#: how long after a scale action a decision may wait for the instances to be ready (HPA's CPU initialization
#: period): an instance that never becomes ready does not stop the autoscaler for good
SCALING_HOLD = timedelta(minutes=5)


#: decisions that do not read the metrics: the profile's bounds always win
_NOT_HELD = (Reason.CLAMPED_TO_MIN, Reason.CLAMPED_TO_MAX, Reason.PROFILE_DEFAULT)


def hold_while_scaling(decision: Decision, settled: bool, last_scale: datetime | None) -> Decision:
    """The loop's guard against acting on metrics that do not yet see the last change. ``settled``: the scale set
    had all of the current count running and ready already at an earlier evaluation, so the metrics read now
    include them (an instance still being created reports no CPU, and a scrape may lag one interval: acting on
    such a reading overshoots; HPA leaves fresh pods out likewise). Until then, within SCALING_HOLD of the last
    scale action, a decision to change the count again is held."""
    if settled or decision.current is None or decision.desired is None or decision.desired == decision.current \
            or last_scale is None or decision.time - last_scale > SCALING_HOLD or decision.reason in _NOT_HELD:
        return decision
    return replace(decision, desired=decision.current, direction=Direction.NONE, reason=Reason.SCALING_IN_PROGRESS,
                   message=f"holding {decision.current} -> {decision.desired} until the metrics include the "
                           f"{decision.current} instances of the last scale ({decision.message})")
