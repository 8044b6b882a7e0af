"""The real kubectl against the server: discovery, client-side and server-side apply, scale, get (tables, YAML).

kubectl runs as a subprocess with ``--kubeconfig`` (its own discovery cache per test); apply passes
``--validate=false`` because the server publishes no OpenAPI documents (docs/kubeapi.md).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from kubeapi_helpers import (SS_API_VERSION, SS_GROUP, SS_PLURAL, SS_VERSION, Kubectl, call, managed, owners,
                             requires_kubectl, scaleset)

HPA = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"scaleTargetRef": {"apiVersion": SS_API_VERSION, "kind": "ScaleSet", "name": "web"},
             "minReplicas": 2, "maxReplicas": 10,
             "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                 "type": "Utilization", "averageUtilization": 60}}}]},
}


def table(text: str) -> list[list[str]]:
    """kubectl's table output: columns are separated by at least two spaces... or one before an empty cell."""
    header, *rows = text.strip().splitlines()
    starts = [m.start() for m in re.finditer(r"(?:(?<=^)|(?<=\s\s))\S", header)]
    return [[line[a:b].strip() for a, b in zip(starts, [*starts[1:], None])] for line in [header, *rows]]


async def test_hpa_is_stored_and_discovered(http: Any, client: Any) -> None:
    """autoscaling/v2 HorizontalPodAutoscaler: storage only (no controller), listed by discovery."""
    async with http.get("/apis") as r:
        groups = {g["name"]: g for g in (await r.json())["groups"]}
    assert groups["autoscaling"]["preferredVersion"] == {"groupVersion": "autoscaling/v2", "version": "v2"}
    async with http.get("/apis/autoscaling/v2") as r:
        resources = {res["name"]: res for res in (await r.json())["resources"]}
    hpa = resources["horizontalpodautoscalers"]
    assert hpa["kind"] == "HorizontalPodAutoscaler" and hpa["namespaced"] and hpa["shortNames"] == ["hpa"]
    assert "horizontalpodautoscalers/status" in resources
    import kubernetes

    api = kubernetes.client.AutoscalingV2Api(client)
    created = await call(api.create_namespaced_horizontal_pod_autoscaler, "default", HPA)
    assert created.spec.scale_target_ref.kind == "ScaleSet" and created.status is None
    read = await call(api.read_namespaced_horizontal_pod_autoscaler, "web", "default")
    assert read.spec.max_replicas == 10 and read.metadata.managed_fields[0].manager == "OpenAPI-Generator"


@requires_kubectl
@pytest.mark.usefixtures("ss_crd")
async def test_kubectl_client_side_apply_creates_then_applies_a_changed_manifest(custom: Any,
                                                                                 kubectl: Kubectl) -> None:
    _, out, _ = await kubectl.apply(scaleset())
    assert out.strip() == "scaleset.compute.azvm.io/web created"
    _, out, _ = await kubectl.apply(scaleset())
    assert out.strip() == "scaleset.compute.azvm.io/web unchanged"
    _, out, _ = await kubectl.apply(scaleset(size="Standard_B4s"))
    assert out.strip() == "scaleset.compute.azvm.io/web configured"
    obj = await call(custom.get_namespaced_custom_object, SS_GROUP, SS_VERSION, "default", SS_PLURAL, "web")
    assert obj["spec"]["size"] == "Standard_B4s"
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    assert set(managed(obj)) == {("kubectl-client-side-apply", "Update", "")}


@requires_kubectl
@pytest.mark.usefixtures("ss_crd")
async def test_kubectl_server_side_apply_with_and_without_force_conflicts(custom: Any, kubectl: Kubectl) -> None:
    _, out, _ = await kubectl.apply(scaleset(), "--server-side")
    assert out.strip() == "scaleset.compute.azvm.io/web serverside-applied"
    await call(custom.patch_namespaced_custom_object, SS_GROUP, SS_VERSION, "default", SS_PLURAL, "web",
               {"spec": {"size": "Standard_D2s"}}, field_manager="editor")
    rc, _, err = await kubectl.apply(scaleset(), "--server-side", check=False)
    assert rc == 1
    assert ('Apply failed with 1 conflict: conflict with "editor" using compute.azvm.io/v1alpha1: .spec.size'
            in err)
    assert "--force-conflicts" in err  # kubectl's hint, printed for a 409 Conflict with these causes
    _, out, _ = await kubectl.apply(scaleset(), "--server-side", "--force-conflicts")
    assert "serverside-applied" in out
    obj = await kubectl.get("scalesets/web")
    assert obj["spec"]["size"] == "Standard_B2s"
    assert owners(obj, "f:spec", "f:size") == [("kubectl", "Apply", "")]
    assert ("editor", "Update", "") not in managed(obj)  # it owned nothing else


