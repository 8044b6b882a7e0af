"""Client-side ARM throttling (azure/throttle.py): bucket arithmetic and the breaker with a fake clock, the mapping
of requests to buckets, and the pipeline policy through azure-core's AsyncPipeline with a fake transport."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from azure.core.pipeline import AsyncPipeline
from azure.core.pipeline.policies import AsyncRetryPolicy
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest import HttpRequest
from azure.core.utils import CaseInsensitiveDict
from prometheus_client import REGISTRY

from azure_vm_operator.azure.clients import AzureClients
from azure_vm_operator.azure.throttle import (
    ArmThrottle, CircuitBreaker, Limit, ThrottlePolicy, TokenBucket, classify, reported_tokens,
)
from azure_vm_operator.config import OperatorConfig

SUB = "00000000-0000-0000-0000-0000000000aa"
ARM = f"https://arm.test/subscriptions/{SUB}"
RG = f"{ARM}/resourceGroups/rg"
VM = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1"
VM_ID = VM[len("https://arm.test"):].lower()


class FakeClock:
    """Virtual time: ``sleep`` moves the clock instead of waiting (one sleeper at a time, as behind a bucket lock)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


# ---- the bucket -----------------------------------------------------------------------------------------------

def test_bucket_starts_full_refills_continuously_and_is_capped():
    bucket = TokenBucket(Limit(capacity=3, per_second=2), now=0.0, margin=0)
    for _ in range(3):
        assert bucket.delay(0.0) == 0
        bucket.take(0.0)
    bucket.answered(0.0)  # the first request's answer dates Azure's first charge
    assert bucket.tokens(0.0) == 0
    assert bucket.delay(0.0) == pytest.approx(0.5)  # one token at 2/s
    assert bucket.tokens(0.25) == pytest.approx(0.5)
    assert bucket.delay(0.25) == pytest.approx(0.25)
    assert bucket.tokens(100.0) == 3  # never above capacity


def test_corrections_from_azure_only_lower_the_estimate():
    bucket = TokenBucket(Limit(10, 1), now=0.0, margin=0)
    bucket.correct(4, 0.0)
    assert bucket.tokens(0.0) == 4
    bucket.correct(9, 0.0)  # Azure has not seen our requests in flight yet: never raise
    assert bucket.tokens(0.0) == 4
    bucket.correct(0, 1.0)
    assert bucket.delay(1.0) == pytest.approx(1.0)


def test_retry_after_blocks_the_bucket_while_the_refill_goes_on():
    bucket = TokenBucket(Limit(250, 25), now=0.0, margin=0)
    bucket.correct(0, now=10.0)  # the 429's x-ms-ratelimit-remaining-subscription-reads: 0
    bucket.block(3.0, now=10.0)
    assert bucket.delay(10.0) == pytest.approx(3.0)  # the refill alone would allow a request after 0.04 s
    assert bucket.delay(12.0) == pytest.approx(1.0)
    assert bucket.delay(13.0) == 0
    assert bucket.tokens(13.0) == pytest.approx(75)  # refilled while blocked, as ARM's bucket does
    bucket.block(1.0, now=13.0)
    bucket.block(0.5, now=13.0)  # a shorter Retry-After never shortens a block
    assert bucket.delay(13.0) == pytest.approx(1.0)
    assert bucket.tokens(13.0) == pytest.approx(75)  # a block alone does not empty a bucket


def test_a_margin_of_refill_stays_in_reserve_for_requests_that_overtake_slower_ones():
    bucket = TokenBucket(Limit(250, 25), now=0.0)  # the default margin: one second of refill
    assert bucket.reserve == 25
    for _ in range(225):
        bucket.take(0.0)
    assert bucket.delay(0.0) == pytest.approx(1 / 25)
    assert TokenBucket(Limit(1, 25), now=0.0).reserve == 0  # a bucket always lets one request through


