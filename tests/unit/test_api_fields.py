"""The typed specs and the CRD schemas agree on every enum and default: neither can change alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from azure_vm_operator.api import availabilityset, image, scaleset, virtualmachine
from azure_vm_operator.autoscale import spec as autoscale

CRDS = Path(__file__).resolve().parents[2] / "crds"
KINDS = [("compute.azvm.io_virtualmachines.yaml", virtualmachine.FIELDS),
         ("compute.azvm.io_scalesets.yaml", {**scaleset.FIELDS, **autoscale.FIELDS}),
         ("compute.azvm.io_images.yaml", image.FIELDS),
         ("compute.azvm.io_availabilitysets.yaml", availabilityset.FIELDS)]

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
    """A field with only a ``fallback`` (rules[].cooldown: a schema default would land on target rules too, which
    take no cooldown) is the operator's to apply: the CRD declares nothing for it."""
    return {path: (f.enum, f.default) for path, f in fields.items() if f.enum is not None or f.default is not None}


@pytest.mark.parametrize("crd_file, fields", KINDS, ids=[k[0] for k in KINDS])
def test_every_enum_and_default_is_declared_the_same_in_both(crd_file, fields):
    crd = yaml.safe_load((CRDS / crd_file).read_text())
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    in_crd = _declared(spec_schema)
    assert _as_the_crd_declares(fields) == in_crd


def test_the_scaleset_crd_declares_every_autoscale_field():
    assert all(path.startswith(autoscale.ROOT + ".") for path in autoscale.FIELDS)
    assert not set(autoscale.FIELDS) & set(scaleset.FIELDS)
    cooldowns = [f for path, f in autoscale.FIELDS.items() if path.endswith(".cooldown")]
    assert cooldowns and all(f.default is None and f.fallback == "5m" for f in cooldowns)


def test_fallbacks_are_allowed_values():
    for path, field in {**virtualmachine.FIELDS, **scaleset.FIELDS, **autoscale.FIELDS, **image.FIELDS,
                        **availabilityset.FIELDS}.items():
        if field.enum and field.fallback is not None:
            assert field.fallback in field.enum, path
