"""A VirtualMachine for its whole life: power, actions by annotation, policies, adoption, ownership, drift,
secrets. Everything through the Kubernetes API and the emulator's ARM API."""

from __future__ import annotations

import base64
import logging

import prometheus_client
import pytest
from azure.core.exceptions import ResourceNotFoundError
from e2e_helpers import arm_calls, create_azure_vm, vm_manifest, wait_for

from azure_vm_operator.api.constants import OWNER_TAG


def arm_writes(env):
    """ARM requests other than reads (token requests to the identity endpoint are not ARM)."""
    return [r for r in env.arm_requests() if r["method"] != "GET" and r["path"].lower().startswith("/subscriptions/")]


def power(compute, name, rg="e2e-rg"):
    view = compute.virtual_machines.instance_view(rg, name).as_dict()
    return [s["code"] for s in view["statuses"] if s["code"].startswith("PowerState/")][0].split("/")[1]


def wait_power(cluster, compute, name, state, timeout=30):
    wait_for(lambda: power(compute, name) == state.lower()
             and cluster.get(name)["status"].get("powerState") == state
             and cluster.condition(name, "Ready").get("status") == "True", timeout,
             what=f"{name} {state} in Azure and in status")


def test_power_state_in_every_direction(env, operator, cluster, compute):
    cluster.apply(vm_manifest("switch"))
    cluster.wait_condition("switch", "Ready")
    for target in ("Stopped", "Deallocated", "Running", "Deallocated", "Stopped", "Running"):
        cluster.patch_spec("switch", {"powerState": target})
        wait_power(cluster, compute, "switch", target)
        assert cluster.get("switch")["status"]["printableStatus"] == target


def test_restart_happens_once_per_annotation_value(env, operator, cluster):
    annotation = "compute.azvm.io/restart-requested-at"
    cluster.apply(vm_manifest("restarter"))
    cluster.wait_condition("restarter", "Ready")
    env.clear_arm_requests()

    def restarts():
        return [r for r in arm_calls(env, "restarter", ("POST",)) if r["path"].endswith("/restart")]

    cluster.annotate("restarter", {annotation: "2026-11-27T10:00:00Z"})
    wait_for(lambda: cluster.get("restarter")["status"].get("lastRestartRequest") == "2026-11-27T10:00:00Z", 20,
             what="the restart recorded")
    assert len(restarts()) == 1
    # Several resyncs later (every 2 s) the same value causes nothing more.
    observations = len(env.arm_requests())
    wait_for(lambda: len(env.arm_requests()) >= observations + 6, 20, what="more observations")
    assert len(restarts()) == 1
    cluster.annotate("restarter", {annotation: "2026-11-27T11:00:00Z"})
    wait_for(lambda: len(restarts()) == 2, 20, what="a second restart for a new value")
    assert [e for e in cluster.events("restarter") if e.reason == "Restarted"]


def test_redeploy_by_annotation(env, operator, cluster):
    cluster.apply(vm_manifest("mover"))
    cluster.wait_condition("mover", "Ready")
    cluster.annotate("mover", {"compute.azvm.io/redeploy-requested-at": "now"})
    wait_for(lambda: [r for r in arm_calls(env, "mover", ("POST",)) if r["path"].endswith("/redeploy")], 20,
             what="a redeploy call")
    wait_for(lambda: cluster.get("mover")["status"].get("lastRedeployRequest") == "now", 20, what="recorded")


def test_observe_policy_never_writes_and_reports_drift(env, operator, cluster, compute):
    create_azure_vm(env, "legacy")
    env.clear_arm_requests()
    cluster.apply(vm_manifest("legacy", reconcilePolicy="Observe", size="Standard_D2s_v5"))
    ready = cluster.wait_condition("legacy", "Ready")
    assert ready["reason"] == "Observed"
    status = cluster.get("legacy")["status"]
    assert status["printableStatus"] == "Observing"
    assert status["privateIP"].startswith("10.50.0.")
    assert cluster.condition("legacy", "Drifted")["status"] == "True"
    assert "spec.size (reported)" in status["drift"]["fields"]
    # The VM lacks our tags and has another size, yet nothing was written: only reads.
    wait_for(lambda: len([r for r in env.arm_requests() if r["method"] == "GET"]) >= 6, 20, what="resyncs")
    assert [r for r in arm_writes(env)] == []
    cluster.delete("legacy")
    wait_for(lambda: cluster.get("legacy") is None, 20, what="release")
    assert compute.virtual_machines.get("e2e-rg", "legacy").as_dict()["properties"]["hardwareProfile"]["vmSize"] \
        == "Standard_B2s"
    assert arm_writes(env) == []


