"""Kopf wiring: login, start-up/clean-up, and one registration per kind (``register``) that connects Kopf's
handlers to the kind's reconciler on the frame.

Kopf is edge-triggered; one scheduler for the whole fleet (``resync``, fed by the handlers) adds the
level-triggered part (periodic observation, drift): a Kopf daemon per resource cost about 20 KiB per resource.
A per-resource lock makes the handlers and the periodic passes take turns; it is held for one pass, never for an
Azure operation (see ``frame``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from functools import partial
from typing import Any, Callable, Mapping

import kopf

from .. import logs, metrics
from ..api.conditions import AUTOSCALE_HEALTHY
from ..api.constants import FINALIZER, GROUP, OBSERVE_INTERVAL_ANNOTATION, VERSION
from ..api.fields import SpecError
from ..api.scaleset import parse_duration
from ..azure.clients import AzureClients
from ..config import OperatorConfig
from ..kube import KubeClient, connection_info, load_configuration
from ..sharding import Shard
from .autoscaler import Autoscaler
from .frame import InProgress, Kind, Reconciler, TransientError
from .observation import ObservationCache
from .resync import ResyncScheduler
from .status import ResourceRef, StatusReporter
from .availabilityset import AvailabilitySetKind
from .image import ImageKind
from .scaleset import ScaleSetKind
from .virtualmachine import VirtualMachineKind

logger = logging.getLogger(__name__)


def _identity(plural: str, body: Any) -> dict[str, Any]:
    """The ``extra=`` of a log line about this resource (logs.py: kind, namespace, name in JSON logs)."""
    return logs.resource(str(body.get("kind") or plural), body["metadata"].get("namespace"), body["metadata"]["name"])

#: The kinds this operator serves: each a set of steps on the frame.
KINDS: tuple[Callable[[], Kind[Any, Any]], ...] = (VirtualMachineKind, ScaleSetKind, ImageKind, AvailabilitySetKind)


def _config(memo: kopf.Memo) -> OperatorConfig:
    config = memo.get("config")
    if config is None:
        config = memo["config"] = OperatorConfig.from_env()
    return config


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    configuration = load_configuration(_config(memo).kubeconfig)
    memo["kube_configuration"] = configuration
    return connection_info(configuration)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = _config(memo)
    shard = Shard.of(config)
    # One per shard: Kopf removes its finalizer from every resource none of its handlers serves.
    settings.persistence.finalizer = shard.finalizer(FINALIZER)
    if shard.sharded:
        settings.posting.reporting_component = shard.component("azure-vm-operator")  # Events name the shard
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.posting.level = logging.WARNING  # our own Events tell condition changes; Kopf adds only problems
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 120
    kube = KubeClient(memo.get("kube_configuration") or load_configuration(config.kubeconfig))
    memo["kube"] = kube
    memo["azure"] = AzureClients(config, credential=memo.get("azure_credential"))
    reporter = StatusReporter(kube)
    shared_locks: dict[str, asyncio.Lock] = {}  # shared Azure resources are shared across kinds too
    cache = ObservationCache(config.observe_interval)  # and so are the listings (a VNet, an NSG ...)
    memo["observation_cache"] = cache
    slots = asyncio.Semaphore(config.max_concurrent_operations)
    memo["reconcilers"] = {
        kind.plural: Reconciler(kind, config, memo["azure"], reporter, kube, shared_locks, cache, slots)
        for kind in (make() for make in KINDS)
    }
    memo["locks"] = {}
    resync = ResyncScheduler(
        observe=partial(observe, memo),
        first_delay=lambda body: resync_delay(config, body["metadata"].get("annotations"), first=True),
        wake_jitter=min(1.0, config.observe_interval / 2), wake_gap=config.observe_interval)
    resync.start()
    memo["resync"] = resync
    # Drift seen from the listings: a changed entry brings forward the pass of the resources it belongs to.
    cache.cluster = config.cluster_id
    cache.plurals = {frame.kind.kind: plural for plural, frame in memo["reconcilers"].items()}
    cache.on_change = resync.wake
    cache.start()
    memo["posting"] = {}  # Kopf's event queue, for the passes (_remember_posting)
    memo["autoscaler"] = Autoscaler(memo["reconcilers"][ScaleSetKind.plural], reporter, kube, config)
    if shard.selector:  # filtered by the API server: other resources never reach this replica
        for plural in memo["reconcilers"]:
            settings.watching.label_selectors[GROUP, plural] = shard.selector
    if config.metrics_port is not None and not memo.get("metrics_started"):
        metrics.serve(config.metrics_port, config.metrics_host)
        memo["metrics_started"] = True


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    # Let passes in flight finish (and keep new ones out) before the clients they use are closed.
    if "observation_cache" in memo:
        await memo["observation_cache"].stop()
    if "resync" in memo:
        await memo.pop("resync").stop()
    locks = list(memo.get("locks", {}).values())
    try:
        await asyncio.wait_for(asyncio.gather(*(lock.acquire() for lock in locks)), timeout=30)
    except asyncio.TimeoutError:
        logger.warning("closing Azure clients while reconciliations are still running")
    if "autoscaler" in memo:
        await memo["autoscaler"].close()
    if "azure" in memo:
        await memo["azure"].close()
    if "kube" in memo:
        memo["kube"].close()


def in_shard(memo: kopf.Memo, namespace: str | None, name: str | None, **_: Any) -> bool:
    """The filter (``when=``) of every resource handler: only the resources of this replica's shard."""
    return Shard.of(_config(memo)).owns(namespace, name)


