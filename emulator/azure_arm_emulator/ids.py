"""ARM resource ids: building, parsing and case-insensitive keys."""

from __future__ import annotations

from dataclasses import dataclass


def key(resource_id: str) -> str:
    """The case-insensitive storage key of a resource id (ARM ids compare case-insensitively)."""
    return resource_id.rstrip("/").lower()


def subscription_id(sub: str) -> str:
    return f"/subscriptions/{sub}"


def resource_group_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def resource_id(sub: str, rg: str, namespace: str, types: tuple[str, ...], names: tuple[str, ...]) -> str:
    parts = [resource_group_id(sub, rg), "providers", namespace]
    for type_segment, name in zip(types, names, strict=True):
        parts += [type_segment, name]
    return "/".join(parts)


@dataclass(frozen=True)
class ParsedId:
    """A parsed ``/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type}/{name}]...`` id."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def type_name(self) -> str:
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def parent_id(self) -> str:
        return resource_id(self.subscription, self.resource_group, self.namespace, self.types[:-1], self.names[:-1])


def parse(resource_id_text: str) -> ParsedId | None:
    """Parse a full resource id; None if it is not one."""
    segments = [s for s in resource_id_text.strip().split("/") if s]
    if len(segments) < 8 or len(segments) % 2 != 0:
        return None
    if segments[0].lower() != "subscriptions" or segments[2].lower() != "resourcegroups":
        return None
    if segments[4].lower() != "providers":
        return None
    rest = segments[6:]
    return ParsedId(
        subscription=segments[1],
        resource_group=segments[3],
        namespace=segments[5],
        types=tuple(rest[0::2]),
        names=tuple(rest[1::2]),
    )

