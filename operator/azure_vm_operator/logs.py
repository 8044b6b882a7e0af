"""Log output of `azure-vm-operator run`: `--log-format text` (default) or `json` [AZVM_LOG_FORMAT].

``json`` writes one JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, and for every
line about one resource its identity as ``kind``, ``namespace``, ``name`` (plus ``exc_info`` with the traceback when
there is one). Kopf's per-object loggers carry the identity as ``k8s_ref`` (its ``ObjectLogger``); the operator's own
loggers pass the same ``extra`` through :func:`resource`, so both end up in the same fields. ``text`` prefixes those
lines with ``[Kind namespace/name]``.

Nothing here logs bodies: what a line says is what its caller formatted (the operator never logs a spec or a
Secret).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("text", "json")
ENV_VAR = "AZVM_LOG_FORMAT"
#: the record attribute holding a resource's identity: Kopf's own name for it, so its object loggers' lines and ours
#: are formatted alike (our loggers are not below ``kopf.objects``: Kopf never posts their lines as Events)
REF_ATTR = "k8s_ref"
_IDENTITY = ("kind", "namespace", "name")


def resource(kind: str, namespace: str | None, name: str) -> dict[str, Any]:
    """The ``extra=`` of a log call about one resource: ``logger.info("...", extra=logs.resource(kind, ns, name))``."""
    return {REF_ATTR: {"kind": kind, "namespace": namespace, "name": name}}


def identity(record: logging.LogRecord) -> dict[str, str]:
    """kind, namespace and name of the resource a record is about (those it has), else empty."""
    ref = getattr(record, REF_ATTR, None)
    if not isinstance(ref, Mapping):
        return {}
    return {key: str(ref[key]) for key in _IDENTITY if ref.get(key)}


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: [Kind namespace/name] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        ident = identity(record)
        if ident:
            where = "/".join(ident[k] for k in ("namespace", "name") if k in ident)
            prefix = " ".join(p for p in (ident.get("kind"), where) if p)
            record = logging.makeLogRecord({**record.__dict__, "message": f"[{prefix}] {record.message}"})
        return super().formatMessage(record)


class JsonLogFormatter(JsonFormatter):
    """One JSON object per line (python-json-logger): time, level, logger, message, kind/namespace/name."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # Kopf's object loggers also pass their settings and an Events flag: never fields of a line
            reserved_attrs=[*RESERVED_ATTRS, "taskName", REF_ATTR, "k8s_skip", "settings"],
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record.update(identity(record))


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonLogFormatter()
    if log_format == "text":
        return TextFormatter()
    raise ValueError(f"unknown log format {log_format!r}: one of {', '.join(LOG_FORMATS)}")


def configure(log_format: str = "text", *, verbose: bool = False, debug: bool = False,
              stream: TextIO | None = None) -> None:
    """One handler on the root logger (replacing any), at INFO (DEBUG with verbose or debug). Like Kopf's own
    ``kopf.configure``, asyncio's chatter is dropped unless debugging, and so is the Azure SDK's request log. Warnings go through logging too, so that
    with ``json`` every line of the process's output is JSON."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug or verbose else logging.INFO)
    logging.captureWarnings(True)
    # the Azure SDK logs every request's URL and headers at INFO: with --debug only (ARM calls are in the metrics)
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(
        logging.NOTSET if debug else logging.WARNING)
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.propagate = debug
    if not debug:
        asyncio_logger.handlers[:] = [logging.NullHandler()]


class RetryLevelFilter(logging.Filter):
    """Kopf logs every ``kopf.TemporaryError`` as ERROR ("Handler ... failed temporarily: ..."), and the handlers
    raise one for each look at an Azure operation still running ("in progress: ...") and for each transient Azure
    error that is retried (429, 5xx, a dropped connection). Neither is an error of the operator: an operation in
    progress is INFO, a retried transient error WARNING. Without this, one VM create logged three ERRORs and a
    throttling storm an ERROR per retry (tests/e2e/test_fault_storms.py)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and isinstance(record.msg, str) and " failed temporarily: " in record.msg:
            level = logging.INFO if " failed temporarily: in progress: " in record.msg else logging.WARNING
            record.levelno, record.levelname = level, logging.getLevelName(level)
        return True


def install_retry_level_filter() -> None:
    """On Kopf's per-object logger (idempotent)."""
    kopf_objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, RetryLevelFilter) for f in kopf_objects.filters):
        kopf_objects.addFilter(RetryLevelFilter())
