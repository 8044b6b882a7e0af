"""Every manifest in examples/ works as written: applied as kubectl would, each VirtualMachine becomes Ready in
the emulator, and deleting them leaves nothing behind that was not asked to stay."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from e2e_helpers import create_azure_vm, wait_for

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


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_example(env, operator, cluster, compute, example):
    docs = documents(EXAMPLES / example)
    vms = [d for d in docs if d["kind"] == "VirtualMachine"]
    assert vms, f"{example} has no VirtualMachine"
    for doc in docs:
        if doc["kind"] == "Secret":
            cluster.core.create_namespaced_secret(doc["metadata"]["namespace"], doc)
        elif doc["kind"] == "ConfigMap":
            cluster.core.create_namespaced_config_map(doc["metadata"]["namespace"], doc)
    for vm in vms:
        image_id = vm["spec"]["image"].get("id")
        if image_id and "/galleries/" in image_id:
            provide_gallery_image(env, image_id)
        cluster.apply(vm)
    for vm in vms:
        cluster.wait_condition(vm["metadata"]["name"], "Ready", timeout=60)
        azure_vm = compute.virtual_machines.get(vm["spec"]["resourceGroup"], vm["metadata"]["name"]).as_dict()
        assert azure_vm["properties"]["hardwareProfile"]["vmSize"] == vm["spec"]["size"]
    for vm in vms:
        cluster.delete(vm["metadata"]["name"])
    for vm in vms:
        wait_for(lambda vm=vm: cluster.get(vm["metadata"]["name"]) is None, 30, what=f"{vm['metadata']['name']} released")
        names = [v.name for v in compute.virtual_machines.list(vm["spec"]["resourceGroup"])]
        kept = vm["spec"].get("deletionPolicy") == "Orphan"
        assert (vm["metadata"]["name"] in names) == kept