def test_refill_after_a_full_bucket_counts_from_the_first_answer_not_the_first_send():
    """Azure's bucket stays full (capped) until our first request reaches it. Counting refill from our send would
    run ahead of Azure by that request's latency: a cold connection under load, overtaken by faster ones."""
    bucket = TokenBucket(Limit(250, 25), now=0.0)
    for _ in range(225):
        bucket.take(0.0)
    assert bucket.tokens(2.0) == pytest.approx(25)  # no answer yet: nothing known to have refilled
    assert bucket.delay(2.0) > 0
    bucket.answered(2.0)  # the first answer: Azure charged by now at the latest
    assert bucket.tokens(3.0) == pytest.approx(50)
    bucket.answered(3.0)  # later answers do not move the date back or forward
    assert bucket.tokens(3.0) == pytest.approx(50)
    partial = TokenBucket(Limit(10, 1), now=0.0, margin=0)
    partial.take(0.0)
    partial.answered(0.0)
    partial.take(0.5)  # taken from a bucket that was not full (9.5): Azure's is refilling already
    assert partial.tokens(1.0) == pytest.approx(9)


def test_scale_multiplies_sizes_and_rates_but_keeps_one_token():
    assert Limit(250, 25).scaled(0.1) == Limit(25, 2.5)
    assert Limit(12, 4 / 60).scaled(0.01).capacity == 1


# ---- the breaker ----------------------------------------------------------------------------------------------

def test_breaker_opens_after_repeated_429s_within_the_window_only():
    breaker = CircuitBreaker(threshold=3, window=10, cooldown=5, max_cooldown=20)
    for t in (0, 11, 22):  # spread out: never 3 within 10 s
        breaker.throttled(t, sent_at=t, retry_after=1)
    assert breaker.state == CircuitBreaker.CLOSED
    breaker.throttled(23, sent_at=23, retry_after=1)
    assert breaker.state == CircuitBreaker.CLOSED
    breaker.throttled(24, sent_at=24, retry_after=1)  # 22, 23, 24
    assert breaker.state == CircuitBreaker.OPEN
    assert breaker.delay(24) == pytest.approx(5)
    breaker.throttled(25, sent_at=23.5, retry_after=8)  # in flight when it opened: extends to its Retry-After
    assert breaker.delay(25) == pytest.approx(8)


def test_breaker_counts_a_burst_of_429s_to_requests_in_flight_once():
    breaker = CircuitBreaker(threshold=3, window=10, cooldown=5)
    for arrived in (1.0, 1.1, 1.2, 1.3):  # all four were sent at 0.5, before the first 429 came back
        breaker.throttled(arrived, sent_at=0.5, retry_after=1)
    assert breaker.state == CircuitBreaker.CLOSED
    breaker.throttled(2.5, sent_at=2.0, retry_after=1)  # sent after it: ARM still says no
    breaker.throttled(3.5, sent_at=3.0, retry_after=1)
    assert breaker.state == CircuitBreaker.OPEN


def test_breaker_half_open_closes_on_success_and_reopens_longer_on_429():
    breaker = CircuitBreaker(threshold=1, window=10, cooldown=5, max_cooldown=12)
    breaker.throttled(0, sent_at=0, retry_after=1)
    assert breaker.delay(4.9) == pytest.approx(0.1)
    assert breaker.delay(5) == 0 and breaker.state == CircuitBreaker.HALF_OPEN
    breaker.throttled(5.1, sent_at=4.0, retry_after=1)  # sent before half-open: does not count
    assert breaker.state == CircuitBreaker.HALF_OPEN
    breaker.throttled(5.2, sent_at=5.0, retry_after=1)
    assert breaker.state == CircuitBreaker.OPEN and breaker.delay(5.2) == pytest.approx(10)  # doubled cool-down
    breaker.delay(15.2)
    breaker.throttled(15.3, sent_at=15.2, retry_after=1)
    assert breaker.delay(15.3) == pytest.approx(12)  # capped
    breaker.delay(27.3)
    breaker.succeeded(27.4, sent_at=27.0)  # sent while open: proves nothing
    assert breaker.state == CircuitBreaker.HALF_OPEN
    breaker.succeeded(27.5, sent_at=27.3)
    assert breaker.state == CircuitBreaker.CLOSED and breaker.cooldown == 5


