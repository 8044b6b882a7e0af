"""Pure spec -> ARM translation and diff decisions."""

from __future__ import annotations

import copy

import pytest

from azure_vm_operator.api.constants import OWNER_TAG
from azure_vm_operator.api.virtualmachine import SpecError, parse_spec
from azure_vm_operator.azure import infrastructure as infra
from azure_vm_operator.azure import virtualmachine as tr
from azure_vm_operator.azure.machine import power_state
from azure_vm_operator.azure.ownership import Identity, adoption_verdict

ID = Identity("cluster-a", "VirtualMachine", "default", "web-1", "uid-1")
OWNER = ID.owner
LEGACY_OWNER = "cluster-a/default/web-1"  #: the tag value releases before kinds were part of identity wrote
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVx demo@example"
SPEC = {
    "location": "westeurope",
    "resourceGroup": "rg",
    "size": "Standard_B2s",
    "image": {"marketplace": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}},
    "adminUsername": "azureuser",
    "sshPublicKeys": [KEY],
    "tags": {"team": "platform"},
}


def spec(**changes):
    raw = copy.deepcopy(SPEC)
    raw.update(changes)
    return parse_spec(raw, "web-1", "sub-1")


def observed_from(desired_spec):
    """What Azure returns after a PUT of our body (plus fields Azure adds)."""
    body = tr.vm_body(desired_spec, ID, "/subscriptions/sub-1/.../networkInterfaces/web-1-nic")
    body["properties"]["provisioningState"] = "Succeeded"
    body["properties"]["vmId"] = "0000"
    body["properties"]["storageProfile"]["imageReference"]["exactVersion"] = "24.04.202510010"
    return body


def test_defaults_come_from_name_and_operator_config():
    s = spec()
    assert s.azure_name == "web-1"
    assert s.subscription_id == "sub-1"
    assert s.image.marketplace.version == "latest"
    assert s.os_type == "Linux"
    assert s.policies.adoption == "IfTagged" and s.policies.deletion == "Delete"
    assert s.power_state == "Running"
    assert s.vm_id.endswith("/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web-1")


@pytest.mark.parametrize("field, value, message", [
    ("sshPublicKeys", [], "sshPublicKeys"),
    ("powerState", "Hibernated", "powerState"),
    ("image", {}, "exactly one of"),
    ("image", {"imageRef": {"name": ""}}, "imageRef.name is required"),
    ("dataDisks", [{"lun": 1, "sizeGB": 1}, {"lun": 1, "sizeGB": 2}], "each lun"),
    ("priority", "Cheap", "spec.priority"),
])
def test_invalid_specs_explain_what_to_fix(field, value, message):
    with pytest.raises(SpecError, match=message):
        spec(**{field: value})


def test_a_kubernetes_name_that_azure_refuses_needs_azure_name():
    with pytest.raises(SpecError, match="set spec.azureName"):
        parse_spec(SPEC, "x" * 70, "sub-1")
    assert parse_spec({**SPEC, "azureName": "short"}, "x" * 70, "sub-1").azure_name == "short"


def test_missing_subscription_everywhere_is_a_spec_error():
    with pytest.raises(SpecError, match="AZURE_SUBSCRIPTION_ID"):
        parse_spec(SPEC, "web-1", None)


