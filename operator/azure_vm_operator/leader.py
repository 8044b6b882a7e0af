"""Leader election on a coordination.k8s.io/v1 Lease, as controller-runtime and client-go do it.

Kopf has no Lease-based election (its peering freezes operators of equal priority), so the operator elects a
leader itself before starting Kopf: only the replica holding the Lease runs handlers; the others wait to take over
when the holder stops renewing (a crash) or releases the Lease (a graceful stop). Optimistic concurrency on the
Lease's resourceVersion decides races.

With sharding, each shard elects its own leader on a Lease of its own (``sharding.Shard.lease_name``:
``azure-vm-operator-shard-<i>-of-<N>``), so replicas of one shard stand by for each other only.

The renewals run in a thread of their own with the synchronous client: Kopf treats every asyncio task created
while it runs as its own and cancels it when it stops, so the election keeps out of Kopf's event loop.
"""

from __future__ import annotations

import datetime
import logging
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, cast

import kubernetes.client

logger = logging.getLogger(__name__)

LEASE_NAME = "azure-vm-operator"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _resource_version(lease: Any) -> str | None:
    return lease.metadata.resource_version if lease.metadata else None


def _micro(ts: datetime.datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass
class LeaseElector:
    api_client: kubernetes.client.ApiClient
    namespace: str
    name: str = LEASE_NAME
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    lease_duration: float = 15.0  #: seconds a holder owns the Lease without renewing
    renew_deadline: float = 10.0  #: a leader that could not renew for this long steps down
    retry_period: float = 2.0  #: seconds between attempts to acquire or renew

    def __post_init__(self) -> None:
        self._api = kubernetes.client.CoordinationV1Api(self.api_client)
        self.observed_holder: str | None = None
        self.lost = threading.Event()
        self._stop_renewing = threading.Event()
        self._renewer: threading.Thread | None = None

    # ---- one attempt -----------------------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this identity holds the Lease afterwards."""
        now = _now()
        spec: dict[str, Any] = {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                                "renewTime": _micro(now)}
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise
            body = {"metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {**spec, "acquireTime": _micro(now), "leaseTransitions": 0}}
            try:
                self._api.create_namespaced_lease(self.namespace, cast(Any, body))
                self.observed_holder = self.identity
                return True
            except kubernetes.client.ApiException as create_exc:
                if create_exc.status == 409:
                    return False  # another replica created it first
                raise
        current = lease.spec
        holder = current.holder_identity if current else None
        self.observed_holder = holder
        renewed = _parse(current.renew_time) if current else None
        duration = (current.lease_duration_seconds if current else None) or self.lease_duration
        if holder and holder != self.identity and renewed and (now - renewed).total_seconds() <= duration:
            return False
        ours = holder == self.identity
        acquired = _parse(current.acquire_time) if ours and current else None
        spec["acquireTime"] = _micro(acquired or now)
        spec["leaseTransitions"] = ((current.lease_transitions or 0) if current else 0) + (0 if ours else 1)
        body = {"metadata": {"name": self.name, "namespace": self.namespace,
                             "resourceVersion": _resource_version(lease)}, "spec": spec}
        try:
            self._api.replace_namespaced_lease(self.name, self.namespace, cast(Any, body))
        except kubernetes.client.ApiException as exc:
            if exc.status == 409:
                return False  # someone else wrote the Lease in between: read it again next time
            raise
        self.observed_holder = self.identity
        return True

    def _attempt(self) -> bool:
        try:
            return self.try_acquire_or_renew()
        except Exception:  # noqa: BLE001 - the API server may be briefly unreachable; try again
            logger.warning("leader election attempt failed", exc_info=True)
            return False

    # ---- the life of a leader --------------------------------------------------------------------------------

    def acquire(self, stopped: Callable[[], bool]) -> bool:
        """Block until this replica holds the Lease (True) or ``stopped()`` says to give up (False)."""
        while not stopped():
            if self._attempt():
                logger.info("became the leader (Lease %s/%s, identity %s)", self.namespace, self.name, self.identity)
                return True
            time.sleep(self.retry_period)
        return False

    def keep_renewing(self, on_lost: Callable[[], None]) -> None:
        """Renew in a background thread; call ``on_lost`` once if the Lease is lost or cannot be renewed in time."""

        def renew() -> None:
            last = time.monotonic()
            while not self._stop_renewing.wait(self.retry_period):
                if self._attempt():
                    last = time.monotonic()
                    continue
                if self.observed_holder not in (None, self.identity) or time.monotonic() - last > self.renew_deadline:
                    logger.error("lost the leader Lease %s/%s (holder now %s): stepping down", self.namespace,
                                 self.name, self.observed_holder)
                    self.lost.set()
                    on_lost()
                    return

        self._renewer = threading.Thread(target=renew, name="lease-renewer", daemon=True)
        self._renewer.start()

    def stop_renewing(self) -> None:
        self._stop_renewing.set()
        if self._renewer is not None:
            self._renewer.join(timeout=self.retry_period + 5)

    def release(self) -> None:
        """Give the Lease up on a graceful stop so that a standby takes over at once."""
        self.stop_renewing()
        if self.lost.is_set():
            return
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec and lease.spec.holder_identity == self.identity:
                body = {"metadata": {"name": self.name, "namespace": self.namespace,
                                     "resourceVersion": _resource_version(lease)},
                        "spec": {"holderIdentity": None, "leaseDurationSeconds": 1,
                                 "renewTime": _micro(_now() - datetime.timedelta(seconds=60)),
                                 "leaseTransitions": lease.spec.lease_transitions or 0}}
                self._api.replace_namespaced_lease(self.name, self.namespace, cast(Any, body))
        except kubernetes.client.ApiException:
            logger.warning("could not release the leader Lease; it expires in %.0f s", self.lease_duration)
