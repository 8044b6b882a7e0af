"""Sharding: several operator replicas, each reconciling its own part of the custom resources.

A resource belongs to shard ``sha256("<namespace>/<name>") mod count``, for every kind alike. The hash is the same
in every process and every Python version (the built-in ``hash()`` is salted per process), and a resource's
namespace and name never change, so a resource stays in its shard for as long as the shard count does.

Everything a replica derives from its shard is derived here, so that all of it agrees:

- ``owns``: the filter on every Kopf handler (``when=``), the event handler that feeds the periodic observation
  included: a replica runs no handler, observes nothing, and therefore writes no status, Event, annotation or
  finalizer for another shard's resources;
- ``finalizer``: each shard has its own. Kopf removes *its* finalizer from any resource no handler of it wants, so
  with one shared name a replica would strip the finalizer another shard's replica had just added. Shard 0 keeps the
  unsharded name, so that a single replica can be split into shards: shard 0 releases the resources that move to
  another shard, whose replica adds its own finalizer;
- ``lease_name``: replicas of one shard (``--leader-elect``) elect one leader; other shards, and replicas that
  watch another label selector, elect their own;
- ``component``: the reporting component of the Events a replica posts, so Events name the shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .config import OperatorConfig


def shard_of(namespace: str, name: str, count: int) -> int:
    """The shard of the resource ``namespace/name`` among ``count`` shards."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """This replica's part of the resources: shard ``index`` of ``count``, within what ``selector`` selects."""

    index: int = 0
    count: int = 1  #: 1 = no sharding: every resource is this replica's
    selector: str | None = None  #: a label selector applied by the API server to every watch of our kinds

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"the shard count must be at least 1, not {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"the shard index must be between 0 and {self.count - 1}, not {self.index}")

    @classmethod
    def of(cls, config: OperatorConfig) -> "Shard":
        return cls(config.shard_index, config.shard_count, config.selector or None)

    @property
    def sharded(self) -> bool:
        return self.count > 1

    @property
    def name(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    def owns(self, namespace: str | None, name: str | None) -> bool:
        """Whether this replica reconciles the resource ``namespace/name``."""
        return not self.sharded or shard_of(namespace or "", name or "", self.count) == self.index

    def finalizer(self, base: str) -> str:
        return base if self.index == 0 else f"{base}-shard-{self.index}"

    def lease_name(self, base: str) -> str:
        name = base
        if self.selector:
            name += "-" + hashlib.sha256(self.selector.encode("utf-8")).hexdigest()[:10]
        return f"{name}-{self.name}" if self.sharded else name

    def component(self, base: str) -> str:
        return f"{base}-{self.name}" if self.sharded else base
