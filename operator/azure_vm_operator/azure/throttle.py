"""Client-side ARM throttling: wait before Azure Resource Manager has to answer 429.

:class:`ThrottlePolicy` is an azure-core async pipeline policy, installed (after the RetryPolicy, so every attempt
passes it) on every SDK client :class:`~.clients.AzureClients` creates. All of them share one :class:`ArmThrottle`,
which keeps token buckets per subscription:

* **ARM's regional buckets**, by HTTP method: ``ARM/reads`` (GET, HEAD) 250 tokens refilling 25/s,
  ``ARM/deletes`` (DELETE) 200 refilling 10/s, ``ARM/writes`` (everything else) 200 refilling 10/s.
* **Microsoft.Compute's policies** (compute-throttling-limits.md, "refill per minute / max bucket") where the URL
  names one (:func:`classify`): a bucket per subscription and, where Azure has one, per resource (a VM, a scale
  set, a scale set instance). A PUT cannot tell a create from an update, so it takes a token of both (``PutVM``
  and ``UpdateVM``). Polls of ``…/locations/…/operations/{id}`` take ``GetOperation`` per subscription only (the
  URL does not name the resource). **Microsoft.Network**: reads 10,000 and writes + deletes 1,000 per 5 minutes.

A request takes one token of each of its buckets, the narrowest first and ARM's last, waiting (``asyncio.sleep``,
cancellable; a cancelled wait gives its tokens back) while a bucket holds less than one token besides a reserve of
:data:`LATENCY_MARGIN` seconds of refill (Azure's bucket runs behind ours by the requests' latency). Each bucket has
one ``asyncio.Lock``: its waiters queue on it in arrival order and only the head sleeps, for exactly the time the
next token needs; there is no polling loop.

**Refill dating**: a token taken from a full bucket leaves the refill undated until a request of the bucket comes
back (answered or failed). Azure's bucket is full too and stays capped until our first request reaches it, so its
refill starts somewhere between our send and the answer: counting from the answer is late by at most one latency,
counting from the send would be early by as much (a cold connection under load, overtaken by warm ones, found
ARM's bucket up to a second emptier than ours and drew 429s).

**Corrections**: each response's ``x-ms-ratelimit-remaining-subscription-reads/-writes/-deletes`` and
``x-ms-ratelimit-remaining-resource`` (``Microsoft.Compute/PutVM3Min;239,Microsoft.Compute/PutVM30Min;1198``: the
lowest window of a policy counts) lower a bucket that thinks it has more than Azure says; they never raise one
(the client counts requests still in flight, Azure does not). A Compute value is the lower of the resource and
subscription buckets, so it corrects the request's per-resource bucket when it has one, and nothing when the
policy has per-resource buckets but the request has none here (an operation poll: Azure charges the operation's
resource, which the URL does not name). Taking a poll's per-resource value (45 at most) for the subscription's
(15,000) made every poll wait about a second behind the one before it.

**429**: the bucket Azure reports as empty (else every bucket of the request it did not report as holding a
token; the narrowest one per policy) is blocked for the answer's ``Retry-After``: every request to it waits, not
only the retried one (azure-core's RetryPolicy retries that one after the same delay).

**Circuit breaker**, per subscription: :data:`BREAKER_THRESHOLD` (5) 429s within :data:`BREAKER_WINDOW` (30)
seconds open it. Only 429s to requests sent after the previous counted one came back count: requests already in
flight when a 429 arrives could not have known (the buckets handle them). While open, every request to the
subscription waits (it is not failed) for :data:`BREAKER_COOLDOWN` (5) seconds, or the 429's Retry-After if longer.
Then it is half-open: requests flow, paced by the buckets; the first answer that is not a 429 closes it, a 429
re-opens it with twice the cool-down (at most :data:`BREAKER_MAX_COOLDOWN`, 60 s). Answers to requests sent before
a transition do not count for it.

Every limit is multiplied by ``OperatorConfig.arm_throttle_scale``; ``arm_throttle=False`` installs nothing.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping, TypeAlias
from urllib.parse import urlsplit

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy, AsyncRetryPolicy
from azure.core.rest import AsyncHttpResponse, HttpRequest

from .. import metrics

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: A token is only taken while the bucket keeps this many seconds of refill besides (at most all but one token):
#: Azure's bucket runs behind ours by each request's latency, and a request that overtakes an earlier, slower one
#: (a cold TLS connection) would find Azure's bucket that much emptier than ours. ARM reads: 25 tokens of 250.
LATENCY_MARGIN = 1.0
BREAKER_THRESHOLD = 5  #: 429s of one subscription ...
BREAKER_WINDOW = 30.0  #: ... within this many seconds open its breaker
BREAKER_COOLDOWN = 5.0  #: seconds an opened breaker holds requests back (or the 429's Retry-After, if longer)
BREAKER_MAX_COOLDOWN = 60.0  #: the cool-down doubles at each re-opening from half-open, up to this
_PRUNE_EVERY = 1024  #: per-resource buckets created between two sweeps of the idle (full) ones
_EPSILON = 1e-9


@dataclass(frozen=True)
class Limit:
    """A token bucket's size and refill rate (tokens per second)."""

    capacity: float
    per_second: float

    def scaled(self, scale: float) -> Limit:
        return Limit(max(1.0, self.capacity * scale), self.per_second * scale)


