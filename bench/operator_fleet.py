"""What the operator costs at fleet scale, against the ARM emulator with Azure's real throttling limits.

    .venv/bin/python bench/operator_fleet.py --vms 100 --latency-scale 0.05 --out docs/benchmarks

Processes: the ARM emulator (``azure-arm-emulator``, its own process), the operator (``azure-vm-operator run``, its
own process, flags and environment as in tests/e2e/test_processes.py), and this harness process, which serves the
embedded Kubernetes API (``kubeapi``, on a thread of its own) unless ``KUBECONFIG`` names a cluster (then the CRDs of
``--crds`` are installed there and the fleet lives in ``--namespace``). Phases, in one run:

1. **converge**: N VirtualMachines created at once; time to all Ready, ARM calls by method and kind and by
   throttling policy (the emulator's request log), 429s received, peak operator RSS, and the floor: the time ARM's,
   Compute's and Network's documented buckets allow for the unavoidable writes (see :func:`floor`).
2. **steady**: after ``--settle`` s, ``--steady`` s of the converged fleet; ARM reads and writes per VM per hour.
3. **drift**: ``--drift-samples`` VMs resized behind the operator's back (``virtual_machines.begin_update`` through
   the Azure SDK, another principal); seconds until the VM's status shows ``Drifted`` and until the operator's
   correcting PATCH.
4. **baseline** (operator stopped): an ASO-style loop, GET + PUT (and the PUT's operation polls) of every Azure
   resource the fleet has (each VM, each NIC, the VNet, the resource group) once per ``--resync-interval``, for
   ``--baseline`` s; calls per VM per hour beside the operator's.
5. **restart**: the operator started again over the converged fleet (resume); ARM calls until every VM was
   reconciled once.
6. **delete**: every VirtualMachine deleted at once; time, 429s, and the VMs, NICs and disks left in the emulator.
7. **memory** (``--memory 1000,5000``, a fresh operator process): RSS with that many ``reconcilePolicy: Pause``
   VirtualMachines (no Azure call); with ``--tracemalloc``, one more process over the largest count with
   tracemalloc on (hooked in through a ``sitecustomize`` on PYTHONPATH, no change to the operator) and its top
   allocations by file and by package.

Writes ``<out>/<label>.json`` and ``<out>/<label>.png`` (and ``<label>-memory.png``). Comparison runs:
``--no-client-throttle`` (``AZVM_ARM_THROTTLE=false``), ``--observe-interval 0`` (``AZVM_OBSERVE_INTERVAL=0``).

A ScaleSet fleet (issue #10) instead of VirtualMachines:

    .venv/bin/python bench/operator_fleet.py --scale-sets 20 --instances 3 --latency-scale 0.05 --out docs/benchmarks

M ScaleSets (``spec.replicas`` K, no load balancer, the same image, size and resource group) are created at once
(``--vms`` is ignored); Ready means Ready=True for the current generation (``status.observedGeneration``). The floor
is :func:`scale_set_floor`; steady state and restart are measured as above, per scale set; drift, baseline and
memory are skipped (``skipped_phases`` in the JSON); delete checks that no scale set, instance, NIC, disk, load
balancer, public IP or NSG is left. The JSON has ``"kind": "ScaleSet"``; the default label is
``scalesets-<M>x<K>``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import aiohttp
import kubernetes.client
import kubernetes.config
import kubernetes.watch
import psutil

from azure_vm_operator.api.constants import GROUP, SCALESET_KIND, SCALESET_PLURAL, VERSION, VM_KIND, VM_PLURAL

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000f1"
TENANT = "bench-tenant"
OPERATOR_CLIENT = "azvm-operator"
RESOURCE_GROUP = "fleet-rg"
LOCATION = "westeurope"
SIZE, DRIFT_SIZE = "Standard_B2s", "Standard_B2ms"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVxUo3ZP3wv0vY3W4nKJt2f5Q0mPp0m2v7O1l8h4aDm bench@example"
API_VERSIONS = {"microsoft.compute": "2024-07-01", "microsoft.network": "2024-05-01", "": "2024-03-01"}

# ---- Azure's documented limits (the floor) ---------------------------------------------------------------------
#: Every bucket the floors use: (size in tokens, refill per second), per subscription unless the name says otherwise.
#: Sources: ARM's throttling docs (request-limits-and-throttling.md: the regional token bucket per subscription and
#: principal), compute-throttling-limits.md (Microsoft.Compute's policies, "refill per minute / max bucket") and
#: Network's limits (writes: 1,000 per 5 minutes); the values the emulator enforces (azure_arm_emulator.throttle).
LIMITS: dict[str, tuple[float, float]] = {
    # ARM, writes (PUT, PATCH, POST): 200 tokens, refilling 10/s.
    "ARM/writes": (200.0, 10.0),
    # Microsoft.Compute PutVM: 1,500 tokens, refilling 500/min.
    "Microsoft.Compute/PutVM": (1500.0, 500.0 / 60.0),
    # Microsoft.Compute PutVMScaleSet: 375 tokens, refilling 125/min (named PutVMSS, as in the emulator's request
    # log and the operator's throttle metrics) ...
    "Microsoft.Compute/PutVMSS": (375.0, 125.0 / 60.0),
    # ... and per scale set: 12 tokens, refilling 4/min.
    "Microsoft.Compute/PutVMSS:resource": (12.0, 4.0 / 60.0),
    # Microsoft.Network writes: 1,000 per 5 minutes (bucket 1,000, refilling 200/min).
    "Microsoft.Network/NetworkWrites": (1000.0, 200.0 / 60.0),
}
#: The emulator's operation latencies before --latency-scale (azure_arm_emulator.lro.LATENCY_SECONDS, and
#: azure_arm_emulator.providers.scale_sets.LATENCY_SECONDS: one operation creates a scale set with all its instances).
LATENCY = {"vm.create": 30.0, "network.put": 2.0, "vmss.create": 60.0}


def bucket_seconds(tokens: float, bucket: tuple[float, float]) -> float:
    """Seconds until a full bucket (size, refill per second) has handed out ``tokens`` tokens."""
    size, refill = bucket
    return max(0.0, tokens - size) / refill


def chained_floor(writes: dict[str, int], tokens: dict[str, float], chain: float, create: tuple[str, float]
                  ) -> dict[str, Any]:
    """``tokens`` by bucket of :data:`LIMITS`: the write floor is the largest of their times (the buckets refill in
    parallel); the last create cannot start before it nor before the ``chain`` of operations it needs, then takes
    its own latency (``create``: its name in the result, seconds)."""
    seconds = {name: bucket_seconds(count, LIMITS[name]) for name, count in tokens.items()}
    write_floor = max(seconds.values())
    name, latency = create
    return {"writes": writes, "seconds_per_bucket": seconds, "write_floor_s": write_floor, "network_chain_s": chain,
            name: latency, "floor_s": max(write_floor, chain) + latency}


def floor(vms: int, latency_scale: float) -> dict[str, Any]:
    """The least time N VMs can take to become Ready under Azure's documented limits.

    Unavoidable writes: a NIC PUT and a VM PUT per VM, and once the resource group and the VNet (2N + 2 ARM writes,
    N Compute PutVM, N + 1 Network writes). A full bucket of size S refilling r/s hands out T tokens in
    max(0, T - S) / r seconds; the buckets refill in parallel, so the write floor is the largest of the three.
    The last VM's PUT cannot be sent before that, nor before its NIC exists (the VNet's and the NIC's operations,
    one after the other); its create then takes the emulator's VM create latency. So:
    floor = max(write floor, VNet + NIC latency) + VM create latency (all latencies x --latency-scale).
    Reads (GETs, LISTs, operation polls) are left out: how many an operator needs is what is measured."""
    return chained_floor(
        {"ARM": 2 * vms + 2, "Compute/PutVM": vms, "Network": vms + 1},
        {"ARM/writes": 2 * vms + 2, "Microsoft.Compute/PutVM": vms, "Microsoft.Network/NetworkWrites": vms + 1},
        2 * LATENCY["network.put"] * latency_scale, ("vm_create_s", LATENCY["vm.create"] * latency_scale))


def scale_set_floor(scale_sets: int, latency_scale: float) -> dict[str, Any]:
    """The least time M scale sets (no load balancer, any instance count) can take to become Ready under Azure's
    documented limits, the way :func:`floor` does it for VMs.

    Unavoidable writes: one PUT per scale set (its instances come with it), and once the resource group and the VNet
    (M + 2 ARM writes, M Compute PutVMScaleSet, one in each scale set's own bucket, 1 Network write). The last
    scale set's PUT cannot be sent before the write floor, nor before the VNet exists (one Network operation); its
    create, all its instances at once, then takes the emulator's scale set create latency. So:
    floor = max(write floor, VNet latency) + scale set create latency (all latencies x --latency-scale)."""
    return chained_floor(
        {"ARM": scale_sets + 2, "Compute/PutVMSS": scale_sets, "Network": 1},
        {"ARM/writes": scale_sets + 2, "Microsoft.Compute/PutVMSS": scale_sets, "Microsoft.Compute/PutVMSS:resource": 1,
         "Microsoft.Network/NetworkWrites": 1},
        1 * LATENCY["network.put"] * latency_scale, ("scale_set_create_s", LATENCY["vmss.create"] * latency_scale))


# ---- small helpers -----------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mib(value: float | None) -> float | None:
    return None if value is None else round(value / 2 ** 20, 1)


def memory_map(pid: int) -> dict[str, float]:
    """The process's resident memory (MiB) by kind of mapping, from /proc/<pid>/smaps: ``heap`` (glibc's main
    arena: what C code and Python objects over 512 bytes allocate), ``anonymous`` (CPython's small-object
    arenas, glibc's thread arenas, thread stacks), ``files`` (code and data of the interpreter and libraries)."""
    kinds: dict[str, float] = collections.defaultdict(float)
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return {}
    header = re.compile(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$")
    name = ""
    for line in text.splitlines():
        m = header.match(line)
        if m:
            name = m.group(1).strip()
        elif line.startswith("Rss:"):
            kind = "heap" if name == "[heap]" else "files" if name.startswith("/") else "anonymous" if not name \
                else "other"
            kinds[kind] += int(line.split()[1]) / 1024
    return {k: round(v, 1) for k, v in sorted(kinds.items())}


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5,
               progress: Callable[[], str] | None = None) -> float:
    """Poll until ``predicate()``; returns the seconds it took. Raises TimeoutError with ``what``."""
    started = last_print = time.monotonic()
    while not predicate():
        now = time.monotonic()
        if now - started > timeout:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s" + (f" ({progress()})" if progress else ""))
        if progress is not None and now - last_print >= 15:
            say(f"  {what}: {progress()} after {now - started:.0f} s")
            last_print = now
        time.sleep(interval)
    return time.monotonic() - started


class LoopThread:
    """An asyncio loop in a daemon thread (the embedded Kubernetes API, the benchmark's own ARM clients)."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.native_id = 0
        started = threading.Event()

        def run() -> None:
            self.native_id = threading.get_native_id()
            asyncio.set_event_loop(self.loop)
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()
        started.wait()

    def call(self, coro: Any, timeout: float | None = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


# ---- the processes -----------------------------------------------------------------------------------------------

class Emulator:
    """``azure-arm-emulator`` as a process; its admin API (request log, resources) through AdminClient."""

    def __init__(self, workdir: Path, latency_scale: float, throttle_scale: float, client: LoopThread) -> None:
        self.log_path = workdir / "emulator.log"
        self.client = client
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "azure-arm-emulator"), "--port", "0", "--latency-scale",
             str(latency_scale), "--throttle-scale", str(throttle_scale), "--throttling"],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.url = self.ca = ""
        deadline = time.monotonic() + 30
        while not (self.url and self.ca):
            text = self.log_path.read_text()
            if url := re.search(r"listening on (https://\S+)", text):
                self.url = url.group(1)
            if ca := re.search(r"CA certificate: (\S+)", text):
                self.ca = ca.group(1)
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start:\n{text}")
            time.sleep(0.1)
        self._last_seq = 0

    def admin(self, call: Callable[[Any], Any]) -> Any:
        from azure_arm_emulator.admin import AdminClient

        async def run() -> Any:
            async with AdminClient(self.url, self.ca) as admin:
                return await call(admin)

        return self.client.call(run(), timeout=300)

    def new_requests(self) -> tuple[list[dict[str, Any]], int]:
        """Log entries since the previous call, and how many of them the log no longer had (0 expected)."""
        entries = [e for e in self.admin(lambda a: a.requests()) if e["seq"] > self._last_seq]
        lost = 0
        if entries:
            lost = max(0, entries[0]["seq"] - self._last_seq - 1)
            self._last_seq = entries[-1]["seq"]
        if len(entries) > 40_000:  # the log keeps 100,000: start afresh (its seq goes on)
            self.admin(lambda a: a.clear_requests())
        return entries, lost

    def resources(self) -> list[dict[str, Any]]:
        return list(self.admin(lambda a: a.resources()))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


SITECUSTOMIZE = '''
import os
if os.environ.get("AZVM_BENCH_TRACEMALLOC"):
    import signal, tracemalloc
    def _azvm_bench_start(signum, frame):
        tracemalloc.start(int(os.environ.get("AZVM_BENCH_TRACEMALLOC_FRAMES", "1")))

    def _azvm_bench_dump(signum, frame):
        path = os.environ["AZVM_BENCH_TRACEMALLOC"]
        import json
        current, peak = tracemalloc.get_traced_memory()
        with open(path + ".memory.json", "w") as f:
            json.dump({"current": current, "peak": peak}, f)
        tracemalloc.take_snapshot().dump(path + ".part")
        os.replace(path + ".part", path)

    signal.signal(signal.SIGUSR2, _azvm_bench_start)
    signal.signal(signal.SIGUSR1, _azvm_bench_dump)
'''


TRACE_FRAMES = 12  #: frames kept per allocation: enough to find the first caller outside the standard library


def owner_of(traceback: tracemalloc.Traceback) -> tuple[str, str]:
    """(package, file) of the most recent frame outside the standard library: who asked for the memory."""
    for frame in reversed(traceback):  # oldest first in a Traceback: walk from the most recent
        name = frame.filename
        if "site-packages" in name or "azure_vm_operator" in name:
            return package_of(name), short_path(name)
    return "stdlib/other", short_path(traceback[-1].filename) if len(traceback) else "?"


class Operator:
    """``azure-vm-operator run`` as a process, configured by flags and environment as a user would."""

    def __init__(self, args: argparse.Namespace, kubeconfig: str, emulator: Emulator, log_path: Path,
                 tracemalloc_path: Path | None = None, namespace: str | None = None) -> None:
        self.metrics_port = free_port()
        env = {**os.environ, "AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": OPERATOR_CLIENT,
               "AZURE_CLIENT_SECRET": "bench-secret", "AZURE_AUTHORITY_HOST": emulator.url,
               "AZURE_DISABLE_INSTANCE_DISCOVERY": "true", "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
               "PYTHONUNBUFFERED": "1"}
        env.pop("KUBECONFIG", None)  # --kubeconfig names the cluster
        if args.no_client_throttle:
            env["AZVM_ARM_THROTTLE"] = "false"
        if args.observe_interval is not None:
            env["AZVM_OBSERVE_INTERVAL"] = str(args.observe_interval)
        for pair in args.operator_env:
            key, _, value = pair.partition("=")
            env[key] = value
        if tracemalloc_path is not None:
            hook = log_path.parent / "tracemalloc-hook"
            hook.mkdir(exist_ok=True)
            (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hook), env.get("PYTHONPATH")]))
            env["AZVM_BENCH_TRACEMALLOC"] = str(tracemalloc_path)
            env["AZVM_BENCH_TRACEMALLOC_FRAMES"] = str(TRACE_FRAMES)
        self.tracemalloc_path = tracemalloc_path
        self.command = [str(Path(sys.executable).parent / "azure-vm-operator"), "run", "--kubeconfig", kubeconfig,
                        "--azure-endpoint", emulator.url, "--azure-ca", emulator.ca, "--metrics-port",
                        str(self.metrics_port), "--resync-interval", f"{args.resync_interval:g}",
                        "--cluster-id", "bench", *(["--namespace", namespace] if namespace else [])]
        self._log = log_path.open("a")
        self.proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.ps = psutil.Process(self.proc.pid)
        self.peak_rss = 0
        try:
            wait_until(self._up, 120, "the operator's /metrics endpoint")
        except BaseException:
            self.proc.kill()
            self.proc.wait(10)
            raise

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the operator exited with {self.proc.returncode}; see {self._log.name}")
        try:
            self.metrics()
            return True
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            return str(response.read().decode())

    def reconciles(self, results: Iterable[str] = ("success",), kind: str = VM_KIND) -> float:
        text = self.metrics()
        return sum(float(m.group(2)) for m in re.finditer(
            rf'^azvm_reconcile_total\{{kind="{kind}",result="([a-z_]+)"\}} (\S+)', text, re.MULTILINE)
            if m.group(1) in results)

    def rss(self) -> int:
        try:
            rss = int(self.ps.memory_info().rss)
        except psutil.Error:
            return 0
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def cpu(self) -> float:
        try:
            times = self.ps.cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    def start_tracemalloc(self) -> None:
        self.proc.send_signal(signal.SIGUSR2)

    def dump_tracemalloc(self, timeout: float = 300) -> tuple[tracemalloc.Snapshot, dict[str, int]]:
        """The snapshot, and tracemalloc's current and peak traced bytes."""
        assert self.tracemalloc_path is not None
        self.tracemalloc_path.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)
        wait_until(self.tracemalloc_path.exists, timeout, "the tracemalloc snapshot")
        memory = json.loads(Path(str(self.tracemalloc_path) + ".memory.json").read_text())
        return tracemalloc.Snapshot.load(str(self.tracemalloc_path)), memory

    def throttle_waits(self) -> dict[str, tuple[float, float]]:
        """Client-side throttle waits by bucket: (seconds, requests), from /metrics."""
        waits: dict[str, tuple[float, float]] = {}
        try:
            text = self.metrics()
        except OSError:
            return waits
        for m in re.finditer(r'^azvm_arm_throttle_wait_seconds_(sum|count)\{[^}]*bucket="([^"]+)"[^}]*\} (\S+)',
                             text, re.MULTILINE):
            total, count = waits.get(m.group(2), (0.0, 0.0))
            waits[m.group(2)] = (float(m.group(3)), count) if m.group(1) == "sum" else (total, float(m.group(3)))
        return waits

    def stop(self, graceful: bool = True) -> int | None:
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        self.stop_seconds = time.monotonic() - t0
        return self.proc.returncode


