"""VirtualMachine controller: observe Azure -> diff against the spec (pure) -> act, then report status.

Every step is idempotent and may be interrupted at any line: a restart observes what Azure has (found by name and
ownership tag) and continues from there, so a crash never produces a second VM.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from azure.core.exceptions import AzureError

from .. import metrics
from ..api import conditions as cond
from ..api.constants import (OWNER_TAG, REDEPLOY_REQUESTED_ANNOTATION, RESTART_REQUESTED_ANNOTATION,
                             owner_tag_value)
from ..api.virtualmachine import SpecError, VirtualMachineSpec, parse_spec
from ..azure import translate as tr
from ..azure.clients import AzureClients, SubscriptionClients
from ..azure.errors import ArmFailure, ErrorKind, classify, is_not_found
from ..config import OperatorConfig
from ..kube import KubeClient, ReferenceNotFound
from .status import ResourceRef, StatusReporter

logger = logging.getLogger(__name__)

KIND = "VirtualMachine"
IN_PROGRESS_STATES = ("Creating", "Updating", "Deleting", "Migrating")
DRIFTED = "Drifted"


class TransientError(Exception):
    """Azure said 'not now': retry with backoff. Carries ARM's code for the Ready condition."""

    def __init__(self, failure: ArmFailure) -> None:
        super().__init__(f"{failure.code}: {failure.message}")
        self.failure = failure


class InProgress(Exception):
    """Azure is still working on the resource (e.g. an operation started before a restart): look again soon."""


