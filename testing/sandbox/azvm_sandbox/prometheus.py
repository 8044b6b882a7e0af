"""The real Prometheus server (Debian's ``prometheus`` package, ``make prometheus``) for tests, on loopback.

One process per :class:`PrometheusServer`: a free port on 127.0.0.1, a config and a TSDB in a temporary folder, its
log in that folder (quoted in the error when it does not start). It scrapes the targets it is given::

    with PrometheusServer([("emulator", f"{env.emulator.url}/metrics"),
                           ("operator", "http://127.0.0.1:8080/metrics")],
                          ca_file=env.emulator.ca_path) as prometheus:
        prometheus.query("avg(azure_vm_cpu_percent)")
        operator_config(prometheus_url=prometheus.url)

``start()`` (called by ``with``) returns once ``/-/ready`` answers 200 and every target has been scraped
successfully. Everything waits on deadlines, polling; nothing sleeps blindly. The first scrape comes up to about 5
seconds after the start, whatever the scrape interval: Prometheus (2.42) hands targets to its scrape manager every 5
seconds; later scrapes follow ``scrape_interval``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

#: Set to 1 to let the tests that need Prometheus skip when it is not installed (they fail otherwise).
ALLOW_MISSING_ENV = "AZVM_ALLOW_MISSING_PROMETHEUS"
INSTALL_HINT = "run `make prometheus` (installs Debian's prometheus package)"

#: ``(job, url)`` or ``(job, url, ca_file)``: a scrape target; the URL's path is the metrics path.
Target = tuple[str, str] | tuple[str, str, str | None]


class PrometheusError(RuntimeError):
    """Prometheus did not start, a target did not come up, or a query failed."""


class PrometheusNotInstalled(PrometheusError):
    """No ``prometheus`` binary on PATH."""


def find_prometheus() -> str:
    """The path of the ``prometheus`` binary; :class:`PrometheusNotInstalled` (with the hint) if there is none."""
    path = shutil.which("prometheus")
    if path is None:
        raise PrometheusNotInstalled(f"the prometheus binary is not on PATH: {INSTALL_HINT}, "
                                     f"or set {ALLOW_MISSING_ENV}=1 to skip the tests that need it")
    return path


def missing_allowed() -> bool:
    return os.environ.get(ALLOW_MISSING_ENV) == "1"


def _duration(seconds: float) -> str:
    """Prometheus' duration syntax, in milliseconds (``1500ms``)."""
    return f"{max(1, round(seconds * 1000))}ms"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_config(job: str, url: str, *, ca_file: str | None, interval: float) -> dict[str, Any]:
    """One ``scrape_configs`` entry for a metrics URL (http or https; userinfo becomes basic auth)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"scrape target {job!r}: an http or https URL is needed, not {url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    config: dict[str, Any] = {
        "job_name": job,
        "scheme": parts.scheme,
        "metrics_path": parts.path or "/metrics",
        "scrape_interval": _duration(interval),
        "scrape_timeout": _duration(min(interval, 10.0)),
        "static_configs": [{"targets": [f"{host}:{port}"]}],
    }
    if parts.query:
        config["params"] = urllib.parse.parse_qs(parts.query)
    if parts.username is not None:
        config["basic_auth"] = {"username": urllib.parse.unquote(parts.username),
                                "password": urllib.parse.unquote(parts.password or "")}
    if parts.scheme == "https" and ca_file:
        config["tls_config"] = {"ca_file": str(Path(ca_file).resolve())}
    return config


class PrometheusServer:
    """The real ``prometheus`` binary as a subprocess on 127.0.0.1 (see the module's documentation)."""

    def __init__(
        self,
        targets: Sequence[Target] = (),
        *,
        ca_file: str | os.PathLike[str] | None = None,
        scrape_interval: float = 1.0,
        evaluation_interval: float = 1.0,
        workdir: str | os.PathLike[str] | None = None,
        binary: str | None = None,
        route_prefix: str = "",
        extra_args: Sequence[str] = (),
    ) -> None:
        """``ca_file``: the CA trusted for https targets that name none (e.g. the emulator's ``ca_path``);
        ``workdir``: where the config, TSDB and log go (default: a temporary folder, removed by ``stop()``);
        ``route_prefix``: serve everything under this path (``/prometheus``), as behind a proxy; part of ``url``."""
        self.targets = list(targets)
        self.ca_file = None if ca_file is None else os.fspath(ca_file)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.binary = binary
        self.route_prefix = "/" + route_prefix.strip("/") if route_prefix.strip("/") else ""
        self.extra_args = list(extra_args)
        self._own_workdir = workdir is None
        self._workdir_arg = None if workdir is None else Path(workdir)
        self.workdir: Path | None = None
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    # ---- paths and text ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>[<route prefix>]``: the HTTP API's base (what ``--prometheus-url`` takes)."""
        if self.port is None:
            raise PrometheusError("Prometheus is not started")
        return f"http://127.0.0.1:{self.port}{self.route_prefix}"

    @property
    def log_path(self) -> Path:
        if self.workdir is None:
            raise PrometheusError("Prometheus is not started")
        return self.workdir / "prometheus.log"

    def log(self, last_lines: int | None = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except (OSError, PrometheusError):
            return ""
        return "\n".join(lines if last_lines is None else lines[-last_lines:])

    def config(self) -> dict[str, Any]:
        """The configuration file's content (JSON is YAML)."""
        scrape_configs = []
        for target in self.targets:
            job, url = target[0], target[1]
            ca_file = target[2] if len(target) > 2 else None
            scrape_configs.append(scrape_config(job, url, ca_file=ca_file or self.ca_file,
                                                interval=self.scrape_interval))
        return {
            "global": {
                "scrape_interval": _duration(self.scrape_interval),
                "scrape_timeout": _duration(min(self.scrape_interval, 10.0)),
                "evaluation_interval": _duration(self.evaluation_interval),
            },
            "scrape_configs": scrape_configs,
        }

    # ---- lifecycle --------------------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0, *, wait_for_targets: bool = True) -> PrometheusServer:
        """Start and wait (at most ``timeout`` seconds) for ``/-/ready`` and, unless told not to, every target up."""
        if self.process is not None:
            raise PrometheusError("Prometheus is already started")
        deadline = time.monotonic() + timeout
        binary = self.binary or find_prometheus()
        self.workdir = self._workdir_arg or Path(tempfile.mkdtemp(prefix="azvm-prometheus-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(json.dumps(self.config(), indent=2))
        try:
            for attempt in range(3):  # the free port may be taken between probing it and Prometheus binding it
                self.port = _free_port()
                with open(self.log_path, "ab") as log:
                    self.process = subprocess.Popen(
                        [binary, f"--config.file={config_path}", f"--storage.tsdb.path={self.workdir / 'data'}",
                         f"--web.listen-address=127.0.0.1:{self.port}",
                         *([f"--web.external-url={self.url}", f"--web.route-prefix={self.route_prefix}"]
                           if self.route_prefix else []),
                         *self.extra_args],
                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                    )
                try:
                    self._wait_ready(deadline)
                    break
                except PrometheusError:
                    if attempt < 2 and "address already in use" in self.log(5) and time.monotonic() < deadline:
                        self._terminate(5.0)
                        continue
                    raise
            if wait_for_targets:
                self.wait_for_targets_up(deadline)
        except BaseException:
            self.stop(keep_workdir=True)
            raise
        return self

    def _wait_ready(self, deadline: float) -> None:
        last = "no answer"
        while True:
            assert self.process is not None
            code = self.process.poll()
            if code is not None:
                raise PrometheusError(f"prometheus exited with code {code} while starting; its log "
                                      f"({self.log_path}):\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except OSError as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                raise PrometheusError(f"prometheus was not ready in time (/-/ready: {last}); its log "
                                      f"({self.log_path}):\n{self.log()}")
            time.sleep(0.05)

    def active_targets(self) -> list[dict[str, Any]]:
        """``/api/v1/targets``' active targets (``scrapePool``, ``scrapeUrl``, ``health``, ``lastError`` ...)."""
        data = self._api("/api/v1/targets", {"state": "active"})
        return list(data.get("activeTargets") or [])

    def wait_for_targets_up(self, deadline: float | None = None) -> list[dict[str, Any]]:
        """Wait until every configured job has a target whose ``health`` is ``up`` (it was scraped successfully).

        ``deadline``: a ``time.monotonic()`` value (default: 30 seconds from now). Returns the active targets."""
        deadline = time.monotonic() + 30.0 if deadline is None else deadline
        jobs = {target[0] for target in self.targets}
        while True:
            self._check_running()
            targets = self.active_targets()
            up = {t.get("scrapePool") for t in targets if t.get("health") == "up"}
            if jobs <= up:
                return targets
            if time.monotonic() >= deadline:
                states = "; ".join(f"{t.get('scrapePool')} {t.get('scrapeUrl')}: {t.get('health')}"
                                   + (f" ({t['lastError']})" if t.get("lastError") else "") for t in targets)
                raise PrometheusError(f"scrape targets not up in time: {states or 'none discovered'}; "
                                      f"waiting for jobs {sorted(jobs - up)}")
            time.sleep(min(0.1, self.scrape_interval / 4))

    def query(self, promql: str, at: datetime | float | None = None) -> dict[str, Any]:
        """An instant query: the ``data`` of the answer (``{"resultType": ..., "result": ...}``)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = str(at.timestamp() if isinstance(at, datetime) else at)
        return self._api("/api/v1/query", params)

    def _api(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        self._check_running()
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                text = json.loads(text).get("error", text)
            except (ValueError, AttributeError):
                pass
            raise PrometheusError(f"GET {path}: HTTP {exc.code}: {text}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"GET {path}: {body.get('errorType')}: {body.get('error')}")
        return dict(body["data"])

    def _check_running(self) -> None:
        if self.process is None:
            raise PrometheusError("Prometheus is not started")
        code = self.process.poll()
        if code is not None:
            raise PrometheusError(f"prometheus exited with code {code}; its log ({self.log_path}):\n{self.log()}")

    def _terminate(self, timeout: float) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def stop(self, timeout: float = 10.0, *, keep_workdir: bool = False) -> None:
        """SIGTERM, SIGKILL after ``timeout`` seconds; the temporary folder goes unless ``keep_workdir``."""
        self._terminate(timeout)
        if self._own_workdir and self.workdir is not None and not keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self if self.process is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
