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
    kopf_ready = ready_flag or asyncio.Event()
    standby = asyncio.Event()  # set while this replica waits for the leader Lease
    health = None
    if config.health_port is not None:
        health = await _serve_health(config, ready=lambda: standby.is_set() or kopf_ready.is_set())
    try:
        return await _lead_or_run(config, shard, kopf_ready, standby, stop_flag, azure_credential, identity,
                                  on_elector)
    finally:
        if health is not None:
            await health.cleanup()


async def _lead_or_run(config: OperatorConfig, shard: Shard, ready_flag: asyncio.Event, standby: asyncio.Event,
                       stop_flag: asyncio.Event | None, azure_credential: Any, identity: str | None,
                       on_elector: Callable[[Any], None] | None) -> bool:
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
    if config.metrics_port is not None:  # a standby's /metrics answers too: no scrape target is down
        from . import metrics

        metrics.serve(config.metrics_port, config.metrics_host)
    try:
        standby.set()
        acquired = await asyncio.to_thread(elector.acquire, stop.is_set)
        standby.clear()
        if not acquired:
            return False
        elector.keep_renewing(on_lost=lambda: _call_soon(loop, stop.set))
        try:
            await _run_kopf(config, ready_flag, stop, azure_credential, metrics_started=True)
        finally:
            await asyncio.to_thread(elector.release)
        return elector.lost.is_set()
    finally:
        api_client.close()  # type: ignore[no-untyped-call]


async def _serve_health(config: OperatorConfig, ready: Callable[[], bool]) -> Any:
    """The kubelet's probes: ``/healthz`` answers 200 while the event loop runs (liveness); ``/readyz`` 200 while
    this replica is a standby waiting for the Lease or once Kopf is ready, else 503 (starting up). Returns the
    aiohttp runner to clean up."""
    from aiohttp import web

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n") if ready() else web.Response(status=503, text="starting\n")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.health_host, config.health_port).start()
    logger.info("health endpoint on port %s (/healthz, /readyz)", config.health_port)
    return runner


async def _run_kopf(config: OperatorConfig, ready_flag: asyncio.Event, stop_flag: asyncio.Event | None,
                    azure_credential: Any, metrics_started: bool = False) -> None:
    from . import logs
    from .controllers import handlers  # noqa: F401 - registers the Kopf handlers

    logs.install_retry_level_filter()
    memo = kopf.Memo(config=config)
    if metrics_started:
        memo["metrics_started"] = True
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