# ---- requests -> buckets, headers -> buckets -----------------------------------------------------------------

@pytest.mark.parametrize(("method", "url", "expected"), [
    ("GET", f"{RG}?api-version=1", [("ARM/reads", "")]),
    ("HEAD", RG, [("ARM/reads", "")]),
    ("DELETE", RG, [("ARM/deletes", "")]),
    ("PATCH", RG, [("ARM/writes", "")]),
    ("GET", f"{VM}?$expand=instanceView", [("Microsoft.Compute/LowCostGetVM", VM_ID),
                                           ("Microsoft.Compute/LowCostGetVM", ""), ("ARM/reads", "")]),
    ("PUT", VM, [("Microsoft.Compute/PutVM", VM_ID), ("Microsoft.Compute/UpdateVM", VM_ID),
                 ("Microsoft.Compute/PutVM", ""), ("Microsoft.Compute/UpdateVM", ""), ("ARM/writes", "")]),
    ("POST", f"{VM}/deallocate", [("Microsoft.Compute/DeleteVM", VM_ID), ("Microsoft.Compute/DeleteVM", ""),
                                  ("ARM/writes", "")]),
    ("POST", f"{VM}/start", [("Microsoft.Compute/UpdateVM", VM_ID), ("Microsoft.Compute/UpdateVM", ""),
                             ("ARM/writes", "")]),
    ("GET", f"{RG}/providers/Microsoft.Compute/virtualMachines", [("Microsoft.Compute/HighCostGetVM", ""),
                                                                  ("ARM/reads", "")]),
    ("GET", f"{ARM}/providers/Microsoft.Compute/locations/westeurope/operations/op1?monitor=true",
     [("Microsoft.Compute/GetOperation", ""), ("ARM/reads", "")]),
    ("GET", f"{VM}/providers/Microsoft.Insights/metrics", [("ARM/reads", "")]),
    ("GET", f"{VM}/vmSizes", [("ARM/reads", "")]),
    ("POST", f"{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/3/powerOff",
     [("Microsoft.Compute/DeleteVMSS", f"{VM_ID.rsplit('/', 2)[0]}/virtualmachinescalesets/ss"),
      ("Microsoft.Compute/DeleteVMSS", ""), ("ARM/writes", "")]),
    ("GET", f"{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/3/instanceView",
     [("Microsoft.Compute/GetVMSSVMs", f"{VM_ID.rsplit('/', 2)[0]}/virtualmachinescalesets/ss/virtualmachines/3"),
      ("Microsoft.Compute/GetVMSSVMs", ""), ("ARM/reads", "")]),
    ("DELETE", f"{RG}/providers/Microsoft.Network/publicIPAddresses/ip",
     [("Microsoft.Network/NetworkWrites", ""), ("ARM/deletes", "")]),
])
def test_requests_map_to_their_buckets_narrowest_first(method, url, expected):
    assert classify(method, url) == expected


def test_reported_tokens_reads_arm_and_compute_headers():
    headers = {"X-Ms-Ratelimit-Remaining-Subscription-Reads": "249",
               "x-ms-ratelimit-remaining-resource": "Microsoft.Compute/LowCostGet3Min;30,Microsoft.Compute/"
               "LowCostGet30Min;20,Microsoft.Compute/SomethingNew3Min;0,Microsoft.Compute/GetVMScaleSet3Min;7"}
    assert reported_tokens(headers) == {"ARM/reads": 249, "Microsoft.Compute/LowCostGetVM": 20,  # lowest window
                                        "Microsoft.Compute/LowCostGetVMSS": 7}


