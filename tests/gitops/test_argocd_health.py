"""The Argo CD health checks in gitops/argocd/: every kind of crds/ has one, generated from one script and current;
each kind's health_test.yaml cases (Argo CD's own format) pass under a real Lua 5.1 runtime set up as Argo CD sets
up gopher-lua; the statuses in testdata/ are what the API server keeps; the argocd-cm snippet in docs/gitops.md is
the scripts."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import kubernetes.client
import pytest
import yaml
from argocd_lua import HEALTH_CODES, load_cases, run_health
from lupa.lua51 import LuaError

from azure_vm_operator.azure.errors import PERMANENT_CODES, TRANSIENT_CODES

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "gitops" / "argocd"
DOCS = ROOT / "docs" / "gitops.md"


def _generator():
    spec = importlib.util.spec_from_file_location("argocd_generate", ARGOCD / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _generator()
KINDS = generate.kinds()
SCRIPT = (ARGOCD / "health.lua").read_text()
CASES = [(group, kind, case) for group, kind in KINDS if (ARGOCD / group / kind / "health_test.yaml").exists()
         for case in load_cases(ARGOCD / group / kind)]


def plural(group: str, kind: str) -> str:
    for path in (ROOT / "crds").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["spec"]["group"] == group and doc["spec"]["names"]["kind"] == kind:
                return str(doc["spec"]["names"]["plural"])
    raise LookupError(kind)


def test_the_crds_are_found():
    assert ("compute.azvm.io", "VirtualMachine") in KINDS and ("compute.azvm.io", "ScaleSet") in KINDS


@pytest.mark.parametrize("group,kind", KINDS, ids=[k for _, k in KINDS])
def test_every_kind_has_a_health_check_with_cases_for_each_status(group, kind):
    """A kind added to crds/ fails here until it has its health.lua (generate.py) and hand-written cases."""
    folder = ARGOCD / group / kind
    assert (folder / "health.lua").is_file(), f"no health check for {kind}: run python gitops/argocd/generate.py"
    assert (folder / "health_test.yaml").is_file(), f"no {folder.relative_to(ROOT)}/health_test.yaml"
    cases = load_cases(folder)
    for case in cases:
        assert set(case) == {"healthStatus", "inputPath"}, case
        assert case["healthStatus"]["status"] in HEALTH_CODES
        assert (folder / case["inputPath"]).is_file(), case["inputPath"]
        assert yaml.safe_load((folder / case["inputPath"]).read_text())["kind"] == kind
    covered = {c["healthStatus"]["status"] for c in cases}
    assert {"Healthy", "Progressing", "Degraded", "Suspended"} <= covered, f"{kind}: cases cover only {covered}"


def test_generated_scripts_configmap_and_docs_are_current():
    assert generate.stale() == [], "run python gitops/argocd/generate.py"
    for group, kind in KINDS:
        assert (ARGOCD / group / kind / "health.lua").read_text() == SCRIPT


@pytest.mark.parametrize("group,kind,case", CASES,
                         ids=[f"{k}-{Path(c['inputPath']).stem}" for _, k, c in CASES])
def test_health_case(group, kind, case):
    folder = ARGOCD / group / kind
    obj = yaml.safe_load((folder / case["inputPath"]).read_text())
    assert run_health((folder / "health.lua").read_text(), obj) == case["healthStatus"]


@pytest.mark.parametrize("group,kind,case", CASES,
                         ids=[f"{k}-{Path(c['inputPath']).stem}" for _, k, c in CASES])
def test_testdata_is_what_the_api_server_keeps(custom, group, kind, case):
    """Each object's spec and status pass the CRD's schema and nothing in them is pruned: the cases describe
    objects the operator can write, not imagined ones."""
    obj = yaml.safe_load((ARGOCD / group / kind / case["inputPath"]).read_text())
    name = f"{kind.lower()}-{Path(case['inputPath']).stem}"[:63]
    version = obj["apiVersion"].split("/")[1]
    body = {"apiVersion": obj["apiVersion"], "kind": kind, "metadata": {"name": name, "namespace": "default"},
            "spec": obj["spec"]}
    created = custom.create_namespaced_custom_object(group, version, "default", plural(group, kind), body)
    assert lost(created["spec"], obj["spec"], "spec") == [], "pruned or changed by the API server"
    if "status" in obj:
        custom.patch_namespaced_custom_object_status(group, version, "default", plural(group, kind), name,
                                                     {"status": obj["status"]})
        stored = custom.get_namespaced_custom_object(group, version, "default", plural(group, kind), name)
        assert lost(stored["status"], json.loads(json.dumps(obj["status"])), "status") == [], \
            "pruned or changed by the API server"


def lost(big, small, path: str = "") -> list[str]:
    """The paths of small that big does not hold as they are (big may have more: defaults)."""
    if isinstance(small, dict) and isinstance(big, dict):
        return [p for k, v in small.items() for p in (lost(big[k], v, f"{path}.{k}") if k in big else [f"{path}.{k}"])]
    if isinstance(small, list) and isinstance(big, list) and len(big) == len(small):
        return [p for i, (b, s) in enumerate(zip(big, small)) for p in lost(b, s, f"{path}[{i}]")]
    return [] if big == small else [path]


def ready_false(reason: str) -> dict:
    conditions = [{"type": "Ready", "status": "False", "reason": reason, "message": "m", "observedGeneration": 1},
                  {"type": "Reconciling", "status": "False", "reason": reason, "message": "", "observedGeneration": 1},
                  {"type": "Stalled", "status": "False", "reason": reason, "message": "", "observedGeneration": 1}]
    return {"metadata": {"generation": 1}, "spec": {},
            "status": {"observedGeneration": 1, "conditions": conditions}}


@pytest.mark.parametrize("code", sorted(TRANSIENT_CODES))
def test_ready_false_with_a_transient_arm_code_is_progressing(code):
    """The script's list of reasons that clear up by themselves holds every code the operator retries."""
    assert run_health(SCRIPT, ready_false(code)) == {"status": "Progressing", "message": f"{code}: m"}


