"""The reconcile frame every kind runs in (after Crossplane's managed reconciler and ASO's generic ARM reconciler).

The frame owns what every kind needs: the reconcile/deletion/adoption/drift policies, credentials, ownership
verdicts, long-running operations that nobody waits on, turning errors into kstatus conditions and Events,
``observedGeneration``, metrics and locks for shared Azure resources. A kind supplies only its own steps
(:class:`Kind`): parse, observe (the only code that reads its Azure resources), create, update, delete, status.

One pass (``Reconciler.reconcile``)::

    Pause?                    -> Paused, no Azure call
    parse spec + credentials  -> Stalled(InvalidSpec | SecretNotFound | ...)
    pending operation?        -> look once at its monitor URL: running -> InProgress(after Retry-After);
                                 failed -> Ready=False (transient, backoff) or Stalled (permanent)
    observe                   -> Observe policy: status + drift report, never a write
    adoption verdict          -> Stalled(AlreadyExists | OwnershipConflict)
    Azure busy on it?         -> InProgress
    missing / Failed          -> kind.create   (starts at most one operation, then InProgress)
    else                      -> kind.update   (diff; drift corrected or reported; may start an operation)
    status                    -> Ready/Reconciling/Stalled/Drifted + the kind's status fields, one /status patch

Every write either finishes at once or leaves a pending operation on the resource and ends the pass: the
per-resource lock is held for one pass, never for an Azure operation, so a delete never waits behind a create.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generic, Mapping, Protocol, TypeVar

from azure.core.exceptions import AzureError

from .. import logs, metrics
from ..api import conditions as cond
from ..api.constants import RECONCILE_REQUESTED_ANNOTATION
from ..api.fields import Policies, SpecError
from ..azure import infrastructure as infra
from ..azure import ownership
from ..azure.clients import AzureClients, SubscriptionClients
from ..azure.errors import ArmFailure, ErrorKind, classify, is_not_found
from ..azure.machine import b64
from ..config import OperatorConfig
from ..kube import KubeClient, ReferenceNotFound
from . import operations
from .observation import Getter, Lister, ObservationCache
from .operations import PendingOperation
from .status import ResourceRef, StatusReporter

logger = logging.getLogger(__name__)

DRIFTED = "Drifted"
#: status.printableStatus while a resource is not Ready, by what it is doing (default Provisioning)
PRINTABLE_WHILE = {"Scaling": "Scaling", "RollingOut": "RollingOut", "Deleting": "Deleting"}
#: How soon to look again at something Azure is working on when it gave no Retry-After.
DEFAULT_RECHECK = 5.0
#: status field: an operation of this generation that Azure ended with a permanent error; not started again
#: until the spec changes or a reconcile is requested (the reconcile-requested-at annotation)
FAILED_OPERATION = "failedOperation"
HOLD_HINT = "not tried again until the spec changes or a reconcile is requested (kubectl azvm reconcile)"


# ---- outcomes of a pass --------------------------------------------------------------------------------------


class TransientError(Exception):
    """Azure said 'not now': retry with backoff. Carries ARM's code for the Ready condition."""

    def __init__(self, failure: ArmFailure) -> None:
        super().__init__(f"{failure.code}: {failure.message}")
        self.failure = failure


class InProgress(Exception):
    """Azure is working on it (an operation this operator started, or one found running): look again after
    ``delay`` seconds (None: the frame's default)."""

    def __init__(self, message: str, delay: float | None = None, reason: str = "InProgress",
                 reported: bool = False) -> None:
        super().__init__(message)
        self.delay = delay
        self.reason = reason  #: the Ready/Reconciling reason: Creating, Updating, Deleting, InProgress
        self.reported = reported  #: the status already says so


class DeletionHeld(InProgress):
    """Deleting is held until something outside this resource changes (an availability set still has member VMs,
    an image is still referenced): the finalizer stays, the condition says why with ``reason``, and the delete
    is tried again after ``delay``."""


