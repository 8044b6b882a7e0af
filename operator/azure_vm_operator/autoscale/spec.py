"""Typed view of ``ScaleSet.spec.autoscale`` (issue #9): bounds, rules, HPA-like behavior and profiles.

The default profile is the top level of ``spec.autoscale`` (``minReplicas``, ``maxReplicas``, ``defaultReplicas``,
``rules``); each entry of ``profiles`` is a recurrence or fixed-date window that overrides those bounds and, when it
has a ``rules`` list of its own, the rules. Everything a profile leaves out is inherited from the top level, so
the parsed profiles are complete: nothing downstream needs to know where a value came from.

Defaults the issue does not name: ``minReplicas`` 1, ``defaultReplicas`` the (profile's) ``minReplicas``,
``azureMonitor.aggregation`` Average, ``action.type`` ChangeCount, ``behavior.*.selectPolicy`` Max, no rate
policies, ``behavior.scaleUp.stabilizationWindowSeconds`` 0 and ``behavior.scaleDown.stabilizationWindowSeconds``
300 (HPA's) when a rule tracks a target, else 0 (threshold rules have Azure's cooldowns instead).
"""

from __future__ import annotations

import math
import operator as op
import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from ..api.fields import Field, SpecError
from ..api.scaleset import parse_duration

ROOT = "spec.autoscale"
MAX_REPLICAS = 1000  #: as spec.replicas
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DEFAULT_PROFILE = "default"

#: The threshold operators, with their symbols for messages.
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThan": op.gt, "GreaterThanOrEqual": op.ge, "LessThan": op.lt, "LessThanOrEqual": op.le,
    "Equals": op.eq, "NotEquals": op.ne,
}
SYMBOLS = {"GreaterThan": ">", "GreaterThanOrEqual": ">=", "LessThan": "<", "LessThanOrEqual": "<=",
           "Equals": "==", "NotEquals": "!="}

#: A rule's enum-valued or defaulted fields, relative to the rule: the default profile's rules and every
#: profile's rules declare them alike.
RULE_FIELDS: dict[str, Field] = {
    "azureMonitor.metricName": Field(default="Percentage CPU"),
    "azureMonitor.aggregation": Field(("Average", "Minimum", "Maximum", "Total", "Count"), "Average"),
    "azureMonitor.timeGrain": Field(default="1m"),
    "azureMonitor.timeWindow": Field(default="5m"),
    "operator": Field(tuple(COMPARISONS)),
    "action.direction": Field(("Increase", "Decrease")),
    "action.type": Field(("ChangeCount", "PercentChangeCount", "ExactCount"), "ChangeCount"),
    "cooldown": Field(fallback="5m"),  #: not a CRD default: target rules take no cooldown
}

#: behavior.scaleUp / behavior.scaleDown, relative to either.
SCALING_FIELDS: dict[str, Field] = {
    "selectPolicy": Field(("Max", "Min", "Disabled"), "Max"),
    "policies[].type": Field(("Pods", "Percent")),
}

#: Every enum-valued or defaulted field of spec.autoscale, as a CRD must declare it (in the style of
#: api/scaleset.py: FIELDS, so that the CRD can be checked against it).
FIELDS: dict[str, Field] = {
    f"{ROOT}.minReplicas": Field(default=1),
    f"{ROOT}.evaluationInterval": Field(default="60s"),
    f"{ROOT}.mode": Field(("Enabled", "ForecastOnly", "Disabled"), "Enabled"),
    **{f"{ROOT}.rules[].{key}": f for key, f in RULE_FIELDS.items()},
    f"{ROOT}.behavior.scaleUp.stabilizationWindowSeconds": Field(default=0),
    **{f"{ROOT}.behavior.{d}.{key}": f for d in ("scaleUp", "scaleDown") for key, f in SCALING_FIELDS.items()},
    f"{ROOT}.profiles[].recurrence.days[]": Field(DAYS),
    **{f"{ROOT}.profiles[].rules[].{key}": f for key, f in RULE_FIELDS.items()},
}

CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class AzureMonitorMetric:
    """A platform metric of the scale set, read through the Azure Monitor metrics API."""

    metric_name: str = "Percentage CPU"
    aggregation: str = "Average"  #: Average | Minimum | Maximum | Total | Count
    time_grain: float = 60.0  #: seconds
    time_window: float = 300.0  #: seconds


@dataclass(frozen=True)
class PrometheusQuery:
    query: str
    server_address: str | None = None  #: None: the operator's --prometheus-url


MetricSource = AzureMonitorMetric | PrometheusQuery


