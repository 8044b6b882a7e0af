"""The emulator (distribution ``azure-arm-emulator``) imports nothing of the operator, the kubeapi or the sandbox."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import azure_arm_emulator as emulator_package

PACKAGE_DIR = Path(emulator_package.__file__).parent
FOREIGN = ("azure_vm_operator", "kubeapi", "azvm_sandbox")


def _foreign(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FOREIGN)


def test_no_operator_imports_in_source() -> None:
    offenders = []
    for path in PACKAGE_DIR.rglob("*.py"):
        depth = len(path.relative_to(PACKAGE_DIR).parts) - 1  # 0 for modules directly in the package
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level > depth + 1:
                    offenders.append(f"{path}: relative import escapes the package (level {node.level})")
                if node.level == 0 and node.module and _foreign(node.module):
                    offenders.append(f"{path}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if _foreign(alias.name):
                        offenders.append(f"{path}: import {alias.name}")
    assert offenders == []


def test_no_operator_modules_loaded() -> None:
    code = (
        "import sys, azure_arm_emulator, azure_arm_emulator.cli, azure_arm_emulator.admin\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FOREIGN!r}]\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
