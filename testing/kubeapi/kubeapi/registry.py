"""REST semantics of kube-apiserver's generic registry: create, get, list, update, patch, delete, watch setup.

This module knows nothing about HTTP; :mod:`.server` maps requests onto these synchronous methods, which are
atomic because they never await (see :mod:`.store`).
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import random
import re
import uuid
from collections.abc import Callable
from typing import Any

from . import errors, managedfields
from .errors import Cause
from .fieldpath import FieldSet, Path
from .managedfields import Scope
from .patch import PatchError, json_patch, merge_patch
from .resources import SCALE_SCHEMA, ResourceType, builtin_resources, crd_resources, validate_crd
from .schema import prune_metadata
from .typed import Type
from .selectors import FieldSelector, LabelSelector
from .store import Event, ObjectKey, Store, Watcher

__all__ = ["Registry", "now_rfc3339"]

CRD_GROUP = "apiextensions.k8s.io"
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apiserver/pkg/storage/names
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                "selfLink", "namespace", "name")
_UNSET: Any = object()
# The fields each strategy resets (``GetResetFields``): they are never owned through that endpoint.
_RESET_MAIN = FieldSet.of(("f:status",))
_RESET_STATUS = FieldSet.of(("f:metadata",), ("f:spec",))
_SCALE_SCOPE = Scope(Type(SCALE_SCHEMA), "autoscaling/v1", "Scale", "scale")


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = obj.setdefault("metadata", {})
    return meta


def _strip_for_generation(obj: dict[str, Any], *, status: bool) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    if status:
        out.pop("status", None)
    return out


def _get_path(obj: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _set_path(obj: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        nxt = obj.get(key)
        if not isinstance(nxt, dict):
            nxt = obj[key] = {}
        obj = nxt
    obj[path[-1]] = value


class Registry:
    """Resource types + storage + the generic-registry rules kube-apiserver applies to every write."""

    def __init__(self, store: Store, *, crd_init_delay: float = 0.0,
                 clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self.crd_init_delay = crd_init_delay
        self.clock = clock or (lambda: 0.0)
        self.resources: dict[tuple[str, str, str], ResourceType] = {}
        self.crd_type: ResourceType
        for rt in builtin_resources():
            self.resources[(rt.group, rt.version, rt.plural)] = rt
            if rt.group == CRD_GROUP:
                self.crd_type = rt
        self.ns_type = self.resources[("", "v1", "namespaces")]
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create(self.ns_type, None, {"metadata": {"name": ns}}, manager="kube-apiserver")

    # -- lookup ------------------------------------------------------------------------------------

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.resources.get((group, version, plural))

    def check_ready(self, rt: ResourceType) -> None:
        if rt.custom and rt.ready_at and self.clock() < rt.ready_at:
            raise errors.too_many_requests("storage is (re)initializing")

    def _key(self, rt: ResourceType, namespace: str | None, name: str) -> ObjectKey:
        return (namespace or "" if rt.namespaced else "", name)

    def _out(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Objects are shared with the store: never mutate them; re-label apiVersion for other versions."""
        if obj.get("apiVersion") != rt.api_version:
            return {**obj, "apiVersion": rt.api_version}
        return obj

    def _existing(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(rt, self._key(rt, namespace, name))
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return obj

    # -- read --------------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        return self._out(rt, self._existing(rt, namespace, name))

    def list_objects(self, rt: ResourceType, namespace: str | None, labels: LabelSelector, fields: FieldSelector,
             limit: int | None, continue_token: str | None) -> dict[str, Any]:
        with self.store.lock:
            list_rv = self.store.rv
            items = [(k, o) for k, o in self.store.items(rt, namespace)
                     if labels.matches(o) and fields.matches(o)]
        items.sort(key=lambda pair: pair[0])
        metadata: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if continue_token:
            try:
                state = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                after = (state["k"][0], state["k"][1])
                metadata["resourceVersion"] = str(state.get("rv", list_rv))
            except Exception:
                raise errors.bad_request("continue key is not valid: invalid continue token") from None
            items = [(k, o) for k, o in items if k > after]
        if limit is not None and limit > 0 and len(items) > limit:
            last_key = items[limit - 1][0]
            token = {"k": list(last_key), "rv": int(metadata["resourceVersion"])}
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": metadata,
                "items": [self._out(rt, o) for _, o in items]}

    # -- watch -------------------------------------------------------------------------------------

    def watch(self, rt: ResourceType, watcher: Watcher, since: str | None,
              send_initial: bool) -> list[tuple[str, Event]] | None:
        """Subscribe and compute the events to send first, atomically. None means 410 (too old)."""
        with self.store.lock:
            self.store.subscribe(rt, watcher)
            if since in (None, "", "0") or send_initial:
                initial = [("ADDED", Event("ADDED", int(o["metadata"]["resourceVersion"]), o))
                           for k, o in sorted(self.store.items(rt, watcher.namespace))
                           if watcher.matches(o)]
                return initial
            try:
                rv = int(since or 0)
            except ValueError:
                self.store.unsubscribe(rt, watcher)
                raise errors.bad_request(f"invalid resource version: {since!r}") from None
            events = self.store.collection(rt).events_since(rv)
            if events is None:
                self.store.unsubscribe(rt, watcher)
                return None
            out: list[tuple[str, Event]] = []
            for event in events:
                etype = watcher.translate(event)
                if etype is not None:
                    out.append((etype, event))
            return out

    # -- create ------------------------------------------------------------------------------------

    def _check_type(self, rt: ResourceType, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        api_version = body.get("apiVersion")
        if api_version and api_version != rt.api_version:
            same_group = api_version.split("/")[0] == rt.group if rt.group else "/" not in api_version
            if not same_group:
                raise errors.bad_request(f"the API version in the data ({api_version}) does not match "
                                         f"the expected API version ({rt.api_version})")
        kind = body.get("kind")
        if kind and kind != rt.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        rest = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")}
        return {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": prune_metadata(body.get("metadata")),
                **rest}

    def _check_namespace(self, rt: ResourceType, namespace: str | None, body: dict[str, Any]) -> None:
        meta = _meta(body)
        if rt.namespaced:
            given = meta.get("namespace")
            if given and given != namespace:
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            if namespace is None:
                raise errors.bad_request("a namespace is required for namespaced resources")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)

    def _name_causes(self, rt: ResourceType, name: str) -> list[Cause]:
        if rt.plural == "namespaces":
            ok, limit, what = _DNS_LABEL.match(name), 63, "a lowercase RFC 1123 label"
        else:
            ok, limit, what = _DNS_SUBDOMAIN.match(name), 253, "a lowercase RFC 1123 subdomain"
        if ok and len(name) <= limit:
            return []
        return [{"reason": "FieldValueInvalid", "field": "metadata.name",
                 "message": f'Invalid value: "{name}": {what} must consist of lower case alphanumeric '
                            f"characters, '-' or '.', and must start and end with an alphanumeric character"}]

    def _scope(self, rt: ResourceType, subresource: str | None) -> Scope:
        ignored = _RESET_STATUS if subresource == "status" else _RESET_MAIN if rt.status_subresource else None
        return Scope(rt.apply_type, rt.api_version, rt.kind, subresource or "", ignored)

    def create(self, rt: ResourceType, namespace: str | None, body: Any, *, manager: str = "",
               managed_fields: Any = _UNSET) -> dict[str, Any]:
        """POST. ``manager`` is the field manager of the write; ``managed_fields`` are set as given if passed."""
        obj = self._check_type(rt, copy.deepcopy(body))
        self._check_namespace(rt, namespace, obj)
        meta = obj["metadata"]
        if rt.namespaced and self.store.get(self.ns_type, ("", namespace or "")) is None:
            raise errors.not_found("namespaces", "", namespace)
        requested_fields = meta.get("managedFields")
        for field in ("uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
                      "managedFields", "generation", "creationTimestamp"):
            meta.pop(field, None)
        generated = not meta.get("name") and bool(meta.get("generateName"))
        if not meta.get("name") and not meta.get("generateName"):
            raise errors.invalid(rt.kind, rt.group, "", [errors.required_field(
                "metadata.name", "name or generateName is required")])
        if generated:
            meta["name"] = meta["generateName"] + "".join(random.choices(_NAME_ALPHABET, k=5))
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        if rt.status_subresource:
            obj.pop("status", None)  # create cannot set status when the status subresource is enabled.
        causes: list[Cause] = self._name_causes(rt, meta["name"])
        compiled = None
        if rt.group == CRD_GROUP and rt.plural == "customresourcedefinitions":
            obj.pop("status", None)
            compiled = validate_crd(obj)
        is_namespace = rt.plural == "namespaces" and not rt.group
        if is_namespace:
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        if rt.plural == "secrets" and not rt.group:
            self._normalize_secret(obj)
        causes += self._schema(rt, obj, None)
        if causes:
            raise errors.invalid(rt.kind, rt.group, meta["name"], causes)
        if managed_fields is _UNSET:  # the creator owns what it sent, defaults included (not status).
            requested = {**obj, "metadata": {**meta, "managedFields": requested_fields}}
            managed_fields = managedfields.update(self._scope(rt, None), {"apiVersion": rt.api_version,
                                                  "kind": rt.kind}, requested, manager, creating=True)
        if managed_fields:
            meta["managedFields"] = managed_fields
        if is_namespace:  # set by the strategy after the field manager ran: nobody owns them.
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
        key: ObjectKey = self._key(rt, namespace, meta["name"])
        with self.store.lock:
            for _ in range(8 if generated else 1):
                key = self._key(rt, namespace, meta["name"])
                if self.store.get(rt, key) is None:
                    break
                if generated:
                    meta["name"] = meta["generateName"] + "".join(random.choices(_NAME_ALPHABET, k=5))
            else:
                raise errors.already_exists(rt.plural, rt.group, meta["name"])
            if compiled is not None:
                self._serve_crd(obj, compiled, fresh=True)
            stored = self.store.put(rt, key, obj, event="ADDED")
        return self._out(rt, stored)

    def _normalize_secret(self, obj: dict[str, Any]) -> None:
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {}) or {}
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data
        obj.setdefault("type", "Opaque")

    def _schema(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
        if rt.schema is None:
            return []
        rt.schema.prune(obj)
        rt.schema.default(obj)
        return rt.schema.validate(obj, old)

    # -- update (PUT and PATCH on the object, its status, its scale) --------------------------------

    def replace(self, rt: ResourceType, namespace: str | None, name: str, body: Any,
                subresource: str | None, *, manager: str = "") -> dict[str, Any]:
        old = self._existing(rt, namespace, name)
        new = self._check_type(rt, copy.deepcopy(body))
        rv = new["metadata"].get("resourceVersion")
        if not rv and not rt.unconditional_update:
            raise errors.invalid(rt.kind, rt.group, name, [{
                "reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                "message": "Invalid value: 0x0: must be specified for an update"}])
        return self._update(rt, namespace, name, old, new, subresource, manager=manager)

    def patch(self, rt: ResourceType, namespace: str | None, name: str, content_type: str, body: Any,
              subresource: str | None, *, manager: str = "") -> dict[str, Any]:
        old = self._existing(rt, namespace, name)
        new = self._apply_patch(rt, name, old, content_type, body)
        new = self._check_type(rt, new)
        return self._update(rt, namespace, name, old, new, subresource, manager=manager)

    def apply(self, rt: ResourceType, namespace: str | None, name: str, body: Any, subresource: str | None, *,
              manager: str, force: bool) -> tuple[dict[str, Any], bool]:
        """Server-side apply (PATCH ``application/apply-patch+yaml``). Returns (object, created)."""
        if not isinstance(body, dict):
            raise errors.bad_request("error decoding YAML: the apply configuration must be an object")
        config = copy.deepcopy(body)
        if isinstance(config.get("metadata"), dict):
            config["metadata"] = prune_metadata(config["metadata"])
        if rt.schema is not None:
            rt.schema.prune(config)  # unknown fields are dropped (fieldValidation=Ignore semantics).
        old = self.store.get(rt, self._key(rt, namespace, name))
        scope = self._scope(rt, subresource)
        if old is None:
            if subresource is not None:
                raise errors.not_found(rt.plural, rt.group, name)
            result, fields = managedfields.apply(scope, None, config, manager, force)
            meta = result.setdefault("metadata", {})
            if meta.setdefault("name", name) != name:
                raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on "
                                         f"the URL ({name})")
            return self.create(rt, namespace, result, managed_fields=fields), True
        result, fields = managedfields.apply(scope, old, config, manager, force)
        return self._update(rt, namespace, name, old, result, subresource, managed_fields=fields), False

    def _apply_patch(self, rt: ResourceType, name: str, old: dict[str, Any], content_type: str,
                     body: Any) -> Any:
        if content_type == "application/json-patch+json":
            if not isinstance(body, list):
                raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            try:
                return json_patch(old, body)
            except PatchError as e:
                raise errors.unprocessable(str(e), name=name, group=rt.group, kind=rt.plural) from None
        if content_type == "application/merge-patch+json" or (
                content_type == "application/strategic-merge-patch+json" and not rt.custom):
            if not isinstance(body, dict):
                raise errors.bad_request("a merge patch must be a JSON object")
            return merge_patch(copy.deepcopy(old), body)
        raise errors.unsupported_media_type(content_type)

    def _update(self, rt: ResourceType, namespace: str | None, name: str, old: dict[str, Any],
                new: dict[str, Any], subresource: str | None, *, manager: str = "",
                managed_fields: Any = _UNSET) -> dict[str, Any]:
        """The common update path. ``managed_fields`` are stored as given if passed (apply, /scale);
        otherwise the field manager computes them for ``manager``."""
        meta = new["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        old_meta = old["metadata"]
        rv = meta.get("resourceVersion")
        if rv and rv != old_meta["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, name, errors.MODIFIED)
        # System-managed metadata survives whatever the client sends.
        for field in _SYSTEM_META:
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        requested_fields = meta.pop("managedFields", None)
        if rt.status_subresource:
            if subresource == "status":
                status = new.get("status", None)
                new = copy.deepcopy(old)
                if status is not None:
                    new["status"] = status
                else:
                    new.pop("status", None)
            elif "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        causes: list[Cause] = []
        if old_meta.get("deletionTimestamp"):
            added = [f for f in new["metadata"].get("finalizers") or [] if f not in (old_meta.get("finalizers") or [])]
            if added:
                rendered = "[]string{" + ", ".join(json.dumps(f) for f in added) + "}"
                causes.append(errors.forbidden_field(
                    "metadata.finalizers",
                    f"no new finalizers can be added if the object is being deleted, found new finalizers {rendered}"))
        compiled = None
        is_crd = rt.group == CRD_GROUP and rt.plural == "customresourcedefinitions"
        if is_crd and subresource != "status":
            compiled = validate_crd(new)
            if new["spec"].get("group") != old["spec"].get("group") or \
                    new["spec"].get("names", {}).get("plural") != old["spec"].get("names", {}).get("plural"):
                causes.append(errors.forbidden_field("spec.group", "field is immutable"))
        if rt.plural == "secrets" and not rt.group:
            self._normalize_secret(new)
        causes += self._schema(rt, new, old)
        if causes:
            raise errors.invalid(rt.kind, rt.group, name, causes)
        if managed_fields is _UNSET:
            requested = {**new, "metadata": {**new["metadata"], "managedFields": requested_fields}}
            managed_fields = managedfields.update(self._scope(rt, subresource), old, requested, manager)
        new["metadata"].pop("managedFields", None)
        if managed_fields:
            new["metadata"]["managedFields"] = managed_fields
        if rt.has_generation:
            with_status = rt.status_subresource
            if _strip_for_generation(new, status=with_status) != _strip_for_generation(old, status=with_status):
                new["metadata"]["generation"] = int(old_meta.get("generation") or 0) + 1
        key = self._key(rt, namespace, name)
        if new == old:
            return self._out(rt, old)  # a no-op update is not written: same resourceVersion, no event.
        with self.store.lock:
            if compiled is not None:
                self._serve_crd(new, compiled, fresh=False)
            stored = self.store.put(rt, key, new, event="MODIFIED")
            if stored["metadata"].get("deletionTimestamp") and not stored["metadata"].get("finalizers"):
                self._remove(rt, key)
        return self._out(rt, stored)

    # -- scale ---------------------------------------------------------------------------------------

    def get_scale(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        return self._scale_of(rt, self._existing(rt, namespace, name))

    def _scale_of(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        assert rt.scale is not None
        meta = obj["metadata"]
        scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                      if k in meta}
        status: dict[str, Any] = {"replicas": int(_get_path(obj, rt.scale.status_replicas) or 0)}
        if rt.scale.label_selector is not None:
            selector = _get_path(obj, rt.scale.label_selector)
            if isinstance(selector, str):
                status["selector"] = selector
        return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
                "spec": {"replicas": int(_get_path(obj, rt.scale.spec_replicas) or 0)}, "status": status}

    def _scale_mappings(self, rt: ResourceType) -> dict[str, Path | None]:
        """The replicas path of every version of the resource (``ResourcePathMappings``)."""
        return {other.api_version: tuple(f"f:{p}" for p in other.scale.spec_replicas) if other.scale else None
                for other in self.resources.values()
                if other.custom and other.group == rt.group and other.plural == rt.plural}

    def update_scale(self, rt: ResourceType, namespace: str | None, name: str, *, body: Any = None,
                     patch: tuple[str, Any] | None = None, manager: str = "") -> dict[str, Any]:
        assert rt.scale is not None
        old = self._existing(rt, namespace, name)
        current = self._scale_of(rt, old)
        if patch is not None:
            content_type, patch_body = patch
            if content_type == "application/strategic-merge-patch+json":
                content_type = "application/merge-patch+json"  # Scale is a built-in type.
            scale = self._apply_patch(rt, name, current, content_type, patch_body)
        else:
            scale = body
        if not isinstance(scale, dict):
            raise errors.bad_request("the body of the request must be a Scale object")
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, name, errors.MODIFIED)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", name, [{
                "reason": "FieldValueInvalid", "field": "spec.replicas",
                "message": f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0"}])
        # Field ownership goes through the Scale (managedfields.ScaleHandler): the owners of the replicas path
        # become owners of the Scale's spec.replicas, the Scale's field manager runs, and the result is mapped
        # back onto the parent's entries.
        mappings = self._scale_mappings(rt)
        parent_fields = old["metadata"].get("managedFields")
        scale_fields = managedfields.scale_to_subresource(parent_fields, mappings)
        live_scale = {**current, "metadata": {**current["metadata"], "managedFields": scale_fields}}
        scale_fields = managedfields.update(_SCALE_SCOPE, live_scale, scale, manager)
        new = copy.deepcopy(old)
        _set_path(new, rt.scale.spec_replicas, replicas)
        updated = self._update(rt, namespace, name, old, new, None, managed_fields=managedfields.scale_to_parent(
            parent_fields, scale_fields, mappings, rt.api_version))
        return self._scale_of(rt, updated)

    # -- delete --------------------------------------------------------------------------------------

    def delete(self, rt: ResourceType, namespace: str | None, name: str, options: Any) -> tuple[dict[str, Any], bool]:
        """Returns (object, removed_now)."""
        old = self._existing(rt, namespace, name)
        meta = old["metadata"]
        pre = (options or {}).get("preconditions") or {} if isinstance(options, dict) else {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(rt.plural, rt.group, name,
                                  f"Precondition failed: UID in precondition: {pre['uid']}, "
                                  f"UID in object meta: {meta.get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise errors.conflict(rt.plural, rt.group, name,
                                  f"Precondition failed: the ResourceVersion in the precondition "
                                  f"({pre['resourceVersion']}) does not match the ResourceVersion in record "
                                  f"({meta.get('resourceVersion')}). The object might have been modified")
        key = self._key(rt, namespace, name)
        with self.store.lock:
            if rt.plural == "namespaces" and not rt.group:
                self._delete_namespace_content(name)
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp"):
                    return self._out(rt, old), False
                new = {**old, "metadata": {**meta, "deletionTimestamp": now_rfc3339(),
                                           "deletionGracePeriodSeconds": 0}}
                if rt.has_generation and meta.get("generation"):
                    new["metadata"]["generation"] = int(meta["generation"]) + 1
                stored = self.store.put(rt, key, new, event="MODIFIED")
                return self._out(rt, stored), False
            final = self._remove(rt, key)
        return self._out(rt, final or old), True

    def _remove(self, rt: ResourceType, key: ObjectKey) -> dict[str, Any] | None:
        final = self.store.remove(rt, key)
        if final is not None and rt.group == CRD_GROUP and rt.plural == "customresourcedefinitions":
            self._unserve_crd(final)
        return final

    def _delete_namespace_content(self, namespace: str) -> None:
        seen: set[tuple[str, str]] = set()
        for rt in list(self.resources.values()):
            if not rt.namespaced or rt.storage_key in seen:
                continue
            seen.add(rt.storage_key)
            for key, obj in list(self.store.items(rt, namespace)):
                if obj["metadata"].get("finalizers"):
                    if not obj["metadata"].get("deletionTimestamp"):
                        self.store.put(rt, key, {**obj, "metadata": {**obj["metadata"],
                                                                    "deletionTimestamp": now_rfc3339(),
                                                                    "deletionGracePeriodSeconds": 0}},
                                       event="MODIFIED")
                else:
                    self.store.remove(rt, key)

    # -- CRDs ------------------------------------------------------------------------------------------

    def _serve_crd(self, crd: dict[str, Any], compiled: dict[int, Any], *, fresh: bool) -> None:
        """(Re)build the served resource types of a CRD; it becomes Established immediately."""
        spec = crd["spec"]
        self._drop_types(spec["group"], spec["names"]["plural"])
        ready_at = self.clock() + self.crd_init_delay if (fresh and self.crd_init_delay) else 0.0
        for rt in crd_resources(crd, compiled):
            rt.ready_at = ready_at
            self.resources[(rt.group, rt.version, rt.plural)] = rt
        names = dict(spec["names"])
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", f"{names['kind']}List")
        now = now_rfc3339()
        crd["status"] = {
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
        }

    def _drop_types(self, group: str, plural: str) -> list[ResourceType]:
        dropped = [rt for k, rt in self.resources.items() if rt.custom and rt.group == group and rt.plural == plural]
        for rt in dropped:
            del self.resources[(rt.group, rt.version, rt.plural)]
        return dropped

    def _unserve_crd(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        dropped = self._drop_types(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        if not dropped:
            return
        rt = dropped[0]
        coll = self.store.collections.get(rt.storage_key)
        if coll is None:
            return
        for key in list(coll.objects):
            self.store.remove(rt, key)  # watchers see the custom resources go away, as the CRD cleanup does.
        for watcher in list(coll.watchers):
            watcher.put(None)
        self.store.drop(rt)
