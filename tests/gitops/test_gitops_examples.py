"""examples/gitops: every file is valid YAML of Kubernetes objects; the VirtualMachines and ScaleSets are accepted by
the project's API server with the repository's CRDs as written (nothing pruned); the Flux Kustomizations and Argo
CD Applications point at paths and objects that exist; the operator's Helm values match the chart's schema; and
every kind's CRD carries what kstatus (Flux's health checks, kubectl wait) reads."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import kubernetes.client
import pytest
import yaml
from test_argocd_health import lost, plural

ROOT = Path(__file__).resolve().parents[2]
REPO = ROOT / "examples" / "gitops"
FILES = sorted(p for p in REPO.rglob("*.yaml"))
OURS = "compute.azvm.io"


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


ALL = [(p, d) for p in FILES for d in docs(p)]


def of_kind(api_group: str, kind: str) -> list[tuple[Path, dict]]:
    return [(p, d) for p, d in ALL if d["apiVersion"].split("/")[0] == api_group and d["kind"] == kind]


def test_every_file_is_yaml_of_kubernetes_objects():
    assert len(FILES) >= 8
    for path, doc in ALL:
        assert {"apiVersion", "kind"} <= set(doc), path
        if doc["kind"] != "Kustomization" or doc["apiVersion"].startswith("kustomize.toolkit"):
            assert doc["metadata"]["name"], path


def test_the_custom_resources_are_accepted_as_written(kube):
    core, custom = kubernetes.client.CoreV1Api(kube), kubernetes.client.CustomObjectsApi(kube)
    ours = [(p, d) for p, d in ALL if d["apiVersion"].split("/")[0] == OURS]
    assert {d["kind"] for _, d in ours} >= {"VirtualMachine", "ScaleSet"}
    for _, doc in ALL:
        if doc["kind"] == "Namespace":
            core.create_namespace(doc)
    for path, doc in ours:
        group, version = doc["apiVersion"].split("/")
        namespace = doc["metadata"].get("namespace", "default")
        created = custom.create_namespaced_custom_object(group, version, namespace, plural(group, doc["kind"]), doc)
        assert lost(created, json.loads(json.dumps(doc))) == [], f"{path}: pruned or changed by the API server"
        assert created["metadata"]["generation"] == 1


def test_kustomize_files_list_every_manifest_of_their_folder():
    for path in REPO.rglob("kustomization.yaml"):
        listed = set(yaml.safe_load(path.read_text())["resources"])
        present = {p.name for p in path.parent.glob("*.yaml") if p.name != "kustomization.yaml"}
        assert listed == present, path


def test_flux_kustomizations_point_at_folders_and_check_objects_that_exist():
    kustomizations = {d["metadata"]["name"]: d for _, d in of_kind("kustomize.toolkit.fluxcd.io", "Kustomization")}
    assert {"infrastructure", "vms"} <= set(kustomizations)
    for name, k in kustomizations.items():
        folder = REPO / k["spec"]["path"]
        assert (folder / "kustomization.yaml").is_file(), f"{name}: {k['spec']['path']}"
        for dependency in k["spec"].get("dependsOn") or []:
            assert dependency["name"] in kustomizations
        namespace = yaml.safe_load((folder / "kustomization.yaml").read_text()).get("namespace")
        applied = {(d["apiVersion"], d["kind"], d["metadata"]["name"], d["metadata"].get("namespace", namespace))
                   for p in folder.glob("*.yaml") if p.name != "kustomization.yaml" for d in docs(p)}
        for check in k["spec"].get("healthChecks") or []:
            assert (check["apiVersion"], check["kind"], check["name"], check.get("namespace")) in applied, check
        assert k["spec"].get("wait") or k["spec"].get("healthChecks"), f"{name} checks no health"
    checked = {(c["kind"], c["name"]) for c in kustomizations["vms"]["spec"]["healthChecks"]}
    machines = {(d["kind"], d["metadata"]["name"]) for _, d in ALL if d["apiVersion"].startswith(OURS + "/")}
    assert checked == machines, "every machine of apps/vms is health-checked"


def test_argocd_applications_point_at_folders_that_exist():
    apps = {d["metadata"]["name"]: d for _, d in of_kind("argoproj.io", "Application")}
    assert set(apps) == {"azure-vm-operator", "vms"}
    assert (ROOT / apps["azure-vm-operator"]["spec"]["source"]["path"] / "Chart.yaml").is_file()
    assert (REPO / apps["vms"]["spec"]["source"]["path"] / "kustomization.yaml").is_file()


def test_the_operator_values_match_the_charts_schema():
    schema_path = ROOT / "charts" / "azure-vm-operator" / "values.schema.json"
    if not schema_path.exists():
        pytest.skip("the chart has no values.schema.json")
    schema = json.loads(schema_path.read_text())
    defaults = yaml.safe_load((schema_path.parent / "values.yaml").read_text()) or {}
    release = of_kind("helm.toolkit.fluxcd.io", "HelmRelease")[0][1]
    application = of_kind("argoproj.io", "Application")
    values = [release["spec"]["values"]] + [d["spec"]["source"]["helm"]["valuesObject"] for _, d in application
                                            if "helm" in d["spec"]["source"]]
    for given in values:
        merged = json.loads(json.dumps(defaults))
        for key, value in given.items():
            merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
        jsonschema.validate(merged, schema)


def test_every_kind_follows_kstatus_in_its_crd():
    """Flux's health checks and kubectl wait --for=condition=Ready read status.observedGeneration and
    status.conditions[] with type, status, reason, message, observedGeneration: every kind's CRD keeps them."""
    from azvm_sandbox.crds import load_crds

    crds = load_crds(ROOT / "crds")
    assert crds
    for crd in crds:
        for version in crd["spec"]["versions"]:
            status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
            assert version.get("subresources", {}).get("status") == {}, crd["metadata"]["name"]
            assert status["properties"]["observedGeneration"]["type"] == "integer"
            condition = status["properties"]["conditions"]["items"]["properties"]
            assert {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"} <= set(condition)
            printed = {c["name"]: c["jsonPath"] for c in version.get("additionalPrinterColumns") or []}
            assert any(".status.conditions" in p or "printableStatus" in p for p in printed.values())
