"""``metadata.managedFields`` and server-side apply, after kube-apiserver's field manager.

kube-apiserver wraps structured-merge-diff in a chain of managers
(``k8s.io/apimachinery/pkg/util/managedfields/internal``); the parts kept here, in the same order:

- *versionCheck*: an applied object must have the endpoint's apiVersion and kind (400 otherwise);
- *lastAppliedUpdater* / *lastAppliedManager*: for the field manager ``kubectl`` only, server-side apply keeps
  the client-side ``last-applied-configuration`` annotation up to date, and conflicts on fields that the
  annotation shows as applied by client-side apply are forced (the client-side -> server-side upgrade);
- *skipNonApplied*: an object without managedFields is only tracked from its creation, or from its first
  apply (then a ``before-first-apply`` Update entry takes the fields that exist);
- *capManagers*: at most 10 Update entries; the oldest are merged into ``ancient-changes``;
- *buildManagerInfo*: entries are keyed by manager, operation, subresource and (for Update) apiVersion;
- *managedFieldsUpdater*: an Update only gets a new time when it changed something it now owns;
- *stripMeta*: apiVersion, kind and the system metadata fields are never owned;
- *structuredMerge*: ownership from the comparison (Update) or the applied configuration (Apply), with
  conflicts, forcing, and the removal of fields an applier no longer applies (unless someone else owns them).

The scale subresource's entries are mapped to and from the parent object as ``managedfields.ScaleHandler``
does, including kube-apiserver's behaviour that a /scale write is not tracked when nobody owned the
replicas field before (kubernetes/kubernetes#131892): the Scale then has no managedFields and the
skipNonApplied step leaves it untracked.
"""

from __future__ import annotations

import copy
import datetime
import json
from dataclasses import dataclass
from typing import Any

from . import errors
from .errors import APIError
from .fieldpath import FieldSet, Path, path_string
from .typed import (Type, compare, drop_nulls, ensure_named_fields_are_members, json_equal, merge,
                    remove_items, to_field_set)

__all__ = ["Scope", "update", "apply", "scale_to_subresource", "scale_to_parent", "manager_from_user_agent",
           "validate_options", "LAST_APPLIED", "REPLICAS_IN_SCALE", "MAX_UPDATE_MANAGERS"]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_UPDATE_MANAGERS = 10
FIELD_MANAGER_MAX_LENGTH = 128
REPLICAS_IN_SCALE: Path = ("f:spec", "f:replicas")
_CURRENT = ("current-operation", "", "", "")  # the temporary manager of an Update (managedFieldsUpdater)

_STRIP = FieldSet.of(("f:apiVersion",), ("f:kind",), ("f:metadata",), *(
    ("f:metadata", f"f:{name}") for name in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                              "clusterName", "generation", "managedFields", "resourceVersion")))

Key = tuple[str, str, str, str]  # (manager, operation, apiVersion for Update else "", subresource)


@dataclass
class VersionedSet:
    fields: FieldSet
    api_version: str
    applied: bool


@dataclass
class Managed:
    sets: dict[Key, VersionedSet]
    times: dict[Key, str | None]

    def copy(self) -> Managed:
        return Managed(dict(self.sets), dict(self.times))


@dataclass(frozen=True)
class Scope:
    """What the field manager of one endpoint knows: the object's type, its version, the subresource and
    the fields its strategy resets (``status`` on the main resource, ``metadata``+``spec`` on /status)."""

    type: Type
    api_version: str
    kind: str
    subresource: str = ""
    ignored: FieldSet | None = None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(manager: str, operation: str, api_version: str, subresource: str) -> Key:
    return (manager, operation, api_version if operation == "Update" else "", subresource)


# -- manager names and request options ------------------------------------------------------------------

def manager_from_user_agent(user_agent: str | None) -> str:
    """``prefixFromUserAgent``: the text before the first ``/``, printable characters, at most 128 bytes."""
    out = ""
    for ch in (user_agent or "").split("/")[0]:
        if not ch.isprintable():
            continue
        if len((out + ch).encode()) > FIELD_MANAGER_MAX_LENGTH:
            break
        out += ch
    return out


