"""`azvm-sandbox demo`: the whole loop on embedded defaults, no cluster and no subscription needed.

Starts the Azure emulator and a Kubernetes API server (serving the CRDs of ./crds) and runs the operator against
them exactly as it runs against a real cluster (kubeconfig + service principal + ARM endpoint). Then, with paths
relative to the current directory unless given:

1. ./examples/virtualmachine.yaml: applies it, shows progress until the VM is Ready, prints the VM as Azure
   reports it (through the Azure SDK), deletes the custom resource and shows that the VM and its NIC are gone;
2. ./examples/scaleset-web.yaml (skipped with a note if missing): applies it, shows the instances coming up until
   it is Ready, prints the scale set, its instances and its load balancer as Azure reports them, scales it to 4
   through the /scale subresource (as `kubectl scale` or an HPA does) and shows it converge, the load balancer's
   backend pool included, then deletes it and shows that the scale set, load balancer, public IP and NSG are gone;
3. a ScaleSet with ``spec.autoscale`` (embedded here; Azure Monitor CPU rules, evaluated every 5 s): shows it Ready
   at defaultReplicas 2 with its metrics read, puts a load spike on it in the emulator (90 % CPU on each instance,
   through the emulator's admin API), shows the autoscaler scale it out to 4 and the ScaleSet converge, prints what
   ``kubectl describe scaleset`` shows a user (status.autoscale with the decisions as sentences, the
   AutoscaleHealthy condition, the ScaledOut Event), then deletes it and shows that the emulator holds nothing but
   resource groups and the shared virtual networks (the operator keeps those, by design): no VM, scale set, NIC,
   load balancer, public IP or NSG of the whole demo is left.

Exit code 0 when everything happened as shown, 1 otherwise.
"""

from __future__ import annotations

import copy
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
from azure_vm_operator.autoscale.spec import SYMBOLS

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


# ---- part 3: a ScaleSet that autoscales on CPU -------------------------------------------------------------------

AUTOSCALE_NAME = "web-autoscale"
AUTOSCALE_RG = "web-autoscale-rg"
LOAD_SPIKE = 90.0  #: % CPU on each instance the scale set runs when the spike starts
AUTOSCALE_RULES: list[dict[str, Any]] = [
    {"name": "cpu-high", "azureMonitor": {"metricName": "Percentage CPU", "aggregation": "Average",
                                          "timeGrain": "1m", "timeWindow": "1m"},
     "operator": "GreaterThan", "threshold": 70, "action": {"direction": "Increase", "type": "ChangeCount", "value": 2},
     "cooldown": "20s"},
    {"name": "cpu-low", "azureMonitor": {"metricName": "Percentage CPU", "aggregation": "Average",
                                         "timeGrain": "1m", "timeWindow": "1m"},
     "operator": "LessThan", "threshold": 25, "action": {"direction": "Decrease", "type": "ChangeCount", "value": 1},
     "cooldown": "1m"},
]