class Harness:
    """The Kubernetes side: the embedded API on a thread of this process, or the cluster KUBECONFIG names."""

    def __init__(self, workdir: Path, crds: Path, namespace: str) -> None:
        self.namespace = namespace
        self.kube_thread: LoopThread | None = None
        self.external = bool(os.environ.get("KUBECONFIG"))
        if self.external:
            self.kubeconfig = os.environ["KUBECONFIG"].split(os.pathsep)[0]
        else:
            from kubeapi import KubeAPIServer

            self.kube_thread = LoopThread("kubeapi")
            self.kubeapi = KubeAPIServer(token="bench-token")
            self.kube_thread.call(self.kubeapi.start(host="127.0.0.1", port=0))
            self.kubeconfig = self.kubeapi.write_kubeconfig(str(workdir / "kubeconfig"))
        self.api = kubernetes.config.new_client_from_config(self.kubeconfig)
        self.api.configuration.connection_pool_maxsize = 16
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.install_crds(crds)
        self.ensure_namespace(namespace)
        self.process = psutil.Process()

    def install_crds(self, folder: Path) -> None:
        from azvm_sandbox.crds import load_crds

        crds = load_crds(folder)
        if not self.external:
            for crd in crds:
                self.kubeapi.register_crd(crd)
            return
        ext = kubernetes.client.ApiextensionsV1Api(self.api)
        for crd in crds:
            name = crd["metadata"]["name"]
            try:
                existing = ext.read_custom_resource_definition(name)
                crd["metadata"]["resourceVersion"] = existing.metadata.resource_version
                ext.replace_custom_resource_definition(name, crd)
            except kubernetes.client.ApiException as exc:
                if exc.status != 404:
                    raise
                ext.create_custom_resource_definition(crd)

            def established(name: str = name) -> bool:
                conditions = ext.read_custom_resource_definition(name).status.conditions or []
                return any(c.type == "Established" and c.status == "True" for c in conditions)

            wait_until(established, 60, f"CRD {name} established")

    def cpu(self) -> dict[str, float]:
        """CPU seconds of this process, and of the embedded Kubernetes API's thread within it."""
        times = self.process.cpu_times()
        result = {"harness_process": float(times.user + times.system)}
        if self.kube_thread is not None:
            for thread in self.process.threads():
                if thread.id == self.kube_thread.native_id:
                    result["kubeapi_thread"] = float(thread.user_time + thread.system_time)
        return result

    def ensure_namespace(self, name: str) -> None:
        try:
            kubernetes.client.CoreV1Api(self.api).create_namespace({"metadata": {"name": name}})
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:
                raise

    def create(self, manifests: list[dict[str, Any]], workers: int = 8, namespace: str | None = None,
               plural: str = VM_PLURAL) -> None:
        def one(manifest: dict[str, Any]) -> None:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace or self.namespace, plural,
                                                        manifest)

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, manifests))

    def delete(self, names: list[str], workers: int = 8, plural: str = VM_PLURAL) -> None:
        def one(name: str) -> None:
            try:
                self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
            except kubernetes.client.ApiException as exc:
                if exc.status != 404:
                    raise

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, names))

    def close(self) -> None:
        self.api.close()
        if self.kube_thread is not None:
            self.kube_thread.call(self.kubeapi.stop())
            self.kube_thread.close()


