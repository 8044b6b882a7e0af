"""`azvm-sandbox demo`: the whole loop on embedded defaults, no cluster and no subscription needed.

Starts the Azure emulator and a Kubernetes API server (serving the CRDs of ./crds), runs the operator against them
exactly as it runs against a real cluster (kubeconfig + service principal + ARM endpoint), applies
./examples/virtualmachine.yaml (both paths relative to the current directory unless given), shows progress
until the VM is Ready, prints the VM as Azure reports it (through the Azure SDK), deletes the custom resource and
shows that the VM and its NIC are gone from Azure.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from azure_vm_operator.api.constants import GROUP, VERSION, VM_PLURAL

DEADLINE = 75.0
DEFAULT_EXAMPLE = "examples/virtualmachine.yaml"  # relative to the current directory, like DEFAULT_CRDS
DEFAULT_CRDS = "crds"
console = Console()


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return {}


def _progress_table(rows: list[tuple[str, ...]]) -> Table:
    table = Table(title="kubectl get azvm -w")
    for col in ("t (s)", "Ready", "Reason", "Power", "Private IP", "Message"):
        table.add_column(col, overflow="fold")
    for row in rows[-12:]:
        table.add_row(*row)
    return table


def _wait_ready(custom: Any, namespace: str, name: str) -> dict[str, Any]:
    started, rows, obj = time.monotonic(), [], {}
    with Live(_progress_table(rows), console=console, refresh_per_second=8) as live:
        while time.monotonic() - started < DEADLINE:
            obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, VM_PLURAL, name)
            ready = _condition(obj, "Ready")
            status = obj.get("status") or {}
            row = (f"{time.monotonic() - started:5.1f}", ready.get("status", "-"), ready.get("reason", "-"),
                   status.get("powerState") or "-", status.get("privateIP") or "-", (ready.get("message") or "")[:70])
            if not rows or rows[-1][1:] != row[1:]:
                rows.append(row)
                live.update(_progress_table(rows))
            if ready.get("status") == "True" or _condition(obj, "Stalled").get("status") == "True":
                break
            time.sleep(0.2)
    console.print()
    return obj


def _azure_view(compute: Any, network: Any, rg: str, vm_name: str) -> tuple[Table, str]:
    vm = compute.virtual_machines.get(rg, vm_name, expand="instanceView").as_dict()
    props = vm["properties"]
    nic_name = props["networkProfile"]["networkInterfaces"][0]["id"].rsplit("/", 1)[1]
    nic = network.network_interfaces.get(rg, nic_name).as_dict()
    image = props["storageProfile"]["imageReference"]
    table = Table(show_header=False, title="Azure (GET through azure-mgmt-compute / azure-mgmt-network)")
    for key, value in (
        ("id", vm["id"]),
        ("size", props["hardwareProfile"]["vmSize"]),
        ("image", ":".join(str(image.get(k)) for k in ("publisher", "offer", "sku"))
         + f":{image.get('exactVersion') or image.get('version')}"),
        ("provisioning state", props.get("provisioningState")),
        ("instance view", ", ".join(s["code"] for s in (props.get("instanceView") or {}).get("statuses", []))),
        ("NIC", nic_name),
        ("private IP", nic["properties"]["ipConfigurations"][0]["properties"].get("privateIPAddress")),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted((vm.get("tags") or {}).items()))),
    ):
        table.add_row(key, str(value))
    return table, nic_name


def run_demo(example: Path, crds_dir: Path, latency_scale: float, keep: bool) -> int:
    import kubernetes.client
    from azure.core.exceptions import ResourceNotFoundError
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient

    from .harness import temporary_environment

    manifest = yaml.safe_load(example.read_text(encoding="utf-8"))
    namespace, name = manifest["metadata"].get("namespace", "default"), manifest["metadata"]["name"]
    spec = manifest["spec"]
    rg, vm_name = spec["resourceGroup"], spec.get("azureName", name)

    with console.status("starting the Azure emulator, the Kubernetes API and the operator"):
        env = temporary_environment(crds_dir, latency_scale=latency_scale, throttling=True, throttle_scale=1.0)
    try:
        env.start_operator(resync_interval=30.0, lro_polling_interval=0.2, cluster_id="demo")
        console.print(f"[bold]Azure emulator[/] {env.emulator.url}  [bold]Kubernetes API[/] {env.kubeapi.url}  "
                      f"(latency {latency_scale:g} x real Azure)")
        custom = kubernetes.client.CustomObjectsApi(env.kube_api_client())
        compute = env.azure_client(ComputeManagementClient, spec.get("subscriptionId") or env.operator.config.subscription_id)
        network = env.azure_client(NetworkManagementClient, spec.get("subscriptionId") or env.operator.config.subscription_id)

        console.print(f"\n[bold]1. kubectl apply -f {example}[/]")
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, VM_PLURAL, manifest)

        console.print("[bold]2. the operator reconciles it[/]")
        obj = _wait_ready(custom, namespace, name)
        if _condition(obj, "Ready").get("status") != "True":
            stalled = _condition(obj, "Stalled")
            console.print(f"[red]not Ready within {DEADLINE:.0f} s: {stalled.get('reason')} {stalled.get('message')}[/]")
            return 1

        console.print("[bold]3. the VM as Azure reports it[/]")
        table, nic_name = _azure_view(compute, network, rg, vm_name)
        console.print(table)
        if keep:
            console.print("--keep: the VM stays; press Ctrl+C to stop")
            while True:
                time.sleep(3600)

        console.print(f"[bold]4. kubectl delete azvm {name}[/]")
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, VM_PLURAL, name)
        started = time.monotonic()
        while time.monotonic() - started < DEADLINE:
            try:
                custom.get_namespaced_custom_object(GROUP, VERSION, namespace, VM_PLURAL, name)
            except kubernetes.client.ApiException as exc:
                if exc.status == 404:
                    break
                raise
            time.sleep(0.2)
        else:
            console.print("[red]the operator did not release the custom resource in time[/]")
            return 1
        console.print(f"   custom resource gone after {time.monotonic() - started:.1f} s (finalizer removed)")

        console.print("[bold]5. Azure after the delete[/]")
        all_gone = True
        for label, get in (("VM", lambda: compute.virtual_machines.get(rg, vm_name)),
                           ("NIC", lambda: network.network_interfaces.get(rg, nic_name))):
            try:
                get()
                console.print(f"   [red]{label} still exists[/]")
                all_gone = False
            except ResourceNotFoundError:
                console.print(f"   {label}: gone (404 ResourceNotFound)")
        if all_gone:
            console.print("[bold green]Done: kubectl apply -> Ready VM in Azure -> kubectl delete -> nothing left.[/]")
        return 0 if all_gone else 1
    finally:
        env.close()
        shutil.rmtree(env.workdir, ignore_errors=True)


def main(example: str | None = None, crds: str | None = None, latency_scale: float = 0.1, keep: bool = False) -> int:
    """The demo; ``example`` and ``crds`` default to ./examples/virtualmachine.yaml and ./crds (the repository root
    is the current directory under ``make demo``)."""
    # The demo shows its own progress; the operator's own log goes to stderr at WARNING and above.
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("kopf._core.reactor.running").setLevel(logging.ERROR)  # "OS signals are ignored" (thread)
    path, crds_dir = Path(example or DEFAULT_EXAMPLE), Path(crds or DEFAULT_CRDS)
    for wanted, flag in ((path, "--example"), (crds_dir, "--crds")):
        if not wanted.exists():
            console.print(f"[red]{wanted} not found[/]: run from the repository root or pass {flag}")
            return 2
    return run_demo(path, crds_dir, latency_scale, keep)


if __name__ == "__main__":
    sys.exit(main())
