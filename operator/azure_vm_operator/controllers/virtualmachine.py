"""VirtualMachine controller: observe Azure -> diff against the spec (pure) -> act, then report status.

Every step is idempotent and may be interrupted at any line: a restart observes what Azure has (found by name and
ownership tag) and continues from there, so a crash never produces a second VM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from azure.core.exceptions import AzureError

from .. import metrics
from ..api import conditions as cond
from ..api.constants import OWNER_TAG, owner_tag_value
from ..api.virtualmachine import SpecError, VirtualMachineSpec, parse_spec
from ..azure import translate as tr
from ..azure.clients import AzureClients, SubscriptionClients
from ..azure.errors import ArmFailure, ErrorKind, classify, is_not_found
from ..config import OperatorConfig
from .status import ResourceRef, StatusReporter

logger = logging.getLogger(__name__)

KIND = "VirtualMachine"
IN_PROGRESS_STATES = ("Creating", "Updating", "Deleting", "Migrating")


class TransientError(Exception):
    """Azure said 'not now': retry with backoff. Carries ARM's code for the Ready condition."""

    def __init__(self, failure: ArmFailure) -> None:
        super().__init__(f"{failure.code}: {failure.message}")
        self.failure = failure


class InProgress(Exception):
    """Azure is still working on the resource (e.g. an operation started before a restart): look again soon."""


@dataclass
class Observed:
    vm: dict[str, Any] | None
    nic: dict[str, Any] | None = None
    public_ip: dict[str, Any] | None = None


def _as_dict(model: Any) -> dict[str, Any]:
    return model.as_dict() if hasattr(model, "as_dict") else dict(model)


