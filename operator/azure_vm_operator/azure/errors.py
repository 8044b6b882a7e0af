"""Classification of ARM failures: transient (retry with backoff) or permanent (the user must act)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)


class ErrorKind(enum.Enum):
    TRANSIENT = "Transient"
    PERMANENT = "Permanent"


#: ARM error codes that clear up by themselves: capacity, contention, throttling, service hiccups.
TRANSIENT_CODES = frozenset({
    "AllocationFailed",
    "OverconstrainedAllocationRequest",
    "OverconstrainedZonalAllocationRequest",
    "ZonalAllocationFailed",
    "OperationNotAllowed",  # another operation is in progress on the resource
    "AnotherOperationInProgress",
    "Conflict",
    "RetryableError",
    "TooManyRequests",
    "InternalServerError",
    "InternalExecutionError",
    "ServiceUnavailable",
    "GatewayTimeout",
    "NetworkingInternalOperationError",
    "ResourceGroupBeingDeleted",
    "OperationPreempted",
    "InUseSubnetCannotBeDeleted",
    "NicInUse",
    "PublicIPAddressInUse",
})

#: ARM error codes that only a change of spec, quota or permissions can fix.
PERMANENT_CODES = frozenset({
    "InvalidParameter",
    "InvalidRequestContent",
    "InvalidRequestFormat",
    "BadRequest",
    "PlatformImageNotFound",
    "ImageNotFound",
    "InvalidResourceReference",
    "PropertyChangeNotAllowed",
    "SkuNotAvailable",
    "QuotaExceeded",
    "OperationNotAllowedQuota",
    "AuthorizationFailed",
    "LinkedAuthorizationFailed",
    "InvalidTemplate",
    "InvalidApiVersionParameter",
    "SubscriptionNotFound",
    "InvalidSubscriptionId",
    "NotFound",
})

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ArmFailure:
    kind: ErrorKind
    code: str
    message: str
    status: int | None = None

    @property
    def transient(self) -> bool:
        return self.kind is ErrorKind.TRANSIENT


def classify(exc: BaseException) -> ArmFailure:
    """Map an exception from the Azure SDK to a failure kind, with ARM's error code and message."""
    if isinstance(exc, ClientAuthenticationError):
        return ArmFailure(ErrorKind.PERMANENT, "AuthenticationFailed", _message(exc), _status(exc))
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return ArmFailure(ErrorKind.TRANSIENT, "ConnectionError", _message(exc))
    if isinstance(exc, HttpResponseError):
        status = _status(exc)
        code = _code(exc) or (f"HTTP{status}" if status else "Unknown")
        message = _message(exc)
        if code in TRANSIENT_CODES:
            kind = ErrorKind.TRANSIENT
        elif code in PERMANENT_CODES:
            kind = ErrorKind.PERMANENT
        elif status in TRANSIENT_STATUS:
            kind = ErrorKind.TRANSIENT
        elif status is not None and 400 <= status < 500:
            kind = ErrorKind.PERMANENT
        else:
            kind = ErrorKind.TRANSIENT
        # Quota exhaustion comes as OperationNotAllowed too; only a quota increase fixes it.
        if code == "OperationNotAllowed" and "quota" in message.lower():
            kind = ErrorKind.PERMANENT
        return ArmFailure(kind, code, message, status)
    if isinstance(exc, AzureError):
        return ArmFailure(ErrorKind.TRANSIENT, type(exc).__name__, _message(exc))
    if isinstance(exc, (OSError, TimeoutError)):
        return ArmFailure(ErrorKind.TRANSIENT, type(exc).__name__, str(exc))
    raise exc


def _status(exc: AzureError) -> int | None:
    return getattr(exc, "status_code", None)


def _code(exc: HttpResponseError) -> str | None:
    error = getattr(exc, "error", None)
    return getattr(error, "code", None) if error is not None else None


def _message(exc: AzureError) -> str:
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) if error is not None else None
    text = message or getattr(exc, "message", None) or str(exc)
    return text.splitlines()[0][:500] if text else type(exc).__name__


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, HttpResponseError) and _status(exc) == 404