ARM_LIMITS: dict[str, Limit] = {
    "ARM/reads": Limit(250, 25), "ARM/writes": Limit(200, 10), "ARM/deletes": Limit(200, 10),
}

#: Microsoft.Compute (compute-throttling-limits.md): policy, the name x-ms-ratelimit-remaining-resource gives it,
#: then "refill per minute/max bucket" per resource ("-": none) and per subscription.
_COMPUTE_TABLE = """
    PutVM            PutVM                    4/12   500/1500
    UpdateVM         UpdateVM                 4/12   500/1500
    DeleteVM         DeleteVM                 4/12   500/1500
    LowCostGetVM     LowCostGet              12/36   8000/24000
    HighCostGetVM    HighCostGet              -      300/900
    GetOperation     GetOperation            15/45   5000/15000
    PutVMSS          PutVMScaleSet            4/12   125/375
    UpdateVMSS       UpdateVMScaleSet         4/12   500/1500
    DeleteVMSS       DeleteVMScaleSet         4/12   175/525
    LowCostGetVMSS   GetVMScaleSet           12/36   800/2400
    HighCostGetVMSS  HighCostGetVMScaleSet   10/30   360/1080
    GetVMSSVMs       GetVMScaleSetVM         12/36   2000/6000
"""


def _per_minute(text: str) -> Limit:
    refill, size = text.split("/")
    return Limit(float(size), float(refill) / 60.0)


def _compute_limits() -> tuple[dict[str, tuple[Limit | None, Limit]], dict[str, str]]:
    limits: dict[str, tuple[Limit | None, Limit]] = {}
    header_names: dict[str, str] = {}
    for row in filter(None, (line.split() for line in _COMPUTE_TABLE.splitlines())):
        name, header, per_resource, per_subscription = row
        resource_limit = None if per_resource == "-" else _per_minute(per_resource)
        limits[f"Microsoft.Compute/{name}"] = (resource_limit, _per_minute(per_subscription))
        header_names[header.lower()] = f"Microsoft.Compute/{name}"
    return limits, header_names


_COMPUTE_LIMITS, _HEADER_NAMES = _compute_limits()
#: bucket name -> (per-resource limit or None, per-subscription limit) of every provider policy
POLICY_LIMITS: dict[str, tuple[Limit | None, Limit]] = {
    **_COMPUTE_LIMITS,
    "Microsoft.Network/NetworkReads": (None, Limit(10000, 2000 / 60.0)),
    "Microsoft.Network/NetworkWrites": (None, Limit(1000, 200 / 60.0)),
}
_WINDOW = re.compile(r"(?P<policy>.+?)\d+min", re.IGNORECASE)  # "PutVM3Min" -> "PutVM"


# ---- reading ARM's headers and URLs --------------------------------------------------------------------------

def rate_limit_buckets(headers: Mapping[str, str]) -> dict[str, float]:
    """Bucket name -> requests left, from ARM's throttling headers (pure; unknown shapes are skipped)."""
    buckets: dict[str, float] = {}
    for kind in ("reads", "writes", "deletes"):
        value = headers.get(f"x-ms-ratelimit-remaining-subscription-{kind}")
        if value is not None and value.strip().isdigit():
            buckets[f"subscription-{kind}"] = float(value)
    for part in (headers.get("x-ms-ratelimit-remaining-resource") or "").split(","):
        name, _, left = part.strip().partition(";")
        if name and left.strip().isdigit():
            buckets[name.strip()] = float(left)
    return buckets


