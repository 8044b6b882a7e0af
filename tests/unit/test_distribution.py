"""The operator's distribution holds only the operator: no emulator, test Kubernetes API, harness or demo, in its
wheel or among the modules it imports (they are distributions of their own: emulator/, testing/kubeapi/,
testing/sandbox/)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Import packages of the other distributions, and what only they depend on.
FOREIGN_MODULES = ("azure_arm_emulator", "kubeapi", "azvm_sandbox", "trustme", "jsonschema", "celpy")
FOREIGN_WORDS = ("emulator", "kubeapi", "sandbox", "harness", "demo", "/testing/")


def test_wheel_holds_only_the_operator(tmp_path: Path) -> None:
    # Built from a copy of the tree without build artifacts, as from a fresh clone (a stale build/ would leak
    # old files into the wheel); offline: no index, no build isolation (setuptools and wheel are in the venv).
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".state", ".pytest_cache"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("azure_vm_operator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n.rsplit("/", 1)[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()

    package = [n for n in names if not n.startswith(info + "/")]
    assert "azure_vm_operator/cli.py" in package and "azure_vm_operator/runner.py" in package
    assert "azure_vm_operator/controllers/handlers.py" in package
    assert all(n.startswith("azure_vm_operator/") for n in package), package
    assert [n for n in package if any(word in n for word in FOREIGN_WORDS)] == []
    requires = [line.split(":", 1)[1].strip().lower() for line in metadata.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert requires, metadata
    assert [r for r in requires if r.startswith(("trustme", "jsonschema", "cel-python", "rich", "kmock",
                                                  "azure-arm-emulator", "azvm-"))] == []
    assert "azure-vm-operator = azure_vm_operator.cli:main" in entry_points
    assert "emulator" not in entry_points and "sandbox" not in entry_points


def test_operator_imports_nothing_of_the_test_distributions() -> None:
    # The kubernetes client imports kubernetes_validate when it is installed (kubernetes/dynamic/client.py); the
    # chart tests install it (and with it jsonschema), the operator's image does not: hide it as the image would.
    code = (
        "import sys\n"
        "sys.modules['kubernetes_validate'] = None\n"
        "import azure_vm_operator.cli, azure_vm_operator.runner, azure_vm_operator.controllers.handlers\n"
        f"print(sorted({{m for m in sys.modules if m.split('.')[0] in {FOREIGN_MODULES!r}}}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


def test_operator_command_has_only_run() -> None:
    from azure_vm_operator.cli import main

    for gone in ("emulator", "demo"):
        try:
            main([gone])
        except SystemExit as exit_:
            assert exit_.code == 2
        else:
            raise AssertionError(f"`azure-vm-operator {gone}` still exists")
