"""The typed specs and the CRD schemas agree on every enum and default: neither can change alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from azure_vm_operator.api import scaleset, virtualmachine
from azure_vm_operator.autoscale import spec as autoscale

CRDS = Path(__file__).resolve().parents[2] / "crds"
KINDS = [("compute.azvm.io_virtualmachines.yaml", virtualmachine.FIELDS),
         ("compute.azvm.io_scalesets.yaml", {**scaleset.FIELDS, **autoscale.FIELDS})]

#: Defaults the parser applies and the CRD must not declare: a schema default on rules[].cooldown would land on
#: every rule, target rules included, and parse_autoscale rejects a target rule with a cooldown. (Once
#: autoscale.FIELDS declares these as a ``fallback`` instead of a ``default``, this changes nothing.)
PARSER_DEFAULTS = {"spec.autoscale.rules[].cooldown", "spec.autoscale.profiles[].rules[].cooldown"}


def _declared(schema: dict, path: str = "spec") -> dict[str, tuple]:
    """spec path -> (enum, default) for every schema node that declares either."""
    found: dict[str, tuple] = {}
    if "enum" in schema or "default" in schema:
        found[path] = (tuple(schema["enum"]) if "enum" in schema else None, schema.get("default"))
    for key, child in (schema.get("properties") or {}).items():
        found.update(_declared(child, f"{path}.{key}"))
    if "items" in schema:
        found.update(_declared(schema["items"], f"{path}[]"))
    return found


def _as_the_crd_declares(fields: dict) -> dict[str, tuple]:
    expected = {}
    for path, field in fields.items():
        default = None if path in PARSER_DEFAULTS else field.default
        if field.enum is not None or default is not None or path not in PARSER_DEFAULTS:
            expected[path] = (field.enum, default)
    return expected


@pytest.mark.parametrize("crd_file, fields", KINDS, ids=[k[0] for k in KINDS])
def test_every_enum_and_default_is_declared_the_same_in_both(crd_file, fields):
    crd = yaml.safe_load((CRDS / crd_file).read_text())
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    in_crd = _declared(spec_schema)
    assert _as_the_crd_declares(fields) == in_crd


def test_the_scaleset_crd_declares_every_autoscale_field():
    assert all(path.startswith(autoscale.ROOT + ".") for path in autoscale.FIELDS)
    assert not set(autoscale.FIELDS) & set(scaleset.FIELDS)
    assert PARSER_DEFAULTS <= set(autoscale.FIELDS)


def test_fallbacks_are_allowed_values():
    for path, field in {**virtualmachine.FIELDS, **scaleset.FIELDS, **autoscale.FIELDS}.items():
        if field.enum and field.fallback is not None:
            assert field.fallback in field.enum, path