def reported_tokens(headers: Mapping[str, str]) -> dict[str, float]:
    """Our bucket name -> tokens Azure says are left (the lowest of a Compute policy's windows)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    reported: dict[str, float] = {}
    for name, value in rate_limit_buckets(lowered).items():
        if name.startswith("subscription-"):
            reported["ARM/" + name[len("subscription-"):]] = value
            continue
        namespace, _, policy = name.partition("/")
        window = _WINDOW.fullmatch(policy)
        bucket = _HEADER_NAMES.get((window["policy"] if window else policy).lower())
        if namespace.lower() == "microsoft.compute" and bucket is not None:
            reported[bucket] = min(value, reported.get(bucket, math.inf))
    return reported


def subscription_of(url: str) -> str | None:
    parts = url.split("?", 1)[0].split("/")
    lowered = [p.lower() for p in parts]
    return parts[lowered.index("subscriptions") + 1] if "subscriptions" in lowered[:-1] else None


def classify(method: str, url: str) -> list[tuple[str, str]]:
    """The buckets a request takes a token of, narrowest first: ``(bucket name, resource id or "")``."""
    method = method.upper()
    segments = [s for s in urlsplit(url).path.lower().split("/") if s]
    arm = "ARM/reads" if method in ("GET", "HEAD") else "ARM/deletes" if method == "DELETE" else "ARM/writes"
    found: list[tuple[str, str]] = []
    if "providers" in segments:
        at = len(segments) - 1 - segments[::-1].index("providers")  # the innermost provider names the policy
        namespace, base, rest = segments[at + 1:at + 2], "/" + "/".join(segments[:at + 2]), segments[at + 2:]
        if namespace == ["microsoft.compute"]:
            for policy, resource in _compute(method, base, rest):
                name = f"Microsoft.Compute/{policy}"
                if resource is not None and POLICY_LIMITS[name][0] is not None:
                    found.append((name, resource))
                found.append((name, ""))
        elif namespace == ["microsoft.network"]:
            found.append(("Microsoft.Network/NetworkReads" if arm == "ARM/reads" else "Microsoft.Network/NetworkWrites",
                          ""))
    found.sort(key=lambda bucket: bucket[1] == "")  # per-resource buckets before per-subscription ones
    return [*found, (arm, "")]


_VM_DELETES = frozenset({"deallocate"})
_VMSS_DELETES = frozenset({"poweroff", "deallocate", "delete"})
Charge: TypeAlias = "list[tuple[str, str | None]]"


def _compute(method: str, base: str, rest: list[str]) -> Charge:
    """Compute policies of a request below ``…/providers/Microsoft.Compute`` (``rest``: the lowered segments)."""
    read = method in ("GET", "HEAD")
    kind = rest[0] if rest else ""
    if kind == "locations":
        return [("GetOperation", None)] if read and rest[2:3] == ["operations"] and len(rest) == 4 else []
    if kind not in ("virtualmachines", "virtualmachinescalesets"):
        return []
    suffix = "VMSS" if kind == "virtualmachinescalesets" else "VM"
    if len(rest) == 1:  # the collection: list, list all
        return [(f"HighCostGet{suffix}", None)] if read else []
    target, tail = f"{base}/{kind}/{rest[1]}", rest[2:]
    if suffix == "VMSS" and tail[:1] == ["virtualmachines"]:
        return _scale_set_instance(method, target, tail[1:])
    if not tail:
        if read:
            return [(f"LowCostGet{suffix}", target)]
        if method == "PUT":
            return [(f"Put{suffix}", target), (f"Update{suffix}", target)]
        return [(f"Delete{suffix}" if method == "DELETE" else f"Update{suffix}", target)]
    if read:
        return [("HighCostGetVMSS" if suffix == "VMSS" else "LowCostGetVM", target)] if tail == ["instanceview"] else []
    if method == "POST" and len(tail) == 1:
        deletes = _VMSS_DELETES if suffix == "VMSS" else _VM_DELETES
        return [(f"Delete{suffix}" if tail[0] in deletes else f"Update{suffix}", target)]
    return []


def _scale_set_instance(method: str, scale_set: str, tail: list[str]) -> Charge:
    """``tail``: what follows ``…/virtualMachineScaleSets/{name}/virtualMachines``. Instance writes are charged to
    the scale set, instance reads to the instance."""
    if method in ("GET", "HEAD"):
        if not tail:
            return [("HighCostGetVMSS", scale_set)]
        return [("GetVMSSVMs", f"{scale_set}/virtualmachines/{tail[0]}")] if tail[1:] in ([], ["instanceview"]) else []
    if not tail or len(tail) > 2 or (len(tail) == 2) != (method == "POST"):
        return []
    action = tail[1] if len(tail) == 2 else method.lower()
    return [("DeleteVMSS" if action in _VMSS_DELETES else "UpdateVMSS", scale_set)]


# ---- buckets and breakers -------------------------------------------------------------------------------------

class TokenBucket:
    """``limit.capacity`` tokens at most, refilled continuously; starts full. A token is taken only while
    ``reserve`` (``margin`` seconds of refill, see :data:`LATENCY_MARGIN`) would be left; ``blocked_until`` (a clock
    time) holds every token back until then, as a 429's Retry-After asks."""

    def __init__(self, limit: Limit, now: float, margin: float = LATENCY_MARGIN) -> None:
        self.limit = limit
        self.reserve = min(limit.per_second * margin, limit.capacity - 1.0)
        self._tokens = limit.capacity
        self._stamp = now
        self._dated = True  # False: taken from full, and no answer has dated Azure's first charge yet
        self.blocked_until = -math.inf
        self.lock = asyncio.Lock()

    def tokens(self, now: float) -> float:
        if not self._dated:  # Azure's bucket is still full (capped) until our first request reaches it
            self._stamp = max(self._stamp, now)
        elif now > self._stamp:
            self._tokens = min(self.limit.capacity, self._tokens + (now - self._stamp) * self.limit.per_second)
            self._stamp = now
        return self._tokens

    def delay(self, now: float) -> float:
        """Seconds until a token may be taken (0: now)."""
        missing = 1.0 + self.reserve - self.tokens(now)
        if missing <= _EPSILON:
            refill = 0.0
        else:
            refill = missing / self.limit.per_second if self.limit.per_second > 0 else math.inf
        return max(refill, self.blocked_until - now, 0.0)

    def take(self, now: float) -> None:
        tokens = self.tokens(now)
        if tokens >= self.limit.capacity - _EPSILON:
            # Azure's bucket is full too, and stays capped until this request reaches it: its refill starts at
            # that moment, which only an answer dates (at the latest). A refill counted from now would be early
            # by the request's latency, and a slow first request (a cold connection under load) overtaken by
            # faster ones would find Azure's bucket emptier than ours by that much.
            self._dated = False
        self._tokens = tokens - 1.0

    def answered(self, now: float) -> None:
        """An answer (or a failure) came back for a request of this bucket: Azure had charged it by now."""
        if not self._dated:
            self._dated = True
            self._stamp = now

    def give_back(self, now: float) -> None:
        self._tokens = min(self.limit.capacity, self.tokens(now) + 1.0)

    def correct(self, remaining: float, now: float) -> None:
        """Believe Azure when it says fewer tokens are left than we think."""
        self._tokens = min(self.tokens(now), remaining)

    def block(self, seconds: float, now: float) -> None:
        """A 429's Retry-After: no token for ``seconds`` (the refill goes on; the headers say how empty it is)."""
        self.blocked_until = max(self.blocked_until, now + seconds)

    def idle(self, now: float) -> bool:
        return self.tokens(now) >= self.limit.capacity and now >= self.blocked_until and not self.lock.locked()