class VirtualMachineController:
    def __init__(self, config: OperatorConfig, azure: AzureClients, reporter: StatusReporter) -> None:
        self.config = config
        self.azure = azure
        self.reporter = reporter

    # ---- reconcile -------------------------------------------------------------------------------------------

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
                ])
                raise
            metrics.RECONCILES.labels(KIND, "success" if ready else "permanent_error").inc()
            return ready

    async def _reconcile(self, ref: ResourceRef) -> bool:
        try:
            spec = parse_spec(ref.spec, ref.name, self.config.subscription_id)
        except SpecError as exc:
            await self._stalled(ref, "InvalidSpec", str(exc))
            return False
        owner = owner_tag_value(self.config.cluster_id, ref.namespace, ref.name)
        az = self.azure.for_subscription(spec.subscription_id)
        try:
            observed = Observed(vm=await self._get_vm(az, spec))
            if observed.vm is not None and not tr.is_owned_by(observed.vm, owner):
                await self._not_ours(ref, spec, observed.vm, owner)
                return False
            state = (observed.vm or {}).get("properties", {}).get("provisioningState")
            if state in IN_PROGRESS_STATES:
                await self._progress(ref, state, f"Azure reports provisioningState {state}")
                raise InProgress(state)

            observed.nic, observed.public_ip = await self._ensure_network(ref, az, spec, owner)
            if observed.vm is None or state == "Failed":
                # A VM whose last operation failed is recovered the way Azure documents: PUT the model again.
                await self._progress(ref, "Creating", f"creating VM {spec.azure_name} ({spec.size})")
                await self._create_vm(az, spec, owner, observed.nic)
            else:
                diff = tr.diff_vm(spec, owner, observed.vm)
                if diff.immutable:
                    await self._stalled(
                        ref, "ImmutableFieldChanged",
                        f"{', '.join(diff.immutable)} cannot be changed on an existing Azure VM; "
                        "restore the previous value or create a new VirtualMachine",
                        self._status_fields(spec, observed),
                    )
                    return False
                if diff.patch:
                    await self._progress(ref, "Updating", f"updating {', '.join(diff.drifted)}")
                    for path in diff.drifted:
                        metrics.DRIFT_CORRECTIONS.labels(KIND, path).inc()
                    metrics.AZURE_OPERATIONS.labels(KIND, "update").inc()
                    poller = await az.compute.virtual_machines.begin_update(spec.resource_group, spec.azure_name, diff.patch)
                    await poller.result()
            observed.vm = await self._get_vm(az, spec)
            if observed.vm is None:
                raise InProgress("the VM disappeared while being reconciled")
            await self._ensure_power(ref, az, spec, observed)
        except OwnershipConflict as exc:
            await self._stalled(ref, "OwnershipConflict", str(exc))
            return False
        except AzureError as exc:
            failure = classify(exc)
            if failure.transient:
                raise TransientError(failure) from exc
            await self._stalled(ref, failure.code, failure.message)
            return False

        fields = self._status_fields(spec, observed)
        provisioning = fields.get("provisioningState")
        if provisioning == "Failed":
            raise TransientError(ArmFailure(ErrorKind.TRANSIENT, "ProvisioningFailed",
                                            "Azure reports provisioningState Failed"))
        ready = provisioning == "Succeeded" and fields.get("powerState") == spec.power_state
        message = (
            f"VM {spec.azure_name} is {fields.get('powerState')} ({spec.size}) in {spec.location}"
            if ready else f"provisioningState {provisioning}, power state {fields.get('powerState')}"
        )
        await self.reporter.report(ref, [
            cond.Condition(cond.READY, ready, "Reconciled" if ready else "InProgress", message),
            cond.Condition(cond.RECONCILING, not ready, "Reconciled" if ready else "InProgress", "" if ready else message),
            cond.Condition(cond.STALLED, False, "Reconciled", ""),
        ], fields)
        metrics.record_vm(ref.namespace, ref.name, spec.size, spec.location, fields.get("powerState"), ready)
        if not ready:
            raise InProgress(message)
        return True

    # ---- delete ----------------------------------------------------------------------------------------------

    async def delete(self, ref: ResourceRef) -> None:
        """Delete the VM and the NIC / public IP created for it; never anything not tagged as this resource's."""
        try:
            spec = parse_spec(ref.spec, ref.name, self.config.subscription_id)
        except SpecError as exc:
            logger.warning("%s/%s: spec is invalid (%s); nothing could have been created, releasing it",
                           ref.namespace, ref.name, exc)
            return
        owner = owner_tag_value(self.config.cluster_id, ref.namespace, ref.name)
        az = self.azure.for_subscription(spec.subscription_id)
        try:
            vm = await self._get_vm(az, spec, expand=False)
            if vm is not None and tr.is_owned_by(vm, owner):
                await self._progress(ref, "Deleting", f"deleting VM {spec.azure_name}")
                metrics.AZURE_OPERATIONS.labels(KIND, "delete").inc()
                await (await az.compute.virtual_machines.begin_delete(spec.resource_group, spec.azure_name)).result()
            elif vm is not None:
                logger.info("%s/%s: VM %s is not owned by this resource; leaving it in Azure",
                            ref.namespace, ref.name, spec.azure_name)
            nic = await self._get(az.network.network_interfaces.get(spec.resource_group, tr.nic_name(spec)))
            if nic is not None and tr.is_owned_by(nic, owner):
                metrics.AZURE_OPERATIONS.labels(KIND, "delete_nic").inc()
                await (await az.network.network_interfaces.begin_delete(spec.resource_group, tr.nic_name(spec))).result()
            pip = await self._get(az.network.public_ip_addresses.get(spec.resource_group, tr.public_ip_name(spec)))
            if pip is not None and tr.is_owned_by(pip, owner):
                metrics.AZURE_OPERATIONS.labels(KIND, "delete_public_ip").inc()
                await (await az.network.public_ip_addresses.begin_delete(
                    spec.resource_group, tr.public_ip_name(spec))).result()
        except AzureError as exc:
            failure = classify(exc)
            await self.reporter.report(ref, [
                cond.Condition(cond.READY, False, failure.code, f"deleting: {failure.message}"),
            ])
            raise TransientError(failure) from exc
        metrics.forget_vm(ref.namespace, ref.name)
        self.reporter.forget(ref)

    # ---- steps -----------------------------------------------------------------------------------------------

    async def _get(self, coro: Any) -> dict[str, Any] | None:
        try:
            return _as_dict(await coro)
        except AzureError as exc:
            if is_not_found(exc):
                return None
            raise

    async def _get_vm(self, az: SubscriptionClients, spec: VirtualMachineSpec, expand: bool = True) -> dict[str, Any] | None:
        kwargs = {"expand": "instanceView"} if expand else {}
        return await self._get(az.compute.virtual_machines.get(spec.resource_group, spec.azure_name, **kwargs))

    async def _ensure_resource_group(self, az: SubscriptionClients, spec: VirtualMachineSpec) -> None:
        try:
            await az.resources.resource_groups.get(spec.resource_group)
        except AzureError as exc:
            if not is_not_found(exc):
                raise
            metrics.AZURE_OPERATIONS.labels(KIND, "create_resource_group").inc()
            await az.resources.resource_groups.create_or_update(spec.resource_group, tr.resource_group_body(spec.location))

    async def _ensure_subnet(self, az: SubscriptionClients, spec: VirtualMachineSpec) -> str:
        if spec.network.subnet_id:
            return spec.network.subnet_id
        vnet = tr.auto_vnet_name(spec.location)
        if await self._get(az.network.virtual_networks.get(spec.resource_group, vnet)) is None:
            metrics.AZURE_OPERATIONS.labels(KIND, "create_vnet").inc()
            await (await az.network.virtual_networks.begin_create_or_update(
                spec.resource_group, vnet, tr.auto_vnet_body(spec.location))).result()
        return tr.subnet_id(spec.subscription_id, spec.resource_group, vnet, tr.AUTO_SUBNET_NAME)

    async def _ensure_network(
        self, ref: ResourceRef, az: SubscriptionClients, spec: VirtualMachineSpec, owner: str
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        nic = await self._get(az.network.network_interfaces.get(spec.resource_group, tr.nic_name(spec)))
        if nic is not None and not tr.is_owned_by(nic, owner):
            raise _ownership_failure("network interface", tr.nic_name(spec), nic, owner)
        pip = None
        if spec.network.public_ip:
            pip = await self._get(az.network.public_ip_addresses.get(spec.resource_group, tr.public_ip_name(spec)))
            if pip is not None and not tr.is_owned_by(pip, owner):
                raise _ownership_failure("public IP address", tr.public_ip_name(spec), pip, owner)
        if nic is None:
            await self._ensure_resource_group(az, spec)
        subnet = await self._ensure_subnet(az, spec) if nic is None or spec.network.subnet_id else tr.nic_subnet_id(nic)
        if spec.network.public_ip and pip is None:
            metrics.AZURE_OPERATIONS.labels(KIND, "create_public_ip").inc()
            pip = _as_dict(await (await az.network.public_ip_addresses.begin_create_or_update(
                spec.resource_group, tr.public_ip_name(spec), tr.public_ip_body(spec, owner))).result())
        pip_id = pip.get("id") if pip else None
        if nic is None or tr.nic_subnet_id(nic) != subnet or tr.nic_public_ip_id(nic) != pip_id:
            metrics.AZURE_OPERATIONS.labels(KIND, "create_nic" if nic is None else "update_nic").inc()
            nic = _as_dict(await (await az.network.network_interfaces.begin_create_or_update(
                spec.resource_group, tr.nic_name(spec), tr.nic_body(spec, owner, str(subnet), pip_id))).result())
        if not spec.network.public_ip:
            # publicIP switched off: the NIC no longer references it, so the address we created can go.
            old = await self._get(az.network.public_ip_addresses.get(spec.resource_group, tr.public_ip_name(spec)))
            if old is not None and tr.is_owned_by(old, owner):
                metrics.AZURE_OPERATIONS.labels(KIND, "delete_public_ip").inc()
                await (await az.network.public_ip_addresses.begin_delete(
                    spec.resource_group, tr.public_ip_name(spec))).result()
        return nic, pip

    async def _create_vm(self, az: SubscriptionClients, spec: VirtualMachineSpec, owner: str, nic: Mapping[str, Any] | None) -> None:
        assert nic is not None and nic.get("id")
        metrics.AZURE_OPERATIONS.labels(KIND, "create").inc()
        poller = await az.compute.virtual_machines.begin_create_or_update(
            spec.resource_group, spec.azure_name, tr.vm_body(spec, owner, str(nic["id"])))
        await poller.result()

    async def _ensure_power(self, ref: ResourceRef, az: SubscriptionClients, spec: VirtualMachineSpec, observed: Observed) -> None:
        assert observed.vm is not None
        current = tr.power_state((observed.vm.get("properties") or {}).get("instanceView"))
        action = tr.power_action(spec.power_state, current)
        if action is None:
            return
        await self._progress(ref, "Updating", f"power state {current} -> {spec.power_state}")
        metrics.AZURE_OPERATIONS.labels(KIND, action).inc()
        operation = getattr(az.compute.virtual_machines, f"begin_{action}")
        await (await operation(spec.resource_group, spec.azure_name)).result()
        observed.vm = await self._get_vm(az, spec)

    # ---- status ----------------------------------------------------------------------------------------------

    def _status_fields(self, spec: VirtualMachineSpec, observed: Observed) -> dict[str, Any]:
        vm = observed.vm or {}
        props = vm.get("properties") or {}
        return {
            "azureResourceId": vm.get("id"),
            "vmId": props.get("vmId"),
            "provisioningState": props.get("provisioningState"),
            "powerState": tr.power_state(props.get("instanceView")),
            "privateIP": tr.private_ip(observed.nic),
            "publicIP": tr.public_ip_address(observed.public_ip),
        }

    async def _progress(self, ref: ResourceRef, reason: str, message: str) -> None:
        await self.reporter.report(ref, [
            cond.Condition(cond.READY, False, reason, message),
            cond.Condition(cond.RECONCILING, True, reason, message),
            cond.Condition(cond.STALLED, False, reason, ""),
        ])

    async def _stalled(self, ref: ResourceRef, reason: str, message: str, fields: Mapping[str, Any] | None = None) -> None:
        await self.reporter.report(ref, [
            cond.Condition(cond.READY, False, reason, message),
            cond.Condition(cond.RECONCILING, False, reason, ""),
            cond.Condition(cond.STALLED, True, reason, message),
        ], fields)

    async def _not_ours(self, ref: ResourceRef, spec: VirtualMachineSpec, vm: Mapping[str, Any], owner: str) -> None:
        holder = (vm.get("tags") or {}).get(OWNER_TAG)
        if holder:
            await self._stalled(ref, "OwnershipConflict",
                                f"Azure VM {spec.azure_name} in {spec.resource_group} belongs to {holder}, not {owner}")
        else:
            await self._stalled(ref, "AlreadyExists",
                                f"an Azure VM named {spec.azure_name} already exists in {spec.resource_group} and "
                                f"was not created by this resource (no {OWNER_TAG} tag); it is left untouched")


class OwnershipConflict(Exception):
    """An Azure resource the spec names exists but belongs to another resource (or to nobody we know)."""


def _ownership_failure(what: str, name: str, resource: Mapping[str, Any], owner: str) -> OwnershipConflict:
    holder = (resource.get("tags") or {}).get(OWNER_TAG) or "someone else (no ownership tag)"
    return OwnershipConflict(f"{what} {name} belongs to {holder}, not {owner}")
