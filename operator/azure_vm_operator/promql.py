"""One number from Prometheus: an instant PromQL query over its HTTP API, for the autoscaler's ``prometheus`` rules.

``query_value`` asks ``GET {server}/api/v1/query`` and wants exactly one value: a scalar, or an instant vector of one
sample. Anything else is a :class:`PromQLError` whose ``reason`` says what went wrong and whose ``message`` is short
and safe to show in a Kubernetes condition (the server's address in it never carries credentials):

=========================  ==================================================================================
``PrometheusUnreachable``  no connection, TLS failure, no answer within the timeout, or HTTP 5xx
``QueryRejected``          HTTP 400/422: Prometheus' own error text (a syntax error, a type error, ...)
``NoData``                 an empty vector, or NaN/Inf (no usable value)
``AmbiguousResult``        more than one series: aggregate them (``sum(...)``, ``avg(...)``)
``UnexpectedResponse``     anything else: another status, not Prometheus' JSON, a range vector or a string
=========================  ==================================================================================

The server may have a path prefix (``http://host:9090/prometheus``, as behind ``--web.route-prefix`` or a proxy)
and userinfo (``https://user:password@host``), sent as basic authentication.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import datetime, timezone
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

import aiohttp

PROMETHEUS_UNREACHABLE: Final = "PrometheusUnreachable"
QUERY_REJECTED: Final = "QueryRejected"
NO_DATA: Final = "NoData"
AMBIGUOUS_RESULT: Final = "AmbiguousResult"
UNEXPECTED_RESPONSE: Final = "UnexpectedResponse"
REASONS: Final = (PROMETHEUS_UNREACHABLE, QUERY_REJECTED, NO_DATA, AMBIGUOUS_RESULT, UNEXPECTED_RESPONSE)

#: how much of a text from elsewhere (Prometheus' error, a label value, an exception) goes into a message
_TEXT_LIMIT: Final = 200
_LABEL_VALUE_LIMIT: Final = 40
_SERIES_SHOWN: Final = 2


class PromQLError(Exception):
    """A query that gave no single value: ``reason`` (one of :data:`REASONS`) and a short user-facing message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


def redact(server: str) -> str:
    """The server URL without userinfo (``https://u:p@host/x`` -> ``https://host/x``), for messages and logs."""
    try:
        parts = urlsplit(server)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "(an invalid URL)"


