"""Who owns an Azure resource: the ``azvm-owner`` tag, keyed by (cluster, kind, namespace, name). Pure.

Two kinds with the same name (a ScaleSet ``web`` and a VirtualMachine ``web``) never take each other's resources
for their own: the kind is part of the tag value. Resources tagged by releases before kinds were part of it
(``<cluster>/<namespace>/<name>``, only ever written for VirtualMachines) are still recognised as that
VirtualMachine's own, and are re-tagged the current way when the operator next updates their tags.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

from ..api.constants import CREATED_BY_TAG, CREATED_BY_VALUE, OWNER_TAG, UID_TAG, VM_KIND

#: Azure's limit for a tag value.
MAX_TAG_VALUE = 256


def _fit(value: str) -> str:
    """A tag value within Azure's 256 characters: a long one keeps its start and ends in a digest of the whole."""
    if len(value) <= MAX_TAG_VALUE:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    return f"{value[:MAX_TAG_VALUE - 17]}~{digest}"


@dataclass(frozen=True)
class Identity:
    """A custom resource as Azure's ownership tags know it."""

    cluster: str
    kind: str
    namespace: str
    name: str
    uid: str = ""

    @property
    def owner(self) -> str:
        """The value of the ownership tag this resource writes."""
        return _fit(f"{self.cluster}/{self.kind}/{self.namespace}/{self.name}")

    @property
    def accepted_owners(self) -> frozenset[str]:
        """Tag values that mean 'this resource's own': the current one and, for VirtualMachines, the format
        written before the kind was part of the identity."""
        if self.kind == VM_KIND:
            return frozenset({self.owner, _fit(f"{self.cluster}/{self.namespace}/{self.name}")})
        return frozenset({self.owner})

    def owns(self, resource: Mapping[str, Any] | None) -> bool:
        """The resource carries this resource's ownership tag."""
        return resource is not None and (resource.get("tags") or {}).get(OWNER_TAG) in self.accepted_owners

    def holder(self, resource: Mapping[str, Any]) -> str | None:
        """Who the resource's ownership tag names, if anyone."""
        value = (resource.get("tags") or {}).get(OWNER_TAG)
        return str(value) if value else None


def owner_of(resource: Mapping[str, Any] | None, cluster: str) -> tuple[str, str, str] | None:
    """(kind, namespace, name) of the custom resource of ``cluster`` that the resource's ownership tag names: the
    inverse of ``Identity.owner`` (and of the format before kinds were part of it, a VirtualMachine's). None when
    the tag names another cluster or nothing, or was shortened to fit Azure's limit (``_fit``: only its owner,
    comparing whole values, recognises it)."""
    value = (resource.get("tags") or {}).get(OWNER_TAG) if resource is not None else None
    if not isinstance(value, str) or not cluster or not value.startswith(f"{cluster}/"):
        return None
    if len(value) == MAX_TAG_VALUE and value[-17] == "~":
        return None
    parts = value[len(cluster) + 1:].split("/")
    if len(parts) == 2:
        parts = [VM_KIND, *parts]
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def created_by_tags() -> dict[str, str]:
    """Tags of shared resources the operator creates (resource groups, VNets, availability sets)."""
    return {CREATED_BY_TAG: CREATED_BY_VALUE}


def owned_tags(user_tags: Mapping[str, str], identity: Identity) -> dict[str, str]:
    """The tags a resource created for one custom resource carries: the user's tags plus ownership."""
    tags = {**user_tags, OWNER_TAG: identity.owner, CREATED_BY_TAG: CREATED_BY_VALUE}
    if identity.uid:
        tags[UID_TAG] = identity.uid
    return tags


def adoption_verdict(resource: Mapping[str, Any], identity: Identity, policy: str) -> str | None:
    """None when the existing Azure resource may be managed by this custom resource, else the Stalled reason.

    - a resource tagged for another owner is never taken (two clusters, namespaces or kinds must not fight);
    - ``Never``: only what this very object (same uid) created; ``IfTagged``: anything tagged for this
      resource (e.g. after the custom resource was re-created); ``Always``: also untagged resources.
    """
    tags = resource.get("tags") or {}
    holder = tags.get(OWNER_TAG)
    if holder and holder not in identity.accepted_owners:
        return "OwnershipConflict"
    if holder:
        if policy == "Never" and tags.get(UID_TAG) != identity.uid:
            return "AlreadyExists"
        return None
    return None if policy == "Always" else "AlreadyExists"


def may_manage(resource: Mapping[str, Any] | None, identity: Identity, policy: str) -> bool:
    """The resource is tagged as this resource's own and the adoption policy lets this resource change or
    delete it: what every delete path asks before deleting anything."""
    return resource is not None and identity.owns(resource) and adoption_verdict(resource, identity, policy) is None


def not_ours_message(what: str, resource: Mapping[str, Any], identity: Identity, policy: str) -> str:
    holder = identity.holder(resource)
    if holder and holder not in identity.accepted_owners:
        return f"{what} belongs to {holder}, not {identity.owner}"
    return (f"{what} already exists and adoptionPolicy {policy} does not allow taking it over; "
            "it is left untouched")