def validate_options(kind: str, field_manager: str | None, *, apply: bool | None, force: str | None) -> None:
    """``ValidateCreateOptions``/``ValidateUpdateOptions``/``ValidatePatchOptions``: 422 on the options object."""
    causes: list[dict[str, str]] = []
    if apply is False and force is not None:
        causes.append(errors.forbidden_field("force", "may not be specified for non-apply patch"))
    if apply and not field_manager:
        causes.append(errors.required_field("fieldManager", "is required for apply patch"))
    if field_manager and len(field_manager.encode()) > FIELD_MANAGER_MAX_LENGTH:
        causes.append({"reason": "FieldValueTooLong", "field": "fieldManager",
                       "message": f"Too long: may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes"})
    for i, ch in enumerate(field_manager or ""):
        if not ch.isprintable():
            causes.append({"reason": "FieldValueInvalid", "field": "fieldManager",
                           "message": f"Invalid value: {json.dumps(field_manager)}: invalid character "
                                      f"U+{ord(ch):04X} (at position {i})"})
    if causes:
        raise errors.invalid(kind, "meta.k8s.io", "", causes)


# -- encoding ---------------------------------------------------------------------------------------

def decode(entries: Any) -> Managed:
    """``DecodeManagedFields``; raises ValueError on an invalid entry."""
    out = Managed({}, {})
    if entries is None:
        return out
    if not isinstance(entries, list):
        raise ValueError("managedFields must be a list")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"managed fields entry {i} must be an object")
        operation = entry.get("operation")
        if operation not in ("Apply", "Update"):
            raise ValueError("operation must be `Apply` or `Update`")
        if not entry.get("apiVersion"):
            raise ValueError("apiVersion must not be empty")
        if entry.get("fieldsType") != "FieldsV1":
            raise ValueError(f"missing or invalid fieldsType in managed fields entry {i}")
        key = _key(str(entry.get("manager") or ""), operation, entry["apiVersion"], str(entry.get("subresource") or ""))
        out.sets[key] = VersionedSet(FieldSet.from_fields_v1(entry.get("fieldsV1") or {}), entry["apiVersion"],
                                     operation == "Apply")
        out.times[key] = entry.get("time")
    return out


def _decode_or_empty(entries: Any) -> Managed:
    try:
        return decode(entries)
    except ValueError:
        return Managed({}, {})


def encode(managed: Managed) -> list[dict[str, Any]] | None:
    """``encodeManagedFields``: sorted by operation, time, manager, apiVersion, subresource; None when empty."""
    if not managed.sets:
        return None
    out = []
    for key, vs in managed.sets.items():
        manager, operation, _, subresource = key
        entry: dict[str, Any] = {"manager": manager, "operation": "Apply" if vs.applied else operation,
                                 "apiVersion": vs.api_version}
        time = managed.times.get(key)
        if time:
            entry["time"] = time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = vs.fields.to_fields_v1()
        if subresource:
            entry["subresource"] = subresource
        out.append(entry)
    out.sort(key=lambda e: (e["operation"], e.get("time") or "", e["manager"], e["apiVersion"],
                            e.get("subresource", "")))
    return out


def _is_reset(entries: Any) -> bool:
    """``isResetManagedFields``: ``[]`` or ``[{}]`` in a request clears managedFields."""
    return isinstance(entries, list) and (not entries or entries == [{}])


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


# -- structured merge ---------------------------------------------------------------------------------

class Conflicts(Exception):
    def __init__(self, conflicts: list[tuple[Key, Path]]) -> None:
        super().__init__(f"{len(conflicts)} conflicts")
        self.conflicts = conflicts


