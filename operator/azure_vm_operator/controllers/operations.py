"""Long-running Azure operations that nobody waits on.

An operation is started (the SDK's ``begin_*`` with ``polling=False``), its status URL (``Azure-AsyncOperation``,
else ``Location``) is kept on the resource (``status.operation``, and in memory), the resource's lock is released,
and the next pass looks at that URL once, after Azure's ``Retry-After``. A restart reads the URL back from status
and resumes following the operation instead of writing again.

The URL, not the SDK's continuation token, is what is kept: a continuation token is a pickle of the first response
*and its request*, which for a VM holds the admin password and custom data — never written to status — and
unpickling what the Kubernetes API hands back would run whatever it says.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from ..azure.errors import PERMANENT_CODES, TRANSIENT_CODES, ArmFailure, ErrorKind, classify

#: Where a resource's pending operation lives in its status.
STATUS_FIELD = "operation"


@dataclass(frozen=True)
class PendingOperation:
    """An operation Azure accepted and has not finished, as kept on the resource."""

    action: str  #: what was asked: create, update, delete, start, restart, ... (plus the target, for people)
    target: str  #: the ARM id (or name) of the resource the operation works on
    url: str  #: the status monitor: Azure-AsyncOperation (JSON status) or Location (202 until done)
    monitor: str = "AsyncOperation"  #: AsyncOperation | Location
    started: str = ""
    #: Events to emit once it succeeded: [reason, message] pairs (never secrets)
    events: tuple[tuple[str, str], ...] = field(default=())
    reason: str = "InProgress"  #: what the resource is doing meanwhile (Creating, Updating, Scaling, ...)
    message: str = ""  #: ... in words, for the Ready/Reconciling conditions

    def to_status(self) -> dict[str, Any]:
        return {"action": self.action, "target": self.target, "url": self.url, "monitor": self.monitor,
                "startTime": self.started, "events": [{"reason": r, "message": m} for r, m in self.events],
                "reason": self.reason, "message": self.message}

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> "PendingOperation | None":
        if not raw or not raw.get("url"):
            return None
        events = tuple((str(e.get("reason") or ""), str(e.get("message") or "")) for e in raw.get("events") or [])
        return cls(action=str(raw.get("action") or ""), target=str(raw.get("target") or ""), url=str(raw["url"]),
                   monitor=str(raw.get("monitor") or "AsyncOperation"), started=str(raw.get("startTime") or ""),
                   events=events, reason=str(raw.get("reason") or "InProgress"),
                   message=str(raw.get("message") or ""))


@dataclass(frozen=True)
class Started:
    """What starting an operation gave: the resource body if Azure finished at once, else the pending operation."""

    body: dict[str, Any] | None
    pending: PendingOperation | None
    retry_after: float | None = None


@dataclass(frozen=True)
class OperationStatus:
    done: bool
    failure: ArmFailure | None = None
    retry_after: float | None = None


TERMINAL_SUCCEEDED = "succeeded"
TERMINAL_FAILED = ("failed", "canceled", "cancelled")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from ARM; the caller's default applies


def _as_dict(model: Any) -> dict[str, Any] | None:
    if model is None:
        return None
    return model.as_dict() if hasattr(model, "as_dict") else dict(model)


async def start(begin: Callable[..., Awaitable[Any]], *args: Any, action: str, target: str,
                events: tuple[tuple[str, str], ...] = (), reason: str = "InProgress", message: str = "",
                **kwargs: Any) -> Started:
    """Call an SDK ``begin_*`` method without polling; note where Azure says the operation can be followed.

    A PUT whose first answer is already terminal (``provisioningState: Succeeded``) or an answer without a
    monitor URL is finished: ``Started.pending`` is None."""
    headers: dict[str, str] = {}

    def keep_headers(response: Any) -> None:
        headers.update(response.http_response.headers)

    poller = await begin(*args, polling=False, raw_response_hook=keep_headers, **kwargs)
    body = _as_dict(await poller.result())
    state = str(((body or {}).get("properties") or {}).get("provisioningState") or "").lower()
    url = headers.get("Azure-AsyncOperation") or headers.get("azure-asyncoperation")
    monitor = "AsyncOperation"
    if not url:
        url, monitor = headers.get("Location") or headers.get("location"), "Location"
    if not url or state == TERMINAL_SUCCEEDED:
        return Started(body, None)
    pending = PendingOperation(action=action, target=target, url=str(url), monitor=monitor, started=_now(),
                               events=events, reason=reason, message=message)
    return Started(body, pending, _retry_after(headers))


async def check(client: Any, operation: PendingOperation) -> OperationStatus:
    """Look once at an operation's monitor URL (through ``client.send_request``: the client's pipeline, so
    credentials, retries and metrics apply)."""
    response = await client.send_request(HttpRequest("GET", operation.url))
    await response.read()
    retry_after = _retry_after(response.headers)
    if response.status_code == 404:  # forgotten by Azure (finished long ago): the resource tells the rest
        return OperationStatus(done=True)
    if response.status_code >= 400:
        try:
            response.raise_for_status()
        except HttpResponseError as exc:
            failure = classify(exc)
            if failure.transient:  # the monitor itself did not answer: look again later
                return OperationStatus(done=False, retry_after=retry_after)
            return OperationStatus(done=True, failure=failure)
    if operation.monitor == "Location":
        return OperationStatus(done=response.status_code != 202, retry_after=retry_after)
    try:
        document = json.loads(response.text() or "{}")
    except ValueError:
        return OperationStatus(done=False, retry_after=retry_after)
    status = str(document.get("status") or "").lower()
    if status == TERMINAL_SUCCEEDED:
        return OperationStatus(done=True)
    if status in TERMINAL_FAILED:
        error = document.get("error") or {}
        code = str(error.get("code") or "OperationFailed")
        return OperationStatus(done=True, failure=_operation_failure(code, str(error.get("message") or status)))
    return OperationStatus(done=False, retry_after=retry_after)


def _operation_failure(code: str, message: str) -> ArmFailure:
    """An operation that ended Failed: transient or permanent by its error code, as for a synchronous error."""
    if code in PERMANENT_CODES or (code not in TRANSIENT_CODES and code.startswith("Invalid")):
        return ArmFailure(ErrorKind.PERMANENT, code, message)
    return ArmFailure(ErrorKind.TRANSIENT, code, message)
