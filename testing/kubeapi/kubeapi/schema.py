"""Structural OpenAPI v3 schemas of CRDs: structural check, pruning, defaulting, validation, CEL rules.

The order follows kube-apiserver for custom resources: prune unknown fields -> apply defaults ->
validate against the schema (jsonschema, Draft 4 semantics like OpenAPI v3 with the Kubernetes extensions
translated) -> evaluate ``x-kubernetes-validations`` CEL rules (cel-python). Errors are returned as
Status causes (``{"reason", "message", "field"}``) for a 422 Invalid.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import ipaddress
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import celpy
import celpy.celtypes as celtypes
import jsonschema

from .errors import Cause, forbidden_field, required_field, type_name

__all__ = ["CompiledSchema", "check_structural", "prune_metadata", "OBJECT_META_FIELDS"]

Schema = dict[str, Any]

OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields",
})

_JUNCTORS = ("allOf", "anyOf", "oneOf")
_UNSUPPORTED = ("$ref", "definitions", "dependencies", "id", "additionalItems", "patternProperties", "$schema")
_FORBIDDEN_IN_JUNCTORS = ("default", "nullable", "additionalProperties", "x-kubernetes-preserve-unknown-fields",
                          "x-kubernetes-embedded-resource", "x-kubernetes-validations")

_MISSING: Any = object()


def prune_metadata(metadata: Any) -> dict[str, Any]:
    """ObjectMeta is typed in kube-apiserver: unknown metadata fields silently disappear."""
    if not isinstance(metadata, dict):
        return {}
    return {k: v for k, v in metadata.items() if k in OBJECT_META_FIELDS}


# --------------------------------------------------------------------------------------------------
# Structural check (on CRD registration).
# --------------------------------------------------------------------------------------------------

def check_structural(schema: Any, path: str) -> list[Cause]:
    """The subset of kube-apiserver's structural-schema rules that catches real mistakes."""
    causes: list[Cause] = []
    if not isinstance(schema, dict):
        return [required_field(path, "schemas are required")]
    if schema.get("type") is None:
        causes.append(required_field(f"{path}.type", "must not be empty at the root"))
    elif schema.get("type") != "object":
        causes.append({"reason": "FieldValueInvalid", "field": f"{path}.type",
                       "message": f'Invalid value: "{schema.get("type")}": must be object at the root'})
    metadata = (schema.get("properties") or {}).get("metadata")
    if isinstance(metadata, dict) and not _metadata_ok(metadata):
        causes.append(forbidden_field(f"{path}.properties[metadata]",
                                      "must not specify anything other than name and generateName, "
                                      "but metadata is implicitly specified"))
    _check_node(schema, path, causes, item_kind="object fields", in_junctor=False, root=True)
    return causes


def _metadata_ok(metadata: Schema) -> bool:
    allowed_top = {"type", "properties", "description"}
    if set(metadata) - allowed_top or metadata.get("type", "object") != "object":
        return False
    props = metadata.get("properties") or {}
    if set(props) - {"name", "generateName"}:
        return False
    for sub in props.values():
        if not isinstance(sub, dict) or sub.get("type", "string") != "string" or "default" in sub:
            return False
    return True


