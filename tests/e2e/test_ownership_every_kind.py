"""Ownership for every kind (issue #12): a custom resource never adopts nor deletes an Azure resource owned by another
resource, namespace or cluster. The VirtualMachine cases are in test_virtualmachine_lifecycle.py (adoption refused,
two namespaces) and test_frame.py; the ScaleSet's own set in test_scaleset.py. Here: a VirtualMachine's NIC, public
IP and NSG, the ScaleSet's load balancer, public IP and NSG, an Image and an AvailabilitySet, each found in Azure
under the name the operator would use but tagged ``azvm-owner`` for someone else (the Image and AvailabilitySet
also untagged: made by hand). The custom resource ends Stalled (OwnershipConflict; AlreadyExists for the untagged one
without adoptionPolicy Always), nothing of the other owner is written, and deleting the custom resource completes and
leaves them untouched."""

from __future__ import annotations

import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from e2e_helpers import Cluster, vm_manifest, wait_for
from test_scaleset import RG as SS_RG
from test_scaleset import WEB_LB, scale_set_manifest

from azure_vm_operator.api.constants import (AVSET_PLURAL, GROUP, IMAGE_PLURAL, OWNER_TAG, SCALESET_PLURAL, VERSION,
                                             VM_PLURAL)

RG = "own-rg"


def manifest(kind: str, name: str, **spec) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name, "namespace": "default"},
            "spec": {"location": "westeurope", "resourceGroup": RG, **spec}}


def touched(env, names: list[str]) -> list[dict]:
    """Writes and deletes the emulator logged for any of these resource names (by their last path segment)."""
    return [r for r in env.arm_requests() if r["method"] in ("PUT", "PATCH", "POST", "DELETE")
            and r["path"].lower().rstrip("/").rsplit("/", 1)[-1] in names]


def inventory(env, names: list[str]) -> dict[str, str]:
    return {r["id"].lower(): r.get("provisioningState") for r in env.admin(lambda a: a.resources())
            if r["id"].lower().rsplit("/", 1)[-1] in names}


def precreate_network(env, piece: str, name: str, owner: str) -> str:
    """One of a ScaleSet's network pieces, made outside Kubernetes under the name the operator uses for it."""
    network = env.azure_client(NetworkManagementClient)
    env.azure_client(ResourceManagementClient).resource_groups.create_or_update(SS_RG, {"location": "westeurope"})
    tags = {OWNER_TAG: owner}
    if piece == "load balancer":
        made = network.load_balancers.begin_create_or_update(SS_RG, f"{name}-lb", {
            "location": "westeurope", "sku": {"name": "Standard"}, "tags": tags}).result()
    elif piece == "public IP":
        made = network.public_ip_addresses.begin_create_or_update(SS_RG, f"{name}-lb-pip", {
            "location": "westeurope", "sku": {"name": "Standard"}, "tags": tags,
            "properties": {"publicIPAllocationMethod": "Static"}}).result()
    else:
        made = network.network_security_groups.begin_create_or_update(SS_RG, f"{name}-vmss-nsg", {
            "location": "westeurope", "tags": tags}).result()
    return str(made.name)


@pytest.mark.parametrize("piece, owner", [
    ("load balancer", "other-cluster/ScaleSet/default/{name}"),  # another cluster, same kind and name
    ("public IP", "test-cluster/ScaleSet/team-b/{name}"),  # this cluster, another namespace
    ("NSG", "test-cluster/VirtualMachine/default/{name}"),  # this cluster and namespace, another resource
])
def test_a_scale_sets_network_piece_owned_by_another_is_never_taken_nor_deleted(env, operator, piece, owner):
    sets = Cluster(env.kube_api_client(), SCALESET_PLURAL)
    name = {"load balancer": "own-lb", "public IP": "own-pip", "NSG": "own-nsg"}[piece]
    owner = owner.format(name=name)
    theirs = precreate_network(env, piece, name, owner)
    before = inventory(env, [theirs])
    env.clear_arm_requests()
    sets.apply(scale_set_manifest(name, replicas=1, loadBalancer={**WEB_LB, "public": True}))
    stalled = sets.wait_condition(name, "Stalled", timeout=30)
    assert stalled["reason"] == "OwnershipConflict" and owner in stalled["message"], stalled
    assert sets.condition(name, "Ready")["status"] == "False"
    assert wait_for(lambda: [e for e in sets.events(name) if e.reason == "OwnershipConflict"], 10, what="an Event")
    assert touched(env, [theirs, name]) == [], "nothing of theirs written, no scale set made around it"

    sets.delete(name)
    wait_for(lambda: sets.get(name) is None, 30, what="the ScaleSet released without finalizer surgery")
    assert touched(env, [theirs, name]) == []
    assert inventory(env, [theirs]) == before
    network = env.azure_client(NetworkManagementClient)
    kept = {"load balancer": network.load_balancers, "public IP": network.public_ip_addresses,
            "NSG": network.network_security_groups}[piece].get(SS_RG, theirs)
    assert kept.tags == {OWNER_TAG: owner}


ADOPTION = [  # (adoptionPolicy, who the Azure resource is tagged for (None: untagged), the reason)
    ("Always", "other-cluster/{kind}/default/{name}", "OwnershipConflict"),  # another cluster
    ("IfTagged", "test-cluster/{kind}/team-b/{name}", "OwnershipConflict"),  # another namespace
    ("IfTagged", None, "AlreadyExists"),  # made by hand: taken only with adoptionPolicy Always
]