def test_pause_policy_does_nothing(env, operator, cluster):
    env.clear_arm_requests()
    cluster.apply(vm_manifest("frozen", reconcilePolicy="Pause"))
    wait_for(lambda: (cluster.get("frozen").get("status") or {}).get("printableStatus") == "Paused", 20,
             what="Paused status")
    assert [r for r in env.arm_requests() if "frozen" in r["path"].lower()] == []
    cluster.delete("frozen")
    wait_for(lambda: cluster.get("frozen") is None, 20, what="release")
    assert [r for r in env.arm_requests() if "frozen" in r["path"].lower()] == []


def test_orphan_leaves_the_vm_in_azure(env, operator, cluster, compute, network):
    cluster.apply(vm_manifest("keeper", deletionPolicy="Orphan"))
    cluster.wait_condition("keeper", "Ready")
    cluster.delete("keeper")
    wait_for(lambda: cluster.get("keeper") is None, 20, what="the finalizer removed")
    assert compute.virtual_machines.get("e2e-rg", "keeper")
    assert network.network_interfaces.get("e2e-rg", "keeper-nic")
    # Re-created with the default adoption policy, the orphan is taken back (it carries this name's tag).
    cluster.apply(vm_manifest("keeper"))
    cluster.wait_condition("keeper", "Ready")
    assert [r for r in arm_calls(env, "keeper", ("PUT",))] and \
        len([r for r in arm_calls(env, "keeper", ("PUT",))]) == 1, "no second VM create"


@pytest.mark.parametrize("policy, tags, reason", [
    ("IfTagged", {}, "AlreadyExists"),
    ("Never", {OWNER_TAG: "test-cluster/default/found"}, "AlreadyExists"),
    ("Always", {OWNER_TAG: "other-cluster/default/found"}, "OwnershipConflict"),
])
def test_adoption_refused(env, operator, cluster, compute, policy, tags, reason):
    create_azure_vm(env, "found", tags=tags)
    cluster.apply(vm_manifest("found", adoptionPolicy=policy))
    stalled = cluster.wait_condition("found", "Stalled")
    assert stalled["reason"] == reason
    assert compute.virtual_machines.get("e2e-rg", "found").as_dict().get("tags", {}) == tags
    cluster.delete("found")
    wait_for(lambda: cluster.get("found") is None, 20, what="release")
    assert compute.virtual_machines.get("e2e-rg", "found"), "a VM that was never ours is not deleted"


def test_adoption_always_takes_over_an_untagged_vm(env, operator, cluster, compute):
    created = create_azure_vm(env, "brownfield")
    cluster.apply(vm_manifest("brownfield", adoptionPolicy="Always"))
    cluster.wait_condition("brownfield", "Ready")
    vm = compute.virtual_machines.get("e2e-rg", "brownfield").as_dict()
    assert vm["properties"]["vmId"] == created["properties"]["vmId"], "adopted, not recreated"
    assert vm["tags"][OWNER_TAG] == "test-cluster/VirtualMachine/default/brownfield"


def test_a_vm_tagged_by_an_earlier_release_is_still_ours_and_retagged(env, operator, cluster, compute):
    """Releases before kinds were part of identity tagged '<cluster>/<namespace>/<name>'."""
    created = create_azure_vm(env, "legacy", tags={OWNER_TAG: "test-cluster/default/legacy", "team": "platform"})
    cluster.apply(vm_manifest("legacy", adoptionPolicy="IfTagged"))
    cluster.wait_condition("legacy", "Ready")
    vm = compute.virtual_machines.get("e2e-rg", "legacy").as_dict()
    assert vm["properties"]["vmId"] == created["properties"]["vmId"], "recognised as its own, not recreated"
    assert vm["tags"][OWNER_TAG] == "test-cluster/VirtualMachine/default/legacy"
    assert cluster.condition("legacy", "Drifted").get("status") != "True"  # a migration, not the user's drift


