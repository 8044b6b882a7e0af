"""Writing a resource's status in one place: kstatus conditions, observedGeneration, and an Event per change."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

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
    def generation(self) -> int | None:
        return self.body["metadata"].get("generation")

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.body.get("spec") or {}

    @property
    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.body["metadata"].get("annotations") or {}


@dataclass
class StatusReporter:
    """Computes the new conditions, patches status through /status, and emits an Event for each change."""

    kube: KubeClient
    _last_conditions: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    async def report(
        self,
        ref: ResourceRef,
        updates: list[cond.Condition],
        fields: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        key = (ref.namespace, ref.name)
        before = self._last_conditions.get(key, ref.status.get("conditions") or [])
        after = cond.merge_conditions(before, updates, ref.generation)
        status: dict[str, Any] = {**(fields or {}), "conditions": after, "observedGeneration": ref.generation}
        await self.kube.patch_status(ref.plural, ref.namespace, ref.name, status)
        self._last_conditions[key] = after
        known = {c.get("type") for c in before}
        for changed in cond.changed_conditions(before, after):
            if changed["type"] == "Drifted" and changed["status"] == "False" and changed["type"] not in known:
                continue  # "no drift" on the first observation is not news
            self._emit_event(ref, changed)
        return after

    def _emit_event(self, ref: ResourceRef, condition: Mapping[str, Any]) -> None:
        # A Warning for what needs attention (Stalled=True, Ready=False with an error); Normal otherwise.
        bad = (condition["type"] == cond.STALLED and condition["status"] == "True") or (
            condition["type"] == cond.READY and condition["status"] == "False"
            and condition["reason"] not in ("Creating", "Updating", "Reconciling", "InProgress", "Deleting")
        )
        bad = bad or (condition["type"] == "Drifted" and condition["status"] == "True")
        message = f"{condition['type']}={condition['status']}: {condition['message']}"
        self.event(ref, "Warning" if bad else "Normal", condition["reason"], message)

    def event(self, ref: ResourceRef, type_: str, reason: str, message: str) -> None:
        try:
            kopf.event(dict(ref.body), type=type_, reason=reason, message=message[:1024])
        except Exception:  # noqa: BLE001 - an event is best effort
            logger.debug("could not post an event for %s/%s", ref.namespace, ref.name, exc_info=True)

    def forget(self, ref: ResourceRef) -> None:
        self._last_conditions.pop((ref.namespace, ref.name), None)
