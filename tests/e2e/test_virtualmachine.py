"""A VirtualMachine from kubectl apply to a running Azure VM and back, against the emulator and the Kubernetes API."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient

from azure_vm_operator.api.constants import OWNER_TAG
from azvm_sandbox.harness import Environment

from e2e_helpers import CRDS, Cluster, vm_manifest, wait_for

VM_PATH = "/resourceGroups/e2e-rg/providers/Microsoft.Compute/virtualMachines/"


def vm_writes(env, name):
    """ARM write requests (PUT/PATCH/POST) the operator sent for one VM, from the emulator's request log."""
    return [r for r in env.arm_requests()
            if r["method"] in ("PUT", "PATCH", "POST") and r["path"].lower().endswith((VM_PATH + name).lower())]


def test_create_reaches_ready_with_azure_state_in_status(env, operator, cluster, compute, network):
    cluster.apply(vm_manifest("web-1", network={"publicIP": True}))
    cluster.wait_condition("web-1", "Ready", timeout=30)

    vm = compute.virtual_machines.get("e2e-rg", "web-1", expand="instanceView").as_dict()
    props = vm["properties"]
    assert props["hardwareProfile"]["vmSize"] == "Standard_B2s"
    assert props["storageProfile"]["imageReference"]["sku"] == "22_04-lts-gen2"
    assert vm["tags"][OWNER_TAG] == "test-cluster/VirtualMachine/default/web-1"
    assert vm["tags"]["team"] == "platform"
    assert "PowerState/running" in [s["code"] for s in props["instanceView"]["statuses"]]

    status = cluster.get("web-1")["status"]
    nic = network.network_interfaces.get("e2e-rg", "web-1-nic").as_dict()
    pip = network.public_ip_addresses.get("e2e-rg", "web-1-pip").as_dict()
    assert status["azureResourceId"].lower() == vm["id"].lower()
    assert status["vmId"] == props["vmId"]
    assert status["provisioningState"] == "Succeeded"
    assert status["powerState"] == "Running"
    assert status["privateIP"] == nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
    assert status["publicIP"] == pip["properties"]["ipAddress"]
    assert status["observedGeneration"] == cluster.get("web-1")["metadata"]["generation"]
    assert "compute.azvm.io/finalizer" in cluster.get("web-1")["metadata"]["finalizers"]
    # The resource group did not exist: the operator created it and marked it as its own.
    assert env.azure_resource_group("e2e-rg")["tags"]["azvm-created-by"] == "azure-vm-operator"


def test_no_write_when_azure_already_matches(env, operator, cluster):
    cluster.apply(vm_manifest("steady"))
    cluster.wait_condition("steady", "Ready")
    env.clear_arm_requests()
    cluster.annotate("steady", {"compute.azvm.io/reconcile-requested-at": "now"})
    # Resync every 2 s and a listing every 1 s in tests: wait until the operator has looked at Azure three times.
    nic_lists = "/resourcegroups/e2e-rg/providers/microsoft.network/networkinterfaces"
    wait_for(lambda: len([r for r in env.arm_requests() if r["method"] == "GET"
                          and r["path"].lower().endswith(nic_lists)]) >= 3, 20, what="re-observations of the VM")
    assert vm_writes(env, "steady") == []
    # Converged passes read through the shared listings (one LIST per group and type), never the VM by itself:
    # once a listing newer than the VM's last operation exists (right after it, the VM is read directly).
    gets = [r["path"].lower() for r in env.arm_requests() if r["method"] == "GET"]
    second_listing = [i for i, p in enumerate(gets) if p.endswith(nic_lists)][1]
    later = gets[second_listing:]
    assert sum(p.endswith((VM_PATH + "steady").lower()) for p in later) == 0
    assert sum(p.endswith("/networkinterfaces/steady-nic") for p in later) == 0