def test_same_vm_from_two_namespaces_conflicts(env, operator, cluster):
    cluster.core.create_namespace({"metadata": {"name": "team-b"}})
    cluster.apply(vm_manifest("shared-name"))
    cluster.wait_condition("shared-name", "Ready")
    cluster.apply(vm_manifest("shared-name", namespace="team-b"))
    stalled = cluster.wait_condition("shared-name", "Stalled", namespace="team-b")
    assert stalled["reason"] == "OwnershipConflict"
    assert "test-cluster/VirtualMachine/default/shared-name" in stalled["message"]
    assert cluster.condition("shared-name", "Ready")["status"] == "True"
    # Deleting the loser leaves the winner's VM alone.
    cluster.delete("shared-name", namespace="team-b")
    wait_for(lambda: cluster.get("shared-name", namespace="team-b") is None, 20, what="release")
    assert cluster.condition("shared-name", "Ready")["status"] == "True"


@pytest.mark.parametrize("policy, ignore, expect_size, drifted", [
    ("Correct", [], "Standard_B2s", "True"),
    ("Report", [], "Standard_D4s_v5", "True"),
    ("Correct", ["size"], "Standard_D4s_v5", "False"),
])
def test_drift_corrected_reported_or_ignored(env, operator, cluster, compute, policy, ignore, expect_size, drifted):
    cluster.apply(vm_manifest("drifty", driftPolicy=policy, ignoreDriftFields=ignore))
    cluster.wait_condition("drifty", "Ready")
    compute.virtual_machines.begin_update("e2e-rg", "drifty",
                                          {"properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}}}).result()
    if drifted == "True":
        cluster.wait_condition("drifty", "Drifted", "True", timeout=20)
        drift = cluster.get("drifty")["status"]["drift"]
        assert drift["action"] == ("Corrected" if policy == "Correct" else "Reported")
        assert any(f.startswith("spec.size") for f in drift["fields"])
    else:
        observations = len(env.arm_requests())
        wait_for(lambda: len(env.arm_requests()) >= observations + 6, 20, what="resyncs")
        assert cluster.condition("drifty", "Drifted")["status"] == "False"
    size = compute.virtual_machines.get("e2e-rg", "drifty").as_dict()["properties"]["hardwareProfile"]["vmSize"]
    wait_for(lambda: compute.virtual_machines.get("e2e-rg", "drifty").as_dict()["properties"]["hardwareProfile"][
        "vmSize"] == expect_size, 20, what=f"size {expect_size} (now {size})")


def test_password_from_secret_never_leaks(env, operator, cluster, compute, caplog):
    caplog.set_level(logging.DEBUG)
    password = "Zq9!vLr2#pW7xK"
    cluster.core.create_namespaced_secret("default", {"metadata": {"name": "vm-admin"},
                                                      "data": {"password": base64.b64encode(password.encode()).decode()}})
    cluster.apply(vm_manifest("pw-vm", sshPublicKeys=None, adminPasswordSecretRef={"name": "vm-admin"}))
    cluster.wait_condition("pw-vm", "Ready")
    vm = compute.virtual_machines.get("e2e-rg", "pw-vm").as_dict()
    assert vm["properties"]["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is False
    captured = [repr(cluster.get("pw-vm")), repr(cluster.events("pw-vm")), repr(vm), caplog.text,
                prometheus_client.generate_latest().decode(), repr(env.arm_requests())]
    assert not [c for c in captured if password in c or base64.b64encode(password.encode()).decode() in c]


def test_missing_secret_is_reported_then_picked_up(env, operator, cluster):
    cluster.apply(vm_manifest("waits-for-secret", sshPublicKeys=None, adminPasswordSecretRef={"name": "later"}))
    stalled = cluster.wait_condition("waits-for-secret", "Stalled")
    assert stalled["reason"] == "SecretNotFound"
    cluster.core.create_namespaced_secret("default", {"metadata": {"name": "later"},
                                                      "string_data": None,
                                                      "data": {"password": base64.b64encode(b"Aa1!aaaaaaaa").decode()}})
    cluster.wait_condition("waits-for-secret", "Ready", timeout=30)


def test_credentials_secret(env, operator, cluster):
    cluster.core.create_namespaced_secret("default", {"metadata": {"name": "sp"}, "data": {
        k: base64.b64encode(v.encode()).decode()
        for k, v in {"tenantId": "t2", "clientId": "c2", "clientSecret": "sp-secret-9f3a7c",
                     "subscriptionId": "00000000-0000-0000-0000-0000000000bb"}.items()}})
    cluster.core.create_namespaced_secret("default", {"metadata": {"name": "sp-broken"}, "data": {
        "clientId": base64.b64encode(b"c3").decode()}})
    cluster.apply(vm_manifest("own-sp", credentialsSecretRef={"name": "sp"}))
    cluster.apply(vm_manifest("broken-sp", credentialsSecretRef={"name": "sp-broken"}))
    cluster.wait_condition("own-sp", "Ready")
    assert cluster.get("own-sp")["status"]["azureResourceId"].startswith(
        "/subscriptions/00000000-0000-0000-0000-0000000000bb/")
    stalled = cluster.wait_condition("broken-sp", "Stalled")
    assert stalled["reason"] == "InvalidCredentialsSecret"
    assert "sp-secret-9f3a7c" not in repr(cluster.get("own-sp")) + repr(cluster.events("own-sp"))
    # The token came from the Secret's tenant, not from the operator's own service principal.
    assert [r for r in env.arm_requests() if r["path"].startswith("/t2/oauth2/")]


def test_open_ports_manage_an_nsg(env, operator, cluster, network):
    cluster.apply(vm_manifest("web", network={"openPorts": [22, 443]}))
    cluster.wait_condition("web", "Ready")
    nic = network.network_interfaces.get("e2e-rg", "web-nic").as_dict()
    nsg = network.network_security_groups.get("e2e-rg", "web-nsg").as_dict()
    assert nic["properties"]["networkSecurityGroup"]["id"].lower() == nsg["id"].lower()
    ports = sorted(r["properties"]["destinationPortRange"] for r in nsg["properties"]["securityRules"])
    assert ports == ["22", "443"]
    cluster.patch_spec("web", {"network": {"openPorts": [443]}})
    wait_for(lambda: [r["properties"]["destinationPortRange"] for r in network.network_security_groups.get(
        "e2e-rg", "web-nsg").as_dict()["properties"]["securityRules"]] == ["443"], 20, what="port 22 closed")
    cluster.patch_spec("web", {"network": {"openPorts": None}})

    def nsg_gone():
        try:
            network.network_security_groups.get("e2e-rg", "web-nsg")
            return False
        except ResourceNotFoundError:
            return True

    wait_for(nsg_gone, 20, what="the NSG deleted once no port is open")
    assert not network.network_interfaces.get("e2e-rg", "web-nic").as_dict()["properties"].get("networkSecurityGroup")


def test_custom_data_comes_from_the_config_map(env, operator, cluster):
    # Azure never returns customData, so what reaches Azure shows through Azure's own validation: more than
    # 64 KiB of cloud-init is refused, which only happens if the operator read the ConfigMap and sent it.
    cluster.apply(vm_manifest("init-missing", customDataConfigMapRef={"name": "cloud-init"}))
    assert cluster.wait_condition("init-missing", "Stalled")["reason"] == "ConfigMapNotFound"
    cluster.core.create_namespaced_config_map("default", {"metadata": {"name": "huge-init"},
                                                          "data": {"customData": "#cloud-config\n" + "x" * 70000}})
    cluster.apply(vm_manifest("init-huge", customDataConfigMapRef={"name": "huge-init"}))
    stalled = cluster.wait_condition("init-huge", "Stalled")
    assert stalled["reason"] == "InvalidParameter" and "ustom data" in stalled["message"]
    cluster.core.create_namespaced_config_map("default", {"metadata": {"name": "cloud-init"},
                                                          "data": {"customData": "#cloud-config\npackages: [nginx]\n"}})
    cluster.wait_condition("init-missing", "Ready", timeout=30)


def test_deletion_waits_for_credentials_instead_of_orphaning(env, operator, cluster, compute):
    cluster.core.create_namespaced_secret("default", {"metadata": {"name": "sp-gone"}, "data": {
        k: base64.b64encode(v.encode()).decode() for k, v in {"tenantId": "t3", "clientId": "c3",
                                                              "clientSecret": "sp-gone-secret-0b1e"}.items()}})
    cluster.apply(vm_manifest("needs-sp", credentialsSecretRef={"name": "sp-gone"}))
    cluster.wait_condition("needs-sp", "Ready")
    cluster.core.delete_namespaced_secret("sp-gone", "default")
    cluster.delete("needs-sp")
    stalled = wait_for(lambda: (c := cluster.condition("needs-sp", "Stalled")).get("reason") == "SecretNotFound" and c,
                       20, what="deletion blocked on the missing Secret")
    assert "deletionPolicy: Orphan" in stalled["message"]
    assert compute.virtual_machines.get("e2e-rg", "needs-sp"), "the VM was not orphaned silently"
    cluster.patch_spec("needs-sp", {"deletionPolicy": "Orphan"})
    wait_for(lambda: cluster.get("needs-sp") is None, 30, what="released once the user chose Orphan")
    assert compute.virtual_machines.get("e2e-rg", "needs-sp")
