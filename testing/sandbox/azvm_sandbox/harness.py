"""Start the Azure emulator, the Kubernetes API and the operator together, each on its own event loop thread.

Kopf cancels every task created in its loop after it started when it stops, so the operator gets a loop of its own;
the servers share another; the caller (a test, the demo, a benchmark) keeps its own thread and talks to all of them
over HTTP only, like kubectl and the Azure SDK would.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, TypeVar

from azure_vm_operator.config import OperatorConfig

from .crds import load_crds

T = TypeVar("T")

SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000001"
TENANT_ID, CLIENT_ID, CLIENT_SECRET = "harness-tenant", "harness-client", "harness-secret"


class LoopThread:
    """An asyncio event loop running forever in a daemon thread; `call` runs a coroutine on it and waits."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Awaitable[T], timeout: float | None = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def submit(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def close(self) -> None:
        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            try:
                self.call(_cancel_all(), timeout=10)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()


@contextmanager
def kube_api(workdir: Path, crds_dir: Path | None = None, name: str = "kubeapi") -> Iterator[Any]:
    """The test Kubernetes API alone, on a loop thread of its own, with every CRD of ``crds_dir`` registered (None:
    none, for tests that create CRDs over HTTP); yields a kubernetes ``ApiClient`` for it (kubeconfig in
    ``workdir``), and stops it all on exit."""
    import kubernetes.config
    from kubeapi import KubeAPIServer

    loop = LoopThread(name)
    api = KubeAPIServer()
    try:
        loop.call(api.start(host="127.0.0.1", port=0))
        for crd in load_crds(crds_dir) if crds_dir is not None else []:
            api.register_crd(crd)
        client = kubernetes.config.new_client_from_config(api.write_kubeconfig(str(Path(workdir) / "kubeconfig")))
        try:
            yield client
        finally:
            client.close()
            loop.call(api.stop())
    finally:
        loop.close()


