"""Emulator state: resources, async operations and small metadata, optionally durable in SQLite.

Mutations are synchronous and happen on the event loop: a request handler validates, then mutates, without
awaiting in between, so multi-step mutations are atomic with respect to other requests. Every mutation is also
recorded in the current *batch* (with an undo image), and the HTTP layer calls :meth:`Store.flush` before it
answers: the batch is written in one SQLite transaction (``synchronous=FULL``) by a single writer thread, so an
acknowledged write survives ``kill -9``. Reads wait for earlier writes to be durable too (a flush barrier), so
nothing a client has seen can be lost.

Convention: :meth:`get` returns the live object, which must not be modified; use :meth:`edit` to get a copy,
change it and :meth:`put` it back.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ids

RESOURCE = "resource"
OPERATION = "operation"
META = "meta"


@dataclass
class Resource:
    """One ARM resource: ``body`` is its public ARM representation, ``private`` is emulator-only state."""

    id: str
    type: str
    body: dict[str, Any]
    private: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return ids.key(self.id)

    @property
    def properties(self) -> dict[str, Any]:
        return self.body.setdefault("properties", {})

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "body": self.body, "private": self.private}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Resource:
        return cls(id=doc["id"], type=doc["type"], body=doc["body"], private=doc.get("private", {}))


_Missing = object()
Batch = dict[tuple[str, str], str | None]


class SqlitePersistence:
    """Append-style durable storage: one table of JSON documents, written by one thread in FIFO order."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arm-emulator-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _open_sync(self) -> list[tuple[str, str, str]]:
        conn = sqlite3.connect(self._path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, "
            "PRIMARY KEY (kind, key))"
        )
        self._conn = conn
        return list(conn.execute("SELECT kind, key, doc FROM records"))

    def _write_sync(self, batch: Batch) -> None:
        assert self._conn is not None
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for (kind, record_key), doc in batch.items():
                if doc is None:
                    conn.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, record_key))
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO records (kind, key, doc) VALUES (?, ?, ?)", (kind, record_key, doc)
                    )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def open(self) -> list[tuple[str, str, str]]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._open_sync)

    def write(self, batch: Batch) -> asyncio.Future[None]:
        return asyncio.get_running_loop().run_in_executor(self._executor, self._write_sync, batch)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_sync)
        self._executor.shutdown(wait=True)


