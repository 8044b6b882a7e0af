"""Zones, Spot, passwords, userData/customData, etags, redeploy/reimage/generalize and NSG rules."""

from __future__ import annotations

import base64
import copy
import logging

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.mgmt.compute.models import VirtualMachineUpdate
from compute_helpers import Net, create_vm, power_state, raw, storage
from emulator_helpers import LOCATION, Arm

WINDOWS = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter-g2",
           "version": "latest"}
GOOD_PASSWORD = "Correct-Horse-7-Battery"


async def test_zones(arm: Arm) -> None:
    net = await Net.create(arm)
    body = await net.body(zones=["2"])
    vm = await create_vm(arm, "rg", "vm1", body)
    assert vm.zones == ["2"]
    osd = await arm.compute.disks.get("rg", vm.storage_profile.os_disk.name)
    assert osd.zones == ["2"]  # a zonal VM's disks are in its zone

    with pytest.raises(ResourceExistsError) as moved:
        await (await arm.compute.virtual_machines.begin_update("rg", "vm1", VirtualMachineUpdate(zones=["3"]))).result()
    assert moved.value.error.code == "PropertyChangeNotAllowed" and moved.value.error.target == "zones"

    bad = await net.body(zones=["4"])
    with pytest.raises(HttpResponseError) as unknown_zone:
        await create_vm(arm, "rg", "vm2", bad)
    assert unknown_zone.value.status_code == 400 and unknown_zone.value.error.code == "AvailabilityZoneNotSupported"
    assert unknown_zone.value.error.message.endswith("The supported zones for location 'westeurope' are '1,2,3'")
    bad.update(location="westcentralus", zones=["1"])
    with pytest.raises(HttpResponseError) as no_zones:
        await create_vm(arm, "rg", "vm2", bad)
    assert no_zones.value.error.code == "AvailabilityZoneNotSupported"
    assert no_zones.value.error.message.endswith("location 'westcentralus' are ''")


async def test_spot_settings_and_eviction(arm: Arm) -> None:
    net = await Net.create(arm)
    body = await net.body(size="Standard_D2s_v5")
    body["properties"].update(priority="Spot", billingProfile={"maxPrice": 0.25})
    vm = await create_vm(arm, "rg", "spot", body)
    assert vm.priority == "Spot" and vm.eviction_policy == "Deallocate" and vm.billing_profile.max_price == 0.25
    with pytest.raises(ResourceExistsError) as price:
        await (await arm.compute.virtual_machines.begin_update(
            "rg", "spot", VirtualMachineUpdate(billing_profile={"maxPrice": 0.5}))).result()
    assert price.value.error.code == "OperationNotAllowed" and "not deallocated" in price.value.error.message
    assert (await arm.admin.evict_vm(vm.id))["result"] == "deallocated"
    assert power_state(await arm.compute.virtual_machines.instance_view("rg", "spot")) == "PowerState/deallocated"
    vm = await (await arm.compute.virtual_machines.begin_update(
        "rg", "spot", VirtualMachineUpdate(billing_profile={"maxPrice": -1}))).result()
    assert vm.billing_profile.max_price == -1

    regular = await create_vm(arm, "rg", "regular", await net.body())
    with pytest.raises(Exception, match="HTTP 400.*only Spot virtual machines can be evicted"):
        await arm.admin.evict_vm(regular.id)

    for change, target in (
        ({"priority": "Spot", "billingProfile": {"maxPrice": 0}}, "billingProfile.maxPrice"),
        ({"priority": "Urgent"}, "priority"),
        ({"evictionPolicy": "Delete"}, "evictionPolicy"),
        ({"priority": "Spot", "evictionPolicy": "Hibernate"}, "evictionPolicy"),
    ):
        bad = await net.body()
        bad["properties"].update(change)
        with pytest.raises(HttpResponseError) as exc_info:
            await create_vm(arm, "rg", "bad", bad)
        assert exc_info.value.status_code == 400 and exc_info.value.error.target == target

    body = await net.body()
    body["properties"].update(priority="Spot", evictionPolicy="Delete")
    storage(body)["dataDisks"] = [{"lun": 0, "createOption": "Empty", "diskSizeGB": 8}]
    doomed = await create_vm(arm, "rg", "doomed", body)
    assert (await arm.admin.evict_vm(doomed.id))["result"] == "deleted"
    names = [d.name async for d in arm.compute.disks.list_by_resource_group("rg")]
    assert not [n for n in names if n.startswith("doomed_")]  # evicted with Delete: its disks go too