class CircuitBreaker:
    """Per subscription: opens after ``threshold`` 429s within ``window`` seconds (see the module docstring)."""

    CLOSED, HALF_OPEN, OPEN = 0, 1, 2

    def __init__(self, threshold: int = BREAKER_THRESHOLD, window: float = BREAKER_WINDOW,
                 cooldown: float = BREAKER_COOLDOWN, max_cooldown: float = BREAKER_MAX_COOLDOWN) -> None:
        self.threshold, self.window = threshold, window
        self.base_cooldown, self.max_cooldown = cooldown, max_cooldown
        self.cooldown = cooldown
        self.state = self.CLOSED
        self.open_until = -math.inf
        self.changed_at = -math.inf  #: answers to requests sent before this do not move the breaker
        self._last_counted = -math.inf
        self._recent: deque[float] = deque()

    def delay(self, now: float) -> float:
        """Seconds requests must still wait (0 unless open); an open breaker whose time is up turns half-open."""
        if self.state == self.OPEN:
            if now < self.open_until:
                return self.open_until - now
            self.state, self.changed_at = self.HALF_OPEN, now
        return 0.0

    def throttled(self, now: float, sent_at: float, retry_after: float | None) -> None:
        """A 429 to a request sent at ``sent_at``."""
        wait = retry_after or 0.0
        if self.state == self.OPEN:
            self.open_until = max(self.open_until, now + wait)
            return
        if sent_at < self.changed_at or sent_at < self._last_counted:
            return
        self._last_counted = now
        if self.state == self.HALF_OPEN:
            self.cooldown = min(self.max_cooldown, self.cooldown * 2)
            self._open(now, wait)
            return
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - self.window:
            self._recent.popleft()
        if len(self._recent) >= self.threshold:
            self._open(now, wait)

    def succeeded(self, now: float, sent_at: float) -> None:
        """An answer other than 429 to a request sent at ``sent_at``."""
        if self.state == self.HALF_OPEN and sent_at >= self.changed_at:
            self.state, self.changed_at, self.cooldown = self.CLOSED, now, self.base_cooldown
            self._recent.clear()

    def _open(self, now: float, retry_after: float) -> None:
        self.state, self.changed_at = self.OPEN, now
        self.open_until = now + max(self.cooldown, retry_after)
        self._recent.clear()


