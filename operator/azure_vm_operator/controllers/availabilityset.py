"""The AvailabilitySet kind on the reconcile frame: an Azure availability set owned by one custom resource, which
VirtualMachines join through ``spec.availabilitySetRef``.

Azure writes availability sets synchronously (no long-running operation). The status lists the member VMs with the
fault and update domain of each one's instance view; those VMs are read through the shared listing of the resource
group's VMs (the same one every VirtualMachine reads), not one GET each. A set with members cannot be deleted in
Azure: deleting the resource is held (``Ready=False``, reason ``HasMembers``, an Event; the finalizer stays) until
its last member is gone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import logs, metrics
from ..api import conditions as cond
from ..api.availabilityset import AvailabilitySetSpec, parse_spec
from ..api.constants import AVSET_KIND, AVSET_PLURAL
from ..azure import availabilityset as avt
from ..azure.ids import ResourceId
from .frame import Context, DeletionHeld, Stalled, StatusView
from .status import ResourceRef

logger = logging.getLogger(__name__)

AvContext = Context[AvailabilitySetSpec]
#: How soon a held deletion looks at the members again.
HELD_RECHECK = 5.0


@dataclass
class ObservedSet:
    avset: dict[str, Any] | None
    vms: dict[str, dict[str, Any] | None] = field(default_factory=dict)  #: member VMs by id (lower-cased)


class AvailabilitySetKind:
    kind = AVSET_KIND
    plural = AVSET_PLURAL
    noun = "availability set"

    def parse(self, raw: Mapping[str, Any], name: str, default_subscription: str | None,
              credentials_subscription: str | None) -> AvailabilitySetSpec:
        return parse_spec(raw, name, default_subscription, credentials_subscription)

    def primary(self, observed: ObservedSet) -> Mapping[str, Any] | None:
        return observed.avset

    async def observe(self, ctx: AvContext) -> ObservedSet:
        spec, compute = ctx.spec, ctx.az.compute
        avset = await ctx.read_named(compute.availability_sets, "availabilitySets", spec.resource_group,
                                     spec.azure_name)
        observed = ObservedSet(avset=avset)
        vms = compute.virtual_machines
        for member_id in avt.member_ids(avset):
            ref = ResourceId.parse(member_id)
            if ref is None:
                continue
            rg, name = ref.resource_group, ref.name
            observed.vms[member_id.lower()] = await ctx.read(
                "virtualMachines?$expand=instanceView", rg, name,
                lambda rg=rg: vms.list(rg, expand="instanceView"),  # type: ignore[misc]
                lambda rg=rg, name=name: vms.get(rg, name, expand="instanceView"))  # type: ignore[misc]
        return observed

    async def create(self, ctx: AvContext, observed: ObservedSet) -> None:
        spec = ctx.spec
        await ctx.ensure_resource_group()
        metrics.AZURE_OPERATIONS.labels(AVSET_KIND, "create").inc()
        ctx.reconciler.cache.touch(ctx.ref.key)
        body: Any = avt.set_body(spec, ctx.identity)  # ARM's JSON shape, sent as is
        await ctx.az.compute.availability_sets.create_or_update(spec.resource_group, spec.azure_name, body)
        ctx.event("Normal", "Created", f"availability set {spec.azure_name} created ({spec.fault_domains} fault "
                                       f"domains, {spec.update_domains} update domains, sku {spec.sku})")

    async def update(self, ctx: AvContext, observed: ObservedSet) -> bool:
        assert observed.avset is not None
        spec = ctx.spec
        diff = avt.diff_set(spec, ctx.identity, observed.avset)
        if diff.immutable:
            raise Stalled("ImmutableFieldChanged",
                          f"{', '.join(diff.immutable)} cannot be changed on an existing availability set; restore "
                          "the previous value or create a new AvailabilitySet")
        if not diff.patch:
            return False
        if not ctx.spec_changed:
            if spec.policies.drift == "Report":
                ctx.drift = [f"{p} (reported)" for p in diff.drifted]
                return False
            ctx.drift = [f"{p} (corrected)" for p in diff.drifted]
            for path in diff.drifted:
                metrics.DRIFT_CORRECTIONS.labels(AVSET_KIND, path).inc()
        metrics.AZURE_OPERATIONS.labels(AVSET_KIND, "update").inc()
        ctx.reconciler.cache.touch(ctx.ref.key)
        patch: Any = diff.patch
        await ctx.az.compute.availability_sets.update(spec.resource_group, spec.azure_name, patch)
        return True

    async def delete(self, ctx: AvContext, observed: ObservedSet) -> None:
        spec = ctx.spec
        if observed.avset is None:
            return
        if not ctx.may_delete(observed.avset):
            logger.info("availability set %s is not owned by this resource; leaving it in Azure", spec.azure_name,
                        extra=logs.resource(AVSET_KIND, ctx.ref.namespace, ctx.ref.name))
            return
        members = avt.members(observed.avset, observed.vms)
        if members:
            names = ", ".join(m["name"] for m in members)
            ctx.fields["members"] = members
            raise DeletionHeld(f"availability set {spec.azure_name} still has {len(members)} member VM(s): {names}; "
                               "it is deleted once they are gone (delete them, or set deletionPolicy: Orphan)",
                               ctx.reconciler.recheck_delay(HELD_RECHECK), "HasMembers")
        metrics.AZURE_OPERATIONS.labels(AVSET_KIND, "delete").inc()
        await ctx.az.compute.availability_sets.delete(spec.resource_group, spec.azure_name)

    def status(self, ctx: AvContext, observed: ObservedSet) -> StatusView:
        spec = ctx.spec
        fields = self._status_fields(observed)
        ready = observed.avset is not None
        count = len(fields["members"])
        message = (f"availability set {spec.azure_name}: {count} member VM(s) over {spec.fault_domains} fault "
                   f"domains" if ready else f"availability set {spec.azure_name} not found")
        metrics.record_availability_set(ctx.ref.namespace, ctx.ref.name, spec.location, count, ready)
        return StatusView(fields, ready, message, printable="Available")

    def observe_only(self, ctx: AvContext, observed: ObservedSet) -> tuple[StatusView, list[str]]:
        spec = ctx.spec
        if observed.avset is None:
            return StatusView({"lastObservedTime": cond.now_rfc3339()}, False,
                              f"availability set {spec.azure_name} does not exist in {spec.resource_group} "
                              "(observing only)", "Observing"), []
        diff = avt.diff_set(spec, ctx.identity, observed.avset)
        return (StatusView(self._status_fields(observed), True,
                           f"availability set {spec.azure_name} (observing only: the operator never writes)",
                           "Observing"), [*diff.drifted, *diff.immutable])

    def _status_fields(self, observed: ObservedSet) -> dict[str, Any]:
        avset = observed.avset or {}
        props = avset.get("properties") or {}
        members = avt.members(observed.avset, observed.vms)
        return {
            "azureResourceId": avset.get("id"),
            "sku": (avset.get("sku") or {}).get("name"),
            "platformFaultDomainCount": props.get("platformFaultDomainCount"),
            "platformUpdateDomainCount": props.get("platformUpdateDomainCount"),
            "members": members,
            "memberCount": len(members),
            "lastObservedTime": cond.now_rfc3339(),
        }

    def forget(self, ref: ResourceRef) -> None:
        metrics.forget_availability_set(ref.namespace, ref.name)
