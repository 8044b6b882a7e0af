"""The periodic observation of every resource (drift detection, recreating what was deleted outside Kubernetes):
one task for the whole fleet, a heap of due times, instead of a Kopf daemon per resource.

A Kopf daemon costs each resource a task that lives as long as the resource: a chain of about eight coroutines
(Kopf's spawning, invocation and execution layers, the handler, its sleep), their locals, a stopper (an asyncio
and a threading event), contextvar tokens and a copy of the body, about 20 KiB per resource, measured
(docs/benchmarks.md, "Operator at fleet scale": 250 MiB RSS with 2,000 resources, 190 MiB without the daemons).
Here a resource costs an entry (its latest body and when it is due); a task exists only while its pass runs.

The body is the latest one the handlers passed to ``update`` (see ``handlers.register``): a pass sees the current
spec and annotations, as Kopf's live body did for the daemon.

``follow`` takes over from a Kopf handler whose pass started an Azure operation: the passes that look at it again
(after Azure's Retry-After) run here, not as Kopf retries, which patch the resource twice per retry (its progress
annotations) and made the embedded Kubernetes API the busiest process while a fleet was created.

``wake`` brings a resource's pass forward when the shared listings saw its Azure resources change
(``observation.ObservationCache.on_change``): within ``wake_jitter`` seconds, never more than one such extra pass
per ``wake_gap`` seconds (a later wake waits for the gap, it is not dropped), and a wake while the pass runs gives
one more pass after it (the running one may have read the listing before the change).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Hashable, Mapping

logger = logging.getLogger(__name__)

#: One pass over a resource: (plural, body) -> seconds until its next pass.
Observe = Callable[[str, Mapping[str, Any]], Awaitable[float]]
#: When a resource seen for the first time is first observed: body -> seconds.
FirstDelay = Callable[[Mapping[str, Any]], float]


@dataclass
class _Entry:
    plural: str
    body: Mapping[str, Any]
    due: float = 0.0
    running: bool = False
    woken: float = float("-inf")  #: when the last pass brought forward by ``wake`` was due
    poked: bool = False  #: woken while its pass ran: another pass soon after it


@dataclass
class ResyncScheduler:
    """Runs ``observe`` for each known resource when it is due, each resource at most once at a time."""

    observe: Observe
    first_delay: FirstDelay
    #: seconds a pass in flight may finish in when the scheduler stops, before it is cancelled (as Kopf gave its
    #: daemons with ``cancellation_timeout``)
    stop_timeout: float = 10.0
    #: a woken resource's pass comes within this many seconds (spreads a change seen for many at once)
    wake_jitter: float = 1.0
    #: at most one pass brought forward by ``wake`` per resource per this many seconds (the observe interval)
    wake_gap: float = 0.0
    wakes: int = 0  #: passes brought forward (for tests and benchmarks)
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _names: dict[tuple[str, str, str], str] = field(default_factory=dict)  #: (plural, namespace, name) -> uid
    _heap: list[tuple[float, int, str]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _passes: set[asyncio.Task[None]] = field(default_factory=set)
    _wake: asyncio.Event | None = None
    _task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="resync-scheduler")

    def update(self, uid: str, plural: str, body: Mapping[str, Any]) -> None:
        """The latest body of a resource; the first one schedules its first pass."""
        entry = self._entries.get(uid)
        if entry is not None:
            entry.body = body
            return
        entry = self._entries[uid] = _Entry(plural, body)
        self._names[_name(plural, body)] = uid
        self._schedule(uid, entry, self.first_delay(body))

    def body(self, uid: str) -> Mapping[str, Any] | None:
        """The body the next pass will see (None: unknown)."""
        entry = self._entries.get(uid)
        return entry.body if entry is not None else None

    def forget(self, uid: str) -> None:
        """The resource is gone: no more passes (one in flight finishes)."""
        entry = self._entries.pop(uid, None)
        if entry is not None and self._names.get(_name(entry.plural, entry.body)) == uid:
            del self._names[_name(entry.plural, entry.body)]

    def wake(self, key: Hashable) -> bool:
        """Bring forward the pass of the resource ``key`` = (plural, namespace, name): its Azure resources changed.
        False when it is unknown here (another shard's, gone) or already due by then."""
        uid = self._names.get(key) if isinstance(key, tuple) else None
        entry = self._entries.get(uid) if uid is not None else None
        if uid is None or entry is None:
            return False
        if entry.running:
            entry.poked = True
            return True
        when = self._wake_time(entry)
        if entry.due <= when:
            return False  # its pass comes by then anyway (a wake already pending, or its regular pass)
        entry.woken = when
        self.wakes += 1
        self._schedule(uid, entry, when - asyncio.get_running_loop().time())
        return True

    def follow(self, uid: str, delay: float) -> bool:
        """A handler's pass left an Azure operation running: the resource's next pass comes in ``delay`` seconds
        (sooner if it was due sooner). False when the scheduler does not know the resource. A pass of its own
        that is running waits for the handler's lock, so it follows the operation itself."""
        entry = self._entries.get(uid)
        if entry is None:
            return False
        if entry.running:
            return True
        if entry.due - asyncio.get_running_loop().time() > delay:
            self._schedule(uid, entry, delay)
        return True

    def _wake_time(self, entry: _Entry) -> float:
        now = asyncio.get_running_loop().time()
        return max(now, entry.woken + self.wake_gap) + random.uniform(0.0, max(self.wake_jitter, 0.0))

    def due_in(self, uid: str) -> float | None:
        """Seconds until the resource's next pass (None: unknown or running now)."""
        entry = self._entries.get(uid)
        if entry is None or entry.running:
            return None
        return entry.due - asyncio.get_running_loop().time()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        passes = list(self._passes)
        if passes:
            _, pending = await asyncio.wait(passes, timeout=self.stop_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*passes, return_exceptions=True)
        self._entries.clear()
        self._names.clear()
        self._heap.clear()

    def _schedule(self, uid: str, entry: _Entry, delay: float) -> None:
        entry.due = asyncio.get_running_loop().time() + max(0.0, delay)
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (entry.due, next(self._seq), uid))
        if self._wake is not None and (earliest is None or entry.due < earliest):
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self._heap and self._heap[0][0] <= now:
                due, _, uid = heapq.heappop(self._heap)
                entry = self._entries.get(uid)
                if entry is None or entry.running or entry.due != due:
                    continue  # forgotten, or a stale heap item of a rescheduled entry
                entry.running = True
                task = asyncio.create_task(self._pass(uid, entry))
                self._passes.add(task)
                task.add_done_callback(self._passes.discard)
            self._wake.clear()
            timeout = self._heap[0][0] - now if self._heap else None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    async def _pass(self, uid: str, entry: _Entry) -> None:
        delay: float | None = None
        try:
            delay = await self.observe(entry.plural, entry.body)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - ``observe`` handles its own errors; this keeps the resource scheduled
            logger.exception("periodic observation of %s %s failed", entry.plural, uid)
        finally:
            entry.running = False
        if self._entries.get(uid) is entry:
            delay = delay if delay is not None else self.first_delay(entry.body)
            if entry.poked:
                entry.poked = False
                when = self._wake_time(entry)
                if when - asyncio.get_running_loop().time() < delay:
                    entry.woken = when
                    self.wakes += 1
                    delay = when - asyncio.get_running_loop().time()
            self._schedule(uid, entry, delay)


def _name(plural: str, body: Mapping[str, Any]) -> tuple[str, str, str]:
    metadata = body.get("metadata") or {}
    return (plural, str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