@dataclass(frozen=True)
class ScaleAction:
    direction: str  #: Increase | Decrease
    type: str  #: ChangeCount | PercentChangeCount | ExactCount
    value: int


@dataclass(frozen=True)
class Threshold:
    """Azure autoscale's decision form: when ``metric <operator> threshold``, take ``action``."""

    operator: str
    threshold: float
    action: ScaleAction
    cooldown: float = 300.0  #: seconds after any change of the count before this rule may act again

    def fires(self, value: float) -> bool:
        return COMPARISONS[self.operator](value, self.threshold)


@dataclass(frozen=True)
class Target:
    """HPA's decision form: exactly one of the two is set.

    ``value``: the metric is per instance (an average) and is held at this value, desired = ceil(current x
    metric / value). ``averageValue``: the metric is the set's total and each instance should carry this much,
    desired = ceil(metric / averageValue) (the same formula with the metric averaged over the current count)."""

    value: float | None = None
    average_value: float | None = None

    @property
    def goal(self) -> float:
        return self.value if self.value is not None else float(self.average_value or 0.0)


@dataclass(frozen=True)
class Rule:
    name: str
    source: MetricSource
    threshold: Threshold | None = None  #: exactly one of threshold and target
    target: Target | None = None

    @property
    def per_instance(self) -> bool:
        """Whether the metric is a per-instance statistic that spreads over the count (what the flapping guard
        projects). Totals and counts are the set's whole load; a PromQL query is taken to be per instance (the
        guard then errs on the side of keeping instances)."""
        if isinstance(self.source, AzureMonitorMetric):
            return self.source.aggregation in ("Average", "Minimum", "Maximum")
        return True


@dataclass(frozen=True)
class Recurrence:
    """A weekly window in a time zone; a window whose end is not after its start runs past midnight and belongs
    to the day it starts (start == end: 24 hours)."""

    days: tuple[str, ...]
    start: time
    end: time
    time_zone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class FixedDate:
    start: datetime  #: inclusive, timezone-aware
    end: datetime  #: exclusive


@dataclass(frozen=True)
class Profile:
    """Bounds and rules in force: the default profile, or a window's with what it leaves out inherited."""

    name: str
    min_replicas: int
    max_replicas: int
    default_replicas: int
    rules: tuple[Rule, ...] = ()
    recurrence: Recurrence | None = None
    fixed_date: FixedDate | None = None

    def clamp(self, count: int) -> int:
        return max(self.min_replicas, min(self.max_replicas, count))


@dataclass(frozen=True)
class ScalingPolicy:
    type: str  #: Pods | Percent
    value: int
    period_seconds: int


@dataclass(frozen=True)
class ScalingRules:
    stabilization_window_seconds: int = 0
    policies: tuple[ScalingPolicy, ...] = ()  #: none: no limit on the step
    select_policy: str = "Max"  #: Max | Min | Disabled


@dataclass(frozen=True)
class Behavior:
    scale_up: ScalingRules = ScalingRules()
    scale_down: ScalingRules = ScalingRules()


@dataclass(frozen=True)
class AutoscaleSpec:
    default: Profile
    profiles: tuple[Profile, ...] = ()
    evaluation_interval: float = 60.0  #: seconds
    mode: str = "Enabled"  #: Enabled | ForecastOnly | Disabled
    behavior: Behavior = Behavior()

    @property
    def min_replicas(self) -> int:
        return self.default.min_replicas

    @property
    def max_replicas(self) -> int:
        return self.default.max_replicas

    @property
    def default_replicas(self) -> int:
        return self.default.default_replicas

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.default.rules

    def all_rules(self) -> dict[str, Rule]:
        """Every rule of every profile by name (a name means one metric wherever it appears)."""
        return {r.name: r for p in (self.default, *self.profiles) for r in p.rules}


# --- parsing ---------------------------------------------------------------------------------------------------

def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where} must be an object, not {raw!r}")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SpecError(f"{where} must be a list, not {raw!r}")
    return raw


def _required(field: Field, value: Any, where: str) -> Any:
    picked = field.pick(value, where)
    if picked is None:
        raise SpecError(f"{where} is required" + (f": one of {', '.join(field.enum)}" if field.enum else ""))
    return picked


