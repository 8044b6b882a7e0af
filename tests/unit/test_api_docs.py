from pathlib import Path

from azvm_sandbox.apidocs import render

ROOT = Path(__file__).resolve().parents[2]


def test_api_reference_matches_the_crds():
    docs = ROOT / "docs" / "api.md"
    assert docs.read_text(encoding="utf-8") == render(ROOT / "crds"), \
        "docs/api.md is stale: run `python -m azvm_sandbox.apidocs crds > docs/api.md`"