def test_a_compute_header_corrects_the_per_resource_bucket_and_a_429_blocks_only_the_empty_one():
    clock = FakeClock()
    throttle = ArmThrottle(margin=0, clock=clock, sleep=clock.sleep)
    plan = throttle.plan("GET", VM)
    asyncio.run(throttle.acquire(plan))
    throttle.observe(plan, 429, {"x-ms-ratelimit-remaining-subscription-reads": "240",
                                 "x-ms-ratelimit-remaining-resource": "Microsoft.Compute/LowCostGet3Min;0"}, 6.0)
    resource = throttle.bucket(SUB, "Microsoft.Compute/LowCostGetVM", VM_ID)
    assert resource.delay(clock()) == pytest.approx(6.0)
    assert throttle.bucket(SUB, "Microsoft.Compute/LowCostGetVM").delay(clock()) == 0
    assert throttle.bucket(SUB, "ARM/reads").tokens(clock()) == 240
    other_vm = throttle.bucket(SUB, "Microsoft.Compute/LowCostGetVM", VM_ID.replace("vm1", "vm2"))
    assert other_vm.delay(clock()) == 0
    assert sample("azvm_arm_throttled_responses_total", bucket="Microsoft.Compute/LowCostGetVM:resource") >= 1


def test_an_operation_polls_per_resource_value_neither_lowers_nor_blocks_the_subscriptions_bucket():
    """Azure charges a poll to the operation's resource (GetOperation: 45 per resource, 15,000 per subscription) and
    reports the lower bucket; the poll's URL does not name the resource, so the client keeps no bucket for it."""
    clock = FakeClock()
    throttle = ArmThrottle(clock=clock, sleep=clock.sleep)  # the default margin: 83 tokens in reserve
    poll = f"{ARM}/providers/Microsoft.Compute/locations/westeurope/operations/op1"
    subscription = throttle.bucket(SUB, "Microsoft.Compute/GetOperation")
    for _ in range(3):
        plan = throttle.plan("GET", poll)
        asyncio.run(throttle.acquire(plan))
        throttle.observe(plan, 200, {"x-ms-ratelimit-remaining-resource": "Microsoft.Compute/GetOperation3Min;44"},
                         None)
    assert clock.sleeps == [] and subscription.tokens(clock()) == pytest.approx(15000 - 3)
    plan = throttle.plan("GET", poll)
    asyncio.run(throttle.acquire(plan))
    throttle.observe(plan, 429, {"x-ms-ratelimit-remaining-resource": "Microsoft.Compute/GetOperation3Min;0"}, 5.0)
    assert subscription.delay(clock()) == 0  # one operation polled too often; the others may go on
    assert sample("azvm_arm_throttled_responses_total", bucket="Microsoft.Compute/GetOperation") >= 1


def test_a_429_without_headers_blocks_every_bucket_of_the_request():
    clock = FakeClock()
    throttle = ArmThrottle(margin=0, clock=clock, sleep=clock.sleep)
    plan = throttle.plan("PUT", f"{RG}/providers/Microsoft.Network/networkInterfaces/nic")
    asyncio.run(throttle.acquire(plan))
    throttle.observe(plan, 429, {}, 2.0)
    for name in ("Microsoft.Network/NetworkWrites", "ARM/writes"):
        assert throttle.bucket(SUB, name).delay(clock()) == pytest.approx(2.0)
    assert throttle.bucket(SUB, "ARM/reads").delay(clock()) == 0


# ---- the policy in a pipeline ---------------------------------------------------------------------------------

class FakeResponse:
    def __init__(self, request: HttpRequest, status: int, headers: dict[str, str]) -> None:
        self.request, self.status_code, self.headers = request, status, CaseInsensitiveDict(headers)
        self.reason = "fake"

    async def read(self) -> bytes:
        return b""

    def close(self) -> None:
        pass


class FakeTransport(AsyncHttpTransport):
    """Answers from ``answer(request) -> (status, headers)`` (default 200), recording the (fake) send times."""

    def __init__(self, clock: Any, answer: Any = None) -> None:
        self.clock, self.answer = clock, answer or (lambda request: (200, {}))
        self.sent: list[tuple[float, str, int]] = []

    async def send(self, request: HttpRequest, **kwargs: Any) -> FakeResponse:
        status, headers = self.answer(request)
        self.sent.append((self.clock(), request.url, status))
        return FakeResponse(request, status, headers)

    async def sleep(self, duration: float) -> None:  # RetryPolicy sleeps through the transport
        await self.clock.sleep(duration)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def __aexit__(self, *args: Any) -> None:
        pass


