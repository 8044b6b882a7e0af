"""Kubernetes ``Status`` errors, shaped like kube-apiserver's (``k8s.io/apimachinery/pkg/api/errors``)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "Cause",
    "status_success",
    "bad_request",
    "not_found",
    "already_exists",
    "conflict",
    "invalid",
    "unprocessable",
    "forbidden_field",
    "method_not_allowed",
    "unsupported_media_type",
    "unauthorized",
    "gone",
    "too_many_requests",
]

Cause = dict[str, str]


class APIError(Exception):
    """An error answered to the client as a ``meta/v1 Status`` object with the HTTP ``code``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def as_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            status["details"] = self.details
        return status


def status_success(*, name: str, group: str, kind: str, uid: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "group": group, "kind": kind}
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def _details(name: str | None, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    details["group"] = group
    details["kind"] = kind
    details.update(extra)
    return details


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def not_found(plural: str, group: str, name: str | None) -> APIError:
    what = _qualified(plural, group)
    message = f'{what} "{name}" not found' if name else f"{what} not found"
    return APIError(404, "NotFound", message, details=_details(name, group, plural))


def path_not_found() -> APIError:
    return APIError(404, "NotFound", "the server could not find the requested resource",
                    details={"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def already_exists(plural: str, group: str, name: str) -> APIError:
    message = f'{_qualified(plural, group)} "{name}" already exists'
    return APIError(409, "AlreadyExists", message, details=_details(name, group, plural))


def conflict(plural: str, group: str, name: str, why: str) -> APIError:
    message = f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {why}'
    return APIError(409, "Conflict", message, details=_details(name, group, plural))


MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def cause_text(cause: Cause) -> str:
    field = cause.get("field")
    return f"{field}: {cause['message']}" if field else cause["message"]


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> APIError:
    """422 Invalid, as from field validation: ``Kind.group "name" is invalid: field: message``."""
    qualified = f"{kind}.{group}" if group else kind
    texts = [cause_text(c) for c in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    message = f'{qualified} "{name}" is invalid: {summary}'
    return APIError(422, "Invalid", message, details=_details(name, group, kind, causes=causes))


def unprocessable(message: str, *, name: str | None = None, group: str = "", kind: str = "") -> APIError:
    """422 as from a patch that cannot be applied (the generic server response, like kube-apiserver)."""
    details = _details(name, group, kind, causes=[{"reason": "UnexpectedServerResponse", "message": message}])
    return APIError(422, "Invalid", "the server rejected our request due to an error in our request",
                    details=details)


def forbidden_field(field: str, message: str) -> Cause:
    return {"reason": "FieldValueForbidden", "message": f"Forbidden: {message}", "field": field}


def required_field(field: str, message: str = "") -> Cause:
    text = "Required value" + (f": {message}" if message else "")
    return {"reason": "FieldValueRequired", "message": text, "field": field}


def invalid_field(field: str, value: Any, message: str) -> Cause:
    import json

    rendered = json.dumps(value) if not isinstance(value, (dict, list)) else f'"{type_name(value)}"'
    return {"reason": "FieldValueInvalid", "message": f"Invalid value: {rendered}: {message}", "field": field}


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def method_not_allowed(method: str) -> APIError:
    return APIError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({method})")


def unsupported_media_type(content_type: str, *, scale: bool = False) -> APIError:
    accepted = "application/json-patch+json, application/merge-patch+json" + (
        "" if scale else ", application/apply-patch+yaml")
    return APIError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: {accepted} (got "{content_type}")')


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def too_many_requests(message: str, retry_after: int = 1) -> APIError:
    return APIError(429, "TooManyRequests", message,
                    details={"retryAfterSeconds": retry_after},
                    headers={"Retry-After": str(retry_after)})
