"""Writing a resource's status in one place: kstatus conditions, observedGeneration, and an Event per change."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, cast

import kopf

from ..api import conditions as cond
from ..kube import KubeClient

logger = logging.getLogger(__name__)


@dataclass
class ResourceRef:
    """The identity and last-seen content of one custom resource."""

    plural: str
    body: Mapping[str, Any]  #: the full object, as Kopf passed it (used to address Events)

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def key(self) -> tuple[str, str, str]:
        """The identity of a custom resource: (kind's plural, namespace, name)."""
        return (self.plural, self.namespace, self.name)

    @property
    def generation(self) -> int | None:
        generation = self.body["metadata"].get("generation")
        return int(generation) if generation is not None else None

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.body.get("spec") or {}

    @property
    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.body["metadata"].get("annotations") or {}


#: status.lastObservedTime alone (nothing else in the status changed) is written when the previous one is older
#: than this: a write per resource per pass loads the API server and every watcher (Argo CD, Flux) for a date.
LAST_OBSERVED = "lastObservedTime"
OBSERVED_TIME_REFRESH = 600.0


@dataclass
class StatusReporter:
    """Computes the new conditions, patches status through /status, and emits an Event for each change."""

    kube: KubeClient
    observed_time_refresh: float = OBSERVED_TIME_REFRESH
    #: what this process last wrote to each resource's status: newer than (or the same as) the body Kopf hands
    #: a handler, which may predate our own last write
    _written: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def current_status(self, ref: ResourceRef) -> dict[str, Any]:
        """The resource's status as last written by this process, over what its body says."""
        status = dict(ref.status)
        for key, value in self._written.get(ref.key, {}).items():
            if value is None:  # removed by our last write
                status.pop(key, None)
            else:
                status[key] = value
        return status

    async def report(
        self,
        ref: ResourceRef,
        updates: list[cond.Condition],
        fields: Mapping[str, Any] | None = None,
        *,
        observed: bool = True,
        drop: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        """``observed``: this write comes from a pass over the whole spec, so it sets status.observedGeneration;
        a side loop (the autoscaler) writes its own conditions and fields only. ``drop``: condition types that
        no longer apply (AutoscaleHealthy once spec.autoscale is gone)."""
        before = self.current_status(ref).get("conditions") or []
        after = [c for c in cond.merge_conditions(before, updates, ref.generation) if c["type"] not in drop]
        status: dict[str, Any] = {**(fields or {}), "conditions": after}
        if observed:
            status["observedGeneration"] = ref.generation
        current = self.current_status(ref)
        changes = [key for key, value in status.items()
                   if not (key not in current if value is None else current.get(key) == value)]
        if not changes or (changes == [LAST_OBSERVED] and self._recent(current.get(LAST_OBSERVED),
                                                                       status[LAST_OBSERVED])):
            return after  # nothing changes: no write (and no watch event back to every watcher)
        await self.kube.patch_status(ref.plural, ref.namespace, ref.name, status)
        self._written[ref.key] = {**self._written.get(ref.key, {}), **status}
        known = {c.get("type") for c in before}
        for changed in cond.changed_conditions(before, after):
            if changed["type"] == "Drifted" and changed["status"] == "False" and changed["type"] not in known:
                continue  # "no drift" on the first observation is not news
            self._emit_event(ref, changed)
        return after

    def _recent(self, before: Any, now: Any) -> bool:
        """The previous lastObservedTime is younger than ``observed_time_refresh`` (RFC 3339 strings)."""
        then, current = cond.parse_rfc3339(before), cond.parse_rfc3339(now)
        if then is None or current is None:
            return False
        return 0 <= (current - then).total_seconds() < self.observed_time_refresh

    def _emit_event(self, ref: ResourceRef, condition: Mapping[str, Any]) -> None:
        # A Warning for what needs attention (Stalled=True, Ready=False with an error); Normal otherwise.
        bad = (condition["type"] == cond.STALLED and condition["status"] == "True") or (
            condition["type"] == cond.READY and condition["status"] == "False"
            and condition["reason"] not in ("Creating", "Updating", "Reconciling", "InProgress", "Deleting")
        )
        bad = bad or (condition["type"] == "Drifted" and condition["status"] == "True")
        bad = bad or (condition["type"] == cond.AUTOSCALE_HEALTHY and condition["status"] == "False")
        message = f"{condition['type']}={condition['status']}: {condition['message']}"
        self.event(ref, "Warning" if bad else "Normal", condition["reason"], message)

    def event(self, ref: ResourceRef, type_: str, reason: str, message: str) -> None:
        try:
            kopf.event(cast(kopf.Body, dict(ref.body)), type=type_, reason=reason, message=message[:1024])
        except Exception:  # noqa: BLE001 - an event is best effort
            logger.debug("could not post an event for %s/%s", ref.namespace, ref.name, exc_info=True)

    def forget(self, ref: ResourceRef) -> None:
        self._written.pop(ref.key, None)