def _autoscale_manifest() -> dict[str, Any]:
    """examples/scaleset-autoscale.yaml with the demo's timings (a 5 s evaluation interval, a 1 minute Azure Monitor
    window, short cooldowns) and without its business-hours profile (min 4 on weekdays would hide the scale-out)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ScaleSet",
        "metadata": {"name": AUTOSCALE_NAME, "namespace": "default"},
        "spec": {
            "location": "westeurope", "resourceGroup": AUTOSCALE_RG, "size": "Standard_B2s",
            "image": {"marketplace": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                      "sku": "22_04-lts-gen2"}},
            "adminUsername": "azureuser",
            "sshPublicKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVxUo3ZP3wv0vY3W4nKJt2f5Q0mPp0m2v7O1l8h4aDm "
                              "you@example"],
            # no spec.replicas: the autoscaler owns the count and starts at defaultReplicas
            "autoscale": {"mode": "Enabled", "minReplicas": 2, "maxReplicas": 6, "defaultReplicas": 2,
                          "evaluationInterval": "5s", "rules": copy.deepcopy(AUTOSCALE_RULES)},
        },
    }


def _rule_line(rule: dict[str, Any]) -> str:
    metric, action = rule["azureMonitor"], rule["action"]
    sign = "+" if action["direction"] == "Increase" else "-"
    return (f"{rule['name']}: {metric['aggregation']} '{metric['metricName']}' over {metric['timeWindow']} "
            f"{SYMBOLS[rule['operator']]} {rule['threshold']} -> {sign}{action['value']} (cooldown {rule['cooldown']})")


def _autoscale_status(obj: dict[str, Any]) -> dict[str, Any]:
    return dict((obj.get("status") or {}).get("autoscale") or {})


def _cpu(obj: dict[str, Any]) -> str:
    values = {m.get("rule"): m.get("value") for m in _autoscale_status(obj).get("metrics") or []}
    value = values.get("cpu-high")
    return "-" if value is None else f"{value:g}"


def _autoscale_row(obj: dict[str, Any]) -> Row:
    ready, status, autoscale = _condition(obj, "Ready"), obj.get("status") or {}, _autoscale_status(obj)
    last = autoscale.get("lastDecision") or {}
    counts = "/".join(str(status.get(k, "-")) for k in ("replicas", "readyReplicas")) if status else "-"
    message = last.get("message") or ""
    return (ready.get("status", "-"), f"{(obj.get('spec') or {}).get('replicas', '-')} / {counts}", _cpu(obj),
            last.get("reason") or "-", message if len(message) <= 80 else message[:79] + "…")


AUTOSCALE_COLUMNS = ("t (s)", "Ready", "replicas\nspec /\nstatus/\nready", "CPU\n%", "Last decision",
                     "Decision message")
#: the Events of the autoscaler, and the reconciler's "Scaled" (the Events of each condition change are left out)
AUTOSCALE_EVENTS = ("ReplicasInitialized", "ScaledOut", "ScaledIn", "ReplicasSetOutsideAutoscaler", "Scaled")


def _autoscaled_ready(replicas: int) -> Callable[[dict[str, Any]], bool]:
    """Ready at ``replicas`` instances, and the autoscaler read the metric (AutoscaleHealthy, a CPU value)."""
    def done(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        return (_current(obj) and _is_true(obj, "Ready") and _is_true(obj, "AutoscaleHealthy")
                and (obj.get("spec") or {}).get("replicas") == replicas and status.get("replicas") == replicas
                and status.get("readyReplicas") == replicas and _cpu(obj) != "-")
    return done


def _clock(text: Any) -> str:
    """2026-12-03T16:30:41Z -> 16:30:41 (the demo runs for a minute: the time of day is enough)."""
    return str(text)[11:19] if isinstance(text, str) and len(text) >= 19 else "-"


def _decision_sentence(decision: dict[str, Any]) -> str:
    """A status.autoscale decision as a user reads it."""
    rules = {r["name"]: r for r in AUTOSCALE_RULES}
    before, after, reason = decision.get("from"), decision.get("to"), decision.get("reason")
    rule, observed, threshold = decision.get("rule"), decision.get("observed"), decision.get("threshold")
    if before is None:
        what = f"set the first count to {after}"
    elif after == before:
        what = f"kept {before} replicas"
    else:
        what = f"scaled {'out' if after > before else 'in'} {before} -> {after} replicas"
    if not decision.get("applied") and after != before:
        what += " (not applied)"
    sentence = f"{_clock(decision.get('time'))}  {what}"
    if rule and observed is not None and threshold is not None:
        symbol = SYMBOLS.get(str((rules.get(rule) or {}).get("operator")), "vs")
        wanted = decision.get("recommendation")
        asked = f" and asked for {wanted}" if wanted is not None and wanted != after else ""
        sentence += (f": rule {rule} observed {observed:g} % CPU {symbol} threshold {threshold:g}{asked} "
                     f"(reason {reason})")
    else:
        sentence += f" (reason {reason}): {decision.get('message')}"
    return sentence


def _age(moment: Any) -> str:
    from datetime import datetime, timezone

    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    seconds = max(0, int((datetime.now(timezone.utc) - moment).total_seconds()))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def _events(core: Any, namespace: str, name: str) -> list[Any]:
    events = [e for e in core.list_namespaced_event(namespace).items
              if e.involved_object and e.involved_object.name == name and e.involved_object.kind == "ScaleSet"]
    return sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or e.first_timestamp or ""))


def _describe(obj: dict[str, Any], events: list[Any]) -> str:
    """The autoscale part of `kubectl describe scaleset NAME`: status.autoscale (decisions as sentences), the
    AutoscaleHealthy condition and the Events."""
    meta, status, autoscale = obj["metadata"], obj.get("status") or {}, _autoscale_status(obj)
    lines = [f"Name:         {meta['name']}", f"Namespace:    {meta.get('namespace', 'default')}",
             f"Kind:         {obj.get('kind')}", "...", "Status:", "  Autoscale:"]
    fields = [("Mode", autoscale.get("mode")), ("Active Profile", autoscale.get("activeProfile")),
              ("Desired Replicas", autoscale.get("desiredReplicas")),
              ("Current Replicas", autoscale.get("currentReplicas")),
              ("Last Evaluation Time", autoscale.get("lastEvaluationTime")),
              ("Last Scale Time", autoscale.get("lastScaleTime"))]
    lines += [f"    {label + ':':<22}{value}" for label, value in fields]
    lines.append("    Metrics:")
    for metric in autoscale.get("metrics") or []:
        value = metric.get("value")
        lines.append(f"      {metric.get('rule')}: {'-' if value is None else f'{value:g}'} % CPU "
                     f"at {_clock(metric.get('time'))}{' (stale)' if metric.get('stale') else ''}"
                     + (f", {metric['error']}" if metric.get("error") else ""))
    lines += ["    Last Decision:", f"      {_decision_sentence(autoscale.get('lastDecision') or {})}",
              "    Recent Decisions (newest first):"]
    lines += [f"      {_decision_sentence(d)}" for d in (autoscale.get("recentDecisions") or [])[:5]]
    lines.append(f"  Replicas:               {status.get('replicas')} ({status.get('readyReplicas')} ready); "
                 f"spec.replicas set by {status.get('replicasOwner') or '-'}")
    lines += ["  Conditions:", f"    {'Type':<18}{'Status':<8}{'Reason':<18}Message"]
    for type_ in ("Ready", "AutoscaleHealthy"):
        c = _condition(obj, type_)
        lines.append(f"    {type_:<18}{c.get('status', '-'):<8}{c.get('reason', '-'):<18}{c.get('message', '')}")
    shown = [e for e in events if e.reason in AUTOSCALE_EVENTS]
    lines += [f"Events:  ({len(events) - len(shown)} more, of the reconciler's condition changes, left out here)",
              f"  {'Type':<8}{'Reason':<21}{'Age':<5}{'From':<6}Message",
              f"  {'----':<8}{'------':<21}{'---':<5}{'----':<6}-------"]
    for e in shown:
        source = (e.source.component if e.source and e.source.component else e.reporting_component) or "-"
        lines.append(f"  {e.type or '-':<8}{e.reason or '-':<21}{_age(e.last_timestamp or e.event_time):<5}"
                     f"{source:<6}{e.message}")
    return "\n".join(lines)


def _autoscale_part(env: Any, custom: Any, keep: bool) -> None:
    import kubernetes.client
    from azure.mgmt.compute import ComputeManagementClient

    manifest = _autoscale_manifest()
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    compute = env.azure_client(ComputeManagementClient, env.operator.config.subscription_id)
    core = kubernetes.client.CoreV1Api(custom.api_client)
    autoscale = manifest["spec"]["autoscale"]
    title = f"kubectl get vmss {name} -w"

    console.print(f"\n[bold]12. kubectl apply[/] a ScaleSet {name} with spec.autoscale and no spec.replicas: "
                  f"{autoscale['minReplicas']} to {autoscale['maxReplicas']} instances, starting at "
                  f"{autoscale['defaultReplicas']}, evaluated every {autoscale['evaluationInterval']} on Azure "
                  "Monitor's CPU of the scale set:")
    for rule in autoscale["rules"]:
        console.print(f"     {_rule_line(rule)}", highlight=False)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, SCALESET_PLURAL, manifest)

    start = int(autoscale["defaultReplicas"])
    console.print(f"[bold]13. the autoscaler writes spec.replicas={start} through /scale, the operator creates the "
                  "instances, the autoscaler reads their CPU[/]")
    obj = _watch(custom, SCALESET_PLURAL, namespace, name, title, AUTOSCALE_COLUMNS, _autoscale_row,
                 _autoscaled_ready(start))
    _require_ready(obj, f"ScaleSet {name}")
    if not _autoscaled_ready(start)(obj):
        raise _Failed(f"ScaleSet {name} was not Ready at {start} with its CPU read within {DEADLINE:.0f} s")

    scale_set_id = compute.virtual_machine_scale_sets.get(AUTOSCALE_RG, name).id  # read outside the admin call
    load = env.admin(lambda admin: admin.set_load(scale_set_id, LOAD_SPIKE))
    per_instance = ", ".join(f"{i['name']} {i['cpu_percent']:g} %" for i in load.get("instances") or [])
    console.print(f"[bold]14. a load spike in the emulator[/] (PUT /_admin/load): {LOAD_SPIKE:g} % CPU on each of "
                  f"{load.get('reference_capacity')} instances ({per_instance}); the same demand spreads over "
                  "however many instances run", highlight=False)

    out_to = start + int(AUTOSCALE_RULES[0]["action"]["value"])
    console.print(f"[bold]15. the autoscaler reads it, rule cpu-high fires: scale-out to {out_to}[/]")
    obj = _watch(custom, SCALESET_PLURAL, namespace, name, title, AUTOSCALE_COLUMNS, _autoscale_row,
                 _autoscaled_ready(out_to))
    _require_ready(obj, f"ScaleSet {name} at {out_to} replicas")
    if not _autoscaled_ready(out_to)(obj):
        raise _Failed(f"ScaleSet {name} was not scaled out to {out_to} within {DEADLINE:.0f} s: "
                      f"{(_autoscale_status(obj).get('lastDecision') or {}).get('message')}")
    capacity = compute.virtual_machine_scale_sets.get(AUTOSCALE_RG, name).as_dict()["sku"]["capacity"]
    if capacity != out_to:
        raise _Failed(f"Azure has capacity {capacity}, expected {out_to}")

    console.print(f"   Azure: capacity {capacity} (virtual_machine_scale_sets.get)")

    # One more evaluation at the new count (the same demand over 4 instances: no rule fires), and the ScaledOut
    # Event (posted in the background): what `kubectl describe` shows once things have settled.
    interval = float(str(autoscale["evaluationInterval"]).rstrip("s"))
    decided_at = _autoscale_status(obj).get("lastEvaluationTime")
    started, events = time.monotonic(), []
    while time.monotonic() - started < 3 * interval + 10:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, SCALESET_PLURAL, name)
        events = _events(core, namespace, name)
        if _autoscale_status(obj).get("lastEvaluationTime") != decided_at and any(
                e.reason == "ScaledOut" for e in events):
            break
        time.sleep(0.2)
    if not any(e.reason == "ScaledOut" for e in events):
        raise _Failed("no ScaledOut Event was posted")
    scale_out = next((d for d in _autoscale_status(obj).get("recentDecisions") or []
                      if d.get("applied") and d.get("from") == start and d.get("to") == out_to), None)
    if scale_out is None:
        raise _Failed(f"status.autoscale.recentDecisions has no applied decision {start} -> {out_to}")
    console.print(f"[bold]16. kubectl describe scaleset {name}[/] (the autoscale part)")
    console.print(_describe(obj, events), highlight=False, markup=False, soft_wrap=False)
    console.print(f"   [bold]the decision:[/] {_decision_sentence(scale_out)}", highlight=False)
    if keep:
        console.print("   --keep: the scale set stays")
        return

    console.print(f"[bold]17. kubectl delete vmss {name}[/]")
    _delete_and_wait(custom, SCALESET_PLURAL, namespace, name)
    console.print("[bold]18. Azure after the delete[/]")
    if not _all_gone([("scale set", lambda: compute.virtual_machine_scale_sets.get(AUTOSCALE_RG, name))]):
        raise _Failed("the autoscaled scale set is still there")
    _nothing_left(env)
    console.print(f"[bold green]Autoscale: a load spike -> cpu-high fired -> {start} -> {out_to} instances, "
                  "decision in status and Events -> kubectl delete -> nothing left.[/]")


#: what the operator creates and never deletes: resource groups it made (README) and the shared virtual network
KEPT_BY_DESIGN = ("Microsoft.Resources/resourceGroups", "Microsoft.Network/virtualNetworks")


def _nothing_left(env: Any) -> None:
    """Every resource in the emulator, across the whole demo: nothing but resource groups and virtual networks."""
    resources = env.admin(lambda admin: admin.resources())
    left = [r for r in resources if r.get("type") not in KEPT_BY_DESIGN]
    for r in left:
        console.print(f"   [red]still in the emulator: {r.get('type')} {r.get('id')}[/]")
    if left:
        raise _Failed(f"{len(left)} resources are left in the emulator")
    kept = ", ".join(f"{sum(r.get('type') == t for r in resources)} {t.rsplit('/', 1)[1]}" for t in KEPT_BY_DESIGN)
    console.print(f"   the emulator holds {len(resources)} resources: {kept} (kept by design, as after "
                  "parts 1 and 2), no VM, scale set, NIC, load balancer, public IP or NSG")


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
            _autoscale_part(env, custom, keep)
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