def test_size_change_is_one_update_in_azure(env, operator, cluster, compute):
    cluster.apply(vm_manifest("resize-me"))
    cluster.wait_condition("resize-me", "Ready")
    env.clear_arm_requests()
    generation = cluster.patch_spec("resize-me", {"size": "Standard_D2s_v5"})["metadata"]["generation"]
    wait_for(lambda: (cluster.get("resize-me")["status"].get("observedGeneration") == generation
                      and cluster.condition("resize-me", "Ready").get("status") == "True"), 30,
             what="the new generation reconciled")
    assert compute.virtual_machines.get("e2e-rg", "resize-me").as_dict()["properties"]["hardwareProfile"]["vmSize"] \
        == "Standard_D2s_v5"
    writes = vm_writes(env, "resize-me")
    assert [w["method"] for w in writes] == ["PATCH"], writes


def test_vm_deleted_outside_kubernetes_is_recreated(env, operator, cluster, compute):
    cluster.apply(vm_manifest("phoenix"))
    cluster.wait_condition("phoenix", "Ready")
    old_vm_id = cluster.get("phoenix")["status"]["vmId"]
    compute.virtual_machines.begin_delete("e2e-rg", "phoenix").result()

    def recreated():
        try:
            return compute.virtual_machines.get("e2e-rg", "phoenix").as_dict()["properties"]["vmId"] != old_vm_id
        except ResourceNotFoundError:
            return False

    wait_for(recreated, 30, what="the VM recreated in Azure")
    wait_for(lambda: cluster.get("phoenix")["status"].get("vmId") not in (None, old_vm_id)
             and cluster.condition("phoenix", "Ready").get("status") == "True", 30, what="status of the new VM")


def test_delete_removes_azure_resources_then_the_finalizer(env, operator, cluster, compute, network):
    cluster.apply(vm_manifest("short-lived", network={"publicIP": True}))
    cluster.wait_condition("short-lived", "Ready")
    cluster.delete("short-lived")
    wait_for(lambda: cluster.get("short-lived") is None, 30, what="the custom resource to be gone")
    for get in (lambda: compute.virtual_machines.get("e2e-rg", "short-lived"),
                lambda: network.network_interfaces.get("e2e-rg", "short-lived-nic"),
                lambda: network.public_ip_addresses.get("e2e-rg", "short-lived-pip")):
        with pytest.raises(ResourceNotFoundError):
            get()
    # Shared resources are kept: the virtual network may serve other VMs of the group.
    assert network.virtual_networks.get("e2e-rg", "azvm-vnet-westeurope")


def test_unknown_image_stalls_with_arm_reason_and_others_keep_working(env, operator, cluster):
    bad_image = {"marketplace": {"publisher": "Nobody", "offer": "nothing", "sku": "none"}}
    cluster.apply(vm_manifest("bad-image", image=bad_image))
    cluster.apply(vm_manifest("good-neighbour"))
    stalled = cluster.wait_condition("bad-image", "Stalled", timeout=30)
    assert stalled["reason"] == "PlatformImageNotFound"
    assert "Nobody:nothing:none" in stalled["message"]
    assert cluster.condition("bad-image", "Ready")["status"] == "False"
    cluster.wait_condition("good-neighbour", "Ready", timeout=30)
    warnings = wait_for(lambda: [e for e in cluster.events("bad-image")
                                 if e.type == "Warning" and e.reason == "PlatformImageNotFound"], 10,
                        what="a Warning event")
    assert "Nobody:nothing:none" in warnings[0].message


def test_throttling_burst_ends_ready(env, operator, cluster, compute):
    # More 429s than the SDK's own retries absorb: the operator must back off and try again itself.
    env.inject_fault(method="PUT", path=VM_PATH + "throttled$", status=429, count=6, retry_after=0,
                     error_code="TooManyRequests")
    cluster.apply(vm_manifest("throttled"))
    cluster.wait_condition("throttled", "Ready", timeout=60)
    assert compute.virtual_machines.get("e2e-rg", "throttled")
    throttled_events = [e for e in cluster.events("throttled") if e.reason == "TooManyRequests"]
    assert throttled_events, "the transient error was reported as an Event"