class Stalled(Exception):
    """Only the user can fix this: reported as Stalled=True with a reason, retried each resync."""

    def __init__(self, reason: str, message: str, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.fields = dict(fields or {})  #: status fields to write with it


@dataclass
class StatusView:
    """What a kind reports after a pass that changed nothing more: its status fields and whether it is Ready."""

    fields: dict[str, Any]
    ready: bool
    message: str
    printable: str  #: status.printableStatus when ready
    printable_not_ready: str | None = None  #: ... when not (default Provisioning)


class Spec(Protocol):
    """What the frame reads of every kind's typed spec."""

    @property
    def subscription_id(self) -> str: ...

    @property
    def resource_group(self) -> str: ...

    @property
    def location(self) -> str: ...

    @property
    def azure_name(self) -> str: ...

    @property
    def policies(self) -> Policies: ...


S = TypeVar("S", bound=Spec)
O = TypeVar("O")


class Kind(Protocol[S, O]):
    """The steps one kind supplies to the frame."""

    kind: str  #: VirtualMachine
    plural: str  #: virtualmachines
    noun: str  #: how messages name the Azure resource ("VM")

    def parse(self, raw: Mapping[str, Any], name: str, default_subscription: str | None,
              credentials_subscription: str | None) -> S: ...

    async def observe(self, ctx: "Context[S]") -> O:
        """Read the kind's Azure resources (the only code that does): the main one and what was made for it."""

    def primary(self, observed: O) -> Mapping[str, Any] | None:
        """The main Azure resource (its tags decide ownership, its provisioningState whether Azure is busy)."""

    async def create(self, ctx: "Context[S]", observed: O) -> None:
        """Create what is missing; may end the pass with InProgress after starting an operation."""

    async def update(self, ctx: "Context[S]", observed: O) -> bool:
        """Bring an existing resource to the spec; True when something was written that finished at once."""

    async def delete(self, ctx: "Context[S]", observed: O) -> None:
        """Delete what is this resource's own, one operation at a time (InProgress until all is gone)."""

    def observe_only(self, ctx: "Context[S]", observed: O) -> tuple[StatusView, list[str]]:
        """reconcilePolicy Observe: status and the differences from the spec, without a write."""

    def status(self, ctx: "Context[S]", observed: O) -> StatusView: ...

    def forget(self, ref: ResourceRef) -> None:
        """The resource is gone from Kubernetes: drop what the kind remembers of it (metrics series)."""


# ---- the context one pass works in ---------------------------------------------------------------------------


@dataclass
class Context(Generic[S]):
    """One pass over one resource: its spec, clients, identity, and the frame's services."""

    ref: ResourceRef
    spec: S
    az: SubscriptionClients
    identity: ownership.Identity
    reconciler: "Reconciler[Any, Any]"
    drift: list[str] = field(default_factory=list)  #: spec paths found different, with what was done
    fields: dict[str, Any] = field(default_factory=dict)  #: status fields to write whatever the outcome
    completed: PendingOperation | None = None  #: the operation that finished just before this pass

    @property
    def spec_changed(self) -> bool:
        """The spec changed since it was last fully applied: differences are the user's, not drift."""
        return self.ref.generation != self.ref.status.get("appliedGeneration")

    @property
    def kind(self) -> str:
        return self.reconciler.kind.kind

    async def get(self, call: Awaitable[Any]) -> dict[str, Any] | None:
        """An SDK GET as a plain dict; None for 404."""
        try:
            result = await call
        except AzureError as exc:
            if is_not_found(exc):
                return None
            raise
        return result.as_dict() if hasattr(result, "as_dict") else dict(result)

    async def read(self, resource_type: str, resource_group: str, name: str, lister: Lister,
                   getter: Callable[[], Awaitable[Any]], confirm_missing: bool = True,
                   follow: bool = True) -> dict[str, Any] | None:
        """One Azure resource, served from the shared listing of its resource group and type when that is
        trustworthy (see ``observation``), else by ``getter`` (a direct GET; 404 is None)."""
        key = (id(self.az), resource_group.lower(), resource_type)
        direct: Getter = lambda: self.get(getter())  # noqa: E731 - built only when needed
        if self.ref.body["metadata"].get("deletionTimestamp"):
            confirm_missing = True  # deleting: a miss may release the finalizer, so it is confirmed
        return await self.reconciler.cache.read(self.ref.key, key, name, lister, direct, confirm_missing, follow)

    async def read_named(self, operations_group: Any, resource_type: str, resource_group: str,
                         name: str, confirm_missing: bool = True, follow: bool = True) -> dict[str, Any] | None:
        """``read`` for the common case: the SDK operations group lists a resource group (``list(rg)``) and gets one
        resource (``get(rg, name)``)."""
        return await self.read(resource_type, resource_group, name, lambda: operations_group.list(resource_group),
                               lambda: operations_group.get(resource_group, name), confirm_missing, follow)

    async def machine_secrets(self) -> tuple[str | None, str | None]:
        """The admin password and the custom data (base64) a machine is created with, from the resource's own
        namespace only; never logged or kept. A missing Secret, ConfigMap or key is Stalled."""
        spec: Any = self.spec
        kube, namespace = self.reconciler.kube, self.ref.namespace
        password = custom_data = None
        try:
            if spec.admin_password_ref:
                values = await kube.read_secret(namespace, spec.admin_password_ref.name)
                password = values.get(spec.admin_password_ref.key)
                if not password:
                    raise Stalled("SecretKeyNotFound", f"Secret {spec.admin_password_ref.name} has no key "
                                                       f"{spec.admin_password_ref.key!r}")
            source = spec.custom_data_secret_ref or spec.custom_data_config_map_ref
            if source is not None:
                values = (await kube.read_secret(namespace, source.name) if spec.custom_data_secret_ref
                          else await kube.read_config_map(namespace, source.name))
                if source.key not in values:
                    raise Stalled("SecretKeyNotFound", f"{source.name} has no key {source.key!r} for customData")
                custom_data = b64(values[source.key])
        except ReferenceNotFound as exc:
            raise Stalled(f"{exc.kind}NotFound", str(exc)) from exc
        return password, custom_data

    async def start(self, begin: Callable[..., Awaitable[Any]], *args: Any, action: str, target: str,
                    reason: str = "Updating", message: str | None = None,
                    events: tuple[tuple[str, str], ...] = (), **kwargs: Any) -> dict[str, Any] | None:
        """Start an Azure operation. Finished at once: returns the resource body. Otherwise the operation is kept
        on the resource and the pass ends with InProgress (nobody waits on it)."""
        metrics.AZURE_OPERATIONS.labels(self.kind, action.split()[0]).inc()
        self.reconciler.cache.touch(self.ref.key)
        async with self.reconciler.operation_slots:
            started = await operations.start(begin, *args, action=action, target=target, events=events,
                                             reason=reason, message=message or f"{action} in progress", **kwargs)
        if started.pending is None:
            for reason, message in events:
                self.event("Normal", reason, message)
            return started.body
        self.reconciler.remember_operation(self.ref, started.pending)
        raise InProgress(message or f"{action} in progress", self.reconciler.recheck_delay(started.retry_after),
                         reason)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.reconciler.reporter.event(self.ref, type_, reason, message)

    def shared(self, resource_id: str) -> asyncio.Lock:
        """A lock per shared Azure resource (resource group, VNet, availability set): created once, by one
        reconcile, while the others wait for the GET-or-create, never for the operation itself."""
        return self.reconciler.shared_lock(resource_id)

    def ensure_owned(self, what: str, resource: Mapping[str, Any] | None) -> None:
        """A resource made for this custom resource (NIC, public IP, NSG) found under its name but tagged for
        someone else is never taken over."""
        if resource is not None and not self.identity.owns(resource):
            holder = self.identity.holder(resource) or "someone else (no ownership tag)"
            raise Stalled("OwnershipConflict", f"{what} belongs to {holder}, not {self.identity.owner}")

    def may_delete(self, resource: Mapping[str, Any] | None) -> bool:
        """Tagged as this resource's own and the adoption policy lets it manage it."""
        return ownership.may_manage(resource, self.identity, self.spec.policies.adoption)

    async def delete_if_ours(self, operations_group: Any, resource_group: str, name: str,
                             resource: Mapping[str, Any] | None, what: str) -> None:
        """Start deleting a resource made for this one (NIC, public IP, NSG) if it exists and is ours."""
        if self.may_delete(resource):
            await self.start(operations_group.begin_delete, resource_group, name, action=f"delete {what}",
                             target=str((resource or {}).get("id") or name), reason="Deleting",
                             message=f"deleting {what} {name}")

    async def delete_made_for_it(self, pieces: list[tuple[Any, str, Mapping[str, Any] | None, str]]) -> None:
        """Delete what was made for this resource (network interfaces, public IPs, NSGs, load balancers), one
        at a time and in order: (SDK operations group, name, observed resource, what it is)."""
        for group, name, resource, what in pieces:
            if infra.provisioning_state(resource) == "Deleting":
                raise InProgress(f"{what} {name} is being deleted", self.reconciler.recheck_delay(None), "Deleting")
            await self.delete_if_ours(group, self.spec.resource_group, name, resource, what)

    # ---- shared infrastructure (created once per resource group / location, never deleted by us) -------------

    async def ensure_resource_group(self) -> None:
        spec = self.spec
        group_id = f"/subscriptions/{spec.subscription_id}/resourceGroups/{spec.resource_group}".lower()
        if group_id in self.reconciler.known_groups:
            return  # seen by this process; the operator never deletes a resource group
        async with self.shared(group_id):
            if await self.get(self.az.resources.resource_groups.get(spec.resource_group)) is None:
                metrics.AZURE_OPERATIONS.labels(self.kind, "create_resource_group").inc()
                await self.az.resources.resource_groups.create_or_update(
                    spec.resource_group, infra.resource_group_body(spec.location))
            self.reconciler.known_groups.add(group_id)

    async def ensure_auto_subnet(self) -> str:
        """The subnet of the VNet the operator shares between all resources of a group and location."""
        spec = self.spec
        vnet_name = infra.auto_vnet_name(spec.location)
        subnet = infra.auto_subnet_id(spec.subscription_id, spec.resource_group, spec.location)
        async with self.shared(subnet):
            # from the shared listing (a miss or a VNet in transition: a fresh one), not a GET per resource created
            vnet = await self.read_named(self.az.network.virtual_networks, "virtualNetworks", spec.resource_group,
                                         vnet_name, follow=False)
            if vnet is None:
                await self.ensure_resource_group()
                await self.start(self.az.network.virtual_networks.begin_create_or_update, spec.resource_group,
                                 vnet_name, infra.auto_vnet_body(spec.location), action="create_vnet",
                                 target=vnet_name, reason="Creating",
                                 message=f"creating virtual network {vnet_name}")
            elif infra.in_progress(vnet):
                raise InProgress(f"virtual network {vnet_name} is {infra.in_progress(vnet)}",
                                 self.reconciler.recheck_delay(None))
        return subnet


def _held(failed: Mapping[str, Any]) -> Stalled:
    """Stalled by an operation that ended with a permanent error (status.failedOperation: action, code, message)."""
    return Stalled(str(failed.get("code") or "OperationFailed"),
                   f"{failed.get('action')} failed: {failed.get('message')}; {HOLD_HINT}", {FAILED_OPERATION: failed})


# ---- the reconciler ------------------------------------------------------------------------------------------


class Reconciler(Generic[S, O]):
    """Runs a kind's steps under the frame's policies; one instance per kind, shared by all its resources."""

    def __init__(self, kind: Kind[S, O], config: OperatorConfig, azure: AzureClients, reporter: StatusReporter,
                 kube: KubeClient, shared_locks: dict[str, asyncio.Lock] | None = None,
                 cache: ObservationCache | None = None, operation_slots: asyncio.Semaphore | None = None) -> None:
        self.kind = kind
        #: bounds Azure writes and operation polls in flight, shared by every kind
        self.operation_slots = operation_slots or asyncio.Semaphore(config.max_concurrent_operations)
        self.cache = cache if cache is not None else ObservationCache(config.observe_interval)
        self.config = config
        self.azure = azure
        self.reporter = reporter
        self.kube = kube
        self._shared_locks = shared_locks if shared_locks is not None else {}
        #: resource groups this process saw or made (a group deleted by hand meanwhile: the next create fails with
        #: ResourceGroupNotFound, a permanent error that names it)
        self.known_groups: set[str] = set()
        #: pending operations by resource, newer than what the status (possibly stale in Kopf's body) says;
        #: None = known to have none
        self._operations: dict[tuple[str, str, str], PendingOperation | None] = {}

    # ---- services for the kinds ------------------------------------------------------------------------------

    def shared_lock(self, resource_id: str) -> asyncio.Lock:
        return self._shared_locks.setdefault(resource_id.lower(), asyncio.Lock())

    def recheck_delay(self, retry_after: float | None) -> float:
        """Azure's Retry-After when it gave one (never sooner than the configured polling interval)."""
        floor = self.config.lro_polling_interval
        if retry_after is not None and retry_after > 0:
            return max(retry_after, floor or 0.0)
        return floor if floor is not None else DEFAULT_RECHECK

    def identity(self, ref: ResourceRef) -> ownership.Identity:
        return ownership.Identity(self.config.cluster_id, self.kind.kind, ref.namespace, ref.name,
                                  str(ref.body["metadata"].get("uid") or ""))

    def _key(self, ref: ResourceRef) -> tuple[str, str, str]:
        return (self.kind.kind, ref.namespace, ref.name)

    def remember_operation(self, ref: ResourceRef, operation: PendingOperation | None) -> None:
        self._operations[self._key(ref)] = operation
        self.cache.operating(ref.key, operation is not None)  # no wake for the listings' view of it meanwhile

    def pending_operation(self, ref: ResourceRef) -> PendingOperation | None:
        key = self._key(ref)
        if key in self._operations:
            return self._operations[key]
        return PendingOperation.from_status(ref.status.get(operations.STATUS_FIELD))

    # ---- entry points ----------------------------------------------------------------------------------------

    async def reconcile(self, ref: ResourceRef) -> bool:
        """Bring Azure to the spec and report status. Returns True when Ready.

        Raises TransientError / InProgress for the caller to retry later; permanent problems end as Stalled."""
        kind = self.kind.kind
        ref = self.fresh(ref)
        with metrics.RECONCILE_SECONDS.labels(kind).time():
            try:
                ready = await self._reconcile(ref)
            except TransientError as exc:
                metrics.RECONCILES.labels(kind, "transient_error").inc()
                await self._report(ref, [
                    cond.Condition(cond.READY, False, exc.failure.code, exc.failure.message),
                    cond.Condition(cond.RECONCILING, True, "RetryingAfterError", exc.failure.message),
                    cond.Condition(cond.STALLED, False, "Retrying", "a transient Azure error will be retried"),
                ], {"printableStatus": "Provisioning"})
                raise
            except InProgress:
                metrics.RECONCILES.labels(kind, "in_progress").inc()
                raise
            except Stalled as exc:
                metrics.RECONCILES.labels(kind, "permanent_error").inc()
                await self._report(ref, [
                    cond.Condition(cond.READY, False, exc.reason, str(exc)),
                    cond.Condition(cond.RECONCILING, False, exc.reason, ""),
                    cond.Condition(cond.STALLED, True, exc.reason, str(exc)),
                ], {**exc.fields, "printableStatus": "Failed"})
                return False
            metrics.RECONCILES.labels(kind, "success" if ready else "in_progress").inc()
            return ready

    async def delete(self, ref: ResourceRef) -> None:
        """Delete what is this resource's own in Azure (never what is not tagged as its own), unless
        deletionPolicy is Orphan or the resource is only observed or paused. InProgress until it is all gone."""
        ref = self.fresh(ref)
        deletion, reconcile = ref.spec.get("deletionPolicy", "Delete"), ref.spec.get("reconcilePolicy", "Manage")
        if deletion == "Orphan" or reconcile in ("Observe", "Pause"):
            logger.info("leaving its Azure resources (deletionPolicy %s, reconcilePolicy %s)", deletion, reconcile,
                        extra=logs.resource(self.kind.kind, ref.namespace, ref.name))
            self.forget(ref)
            return
        try:
            ctx = await self._context(ref)
        except SpecError as exc:
            logger.warning("the spec was never valid (%s): nothing was created; releasing it", exc,
                           extra=logs.resource(self.kind.kind, ref.namespace, ref.name))
            self.forget(ref)
            return
        except Stalled as exc:
            # Without its credentials nothing can be deleted; releasing the resource would orphan it.
            message = (f"cannot delete the Azure {self.kind.noun}: {exc}; restore it, or set spec.deletionPolicy: "
                       f"Orphan to leave the {self.kind.noun} in Azure")
            await self._report(ref, [cond.Condition(cond.READY, False, exc.reason, message),
                                     cond.Condition(cond.STALLED, True, exc.reason, message)])
            raise TransientError(ArmFailure(ErrorKind.TRANSIENT, exc.reason, message)) from exc
        try:
            pending = self.pending_operation(ref)
            if pending is not None and pending.action.startswith("delete"):
                await self._follow(ctx, pending)  # an earlier delete: wait for it, never start a second one
            # any other operation (a create, an update) is simply overtaken: Azure preempts it
            observed = await self.kind.observe(ctx)
            await self.kind.delete(ctx, observed)
        except InProgress as exc:
            message = str(exc)
            reason = exc.reason if isinstance(exc, DeletionHeld) else "Deleting"
            await self._report(ref, [cond.Condition(cond.READY, False, reason, message),
                                     cond.Condition(cond.RECONCILING, True, reason, message)],
                               {"printableStatus": "Deleting"})
            raise
        except AzureError as exc:
            failure = classify(exc)
            if failure.transient:
                await self._report(ref, [cond.Condition(cond.READY, False, failure.code,
                                                        f"deleting: {failure.message}")])
            else:
                await self._deletion_refused(ref, failure.code, failure.message)
            raise TransientError(failure) from exc
        except Stalled as exc:  # a delete operation Azure accepted ended Failed with a permanent code
            await self._deletion_refused(ref, exc.reason, str(exc))
            raise TransientError(ArmFailure(ErrorKind.PERMANENT, exc.reason, str(exc))) from exc
        self.forget(ref)

    async def _deletion_refused(self, ref: ResourceRef, reason: str, message: str) -> None:
        """Azure refused to delete (no permission, a lock, a failed delete operation): the finalizer stays, since
        releasing the resource would leave it in Azure unseen; the conditions say so and how to release it. The
        delete is tried again with backoff, so it completes once Azure allows it."""
        noun = self.kind.noun
        text = (f"cannot delete the Azure {noun}: {reason}: {message}; tried again with backoff. Fix it in Azure "
                f"(permissions, locks), or set spec.deletionPolicy: Orphan to leave the {noun} in Azure")
        await self._report(ref, [cond.Condition(cond.READY, False, reason, text),
                                 cond.Condition(cond.RECONCILING, False, reason, text),
                                 cond.Condition(cond.STALLED, True, reason, text)])

    def forget(self, ref: ResourceRef) -> None:
        self._operations.pop(self._key(ref), None)
        self.cache.forget(ref.key)
        self.reporter.forget(ref)
        self.kind.forget(ref)

    # ---- the pass --------------------------------------------------------------------------------------------

    def fresh(self, ref: ResourceRef) -> ResourceRef:
        """The resource with the status this process last wrote (Kopf's body may predate that write)."""
        return ResourceRef(ref.plural, {**ref.body, "status": self.reporter.current_status(ref)})

    async def context(self, ref: ResourceRef) -> Context[S]:
        """The resource's parsed spec and Azure clients (its credentials), for loops beside the reconcile pass
        (the autoscaler's metric reads). Raises Stalled or SpecError as a pass would."""
        return await self._context(ref)

    async def _context(self, ref: ResourceRef) -> Context[S]:
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
        elif not self.config.may_use_operator_credential(ref.namespace):
            raise Stalled("CredentialNotAllowed",
                          f"namespace {ref.namespace} may not use the operator's Azure credential (its allowed "
                          f"namespaces: {self.config.credential_allowed_namespaces}); set spec.credentialsSecretRef "
                          "to a Secret of this namespace")
        spec = self.kind.parse(ref.spec, ref.name, self.config.subscription_id, secret_subscription)
        az = self.azure.for_subscription(spec.subscription_id, credential_key)
        return Context(ref=ref, spec=spec, az=az, identity=self.identity(ref), reconciler=self)

    async def _reconcile(self, ref: ResourceRef) -> bool:
        if ref.spec.get("reconcilePolicy") == "Pause":
            await self._report(ref, [
                cond.Condition(cond.RECONCILING, False, "Paused", "reconcilePolicy is Pause: Azure is not touched"),
                cond.Condition(cond.STALLED, False, "Paused", ""),
            ], {"printableStatus": "Paused"})
            return True
        try:
            ctx = await self._context(ref)
        except SpecError as exc:
            raise Stalled(exc.reason, str(exc)) from exc
        try:
            return await self._pass(ctx)
        except InProgress as exc:
            if not exc.reported:
                updates = [cond.Condition(cond.READY, False, exc.reason, str(exc)),
                           cond.Condition(cond.RECONCILING, True, exc.reason, str(exc)),
                           cond.Condition(cond.STALLED, False, exc.reason, "")]
                drift_fields, drifted = self._drift(ctx)
                if ctx.drift:  # e.g. a correction just started: say what was found
                    updates.append(drifted)
                printable = PRINTABLE_WHILE.get(exc.reason, "Provisioning")
                await self._report(ref, updates, {**ctx.fields, **drift_fields, "printableStatus": printable})
            raise
        except AzureError as exc:
            failure = classify(exc)
            if failure.transient:
                raise TransientError(failure) from exc
            raise Stalled(failure.code, failure.message) from exc

    async def _pass(self, ctx: Context[S]) -> bool:
        kind, spec = self.kind, ctx.spec
        pending = self.pending_operation(ctx.ref)
        if pending is not None and spec.policies.reconcile == "Manage":
            await self._follow(ctx, pending)
        observed = await kind.observe(ctx)
        if spec.policies.reconcile == "Observe":  # reading is harmless: any resource, ours or not, can be observed
            view, differences = kind.observe_only(ctx, observed)
            ctx.drift = [f"{p} (reported)" for p in differences]
            return await self._report_view(ctx, view, observing=True)

        primary = kind.primary(observed)
        if primary is not None:
            verdict = ownership.adoption_verdict(primary, ctx.identity, spec.policies.adoption)
            if verdict is not None:
                what = f"Azure {kind.noun} {spec.azure_name} in {spec.resource_group}"
                raise Stalled(verdict, ownership.not_ours_message(what, primary, ctx.identity,
                                                                  spec.policies.adoption))
        busy = infra.in_progress(primary)
        if busy:
            raise InProgress(f"Azure reports provisioningState {busy}", self.recheck_delay(None), busy)
        held = self._held_failure(ctx.ref)
        if held is not None:  # the same write would fail the same way: wait for the user
            raise held
        if primary is None or infra.provisioning_state(primary) == "Failed":
            # A resource whose last operation failed is recovered the way Azure documents: PUT the model again.
            await kind.create(ctx, observed)
            observed = await kind.observe(ctx)
        elif await kind.update(ctx, observed):
            observed = await kind.observe(ctx)  # read back what Azure made of a write that finished at once
        view = kind.status(ctx, observed)
        if view.fields.get("provisioningState") == "Failed":
            raise TransientError(ArmFailure(ErrorKind.TRANSIENT, "ProvisioningFailed",
                                            "Azure reports provisioningState Failed"))
        ready = await self._report_view(ctx, view)
        if not ready:
            raise InProgress(view.message, self.recheck_delay(None), reported=True)
        return True

    async def _follow(self, ctx: Context[S], pending: PendingOperation) -> None:
        """Look once at a pending operation: still running -> InProgress; failed -> the error; done -> carry on
        (its Events are emitted now, once)."""
        async with self.operation_slots:
            status = await operations.check(ctx.az.compute, pending)
        if not status.done:
            raise InProgress(pending.message or f"{pending.action} in progress", self.recheck_delay(status.retry_after),
                             pending.reason)
        self.remember_operation(ctx.ref, None)
        self.cache.touch(ctx.ref.key)  # what the operation changed is read directly until the next listing
        if status.failure is not None:
            kind_verdict = getattr(self.kind, "on_operation_failed", None)
            stalled = kind_verdict(ctx, pending, status.failure) if kind_verdict is not None else None
            if stalled is not None:
                raise stalled
            if status.failure.transient:
                raise TransientError(status.failure)
            failed = {"action": pending.action, "code": status.failure.code, "message": status.failure.message,
                      "generation": ctx.ref.generation,
                      "reconcileRequestedAt": ctx.ref.annotations.get(RECONCILE_REQUESTED_ANNOTATION)}
            raise _held(failed)
        ctx.completed = pending
        for reason, message in pending.events:
            ctx.event("Normal", reason, message)

    @staticmethod
    def _held_failure(ref: ResourceRef) -> Stalled | None:
        """An operation of this generation ended with a permanent error (status.failedOperation) and no reconcile
        was requested since: Stalled again, without writing. A resource Azure left Failed would otherwise be PUT
        again by every later pass (the recovery of a transient failure) and fail the same way, in a loop."""
        failed = ref.status.get(FAILED_OPERATION)
        if not failed or failed.get("generation") != ref.generation:
            return None
        if failed.get("reconcileRequestedAt") != ref.annotations.get(RECONCILE_REQUESTED_ANNOTATION):
            return None
        return _held(failed)

    # ---- status ----------------------------------------------------------------------------------------------

    @staticmethod
    def _drift(ctx: Context[S], observing: bool = False) -> tuple[dict[str, Any], cond.Condition]:
        """status.drift (only when something drifted) and the Drifted condition."""
        if not ctx.drift:
            return {}, cond.Condition(DRIFTED, False, "NoDrift", "")
        action = "Reported" if ctx.spec.policies.drift == "Report" or observing else "Corrected"
        return ({"drift": {"fields": ctx.drift, "detectedTime": cond.now_rfc3339(), "action": action}},
                cond.Condition(DRIFTED, True, "DriftDetected", "; ".join(ctx.drift)))

    async def _report_view(self, ctx: Context[S], view: StatusView, observing: bool = False) -> bool:
        ready = view.ready
        drift_fields, drifted = self._drift(ctx, observing)
        fields = {**ctx.fields, **view.fields, **drift_fields}
        requested = ctx.ref.annotations.get(RECONCILE_REQUESTED_ANNOTATION)
        if requested is not None:  # done: with it, this pass's lastObservedTime is written
            fields["lastReconcileRequest"] = requested
        if observing:
            fields["printableStatus"] = "Observing"
            await self._report(ctx.ref, [
                cond.Condition(cond.READY, ready, "Observed" if ready else "NotFound", view.message),
                cond.Condition(cond.RECONCILING, False, "Observing", ""),
                cond.Condition(cond.STALLED, False, "Observing", ""),
                drifted,
            ], fields)
            return ready
        if ready:
            fields["appliedGeneration"] = ctx.ref.generation
            if ctx.ref.status.get(FAILED_OPERATION):
                fields[FAILED_OPERATION] = None  # overcome: a new spec or a requested reconcile succeeded
        fields["printableStatus"] = view.printable if ready else (view.printable_not_ready or "Provisioning")
        reason = "Reconciled" if ready else "InProgress"
        await self._report(ctx.ref, [
            cond.Condition(cond.READY, ready, reason, view.message),
            cond.Condition(cond.RECONCILING, not ready, reason, "" if ready else view.message),
            cond.Condition(cond.STALLED, False, "Reconciled", ""),
            drifted,
        ], fields)
        return ready

    async def _report(self, ref: ResourceRef, updates: list[cond.Condition],
                      fields: Mapping[str, Any] | None = None) -> None:
        """Every status write goes here: the pending operation (if any) travels with it."""
        status = dict(fields or {})
        key = self._key(ref)
        if key in self._operations:
            pending = self._operations[key]
            value = pending.to_status() if pending is not None else None
            if value != ref.status.get(operations.STATUS_FIELD):
                status[operations.STATUS_FIELD] = value
        await self.reporter.report(ref, updates, status)