@dataclass
class VmState:
    ready: bool = False
    printable: str | None = None
    drifted: bool = False
    first_ready: float | None = None
    drifted_at: float | None = None  #: the first time this watch saw Drifted=True since ``watch_drift``
    deleted_at: float | None = None


class FleetWatch:
    """A LIST + WATCH of the VirtualMachines (``plural``) of the namespace in a thread: when each became Ready,
    Drifted, gone (wall-clock times, comparable with the emulator's request log). With ``current_generation``, Ready
    counts only once ``status.observedGeneration`` is the object's ``metadata.generation``."""

    def __init__(self, harness: Harness, plural: str = VM_PLURAL, current_generation: bool = False) -> None:
        self.harness = harness
        self.plural = plural
        self.current_generation = current_generation
        self.states: dict[str, VmState] = {}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fleet-watch", daemon=True)
        self.thread.start()

    def _apply(self, kind: str, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        conditions = {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}
        with self.lock:
            state = self.states.setdefault(name, VmState())
            if kind == "DELETED":
                state.deleted_at = state.deleted_at or now
                state.ready = False
                return
            state.deleted_at = None
            state.ready = conditions.get("Ready") == "True" and (not self.current_generation or (
                (obj.get("status") or {}).get("observedGeneration") == obj["metadata"].get("generation")))
            state.printable = (obj.get("status") or {}).get("printableStatus")
            state.drifted = conditions.get("Drifted") == "True"
            if state.ready and state.first_ready is None:
                state.first_ready = now
            if state.drifted and state.drifted_at is None:
                state.drifted_at = now

    def _run(self) -> None:
        custom = self.harness.custom
        while not self._stop.is_set():
            try:
                listing = custom.list_namespaced_custom_object(GROUP, VERSION, self.harness.namespace, self.plural)
                now = time.time()
                names = set()
                for obj in listing["items"]:
                    names.add(obj["metadata"]["name"])
                    self._apply("ADDED", obj, now)
                with self.lock:
                    for name, state in self.states.items():
                        if name not in names and state.deleted_at is None:
                            state.deleted_at = now
                version = listing["metadata"]["resourceVersion"]
                while not self._stop.is_set():
                    stream = kubernetes.watch.Watch().stream(
                        custom.list_namespaced_custom_object, GROUP, VERSION, self.harness.namespace, self.plural,
                        resource_version=version, timeout_seconds=30, allow_watch_bookmarks=True)
                    for event in stream:
                        obj = event["object"]
                        version = obj["metadata"].get("resourceVersion", version)
                        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            self._apply(event["type"], obj, time.time())
                        if self._stop.is_set():
                            break
            except Exception as exc:  # noqa: BLE001 - 410 Gone, a dropped connection: list again
                if not self._stop.is_set():
                    time.sleep(0.5)
                    if "410" not in str(exc):
                        say(f"  (fleet watch: {type(exc).__name__}: {str(exc)[:120]}; listing again)")

    def count(self, names: Iterable[str], test: Callable[[VmState], bool]) -> int:
        with self.lock:
            return sum(1 for n in names if n in self.states and test(self.states[n]))

    def state(self, name: str) -> VmState:
        with self.lock:
            return self.states.setdefault(name, VmState())

    def watch_drift(self, name: str) -> None:
        with self.lock:
            self.states.setdefault(name, VmState()).drifted_at = None

    def stop(self) -> None:
        self._stop.set()


class Sampler:
    """RSS and CPU of the operator and the emulator every ``interval`` seconds, in a thread."""

    def __init__(self, emulator: Emulator, interval: float = 1.0) -> None:
        self.emulator = psutil.Process(emulator.proc.pid)
        self.operator: Operator | None = None
        self.samples: list[dict[str, Any]] = []
        self.pytest_seen: list[tuple[float, bool]] = []  #: (time, whether a pytest process was running)
        self.interval = interval
        self._stop = threading.Event()
        threading.Thread(target=self._run, name="sampler", daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            operator = self.operator
            sample: dict[str, Any] = {"t": time.time()}
            if operator is not None and operator.proc.poll() is None:
                sample["operator_rss"] = operator.rss()
            try:
                sample["emulator_rss"] = self.emulator.memory_info().rss
            except psutil.Error:
                pass
            self.samples.append(sample)
            if len(self.samples) % 5 == 1:
                self.pytest_seen.append((sample["t"], pytest_running()))

    def peak(self, key: str, since: float, until: float) -> int | None:
        values = [s[key] for s in self.samples if since <= s["t"] <= until and s.get(key)]
        return max(values) if values else None

    def stop(self) -> None:
        self._stop.set()


def pytest_running() -> bool:
    """Another job's pytest on the machine (what `pgrep -f pytest` finds): its load skews the numbers."""
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any("pytest" in part for part in process.info["cmdline"] or []):
                return True
        except psutil.Error:
            continue
    return False


# ---- ARM request accounting ------------------------------------------------------------------------------------

def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def classify(entry: dict[str, Any]) -> tuple[str, str]:
    """(kind, resource type) of a request: kind GET, LIST, PUT, PATCH, POST, DELETE or POLL (operation status)."""
    segments = [s for s in entry["path"].split("/") if s]
    lowered = [s.lower() for s in segments]
    method = entry["method"].upper()
    if "operations" in lowered and "locations" in lowered:
        return "POLL", "operations"
    if "providers" in lowered:
        at = len(lowered) - 1 - lowered[::-1].index("providers")
        rest = segments[at + 2:]
        rtype = "/".join(rest[0::2])
        is_collection = len(rest) % 2 == 1
    elif "resourcegroups" in lowered:
        at = lowered.index("resourcegroups")
        rtype, is_collection = "resourceGroups", len(segments) == at + 1
    else:
        rtype, is_collection = "subscriptions", len(segments) <= 2
    if method == "GET" and is_collection:
        return "LIST", rtype
    return method, rtype


@dataclass
class Calls:
    """ARM requests (``/subscriptions/...``) of one phase, counted the ways the report needs."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    lost: int = 0

    @property
    def arm(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["path"].lower().startswith("/subscriptions/")]

    def summary(self, vms: int, seconds: float | None = None, unit: str = "vm") -> dict[str, Any]:
        """Counts; ``per_<unit>`` and ``per_<unit>_per_hour``: per custom resource of the fleet (``vms`` of them)."""
        arm = self.arm
        by_kind: collections.Counter[str] = collections.Counter()
        by_type: collections.Counter[str] = collections.Counter()
        by_policy: collections.Counter[str] = collections.Counter()
        throttled_by: collections.Counter[str] = collections.Counter()
        statuses: collections.Counter[str] = collections.Counter()
        not_found: collections.Counter[str] = collections.Counter()
        for e in arm:
            kind, rtype = classify(e)
            by_kind[kind] += 1
            by_type[f"{kind} {rtype}"] += 1
            by_policy[str(e.get("policy"))] += 1
            statuses[str(e.get("status"))] += 1
            if e.get("status") == 429:
                throttled_by[str(e.get("policy"))] += 1
            if e.get("status") == 404 and kind == "GET":
                not_found[rtype] += 1
        reads = sum(by_kind[k] for k in ("GET", "LIST", "POLL"))
        writes = sum(by_kind[k] for k in ("PUT", "PATCH", "POST"))
        result: dict[str, Any] = {
            "arm_calls": len(arm), "reads": reads, "writes": writes, "deletes": by_kind["DELETE"],
            "by_kind": dict(sorted(by_kind.items())), "by_kind_and_type": dict(sorted(by_type.items())),
            "by_policy": dict(sorted(by_policy.items())), "by_status": dict(sorted(statuses.items())),
            "http_429": statuses["429"], "http_429_by_policy": dict(throttled_by),
            "get_404_by_type": dict(not_found), "log_entries_lost": self.lost,
            f"per_{unit}": {k: round(v / vms, 2) for k, v in sorted(by_kind.items())} if vms else {},
        }
        if seconds:
            hour = 3600.0 / seconds
            result["seconds"] = round(seconds, 1)
            result[f"per_{unit}_per_hour"] = {
                "arm_calls": round(len(arm) / vms * hour, 1), "reads": round(reads / vms * hour, 1),
                "writes": round(writes / vms * hour, 1), "deletes": round(by_kind["DELETE"] / vms * hour, 1),
                **{k: round(v / vms * hour, 1) for k, v in sorted(by_kind.items())}}
        return result


def series(entries: list[dict[str, Any]], timeline: list[tuple[str, float]]) -> dict[str, Any]:
    """What the plots need, kept in the JSON (``--replot``): ARM calls per 10 s of the whole run, by who made them
    (the baseline's window is the baseline's), and per minute of the steady and baseline windows."""
    start = timeline[0][1] if timeline else 0.0
    bounds = {p: t for p, t in timeline}
    starts = [(t, p) for p, t in timeline if not p.endswith(" end")]
    whole: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    windows: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for e in entries:
        if not e["path"].lower().startswith("/subscriptions/"):
            continue
        t = parse_time(e["time"])
        phase = next((p for at, p in reversed(starts) if at <= t), "")
        whole["baseline" if phase == "baseline" else "operator"][int((t - start) // 10)] += 1
        if e.get("status") == 429:
            whole["HTTP 429"][int((t - start) // 10)] += 1
        for window in ("steady", "baseline"):
            if window in bounds and f"{window} end" in bounds and bounds[window] <= t < bounds[f"{window} end"]:
                windows[window][int((t - bounds[window]) // 60)] += 1
    result: dict[str, Any] = {"bin_seconds": 10, "whole_run": {k: sorted(v.items()) for k, v in whole.items()}}
    for window in ("steady", "baseline"):
        if window in bounds and f"{window} end" in bounds:
            minutes = max(1, int((bounds[f"{window} end"] - bounds[window]) // 60))
            result[f"{window}_per_minute"] = [windows[window].get(i, 0) for i in range(minutes)]
    return result


# ---- the fleet ---------------------------------------------------------------------------------------------------

def manifest(name: str, namespace: str, pause: bool = False, kind: str = VM_KIND,
             **more: Any) -> dict[str, Any]:
    """A VirtualMachine (or with ``kind``, a ScaleSet: ``more`` adds its fields, e.g. ``replicas``) of the fleet: a
    marketplace Ubuntu, Standard_B2s, in the fleet's resource group, no load balancer."""
    spec: dict[str, Any] = {
        "location": LOCATION, "resourceGroup": RESOURCE_GROUP, "size": SIZE,
        "image": {"marketplace": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                  "sku": "22_04-lts-gen2"}},
        "adminUsername": "azureuser", "sshPublicKeys": [KEY], **more}
    if pause:
        spec["reconcilePolicy"] = "Pause"
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


@dataclass(frozen=True)
class Fleet:
    """What a run converges and deletes: VirtualMachines (the default) or ScaleSets (``--scale-sets``)."""

    kind: str
    plural: str
    unit: str  #: in the JSON's keys: per_<unit>, per_<unit>_per_hour, <unit>s_ready_at_end
    noun: str  #: in the printed lines and the plots: "per VM per hour"
    floor: Callable[[int, float], dict[str, Any]]
    left_key: str  #: the delete phase's count of what must be gone
    left_types: tuple[str, ...]  #: lower-case resource types (as count_types names them) that must be gone


VM_FLEET = Fleet(VM_KIND, VM_PLURAL, "vm", "VM", floor, "vms_nics_disks_left",
                 ("virtualmachines", "networkinterfaces", "disks", "publicipaddresses", "networksecuritygroups"))
SCALESET_FLEET = Fleet(SCALESET_KIND, SCALESET_PLURAL, "scale_set", "scale set", scale_set_floor,
                       "scale_sets_instances_left",
                       ("virtualmachinescalesets", "virtualmachinescalesets/virtualmachines", "virtualmachines",
                        "networkinterfaces", "disks", "loadbalancers", "publicipaddresses", "networksecuritygroups"))
FLEETS = {f.kind: f for f in (VM_FLEET, SCALESET_FLEET)}


def count_types(resources: list[dict[str, Any]]) -> dict[str, int]:
    counter: collections.Counter[str] = collections.Counter()
    for r in resources:
        counter[str(r.get("type", "")).split("/", 1)[-1]] += 1
    return dict(sorted(counter.items()))


def sdk_credential(emulator: Emulator, client_id: str) -> Any:
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(TENANT, client_id, "bench-secret", authority=emulator.url,
                                  connection_verify=emulator.ca, disable_instance_discovery=True)


def compute_client(emulator: Emulator, client_id: str) -> Any:
    from azure.mgmt.compute import ComputeManagementClient

    return ComputeManagementClient(sdk_credential(emulator, client_id), SUBSCRIPTION, base_url=emulator.url,
                                   connection_verify=emulator.ca,
                                   credential_scopes=["https://management.azure.com/.default"])


# ---- the ASO-style baseline ------------------------------------------------------------------------------------

async def baseline_loop(emulator: Emulator, resource_ids: list[str], interval: float, duration: float) -> dict[str, Any]:
    """Every resource, once per ``interval`` (spread evenly over it): GET, then PUT of what the GET returned, then
    the PUT's operation polled (after its Retry-After) until it ends; the way a PUT-on-every-resync controller
    (Azure Service Operator v2) keeps resources as declared. No client-side throttling; 429s are retried once after
    their Retry-After, as the Azure SDK would."""
    counts: collections.Counter[str] = collections.Counter()
    context = ssl.create_default_context(cafile=emulator.ca)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=64)) as anonymous:
        async with anonymous.post(f"{emulator.url}/{TENANT}/oauth2/v2.0/token", data={
                "client_id": "aso-baseline", "client_secret": "x", "grant_type": "client_credentials",
                "scope": "https://management.azure.com/.default"}) as response:
            token = (await response.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    deadline = started + duration

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=64),
                                     headers=headers) as session:
        async def request(method: str, url: str, body: Any = None) -> tuple[int, Any, Any]:
            for attempt in (1, 2):
                async with session.request(method, url, json=body) as response:
                    payload = await response.json(content_type=None) if response.content_length != 0 else None
                    counts[f"{method} {response.status}"] += 1
                    if response.status == 429 and attempt == 1:
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
                    return response.status, payload, response.headers
            raise AssertionError("unreachable")

        async def keep(resource_id: str, offset: float) -> None:
            provider = re.search(r"/providers/([^/]+)/", resource_id)
            version = API_VERSIONS[provider.group(1).lower() if provider else ""]
            url = f"{emulator.url}{resource_id}?api-version={version}"
            cycle = 0
            while True:
                slot = started + offset + cycle * interval
                if slot >= deadline:
                    return
                await asyncio.sleep(max(0.0, slot - time.monotonic()))
                cycle += 1
                status, body, _ = await request("GET", url)
                if status != 200 or not isinstance(body, dict):
                    continue
                status, _, answer = await request("PUT", url, body)
                monitor = answer.get("Azure-AsyncOperation") or answer.get("Location")
                while monitor and status in (200, 201, 202):
                    await asyncio.sleep(float(answer.get("Retry-After") or 1))
                    status, operation, answer = await request("GET", monitor)
                    if status != 200 or (operation or {}).get("status", "Succeeded") not in ("InProgress",):
                        break

        await asyncio.gather(*(keep(rid, i * interval / len(resource_ids)) for i, rid in enumerate(resource_ids)))
    return {"client_counts": dict(sorted(counts.items())), "seconds": round(time.monotonic() - started, 1)}


