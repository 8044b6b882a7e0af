"""Loading CustomResourceDefinitions from a folder (the repository's crds/ is their single source)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def load_crds(directory: str | Path) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in ``directory``'s *.yaml files, parsed."""
    folder = Path(directory)
    docs: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")):
        with path.open(encoding="utf-8") as f:
            docs.extend(d for d in yaml.safe_load_all(f) if d and d.get("kind") == "CustomResourceDefinition")
    if not docs:
        raise FileNotFoundError(f"no CustomResourceDefinition found in {folder}")
    return docs
