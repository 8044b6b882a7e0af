"""The VirtualMachine kind on the reconcile frame: what it observes, creates, updates and deletes in Azure.

Each step is idempotent and may be interrupted at any line: a restart observes what Azure has (found by name and
ownership tag) and follows the operation kept in status, so a crash never produces a second VM. Each write starts
at most one Azure operation and ends the pass (see ``frame``); the next pass continues from what Azure then has.
"""

from __future__ import annotations

import asyncio

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from .. import logs, metrics
from ..api import conditions as cond
from ..api.constants import REDEPLOY_REQUESTED_ANNOTATION, RESTART_REQUESTED_ANNOTATION, VM_KIND, VM_PLURAL
from ..api.virtualmachine import VirtualMachineSpec, parse_spec
from ..azure import infrastructure as infra
from ..azure import virtualmachine as vmt
from ..azure.machine import power_state
from ..azure.ids import ResourceId
from . import references
from .frame import Context, InProgress, Stalled, StatusView
from .status import ResourceRef

logger = logging.getLogger(__name__)

VmContext = Context[VirtualMachineSpec]


@dataclass
class ObservedVM:
    vm: dict[str, Any] | None
    nic: dict[str, Any] | None = None
    public_ip: dict[str, Any] | None = None
    nsg: dict[str, Any] | None = None
    availability_set_missing: bool = False


def _power(vm: Mapping[str, Any] | None) -> str | None:
    return power_state(((vm or {}).get("properties") or {}).get("instanceView"))