async def test_admin_password_rules_and_secrecy(arm: Arm, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="azure_arm_emulator")
    net = await Net.create(arm)

    async def windows(password: str | None, name: str = "win") -> object:
        body = await net.body(image=WINDOWS)
        body["properties"]["osProfile"] = {
            "computerName": "win", "adminUsername": "azureuser",
            "windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": False, "timeZone": "UTC"},
        }
        if password is not None:
            body["properties"]["osProfile"]["adminPassword"] = password
        return await create_vm(arm, "rg", name, body)

    for weak in (None, "Sh0rt!", "alllowercase-and-long", "NoDigitsOrSpecials", "x" * 120 + "A1!!"):
        with pytest.raises(HttpResponseError) as exc_info:
            await windows(weak)
        assert exc_info.value.status_code == 400 and exc_info.value.error.code == "InvalidParameter"
        assert exc_info.value.error.target == "adminPassword"
    with pytest.raises(HttpResponseError) as denied:
        await windows("P@ssw0rd")
    assert denied.value.error.message == "The Admin password specified is not allowed."
    vm = await windows(GOOD_PASSWORD)
    assert vm.storage_profile.os_disk.os_type == "Windows" and vm.storage_profile.os_disk.disk_size_gb == 127
    assert vm.os_profile.windows_configuration.time_zone == "UTC"
    assert vm.os_profile.windows_configuration.enable_automatic_updates is False
    assert vm.os_profile.admin_password is None

    linux = await net.body()
    linux["properties"]["osProfile"]["adminPassword"] = "aB1!x"  # Linux: 6-72 characters
    with pytest.raises(HttpResponseError) as short:
        await create_vm(arm, "rg", "lin", linux)
    assert "between 6-72 characters" in short.value.error.message
    linux["properties"]["osProfile"]["adminPassword"] = "aB1!xy"
    await create_vm(arm, "rg", "lin", linux)

    log_entries = await arm.admin.requests()  # method, path, query, status ...: never a body
    assert log_entries and GOOD_PASSWORD not in str(log_entries) and "aB1!xy" not in str(log_entries)
    assert all("body" not in e for e in log_entries)
    state = [r.to_json() for r in arm.emulator.store.under("/subscriptions")]
    assert GOOD_PASSWORD not in str(state) and "aB1!xy" not in str(state)
    assert GOOD_PASSWORD not in caplog.text and "aB1!xy" not in caplog.text
    listed = [v.as_dict() async for v in arm.compute.virtual_machines.list("rg")]
    assert GOOD_PASSWORD not in str(listed)


async def test_user_data_and_custom_data(arm: Arm) -> None:
    net = await Net.create(arm)
    user_data = base64.b64encode(b"#!/bin/sh\necho hello\n").decode()
    body = await net.body()
    body["properties"]["userData"] = user_data
    body["properties"]["osProfile"]["customData"] = base64.b64encode(b"#cloud-config\n").decode()
    vm = await create_vm(arm, "rg", "vm1", body)
    assert vm.user_data is None and vm.os_profile.custom_data is None
    ops = arm.compute.virtual_machines
    assert (await ops.get("rg", "vm1", expand="userData")).user_data == user_data
    assert (await ops.get("rg", "vm1")).user_data is None
    updated = base64.b64encode(b"v2").decode()
    await (await ops.begin_update("rg", "vm1", VirtualMachineUpdate(user_data=updated))).result()
    assert (await ops.get("rg", "vm1", expand="userData")).user_data == updated

    for field, value in (("userData", "not base64!"), ("customData", "A" * 87384)):
        bad = await net.body()
        if field == "userData":
            bad["properties"]["userData"] = value
        else:
            bad["properties"]["osProfile"]["customData"] = value
        with pytest.raises(HttpResponseError) as exc_info:
            await create_vm(arm, "rg", "bad", bad)
        assert exc_info.value.status_code == 400 and exc_info.value.error.target == field
        assert "Base64 encoding and with a maximum length of 87380 characters" in exc_info.value.error.message


