"""ARM, Microsoft.Compute and Microsoft.Network throttling: token buckets installed as a request policy.

Every bucket starts full, holds at most ``capacity`` tokens and refills continuously at ``rate`` tokens per second.
A request takes one token from every bucket that applies to it; it is admitted only if each of them holds at least
one whole token. Buckets that apply to a request:

1. ARM's regional bucket of the subscription + principal (the client id of the token), by ARM verb: reads (GET,
   HEAD) 250 refilling 25/s, writes (PUT, PATCH, POST) 200 refilling 10/s, deletes 200 refilling 10/s. ARM checks
   it first: a request it rejects never reaches the resource provider.
2. The resource provider's policy (:data:`COMPUTE_POLICIES`, :data:`NETWORK_POLICIES`): a per-subscription bucket
   and, where Azure has one, a per-resource bucket. Both must hold a token. A request the provider rejects has
   already spent its ARM token.

All sizes and refill rates are multiplied by ``scale``; a bucket always holds at least one token. The emulator is a
single region, so the per-region policies of Compute are per subscription here.

Response headers (computed right after the request was charged):

* ``x-ms-ratelimit-remaining-subscription-reads`` / ``-writes`` / ``-deletes`` (the one of the request's verb):
  whole tokens left in the ARM bucket.
* Compute only: ``x-ms-ratelimit-remaining-resource: Microsoft.Compute/{Header}3Min;{a},Microsoft.Compute/{Header}30Min;{b}``.
  Compute buckets hold three minutes of refill, so ``a`` is the whole tokens left now and ``b`` those plus 27 minutes
  of refill (a full bucket reads 3 and 30 minutes of refill). With a per-resource bucket, the lower of the two
  buckets is reported (the one that binds).

A rejected request gets 429, ``Retry-After`` (whole seconds until every bucket it needs holds a token, at least 1)
and ARM's error body: for a provider policy Compute's ``OperationNotAllowed`` with a ``TooManyRequests`` detail whose
``target`` is ``{Header}3Min`` (``{Header}5Min`` for the network policies) and whose message is the JSON
``{"operationGroup", "startTime", "endTime", "allowedRequestCount", "measuredRequestCount"}`` (window = the last
3 (5) minutes, allowed = the bucket size, measured = requests counted against the bucket in the window, this one
included); for ARM's bucket ARM's ``SubscriptionRequestsThrottled``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .policies import PolicyRequest
from .routing import Reply

#: A monotonic clock in seconds (``time.monotonic``); injectable so bucket math can be tested without sleeping.
Clock = Callable[[], float]


@dataclass(frozen=True)
class Policy:
    """A resource provider throttling policy: ``(refill per minute, max bucket)`` per subscription and resource."""

    name: str
    namespace: str
    header: str
    subscription: tuple[float, float]
    resource: tuple[float, float] | None = None
    window_minutes: int = 3

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


def _compute(name: str, header: str, resource: tuple[float, float] | None, subscription: tuple[float, float]) -> Policy:
    return Policy(name, "Microsoft.Compute", header, subscription, resource)


#: Microsoft.Compute policies (compute-throttling-limits.md), "refill per minute / max bucket".
COMPUTE_POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        _compute("PutVM", "PutVM", (4, 12), (500, 1500)),
        _compute("UpdateVM", "UpdateVM", (4, 12), (500, 1500)),
        _compute("DeleteVM", "DeleteVM", (4, 12), (500, 1500)),
        _compute("LowCostGetVM", "LowCostGet", (12, 36), (8000, 24000)),
        _compute("HighCostGetVM", "HighCostGet", None, (300, 900)),
        _compute("GetOperation", "GetOperation", (15, 45), (5000, 15000)),
        _compute("PutVMSS", "PutVMScaleSet", (4, 12), (125, 375)),
        _compute("UpdateVMSS", "UpdateVMScaleSet", (4, 12), (500, 1500)),
        _compute("DeleteVMSS", "DeleteVMScaleSet", (4, 12), (175, 525)),
        _compute("LowCostGetVMSS", "GetVMScaleSet", (12, 36), (800, 2400)),
        _compute("HighCostGetVMSS", "HighCostGetVMScaleSet", (10, 30), (360, 1080)),
        _compute("GetVMSSVMs", "GetVMScaleSetVM", (12, 36), (2000, 6000)),
    )
}

#: Microsoft.Network: writes + deletes 1,000 per 5 minutes, reads 10,000 per 5 minutes (per subscription).
NETWORK_POLICIES: dict[str, Policy] = {
    "NetworkWrites": Policy("NetworkWrites", "Microsoft.Network", "NetworkWrites", (200, 1000), None, 5),
    "NetworkReads": Policy("NetworkReads", "Microsoft.Network", "NetworkReads", (2000, 10000), None, 5),
}

#: ARM's regional token bucket per subscription + principal: ``(capacity, refill per second)``.
ARM_LIMITS: dict[str, tuple[float, float]] = {"reads": (250, 25), "writes": (200, 10), "deletes": (200, 10)}

THROTTLE_MESSAGE = "The server rejected the request because too many requests have been received for this subscription."
_VMSS_ID = re.compile(
    r"^(/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/virtualMachineScaleSets/[^/]+)",
    re.IGNORECASE,
)
_VMSS_DELETE_VERBS = frozenset({"delete", "poweroff/action", "deallocate/action", "delete/action", "delete/delete"})


class TokenBucket:
    """``capacity`` tokens at most, refilled continuously at ``rate`` tokens per second; starts full."""

    __slots__ = ("capacity", "rate", "tokens", "stamp", "window", "measured")

    def __init__(self, capacity: float, rate: float, now: float, window: float = 180.0) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.stamp = now
        self.window = window
        self.measured: deque[float] = deque()

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def available(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= 1.0

    def take(self, now: float) -> bool:
        """Take one token if there is one (refilling first)."""
        self.refill(now)
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def wait(self, now: float) -> float:
        """Seconds until the bucket holds one whole token (0 if it does)."""
        self.refill(now)
        if self.tokens >= 1.0:
            return 0.0
        return math.inf if self.rate <= 0 else (1.0 - self.tokens) / self.rate

    def measure(self, now: float) -> int:
        """Count one request against the bucket; returns the requests counted in the last ``window`` seconds."""
        measured = self.measured
        measured.append(now)
        horizon = now - self.window
        while measured[0] < horizon:
            measured.popleft()
        return len(measured)

    def remaining(self, now: float, extra_seconds: float = 0.0) -> int:
        """Whole tokens now, plus what ``extra_seconds`` of refill would add (uncapped)."""
        self.refill(now)
        return int(math.floor(self.tokens + extra_seconds * self.rate + 1e-9))


@dataclass(frozen=True)
class _Target:
    arm: str  # reads | writes | deletes
    policy: Policy | None
    resource: str | None


class Throttler:
    """The throttling :class:`~.policies.RequestPolicy`.

    :param enabled: enforce (and report) the limits; disabled, requests are neither counted nor answered with headers.
    :param scale: multiplier of every bucket size and refill rate (``0.01`` to hit limits quickly, ``100`` for load).
    :param clock: monotonic seconds (injectable for tests).
    :param wall_clock: epoch seconds, for the timestamps of the 429 body.
    :param resource_exists: ``resource id -> bool``, to tell a create (PutVM) from an update (UpdateVM).
    :param operation_resource: ``operation id -> resource id``, for the per-resource bucket of operation polling.
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        scale: float = 1.0,
        clock: Clock = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        resource_exists: Callable[[str], bool] | None = None,
        operation_resource: Callable[[str], str | None] | None = None,
    ) -> None:
        if scale <= 0:
            raise ValueError("throttle_scale must be > 0")
        self.enabled = enabled
        self._scale = float(scale)
        self.clock = clock
        self.wall_clock = wall_clock
        self.resource_exists = resource_exists or (lambda _resource_id: False)
        self.operation_resource = operation_resource or (lambda _operation_id: None)
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}

    # configuration --------------------------------------------------------------------------------------------

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        """Changing the scale starts every bucket afresh (full, at the new size)."""
        if value <= 0:
            raise ValueError("throttle_scale must be > 0")
        self._scale = float(value)
        self.reset()

    def reset(self) -> None:
        """Forget every bucket (all start full again)."""
        self._buckets.clear()

    def _bucket(self, key: tuple[str, ...], capacity: float, rate_per_second: float, window: float, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(max(1.0, capacity * self._scale), rate_per_second * self._scale, now, window)
            self._buckets[key] = bucket
        return bucket

    def arm_bucket(self, kind: str, subscription: str, principal: str, now: float | None = None) -> TokenBucket:
        capacity, rate = ARM_LIMITS[kind]
        now = self.clock() if now is None else now
        return self._bucket(("arm", kind, subscription.lower(), principal), capacity, rate, 60.0, now)

    def policy_buckets(
        self, policy: Policy, subscription: str, resource: str | None, now: float | None = None
    ) -> list[tuple[str, TokenBucket]]:
        """``[("resource", bucket)?, ("subscription", bucket)]`` of a policy."""
        now = self.clock() if now is None else now
        window = policy.window_minutes * 60.0
        found: list[tuple[str, TokenBucket]] = []
        if policy.resource is not None and resource:
            per_minute, size = policy.resource
            key = ("resource", policy.label, subscription.lower(), resource.lower())
            found.append(("resource", self._bucket(key, size, per_minute / 60.0, window, now)))
        per_minute, size = policy.subscription
        key = ("subscription", policy.label, subscription.lower())
        found.append(("subscription", self._bucket(key, size, per_minute / 60.0, window, now)))
        return found

    # classification -------------------------------------------------------------------------------------------

    def classify(self, request: PolicyRequest) -> _Target:
        """The ARM bucket kind, the provider policy and the resource of the per-resource bucket of a request."""
        method = request.method.upper()
        arm = "reads" if method in ("GET", "HEAD") else "deletes" if method == "DELETE" else "writes"
        operation = request.operation.lower()
        policy: Policy | None = None
        resource: str | None = None
        if operation.startswith("microsoft.compute/"):
            policy, resource = self._compute(method, operation[len("microsoft.compute/") :], request)
        elif operation.startswith("microsoft.network/"):
            policy = NETWORK_POLICIES["NetworkReads" if arm == "reads" else "NetworkWrites"]
        return _Target(arm, policy, resource)

    def _compute(self, method: str, rest: str, request: PolicyRequest) -> tuple[Policy | None, str | None]:
        resource = request.resource_id
        policies = COMPUTE_POLICIES
        if rest == "locations/operations/read":
            operation_id = request.path.rstrip("/").rsplit("/", 1)[-1]
            return policies["GetOperation"], self.operation_resource(operation_id)
        if rest.startswith("virtualmachinescalesets/virtualmachines/"):
            verb = rest[len("virtualmachinescalesets/virtualmachines/") :]
            match = _VMSS_ID.match(request.path)
            scale_set = match.group(1) if match else None
            if verb in ("read", "instanceview/read"):
                if resource:
                    return policies["GetVMSSVMs"], resource
                return policies["HighCostGetVMSS"], scale_set
            if verb.endswith("/read"):
                return None, None
            if verb in _VMSS_DELETE_VERBS:
                return policies["DeleteVMSS"], scale_set
            return policies["UpdateVMSS"], scale_set
        if rest.startswith("virtualmachinescalesets/"):
            verb = rest[len("virtualmachinescalesets/") :]
            if verb == "read":
                return (policies["LowCostGetVMSS"], resource) if resource else (policies["HighCostGetVMSS"], None)
            if verb == "instanceview/read":
                return policies["HighCostGetVMSS"], resource
            if verb == "write":
                if method == "PUT" and resource and not self.resource_exists(resource):
                    return policies["PutVMSS"], resource
                return policies["UpdateVMSS"], resource
            if verb in _VMSS_DELETE_VERBS:
                return policies["DeleteVMSS"], resource
            if verb.endswith("/action"):
                return policies["UpdateVMSS"], resource
            return None, None
        if rest.startswith("virtualmachines/"):
            verb = rest[len("virtualmachines/") :]
            if verb == "read":
                return (policies["LowCostGetVM"], resource) if resource else (policies["HighCostGetVM"], None)
            if verb == "instanceview/read":
                return policies["LowCostGetVM"], resource
            if verb == "write":
                if method == "PUT" and resource and not self.resource_exists(resource):
                    return policies["PutVM"], resource
                return policies["UpdateVM"], resource
            if verb in ("delete", "deallocate/action"):
                return policies["DeleteVM"], resource
            if verb.endswith("/action"):
                return policies["UpdateVM"], resource
        return None, None

    # the RequestPolicy protocol -------------------------------------------------------------------------------

    def admit(self, request: PolicyRequest) -> Reply | None:
        if not self.enabled:
            return None
        now = self.clock()
        target = self.classify(request)
        arm_bucket = self.arm_bucket(target.arm, request.subscription, request.principal, now)
        arm_header = f"x-ms-ratelimit-remaining-subscription-{target.arm}"
        if not arm_bucket.take(now):
            request.state["policy"] = f"ARM/{target.arm}"
            headers = {arm_header: "0", "Retry-After": str(_seconds(arm_bucket.wait(now)))}
            body = {
                "error": {
                    "code": "SubscriptionRequestsThrottled",
                    "message": (
                        f"Number of '{target.arm[:-1]}' requests for subscription '{request.subscription}' actor "
                        f"'{request.principal}' exceeded. Please try again after '{headers['Retry-After']}' seconds "
                        "after additional tokens are available. Refer to https://aka.ms/arm-throttling"
                    ),
                }
            }
            request.state["headers"] = headers
            return Reply(429, body, headers)
        headers = {arm_header: str(arm_bucket.remaining(now))}
        policy = target.policy
        request.state["policy"] = f"ARM/{target.arm}" if policy is None else policy.label
        if policy is not None:
            buckets = self.policy_buckets(policy, request.subscription, target.resource, now)
            measured = [bucket.measure(now) for _, bucket in buckets]
            empty = [(i, bucket) for i, (_, bucket) in enumerate(buckets) if not bucket.available(now)]
            if empty:
                index, bucket = empty[0]
                if policy.namespace == "Microsoft.Compute":
                    headers["x-ms-ratelimit-remaining-resource"] = _resource_header(policy, buckets, now)
                headers["Retry-After"] = str(_seconds(max(b.wait(now) for _, b in empty)))
                request.state["headers"] = headers
                return Reply(429, self._rejection(policy, bucket, measured[index]), headers)
            for _, bucket in buckets:
                bucket.take(now)
            if policy.namespace == "Microsoft.Compute":
                headers["x-ms-ratelimit-remaining-resource"] = _resource_header(policy, buckets, now)
        request.state["headers"] = headers
        return None

    def response_headers(self, request: PolicyRequest) -> dict[str, str]:
        return dict(request.state.get("headers") or {})

    def _rejection(self, policy: Policy, bucket: TokenBucket, measured: int) -> dict[str, Any]:
        group = f"{policy.header}{policy.window_minutes}Min"
        end = datetime.fromtimestamp(self.wall_clock(), tz=timezone.utc)
        start = end - timedelta(minutes=policy.window_minutes)
        detail = {
            "operationGroup": group,
            "startTime": start.isoformat(),
            "endTime": end.isoformat(),
            "allowedRequestCount": int(bucket.capacity),
            "measuredRequestCount": measured,
        }
        return {
            "error": {
                "code": "OperationNotAllowed",
                "message": THROTTLE_MESSAGE,
                "details": [{"code": "TooManyRequests", "target": group, "message": json.dumps(detail)}],
            }
        }

    # state for the admin API ----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every bucket with its current level (refilled to now)."""
        now = self.clock()
        buckets = []
        for key, bucket in self._buckets.items():
            bucket.refill(now)
            entry: dict[str, Any] = {
                "tokens": round(bucket.tokens, 3),
                "capacity": bucket.capacity,
                "refill_per_second": bucket.rate,
            }
            if key[0] == "arm":
                entry.update(policy=f"ARM/{key[1]}", scope="subscription+principal", subscription=key[2],
                             principal=key[3])
            elif key[0] == "subscription":
                entry.update(policy=key[1], scope="subscription", subscription=key[2])
            else:
                entry.update(policy=key[1], scope="resource", subscription=key[2], resource_id=key[3])
            buckets.append(entry)
        return {"enabled": self.enabled, "scale": self._scale, "buckets": buckets}


def _seconds(wait: float) -> int:
    if math.isinf(wait):
        return 3600
    return max(1, math.ceil(wait - 1e-9))


def _resource_header(policy: Policy, buckets: list[tuple[str, TokenBucket]], now: float) -> str:
    short = min(bucket.remaining(now) for _, bucket in buckets)
    long = min(bucket.remaining(now, 27 * 60.0) for _, bucket in buckets)
    return (
        f"{policy.namespace}/{policy.header}3Min;{short},"
        f"{policy.namespace}/{policy.header}30Min;{long}"
    )