def _update_others(scope: Scope, live: Any, new: Any, sets: dict[Key, VersionedSet], workflow: Key,
                   force: bool) -> Any:
    """``Updater.update``: other managers lose the fields this write changed (or conflict) and removed."""
    comparison = compare(live, new, scope.type).exclude(scope.ignored)
    changed = comparison.changed()
    conflicts = {key: vs.fields.intersection(changed) for key, vs in sets.items() if key != workflow}
    conflicts = {key: c for key, c in conflicts.items() if not c.empty()}
    if conflicts and not force:
        raise Conflicts([(key, path) for key in sorted(conflicts) for path in conflicts[key].paths()])
    for key in list(sets):
        if key == workflow:
            continue
        vs = sets[key]
        remaining = vs.fields
        if key in conflicts:
            remaining = remaining.difference(conflicts[key])
        if not comparison.removed.empty():
            remaining = remaining.difference(comparison.removed)
        if remaining.empty():
            del sets[key]
        elif remaining is not vs.fields:
            sets[key] = VersionedSet(remaining, vs.api_version, vs.applied)
    return comparison


def _smd_update(scope: Scope, live: Any, new: Any, managed: Managed, key: Key) -> None:
    """``Updater.Update`` followed by ``stripMeta`` for the updating manager."""
    comparison = _update_others(scope, live, new, managed.sets, key, True)
    previous = managed.sets.get(key)
    owned = (previous.fields if previous else FieldSet()).union(comparison.modified).union(comparison.added)
    owned = owned.difference(comparison.removed)
    if scope.ignored is not None:
        owned = owned.recursive_difference(scope.ignored)
    owned = owned.difference(_STRIP)
    if owned.empty():
        managed.sets.pop(key, None)
    else:
        managed.sets[key] = VersionedSet(owned, scope.api_version, False)


def _tracked_update(scope: Scope, live: Any, new: Any, managed: Managed, manager: str) -> None:
    """buildManagerInfo -> managedFieldsUpdater -> stripMeta -> structuredMerge for an Update; capManagers."""
    key = _key(manager or "unknown", "Update", scope.api_version, scope.subresource)
    _smd_update(scope, live, new, managed, _CURRENT)
    current = managed.sets.pop(_CURRENT, None)
    if current is not None:
        previous = managed.sets.get(key)
        fields = current.fields.union(previous.fields) if previous else current.fields
        managed.sets[key] = VersionedSet(fields, current.api_version, False)
        managed.times[key] = _now()
    _cap_update_managers(managed)


def _cap_update_managers(managed: Managed) -> None:
    updaters = [key for key, vs in managed.sets.items() if not vs.applied]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda k: (managed.times.get(k) or "", json.dumps(k)))
    first_of_version: dict[str, Key] = {}
    length = len(updaters)
    for key in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        vs = managed.sets[key]
        bucket = _key("ancient-changes", "Update", vs.api_version, "")
        if vs.api_version in first_of_version:
            if bucket not in managed.sets:
                managed.sets[bucket] = managed.sets.pop(first_of_version[vs.api_version])
            managed.sets[bucket] = VersionedSet(vs.fields.union(managed.sets[bucket].fields), vs.api_version, False)
            del managed.sets[key]
            managed.times[bucket] = managed.times.get(key)
            length -= 1
        else:
            first_of_version[vs.api_version] = key


def update(scope: Scope, live: dict[str, Any], new: dict[str, Any], manager: str, *,
           creating: bool = False) -> list[dict[str, Any]] | None:
    """The managedFields after a create/update/patch (``FieldManager.UpdateNoErrors``).

    ``live`` is the stored object (for a create: an empty object of the kind); ``new`` is the object to be
    stored. Its own ``metadata.managedFields`` are used if a client sent valid ones (not for subresources);
    ``[]`` or ``[{}]`` clears them.
    """
    requested = (new.get("metadata") or {}).get("managedFields")
    live_entries = (live.get("metadata") or {}).get("managedFields")
    if scope.subresource:
        managed = _decode_or_empty(live_entries)
    elif _is_reset(requested):
        managed = Managed({}, {})
    else:
        managed = _decode_or_empty(requested)
        if not managed.sets:
            managed = _decode_or_empty(live_entries)
    if not managed.sets and not creating:
        return None  # skipNonApplied: an untracked object stays untracked until it is applied.
    _tracked_update(scope, _without_managed_fields(live), _without_managed_fields(new), managed, manager)
    return encode(managed)


# -- apply --------------------------------------------------------------------------------------------------

