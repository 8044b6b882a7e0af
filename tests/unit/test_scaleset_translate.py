"""ScaleSet: the typed spec, the pure spec -> ARM translation and the decisions built on it."""

from __future__ import annotations

import copy

import pytest

from azure_vm_operator.api.constants import OWNER_TAG
from azure_vm_operator.api.fields import SpecError
from azure_vm_operator.api.scaleset import parse_duration, parse_spec
from azure_vm_operator.azure import scaleset as sst
from azure_vm_operator.azure.ownership import Identity

ID = Identity("c", "ScaleSet", "default", "web", "uid-1")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVx demo@example"
SPEC = {
    "location": "westeurope", "resourceGroup": "rg", "size": "Standard_B2s", "adminUsername": "azureuser",
    "image": {"marketplace": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}},
    "sshPublicKeys": [KEY], "replicas": 3, "tags": {"team": "web"},
}
LB = {"enabled": True, "rules": [{"name": "http", "frontendPort": 80, "backendPort": 8080}],
      "probe": {"protocol": "Http", "port": 8080, "path": "/healthz"}}
SUBNET = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
NSG = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/web-vmss-nsg"


def spec(**changes):
    raw = copy.deepcopy(SPEC)
    raw.update(changes)
    return parse_spec(raw, "web", "sub")


def observed(s, capacity=3):
    """What Azure returns after our PUT (plus what Azure adds)."""
    body = sst.scale_set_body(s, ID, sst.Inputs(SUBNET, NSG if s.load_balancer.enabled else None), capacity)
    body["properties"]["provisioningState"] = "Succeeded"
    return body


def test_defaults_and_validation():
    s = spec()
    assert (s.upgrade_mode, s.scale_in_policy, s.rollout.max_unavailable, s.power_state) == \
        ("Manual", "Default", 1, "Running")
    assert spec(replicas=None).replicas is None
    with pytest.raises(SpecError, match="at least one rule"):
        spec(loadBalancer={"enabled": True})
    with pytest.raises(SpecError, match="Rolling needs a health signal"):
        spec(upgradePolicy={"mode": "Rolling"})
    with pytest.raises(SpecError, match="same protocol and frontendPort"):
        spec(loadBalancer={"enabled": True, "rules": [{"name": "a", "frontendPort": 80, "backendPort": 1},
                                                      {"name": "b", "frontendPort": 80, "backendPort": 2}]})
    assert spec(loadBalancer=LB).load_balancer.probe.path == "/healthz"
    assert spec(loadBalancer={**LB, "probe": {}}).load_balancer.probe.port == 8080  # the first rule's backend
    assert parse_duration("1h30m", "x") == 5400 and parse_duration("45s", "x") == 45
    with pytest.raises(SpecError):
        parse_duration("soon", "spec.rollout.pauseBetweenBatches")


def test_body_is_uniform_with_capacity_pool_probe_and_ownership():
    s = spec(loadBalancer=LB, zones=["2", "1"])
    body = sst.scale_set_body(s, ID, sst.Inputs(SUBNET, NSG), 3)
    assert body["sku"] == {"name": "Standard_B2s", "tier": "Standard", "capacity": 3}
    assert body["zones"] == ["1", "2"] and body["tags"][OWNER_TAG] == "c/ScaleSet/default/web"
    profile = body["properties"]["virtualMachineProfile"]
    assert body["properties"]["orchestrationMode"] == "Uniform"
    assert profile["osProfile"]["computerNamePrefix"] == "web"
    nic = profile["networkProfile"]["networkInterfaceConfigurations"][0]["properties"]
    pool = nic["ipConfigurations"][0]["properties"]["loadBalancerBackendAddressPools"][0]["id"]
    assert pool.endswith("/loadBalancers/web-lb/backendAddressPools/backend")
    assert nic["networkSecurityGroup"]["id"] == NSG
    assert profile["networkProfile"]["healthProbe"]["id"].endswith("/loadBalancers/web-lb/probes/probe")
    assert "deleteOption" not in profile["storageProfile"]["osDisk"]


def test_load_balancer_body_and_its_diff():
    s = spec(loadBalancer=LB)
    lb = sst.load_balancer_body(s, ID, "pip-id", SUBNET)
    rule = lb["properties"]["loadBalancingRules"][0]["properties"]
    assert (rule["frontendPort"], rule["backendPort"], rule["protocol"]) == (80, 8080, "Tcp")
    assert lb["properties"]["frontendIPConfigurations"][0]["properties"] == {"publicIPAddress": {"id": "pip-id"}}
    assert not sst.load_balancer_differs(s, lb)
    changed = spec(loadBalancer={**LB, "rules": [{"name": "http", "frontendPort": 443, "backendPort": 8080}]})
    assert sst.load_balancer_differs(changed, lb)
    private = sst.load_balancer_body(spec(loadBalancer={**LB, "public": False}), ID, None, SUBNET)
    assert private["properties"]["frontendIPConfigurations"][0]["properties"]["subnet"] == {"id": SUBNET}