def _short(text: str, limit: int = _TEXT_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _labels(metric: Any) -> str:
    if not isinstance(metric, dict):
        return "{}"
    shown = ", ".join(f'{name}="{_short(str(value), _LABEL_VALUE_LIMIT)}"' for name, value in sorted(metric.items()))
    return "{" + shown + "}"


def _number(sample: Any, where: str) -> float:
    """The value of a ``[time, "value"]`` pair; NaN and +-Inf are no value."""
    try:
        value = float(sample[1])
    except (TypeError, ValueError, IndexError, KeyError):
        raise PromQLError(UNEXPECTED_RESPONSE, f"{where} answered a sample without a number") from None
    if not math.isfinite(value):
        raise PromQLError(NO_DATA, f"the query's value is {sample[1]}, not a number to act on")
    return value


def _error_text(body: bytes) -> str:
    """Prometheus' ``error`` field when the body is its JSON, else the body's start."""
    text = body.decode(errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return _short(text) or "(empty body)"
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return _short(parsed["error"])
    return _short(text)


def _value(body: bytes, where: str) -> float:
    try:
        answer = json.loads(body)
    except ValueError:
        raise PromQLError(UNEXPECTED_RESPONSE, f"{where} did not answer Prometheus' JSON (is it the Prometheus "
                                               "API, with the right path prefix?)") from None
    if not isinstance(answer, dict) or answer.get("status") != "success" or not isinstance(answer.get("data"), dict):
        error = answer.get("error") if isinstance(answer, dict) else None
        detail = f": {_short(str(error))}" if error else ""
        raise PromQLError(UNEXPECTED_RESPONSE, f"{where} did not answer a successful query{detail}")
    data: dict[str, Any] = answer["data"]
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _number(result, where)
    if kind == "vector" and isinstance(result, list):
        if not result:
            raise PromQLError(NO_DATA, "the query returned no series (nothing matches its selectors now)")
        if len(result) > 1:
            shown = ", ".join(_labels(s.get("metric") if isinstance(s, dict) else None) for s in result[:_SERIES_SHOWN])
            more = f" and {len(result) - _SERIES_SHOWN} more" if len(result) > _SERIES_SHOWN else ""
            raise PromQLError(AMBIGUOUS_RESULT, f"the query returned {len(result)} series, one is needed: "
                                                f"{shown}{more}; aggregate them, e.g. sum(...) or avg(...)")
        sample = result[0]
        return _number(sample.get("value") if isinstance(sample, dict) else None, where)
    if kind == "matrix":
        raise PromQLError(UNEXPECTED_RESPONSE, "the query returned a range vector; one value is needed (drop the "
                                               "[range] or wrap it, e.g. avg_over_time(...[5m]))")
    raise PromQLError(UNEXPECTED_RESPONSE, f"the query returned a {_short(str(kind), 20)}; one number is needed")


def _query_url(server: str) -> str:
    try:
        parts = urlsplit(server)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        valid = False
    if not valid:
        raise PromQLError(PROMETHEUS_UNREACHABLE, f"the Prometheus server address {redact(server)!r} is not an "
                                                  "http or https URL")
    return urlunsplit(SplitResult(parts.scheme, parts.netloc, parts.path.rstrip("/") + "/api/v1/query", "", ""))


def _scrub(message: str, server: str) -> str:
    """No credential of the server URL in a message, whatever a library put in it."""
    try:
        parts = urlsplit(server)
        secrets = [s for s in (parts.netloc.rpartition("@")[0], parts.password) if s]
    except ValueError:
        secrets = []
    for secret in secrets:
        message = message.replace(secret, "***")
    return message


async def query_value(
    session: aiohttp.ClientSession,
    server: str,
    promql: str,
    *,
    timeout: float,
    at: datetime | None = None,
) -> float:
    """The single value of an instant query ``promql`` on the Prometheus at ``server`` (now, or at ``at``; a naive
    ``at`` is UTC). ``timeout``: seconds for the whole request, also sent as the query's evaluation timeout.

    Raises :class:`PromQLError`.
    """
    try:
        return await _query_value(session, server, promql, timeout=timeout, at=at)
    except PromQLError as exc:
        message = _scrub(exc.message, server)
        if message == exc.message:
            raise
        raise PromQLError(exc.reason, message) from None


async def _query_value(
    session: aiohttp.ClientSession, server: str, promql: str, *, timeout: float, at: datetime | None
) -> float:
    url = _query_url(server)
    where = f"Prometheus at {redact(server)}"
    params = {"query": promql, "timeout": f"{max(timeout, 0.001):.3f}"}  # seconds: Prometheus takes a float
    if at is not None:
        moment = at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
        params["time"] = f"{moment.timestamp():.3f}"
    try:
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=timeout),
                               headers={"Accept": "application/json"}) as response:
            status = response.status
            body = await response.read()
    except (asyncio.TimeoutError, TimeoutError):
        raise PromQLError(PROMETHEUS_UNREACHABLE, f"{where} did not answer within {timeout:g}s") from None
    except aiohttp.InvalidURL:
        raise PromQLError(PROMETHEUS_UNREACHABLE, f"the Prometheus server address {redact(server)!r} is "
                                                  "invalid") from None
    except aiohttp.ClientError as exc:
        detail = _short(str(exc)) or type(exc).__name__
        raise PromQLError(PROMETHEUS_UNREACHABLE, f"{where} is unreachable: {detail}") from None
    if status in (400, 422):
        raise PromQLError(QUERY_REJECTED, f"Prometheus rejected the query: {_error_text(body)}")
    if status >= 500:
        raise PromQLError(PROMETHEUS_UNREACHABLE, f"{where} answered HTTP {status}: {_error_text(body)}")
    if status != 200:
        raise PromQLError(UNEXPECTED_RESPONSE, f"{where} answered HTTP {status} to {redact(url)} "
                                               f"(is the path prefix right?): {_error_text(body)}")
    return _value(body, where)
