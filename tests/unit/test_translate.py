"""Pure spec -> ARM translation and diff decisions."""

from __future__ import annotations

import copy

import pytest

from azure_vm_operator.api.constants import OWNER_TAG
from azure_vm_operator.api.virtualmachine import SpecError, parse_spec
from azure_vm_operator.azure import translate as tr

OWNER = "cluster-a/default/web-1"
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
    body = tr.vm_body(desired_spec, OWNER, "/subscriptions/sub-1/.../networkInterfaces/web-1-nic")
    body["properties"]["provisioningState"] = "Succeeded"
    body["properties"]["vmId"] = "0000"
    body["properties"]["storageProfile"]["imageReference"]["exactVersion"] = "24.04.202510010"
    return body


def test_defaults_come_from_name_and_operator_config():
    s = spec()
    assert s.azure_name == "web-1"
    assert s.subscription_id == "sub-1"
    assert s.image.version == "latest"
    assert s.power_state == "Running"
    assert s.vm_id.endswith("/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web-1")


@pytest.mark.parametrize("field, value, message", [
    ("sshPublicKeys", [], "sshPublicKeys"),
    ("powerState", "Hibernated", "powerState"),
    ("image", {}, "image.marketplace"),
])
def test_invalid_specs_explain_what_to_fix(field, value, message):
    with pytest.raises(SpecError, match=message):
        spec(**{field: value})


def test_missing_subscription_everywhere_is_a_spec_error():
    with pytest.raises(SpecError, match="AZURE_SUBSCRIPTION_ID"):
        parse_spec(SPEC, "web-1", None)


def test_vm_body_carries_ownership_and_user_tags_and_the_keys():
    body = tr.vm_body(spec(), OWNER, "nic-id")
    assert body["tags"][OWNER_TAG] == OWNER
    assert body["tags"]["team"] == "platform"
    assert body["properties"]["hardwareProfile"]["vmSize"] == "Standard_B2s"
    keys = body["properties"]["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"]
    assert keys == [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": KEY}]
    assert body["properties"]["networkProfile"]["networkInterfaces"][0]["id"] == "nic-id"
    assert "adminPassword" not in body["properties"]["osProfile"]


def test_no_diff_when_azure_matches_the_spec():
    s = spec()
    assert tr.diff_vm(s, OWNER, observed_from(s)).empty


def test_size_change_is_an_in_place_patch_of_only_the_size():
    observed = observed_from(spec())
    diff = tr.diff_vm(spec(size="Standard_D2s_v5"), OWNER, observed)
    assert diff.patch == {"properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}}
    assert diff.drifted == ("spec.size",)
    assert not diff.immutable


def test_tag_drift_restores_the_desired_tags():
    observed = observed_from(spec())
    observed["tags"]["added-by-hand"] = "x"
    diff = tr.diff_vm(spec(), OWNER, observed)
    assert diff.patch["tags"] == tr.owned_tags(spec(), OWNER)
    assert "added-by-hand" not in diff.patch["tags"]


def test_image_and_user_changes_cannot_be_applied_in_place():
    observed = observed_from(spec())
    changed = spec(image={"marketplace": {"publisher": "Debian", "offer": "debian-12", "sku": "12"}},
                   adminUsername="someoneelse")
    diff = tr.diff_vm(changed, OWNER, observed)
    assert "spec.image.marketplace.publisher" in diff.immutable
    assert "spec.adminUsername" in diff.immutable


@pytest.mark.parametrize("desired, observed, action", [
    ("Running", "Running", None),
    ("Running", "Stopped", "start"),
    ("Running", "Deallocated", "start"),
    ("Stopped", "Running", "power_off"),
    ("Deallocated", "Running", "deallocate"),
    ("Deallocated", "Stopped", "deallocate"),
    ("Stopped", "Deallocated", None),  # powerOff of a deallocated VM is meaningless; it stays deallocated
    ("Running", "Starting", None),
    ("Running", None, None),
])
def test_power_actions(desired, observed, action):
    assert tr.power_action(desired, observed) == action


def test_power_state_from_instance_view():
    view = {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/deallocated"}]}
    assert tr.power_state(view) == "Deallocated"
    assert tr.power_state({"statuses": []}) is None


def test_nic_body_with_and_without_public_ip():
    s = spec()
    with_pip = tr.nic_body(s, OWNER, "subnet-id", "pip-id")
    assert tr.nic_public_ip_id(with_pip) == "pip-id"
    assert tr.nic_subnet_id(with_pip) == "subnet-id"
    assert tr.nic_public_ip_id(tr.nic_body(s, OWNER, "subnet-id", None)) is None