def _conflict_error(conflicts: list[tuple[Key, Path]]) -> APIError:
    def who(key: Key) -> str:
        manager, operation, api_version, subresource = key
        text = json.dumps(manager)
        if subresource:
            text += f" with subresource {json.dumps(subresource)}"
        if operation == "Update":
            text += f" using {api_version}"
        return text

    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {who(key)}", "field": path_string(path)}
              for key, path in conflicts]
    if len(conflicts) == 1:
        key, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {who(key)}: {path_string(path)}"
    else:
        lines: list[str] = []
        by_manager: dict[str, list[str]] = {}
        for key, path in conflicts:
            by_manager.setdefault(json.dumps(key), []).append(path_string(path))
        for manager_id in sorted(by_manager):
            manager, operation, api_version, subresource = json.loads(manager_id)
            lines.append(f"conflicts with {who((manager, operation, api_version, subresource))}:")
            lines.extend(f"- {p}" for p in by_manager[manager_id])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return APIError(409, "Conflict", message, details={"causes": causes})


def _prune(scope: Scope, merged: Any, sets: dict[Key, VersionedSet], last: VersionedSet | None) -> Any:
    """``Updater.prune``: drop what the applier applied last time and no longer applies, unless owned."""
    if last is None or last.fields.empty():
        return merged
    t = scope.type

    def named(s: FieldSet) -> FieldSet:
        return ensure_named_fields_are_members(s, t)

    last_fields = named(last.fields)
    pruned = remove_items(merged, last_fields, t)
    owned = FieldSet()
    for vs in sets.values():
        owned = owned.union(vs.fields)
    merged_set = named(to_field_set(merged, t))
    pruned = remove_items(merged, merged_set.difference(named(to_field_set(pruned, t)).union(named(owned))), t)
    dangling = merged_set.difference(named(to_field_set(pruned, t))).intersection(last_fields)
    return remove_items(merged, dangling, t)


def _smd_apply(scope: Scope, live: dict[str, Any], config: dict[str, Any], managed: Managed, key: Key,
               force: bool) -> dict[str, Any] | None:
    """``Updater.Apply``: merge, own the applied fields, prune, then conflicts with the other managers."""
    t = scope.type
    merged = merge(live, config, t)
    last = managed.sets.get(key)
    applied = to_field_set(config, t)
    if scope.ignored is not None:
        applied = applied.recursive_difference(scope.ignored)
    managed.sets[key] = VersionedSet(applied, scope.api_version, True)
    new = _prune(scope, merged, managed.sets, last)
    _update_others(scope, live, new, managed.sets, key, force)
    vs = managed.sets.get(key)
    if vs is not None:
        stripped = vs.fields.difference(_STRIP)
        if stripped.empty():
            del managed.sets[key]
        else:
            managed.sets[key] = VersionedSet(stripped, vs.api_version, True)
    new = drop_nulls(copy.deepcopy(new), t)  # merged values share leaves with the stored object.
    return None if json_equal(new, live) else new


def _allowed_by_last_applied(scope: Scope, live: dict[str, Any]) -> FieldSet | None:
    """``lastAppliedManager``: the fields client-side apply applied and that still have the applied value."""
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        last_applied = json.loads(text)
    except ValueError:
        return None
    if not isinstance(last_applied, dict) or last_applied.get("apiVersion") != scope.api_version:
        return None
    comparison = compare(last_applied, live, scope.type)
    return (to_field_set(last_applied, scope.type).difference(comparison.modified)
            .difference(comparison.added).difference(comparison.removed))


