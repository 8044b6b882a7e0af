"""Throttling: Azure's token buckets (ARM per subscription+principal, Compute and Network policies).

Bucket math runs on a fake clock; the HTTP behaviour is checked with the real async Azure SDK clients.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError
from emulator_helpers import SUBSCRIPTION, Arm, create_network, make_arm, vm_body

from azure_arm_emulator import Emulator
from azure_arm_emulator.policies import PolicyRequest
from azure_arm_emulator.throttle import COMPUTE_POLICIES, Throttler, TokenBucket

RG = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg"
VM_ID = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1"
VMSS_ID = f"{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/ss"


class FrozenThenRunningClock:
    """Stands still until ``run()``, then follows real time from that point on."""

    def __init__(self) -> None:
        self.frozen_at = time.monotonic()
        self.started: float | None = None

    def __call__(self) -> float:
        return self.frozen_at if self.started is None else self.frozen_at + time.monotonic() - self.started

    def run(self) -> None:
        self.started = time.monotonic()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def request(method: str, operation: str, resource_id: str | None = None, path: str = "", principal: str = "p") -> PolicyRequest:
    return PolicyRequest(method=method, path=path or (resource_id or RG), subscription=SUBSCRIPTION,
                         operation=operation, resource_id=resource_id, principal=principal)


# bucket math (no HTTP, no sleeping) ---------------------------------------------------------------------------


def test_token_bucket_refills_continuously_up_to_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=12, rate=4 / 60, now=clock())
    assert all(bucket.take(clock()) for _ in range(12))
    assert not bucket.take(clock())
    assert bucket.wait(clock()) == pytest.approx(15.0)  # 4 per minute: one token every 15 s
    clock.advance(14.9)
    assert not bucket.take(clock())
    clock.advance(0.1)
    assert bucket.take(clock())
    clock.advance(3600)
    assert bucket.remaining(clock()) == 12  # capped at the bucket size
    assert bucket.remaining(clock(), 27 * 60) == 12 + 108


def test_put_vm_per_resource_bucket_rejects_the_13th_create_then_refills() -> None:
    clock = FakeClock()
    throttler = Throttler(clock=clock, wall_clock=lambda: 1_700_000_000.0)
    create = request("PUT", "Microsoft.Compute/virtualMachines/write", VM_ID)
    for n in range(12):
        attempt = request("PUT", "Microsoft.Compute/virtualMachines/write", VM_ID)
        assert throttler.admit(attempt) is None
        assert attempt.state["policy"] == "Microsoft.Compute/PutVM"
        headers = throttler.response_headers(attempt)
        # the per-resource bucket (12, 4/min) binds: 3Min = tokens left, 30Min = tokens + 27 min of refill
        assert headers["x-ms-ratelimit-remaining-resource"] == (
            f"Microsoft.Compute/PutVM3Min;{11 - n},Microsoft.Compute/PutVM30Min;{11 - n + 108}"
        )
        assert headers["x-ms-ratelimit-remaining-subscription-writes"] == str(199 - n)
    rejection = throttler.admit(create)
    assert rejection is not None and rejection.status == 429
    assert rejection.headers["Retry-After"] == "15"
    assert create.state["policy"] == "Microsoft.Compute/PutVM"
    error = rejection.body["error"]
    assert error["code"] == "OperationNotAllowed"
    assert error["message"] == (
        "The server rejected the request because too many requests have been received for this subscription."
    )
    [detail] = error["details"]
    assert detail["code"] == "TooManyRequests" and detail["target"] == "PutVM3Min"
    measurement = json.loads(detail["message"])
    assert measurement["operationGroup"] == "PutVM3Min"
    assert measurement["allowedRequestCount"] == 12 and measurement["measuredRequestCount"] == 13
    assert measurement["startTime"] == "2023-11-14T22:10:20+00:00"
    assert measurement["endTime"] == "2023-11-14T22:13:20+00:00"
    # another VM has its own per-resource bucket; the subscription bucket (1,500) is far from empty
    other = request("PUT", "Microsoft.Compute/virtualMachines/write", VM_ID.replace("vm1", "vm2"))
    assert throttler.admit(other) is None
    clock.advance(15)
    assert throttler.admit(request("PUT", "Microsoft.Compute/virtualMachines/write", VM_ID)) is None


def test_requests_map_to_azure_policies() -> None:
    existing = {VM_ID.lower(), VMSS_ID.lower()}
    throttler = Throttler(resource_exists=lambda rid: rid.lower() in existing,
                          operation_resource=lambda op: VM_ID if op == "op1" else None)
    cm = "Microsoft.Compute"
    cases: list[tuple[PolicyRequest, str, str | None, str | None]] = [
        (request("PUT", f"{cm}/virtualMachines/write", VM_ID), "writes", "UpdateVM", VM_ID),
        (request("PUT", f"{cm}/virtualMachines/write", VM_ID + "x"), "writes", "PutVM", VM_ID + "x"),
        (request("PATCH", f"{cm}/virtualMachines/write", VM_ID), "writes", "UpdateVM", VM_ID),
        (request("POST", f"{cm}/virtualMachines/start/action", VM_ID), "writes", "UpdateVM", VM_ID),
        (request("POST", f"{cm}/virtualMachines/powerOff/action", VM_ID), "writes", "UpdateVM", VM_ID),
        (request("POST", f"{cm}/virtualMachines/restart/action", VM_ID), "writes", "UpdateVM", VM_ID),
        (request("POST", f"{cm}/virtualMachines/deallocate/action", VM_ID), "writes", "DeleteVM", VM_ID),
        (request("DELETE", f"{cm}/virtualMachines/delete", VM_ID), "deletes", "DeleteVM", VM_ID),
        (request("GET", f"{cm}/virtualMachines/read", VM_ID), "reads", "LowCostGetVM", VM_ID),
        (request("GET", f"{cm}/virtualMachines/instanceView/read", VM_ID), "reads", "LowCostGetVM", VM_ID),
        (request("GET", f"{cm}/virtualMachines/read", None), "reads", "HighCostGetVM", None),
        (request("GET", f"{cm}/locations/operations/read", None,
                 path=f"/subscriptions/{SUBSCRIPTION}/providers/{cm}/locations/westeurope/operations/op1"),
         "reads", "GetOperation", VM_ID),
        (request("PUT", f"{cm}/virtualMachineScaleSets/write", VMSS_ID + "x"), "writes", "PutVMSS", VMSS_ID + "x"),
        (request("PUT", f"{cm}/virtualMachineScaleSets/write", VMSS_ID), "writes", "UpdateVMSS", VMSS_ID),
        (request("POST", f"{cm}/virtualMachineScaleSets/reimage/action", VMSS_ID), "writes", "UpdateVMSS", VMSS_ID),
        (request("POST", f"{cm}/virtualMachineScaleSets/powerOff/action", VMSS_ID), "writes", "DeleteVMSS", VMSS_ID),
        (request("DELETE", f"{cm}/virtualMachineScaleSets/delete", VMSS_ID), "deletes", "DeleteVMSS", VMSS_ID),
        (request("GET", f"{cm}/virtualMachineScaleSets/read", VMSS_ID), "reads", "LowCostGetVMSS", VMSS_ID),
        (request("GET", f"{cm}/virtualMachineScaleSets/instanceView/read", VMSS_ID), "reads", "HighCostGetVMSS",
         VMSS_ID),
        (request("GET", f"{cm}/virtualMachineScaleSets/read", None), "reads", "HighCostGetVMSS", None),
        (request("GET", f"{cm}/virtualMachineScaleSets/virtualMachines/read", VMSS_ID + "/virtualMachines/0"),
         "reads", "GetVMSSVMs", VMSS_ID + "/virtualMachines/0"),
        (request("GET", f"{cm}/virtualMachineScaleSets/virtualMachines/read", None,
                 path=VMSS_ID + "/virtualMachines"), "reads", "HighCostGetVMSS", VMSS_ID),
        (request("GET", "Microsoft.Resources/subscriptions/resourceGroups/read", RG), "reads", None, None),
        (request("HEAD", "Microsoft.Resources/subscriptions/resourceGroups/read", RG), "reads", None, None),
    ]
    for policy_request, arm, policy, resource in cases:
        target = throttler.classify(policy_request)
        assert (target.arm, target.policy.name if target.policy else None, target.resource) == (
            arm,
            policy,
            resource,
        ), policy_request.operation
        if policy is not None:
            assert COMPUTE_POLICIES[policy].label == f"Microsoft.Compute/{policy}"
    network_write = throttler.classify(request("DELETE", "Microsoft.Network/networkInterfaces/delete", None))
    assert network_write.arm == "deletes" and network_write.policy.name == "NetworkWrites"  # type: ignore[union-attr]
    network_read = throttler.classify(request("GET", "Microsoft.Network/virtualNetworks/read", None))
    assert network_read.policy.name == "NetworkReads"  # type: ignore[union-attr]


def test_arm_buckets_are_per_principal_and_verb_and_scale_multiplies() -> None:
    clock = FakeClock()
    throttler = Throttler(clock=clock, scale=0.01)  # reads 2.5 (25/s * 0.01), writes 2, deletes 2
    group_read = "Microsoft.Resources/subscriptions/resourceGroups/read"
    assert [throttler.admit(request("GET", group_read, RG)) is None for _ in range(3)] == [True, True, False]
    rejected = request("GET", group_read, RG)
    reply = throttler.admit(rejected)
    assert reply is not None and reply.body["error"]["code"] == "SubscriptionRequestsThrottled"
    assert rejected.state["policy"] == "ARM/reads"
    assert reply.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    assert reply.headers["Retry-After"] == "2"  # 0.5 token short at 0.25 tokens/s
    # writes, deletes and other principals have their own buckets
    assert throttler.admit(request("PUT", "Microsoft.Resources/subscriptions/resourceGroups/write", RG)) is None
    assert throttler.admit(request("DELETE", "Microsoft.Resources/subscriptions/resourceGroups/delete", RG)) is None
    assert throttler.admit(request("GET", group_read, RG, principal="other")) is None
    clock.advance(4)
    assert throttler.admit(request("GET", group_read, RG)) is None
    # a bucket never holds less than one token: the per-resource PutVM bucket (12 * 0.01) still admits one create
    assert throttler.admit(request("PUT", "Microsoft.Compute/virtualMachines/write", VM_ID)) is None
    snapshot = throttler.snapshot()
    put_vm = [b for b in snapshot["buckets"] if b["policy"] == "Microsoft.Compute/PutVM" and b["scope"] == "resource"]
    assert put_vm[0]["capacity"] == 1.0 and put_vm[0]["resource_id"] == VM_ID.lower()
    throttler.scale = 1.0  # a new scale starts every bucket afresh
    assert throttler.snapshot()["buckets"] == []


def test_disabled_throttler_admits_everything_without_headers() -> None:
    throttler = Throttler(enabled=False, scale=0.001)
    for _ in range(100):
        attempt = request("GET", "Microsoft.Compute/virtualMachines/read", VM_ID)
        assert throttler.admit(attempt) is None
        assert throttler.response_headers(attempt) == {}


# through HTTP, with the real SDK ------------------------------------------------------------------------------


@pytest.fixture
async def make_throttled() -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[Emulator, Arm]] = []

    async def factory(scale: float = 1.0, throttling: bool = True) -> Arm:
        emu = Emulator(latency_scale=0.0, throttling=throttling, throttle_scale=scale)
        await emu.start(host="127.0.0.1", port=0)
        arm = make_arm(emu.url, emu.ca_path, emu)
        started.append((emu, arm))
        return arm

    yield factory
    for emu, arm in started:
        await arm.close()
        await emu.stop()


async def raw(arm: Arm, method: str, path: str, body: Any = None, count: int = 1) -> list[tuple[int, dict[str, str], Any]]:
    """``count`` sequential requests with a plain HTTP client (principal ``unknown``)."""
    context = ssl.create_default_context(cafile=arm.emulator.ca_path)
    answers = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        for _ in range(count):
            async with session.request(method, f"{arm.emulator.url}{path}?api-version=2025-04-01", json=body,
                                       headers={"Authorization": "Bearer t"}) as response:
                text = await response.text()
                answers.append((response.status, dict(response.headers), json.loads(text) if text else None))
    return answers


async def test_responses_carry_rate_limit_headers(make_throttled: Callable[..., Any]) -> None:
    arm: Arm = await make_throttled()
    network = await create_network(arm, "rg")
    captured: list[dict[str, str]] = []

    def hook(response: Any) -> None:
        captured.append(dict(response.http_response.headers))

    await (await arm.compute.virtual_machines.begin_create_or_update(
        "rg", "vm1", vm_body(network["nic"].id), raw_response_hook=hook)).result()
    put = captured[0]
    assert int(put["x-ms-ratelimit-remaining-subscription-writes"]) < 200
    assert put["x-ms-ratelimit-remaining-resource"] == "Microsoft.Compute/PutVM3Min;11,Microsoft.Compute/PutVM30Min;119"
    captured.clear()
    await arm.compute.virtual_machines.get("rg", "vm1", raw_response_hook=hook)
    get = captured[0]
    assert int(get["x-ms-ratelimit-remaining-subscription-reads"]) < 250
    assert "x-ms-ratelimit-remaining-subscription-writes" not in get
    short, long = get["x-ms-ratelimit-remaining-resource"].split(",")
    assert short.startswith("Microsoft.Compute/LowCostGet3Min;") and long.startswith("Microsoft.Compute/LowCostGet30Min;")
    assert 30 <= int(short.split(";")[1]) <= 35  # 36 per VM; the SDK's final GET of the create took one too
    captured.clear()
    await arm.network.virtual_networks.get("rg", "vnet1", raw_response_hook=hook)
    assert "x-ms-ratelimit-remaining-subscription-reads" in captured[0]
    assert "x-ms-ratelimit-remaining-resource" not in captured[0]
    # a second PUT of the same VM is an update (UpdateVM), not a create
    captured.clear()
    await (await arm.compute.virtual_machines.begin_create_or_update(
        "rg", "vm1", vm_body(network["nic"].id), raw_response_hook=hook)).result()
    assert captured[0]["x-ms-ratelimit-remaining-resource"].startswith("Microsoft.Compute/UpdateVM3Min;11,")
    logged = [r for r in await arm.admin.requests() if r["method"] == "PUT" and r["path"].endswith("/vm1")]
    assert [r["policy"] for r in logged] == ["Microsoft.Compute/PutVM", "Microsoft.Compute/UpdateVM"]
    state = await arm.admin.throttling()
    assert state["enabled"] is True and state["scale"] == 1.0
    per_vm = {(b["policy"], b["scope"]) for b in state["buckets"] if b.get("resource_id") == VM_ID.lower()}
    assert {("Microsoft.Compute/PutVM", "resource"), ("Microsoft.Compute/UpdateVM", "resource"),
            ("Microsoft.Compute/LowCostGetVM", "resource")} <= per_vm


async def test_put_vm_per_resource_limit_gives_azure_429_and_the_sdk_raises_when_it_may_not_retry(
    make_throttled: Callable[..., Any],
) -> None:
    arm: Arm = await make_throttled(scale=1 / 12)  # per-resource PutVM: 1 token, refilling 1 per 3 minutes
    network = await create_network(arm, "rg")
    with pytest.raises(HttpResponseError) as invalid:  # a create that fails validation still spends its token
        await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id, size="Nope"))
    assert invalid.value.status_code == 400
    started = time.monotonic()
    with pytest.raises(HttpResponseError) as throttled:
        await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id), retry_total=0)
    assert time.monotonic() - started < 5
    error = throttled.value
    assert error.status_code == 429
    assert error.error.code == "OperationNotAllowed"
    assert error.error.details[0].code == "TooManyRequests" and error.error.details[0].target == "PutVM3Min"
    assert error.response.headers["Retry-After"] == "180"
    assert error.response.headers["x-ms-ratelimit-remaining-resource"].startswith("Microsoft.Compute/PutVM3Min;0,")
    body = error.response.json()
    assert set(json.loads(body["error"]["details"][0]["message"])) == {
        "operationGroup", "startTime", "endTime", "allowedRequestCount", "measuredRequestCount"}
    puts = [r for r in await arm.admin.requests() if r["method"] == "PUT" and r["path"].endswith("/vm1")]
    assert [(r["status"], r["policy"]) for r in puts] == [(400, "Microsoft.Compute/PutVM"),
                                                          (429, "Microsoft.Compute/PutVM")]
    # another VM is not limited by vm1's bucket
    vm2 = vm_body(network["nic"].id)
    vm2["properties"]["osProfile"]["computerName"] = "vm2"
    assert (await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm2", vm2)).result()).name == "vm2"


async def test_sdk_retry_after_429_succeeds_once_the_bucket_refilled(make_throttled: Callable[..., Any]) -> None:
    arm: Arm = await make_throttled(scale=15)  # per-resource PutVM: 180 tokens, refilling 1 per second
    network = await create_network(arm, "rg")
    clock = FrozenThenRunningClock()  # no refill during the burst: exactly 180 creates are admitted
    arm.emulator.throttle.clock = clock
    path = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1"
    answers = await raw(arm, "PUT", path, vm_body(network["nic"].id, size="Nope"), count=181)
    assert [status for status, _, _ in answers].count(400) == 180
    status, headers, body = answers[-1]
    assert status == 429 and headers["Retry-After"] == "1"
    assert body["error"]["details"][0]["target"] == "PutVM3Min"
    await arm.admin.clear_requests()
    clock.run()  # the bucket is empty and refills one token per second from now on
    started = time.monotonic()
    vm = await (await arm.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm_body(network["nic"].id))).result()
    assert vm.provisioning_state == "Succeeded"
    assert time.monotonic() - started >= 0.9  # the SDK waited Retry-After
    puts = [r["status"] for r in await arm.admin.requests() if r["method"] == "PUT"]
    assert puts == [429, 201]


async def test_reads_writes_and_deletes_use_separate_arm_buckets(make_throttled: Callable[..., Any]) -> None:
    arm: Arm = await make_throttled(scale=0.04)  # ARM: reads 10 (+1/s), writes 8 (+0.4/s), deletes 8 (+0.4/s)
    for n in range(8):
        await arm.resources.resource_groups.create_or_update(f"rg{n}", {"location": "westeurope"})
    with pytest.raises(HttpResponseError) as throttled:
        await arm.resources.resource_groups.create_or_update("rg8", {"location": "westeurope"}, retry_total=0)
    assert throttled.value.status_code == 429
    assert throttled.value.error.code == "SubscriptionRequestsThrottled"
    assert int(throttled.value.response.headers["Retry-After"]) >= 1
    # the writes bucket is empty, reads are not affected
    captured: list[dict[str, str]] = []
    group = await arm.resources.resource_groups.get(
        "rg0", raw_response_hook=lambda r: captured.append(dict(r.http_response.headers)))
    assert group.name == "rg0"
    assert int(captured[0]["x-ms-ratelimit-remaining-subscription-reads"]) >= 8
    [delete] = await raw(arm, "DELETE", f"{RG}/providers/Microsoft.Compute/virtualMachines/missing")
    assert delete[0] == 204 and delete[1]["x-ms-ratelimit-remaining-subscription-deletes"] == "7"
    state = await arm.admin.throttling()
    levels = {(b["policy"], b.get("principal")): b["tokens"] for b in state["buckets"] if b["scope"] != "resource"}
    assert levels[("ARM/writes", "client")] < 1.0
    assert levels[("ARM/reads", "client")] >= 8
    assert levels[("ARM/deletes", "unknown")] < 8
    logged = [r for r in await arm.admin.requests() if r["method"] == "PUT"]
    assert logged[-1]["status"] == 429 and logged[-1]["policy"] == "ARM/writes"


async def test_throttling_off_means_no_limit_and_can_be_switched_at_run_time(
    make_throttled: Callable[..., Any],
) -> None:
    arm: Arm = await make_throttled(scale=0.01, throttling=False)
    await arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    answers = await raw(arm, "GET", RG, count=60)
    assert {status for status, _, _ in answers} == {200}
    assert not any(k.lower().startswith("x-ms-ratelimit") for _, headers, _ in answers for k in headers)
    assert all(r["policy"] is None for r in await arm.admin.requests())
    config = await arm.admin.configure(throttling=True)
    assert config == {"latency_scale": 0.0, "throttling": True, "throttle_scale": 0.01}
    statuses = [status for status, _, _ in await raw(arm, "GET", RG, count=5)]
    assert statuses[:2] == [200, 200] and 429 in statuses  # reads bucket of 2.5 tokens
    await arm.admin.set_throttling(False)
    assert {status for status, _, _ in await raw(arm, "GET", RG, count=20)} == {200}
    await arm.admin.configure(throttling=True, throttle_scale=1.0)  # a new scale refills every bucket
    assert (await arm.admin.config())["throttle_scale"] == 1.0
    assert {status for status, _, _ in await raw(arm, "GET", RG, count=20)} == {200}


async def test_scale_set_requests_are_charged_to_the_vmss_policies(make_throttled: Callable[..., Any]) -> None:
    from scale_set_helpers import vmss_body

    arm: Arm = await make_throttled()
    network = await create_network(arm, "rg", with_public_ip=False)
    seen: list[str] = []

    def hook(response: Any) -> None:
        seen.append(response.http_response.headers.get("x-ms-ratelimit-remaining-resource", "").split(";")[0])

    async def first_header(call: Any) -> str:
        seen.clear()
        result = await call
        if hasattr(result, "result"):
            await result.result()
        elif hasattr(result, "__aiter__"):
            [item async for item in result]
        return seen[0]

    vmss = arm.compute.virtual_machine_scale_sets
    instances = arm.compute.virtual_machine_scale_set_vms
    body = vmss_body(network["subnet"].id, capacity=2)
    assert await first_header(vmss.begin_create_or_update("rg", "ss", body, raw_response_hook=hook)) == (
        "Microsoft.Compute/PutVMScaleSet3Min")
    assert await first_header(vmss.get("rg", "ss", raw_response_hook=hook)) == "Microsoft.Compute/GetVMScaleSet3Min"
    assert await first_header(vmss.get_instance_view("rg", "ss", raw_response_hook=hook)) == (
        "Microsoft.Compute/HighCostGetVMScaleSet3Min")
    seen.clear()
    [vm async for vm in instances.list("rg", "ss", raw_response_hook=hook)]
    assert seen[0] == "Microsoft.Compute/HighCostGetVMScaleSet3Min"
    assert await first_header(instances.get("rg", "ss", "0", raw_response_hook=hook)) == (
        "Microsoft.Compute/GetVMScaleSetVM3Min")
    assert await first_header(instances.begin_power_off("rg", "ss", "0", raw_response_hook=hook)) == (
        "Microsoft.Compute/DeleteVMScaleSet3Min")
    assert await first_header(vmss.begin_create_or_update("rg", "ss", body, raw_response_hook=hook)) == (
        "Microsoft.Compute/UpdateVMScaleSet3Min")
    policies = {r["policy"] for r in await arm.admin.requests() if "virtualMachineScaleSets/ss" in r["path"]}
    assert {"Microsoft.Compute/PutVMSS", "Microsoft.Compute/LowCostGetVMSS", "Microsoft.Compute/HighCostGetVMSS",
            "Microsoft.Compute/GetVMSSVMs", "Microsoft.Compute/DeleteVMSS", "Microsoft.Compute/UpdateVMSS"} <= policies
