"""`azvm-sandbox demo`: the whole loop on embedded defaults, no cluster and no subscription needed.

Starts the Azure emulator and a Kubernetes API server (serving the CRDs of ./crds) and runs the operator against
them exactly as it runs against a real cluster (kubeconfig + service principal + ARM endpoint). Then, with paths
relative to the current directory unless given:

1. ./examples/virtualmachine.yaml: applies it, shows progress until the VM is Ready, prints the VM as Azure
   reports it (through the Azure SDK), deletes the custom resource and shows that the VM and its NIC are gone;
2. ./examples/scaleset-web.yaml (skipped with a note if missing): applies it, shows the instances coming up until
   it is Ready, prints the scale set, its instances and its load balancer as Azure reports them, scales it to 4
   through the /scale subresource (as `kubectl scale` or an HPA does) and shows it converge, the load balancer's
   backend pool included, then deletes it and shows that the scale set, load balancer, public IP and NSG are gone.

Exit code 0 when everything happened as shown, 1 otherwise.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from azure_vm_operator.api.constants import GROUP, SCALESET_PLURAL, VERSION, VM_PLURAL

DEADLINE = 75.0
DEFAULT_EXAMPLE = "examples/virtualmachine.yaml"  # relative to the current directory, like DEFAULT_CRDS
DEFAULT_SCALESET_EXAMPLE = "examples/scaleset-web.yaml"
DEFAULT_CRDS = "crds"
SCALE_TO = 4
console = Console()

Row = tuple[str, ...]


class _Failed(Exception):
    """Something was not as expected: the message is printed and the demo exits with 1."""


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return {}


def _is_true(obj: dict[str, Any], type_: str) -> bool:
    return _condition(obj, type_).get("status") == "True"


def _current(obj: dict[str, Any]) -> bool:
    """The status describes the latest spec (the operator has seen the last change)."""
    status = obj.get("status") or {}
    return bool(status) and status.get("observedGeneration") == (obj.get("metadata") or {}).get("generation")


def _table(title: str, columns: tuple[str, ...], rows: list[Row]) -> Table:
    table = Table(title=title)
    for col in columns:  # every column but the last keeps its values on one line; the message folds
        table.add_column(col, overflow="fold", no_wrap=col != columns[-1])
    for row in rows[-14:]:
        table.add_row(*row)
    return table


def _watch(custom: Any, plural: str, namespace: str, name: str, title: str, columns: tuple[str, ...],
           row_of: Callable[[dict[str, Any]], Row], done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """`kubectl get -w`: a row per change of what the columns show, until ``done`` or Stalled (or DEADLINE)."""
    started, obj = time.monotonic(), {}
    rows: list[Row] = []
    with Live(_table(title, columns, rows), console=console, refresh_per_second=8) as live:
        while time.monotonic() - started < DEADLINE:
            obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
            row = (f"{time.monotonic() - started:5.1f}", *row_of(obj))
            if not rows or rows[-1][1:] != row[1:]:
                rows.append(row)
                live.update(_table(title, columns, rows))
            if done(obj) or (_current(obj) and _is_true(obj, "Stalled")):
                break
            time.sleep(0.2)
    console.print()
    return obj


def _require_ready(obj: dict[str, Any], what: str) -> None:
    if _current(obj) and _is_true(obj, "Stalled"):
        stalled = _condition(obj, "Stalled")
        raise _Failed(f"{what} stalled: {stalled.get('reason')}: {stalled.get('message')}")
    if not _is_true(obj, "Ready"):
        ready = _condition(obj, "Ready")
        raise _Failed(f"{what} not Ready within {DEADLINE:.0f} s: {ready.get('reason')}: {ready.get('message')}")


def _delete_and_wait(custom: Any, plural: str, namespace: str, name: str) -> None:
    import kubernetes.client

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE:
        try:
            custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                console.print(f"   custom resource gone after {time.monotonic() - started:.1f} s (finalizer removed)")
                return
            raise
        time.sleep(0.2)
    raise _Failed("the operator did not release the custom resource in time")


def _all_gone(checks: list[tuple[str, Callable[[], Any]]]) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    all_gone = True
    for label, get in checks:
        try:
            get()
            console.print(f"   [red]{label} still exists[/]")
            all_gone = False
        except ResourceNotFoundError:
            console.print(f"   {label}: gone (404 ResourceNotFound)")
    return all_gone


# ---- part 1: a VirtualMachine ------------------------------------------------------------------------------------


def _vm_row(obj: dict[str, Any]) -> Row:
    ready, status = _condition(obj, "Ready"), obj.get("status") or {}
    return (ready.get("status", "-"), ready.get("reason", "-"), status.get("powerState") or "-",
            status.get("privateIP") or "-", (ready.get("message") or "")[:70])


def _vm_azure_view(compute: Any, network: Any, rg: str, vm_name: str) -> tuple[Table, str]:
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


def _vm_part(env: Any, custom: Any, example: Path, keep: bool) -> None:
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient

    manifest = yaml.safe_load(example.read_text(encoding="utf-8"))
    namespace, name = manifest["metadata"].get("namespace", "default"), manifest["metadata"]["name"]
    spec = manifest["spec"]
    rg, vm_name = spec["resourceGroup"], spec.get("azureName", name)
    subscription = spec.get("subscriptionId") or env.operator.config.subscription_id
    compute = env.azure_client(ComputeManagementClient, subscription)
    network = env.azure_client(NetworkManagementClient, subscription)

    console.print(f"\n[bold]1. kubectl apply -f {example}[/]")
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, VM_PLURAL, manifest)

    console.print("[bold]2. the operator reconciles it[/]")
    obj = _watch(custom, VM_PLURAL, namespace, name, "kubectl get azvm -w",
                 ("t (s)", "Ready", "Reason", "Power", "Private IP", "Message"), _vm_row,
                 lambda o: _current(o) and _is_true(o, "Ready"))
    _require_ready(obj, f"VirtualMachine {name}")

    console.print("[bold]3. the VM as Azure reports it[/]")
    table, nic_name = _vm_azure_view(compute, network, rg, vm_name)
    console.print(table)
    if keep:
        console.print("   --keep: the VM stays")
        return

    console.print(f"[bold]4. kubectl delete azvm {name}[/]")
    _delete_and_wait(custom, VM_PLURAL, namespace, name)
    console.print("[bold]5. Azure after the delete[/]")
    if not _all_gone([("VM", lambda: compute.virtual_machines.get(rg, vm_name)),
                      ("NIC", lambda: network.network_interfaces.get(rg, nic_name))]):
        raise _Failed("the VM's Azure resources are still there")
    console.print("[bold green]VirtualMachine: kubectl apply -> Ready VM in Azure -> kubectl delete -> "
                  "nothing left.[/]")


# ---- part 2: a ScaleSet ------------------------------------------------------------------------------------------

SCALESET_COLUMNS = ("t (s)", "Ready", "replicas/\nready/\nupdated", "LB IP", "LB\npool", "Status", "Message")


def _scale_set_row(obj: dict[str, Any]) -> Row:
    ready, status = _condition(obj, "Ready"), obj.get("status") or {}
    lb = status.get("loadBalancer") or {}
    counts = "/".join(str(status.get(k, "-")) for k in ("replicas", "readyReplicas", "updatedReplicas"))
    return (ready.get("status", "-"), counts if status else "-", lb.get("ip") or "-",
            str(lb.get("backendPoolSize", "-")), status.get("printableStatus") or "-",
            (ready.get("message") or "")[:100])


def _converged(replicas: int) -> Callable[[dict[str, Any]], bool]:
    def done(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        return (_current(obj) and _is_true(obj, "Ready") and status.get("replicas") == replicas
                and status.get("readyReplicas") == replicas
                and (status.get("loadBalancer") or {}).get("backendPoolSize", replicas) == replicas)
    return done


def _pool_size(lb: dict[str, Any]) -> int:
    pools = (lb.get("properties") or {}).get("backendAddressPools") or []
    return sum(len((p.get("properties") or {}).get("backendIPConfigurations") or []) for p in pools)


def _scale_set_azure_view(compute: Any, network: Any, rg: str, ss_name: str) -> tuple[list[Table], int, int, int]:
    """Tables of the scale set, its instances and its load balancer as the SDK returns them; and the capacity,
    the number of instances and the backend pool size."""
    ss = compute.virtual_machine_scale_sets.get(rg, ss_name).as_dict()
    props, sku = ss.get("properties") or {}, ss.get("sku") or {}
    image = ((props.get("virtualMachineProfile") or {}).get("storageProfile") or {}).get("imageReference") or {}
    overview = Table(show_header=False, title="Azure: virtual_machine_scale_sets.get")
    for key, value in (
        ("id", ss["id"]),
        ("sku", f"{sku.get('name')} x {sku.get('capacity')}"),
        ("image", ":".join(str(image.get(k)) for k in ("publisher", "offer", "sku", "version"))),
        ("zones", ", ".join(ss.get("zones") or []) or "-"),
        ("orchestration", props.get("orchestrationMode") or "Uniform"),
        ("upgrade policy", (props.get("upgradePolicy") or {}).get("mode")),
        ("provisioning state", props.get("provisioningState")),
    ):
        overview.add_row(key, str(value))

    vms = [v.as_dict() for v in compute.virtual_machine_scale_set_vms.list(rg, ss_name, expand="instanceView")]
    instances = Table(title="Azure: virtual_machine_scale_set_vms.list")
    for col in ("instance", "name", "zone", "provisioning", "power", "latest model"):
        instances.add_column(col)
    for vm in vms:
        vprops = vm.get("properties") or {}
        power = next((s["code"].split("/", 1)[1] for s in (vprops.get("instanceView") or {}).get("statuses") or []
                      if str(s.get("code", "")).startswith("PowerState/")), "-")
        instances.add_row(str(vm.get("instanceId")), str(vm.get("name")), ", ".join(vm.get("zones") or []) or "-",
                          str(vprops.get("provisioningState")), power, str(vprops.get("latestModelApplied")))

    lb = network.load_balancers.get(rg, f"{ss_name}-lb").as_dict()
    lprops = lb.get("properties") or {}
    frontend_ip = "-"
    for frontend in lprops.get("frontendIPConfigurations") or []:
        pip_id = ((frontend.get("properties") or {}).get("publicIPAddress") or {}).get("id")
        if pip_id:
            pip = network.public_ip_addresses.get(rg, pip_id.rsplit("/", 1)[1]).as_dict()
            frontend_ip = f"{(pip.get('properties') or {}).get('ipAddress')} ({pip_id.rsplit('/', 1)[1]})"
    pool = _pool_size(lb)
    balancer = Table(show_header=False, title=f"Azure: load_balancers.get({rg!r}, {ss_name + '-lb'!r})")
    for key, value in (
        ("sku", (lb.get("sku") or {}).get("name")),
        ("frontend", frontend_ip),
        *((f"rule {r['name']}", "{protocol} {frontendPort} -> {backendPort}".format(**r.get("properties") or {}))
          for r in lprops.get("loadBalancingRules") or []),
        *((f"probe {p['name']}", "{protocol} {port} {requestPath}".format(
            **{"requestPath": "", **(p.get("properties") or {})})) for p in lprops.get("probes") or []),
        ("backend pool", f"{', '.join(p['name'] for p in lprops.get('backendAddressPools') or [])}: "
                         f"{pool} instance NICs"),
    ):
        balancer.add_row(key, str(value))
    return [overview, instances, balancer], int(sku.get("capacity") or 0), len(vms), pool


def _scale_set_part(env: Any, custom: Any, example: Path, keep: bool) -> None:
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient

    manifest = yaml.safe_load(example.read_text(encoding="utf-8"))
    namespace, name = manifest["metadata"].get("namespace", "default"), manifest["metadata"]["name"]
    spec = manifest["spec"]
    rg, ss_name = spec["resourceGroup"], spec.get("azureName", name)
    subscription = spec.get("subscriptionId") or env.operator.config.subscription_id
    compute = env.azure_client(ComputeManagementClient, subscription)
    network = env.azure_client(NetworkManagementClient, subscription)
    replicas = int(spec.get("replicas") or 1)
    title = f"kubectl get vmss {name} -w"

    console.print(f"\n[bold]6. kubectl apply -f {example}[/]")
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, SCALESET_PLURAL, manifest)

    console.print(f"[bold]7. the operator creates the load balancer and {replicas} instances[/]")
    obj = _watch(custom, SCALESET_PLURAL, namespace, name, title, SCALESET_COLUMNS, _scale_set_row,
                 _converged(replicas))
    _require_ready(obj, f"ScaleSet {name}")

    console.print("[bold]8. the scale set as Azure reports it[/]")
    tables, capacity, count, pool = _scale_set_azure_view(compute, network, rg, ss_name)
    for table in tables:
        console.print(table)
    if (capacity, count, pool) != (replicas, replicas, replicas):
        raise _Failed(f"Azure has capacity {capacity}, {count} instances, {pool} in the backend pool; "
                      f"expected {replicas}")

    console.print(f"[bold]9. kubectl scale vmss/{name} --replicas={SCALE_TO}[/] (PATCH on the /scale subresource, "
                  "as an HPA or KEDA does)")
    custom.patch_namespaced_custom_object_scale(GROUP, VERSION, namespace, SCALESET_PLURAL, name,
                                                {"spec": {"replicas": SCALE_TO}})
    obj = _watch(custom, SCALESET_PLURAL, namespace, name, title, SCALESET_COLUMNS, _scale_set_row,
                 _converged(SCALE_TO))
    _require_ready(obj, f"ScaleSet {name} at {SCALE_TO} replicas")
    if not _converged(SCALE_TO)(obj):
        raise _Failed(f"ScaleSet {name} did not reach {SCALE_TO} ready instances within {DEADLINE:.0f} s")
    owner = (obj.get("status") or {}).get("replicasOwner")
    tables, capacity, count, pool = _scale_set_azure_view(compute, network, rg, ss_name)
    console.print(tables[1])
    console.print(f"   Azure: capacity {capacity}, {count} instances, backend pool {pool}"
                  + (f"; spec.replicas last set by {owner}" if owner else ""))
    if (capacity, count, pool) != (SCALE_TO,) * 3:
        raise _Failed(f"Azure has capacity {capacity}, {count} instances, {pool} in the backend pool; "
                      f"expected {SCALE_TO}")
    if keep:
        console.print("   --keep: the scale set stays")
        return

    console.print(f"[bold]10. kubectl delete vmss {name}[/]")
    _delete_and_wait(custom, SCALESET_PLURAL, namespace, name)
    console.print("[bold]11. Azure after the delete[/]")
    if not _all_gone([
        ("scale set", lambda: compute.virtual_machine_scale_sets.get(rg, ss_name)),
        ("load balancer", lambda: network.load_balancers.get(rg, f"{ss_name}-lb")),
        ("public IP", lambda: network.public_ip_addresses.get(rg, f"{ss_name}-lb-pip")),
        ("NSG", lambda: network.network_security_groups.get(rg, f"{ss_name}-vmss-nsg")),
    ]):
        raise _Failed("the scale set's Azure resources are still there")
    console.print("[bold green]ScaleSet: kubectl apply -> Ready behind a load balancer -> /scale to "
                  f"{SCALE_TO} -> kubectl delete -> nothing left.[/]")


def run_demo(example: Path, crds_dir: Path, latency_scale: float, keep: bool,
             scaleset_example: Path | None = None) -> int:
    import kubernetes.client
    from azure.core.exceptions import AzureError

    from .harness import temporary_environment

    started = time.monotonic()
    with console.status("starting the Azure emulator, the Kubernetes API and the operator"):
        env = temporary_environment(crds_dir, latency_scale=latency_scale, throttling=True, throttle_scale=1.0)
    try:
        env.start_operator(resync_interval=30.0, lro_polling_interval=0.2, cluster_id="demo")
        console.print(f"[bold]Azure emulator[/] {env.emulator.url}  [bold]Kubernetes API[/] {env.kubeapi.url}  "
                      f"(latency {latency_scale:g} x real Azure)")
        api_client = env.kube_api_client()
        api_client.user_agent = "azvm-sandbox-demo"  # the field manager the API server records for our writes
        custom = kubernetes.client.CustomObjectsApi(api_client)
        try:
            _vm_part(env, custom, example, keep)
            if scaleset_example is None:
                console.print("\n[yellow]ScaleSet part skipped[/]: no scale set example (--scaleset-example)")
            elif not scaleset_example.exists():
                console.print(f"\n[yellow]ScaleSet part skipped[/]: {scaleset_example} not found "
                              "(run from the repository root or pass --scaleset-example)")
            else:
                _scale_set_part(env, custom, scaleset_example, keep)
        except _Failed as exc:
            console.print(f"[red]{exc}[/]")
            return 1
        except (kubernetes.client.ApiException, AzureError) as exc:
            console.print(f"[red]unexpected answer: {exc}[/]")
            return 1
        console.print(f"[bold green]Done in {time.monotonic() - started:.0f} s.[/]")
        if keep:
            console.print("--keep: press Ctrl+C to stop")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0
    finally:
        env.close()
        shutil.rmtree(env.workdir, ignore_errors=True)


class _HideProgress(logging.Filter):
    """Kopf logs each "not done yet, look again" of a handler at ERROR ("... failed temporarily: in progress:
    ..."); in the demo that is expected progress, already shown in the tables. Real errors still pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed temporarily: in progress:" not in record.getMessage()


def main(example: str | None = None, crds: str | None = None, latency_scale: float = 0.1, keep: bool = False,
         scaleset_example: str | None = None) -> int:
    """The demo; ``example``, ``scaleset_example`` and ``crds`` default to ./examples/virtualmachine.yaml,
    ./examples/scaleset-web.yaml and ./crds (the repository root is the current directory under ``make demo``)."""
    # The demo shows its own progress; the operator's own log goes to stderr at WARNING and above.
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("kopf._core.reactor.running").setLevel(logging.ERROR)  # "OS signals are ignored" (thread)
    logging.getLogger("kopf.objects").addFilter(_HideProgress())
    path, crds_dir = Path(example or DEFAULT_EXAMPLE), Path(crds or DEFAULT_CRDS)
    for wanted, flag in ((path, "--example"), (crds_dir, "--crds")):
        if not wanted.exists():
            console.print(f"[red]{wanted} not found[/]: run from the repository root or pass {flag}")
            return 2
    return run_demo(path, crds_dir, latency_scale, keep, Path(scaleset_example or DEFAULT_SCALESET_EXAMPLE))


if __name__ == "__main__":
    sys.exit(main())