class Stalled(Exception):
    """Only the user can fix this: reported as Stalled=True with a reason, retried each resync."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Observed:
    vm: dict[str, Any] | None
    nic: dict[str, Any] | None = None
    public_ip: dict[str, Any] | None = None
    created: bool = False  #: the VM was created in this pass
    drift: list[str] = field(default_factory=list)  #: spec paths found different (and what was done)


def _as_dict(model: Any) -> dict[str, Any]:
    return model.as_dict() if hasattr(model, "as_dict") else dict(model)


class VirtualMachineController:
    def __init__(self, config: OperatorConfig, azure: AzureClients, reporter: StatusReporter,
                 kube: KubeClient) -> None:
        self.config = config
        self.azure = azure
        self.reporter = reporter
        self.kube = kube
        #: Resources shared by many VMs (resource group, VNet, availability set) are created by one reconcile
        #: while the others wait, instead of racing into ARM's "another operation is in progress" conflicts.
        self._shared_locks: dict[str, asyncio.Lock] = {}

    def _shared(self, resource_id: str) -> asyncio.Lock:
        return self._shared_locks.setdefault(resource_id.lower(), asyncio.Lock())

    # ---- entry points ----------------------------------------------------------------------------------------

    async def reconcile(self, ref: ResourceRef) -> bool:
        """Bring Azure to the spec and report status. Returns True when Ready.

        Raises TransientError / InProgress for the caller to retry later; permanent problems end as Stalled.
        """
        with metrics.RECONCILE_SECONDS.labels(KIND).time():
            try:
                ready = await self._reconcile(ref)
            except TransientError as exc:
                metrics.RECONCILES.labels(KIND, "transient_error").inc()
                await self.reporter.report(ref, [
                    cond.Condition(cond.READY, False, exc.failure.code, exc.failure.message),
                    cond.Condition(cond.RECONCILING, True, "RetryingAfterError", exc.failure.message),
                    cond.Condition(cond.STALLED, False, "Retrying", "a transient Azure error will be retried"),
                ], {"printableStatus": "Provisioning"})
                raise
            except Stalled as exc:
                metrics.RECONCILES.labels(KIND, "permanent_error").inc()
                await self._stalled(ref, exc.reason, str(exc))
                return False
            metrics.RECONCILES.labels(KIND, "success" if ready else "in_progress").inc()
            return ready

    async def delete(self, ref: ResourceRef) -> None:
        """Delete the VM and what was created only for it (never what is not tagged as this resource's own),
        unless deletionPolicy is Orphan or the resource is only observed or paused."""
        deletion, reconcile = ref.spec.get("deletionPolicy", "Delete"), ref.spec.get("reconcilePolicy", "Manage")
        if deletion == "Orphan" or reconcile in ("Observe", "Pause"):
            logger.info("%s/%s: leaving the VM in Azure (deletionPolicy %s, reconcilePolicy %s)",
                        ref.namespace, ref.name, deletion, reconcile)
            self._forget(ref)
            return
        try:
            spec, az = await self._spec_and_clients(ref)
        except SpecError as exc:
            logger.warning("%s/%s: the spec was never valid (%s): nothing was created; releasing it",
                           ref.namespace, ref.name, exc)
            self._forget(ref)
            return
        except Stalled as exc:
            # Without its credentials the VM cannot be deleted; releasing the resource would orphan it.
            message = (f"cannot delete the Azure VM: {exc}; restore it, or set spec.deletionPolicy: Orphan "
                       "to leave the VM in Azure")
            await self.reporter.report(ref, [cond.Condition(cond.READY, False, exc.reason, message),
                                             cond.Condition(cond.STALLED, True, exc.reason, message)])
            raise TransientError(ArmFailure(ErrorKind.TRANSIENT, exc.reason, message)) from exc
        ours = self._ownership(ref, spec)
        try:
            vm = await self._get_vm(az, spec, expand=None)
            if ours(vm):
                await self.reporter.report(ref, [
                    cond.Condition(cond.READY, False, "Deleting", f"deleting VM {spec.azure_name}"),
                    cond.Condition(cond.RECONCILING, True, "Deleting", f"deleting VM {spec.azure_name}"),
                ], {"printableStatus": "Deleting"})
                metrics.AZURE_OPERATIONS.labels(KIND, "delete").inc()
                await (await az.compute.virtual_machines.begin_delete(spec.resource_group, spec.azure_name)).result()
            elif vm is not None:
                logger.info("%s/%s: VM %s is not owned by this resource; leaving it in Azure",
                            ref.namespace, ref.name, spec.azure_name)
            rg = spec.resource_group
            await self._delete_if(az.network.network_interfaces, rg, tr.nic_name(spec), ours, "delete_nic")
            await self._delete_if(az.network.public_ip_addresses, rg, tr.public_ip_name(spec), ours, "delete_public_ip")
            await self._delete_if(az.network.network_security_groups, rg, tr.nsg_name(spec), ours, "delete_nsg")
        except AzureError as exc:
            failure = classify(exc)
            await self.reporter.report(ref, [
                cond.Condition(cond.READY, False, failure.code, f"deleting: {failure.message}"),
            ])
            raise TransientError(failure) from exc
        self._forget(ref)

    # ---- the reconcile pass ----------------------------------------------------------------------------------

    async def _reconcile(self, ref: ResourceRef) -> bool:
        try:
            spec, az = await self._spec_and_clients(ref)
        except SpecError as exc:
            raise Stalled(exc.reason, str(exc)) from exc
        policy = spec.policies.reconcile
        if policy == "Pause":
            await self.reporter.report(ref, [
                cond.Condition(cond.RECONCILING, False, "Paused", "reconcilePolicy is Pause: Azure is not touched"),
                cond.Condition(cond.STALLED, False, "Paused", ""),
            ], {"printableStatus": "Paused"})
            return True
        owner = self._owner(ref)
        uid = str(ref.body["metadata"].get("uid") or "")
        try:
            observed = Observed(vm=await self._get_vm(az, spec))
            if policy == "Observe":  # reading is harmless: any VM, ours or not, can be observed
                return await self._observe_only(ref, az, spec, owner, uid, observed)
            if observed.vm is not None:
                verdict = tr.adoption_verdict(observed.vm, owner, uid, spec.policies.adoption)
                if verdict is not None:
                    raise Stalled(verdict, self._not_ours_message(spec, observed.vm, owner))

            state = (observed.vm or {}).get("properties", {}).get("provisioningState")
            if state in IN_PROGRESS_STATES:
                await self._progress(ref, state, f"Azure reports provisioningState {state}")
                raise InProgress(state)
            if spec.availability_set:
                await self._ensure_availability_set(az, spec)
            observed.nic, observed.public_ip = await self._ensure_network(az, spec, owner, uid)
            if observed.vm is None or state == "Failed":
                # A VM whose last operation failed is recovered the way Azure documents: PUT the model again.
                await self._progress(ref, "Creating", f"creating VM {spec.azure_name} ({spec.size})")
                await self._create_vm(ref, az, spec, owner, uid, observed.nic)
                observed.created = True
            written = observed.created or await self._apply_diff(ref, az, spec, owner, uid, observed)
            if written:  # read back what Azure made of the write; otherwise the first read is still current
                observed.vm = await self._get_vm(az, spec)
                if observed.vm is None:
                    raise InProgress("the VM disappeared while being reconciled")
            await self._ensure_power(ref, az, spec, observed)
            await self._resize_os_disk(ref, az, spec, owner, uid, observed)
            fields = await self._requested_actions(ref, az, spec, observed)
        except AzureError as exc:
            failure = classify(exc)
            if failure.transient:
                raise TransientError(failure) from exc
            raise Stalled(failure.code, failure.message) from exc

        fields.update(self._status_fields(spec, observed))
        provisioning = fields.get("provisioningState")
        if provisioning == "Failed":
            raise TransientError(ArmFailure(ErrorKind.TRANSIENT, "ProvisioningFailed",
                                            "Azure reports provisioningState Failed"))
        ready = provisioning == "Succeeded" and (
            fields.get("powerState") == spec.power_state or tr.is_ignored("spec.powerState", tr.ignored_paths(spec)))
        message = (
            f"VM {spec.azure_name} is {fields.get('powerState')} ({spec.size}) in {spec.location}"
            if ready else f"provisioningState {provisioning}, power state {fields.get('powerState')}"
        )
        if ready:
            fields["appliedGeneration"] = ref.generation
        fields["printableStatus"] = fields.get("powerState") if ready else "Provisioning"
        await self.reporter.report(ref, [
            cond.Condition(cond.READY, ready, "Reconciled" if ready else "InProgress", message),
            cond.Condition(cond.RECONCILING, not ready, "Reconciled" if ready else "InProgress", "" if ready else message),
            cond.Condition(cond.STALLED, False, "Reconciled", ""),
            self._drift_condition(observed),
        ], fields)
        metrics.record_vm(ref.namespace, ref.name, spec.size, spec.location, fields.get("powerState"), ready)
        if not ready:
            raise InProgress(message)
        return True

    async def _observe_only(self, ref: ResourceRef, az: SubscriptionClients, spec: VirtualMachineSpec, owner: str,
                            uid: str, observed: Observed) -> bool:
        """reconcilePolicy Observe: reads only; the status tells what Azure has and how it differs."""
        if observed.vm is None:
            await self.reporter.report(ref, [
                cond.Condition(cond.READY, False, "NotFound",
                               f"VM {spec.azure_name} does not exist in {spec.resource_group} (observing only)"),
                cond.Condition(cond.RECONCILING, False, "Observing", ""),
                cond.Condition(cond.STALLED, False, "Observing", ""),
            ], {"printableStatus": "Observing", "lastObservedTime": cond.now_rfc3339()})
            return False
        # The VM may not be one we created: follow its own references instead of our naming convention.
        nic_ref = tr.parse_resource_id(tr.vm_primary_nic_id(observed.vm))
        if nic_ref:
            observed.nic = await self._get(az.network.network_interfaces.get(*nic_ref))
        pip_ref = tr.parse_resource_id(tr.nic_public_ip_id(observed.nic))
        if pip_ref:
            observed.public_ip = await self._get(az.network.public_ip_addresses.get(*pip_ref))
        diff = tr.diff_vm(spec, owner, observed.vm, uid)
        observed.drift = [f"{p} (reported)" for p in (*diff.drifted, *diff.immutable)]
        fields = {**self._status_fields(spec, observed), "printableStatus": "Observing"}
        ready = fields.get("provisioningState") == "Succeeded"
        await self.reporter.report(ref, [
            cond.Condition(cond.READY, ready, "Observed", f"VM {spec.azure_name} is {fields.get('powerState')} "
                                                         "(observing only: the operator never writes)"),
            cond.Condition(cond.RECONCILING, False, "Observing", ""),
            cond.Condition(cond.STALLED, False, "Observing", ""),
            self._drift_condition(observed),
        ], fields)
        return ready

    async def _apply_diff(self, ref: ResourceRef, az: SubscriptionClients, spec: VirtualMachineSpec, owner: str,
                          uid: str, observed: Observed) -> bool:
        """PATCH what differs (or only report it, per driftPolicy). True when Azure was written to."""
        assert observed.vm is not None
        diff = tr.diff_vm(spec, owner, observed.vm, uid)
        if diff.rejected:
            raise Stalled("ChangeNotSupported", "; ".join(diff.rejected))
        if diff.immutable:
            raise Stalled("ImmutableFieldChanged",
                          f"{', '.join(diff.immutable)} cannot be changed on an existing Azure VM; "
                          "restore the previous value or create a new VirtualMachine")
        if not diff.patch:
            return False
        spec_changed = ref.generation != ref.status.get("appliedGeneration")
        if spec.policies.drift == "Report" and not spec_changed:
            observed.drift = [f"{p} (reported)" for p in diff.drifted]
            return False
        if not spec_changed:
            observed.drift = [f"{p} (corrected)" for p in diff.drifted]
            for path in diff.drifted:
                metrics.DRIFT_CORRECTIONS.labels(KIND, path.split("[")[0]).inc()
        await self._progress(ref, "Updating", f"updating {', '.join(diff.drifted)}")
        metrics.AZURE_OPERATIONS.labels(KIND, "update").inc()
        poller = await az.compute.virtual_machines.begin_update(spec.resource_group, spec.azure_name, diff.patch)
        await poller.result()
        for lun in diff.detached_luns:
            self.reporter.event(ref, "Normal", "DataDiskDetached",
                                f"data disk at lun {lun} detached; the managed disk is kept in Azure")
        return True

    async def _resize_os_disk(self, ref: ResourceRef, az: SubscriptionClients, spec: VirtualMachineSpec, owner: str,
                              uid: str, observed: Observed) -> None:
        """Azure grows an OS disk only while the VM is deallocated; the operator never deallocates on its own."""
        assert observed.vm is not None
        size = tr.diff_vm(spec, owner, observed.vm, uid).os_disk_resize
        if size is None:
            return
        current = tr.power_state((observed.vm.get("properties") or {}).get("instanceView"))
        if current != "Deallocated":
            raise Stalled("OsDiskResizeRequiresDeallocation",
                          f"osDisk.sizeGB {size} is applied while the VM is deallocated: set spec.powerState to "
                          "Deallocated, then back to Running once status.osDisk shows the new size")
        await self._progress(ref, "Updating", f"growing the OS disk to {size} GB")
        metrics.AZURE_OPERATIONS.labels(KIND, "update").inc()
        await (await az.compute.virtual_machines.begin_update(
            spec.resource_group, spec.azure_name, tr.os_disk_resize_patch(size))).result()
        observed.vm = await self._get_vm(az, spec)

    # ---- steps -----------------------------------------------------------------------------------------------

    def _owner(self, ref: ResourceRef) -> str:
        return owner_tag_value(self.config.cluster_id, ref.namespace, ref.name)

    def _ownership(self, ref: ResourceRef, spec: VirtualMachineSpec) -> Callable[[Mapping[str, Any] | None], bool]:
        """Whether an Azure resource is this custom resource's to change or delete: it carries this resource's
        ownership tag and the adoption policy lets this resource manage it."""
        owner, uid = self._owner(ref), str(ref.body["metadata"].get("uid") or "")

        def ours(resource: Mapping[str, Any] | None) -> bool:
            return (resource is not None and tr.is_owned_by(resource, owner)
                    and tr.adoption_verdict(resource, owner, uid, spec.policies.adoption) is None)

        return ours

    async def _spec_and_clients(self, ref: ResourceRef) -> tuple[VirtualMachineSpec, SubscriptionClients]:
        """Parse the spec; with credentialsSecretRef, the Secret (same namespace only) brings the credential."""
        credential_key, secret_subscription = None, None
        secret_name = (ref.spec.get("credentialsSecretRef") or {}).get("name")
        if secret_name:
            try:
                values = await self.kube.read_secret(ref.namespace, str(secret_name))
            except ReferenceNotFound as exc:
                raise Stalled("SecretNotFound", f"credentialsSecretRef: {exc}") from exc
            try:
                credential_key = self.azure.credential_for_secret(values)
            except ValueError as exc:
                raise Stalled("InvalidCredentialsSecret", f"Secret {secret_name}: {exc}") from exc
            secret_subscription = values.get("subscriptionId") or values.get("AZURE_SUBSCRIPTION_ID")
        spec = parse_spec(ref.spec, ref.name, self.config.subscription_id, secret_subscription)
        return spec, self.azure.for_subscription(spec.subscription_id, credential_key)

    async def _get(self, coro: Any) -> dict[str, Any] | None:
        try:
            return _as_dict(await coro)
        except AzureError as exc:
            if is_not_found(exc):
                return None
            raise

    async def _get_vm(self, az: SubscriptionClients, spec: VirtualMachineSpec,
                      expand: str | None = "instanceView") -> dict[str, Any] | None:
        kwargs = {"expand": expand} if expand else {}
        vm = await self._get(az.compute.virtual_machines.get(spec.resource_group, spec.azure_name, **kwargs))
        if vm is not None and expand == "instanceView" and spec.user_data is not None:
            # ARM returns userData only when asked for it, and $expand takes one value.
            with_user_data = await self._get(
                az.compute.virtual_machines.get(spec.resource_group, spec.azure_name, expand="userData"))
            if with_user_data is not None:
                vm.setdefault("properties", {})["userData"] = with_user_data.get("properties", {}).get("userData")
        return vm

    async def _ensure_resource_group(self, az: SubscriptionClients, spec: VirtualMachineSpec) -> None:
        async with self._shared(f"/subscriptions/{spec.subscription_id}/resourceGroups/{spec.resource_group}"):
            try:
                await az.resources.resource_groups.get(spec.resource_group)
            except AzureError as exc:
                if not is_not_found(exc):
                    raise
                metrics.AZURE_OPERATIONS.labels(KIND, "create_resource_group").inc()
                await az.resources.resource_groups.create_or_update(spec.resource_group,
                                                                    tr.resource_group_body(spec.location))

    async def _ensure_availability_set(self, az: SubscriptionClients, spec: VirtualMachineSpec) -> None:
        assert spec.availability_set is not None
        name = spec.availability_set.name
        async with self._shared(str(tr.availability_set_id(spec))):
            if await self._get(az.compute.availability_sets.get(spec.resource_group, name)) is None:
                await self._ensure_resource_group(az, spec)
                metrics.AZURE_OPERATIONS.labels(KIND, "create_availability_set").inc()
                await az.compute.availability_sets.create_or_update(spec.resource_group, name,
                                                                    tr.availability_set_body(spec))

    async def _ensure_subnet(self, az: SubscriptionClients, spec: VirtualMachineSpec) -> str:
        if spec.network.subnet_id:
            return spec.network.subnet_id
        vnet = tr.auto_vnet_name(spec.location)
        subnet = tr.subnet_id(spec.subscription_id, spec.resource_group, vnet, tr.AUTO_SUBNET_NAME)
        async with self._shared(subnet):
            if await self._get(az.network.virtual_networks.get(spec.resource_group, vnet)) is None:
                metrics.AZURE_OPERATIONS.labels(KIND, "create_vnet").inc()
                await (await az.network.virtual_networks.begin_create_or_update(
                    spec.resource_group, vnet, tr.auto_vnet_body(spec.location))).result()
        return subnet

    async def _ensure_owned(self, kind: str, name: str, resource: dict[str, Any] | None, owner: str) -> None:
        if resource is not None and not tr.is_owned_by(resource, owner):
            holder = (resource.get("tags") or {}).get(OWNER_TAG) or "someone else (no ownership tag)"
            raise Stalled("OwnershipConflict", f"{kind} {name} belongs to {holder}, not {owner}")

    async def _ensure_network(self, az: SubscriptionClients, spec: VirtualMachineSpec, owner: str,
                              uid: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        rg = spec.resource_group
        nic = await self._get(az.network.network_interfaces.get(rg, tr.nic_name(spec)))
        await self._ensure_owned("network interface", tr.nic_name(spec), nic, owner)
        if nic is None:
            await self._ensure_resource_group(az, spec)
        subnet = await self._ensure_subnet(az, spec) if nic is None or spec.network.subnet_id else tr.nic_subnet_id(nic)

        pip = None
        if spec.network.public_ip:
            pip = await self._get(az.network.public_ip_addresses.get(rg, tr.public_ip_name(spec)))
            await self._ensure_owned("public IP address", tr.public_ip_name(spec), pip, owner)
            if pip is None:
                metrics.AZURE_OPERATIONS.labels(KIND, "create_public_ip").inc()
                pip = _as_dict(await (await az.network.public_ip_addresses.begin_create_or_update(
                    rg, tr.public_ip_name(spec), tr.public_ip_body(spec, owner, uid))).result())

        nsg_id = None
        if spec.network.open_ports:
            nsg = await self._get(az.network.network_security_groups.get(rg, tr.nsg_name(spec)))
            await self._ensure_owned("network security group", tr.nsg_name(spec), nsg, owner)
            if nsg is None or tr.nsg_open_ports(nsg) != spec.network.open_ports:
                metrics.AZURE_OPERATIONS.labels(KIND, "create_nsg" if nsg is None else "update_nsg").inc()
                nsg = _as_dict(await (await az.network.network_security_groups.begin_create_or_update(
                    rg, tr.nsg_name(spec), tr.nsg_body(spec, owner, uid))).result())
            nsg_id = nsg.get("id")

        pip_id = pip.get("id") if pip else None
        if (nic is None or tr.nic_subnet_id(nic) != subnet or tr.nic_public_ip_id(nic) != pip_id
                or (tr.nic_nsg_id(nic) or "").lower() != (nsg_id or "").lower()):
            metrics.AZURE_OPERATIONS.labels(KIND, "create_nic" if nic is None else "update_nic").inc()
            nic = _as_dict(await (await az.network.network_interfaces.begin_create_or_update(
                rg, tr.nic_name(spec), tr.nic_body(spec, owner, str(subnet), pip_id, nsg_id, uid))).result())
        # What the spec no longer asks for goes, now that the NIC does not reference it.
        def tagged_ours(resource: Mapping[str, Any] | None) -> bool:
            return resource is not None and tr.is_owned_by(resource, owner)

        if not spec.network.public_ip:
            await self._delete_if(az.network.public_ip_addresses, rg, tr.public_ip_name(spec), tagged_ours,
                                  "delete_public_ip")
        if not spec.network.open_ports:
            await self._delete_if(az.network.network_security_groups, rg, tr.nsg_name(spec), tagged_ours,
                                  "delete_nsg")
        return nic, pip

    async def _delete_if(self, operations: Any, resource_group: str, name: str,
                         ours: Callable[[Mapping[str, Any] | None], bool], operation: str) -> None:
        """Delete a network resource (NIC, public IP, NSG) when it exists and ``ours`` says it may go."""
        if ours(await self._get(operations.get(resource_group, name))):
            metrics.AZURE_OPERATIONS.labels(KIND, operation).inc()
            await (await operations.begin_delete(resource_group, name)).result()

    async def _vm_inputs(self, ref: ResourceRef, spec: VirtualMachineSpec, nic_id: str) -> tr.VmInputs:
        """Secrets and user data the VM is created with, read from the resource's own namespace only."""
        password = custom_data = None
        try:
            if spec.admin_password_ref:
                values = await self.kube.read_secret(ref.namespace, spec.admin_password_ref.name)
                password = values.get(spec.admin_password_ref.key)
                if not password:
                    raise Stalled("SecretKeyNotFound", f"Secret {spec.admin_password_ref.name} has no key "
                                                       f"{spec.admin_password_ref.key!r}")
            source = spec.custom_data_secret_ref or spec.custom_data_config_map_ref
            if source is not None:
                values = (await self.kube.read_secret(ref.namespace, source.name) if spec.custom_data_secret_ref
                          else await self.kube.read_config_map(ref.namespace, source.name))
                if source.key not in values:
                    raise Stalled("SecretKeyNotFound", f"{source.name} has no key {source.key!r} for customData")
                custom_data = tr.b64(values[source.key])
        except ReferenceNotFound as exc:
            raise Stalled(f"{exc.kind}NotFound", str(exc)) from exc
        return tr.VmInputs(nic_id=nic_id, admin_password=password, custom_data=custom_data)

    async def _create_vm(self, ref: ResourceRef, az: SubscriptionClients, spec: VirtualMachineSpec, owner: str,
                         uid: str, nic: Mapping[str, Any] | None) -> None:
        assert nic is not None and nic.get("id")
        inputs = await self._vm_inputs(ref, spec, str(nic["id"]))
        metrics.AZURE_OPERATIONS.labels(KIND, "create").inc()
        poller = await az.compute.virtual_machines.begin_create_or_update(
            spec.resource_group, spec.azure_name, tr.vm_body(spec, owner, inputs, uid))
        await poller.result()

    async def _ensure_power(self, ref: ResourceRef, az: SubscriptionClients, spec: VirtualMachineSpec,
                            observed: Observed) -> None:
        assert observed.vm is not None
        if tr.is_ignored("spec.powerState", tr.ignored_paths(spec)):
            return
        current = tr.power_state((observed.vm.get("properties") or {}).get("instanceView"))
        action = tr.power_action(spec.power_state, current)
        if action is None:
            return
        spec_changed = ref.generation != ref.status.get("appliedGeneration")
        if not observed.created and not spec_changed:
            if spec.policies.drift == "Report":
                observed.drift.append(f"spec.powerState (reported: {current})")
                return
            observed.drift.append(f"spec.powerState (corrected: was {current})")
            metrics.DRIFT_CORRECTIONS.labels(KIND, "spec.powerState").inc()
        await self._progress(ref, "Updating", f"power state {current} -> {spec.power_state}")
        metrics.AZURE_OPERATIONS.labels(KIND, action).inc()
        operation = getattr(az.compute.virtual_machines, f"begin_{action}")
        await (await operation(spec.resource_group, spec.azure_name)).result()
        observed.vm = await self._get_vm(az, spec)

    async def _requested_actions(self, ref: ResourceRef, az: SubscriptionClients, spec: VirtualMachineSpec,
                                 observed: Observed) -> dict[str, Any]:
        """Restart / redeploy once per new annotation value (a fresh VM needs neither: the value is recorded)."""
        fields: dict[str, Any] = {}
        for annotation, action, status_key in (
            (RESTART_REQUESTED_ANNOTATION, "restart", "lastRestartRequest"),
            (REDEPLOY_REQUESTED_ANNOTATION, "redeploy", "lastRedeployRequest"),
        ):
            value = ref.annotations.get(annotation)
            if not value or value == ref.status.get(status_key):
                continue
            running = tr.power_state(((observed.vm or {}).get("properties") or {}).get("instanceView")) == "Running"
            if not observed.created and (running or action == "redeploy"):
                await self._progress(ref, "Updating", f"{action} requested ({annotation}={value})")
                metrics.AZURE_OPERATIONS.labels(KIND, action).inc()
                operation = getattr(az.compute.virtual_machines, f"begin_{action}")
                await (await operation(spec.resource_group, spec.azure_name)).result()
                self.reporter.event(ref, "Normal", action.capitalize() + "ed",
                                    f"VM {spec.azure_name}: {action} done for {annotation}={value}")
                observed.vm = await self._get_vm(az, spec)
            fields[status_key] = value
        return fields

    # ---- status ----------------------------------------------------------------------------------------------

    def _status_fields(self, spec: VirtualMachineSpec, observed: Observed) -> dict[str, Any]:
        vm = observed.vm or {}
        props = vm.get("properties") or {}
        storage = props.get("storageProfile") or {}
        zones = vm.get("zones") or []
        fields: dict[str, Any] = {
            "azureResourceId": vm.get("id"),
            "vmId": props.get("vmId"),
            "provisioningState": props.get("provisioningState"),
            "powerState": tr.power_state(props.get("instanceView")),
            "privateIP": tr.private_ip(observed.nic),
            "publicIP": tr.public_ip_address(observed.public_ip),
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
        if observed.drift:
            fields["drift"] = {"fields": observed.drift, "detectedTime": cond.now_rfc3339(),
                               "action": "Reported" if spec.policies.drift == "Report"
                               or spec.policies.reconcile == "Observe" else "Corrected"}
        return fields

    def _drift_condition(self, observed: Observed) -> cond.Condition:
        if observed.drift:
            return cond.Condition(DRIFTED, True, "DriftDetected", "; ".join(observed.drift))
        return cond.Condition(DRIFTED, False, "NoDrift", "")

    async def _progress(self, ref: ResourceRef, reason: str, message: str) -> None:
        await self.reporter.report(ref, [
            cond.Condition(cond.READY, False, reason, message),
            cond.Condition(cond.RECONCILING, True, reason, message),
            cond.Condition(cond.STALLED, False, reason, ""),
        ], {"printableStatus": "Provisioning"})

    async def _stalled(self, ref: ResourceRef, reason: str, message: str) -> None:
        await self.reporter.report(ref, [
            cond.Condition(cond.READY, False, reason, message),
            cond.Condition(cond.RECONCILING, False, reason, ""),
            cond.Condition(cond.STALLED, True, reason, message),
        ], {"printableStatus": "Failed"})

    def _not_ours_message(self, spec: VirtualMachineSpec, vm: Mapping[str, Any], owner: str) -> str:
        holder = (vm.get("tags") or {}).get(OWNER_TAG)
        if holder and holder != owner:
            return f"Azure VM {spec.azure_name} in {spec.resource_group} belongs to {holder}, not {owner}"
        return (f"an Azure VM named {spec.azure_name} already exists in {spec.resource_group} and adoptionPolicy "
                f"{spec.policies.adoption} does not allow taking it over; it is left untouched")

    def _forget(self, ref: ResourceRef) -> None:
        metrics.forget_vm(ref.namespace, ref.name)
        self.reporter.forget(ref)
