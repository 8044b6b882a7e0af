"""`--log-format text|json` [AZVM_LOG_FORMAT] (azure_vm_operator/logs.py): one JSON object per line with the
resource's identity, from Kopf's object loggers (``k8s_ref``) and the operator's own (``logs.resource``)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from azure_vm_operator import cli, logs


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def _lines(log_format: str) -> list[str]:
    import kopf

    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # Kopf's Event poster on kopf.objects (when Kopf was set up) stays out of it
    stream = io.StringIO()
    logs.configure(log_format, stream=stream)
    logging.getLogger("azure_vm_operator.test").info("created %s", "vm-1",
                                                     extra=logs.resource("VirtualMachine", "default", "vm-1"))
    # what Kopf's ObjectLogger passes: a reference, its settings (not serializable), its Events flag
    logging.getLogger("kopf.objects").info("Handler 'create' succeeded.", extra={
        "k8s_ref": {"apiVersion": "compute.azvm.io/v1alpha1", "kind": "ScaleSet", "name": "web", "uid": "u1",
                    "namespace": "team-a"}, "settings": settings, "k8s_skip": False})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("azure_vm_operator.test").exception("failed")
    return stream.getvalue().splitlines()


def test_json_lines_carry_time_level_logger_message_and_identity(restore_logging: None) -> None:
    ours, kopfs, failed = (json.loads(line) for line in _lines("json"))
    assert ours == {"time": ours["time"], "level": "INFO", "logger": "azure_vm_operator.test", "message": "created vm-1",
                    "kind": "VirtualMachine", "namespace": "default", "name": "vm-1"}
    assert ours["time"].endswith("+00:00") and "T" in ours["time"]
    assert {k: kopfs[k] for k in ("logger", "kind", "namespace", "name")} == {
        "logger": "kopf.objects", "kind": "ScaleSet", "namespace": "team-a", "name": "web"}
    assert "settings" not in kopfs and "k8s_skip" not in kopfs and "k8s_ref" not in kopfs
    assert failed["level"] == "ERROR" and "RuntimeError: boom" in failed["exc_info"] and "name" not in failed


def test_text_lines_prefix_the_identity(restore_logging: None) -> None:
    lines = _lines("text")
    assert lines[0].endswith("INFO azure_vm_operator.test: [VirtualMachine default/vm-1] created vm-1")
    assert lines[1].endswith("INFO kopf.objects: [ScaleSet team-a/web] Handler 'create' succeeded.")


def test_one_handler_and_the_sdk_request_log_quiet(restore_logging: None) -> None:
    logs.configure("json", stream=io.StringIO())
    logs.configure("json", stream=io.StringIO())
    assert len(logging.getLogger().handlers) == 1  # no line printed twice
    assert not logging.getLogger("azure.core.pipeline.policies.http_logging_policy").isEnabledFor(logging.INFO)


@pytest.mark.parametrize("argv, env, expected", [
    ([], {}, "text"),
    ([], {"AZVM_LOG_FORMAT": "json"}, "json"),
    ([], {"AZVM_LOG_FORMAT": "JSON "}, "json"),
    (["--log-format", "text"], {"AZVM_LOG_FORMAT": "json"}, "text"),  # the flag wins
    (["--log-format", "json"], {}, "json"),
])
def test_flag_and_environment(monkeypatch: pytest.MonkeyPatch, restore_logging: None, argv: list[str],
                              env: dict[str, str], expected: str) -> None:
    chosen: list[str] = []
    monkeypatch.delenv("AZVM_LOG_FORMAT", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(logs, "configure", lambda log_format, **_: chosen.append(log_format))
    monkeypatch.setattr(cli, "_run", lambda args, config: 0)
    assert cli.main(["run", *argv]) == 0
    assert chosen == [expected]


def test_unknown_format_is_refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AZVM_LOG_FORMAT", "xml")
    with pytest.raises(SystemExit):
        cli.main(["run"])
    assert "AZVM_LOG_FORMAT='xml'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["run", "--log-format", "xml"])
