"""Runs the operator (Kopf) with a given configuration: used by `azure-vm-operator run`, the demo and the tests."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import kopf

from .config import OperatorConfig
from .sharding import Shard

logger = logging.getLogger(__name__)


async def run_operator(
    config: OperatorConfig,
    *,
    ready_flag: asyncio.Event | None = None,
    stop_flag: asyncio.Event | None = None,
    azure_credential: Any = None,
    identity: str | None = None,
    on_elector: Callable[[Any], None] | None = None,
) -> bool:
    """Run until stop_flag is set (or the task is cancelled). Returns True if leadership was lost (the process
    should exit and come back as a standby), False otherwise.

    ``azure_credential`` overrides the credential built from the configuration (an async TokenCredential).
    With ``config.leader_elect``, Kopf starts only once this replica holds the leader Lease (one per shard).
    """
    shard = Shard.of(config)  # invalid shard settings fail before anything starts
    if shard.sharded or shard.selector:
        logger.info("reconciling %s (label selector: %s)", shard.name, shard.selector or "none")
    if not config.leader_elect:
        await _run_kopf(config, ready_flag, stop_flag, azure_credential)
        return False

    import kubernetes.client

    from .kube import load_configuration
    from .leader import LEASE_NAME, LeaseElector

    stop = stop_flag or asyncio.Event()
    loop = asyncio.get_running_loop()
    api_client = kubernetes.client.ApiClient(load_configuration(config.kubeconfig))
    elector = LeaseElector(api_client, config.leader_election_namespace or "default", shard.lease_name(LEASE_NAME),
                           lease_duration=config.lease_duration, renew_deadline=config.lease_duration * 2 / 3,
                           retry_period=max(0.5, config.lease_duration / 7.5))
    if identity:
        elector.identity = identity
    if on_elector:
        on_elector(elector)
    try:
        if not await asyncio.to_thread(elector.acquire, stop.is_set):
            return False
        elector.keep_renewing(on_lost=lambda: _call_soon(loop, stop.set))
        try:
            await _run_kopf(config, ready_flag, stop, azure_credential)
        finally:
            await asyncio.to_thread(elector.release)
        return elector.lost.is_set()
    finally:
        api_client.close()  # type: ignore[no-untyped-call]


async def _run_kopf(config: OperatorConfig, ready_flag: asyncio.Event | None, stop_flag: asyncio.Event | None,
                    azure_credential: Any) -> None:
    from .controllers import handlers  # noqa: F401 - registers the Kopf handlers

    memo = kopf.Memo(config=config)
    if azure_credential is not None:
        memo["azure_credential"] = azure_credential
    await kopf.operator(
        clusterwide=config.namespace is None,
        namespaces=[config.namespace] if config.namespace else (),
        standalone=True,
        memo=memo,
        ready_flag=ready_flag,
        stop_flag=stop_flag,
    )


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], Any]) -> None:
    loop.call_soon_threadsafe(callback)
