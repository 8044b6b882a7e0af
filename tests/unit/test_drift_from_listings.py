"""Drift seen from the shared listings: which entries changed (fingerprints), which custom resources a change
wakes, and how the resync scheduler brings their passes forward without piling them up."""

from __future__ import annotations

import asyncio
import copy

from azure_vm_operator.azure.ownership import Identity, owner_of
from azure_vm_operator.controllers.observation import ObservationCache, changed, fingerprint
from azure_vm_operator.controllers.resync import ResyncScheduler

VM = {
    "name": "a", "etag": '"3"', "tags": {"azvm-owner": "c1/VirtualMachine/ns/a"},
    "properties": {
        "hardwareProfile": {"vmSize": "Standard_B1s"},
        "instanceView": {
            "statuses": [{"code": "ProvisioningState/succeeded", "time": "2026-01-01T00:00:00+00:00"},
                         {"code": "PowerState/running"}],
            "vmAgent": {"vmAgentVersion": "2.11", "statuses": [{"code": "Ready", "time": "2026-01-01T00:00:00"}]},
            "disks": [{"name": "a-os", "statuses": [{"code": "ok", "time": "2026-01-01T00:00:00"}]}],
        },
        "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
    },
}


def _edited(edit) -> dict:
    body = copy.deepcopy(VM)
    edit(body)
    return body


# ---- fingerprints -----------------------------------------------------------------------------------------------


def test_a_fingerprint_ignores_what_changes_while_the_resource_does_not():
    same = fingerprint(VM)
    assert fingerprint(_edited(lambda b: b.update(etag='"4"'))) == same
    assert fingerprint(_edited(lambda b: b["properties"]["instanceView"]["statuses"][0].update(
        time="2026-02-02T00:00:00+00:00"))) == same
    assert fingerprint(_edited(lambda b: b["properties"]["instanceView"].update(
        vmAgent={"vmAgentVersion": "2.12", "statuses": []}))) == same
    assert fingerprint(dict(reversed(list(VM.items())))) == same  # key order is not a change


def test_a_fingerprint_sees_a_change_of_the_resource():
    same = fingerprint(VM)
    assert fingerprint(_edited(lambda b: b["properties"]["hardwareProfile"].update(vmSize="Standard_D2s_v5"))) != same
    assert fingerprint(_edited(lambda b: b["properties"]["instanceView"]["statuses"].__setitem__(
        1, {"code": "PowerState/deallocated"}))) != same  # stopped behind the operator's back
    assert fingerprint(_edited(lambda b: b["tags"].update(team="x"))) != same
    # bootDiagnostics is ignored only inside an instance view: the profile is the spec's
    assert fingerprint(_edited(lambda b: b["properties"]["diagnosticsProfile"].update(
        bootDiagnostics={"enabled": False}))) != same


def test_changed_names_entries_changed_added_and_gone():
    assert changed({"a": b"1", "b": b"2", "c": b"3"}, {"a": b"1", "b": b"9", "d": b"4"}) == {"b", "c", "d"}
    assert changed({}, {}) == set()


# ---- which custom resource an entry belongs to ------------------------------------------------------------------


def test_owner_of_inverts_the_ownership_tag_of_this_cluster_only():
    identity = Identity("c1", "ScaleSet", "team-a", "web")
    assert owner_of({"tags": {"azvm-owner": identity.owner}}, "c1") == ("ScaleSet", "team-a", "web")
    assert owner_of({"tags": {"azvm-owner": "c1/team-a/web"}}, "c1") == ("VirtualMachine", "team-a", "web")  # legacy
    assert owner_of({"tags": {"azvm-owner": identity.owner}}, "c2") is None
    assert owner_of({"tags": {"azvm-owner": "c10/VirtualMachine/ns/a"}}, "c1") is None  # a prefix is not a cluster
    assert owner_of({"tags": {}}, "c1") is None and owner_of(None, "c1") is None
    assert owner_of({"tags": {"azvm-owner": "c1/VirtualMachine/ns/a/b"}}, "c1") is None  # not a tag we write
    long = Identity("c1", "VirtualMachine", "n" * 63, "x" * 253)
    assert len(long.owner) == 256 and owner_of({"tags": {"azvm-owner": long.owner}}, "c1") is None  # shortened


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Group:
    """One resource group's listing of one type."""

    def __init__(self, *entries: dict) -> None:
        self.items = {e["name"]: copy.deepcopy(e) for e in entries}
        self.lists = 0

    async def lister(self):
        self.lists += 1
        for item in list(self.items.values()):
            yield copy.deepcopy(item)

    def getter(self, name: str):
        async def get():
            return copy.deepcopy(self.items.get(name))
        return get


