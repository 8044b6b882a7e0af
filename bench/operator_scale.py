"""How the operator behaves with many VirtualMachines at once, against the emulator with Azure's real throttling.

    .venv/bin/python bench/operator_scale.py --vms 50 --latency-scale 0.05

Creates N VirtualMachines through the Kubernetes API in one burst, waits until all are Ready, then deletes them all
and waits until every custom resource is gone. Reports, from one run: the time to all Ready and to all deleted,
ARM requests per VM by kind (from the emulator's request log), 429s received, and the number of VMs / NICs left in
Azure afterwards (must be 0) and created in Azure (must equal N: no duplicates).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections import Counter
from typing import Any

import kubernetes.client
from rich.console import Console
from rich.table import Table

from azure_vm_operator.api.constants import GROUP, VERSION, VM_PLURAL
from azvm_sandbox.harness import temporary_environment

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVxUo3ZP3wv0vY3W4nKJt2f5Q0mPp0m2v7O1l8h4aDm bench@example"


def manifest(i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualMachine",
        "metadata": {"name": f"bench-{i:04d}", "namespace": "default"},
        "spec": {"location": "westeurope", "resourceGroup": "bench-rg", "size": "Standard_B2s",
                 "image": {"marketplace": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                           "sku": "22_04-lts-gen2"}},
                 "adminUsername": "azureuser", "sshPublicKeys": [KEY]},
    }


def ready_count(custom: Any) -> int:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, "default", VM_PLURAL)["items"]
    return sum(1 for o in items for c in (o.get("status") or {}).get("conditions") or []
               if c["type"] == "Ready" and c["status"] == "True")


def remaining_count(custom: Any) -> int:
    return len(custom.list_namespaced_custom_object(GROUP, VERSION, "default", VM_PLURAL)["items"])


def wait_until(console: Console, started: float, timeout: float, done: Any, progress: Any) -> bool:
    """Poll ``done()`` every second showing ``progress()``; False (and a message) after ``timeout`` seconds."""
    with console.status(progress()) as status:
        while not done():
            if time.monotonic() - started > timeout:
                console.print(f"[red]{progress()} after {timeout:.0f} s[/]")
                return False
            status.update(f"{progress()} after {time.monotonic() - started:.0f} s")
            time.sleep(1)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=50)
    parser.add_argument("--latency-scale", type=float, default=0.05, help="emulated Azure latency (1 = real)")
    parser.add_argument("--throttle-scale", type=float, default=1.0, help="1 = Azure's real limits")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--crds", default="crds", help="folder of the CRDs (default: ./crds, the repository's)")
    args = parser.parse_args()
    console = Console()

    env = temporary_environment(args.crds, latency_scale=args.latency_scale, throttling=True,
                                throttle_scale=args.throttle_scale)
    try:
        env.start_operator(resync_interval=300.0, lro_polling_interval=None, backoff_base=2.0, backoff_max=60.0)
        custom = kubernetes.client.CustomObjectsApi(env.kube_api_client())
        env.clear_arm_requests()

        started = time.monotonic()
        for i in range(args.vms):
            custom.create_namespaced_custom_object(GROUP, VERSION, "default", VM_PLURAL, manifest(i))
        if not wait_until(console, started, args.timeout, lambda: ready_count(custom) >= args.vms,
                          lambda: f"{ready_count(custom)}/{args.vms} Ready"):
            return 1
        to_ready = time.monotonic() - started
        create_log = env.arm_requests()
        azure_vms = env.admin(lambda a: a.resources())

        env.clear_arm_requests()
        started = time.monotonic()
        for i in range(args.vms):
            custom.delete_namespaced_custom_object(GROUP, VERSION, "default", VM_PLURAL, f"bench-{i:04d}")
        if not wait_until(console, started, args.timeout, lambda: remaining_count(custom) == 0,
                          lambda: f"{remaining_count(custom)} custom resources left"):
            return 1
        to_deleted = time.monotonic() - started
        delete_log = env.arm_requests()
        remaining = env.admin(lambda a: a.resources())
    finally:
        env.close()
        shutil.rmtree(env.workdir, ignore_errors=True)

    def kinds(log: list[dict[str, Any]]) -> Counter[str]:
        arm = [r for r in log if r["path"].lower().startswith("/subscriptions/")]
        counter: Counter[str] = Counter()
        for r in arm:
            counter["polls (operation status)" if "/operations/" in r["path"].lower() else r["method"]] += 1
            if (r.get("status") or 0) >= 400:
                counter[f"{r['status']} received"] += 1
        return counter

    def count_type(resources: Any, suffix: str) -> int:
        items = resources.get("resources", resources) if isinstance(resources, dict) else resources
        return sum(1 for r in items if str(r.get("id", r) if isinstance(r, dict) else r).lower().split(
            "/providers/")[-1].startswith(suffix))

    table = Table(title=f"{args.vms} VirtualMachines, latency x{args.latency_scale:g}, "
                        f"throttling x{args.throttle_scale:g} (Azure's limits = 1)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("time to all Ready (s)", f"{to_ready:.1f}")
    table.add_row("time to all deleted (s)", f"{to_deleted:.1f}")
    for phase, log in (("create", create_log), ("delete", delete_log)):
        for kind, n in sorted(kinds(log).items()):
            table.add_row(f"{phase}: ARM {kind} per VM", f"{n / args.vms:.1f}")
    table.add_row("VMs in Azure when all were Ready", str(count_type(azure_vms, "microsoft.compute/virtualmachines/")))
    table.add_row("VMs left in Azure after delete", str(count_type(remaining, "microsoft.compute/virtualmachines/")))
    table.add_row("NICs left in Azure after delete", str(count_type(remaining, "microsoft.network/networkinterfaces/")))
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