def test_vm_body_carries_ownership_and_user_tags_and_the_keys():
    body = tr.vm_body(spec(), ID, "nic-id")
    assert body["tags"][OWNER_TAG] == OWNER
    assert body["tags"]["team"] == "platform"
    assert body["properties"]["hardwareProfile"]["vmSize"] == "Standard_B2s"
    keys = body["properties"]["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"]
    assert keys == [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": KEY}]
    assert body["properties"]["networkProfile"]["networkInterfaces"][0]["id"] == "nic-id"
    assert "adminPassword" not in body["properties"]["osProfile"]


def test_no_diff_when_azure_matches_the_spec():
    s = spec()
    assert tr.diff_vm(s, ID, observed_from(s)).empty


def test_size_change_is_an_in_place_patch_of_only_the_size():
    observed = observed_from(spec())
    diff = tr.diff_vm(spec(size="Standard_D2s_v5"), ID, observed)
    assert diff.patch == {"properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}}
    assert diff.drifted == ("spec.size",)
    assert not diff.immutable


def test_tag_drift_restores_the_desired_tags():
    observed = observed_from(spec())
    observed["tags"]["added-by-hand"] = "x"
    diff = tr.diff_vm(spec(), ID, observed)
    assert diff.patch["tags"] == tr.vm_tags(spec(), ID)
    assert "added-by-hand" not in diff.patch["tags"]


def test_image_and_user_changes_cannot_be_applied_in_place():
    observed = observed_from(spec())
    changed = spec(image={"marketplace": {"publisher": "Debian", "offer": "debian-12", "sku": "12"}},
                   adminUsername="someoneelse")
    diff = tr.diff_vm(changed, ID, observed)
    assert "spec.image.marketplace.publisher" in diff.immutable
    assert "spec.adminUsername" in diff.immutable


@pytest.mark.parametrize("desired, observed, action", [
    ("Running", "Running", None),
    ("Running", "Stopped", "start"),
    ("Running", "Deallocated", "start"),
    ("Stopped", "Running", "power_off"),
    ("Deallocated", "Running", "deallocate"),
    ("Deallocated", "Stopped", "deallocate"),
    ("Stopped", "Deallocated", "start"),  # allocated again first; the next pass powers it off
    ("Running", "Starting", None),
    ("Running", None, None),
])
def test_power_actions(desired, observed, action):
    assert tr.power_action(desired, observed) == action


def test_power_state_from_instance_view():
    view = {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/deallocated"}]}
    assert power_state(view) == "Deallocated"
    assert power_state({"statuses": []}) is None


def test_nic_body_with_and_without_public_ip():
    s = spec()
    with_pip = infra.nic_body(s.location, {}, "subnet-id", "pip-id")
    assert infra.nic_public_ip_id(with_pip) == "pip-id"
    assert infra.nic_subnet_id(with_pip) == "subnet-id"
    assert infra.nic_public_ip_id(infra.nic_body(s.location, {}, "subnet-id", None)) is None


def test_observed_tags_added_by_azure_policy_can_be_ignored():
    s = spec(ignoreDriftFields=["tags.costCenter"])
    observed = observed_from(s)
    observed["tags"]["costCenter"] = "42"
    assert tr.diff_vm(s, ID, observed).empty
    observed["tags"]["other"] = "x"
    diff = tr.diff_vm(s, ID, observed)
    assert diff.patch["tags"]["costCenter"] == "42" and "other" not in diff.patch["tags"]
    everything = spec(ignoreDriftFields=["tags"])
    assert tr.diff_vm(everything, ID, observed).empty


def test_ignored_size_is_never_patched():
    observed = observed_from(spec())
    assert tr.diff_vm(spec(size="Standard_D4s_v5", ignoreDriftFields=["size"]), ID, observed).empty


@pytest.mark.parametrize("policy, tags, verdict", [
    ("IfTagged", {OWNER_TAG: OWNER}, None),
    ("IfTagged", {OWNER_TAG: OWNER, "azvm-uid": "other-uid"}, None),
    ("IfTagged", {}, "AlreadyExists"),
    ("Never", {OWNER_TAG: OWNER, "azvm-uid": "uid-1"}, None),
    ("Never", {OWNER_TAG: OWNER, "azvm-uid": "other-uid"}, "AlreadyExists"),
    ("Never", {}, "AlreadyExists"),
    ("Always", {}, None),
    ("Always", {OWNER_TAG: "cluster-a/other-ns/web-1"}, "OwnershipConflict"),
    ("IfTagged", {OWNER_TAG: "cluster-b/default/web-1"}, "OwnershipConflict"),
    ("IfTagged", {OWNER_TAG: LEGACY_OWNER}, None),  # tagged by an earlier release: still this VM's own
    ("Never", {OWNER_TAG: LEGACY_OWNER, "azvm-uid": "uid-1"}, None),
    ("IfTagged", {OWNER_TAG: "cluster-a/ScaleSet/default/web-1"}, "OwnershipConflict"),  # same name, other kind
])
def test_adoption_rules(policy, tags, verdict):
    assert adoption_verdict({"tags": tags}, ID, policy) == verdict


def test_identity_includes_the_kind_and_fits_azure_tag_values():
    assert OWNER == "cluster-a/VirtualMachine/default/web-1"
    scale_set = Identity("cluster-a", "ScaleSet", "default", "web-1")
    assert not scale_set.owns({"tags": {OWNER_TAG: OWNER}})
    assert not scale_set.owns({"tags": {OWNER_TAG: LEGACY_OWNER}})  # only VirtualMachines wrote the old format
    assert ID.owns({"tags": {OWNER_TAG: LEGACY_OWNER}})
    long = Identity("c" * 63, "VirtualMachine", "n" * 63, "x" * 253)
    assert len(long.owner) <= 256 and long.owner != Identity("c" * 63, "VirtualMachine", "n" * 63, "x" * 252).owner


def test_a_legacy_ownership_tag_is_rewritten_without_counting_as_drift():
    observed = observed_from(spec())
    observed["tags"][OWNER_TAG] = LEGACY_OWNER
    diff = tr.diff_vm(spec(), ID, observed)
    assert diff.patch == {"tags": tr.vm_tags(spec(), ID)}
    assert diff.drifted == ()


def with_disks(observed, disks):
    observed["properties"]["storageProfile"]["dataDisks"] = [
        {"lun": lun, "name": f"d{lun}", "diskSizeGB": size, "caching": "None",
         "managedDisk": {"id": f"/disks/d{lun}", "storageAccountType": "StandardSSD_LRS"}}
        for lun, size in disks
    ]
    return observed


def test_data_disk_added_grown_and_detached_in_one_patch():
    observed = with_disks(observed_from(spec()), [(0, 100), (1, 50)])
    desired = spec(dataDisks=[{"lun": 0, "sizeGB": 200}, {"lun": 2, "sizeGB": 10}])
    diff = tr.diff_vm(desired, ID, observed)
    disks = diff.patch["properties"]["storageProfile"]["dataDisks"]
    assert [(d["lun"], d["createOption"], d["diskSizeGB"]) for d in disks] == [(0, "Attach", 200), (2, "Empty", 10)]
    assert disks[0]["managedDisk"]["id"] == "/disks/d0"
    assert diff.detached_luns == (1,)
    assert not diff.rejected


def test_data_disk_shrink_is_rejected_with_a_reason():
    observed = with_disks(observed_from(spec()), [(0, 100)])
    diff = tr.diff_vm(spec(dataDisks=[{"lun": 0, "sizeGB": 50}]), ID, observed)
    assert diff.rejected and "cannot shrink" in diff.rejected[0]
    assert "properties" not in diff.patch


def test_unchanged_data_disks_are_not_patched():
    s = spec(dataDisks=[{"lun": 0, "sizeGB": 100}])
    observed = with_disks(observed_from(spec()), [(0, 100)])
    assert tr.diff_vm(s, ID, observed).empty


def test_password_vm_and_windows_and_spot_bodies():
    linux = spec(sshPublicKeys=[], adminPasswordSecretRef={"name": "pw"})
    body = tr.vm_body(linux, ID, tr.VmInputs(nic_id="n", admin_password="Pa55w0rd!!xyz"))
    assert body["properties"]["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is False
    assert "Pa55w0rd" not in repr(tr.VmInputs(nic_id="n", admin_password="Pa55w0rd!!xyz"))
    windows = spec(sshPublicKeys=[], adminPasswordSecretRef={"name": "pw"}, image={"marketplace": {
        "publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter-azure-edition"}})
    assert windows.os_type == "Windows"
    wbody = tr.vm_body(windows, ID, tr.VmInputs(nic_id="n", admin_password="x"))
    assert "windowsConfiguration" in wbody["properties"]["osProfile"]
    assert len(wbody["properties"]["osProfile"]["computerName"]) <= 15
    spot = tr.vm_body(spec(priority="Spot", evictionPolicy="Delete", maxPrice=0.05), ID, "n")
    assert spot["properties"]["priority"] == "Spot"
    assert spot["properties"]["evictionPolicy"] == "Delete"
    assert spot["properties"]["billingProfile"] == {"maxPrice": 0.05}
    zonal = tr.vm_body(spec(zone="2"), ID, "n")
    assert zonal["zones"] == ["2"]


def test_placement_changes_are_immutable():
    observed = observed_from(spec(zone="1"))
    assert "spec.zone" in tr.diff_vm(spec(zone="2"), ID, observed).immutable
    observed = observed_from(spec(availabilitySet="a"))
    assert "spec.availabilitySet" in tr.diff_vm(spec(availabilitySet="b"), ID, observed).immutable


def test_nsg_rules_round_trip():
    s = spec(network={"openPorts": [443, 22]})
    assert s.network.open_ports == (22, 443)
    assert infra.nsg_open_ports(infra.nsg_body(s.location, {}, s.network.open_ports)) == (22, 443)
    priorities = [r["properties"]["priority"] for r in infra.nsg_body(s.location, {}, s.network.open_ports)["properties"]["securityRules"]]
    assert len(set(priorities)) == len(priorities)