def _check_node(node: Any, path: str, causes: list[Cause], *, item_kind: str, in_junctor: bool,
                root: bool = False, int_or_string_parent: bool = False) -> None:
    if not isinstance(node, dict):
        causes.append({"reason": "FieldValueInvalid", "field": path, "message": "Invalid value: must be a schema"})
        return
    for key in _UNSUPPORTED:
        if key in node:
            causes.append(forbidden_field(f"{path}.{key}", f"{key} is not supported"))
    if node.get("uniqueItems") is True:
        causes.append(forbidden_field(f"{path}.uniqueItems", "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))
    if in_junctor:
        for key in _FORBIDDEN_IN_JUNCTORS:
            if key in node:
                causes.append(forbidden_field(f"{path}.{key}", "must be empty to be structural"))
        if "type" in node and not int_or_string_parent:
            causes.append(forbidden_field(f"{path}.type", "must be empty to be structural"))
    else:
        int_or_string = bool(node.get("x-kubernetes-int-or-string"))
        preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
        if not node.get("type") and not int_or_string and not preserve and not root:
            causes.append(required_field(f"{path}.type", f"must not be empty for specified {item_kind}"))
        if int_or_string and node.get("type"):
            causes.append({"reason": "FieldValueInvalid", "field": f"{path}.type",
                           "message": f'Invalid value: "{node["type"]}": must be empty if x-kubernetes-int-or-string is true'})
        if node.get("type") == "array" and "items" not in node:
            causes.append(required_field(f"{path}.items", "must be specified"))
    if "properties" in node and "additionalProperties" in node and node["additionalProperties"] is not False:
        causes.append(forbidden_field(f"{path}.additionalProperties",
                                      "additionalProperties and properties are mutual exclusive"))
    if node.get("type") not in (None, "object", "array", "string", "integer", "number", "boolean"):
        causes.append({"reason": "FieldValueNotSupported", "field": f"{path}.type",
                       "message": f'Unsupported value: "{node["type"]}": supported values: "array", "boolean", "integer", "number", "object", "string"'})
    for name, sub in (node.get("properties") or {}).items():
        _check_node(sub, f"{path}.properties[{name}]", causes, item_kind="object fields", in_junctor=in_junctor)
    if isinstance(node.get("additionalProperties"), dict):
        _check_node(node["additionalProperties"], f"{path}.additionalProperties", causes,
                    item_kind="object fields", in_junctor=in_junctor)
    if isinstance(node.get("items"), dict):
        _check_node(node["items"], f"{path}.items", causes, item_kind="array items", in_junctor=in_junctor)
    elif isinstance(node.get("items"), list):
        causes.append(forbidden_field(f"{path}.items", "items must be a schema object and not an array"))
    for junctor in _JUNCTORS:
        for i, sub in enumerate(node.get(junctor) or []):
            _check_node(sub, f"{path}.{junctor}[{i}]", causes, item_kind="object fields", in_junctor=True,
                        int_or_string_parent=bool(node.get("x-kubernetes-int-or-string")))
    if isinstance(node.get("not"), dict):
        _check_node(node["not"], f"{path}.not", causes, item_kind="object fields", in_junctor=True)


# --------------------------------------------------------------------------------------------------
# Translation to JSON Schema (Draft 4 has OpenAPI v3's boolean exclusiveMinimum/exclusiveMaximum).
# --------------------------------------------------------------------------------------------------

_DROPPED = ("default", "example", "externalDocs", "description", "nullable", "title", "format")


def _translate(node: Schema, *, root: bool = False) -> Schema:
    out: Schema = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in _DROPPED:
            continue
        if key == "properties":
            props = {name: _translate(sub) for name, sub in value.items()}
            if root:
                props.pop("metadata", None)  # ObjectMeta is validated by the server itself (name checks below).
            out[key] = props
        elif key in ("items", "not") and isinstance(value, dict):
            out[key] = _translate(value)
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = _translate(value)
        elif key in _JUNCTORS:
            out[key] = [_translate(sub) for sub in value]
        elif key == "pattern" and isinstance(value, str):
            out[key] = _go_pattern(value)
        else:
            out[key] = value
    if node.get("format") in _FORMATS:
        out["format"] = node["format"]
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.pop("anyOf", None) if _is_int_or_string_anyof(node.get("anyOf")) else None
        out["type"] = ["integer", "string"]
    if node.get("nullable"):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _go_pattern(pattern: str) -> str:
    """A CRD pattern with Go's RE2 semantics under Python's re: ``$`` is the end of the text (Python's also
    matches before a final newline, so "name\\n" passed ``^[a-z]+$``) and ``\\w``/``\\d``/``\\s`` are ASCII."""
    out, in_class, i = [], False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        out.append("\\Z" if c == "$" and not in_class else c)
        i += 1
    return "(?a)" + "".join(out)


def _crd_pattern(translated: Any) -> Any:
    """The pattern as the CRD wrote it (messages quote it): _go_pattern undone (RE2 has no ``\\Z``)."""
    if not isinstance(translated, str) or not translated.startswith("(?a)"):
        return translated
    return translated[4:].replace("\\Z", "$")


def _is_int_or_string_anyof(anyof: Any) -> bool:
    return isinstance(anyof, list) and {json.dumps(x, sort_keys=True) for x in anyof} <= {
        '{"type": "integer"}', '{"type": "string"}'}


def _check_int32(value: Any) -> bool:
    return not isinstance(value, int) or -(2 ** 31) <= value < 2 ** 31


def _check_int64(value: Any) -> bool:
    return not isinstance(value, int) or -(2 ** 63) <= value < 2 ** 63


def _check_byte(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        base64.b64decode(value, validate=True)
        return True
    except (binascii.Error, ValueError):
        return False


def _check_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return "T" in value or "t" in value
    except ValueError:
        return False


def _check_date(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.date.fromisoformat(value)
        return True
    except ValueError:
        return False


def _check_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


def _check_ip(version: int) -> Any:
    def check(value: Any) -> bool:
        if not isinstance(value, str):
            return True
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return False
    return check


_FORMATS = {
    "int32": _check_int32, "int64": _check_int64, "byte": _check_byte, "date-time": _check_datetime,
    "date": _check_date, "uuid": _check_uuid, "ipv4": _check_ip(4), "ipv6": _check_ip(6),
}
_FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
for _name, _fn in _FORMATS.items():
    _FORMAT_CHECKER.checks(_name)(_fn)


# --------------------------------------------------------------------------------------------------
# CEL (x-kubernetes-validations).
# --------------------------------------------------------------------------------------------------

def _cel_functions() -> dict[str, Any]:
    """Kubernetes CEL string-library extensions that cel-python lacks."""
    S = celtypes.StringType
    return {
        "lowerAscii": lambda s: S(str(s).lower()),
        "upperAscii": lambda s: S(str(s).upper()),
        "trim": lambda s: S(str(s).strip()),
        "split": lambda s, sep: celtypes.ListType([S(x) for x in str(s).split(str(sep))]),
        "join": lambda lst, sep="": S(str(sep).join(str(x) for x in lst)),
        "indexOf": lambda s, sub: celtypes.IntType(str(s).find(str(sub))),
        "lastIndexOf": lambda s, sub: celtypes.IntType(str(s).rfind(str(sub))),
        "replace": lambda s, a, b: S(str(s).replace(str(a), str(b))),
        "substring": lambda s, start, end=None: S(str(s)[int(start):] if end is None else str(s)[int(start):int(end)]),
        "isSorted": lambda lst: celtypes.BoolType(list(lst) == sorted(lst)),
    }


_CEL_ENV = celpy.Environment()
_CEL_FUNCTIONS = _cel_functions()
_OLDSELF_RE = re.compile(r"\boldSelf\b")


@dataclass
class _Rule:
    spec: dict[str, Any]
    program: Any
    message_program: Any | None
    transition: bool


def _to_cel(value: Any, schema: Schema | None) -> Any:
    schema = schema or {}
    if value is None:
        return None
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        return celtypes.DoubleType(value) if schema.get("type") == "number" else celtypes.IntType(value)
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, list):
        return celtypes.ListType([_to_cel(v, schema.get("items")) for v in value])
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        return celtypes.MapType({
            celtypes.StringType(k): _to_cel(v, props.get(k) or (addl if isinstance(addl, dict) else None))
            for k, v in value.items()
        })
    return value


def _cel_path(base: str, field_path: str | None) -> str:
    if not field_path:
        return base
    suffix = field_path if field_path.startswith((".", "[")) else "." + field_path
    return (base + suffix).lstrip(".") if base else suffix.lstrip(".")


def _cel_cause(reason: str, path: str, type_name: str, message: str) -> Cause:
    reason = reason or "FieldValueInvalid"
    if reason == "FieldValueForbidden":
        text = f"Forbidden: {message}"
    elif reason == "FieldValueRequired":
        text = f"Required value: {message}"
    elif reason == "FieldValueDuplicate":
        text = f'Duplicate value: "{type_name}"'
    else:
        reason = "FieldValueInvalid"
        text = f'Invalid value: "{type_name}": {message}'
    return {"reason": reason, "message": text, "field": path}


# --------------------------------------------------------------------------------------------------
# The compiled per-version schema.
# --------------------------------------------------------------------------------------------------

class CompiledSchema:
    """A CRD version's openAPIV3Schema, ready to prune/default/validate custom resources."""

    def __init__(self, schema: Schema, path: str = "spec.versions[0].schema.openAPIV3Schema") -> None:
        self.schema = copy.deepcopy(schema)
        self.rules: dict[int, list[_Rule]] = {}
        self.errors: list[Cause] = check_structural(self.schema, path)
        if not self.errors:
            self._compile_rules(self.schema, path)
        self.validator = jsonschema.Draft4Validator(_translate(self.schema, root=True),
                                                    format_checker=_FORMAT_CHECKER)

    # -- CEL compilation ---------------------------------------------------------------------------

    def _compile_rules(self, node: Schema, path: str) -> None:
        for i, rule in enumerate(node.get("x-kubernetes-validations") or []):
            rpath = f"{path}.x-kubernetes-validations[{i}]"
            text = rule.get("rule") if isinstance(rule, dict) else None
            if not isinstance(text, str) or not text:
                self.errors.append(required_field(f"{rpath}.rule"))
                continue
            try:
                program = _CEL_ENV.program(_CEL_ENV.compile(text), functions=_CEL_FUNCTIONS)
                mexpr = rule.get("messageExpression")
                mprogram = (_CEL_ENV.program(_CEL_ENV.compile(mexpr), functions=_CEL_FUNCTIONS)
                            if mexpr else None)
            except Exception as e:  # celpy.CELParseError and friends
                self.errors.append({"reason": "FieldValueInvalid", "field": f"{rpath}.rule",
                                    "message": f"Invalid value: {json.dumps(text)}: compilation failed: {e}"})
                continue
            self.rules.setdefault(id(node), []).append(
                _Rule(rule, program, mprogram, bool(_OLDSELF_RE.search(text))))
        for name, sub in (node.get("properties") or {}).items():
            self._compile_rules(sub, f"{path}.properties[{name}]")
        if isinstance(node.get("additionalProperties"), dict):
            self._compile_rules(node["additionalProperties"], f"{path}.additionalProperties")
        if isinstance(node.get("items"), dict):
            self._compile_rules(node["items"], f"{path}.items")

    # -- pruning & defaulting ----------------------------------------------------------------------

    def prune(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Drop fields unknown to the schema (in place; apiVersion/kind/metadata always survive)."""
        props = self.schema.get("properties") or {}
        preserve = self.schema.get("x-kubernetes-preserve-unknown-fields")
        for key in list(obj):
            if key in ("apiVersion", "kind", "metadata"):
                continue
            if key in props:
                obj[key] = _prune(obj[key], props[key])
            elif not preserve:
                del obj[key]
        return obj

    def default(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Apply ``default`` values (in place); non-nullable nulls are dropped first, like kube-apiserver."""
        props = self.schema.get("properties") or {}
        for name, sub in props.items():
            if name == "metadata":
                continue
            if name in obj and obj[name] is None and not sub.get("nullable"):
                del obj[name]
            if name not in obj and "default" in sub:
                obj[name] = copy.deepcopy(sub["default"])
            if name in obj:
                obj[name] = _default(obj[name], sub)
        return obj

    # -- validation --------------------------------------------------------------------------------

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
        causes = list(_schema_causes(self.validator.iter_errors(obj)))
        self._check_list_types(obj, self.schema, "", causes)
        if not causes and self.rules:
            self._eval_rules(obj, old if old is not None else _MISSING, self.schema, "", causes)
        return causes

    def _check_list_types(self, value: Any, node: Schema, path: str, causes: list[Cause]) -> None:
        """x-kubernetes-list-type set/map: duplicates are rejected ("Duplicate value"), as kube-apiserver does."""
        if isinstance(value, dict):
            props = node.get("properties") or {}
            addl = node.get("additionalProperties")
            for key, sub_value in value.items():
                sub = props.get(key) or (addl if isinstance(addl, dict) else None)
                if sub is not None:
                    self._check_list_types(sub_value, sub, f"{path}.{key}" if path else key, causes)
        elif isinstance(value, list):
            list_type = node.get("x-kubernetes-list-type")
            keys = node.get("x-kubernetes-list-map-keys") or []
            seen: set[str] = set()
            for i, item in enumerate(value):
                if list_type == "set":
                    identity = json.dumps(item, sort_keys=True)
                elif list_type == "map" and isinstance(item, dict):
                    identity = json.dumps({k: item.get(k) for k in keys}, sort_keys=True)
                else:
                    identity = None
                if identity is not None:
                    if identity in seen:
                        causes.append({"reason": "FieldValueDuplicate", "field": f"{path}[{i}]",
                                       "message": f"Duplicate value: {identity}"})
                    seen.add(identity)
                if isinstance(node.get("items"), dict):
                    self._check_list_types(item, node["items"], f"{path}[{i}]", causes)

    def _eval_rules(self, value: Any, old: Any, node: Schema, path: str, causes: list[Cause]) -> None:
        if value is None or value is _MISSING:
            return
        for rule in self.rules.get(id(node), ()):
            if rule.transition and old is _MISSING:
                continue  # transition rules only run on update, when the old value correlates.
            activation = {"self": _to_cel(value, node)}
            if rule.transition:
                activation["oldSelf"] = _to_cel(old, node)
            rpath = _cel_path(path, rule.spec.get("fieldPath"))
            type_name = node.get("type") or "object"
            try:
                result = rule.program.evaluate(activation)
            except Exception as e:
                causes.append({"reason": "FieldValueInvalid", "field": path,
                               "message": f'Invalid value: "{type_name}": {rule.spec["rule"]!s}: evaluation error: {e.args[0] if e.args else e}'})
                continue
            if result is True or (isinstance(result, celtypes.BoolType) and bool(result)):
                continue
            message = rule.spec.get("message") or f"failed rule: {rule.spec['rule']}"
            if rule.message_program is not None:
                try:
                    message = str(rule.message_program.evaluate(activation)) or message
                except Exception:
                    pass
            causes.append(_cel_cause(rule.spec.get("reason", ""), rpath, type_name, message))
        if isinstance(value, dict):
            props = node.get("properties") or {}
            addl = node.get("additionalProperties")
            olddict = old if isinstance(old, dict) else {}
            for key, sub_value in value.items():
                sub = props.get(key) or (addl if isinstance(addl, dict) else None)
                if sub is None or (not path and key in ("metadata", "apiVersion", "kind")):
                    continue
                sub_path = f"{path}.{key}" if path else key
                self._eval_rules(sub_value, olddict.get(key, _MISSING), sub, sub_path, causes)
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            items = node["items"]
            keys = node.get("x-kubernetes-list-map-keys") if node.get("x-kubernetes-list-type") == "map" else None
            old_by_key: dict[str, Any] = {}
            if keys and isinstance(old, list):
                for item in old:
                    if isinstance(item, dict):
                        old_by_key[json.dumps([item.get(k) for k in keys])] = item
            for i, item in enumerate(value):
                old_item = _MISSING
                if keys and isinstance(item, dict):
                    old_item = old_by_key.get(json.dumps([item.get(k) for k in keys]), _MISSING)
                self._eval_rules(item, old_item, items, f"{path}[{i}]", causes)


def _prune(value: Any, node: Schema) -> Any:
    if isinstance(value, dict):
        if node.get("x-kubernetes-embedded-resource"):
            keep = {"apiVersion", "kind", "metadata"}
        else:
            keep = set()
        props = node.get("properties") or {}
        addl = node.get("additionalProperties")
        preserve = node.get("x-kubernetes-preserve-unknown-fields")
        for key in list(value):
            if key in props:
                value[key] = _prune(value[key], props[key])
            elif isinstance(addl, dict):
                value[key] = _prune(value[key], addl)
            elif addl is True or preserve or key in keep:
                continue
            else:
                del value[key]
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_prune(item, node["items"]) for item in value]
    return value


def _default(value: Any, node: Schema) -> Any:
    if isinstance(value, dict):
        props = node.get("properties") or {}
        for name, sub in props.items():
            if name in value and value[name] is None and not sub.get("nullable"):
                del value[name]
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = _default(value[name], sub)
        addl = node.get("additionalProperties")
        if isinstance(addl, dict):
            for key in list(value):
                if key not in props:
                    value[key] = _default(value[key], addl)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_default(item, node["items"]) for item in value]
    return value


def _field_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _render(value: Any) -> str:
    return f'"{type_name(value)}"' if isinstance(value, (dict, list)) else json.dumps(value)


def _schema_causes(errors: Iterator[jsonschema.ValidationError]) -> Iterator[Cause]:
    seen: set[str] = set()
    for error in sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), e.validator)):
        path = _field_path(error.absolute_path)
        where = path or "<root>"
        validator, expected, value = error.validator, error.validator_value, error.instance
        if validator == "required":
            missing = [p for p in expected if isinstance(value, dict) and p not in value]
            for prop in missing:
                field = f"{path}.{prop}" if path else prop
                if field not in seen:
                    seen.add(field)
                    yield required_field(field)
            continue
        if validator == "type":
            types = expected if isinstance(expected, list) else [expected]
            actual = type_name(value)
            text = f'Invalid value: "{actual}": {where} in body must be of type {" or ".join(t for t in types if t != "null")}: "{actual}"'
            cause = {"reason": "FieldValueTypeInvalid", "message": text, "field": path}
        elif validator == "enum":
            supported = ", ".join(json.dumps(v) for v in expected)
            cause = {"reason": "FieldValueNotSupported", "field": path,
                     "message": f"Unsupported value: {_render(value)}: supported values: {supported}"}
        elif validator == "maxLength":
            cause = {"reason": "FieldValueTooLong", "field": path,
                     "message": f"Too long: may not be more than {expected} bytes"}
        elif validator == "maxItems":
            cause = {"reason": "FieldValueTooMany", "field": path,
                     "message": f"Too many: {len(value)}: must have at most {expected} items"}
        else:
            detail = {
                "minimum": f"{where} in body should be greater than or equal to {expected}",
                "maximum": f"{where} in body should be less than or equal to {expected}",
                "minLength": f"{where} in body should be at least {expected} chars long",
                "minItems": f"{where} in body should have at least {expected} items",
                "pattern": f"{where} in body should match '{_crd_pattern(expected)}'",
                "multipleOf": f"{where} in body should be a multiple of {expected}",
                "format": f"{where} in body must be of type {expected}: {_render(value)}",
                "minProperties": f"{where} in body should have at least {expected} properties",
                "maxProperties": f"{where} in body should have at most {expected} properties",
            }.get(str(validator), error.message)
            if validator == "minimum" and error.schema.get("exclusiveMinimum"):
                detail = f"{where} in body should be greater than {expected}"
            if validator == "maximum" and error.schema.get("exclusiveMaximum"):
                detail = f"{where} in body should be less than {expected}"
            cause = {"reason": "FieldValueInvalid", "field": path,
                     "message": f"Invalid value: {_render(value)}: {detail}"}
        key = f"{cause['field']}|{cause['message']}"
        if key not in seen:
            seen.add(key)
            yield cause
