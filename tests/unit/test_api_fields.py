"""The typed specs and the CRD schemas agree on every enum and default: neither can change alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from azure_vm_operator.api import virtualmachine

CRDS = Path(__file__).resolve().parents[2] / "crds"
KINDS = [("compute.azvm.io_virtualmachines.yaml", virtualmachine.FIELDS)]


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


@pytest.mark.parametrize("crd_file, fields", KINDS, ids=[k[0] for k in KINDS])
def test_every_enum_and_default_is_declared_the_same_in_both(crd_file, fields):
    crd = yaml.safe_load((CRDS / crd_file).read_text())
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    in_crd = _declared(spec_schema)
    in_code = {path: (field.enum, field.default) for path, field in fields.items()}
    assert in_code == in_crd


def test_fallbacks_are_allowed_values():
    for path, field in virtualmachine.FIELDS.items():
        if field.enum and field.fallback is not None:
            assert field.fallback in field.enum, path