def _lock(memo: kopf.Memo, uid: str) -> asyncio.Lock:
    return memo["locks"].setdefault(uid, asyncio.Lock())  # type: ignore[no-any-return]


def _backoff(config: OperatorConfig, retry: int) -> float:
    delay: float = min(config.backoff_base * (2 ** retry), config.backoff_max)
    return delay * random.uniform(0.8, 1.2)


def resync_delay(config: OperatorConfig, annotations: Any, first: bool = False) -> float:
    """When a resource is looked at again: its ``compute.azvm.io/observe-interval`` annotation, else the resync
    interval; jittered by +-10% (the first time: anywhere in the interval), so that thousands of resources started
    together never all observe in the same second."""
    interval = config.resync_interval
    value = (annotations or {}).get(OBSERVE_INTERVAL_ANNOTATION)
    if value:
        try:
            interval = max(1.0, parse_duration(str(value), OBSERVE_INTERVAL_ANNOTATION))
        except SpecError:
            logger.warning("ignoring %s=%r: not a duration like 30s, 5m or 1h", OBSERVE_INTERVAL_ANNOTATION, value)
    return random.uniform(0.0, interval) if first else interval * random.uniform(0.9, 1.1)


def register(plural: str) -> None:
    """Kopf handlers for one kind: create/update/resume and delete run a pass. The periodic observation (one
    scheduler for every resource, ``observe`` every resync interval) learns a resource and its body from them
    and from the watch events that change what a pass reads (``track``; the status is ours, and what we last
    wrote is laid over a body's, see ``StatusReporter``), and forgets it when it is being deleted or gone."""

    def reconciler(memo: kopf.Memo) -> Reconciler[Any, Any]:
        return memo["reconcilers"][plural]  # type: ignore[no-any-return]

    async def one_pass(memo: kopf.Memo, body: kopf.Body, retry: int, deleting: bool) -> None:
        """One pass under the resource's lock; 'try again later' becomes Kopf's TemporaryError, except that an
        Azure operation in flight (not a deletion: its finalizer stays until all is gone) is followed by the
        resync scheduler, the status saying meanwhile what is going on."""
        frame = reconciler(memo)
        ref = ResourceRef(plural, dict(body))
        uid = body["metadata"]["uid"]
        async with _lock(memo, uid):
            try:
                await (frame.delete(ref) if deleting else frame.reconcile(ref))
            except TransientError as exc:
                raise kopf.TemporaryError(str(exc), delay=_backoff(frame.config, retry)) from exc
            except InProgress as exc:
                delay = frame.recheck_delay(exc.delay)
                scheduler: ResyncScheduler | None = memo.get("resync")
                if not deleting and scheduler is not None and scheduler.follow(uid, delay):
                    logger.info("%s; following it", exc, extra=_identity(plural, body))
                    return
                raise kopf.TemporaryError(f"in progress: {exc}", delay=delay) from exc

    @kopf.on.resume(GROUP, VERSION, plural, id=f"reconcile_{plural}", when=in_shard)
    @kopf.on.create(GROUP, VERSION, plural, id=f"reconcile_{plural}", when=in_shard)
    @kopf.on.update(GROUP, VERSION, plural, id=f"reconcile_{plural}", when=in_shard)
    async def reconcile(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
        _remember_posting(memo)
        if "resync" in memo:
            memo["resync"].update(body["metadata"]["uid"], plural, dict(body))
        await one_pass(memo, body, retry, deleting=False)

    @kopf.on.delete(GROUP, VERSION, plural, id=f"delete_{plural}", when=in_shard)
    async def delete(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
        if "resync" in memo:
            memo["resync"].forget(body["metadata"]["uid"])
        await one_pass(memo, body, retry, deleting=True)
        memo["locks"].pop(body["metadata"]["uid"], None)

    @kopf.on.event(GROUP, VERSION, plural, id=f"track_{plural}", when=track_in_shard)
    async def track(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        """The periodic observation's copy of the resource, when it matters (see ``track_in_shard``)."""
        _remember_posting(memo)
        scheduler: ResyncScheduler | None = memo.get("resync")
        if scheduler is None:
            return
        if event.get("type") == "DELETED":
            scheduler.forget(body["metadata"]["uid"])  # also when deleted without our delete handler
        else:
            scheduler.update(body["metadata"]["uid"], plural, dict(body))


#: Kopf's own annotations (its diff base and our handlers' progress): they change on every handling cycle
_KOPF_ANNOTATIONS = (f"{GROUP}/last-handled-configuration", f"{GROUP}/reconcile_", f"{GROUP}/delete_")


def _user_annotations(body: Mapping[str, Any]) -> dict[str, Any]:
    annotations = body.get("metadata", {}).get("annotations") or {}
    return {k: v for k, v in annotations.items() if not k.startswith(_KOPF_ANNOTATIONS)}


def track_in_shard(type: str | None, body: Mapping[str, Any], memo: kopf.Memo,  # noqa: A002 - Kopf's name
                   **kwargs: Any) -> bool:
    """The filter of ``track_*``: which watch events the periodic observation needs. Kopf runs a filter on
    every event, cheaply, but an event handler's machinery (invocation, outcome, logging) costs memory in a
    burst: 13 KiB per resource with 2,000 created at once, measured, when it ran on every event. So: a resource
    gone, one it does not know yet, and a change of generation, deletion or our annotations. Kopf's change
    detection ignores ``compute.azvm.io/*`` annotations (the prefix of its storages here), so on.update never
    sees restart-requested-at, reconcile-now or observe-interval: the periodic pass must."""
    if not in_shard(body=body, memo=memo, **kwargs):
        return False
    scheduler: ResyncScheduler | None = memo.get("resync")
    if type == "DELETED" or scheduler is None:
        return True
    known = scheduler.body(body["metadata"]["uid"])
    if known is None:
        return True
    before, after = known.get("metadata", {}), body.get("metadata", {})
    return (before.get("generation") != after.get("generation")
            or before.get("deletionTimestamp") != after.get("deletionTimestamp")
            or _user_annotations(known) != _user_annotations(body))


def _remember_posting(memo: kopf.Memo) -> None:
    """kopf.event() posts through a queue Kopf sets (context variables) only in the tasks that handle a resource:
    the scheduler's passes run outside them, so they take the queue a handler saw (Kopf's private module)."""
    holder = memo.get("posting")  # a dict from startup: each resource's memo is a shallow copy of the operator's
    if holder is not None and not holder:
        from kopf._core.engines import posting

        try:
            holder["vars"] = (posting.event_queue_loop_var.get(), posting.event_queue_var.get())
        except LookupError:
            pass


def _restore_posting(memo: kopf.Memo) -> None:
    if memo.get("posting"):
        from kopf._core.engines import posting

        loop, queue = memo["posting"]["vars"]
        posting.event_queue_loop_var.set(loop)  # in this pass's task only (each task has its own context)
        posting.event_queue_var.set(queue)


async def observe(memo: kopf.Memo, plural: str, body: Mapping[str, Any]) -> float:
    """One periodic pass over a resource (re-observing it, recreating what was deleted outside Kubernetes,
    correcting drift), under its lock; returns the seconds until its next pass."""
    frame: Reconciler[Any, Any] = memo["reconcilers"][plural]
    _restore_posting(memo)
    delay = resync_delay(frame.config, body["metadata"].get("annotations"))
    if body["metadata"].get("deletionTimestamp"):
        return delay  # the delete handler has it
    uid = body["metadata"]["uid"]
    async with _lock(memo, uid):
        scheduler: ResyncScheduler | None = memo.get("resync")
        latest = scheduler.body(uid) if scheduler is not None else body
        if latest is None or latest["metadata"].get("deletionTimestamp"):
            return delay  # deleted while this pass waited for the lock: never reconcile (create) it again
        try:
            await frame.reconcile(ResourceRef(plural, dict(latest)))
        except (TransientError, InProgress) as exc:
            logger.info("%s; looking again soon", exc, extra=_identity(plural, body))
            recheck = frame.recheck_delay(exc.delay if isinstance(exc, InProgress) else None)
            delay = min(max(recheck, 1.0), delay)
        except Exception:  # noqa: BLE001 - the observation must survive anything and try again next time
            logger.exception("periodic observation failed", extra=_identity(plural, body))
    return delay


for _make in KINDS:
    register(_make.plural)  # type: ignore[attr-defined]


@kopf.daemon(GROUP, VERSION, ScaleSetKind.plural, id="autoscale_scalesets", field="spec.autoscale", value=kopf.PRESENT,
             cancellation_timeout=10.0, when=in_shard)
async def autoscale(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    """The autoscaler of one ScaleSet (controllers/autoscaler.py), while it has spec.autoscale: an evaluation at
    once, then every evaluationInterval. The body is Kopf's live view: each evaluation sees the latest spec."""
    autoscaler: Autoscaler = memo["autoscaler"]
    plural = ScaleSetKind.plural
    try:
        while not stopped and not body["metadata"].get("deletionTimestamp"):
            ref = ResourceRef(plural, dict(body))
            try:
                delay = (await autoscaler.evaluate(ref, _lock(memo, body["metadata"]["uid"]))).delay
            except Exception:  # noqa: BLE001 - the loop must survive anything and evaluate again
                logger.exception("autoscale evaluation failed", extra=_identity(plural, body))
                delay = 30.0
            await asyncio.sleep(delay)
    except asyncio.CancelledError:
        pass  # Kopf stops async daemons by cancelling them: the normal way out
    finally:
        ref = ResourceRef(plural, dict(body))
        autoscaler.forget(ref)
        if not body.get("spec", {}).get("autoscale") and not body["metadata"].get("deletionTimestamp"):
            # spec.autoscale was removed: its status and condition no longer describe anything
            try:
                async with _lock(memo, body["metadata"]["uid"]):
                    await autoscaler.reporter.report(ref, [], {"autoscale": None}, observed=False,
                                                     drop=(AUTOSCALE_HEALTHY,))
            except Exception:  # noqa: BLE001 - best effort: the next status write of the reconciler keeps it
                logger.warning("could not clear status.autoscale", extra=_identity(plural, body))