def apply(scope: Scope, live: dict[str, Any] | None, config: dict[str, Any], manager: str,
          force: bool) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """Server-side apply of ``config`` by ``manager`` (``FieldManager.Apply``).

    ``live`` is the stored object, or None to create one. Returns the new object (the live object when the
    apply changes nothing) and its managedFields. Raises 400 for a config of another kind or with
    managedFields, 409 Conflict for values owned by other managers (unless ``force``).
    """
    gvk = (str(config.get("apiVersion") or ""), str(config.get("kind") or ""))
    if gvk != (scope.api_version, scope.kind):
        group, _, version = gvk[0].rpartition("/")
        raise errors.bad_request(f"invalid object type: {group}/{version}, Kind={gvk[1]}")
    if (config.get("metadata") or {}).get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    base = {"apiVersion": scope.api_version, "kind": scope.kind}
    if live is None:
        live_obj, managed = base, Managed({}, {})
    else:
        live_obj = _without_managed_fields(live)
        try:
            managed = decode((live.get("metadata") or {}).get("managedFields"))
        except ValueError as e:
            raise APIError(500, "InternalError", f"failed to decode managed fields: {e}") from None
    if not managed.sets and live is not None:
        _tracked_update(scope, base, live_obj, managed, "before-first-apply")  # skipNonApplied
    key = _key(manager, "Apply", scope.api_version, scope.subresource)
    before = managed.copy()
    try:
        new = _smd_apply(scope, live_obj, config, managed, key, force)
    except Conflicts as e:
        allowed = _allowed_by_last_applied(scope, live_obj) if manager == "kubectl" else None
        if allowed is None:
            raise _conflict_error(e.conflicts) from None
        remaining = [(k, p) for k, p in e.conflicts if not allowed.has(p)]
        if remaining:
            raise _conflict_error(remaining) from None
        managed = before
        new = _smd_apply(scope, live_obj, config, managed, key, True)
    if new is not None:
        managed.times[key] = _now()
    result: dict[str, Any] = new if new is not None else copy.deepcopy(live_obj)
    annotations = (result.get("metadata") or {}).get("annotations")
    if manager == "kubectl" and isinstance(annotations, dict) and annotations.get(LAST_APPLIED):
        # lastAppliedUpdater: the annotation becomes the applied configuration (without the annotation).
        applied = copy.deepcopy(config)
        applied_annotations = (applied.get("metadata") or {}).get("annotations")
        if isinstance(applied_annotations, dict):
            applied_annotations.pop(LAST_APPLIED, None)
        annotations[LAST_APPLIED] = json.dumps(applied, separators=(",", ":"), sort_keys=True) + "\n"
    return result, encode(managed)


# -- the scale subresource ---------------------------------------------------------------------------------

def scale_to_subresource(parent_entries: Any, mappings: dict[str, Path | None]) -> list[dict[str, Any]] | None:
    """``ScaleHandler.ToSubresource``: the parent's owners of the replicas path, as owners of the Scale's."""
    parent = _decode_or_empty(parent_entries)
    out = Managed({}, {})
    for key, vs in parent.sets.items():
        path = mappings.get(vs.api_version)
        if path is not None and vs.fields.has(path):
            out.sets[key] = VersionedSet(FieldSet.of(REPLICAS_IN_SCALE), "autoscaling/v1", vs.applied)
            out.times[key] = parent.times.get(key)
    return encode(out)


def scale_to_parent(parent_entries: Any, scale_entries: Any, mappings: dict[str, Path | None],
                    api_version: str) -> list[dict[str, Any]] | None:
    """``ScaleHandler.ToParent``: whoever owns the Scale's replicas now owns the parent's replicas path."""
    parent = _decode_or_empty(parent_entries)
    scale = _decode_or_empty(scale_entries)
    out = Managed({}, {})
    for key, vs in parent.sets.items():
        if vs.api_version not in mappings:
            continue  # an entry of a version the resource no longer has is dropped.
        path = mappings[vs.api_version]
        if path is None or not vs.fields.has(path):
            out.sets[key], out.times[key] = vs, parent.times.get(key)
        elif key in scale.sets:  # the same manager still owns the Scale's replicas: kept as it is.
            out.sets[key], out.times[key] = vs, parent.times.get(key)
            del scale.sets[key]
        else:  # the replicas path was taken by a scale writer.
            remaining = vs.fields.difference(FieldSet.of(path))
            if not remaining.empty():
                out.sets[key] = VersionedSet(remaining, vs.api_version, vs.applied)
                out.times[key] = parent.times.get(key)
    own_path = mappings.get(api_version)
    for key, vs in scale.sets.items():
        if own_path is None or not vs.fields.has(REPLICAS_IN_SCALE):
            continue
        out.sets[key] = VersionedSet(FieldSet.of(own_path), api_version, vs.applied)
        out.times[key] = parent.times.get(key)
    return encode(out)

