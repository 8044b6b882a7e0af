"""Shared observation: one LIST per (subscription, resource group, resource type) per interval serves every
resource's reads, instead of one GET per resource per pass.

What a listing may answer, and what it may not:
- a resource the listing holds is served from it, unless this process wrote to (or followed an operation on) the
  custom resource that owns it since the listing was taken (``touch``), or the entry is in transition (Creating,
  Updating, Deleting): then it is read from a *fresh* listing, one taken after that moment;
- a resource the listing lacks is confirmed by a fresh listing, one taken after the question was asked, before
  anyone acts on its absence (an older listing is never the reason something is created). A listing of several
  pages is no snapshot (what is deleted meanwhile shifts the pages: a 1,000-VM fleet being deleted made some of
  its VMs and NICs look absent), so its miss is confirmed by a GET, unless the same reader's GET found the
  resource absent within the interval (a creation that goes on over several passes); a reader that would only
  delete what exists (a public IP the spec no longer wants) trusts any listing's miss;
- fresh listings are shared: everyone who asks for one while it is not started yet waits for the same LIST, and
  one key is listed fresh at most every ``fresh_spacing`` seconds. A hundred VMs being created in one resource
  group thus read their VMs and NICs with a few LISTs a second instead of a GET each per pass, and stay within
  ARM's read bucket (250 + 25/s) instead of waiting for it;
- concurrent readers of one listing wait for the same LIST (single flight); pages are followed by the SDK's
  pager; a failed LIST is not cached: its readers fall back to their own GETs, unless ARM throttled it or
  could not answer (429, 5xx), when they get its error (a GET each would be answered the same).

Drift seen from the listings (``start``, ``on_change``): every listing that someone reads is taken again each
interval by one task, whether or not a pass reads it, and compared with the previous one entry by entry
(``fingerprint``: the entry's JSON without what changes while the resource does not, such as instance view
timestamps and the guest agent's heartbeat). For every entry changed, added or gone, the custom resources it
belongs to (``wakes``: those that read it by name, and the one its ownership tag names) are woken: their periodic
pass comes soon (the resync scheduler jitters and de-duplicates), so drift is seen within about an interval instead
of a resync interval. Not woken: a resource with an operation in flight (``operating``: the pass that follows it
reads directly when it is done) or one that wrote after the listing was taken (its own pass reads directly). The
echo of a write that finished before the listing wakes its resource once: that pass reads this listing (newer
than the write), finds nothing to do and writes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterable, AsyncIterator, Awaitable, Callable, Hashable, Mapping

from azure.core.exceptions import AzureError

from ..azure import ownership

logger = logging.getLogger(__name__)

Lister = Callable[[], AsyncIterable[Any]]
Getter = Callable[[], Awaitable[dict[str, Any] | None]]
#: Wakes one custom resource (its ``ResourceRef.key``: plural, namespace, name) for a pass soon.
Wake = Callable[[Hashable], Any]

#: Keys whose values change while the resource does not: status timestamps (instance views, availability sets),
#: etags (a PUT of the same body), and inside an instance view the guest agent's heartbeat and platform reports.
_VOLATILE = frozenset({"time", "etag"})
_VOLATILE_IN_VIEW = frozenset({"vmAgent", "patchStatus", "maintenanceRedeployStatus", "vmHealth",
                               "assignedHost", "bootDiagnostics"})
#: Seconds between two fresh listings of one key (at most two LISTs a second per resource group and type).
FRESH_SPACING = 0.5
_SETTLED = frozenset({"succeeded", "failed", "canceled", ""})


def in_transition(entry: Mapping[str, Any]) -> bool:
    """The entry's provisioningState says Azure is working on it: a listing's copy of it goes stale fast."""
    state = str(((entry.get("properties") or {}).get("provisioningState")) or "")
    return state.lower() not in _SETTLED


def _stable(value: Any, in_view: bool = False) -> Any:
    if isinstance(value, dict):
        return {key: _stable(item, in_view or key == "instanceView") for key, item in value.items()
                if key not in _VOLATILE and not (in_view and key in _VOLATILE_IN_VIEW)}
    if isinstance(value, list):
        return [_stable(item, in_view) for item in value]
    return value


def fingerprint(entry: Mapping[str, Any]) -> bytes:
    """A digest of what a listing says of one resource, blind to what changes while the resource does not."""
    text = json.dumps(_stable(dict(entry)), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).digest()


def changed(before: Mapping[str, bytes], after: Mapping[str, bytes]) -> set[str]:
    """Names of the entries changed, added or gone between two listings (by fingerprint)."""
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def _refused_for_now(exc: AzureError) -> bool:
    """ARM throttled the LIST (429) or could not answer it (5xx): its readers get the error, not a GET each."""
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


async def _pages(listed: AsyncIterable[Any]) -> AsyncIterator[AsyncIterable[Any]]:
    """The pages of a listing: the SDK pager's (``by_page``), or the whole iterable as one page."""
    by_page = getattr(listed, "by_page", None)
    if by_page is None:
        yield listed
        return
    async for page in by_page():
        yield page


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