def pipeline(throttle: ArmThrottle, transport: FakeTransport, retry: bool = False) -> Any:
    policies: list[Any] = [AsyncRetryPolicy(retry_backoff_factor=0)] if retry else []
    return AsyncPipeline(transport, policies=[*policies, ThrottlePolicy(throttle)])


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"subscription": SUB, **labels}) or 0.0


async def test_n_concurrent_requests_against_a_bucket_of_k_get_k_at_once_and_the_rest_at_the_refill_rate():
    clock = FakeClock()
    throttle = ArmThrottle(0.02, margin=0, clock=clock, sleep=clock.sleep)  # ARM reads: 5 tokens, 0.5 per second
    transport = FakeTransport(clock)
    run = pipeline(throttle, transport).run
    responses = await asyncio.gather(*(run(HttpRequest("GET", RG)) for _ in range(8)))
    assert [r.http_response.status_code for r in responses] == [200] * 8
    times = sorted(t - 100.0 for t, _, _ in transport.sent)
    assert times == pytest.approx([0, 0, 0, 0, 0, 2, 4, 6])
    assert clock.sleeps == pytest.approx([2, 2, 2])  # one sleeper at a time, exactly the refill: no polling
    assert sample("azvm_arm_throttle_tokens", bucket="ARM/reads") == pytest.approx(0)
    writes = await run(HttpRequest("PUT", RG))  # another bucket: no wait
    assert writes.http_response.status_code == 200 and transport.sent[-1][0] == clock()


async def test_retry_after_of_one_request_holds_back_every_request_to_that_bucket():
    clock = FakeClock()
    throttle = ArmThrottle(margin=0, clock=clock, sleep=clock.sleep)
    answers = iter([(429, {"Retry-After": "3", "x-ms-ratelimit-remaining-subscription-reads": "0"})])
    transport = FakeTransport(clock, lambda request: next(answers, (200, {})))
    run = pipeline(throttle, transport, retry=True).run

    first = asyncio.ensure_future(run(HttpRequest("GET", RG)))
    await asyncio.sleep(0.01)  # the 429 is in; the RetryPolicy sleeps its 3 s (fake time)
    others = await asyncio.gather(*(run(HttpRequest("GET", f"{RG}/resources")) for _ in range(3)))
    assert (await first).http_response.status_code == 200
    assert [r.http_response.status_code for r in others] == [200] * 3
    assert [(round(t - 100, 3), status) for t, _, status in transport.sent] == [
        (0, 429), (3, 200), (3, 200), (3, 200), (3, 200)]
    assert sample("azvm_arm_throttled_responses_total", bucket="ARM/reads") >= 1


async def test_the_breaker_makes_requests_wait_out_the_cool_down_instead_of_failing():
    clock = FakeClock()
    throttle = ArmThrottle(margin=0, clock=clock, sleep=clock.sleep,
                           breaker=lambda: CircuitBreaker(threshold=2, window=10, cooldown=20))
    answers = iter([(429, {"Retry-After": "1"})] * 2)
    transport = FakeTransport(clock, lambda request: next(answers, (200, {})))
    run = pipeline(throttle, transport).run
    for _ in range(2):
        assert (await run(HttpRequest("GET", RG))).http_response.status_code == 429  # no RetryPolicy here
    assert sample("azvm_arm_circuit_breaker_state") == CircuitBreaker.OPEN
    response = await run(HttpRequest("PATCH", RG))  # another bucket, same subscription: waits for the breaker
    assert response.http_response.status_code == 200 and clock() - 100 == pytest.approx(1 + 20)
    assert sample("azvm_arm_circuit_breaker_state") == CircuitBreaker.CLOSED
    other = await run(HttpRequest("GET", RG.replace(SUB, "another-subscription")))
    assert other.http_response.status_code == 200 and clock() - 100 == pytest.approx(21)