@pytest.mark.parametrize("code", sorted(PERMANENT_CODES | {"InvalidSpec", "SecretNotFound", "OwnershipConflict"}))
def test_ready_false_with_a_permanent_reason_is_degraded(code):
    assert run_health(SCRIPT, ready_false(code)) == {"status": "Degraded", "message": f"{code}: m"}


def test_the_runtime_is_as_strict_as_argo_cds():
    """Argo CD opens no string or math library: a script using them errors there, so it must error here."""
    for script in ('return {status = string.upper("healthy")}', 'local s = "x"; return {status = s:upper()}',
                   "return {status = tostring(math.floor(1.5))}", 'return {status = io.read("*a")}'):
        with pytest.raises(LuaError):
            run_health(script, {})
    assert run_health("return {status = 'Fine'}", {}) == {"status": "Unknown",
                                                          "message": "Lua returned an invalid health status"}
    assert run_health("return {status = obj.a .. #obj.b}", {"a": "x", "b": [1, 2]}) == {"status": "Unknown",
                                                                                        "message": "Lua returned an invalid health status"}


def test_docs_carry_the_argocd_cm_snippet_of_every_kind():
    text = DOCS.read_text()
    block = re.search(re.escape(generate.BEGIN) + r"\n```yaml\n(.*?)```\n" + re.escape(generate.END), text, re.S)
    assert block, "docs/gitops.md has no generated argocd-cm block"
    configmap = yaml.safe_load(block.group(1))
    assert configmap["metadata"]["name"] == "argocd-cm"
    assert configmap["data"] == {f"resource.customizations.health.{g}_{k}": SCRIPT for g, k in KINDS}
    assert yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text()) == configmap