class Store:
    """In-memory resources, operations and metadata with batching, undo and optional durability."""

    def __init__(self, state_dir: Path | None) -> None:
        self._persistence = SqlitePersistence(state_dir / "state.sqlite3") if state_dir is not None else None
        self._resources: dict[str, Resource] = {}
        self._by_type: dict[str, dict[str, Resource]] = {}
        self._operations: dict[str, dict[str, Any]] = {}
        self._meta: dict[str, Any] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._undo: dict[tuple[str, str], Any] = {}
        self._last_write: asyncio.Future[None] | None = None

    @property
    def durable(self) -> bool:
        return self._persistence is not None

    async def open(self) -> None:
        if self._persistence is None:
            return
        for kind, record_key, doc_text in await self._persistence.open():
            doc = json.loads(doc_text)
            if kind == RESOURCE:
                self._index(Resource.from_json(doc))
            elif kind == OPERATION:
                self._operations[record_key] = doc
            elif kind == META:
                self._meta[record_key] = doc

    async def close(self) -> None:
        await self.flush()
        if self._persistence is not None:
            await self._persistence.close()

    # resources ----------------------------------------------------------------------------------------------

    def get(self, resource_id: str) -> Resource | None:
        return self._resources.get(ids.key(resource_id))

    def edit(self, resource_id: str) -> Resource | None:
        """A private copy of the resource, to modify and :meth:`put` back."""
        current = self.get(resource_id)
        return None if current is None else copy.deepcopy(current)

    def put(self, resource: Resource) -> None:
        record_key = resource.key
        self._remember(RESOURCE, record_key, self._resources.get(record_key, _Missing))
        old = self._resources.get(record_key)
        if old is not None and old.type.lower() != resource.type.lower():
            self._by_type.get(old.type.lower(), {}).pop(record_key, None)
        self._index(resource)

    def delete(self, resource_id: str) -> Resource | None:
        record_key = ids.key(resource_id)
        old = self._resources.get(record_key)
        if old is None:
            return None
        self._remember(RESOURCE, record_key, old)
        self._unindex(old)
        return old

    def list(self, type_name: str, scope: str | None = None) -> list[Resource]:
        """Resources of a type, optionally under a scope id (subscription or resource group), sorted by id."""
        candidates = self._by_type.get(type_name.lower(), {})
        prefix = ids.key(scope) + "/" if scope else ""
        found = [r for k, r in candidates.items() if k.startswith(prefix)]
        return sorted(found, key=lambda r: r.key)

    def under(self, scope: str) -> list[Resource]:
        """Every resource whose id is below ``scope`` (e.g. everything in a resource group)."""
        prefix = ids.key(scope) + "/"
        return sorted((r for k, r in self._resources.items() if k.startswith(prefix)), key=lambda r: r.key)

    def _index(self, resource: Resource) -> None:
        self._resources[resource.key] = resource
        self._by_type.setdefault(resource.type.lower(), {})[resource.key] = resource

    def _unindex(self, resource: Resource) -> None:
        self._resources.pop(resource.key, None)
        self._by_type.get(resource.type.lower(), {}).pop(resource.key, None)

    # operations and metadata ---------------------------------------------------------------------------------

    def get_operation(self, operation_id: str) -> dict[str, Any] | None:
        return self._operations.get(operation_id)

    def operations(self) -> list[dict[str, Any]]:
        return list(self._operations.values())

    def put_operation(self, operation: dict[str, Any]) -> None:
        record_key = operation["id"]
        self._remember(OPERATION, record_key, self._operations.get(record_key, _Missing))
        self._operations[record_key] = operation

    def delete_operation(self, operation_id: str) -> None:
        if operation_id in self._operations:
            self._remember(OPERATION, operation_id, self._operations[operation_id])
            del self._operations[operation_id]

    def get_meta(self, name: str, default: Any = None) -> Any:
        return self._meta.get(name, default)

    def put_meta(self, name: str, value: Any) -> None:
        self._remember(META, name, self._meta.get(name, _Missing))
        self._meta[name] = value

    # batches ------------------------------------------------------------------------------------------------

    def _remember(self, kind: str, record_key: str, old: Any) -> None:
        slot = (kind, record_key)
        self._dirty.add(slot)
        if slot not in self._undo:
            self._undo[slot] = copy.deepcopy(old) if old is not _Missing else _Missing

    def checkpoint(self) -> None:
        """Keep every mutation so far: a later :meth:`rollback` only undoes what comes after."""
        self._undo.clear()

    def rollback(self) -> None:
        """Undo the mutations since the last checkpoint/flush (used when a handler fails half-way)."""
        for (kind, record_key), old in self._undo.items():
            if kind == RESOURCE:
                current = self._resources.get(record_key)
                if current is not None:
                    self._unindex(current)
                if old is not _Missing:
                    self._index(old)
            elif kind == OPERATION:
                if old is _Missing:
                    self._operations.pop(record_key, None)
                else:
                    self._operations[record_key] = old
            elif old is _Missing:
                self._meta.pop(record_key, None)
            else:
                self._meta[record_key] = old
        self._undo.clear()

    def _current_doc(self, kind: str, record_key: str) -> str | None:
        if kind == RESOURCE:
            resource = self._resources.get(record_key)
            return None if resource is None else json.dumps(resource.to_json())
        if kind == OPERATION:
            operation = self._operations.get(record_key)
            return None if operation is None else json.dumps(operation)
        return json.dumps(self._meta[record_key]) if record_key in self._meta else None

    def _take_batch(self) -> Batch:
        batch: Batch = {slot: self._current_doc(*slot) for slot in self._dirty}
        self._dirty.clear()
        self._undo.clear()
        return batch

    async def flush(self) -> None:
        """Make every mutation so far durable (no-op in memory mode); also a barrier for earlier writes."""
        if self._persistence is None:
            self._dirty.clear()
            self._undo.clear()
            return
        if self._dirty:
            self._last_write = self._persistence.write(self._take_batch())
        if self._last_write is not None:
            await asyncio.shield(self._last_write)
