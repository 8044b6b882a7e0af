from pathlib import Path

from azure_vm_operator.api.docs import render


def test_api_reference_matches_the_crds():
    docs = Path(__file__).resolve().parents[2] / "docs" / "api.md"
    assert docs.read_text(encoding="utf-8") == render(), \
        "docs/api.md is stale: run `python -m azure_vm_operator.api.docs > docs/api.md`"
