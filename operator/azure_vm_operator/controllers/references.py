"""References between this operator's kinds in one namespace: a VirtualMachine or ScaleSet naming an Image
(``image.imageRef``), a VirtualMachine naming an AvailabilitySet (``availabilitySetRef``), an Image naming its
source VirtualMachine. A reference resolves to the Azure id the other resource reports once it is Ready; until then
the referring resource waits (``InProgress`` with a ``WaitingFor...`` reason, looked at again soon)."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from ..api import conditions as cond
from ..api.constants import AVSET_KIND, AVSET_PLURAL, IMAGE_KIND, IMAGE_PLURAL
from ..kube import ReferenceNotFound
from .frame import Context, InProgress, Stalled

#: How soon a waiting resource looks at what it waits for again (seconds; at least the polling interval).
WAIT_RECHECK = 3.0


def deleting(ctx: Context[Any]) -> bool:
    return bool(ctx.ref.body["metadata"].get("deletionTimestamp"))


def is_ready(body: Mapping[str, Any]) -> bool:
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == cond.READY:
            return condition.get("status") == "True" and condition.get("observedGeneration") in (
                None, body["metadata"].get("generation"))
    return False


async def read_ready(ctx: Context[Any], kind: str, plural: str, name: str, reason: str,
                     what: str) -> dict[str, Any]:
    """The referenced resource once it is Ready, else InProgress(reason) (missing too: it may be applied later)."""
    try:
        body = await ctx.reconciler.kube.read_custom(kind, plural, ctx.ref.namespace, name)
    except ReferenceNotFound:
        raise InProgress(f"waiting for {kind} {name}: it does not exist in namespace {ctx.ref.namespace}",
                         ctx.reconciler.recheck_delay(WAIT_RECHECK), reason) from None
    if body["metadata"].get("deletionTimestamp"):
        raise Stalled(f"{kind}Deleting", f"{kind} {name} is being deleted; it cannot be used for {what}")
    if not is_ready(body) or not (body.get("status") or {}).get("azureResourceId"):
        ready: Mapping[str, Any] = next((c for c in (body.get("status") or {}).get("conditions") or [] if c.get("type") == cond.READY),
                     {})
        detail = f": {ready.get('reason')}: {ready.get('message')}" if ready else ""
        raise InProgress(f"waiting for {kind} {name} to be Ready{detail}",
                         ctx.reconciler.recheck_delay(WAIT_RECHECK), reason)
    return body


def _check_place(ctx: Context[Any], kind: str, name: str, body: Mapping[str, Any], same_group: bool) -> None:
    spec, other = ctx.spec, body.get("spec") or {}
    if str(other.get("location", "")).replace(" ", "").lower() != spec.location.replace(" ", "").lower():
        raise Stalled("InvalidReference", f"{kind} {name} is in {other.get('location')}, not {spec.location}: "
                                          "Azure needs both in one location")
    if same_group and str(other.get("resourceGroup", "")).lower() != spec.resource_group.lower():
        raise Stalled("InvalidReference", f"{kind} {name} is in resource group {other.get('resourceGroup')}: a VM "
                                          f"joins an availability set of its own resource group "
                                          f"({spec.resource_group})")


async def resolve_image(ctx: Context[Any], exists: bool, observed_image_id: str | None) -> None:
    """``image.imageRef``: ctx.spec gets the Image's Azure id. Before the VM or scale set exists it waits for the
    Image (reason WaitingForImage); once it exists, an Image that is not Ready does not block its reconciliation
    (the id Azure has is kept)."""
    spec = ctx.spec
    name = spec.image.image_ref
    if name is None or deleting(ctx):
        return
    try:
        body = await read_ready(ctx, IMAGE_KIND, IMAGE_PLURAL, name, "WaitingForImage", f"{ctx.kind} {ctx.ref.name}")
        _check_place(ctx, IMAGE_KIND, name, body, same_group=False)
        image_id = str(body["status"]["azureResourceId"])
    except (InProgress, Stalled):
        if not exists:
            raise
        image_id = observed_image_id or ""
    ctx.fields["imageId"] = image_id or None
    ctx.spec = dataclasses.replace(spec, image=dataclasses.replace(spec.image, id=image_id or None))


async def resolve_availability_set(ctx: Context[Any], exists: bool, observed_set_id: str | None) -> None:
    """``availabilitySetRef``: ctx.spec gets the AvailabilitySet's Azure id (waiting, reason
    WaitingForAvailabilitySet, until it is Ready; an existing VM keeps the set Azure has)."""
    spec = ctx.spec
    name = getattr(spec, "availability_set_ref", None)
    if name is None or deleting(ctx):
        return
    try:
        body = await read_ready(ctx, AVSET_KIND, AVSET_PLURAL, name, "WaitingForAvailabilitySet",
                                f"VirtualMachine {ctx.ref.name}")
        _check_place(ctx, AVSET_KIND, name, body, same_group=True)
        set_id = str(body["status"]["azureResourceId"])
    except (InProgress, Stalled):
        if not exists:
            raise
        set_id = observed_set_id or ""
    ctx.spec = dataclasses.replace(spec, resolved_availability_set_id=set_id or None)
