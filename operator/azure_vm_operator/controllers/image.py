"""The Image kind on the reconcile frame: a managed image captured from a VirtualMachine of the same namespace, or
made from a managed disk or a VHD blob; VirtualMachines and ScaleSets use it through ``image.imageRef``.

The source VirtualMachine (``fromVirtualMachine``). Azure captures a managed image only from a generalized VM,
and a generalized VM can never start again. The Image therefore never changes the power state of another resource
behind its spec (which GitOps would fight, and which the VirtualMachine's own reconciler would undo): the user sets
``spec.powerState: Deallocated`` on the source VirtualMachine, its reconciler deallocates it, and only then does
the Image generalize it in Azure and capture the image. Until then the Image waits (``Ready=False``, reason
``WaitingForSourceVM``, saying what to do). Afterwards ``afterCapture: KeepDeallocated`` leaves the VirtualMachine
(deallocated and generalized: its reconciler reports ``Stalled``, reason ``VMGeneralized``, if it is ever asked to
run again) and ``afterCapture: Delete`` deletes the VirtualMachine resource, whose finalizer deletes the VM and
what was made for it in Azure. Once the image exists, the source is never read again.

Deleting an Image that a VirtualMachine or ScaleSet of its namespace still names in ``image.imageRef`` is held
(``Ready=False``, reason ``ImageInUse``, an Event; the finalizer stays) until none does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from .. import logs, metrics
from ..api import conditions as cond
from ..api.constants import IMAGE_KIND, IMAGE_PLURAL, SCALESET_PLURAL, VM_KIND, VM_PLURAL
from ..api.image import ImageSpec, parse_spec
from ..azure import image as imt
from ..azure import infrastructure as infra
from ..azure.ids import ResourceId
from ..azure.machine import power_state
from ..kube import ReferenceNotFound
from .frame import Context, DeletionHeld, InProgress, Stalled, StatusView
from .references import WAIT_RECHECK
from .status import ResourceRef

logger = logging.getLogger(__name__)

ImgContext = Context[ImageSpec]
HELD_RECHECK = 5.0


@dataclass
class ObservedImage:
    image: dict[str, Any] | None


def _generalized(vm: Mapping[str, Any] | None) -> bool:
    view = ((vm or {}).get("properties") or {}).get("instanceView") or {}
    return any(str(s.get("code", "")).lower() == "osstate/generalized" for s in view.get("statuses") or [])


class ImageKind:
    kind = IMAGE_KIND
    plural = IMAGE_PLURAL
    noun = "image"

    def parse(self, raw: Mapping[str, Any], name: str, default_subscription: str | None,
              credentials_subscription: str | None) -> ImageSpec:
        return parse_spec(raw, name, default_subscription, credentials_subscription)

    def primary(self, observed: ObservedImage) -> Mapping[str, Any] | None:
        return observed.image

    async def observe(self, ctx: ImgContext) -> ObservedImage:
        spec, images = ctx.spec, ctx.az.compute.images
        rg, name = spec.resource_group, spec.azure_name
        return ObservedImage(image=await ctx.read("images", rg, name, lambda: images.list_by_resource_group(rg),
                                                  lambda: images.get(rg, name)))

    # ---- create ----------------------------------------------------------------------------------------------

    async def create(self, ctx: ImgContext, observed: ObservedImage) -> None:
        spec = ctx.spec
        source_vm_id = await self._prepare_source_vm(ctx) if spec.source == "fromVirtualMachine" else None
        await ctx.ensure_resource_group()
        done = f"image {spec.azure_name} captured from {spec.source_description}"
        await ctx.start(ctx.az.compute.images.begin_create_or_update, spec.resource_group, spec.azure_name,
                        imt.image_body(spec, ctx.identity, source_vm_id), action="create", target=spec.image_id,
                        reason="Creating", message=f"creating image {spec.azure_name} from {spec.source_description}",
                        events=(("Captured", done),))

    async def _prepare_source_vm(self, ctx: ImgContext) -> str:
        """The source VM's Azure id, once its VirtualMachine asks for Deallocated and Azure has it deallocated;
        then it is generalized (irreversible) if it is not yet."""
        spec = ctx.spec
        name = spec.source_vm
        assert name is not None

        def waiting(message: str) -> InProgress:
            return InProgress(message, ctx.reconciler.recheck_delay(WAIT_RECHECK), "WaitingForSourceVM")

        try:
            body = await ctx.reconciler.kube.read_custom(VM_KIND, VM_PLURAL, ctx.ref.namespace, name)
        except ReferenceNotFound:
            raise waiting(f"waiting for VirtualMachine {name}: it does not exist in namespace "
                          f"{ctx.ref.namespace}") from None
        vm_spec, vm_status = body.get("spec") or {}, body.get("status") or {}
        if vm_spec.get("powerState") != "Deallocated":
            raise waiting(f"set spec.powerState: Deallocated on VirtualMachine {name}: Azure captures an image "
                          "only from a deallocated, generalized VM (it can never start again afterwards)")
        if str(vm_spec.get("location", "")).lower() != spec.location.lower():
            raise Stalled("InvalidReference", f"VirtualMachine {name} is in {vm_spec.get('location')}, not "
                                              f"{spec.location}: Azure captures an image in the VM's location")
        vm_id = vm_status.get("azureResourceId")
        if vm_status.get("powerState") != "Deallocated" or not vm_id:
            raise waiting(f"waiting for VirtualMachine {name} to be deallocated (power state "
                          f"{vm_status.get('powerState') or 'unknown'})")
        ref = ResourceId.parse(str(vm_id))
        assert ref is not None
        vms = ctx.az.compute.virtual_machines
        vm = await ctx.get(vms.get(ref.resource_group, ref.name, expand="instanceView"))
        if vm is None:
            raise waiting(f"waiting for VirtualMachine {name}: its VM {vm_id} is not in Azure")
        current = power_state((vm.get("properties") or {}).get("instanceView"))
        if current != "Deallocated":
            raise waiting(f"waiting for VM {ref.name} to be deallocated in Azure (power state {current})")
        if not _generalized(vm):
            metrics.AZURE_OPERATIONS.labels(IMAGE_KIND, "generalize").inc()
            await vms.generalize(ref.resource_group, ref.name)  # synchronous in ARM
            ctx.event("Normal", "Generalized", f"VM {ref.name} (VirtualMachine {name}) generalized for image "
                                               f"{spec.azure_name}: it cannot start again")
        return str(vm["id"])

    # ---- update ----------------------------------------------------------------------------------------------

    async def update(self, ctx: ImgContext, observed: ObservedImage) -> bool:
        assert observed.image is not None
        spec = ctx.spec
        diff = imt.diff_image(spec, ctx.identity, observed.image)
        if diff.immutable:
            raise Stalled("ImmutableFieldChanged",
                          f"{', '.join(diff.immutable)} cannot be changed on an existing image; restore the previous "
                          "value or create a new Image")
        if diff.patch:
            if not ctx.spec_changed:
                if spec.policies.drift == "Report":
                    ctx.drift = [f"{p} (reported)" for p in diff.drifted]
                    return False
                ctx.drift = [f"{p} (corrected)" for p in diff.drifted]
            await ctx.start(ctx.az.compute.images.begin_update, spec.resource_group, spec.azure_name, diff.patch,
                            action="update", target=spec.image_id, reason="Updating",
                            message=f"updating the tags of image {spec.azure_name}")
            return True
        await self._after_capture(ctx, observed)
        return False

    async def _after_capture(self, ctx: ImgContext, observed: ObservedImage) -> None:
        spec = ctx.spec
        if (spec.source != "fromVirtualMachine" or spec.after_capture != "Delete"
                or infra.provisioning_state(observed.image) != "Succeeded"
                or ctx.ref.status.get("sourceDeleted")):
            return
        assert spec.source_vm is not None
        if await ctx.reconciler.kube.delete_custom(VM_PLURAL, ctx.ref.namespace, spec.source_vm):
            ctx.event("Normal", "SourceDeleted", f"VirtualMachine {spec.source_vm} deleted after its image was "
                                                 "captured (afterCapture: Delete)")
        ctx.fields["sourceDeleted"] = True

    # ---- delete ----------------------------------------------------------------------------------------------

    async def delete(self, ctx: ImgContext, observed: ObservedImage) -> None:
        spec = ctx.spec
        users = await self._referenced_by(ctx)
        if users:
            raise DeletionHeld(f"image {spec.azure_name} is still used by {', '.join(users)} (image.imageRef); it "
                               "is deleted once none refers to it", ctx.reconciler.recheck_delay(HELD_RECHECK),
                               "ImageInUse")
        if observed.image is None:
            return
        if infra.provisioning_state(observed.image) == "Deleting":
            raise InProgress(f"image {spec.azure_name} is being deleted", ctx.reconciler.recheck_delay(None),
                             "Deleting")
        if ctx.may_delete(observed.image):
            await ctx.start(ctx.az.compute.images.begin_delete, spec.resource_group, spec.azure_name,
                            action="delete", target=spec.image_id, reason="Deleting",
                            message=f"deleting image {spec.azure_name}")
        else:
            logger.info("image %s is not owned by this resource; leaving it in Azure", spec.azure_name,
                        extra=logs.resource(IMAGE_KIND, ctx.ref.namespace, ctx.ref.name))

    async def _referenced_by(self, ctx: ImgContext) -> list[str]:
        """The VirtualMachines and ScaleSets of the namespace whose image.imageRef names this Image."""
        users = []
        for plural, kind in ((VM_PLURAL, "VirtualMachine"), (SCALESET_PLURAL, "ScaleSet")):
            for item in await ctx.reconciler.kube.list_custom(plural, ctx.ref.namespace):
                ref = (((item.get("spec") or {}).get("image") or {}).get("imageRef") or {}).get("name")
                if ref == ctx.ref.name:
                    users.append(f"{kind} {item['metadata']['name']}")
        return sorted(users)

    # ---- status ----------------------------------------------------------------------------------------------

    def status(self, ctx: ImgContext, observed: ObservedImage) -> StatusView:
        spec = ctx.spec
        fields = {**imt.image_status(observed.image, spec), "lastObservedTime": cond.now_rfc3339()}
        state = fields.get("provisioningState")
        ready = state == "Succeeded"
        message = (f"image {spec.azure_name} ({fields.get('osType')}, {fields.get('hyperVGeneration')}) from "
                   f"{spec.source_description}" if ready else f"image {spec.azure_name}: provisioningState {state}")
        metrics.record_image(ctx.ref.namespace, ctx.ref.name, spec.location, str(fields.get("osType") or ""), ready)
        return StatusView(fields, ready, message, printable="Available")

    def observe_only(self, ctx: ImgContext, observed: ObservedImage) -> tuple[StatusView, list[str]]:
        spec = ctx.spec
        if observed.image is None:
            return StatusView({"lastObservedTime": cond.now_rfc3339()}, False,
                              f"image {spec.azure_name} does not exist in {spec.resource_group} (observing only)",
                              "Observing"), []
        diff = imt.diff_image(spec, ctx.identity, observed.image)
        fields = {**imt.image_status(observed.image, spec), "lastObservedTime": cond.now_rfc3339()}
        return (StatusView(fields, fields.get("provisioningState") == "Succeeded",
                           f"image {spec.azure_name} (observing only: the operator never writes)", "Observing"),
                [*diff.drifted, *diff.immutable])

    def forget(self, ref: ResourceRef) -> None:
        metrics.forget_image(ref.namespace, ref.name)