KEY = ("sub", "rg", "virtualMachines")


def _cache(clock: Clock, woken: list) -> ObservationCache:
    cache = ObservationCache(30.0, clock, on_change=woken.append, cluster="c1",
                             plurals={"VirtualMachine": "virtualmachines", "ScaleSet": "scalesets"})
    return cache


async def _read(cache: ObservationCache, group: Group, name: str, owner: tuple = ("virtualmachines", "ns", "a")):
    return await cache.read(owner, KEY, name, group.lister, group.getter(name))


async def test_a_changed_entry_wakes_the_resources_that_read_it_and_the_one_its_tag_names():
    clock, woken = Clock(), []
    other = {"name": "b", "tags": {"azvm-owner": "c1/ScaleSet/ns/b"}, "properties": {"v": 1}}
    foreign = {"name": "f", "tags": {"azvm-owner": "c2/VirtualMachine/ns/f"}, "properties": {"v": 1}}
    group = Group(VM, other, foreign)
    cache = _cache(clock, woken)
    await _read(cache, group, "a")
    await _read(cache, group, "a", owner=("images", "ns", "img"))  # an Image reads the VM by name
    assert woken == []  # the first listing of a key has nothing to compare with
    group.items["a"]["properties"]["hardwareProfile"]["vmSize"] = "Standard_D2s_v5"
    group.items["b"]["properties"]["v"] = 2  # nobody read it yet (a restart): its tag names its ScaleSet
    group.items["f"]["properties"]["v"] = 2  # another cluster's: nobody here
    clock.now += 30
    await cache.refresh_due()
    assert sorted(woken) == [("images", "ns", "img"), ("scalesets", "ns", "b"), ("virtualmachines", "ns", "a")]
    woken.clear()
    clock.now += 30
    await cache.refresh_due()  # nothing changed but timestamps
    assert woken == [] and group.lists == 3


async def test_an_entry_gone_or_back_wakes_its_resource():
    clock, woken = Clock(), []
    group = Group(VM)
    cache = _cache(clock, woken)
    await _read(cache, group, "a")
    gone = group.items.pop("a")
    clock.now += 30
    await cache.refresh_due()
    assert woken == [("virtualmachines", "ns", "a")]  # deleted behind the operator's back
    group.items["a"] = gone
    clock.now += 30
    await cache.refresh_due()
    assert woken == [("virtualmachines", "ns", "a")] * 2


async def test_no_wake_for_a_resource_with_an_operation_in_flight_or_that_wrote_after_the_listing():
    clock, woken = Clock(), []
    group = Group(VM)
    cache = _cache(clock, woken)
    owner = ("virtualmachines", "ns", "a")
    await _read(cache, group, "a")
    cache.operating(owner, True)  # its resize is running: the listing shows it, its own pass follows it
    group.items["a"]["properties"]["hardwareProfile"]["vmSize"] = "Standard_D2s_v5"
    clock.now += 30
    await cache.refresh_due()
    assert woken == []
    cache.operating(owner, False)
    group.items["a"]["properties"]["hardwareProfile"]["vmSize"] = "Standard_D4s_v5"
    clock.now += 30

    async def write_while_listing():
        cache.touch(owner)  # written after the listing was taken: its own pass reads directly
    group_lister = group.lister

    async def lister():
        await write_while_listing()
        async for item in group_lister():
            yield item
    cache._listers[KEY] = lister
    clock_taken = clock.now
    await cache.refresh_due()
    assert woken == [] and cache._touched[owner] >= clock_taken