class OperatorThread:
    """The operator, exactly as `azure-vm-operator run` runs it, on a loop thread of its own."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self._loop: LoopThread | None = None
        self._task: concurrent.futures.Future[None] | None = None
        self._stop: asyncio.Event | None = None
        self._ready: asyncio.Event | None = None
        self._elector: Any = None

    def start(self, timeout: float = 30, wait_ready: bool = True, identity: str | None = None) -> None:
        """Start; unless ``wait_ready`` is False (a standby replica), wait until Kopf is ready."""
        from azure_vm_operator.runner import run_operator

        self._loop = LoopThread("operator")

        async def _flags() -> tuple[asyncio.Event, asyncio.Event]:
            return asyncio.Event(), asyncio.Event()

        self._ready, self._stop = self._loop.call(_flags())
        self._task = self._loop.submit(run_operator(self.config, ready_flag=self._ready, stop_flag=self._stop,
                                                    identity=identity, on_elector=self._keep_elector))
        if wait_ready:
            self._loop.call(asyncio.wait_for(self._ready.wait(), timeout), timeout=timeout + 5)

    @property
    def ready(self) -> bool:
        """Kopf is running (with leader election: this replica leads)."""
        return self._ready is not None and self._ready.is_set()

    def stop(self, timeout: float = 30) -> bool | None:
        """Stop gracefully; returns what the run returned (True = it had lost leadership), None if it did not
        stop in time (then it is cancelled). An exception the operator raised on its way out is re-raised."""
        if self._loop is None:
            return None
        assert self._stop is not None and self._task is not None
        self._loop.loop.call_soon_threadsafe(self._stop.set)
        done, _ = concurrent.futures.wait([self._task], timeout)
        if not done:
            self._task.cancel()
        try:
            return self._task.result() if done else None
        finally:
            self._loop.close()
            self._loop = None

    def crash(self) -> None:
        """What a killed replica looks like to the others: its Lease renewals stop and it never releases the
        Lease (then the process winds down without touching the Lease)."""
        if self._elector is not None:
            self._elector.stop_renewing()
            self._elector.lost.set()  # "lost" skips the release on the way out
        self.stop()

    def _keep_elector(self, elector: Any) -> None:
        self._elector = elector

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()


@dataclass
class Environment:
    """Emulator + Kubernetes API (+ the operator, once started). Everything is reached through URLs and files.

    ``crds_dir`` is the folder whose CustomResourceDefinitions the Kubernetes API serves (the repository's crds/).
    """

    workdir: Path
    crds_dir: Path
    latency_scale: float = 0.0
    throttling: bool = True  #: as Azure does; tests that count requests get roomy buckets instead of none
    throttle_scale: float = 10.0
    emulator_state_dir: Path | None = None
    #: the Kubernetes API's bearer token; None: no authentication, for clients that send no token over plain
    #: HTTP (kubectl does not)
    kube_token: str | None = "harness-token"
    servers: LoopThread = field(init=False)
    emulator: Any = field(init=False)
    kubeapi: Any = field(init=False)
    kubeconfig: str = field(init=False)
    operator: OperatorThread | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        from azure_arm_emulator import Emulator
        from kubeapi import KubeAPIServer

        self.servers = LoopThread("servers")
        self.emulator = Emulator(state_dir=self.emulator_state_dir, latency_scale=self.latency_scale,
                                 throttling=self.throttling, throttle_scale=self.throttle_scale)
        self.kubeapi = KubeAPIServer(token=self.kube_token)
        self.servers.call(self.emulator.start(host="127.0.0.1", port=0))
        self.servers.call(self.kubeapi.start(host="127.0.0.1", port=0))
        for crd in load_crds(self.crds_dir):
            self.kubeapi.register_crd(crd)
        self.kubeconfig = self.kubeapi.write_kubeconfig(str(self.workdir / "kubeconfig"))
        # The operator authenticates as a service principal, exactly as against Entra ID.
        os.environ.update(AZURE_TENANT_ID=TENANT_ID, AZURE_CLIENT_ID=CLIENT_ID, AZURE_CLIENT_SECRET=CLIENT_SECRET)

    def operator_config(self, **overrides: Any) -> OperatorConfig:
        config = OperatorConfig(
            kubeconfig=self.kubeconfig,
            azure_endpoint=self.emulator.url,
            azure_ca=self.emulator.ca_path,
            azure_authority_host=self.emulator.url,
            azure_disable_instance_discovery=True,
            subscription_id=SUBSCRIPTION_ID,
            cluster_id="test-cluster",
            resync_interval=2.0,
            observe_interval=1.0,
            lro_polling_interval=0.05,
            backoff_base=0.2,
            backoff_max=2.0,
            metrics_port=None,
        )
        return replace(config, **overrides)

    def start_operator(self, **overrides: Any) -> OperatorThread:
        if self.operator is not None:
            self.operator.stop()
        self.operator = OperatorThread(self.operator_config(**overrides))
        self.operator.start()
        return self.operator

    def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.stop()
            self.operator = None

    def close(self) -> None:
        self.stop_operator()
        try:
            self.servers.call(self.kubeapi.stop())
            self.servers.call(self.emulator.stop())
        finally:
            self.servers.close()

    # ---- the emulator's admin API (fault injection, request log, simulated Azure events) ----------------------

    def admin(self, call: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``call(AdminClient)`` against the emulator's /_admin/ API and return its result."""
        from azure_arm_emulator.admin import AdminClient

        async def _run() -> T:
            async with AdminClient(self.emulator.url, self.emulator.ca_path) as client:
                return await call(client)

        return self.servers.call(_run())

    def arm_requests(self) -> list[dict[str, Any]]:
        return self.admin(lambda a: a.requests())

    def clear_arm_requests(self) -> None:
        self.admin(lambda a: a.clear_requests())

    def inject_fault(self, *, error_code: str | None = None, retry_after: float | None = None, **kwargs: Any) -> str:
        """A fault rule (see AdminClient.inject_fault); error_code/retry_after build an ARM error body/header."""
        if error_code is not None:
            kwargs.setdefault("body", {"error": {"code": error_code, "message": f"injected {error_code}"}})
        if retry_after is not None:
            kwargs.setdefault("headers", {})["Retry-After"] = str(int(retry_after))
        return self.admin(lambda a: a.inject_fault(**kwargs))

    def azure_resource_group(self, name: str, subscription_id: str = SUBSCRIPTION_ID) -> dict[str, Any]:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return self.azure_client(ResourceManagementClient, subscription_id).resource_groups.get(name).as_dict()

    # ---- clients, as a user or a test would hold them ---------------------------------------------------------

    def kube_api_client(self) -> Any:
        import kubernetes.config

        return kubernetes.config.new_client_from_config(self.kubeconfig)

    def azure_credential(self) -> Any:
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(TENANT_ID, CLIENT_ID, CLIENT_SECRET, authority=self.emulator.url,
                                      connection_verify=self.emulator.ca_path, disable_instance_discovery=True)

    def azure_client(self, cls: Callable[..., T], subscription_id: str = SUBSCRIPTION_ID) -> T:
        """A synchronous Azure SDK management client (ComputeManagementClient, NetworkManagementClient ...)."""
        return cls(self.azure_credential(), subscription_id, base_url=self.emulator.url,
                   connection_verify=self.emulator.ca_path,
                   credential_scopes=["https://management.azure.com/.default"])


def temporary_environment(crds_dir: str | Path, **kwargs: Any) -> Environment:
    return Environment(workdir=Path(tempfile.mkdtemp(prefix="azvm-")), crds_dir=Path(crds_dir), **kwargs)