async def test_etags_and_conditional_requests(arm: Arm) -> None:
    net = await Net.create(arm)
    body = await net.body()
    vm = await create_vm(arm, "rg", "vm1", body)
    ops = arm.compute.virtual_machines
    assert vm.etag == '"1"'
    vm.tags = {"v": "2"}
    vm2 = await (await ops.begin_create_or_update(
        "rg", "vm1", vm, etag=vm.etag, match_condition=MatchConditions.IfNotModified)).result()
    assert vm2.etag == '"2"' and vm2.tags == {"v": "2"}

    with pytest.raises(HttpResponseError) as stale:
        await ops.begin_create_or_update("rg", "vm1", vm, etag=vm.etag, match_condition=MatchConditions.IfNotModified)
    assert stale.value.status_code == 412 and stale.value.error.code == "PreconditionFailed"
    with pytest.raises(HttpResponseError) as exists:
        await ops.begin_create_or_update("rg", "vm1", vm2, match_condition=MatchConditions.IfMissing)
    assert exists.value.status_code == 412
    with pytest.raises(HttpResponseError) as stale_patch:
        await ops.begin_update("rg", "vm1", VirtualMachineUpdate(tags={"v": "3"}), etag='"1"',
                               match_condition=MatchConditions.IfNotModified)
    assert stale_patch.value.status_code == 412
    new = await (await ops.begin_create_or_update(
        "rg", "vm2", await net.body(), match_condition=MatchConditions.IfMissing)).result()
    assert new.etag == '"1"'

    path = f"/subscriptions/{arm.subscription}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
    status, answer, _ = await raw(arm, "DELETE", path, headers={"If-Match": '"1"'})
    assert status == 412 and answer["error"]["code"] == "PreconditionFailed"
    assert (await ops.get("rg", "vm1")).etag == '"2"'
    status, _, headers = await raw(arm, "DELETE", path, headers={"If-Match": '"2"'})
    assert status == 202 and "Azure-AsyncOperation" in headers


async def test_redeploy_reimage_generalize(arm: Arm) -> None:
    net = await Net.create(arm)
    await create_vm(arm, "rg", "vm1", await net.body())
    ops = arm.compute.virtual_machines
    await arm.admin.clear_requests()
    await (await ops.begin_redeploy("rg", "vm1")).result()
    assert power_state(await ops.instance_view("rg", "vm1")) == "PowerState/running"
    assert await arm.admin.count(operation="virtualMachines/redeploy/action") == 1
    await (await ops.begin_reimage("rg", "vm1")).result()
    assert power_state(await ops.instance_view("rg", "vm1")) == "PowerState/running"
    assert (await ops.get("rg", "vm1")).provisioning_state == "Succeeded"
    with pytest.raises(HttpResponseError) as weak:
        await ops.begin_reimage("rg", "vm1", {"osProfile": {"adminPassword": "weak"}})
    assert weak.value.status_code == 400 and weak.value.error.target == "adminPassword"

    with pytest.raises(ResourceExistsError) as running:
        await ops.generalize("rg", "vm1")
    assert running.value.error.code == "OperationNotAllowed" and "since the VM is running" in running.value.error.message
    await (await ops.begin_power_off("rg", "vm1")).result()
    await ops.generalize("rg", "vm1")
    codes = [s.code for s in (await ops.instance_view("rg", "vm1")).statuses]
    assert "OSState/generalized" in codes and "PowerState/stopped" in codes
    with pytest.raises(ResourceExistsError) as start:
        await (await ops.begin_start("rg", "vm1")).result()
    assert start.value.error.message == "Operation 'start' is not allowed on VM 'vm1' since the VM is generalized."


