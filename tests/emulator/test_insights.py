"""Microsoft.Insights metrics from a simulated load, and the Prometheus endpoint (real async SDK for the resources)."""

from __future__ import annotations

import json
import ssl
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import aiohttp
from emulator_helpers import Arm, create_network, vm_body
from prometheus_client.parser import text_string_to_metric_families
from rest_examples import key_paths, load_example
from scale_set_helpers import create_vmss, vmss_body

from azure_arm_emulator.admin import AdminError

METRICS_API = "2024-02-01"


async def metrics(arm: Arm, resource_id: str, **params: Any) -> tuple[int, Any]:
    query = {"api-version": METRICS_API, **params}
    context = ssl.create_default_context(cafile=arm.emulator.ca_path)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async with session.get(
            f"{arm.emulator.url}{resource_id}/providers/Microsoft.Insights/metrics?{urlencode(query)}",
            headers={"Authorization": "Bearer t"},
        ) as response:
            return response.status, json.loads(await response.text())


def last_hour() -> str:
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    return f"{(end - timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}/{end.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def current_point(body: dict[str, Any], series: int = 0) -> dict[str, Any]:
    """The data point of the current minute (the last one that is not in the future)."""
    now = datetime.now(timezone.utc)
    data = body["value"][0]["timeseries"][series]["data"]
    past = [p for p in data if datetime.fromisoformat(p["timeStamp"].replace("Z", "+00:00")) <= now]
    return past[-1]


async def create_vm(arm: Arm) -> str:
    network = await create_network(arm, "rg")
    vm = await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id))).result()
    return str(vm.id)


async def test_vm_metrics_have_the_shape_of_get_metric_example(arm: Arm) -> None:
    example = load_example("monitor/GetMetric.json")
    vm_id = await create_vm(arm)
    await arm.admin.set_load(vm_id, 42.0)
    status, body = await metrics(
        arm, vm_id, metricnames="Percentage CPU", timespan=last_hour(), interval="PT1M",
        aggregation="average,minimum,maximum", metricnamespace="Microsoft.Compute/virtualMachines",
    )
    assert status == 200, body
    expected = key_paths(example["responses"]["200"]["body"])
    # a VM's CPU has no dimension: its one series has empty metadatavalues
    expected_vm = {p for p in expected if not p.startswith("value.[].timeseries.[].metadatavalues.[]")}
    assert key_paths(body) == expected_vm
    assert body["interval"] == "PT1M" and body["namespace"] == "Microsoft.Compute/virtualMachines"
    assert body["resourceregion"] == "westeurope"
    [metric] = body["value"]
    assert metric["id"] == f"{vm_id}/providers/Microsoft.Insights/metrics/Percentage CPU"
    assert metric["name"] == {"value": "Percentage CPU", "localizedValue": "Percentage CPU"}
    assert metric["unit"] == "Percent" and metric["errorCode"] == "Success"
    data = metric["timeseries"][0]["data"]
    assert len(data) in (60, 61)  # one point per minute of the (minute-aligned) hour
    assert current_point(body) == {"timeStamp": current_point(body)["timeStamp"], "average": 42.0,
                                   "minimum": 42.0, "maximum": 42.0}
    # total and count as asked, and a coarser grain aggregates the minutes
    status, body = await metrics(arm, vm_id, metricnames="percentage cpu", timespan="PT10M", interval="PT5M",
                                 aggregation="Total,Count")
    assert status == 200 and body["interval"] == "PT5M"
    point = current_point(body)
    assert point["total"] == 42.0 * point["count"] and point["count"] >= 1
    assert set(point) == {"timeStamp", "total", "count"}


async def test_scale_set_metrics_split_by_instance(arm: Arm) -> None:
    network = await create_network(arm, "rg", with_public_ip=False)
    vmss = await create_vmss(arm, "rg", "web", vmss_body(network["subnet"].id, capacity=2))
    await arm.admin.set_load(vmss.id, 60.0)
    status, body = await metrics(
        arm, vmss.id, metricnames="Percentage CPU", timespan=last_hour(), interval="PT1M",
        aggregation="average,minimum,maximum", **{"$filter": "VMName eq '*'"},
    )
    assert status == 200, body
    series = body["value"][0]["timeseries"]
    assert len(series) == 2
    assert {s["metadatavalues"][0]["name"]["value"] for s in series} == {"vmname"}
    assert all(current_point(body, n)["average"] == 60.0 for n in range(2))


