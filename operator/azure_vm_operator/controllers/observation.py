"""Shared observation: one LIST per (subscription, resource group, resource type) per interval serves every
resource's reads, instead of one GET per resource per pass.

What a listing may answer, and what it may not:
- a resource the listing holds is served from it, unless this process wrote to (or followed an operation on) the
  custom resource that owns it since the listing was taken: then it is read directly (``touch``);
- a resource the listing lacks is confirmed with a direct GET before anyone acts on its absence (a listing is
  never the reason something is created); a reader that would only delete what exists (a public IP the spec no
  longer wants) trusts the miss;
- concurrent readers of one listing wait for the same LIST (single flight); pages are followed by the SDK's
  pager; a failed LIST is not cached (the readers fall back to their own GETs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterable, Awaitable, Callable, Hashable

from azure.core.exceptions import AzureError

logger = logging.getLogger(__name__)

Lister = Callable[[], AsyncIterable[Any]]
Getter = Callable[[], Awaitable[dict[str, Any] | None]]


@dataclass
class _Listing:
    taken: float
    items: dict[str, dict[str, Any]]


@dataclass
class ObservationCache:
    """Listings by key (subscription/credential, resource group, type, and how it was listed), kept ``interval``
    seconds. ``interval`` 0 turns the cache off (every read is a GET)."""

    interval: float
    clock: Callable[[], float] = time.monotonic
    _listings: dict[Hashable, _Listing] = field(default_factory=dict)
    _inflight: dict[Hashable, asyncio.Future[_Listing | None]] = field(default_factory=dict)
    _touched: dict[Hashable, float] = field(default_factory=dict)
    lists: int = 0  #: LIST calls made (for tests and benchmarks)
    hits: int = 0  #: reads served from a listing

    def touch(self, owner: Hashable) -> None:
        """``owner`` wrote to Azure (or an operation of its own finished): its next reads go to Azure directly
        until a listing taken after this moment exists."""
        self._touched[owner] = self.clock()

    def forget(self, owner: Hashable) -> None:
        self._touched.pop(owner, None)

    async def read(self, owner: Hashable, key: Hashable, name: str, lister: Lister, getter: Getter,
                   confirm_missing: bool = True) -> dict[str, Any] | None:
        """The resource ``name`` of listing ``key``, as fresh as the rules above allow. ``confirm_missing`` False:
        the caller only deletes what exists (nothing is created from the answer), so a listing's miss is trusted."""
        if self.interval <= 0:
            return await getter()
        listing = await self._listing(key, lister)
        if listing is None:
            return await getter()
        item = listing.items.get(name.lower())
        if item is None and not confirm_missing:
            # Trusted even when the owner wrote since the listing: its writes create what its spec wants, and this
            # is what it does not want. (Had a spec change dropped it just after its creation started, the next
            # listing shows it and a later pass deletes it.) A VM being created read its unwanted public IP and
            # NSG directly twice each: 481 of the 1,542 reads that made 100 VMs wait for ARM's read bucket.
            self.hits += 1
            return None
        touched = self._touched.get(owner)
        if touched is not None and listing.taken <= touched:
            return await getter()
        if item is None:
            return await getter()  # absent from the listing: confirmed by a GET before anyone acts on it
        self.hits += 1
        return item

    async def _listing(self, key: Hashable, lister: Lister) -> _Listing | None:
        current = self._listings.get(key)
        if current is not None and self.clock() - current.taken < self.interval:
            return current
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Listing | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        listing: _Listing | None = None
        try:
            taken = self.clock()
            items: dict[str, dict[str, Any]] = {}
            self.lists += 1
            async for item in lister():
                body = item.as_dict() if hasattr(item, "as_dict") else dict(item)
                items[str(body.get("name", "")).lower()] = body
            listing = _Listing(taken, items)
            self._listings[key] = listing
        except AzureError as exc:
            logger.info("listing %s failed (%s); reading resources one by one", key, exc)
        finally:
            self._inflight.pop(key, None)
            if not future.done():  # also when cancelled: the other readers fall back to their own GETs
                future.set_result(listing)
        return listing