def test_no_diff_when_azure_matches():
    s = spec()
    diff = sst.diff_scale_set(s, ID, observed(s), SUBNET, None)
    assert diff.patch == {} and not diff.drifted and not diff.immutable


def test_model_changes_never_carry_capacity():
    s = spec()
    diff = sst.diff_scale_set(spec(size="Standard_D2s_v5", userData="v2"), ID, observed(s), SUBNET, None)
    assert set(diff.model) == {"spec.size", "spec.userData"}
    assert "capacity" not in diff.patch.get("sku", {})
    assert sst.capacity_patch(5) == {"sku": {"capacity": 5}}


def test_tag_and_policy_changes_are_settings_not_model():
    s = spec()
    diff = sst.diff_scale_set(spec(tags={"team": "api"}, scaleInPolicy="NewestVM"), ID, observed(s), SUBNET, None)
    assert diff.model == () and set(diff.settings) == {"spec.tags", "spec.scaleInPolicy"}
    assert diff.patch["properties"]["scaleInPolicy"] == {"rules": ["NewestVM"]}


def test_enabling_the_load_balancer_changes_the_model():
    s = spec()
    diff = sst.diff_scale_set(spec(loadBalancer=LB), ID, observed(s), SUBNET, NSG)
    assert diff.model == ("spec.loadBalancer",)


def test_placement_is_immutable_and_disks_never_shrink():
    s = spec(zones=["1"], dataDisks=[{"lun": 0, "sizeGB": 100}])
    diff = sst.diff_scale_set(spec(zones=["1", "2"], dataDisks=[{"lun": 0, "sizeGB": 50}]), ID, observed(s),
                              SUBNET, None)
    assert "spec.zones" in diff.immutable
    assert diff.rejected and "cannot shrink" in diff.rejected[0]


def vm(instance_id, power="running", latest=True, state="Succeeded", health=None, protected=False):
    view = {"statuses": [{"code": f"ProvisioningState/{state.lower()}"}, {"code": f"PowerState/{power}"}]}
    if health:
        view["vmHealth"] = {"status": {"code": f"HealthState/{health}"}}
    return {"instanceId": str(instance_id), "name": f"web_{instance_id}",
            "properties": {"provisioningState": state, "latestModelApplied": latest, "instanceView": view,
                           "protectionPolicy": {"protectFromScaleIn": protected}}}


def test_a_zero_capacity_read_while_instances_exist_is_suspect():
    assert sst.capacity_suspect({"sku": {"capacity": 0}}, [vm(0), vm(1)])
    assert sst.capacity_suspect({"sku": {}}, [vm(0)])
    assert not sst.capacity_suspect({"sku": {"capacity": 0}}, [])
    assert not sst.capacity_suspect({"sku": {"capacity": 0}}, [vm(0, state="Deleting")])
    assert not sst.capacity_suspect({"sku": {"capacity": 2}}, [vm(0), vm(1)])


def test_desired_capacity_keeps_azures_count_when_replicas_is_unset():
    assert sst.desired_capacity(spec(replicas=None), 7) == 7
    assert sst.desired_capacity(spec(replicas=None), None) == 1
    assert sst.desired_capacity(spec(replicas=2), 7) == 2


def test_rollout_batches_respect_max_unavailable_and_take_broken_instances_first():
    fleet = sst.live_instances([vm(0, latest=False), vm(1, latest=False), vm(2, latest=False), vm(3)])
    assert [i.instance_id for i in sst.next_batch(fleet, 2)] == ["0", "1"]
    degraded = sst.live_instances([vm(0, latest=False), vm(1, latest=False, health="unhealthy"), vm(2)])
    assert [i.instance_id for i in sst.next_batch(degraded, 1)] == ["1"]
    busy = sst.live_instances([vm(0, latest=False), vm(1, power="starting")])
    assert sst.next_batch(busy, 1) == []


def test_instances_read_health_and_protection():
    inst = sst.instance(vm(4, health="unhealthy", protected=True))
    assert (inst.instance_id, inst.protected, inst.ready) == ("4", True, False)
    assert sst.instance(vm(5)).ready and sst.instance(vm(5)).to_status()["healthy"]


@pytest.mark.parametrize("desired, powers, action", [
    ("Running", ["running", "running"], None),
    ("Running", ["running", "deallocated"], "start"),
    ("Deallocated", ["running", "stopped"], "deallocate"),
    ("Stopped", ["running"], "power_off"),
    ("Stopped", ["deallocated"], "start"),
    ("Running", ["starting"], None),
])
def test_set_power_actions(desired, powers, action):
    fleet = sst.live_instances([vm(i, power=p) for i, p in enumerate(powers)])
    assert sst.set_power_action(desired, fleet) == action
