"""Sharding (--shard-count/--shard-index, --selector): the stable hash, the spread, the filter on every Kopf handler,
and the names derived from the shard (finalizer, Lease, Events' component)."""

from __future__ import annotations

import asyncio

import collections
import hashlib

import kopf
import pytest

from azure_vm_operator.api.constants import FINALIZER, GROUP
from azure_vm_operator.cli import main
from azure_vm_operator.config import OperatorConfig
from azure_vm_operator.controllers import handlers
from azure_vm_operator.controllers.resync import ResyncScheduler
from azure_vm_operator.leader import LEASE_NAME
from azure_vm_operator.sharding import Shard, shard_of


@pytest.mark.parametrize("namespace, name, expected", [
    # (shards of 2, 3, 7, 1000): fixed forever, or resources change replicas on an upgrade
    ("default", "web-1", (0, 1, 4, 180)),
    ("default", "web-2", (1, 0, 0, 495)),
    ("team-a", "db", (1, 1, 6, 679)),
    ("kube-system", "x", (0, 0, 0, 572)),
])
def test_the_hash_is_stable(namespace, name, expected):
    assert tuple(shard_of(namespace, name, count) for count in (2, 3, 7, 1000)) == expected
    # The documented formula, spelled out: the first 8 bytes of sha256("<namespace>/<name>"), big-endian, mod N.
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()
    assert int(digest[:16], 16) % 1000 == expected[3]


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_resources_spread_evenly_over_shards(count):
    names = [(f"ns-{i % 7}", f"vm-{i}") for i in range(1000)]
    sizes = collections.Counter(shard_of(namespace, name, count) for namespace, name in names)
    assert set(sizes) == set(range(count))
    spread = (1000 * (1 / count) * (1 - 1 / count)) ** 0.5  # binomial standard deviation of one shard's size
    for size in sizes.values():
        assert abs(size - 1000 / count) < 4 * spread, sizes


def test_every_resource_has_exactly_one_owner():
    shards = [Shard(index, 3) for index in range(3)]
    for i in range(300):
        assert sum(shard.owns("default", f"vm-{i}") for shard in shards) == 1


def test_no_sharding_owns_everything():
    assert Shard().owns("default", "anything") and not Shard().sharded
    assert Shard.of(OperatorConfig()) == Shard(0, 1, None)


@pytest.mark.parametrize("index, count", [(2, 2), (-1, 2), (0, 0)])
def test_a_shard_outside_the_count_is_refused(index, count):
    with pytest.raises(ValueError, match="shard"):
        Shard(index, count)


def test_settings_from_the_environment_and_flags():
    env = {"AZVM_SHARD_COUNT": "4", "AZVM_SHARD_INDEX": "3", "AZVM_SELECTOR": "team=a"}
    assert Shard.of(OperatorConfig.from_env(env)) == Shard(3, 4, "team=a")
    assert Shard.of(OperatorConfig.from_env(env, shard_index=0, selector="team=b")) == Shard(0, 4, "team=b")


def test_the_command_line_refuses_a_shard_index_out_of_range(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--shard-count", "2", "--shard-index", "2"])
    assert exc.value.code == 2
    assert "shard index must be between 0 and 1" in capsys.readouterr().err


def test_names_derived_from_the_shard():
    assert Shard().lease_name(LEASE_NAME) == "azure-vm-operator"  # unchanged without sharding
    assert Shard(1, 2).lease_name(LEASE_NAME) == "azure-vm-operator-shard-1-of-2"
    selected = Shard(0, 1, "team=a").lease_name(LEASE_NAME)
    assert selected.startswith("azure-vm-operator-") and selected != Shard(0, 1, "team=b").lease_name(LEASE_NAME)
    # Shard 0 keeps the unsharded finalizer (a single replica split into shards hands resources over).
    assert [Shard(i, 3).finalizer(FINALIZER) for i in range(3)] == [
        "compute.azvm.io/finalizer", "compute.azvm.io/finalizer-shard-1", "compute.azvm.io/finalizer-shard-2"]
    assert Shard(1, 2).component("azure-vm-operator") == "azure-vm-operator-shard-1-of-2"


def test_the_filter_decision():
    def decides(config: OperatorConfig, name: str, namespace: str = "default") -> bool:
        return handlers.in_shard(memo=kopf.Memo(config=config), namespace=namespace, name=name, body={})

    first, second = OperatorConfig(shard_count=2, shard_index=0), OperatorConfig(shard_count=2, shard_index=1)
    assert (decides(first, "web-1"), decides(second, "web-1")) == (True, False)  # web-1 is in shard 0 of 2
    assert (decides(first, "web-2"), decides(second, "web-2")) == (False, True)
    assert decides(OperatorConfig(), "web-2")


def test_every_resource_handler_is_filtered_by_shard_the_periodic_observation_included():
    # Kopf's registry has no public listing; a handler without the filter would act on every shard's resources.
    registry = kopf.get_default_registry()
    found = [h for reg in (registry._changing, registry._spawning, registry._watching)  # type: ignore[attr-defined]
             for h in reg._handlers if h.selector is not None and h.selector.group == GROUP]
    ids = {str(h.id) for h in found}
    for plural in ("virtualmachines", "scalesets"):
        assert {f"reconcile_{plural}", f"delete_{plural}", f"track_{plural}"} <= ids  # track_: feeds the resync
    filters = (handlers.in_shard, handlers.track_in_shard)
    assert all(h.when in filters for h in found), [h.id for h in found if h.when not in filters]


def test_the_periodic_observation_is_told_only_of_the_events_that_change_what_a_pass_reads():
    config = OperatorConfig(shard_count=2, shard_index=0)
    scheduler = ResyncScheduler(observe=None, first_delay=lambda body: 60.0)  # type: ignore[arg-type]
    memo = kopf.Memo(config=config, resync=scheduler)

    def body(name: str = "web-1", generation: int = 1, **annotations: str) -> dict:
        return {"metadata": {"uid": name, "name": name, "namespace": "default", "generation": generation,
                             "annotations": annotations}}

    def tracked(type_: str | None, b: dict) -> bool:
        return handlers.track_in_shard(type=type_, body=b, memo=memo, namespace="default",
                                       name=b["metadata"]["name"])

    assert tracked("ADDED", body())  # unknown yet
    assert not tracked("ADDED", body("web-2"))  # another shard's
    asyncio.run(_update(scheduler, body()))
    assert not tracked("MODIFIED", body())  # a status write, a finalizer
    assert not tracked("MODIFIED", body(**{"compute.azvm.io/last-handled-configuration": "{}"}))  # Kopf's own
    assert tracked("MODIFIED", body(**{"compute.azvm.io/restart-requested-at": "now"}))
    assert tracked("MODIFIED", body(generation=2))
    assert tracked("DELETED", body())


async def _update(scheduler: ResyncScheduler, body: dict) -> None:
    scheduler.update(body["metadata"]["uid"], "virtualmachines", body)
