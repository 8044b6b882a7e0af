"""``kubectl azvm``: the operator's resources from a platform engineer's terminal.

Installed as the console script ``kubectl-azvm``, so kubectl finds it on PATH as a plugin::

    kubectl azvm status [-n NS | -A]           VirtualMachines and ScaleSets (every kind of compute.azvm.io) as a table
    kubectl azvm status KIND/NAME              one resource: conditions, drift, instances, last scaling decisions
    kubectl azvm reconcile KIND/NAME           look at Azure again now (the reconcile-requested-at annotation)
    kubectl azvm pause|resume KIND/NAME        spec.reconcilePolicy Pause / back to what it was (default Manage)
    kubectl azvm restart NAME|KIND/NAME        restart a VM (or every instance of a ScaleSet) once
    kubectl azvm start|stop|deallocate NAME    spec.powerState Running / Stopped / Deallocated
    kubectl azvm scale SCALESET N              through the /scale subresource, as kubectl scale does
    kubectl azvm describe-autoscale SCALESET   status.autoscale as sentences
    kubectl azvm import ARM_ID [-n NS]         an existing Azure VM or VM scale set as a manifest with
                                               reconcilePolicy Observe, and what Manage would change (comments)

KIND is a kind, its plural, singular or short name (vm, azvm, virtualmachine, ss, vmss, scaleset, ...). The
current kubeconfig and context are used; ``--kubeconfig``, ``--context`` and ``-n`` as in kubectl. ``import`` reads
Azure with the operator's own settings (AZURE_* and AZVM_* environment variables, config.py) and credential
(a service principal from AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, else DefaultAzureCredential); it
writes nothing, neither to Azure nor to the cluster.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, TextIO, cast

import kubernetes.client
import kubernetes.config

from .api import conditions as cond
from .api.constants import (
    GROUP,
    RECONCILE_REQUESTED_ANNOTATION,
    RESTART_REQUESTED_ANNOTATION,
    SCALESET_KIND,
    SCALESET_PLURAL,
    VERSION,
    VM_KIND,
    VM_PLURAL,
)

#: Where ``pause`` keeps the reconcilePolicy it replaced, for ``resume``.
PAUSED_FROM_ANNOTATION = f"{GROUP}/reconcile-policy-before-pause"


class PluginError(Exception):
    """A user error: printed without a traceback, exit status 1."""


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    names: frozenset[str]  #: every name a user may type: kind, plural, singular, short names (lower case)


#: The kinds known without asking the API server (discovery adds any later kind of the group).
BUILTIN_KINDS = (
    Kind(VM_KIND, VM_PLURAL, frozenset({"virtualmachine", "virtualmachines", "vm", "vms", "azvm"})),
    Kind(SCALESET_KIND, SCALESET_PLURAL, frozenset({"scaleset", "scalesets", "ss", "azss", "vmss"})),
)


def discover_kinds(api: kubernetes.client.ApiClient) -> list[Kind]:
    """The group's kinds as the API server serves them; the built-in two if discovery fails."""
    try:
        listing = kubernetes.client.CustomObjectsApi(api).get_api_resources(GROUP, VERSION)
    except Exception:  # noqa: BLE001 - discovery is a convenience
        return list(BUILTIN_KINDS)
    kinds: dict[str, Kind] = {k.kind: k for k in BUILTIN_KINDS}
    for resource in listing.resources or []:
        if "/" in resource.name:
            continue  # subresources (status, scale)
        names = {resource.kind.lower(), resource.name, resource.singular_name or "", *(resource.short_names or [])}
        known = kinds.get(resource.kind)
        kinds[resource.kind] = Kind(resource.kind, resource.name,
                                    frozenset(n.lower() for n in names if n) | (known.names if known else frozenset()))
    builtin = [k.kind for k in BUILTIN_KINDS]
    return sorted(kinds.values(), key=lambda k: (k.kind not in builtin, builtin.index(k.kind)
                                                 if k.kind in builtin else 0, k.kind))