@pytest.mark.parametrize("piece, owner", [
    ("network interface", "other-cluster/VirtualMachine/default/{name}"),
    ("public IP", "test-cluster/VirtualMachine/team-b/{name}"),
    ("NSG", "test-cluster/ScaleSet/default/{name}"),  # same name, another kind
])
def test_a_vms_network_piece_owned_by_another_is_never_taken_nor_deleted(env, operator, piece, owner):
    vms = Cluster(env.kube_api_client(), VM_PLURAL)
    network = env.azure_client(NetworkManagementClient)
    name, rg = "own-vm", "e2e-rg"
    owner = owner.format(name=name)
    env.azure_client(ResourceManagementClient).resource_groups.create_or_update(rg, {"location": "westeurope"})
    tags = {OWNER_TAG: owner}
    if piece == "network interface":
        vnet = network.virtual_networks.begin_create_or_update(rg, "theirs-vnet", {
            "location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.60.0.0/16"]}, "subnets": [
                {"name": "s", "properties": {"addressPrefix": "10.60.0.0/24"}}]}}).result()
        theirs = network.network_interfaces.begin_create_or_update(rg, f"{name}-nic", {
            "location": "westeurope", "tags": tags, "properties": {"ipConfigurations": [{"name": "c", "properties": {
                "subnet": {"id": vnet.subnets[0].id}}}]}}).result().name
        group = network.network_interfaces
    elif piece == "public IP":
        theirs = network.public_ip_addresses.begin_create_or_update(rg, f"{name}-pip", {
            "location": "westeurope", "sku": {"name": "Standard"}, "tags": tags,
            "properties": {"publicIPAllocationMethod": "Static"}}).result().name
        group = network.public_ip_addresses
    else:
        theirs = network.network_security_groups.begin_create_or_update(rg, f"{name}-nsg", {
            "location": "westeurope", "tags": tags}).result().name
        group = network.network_security_groups
    before = inventory(env, [theirs])
    env.clear_arm_requests()
    vms.apply(vm_manifest(name, network={"publicIP": True, "openPorts": [22]}))
    stalled = vms.wait_condition(name, "Stalled", timeout=30)
    assert stalled["reason"] == "OwnershipConflict" and owner in stalled["message"], stalled
    assert touched(env, [theirs, name]) == []
    vms.delete(name)
    wait_for(lambda: vms.get(name) is None, 30, what="the VirtualMachine released")
    assert touched(env, [theirs, name]) == [] and inventory(env, [theirs]) == before
    assert group.get(rg, theirs).tags == tags


@pytest.mark.parametrize("policy, owner, reason", ADOPTION)
def test_an_image_owned_by_another_is_never_taken_nor_deleted(env, operator, policy, owner, reason):
    images = Cluster(env.kube_api_client(), IMAGE_PLURAL)
    compute = env.azure_client(ComputeManagementClient)
    env.azure_client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": "westeurope"})
    owner = owner and owner.format(kind="Image", name="golden")
    tags = {OWNER_TAG: owner} if owner else {}
    compute.images.begin_create_or_update(RG, "golden", {
        "location": "westeurope", "tags": tags,
        "properties": {"hyperVGeneration": "V2", "storageProfile": {"osDisk": {
            "osType": "Linux", "osState": "Generalized",
            "blobUri": "https://acct.blob.core.windows.net/vhds/theirs.vhd"}}}}).result()
    before = inventory(env, ["golden"])
    env.clear_arm_requests()
    images.apply(manifest("Image", "golden", fromBlob={"uri": "https://acct.blob.core.windows.net/vhds/os.vhd"},
                          osType="Linux", hyperVGeneration="V2", adoptionPolicy=policy))
    stalled = images.wait_condition("golden", "Stalled", timeout=30)
    assert stalled["reason"] == reason and (owner or "") in stalled["message"], stalled
    assert touched(env, ["golden"]) == []
    images.delete("golden")
    wait_for(lambda: images.get("golden") is None, 30, what="the Image released")
    assert touched(env, ["golden"]) == [] and inventory(env, ["golden"]) == before
    image = compute.images.get(RG, "golden")
    assert (image.tags or {}) == tags
    assert image.storage_profile.os_disk.blob_uri.endswith("/theirs.vhd")


@pytest.mark.parametrize("policy, owner, reason", ADOPTION)
def test_an_availability_set_owned_by_another_is_never_taken_nor_deleted(env, operator, policy, owner, reason):
    avsets = Cluster(env.kube_api_client(), AVSET_PLURAL)
    compute = env.azure_client(ComputeManagementClient)
    env.azure_client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": "westeurope"})
    owner = owner and owner.format(kind="AvailabilitySet", name="ha")
    tags = {OWNER_TAG: owner} if owner else {}
    compute.availability_sets.create_or_update(RG, "ha", {
        "location": "westeurope", "tags": tags, "sku": {"name": "Aligned"},
        "properties": {"platformFaultDomainCount": 3, "platformUpdateDomainCount": 7}})
    before = inventory(env, ["ha"])
    env.clear_arm_requests()
    # Different domain counts from theirs: a taken-over set would be patched (or refused as immutable).
    avsets.apply(manifest("AvailabilitySet", "ha", platformFaultDomainCount=2, platformUpdateDomainCount=5,
                          adoptionPolicy=policy))
    stalled = avsets.wait_condition("ha", "Stalled", timeout=30)
    assert stalled["reason"] == reason and (owner or "") in stalled["message"], stalled
    assert touched(env, ["ha"]) == []
    avsets.delete("ha")
    wait_for(lambda: avsets.get("ha") is None, 30, what="the AvailabilitySet released")
    assert touched(env, ["ha"]) == [] and inventory(env, ["ha"]) == before
    kept = compute.availability_sets.get(RG, "ha")
    assert (kept.tags or {}) == tags and kept.platform_fault_domain_count == 3