# ---- the shared state -----------------------------------------------------------------------------------------

@dataclass
class Plan:
    """The buckets of one request attempt (``(name, resource, bucket)``, narrowest first) and when it was sent."""

    subscription: str
    buckets: list[tuple[str, str, TokenBucket]]
    sent_at: float = field(default=-math.inf)


class ArmThrottle:
    """Every bucket and breaker of one :class:`~.clients.AzureClients`, shared by all its SDK clients.

    :param scale: multiplier of every seeded bucket size and refill rate.
    :param margin: seconds of refill each bucket keeps in reserve (:data:`LATENCY_MARGIN`).
    :param clock: monotonic seconds; :param sleep: the coroutine that waits (both injectable for tests).
    """

    def __init__(self, scale: float = 1.0, *, margin: float = LATENCY_MARGIN, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep, breaker: Callable[[], CircuitBreaker] = CircuitBreaker) -> None:
        if scale <= 0:
            raise ValueError("the ARM throttle scale must be > 0")
        self.scale, self.margin = scale, margin
        self._clock, self._sleep, self._new_breaker = clock, sleep, breaker
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._created = 0

    def bucket(self, subscription: str, name: str, resource: str = "") -> TokenBucket:
        key = (subscription.lower(), name, resource)
        bucket = self._buckets.get(key)
        if bucket is None:
            per_resource, per_subscription = POLICY_LIMITS.get(name) or (None, ARM_LIMITS[name])
            limit = per_resource if resource and per_resource is not None else per_subscription
            bucket = self._buckets[key] = TokenBucket(limit.scaled(self.scale), self._clock(), self.margin)
            if resource:
                self._created += 1
                if self._created % _PRUNE_EVERY == 0:
                    self._prune()
        return bucket

    def breaker(self, subscription: str) -> CircuitBreaker:
        breaker = self._breakers.get(subscription.lower())
        if breaker is None:
            breaker = self._breakers[subscription.lower()] = self._new_breaker()
            _record_breaker(subscription, breaker)
        return breaker

    def plan(self, method: str, url: str) -> Plan:
        subscription = subscription_of(url) or ""
        return Plan(subscription, [(name, resource, self.bucket(subscription, name, resource))
                                   for name, resource in classify(method, url)])

    async def acquire(self, plan: Plan) -> None:
        """Take a token of each bucket of the plan, waiting as long as they (or the breaker) say."""
        taken: list[TokenBucket] = []
        try:
            for name, resource, bucket in plan.buckets:
                await self._take(plan.subscription, _label(name, resource), bucket)
                taken.append(bucket)
        except BaseException:  # cancelled (or failed) while waiting: the tokens were not used
            now = self._clock()
            for bucket in taken:
                bucket.give_back(now)
            raise
        plan.sent_at = self._clock()

    async def _take(self, subscription: str, label: str, bucket: TokenBucket) -> None:
        started = self._clock()
        breaker = self.breaker(subscription)
        async with bucket.lock:
            while True:
                now = self._clock()
                state = breaker.state
                delay = max(bucket.delay(now), breaker.delay(now))
                if breaker.state != state:
                    _record_breaker(subscription, breaker)
                if delay <= 0:
                    bucket.take(now)
                    break
                await self._sleep(delay)
        _record_tokens(subscription, label, bucket, now)
        metrics.ARM_THROTTLE_WAIT.labels(_sub_label(subscription), label).observe(now - started)

    def observe(self, plan: Plan, status: int, headers: Mapping[str, str], retry_after: float | None) -> None:
        """Correct the plan's buckets from an answer's headers; a 429 blocks and may open the breaker."""
        now = self._clock()
        self.answered(plan, now)
        reported = reported_tokens(headers)
        named_empty = any(value < 1.0 for value in reported.values())
        seen: set[str] = set()
        for name, resource, bucket in plan.buckets:  # narrowest first: the first bucket of a policy gets its value
            # Azure's value may be of a per-resource bucket this request has none of here (an operation poll: its
            # URL does not name the resource): it says nothing of the per-subscription one
            first = name not in seen and not _untracked(name, resource)
            seen.add(name)
            if first and name in reported:
                bucket.correct(reported[name], now)
            # a 429 blocks the bucket Azure names as empty; when it names none, each one it did not say has tokens
            empty = reported[name] < 1.0 if name in reported else not named_empty
            if status == 429 and empty and (first or _untracked(name, resource)):
                if first:  # an untracked one is not blocked: the empty bucket is one operation's, not everyone's
                    bucket.block(retry_after or 0.0, now)
                metrics.ARM_THROTTLED.labels(_sub_label(plan.subscription), _label(name, resource)).inc()
            _record_tokens(plan.subscription, _label(name, resource), bucket, now)
        breaker = self.breaker(plan.subscription)
        state = breaker.state
        if status == 429:
            breaker.throttled(now, plan.sent_at, retry_after)
        else:
            breaker.succeeded(now, plan.sent_at)
        if breaker.state != state:
            _record_breaker(plan.subscription, breaker)

    def answered(self, plan: Plan, now: float | None = None) -> None:
        """A request of the plan came back (answered or failed): its buckets' refill is dated from now on."""
        now = self._clock() if now is None else now
        for _name, _resource, bucket in plan.buckets:
            bucket.answered(now)

    def _prune(self) -> None:
        """Forget per-resource buckets that are full again: a new one would be the same."""
        now = self._clock()
        for key in [k for k, b in self._buckets.items() if k[2] and b.idle(now)]:
            del self._buckets[key]


