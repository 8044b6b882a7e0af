"""Availability sets through the real async Compute SDK (the REST examples: test_conformance)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from compute_helpers import Net, create_vm, raw
from emulator_helpers import LOCATION, Arm
from rest_examples import load_example

AVSET = {"location": LOCATION, "sku": {"name": "Aligned"},
         "properties": {"platformFaultDomainCount": 2, "platformUpdateDomainCount": 3}}


async def test_members_domains_and_rules(arm: Arm) -> None:
    net = await Net.create(arm)
    sets = arm.compute.availability_sets
    avset = await sets.create_or_update("rg", "web-as", AVSET)
    assert avset.sku.name == "Aligned" and avset.platform_fault_domain_count == 2
    assert avset.virtual_machines == []

    vms = []
    for index in range(4):
        body = await net.body()
        body["properties"]["availabilitySet"] = {"id": avset.id}
        vms.append(await create_vm(arm, "rg", f"web{index}", body))
    assert vms[0].availability_set.id == avset.id
    members = (await sets.get("rg", "web-as")).virtual_machines
    assert [m.id for m in members] == [vm.id for vm in vms]
    views = [await arm.compute.virtual_machines.instance_view("rg", f"web{i}") for i in range(4)]
    assert [(v.platform_fault_domain, v.platform_update_domain) for v in views] == [(0, 0), (1, 1), (0, 2), (1, 0)]

    with pytest.raises(ResourceExistsError) as in_use:
        await sets.delete("rg", "web-as")
    assert in_use.value.error.code == "OperationNotAllowed"
    assert in_use.value.error.message == ("Availability Set web-as cannot be deleted. Before deleting an Availability "
                                          "Set please ensure that it does not contain any VM.")
    other = await sets.create_or_update("rg", "other-as", AVSET)
    vms[0].availability_set = {"id": other.id}
    with pytest.raises(ResourceExistsError) as moved:
        await (await arm.compute.virtual_machines.begin_create_or_update("rg", "web0", vms[0])).result()
    assert moved.value.error.code == "PropertyChangeNotAllowed" and moved.value.error.target == "availabilitySet.id"
    with pytest.raises(ResourceExistsError) as counts:
        await sets.create_or_update("rg", "web-as", {**AVSET, "properties": {"platformFaultDomainCount": 3}})
    assert counts.value.error.code == "PropertyChangeNotAllowed"
    with pytest.raises(ResourceExistsError) as sku:
        await sets.create_or_update("rg", "web-as", {**AVSET, "sku": {"name": "Classic"}})
    assert sku.value.error.message == "Changing availability set SKU from 'Aligned' to 'Classic' is not allowed."

    # the freed slot is reused by the next member
    await (await arm.compute.virtual_machines.begin_delete("rg", "web1")).result()
    assert len((await sets.get("rg", "web-as")).virtual_machines) == 3
    body = await net.body()
    body["properties"]["availabilitySet"] = {"id": avset.id}
    await create_vm(arm, "rg", "web9", body)
    view = await arm.compute.virtual_machines.instance_view("rg", "web9")
    assert (view.platform_fault_domain, view.platform_update_domain) == (1, 1)

    for name in ("web0", "web2", "web3", "web9"):
        await (await arm.compute.virtual_machines.begin_delete("rg", name)).result()
    assert (await sets.get("rg", "web-as")).virtual_machines == []
    await sets.delete("rg", "web-as")
    with pytest.raises(ResourceNotFoundError):
        await sets.get("rg", "web-as")
    assert [s.name async for s in sets.list_by_subscription()] == ["other-as"]


async def test_validation(arm: Arm) -> None:
    net = await Net.create(arm)
    sets = arm.compute.availability_sets
    for props, target in (({"platformFaultDomainCount": 4}, "platformFaultDomainCount"),
                          ({"platformFaultDomainCount": 0}, "platformFaultDomainCount"),
                          ({"platformUpdateDomainCount": 21}, "platformUpdateDomainCount")):
        with pytest.raises(HttpResponseError) as exc_info:
            await sets.create_or_update("rg", "bad", {"location": LOCATION, "properties": props})
        assert exc_info.value.status_code == 400 and exc_info.value.error.target == target
    assert "must fall in the range 1 to 3" in str(
        (await _error(sets.create_or_update("rg", "bad", {"location": LOCATION,
                                                          "properties": {"platformFaultDomainCount": 5}}))))
    classic = await sets.create_or_update("rg", "classic", {"location": LOCATION})
    assert classic.sku.name == "Classic" and classic.platform_update_domain_count == 5  # ARM's defaults

    missing = await net.body()
    missing["properties"]["availabilitySet"] = {"id": classic.id + "-nope"}
    with pytest.raises(ResourceNotFoundError) as not_found:
        await create_vm(arm, "rg", "vm", missing)
    assert not_found.value.error.code == "NotFound" and "cannot be found" in not_found.value.error.message

    zonal = await net.body(zones=["1"])
    zonal["properties"]["availabilitySet"] = {"id": classic.id}
    with pytest.raises(HttpResponseError) as both:
        await create_vm(arm, "rg", "vm", zonal)
    assert both.value.status_code == 400 and both.value.error.code == "InvalidParameter"
    assert (await sets.get("rg", "classic")).virtual_machines == []


async def _error(awaitable: object) -> str:
    try:
        await awaitable  # type: ignore[misc]
    except HttpResponseError as exc:
        return str(exc.error.message)
    raise AssertionError("no error")


async def test_plain_rest_create_get_list_delete(arm: Arm) -> None:
    await arm.resources.resource_groups.create_or_update("myResourceGroup", {"location": "westus"})
    base = f"/subscriptions/{arm.subscription}/resourceGroups/myResourceGroup/providers/Microsoft.Compute"
    example = load_example("compute/availabilitySets/AvailabilitySet_Create.json")
    status, body, _ = await raw(arm, "PUT", f"{base}/availabilitySets/myAvailabilitySet",
                                example["parameters"]["parameters"], api_version=example["parameters"]["api-version"])
    assert status == 200, body
    assert body["sku"] == {"name": "Classic"} and body["properties"]["platformUpdateDomainCount"] == 20
    status, got, _ = await raw(arm, "GET", f"{base}/availabilitySets/myAvailabilitySet")
    statuses = got["properties"].pop("statuses")  # a GET answers with the set's statuses (the Get example)
    assert status == 200 and got == body
    assert [s["code"] for s in statuses] == ["ProvisioningState/succeeded"] and statuses[0]["level"] == "Info"
    status, page, _ = await raw(arm, "GET", f"{base}/availabilitySets")
    assert status == 200 and page["value"] == [body]
    status, _, _ = await raw(arm, "DELETE", f"{base}/availabilitySets/myAvailabilitySet")
    assert status == 200
    status, _, _ = await raw(arm, "DELETE", f"{base}/availabilitySets/myAvailabilitySet")
    assert status == 204


async def test_a_set_answers_with_its_statuses_and_members_as_arm_shapes_them(arm: Arm) -> None:
    net = await Net.create(arm)
    sets = arm.compute.availability_sets
    avset = await sets.create_or_update("rg", "web-as", AVSET)
    body = await net.body()
    body["properties"]["availabilitySet"] = {"id": avset.id}
    vm = await create_vm(arm, "rg", "web0", body)
    got = await sets.get("rg", "web-as")
    assert [(s.code, s.level) for s in got.statuses] == [("ProvisioningState/succeeded", "Info")]
    assert [m.id for m in got.virtual_machines] == [vm.id]
    status, raw_body, _ = await raw(arm, "GET", avset.id)
    example = load_example("compute/availabilitySets/AvailabilitySet_Get_MaximumSet_Gen.json")["responses"]["200"]["body"]
    assert status == 200 and set(raw_body["properties"]["statuses"][0]) <= set(example["properties"]["statuses"][0])
    assert raw_body["properties"]["virtualMachines"] == [{"id": vm.id}]
    _, page, _ = await raw(arm, "GET", avset.id.rsplit("/", 1)[0])
    assert "statuses" not in page["value"][0]["properties"]  # only a set's own GET carries them
