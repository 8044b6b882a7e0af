"""Request policies: the hook where throttling (token buckets per subscription/principal/policy) will plug in.

A policy sees every authenticated ARM request after routing and before its handler. It may reject it (e.g. with
429 + ``Retry-After`` in the ARM throttle shape) and may add response headers (e.g.
``x-ms-ratelimit-remaining-subscription-reads``). The throttling policy is :mod:`.throttle`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .routing import Reply


@dataclass(frozen=True)
class PolicyRequest:
    method: str
    path: str
    subscription: str
    operation: str
    resource_id: str | None
    principal: str
    #: Per-request scratch space, kept from ``admit`` to ``response_headers`` (one object per request);
    #: ``state["policy"]`` is logged as the request's ``policy``.
    state: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class RequestPolicy(Protocol):
    def admit(self, request: PolicyRequest) -> Reply | None:
        """None to let the request through, or the reply to answer instead (e.g. a 429)."""
        ...

    def response_headers(self, request: PolicyRequest) -> dict[str, str]:
        """Headers to add to the response of an admitted request."""
        ...
