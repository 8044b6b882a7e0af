"""Every manifest in examples/ works as written: applied as kubectl would, each VirtualMachine and ScaleSet becomes
Ready in the emulator (an HPA finds its target's scale subresource), and deleting them leaves nothing behind that
was not asked to stay."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
import kubernetes.client
from e2e_helpers import Cluster, create_azure_vm, wait_for

from azure_vm_operator.api.constants import AVSET_PLURAL, GROUP, IMAGE_PLURAL, SCALESET_PLURAL, VERSION

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def provide_gallery_image(env, image_id: str) -> None:
    """The gallery example names an image version that would exist in a real subscription: make it exist."""
    parts = image_id.strip("/").split("/")
    rg, gallery, image, version = parts[3], parts[7], parts[9], parts[11]
    env.azure_client(ResourceManagementClient).resource_groups.create_or_update(rg, {"location": "westeurope"})
    compute = env.azure_client(ComputeManagementClient)
    source = create_azure_vm(env, "golden-source", resource_group=rg)
    compute.virtual_machines.begin_deallocate(rg, "golden-source").result()
    managed = compute.images.begin_create_or_update(rg, "golden-managed", {
        "location": "westeurope", "properties": {"sourceVirtualMachine": {"id": source["id"]},
                                                 "hyperVGeneration": "V2"}}).result().as_dict()
    compute.galleries.begin_create_or_update(rg, gallery, {"location": "westeurope"}).result()
    compute.gallery_images.begin_create_or_update(rg, gallery, image, {"location": "westeurope", "properties": {
        "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
        "identifier": {"publisher": "contoso", "offer": image, "sku": "1"}}}).result()
    compute.gallery_image_versions.begin_create_or_update(rg, gallery, image, version, {
        "location": "westeurope", "properties": {"storageProfile": {"source": {"id": managed["id"]}}}}).result()


def azure_names(compute: ComputeManagementClient, doc: dict) -> list[str]:
    rg = doc["spec"]["resourceGroup"]
    listing = {"VirtualMachine": compute.virtual_machines.list, "ScaleSet": compute.virtual_machine_scale_sets.list,
               "Image": compute.images.list_by_resource_group,
               "AvailabilitySet": compute.availability_sets.list}[doc["kind"]](rg)
    return [x.name for x in listing]


def captured_and_deleted(docs: list[dict]) -> set[str]:
    """VirtualMachines an Image of the example captures and then deletes (afterCapture: Delete)."""
    return {d["spec"]["fromVirtualMachine"]["name"] for d in docs if d["kind"] == "Image"
            and (d["spec"].get("fromVirtualMachine") or {}).get("afterCapture") == "Delete"}


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_example(env, operator, cluster, compute, example):
    docs = documents(EXAMPLES / example)
    kinds = {"VirtualMachine": cluster, "ScaleSet": Cluster(env.kube_api_client(), SCALESET_PLURAL),
             "Image": Cluster(env.kube_api_client(), IMAGE_PLURAL),
             "AvailabilitySet": Cluster(env.kube_api_client(), AVSET_PLURAL)}
    managed = [d for d in docs if d["kind"] in kinds]
    assert any(d["kind"] in ("VirtualMachine", "ScaleSet") for d in managed), \
        f"{example} has no VirtualMachine or ScaleSet"
    consumed = captured_and_deleted(docs)
    hpas = []
    for doc in docs:
        if doc["kind"] == "Secret":
            cluster.core.create_namespaced_secret(doc["metadata"]["namespace"], doc)
        elif doc["kind"] == "ConfigMap":
            cluster.core.create_namespaced_config_map(doc["metadata"]["namespace"], doc)
        elif doc["kind"] == "HorizontalPodAutoscaler":
            autoscaling = kubernetes.client.AutoscalingV2Api(env.kube_api_client())
            hpas.append(autoscaling.create_namespaced_horizontal_pod_autoscaler(doc["metadata"]["namespace"], doc))
    for doc in managed:
        image_id = (doc["spec"].get("image") or {}).get("id")
        if image_id and "/galleries/" in image_id:
            provide_gallery_image(env, image_id)
        kinds[doc["kind"]].apply(doc)
    for doc in managed:
        name, rg = doc["metadata"]["name"], doc["spec"]["resourceGroup"]
        if doc["kind"] == "VirtualMachine" and name in consumed:
            continue  # an Image captures it, then deletes it (waited for below)
        kinds[doc["kind"]].wait_condition(name, "Ready", timeout=90)
        if doc["kind"] in ("Image", "AvailabilitySet"):
            assert kinds[doc["kind"]].get(name)["status"]["azureResourceId"]
        elif doc["kind"] == "VirtualMachine":
            assert compute.virtual_machines.get(rg, name).hardware_profile.vm_size == doc["spec"]["size"]
        else:
            replicas = doc["spec"].get("replicas", 1)
            if "autoscale" in doc["spec"]:  # the autoscaler writes the count: defaultReplicas in the active profile
                sets = kinds["ScaleSet"]
                autoscale = wait_for(lambda name=name: (sets.get(name)["status"].get("autoscale") or {}).get(
                    "desiredReplicas"), 30, what=f"{name}: the autoscaler's first count")
                replicas = wait_for(lambda name=name: sets.get(name)["spec"].get("replicas"), 30,
                                    what=f"{name}: spec.replicas written")
                assert replicas == autoscale
                sets.wait_condition(name, "Ready", timeout=60)
            azure = compute.virtual_machine_scale_sets.get(rg, name).as_dict()
            assert azure["sku"]["name"] == doc["spec"]["size"]
            assert azure["sku"]["capacity"] == replicas
    for hpa in hpas:  # what an HPA controller reads: the target's scale subresource, with a selector
        target = hpa.spec.scale_target_ref
        scale = kinds["ScaleSet"].custom.get_namespaced_custom_object_scale(
            GROUP, VERSION, hpa.metadata.namespace, SCALESET_PLURAL, target.name)
        assert scale["status"]["selector"] == f"compute.azvm.io/scaleset={target.name}"
    for name in consumed:
        wait_for(lambda name=name: cluster.get(name) is None, 30, what=f"{name} deleted after its capture")
    managed = [d for d in managed if not (d["kind"] == "VirtualMachine" and d["metadata"]["name"] in consumed)]
    for doc in managed:
        kinds[doc["kind"]].delete(doc["metadata"]["name"])
    for doc in managed:  # an Image or AvailabilitySet goes once the VMs that use it are gone
        name = doc["metadata"]["name"]
        wait_for(lambda doc=doc: kinds[doc["kind"]].get(doc["metadata"]["name"]) is None, 60, what=f"{name} released")
        kept = doc["spec"].get("deletionPolicy") == "Orphan"
        assert (name in azure_names(compute, doc)) == kept