def _untracked(name: str, resource: str) -> bool:
    """A per-subscription bucket of a policy that also has per-resource buckets: what Azure reports for the
    policy is the lower of the two, and the request's own per-resource one is unknown here."""
    limits = POLICY_LIMITS.get(name)
    return not resource and limits is not None and limits[0] is not None


def _label(name: str, resource: str) -> str:
    return f"{name}:resource" if resource else name


def _sub_label(subscription: str) -> str:
    return subscription or "none"


def _record_tokens(subscription: str, label: str, bucket: TokenBucket, now: float) -> None:
    if not label.endswith(":resource"):  # one series per subscription-wide bucket, never per resource
        metrics.ARM_THROTTLE_TOKENS.labels(_sub_label(subscription), label).set(bucket.tokens(now))


def _record_breaker(subscription: str, breaker: CircuitBreaker) -> None:
    metrics.ARM_BREAKER_STATE.labels(_sub_label(subscription)).set(breaker.state)


# ---- the pipeline policy --------------------------------------------------------------------------------------

_RETRY_AFTER = AsyncRetryPolicy()  # only its get_retry_after: Retry-After, retry-after-ms, x-ms-retry-after-ms


class ThrottlePolicy(AsyncHTTPPolicy[HttpRequest, AsyncHttpResponse]):
    """Waits for the request's tokens, sends it, and feeds the answer back into the shared :class:`ArmThrottle`.
    One instance per SDK client (a policy belongs to one pipeline); the throttle is shared."""

    def __init__(self, throttle: ArmThrottle) -> None:
        self.throttle = throttle

    async def send(self, request: PipelineRequest[HttpRequest]) -> PipelineResponse[HttpRequest, AsyncHttpResponse]:
        plan = self.throttle.plan(request.http_request.method, request.http_request.url)
        await self.throttle.acquire(plan)
        try:
            response = await self.next.send(request)
        except BaseException:
            self.throttle.answered(plan)
            raise
        http_response = response.http_response
        retry_after = _RETRY_AFTER.get_retry_after(response) if http_response.status_code == 429 else None
        self.throttle.observe(plan, http_response.status_code, http_response.headers, retry_after)
        return response