class Session:
    """The cluster connection and the namespace, as kubectl would use them."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
        try:
            self.api: kubernetes.client.ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context)
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise PluginError(f"cannot load the kubeconfig: {exc}") from exc
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.namespace = namespace or _context_namespace(kubeconfig, context)
        self._kinds: list[Kind] | None = None

    @property
    def kinds(self) -> list[Kind]:
        if self._kinds is None:
            self._kinds = discover_kinds(self.api)
        return self._kinds

    def kind(self, name: str) -> Kind:
        wanted = name.lower().split(".", 1)[0]  # virtualmachines.compute.azvm.io
        for kind in self.kinds:
            if wanted in kind.names:
                return kind
        raise PluginError(f"unknown kind {name!r}: one of " + ", ".join(k.kind for k in self.kinds))

    def resolve(self, ref: str, default: Kind | None = None) -> tuple[Kind, str]:
        """KIND/NAME (or NAME with a default kind)."""
        if "/" in ref:
            kind, name = ref.split("/", 1)
            return self.kind(kind), name
        if default is None:
            raise PluginError(f"{ref!r}: give it as KIND/NAME, e.g. vm/{ref} or scaleset/{ref}")
        return default, ref

    def get(self, kind: Kind, name: str) -> dict[str, Any]:
        try:
            return cast(dict[str, Any], self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                                                 kind.plural, name))
        except kubernetes.client.ApiException as exc:
            raise _api_error(exc, kind, name, self.namespace) from exc

    def list(self, kind: Kind, all_namespaces: bool) -> list[dict[str, Any]]:
        if all_namespaces:
            listing = self.custom.list_cluster_custom_object(GROUP, VERSION, kind.plural)
        else:
            listing = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.plural)
        return list(cast(dict[str, Any], listing).get("items") or [])

    def patch(self, kind: Kind, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return cast(dict[str, Any], self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, kind.plural, name, dict(body)))
        except kubernetes.client.ApiException as exc:
            raise _api_error(exc, kind, name, self.namespace) from exc


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    try:
        contexts, active = kubernetes.config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=kubeconfig)
    except (kubernetes.config.ConfigException, OSError):
        return "default"
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


def _api_error(exc: kubernetes.client.ApiException, kind: Kind, name: str, namespace: str) -> PluginError:
    if exc.status == 404:
        return PluginError(f"{kind.kind} {namespace}/{name} not found")
    return PluginError(f"{kind.kind} {namespace}/{name}: {exc.status} {exc.reason}: {exc.body}")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- reading what the operator writes ------------------------------------------------------------------------


def ready_columns(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(READY, REASON): the Ready condition, Unknown while the current generation is not observed yet."""
    status = obj.get("status") or {}
    ready = cond.find(status.get("conditions"), cond.READY)
    if ready is None:
        return "Unknown", "NoStatus"
    generation = (obj.get("metadata") or {}).get("generation")
    observed = ready.get("observedGeneration", status.get("observedGeneration"))
    if generation is not None and observed is not None and observed < generation:
        return "Unknown", f"Generation{generation}NotObserved"
    return str(ready.get("status")), str(ready.get("reason") or "")


def power(obj: Mapping[str, Any]) -> str:
    status = obj.get("status") or {}
    if status.get("powerState"):
        return str(status["powerState"])
    instances = status.get("instances") or []
    counts: dict[str, int] = {}
    for instance in instances:
        state = str(instance.get("powerState") or "Unknown")
        counts[state] = counts.get(state, 0) + 1
    if len(counts) == 1:
        return next(iter(counts))
    return ",".join(f"{state}:{n}" for state, n in sorted(counts.items())) or "-"


def replicas(obj: Mapping[str, Any]) -> str:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if "replicas" not in spec and "replicas" not in status:
        return "-"
    desired = spec.get("replicas", status.get("desiredReplicas"))
    return f"{status.get('readyReplicas', 0)}/{desired if desired is not None else '?'}"