def test_allocation_failure_is_transient_and_retried(env, operator, cluster, compute):
    env.inject_fault(method="PUT", path=VM_PATH + "unlucky$", count=1,
                     lro_failure={"code": "AllocationFailed", "message": "Allocation failed. Please try again."})
    cluster.apply(vm_manifest("unlucky"))
    cluster.wait_condition("unlucky", "Ready", timeout=60)
    assert cluster.condition("unlucky", "Stalled")["status"] == "False"
    assert [e for e in cluster.events("unlucky") if e.reason == "AllocationFailed" and e.type == "Warning"]
    # The failed VM was recovered by PUTting the model again, not by creating a second VM.
    vm_puts = [w for w in vm_writes(env, "unlucky") if w["method"] == "PUT"]
    assert len(vm_puts) == 2, vm_puts
    assert [vm["name"] for vm in compute.virtual_machines.list("e2e-rg")].count("unlucky") == 1


def test_authorization_failure_is_permanent(env, operator, cluster):
    env.inject_fault(method="PUT", path=VM_PATH + "forbidden$", status=403, error_code="AuthorizationFailed")
    cluster.apply(vm_manifest("forbidden"))
    stalled = cluster.wait_condition("forbidden", "Stalled", timeout=30)
    assert stalled["reason"] == "AuthorizationFailed"
    assert cluster.condition("forbidden", "Ready")["status"] == "False"
    assert cluster.condition("forbidden", "Reconciling")["status"] == "False"


def test_operator_restart_during_creation_makes_no_second_vm(tmp_path):
    """The operator stops while Azure is still creating the VM (its handler is cancelled mid-LRO, no status
    written), then starts again: it finds the VM by name and ownership tag and waits for it instead of creating
    another."""
    env = Environment(workdir=tmp_path, crds_dir=CRDS, latency_scale=0.2)  # VM create ~6 s
    try:
        env.start_operator()
        cluster = Cluster(env.kube_api_client())
        compute = env.azure_client(ComputeManagementClient)
        cluster.apply(vm_manifest("crashy"))

        def creating():
            try:
                return compute.virtual_machines.get("e2e-rg", "crashy").as_dict()["properties"][
                    "provisioningState"] == "Creating"
            except ResourceNotFoundError:
                return False

        wait_for(creating, 30, interval=0.05, what="the VM create accepted by Azure")
        env.stop_operator()
        env.start_operator()
        cluster.wait_condition("crashy", "Ready", timeout=60)
        puts = [w for w in vm_writes(env, "crashy") if w["method"] == "PUT"]
        assert len(puts) == 1, puts
        assert [vm["name"] for vm in compute.virtual_machines.list("e2e-rg")].count("crashy") == 1
    finally:
        env.close()


def test_azure_name_subscription_and_existing_subnet(env, operator, cluster, network):
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    subscription = "00000000-0000-0000-0000-0000000000cc"
    env.azure_client(ResourceManagementClient, subscription).resource_groups.create_or_update(
        "net-rg", {"location": "westeurope"})
    vnet = env.azure_client(NetworkManagementClient, subscription).virtual_networks.begin_create_or_update(
        "net-rg", "hub", {"location": "westeurope", "properties": {
            "addressSpace": {"addressPrefixes": ["10.77.0.0/16"]},
            "subnets": [{"name": "workloads", "properties": {"addressPrefix": "10.77.1.0/24"}}]}}).result().as_dict()
    subnet_id = vnet["properties"]["subnets"][0]["id"]
    cluster.apply(vm_manifest("k8s-name", azureName="Azure-Name-01", subscriptionId=subscription,
                              network={"subnetId": subnet_id}))
    cluster.wait_condition("k8s-name", "Ready")
    status = cluster.get("k8s-name")["status"]
    assert status["azureResourceId"].startswith(f"/subscriptions/{subscription}/")
    assert status["azureResourceId"].endswith("/virtualMachines/Azure-Name-01")
    assert status["privateIP"].startswith("10.77.1.")
    compute = env.azure_client(ComputeManagementClient, subscription)
    assert compute.virtual_machines.get("e2e-rg", "Azure-Name-01")
    # No VNet of our own was made: the VM uses the subnet it was given.
    own = [v.name for v in env.azure_client(NetworkManagementClient, subscription).virtual_networks.list("e2e-rg")]
    assert own == []
