"""The Image and AvailabilitySet kinds end to end: an image captured from a VirtualMachine and used by a
VirtualMachine and a ScaleSet, waiting for an image that is not ready yet, VMs spread over an availability set's
fault domains, and the deletion guards of both kinds."""

from __future__ import annotations

from e2e_helpers import Cluster, arm_calls, vm_manifest, wait_for

from azure_vm_operator.api.constants import AVSET_PLURAL, GROUP, IMAGE_PLURAL, SCALESET_PLURAL, VERSION

RG = "e2e-rg"


def manifest(kind: str, name: str, **spec) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name, "namespace": "default"},
            "spec": {"location": "westeurope", "resourceGroup": RG, **spec}}


def reason(cluster: Cluster, name: str, type_: str = "Ready") -> str | None:
    return cluster.condition(name, type_).get("reason")


def capture_events(images: Cluster, name: str, reasons: tuple[str, ...]) -> list:
    """The Image's Events with these reasons, one of each, in the order they happened: waited for, since Kopf posts
    Events from a queue, after (not with) the status write a test waits for; nothing coalesces them (each is its own
    Event object, count unset), so reading once right after Ready can miss the last ones, not lose them."""
    def found():
        events = [e for e in images.events(name) if e.reason in reasons]
        return len({e.reason for e in events}) == len(reasons) and events

    events = wait_for(found, 10, what=f"Events {', '.join(reasons)} of Image {name}")
    assert all(e.type == "Normal" for e in events), [(e.reason, e.type) for e in events]
    assert sorted(e.reason for e in events) == sorted(reasons), "each once"
    return [e.reason for e in sorted(events, key=lambda e: e.event_time or e.first_timestamp)]