async def test_a_forgotten_resource_is_not_woken_and_a_listing_nobody_reads_is_not_refreshed():
    clock, woken = Clock(), []
    group = Group(VM)
    cache = _cache(clock, woken)
    cache.plurals = {}  # only readers here
    await _read(cache, group, "a")
    cache.forget(("virtualmachines", "ns", "a"))
    clock.now += 30
    assert await cache.refresh_due() == 30.0
    assert group.lists == 1 and woken == []


async def test_without_on_change_nothing_is_fingerprinted():
    clock = Clock()
    group = Group(VM)
    cache = ObservationCache(30.0, clock)
    await _read(cache, group, "a")
    assert all(listing.prints is None for listing in cache._listings.values())


# ---- the scheduler: wake, jitter, de-duplication ----------------------------------------------------------------


def _body(name: str) -> dict:
    return {"metadata": {"uid": f"uid-{name}", "name": name, "namespace": "ns"}}


def test_a_wake_brings_the_pass_forward_once_per_gap_and_never_twice_at_once():
    async def main() -> None:
        passes: list[float] = []
        loop = asyncio.get_running_loop()

        async def observe(plural, body):
            passes.append(loop.time())
            await asyncio.sleep(0.05)
            return 600.0

        scheduler = ResyncScheduler(observe=observe, first_delay=lambda body: 600.0, wake_jitter=0.01, wake_gap=0.3)
        scheduler.start()
        scheduler.update("uid-a", "virtualmachines", _body("a"))
        assert scheduler.wake(("virtualmachines", "ns", "missing")) is False  # another shard's, or gone
        start = loop.time()
        assert scheduler.wake(("virtualmachines", "ns", "a")) is True
        assert scheduler.wake(("virtualmachines", "ns", "a")) is False  # already due within the jitter
        await asyncio.sleep(0.02)
        assert len(passes) == 1 and passes[0] - start < 0.05
        assert scheduler.wake(("virtualmachines", "ns", "a")) is True  # while it runs: one more pass after it
        await asyncio.sleep(0.1)
        assert len(passes) == 1  # not before the gap
        await asyncio.sleep(0.4)
        assert len(passes) == 2 and passes[1] - passes[0] >= 0.29  # the gap counts from the wake (jitter 0.01)
        assert scheduler.wake(("virtualmachines", "ns", "a")) is True  # a later change waits for the gap...
        await asyncio.sleep(0.45)
        assert len(passes) == 3 and passes[2] - passes[1] >= 0.29  # ...and is not dropped
        assert scheduler.wakes == 3 and 500 < scheduler.due_in("uid-a") <= 600  # then back to the resync interval
        scheduler.forget("uid-a")
        assert scheduler.wake(("virtualmachines", "ns", "a")) is False
        await scheduler.stop()

    asyncio.run(main())


def test_follow_takes_a_handlers_operation_over_at_its_retry_after():
    """A Kopf handler that started an Azure operation hands the resource to the scheduler: its next pass comes
    after the operation's Retry-After (never later than it was due), without Kopf's retry cycle."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        passed = asyncio.Event()
        passes: list[float] = []

        async def observe(plural, body):
            passes.append(loop.time())
            passed.set()
            return 600.0

        scheduler = ResyncScheduler(observe=observe, first_delay=lambda body: 600.0)
        scheduler.start()
        assert scheduler.follow("uid-a", 0.2) is False  # unknown here: Kopf's retry keeps it
        scheduler.update("uid-a", "virtualmachines", _body("a"))
        start = loop.time()
        assert scheduler.follow("uid-a", 0.2) is True
        assert scheduler.follow("uid-a", 5.0) is True and scheduler.due_in("uid-a") <= 0.2  # not pushed back
        await asyncio.wait_for(passed.wait(), 5)
        assert len(passes) == 1 and passes[0] - start >= 0.19
        assert 500 < scheduler.due_in("uid-a") <= 600  # done: back to the resync interval
        await scheduler.stop()

    asyncio.run(main())