async def test_a_cancelled_wait_gives_its_tokens_back_and_frees_the_bucket():
    throttle = ArmThrottle(0.004)  # ARM reads: 1 token, 0.1 per second (real clock); the VM's own bucket: 1 token
    transport = FakeTransport(time.monotonic)
    run = pipeline(throttle, transport).run
    await run(HttpRequest("GET", RG))  # ARM reads is empty now
    waiting = asyncio.ensure_future(run(HttpRequest("GET", VM)))  # takes the VM's tokens, then waits for ARM's
    await asyncio.sleep(0.05)
    vm_bucket = throttle.bucket(SUB, "Microsoft.Compute/LowCostGetVM", VM_ID)
    assert vm_bucket.tokens(time.monotonic()) < 0.01
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert vm_bucket.tokens(time.monotonic()) == 1
    assert not throttle.bucket(SUB, "ARM/reads").lock.locked()
    assert len(transport.sent) == 1


async def test_waiting_does_not_block_the_event_loop():
    throttle = ArmThrottle(0.04, margin=0)  # ARM reads: 10 tokens, 1 per second (real clock)
    transport = FakeTransport(time.monotonic)
    run = pipeline(throttle, transport).run
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.ensure_future(ticker())
    started = time.monotonic()
    await asyncio.gather(*(run(HttpRequest("GET", RG)) for _ in range(11)))
    elapsed = time.monotonic() - started
    ticking.cancel()
    assert 0.9 <= elapsed < 2.0
    assert ticks >= 40  # the loop kept running while the eleventh request waited for its token


# ---- configuration and installation ---------------------------------------------------------------------------

class NoCredential:
    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("not used")

    async def close(self) -> None:
        pass


def policies_of(client: Any) -> list[Any]:
    return list(client._client._pipeline._impl_policies)  # noqa: SLF001 - what the SDK built


async def test_azure_clients_install_one_policy_per_client_sharing_one_throttle():
    clients = AzureClients(OperatorConfig(arm_throttle_scale=0.5), credential=NoCredential())
    first, second = clients.for_subscription("s1"), clients.for_subscription("s2")
    policies = [p for c in (first.compute, first.network, second.resources) for p in policies_of(c)
                if isinstance(p, ThrottlePolicy)]
    assert len(policies) == 3 and len({id(p) for p in policies}) == 3
    assert {id(p.throttle) for p in policies} == {id(clients.throttle)}
    assert clients.throttle is not None and clients.throttle.scale == 0.5
    await clients.close()

    off = AzureClients(OperatorConfig(arm_throttle=False), credential=NoCredential())
    assert off.throttle is None
    assert not [p for p in policies_of(off.for_subscription("s1").compute) if isinstance(p, ThrottlePolicy)]
    await off.close()


async def test_every_sdk_client_shares_one_connection_pool_whose_tls_context_is_built_once():
    """azure-core given connection_verify=<CA file> builds an SSLContext per request, and aiohttp pools connections
    by SSLContext: no connection was reused. One session, the CA in its connector, no per-request TLS setting."""
    import ssl


    clients = AzureClients(OperatorConfig(), credential=NoCredential())
    first, second = clients.for_subscription("s1"), clients.for_subscription("s2")
    transports = [c._client._pipeline._transport  # noqa: SLF001 - what the SDK built
                  for c in (first.compute, first.network, second.resources)]
    assert len({id(t.session) for t in transports}) == 1
    assert all(t.connection_config.verify is True for t in transports)  # so azure-core sets no ssl= per request
    assert isinstance(transports[0].session.connector._ssl, ssl.SSLContext)  # noqa: SLF001
    session = transports[0].session
    await clients.close()
    assert session.closed


def test_settings_from_the_environment():
    config = OperatorConfig.from_env({"AZVM_ARM_THROTTLE": "false", "AZVM_ARM_THROTTLE_SCALE": "0.25"})
    assert config.arm_throttle is False and config.arm_throttle_scale == 0.25
    assert OperatorConfig.from_env({}).arm_throttle is True
    with pytest.raises(ValueError):
        ArmThrottle(0)