def _integer(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise SpecError(f"{where} must be a whole number, not {value!r}")
    if not low <= int(value) <= high:
        raise SpecError(f"{where} must be between {low} and {high}, not {int(value)}")
    return int(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{where} must be a number, not {value!r}")
    return float(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where} is required (a non-empty string)")
    return value


def _duration(field: Field, value: Any, where: str, minimum: float) -> float:
    text = str(field.pick(value, where))
    seconds = parse_duration(text, where)
    if seconds < minimum:
        raise SpecError(f"{where} must be at least {_seconds(minimum)}, not {text}")
    return seconds


def _seconds(value: float) -> str:
    """60 -> 1m, 90 -> 1m30s: durations in messages as the user writes them."""
    minutes, seconds = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{seconds}s" if seconds else "")
    return text or "0s"


def _source(raw: Mapping[str, Any], where: str) -> MetricSource:
    given = [key for key in ("azureMonitor", "prometheus") if raw.get(key) is not None]
    if len(given) != 1:
        raise SpecError(f"{where} needs exactly one metric source, azureMonitor or prometheus"
                        + (f" (it has {' and '.join(given)})" if given else ""))
    if given[0] == "prometheus":
        prom = _mapping(raw["prometheus"], f"{where}.prometheus")
        address = prom.get("serverAddress")
        if address is not None and not re.match(r"https?://", str(address)):
            raise SpecError(f"{where}.prometheus.serverAddress must be an http:// or https:// URL, not {address!r}")
        return PrometheusQuery(_text(prom.get("query"), f"{where}.prometheus.query"),
                               str(address) if address else None)
    monitor = _mapping(raw["azureMonitor"], f"{where}.azureMonitor")
    at = f"{where}.azureMonitor"
    grain = _duration(RULE_FIELDS["azureMonitor.timeGrain"], monitor.get("timeGrain"), f"{at}.timeGrain", 60)
    window = _duration(RULE_FIELDS["azureMonitor.timeWindow"], monitor.get("timeWindow"), f"{at}.timeWindow", 60)
    if window < grain:
        raise SpecError(f"{at}.timeWindow ({_seconds(window)}) must be at least its timeGrain ({_seconds(grain)})")
    return AzureMonitorMetric(
        metric_name=_text(RULE_FIELDS["azureMonitor.metricName"].pick(monitor.get("metricName"), at),
                          f"{at}.metricName"),
        aggregation=str(RULE_FIELDS["azureMonitor.aggregation"].pick(monitor.get("aggregation"),
                                                                      f"{at}.aggregation")),
        time_grain=grain, time_window=window)


def _threshold(raw: Mapping[str, Any], where: str) -> Threshold:
    for key in ("operator", "threshold", "action"):
        if raw.get(key) is None:
            raise SpecError(f"{where}.{key} is required for a threshold rule (operator, threshold, action; "
                            "or give a target instead)")
    action_raw = _mapping(raw["action"], f"{where}.action")
    direction = str(_required(RULE_FIELDS["action.direction"], action_raw.get("direction"),
                              f"{where}.action.direction"))
    kind = str(RULE_FIELDS["action.type"].pick(action_raw.get("type"), f"{where}.action.type"))
    if action_raw.get("value") is None:
        raise SpecError(f"{where}.action.value is required (how many instances, a percentage or the exact count)")
    low = 0 if kind == "ExactCount" else 1
    high = 100 if kind == "PercentChangeCount" and direction == "Decrease" else MAX_REPLICAS
    value = _integer(action_raw["value"], f"{where}.action.value", low, high)
    return Threshold(
        operator=str(_required(RULE_FIELDS["operator"], raw["operator"], f"{where}.operator")),
        threshold=_number(raw["threshold"], f"{where}.threshold"),
        action=ScaleAction(direction, kind, value),
        cooldown=_duration(RULE_FIELDS["cooldown"], raw.get("cooldown"), f"{where}.cooldown", 0))


def _target(raw: Any, where: str) -> Target:
    target = _mapping(raw, f"{where}.target")
    given = [key for key in ("averageValue", "value") if target.get(key) is not None]
    if len(given) != 1:
        raise SpecError(f"{where}.target needs exactly one of averageValue (per instance, of a total metric) "
                        "and value (of a per-instance metric)")
    goal = _number(target[given[0]], f"{where}.target.{given[0]}")
    if goal <= 0:
        raise SpecError(f"{where}.target.{given[0]} must be greater than 0, not {target[given[0]]!r}")
    return Target(value=goal) if given[0] == "value" else Target(average_value=goal)


def _rule(raw: Any, where: str) -> Rule:
    rule = _mapping(raw, where)
    name = _text(rule.get("name"), f"{where}.name")
    source = _source(rule, where)
    threshold_keys = [key for key in ("operator", "threshold", "action", "cooldown") if rule.get(key) is not None]
    if rule.get("target") is not None:
        if threshold_keys:
            raise SpecError(f"{where} has a target and {', '.join(threshold_keys)}: a rule either tracks a target "
                            "(HPA) or acts on a threshold (Azure autoscale), not both")
        return Rule(name, source, target=_target(rule["target"], where))
    if not threshold_keys:
        raise SpecError(f"{where} needs a decision: operator, threshold and action (Azure autoscale), "
                        "or target (HPA)")
    return Rule(name, source, threshold=_threshold(rule, where))


def _rules(raw: Any, where: str) -> tuple[Rule, ...]:
    rules = tuple(_rule(r, f"{where}[{i}]") for i, r in enumerate(_list(raw, where)))
    names = [r.name for r in rules]
    for name in names:
        if names.count(name) > 1:
            raise SpecError(f"{where}: the rule name {name!r} appears more than once (names identify rules in "
                            "decisions, Events and metrics)")
    return rules


def _bounds(raw: Mapping[str, Any], where: str, inherited: Profile | None) -> tuple[int, int, int]:
    """(min, max, default) as given, else inherited; an inherited default is brought into the range."""
    def count(key: str) -> int | None:
        value = raw.get(key)
        return None if value is None else _integer(value, f"{where}.{key}", 0, MAX_REPLICAS)

    low, high, default = count("minReplicas"), count("maxReplicas"), count("defaultReplicas")
    if inherited is None:
        low = int(FIELDS[f"{ROOT}.minReplicas"].default) if low is None else low
        if high is None:
            raise SpecError(f"{where}.maxReplicas is required")
    else:
        low = inherited.min_replicas if low is None else low
        high = inherited.max_replicas if high is None else high
    source = "" if inherited is None else f" (with what it leaves out taken from {ROOT})"
    if low > high:
        raise SpecError(f"{where}: minReplicas {low} is greater than maxReplicas {high}{source}")
    if default is None:
        default = max(low, min(high, inherited.default_replicas if inherited else low))
    elif not low <= default <= high:
        raise SpecError(f"{where}.defaultReplicas {default} is outside [minReplicas {low}, maxReplicas {high}]"
                        f"{source}")
    return low, high, default


def _clock(value: Any, where: str, end: bool) -> time:
    text = str(value) if value is not None else ""
    if end and text == "24:00":
        return time(0, 0)
    match = CLOCK.fullmatch(text)
    if not match:
        raise SpecError(f"{where} must be a time of day HH:MM (00:00 to 23:59{', or 24:00' if end else ''}), "
                        f"not {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def _recurrence(raw: Any, where: str) -> Recurrence:
    rec = _mapping(raw, where)
    day_field = FIELDS[f"{ROOT}.profiles[].recurrence.days[]"]
    given = {str(_required(day_field, d, f"{where}.days[{i}]")) for i, d in enumerate(_list(rec.get("days"),
                                                                                          f"{where}.days"))}
    if not given:
        raise SpecError(f"{where}.days needs at least one day ({', '.join(DAYS)})")
    name = rec.get("timeZone")
    if not name:
        raise SpecError(f"{where}.timeZone is required: an IANA time zone name such as Europe/Berlin or UTC")
    try:
        ZoneInfo(str(name))
    except (KeyError, ValueError, OSError):
        raise SpecError(f"{where}.timeZone: {name!r} is not an IANA time zone name (such as Europe/Berlin, "
                        "America/New_York or UTC)") from None
    return Recurrence(days=tuple(d for d in DAYS if d in given), start=_clock(rec.get("start"), f"{where}.start",
                                                                              end=False),
                      end=_clock(rec.get("end"), f"{where}.end", end=True), time_zone=str(name))


def _instant(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        instant = value
    else:
        try:
            instant = datetime.fromisoformat(str(value))
        except ValueError:
            raise SpecError(f"{where} must be an RFC 3339 date-time such as 2024-12-24T08:00:00+01:00, "
                            f"not {value!r}") from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise SpecError(f"{where} needs a UTC offset (RFC 3339), e.g. 2024-12-24T08:00:00+01:00 or "
                        f"2024-12-24T07:00:00Z, not {value!r}")
    return instant


def _fixed_date(raw: Any, where: str) -> FixedDate:
    window = _mapping(raw, where)
    for key in ("start", "end"):
        if window.get(key) is None:
            raise SpecError(f"{where}.{key} is required (RFC 3339)")
    start, end = _instant(window["start"], f"{where}.start"), _instant(window["end"], f"{where}.end")
    if end <= start:
        raise SpecError(f"{where}: end {window['end']} must be after start {window['start']}")
    return FixedDate(start, end)


def _profile(raw: Any, where: str, base: Profile) -> Profile:
    profile = _mapping(raw, where)
    name = _text(profile.get("name"), f"{where}.name")
    if name == DEFAULT_PROFILE:
        raise SpecError(f"{where}.name: {DEFAULT_PROFILE!r} is the name of {ROOT} itself; choose another")
    windows = [key for key in ("recurrence", "fixedDate") if profile.get(key) is not None]
    if len(windows) != 1:
        raise SpecError(f"{where} needs exactly one window, recurrence or fixedDate"
                        + (" (it has both)" if windows else ""))
    low, high, default = _bounds(profile, where, base)
    rules = base.rules if profile.get("rules") is None else _rules(profile["rules"], f"{where}.rules")
    return Profile(
        name=name, min_replicas=low, max_replicas=high, default_replicas=default, rules=rules,
        recurrence=_recurrence(profile["recurrence"], f"{where}.recurrence") if windows == ["recurrence"] else None,
        fixed_date=_fixed_date(profile["fixedDate"], f"{where}.fixedDate") if windows == ["fixedDate"] else None)


def _scaling(raw: Any, where: str, window_default: int) -> ScalingRules:
    rules = _mapping(raw, where)
    window = rules.get("stabilizationWindowSeconds")
    policies = []
    for i, item in enumerate(_list(rules.get("policies"), f"{where}.policies")):
        at = f"{where}.policies[{i}]"
        policy = _mapping(item, at)
        policies.append(ScalingPolicy(
            type=str(_required(SCALING_FIELDS["policies[].type"], policy.get("type"), f"{at}.type")),
            value=_integer(policy.get("value"), f"{at}.value", 1, 100_000),
            period_seconds=_integer(policy.get("periodSeconds"), f"{at}.periodSeconds", 1, 1800)))
    return ScalingRules(
        stabilization_window_seconds=(window_default if window is None else
                                      _integer(window, f"{where}.stabilizationWindowSeconds", 0, 3600)),
        policies=tuple(policies),
        select_policy=str(SCALING_FIELDS["selectPolicy"].pick(rules.get("selectPolicy"), f"{where}.selectPolicy")))


def _same_metric_per_name(profiles: tuple[Profile, ...]) -> None:
    """Samples and last good values are kept by rule name: one name must mean one metric in every profile."""
    seen: dict[str, tuple[MetricSource, str]] = {}
    for profile in profiles:
        for rule in profile.rules:
            first = seen.setdefault(rule.name, (rule.source, profile.name))
            if first[0] != rule.source:
                raise SpecError(f"{ROOT}: rule {rule.name!r} reads a different metric in profile {profile.name!r} "
                                f"than in profile {first[1]!r}; give one of them another name")


def parse_autoscale(raw: Mapping[str, Any] | None) -> AutoscaleSpec | None:
    """The typed ``spec.autoscale`` (None when the ScaleSet has none); a SpecError names what to change."""
    if raw is None:
        return None
    autoscale = _mapping(raw, ROOT)
    low, high, default = _bounds(autoscale, ROOT, None)
    base = Profile(DEFAULT_PROFILE, low, high, default, _rules(autoscale.get("rules"), f"{ROOT}.rules"))
    profiles = tuple(_profile(p, f"{ROOT}.profiles[{i}]", base)
                     for i, p in enumerate(_list(autoscale.get("profiles"), f"{ROOT}.profiles")))
    names = [p.name for p in profiles]
    for name in names:
        if names.count(name) > 1:
            raise SpecError(f"{ROOT}.profiles: the name {name!r} appears more than once")
    _same_metric_per_name((base, *profiles))
    tracks_target = any(r.target is not None for p in (base, *profiles) for r in p.rules)
    behavior = _mapping(autoscale.get("behavior"), f"{ROOT}.behavior")
    return AutoscaleSpec(
        default=base, profiles=profiles,
        evaluation_interval=_duration(FIELDS[f"{ROOT}.evaluationInterval"], autoscale.get("evaluationInterval"),
                                      f"{ROOT}.evaluationInterval", 5),
        mode=str(FIELDS[f"{ROOT}.mode"].pick(autoscale.get("mode"), f"{ROOT}.mode")),
        behavior=Behavior(
            scale_up=_scaling(behavior.get("scaleUp"), f"{ROOT}.behavior.scaleUp",
                              int(FIELDS[f"{ROOT}.behavior.scaleUp.stabilizationWindowSeconds"].default)),
            scale_down=_scaling(behavior.get("scaleDown"), f"{ROOT}.behavior.scaleDown",
                                300 if tracks_target else 0)))
