"""Where the CRD manifests live: the top-level crds/ folder is their single source (chart, tests, demo)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def crds_dir() -> Path:
    configured = os.environ.get("AZVM_CRDS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "crds"


def load_crds() -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in crds/, parsed."""
    docs: list[dict[str, Any]] = []
    for path in sorted(crds_dir().glob("*.yaml")):
        with path.open(encoding="utf-8") as f:
            docs.extend(d for d in yaml.safe_load_all(f) if d and d.get("kind") == "CustomResourceDefinition")
    if not docs:
        raise FileNotFoundError(f"no CustomResourceDefinition found in {crds_dir()} (set AZVM_CRDS_DIR)")
    return docs
