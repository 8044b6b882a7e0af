"""VM features that need more of Azure: disks, images, placement, Spot eviction, user data."""

from __future__ import annotations

import base64

from e2e_helpers import arm_calls, create_azure_vm, vm_manifest, wait_for


def vm(compute, name, expand=None):
    kwargs = {"expand": expand} if expand else {}
    return compute.virtual_machines.get("e2e-rg", name, **kwargs).as_dict()


def power(compute, name):
    view = compute.virtual_machines.instance_view("e2e-rg", name).as_dict()
    return [s["code"] for s in view["statuses"] if s["code"].startswith("PowerState/")][0].split("/")[1]


def data_disks(compute, name):
    return {d["lun"]: d for d in vm(compute, name)["properties"]["storageProfile"].get("dataDisks") or []}


def test_data_disks_attach_grow_and_detach_on_a_running_vm(env, operator, cluster, compute):
    cluster.apply(vm_manifest("disky", dataDisks=[{"lun": 0, "sizeGB": 10}], osDisk={"sizeGB": 64}))
    cluster.wait_condition("disky", "Ready")
    vm_id = vm(compute, "disky")["properties"]["vmId"]
    assert data_disks(compute, "disky")[0]["diskSizeGB"] == 10
    assert vm(compute, "disky")["properties"]["storageProfile"]["osDisk"]["diskSizeGB"] == 64

    env.clear_arm_requests()
    cluster.patch_spec("disky", {"dataDisks": [{"lun": 0, "sizeGB": 20}, {"lun": 1, "sizeGB": 5}]})
    wait_for(lambda: {lun: d["diskSizeGB"] for lun, d in data_disks(compute, "disky").items()} == {0: 20, 1: 5}, 20,
             what="disk 0 grown and disk 1 attached")
    cluster.wait_condition("disky", "Ready")
    assert vm(compute, "disky")["properties"]["vmId"] == vm_id, "the VM was updated in place, not recreated"
    assert power(compute, "disky") == "running", "data disks change on a running VM"
    assert [c["method"] for c in arm_calls(env, "disky") if c["method"] in ("PUT", "DELETE")] == []
    wait_for(lambda: len(cluster.get("disky")["status"].get("dataDisks") or []) == 2, 10, what="status.dataDisks")

    # A bigger OS disk needs a deallocated VM (as in Azure): the operator says so instead of deallocating by itself.
    cluster.patch_spec("disky", {"osDisk": {"sizeGB": 128}})
    stalled = cluster.wait_condition("disky", "Stalled")
    assert stalled["reason"] == "OsDiskResizeRequiresDeallocation"
    assert power(compute, "disky") == "running"
    cluster.patch_spec("disky", {"powerState": "Deallocated"})
    wait_for(lambda: vm(compute, "disky")["properties"]["storageProfile"]["osDisk"]["diskSizeGB"] == 128, 20,
             what="OS disk grown while deallocated")
    cluster.patch_spec("disky", {"powerState": "Running"})
    wait_for(lambda: power(compute, "disky") == "running"
             and cluster.get("disky")["status"].get("powerState") == "Running", 20, what="running again")
    cluster.wait_condition("disky", "Ready")

    detached_id = data_disks(compute, "disky")[1]["managedDisk"]["id"]
    cluster.patch_spec("disky", {"dataDisks": [{"lun": 0, "sizeGB": 20}]})
    wait_for(lambda: list(data_disks(compute, "disky")) == [0], 20, what="lun 1 detached")
    disk = compute.disks.get("e2e-rg", detached_id.rsplit("/", 1)[1]).as_dict()
    assert disk["properties"]["diskState"] == "Unattached", "a detached data disk is kept, not deleted"
    wait_for(lambda: [e for e in cluster.events("disky") if e.reason == "DataDiskDetached"], 10, what="an Event")


def test_spot_eviction_is_seen_and_the_vm_started_again(env, operator, cluster, compute):
    cluster.apply(vm_manifest("spotty", priority="Spot", evictionPolicy="Deallocate", maxPrice=-1))
    cluster.wait_condition("spotty", "Ready")
    azure_vm = vm(compute, "spotty")
    assert azure_vm["properties"]["priority"] == "Spot"
    env.clear_arm_requests()
    env.admin(lambda admin: admin.evict_vm(azure_vm["id"]))
    wait_for(lambda: [c for c in arm_calls(env, "spotty", ("POST",)) if c["path"].endswith("/start")], 20,
             what="the evicted VM started again")
    wait_for(lambda: any("spec.powerState" in f and "Deallocated" in f
                         for f in (cluster.get("spotty")["status"].get("drift") or {}).get("fields", [])), 20,
             what="the eviction recorded as drift")
    cluster.wait_condition("spotty", "Ready")
    assert cluster.get("spotty")["status"]["powerState"] == "Running"


