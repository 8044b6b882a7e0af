"""The AvailabilitySet kind in ARM's terms: the set's body, the diff between the spec and what Azure has, and the
members as the status lists them. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..api.availabilityset import AvailabilitySetSpec
from ..api.constants import OWNER_TAG
from .ids import ResourceId
from .ownership import Identity, owned_tags


def set_body(spec: AvailabilitySetSpec, identity: Identity) -> dict[str, Any]:
    return {
        "location": spec.location,
        "tags": owned_tags(spec.tags, identity),
        "sku": {"name": spec.sku},
        "properties": {"platformFaultDomainCount": spec.fault_domains,
                       "platformUpdateDomainCount": spec.update_domains},
    }


@dataclass(frozen=True)
class SetDiff:
    patch: dict[str, Any] = field(default_factory=dict)  #: a PATCH body (tags, an upgrade to sku Aligned)
    drifted: tuple[str, ...] = ()
    immutable: tuple[str, ...] = ()  #: differences Azure cannot change on an existing set


def diff_set(spec: AvailabilitySetSpec, identity: Identity, observed: Mapping[str, Any]) -> SetDiff:
    props = observed.get("properties") or {}
    ignore = {f if f.startswith("spec.") else f"spec.{f}" for f in spec.policies.ignore_drift_fields}
    patch: dict[str, Any] = {}
    drifted: list[str] = []
    immutable: list[str] = []
    observed_tags = dict(observed.get("tags") or {})
    desired_tags = owned_tags(spec.tags, identity)
    if "spec.tags" in ignore:
        desired_tags = {**observed_tags, **{k: v for k, v in desired_tags.items() if k not in spec.tags}}
    if observed_tags != desired_tags:
        patch["tags"] = desired_tags
        if {**observed_tags, OWNER_TAG: desired_tags.get(OWNER_TAG)} != desired_tags:
            drifted.append("spec.tags")
    for path, key, wanted in (("spec.platformFaultDomainCount", "platformFaultDomainCount", spec.fault_domains),
                              ("spec.platformUpdateDomainCount", "platformUpdateDomainCount", spec.update_domains)):
        if props.get(key) is not None and int(props[key]) != wanted:
            immutable.append(path)
    sku = str((observed.get("sku") or {}).get("name") or "")
    if sku and sku.lower() != spec.sku.lower():
        if spec.sku == "Aligned":  # Classic -> Aligned is allowed in place; the reverse is not
            patch["sku"] = {"name": "Aligned"}
            drifted.append("spec.sku")
        else:
            immutable.append("spec.sku")
    return SetDiff(patch=patch, drifted=tuple(drifted), immutable=tuple(immutable))


def member_ids(avset: Mapping[str, Any] | None) -> list[str]:
    """The ids of the VMs in the set, as ARM lists them (``properties.virtualMachines[].id``)."""
    return [str(m["id"]) for m in ((avset or {}).get("properties") or {}).get("virtualMachines") or [] if m.get("id")]


def member_name(member_id: str) -> str:
    parsed = ResourceId.parse(member_id)
    return parsed.name if parsed is not None else member_id.rstrip("/").rsplit("/", 1)[-1]


def members(avset: Mapping[str, Any] | None, vms: Mapping[str, Mapping[str, Any] | None]) -> list[dict[str, Any]]:
    """status.members: each member VM's name with the fault and update domain of its instance view (``vms``: the
    member VMs read with $expand=instanceView, by id lower-cased; a member not read has no domains)."""
    result = []
    for member_id in member_ids(avset):
        vm = vms.get(member_id.lower()) or {}
        view = (vm.get("properties") or {}).get("instanceView") or {}
        entry: dict[str, Any] = {"name": str(vm.get("name") or member_name(member_id)), "id": member_id}
        for key, field_name in (("platformFaultDomain", "faultDomain"), ("platformUpdateDomain", "updateDomain")):
            if view.get(key) is not None:
                entry[field_name] = int(view[key])
        result.append(entry)
    return sorted(result, key=lambda m: m["name"])
