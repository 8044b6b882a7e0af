"""The autoscaler loop of a ScaleSet with ``spec.autoscale`` (issue #9): read each rule's metric, decide, write.

Every ``evaluationInterval`` (a Kopf daemon per ScaleSet, ``handlers.py``):

1. parse ``spec.autoscale`` (``autoscale.spec``; an invalid one: AutoscaleHealthy=False, InvalidAutoscaleSpec);
2. read the metric of every rule of the profile in force, concurrently, each with a deadline: Azure Monitor's
   metrics API of the scale set through the same throttle-aware ARM client as the reconciler, or an instant
   PromQL query (``promql.py``). A failed read keeps the rule's last good value (``autoscale.decide`` decides how
   long it may stand in);
3. decide (``autoscale.decide.decide``: pure, tested with a fake clock);
4. write the decision as ``spec.replicas`` through the ``/scale`` subresource, as the HPA does, guarded by the
   resourceVersion the decision was made on: the ScaleSet reconciler stays the only writer to Azure, and a
   count changed meanwhile (kubectl scale, GitOps) is never overwritten blindly — the next evaluation takes it as
   the current count;
5. publish ``status.autoscale``, the ``AutoscaleHealthy`` condition, an Event per scaling action and metrics.

Ownership of spec.replicas while ``mode: Enabled``: the autoscaler is its writer. A count set by someone else
is taken as the current count at the next evaluation and then corrected to the profile's bounds and to what the
rules decide (Azure autoscale treats a manual change of capacity the same way); an Event says who set it.
``ForecastOnly`` decides and publishes but never writes; ``Disabled`` leaves spec.replicas to its other writers.

The history (past decisions and scale actions, for cooldowns, stabilization windows and rate limits) is kept in
memory and rebuilt from ``status.autoscale`` after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

import aiohttp
from azure.core.exceptions import AzureError
from azure.core.rest import HttpRequest

from .. import logs, metrics, promql
from ..api import conditions as cond
from ..api.constants import SCALESET_KIND
from ..api.fields import SpecError
from ..autoscale.decide import (Decision, Direction, History, Reason, Sample, ScaleEvent, decide, hold_while_scaling,
                                record)
from ..autoscale.profiles import active_profile
from ..autoscale.spec import AutoscaleSpec, AzureMonitorMetric, PrometheusQuery, Rule, parse_autoscale
from ..azure import monitor
from ..config import OperatorConfig
from ..kube import KubeClient, ScaleConflict
from .frame import Reconciler, Stalled
from .scaleset import replicas_owner
from .status import ResourceRef, StatusReporter

logger = logging.getLogger(__name__)


def _identity(ref: ResourceRef) -> dict[str, Any]:
    """The ``extra=`` of a log line about this ScaleSet (logs.py: kind, namespace, name in JSON logs)."""
    return logs.resource(str(ref.body.get("kind") or SCALESET_KIND), ref.namespace, ref.name)

FIELD_MANAGER = "azure-vm-operator-autoscaler"
RECENT_DECISIONS = 20  #: status.autoscale.recentDecisions keeps at most this many, newest first
#: how long one metric read may take, at most (and at most half the evaluation interval)
READ_TIMEOUT = 30.0

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def decision_status(decision: Decision, applied: bool) -> dict[str, Any]:
    """One decision as status.autoscale shows it; absent values are null (a merge patch then removes them)."""
    return {
        "time": _iso(decision.time), "from": decision.current, "to": decision.desired,
        "direction": decision.direction.value, "profile": decision.profile, "rule": decision.rule,
        "observed": _number(decision.observed), "threshold": _number(decision.threshold),
        "reason": decision.reason.value, "message": decision.message[:1024], "applied": applied,
        "recommendation": decision.recommendation,
    }


def history_from_status(status: Mapping[str, Any], current: int | None) -> History:
    """The history a restarted operator goes on with: the decisions status.autoscale kept (at most 20) and the
    last scale time (for cooldowns), as far as they reach back."""
    decisions: list[Decision] = []
    events: list[ScaleEvent] = []
    for item in reversed(list(status.get("recentDecisions") or [])):  # stored newest first
        moment = cond.parse_rfc3339(item.get("time"))
        if moment is None:
            continue
        try:
            direction, reason = Direction(item.get("direction", "None")), Reason(item.get("reason"))
        except ValueError:
            continue
        to = item.get("to")
        decisions.append(Decision(moment, item.get("from"), to, direction, reason, str(item.get("profile") or ""),
                                  apply=bool(item.get("applied")), rule=item.get("rule"),
                                  observed=item.get("observed"), threshold=item.get("threshold"),
                                  recommendation=item.get("recommendation", to)))
        if item.get("applied") and item.get("from") is not None and to is not None and item["from"] != to:
            events.append(ScaleEvent(moment, int(item["from"]), int(to)))
    last = cond.parse_rfc3339(status.get("lastScaleTime"))
    if last is not None and not any(e.time == last for e in events) and current is not None:
        events.append(ScaleEvent(last, current, current))  # counts for cooldowns, not for rate limits
    events.sort(key=lambda e: e.time)
    return History(tuple(decisions), tuple(events))


@dataclass
class _State:
    """What the loop remembers of one ScaleSet between evaluations."""

    history: History
    samples: dict[str, Sample] = field(default_factory=dict)
    recent: list[dict[str, Any]] = field(default_factory=list)  #: status.autoscale.recentDecisions
    last_scale_time: datetime | None = None
    written: int | None = None  #: the count this loop last wrote (or found) in spec.replicas
    ready_since: datetime | None = None  #: when the current count was first seen all ready after the last scale


@dataclass
class Evaluation:
    """What one evaluation did (returned for the loop and for tests)."""

    decision: Decision | None
    applied: bool
    delay: float  #: seconds until the next evaluation


class Autoscaler:
    """One per operator process; ``evaluate`` runs one evaluation of one ScaleSet."""

    def __init__(self, reconciler: Reconciler[Any, Any], reporter: StatusReporter, kube: KubeClient,
                 config: OperatorConfig, clock: Clock = utc_now) -> None:
        self.reconciler = reconciler
        self.reporter = reporter
        self.kube = kube
        self.config = config
        self.clock = clock
        self._states: dict[str, _State] = {}
        self._session: aiohttp.ClientSession | None = None
        self._evaluating = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.closing = False  #: the operator is stopping: no new evaluation starts

    async def close(self, timeout: float = 10.0) -> None:
        """Let evaluations in flight finish (they use the Azure clients, closed next), then close."""
        self.closing = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            logger.warning("stopping while %d autoscale evaluations are still running", self._evaluating)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def forget(self, ref: ResourceRef) -> None:
        self._states.pop(str(ref.body["metadata"].get("uid")), None)
        metrics.forget_autoscale(ref.namespace, ref.name)

    # ---- one evaluation --------------------------------------------------------------------------------------

    async def evaluate(self, ref: ResourceRef, lock: asyncio.Lock) -> Evaluation:
        if self.closing:
            return Evaluation(None, False, 60.0)
        self._evaluating += 1
        self._idle.clear()
        try:
            return await self._evaluate(ref, lock)
        finally:
            self._evaluating -= 1
            if not self._evaluating:
                self._idle.set()

    async def _evaluate(self, ref: ResourceRef, lock: asyncio.Lock) -> Evaluation:
        started = time.monotonic()
        try:
            spec = parse_autoscale(ref.spec.get("autoscale"))
        except SpecError as exc:
            await self._publish(ref, lock, cond.Condition(cond.AUTOSCALE_HEALTHY, False, "InvalidAutoscaleSpec",
                                                          str(exc)), None)
            return Evaluation(None, False, 60.0)
        if spec is None:
            return Evaluation(None, False, 60.0)
        raw_replicas = ref.spec.get("replicas")
        current = int(raw_replicas) if raw_replicas is not None else None
        status = ref.status.get("autoscale") or {}
        state = self._states.get(str(ref.body["metadata"].get("uid")))
        if state is None:
            state = _State(history_from_status(status, current), recent=list(status.get("recentDecisions") or []),
                           last_scale_time=cond.parse_rfc3339(status.get("lastScaleTime")), written=current)
            self._states[str(ref.body["metadata"].get("uid"))] = state
        now = self.clock()
        profile = active_profile(spec, now)
        exists = bool(ref.status.get("azureResourceId"))
        if current is not None and exists and spec.mode != "Disabled":
            await self._read_metrics(ref, spec, profile.rules, state, now)
        decision = decide(current, {r.name: state.samples[r.name] for r in profile.rules if r.name in state.samples},
                          now, spec, state.history)
        ready = self.reporter.current_status(ref).get("readyReplicas")  # as the reconciler last wrote it
        last_scale = state.history.last_scale_time
        if exists and current is not None and ready == current:
            if state.ready_since is None or (last_scale is not None and state.ready_since < last_scale):
                state.ready_since = now
        settled = state.ready_since is not None and state.ready_since < now and ready == current \
            and (last_scale is None or state.ready_since >= last_scale)
        decision = hold_while_scaling(decision, settled, last_scale)
        if spec.mode == "Enabled" and current is not None and state.written is not None \
                and current != state.written:
            self._told_outside(ref, current, state.written)
        state.written = current
        applied, write_error = False, None
        delay = spec.evaluation_interval
        wanted = decision.desired
        if decision.apply and wanted is not None and wanted != current and not ref.body["metadata"].get(
                "deletionTimestamp"):
            try:
                await self.kube.patch_scale("scalesets", ref.namespace, ref.name, wanted,
                                            expected=current,
                                            field_manager=FIELD_MANAGER)
                applied, state.written, state.ready_since = True, wanted, None
            except ScaleConflict:
                # spec.replicas (or anything else) changed since this decision's count was read: decide again on
                # the new count soon instead of overwriting it
                delay = min(delay, 2.0)
            except Exception as exc:  # noqa: BLE001 - any failed write is reported, the loop goes on
                write_error = f"writing spec.replicas {wanted} through /scale failed: {exc}"
                metrics.AUTOSCALE_ERRORS.labels(ref.namespace, ref.name, "", "ScaleWriteFailed").inc()
                logger.warning("%s", write_error, extra=_identity(ref))
        state.history = record(state.history, decision, spec, applied)
        if applied:
            state.last_scale_time = decision.time
            self._told_scaled(ref, decision)
        self._remember(state, decision, applied)
        metrics.AUTOSCALE_DECISIONS.labels(ref.namespace, ref.name, decision.direction.value,
                                           decision.reason.value).inc()
        metrics.record_autoscale(
            ref.namespace, ref.name, {r.name: state.samples[r.name].value for r in profile.rules
                                      if r.name in state.samples and not self._stale(state.samples[r.name], now, spec)},
            {r.name: _goal(r) for r in profile.rules},
            {"desired": decision.desired, "current": current, "min": profile.min_replicas,
             "max": profile.max_replicas})
        health = self._health(spec, profile.rules, state, decision, exists, write_error)
        fields = {
            "mode": spec.mode, "activeProfile": decision.profile, "currentReplicas": current,
            "desiredReplicas": decision.desired, "lastEvaluationTime": _iso(now),
            "lastScaleTime": _iso(state.last_scale_time),
            "metrics": [self._metric_status(r, state.samples.get(r.name), now, spec) for r in profile.rules],
            "lastDecision": decision_status(decision, applied), "recentDecisions": state.recent,
        }
        await self._publish(ref, lock, health, fields)
        metrics.AUTOSCALE_SECONDS.observe(time.monotonic() - started)
        return Evaluation(decision, applied, delay)

    # ---- metrics ---------------------------------------------------------------------------------------------

    async def _read_metrics(self, ref: ResourceRef, spec: AutoscaleSpec, rules: tuple[Rule, ...], state: _State,
                            now: datetime) -> None:
        timeout = min(READ_TIMEOUT, max(2.0, spec.evaluation_interval / 2))
        context: Any = None
        if any(isinstance(r.source, AzureMonitorMetric) for r in rules):
            try:
                context = await self.reconciler.context(ref)
            except (Stalled, SpecError) as exc:
                context = exc

        async def one(rule: Rule) -> tuple[Rule, float | str]:
            try:
                return rule, await asyncio.wait_for(self._read(rule, context, now), timeout)
            except asyncio.TimeoutError:
                return rule, f"ReadTimeout: no answer within {timeout:g}s"
            except _ReadError as exc:
                return rule, str(exc)
            except Exception as exc:  # noqa: BLE001 - a malformed answer fails this rule's read, not the evaluation
                logger.warning("reading rule %s failed", rule.name, exc_info=True, extra=_identity(ref))
                return rule, f"UnexpectedError: {type(exc).__name__}: {exc}"

        for rule, result in await asyncio.gather(*(one(r) for r in rules)):
            last = state.samples.get(rule.name)
            last_scale = state.history.last_scale_time
            if last is not None and (last.value is None or last.at is None
                                     or (last_scale is not None and last.at < last_scale)):
                last = None  # a value read before the last scale described another count: it stands in for nothing
            if isinstance(result, str):
                reason = result.split(":", 1)[0]
                metrics.AUTOSCALE_ERRORS.labels(ref.namespace, ref.name, rule.name, reason).inc()
                state.samples[rule.name] = Sample.failed(result, last)
            else:
                state.samples[rule.name] = Sample(result, now)
        for name in list(state.samples):  # rules no profile has any more
            if name not in spec.all_rules():
                del state.samples[name]

    async def _read(self, rule: Rule, context: Any, now: datetime) -> float:
        source = rule.source
        if isinstance(source, PrometheusQuery):
            server = source.server_address or self.config.prometheus_url
            if not server:
                raise _ReadError("NoPrometheusServer: the rule has no prometheus.serverAddress and the operator "
                                 "runs without --prometheus-url")
            if self._session is None:
                self._session = aiohttp.ClientSession()
            try:
                return await promql.query_value(self._session, server, source.query, timeout=READ_TIMEOUT)
            except promql.PromQLError as exc:
                raise _ReadError(f"{exc.reason}: {exc.message}") from exc
        if isinstance(context, Exception):
            raise _ReadError(f"AzureMonitorUnavailable: {context}")
        path = monitor.metrics_path(context.spec.scale_set_id, source.metric_name, source.aggregation,
                                    source.time_grain, source.time_window, now)
        try:
            response = await context.az.compute.send_request(HttpRequest("GET", path))
            await response.read()
        except AzureError as exc:
            raise _ReadError(f"AzureMonitorUnavailable: {type(exc).__name__}: {exc.message}") from exc
        if response.status_code != 200:
            error: dict[str, Any] = {}
            try:
                error = (response.json() or {}).get("error") or {}
            except ValueError:
                pass
            raise _ReadError(f"AzureMonitorError: HTTP {response.status_code} "
                             f"{error.get('code', '')}: {error.get('message', '')}".rstrip(": "))
        value = monitor.window_value(response.json(), source.aggregation,
                                     now - timedelta(seconds=source.time_window))
        if value is None:
            raise _ReadError(f"NoData: Azure Monitor has no {source.aggregation} of '{source.metric_name}' in the "
                             f"last {source.time_window:g}s (no running instance?)")
        return value

    @staticmethod
    def _stale(sample: Sample, now: datetime, spec: AutoscaleSpec) -> bool:
        return sample.at is None or (now - sample.at).total_seconds() > 2 * spec.evaluation_interval

    def _metric_status(self, rule: Rule, sample: Sample | None, now: datetime, spec: AutoscaleSpec) -> dict[str, Any]:
        if sample is None:
            return {"rule": rule.name, "value": None, "time": None, "error": "not read yet", "stale": None}
        return {"rule": rule.name, "value": _number(sample.value), "time": _iso(sample.at),
                "error": sample.error[:512] if sample.error else None,
                "stale": bool(sample.error) or self._stale(sample, now, spec)}

    # ---- health, status, events ------------------------------------------------------------------------------

    def _health(self, spec: AutoscaleSpec, rules: tuple[Rule, ...], state: _State, decision: Decision,
                exists: bool, write_error: str | None) -> cond.Condition | None:
        if write_error:
            return cond.Condition(cond.AUTOSCALE_HEALTHY, False, "ScaleWriteFailed", write_error)
        if spec.mode == "Disabled":
            return cond.Condition(cond.AUTOSCALE_HEALTHY, True, "Disabled", "autoscale mode is Disabled")
        if decision.current is None or not exists:
            return None  # nothing to read yet: the first count is set, the scale set is being created
        failing = [(r.name, state.samples[r.name].error) for r in rules
                   if r.name in state.samples and state.samples[r.name].error]
        if not decision.healthy:
            missing = "; ".join(f"{name}: {error}" for name, error in failing) or "no value yet"
            return cond.Condition(cond.AUTOSCALE_HEALTHY, False, "MetricsUnavailable",
                                  f"{missing}. No scale-in while a metric is missing; at least defaultReplicas")
        if failing:
            return cond.Condition(cond.AUTOSCALE_HEALTHY, True, "UsingLastKnownValues", "; ".join(
                f"{name}: {error} (its last good value stands in)" for name, error in failing))
        values = ", ".join(f"{r.name}={state.samples[r.name].value:g}" for r in rules if r.name in state.samples
                           and state.samples[r.name].value is not None)
        return cond.Condition(cond.AUTOSCALE_HEALTHY, True, "MetricsAvailable",
                              f"profile {decision.profile}: {values or 'no rules'}")

    def _remember(self, state: _State, decision: Decision, applied: bool) -> None:
        """recentDecisions: every change of the count (made or wanted) and every change of the reason."""
        last_reason = state.recent[0].get("reason") if state.recent else None
        if decision.desired != decision.current or decision.reason.value != last_reason:
            state.recent = [decision_status(decision, applied), *state.recent][:RECENT_DECISIONS]

    async def _publish(self, ref: ResourceRef, lock: asyncio.Lock, health: cond.Condition | None,
                       fields: Mapping[str, Any] | None) -> None:
        async with lock:  # the reconciler's passes write status too: one writer at a time per resource
            await self.reporter.report(ref, [health] if health else [],
                                       {"autoscale": dict(fields)} if fields is not None else None, observed=False)

    def _told_scaled(self, ref: ResourceRef, decision: Decision) -> None:
        if decision.current is None:
            self.reporter.event(ref, "Normal", "ReplicasInitialized",
                                f"spec.replicas set to {decision.desired}: {decision.message}")
            return
        up = decision.direction == Direction.UP
        self.reporter.event(ref, "Normal", "ScaledOut" if up else "ScaledIn",
                            f"{decision.current} -> {decision.desired} replicas ({decision.reason.value}, profile "
                            f"{decision.profile}): {decision.message}")

    def _told_outside(self, ref: ResourceRef, current: int, written: int) -> None:
        owner = replicas_owner(ref.body) or "another writer"
        self.reporter.event(ref, "Normal", "ReplicasSetOutsideAutoscaler",
                            f"spec.replicas was set to {current} by {owner} (the autoscaler had {written}); while "
                            f"autoscale.mode is Enabled the autoscaler writes spec.replicas: it starts from "
                            f"{current} and keeps the count within the profile's bounds and rules. Set "
                            f"autoscale.mode: Disabled to scale by hand")


class _ReadError(Exception):
    """A rule's metric could not be read; the text starts with a reason ("NoData: ...")."""


def _goal(rule: Rule) -> float:
    if rule.threshold is not None:
        return rule.threshold.threshold
    assert rule.target is not None
    return rule.target.goal
