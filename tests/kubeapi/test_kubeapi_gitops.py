"""The ScaleSet GitOps scenario: a re-apply that leaves ``replicas`` out does not undo a scale decision.

A ScaleSet (crds/compute.azvm.io_scalesets.yaml, no operator) is (a) applied without replicas, (b) scaled to 5
through /scale as an HPA does, (c) re-applied, unchanged or changed but still without replicas; replicas stay 5.
The two ways GitOps tools re-apply are shown: client-side ``kubectl apply`` (a three-way merge against the
last-applied annotation, as Argo CD does) and server-side apply (as Flux does, field manager ``flux``).
The opposite: a manifest that sets replicas, re-applied server-side while the scaler owns replicas, conflicts
(409 naming the scaler) or, with force, takes replicas back.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client import ApiException

from kubeapi_helpers import (APPLY, SS_GROUP, SS_PLURAL, SS_VERSION, Kubectl, call, managed, owners,
                             requires_kubectl, scaleset)

pytestmark = pytest.mark.usefixtures("ss_crd")

REPLICAS = ("f:spec", "f:replicas")
HPA = "horizontal-pod-autoscaler"


async def get(custom: Any, name: str = "web") -> dict[str, Any]:
    return await call(custom.get_namespaced_custom_object, SS_GROUP, SS_VERSION, "default", SS_PLURAL, name)


async def hpa_scale(custom: Any, replicas: int, name: str = "web") -> dict[str, Any]:
    """What an HPA (or KEDA) does: write the Scale of the target, never the object itself."""
    return await call(custom.patch_namespaced_custom_object_scale, SS_GROUP, SS_VERSION, "default", SS_PLURAL,
                      name, {"spec": {"replicas": replicas}}, field_manager=HPA)


async def flux_apply(custom: Any, manifest: dict[str, Any], force: bool | None = None) -> dict[str, Any]:
    name = manifest["metadata"]["name"]
    obj = await call(custom.patch_namespaced_custom_object, SS_GROUP, SS_VERSION, "default", SS_PLURAL, name,
                     manifest, field_manager="flux", force=force, _content_type=APPLY)
    # An apply that creates answers 201, which the client's patch methods do not map (they return None).
    return obj if obj is not None else await get(custom, name)


@requires_kubectl
async def test_client_side_apply_keeps_the_scaled_replicas(custom: Any, kubectl: Kubectl) -> None:
    _, out, _ = await kubectl.apply(scaleset())  # (a)
    assert "scaleset.compute.azvm.io/web created" in out
    assert "replicas" not in (await get(custom))["spec"]
    await hpa_scale(custom, 5)  # (b)
    assert (await get(custom))["spec"]["replicas"] == 5
    _, out, _ = await kubectl.apply(scaleset())  # (c) unchanged: the three-way patch is empty
    assert "unchanged" in out
    _, out, _ = await kubectl.apply(scaleset(size="Standard_B4s", tags={"env": "prod"}))  # (c) changed
    assert "configured" in out
    obj = await get(custom)
    assert obj["spec"]["replicas"] == 5
    assert obj["spec"]["size"] == "Standard_B4s" and obj["spec"]["tags"] == {"env": "prod"}
    assert owners(obj, *REPLICAS) == []  # nobody owned replicas, so kube-apiserver did not track the scale
    assert ("kubectl-client-side-apply", "Update", "") in managed(obj)


@requires_kubectl
async def test_client_side_apply_of_replicas_undoes_the_scale_without_a_conflict(custom: Any,
                                                                                 kubectl: Kubectl) -> None:
    """The three-way patch diffs the live object against the manifest: replicas in the manifest are written
    back on every re-apply, even unchanged, and client-side apply (an Update) never conflicts."""
    await kubectl.apply(scaleset(replicas=2))
    await hpa_scale(custom, 5)
    _, out, _ = await kubectl.apply(scaleset(replicas=2))
    assert "configured" in out
    assert (await get(custom))["spec"]["replicas"] == 2


async def test_server_side_apply_keeps_the_scaled_replicas(custom: Any) -> None:
    obj = await flux_apply(custom, scaleset())  # (a)
    assert "replicas" not in obj["spec"] and owners(obj, *REPLICAS) == []
    await hpa_scale(custom, 5)  # (b)
    for manifest in (scaleset(), scaleset(size="Standard_B4s", powerState="Stopped")):  # (c)
        obj = await flux_apply(custom, manifest)
        assert obj["spec"]["replicas"] == 5
    assert obj["spec"]["size"] == "Standard_B4s" and obj["spec"]["powerState"] == "Stopped"
    assert owners(obj, "f:spec", "f:size") == [("flux", "Apply", "")]
    assert owners(obj, *REPLICAS) == []


@requires_kubectl
async def test_server_side_apply_with_kubectl_keeps_the_scaled_replicas(custom: Any, kubectl: Kubectl) -> None:
    _, out, _ = await kubectl.apply(scaleset(), "--server-side", "--field-manager=flux")  # (a)
    assert "serverside-applied" in out
    _, out, _ = await kubectl("scale", "scalesets/web", "--replicas=5")  # (b)
    assert "scaled" in out
    await kubectl.apply(scaleset(size="Standard_B4s"), "--server-side", "--field-manager=flux")  # (c)
    obj = await kubectl.get("scalesets/web")
    assert obj["spec"]["replicas"] == 5 and obj["spec"]["size"] == "Standard_B4s"
    assert ("flux", "Apply", "") in managed(obj)


async def test_reapplying_replicas_conflicts_with_the_scaler_or_takes_over_with_force(custom: Any) -> None:
    await flux_apply(custom, scaleset(replicas=2))
    await hpa_scale(custom, 5)  # flux owned replicas: the Scale's owners are tracked, the HPA takes replicas.
    obj = await get(custom)
    assert owners(obj, *REPLICAS) == [(HPA, "Update", "scale")]
    assert managed(obj)[(HPA, "Update", "scale")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}

    await flux_apply(custom, scaleset(size="Standard_B4s"))  # without replicas: fine, and replicas stay 5
    assert (await get(custom))["spec"]["replicas"] == 5
    with pytest.raises(ApiException) as e:
        await flux_apply(custom, scaleset(replicas=2))
    status = json.loads(e.value.body)
    assert e.value.status == 409 and status["reason"] == "Conflict"
    assert status["message"] == ('Apply failed with 1 conflict: conflict with "horizontal-pod-autoscaler" with '
                                 'subresource "scale" using compute.azvm.io/v1alpha1: .spec.replicas')
    assert status["details"]["causes"] == [{
        "reason": "FieldManagerConflict", "field": ".spec.replicas",
        "message": 'conflict with "horizontal-pod-autoscaler" with subresource "scale" using compute.azvm.io/v1alpha1'}]
    assert (await get(custom))["spec"]["replicas"] == 5

    obj = await flux_apply(custom, scaleset(replicas=2), force=True)
    assert obj["spec"]["replicas"] == 2
    assert owners(obj, *REPLICAS) == [("flux", "Apply", "")]
    assert (HPA, "Update", "scale") not in managed(obj)
