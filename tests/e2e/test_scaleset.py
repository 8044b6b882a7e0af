"""ScaleSet end to end: the operator (Kopf) against the Kubernetes API and the Azure emulator, as a user drives it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from e2e_helpers import SSH_KEY, Cluster, wait_for

from azure_vm_operator.api.constants import GROUP, OWNER_TAG, SCALESET_PLURAL, VERSION

RG = "ss-rg"


def scale_set_manifest(name: str, namespace: str = "default", **spec_changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "location": "westeurope",
        "resourceGroup": RG,
        "size": "Standard_B2s",
        "image": {"marketplace": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                  "sku": "22_04-lts-gen2"}},
        "adminUsername": "azureuser",
        "sshPublicKeys": [SSH_KEY],
        "replicas": 2,
        "tags": {"team": "platform"},
    }
    spec.update(copy.deepcopy(spec_changes))
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ScaleSet",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


WEB_LB = {"enabled": True, "rules": [{"name": "http", "frontendPort": 80, "backendPort": 8080}],
          "probe": {"protocol": "Http", "port": 8080, "path": "/healthz"}}


@pytest.fixture
def sets(env) -> Cluster:
    return Cluster(env.kube_api_client(), SCALESET_PLURAL)


def vmss(compute: ComputeManagementClient, name: str) -> dict[str, Any]:
    return compute.virtual_machine_scale_sets.get(RG, name).as_dict()


def instances(compute: ComputeManagementClient, name: str) -> list[dict[str, Any]]:
    return [i.as_dict() for i in compute.virtual_machine_scale_set_vms.list(RG, name)]


def capacity_writes(env, name: str) -> list[dict[str, Any]]:
    return [r for r in env.arm_requests() if r["method"] in ("PATCH", "PUT")
            and r["path"].lower().endswith(f"/virtualmachinescalesets/{name}")]


def test_create_without_load_balancer_scale_and_delete(env, operator, sets, compute, network):
    sets.apply(scale_set_manifest("plain"))
    ready = sets.wait_condition("plain", "Ready", timeout=60)
    assert "2/2 ready" in ready["message"]
    status = sets.get("plain")["status"]
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (2, 2, 2)
    assert status["selector"] == "compute.azvm.io/scaleset=plain"
    assert len(status["instances"]) == 2 and all(i["powerState"] == "Running" for i in status["instances"])
    azure = vmss(compute, "plain")
    assert azure["sku"]["capacity"] == 2 and azure["properties"]["orchestrationMode"] == "Uniform"
    assert azure["tags"][OWNER_TAG] == "test-cluster/ScaleSet/default/plain"
    assert "plain-lb" not in [lb.name for lb in network.load_balancers.list(RG)]

    env.clear_arm_requests()
    sets.patch_spec("plain", {"replicas": 4})
    sets.wait_condition("plain", "Ready", timeout=60)
    assert len(instances(compute, "plain")) == 4
    writes = capacity_writes(env, "plain")
    assert [(w["method"], w["body_paths"]) for w in writes] == [("PATCH", ["sku.capacity"])]  # capacity only
    events = [e.reason for e in sets.events("plain")]
    assert "Scaled" in events

    sets.delete("plain")
    wait_for(lambda: sets.get("plain") is None, 60, what="the ScaleSet gone")
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_scale_sets.get(RG, "plain")


def test_load_balanced_scale_set_pool_holds_exactly_the_instances(env, operator, sets, compute, network):
    sets.apply(scale_set_manifest("web", replicas=3, loadBalancer=WEB_LB))
    sets.wait_condition("web", "Ready", timeout=60)
    lb = network.load_balancers.get(RG, "web-lb").as_dict()
    assert [r["name"] for r in lb["properties"]["loadBalancingRules"]] == ["http"]
    assert lb["properties"]["probes"][0]["properties"]["requestPath"] == "/healthz"
    pool = lb["properties"]["backendAddressPools"][0]["properties"].get("backendIPConfigurations") or []
    assert len(pool) == 3
    nsg = network.network_security_groups.get(RG, "web-vmss-nsg").as_dict()
    assert [r["properties"]["destinationPortRange"] for r in nsg["properties"]["securityRules"]] == ["8080"]
    status = sets.get("web")["status"]
    pip = network.public_ip_addresses.get(RG, "web-lb-pip").as_dict()
    assert status["loadBalancer"]["ip"] == pip["properties"]["ipAddress"]
    assert status["loadBalancer"]["backendPoolSize"] == 3

    sets.patch_spec("web", {"replicas": 1})
    sets.wait_condition("web", "Ready", timeout=60)
    wait_for(lambda: sets.get("web")["status"]["loadBalancer"]["backendPoolSize"] == 1, 30,
             what="the pool follows the instances")

    sets.delete("web")
    wait_for(lambda: sets.get("web") is None, 60, what="the ScaleSet gone")
    assert not [x.name for x in network.load_balancers.list(RG) if x.name == "web-lb"]
    assert not [x.name for x in network.public_ip_addresses.list(RG) if x.name == "web-lb-pip"]
    assert not [x.name for x in network.network_security_groups.list(RG) if x.name == "web-vmss-nsg"]


def test_scale_subresource(env, operator, sets, compute):
    sets.apply(scale_set_manifest("scaled", replicas=1))
    sets.wait_condition("scaled", "Ready", timeout=60)
    scale = sets.custom.get_namespaced_custom_object_scale(GROUP, VERSION, "default", SCALESET_PLURAL, "scaled")
    assert scale["spec"]["replicas"] == 1 and scale["status"]["selector"] == "compute.azvm.io/scaleset=scaled"
    sets.custom.patch_namespaced_custom_object_scale(GROUP, VERSION, "default", SCALESET_PLURAL, "scaled",
                                                     {"spec": {"replicas": 3}})
    sets.wait_condition("scaled", "Ready", timeout=60)
    assert len(instances(compute, "scaled")) == 3
    scale = sets.custom.get_namespaced_custom_object_scale(GROUP, VERSION, "default", SCALESET_PLURAL, "scaled")
    assert scale["status"]["replicas"] == 3


def upgrades(env, name: str) -> list[dict[str, Any]]:
    return [r for r in env.arm_requests() if r["method"] == "POST"
            and r["path"].lower().endswith(f"/virtualmachinescalesets/{name}/manualupgrade")]


def test_manual_rollout_in_batches_and_a_tag_change_starts_none(env, operator, sets, compute):
    sets.apply(scale_set_manifest("rolling", replicas=3, rollout={"maxUnavailable": 2}))
    sets.wait_condition("rolling", "Ready", timeout=60)
    env.clear_arm_requests()
    sets.patch_spec("rolling", {"tags": {"team": "web"}})
    wait_for(lambda: vmss(compute, "rolling")["tags"].get("team") == "web", 30, what="the tag in Azure")
    sets.wait_condition("rolling", "Ready", timeout=30)
    assert upgrades(env, "rolling") == [] and all(i["properties"]["latestModelApplied"] for i in instances(compute, "rolling"))

    sets.patch_spec("rolling", {"size": "Standard_D2s_v5"})
    ready = sets.wait_condition("rolling", "Ready", timeout=60)
    assert vmss(compute, "rolling")["sku"]["name"] == "Standard_D2s_v5"
    assert all(i["properties"]["latestModelApplied"] for i in instances(compute, "rolling"))
    batches = upgrades(env, "rolling")
    assert len(batches) == 2, batches  # 3 outdated instances, at most 2 at a time
    status = sets.get("rolling")["status"]
    assert status["updatedReplicas"] == 3 and status["rollout"]["state"] == "Idle", ready
    assert [e.reason for e in sets.events("rolling")].count("RolloutBatch") == 2


def test_a_failing_rollout_batch_stops_the_rollout_until_the_spec_changes(env, operator, sets, compute):
    sets.apply(scale_set_manifest("doomed", replicas=2))
    sets.wait_condition("doomed", "Ready", timeout=60)
    env.inject_fault(method="POST", path="(?i)virtualMachineScaleSets/doomed/manualupgrade$", count=1,
                     lro_failure={"code": "VMExtensionProvisioningError", "message": "the new image does not boot"})
    env.clear_arm_requests()
    sets.patch_spec("doomed", {"userData": "v2"})
    stalled = sets.wait_condition("doomed", "Stalled", timeout=60)
    assert stalled["reason"] == "RolloutBatchFailed" and "does not boot" in stalled["message"]
    assert sets.get("doomed")["status"]["rollout"]["state"] == "Failed"
    assert len(upgrades(env, "doomed")) == 1  # the second batch never started
    sets.patch_spec("doomed", {"userData": "v3"})  # a new model: the rollout starts again
    sets.wait_condition("doomed", "Ready", timeout=60)
    assert all(i["properties"]["latestModelApplied"] for i in instances(compute, "doomed"))


def test_automatic_upgrade_is_left_to_azure(env, operator, sets, compute):
    sets.apply(scale_set_manifest("auto", upgradePolicy={"mode": "Automatic"}))
    sets.wait_condition("auto", "Ready", timeout=60)
    env.clear_arm_requests()
    sets.patch_spec("auto", {"userData": "new"})
    sets.wait_condition("auto", "Ready", timeout=60)
    wait_for(lambda: all(i["properties"]["latestModelApplied"] for i in instances(compute, "auto")), 30,
             what="Azure upgraded every instance")
    assert upgrades(env, "auto") == []


def test_scale_in_honours_policy_and_protection(env, operator, sets, compute):
    sets.apply(scale_set_manifest("guarded", replicas=3, scaleInPolicy="OldestVM", protectedInstances=["0"]))
    sets.wait_condition("guarded", "Ready", timeout=60)
    wait_for(lambda: [i["instanceId"] for i in instances(compute, "guarded")
                      if (i["properties"].get("protectionPolicy") or {}).get("protectFromScaleIn")] == ["0"], 30,
             what="instance 0 protected")
    sets.patch_spec("guarded", {"replicas": 1})
    sets.wait_condition("guarded", "Ready", timeout=60)
    assert [i["instanceId"] for i in instances(compute, "guarded")] == ["0"]  # OldestVM, but 0 is protected
    assert sets.get("guarded")["status"]["instances"][0]["protected"] is True
    sets.patch_spec("guarded", {"replicas": 0})
    stalled = sets.wait_condition("guarded", "Stalled", timeout=30)
    assert stalled["reason"] == "ScaleInBlockedByProtection"


def test_power_states_for_the_whole_set(env, operator, sets, compute):
    sets.apply(scale_set_manifest("sleepy"))
    sets.wait_condition("sleepy", "Ready", timeout=60)
    sets.patch_spec("sleepy", {"powerState": "Deallocated"})
    sets.wait_condition("sleepy", "Ready", timeout=60)
    assert {i["powerState"] for i in sets.get("sleepy")["status"]["instances"]} == {"Deallocated"}
    assert sets.get("sleepy")["status"]["printableStatus"] == "Deallocated"
    sets.patch_spec("sleepy", {"powerState": "Running"})
    sets.wait_condition("sleepy", "Ready", timeout=60)
    assert {i["powerState"] for i in sets.get("sleepy")["status"]["instances"]} == {"Running"}


@pytest.mark.parametrize("policy, expect", [("Correct", 2), ("Report", 4)])
def test_capacity_changed_in_azure_is_corrected_or_reported(env, sets, compute, policy, expect):
    env.start_operator(resync_interval=1.0)
    sets.apply(scale_set_manifest("drifty", driftPolicy=policy))
    sets.wait_condition("drifty", "Ready", timeout=60)
    compute.virtual_machine_scale_sets.begin_update(RG, "drifty", {"sku": {"capacity": 4}}).result()
    wait_for(lambda: any("spec.replicas" in f for f in (sets.get("drifty")["status"].get("drift") or {})
                         .get("fields", [])), 30, what="the capacity change seen as drift")
    wait_for(lambda: vmss(compute, "drifty")["sku"]["capacity"] == expect, 30, what=f"capacity {expect}")
    if policy == "Correct":
        sets.wait_condition("drifty", "Ready", timeout=30)
    assert vmss(compute, "drifty")["sku"]["capacity"] == expect


def test_a_suspect_capacity_read_never_scales_down(env, operator, sets, compute):
    sets.apply(scale_set_manifest("careful", replicas=3))
    sets.wait_condition("careful", "Ready", timeout=60)
    bad = vmss(compute, "careful")
    bad["sku"]["capacity"] = 0
    # The bad answer, wherever the operator reads the set: its own GET, or the group's listing.
    rules = [env.inject_fault(method="GET", path="virtualMachineScaleSets/careful$", status=200, body=bad, count=5),
             env.inject_fault(method="GET", path=f"resourceGroups/{RG}/providers/Microsoft.Compute/"
                                                 "virtualMachineScaleSets$", status=200, body={"value": [bad]},
                              count=5)]
    env.clear_arm_requests()
    sets.annotate("careful", {"compute.azvm.io/reconcile-requested-at": "now"})
    wait_for(lambda: "SuspectCapacityRead" in [e.reason for e in sets.events("careful")], 30,
             what="the suspect read reported")
    assert capacity_writes(env, "careful") == []
    for rule in rules:
        env.admin(lambda a, rule=rule: a.remove_fault(rule))
    sets.wait_condition("careful", "Ready", timeout=30)
    assert len(instances(compute, "careful")) == 3 and capacity_writes(env, "careful") == []


def test_orphan_and_ownership_conflict(env, operator, sets, compute):
    sets.apply(scale_set_manifest("kept", deletionPolicy="Orphan", replicas=1))
    sets.wait_condition("kept", "Ready", timeout=60)
    sets.delete("kept")
    wait_for(lambda: sets.get("kept") is None, 30, what="the ScaleSet released")
    assert vmss(compute, "kept")["sku"]["capacity"] == 1

    other = Cluster(env.kube_api_client(), SCALESET_PLURAL)
    other.core.create_namespace({"metadata": {"name": "team-b"}})
    other.apply(scale_set_manifest("kept", namespace="team-b", replicas=1))
    stalled = other.wait_condition("kept", "Stalled", namespace="team-b", timeout=30)
    assert stalled["reason"] == "OwnershipConflict" and "test-cluster/ScaleSet/default/kept" in stalled["message"]


def test_metrics_for_scaling_decisions(env, sets, compute):
    from prometheus_client import REGISTRY

    env.start_operator(resync_interval=1.0)
    sets.apply(scale_set_manifest("busy", replicas=2))
    sets.wait_condition("busy", "Ready", timeout=60)
    scale_set_id = vmss(compute, "busy")["id"]
    env.admin(lambda admin: admin.set_load(scale_set_id, 73.0))
    labels = {"namespace": "default", "name": "busy"}
    wait_for(lambda: abs((REGISTRY.get_sample_value("azvm_scaleset_cpu_percent", labels) or 0) - 73.0) < 5, 30,
             what="Azure Monitor's CPU of the set on /metrics")
    for state, value in (("desired", 2), ("current", 2), ("ready", 2), ("updated", 2)):
        assert REGISTRY.get_sample_value("azvm_scaleset_replicas", {**labels, "state": state}) == value
    assert REGISTRY.get_sample_value("azvm_scaleset_instances", {**labels, "power_state": "Running"}) == 2
    sets.delete("busy")
    wait_for(lambda: REGISTRY.get_sample_value("azvm_scaleset_replicas", {**labels, "state": "current"}) is None,
             30, what="the series dropped with the resource")


def test_an_upgraded_batch_that_stays_unhealthy_stops_the_rollout(env, operator, sets, compute):
    sets.apply(scale_set_manifest("flaky", replicas=2, loadBalancer=WEB_LB,
                                  rollout={"maxUnavailable": 1, "batchHealthTimeout": "2s"}))
    sets.wait_condition("flaky", "Ready", timeout=60)
    scale_set_id = vmss(compute, "flaky")["id"]
    env.admin(lambda admin: admin.set_health(f"{scale_set_id}/virtualMachines/1", False))
    wait_for(lambda: sets.get("flaky")["status"]["readyReplicas"] == 1, 30, what="the probe-unhealthy instance seen")
    env.clear_arm_requests()
    sets.patch_spec("flaky", {"userData": "v2"})
    stalled = sets.wait_condition("flaky", "Stalled", timeout=60)
    assert stalled["reason"] == "RolloutBatchFailed" and "not healthy" in stalled["message"]
    assert len(upgrades(env, "flaky")) == 1  # instance 1 (already unhealthy) first; 0 was never taken down
    outdated = [i["instanceId"] for i in instances(compute, "flaky") if not i["properties"]["latestModelApplied"]]
    assert outdated == ["0"]
    env.admin(lambda admin: admin.set_health(f"{scale_set_id}/virtualMachines/1", True))
    sets.patch_spec("flaky", {"userData": "v3"})  # fixed: a new model rolls out again
    sets.wait_condition("flaky", "Ready", timeout=60)


def test_rolling_upgrade_is_azures_and_a_restart_runs_once_per_value(env, operator, sets, compute):
    sets.apply(scale_set_manifest("roller", replicas=2, loadBalancer=WEB_LB,
                                  upgradePolicy={"mode": "Rolling", "rolling": {"maxBatchInstancePercent": 50}}))
    sets.wait_condition("roller", "Ready", timeout=60)
    policy = vmss(compute, "roller")["properties"]["upgradePolicy"]
    assert policy["mode"] == "Rolling" and policy["rollingUpgradePolicy"]["maxBatchInstancePercent"] == 50
    env.clear_arm_requests()
    sets.patch_spec("roller", {"userData": "v2"})
    wait_for(lambda: all(i["properties"]["latestModelApplied"] for i in instances(compute, "roller")), 60,
             what="Azure rolled the new model out")
    sets.wait_condition("roller", "Ready", timeout=60)
    assert upgrades(env, "roller") == []  # Azure's rollout, not the operator's

    restarts = lambda: [r for r in env.arm_requests() if r["method"] == "POST"  # noqa: E731
                        and r["path"].lower().endswith("/virtualmachinescalesets/roller/restart")]
    sets.annotate("roller", {"compute.azvm.io/restart-requested-at": "2026-12-03T10:00"})
    wait_for(lambda: sets.get("roller")["status"].get("lastRestartRequest") == "2026-12-03T10:00", 30,
             what="the restart recorded")
    wait_for(lambda: "Restarted" in [e.reason for e in sets.events("roller")], 30, what="the Restarted event")
    seen = sets.get("roller")["status"]["lastObservedTime"]
    sets.annotate("roller", {"compute.azvm.io/reconcile-requested-at": "again"})
    wait_for(lambda: sets.get("roller")["status"]["lastObservedTime"] != seen, 20, what="another pass")
    assert len(restarts()) == 1


def test_password_and_custom_data_from_secrets_never_leak(env, operator, sets, compute, caplog):
    import base64
    import logging

    import prometheus_client

    caplog.set_level(logging.DEBUG)
    password, cloud_init = "Xv4#pQ8!mRt2Lz", "#cloud-config\nruncmd: [echo s3cr3t-t0ken-42]"
    for name, key, value in (("ss-admin", "password", password), ("ss-init", "customData", cloud_init)):
        sets.core.create_namespaced_secret("default", {"metadata": {"name": name},
                                                       "data": {key: base64.b64encode(value.encode()).decode()}})
    sets.apply(scale_set_manifest("secretive", sshPublicKeys=None, adminPasswordSecretRef={"name": "ss-admin"},
                                  customDataSecretRef={"name": "ss-init"}))
    sets.wait_condition("secretive", "Ready", timeout=60)
    profile = vmss(compute, "secretive")["properties"]["virtualMachineProfile"]["osProfile"]
    assert profile["linuxConfiguration"]["disablePasswordAuthentication"] is False
    captured = [repr(sets.get("secretive")), repr(sets.events("secretive")), caplog.text,
                prometheus_client.generate_latest().decode(), repr(env.arm_requests())]
    secrets = [password, "s3cr3t-t0ken-42", base64.b64encode(password.encode()).decode(),
               base64.b64encode(cloud_init.encode()).decode()]
    assert not [s for s in secrets for c in captured if s in c]
