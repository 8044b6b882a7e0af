#!/usr/bin/env python
"""Crash consistency (issue #12): kill -9 the operator at random moments of every kind of change, restart it, and
check what Azure (the emulator) holds at the end.

Three processes and a thread, as in production: ``azure-arm-emulator`` (durable ``--state-dir``, realistic LRO
latencies times ``--latency-scale``, throttling on), ``azure-vm-operator run`` (configured by flags and environment,
restarted after each ``SIGKILL``), and the test Kubernetes API on a thread of this process.

One *round* is a small fleet taken through five phases: create (2 VirtualMachines, one with a public IP and an
NSG; a load-balanced ScaleSet with ``upgradePolicy: Manual``; a second ScaleSet; an AvailabilitySet with two member
VMs), update (a VM size, tags), scale and power (ScaleSet capacities, a VM deallocated, one stopped), rollout (a
ScaleSet model change the operator rolls out in batches) and delete (a VM, a ScaleSet, the availability set and its
members). Each phase applies its changes and then kills the operator ``--kills-per-phase`` times: half of the kills
at a random delay after the change, half as soon as an Azure operation of the phase is in flight (plus a random
jitter), so that the kill lands between Azure accepting a write and the operator recording it. Between phases the
fleet must converge (every remaining resource Ready for its generation, deleted ones gone): a condition with a
deadline, never a fixed sleep. A round ends with one VM (Stopped, new tags) and one ScaleSet (3 instances, all on
the new model) kept.

The checks at the end (all must be 0; see docs/reliability.md for the exact definitions):
  duplicates       more than one Azure resource of a type per owner (``azvm-owner`` tag), or a resource of an
                   operator-managed type without the tag
  orphans          an Azure resource tagged for this cluster whose custom resource no longer exists (every custom
                   resource here has deletionPolicy Delete), or an unattached disk
  stuck            a custom resource still present (with its finalizer) after its deletion
  second PUTs      a PUT/PATCH of a resource with the same body shape as an earlier write of it that Azure accepted
                   (it started an operation), sent while that operation was still running
  not converged    a remaining resource not Ready for its final spec (or Azure not matching that spec)

  python bench/chaos.py --kills 50                  # prints the seed, progress and the tally
  python bench/chaos.py --kills 10 --seed 1234      # reproduce a run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GROUP, VERSION = "compute.azvm.io", "v1alpha1"
PLURALS = {"VirtualMachine": "virtualmachines", "ScaleSet": "scalesets", "AvailabilitySet": "availabilitysets"}
SUBSCRIPTION = "00000000-0000-0000-0000-00000000c4a0"
CLUSTER_ID = "chaos"
NAMESPACE = "default"
RESOURCE_GROUP = "chaos-rg"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVxUo3ZP3wv0vY3W4nKJt2f5Q0mPp0m2v7O1l8h4aDm chaos@example"
IMAGE = {"marketplace": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2"}}
#: Azure types the operator creates per custom resource: at most one of each per owner.
OWNED_TYPES = ("microsoft.compute/virtualmachines", "microsoft.network/networkinterfaces",
               "microsoft.network/publicipaddresses", "microsoft.compute/virtualmachinescalesets",
               "microsoft.network/loadbalancers", "microsoft.network/networksecuritygroups",
               "microsoft.compute/availabilitysets")
IN_FLIGHT = ("Creating", "Updating", "Deleting")
PHASES = ("create", "update", "scale+power", "rollout", "delete")


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f} s (last: {last!r})")
        time.sleep(interval)


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class LoopThread:
    """An asyncio loop in a daemon thread (the embedded Kubernetes API, the emulator's admin client)."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Any, timeout: float | None = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


# ---- the processes -----------------------------------------------------------------------------------------------

class Emulator:
    """``azure-arm-emulator`` as a process on a fixed port with a durable state dir: it can be killed and restarted
    in place (clients and the operation URLs the operator keeps stay valid)."""

    def __init__(self, workdir: Path, latency_scale: float, throttle_scale: float, loop: LoopThread) -> None:
        self.workdir, self.loop = workdir, loop
        self.state_dir = workdir / "azure-state"
        self.port = free_port()
        self.latency_scale, self.throttle_scale = latency_scale, throttle_scale
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca = str(self.state_dir / "ca.pem")
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.starts += 1
        log_path = self.workdir / f"emulator-{self.starts}.log"
        with log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "azure-arm-emulator"), "--port", str(self.port), "--state-dir", str(self.state_dir),
                 "--latency-scale", str(self.latency_scale), "--throttle-scale", str(self.throttle_scale),
                 "--throttling"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the emulator exited:\n{log_path.read_text()}")
            return "listening on" in log_path.read_text()

        wait_until(up, 60, "the emulator listening")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def admin(self, call: Callable[[Any], Any], timeout: float = 120) -> Any:
        from azure_arm_emulator.admin import AdminClient

        async def run() -> Any:
            async with AdminClient(self.url, self.ca) as admin:
                return await call(admin)

        return self.loop.call(run(), timeout=timeout)

    def resources(self) -> list[dict[str, Any]]:
        return list(self.admin(lambda a: a.resources()))

    def requests(self) -> list[dict[str, Any]]:
        return list(self.admin(lambda a: a.requests()))

    def records(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(resources with their full ARM bodies, operations) from the durable state, read-only. Call
        :meth:`resources` first: the admin API flushes what the emulator holds before it answers."""
        conn = sqlite3.connect(f"file:{self.state_dir / 'state.sqlite3'}?mode=ro", uri=True)
        try:
            rows = list(conn.execute("SELECT kind, doc FROM records WHERE kind IN ('resource', 'operation')"))
        finally:
            conn.close()
        resources = [json.loads(doc) for kind, doc in rows if kind == "resource"]
        operations = [json.loads(doc) for kind, doc in rows if kind == "operation"]
        return resources, operations


class Operator:
    """``azure-vm-operator run`` as a process, configured by flags and environment as a user would."""

    def __init__(self, workdir: Path, kubeconfig: str, emulator: Emulator, resync_interval: float) -> None:
        self.workdir, self.kubeconfig, self.emulator = workdir, kubeconfig, emulator
        self.resync_interval = resync_interval
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0

    def start(self, timeout: float = 90) -> float:
        """Start and wait until its /metrics answers; returns how long that took."""
        self.starts += 1
        self.metrics_port = free_port()
        env = {**os.environ, "AZURE_TENANT_ID": "chaos-tenant", "AZURE_CLIENT_ID": "chaos-operator",
               "AZURE_CLIENT_SECRET": "chaos-secret", "AZURE_AUTHORITY_HOST": self.emulator.url,
               "AZURE_DISABLE_INSTANCE_DISCOVERY": "true", "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
               "AZVM_OBSERVE_INTERVAL": "1", "AZVM_BACKOFF_BASE": "0.2", "AZVM_BACKOFF_MAX": "2",
               "AZVM_LRO_POLLING_INTERVAL": "0.2", "PYTHONUNBUFFERED": "1"}
        env.pop("KUBECONFIG", None)
        started = time.monotonic()
        with (self.workdir / "operator.log").open("a") as log:
            log.write(f"\n===== operator start {self.starts} =====\n")
            log.flush()
            self.proc = subprocess.Popen(
                [str(BIN / "azure-vm-operator"), "run", "--kubeconfig", self.kubeconfig, "--azure-endpoint",
                 self.emulator.url, "--azure-ca", self.emulator.ca, "--metrics-port", str(self.metrics_port),
                 "--resync-interval", f"{self.resync_interval:g}", "--cluster-id", CLUSTER_ID],
                stdout=log, stderr=subprocess.STDOUT, env=env)

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.proc.returncode}; see {self.workdir}/operator.log")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2):
                    return True
            except OSError:
                return False

        wait_until(up, timeout, "the operator's /metrics endpoint", interval=0.1)
        return time.monotonic() - started

    def kill9(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Kube:
    """The test Kubernetes API on a thread of this process; kubectl-like calls through the kubernetes client."""

    def __init__(self, workdir: Path, loop: LoopThread) -> None:
        import kubernetes.client
        import kubernetes.config
        from azvm_sandbox.crds import load_crds
        from kubeapi import KubeAPIServer

        self.loop = loop
        self.server = KubeAPIServer(token="chaos-token")
        loop.call(self.server.start(host="127.0.0.1", port=0))
        for crd in load_crds(ROOT / "crds"):
            self.server.register_crd(crd)
        self.kubeconfig = self.server.write_kubeconfig(str(workdir / "kubeconfig"))
        self.api = kubernetes.config.new_client_from_config(self.kubeconfig)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.ApiException = kubernetes.client.ApiException

    def create(self, manifest: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURALS[manifest["kind"]], manifest)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURALS[kind], name))
        except self.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: str) -> list[dict[str, Any]]:
        return list(self.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURALS[kind])["items"])

    def patch_spec(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURALS[kind], name, {"spec": spec})

    def delete(self, kind: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURALS[kind], name)
        except self.ApiException as exc:
            if exc.status != 404:
                raise

    def close(self) -> None:
        self.api.close()
        self.loop.call(self.server.stop())


# ---- the fleet ---------------------------------------------------------------------------------------------------

def vm(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualMachine", "metadata": {"name": name},
            "spec": {"location": "westeurope", "resourceGroup": RESOURCE_GROUP, "size": "Standard_B2s",
                     "image": IMAGE, "adminUsername": "azureuser", "sshPublicKeys": [SSH_KEY],
                     "tags": {"team": "chaos"}, **spec}}


def scaleset(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ScaleSet", "metadata": {"name": name},
            "spec": {"location": "westeurope", "resourceGroup": RESOURCE_GROUP, "size": "Standard_B2s",
                     "image": IMAGE, "adminUsername": "azureuser", "sshPublicKeys": [SSH_KEY],
                     "tags": {"team": "chaos"}, "upgradePolicy": {"mode": "Manual"},
                     "rollout": {"maxUnavailable": 1, "pauseBetweenBatches": "0s"}, **spec}}


def availability_set(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AvailabilitySet", "metadata": {"name": name},
            "spec": {"location": "westeurope", "resourceGroup": RESOURCE_GROUP, "platformFaultDomainCount": 2,
                     "platformUpdateDomainCount": 5, "sku": "Aligned"}}


@dataclass
class Action:
    verb: str  #: create | patch | delete
    kind: str
    name: str
    body: dict[str, Any] = field(default_factory=dict)  #: the manifest (create) or the spec patch


def round_phases(r: int) -> dict[str, list[Action]]:
    """The changes of round ``r``, phase by phase; names carry the round so that rounds never share resources."""
    a, b, ssa, ssb = f"vm-a-{r}", f"vm-b-{r}", f"ss-a-{r}", f"ss-b-{r}"
    avs, m1, m2 = f"avs-{r}", f"avm-1-{r}", f"avm-2-{r}"
    return {
        "create": [
            Action("create", "VirtualMachine", a, vm(a, network={"publicIP": True, "openPorts": [22]})),
            Action("create", "VirtualMachine", b, vm(b)),
            Action("create", "ScaleSet", ssa, scaleset(ssa, replicas=2, loadBalancer={
                "enabled": True, "rules": [{"name": "http", "protocol": "Tcp", "frontendPort": 80,
                                            "backendPort": 8080}]})),
            Action("create", "ScaleSet", ssb, scaleset(ssb, replicas=1)),
            Action("create", "AvailabilitySet", avs, availability_set(avs)),
            Action("create", "VirtualMachine", m1, vm(m1, availabilitySetRef={"name": avs})),
            Action("create", "VirtualMachine", m2, vm(m2, availabilitySetRef={"name": avs})),
        ],
        "update": [
            Action("patch", "VirtualMachine", a, {"size": "Standard_B2ms"}),
            Action("patch", "VirtualMachine", b, {"tags": {"team": "chaos", "phase": "update", "round": str(r)}}),
            Action("patch", "ScaleSet", ssb, {"tags": {"team": "chaos", "phase": "update"}}),
            Action("patch", "VirtualMachine", m1, {"tags": {"team": "chaos", "member": "1"}}),
        ],
        "scale+power": [
            Action("patch", "ScaleSet", ssa, {"replicas": 3}),
            Action("patch", "ScaleSet", ssb, {"replicas": 2}),
            Action("patch", "VirtualMachine", a, {"powerState": "Deallocated"}),
            Action("patch", "VirtualMachine", b, {"powerState": "Stopped"}),
        ],
        "rollout": [
            Action("patch", "ScaleSet", ssa, {"size": "Standard_B2ms"}),
            Action("patch", "VirtualMachine", a, {"powerState": "Running"}),
        ],
        "delete": [
            Action("delete", "VirtualMachine", a),
            Action("delete", "ScaleSet", ssb),
            Action("delete", "VirtualMachine", m1),
            Action("delete", "VirtualMachine", m2),
            Action("delete", "AvailabilitySet", avs),
        ],
    }


# ---- the run -----------------------------------------------------------------------------------------------------

@dataclass
class Options:
    kills: int = 10
    seed: int | None = None
    latency_scale: float = 0.05
    throttle_scale: float = 10.0
    resync_interval: float = 3.0
    kills_per_phase: int = 2
    phase_timeout: float = 180.0
    converge_timeout: float = 300.0
    workdir: Path | None = None
    keep: bool = False


class Run:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1, 2**31)
        self.rng = random.Random(self.seed)
        self.workdir = options.workdir or Path(tempfile.mkdtemp(prefix="azvm-chaos-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.loop = LoopThread("chaos-clients")
        self.emulator = Emulator(self.workdir, options.latency_scale, options.throttle_scale, self.loop)
        self.kube = Kube(self.workdir, self.loop)
        self.operator = Operator(self.workdir, self.kube.kubeconfig, self.emulator, options.resync_interval)
        self.kills: list[dict[str, Any]] = []
        self.present: dict[tuple[str, str], dict[str, Any]] = {}  #: (kind, name) -> spec expected at the end
        self.deleted: set[tuple[str, str]] = set()
        self.last_kill = 0.0
        self.kill_to_converged: list[float] = []  #: per phase with kills: from its last kill to convergence

    # -- killing -------------------------------------------------------------------------------------------------

    def kill_and_restart(self, phase: str, r: int, how: str, delay: float) -> None:
        in_flight = [x["id"].rsplit("/", 1)[-1] for x in self.emulator.resources()
                     if x.get("provisioningState") in IN_FLIGHT]
        at = time.time()
        self.last_kill = time.monotonic()
        self.operator.kill9()
        downtime = self.rng.uniform(0.0, 1.0)
        time.sleep(downtime)  # the operator is down for a while (changes may land meanwhile): not a wait on a result
        startup = self.operator.start()
        self.kills.append({"round": r, "phase": phase, "how": how, "delay": round(delay, 2), "at": at,
                           "azure_in_flight": len(in_flight), "downtime": round(downtime, 2),
                           "startup": round(startup, 2)})
        say(f"  kill {len(self.kills)}: round {r} {phase} ({how}, +{delay:.2f} s, {len(in_flight)} Azure "
            f"operations in flight), restarted in {startup:.1f} s")

    def in_flight_kill(self, phase: str, r: int, names: set[str]) -> None:
        """Kill as soon as an Azure resource of this phase is being created, updated or deleted (or after 8 s)."""
        started = time.monotonic()

        def busy() -> bool:
            return any(x.get("provisioningState") in IN_FLIGHT and any(n in x["id"] for n in names)
                       for x in self.emulator.resources())

        try:
            wait_until(busy, 8, "an Azure operation of the phase in flight", interval=0.05)
            how = "in-flight"
        except TimeoutError:
            how = "in-flight (none seen)"
        jitter = self.rng.uniform(0.0, 0.15)
        time.sleep(jitter)
        self.kill_and_restart(phase, r, how, time.monotonic() - started)

    def random_kill(self, phase: str, r: int) -> None:
        delay = self.rng.uniform(0.0, 3.0)
        time.sleep(delay)  # the kill's random moment
        self.kill_and_restart(phase, r, "random", delay)

    # -- the fleet -----------------------------------------------------------------------------------------------

    def apply(self, action: Action) -> None:
        key = (action.kind, action.name)
        if action.verb == "create":
            self.kube.create(action.body)
            self.present[key] = dict(action.body["spec"])
        elif action.verb == "patch":
            self.kube.patch_spec(action.kind, action.name, action.body)
            self.present[key].update(action.body)
        else:
            self.kube.delete(action.kind, action.name)
            self.present.pop(key, None)
            self.deleted.add(key)

    def unconverged(self) -> list[str]:
        """What is not yet as declared: a present resource not Ready for its generation, a deleted one still
        there."""
        pending = []
        for kind in PLURALS:
            items = {i["metadata"]["name"]: i for i in self.kube.list(kind)}
            for (k, name) in self.present:
                if k != kind:
                    continue
                obj = items.get(name)
                ready = obj and any(
                    c["type"] == "Ready" and c["status"] == "True"
                    and c.get("observedGeneration") == obj["metadata"].get("generation")
                    for c in (obj.get("status") or {}).get("conditions") or [])
                if not ready:
                    reason = next((f"{c['type']}={c['status']} {c.get('reason')}" for c in
                                   ((obj or {}).get("status") or {}).get("conditions") or [] if c["type"] == "Ready"),
                                  "absent" if obj is None else "no Ready")
                    pending.append(f"{kind}/{name} ({reason})")
            for (k, name) in self.deleted:
                if k == kind and name in items:
                    pending.append(f"{kind}/{name} (still there: finalizers "
                                   f"{items[name]['metadata'].get('finalizers')})")
        return pending

    def wait_converged(self, timeout: float, what: str) -> float:
        started = time.monotonic()
        last: list[str] = []

        def done() -> bool:
            nonlocal last
            last = self.unconverged()
            return not last

        try:
            wait_until(done, timeout, what, interval=0.25)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; pending: {last}") from None
        return time.monotonic() - started

    def run_round(self, r: int, kills_left: int) -> int:
        phases = round_phases(r)
        for phase in PHASES:
            actions = phases[phase]
            self.rng.shuffle(actions)
            say(f"round {r}: {phase} ({', '.join(f'{a.verb} {a.name}' for a in actions)})")
            for action in actions:
                self.apply(action)
            names = {a.name for a in actions}
            before = kills_left
            for i in range(min(self.o.kills_per_phase, kills_left)):
                if i % 2 == 0:
                    self.in_flight_kill(phase, r, names)
                else:
                    self.random_kill(phase, r)
                kills_left -= 1
            killed = kills_left < before
            seconds = self.wait_converged(self.o.phase_timeout, f"round {r} {phase} converged")
            if killed:
                self.kill_to_converged.append(time.monotonic() - self.last_kill)
                say(f"round {r}: {phase} converged {self.kill_to_converged[-1]:.1f} s after its last kill")
            else:
                say(f"round {r}: {phase} converged {seconds:.1f} s after its changes")
        return kills_left

    # -- the whole run -------------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        say(f"seed {self.seed} (rerun with --seed {self.seed}); workdir {self.workdir}")
        started = time.monotonic()
        self.operator.start()
        kills_per_round = self.o.kills_per_phase * len(PHASES)
        rounds = max(1, math.ceil(self.o.kills / kills_per_round))
        kills_left = self.o.kills
        for r in range(rounds):
            kills_left = self.run_round(r, kills_left)
        converge = self.wait_converged(self.o.converge_timeout, "everything converged after the last kill")
        since_last_kill = time.monotonic() - self.last_kill
        tally = self.check()
        tally.update(seed=self.seed, rounds=rounds, kills=len(self.kills),
                     kills_in_flight=sum(1 for k in self.kills if k["azure_in_flight"]),
                     kills_by_phase={p: sum(1 for k in self.kills if k["phase"] == p) for p in PHASES},
                     converge_after_last_kill_s=round(self.kill_to_converged[-1], 1) if self.kill_to_converged else None,
                     converge_after_kill_max_s=round(max(self.kill_to_converged, default=0.0), 1),
                     last_kill_to_end_s=round(since_last_kill, 1),
                     final_wait_s=round(converge, 1), total_s=round(time.monotonic() - started, 1),
                     latency_scale=self.o.latency_scale, workdir=str(self.workdir))
        return tally

    def close(self, remove: bool = False) -> None:
        for stop in (self.operator.stop, self.kube.close, self.emulator.stop, self.loop.close):
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - closing anyway
                say(f"closing: {exc!r}")
        if remove:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            say(f"logs and state kept in {self.workdir}")

    # -- the checks ----------------------------------------------------------------------------------------------

    def check(self) -> dict[str, Any]:
        self.emulator.resources()  # flushes the emulator's state
        requests = self.emulator.requests()
        resources, operations = self.emulator.records()
        crs = {(kind, i["metadata"]["name"]): i for kind in PLURALS for i in self.kube.list(kind)}

        duplicates = find_duplicates(resources)
        orphans = find_orphans(resources, {(k, NAMESPACE, n) for (k, n) in crs})
        stuck = [f"{k}/{n}" for (k, n), obj in crs.items() if obj["metadata"].get("deletionTimestamp")]
        stuck += [f"{k}/{n}" for (k, n) in self.deleted if (k, n) in crs and f"{k}/{n}" not in stuck]
        overlaps = find_second_puts(requests, operations)
        mismatches = self.final_state_mismatches(resources, crs)
        return {
            "resources": {kind: sum(1 for (k, _) in crs if k == kind) for kind in PLURALS},
            "custom_resources_created": len(self.present) + len(self.deleted),
            "custom_resources_deleted": len(self.deleted),
            "azure_resources": len(resources),
            "duplicates": duplicates, "orphans": orphans, "stuck_finalizers": stuck,
            "second_puts": overlaps["second_puts"], "other_writes_during_own_operation": overlaps["other_writes"],
            "second_actions": overlaps["second_actions"], "accepted_writes_and_actions": len(overlaps["accepted"]),
            "not_converged": mismatches + [p for p in self.unconverged()],
            "arm_requests": len(requests),
            "arm_requests_lost": (requests[-1]["seq"] - requests[0]["seq"] + 1 - len(requests)) if requests else 0,
        }

    def final_state_mismatches(self, resources: list[dict[str, Any]], crs: dict[tuple[str, str], Any]) -> list[str]:
        """Azure holds the final spec of every remaining resource."""
        by_id = {r["id"].lower(): r for r in resources}
        wrong: list[str] = []
        for (kind, name), spec in self.present.items():
            obj = crs.get((kind, name))
            rid = ((obj or {}).get("status") or {}).get("azureResourceId", "")
            body = by_id.get(rid.lower(), {}).get("body") if rid else None
            if body is None:
                wrong.append(f"{kind}/{name}: no Azure resource ({rid or 'no status.azureResourceId'})")
                continue
            props = body.get("properties") or {}
            tags = body.get("tags") or {}
            for key, value in (spec.get("tags") or {}).items():
                if tags.get(key) != value:
                    wrong.append(f"{kind}/{name}: tag {key}={tags.get(key)!r}, want {value!r}")
            if kind == "VirtualMachine":
                size = (props.get("hardwareProfile") or {}).get("vmSize")
                if size != spec["size"]:
                    wrong.append(f"{kind}/{name}: size {size}, want {spec['size']}")
                power = (obj.get("status") or {}).get("powerState")
                want = spec.get("powerState", "Running")
                if power != want:
                    wrong.append(f"{kind}/{name}: status.powerState {power}, want {want}")
            elif kind == "ScaleSet":
                sku = body.get("sku") or {}
                if sku.get("name") != spec["size"] or sku.get("capacity") != spec["replicas"]:
                    wrong.append(f"{kind}/{name}: sku {sku}, want {spec['size']} x {spec['replicas']}")
                instances = [x for x in resources if x["id"].lower().startswith(rid.lower() + "/virtualmachines/")]
                behind = [x["id"].rsplit("/", 1)[-1] for x in instances
                          if not (x["body"].get("properties") or {}).get("latestModelApplied", True)]
                if len(instances) != spec["replicas"] or behind:
                    wrong.append(f"{kind}/{name}: {len(instances)} instances, not on the latest model: {behind}")
        return wrong


def owner_of(resource: dict[str, Any]) -> str | None:
    return ((resource.get("body") or {}).get("tags") or {}).get("azvm-owner")


def owner_key(owner: str) -> tuple[str, str, str] | None:
    """``chaos/Kind/namespace/name`` (or the older ``chaos/namespace/name``, a VirtualMachine) -> the custom
    resource; None for another cluster's."""
    parts = owner.split("/")
    if parts[0] != CLUSTER_ID:
        return None
    if len(parts) == 4:
        return parts[1], parts[2], parts[3]
    if len(parts) == 3:
        return "VirtualMachine", parts[1], parts[2]
    return None


def find_duplicates(resources: list[dict[str, Any]]) -> list[str]:
    """More than one resource of an operator-managed type per owner; or one without an owner tag (a copy the
    operator made and lost track of: it tags everything it creates in the request that creates it)."""
    seen: dict[tuple[str, str], list[str]] = {}
    found: list[str] = []
    for resource in resources:
        rtype = resource["type"].lower()
        if rtype not in OWNED_TYPES:
            continue
        owner = owner_of(resource)
        if owner is None:
            found.append(f"untagged {resource['id']}")
            continue
        seen.setdefault((rtype, owner), []).append(resource["id"].rsplit("/", 1)[-1])
    for (rtype, owner), names in sorted(seen.items()):
        if len(names) > 1:
            found.append(f"{len(names)} {rtype} of {owner}: {names}")
    return found


def find_orphans(resources: list[dict[str, Any]], existing: set[tuple[str, str, str]]) -> list[str]:
    found: list[str] = []
    for resource in resources:
        owner = owner_of(resource)
        rtype = resource["type"].lower()
        if owner is not None:
            key = owner_key(owner)
            if key is not None and key not in existing:
                found.append(f"{resource['id']} (owner {owner} is gone)")
        elif rtype == "microsoft.compute/disks" and not (resource["body"].get("managedBy")
                                                         or (resource["body"].get("properties") or {}).get("managedBy")):
            found.append(f"{resource['id']} (an unattached disk)")
    return found


def find_second_puts(requests: list[dict[str, Any]],
                     operations: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Second PUTs, as defined in docs/reliability.md.

    An *accepted write* is a PUT or PATCH of an ARM resource that Azure answered 200/201/202 and that started an
    asynchronous operation on that resource (an operation record of the emulator whose resource is the request's
    and which began while the request was being answered). Its operation *runs* from its start to its end (its
    due time if it has not ended). A *second PUT* is a later PUT or PATCH of the same resource id with the same
    body shape (the request log's ``body_paths``: the sorted leaf key paths of the JSON body; values are never
    logged) sent while that operation ran, whatever Azure answered it.

    Also returned, reported but not counted as second PUTs: ``other_writes``, the writes of the resource with
    another body shape sent while such an operation ran; ``second_actions``, a POST action (start, deallocate,
    manualupgrade, ...) sent again to the same URL path while the operation the first one started ran; and
    ``accepted``, the accepted writes and actions found (so that a run shows the check was not vacuous).
    """
    ops_by_resource: dict[str, list[dict[str, Any]]] = {}
    for op in operations:
        ops_by_resource.setdefault(op["resource_id"].lower(), []).append(op)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in requests:
        if not r.get("resource_id") or r["method"] not in ("PUT", "PATCH", "POST"):
            continue
        if r["method"] == "POST":
            groups.setdefault(("action", r["path"].lower()), []).append(r)
        else:
            groups.setdefault(("write", r["resource_id"].lower()), []).append(r)
    found: dict[str, set[str]] = {"second_puts": set(), "other_writes": set(), "second_actions": set(),
                                  "accepted": set()}
    for (what, _), entries in groups.items():
        entries.sort(key=lambda e: e["seq"])
        for first in entries:
            if first.get("status") not in (200, 201, 202):
                continue
            rid = first["resource_id"].lower()
            t0 = parse_time(first["time"])
            t1 = t0 + (first.get("duration_ms") or 0) / 1000 + 0.05
            started = [op for op in ops_by_resource.get(rid, []) if t0 - 0.05 <= op["start"] <= t1]
            if not started:
                continue
            op = min(started, key=lambda o: o["start"])
            found["accepted"].add(f"{first['method']} seq {first['seq']} -> {op['kind']}")
            end = op.get("end") or (op["start"] + op["duration"])
            for later in entries:
                if later["seq"] <= first["seq"] or parse_time(later["time"]) >= end:
                    continue
                text = (f"{later['method']} {later['path'].split('/resourceGroups/')[-1]} seq {later['seq']} "
                        f"(status {later.get('status')}) while {op['kind']} of seq {first['seq']} ran")
                if what == "action":
                    found["second_actions"].add(text)
                elif later["body_paths"] == first["body_paths"]:
                    found["second_puts"].add(text)
                else:
                    found["other_writes"].add(text)
    return {key: sorted(values) for key, values in found.items()}


# ---- output ------------------------------------------------------------------------------------------------------

def table(tally: dict[str, Any]) -> str:
    rows = [
        ("kills (SIGKILL of the operator)", tally["kills"]),
        ("  of which with an Azure operation in flight", tally["kills_in_flight"]),
        ("  by phase", ", ".join(f"{p} {n}" for p, n in tally["kills_by_phase"].items())),
        ("rounds", tally["rounds"]),
        ("custom resources created / deleted", f"{tally['custom_resources_created']} / "
                                                f"{tally['custom_resources_deleted']}"),
        ("Azure resources at the end", tally["azure_resources"]),
        ("ARM requests logged (lost)", f"{tally['arm_requests']} ({tally['arm_requests_lost']})"),
        ("duplicates", len(tally["duplicates"])),
        ("orphans", len(tally["orphans"])),
        ("stuck finalizers", len(tally["stuck_finalizers"])),
        ("second PUTs", len(tally["second_puts"])),
        ("  accepted writes and actions checked", tally["accepted_writes_and_actions"]),
        ("  other writes during the resource's own operation (not counted)",
         len(tally["other_writes_during_own_operation"])),
        ("  second POST actions during their operation (not counted)", len(tally["second_actions"])),
        ("not converged", len(tally["not_converged"])),
        ("time to converge after the last kill (s)", tally["converge_after_last_kill_s"]),
        ("  longest, kill to its phase converged (s)", tally["converge_after_kill_max_s"]),
        ("total (s)", tally["total_s"]),
        ("seed", tally["seed"]),
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def failures(tally: dict[str, Any]) -> list[str]:
    return [f"{key}: {tally[key]}" for key in ("duplicates", "orphans", "stuck_finalizers", "second_puts",
                                                "not_converged") if tally[key]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs of the operator in all (default 50)")
    parser.add_argument("--seed", type=int, default=None, help="the RNG seed (default: random, printed)")
    parser.add_argument("--latency-scale", type=float, default=0.05)
    parser.add_argument("--throttle-scale", type=float, default=10.0)
    parser.add_argument("--resync-interval", type=float, default=3.0)
    parser.add_argument("--kills-per-phase", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="logs and state (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir even when the run passes")
    parser.add_argument("--json", type=Path, default=None, help="write the tally there")
    args = parser.parse_args(argv)
    options = Options(kills=args.kills, seed=args.seed, latency_scale=args.latency_scale,
                      throttle_scale=args.throttle_scale, resync_interval=args.resync_interval,
                      kills_per_phase=args.kills_per_phase, workdir=args.workdir, keep=args.keep)
    run = Run(options)
    ok = False
    try:
        tally = run.run()
        print(table(tally))
        problems = failures(tally)
        for problem in problems:
            print("FAIL", problem)
        if args.json:
            args.json.write_text(json.dumps({**tally, "kill_log": run.kills}, indent=2))
        ok = not problems
        return 0 if ok else 1
    finally:
        run.close(remove=ok and not options.keep and options.workdir is None)


if __name__ == "__main__":
    sys.exit(main())