def _rule(name: str, priority: int, port: str = "22", direction: str = "Inbound", protocol: str = "Tcp") -> dict:
    return {"name": name, "properties": {"priority": priority, "direction": direction, "access": "Allow",
                                         "protocol": protocol, "sourceAddressPrefix": "*", "sourcePortRange": "*",
                                         "destinationAddressPrefix": "*", "destinationPortRange": port}}


async def test_network_security_group_rules(arm: Arm) -> None:
    await Net.create(arm)
    nsgs = arm.network.network_security_groups

    async def nsg(name: str, *rules: dict) -> object:
        body = {"location": LOCATION, "properties": {"securityRules": list(rules)}}
        return await (await nsgs.begin_create_or_update("rg", name, body)).result()

    created = await nsg("nsg1", _rule("ssh", 100), _rule("out", 100, direction="Outbound"),
                        _rule("web", 110, port="80-443", protocol="*"))
    assert [r.priority for r in created.security_rules] == [100, 100, 110]
    for rules, code in (
        ((_rule("a", 200), _rule("b", 200)), "SecurityRuleConflict"),
        ((_rule("a", 99),), "SecurityRuleInvalidPriority"),
        ((_rule("a", 4097),), "SecurityRuleInvalidPriority"),
        ((_rule("a", 300, port="70000"),), "SecurityRuleInvalidPortRange"),
        ((_rule("a", 300, port="90-80"),), "SecurityRuleInvalidPortRange"),
        ((_rule("a", 300, protocol="Sctp"),), "SecurityRuleParameterContainsUnsupportedValue"),
    ):
        with pytest.raises(HttpResponseError) as exc_info:
            await nsg("nsg2", *rules)
        assert exc_info.value.status_code == 400 and exc_info.value.error.code == code, rules
    with pytest.raises(HttpResponseError) as conflict:
        await nsg("nsg2", _rule("a", 200), _rule("b", 200))
    assert "Rules cannot have the same Priority and Direction" in conflict.value.error.message

    # securityRules as sub-resources (what `az vm open-port` does)
    rules = arm.network.security_rules
    added = await (await rules.begin_create_or_update("rg", "nsg1", "rdp", _rule("rdp", 120, port="3389"))).result()
    assert added.provisioning_state == "Succeeded" and added.destination_port_range == "3389"
    assert {r.name for r in (await nsgs.get("rg", "nsg1")).security_rules} == {"ssh", "out", "web", "rdp"}
    with pytest.raises(HttpResponseError) as taken:
        await (await rules.begin_create_or_update("rg", "nsg1", "dup", _rule("dup", 110))).result()
    assert taken.value.error.code == "SecurityRuleConflict"
    await (await rules.begin_delete("rg", "nsg1", "rdp")).result()
    assert sorted([r.name async for r in rules.list("rg", "nsg1")]) == ["out", "ssh", "web"]

    # NIC references: the NSG must exist; an NSG in use cannot be deleted
    nic = (await arm.network.network_interfaces.get("rg", "nic1")).as_dict()
    ghost = copy.deepcopy(nic)
    ghost["properties"]["networkSecurityGroup"] = {"id": created.id + "-ghost"}
    with pytest.raises(HttpResponseError) as missing:
        await (await arm.network.network_interfaces.begin_create_or_update("rg", "nic1", ghost)).result()
    assert missing.value.status_code == 400 and missing.value.error.code == "InvalidResourceReference"
    nic["properties"]["networkSecurityGroup"] = {"id": created.id}
    await (await arm.network.network_interfaces.begin_create_or_update("rg", "nic1", nic)).result()
    with pytest.raises(HttpResponseError) as in_use:
        await (await nsgs.begin_delete("rg", "nsg1")).result()
    assert in_use.value.status_code == 400 and in_use.value.error.code == "InUseNetworkSecurityGroupCannotBeDeleted"