def test_an_image_captured_from_a_vm_makes_a_vm_and_a_scale_set(env, operator, cluster, compute):
    images, sets = Cluster(env.kube_api_client(), IMAGE_PLURAL), Cluster(env.kube_api_client(), SCALESET_PLURAL)
    cluster.apply(vm_manifest("golden-src"))
    cluster.wait_condition("golden-src", "Ready")
    images.apply(manifest("Image", "golden", fromVirtualMachine={"name": "golden-src"}))
    # the source must be deallocated first, by its own spec: the Image waits and says so
    wait_for(lambda: reason(images, "golden") == "WaitingForSourceVM", 20, what="WaitingForSourceVM")
    assert "powerState: Deallocated" in images.condition("golden", "Ready")["message"]
    cluster.patch_spec("golden-src", {"powerState": "Deallocated"})
    image = images.wait_condition("golden", "Ready", timeout=60) and images.get("golden")
    status = image["status"]
    assert status["provisioningState"] == "Succeeded" and status["osType"] == "Linux"
    assert status["sourceVirtualMachineId"].endswith("/virtualMachines/golden-src")
    assert status["printableStatus"] == "Available"
    assert capture_events(images, "golden", ("Generalized", "Captured")) == ["Generalized", "Captured"]
    view = compute.virtual_machines.instance_view(RG, "golden-src").as_dict()
    assert "OSState/generalized" in [s["code"] for s in view["statuses"]]
    azure_image = compute.images.get(RG, "golden").as_dict()
    assert azure_image["tags"]["azvm-owner"].endswith("/Image/default/golden")
    # afterCapture KeepDeallocated: the source stays, deallocated, and is not started again
    cluster.wait_condition("golden-src", "Ready")
    assert cluster.get("golden-src")["status"]["powerState"] == "Deallocated"

    cluster.apply(vm_manifest("from-golden", image={"imageRef": {"name": "golden"}}))
    cluster.wait_condition("from-golden", "Ready", timeout=60)
    vm = compute.virtual_machines.get(RG, "from-golden").as_dict()
    assert vm["properties"]["storageProfile"]["imageReference"]["id"].lower() == status["azureResourceId"].lower()
    assert cluster.get("from-golden")["status"]["imageId"] == status["azureResourceId"]

    scale_set = vm_manifest("golden-fleet", image={"imageRef": {"name": "golden"}}, replicas=2)
    scale_set["kind"] = "ScaleSet"
    sets.apply(scale_set)
    sets.wait_condition("golden-fleet", "Ready", timeout=60)
    model = compute.virtual_machine_scale_sets.get(RG, "golden-fleet").as_dict()
    image_ref = model["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]
    assert image_ref["id"].lower() == status["azureResourceId"].lower()

    # deleting the Image is held while a VirtualMachine or ScaleSet names it
    images.delete("golden")
    wait_for(lambda: reason(images, "golden") == "ImageInUse", 20, what="ImageInUse")
    message = images.condition("golden", "Ready")["message"]
    assert "VirtualMachine from-golden" in message and "ScaleSet golden-fleet" in message
    wait_for(lambda: [e for e in images.events("golden") if e.reason == "ImageInUse" and e.type == "Warning"], 10,
             what="a Warning Event")
    assert compute.images.get(RG, "golden")
    cluster.delete("from-golden")
    sets.delete("golden-fleet")
    wait_for(lambda: images.get("golden") is None, 60, what="the image released once unused")
    assert [i.name for i in compute.images.list_by_resource_group(RG)] == []


def test_a_vm_waits_for_an_image_that_is_not_ready_yet(env, operator, cluster, compute):
    images = Cluster(env.kube_api_client(), IMAGE_PLURAL)
    cluster.apply(vm_manifest("early", image={"imageRef": {"name": "later"}}))
    wait_for(lambda: reason(cluster, "early") == "WaitingForImage", 20, what="WaitingForImage")
    assert "does not exist" in cluster.condition("early", "Ready")["message"]
    assert not arm_calls(env, "early", ("PUT",))
    images.apply(manifest("Image", "later", fromBlob={"uri": "https://acct.blob.core.windows.net/vhds/os.vhd"},
                          osType="Linux", hyperVGeneration="V2"))
    images.wait_condition("later", "Ready", timeout=60)
    cluster.wait_condition("early", "Ready", timeout=60)
    vm = compute.virtual_machines.get(RG, "early").as_dict()
    assert vm["properties"]["storageProfile"]["imageReference"]["id"].endswith("/images/later")


def test_vms_spread_over_an_availability_set_and_its_deletion_is_held_while_it_has_members(
        env, operator, cluster, compute):
    avsets = Cluster(env.kube_api_client(), AVSET_PLURAL)
    names = ["ha-0", "ha-1", "ha-2"]
    for name in names:  # before the set exists: they wait for it
        cluster.apply(vm_manifest(name, availabilitySetRef={"name": "ha"}))
    wait_for(lambda: reason(cluster, "ha-0") == "WaitingForAvailabilitySet", 20, what="WaitingForAvailabilitySet")
    avsets.apply(manifest("AvailabilitySet", "ha", platformFaultDomainCount=2, platformUpdateDomainCount=3))
    avsets.wait_condition("ha", "Ready")
    for name in names:
        cluster.wait_condition(name, "Ready", timeout=60)
    set_id = avsets.get("ha")["status"]["azureResourceId"]
    assert compute.virtual_machines.get(RG, "ha-1").availability_set.id.lower() == set_id.lower()

    def members():
        return (avsets.get("ha").get("status") or {}).get("members") or []

    listed = wait_for(lambda: len(members()) == 3 and all("faultDomain" in m for m in members()) and members(), 30,
                      what="three members with their domains")
    assert [m["name"] for m in listed] == names
    assert {m["faultDomain"] for m in listed} == {0, 1}, "spread over both fault domains"
    assert sorted(m["updateDomain"] for m in listed) == [0, 1, 2]
    assert avsets.get("ha")["status"]["memberCount"] == 3

    avsets.delete("ha")
    wait_for(lambda: reason(avsets, "ha") == "HasMembers", 20, what="HasMembers")
    assert "ha-0" in avsets.condition("ha", "Ready")["message"]
    wait_for(lambda: [e for e in avsets.events("ha") if e.reason == "HasMembers" and e.type == "Warning"], 10,
             what="a Warning Event")
    assert compute.availability_sets.get(RG, "ha")
    for name in names:
        cluster.delete(name)
    wait_for(lambda: avsets.get("ha") is None, 60, what="the set deleted once empty")
    assert [s.name for s in compute.availability_sets.list(RG)] == []


def test_a_captured_source_vm_is_deleted_with_after_capture_delete(env, operator, cluster, compute):
    images = Cluster(env.kube_api_client(), IMAGE_PLURAL)
    cluster.apply(vm_manifest("one-shot", powerState="Deallocated"))
    images.apply(manifest("Image", "once", fromVirtualMachine={"name": "one-shot", "afterCapture": "Delete"}))
    images.wait_condition("once", "Ready", timeout=60)
    wait_for(lambda: cluster.get("one-shot") is None, 30, what="the source VirtualMachine deleted")
    wait_for(lambda: "one-shot" not in [v.name for v in compute.virtual_machines.list(RG)], 30,
             what="its VM deleted in Azure")
    assert images.get("once")["status"]["sourceDeleted"] is True
    assert capture_events(images, "once", ("Generalized", "Captured", "SourceDeleted")) == [
        "Generalized", "Captured", "SourceDeleted"]
    assert "one-shot" in next(e.message for e in images.events("once") if e.reason == "SourceDeleted")
    assert compute.images.get(RG, "once").provisioning_state == "Succeeded"