class VirtualMachineKind:
    kind = VM_KIND
    plural = VM_PLURAL
    noun = "VM"

    def parse(self, raw: Mapping[str, Any], name: str, default_subscription: str | None,
              credentials_subscription: str | None) -> VirtualMachineSpec:
        return parse_spec(raw, name, default_subscription, credentials_subscription)

    def primary(self, observed: ObservedVM) -> Mapping[str, Any] | None:
        return observed.vm

    # ---- observe: the only reads of the VM's own resources ---------------------------------------------------

    async def observe(self, ctx: VmContext) -> ObservedVM:
        spec, az = ctx.spec, ctx.az
        managed: tuple[dict[str, Any] | None, ...] = (None, None, None)  # NIC, public IP, NSG
        observed = ObservedVM(vm=await self._get_vm(ctx))  # first: when ARM throttles, one read finds out
        if spec.policies.reconcile != "Observe":  # what is made for it at once: fresh listings waited side by side
            rg, net = spec.resource_group, az.network
            managed = tuple(await asyncio.gather(
                ctx.read_named(net.network_interfaces, "networkInterfaces", rg, vmt.nic_name(spec)),
                # Wanted ones are confirmed when missing (they are created then); unwanted ones only deleted if
                # they exist.
                ctx.read_named(net.public_ip_addresses, "publicIPAddresses", rg, vmt.public_ip_name(spec),
                               confirm_missing=spec.network.public_ip),
                ctx.read_named(net.network_security_groups, "networkSecurityGroups", rg, vmt.nsg_name(spec),
                               confirm_missing=bool(spec.network.open_ports))))
        # image.imageRef and availabilitySetRef name resources of this namespace: wait for them before creating
        props = (observed.vm or {}).get("properties") or {}
        await references.resolve_image(
            ctx, observed.vm is not None, ((props.get("storageProfile") or {}).get("imageReference") or {}).get("id"))
        await references.resolve_availability_set(ctx, observed.vm is not None,
                                                  (props.get("availabilitySet") or {}).get("id"))
        if spec.policies.reconcile == "Observe":
            # The VM may not be one we created: follow its own references instead of our naming convention.
            nic_ref = ResourceId.parse(vmt.vm_primary_nic_id(observed.vm))
            if nic_ref:
                observed.nic = await ctx.get(az.network.network_interfaces.get(nic_ref.resource_group, nic_ref.name))
            pip_ref = ResourceId.parse(infra.nic_public_ip_id(observed.nic))
            if pip_ref:
                observed.public_ip = await ctx.get(
                    az.network.public_ip_addresses.get(pip_ref.resource_group, pip_ref.name))
            return observed
        observed.nic, observed.public_ip, observed.nsg = managed
        if spec.availability_set is not None and observed.vm is None:
            observed.availability_set_missing = await ctx.get(
                az.compute.availability_sets.get(spec.resource_group, spec.availability_set.name)) is None
        return observed

    async def _get_vm(self, ctx: VmContext) -> dict[str, Any] | None:
        spec, vms = ctx.spec, ctx.az.compute.virtual_machines
        rg, name = spec.resource_group, spec.azure_name
        vm = await ctx.read("virtualMachines?$expand=instanceView", rg, name,
                            lambda: vms.list(rg, expand="instanceView"),
                            lambda: vms.get(rg, name, expand="instanceView"))
        if vm is not None and spec.user_data is not None:
            # ARM returns userData only when asked for it, and $expand takes one value.
            with_user_data = await ctx.get(vms.get(spec.resource_group, spec.azure_name, expand="userData"))
            if with_user_data is not None:
                vm.setdefault("properties", {})["userData"] = with_user_data.get("properties", {}).get("userData")
        return vm

    # ---- create ----------------------------------------------------------------------------------------------

    async def create(self, ctx: VmContext, observed: ObservedVM) -> None:
        spec, az = ctx.spec, ctx.az
        # Secrets first: a missing Secret, ConfigMap or key is Stalled before anything is written to Azure
        # (no resource group, NIC or public IP made for a VM that cannot be created).
        password, custom_data = await ctx.machine_secrets()
        if spec.availability_set is not None and observed.availability_set_missing:
            await self._ensure_availability_set(ctx)
        nic = await self._ensure_network(ctx, observed)
        inputs = vmt.VmInputs(nic_id=str(nic["id"]), admin_password=password, custom_data=custom_data)
        await ctx.start(az.compute.virtual_machines.begin_create_or_update, spec.resource_group, spec.azure_name,
                        vmt.vm_body(spec, ctx.identity, inputs), action="create", target=spec.vm_id,
                        reason="Creating", message=f"creating VM {spec.azure_name} ({spec.size})")

    async def _ensure_availability_set(self, ctx: VmContext) -> None:
        spec = ctx.spec
        assert spec.availability_set is not None
        name = spec.availability_set.name
        async with ctx.shared(str(vmt.availability_set_id(spec))):
            if await ctx.get(ctx.az.compute.availability_sets.get(spec.resource_group, name)) is None:
                await ctx.ensure_resource_group()
                metrics.AZURE_OPERATIONS.labels(VM_KIND, "create_availability_set").inc()
                body: Any = vmt.availability_set_body(spec)  # ARM's JSON shape, sent as is
                await ctx.az.compute.availability_sets.create_or_update(spec.resource_group, name, body)

    async def _ensure_network(self, ctx: VmContext, observed: ObservedVM) -> dict[str, Any]:
        """Public IP, NSG and NIC as the spec wants them; what it no longer wants goes once the NIC lets go.
        Each missing or outdated piece starts one operation and ends the pass."""
        spec, az = ctx.spec, ctx.az
        rg, tags = spec.resource_group, vmt.vm_tags(spec, ctx.identity)
        nic = observed.nic
        ctx.ensure_owned(f"network interface {vmt.nic_name(spec)}", nic)
        for what, resource in (("network interface", nic), ("public IP address", observed.public_ip),
                               ("network security group", observed.nsg)):
            if infra.in_progress(resource):
                raise InProgress(f"{what} {(resource or {}).get('name')} is {infra.in_progress(resource)}",
                                 ctx.reconciler.recheck_delay(None))
        if nic is None:
            await ctx.ensure_resource_group()
        if spec.network.subnet_id:
            subnet = spec.network.subnet_id
        elif nic is None:
            subnet = await ctx.ensure_auto_subnet()
        else:
            subnet = str(infra.nic_subnet_id(nic))

        pip = None
        if spec.network.public_ip:
            pip = observed.public_ip
            ctx.ensure_owned(f"public IP address {vmt.public_ip_name(spec)}", pip)
            if pip is None:
                pip = await ctx.start(az.network.public_ip_addresses.begin_create_or_update, rg,
                                      vmt.public_ip_name(spec), infra.public_ip_body(spec.location, tags, vmt.zones(spec)),
                                      action="create_public_ip", target=vmt.public_ip_name(spec), reason="Creating",
                                      message=f"creating public IP address {vmt.public_ip_name(spec)}")

        nsg_id = None
        if spec.network.open_ports:
            nsg = observed.nsg
            ctx.ensure_owned(f"network security group {vmt.nsg_name(spec)}", nsg)
            if nsg is None or infra.nsg_open_ports(nsg) != spec.network.open_ports:
                nsg = await ctx.start(az.network.network_security_groups.begin_create_or_update, rg,
                                      vmt.nsg_name(spec), infra.nsg_body(spec.location, tags, spec.network.open_ports),
                                      action="create_nsg" if nsg is None else "update_nsg",
                                      target=vmt.nsg_name(spec), reason="Creating" if nsg is None else "Updating",
                                      message=f"opening ports {list(spec.network.open_ports)} in "
                                              f"network security group {vmt.nsg_name(spec)}")
            nsg_id = str((nsg or {}).get("id"))

        pip_id = str(pip["id"]) if pip else None
        if infra.nic_needs_update(nic, subnet, pip_id, nsg_id):
            nic = await ctx.start(az.network.network_interfaces.begin_create_or_update, rg, vmt.nic_name(spec),
                                  infra.nic_body(spec.location, tags, subnet, pip_id, nsg_id),
                                  action="create_nic" if nic is None else "update_nic", target=vmt.nic_name(spec),
                                  reason="Creating" if nic is None else "Updating",
                                  message=f"{'creating' if nic is None else 'updating'} network interface "
                                          f"{vmt.nic_name(spec)}")
        # What the spec no longer asks for goes, now that the NIC does not reference it.
        if not spec.network.public_ip and ctx.identity.owns(observed.public_ip):
            await ctx.start(az.network.public_ip_addresses.begin_delete, rg, vmt.public_ip_name(spec),
                            action="delete_public_ip", target=vmt.public_ip_name(spec), reason="Updating",
                            message=f"deleting public IP address {vmt.public_ip_name(spec)}, no longer wanted")
        if not spec.network.open_ports and ctx.identity.owns(observed.nsg):
            await ctx.start(az.network.network_security_groups.begin_delete, rg, vmt.nsg_name(spec),
                            action="delete_nsg", target=vmt.nsg_name(spec), reason="Updating",
                            message=f"deleting network security group {vmt.nsg_name(spec)}, no longer wanted")
        assert nic is not None and nic.get("id")
        return nic

    # ---- update ----------------------------------------------------------------------------------------------

    async def update(self, ctx: VmContext, observed: ObservedVM) -> bool:
        assert observed.vm is not None
        await self._ensure_network(ctx, observed)
        diff = vmt.diff_vm(ctx.spec, ctx.identity, observed.vm)
        if await self._apply_diff(ctx, diff):
            return True
        await self._ensure_power(ctx, observed)
        await self._resize_os_disk(ctx, observed, diff)
        await self._requested_actions(ctx, observed)
        return False

    async def _apply_diff(self, ctx: VmContext, diff: vmt.VmDiff) -> bool:
        """PATCH what differs (or only report it, per driftPolicy). True when a write finished at once."""
        spec = ctx.spec
        if diff.rejected:
            raise Stalled("ChangeNotSupported", "; ".join(diff.rejected))
        if diff.immutable:
            raise Stalled("ImmutableFieldChanged",
                          f"{', '.join(diff.immutable)} cannot be changed on an existing Azure VM; "
                          "restore the previous value or create a new VirtualMachine")
        if not diff.patch:
            return False
        if spec.policies.drift == "Report" and not ctx.spec_changed:
            ctx.drift = [f"{p} (reported)" for p in diff.drifted]
            return False
        if not ctx.spec_changed:
            ctx.drift = [f"{p} (corrected)" for p in diff.drifted]
            for path in diff.drifted:
                metrics.DRIFT_CORRECTIONS.labels(VM_KIND, path.split("[")[0]).inc()
        detached = tuple(("DataDiskDetached", f"data disk at lun {lun} detached; the managed disk is kept in Azure")
                         for lun in diff.detached_luns)
        await ctx.start(ctx.az.compute.virtual_machines.begin_update, spec.resource_group, spec.azure_name,
                        diff.patch, action="update", target=spec.vm_id, reason="Updating",
                        message=f"updating {', '.join(diff.drifted) or 'the ownership tag'}", events=detached)
        return True

    def _fresh(self, ctx: VmContext) -> bool:
        """The VM was created by the operation that just finished: nothing it was created with is drift."""
        return ctx.completed is not None and ctx.completed.action == "create"

    async def _ensure_power(self, ctx: VmContext, observed: ObservedVM) -> None:
        spec = ctx.spec
        if vmt.is_ignored("spec.powerState", vmt.ignored_paths(spec)):
            return
        current = _power(observed.vm)
        action = vmt.power_action(spec.power_state, current)
        if action is None:
            return
        view = ((observed.vm or {}).get("properties") or {}).get("instanceView") or {}
        if action == "start" and any(str(s.get("code", "")).lower() == "osstate/generalized"
                                     for s in view.get("statuses") or []):
            raise Stalled("VMGeneralized", f"VM {spec.azure_name} was generalized (captured into an image): Azure "
                                           "never starts it again; set spec.powerState: Deallocated or delete this "
                                           "VirtualMachine")
        if not self._fresh(ctx) and not ctx.spec_changed:
            if spec.policies.drift == "Report":
                ctx.drift.append(f"spec.powerState (reported: {current})")
                return
            ctx.drift.append(f"spec.powerState (corrected: was {current})")
            metrics.DRIFT_CORRECTIONS.labels(VM_KIND, "spec.powerState").inc()
        await ctx.start(getattr(ctx.az.compute.virtual_machines, f"begin_{action}"), spec.resource_group,
                        spec.azure_name, action=action, target=spec.vm_id, reason="Updating",
                        message=f"power state {current} -> {spec.power_state}")

    async def _resize_os_disk(self, ctx: VmContext, observed: ObservedVM, diff: vmt.VmDiff) -> None:
        """Azure grows an OS disk only while the VM is deallocated; the operator never deallocates on its own."""
        size = diff.os_disk_resize
        if size is None:
            return
        if _power(observed.vm) != "Deallocated":
            raise Stalled("OsDiskResizeRequiresDeallocation",
                          f"osDisk.sizeGB {size} is applied while the VM is deallocated: set spec.powerState to "
                          "Deallocated, then back to Running once status.osDisk shows the new size")
        spec = ctx.spec
        await ctx.start(ctx.az.compute.virtual_machines.begin_update, spec.resource_group, spec.azure_name,
                        vmt.os_disk_resize_patch(size), action="update", target=spec.vm_id, reason="Updating",
                        message=f"growing the OS disk to {size} GB")

    async def _requested_actions(self, ctx: VmContext, observed: ObservedVM) -> None:
        """Restart / redeploy once per new annotation value (a fresh VM needs neither: the value is recorded)."""
        spec, ref = ctx.spec, ctx.ref
        for annotation, action, status_key in (
            (RESTART_REQUESTED_ANNOTATION, "restart", "lastRestartRequest"),
            (REDEPLOY_REQUESTED_ANNOTATION, "redeploy", "lastRedeployRequest"),
        ):
            value = ref.annotations.get(annotation)
            if not value or value == ref.status.get(status_key):
                continue
            ctx.fields[status_key] = value  # asked once: recorded with the pass that acts on it
            running = _power(observed.vm) == "Running"
            if not self._fresh(ctx) and (running or action == "redeploy"):
                done = f"VM {spec.azure_name}: {action} done for {annotation}={value}"
                await ctx.start(getattr(ctx.az.compute.virtual_machines, f"begin_{action}"), spec.resource_group,
                                spec.azure_name, action=action, target=spec.vm_id, reason="Updating",
                                message=f"{action} requested ({annotation}={value})",
                                events=((action.capitalize() + "ed", done),))

    # ---- delete ----------------------------------------------------------------------------------------------

    async def delete(self, ctx: VmContext, observed: ObservedVM) -> None:
        spec, az = ctx.spec, ctx.az
        rg = spec.resource_group
        if observed.vm is not None:
            if infra.provisioning_state(observed.vm) == "Deleting":
                raise InProgress(f"VM {spec.azure_name} is being deleted", ctx.reconciler.recheck_delay(None),
                                 "Deleting")
            if ctx.may_delete(observed.vm):
                await ctx.start(az.compute.virtual_machines.begin_delete, rg, spec.azure_name, action="delete",
                                target=spec.vm_id, reason="Deleting", message=f"deleting VM {spec.azure_name}")
            else:
                logger.info("VM %s is not owned by this resource; leaving it in Azure", spec.azure_name,
                            extra=logs.resource(VM_KIND, ctx.ref.namespace, ctx.ref.name))
        await ctx.delete_made_for_it([
            (az.network.network_interfaces, vmt.nic_name(spec), observed.nic, "network interface"),
            (az.network.public_ip_addresses, vmt.public_ip_name(spec), observed.public_ip, "public IP address"),
            (az.network.network_security_groups, vmt.nsg_name(spec), observed.nsg, "network security group"),
        ])

    # ---- status ----------------------------------------------------------------------------------------------

    def status(self, ctx: VmContext, observed: ObservedVM) -> StatusView:
        spec = ctx.spec
        fields = self._status_fields(observed)
        provisioning, power = fields.get("provisioningState"), fields.get("powerState")
        ready = provisioning == "Succeeded" and (
            power == spec.power_state or vmt.is_ignored("spec.powerState", vmt.ignored_paths(spec)))
        message = (f"VM {spec.azure_name} is {power} ({spec.size}) in {spec.location}" if ready
                   else f"provisioningState {provisioning}, power state {power}")
        metrics.record_vm(ctx.ref.namespace, ctx.ref.name, spec.size, spec.location, power, ready)
        return StatusView(fields, ready, message, printable=str(power))

    def observe_only(self, ctx: VmContext, observed: ObservedVM) -> tuple[StatusView, list[str]]:
        spec = ctx.spec
        if observed.vm is None:
            return StatusView({"lastObservedTime": cond.now_rfc3339()}, False,
                              f"VM {spec.azure_name} does not exist in {spec.resource_group} (observing only)",
                              "Observing"), []
        diff = vmt.diff_vm(spec, ctx.identity, observed.vm)
        fields = self._status_fields(observed)
        ready = fields.get("provisioningState") == "Succeeded"
        message = f"VM {spec.azure_name} is {fields.get('powerState')} (observing only: the operator never writes)"
        return StatusView(fields, ready, message, "Observing"), [*diff.drifted, *diff.immutable]

    def _status_fields(self, observed: ObservedVM) -> dict[str, Any]:
        vm = observed.vm or {}
        props = vm.get("properties") or {}
        storage = props.get("storageProfile") or {}
        zones = vm.get("zones") or []
        return {
            "azureResourceId": vm.get("id"),
            "vmId": props.get("vmId"),
            "provisioningState": props.get("provisioningState"),
            "powerState": _power(vm),
            "privateIP": infra.private_ip(observed.nic),
            "publicIP": infra.public_ip_address(observed.public_ip),
            "osDiskId": ((storage.get("osDisk") or {}).get("managedDisk") or {}).get("id"),
            "dataDisks": [
                {"lun": d.get("lun"), "name": d.get("name"), "sizeGB": d.get("diskSizeGB"),
                 "id": (d.get("managedDisk") or {}).get("id")}
                for d in storage.get("dataDisks") or []
            ],
            "availabilitySetId": (props.get("availabilitySet") or {}).get("id"),
            "zone": zones[0] if zones else None,
            "lastObservedTime": cond.now_rfc3339(),
        }

    def forget(self, ref: ResourceRef) -> None:
        metrics.forget_vm(ref.namespace, ref.name)