@dataclass
class _Listing:
    taken: float
    items: dict[str, dict[str, Any]]
    prints: dict[str, bytes] | None = None  #: fingerprints, when changes are looked for
    pages: int = 1  #: more than one: not a snapshot, a miss may be an entry the paging skipped


@dataclass
class ObservationCache:
    """Listings by key (subscription/credential, resource group, type, and how it was listed), kept ``interval``
    seconds. ``interval`` 0 turns the cache off (every read is a GET)."""

    interval: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    fresh_spacing: float = FRESH_SPACING
    _listings: dict[Hashable, _Listing] = field(default_factory=dict)
    _inflight: dict[Hashable, asyncio.Future[_Listing | None]] = field(default_factory=dict)
    _started: dict[Hashable, float] = field(default_factory=dict)  #: when the key's last LIST started
    _absent: dict[tuple[Hashable, Hashable, str], float] = field(default_factory=dict)  #: GETs that found nothing
    _next: dict[Hashable, asyncio.Task[_Listing | None]] = field(default_factory=dict)  #: fresh LISTs not started
    _touched: dict[Hashable, float] = field(default_factory=dict)
    lists: int = 0  #: LIST calls made (for tests and benchmarks)
    hits: int = 0  #: reads served from a listing
    #: called with a custom resource's key when an entry it reads or owns changed between two listings
    on_change: Wake | None = None
    cluster: str = ""  #: this operator's cluster id: whose ownership tags wake resources here
    plurals: Mapping[str, str] = field(default_factory=dict)  #: kind -> plural, for ownership tags
    woken: int = 0  #: wakes asked for (for tests and benchmarks)
    _readers: dict[Hashable, dict[str, set[Hashable]]] = field(default_factory=dict)  #: key -> name -> owners
    _reads: dict[Hashable, set[tuple[Hashable, str]]] = field(default_factory=dict)  #: owner -> (key, name)
    _listers: dict[Hashable, Lister] = field(default_factory=dict)  #: what refreshes a key someone reads
    _busy: set[Hashable] = field(default_factory=set)  #: owners with an operation in flight
    _task: asyncio.Task[None] | None = None

    def touch(self, owner: Hashable) -> None:
        """``owner`` wrote to Azure (or an operation of its own finished): its next reads go to Azure directly
        until a listing taken after this moment exists."""
        self._touched[owner] = self.clock()

    def forget(self, owner: Hashable) -> None:
        """The custom resource is gone: it reads nothing any more (a listing nobody reads is not refreshed)."""
        self._touched.pop(owner, None)
        self._busy.discard(owner)
        for key, name in self._reads.pop(owner, ()):
            names = self._readers.get(key)
            if names is None:
                continue
            owners = names.get(name)
            if owners is not None:
                owners.discard(owner)
                if not owners:
                    del names[name]
            if not names:
                del self._readers[key]
                self._listers.pop(key, None)

    def operating(self, owner: Hashable, in_flight: bool) -> None:
        """``owner`` has (or no longer has) an Azure operation in flight: changes are not woken for meanwhile."""
        if in_flight:
            self._busy.add(owner)
        else:
            self._busy.discard(owner)

    def wakes(self, key: Hashable, name: str, before: Mapping[str, Any] | None,
              after: Mapping[str, Any] | None) -> set[Hashable]:
        """The custom resources a change of entry ``name`` of listing ``key`` concerns: those that read it by
        name, and the one of this cluster its ownership tag names (before or after the change). The one place
        where an Azure entry is mapped to custom resources."""
        owners = set(self._readers.get(key, {}).get(name, ()))
        for entry in (before, after):
            owner = ownership.owner_of(entry, self.cluster)
            if owner is not None and owner[0] in self.plurals:
                owners.add((self.plurals[owner[0]], owner[1], owner[2]))
        return owners

    def start(self) -> None:
        """Refresh every listing someone reads each interval, and tell ``on_change`` what changed."""
        if self.interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._refresh(), name="observation-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def refresh_due(self) -> float:
        """Take again every listing someone reads that is an interval old; returns seconds until the next is."""
        now = self.clock()
        due, wait = [], self.interval
        for key in list(self._listers):
            listing = self._listings.get(key)
            age = now - listing.taken if listing is not None else self.interval
            if age >= self.interval and key not in self._inflight:
                due.append(key)
            else:
                wait = min(wait, self.interval - age)
        results = await asyncio.gather(*(self._listing(key, self._listers[key]) for key in due
                                         if key in self._listers), return_exceptions=True)
        for key, result in zip(due, results):
            if isinstance(result, Exception):  # e.g. clients closed under it: the readers' own reads go on
                logger.info("refreshing listing %s failed (%s)", key, result)
        return max(wait, 0.05)

    async def _refresh(self) -> None:
        wait = self.interval
        while True:
            await asyncio.sleep(wait)
            try:
                wait = await self.refresh_due()
            except Exception:  # noqa: BLE001 - the refresh must survive anything; reads work without it
                logger.exception("refreshing the shared listings failed")
                wait = self.interval

    def _note_reader(self, owner: Hashable, key: Hashable, name: str, lister: Lister) -> None:
        self._listers[key] = lister  # the newest: its clients are the ones in use
        owners = self._readers.setdefault(key, {}).setdefault(name, set())
        if owner not in owners:
            owners.add(owner)
            self._reads.setdefault(owner, set()).add((key, name))

    def _notice(self, key: Hashable, before: _Listing, after: _Listing) -> None:
        """Wake the custom resources whose entries changed between two listings of ``key``."""
        if self.on_change is None or before.prints is None or after.prints is None:
            return
        for name in changed(before.prints, after.prints):
            for owner in self.wakes(key, name, before.items.get(name), after.items.get(name)):
                touched = self._touched.get(owner)
                if owner in self._busy or (touched is not None and touched >= after.taken):
                    continue  # its own pass follows its operation, or reads directly after its write
                self.woken += 1
                logger.debug("%s changed in listing %s: waking %s", name, key, owner)
                self.on_change(owner)

    async def read(self, owner: Hashable, key: Hashable, name: str, lister: Lister, getter: Getter,
                   confirm_missing: bool = True, follow: bool = True) -> dict[str, Any] | None:
        """The resource ``name`` of listing ``key``, as fresh as the rules above allow. ``confirm_missing`` False:
        the caller only deletes what exists (nothing is created from the answer), so a listing's miss is trusted.
        ``follow`` False: a one-off read (a shared VNet while creating): its changes wake nobody, and the listing
        is not refreshed for it."""
        if self.interval <= 0:
            return await getter()
        asked = self.clock()
        if follow:
            self._note_reader(owner, key, name.lower(), lister)
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
        since = None
        if touched is not None and listing.taken <= touched:
            since = touched  # its own write: a listing taken after it
        elif (item is None or in_transition(item)) and listing.taken < asked:
            since = asked  # a miss before anyone acts on it, or a state that changes soon: a listing from now on
        if since is not None:
            listing = await self._fresh(key, lister, since)
            if listing is None:
                return await getter()
            item = listing.items.get(name.lower())
        if item is None and listing.pages > 1:
            confirmed = self._absent.get((owner, key, name.lower()))
            if confirmed is None or self.clock() - confirmed > self.interval:
                found = await getter()
                if found is None:
                    self._note_absent(owner, key, name.lower())
                return found
        self.hits += 1
        return item

    def _note_absent(self, owner: Hashable, key: Hashable, name: str) -> None:
        now = self.clock()
        if len(self._absent) > 4096:  # old confirmations are worthless: keep the map small
            for stale in [k for k, t in self._absent.items() if now - t > self.interval]:
                del self._absent[stale]
        self._absent[(owner, key, name)] = now

    async def _fresh(self, key: Hashable, lister: Lister, since: float) -> _Listing | None:
        """A listing of ``key`` taken after ``since``: the current one, the one being taken if it started
        after ``since``, else the next one, shared with everyone who asks before it starts; at most one every
        ``fresh_spacing`` seconds."""
        current = self._listings.get(key)
        if current is not None and current.taken > since:
            return current
        running = self._inflight.get(key)
        if running is not None and self._started.get(key, -math.inf) > since:
            return await asyncio.shield(running)
        scheduled = self._next.get(key)
        if scheduled is None:
            scheduled = asyncio.create_task(self._scheduled(key, lister), name=f"fresh-listing-{key}")
            scheduled.add_done_callback(_retrieved)
            self._next[key] = scheduled
        return await asyncio.shield(scheduled)

    async def _scheduled(self, key: Hashable, lister: Lister) -> _Listing | None:
        try:
            running = self._inflight.get(key)
            if running is not None:
                await asyncio.shield(running)
            last = self._started.get(key)
            if last is not None:
                wait = last + self.fresh_spacing - self.clock()
                if wait > 0:
                    await self.sleep(wait)
        finally:
            self._next.pop(key, None)  # who asks from now on needs a LIST that starts later than this one
        if key in self._inflight:  # a periodic refresh started meanwhile: it is fresh enough for everyone here
            return await asyncio.shield(self._inflight[key])
        return await self._list(key, lister)

    async def _listing(self, key: Hashable, lister: Lister) -> _Listing | None:
        current = self._listings.get(key)
        if current is not None and self.clock() - current.taken < self.interval:
            return current
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        return await self._list(key, lister)

    async def _list(self, key: Hashable, lister: Lister) -> _Listing | None:
        """Take the listing now (the caller made sure no LIST of ``key`` is running)."""
        future: asyncio.Future[_Listing | None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)  # a failure nobody else waited for is not an "unretrieved" warning
        self._inflight[key] = future
        listing: _Listing | None = None
        failure: AzureError | None = None
        try:
            taken = self.clock()
            self._started[key] = taken
            items: dict[str, dict[str, Any]] = {}
            self.lists += 1
            pages = 0
            async for page in _pages(lister()):
                pages += 1
                async for item in page:
                    body = item.as_dict() if hasattr(item, "as_dict") else dict(item)
                    items[str(body.get("name", "")).lower()] = body
            listing = _Listing(taken, items, pages=max(pages, 1))
            if self.on_change is not None:
                listing.prints = {name: fingerprint(body) for name, body in items.items()}
            previous = self._listings.get(key)
            self._listings[key] = listing
            if previous is not None:
                try:
                    self._notice(key, previous, listing)
                except Exception:  # noqa: BLE001 - a wake that fails must not fail the readers
                    logger.exception("noticing the changes of listing %s failed", key)
        except AzureError as exc:
            if not _refused_for_now(exc):
                logger.info("listing %s failed (%s); reading resources one by one", key, exc)
            else:  # throttled or unavailable: a GET per reader would be answered the same
                failure = exc
        finally:
            self._inflight.pop(key, None)
            if not future.done():  # also when cancelled: the other readers fall back to their own GETs
                if failure is not None:
                    future.set_exception(failure)
                else:
                    future.set_result(listing)
        if failure is not None:
            raise failure
        return listing