def age(timestamp: Any, now: datetime.datetime | None = None) -> str:
    if not timestamp:
        return "-"
    then = cond.parse_rfc3339(timestamp)
    if then is None:
        return "-"
    seconds = int(((now or datetime.datetime.now(datetime.timezone.utc)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def status_table(objects: Sequence[tuple[Kind, Mapping[str, Any]]], all_namespaces: bool) -> str:
    header = ["KIND", "NAME", "READY", "REASON", "STATUS", "POWER", "SIZE", "REPLICAS", "AGE"]
    if all_namespaces:
        header.insert(1, "NAMESPACE")
    rows = [header]
    for kind, obj in objects:
        meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
        ready, reason = ready_columns(obj)
        row = [kind.kind, str(meta.get("name")), ready, reason or "-", str(status.get("printableStatus") or "-"),
               power(obj), str(spec.get("size") or "-"), replicas(obj), age(meta.get("creationTimestamp"))]
        if all_namespaces:
            row.insert(1, str(meta.get("namespace")))
        rows.append(row)
    return table(rows)


def describe(kind: Kind, obj: Mapping[str, Any]) -> str:
    """One resource: what it is, its conditions, drift, instances and autoscale decisions."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    ready, reason = ready_columns(obj)
    lines = [f"{kind.kind} {meta.get('namespace')}/{meta.get('name')}",
             f"  Ready:        {ready} ({reason})",
             f"  Status:       {status.get('printableStatus') or '-'}",
             f"  Policy:       reconcile {spec.get('reconcilePolicy', 'Manage')}, drift "
             f"{spec.get('driftPolicy', 'Correct')}, deletion {spec.get('deletionPolicy', 'Delete')}",
             f"  Generation:   {meta.get('generation')} (observed {status.get('observedGeneration', '-')}, "
             f"applied {status.get('appliedGeneration', '-')})",
             f"  Azure:        {status.get('azureResourceId') or '-'}",
             f"  Size:         {spec.get('size') or '-'} in {spec.get('location') or '-'}",
             f"  Power:        {power(obj)} (declared {spec.get('powerState', 'Running')})"]
    if replicas(obj) != "-":
        lines.append(f"  Replicas:     {replicas(obj)} ready, {status.get('replicas', 0)} current, "
                     f"{status.get('updatedReplicas', 0)} updated")
    if status.get("privateIP") or status.get("publicIP"):
        lines.append(f"  IP:           {status.get('privateIP') or '-'} (public {status.get('publicIP') or '-'})")
    if (status.get("loadBalancer") or {}).get("ip"):
        lines.append(f"  LoadBalancer: {status['loadBalancer']['ip']}")
    lines.append("Conditions:")
    rows = [["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]]
    for c in status.get("conditions") or []:
        rows.append([str(c.get("type")), str(c.get("status")), str(c.get("reason") or "-"),
                     age(c.get("lastTransitionTime")), str(c.get("message") or "")])
    if len(rows) > 1:
        lines.extend("  " + line for line in table(rows).split("\n"))
    else:
        lines.append("  (none)")
    drift = status.get("drift") or {}
    if drift.get("fields"):
        lines.append(f"Drift ({drift.get('action', '?')} at {drift.get('detectedTime', '?')}):")
        lines.extend(f"  {field}" for field in drift["fields"])
    instances = status.get("instances") or []
    if instances:
        lines.append("Instances:")
        rows = [["ID", "NAME", "ZONE", "POWER", "PROVISIONING", "LATEST MODEL", "HEALTHY", "PROTECTED"]]
        for i in instances:
            rows.append([str(i.get("instanceId")), str(i.get("name")), str(i.get("zone") or "-"),
                         str(i.get("powerState") or "-"), str(i.get("provisioningState") or "-"),
                         _yes(i.get("latestModelApplied")), _yes(i.get("healthy")), _yes(i.get("protected"))])
        lines.extend("  " + line for line in table(rows).split("\n"))
    if status.get("autoscale"):
        lines.append("Autoscale:")
        lines.extend("  " + line for line in autoscale_summary(obj).split("\n"))
    return "\n".join(lines)


def _yes(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")


def decision_sentence(decision: Mapping[str, Any]) -> str:
    """A status.autoscale decision as a sentence: when, what, why."""
    before, after = decision.get("from"), decision.get("to")
    if before is None:
        what = f"set the first count to {after}"
    elif after == before:
        what = f"kept {before} replicas"
    else:
        what = f"scaled {'out' if (after or 0) > before else 'in'} {before} -> {after}"
    if after != before and decision.get("applied") is False:
        what += " (not applied)"
    rule, observed, threshold = decision.get("rule"), decision.get("observed"), decision.get("threshold")
    why = f"reason {decision.get('reason') or '-'}"
    if rule:
        why += f", rule {rule}"
        if observed is not None and threshold is not None:
            why += f" observed {observed:g} vs {threshold:g}"
    recommendation = decision.get("recommendation")
    if recommendation is not None and recommendation != after:
        why += f", the rules asked for {recommendation}"
    sentence = f"{decision.get('time') or '-'}  {what} ({why})"
    if decision.get("message"):
        sentence += f": {decision['message']}"
    return sentence


def autoscale_summary(obj: Mapping[str, Any]) -> str:
    spec = (obj.get("spec") or {}).get("autoscale") or {}
    status = (obj.get("status") or {}).get("autoscale") or {}
    healthy = cond.find((obj.get("status") or {}).get("conditions"), cond.AUTOSCALE_HEALTHY)
    lines = [f"Mode:        {status.get('mode') or spec.get('mode') or '-'}"
             f" (profile {status.get('activeProfile') or 'default'})",
             f"Bounds:      {spec.get('minReplicas', '-')} .. {spec.get('maxReplicas', '-')}",
             f"Replicas:    {status.get('currentReplicas', '-')} now, {status.get('desiredReplicas', '-')} wanted",
             f"Evaluated:   {status.get('lastEvaluationTime') or 'never'}"
             f" (last scale {status.get('lastScaleTime') or 'never'})"]
    if healthy is not None:
        lines.append(f"Healthy:     {healthy.get('status')} ({healthy.get('reason')})"
                     + (f": {healthy.get('message')}" if healthy.get("message") else ""))
    metrics = status.get("metrics") or []
    if metrics:
        lines.append("Metrics:")
        for m in metrics:
            if m.get("error"):
                value = f"unreadable: {m['error']}"
            else:
                value = f"{m.get('value'):g}" if isinstance(m.get("value"), (int, float)) else "-"
                value += " (last known)" if m.get("stale") else ""
            lines.append(f"  {m.get('rule')}: {value} at {m.get('time') or '-'}")
    decisions = list(status.get("recentDecisions") or [])
    if not decisions and status.get("lastDecision"):
        decisions = [status["lastDecision"]]
    lines.append("Decisions (newest first):" if decisions else "Decisions:   none yet")
    lines.extend("  " + decision_sentence(d) for d in decisions)
    return "\n".join(lines)


# ---- commands --------------------------------------------------------------------------------------------------


def cmd_status(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    if args.resource:
        kind, name = session.resolve(args.resource)
        print(describe(kind, session.get(kind, name)), file=out)
        return
    objects = [(kind, obj) for kind in session.kinds for obj in session.list(kind, args.all_namespaces)]
    if not objects:
        where = "any namespace" if args.all_namespaces else f"namespace {session.namespace}"
        print(f"No resources of {GROUP} found in {where}.", file=out)
        return
    objects.sort(key=lambda ko: (str((ko[1].get("metadata") or {}).get("namespace")),
                                 session.kinds.index(ko[0]), str((ko[1].get("metadata") or {}).get("name"))))
    print(status_table(objects, args.all_namespaces), file=out)


def cmd_reconcile(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    kind, name = session.resolve(args.resource)
    session.patch(kind, name, {"metadata": {"annotations": {RECONCILE_REQUESTED_ANNOTATION: _now()}}})
    print(f"{kind.plural}/{name}: reconcile requested", file=out)


def cmd_pause(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    kind, name = session.resolve(args.resource)
    obj = session.get(kind, name)
    current = (obj.get("spec") or {}).get("reconcilePolicy", "Manage")
    if current == "Pause":
        print(f"{kind.plural}/{name}: already paused", file=out)
        return
    session.patch(kind, name, {"metadata": {"annotations": {PAUSED_FROM_ANNOTATION: current}},
                               "spec": {"reconcilePolicy": "Pause"}})
    print(f"{kind.plural}/{name}: paused (reconcilePolicy {current} -> Pause)", file=out)


def cmd_resume(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    kind, name = session.resolve(args.resource)
    obj = session.get(kind, name)
    current = (obj.get("spec") or {}).get("reconcilePolicy", "Manage")
    before = ((obj.get("metadata") or {}).get("annotations") or {}).get(PAUSED_FROM_ANNOTATION) or "Manage"
    if current != "Pause":
        print(f"{kind.plural}/{name}: not paused (reconcilePolicy {current})", file=out)
        return
    session.patch(kind, name, {"metadata": {"annotations": {PAUSED_FROM_ANNOTATION: None}},
                               "spec": {"reconcilePolicy": before}})
    print(f"{kind.plural}/{name}: resumed (reconcilePolicy Pause -> {before})", file=out)


def cmd_restart(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    kind, name = session.resolve(args.resource, default=session.kind(VM_KIND))
    if kind.kind not in (VM_KIND, SCALESET_KIND):
        raise PluginError(f"{kind.kind} cannot be restarted")
    session.patch(kind, name, {"metadata": {"annotations": {RESTART_REQUESTED_ANNOTATION: _now()}}})
    print(f"{kind.plural}/{name}: restart requested", file=out)


def _power_command(state: str) -> Callable[[Session, argparse.Namespace, TextIO], None]:
    def command(session: Session, args: argparse.Namespace, out: TextIO) -> None:
        kind, name = session.resolve(args.resource, default=session.kind(VM_KIND))
        if kind.kind not in (VM_KIND, SCALESET_KIND):
            raise PluginError(f"{kind.kind} has no power state")
        session.patch(kind, name, {"spec": {"powerState": state}})
        print(f"{kind.plural}/{name}: spec.powerState {state}", file=out)

    return command


def cmd_scale(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    kind, name = session.resolve(args.resource, default=session.kind(SCALESET_KIND))
    if kind.kind != SCALESET_KIND:
        raise PluginError(f"{kind.kind} has no /scale subresource")
    if args.replicas < 0:
        raise PluginError("replicas must be 0 or more")
    obj = session.get(kind, name)
    autoscale = (obj.get("spec") or {}).get("autoscale") or {}
    if autoscale.get("mode") == "Enabled":
        print(f"warning: {kind.plural}/{name} is autoscaled: the autoscaler will write spec.replicas again",
              file=sys.stderr)
    try:
        session.custom.patch_namespaced_custom_object_scale(GROUP, VERSION, session.namespace, kind.plural, name,
                                                            {"spec": {"replicas": args.replicas}})
    except kubernetes.client.ApiException as exc:
        raise _api_error(exc, kind, name, session.namespace) from exc
    print(f"{kind.plural}/{name}: scaled to {args.replicas}", file=out)


def cmd_describe_autoscale(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    kind, name = session.resolve(args.resource, default=session.kind(SCALESET_KIND))
    obj = session.get(kind, name)
    if not (obj.get("spec") or {}).get("autoscale") and not (obj.get("status") or {}).get("autoscale"):
        raise PluginError(f"{kind.plural}/{name} has no spec.autoscale")
    print(f"{kind.kind} {session.namespace}/{name}", file=out)
    print(autoscale_summary(obj), file=out)


# ---- import ---------------------------------------------------------------------------------------------------


async def read_azure(config: Any, arm_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The I/O of ``import``: the VM (with its instance view and primary network interface) or the scale set, as
    ARM returns them, through the operator's own clients."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    from .azure import ids
    from .azure.clients import AzureClients
    from .azure.virtualmachine import vm_primary_nic_id

    rid = ids.ResourceId.parse(arm_id)
    if rid is None or rid.namespace.lower() != "microsoft.compute" or rid.type.lower() not in (
            "virtualmachines", "virtualmachinescalesets"):
        raise PluginError(f"{arm_id!r} is not the ARM id of a VM (.../providers/Microsoft.Compute/virtualMachines/"
                          "NAME) or a VM scale set (.../virtualMachineScaleSets/NAME)")
    clients = AzureClients(config)
    try:
        az = clients.for_subscription(rid.subscription)
        if rid.type.lower() == "virtualmachines":
            vm = (await az.compute.virtual_machines.get(rid.resource_group, rid.name, expand="instanceView")).as_dict()
            nic = None
            nic_id = ids.ResourceId.parse(vm_primary_nic_id(vm))
            if nic_id is not None:
                try:
                    nic = (await clients.for_subscription(nic_id.subscription).network.network_interfaces.get(
                        nic_id.resource_group, nic_id.name)).as_dict()
                except ResourceNotFoundError:
                    nic = None
            return vm, nic
        scale_set = (await az.compute.virtual_machine_scale_sets.get(rid.resource_group, rid.name)).as_dict()
        return scale_set, None
    except ResourceNotFoundError as exc:
        raise PluginError(f"{arm_id} not found in Azure") from exc
    except AzureError as exc:
        raise PluginError(f"reading {arm_id} from Azure failed: {exc}") from exc
    finally:
        await clients.close()


def import_manifest(arm_id: str, namespace: str, name: str | None, cluster_id: str | None) -> str:
    """The manifest (YAML) with its preview as comments: the pure translation (azure/importing.py) of what
    ``read_azure`` read."""
    import asyncio

    import yaml

    from .azure import importing
    from .config import OperatorConfig

    config = OperatorConfig.from_env(cluster_id=cluster_id)
    arm, nic = asyncio.run(read_azure(config, arm_id))
    try:
        imported = importing.import_resource(arm, namespace=namespace, cluster_id=config.cluster_id, name=name,
                                             nic=nic)
    except importing.NotImportable as exc:
        raise PluginError(str(exc)) from exc
    return imported.comments() + str(yaml.safe_dump(imported.manifest, sort_keys=False))


def cmd_import(args: argparse.Namespace, out: TextIO) -> None:
    namespace = getattr(args, "namespace", None) or _context_namespace(getattr(args, "kubeconfig", None),
                                                                       getattr(args, "context", None))
    out.write(import_manifest(args.arm_id, namespace, args.name, args.cluster_id))


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="the kubeconfig (default $KUBECONFIG, "
                                                                         "~/.kube/config)")
    common.add_argument("--context", default=argparse.SUPPRESS, help="the kubeconfig context")
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help="default: the context's namespace")
    main = argparse.ArgumentParser(prog="kubectl azvm", parents=[common],
                                   description="Azure VMs and VM Scale Sets (azure-vm-operator) from kubectl.")
    sub = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[Session, argparse.Namespace, TextIO], None], help_: str,
            resource: str | None = "KIND/NAME") -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[common], help=help_, description=help_)
        if resource:
            command.add_argument("resource", metavar=resource)
        command.set_defaults(func=func)
        return command

    status = add("status", cmd_status, "a table of every resource, or one resource in detail", None)
    status.add_argument("resource", nargs="?", metavar="KIND/NAME")
    status.add_argument("-A", "--all-namespaces", action="store_true")
    add("reconcile", cmd_reconcile, "look at Azure again now (annotation " + RECONCILE_REQUESTED_ANNOTATION + ")")
    add("pause", cmd_pause, "spec.reconcilePolicy Pause: the operator no longer touches Azure")
    add("resume", cmd_resume, "spec.reconcilePolicy back to what it was before pause (default Manage)")
    add("restart", cmd_restart, "restart a VM, or every instance of a ScaleSet, once", "[KIND/]NAME")
    for name, state in (("start", "Running"), ("stop", "Stopped"), ("deallocate", "Deallocated")):
        add(name, _power_command(state), f"spec.powerState {state}", "[KIND/]NAME")
    scale = add("scale", cmd_scale, "set a ScaleSet's replicas through /scale", "[scaleset/]NAME")
    scale.add_argument("replicas", type=int)
    add("describe-autoscale", cmd_describe_autoscale, "status.autoscale of a ScaleSet as sentences",
        "[scaleset/]NAME")
    imp = sub.add_parser("import", parents=[common], help="print an existing Azure VM or VM scale set as a manifest "
                         "(reconcilePolicy Observe) with what Manage would change",
                         description="Reads the resource with the operator's Azure settings (AZURE_*, AZVM_* "
                         "environment variables) and prints a VirtualMachine or ScaleSet manifest; writes nothing.")
    imp.add_argument("arm_id", metavar="ARM_ID")
    imp.add_argument("--name", help="metadata.name (default: the Azure name, lower case)")
    imp.add_argument("--cluster-id", default=None,
                     help="the operator's --cluster-id, for the ownership tag Manage would write [AZVM_CLUSTER_ID]")
    imp.set_defaults(func=None, import_=True)
    return main


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if getattr(args, "import_", False):  # Azure only: no cluster connection needed
            cmd_import(args, out or sys.stdout)
            return 0
        session = Session(getattr(args, "kubeconfig", None), getattr(args, "context", None),
                          getattr(args, "namespace", None))
        args.func(session, args, out or sys.stdout)
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
