"""Object storage, the global resourceVersion, bounded per-resource event histories and watchers.

Everything here is synchronous and runs in the server's event loop, so every method is atomic with respect
to other requests: a watch subscribes and snapshots in one step and never misses an event in between
(the "same lock" is the event loop itself). A threading lock additionally protects in-process readers
(``KubeAPIServer.get_object``) called from other threads.

Stored objects are never mutated after they are stored: every write stores a new dict. Events and the
object map therefore share the same dicts, and each event is serialised to JSON at most once per API version.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .resources import ResourceType
    from .selectors import FieldSelector, LabelSelector

__all__ = ["Store", "Collection", "Event", "Watcher", "ObjectKey"]

ObjectKey = tuple[str, str]  # (namespace or "", name)


@dataclass(eq=False)
class Event:
    type: str  # ADDED, MODIFIED, DELETED
    rv: int
    obj: dict[str, Any]
    old: dict[str, Any] | None = None
    _encoded: dict[str, bytes] = field(default_factory=dict)

    def encode(self, api_version: str, type_: str | None = None) -> bytes:
        """One JSON line for a watch stream; cached per (apiVersion, type)."""
        etype = type_ or self.type
        key = f"{api_version}|{etype}"
        data = self._encoded.get(key)
        if data is None:
            obj = self.obj
            if obj.get("apiVersion") != api_version:
                obj = {**obj, "apiVersion": api_version}
            data = json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode() + b"\n"
            self._encoded[key] = data
        return data


@dataclass(eq=False)
class Watcher:
    """A subscription of one watch request: events are filtered here and queued for the response writer."""

    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    loop: asyncio.AbstractEventLoop
    plural: str = ""  #: the resource watched (KubeAPIServer.drop_watches)
    queue: asyncio.Queue[tuple[str, Event] | None] = field(default_factory=asyncio.Queue)

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and (obj.get("metadata") or {}).get("namespace") != self.namespace:
            return False
        return self.labels.matches(obj) and self.fields.matches(obj)

    def translate(self, event: Event) -> str | None:
        """The event type this watcher sees (objects moving in/out of a selector become ADDED/DELETED)."""
        now = self.matches(event.obj)
        if event.type != "MODIFIED":
            return event.type if now else None
        before = self.matches(event.old)
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        if before:
            return "DELETED"
        return None

    def offer(self, event: Event) -> None:
        etype = self.translate(event)
        if etype is not None:
            self.put((etype, event))

    def put(self, item: tuple[str, Event] | None) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.queue.put_nowait(item)
        else:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class Collection:
    """The objects of one resource (all served versions share it), its event history and watchers."""

    def __init__(self, history_size: int, start_rv: int) -> None:
        self.objects: dict[ObjectKey, dict[str, Any]] = {}
        self.history: deque[Event] = deque(maxlen=history_size)
        self.compacted_rv = start_rv  # all events with rv > compacted_rv are still in the history.
        self.watchers: set[Watcher] = set()

    def record(self, event: Event) -> None:
        if self.history.maxlen is not None and len(self.history) == self.history.maxlen:
            self.compacted_rv = self.history[0].rv
        self.history.append(event)
        for watcher in list(self.watchers):
            watcher.offer(event)

    def events_since(self, rv: int) -> list[Event] | None:
        """Events after ``rv``, or None if some of them were already compacted away (-> 410 Gone)."""
        if rv < self.compacted_rv:
            return None
        out: list[Event] = []
        for event in reversed(self.history):
            if event.rv <= rv:
                break
            out.append(event)
        out.reverse()
        return out


class Store:
    def __init__(self, history_size: int = 10_000) -> None:
        self.history_size = history_size
        self.rv = 1
        self.collections: dict[tuple[str, str], Collection] = {}
        self.lock = threading.RLock()

    def collection(self, rt: ResourceType) -> Collection:
        key = rt.storage_key
        coll = self.collections.get(key)
        if coll is None:
            coll = self.collections[key] = Collection(self.history_size, self.rv)
        return coll

    def drop(self, rt: ResourceType) -> Collection | None:
        with self.lock:
            return self.collections.pop(rt.storage_key, None)

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def get(self, rt: ResourceType, key: ObjectKey) -> dict[str, Any] | None:
        with self.lock:
            return self.collection(rt).objects.get(key)

    def put(self, rt: ResourceType, key: ObjectKey, obj: dict[str, Any], *, event: str) -> dict[str, Any]:
        """Store a new version (ADDED or MODIFIED): stamps the next resourceVersion into ``obj``."""
        with self.lock:
            coll = self.collection(rt)
            rv = self.next_rv()
            obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
            old = coll.objects.get(key)
            coll.objects[key] = obj
            coll.record(Event(event, rv, obj, old))
            return obj

    def remove(self, rt: ResourceType, key: ObjectKey) -> dict[str, Any] | None:
        """Remove an object; the DELETED event carries the object stamped with the deletion's resourceVersion."""
        with self.lock:
            coll = self.collection(rt)
            old = coll.objects.pop(key, None)
            if old is None:
                return None
            rv = self.next_rv()
            final = {**old, "metadata": {**old["metadata"], "resourceVersion": str(rv)}}
            coll.record(Event("DELETED", rv, final, old))
            return final

    def items(self, rt: ResourceType, namespace: str | None) -> Iterable[tuple[ObjectKey, dict[str, Any]]]:
        objects = self.collection(rt).objects
        if namespace is None:
            return list(objects.items())
        return [(k, v) for k, v in objects.items() if k[0] == namespace]

    def subscribe(self, rt: ResourceType, watcher: Watcher) -> None:
        self.collection(rt).watchers.add(watcher)

    def unsubscribe(self, rt: ResourceType, watcher: Watcher) -> None:
        coll = self.collections.get(rt.storage_key)
        if coll is not None:
            coll.watchers.discard(watcher)
