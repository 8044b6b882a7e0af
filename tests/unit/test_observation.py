"""The shared observation cache: one LIST serves many reads, but never a read that must be fresh."""

from __future__ import annotations

import asyncio
import copy

import pytest
from azure.core.exceptions import HttpResponseError

from azure_vm_operator.controllers.observation import ObservationCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Azure:
    """A resource group's resources, listed in pages (as the SDK's pager yields them) or got one by one."""

    def __init__(self, names: list[str]) -> None:
        self.items = {n: {"name": n, "properties": {"v": 1}} for n in names}
        self.lists = 0
        self.gets: list[str] = []
        self.fail = False
        self.fail_status: int | None = 403  # listing not allowed; a GET may be
        self.gate: asyncio.Event | None = None

    async def lister(self):
        self.lists += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            error = HttpResponseError(message="refused")
            error.status_code = self.fail_status
            raise error
        for name in list(self.items):  # many pages' worth: every item comes through
            yield copy.deepcopy(self.items[name])  # what Azure said then, not a view of it now

    def getter(self, name: str):
        async def get():
            self.gets.append(name)
            return self.items.get(name)
        return get


async def read(cache: ObservationCache, azure: Azure, name: str, owner: str = "vm/ns/a"):
    return await cache.read(owner, ("sub", "rg", "vms"), name, azure.lister, azure.getter(name))


async def test_one_listing_serves_every_read_within_the_interval():
    clock, azure = Clock(), Azure([f"vm{i}" for i in range(250)])
    cache = ObservationCache(30.0, clock)
    found = [await read(cache, azure, f"vm{i}") for i in range(250)]
    assert all(f is not None for f in found) and found[249]["name"] == "vm249"
    assert (azure.lists, azure.gets) == (1, [])
    clock.now += 31
    await read(cache, azure, "vm0")
    assert azure.lists == 2


async def test_concurrent_readers_wait_for_the_same_list():
    azure = Azure(["a", "b", "c"])
    azure.gate = asyncio.Event()
    cache = ObservationCache(30.0, Clock())
    readers = [asyncio.create_task(read(cache, azure, n)) for n in ("a", "b", "c", "a")]
    await asyncio.sleep(0)
    azure.gate.set()
    assert [r["name"] for r in await asyncio.gather(*readers)] == ["a", "b", "c", "a"]
    assert azure.lists == 1 and azure.gets == []


async def test_a_miss_is_confirmed_by_a_listing_taken_after_the_question():
    clock, azure = Clock(), Azure(["a"])
    cache = ObservationCache(30.0, clock)
    await read(cache, azure, "a")
    azure.items["late"] = {"name": "late"}  # created after the listing was taken
    clock.now += 1
    assert (await read(cache, azure, "late"))["name"] == "late"
    clock.now += 1
    assert await read(cache, azure, "gone") is None
    assert azure.lists == 3 and azure.gets == []  # two fresh listings, no GET


async def test_everyone_who_asks_before_a_fresh_listing_starts_shares_it_and_they_are_spaced():
    clock, azure = Clock(), Azure(["a"])
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds
        await asyncio.sleep(0)

    cache = ObservationCache(30.0, clock, sleep=sleep, fresh_spacing=1.0)
    await read(cache, azure, "a")  # listed at 100
    clock.now += 0.25
    for name in ("b", "c"):
        azure.items[name] = {"name": name}
    found = await asyncio.gather(*(read(cache, azure, n, owner=f"vm/ns/{n}") for n in ("b", "c", "d")))
    assert [f and f["name"] for f in found] == ["b", "c", None]
    assert azure.lists == 2 and azure.gets == []  # one fresh LIST for the three misses ...
    assert sleeps == [pytest.approx(0.75)]  # ... a second after the previous LIST started


async def test_an_entry_in_transition_is_read_from_a_fresh_listing():
    clock, azure = Clock(), Azure(["vnet"])
    azure.items["vnet"]["properties"]["provisioningState"] = "Updating"
    cache = ObservationCache(30.0, clock)
    await read(cache, azure, "vnet")
    azure.items["vnet"]["properties"]["provisioningState"] = "Succeeded"
    clock.now += 5
    assert (await read(cache, azure, "vnet"))["properties"]["provisioningState"] == "Succeeded"
    assert azure.lists == 2
    clock.now += 5
    await read(cache, azure, "vnet")  # settled: the listing serves it until it is an interval old
    assert azure.lists == 2 and azure.gets == []


async def test_whoever_wrote_reads_from_a_listing_taken_after_its_write():
    clock, azure = Clock(), Azure(["a", "b"])
    cache = ObservationCache(30.0, clock)
    await read(cache, azure, "a")
    clock.now += 1
    cache.touch("vm/ns/a")  # it just PATCHed its VM
    azure.items["a"]["properties"]["v"] = 2
    clock.now += 0.5
    assert (await read(cache, azure, "a"))["properties"]["v"] == 2
    assert azure.lists == 2 and azure.gets == []
    await read(cache, azure, "b", owner="vm/ns/b")  # another resource uses the same (now newer) listing
    assert azure.lists == 2
    clock.now += 30  # the next listing is newer than the write: served from it again
    assert (await read(cache, azure, "a"))["properties"]["v"] == 2 and azure.gets == []


