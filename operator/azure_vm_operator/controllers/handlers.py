"""Kopf wiring: login, start-up/clean-up, and the handlers that call the controllers.

Kopf is edge-triggered; a daemon per resource adds the level-triggered part (periodic observation, drift).
A per-resource lock makes the handlers and the daemon take turns.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import kopf

from .. import metrics
from ..api.constants import FINALIZER, GROUP, VERSION, VM_PLURAL
from ..azure.clients import AzureClients
from ..config import OperatorConfig
from ..kube import KubeClient, connection_info, load_configuration
from .status import ResourceRef, StatusReporter
from .virtualmachine import InProgress, TransientError, VirtualMachineController

logger = logging.getLogger(__name__)

#: How soon to look again at a resource Azure is still working on.
IN_PROGRESS_RECHECK = 5.0


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
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.posting.level = logging.WARNING  # our own Events tell condition changes; Kopf adds only problems
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 120
    kube = KubeClient(memo.get("kube_configuration") or load_configuration(config.kubeconfig))
    memo["kube"] = kube
    memo["azure"] = AzureClients(config, credential=memo.get("azure_credential"))
    memo["vm_controller"] = VirtualMachineController(config, memo["azure"], StatusReporter(kube), kube)
    memo["locks"] = {}
    if config.metrics_port is not None and not memo.get("metrics_started"):
        metrics.serve(config.metrics_port, config.metrics_host)
        memo["metrics_started"] = True


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    # Let reconciliations in flight finish (and keep new ones out) before the clients they use are closed.
    locks = list(memo.get("locks", {}).values())
    try:
        await asyncio.wait_for(asyncio.gather(*(lock.acquire() for lock in locks)), timeout=30)
    except asyncio.TimeoutError:
        logger.warning("closing Azure clients while reconciliations are still running")
    if "azure" in memo:
        await memo["azure"].close()
    if "kube" in memo:
        memo["kube"].close()


def _lock(memo: kopf.Memo, uid: str) -> asyncio.Lock:
    return memo["locks"].setdefault(uid, asyncio.Lock())


def _backoff(config: OperatorConfig, retry: int) -> float:
    delay = min(config.backoff_base * (2 ** retry), config.backoff_max)
    return delay * random.uniform(0.8, 1.2)


# ---- VirtualMachine -------------------------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, VM_PLURAL)
@kopf.on.create(GROUP, VERSION, VM_PLURAL)
@kopf.on.update(GROUP, VERSION, VM_PLURAL)
async def reconcile_vm(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    controller: VirtualMachineController = memo["vm_controller"]
    async with _lock(memo, body["metadata"]["uid"]):
        try:
            await controller.reconcile(ResourceRef(VM_PLURAL, dict(body)))
        except TransientError as exc:
            raise kopf.TemporaryError(str(exc), delay=_backoff(controller.config, retry)) from exc
        except InProgress as exc:
            raise kopf.TemporaryError(f"in progress: {exc}", delay=IN_PROGRESS_RECHECK) from exc


@kopf.on.delete(GROUP, VERSION, VM_PLURAL)
async def delete_vm(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    controller: VirtualMachineController = memo["vm_controller"]
    async with _lock(memo, body["metadata"]["uid"]):
        try:
            await controller.delete(ResourceRef(VM_PLURAL, dict(body)))
        except TransientError as exc:
            raise kopf.TemporaryError(str(exc), delay=_backoff(controller.config, retry)) from exc
    memo["locks"].pop(body["metadata"]["uid"], None)


@kopf.daemon(GROUP, VERSION, VM_PLURAL, cancellation_timeout=10.0)
async def observe_vm(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    """Re-observe Azure every resync interval: recreate what was deleted outside Kubernetes, correct drift."""
    controller: VirtualMachineController = memo["vm_controller"]
    delay = controller.config.resync_interval
    while not stopped:
        # A plain sleep: Kopf cancels the daemon when it stops or the resource goes (cancellation_timeout set, no
        # backoff). stopped.wait(timeout) would leave a finished "time-limited waiting" task behind whose
        # TimeoutError Kopf re-raises from kopf.operator() at shutdown.
        await asyncio.sleep(delay)
        if stopped or body["metadata"].get("deletionTimestamp"):
            return
        delay = controller.config.resync_interval
        async with _lock(memo, body["metadata"]["uid"]):
            try:
                await controller.reconcile(ResourceRef(VM_PLURAL, dict(body)))
            except (TransientError, InProgress) as exc:
                logger.info("%s/%s: %s; looking again soon", body["metadata"]["namespace"],
                            body["metadata"]["name"], exc)
                delay = min(IN_PROGRESS_RECHECK, delay)
            except Exception:  # noqa: BLE001 - the daemon must survive anything and try again next time
                logger.exception("periodic observation of %s/%s failed", body["metadata"]["namespace"],
                                 body["metadata"]["name"])
