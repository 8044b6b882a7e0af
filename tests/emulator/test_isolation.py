"""The emulator package must import nothing of the operator outside ``azure_vm_operator.emulator``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import azure_vm_operator.emulator as emulator_package

PACKAGE_DIR = Path(emulator_package.__file__).parent


def test_no_operator_imports_in_source() -> None:
    offenders = []
    for path in PACKAGE_DIR.rglob("*.py"):
        depth = len(path.relative_to(PACKAGE_DIR).parts) - 1  # 0 for modules directly in the package
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level > depth + 1:
                    offenders.append(f"{path}: relative import escapes the package (level {node.level})")
                if node.level == 0 and node.module and node.module.startswith("azure_vm_operator"):
                    if not node.module.startswith("azure_vm_operator.emulator"):
                        offenders.append(f"{path}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("azure_vm_operator") and not alias.name.startswith("azure_vm_operator.emulator"):
                        offenders.append(f"{path}: import {alias.name}")
    assert offenders == []


def test_no_operator_modules_loaded() -> None:
    code = (
        "import sys, azure_vm_operator.emulator, azure_vm_operator.emulator.cli, azure_vm_operator.emulator.admin\n"
        "bad = [m for m in sys.modules if m.startswith('azure_vm_operator.') "
        "and not m.startswith('azure_vm_operator.emulator')]\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