async def test_a_failed_listing_is_not_cached_and_reads_fall_back_to_gets():
    azure = Azure(["a"])
    azure.fail = True
    cache = ObservationCache(30.0, Clock())
    assert (await read(cache, azure, "a"))["name"] == "a"
    azure.fail = False
    await read(cache, azure, "a")
    assert azure.lists == 2 and azure.gets == ["a"]


class PagedAzure(Azure):
    """Listed in pages of two, like the SDK's pager (``by_page``); ``skipped`` names are lost between pages, as
    an offset-paged listing loses entries when others are deleted meanwhile."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.skipped: set[str] = set()

    def lister(self):
        azure = self

        class Paged:
            def by_page(self):
                async def pages():
                    azure.lists += 1
                    names = [n for n in azure.items if n not in azure.skipped]
                    for start in range(0, len(names), 2):
                        async def page(chunk=names[start:start + 2]):
                            for name in chunk:
                                yield copy.deepcopy(azure.items[name])
                        yield page()
                return pages()

        return Paged()


async def test_a_miss_in_a_listing_of_several_pages_is_confirmed_by_a_get():
    clock, azure = Clock(), PagedAzure(["a", "b", "c", "d"])
    cache = ObservationCache(30.0, clock)
    azure.skipped = {"c"}  # exists, but the pages shifted under the listing
    assert (await read(cache, azure, "c", owner="vm/ns/c"))["name"] == "c"
    assert azure.gets == ["c"]
    # a creation over several passes: its own GET found "e" absent, so a later fresh listing's miss is believed
    assert await read(cache, azure, "e", owner="vm/ns/e") is None
    clock.now += 5
    cache.touch("vm/ns/e")
    clock.now += 1
    assert await read(cache, azure, "e", owner="vm/ns/e") is None
    assert azure.gets == ["c", "e"]
    clock.now += 31  # ... but not once the confirmation is an interval old
    assert await read(cache, azure, "e", owner="vm/ns/e") is None
    assert azure.gets == ["c", "e", "e"]


async def test_a_throttled_listing_fails_its_readers_instead_of_sending_a_get_each():
    azure = Azure(["a", "b"])
    azure.fail, azure.fail_status = True, 429
    azure.gate = asyncio.Event()
    cache = ObservationCache(30.0, Clock())
    readers = [asyncio.create_task(read(cache, azure, n)) for n in ("a", "b")]
    await asyncio.sleep(0)
    azure.gate.set()
    results = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(r, HttpResponseError) and r.status_code == 429 for r in results)
    assert azure.lists == 1 and azure.gets == []  # ARM would answer the GETs the same way


async def test_a_cancelled_listing_releases_the_other_readers():
    azure = Azure(["a"])
    azure.gate = asyncio.Event()
    cache = ObservationCache(30.0, Clock())
    first = asyncio.create_task(read(cache, azure, "a"))
    await asyncio.sleep(0)
    second = asyncio.create_task(read(cache, azure, "a"))
    await asyncio.sleep(0)
    first.cancel()
    assert (await asyncio.wait_for(second, 1))["name"] == "a"  # fell back to its own GET
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_interval_zero_turns_the_cache_off():
    azure = Azure(["a"])
    cache = ObservationCache(0.0, Clock())
    await read(cache, azure, "a")
    assert azure.lists == 0 and azure.gets == ["a"]


async def test_a_reader_that_only_deletes_trusts_a_miss():
    azure = Azure(["a"])
    cache = ObservationCache(30.0, Clock())
    assert await cache.read("vm/ns/a", ("sub", "rg", "ips"), "a-pip", azure.lister, azure.getter("a-pip"),
                            confirm_missing=False) is None
    assert azure.gets == [] and azure.lists == 1  # an unwanted public IP that is not there costs no GET


async def test_a_reader_that_only_deletes_trusts_a_miss_even_after_its_owner_wrote():
    clock, azure = Clock(), Azure(["a", "a-nsg"])
    cache = ObservationCache(30.0, clock)
    await read(cache, azure, "a")
    clock.now += 1
    cache.touch("vm/ns/a")  # it just created its NIC: what it wants, never its unwanted public IP
    assert await cache.read("vm/ns/a", ("sub", "rg", "ips"), "a-pip", azure.lister, azure.getter("a-pip"),
                            confirm_missing=False) is None
    assert azure.gets == []
    # what the listing holds is still read fresh after a write (the owner may have deleted it since)
    lists = azure.lists
    clock.now += 1
    assert await cache.read("vm/ns/a", ("sub", "rg", "ips"), "a-nsg", azure.lister, azure.getter("a-nsg"),
                            confirm_missing=False) is not None
    assert azure.gets == [] and azure.lists == lists + 1