@requires_kubectl
@pytest.mark.usefixtures("ss_crd")
async def test_kubectl_scale_writes_through_the_scale_subresource(kubectl: Kubectl) -> None:
    await kubectl.apply(scaleset(replicas=2), "--server-side")
    _, out, _ = await kubectl("scale", "scalesets/web", "--replicas=4")
    assert out.strip() == "scaleset.compute.azvm.io/web scaled"
    obj = await kubectl.get("scalesets/web")
    assert obj["spec"]["replicas"] == 4 and obj["metadata"]["generation"] == 2
    # kubectl scale sends a merge patch to .../scale without a fieldManager: the User-Agent names it.
    assert owners(obj, "f:spec", "f:replicas") == [("kubectl", "Update", "scale")]


@requires_kubectl
@pytest.mark.usefixtures("ss_crd")
async def test_kubectl_get_prints_the_printer_columns_and_yaml(custom: Any, kubectl: Kubectl) -> None:
    await kubectl.apply(scaleset(replicas=3))
    await call(custom.patch_namespaced_custom_object_status, SS_GROUP, SS_VERSION, "default", SS_PLURAL, "web",
               {"status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "printableStatus": "Running",
                           "loadBalancer": {"ip": "10.0.0.4"}}})
    _, out, _ = await kubectl("get", "scalesets")
    header, row = table(out)
    assert header == ["NAME", "READY", "DESIRED", "CURRENT", "UPDATED", "LB IP", "STATUS", "AGE"]
    assert row[:7] == ["web", "2", "3", "3", "3", "10.0.0.4", "Running"]
    assert re.fullmatch(r"\d+s", row[7]), row[7]  # a date column is printed as an age
    _, out, _ = await kubectl("get", "vmss")  # a short name from discovery
    assert table(out)[1][0] == "web"
    _, out, _ = await kubectl("get", "scalesets", "web", "-o", "yaml")
    obj = yaml.safe_load(out)
    assert obj["apiVersion"] == SS_API_VERSION and obj["kind"] == "ScaleSet"
    assert obj["spec"]["replicas"] == 3 and obj["status"]["printableStatus"] == "Running"
    assert "managedFields" not in obj["metadata"]  # kubectl hides them unless --show-managed-fields


@requires_kubectl
@pytest.mark.usefixtures("ss_crd")
async def test_kubectl_applies_an_hpa_targeting_a_scaleset(kubectl: Kubectl) -> None:
    await kubectl.apply(scaleset())
    _, out, _ = await kubectl.apply(HPA)
    assert out.strip() == "horizontalpodautoscaler.autoscaling/web created"
    changed = {**HPA, "spec": {**HPA["spec"], "maxReplicas": 12}}
    _, out, _ = await kubectl.apply(changed)  # a strategic merge patch: a built-in type
    assert out.strip() == "horizontalpodautoscaler.autoscaling/web configured"
    hpa = await kubectl.get("hpa/web")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": SS_API_VERSION, "kind": "ScaleSet", "name": "web"}
    assert hpa["spec"]["maxReplicas"] == 12
    _, out, _ = await kubectl("get", "hpa")
    header, row = table(out)
    assert header[:4] == ["NAME", "MINPODS", "MAXPODS", "REPLICAS"] and row[:3] == ["web", "2", "12"]
    _, out, _ = await kubectl("api-resources", "--api-group=autoscaling")
    assert re.search(r"^horizontalpodautoscalers\s+hpa\s+autoscaling/v2\s+true\s+HorizontalPodAutoscaler$", out,
                     re.MULTILINE)