def test_availability_set_created_and_shared(env, operator, cluster, compute):
    options = {"platformFaultDomainCount": 2, "platformUpdateDomainCount": 3}
    cluster.apply(vm_manifest("ha-a", availabilitySet="ha-set", availabilitySetOptions=options))
    cluster.apply(vm_manifest("ha-b", availabilitySet="ha-set", availabilitySetOptions=options))
    cluster.wait_condition("ha-a", "Ready")
    cluster.wait_condition("ha-b", "Ready")
    avset = compute.availability_sets.get("e2e-rg", "ha-set").as_dict()
    assert avset["properties"]["platformFaultDomainCount"] == 2
    assert avset["properties"]["platformUpdateDomainCount"] == 3
    members = {m["id"].lower() for m in avset["properties"]["virtualMachines"]}
    assert members == {vm(compute, n)["id"].lower() for n in ("ha-a", "ha-b")}
    assert cluster.get("ha-a")["status"]["availabilitySetId"].lower() == avset["id"].lower()
    domains = {compute.virtual_machines.instance_view("e2e-rg", n).as_dict()["platformFaultDomain"]
               for n in ("ha-a", "ha-b")}
    assert domains == {0, 1}


def test_zonal_vm(env, operator, cluster, compute):
    cluster.apply(vm_manifest("zonal", zone="2", network={"publicIP": True}))
    cluster.wait_condition("zonal", "Ready")
    assert vm(compute, "zonal")["zones"] == ["2"]
    assert cluster.get("zonal")["status"]["zone"] == "2"


def test_user_data_changes_in_place(env, operator, cluster, compute):
    cluster.apply(vm_manifest("ud", userData="role=web"))
    cluster.wait_condition("ud", "Ready")
    assert vm(compute, "ud", "userData")["properties"]["userData"] == base64.b64encode(b"role=web").decode()
    cluster.patch_spec("ud", {"userData": "role=api"})
    wait_for(lambda: vm(compute, "ud", "userData")["properties"].get("userData")
             == base64.b64encode(b"role=api").decode(), 20, what="user data updated")


def test_managed_image_and_gallery_image_version(env, operator, cluster, compute):
    source = create_azure_vm(env, "image-source")
    compute.virtual_machines.begin_deallocate("e2e-rg", "image-source").result()
    image = compute.images.begin_create_or_update("e2e-rg", "golden", {
        "location": "westeurope",
        "properties": {"sourceVirtualMachine": {"id": source["id"]}, "hyperVGeneration": "V2"},
    }).result().as_dict()
    cluster.apply(vm_manifest("from-image", image={"id": image["id"]}))
    cluster.wait_condition("from-image", "Ready")
    assert vm(compute, "from-image")["properties"]["storageProfile"]["imageReference"]["id"].lower() \
        == image["id"].lower()

    compute.galleries.begin_create_or_update("e2e-rg", "gallery", {"location": "westeurope"}).result()
    compute.gallery_images.begin_create_or_update("e2e-rg", "gallery", "web", {
        "location": "westeurope",
        "properties": {"osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
                       "identifier": {"publisher": "contoso", "offer": "web", "sku": "1"}},
    }).result()
    version = compute.gallery_image_versions.begin_create_or_update("e2e-rg", "gallery", "web", "1.0.0", {
        "location": "westeurope",
        "properties": {"storageProfile": {"source": {"id": image["id"]}}},
    }).result().as_dict()
    cluster.apply(vm_manifest("from-gallery", image={"id": version["id"]}))
    cluster.wait_condition("from-gallery", "Ready")
    assert vm(compute, "from-gallery")["properties"]["storageProfile"]["imageReference"]["id"].lower() \
        == version["id"].lower()

    missing = image["id"] + "-missing"
    cluster.apply(vm_manifest("from-nothing", image={"id": missing}))
    stalled = cluster.wait_condition("from-nothing", "Stalled")
    assert stalled["reason"] in ("NotFound", "ImageNotFound", "ResourceNotFound", "InvalidParameter")