# ---- the run ------------------------------------------------------------------------------------------------------

class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="azvm-fleet-"))
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        scale_sets = args.scale_sets > 0
        self.fleet = SCALESET_FLEET if scale_sets else VM_FLEET
        self.count = args.scale_sets if scale_sets else args.vms  #: custom resources in the fleet
        self.label = args.label or (f"scalesets-{args.scale_sets}x{args.instances}" if scale_sets
                                    else f"fleet-{args.vms}")
        self.names = [f"fleet-{'ss-' if scale_sets else ''}{i:05d}" for i in range(self.count)]
        self.result: dict[str, Any] = {"label": self.label, **({"kind": SCALESET_KIND} if scale_sets else {}),
                                       "config": self.describe()}
        self.timeline: list[tuple[str, float]] = []  # (phase, wall-clock start)
        self.phase_entries: dict[str, list[dict[str, Any]]] = {}
        self._lost: dict[str, int] = {}
        self._waits: dict[str, tuple[float, float]] = {}
        self.client = LoopThread("bench-client")
        say(f"workdir {self.workdir}")
        self.emulator = Emulator(self.workdir, args.latency_scale, args.throttle_scale, self.client)
        self.harness = Harness(self.workdir, Path(args.crds), args.namespace)
        self.watch = FleetWatch(self.harness, self.fleet.plural, current_generation=scale_sets)
        self.sampler = Sampler(self.emulator)
        self.operator: Operator | None = None
        self.operator_log = self.workdir / "operator.log"

    def describe(self) -> dict[str, Any]:
        args = self.args
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "operator"], capture_output=True,
                               text=True).stdout.split("\n")
        cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                          if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
            else platform.processor()
        return {
            "argv": sys.argv[1:],
            **({"kind": SCALESET_KIND, "scale_sets": args.scale_sets, "instances": args.instances,
                "ready_means": "Ready=True and status.observedGeneration == metadata.generation"}
               if args.scale_sets > 0 else {"vms": args.vms}),
            "latency_scale": args.latency_scale,
            "throttle_scale": args.throttle_scale, "resync_interval": args.resync_interval,
            "observe_interval": "operator default (30)" if args.observe_interval is None else args.observe_interval,
            "client_throttle": not args.no_client_throttle, "kubernetes": os.environ.get("KUBECONFIG") or "embedded",
            "operator_env": args.operator_env,
            "git_head": head, "operator_files_modified": [line for line in dirty if line.strip()],
            "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model, "python": platform.python_version(),
                        "kernel": platform.release(), "memory_gib": round(psutil.virtual_memory().total / 2 ** 30, 1),
                        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                        "pytest_running_at_start": pytest_running()},
            "started": datetime.now().isoformat(timespec="seconds"),
        }

    # -- bookkeeping --------------------------------------------------------------------------------------------

    def cpu_now(self) -> dict[str, float]:
        machine = psutil.cpu_times()
        values = {"operator_process": self.operator.cpu() if self.operator else 0.0,
                  "emulator_process": float(sum(psutil.Process(self.emulator.proc.pid).cpu_times()[:2])),
                  "machine_busy": float(sum(machine) - machine.idle - getattr(machine, "iowait", 0.0))}
        values.update(self.harness.cpu())
        return values

    def begin(self, phase: str) -> tuple[float, dict[str, float]]:
        entries, lost = self.emulator.new_requests()  # whatever came before belongs to the previous phase
        if self.timeline:
            previous = self.timeline[-1][0]
            self.phase_entries.setdefault(previous, []).extend(entries)
            self._lost[previous] = self._lost.get(previous, 0) + lost
        self.timeline.append((phase, time.time()))
        self._waits = self.operator.throttle_waits() if self.operator else {}
        say(f"phase {phase}")
        return time.time(), self.cpu_now()

    def finish(self, phase: str, started: float, cpu_before: dict[str, float], vms: int,
               per_hour: bool = False) -> dict[str, Any]:
        entries, lost = self.emulator.new_requests()
        self.phase_entries.setdefault(phase, []).extend(entries)
        self._lost[phase] = self._lost.get(phase, 0) + lost
        ended = time.time()
        self.timeline.append((f"{phase} end", ended))
        calls = Calls(self.phase_entries[phase], self._lost[phase])
        cpu_after = self.cpu_now()
        cpu = {k: round(cpu_after[k] - cpu_before.get(k, 0.0), 1) for k in cpu_after}
        if self.operator is not None and cpu_before.get("operator_process", 0.0) > cpu_after["operator_process"]:
            cpu["operator_process"] = round(cpu_after["operator_process"], 1)  # a new process in this phase
        machine = cpu.pop("machine_busy")
        cpu["other_processes"] = round(max(0.0, machine - cpu["operator_process"] - cpu["emulator_process"]
                                           - cpu["harness_process"]), 1)
        wall = ended - started
        cpu["wall_seconds"] = round(wall, 1)
        if self.operator is not None:
            cpu["operator_share_of_one_core"] = round(cpu["operator_process"] / wall, 2) if wall else None
        if "kubeapi_thread" in cpu:
            cpu["kubeapi_share_of_one_core"] = round(cpu["kubeapi_thread"] / wall, 2) if wall else None
        cpu["emulator_share_of_one_core"] = round(cpu["emulator_process"] / wall, 2) if wall else None
        waits: dict[str, Any] = {}
        if self.operator is not None:
            for bucket, (seconds, count) in self.operator.throttle_waits().items():
                before = self._waits.get(bucket, (0.0, 0.0))
                if count - before[1] > 0:
                    waits[bucket] = {"requests": int(count - before[1]), "seconds_waited": round(seconds - before[0], 1)}
        foreign = [t for t, seen in self.sampler.pytest_seen if started <= t <= ended and seen]
        return {"arm": calls.summary(vms, wall if per_hour else None, self.fleet.unit), "cpu_seconds": cpu,
                "other_pytest_seen_during_phase": bool(foreign),
                "client_throttle_waits": dict(sorted(waits.items(), key=lambda kv: -kv[1]["seconds_waited"])),
                "peak_operator_rss_mib": mib(self.sampler.peak("operator_rss", started, ended)),
                "peak_emulator_rss_mib": mib(self.sampler.peak("emulator_rss", started, ended))}

    def start_operator(self, tracemalloc_path: Path | None = None, namespace: str | None = None) -> Operator:
        self.stop_operator()
        self.operator = Operator(self.args, self.harness.kubeconfig, self.emulator, self.operator_log,
                                 tracemalloc_path, namespace)
        self.sampler.operator = self.operator
        return self.operator

    def stop_operator(self, graceful: bool = True) -> None:
        if self.operator is not None:
            self.sampler.operator = None
            code = self.operator.stop(graceful)
            if graceful:
                say(f"  operator stopped in {self.operator.stop_seconds:.1f} s (exit code {code})")
            if graceful and code not in (0, None):
                say(f"  the operator exited with {code}")
            self.operator = None

    def manifests(self) -> list[dict[str, Any]]:
        namespace = self.args.namespace
        if self.fleet is SCALESET_FLEET:
            return [manifest(n, namespace, kind=SCALESET_KIND, replicas=self.args.instances) for n in self.names]
        return [manifest(n, namespace) for n in self.names]

    def wait_for_fleet(self, started: float, what: str, word: str, test: Callable[[VmState], bool],
                       at: Callable[[VmState], float | None]) -> tuple[bool, list[float]]:
        """Wait until ``test`` holds for every custom resource of the fleet (``what``; progress: "n/N ``word``"):
        whether it did in time, and the seconds since ``started`` at which each did (``at``), sorted."""
        holds = lambda: self.watch.count(self.names, test)  # noqa: E731
        try:
            wait_until(lambda: holds() >= self.count, self.args.timeout, what, 0.2,
                       lambda: f"{holds()}/{self.count} {word}")
            done = True
        except TimeoutError as exc:
            say(f"  {exc}")
            done = False
        times = sorted(t - started for n in self.names if (t := at(self.watch.state(n))) is not None)
        return done, times

    # -- phases -------------------------------------------------------------------------------------------------

    def converge(self) -> None:
        args = self.args
        traced = self.workdir / "converge.tracemalloc" if args.trace_converge else None
        operator = self.start_operator(tracemalloc_path=traced)
        time.sleep(1.0)
        idle_rss = operator.rss()
        if traced is not None:
            operator.start_tracemalloc()
        started, cpu = self.begin("converge")
        self.harness.create(self.manifests(), plural=self.fleet.plural)
        created = time.time() - started
        done, firsts = self.wait_for_fleet(started, f"all {self.fleet.kind}s Ready", "Ready", lambda s: s.ready,
                                           lambda s: s.first_ready)
        seconds = firsts[-1] if done and firsts else None
        result = self.finish("converge", started, cpu, self.count)
        fl = self.fleet.floor(self.count, args.latency_scale)
        resources = self.emulator.resources()
        result.update({
            "all_ready": done, "seconds_to_all_ready": round(seconds, 1) if seconds else None,
            "seconds_to_create_the_custom_resources": round(created, 1),
            "ready_timeline": [(round(t, 2), i + 1) for i, t in enumerate(firsts)],
            "floor": fl, "time_over_floor": round(seconds / fl["floor_s"], 2) if seconds and fl["floor_s"] > 0 else None,
            "operator_idle_rss_mib": mib(idle_rss),
            "azure_resources_when_ready": count_types(resources),
        })
        if traced is not None:
            snapshot, traced_memory = operator.dump_tracemalloc()
            result["tracemalloc"] = {"note": "tracemalloc on: this run's timings are not comparable",
                                     "traced_peak_mib": mib(traced_memory["peak"]), **analyze(snapshot, self.count)}
        self.result["converge"] = result
        say(f"  all Ready: {seconds and round(seconds, 1)} s (floor {fl['floor_s']:.1f} s), "
            f"429s {result['arm']['http_429']}, ARM calls {result['arm']['arm_calls']}")
        if not done:
            raise RuntimeError("the fleet did not converge")

    def steady(self) -> None:
        args = self.args
        if args.settle:
            self.begin("settle")
            time.sleep(args.settle)
        started, cpu = self.begin("steady")
        time.sleep(args.steady)
        result = self.finish("steady", started, cpu, self.count, per_hour=True)
        unit = self.fleet.unit
        result[f"{unit}s_ready_at_end"] = self.watch.count(self.names, lambda s: s.ready)
        self.result["steady"] = result
        say(f"  steady: {result['arm'][f'per_{unit}_per_hour']['reads']} reads and "
            f"{result['arm'][f'per_{unit}_per_hour']['writes']} writes per {self.fleet.noun} per hour")

    def drift(self) -> None:
        args = self.args
        samples = min(args.drift_samples, args.vms)
        if samples <= 0:
            return
        started, cpu = self.begin("drift")
        from azure.mgmt.compute.models import HardwareProfile, VirtualMachineUpdate

        compute = compute_client(self.emulator, "drift-actor")
        spacing = args.resync_interval / samples
        victims = [self.names[(i * args.vms) // samples] for i in range(samples)]
        changed: dict[str, float] = {}
        for i, name in enumerate(victims):
            if i:
                time.sleep(spacing)
            self.watch.watch_drift(name)
            compute.virtual_machines.begin_update(RESOURCE_GROUP, name, VirtualMachineUpdate(
                hardware_profile=HardwareProfile(vm_size=DRIFT_SIZE))).result()
            changed[name] = time.time()
            say(f"  {name} resized to {DRIFT_SIZE} behind the operator's back")
        limit = args.resync_interval * 3 + 60

        def detected() -> bool:
            return all(self.watch.state(n).drifted_at is not None for n in victims)

        try:
            wait_until(detected, limit, "drift shown in status", 0.2)
        except TimeoutError as exc:
            say(f"  {exc}")
        time.sleep(min(5.0, args.resync_interval / 2))  # the corrections' operations
        sizes = {n: compute.virtual_machines.get(RESOURCE_GROUP, n).hardware_profile.vm_size for n in victims}
        result = self.finish("drift", started, cpu, args.vms)
        patches = collections.defaultdict(list)
        for e in self.phase_entries["drift"]:
            match = re.search(r"/virtualmachines/([^/]+)$", e["path"].lower())
            if match and e["method"] == "PATCH":
                patches[match.group(1)].append(parse_time(e["time"]))
        rows = []
        for name in victims:
            at = changed[name]
            seen = self.watch.state(name).drifted_at
            corrections = [t for t in patches.get(name, []) if t > at]
            rows.append({"vm": name, "status_shows_drift_s": round(seen - at, 1) if seen else None,
                         "correcting_patch_s": round(min(corrections) - at, 1) if corrections else None,
                         "size_after": sizes[name]})
        latencies = [r["status_shows_drift_s"] for r in rows if r["status_shows_drift_s"] is not None]
        result.update({"samples": rows, "max_s": max(latencies) if latencies else None,
                       "median_s": sorted(latencies)[len(latencies) // 2] if latencies else None,
                       "note": "the request counts include the benchmark's own PATCHes and their polls"})
        self.result["drift"] = result
        say(f"  drift latencies (s): {latencies}")

    def baseline(self) -> None:
        args = self.args
        if args.baseline <= 0:
            return
        self.stop_operator()
        time.sleep(1.0)
        resources = [r["id"] for r in self.emulator.resources()
                     if r.get("type", "").lower() in ("microsoft.compute/virtualmachines",
                                                      "microsoft.network/networkinterfaces",
                                                      "microsoft.network/virtualnetworks")
                     and f"/resourcegroups/{RESOURCE_GROUP}/" in r["id"].lower()]
        resources.append(f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}")
        started, cpu = self.begin("baseline")
        client = self.client.call(baseline_loop(self.emulator, resources, args.resync_interval, args.baseline),
                                  timeout=args.baseline + 300)
        result = self.finish("baseline", started, cpu, args.vms, per_hour=True)
        result.update({"azure_resources_kept": len(resources), "client": client})
        self.result["baseline"] = result
        say(f"  baseline: {result['arm']['per_vm_per_hour']['arm_calls']} ARM calls per VM per hour "
            f"({len(resources)} Azure resources)")

    def restart(self) -> None:
        args = self.args
        started, cpu = self.begin("restart")
        operator = self.start_operator()
        try:
            wait_until(lambda: operator.reconciles(kind=self.fleet.kind) >= self.count, args.timeout,
                       f"every {self.fleet.noun} reconciled after a restart")
            seconds: float | None = time.time() - started
        except TimeoutError as exc:
            say(f"  {exc}")
            seconds = None
        result = self.finish("restart", started, cpu, self.count)
        result["seconds_to_all_reconciled"] = round(seconds, 1) if seconds else None
        self.result["restart"] = result
        say(f"  restart: {result['arm']['arm_calls']} ARM calls, {result['arm']['http_429']} 429s")

    def delete(self) -> None:
        if self.operator is None:
            self.start_operator()
        started, cpu = self.begin("delete")
        self.harness.delete(self.names, plural=self.fleet.plural)
        done, times = self.wait_for_fleet(started, f"every {self.fleet.kind} deleted", "gone",
                                          lambda s: s.deleted_at is not None, lambda s: s.deleted_at)
        result = self.finish("delete", started, cpu, self.count)
        left = [r for r in self.emulator.resources() if f"/resourcegroups/{RESOURCE_GROUP}/" in r["id"].lower()]
        kinds = count_types(left)
        result.update({
            "all_deleted": done, "seconds_to_all_deleted": round(times[-1], 1) if done and times else None,
            "deleted_timeline": [(round(t, 2), i + 1) for i, t in enumerate(times)],
            "left_in_azure": kinds,
            self.fleet.left_key: sum(v for k, v in kinds.items() if k.lower() in self.fleet.left_types),
        })
        self.result["delete"] = result
        say(f"  deleted in {result['seconds_to_all_deleted']} s, 429s {result['arm']['http_429']}, left {kinds}")

    def memory(self) -> None:
        args = self.args
        counts = sorted(int(c) for c in args.memory.split(",") if c.strip() and int(c) > 0) if args.memory else []
        if not counts:
            return
        operator = self.start_operator()
        time.sleep(3.0)
        started, cpu = self.begin("memory")
        points = [{"custom_resources": 0, "rss_mib": mib(operator.rss()),
                   "resident_mib_by_mapping": memory_map(operator.proc.pid)}]
        names: list[str] = []
        for target in counts:
            new = [f"mem-{i:05d}" for i in range(len(names), target)]
            t0 = time.monotonic()
            self.harness.create([manifest(n, args.namespace, pause=True) for n in new])
            names += new
            paused = lambda: self.watch.count(names, lambda s: s.printable == "Paused")  # noqa: E731
            wait_until(lambda: paused() >= len(names), args.timeout, f"{len(names)} Paused VirtualMachines", 1.0,
                       lambda: f"{paused()}/{len(names)} Paused")
            handled = time.monotonic() - t0
            rss = []
            for _ in range(max(1, int(args.memory_settle))):
                time.sleep(1.0)
                rss.append(operator.rss())
            points.append({"custom_resources": len(names), "rss_mib": mib(rss[-1]),
                           "max_rss_mib_while_settling": mib(max(rss)),
                           "seconds_until_all_paused": round(handled, 1),
                           "resident_mib_by_mapping": memory_map(operator.proc.pid)})
            say(f"  {len(names)} CRs: operator RSS {points[-1]['rss_mib']} MiB "
                f"{points[-1]['resident_mib_by_mapping']}")
        result = self.finish("memory", started, cpu, len(names))
        result["points"] = points
        if len(points) >= 3:
            a, b = points[-2], points[-1]
            result["kib_per_custom_resource"] = round(
                (b["rss_mib"] - a["rss_mib"]) * 1024 / (b["custom_resources"] - a["custom_resources"]), 1)
        result["kib_per_custom_resource_over_idle"] = round(
            (points[-1]["rss_mib"] - points[0]["rss_mib"]) * 1024 / points[-1]["custom_resources"], 1)
        self.result["memory"] = result
        if args.tracemalloc:
            result["tracemalloc"] = self.traced(counts[-1])
        if self.harness.external:  # the embedded API goes away with this process; a real cluster keeps them
            if self.operator is None:
                self.start_operator()
            self.harness.delete(names)
            gone = lambda: self.watch.count(names, lambda s: s.deleted_at is not None)  # noqa: E731
            wait_until(lambda: gone() >= len(names), args.timeout, "the Paused VirtualMachines deleted", 1.0,
                       lambda: f"{gone()}/{len(names)} gone")

    def traced(self, count: int) -> dict[str, Any]:
        """One more operator process, watching a namespace of its own, with tracemalloc started (SIGUSR2, through a
        sitecustomize on PYTHONPATH: no change to the operator) once it is up and idle, before ``count`` Paused
        VirtualMachines are created there: what is still allocated at the end is what they cost."""
        args = self.args
        namespace = f"{args.namespace}-traced"
        self.harness.ensure_namespace(namespace)
        path = self.workdir / "operator.tracemalloc"
        operator = self.start_operator(tracemalloc_path=path, namespace=namespace)
        time.sleep(3.0)
        operator.start_tracemalloc()
        time.sleep(1.0)
        idle_rss = operator.rss()
        names = [f"traced-{i:05d}" for i in range(count)]
        self.harness.create([manifest(n, namespace, pause=True) for n in names], namespace=namespace)
        wait_until(lambda: operator.reconciles() >= count, args.timeout, "the traced operator's Paused VMs", 2.0,
                   lambda: f"{operator.reconciles():.0f}/{count}")
        time.sleep(args.memory_settle)
        rss = operator.rss()
        snapshot, traced_memory = operator.dump_tracemalloc()
        result = {"custom_resources": count, "rss_mib_before": mib(idle_rss), "rss_mib_after": mib(rss),
                  "traced_peak_mib": mib(traced_memory["peak"]), **analyze(snapshot, count)}
        total = result["traced_bytes"]
        say(f"  tracemalloc: {mib(total)} MiB traced for {count} CRs; top: "
            f"{[(p['package'], p['mib']) for p in result['by_first_caller_outside_stdlib']['packages'][:5]]}")
        self.stop_operator()
        return result

    # -- output -------------------------------------------------------------------------------------------------

    def targets(self) -> dict[str, Any]:
        r = self.result
        t: dict[str, Any] = {}
        if "converge" in r and r["converge"].get("time_over_floor") is not None:
            ratio = r["converge"]["time_over_floor"]
            t["converge <= 1.2 x floor"] = {"measured": ratio, "met": ratio <= 1.2}
            t["0 HTTP 429 received (converge)"] = {"measured": r["converge"]["arm"]["http_429"],
                                                   "met": r["converge"]["arm"]["http_429"] == 0}
        if "steady" in r:
            writes = r["steady"]["arm"]["writes"] + r["steady"]["arm"]["deletes"]
            t["0 writes in steady state"] = {"measured": writes, "met": writes == 0}
        if "steady" in r and "baseline" in r:
            ours = r["steady"]["arm"][f"per_{self.fleet.unit}_per_hour"]["arm_calls"]
            theirs = r["baseline"]["arm"][f"per_{self.fleet.unit}_per_hour"]["arm_calls"]
            ratio = round(theirs / ours, 1) if ours else None
            t[">= 50x fewer ARM calls than the baseline"] = {"measured": ratio, "met": bool(ratio and ratio >= 50)}
        if r.get("drift", {}).get("max_s") is not None:
            t["drift shown <= 60 s"] = {"measured": r["drift"]["max_s"], "met": r["drift"]["max_s"] <= 60}
        if "memory" in r:
            at = {p["custom_resources"]: p["rss_mib"] for p in r["memory"]["points"]}
            if 5000 in at:
                t["RSS <= 300 MiB at 5,000 CRs"] = {"measured": at[5000], "met": at[5000] <= 300}
        if "delete" in r:
            left = r["delete"][self.fleet.left_key]
            t["nothing left after delete"] = {"measured": left, "met": left == 0}
        return t

    def write(self) -> None:
        self.result["config"]["finished"] = datetime.now().isoformat(timespec="seconds")
        self.result["config"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        self.result["targets"] = self.targets()
        start = self.timeline[0][1] if self.timeline else time.time()
        self.result["phases"] = [(p, round(t - start, 1)) for p, t in self.timeline]
        everything = [e for entries in self.phase_entries.values() for e in entries]
        self.result["series"] = series(everything, self.timeline)
        self.result["operator_rss_mib"] = [(round(x["t"] - start, 1), mib(x["operator_rss"]))
                                           for x in self.sampler.samples[::5] if x.get("operator_rss")]
        if self.args.dump_requests:
            import gzip

            dump = self.out / f"{self.label}-requests.jsonl.gz"
            with gzip.open(dump, "wt") as f:
                for phase, entries in self.phase_entries.items():
                    for e in entries:
                        f.write(json.dumps({"phase": phase, **e}) + "\n")
            say(f"wrote {dump}")
        json_path = self.out / f"{self.label}.json"
        json_path.write_text(json.dumps(self.result, indent=1, default=str) + "\n")
        say(f"wrote {json_path}")
        for path in plot(self.result, self.out, self.label):
            say(f"wrote {path}")

    def close(self) -> None:
        self.stop_operator(graceful=False)  # the run is over: nothing is left for it to finish
        self.watch.stop()
        self.sampler.stop()
        self.harness.close()
        self.emulator.stop()
        self.client.close()
        if self.args.keep_workdir:
            say(f"kept {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def package_of(filename: str) -> str:
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    for marker in ("azure_vm_operator", "asyncio", "json", "ssl", "http", "logging", "concurrent"):
        if marker in parts:
            return marker
    return "stdlib/other" if "python3" in filename else short_path(filename)


def short_path(filename: str) -> str:
    for marker in ("site-packages/", "/operator/", "/lib/python3."):
        if marker in filename:
            return filename.split(marker, 1)[1] if marker != "/lib/python3." else "stdlib/" + filename.split(
                marker, 1)[1].split("/", 1)[-1]
    return filename


def analyze(snapshot: tracemalloc.Snapshot, count: int) -> dict[str, Any]:
    """Where the traced memory is: by the file that allocated it, and by the first caller outside the standard
    library (who asked for it: a json.loads for Kopf is Kopf's)."""
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    by_file = snapshot.statistics("filename")
    total = sum(s.size for s in by_file) or 1
    owners: collections.Counter[tuple[str, str]] = collections.Counter()
    for trace in snapshot.traces:
        owners[owner_of(trace.traceback)] += trace.size
    by_owner_package: collections.Counter[str] = collections.Counter()
    for (package, _), size in owners.items():
        by_owner_package[package] += size
    packages: collections.Counter[str] = collections.Counter()
    for stat in by_file:
        packages[package_of(stat.traceback[0].filename)] += stat.size
    return {
        "frames_per_trace": TRACE_FRAMES, "traced_mib": mib(total), "traced_bytes": total,
        "traced_bytes_per_custom_resource": round(total / count) if count else None,
        "by_allocating_file": [{"file": short_path(s.traceback[0].filename), "mib": mib(s.size),
                                "share": round(s.size / total, 3), "blocks": s.count} for s in by_file[:20]],
        "by_allocating_package": [{"package": p, "mib": mib(v), "share": round(v / total, 3)}
                                  for p, v in packages.most_common(12)],
        "by_first_caller_outside_stdlib": {
            "packages": [{"package": p, "mib": mib(v), "share": round(v / total, 3)}
                         for p, v in by_owner_package.most_common(12)],
            "files": [{"file": f, "mib": mib(v), "share": round(v / total, 3)}
                      for (_, f), v in owners.most_common(20)]},
        "top_lines": [{"line": f"{short_path(s.traceback[0].filename)}:{s.traceback[0].lineno}",
                       "mib": mib(s.size), "blocks": s.count} for s in snapshot.statistics("lineno")[:15]],
    }


# ---- plots ------------------------------------------------------------------------------------------------------

def plot(result: dict[str, Any], out: Path, label: str) -> list[Path]:
    """The run's PNGs, from its JSON alone: convergence, ARM calls per minute (ours vs. the baseline, and the whole
    run by phase), steady-state calls per VM per hour; and RSS by number of custom resources."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    cfg = result["config"]
    data = result.get("series") or {}
    phases = result.get("phases") or []
    has_fleet = bool(result.get("converge"))
    fleet = FLEETS[result.get("kind", VM_KIND)]
    kinds = f"{fleet.kind}s"
    if has_fleet:
        fig, axes = plt.subplots(4, 1, figsize=(10, 15))
        what = f"{cfg['vms']} {kinds}" if fleet is VM_FLEET else \
            f"{cfg['scale_sets']} {kinds} of {cfg['instances']} instances"
        fig.suptitle(f"{what}, latency x{cfg['latency_scale']:g}, Azure's limits "
                     f"x{cfg['throttle_scale']:g}, resync {cfg['resync_interval']:g} s, client throttle "
                     f"{'on' if cfg['client_throttle'] else 'off'}, observe interval {cfg['observe_interval']}",
                     fontsize=10)

        ax = axes[0]
        converge = result["converge"]
        ready = converge.get("ready_timeline") or []
        if ready:
            ax.step([0] + [t for t, _ in ready], [0] + [n for _, n in ready], where="post",
                    label=f"{kinds} Ready (all at {converge.get('seconds_to_all_ready')} s)")
        fl = (converge.get("floor") or {}).get("floor_s")
        if fl:
            ax.axvline(fl, color="green", linestyle="--", label=f"floor {fl:.1f} s")
            ax.axvline(1.2 * fl, color="orange", linestyle=":", label=f"1.2 x floor {1.2 * fl:.1f} s")
        ax.set_xlabel(f"seconds since the {kinds} were created")
        ax.set_ylabel("Ready")
        ax.set_title(f"Convergence: {kinds} Ready over time", fontsize=10)
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)

        ax = axes[1]
        for window, color, name in (("steady", "tab:blue", "operator (steady state)"),
                                    ("baseline", "tab:red", "baseline: ASO-style GET + PUT per resource per resync")):
            counts = data.get(f"{window}_per_minute")
            if counts:
                mean = sum(counts) / len(counts)
                ax.step(range(len(counts) + 1), counts + counts[-1:], where="post", color=color,
                        label=f"{name}: {mean:.0f}/min")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("minutes since the window started")
        ax.set_ylabel("ARM calls per minute")
        ax.set_title("Steady state: ARM calls per minute, the operator vs. the baseline (same fleet, same emulator)",
                     fontsize=10)
        ax.legend(loc="center right", fontsize=8)
        ax.grid(alpha=0.3)

        ax = axes[2]
        width = data.get("bin_seconds", 10)
        colors = {"operator": "tab:blue", "baseline": "tab:red", "HTTP 429": "black"}
        for who, bins in (data.get("whole_run") or {}).items():
            if bins:
                ax.bar([(slot + 0.5) * width / 60 for slot, _ in bins], [n * 60 / width for _, n in bins],
                       width=width / 60 * (0.5 if who == "HTTP 429" else 0.9), color=colors.get(who), label=who,
                       alpha=0.8)
        for phase, at in phases:
            if not phase.endswith(" end"):
                ax.axvline(at / 60, color="grey", alpha=0.4)
                ax.text(at / 60, 0.98, f" {phase}", rotation=90, va="top", fontsize=7, color="dimgrey",
                        transform=ax.get_xaxis_transform())
        ax.set_yscale("symlog", linthresh=10)
        ax.set_xlabel("minutes since the run started")
        ax.set_ylabel(f"ARM calls per minute ({width} s bins)")
        ax.set_title("The whole run: ARM calls per minute by phase", fontsize=10)
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)

        ax = axes[3]
        steady, base = result.get("steady"), result.get("baseline")
        per_hour = f"per_{fleet.unit}_per_hour"
        if steady:
            keys = ["reads", "writes", "arm_calls"]
            ours = [steady["arm"][per_hour].get(k, 0) for k in keys]
            x = range(len(keys))
            ax.bar([i - 0.2 for i in x], ours, width=0.4, label="operator", color="tab:blue")
            for i, a in enumerate(ours):
                ax.text(i - 0.2, a, f"{a:.0f}", ha="center", va="bottom", fontsize=8)
            if base:
                theirs = [base["arm"][per_hour].get(k, 0) for k in keys]
                ax.bar([i + 0.2 for i in x], theirs, width=0.4, label="baseline", color="tab:red")
                for i, (a, b) in enumerate(zip(ours, theirs)):
                    ax.text(i + 0.2, b, f"{b:.0f}" + (f" ({b / a:.1f}x)" if a else ""), ha="center", va="bottom",
                            fontsize=8)
            ax.set_xticks(list(x), ["reads", "writes", "all ARM calls"])
            ax.set_yscale("symlog", linthresh=1)
            ax.set_ylabel(f"per {fleet.noun} per hour")
            ax.set_title(f"Steady state: ARM calls per {fleet.noun} per hour", fontsize=10)
            ax.legend(loc="upper left", fontsize=8)
            ax.grid(alpha=0.3, axis="y")
        else:
            ax.axis("off")
        fig.tight_layout(rect=(0, 0, 1, 0.98))
        path = out / f"{label}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)

    memory = result.get("memory")
    if memory:
        fig, ax = plt.subplots(figsize=(7, 4))
        xs = [p["custom_resources"] for p in memory["points"]]
        ax.plot(xs, [p["rss_mib"] for p in memory["points"]], marker="o", label="operator RSS")
        for p in memory["points"]:
            ax.annotate(f"{p['rss_mib']:.0f}", (p["custom_resources"], p["rss_mib"]), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=8)
        ax.axhline(300, color="orange", linestyle=":", label="target: 300 MiB at 5,000")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("VirtualMachines (reconcilePolicy: Pause)")
        ax.set_ylabel("MiB")
        ax.set_title("Operator RSS by number of custom resources", fontsize=10)
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out / f"{label}-memory.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


#: The phases a ScaleSet fleet leaves out, and why (steady state and restart are measured as for VMs).
SCALESET_SKIPPED = {
    "drift": "resizes VirtualMachines behind the operator's back",
    "baseline": "the ASO-style loop keeps VMs, NICs and the VNet",
    "memory": "Paused VirtualMachines",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=100, help="VirtualMachines in the fleet (ignored with --scale-sets)")
    parser.add_argument("--scale-sets", type=int, default=0, metavar="M",
                        help="a fleet of M ScaleSets instead of VirtualMachines (--vms is then ignored); the "
                             "drift, baseline and memory phases are skipped")
    parser.add_argument("--instances", type=int, default=3, metavar="K",
                        help="spec.replicas of each ScaleSet (with --scale-sets)")
    parser.add_argument("--latency-scale", type=float, default=0.05, help="emulated LRO latencies (1 = Azure's)")
    parser.add_argument("--throttle-scale", type=float, default=1.0, help="the emulator's limits (1 = Azure's)")
    parser.add_argument("--resync-interval", type=float, default=60.0, help="the operator's --resync-interval")
    parser.add_argument("--observe-interval", type=float, default=None,
                        help="AZVM_OBSERVE_INTERVAL for the operator (default: its own, 30 s; 0 = no shared LIST)")
    parser.add_argument("--no-client-throttle", action="store_true", help="AZVM_ARM_THROTTLE=false")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds between all Ready and the steady window")
    parser.add_argument("--steady", type=float, default=180.0, help="seconds of steady state measured (0: skip)")
    parser.add_argument("--drift-samples", type=int, default=3, help="VMs resized behind the operator's back")
    parser.add_argument("--baseline", type=float, default=None,
                        help="seconds of the ASO-style baseline (default: as --steady; 0: skip)")
    parser.add_argument("--no-restart", action="store_true", help="skip the restart phase")
    parser.add_argument("--memory", default="", help="comma-separated CR counts for the memory phase, e.g. 1000,5000")
    parser.add_argument("--memory-settle", type=float, default=20.0, help="seconds of RSS sampling per point")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="after the memory phase, an operator with tracemalloc over the largest count")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds each wait may take")
    parser.add_argument("--crds", default="crds", help="folder of the CRDs (default: ./crds)")
    parser.add_argument("--out", default="bench/results", help="folder of the JSON and PNG files")
    parser.add_argument("--label", default=None, help="file name of the results (default: fleet-<vms>)")
    parser.add_argument("--operator-env", action="append", default=[], metavar="NAME=VALUE",
                        help="more environment for the operator process (repeatable), e.g. MALLOC_ARENA_MAX=2")
    parser.add_argument("--trace-converge", action="store_true",
                        help="tracemalloc in the operator during convergence (a diagnostic: skews the timings)")
    parser.add_argument("--dump-requests", action="store_true",
                        help="also write the emulator's request log, by phase (<label>-requests.jsonl.gz)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the logs (operator, emulator)")
    parser.add_argument("--replot", metavar="JSON", help="only draw the PNGs again from a run's JSON (into --out)")
    args = parser.parse_args()
    if args.replot:
        path = Path(args.replot)
        for written in plot(json.loads(path.read_text()), Path(args.out), path.stem):
            say(f"wrote {written}")
        return 0
    if args.baseline is None:
        args.baseline = args.steady
    if args.scale_sets < 0 or args.instances < 0:
        parser.error("--scale-sets and --instances cannot be negative")

    run = Run(args)
    failed = False
    try:
        vms = run.fleet is VM_FLEET
        if not vms:
            run.result["skipped_phases"] = SCALESET_SKIPPED
            say(f"ScaleSet fleet: {args.scale_sets} x {args.instances} instances (--vms ignored); skipped: "
                + "; ".join(f"{phase} ({why})" for phase, why in SCALESET_SKIPPED.items()))
        if run.count > 0:
            run.converge()
            if args.steady > 0:
                run.steady()
            if vms:
                run.drift()
                run.baseline()
            if not args.no_restart:
                run.restart()
            run.delete()
        if vms:
            run.memory()
    except Exception as exc:  # noqa: BLE001 - write what was measured, then fail
        failed = True
        say(f"FAILED: {type(exc).__name__}: {exc}")
        run.args.keep_workdir = True
    finally:
        try:
            run.write()
        finally:
            run.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