async def test_cpu_follows_the_load_and_the_running_instances(arm: Arm) -> None:
    network = await create_network(arm, "rg", with_public_ip=False)
    vmss = await create_vmss(arm, "rg", "web", vmss_body(network["subnet"].id, capacity=2))
    state = await arm.admin.set_load(vmss.id, 60.0)  # reference capacity = 2: a total demand of 120 %
    assert state["reference_capacity"] == 2 and state["running_instances"] == 2
    assert [i["cpu_percent"] for i in state["instances"]] == [60.0, 60.0]
    await (await arm.compute.virtual_machine_scale_sets.begin_update("rg", "web", {"sku": {"capacity": 4}})).result()
    _, body = await metrics(arm, vmss.id, timespan="PT5M", aggregation="Average,Count")
    point = current_point(body)
    assert point["average"] == 30.0 and point["count"] == 4.0  # 120 % over 4 instances, one value each
    # a stopped instance reports nothing; the demand is spread over the 3 that run
    await (await arm.compute.virtual_machine_scale_set_vms.begin_power_off("rg", "web", "0")).result()
    [load] = [entry for entry in await arm.admin.loads() if entry["resource_id"] == vmss.id]
    assert load["capacity"] == 4 and load["running_instances"] == 3
    by_id = {i["instance_id"]: i["cpu_percent"] for i in load["instances"]}
    assert by_id["0"] is None and {by_id[k] for k in by_id if k != "0"} == {40.0}
    _, body = await metrics(arm, vmss.id, timespan="PT5M", interval="PT1M", **{"$filter": "VMName eq '*'"})
    stopped = [s for s in body["value"][0]["timeseries"] if s["metadatavalues"][0]["value"].endswith("_0")]
    assert "average" not in current_point({"value": [{"timeseries": stopped}]})
    # an explicit reference capacity; the demand is capped at 100 % per instance
    state = await arm.admin.set_load(vmss.id, 90.0, reference_capacity=10)
    assert {i["cpu_percent"] for i in state["instances"] if i["running"]} == {100.0}

    text = await arm.admin.prometheus_text()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    cpu = [s for s in families["azure_vm_cpu_percent"].samples if s.labels["scale_set"] == "web"]
    assert len(cpu) == 3 and {s.value for s in cpu} == {100.0}
    assert {s.labels["instance_id"] for s in cpu} == {"1", "2", "3"}
    assert cpu[0].labels["subscription"] == arm.subscription and cpu[0].labels["resource_group"] == "rg"
    [capacity] = families["azure_vmss_capacity"].samples
    assert capacity.value == 4.0 and capacity.labels == {"subscription": arm.subscription, "resource_group": "rg",
                                                         "scale_set": "web"}
    [running] = families["azure_vmss_running_instances"].samples
    assert running.value == 3.0


async def test_vm_cpu_stops_when_deallocated_and_prometheus_shows_vms(arm: Arm) -> None:
    vm_id = await create_vm(arm)
    await arm.admin.set_load(vm_id, 150.0)  # capped at 100
    _, body = await metrics(arm, vm_id)  # defaults: Percentage CPU, last hour, PT1M, average
    assert current_point(body)["average"] == 100.0
    families = {f.name: f for f in text_string_to_metric_families(await arm.admin.prometheus_text())}
    [sample] = families["azure_vm_cpu_percent"].samples
    assert sample.labels == {"subscription": arm.subscription, "resource_group": "rg", "vm": "vm1", "scale_set": "",
                             "instance_id": ""}
    assert sample.value == 100.0
    await arm.admin.set_load(vm_id, 25.0)
    _, body = await metrics(arm, vm_id)
    assert current_point(body)["average"] == 25.0
    await (await arm.compute.virtual_machines.begin_deallocate("rg", "vm1")).result()
    _, body = await metrics(arm, vm_id)
    assert set(current_point(body)) == {"timeStamp"}
    families = {f.name: f for f in text_string_to_metric_families(await arm.admin.prometheus_text())}
    assert families["azure_vm_cpu_percent"].samples == []


async def test_metrics_errors_are_arm_errors(arm: Arm) -> None:
    vm_id = await create_vm(arm)
    status, body = await metrics(arm, vm_id, metricnames="Percentage CPU,Bogus Metric")
    assert status == 400 and body["error"]["code"] == "BadRequest"
    assert "Bogus Metric" in body["error"]["message"] and "Percentage CPU" in body["error"]["message"]
    status, body = await metrics(arm, vm_id, aggregation="median")
    assert status == 400 and body["error"]["code"] == "BadRequest"
    status, body = await metrics(arm, vm_id, metricnamespace="Microsoft.Storage/storageAccounts")
    assert status == 400
    status, body = await metrics(arm, vm_id, interval="PT30S")
    assert status == 400
    status, body = await metrics(arm, vm_id.replace("vm1", "nope"))
    assert status == 404 and body["error"]["code"] == "ResourceNotFound"
    try:
        await arm.admin.set_load(vm_id.replace("vm1", "nope"), 10.0)
    except AdminError as exc:
        assert "404" in str(exc)
    else:
        raise AssertionError("setting the load of a missing VM must fail")


async def test_multi_resource_metrics_of_a_subscription(arm: Arm) -> None:
    vm_id = await create_vm(arm)
    await arm.admin.set_load(vm_id, 12.5)
    context = ssl.create_default_context(cafile=arm.emulator.ca_path)
    query = urlencode({"api-version": METRICS_API, "region": "westeurope", "aggregation": "count",
                       "metricnamespace": "microsoft.compute/virtualmachines", "metricnames": "Percentage CPU",
                       "$filter": "Microsoft.ResourceId eq '*'"})
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async with session.get(f"{arm.emulator.url}/subscriptions/{arm.subscription}/providers/Microsoft.Insights/"
                               f"metrics?{query}", headers={"Authorization": "Bearer t"}) as response:
            assert response.status == 200
            body = await response.json()
    [series] = body["value"][0]["timeseries"]
    assert series["metadatavalues"][0]["value"] == vm_id
