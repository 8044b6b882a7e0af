"""The ScaleSet kind on the reconcile frame: a Uniform VM scale set, optionally behind a Standard load balancer,
scaled through spec.replicas (kubectl, GitOps, /scale for HPA and KEDA) and rolled out safely.

Capacity has one path: a capacity-only PATCH of ``sku.capacity`` to spec.replicas. A model change is a PATCH that
never carries capacity. A read whose capacity is 0 (or missing) while instances exist is not acted on.
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from azure.core.exceptions import AzureError
from azure.core.rest import HttpRequest

from .. import logs, metrics
from ..api import conditions as cond
from ..api.constants import RESTART_REQUESTED_ANNOTATION, SCALESET_KIND, SCALESET_PLURAL
from ..api.scaleset import ScaleSetSpec, parse_spec
from ..azure import infrastructure as infra
from ..azure import monitor
from ..azure import scaleset as sst
from ..azure.errors import ArmFailure
from . import references
from .frame import Context, InProgress, Stalled, StatusView
from .operations import PendingOperation
from .status import ResourceRef

logger = logging.getLogger(__name__)

SsContext = Context[ScaleSetSpec]
#: At most this many instances are listed in status (instanceCount has the total).
STATUS_INSTANCES = 100
ROLLOUT_ACTION = "upgrade"


@dataclass
class ObservedScaleSet:
    scale_set: dict[str, Any] | None
    instances: list[dict[str, Any]] = field(default_factory=list)
    load_balancer: dict[str, Any] | None = None
    public_ip: dict[str, Any] | None = None
    nsg: dict[str, Any] | None = None
    cpu_percent: float | None = None  #: Azure Monitor's average CPU of the set (last read)

    @property
    def live(self) -> list[sst.Instance]:
        return sst.live_instances(self.instances)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def replicas_owner(body: Mapping[str, Any]) -> str | None:
    """Who owns spec.replicas, as the API server's managedFields record it: the field managers (kubectl, a GitOps
    tool, an HPA through /scale ...), comma-separated when they share it. None when nobody is recorded:
    kube-apiserver does not record a /scale write to a field no manager owned (kubernetes/kubernetes#131892)."""
    owners = set()
    for entry in (body.get("metadata") or {}).get("managedFields") or []:
        spec = ((entry.get("fieldsV1") or {}).get("f:spec") or {})
        if "f:replicas" in spec:
            name = str(entry.get("manager") or "unknown")
            if entry.get("subresource"):
                name += f" (/{entry['subresource']})"
            owners.add(name)
    return ", ".join(sorted(owners)) or None


class ScaleSetKind:
    kind = SCALESET_KIND
    plural = SCALESET_PLURAL
    noun = "scale set"

    def __init__(self) -> None:
        #: last CPU reading per resource: (monotonic time, value); read at most once per resync interval
        self._cpu: dict[tuple[str, str], tuple[float, float | None]] = {}

    def parse(self, raw: Mapping[str, Any], name: str, default_subscription: str | None,
              credentials_subscription: str | None) -> ScaleSetSpec:
        return parse_spec(raw, name, default_subscription, credentials_subscription)

    def primary(self, observed: ObservedScaleSet) -> Mapping[str, Any] | None:
        return observed.scale_set

    def on_operation_failed(self, ctx: SsContext, operation: PendingOperation, failure: ArmFailure) -> Stalled | None:
        """A failed rollout batch stops the rollout (until the spec changes), whatever Azure's code."""
        if not operation.action.startswith(ROLLOUT_ACTION):
            return None
        state = dict(ctx.ref.status.get("rollout") or {})
        message = f"{operation.action} failed: {failure.code}: {failure.message}; the rollout stopped"
        return Stalled("RolloutBatchFailed", message, {"rollout": {**state, "state": "Failed", "message": message,
                                                                   "generation": ctx.ref.generation}})

    # ---- observe ---------------------------------------------------------------------------------------------

    async def observe(self, ctx: SsContext) -> ObservedScaleSet:
        spec, az = ctx.spec, ctx.az
        rg = spec.resource_group
        sets = az.compute.virtual_machine_scale_sets
        expand = {"expand": "userData"} if spec.user_data is not None else {}
        if expand:  # userData comes only with a GET
            scale_set = await ctx.get(sets.get(rg, spec.azure_name, **expand))
        else:
            scale_set = await ctx.read_named(sets, "virtualMachineScaleSets", rg, spec.azure_name)
        observed = ObservedScaleSet(scale_set=scale_set)
        # image.imageRef names an Image of this namespace: wait for it before creating the set
        model = ((scale_set or {}).get("properties") or {}).get("virtualMachineProfile") or {}
        await references.resolve_image(
            ctx, scale_set is not None, ((model.get("storageProfile") or {}).get("imageReference") or {}).get("id"))
        spec = ctx.spec
        if observed.scale_set is not None:
            observed.instances = [
                item.as_dict() async for item in az.compute.virtual_machine_scale_set_vms.list(
                    rg, spec.azure_name, expand="instanceView")]
            observed.cpu_percent = await self._cpu_percent(ctx, str(observed.scale_set.get("id")))
        if spec.policies.reconcile == "Observe":
            return observed
        net = az.network
        lb = spec.load_balancer  # wanted pieces are confirmed when missing; unwanted ones only deleted if they exist
        observed.load_balancer = await ctx.read_named(net.load_balancers, "loadBalancers", rg,
                                                      sst.load_balancer_name(spec), confirm_missing=lb.enabled)
        observed.public_ip = await ctx.read_named(net.public_ip_addresses, "publicIPAddresses", rg,
                                                  sst.public_ip_name(spec), confirm_missing=lb.enabled and lb.public)
        observed.nsg = await ctx.read_named(net.network_security_groups, "networkSecurityGroups", rg,
                                            sst.nsg_name(spec), confirm_missing=lb.enabled)
        return observed

    async def _cpu_percent(self, ctx: SsContext, scale_set_id: str) -> float | None:
        """The set's average CPU from Azure Monitor, at most once per resync interval (not per scrape, not per
        pass); a failed read keeps the last value and is not an error of the reconcile."""
        key = (ctx.ref.namespace, ctx.ref.name)
        taken, value = self._cpu.get(key, (float("-inf"), None))
        if time.monotonic() - taken < ctx.reconciler.config.resync_interval:
            return value
        try:
            response = await ctx.az.compute.send_request(HttpRequest("GET", monitor.metrics_path(scale_set_id)))
            await response.read()
            if response.status_code == 200:
                value = monitor.latest_value(response.json())
        except AzureError as exc:
            logger.info("no CPU reading from Azure Monitor: %s", exc, extra=logs.resource(SCALESET_KIND, *key))
        self._cpu[key] = (time.monotonic(), value)
        return value

    # ---- create ----------------------------------------------------------------------------------------------

    async def create(self, ctx: SsContext, observed: ObservedScaleSet) -> None:
        spec = ctx.spec
        # Secrets first: a missing Secret, ConfigMap or key is Stalled before anything is written to Azure.
        password, custom_data = await ctx.machine_secrets()
        subnet_id, nsg_id = await self._ensure_network(ctx, observed)
        capacity = sst.desired_capacity(spec, None)
        body = sst.scale_set_body(spec, ctx.identity, sst.Inputs(subnet_id, nsg_id, password, custom_data), capacity)
        await ctx.start(ctx.az.compute.virtual_machine_scale_sets.begin_create_or_update, spec.resource_group,
                        spec.azure_name, body, action="create", target=spec.scale_set_id, reason="Creating",
                        message=f"creating scale set {spec.azure_name} ({capacity} x {spec.size})",
                        events=(("Scaled", f"scale set {spec.azure_name} created with {capacity} instances"),))

    async def _ensure_network(self, ctx: SsContext, observed: ObservedScaleSet) -> tuple[str, str | None]:
        """Subnet, and with a load balancer: its NSG (the rule ports), public IP and the load balancer itself.
        Each missing or outdated piece starts one operation and ends the pass; what is no longer wanted goes."""
        spec, az = ctx.spec, ctx.az
        rg, tags = spec.resource_group, sst.tags(spec, ctx.identity)
        lb = spec.load_balancer
        for what, resource in (("load balancer", observed.load_balancer), ("public IP address", observed.public_ip),
                               ("network security group", observed.nsg)):
            ctx.ensure_owned(f"{what} {(resource or {}).get('name')}", resource)
            if infra.in_progress(resource):
                raise InProgress(f"{what} {(resource or {}).get('name')} is {infra.in_progress(resource)}",
                                 ctx.reconciler.recheck_delay(None))
        if observed.scale_set is None:
            await ctx.ensure_resource_group()
        subnet_id = spec.subnet_id or (await ctx.ensure_auto_subnet() if observed.scale_set is None
                                       else self._current_subnet(observed) or await ctx.ensure_auto_subnet())
        nsg_id = None
        if lb.enabled:
            nsg = observed.nsg
            if nsg is None or infra.nsg_open_ports(nsg) != lb.ports:
                nsg = await ctx.start(az.network.network_security_groups.begin_create_or_update, rg,
                                      sst.nsg_name(spec), infra.nsg_body(spec.location, tags, lb.ports),
                                      action="create_nsg" if nsg is None else "update_nsg", target=sst.nsg_name(spec),
                                      reason="Creating" if nsg is None else "Updating",
                                      message=f"admitting ports {list(lb.ports)} in {sst.nsg_name(spec)}")
            nsg_id = str((nsg or {}).get("id"))
            pip_id = None
            if lb.public:
                pip = observed.public_ip
                if pip is None:
                    pip = await ctx.start(az.network.public_ip_addresses.begin_create_or_update, rg,
                                          sst.public_ip_name(spec),
                                          infra.public_ip_body(spec.location, tags, spec.zones),
                                          action="create_public_ip", target=sst.public_ip_name(spec),
                                          reason="Creating",
                                          message=f"creating public IP address {sst.public_ip_name(spec)}")
                pip_id = str((pip or {}).get("id"))
            current = observed.load_balancer
            frontend = (((current or {}).get("properties") or {}).get("frontendIPConfigurations") or [{}])[0]
            frontend_pip = ((frontend.get("properties") or {}).get("publicIPAddress") or {}).get("id")
            if current is None or sst.load_balancer_differs(spec, current) or (
                    (frontend_pip or "").lower() != (pip_id or "").lower()):
                await ctx.start(az.network.load_balancers.begin_create_or_update, rg, sst.load_balancer_name(spec),
                                sst.load_balancer_body(spec, ctx.identity, pip_id, subnet_id),
                                action="create_load_balancer" if current is None else "update_load_balancer",
                                target=sst.load_balancer_name(spec), reason="Creating" if current is None
                                else "Updating", message=f"{'creating' if current is None else 'updating'} load "
                                                         f"balancer {sst.load_balancer_name(spec)}")
        return subnet_id, nsg_id

    def _current_subnet(self, observed: ObservedScaleSet) -> str | None:
        profile = ((observed.scale_set or {}).get("properties") or {}).get("virtualMachineProfile") or {}
        for config in (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []:
            for ip in (config.get("properties") or {}).get("ipConfigurations") or []:
                subnet = ((ip.get("properties") or {}).get("subnet") or {}).get("id")
                if subnet:
                    return str(subnet)
        return None

    async def _remove_unwanted(self, ctx: SsContext, observed: ObservedScaleSet) -> None:
        """Once the scale set no longer references them: the load balancer, its public IP and NSG go when the spec
        does not want them (only what is tagged as this resource's own)."""
        spec, az, rg = ctx.spec, ctx.az, ctx.spec.resource_group
        if not spec.load_balancer.enabled:
            await ctx.delete_if_ours(az.network.load_balancers, rg, sst.load_balancer_name(spec),
                                     observed.load_balancer, "load balancer")
            await ctx.delete_if_ours(az.network.network_security_groups, rg, sst.nsg_name(spec), observed.nsg,
                                     "network security group")
        if not (spec.load_balancer.enabled and spec.load_balancer.public) and observed.load_balancer is None:
            await ctx.delete_if_ours(az.network.public_ip_addresses, rg, sst.public_ip_name(spec),
                                     observed.public_ip, "public IP address")

    # ---- update ----------------------------------------------------------------------------------------------

    async def update(self, ctx: SsContext, observed: ObservedScaleSet) -> bool:
        assert observed.scale_set is not None
        spec = ctx.spec
        subnet_id, nsg_id = await self._ensure_network(ctx, observed)
        diff = sst.diff_scale_set(spec, ctx.identity, observed.scale_set, spec.subnet_id or subnet_id, nsg_id)
        if diff.rejected:
            raise Stalled("ChangeNotSupported", "; ".join(diff.rejected))
        if diff.immutable:
            raise Stalled("ImmutableFieldChanged",
                          f"{', '.join(diff.immutable)} cannot be changed on an existing scale set; restore the "
                          "previous value or create a new ScaleSet")
        await self._apply_diff(ctx, diff)
        await self._scale(ctx, observed)
        await self._protect(ctx, observed)
        await self._ensure_power(ctx, observed)
        await self._rollout(ctx, observed)
        await self._repair(ctx, observed)
        await self._restart(ctx, observed)
        await self._remove_unwanted(ctx, observed)  # after the rollout: no instance references them any more
        return False

    async def _apply_diff(self, ctx: SsContext, diff: sst.ScaleSetDiff) -> None:
        spec = ctx.spec
        if not diff.patch:
            return
        if not ctx.spec_changed:
            if spec.policies.drift == "Report":
                ctx.drift.extend(f"{p} (reported)" for p in diff.drifted)
                return
            ctx.drift.extend(f"{p} (corrected)" for p in diff.drifted)
            for path in diff.drifted:
                metrics.DRIFT_CORRECTIONS.labels(SCALESET_KIND, path).inc()
        what = ", ".join(diff.drifted) or "the ownership tag"
        note = "; instances get the new model" if diff.model else ""
        await ctx.start(ctx.az.compute.virtual_machine_scale_sets.begin_update, spec.resource_group,
                        spec.azure_name, diff.patch, action="update", target=spec.scale_set_id, reason="Updating",
                        message=f"updating {what}{note}")

    async def _scale(self, ctx: SsContext, observed: ObservedScaleSet) -> None:
        spec = ctx.spec
        assert observed.scale_set is not None
        if sst.is_ignored("spec.replicas", sst.ignored_paths(spec)) or spec.replicas is None:
            return
        if sst.capacity_suspect(observed.scale_set, observed.instances):
            # Not acted on: look again soon. Never a reason to change the count (in either direction).
            ctx.event("Warning", "SuspectCapacityRead",
                      f"Azure reported capacity {sst.observed_capacity(observed.scale_set)} while "
                      f"{len(observed.live)} instances exist; not acting on it")
            raise InProgress("the scale set's capacity read is not trustworthy; reading again",
                             ctx.reconciler.recheck_delay(None))
        current = sst.observed_capacity(observed.scale_set)
        wanted = spec.replicas
        if current == wanted:
            return
        protected = sum(1 for i in observed.live if i.protected)
        if wanted < protected and current is not None and current <= len(observed.live):
            raise Stalled("ScaleInBlockedByProtection",
                          f"spec.replicas {wanted} is below the {protected} instances protected from scale-in "
                          f"(spec.protectedInstances); Azure keeps {current}")
        if not ctx.spec_changed:  # changed in Azure behind the operator's back
            if spec.policies.drift == "Report":
                ctx.drift.append(f"spec.replicas (reported: Azure has {current})")
                return
            ctx.drift.append(f"spec.replicas (corrected: Azure had {current})")
            metrics.DRIFT_CORRECTIONS.labels(SCALESET_KIND, "spec.replicas").inc()
        owner = replicas_owner(ctx.ref.body)
        by = f" (spec.replicas set by {owner})" if owner else ""
        await ctx.start(ctx.az.compute.virtual_machine_scale_sets.begin_update, spec.resource_group,
                        spec.azure_name, sst.capacity_patch(wanted), action="scale", target=spec.scale_set_id,
                        reason="Scaling", message=f"scaling from {current} to {wanted} instances",
                        events=(("Scaled", f"scale set {spec.azure_name}: {current} -> {wanted} instances{by}"),))

    async def _protect(self, ctx: SsContext, observed: ObservedScaleSet) -> None:
        """protectFromScaleIn exactly on spec.protectedInstances (one instance per pass)."""
        spec = ctx.spec
        wanted = set(spec.protected_instances)
        for inst in observed.live:
            if inst.protected != (inst.instance_id in wanted):
                protect = inst.instance_id in wanted
                await ctx.start(ctx.az.compute.virtual_machine_scale_set_vms.begin_update, spec.resource_group,
                                spec.azure_name, inst.instance_id,
                                {"properties": {"protectionPolicy": {"protectFromScaleIn": protect}}},
                                action="protect", target=f"{spec.scale_set_id}/virtualMachines/{inst.instance_id}",
                                reason="Updating", message=f"{'protecting' if protect else 'unprotecting'} instance "
                                                           f"{inst.instance_id} from scale-in")

    async def _ensure_power(self, ctx: SsContext, observed: ObservedScaleSet) -> None:
        spec = ctx.spec
        if sst.is_ignored("spec.powerState", sst.ignored_paths(spec)):
            return
        action = sst.set_power_action(spec.power_state, observed.live)
        if action is None:
            return
        if not ctx.spec_changed and ctx.completed is None:
            states = sorted({str(i.power_state) for i in observed.live})
            if spec.policies.drift == "Report":
                ctx.drift.append(f"spec.powerState (reported: {', '.join(states)})")
                return
            ctx.drift.append(f"spec.powerState (corrected: was {', '.join(states)})")
        await ctx.start(getattr(ctx.az.compute.virtual_machine_scale_sets, f"begin_{action}"), spec.resource_group,
                        spec.azure_name, action=action, target=spec.scale_set_id, reason="Updating",
                        message=f"{action.replace('_', ' ')}: every instance to {spec.power_state}")

    async def _rollout(self, ctx: SsContext, observed: ObservedScaleSet) -> None:
        """upgradePolicy Manual: the operator rolls outdated instances in batches of rollout.maxUnavailable, each
        batch healthy before the next, pausing rollout.pauseBetweenBatches; a failed batch stops the rollout."""
        spec = ctx.spec
        live = observed.live
        outdated = [i for i in live if not i.latest_model]
        state = dict(ctx.ref.status.get("rollout") or {})
        if spec.upgrade_mode != "Manual" or spec.power_state != "Running":
            ctx.fields["rollout"] = {"state": "RollingOut" if outdated else "Idle", "outdated": len(outdated),
                                     "batch": state.get("batch", 0) if outdated else 0, "instances": []}
            return
        if not outdated:
            ctx.fields["rollout"] = {"state": "Idle", "outdated": 0, "batch": 0, "instances": []}
            return
        if state.get("state") == "Failed" and state.get("generation") == ctx.ref.generation:
            raise Stalled("RolloutBatchFailed", str(state.get("message") or "a rollout batch failed"))
        batch_ids = set(state.get("instances") or [])
        if ctx.completed is not None and ctx.completed.action.startswith(ROLLOUT_ACTION):
            state["finishedTime"] = cond.now_rfc3339()
        pending = [i for i in live if i.instance_id in batch_ids and not i.ready]
        if pending and state.get("state") == "RollingOut":
            finished = cond.parse_rfc3339(state.get("finishedTime"))
            grace = spec.rollout.batch_health_timeout
            if finished and (_now() - finished).total_seconds() > grace:
                message = (f"batch {state.get('batch')}: instances {', '.join(i.instance_id for i in pending)} "
                           f"not healthy {int(grace)} s after their upgrade; the rollout stopped "
                           "(fix the model and apply again)")
                raise Stalled("RolloutBatchFailed", message, {"rollout": {**state, "state": "Failed", "message": message,
                                                                          "generation": ctx.ref.generation}})
            ctx.fields["rollout"] = {**state, "outdated": len(outdated)}
            raise InProgress(f"rollout batch {state.get('batch')}: waiting for instances "
                             f"{', '.join(i.instance_id for i in pending)} to be healthy",
                             ctx.reconciler.recheck_delay(None), "RollingOut")
        finished = cond.parse_rfc3339(state.get("finishedTime"))
        if finished and spec.rollout.pause_between_batches:
            wait = spec.rollout.pause_between_batches - (_now() - finished).total_seconds()
            if wait > 0:
                ctx.fields["rollout"] = {**state, "state": "Paused", "outdated": len(outdated),
                                         "nextBatchTime": (finished + datetime.timedelta(
                                             seconds=spec.rollout.pause_between_batches)).strftime(
                                             "%Y-%m-%dT%H:%M:%SZ")}
                raise InProgress(f"rollout: pausing {int(wait)} s before the next batch", wait, "RollingOut")
        batch = sst.next_batch(live, spec.rollout.max_unavailable)
        if not batch:
            ctx.fields["rollout"] = {**state, "outdated": len(outdated)}
            raise InProgress("rollout: waiting for unavailable instances before the next batch",
                             ctx.reconciler.recheck_delay(None), "RollingOut")
        number = int(state.get("batch") or 0) + 1
        instance_ids = [i.instance_id for i in batch]
        ctx.fields["rollout"] = {"state": "RollingOut", "batch": number, "outdated": len(outdated),
                                 "instances": instance_ids, "generation": ctx.ref.generation}
        message = f"rollout batch {number}: upgrading instances {', '.join(instance_ids)} ({len(outdated)} outdated)"
        ctx.event("Normal", "RolloutBatch", message)
        await ctx.start(ctx.az.compute.virtual_machine_scale_sets.begin_update_instances, spec.resource_group,
                        spec.azure_name, {"instanceIds": instance_ids}, action=f"{ROLLOUT_ACTION} batch {number}",
                        target=spec.scale_set_id, reason="RollingOut", message=message)

    async def _repair(self, ctx: SsContext, observed: ObservedScaleSet) -> None:
        """Instances whose last operation failed (an AllocationFailed create) stay Failed when the scale set's model
        is PUT again: Azure's way out is to reimage them (all in one operation). Without this a ScaleSet whose
        create failed transiently waited for "0 ready" instances forever (tests/e2e/test_fault_storms.py)."""
        spec = ctx.spec
        failed = [i.instance_id for i in observed.live if i.provisioning_state == "Failed"]
        if not failed:
            return
        await ctx.start(ctx.az.compute.virtual_machine_scale_sets.begin_reimage, spec.resource_group,
                        spec.azure_name, {"instanceIds": failed}, action="repair", target=spec.scale_set_id,
                        reason="Updating", message=f"reimaging failed instances {', '.join(failed)}",
                        events=(("InstancesRepaired", f"scale set {spec.azure_name}: reimaged failed instances "
                                                      f"{', '.join(failed)}"),))

    async def _restart(self, ctx: SsContext, observed: ObservedScaleSet) -> None:
        spec, ref = ctx.spec, ctx.ref
        value = ref.annotations.get(RESTART_REQUESTED_ANNOTATION)
        if not value or value == ref.status.get("lastRestartRequest"):
            return
        ctx.fields["lastRestartRequest"] = value
        if ctx.completed is not None and ctx.completed.action == "create":
            return  # a new scale set needs no restart: the value is recorded
        if any(i.power_state == "Running" for i in observed.live):
            await ctx.start(ctx.az.compute.virtual_machine_scale_sets.begin_restart, spec.resource_group,
                            spec.azure_name, action="restart", target=spec.scale_set_id, reason="Updating",
                            message=f"restarting every instance ({RESTART_REQUESTED_ANNOTATION}={value})",
                            events=(("Restarted", f"scale set {spec.azure_name}: every instance restarted for "
                                                  f"{RESTART_REQUESTED_ANNOTATION}={value}"),))

    # ---- delete ----------------------------------------------------------------------------------------------

    async def delete(self, ctx: SsContext, observed: ObservedScaleSet) -> None:
        spec, az = ctx.spec, ctx.az
        rg = spec.resource_group
        if observed.scale_set is not None:
            if infra.provisioning_state(observed.scale_set) == "Deleting":
                raise InProgress(f"scale set {spec.azure_name} is being deleted",
                                 ctx.reconciler.recheck_delay(None), "Deleting")
            if ctx.may_delete(observed.scale_set):
                await ctx.start(az.compute.virtual_machine_scale_sets.begin_delete, rg, spec.azure_name,
                                action="delete", target=spec.scale_set_id, reason="Deleting",
                                message=f"deleting scale set {spec.azure_name} and its instances")
            else:
                logger.info("scale set %s is not owned by this resource; leaving it in Azure", spec.azure_name,
                            extra=logs.resource(SCALESET_KIND, ctx.ref.namespace, ctx.ref.name))
        await ctx.delete_made_for_it([
            (az.network.load_balancers, sst.load_balancer_name(spec), observed.load_balancer, "load balancer"),
            (az.network.public_ip_addresses, sst.public_ip_name(spec), observed.public_ip, "public IP address"),
            (az.network.network_security_groups, sst.nsg_name(spec), observed.nsg, "network security group"),
        ])

    # ---- status ----------------------------------------------------------------------------------------------

    def _fields(self, ctx: SsContext, observed: ObservedScaleSet) -> dict[str, Any]:
        scale_set = observed.scale_set or {}
        live = observed.live
        fields: dict[str, Any] = {
            "azureResourceId": scale_set.get("id"),
            "provisioningState": infra.provisioning_state(scale_set),
            "replicas": len(live),
            "readyReplicas": sum(1 for i in live if i.ready),
            "updatedReplicas": sum(1 for i in live if i.latest_model),
            "desiredReplicas": sst.desired_capacity(ctx.spec, sst.observed_capacity(scale_set))
            if scale_set else ctx.spec.replicas,
            "selector": sst.selector(ctx.ref.name),
            "replicasOwner": replicas_owner(ctx.ref.body),
            "instances": [i.to_status() for i in live[:STATUS_INSTANCES]],
            "instanceCount": len(live),
            "lastObservedTime": cond.now_rfc3339(),
        }
        if ctx.spec.load_balancer.enabled or observed.load_balancer is not None:
            fields["loadBalancer"] = {
                "id": (observed.load_balancer or {}).get("id"),
                "ip": infra.public_ip_address(observed.public_ip) or sst.frontend_private_ip(observed.load_balancer),
                "backendPoolSize": sst.backend_pool_size(observed.load_balancer),
            }
        return fields

    def status(self, ctx: SsContext, observed: ObservedScaleSet) -> StatusView:
        spec = ctx.spec
        fields = self._fields(ctx, observed)
        live = observed.live
        desired = int(fields["desiredReplicas"] or 0)
        states = {i.power_state for i in live}
        power_ok = not live or states == {spec.power_state} or sst.is_ignored("spec.powerState",
                                                                               sst.ignored_paths(spec))
        healthy = spec.power_state != "Running" or fields["readyReplicas"] == len(live)
        outdated = len(live) - fields["updatedReplicas"]
        ready = (fields["provisioningState"] == "Succeeded" and len(live) == desired and power_ok and healthy
                 and (outdated == 0 or spec.upgrade_mode != "Manual"))
        if len(live) != desired:
            printable = "Scaling"
        elif outdated:
            printable = "RollingOut"
        else:
            printable = spec.power_state
        fields.setdefault("rollout", ctx.fields.get("rollout") or {"state": "RollingOut" if outdated else "Idle",
                                                                    "outdated": outdated})
        message = (f"scale set {spec.azure_name}: {fields['readyReplicas']}/{desired} ready ({spec.size}) in "
                   f"{spec.location}" + (f", load balancer {fields['loadBalancer']['ip']}"
                                         if fields.get("loadBalancer", {}).get("ip") else ""))
        if not ready:
            message = (f"{len(live)}/{desired} instances, {fields['readyReplicas']} ready, {outdated} outdated, "
                       f"provisioningState {fields['provisioningState']}")
        metrics.record_scale_set(ctx.ref.namespace, ctx.ref.name, desired, len(live), fields["readyReplicas"],
                                 fields["updatedReplicas"], [i.power_state for i in live], observed.cpu_percent)
        return StatusView(fields, ready, message, printable=spec.power_state,
                          printable_not_ready=printable if printable in ("Scaling", "RollingOut") else None)

    def observe_only(self, ctx: SsContext, observed: ObservedScaleSet) -> tuple[StatusView, list[str]]:
        spec = ctx.spec
        if observed.scale_set is None:
            return StatusView({"lastObservedTime": cond.now_rfc3339()}, False,
                              f"scale set {spec.azure_name} does not exist in {spec.resource_group} (observing only)",
                              "Observing"), []
        diff = sst.diff_scale_set(spec, ctx.identity, observed.scale_set, spec.subnet_id, None)
        differences = [p for p in (*diff.drifted, *diff.immutable) if p != "spec.loadBalancer"]
        capacity = sst.observed_capacity(observed.scale_set)
        if spec.replicas is not None and capacity != spec.replicas:
            differences.append(f"spec.replicas (Azure has {capacity})")
        fields = self._fields(ctx, observed)
        ready = fields["provisioningState"] == "Succeeded"
        message = (f"scale set {spec.azure_name}: {fields['replicas']} instances, {fields['readyReplicas']} ready "
                   "(observing only: the operator never writes)")
        return StatusView(fields, ready, message, "Observing"), differences

    def forget(self, ref: ResourceRef) -> None:
        self._cpu.pop((ref.namespace, ref.name), None)
        metrics.forget_scale_set(ref.namespace, ref.name)
