"""Microsoft.Insights metrics of VMs and scale sets, computed from a simulated CPU load; a Prometheus view of it.

Load model (set through ``PUT /_admin/load``, in memory only):

* A VM with load ``cpu_percent`` reports ``min(100, cpu_percent)`` while it is running.
* A scale set with load ``cpu_percent`` and ``reference_capacity`` (by default the set's ``sku.capacity`` when the
  load was set) has a total demand of ``cpu_percent * reference_capacity`` spread over its running instances: each
  running instance reports ``min(100, cpu_percent * reference_capacity / running_instances)``. Scaling out lowers the
  per-instance CPU, scaling in raises it.
* Only instances whose power state is ``running`` report CPU: starting, stopping, stopped, deallocating and
  deallocated instances report nothing (no data point), as in Azure. A resource without a load reports 0 %.

History: the module keeps, per resource, samples ``(time, per-instance CPU)``. A sample is taken when the load is set
and whenever the emulator looks at the resource (metrics query, Prometheus scrape, ``GET /_admin/load``) and finds
a different per-instance CPU. A change of the running instances is dated at the last provisioning completion of the
instances involved when that is known, else when it is noticed. Before the first sample the resource is assumed to
have been as in that sample since its creation (``timeCreated``).

Series: piecewise constant, per minute. The value of minute ``[m, m+1min)`` of an instance is its CPU in the sample in
effect at the end of that minute (at *now* for the current minute), or nothing if it was not running then or the
resource did not exist yet. A data point of the requested ``interval`` aggregates the per-minute values of its
minutes (of every instance, unless the series is split by ``VMName``): ``average``, ``minimum``, ``maximum``,
``total`` (sum) and ``count`` (number of values); a point without values carries only its ``timeStamp``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .. import ids, util
from ..errors import ArmError
from ..routing import RESOURCE_GROUP, SUBSCRIPTION, Call, Reply, Router
from ..services import Services
from ..store import Resource, Store

VM = "Microsoft.Compute/virtualMachines"
VMSS = "Microsoft.Compute/virtualMachineScaleSets"
VMSS_VM = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
INSIGHTS = "Microsoft.Insights"

#: The metrics of the emulator: name -> (unit, primary aggregation, description).
METRICS: dict[str, tuple[str, str, str]] = {
    "Percentage CPU": (
        "Percent",
        "Average",
        "The percentage of allocated compute units that are currently in use by the Virtual Machine(s)",
    ),
}
AGGREGATIONS = {"average": "average", "minimum": "minimum", "maximum": "maximum", "total": "total", "count": "count"}
DIMENSION = "VMName"
HISTORY_SECONDS = 24 * 3600
MAX_POINTS = 20_000


@dataclass
class Instance:
    """One VM of a resource (a VM is its own single instance)."""

    name: str
    instance_id: str | None
    running: bool
    changed: float | None = None  #: epoch seconds of its last provisioning completion, if known


@dataclass
class Target:
    """A VM or scale set as the metrics see it."""

    resource: Resource
    kind: str  # "vm" | "vmss"
    instances: list[Instance]
    capacity: int
    created: float | None

    @property
    def id(self) -> str:
        return self.resource.id

    @property
    def running(self) -> int:
        return sum(1 for i in self.instances if i.running)


@dataclass
class Load:
    cpu_percent: float
    reference_capacity: int | None
    since: float


@dataclass
class Sample:
    time: float
    cpu: dict[str, float | None]  # instance name -> CPU % (None: not running)


@dataclass
class History:
    samples: list[Sample] = field(default_factory=list)


#: ``(store, resource) -> [Instance]`` of a scale set; replaceable (e.g. by the scale sets provider).
InstanceLookup = Callable[[Store, Resource], list[Instance]]


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def power_state(resource: Resource) -> str | None:
    """``running``/``stopped``/... from the emulator's private state, or from an instance view in the body."""
    power = resource.private.get("power")
    if isinstance(power, str):
        return power
    statuses = util.get_path(resource.body, "properties", "instanceView", "statuses") or []
    for status in statuses:
        code = status.get("code", "") if isinstance(status, dict) else ""
        if code.startswith("PowerState/"):
            return str(code.split("/", 1)[1])
    return None


def scale_set_instances(store: Store, scale_set: Resource) -> list[Instance]:
    """Instances stored as ``virtualMachineScaleSets/virtualMachines`` resources under the scale set."""
    found = []
    for vm in store.list(VMSS_VM, scale_set.id):
        instance_id = vm.body.get("instanceId") or vm.body.get("name", "").rsplit("_", 1)[-1]
        name = util.get_path(vm.body, "properties", "osProfile", "computerName") or vm.body.get("name") or instance_id
        found.append(Instance(
            name=str(vm.body.get("name") or name),
            instance_id=str(instance_id),
            running=power_state(vm) == "running" and vm.properties.get("provisioningState") != "Deleting",
            changed=_parse_time(vm.private.get("provisioning_time")),
        ))
    return found


class InsightsProvider:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self.instance_lookup: InstanceLookup = scale_set_instances
        self.loads: dict[str, Load] = {}
        self.histories: dict[str, History] = {}

    def register(self, router: Router) -> None:
        for resource_type in ("virtualMachines", "virtualMachineScaleSets"):
            metrics = router.register(RESOURCE_GROUP, "Microsoft.Compute", (resource_type, "providers", "metrics"))
            metrics.on_collection("GET", self.get_metrics)
            definitions = router.register(
                RESOURCE_GROUP, "Microsoft.Compute", (resource_type, "providers", "metricDefinitions")
            )
            definitions.on_collection("GET", self.get_metric_definitions)
        router.register(SUBSCRIPTION, INSIGHTS, ("metrics",)).on_collection("GET", self.get_subscription_metrics)

    # resources ------------------------------------------------------------------------------------------------

    def target(self, resource_id: str) -> Target | None:
        resource = self.store.get(resource_id)
        if resource is None:
            return None
        created = _parse_time(util.get_path(resource.body, "properties", "timeCreated"))
        if resource.type.lower() == VM.lower():
            instance = Instance(
                name=resource.body["name"],
                instance_id=None,
                running=power_state(resource) == "running",
                changed=_parse_time(resource.private.get("provisioning_time")),
            )
            return Target(resource, "vm", [instance], 1, created)
        if resource.type.lower() == VMSS.lower():
            capacity = int(util.get_path(resource.body, "sku", "capacity") or 0)
            return Target(resource, "vmss", self.instance_lookup(self.store, resource), capacity, created)
        return None

    def targets(self, subscription: str | None = None) -> list[Target]:
        scope = ids.subscription_id(subscription) if subscription else None
        found = []
        for type_name in (VM, VMSS):
            for resource in self.store.list(type_name, scope):
                target = self.target(resource.id)
                if target is not None:
                    found.append(target)
        return found

    # load -----------------------------------------------------------------------------------------------------

    def set_load(self, resource_id: str, cpu_percent: float, reference_capacity: int | None = None) -> dict[str, Any]:
        target = self.target(resource_id)
        if target is None:
            raise ArmError(404, "ResourceNotFound", f"No virtual machine or scale set '{resource_id}'.")
        if not (cpu_percent >= 0 and math.isfinite(cpu_percent)):
            raise ArmError(400, "BadRequest", "cpu_percent must be a number >= 0")
        if reference_capacity is not None and reference_capacity < 1:
            raise ArmError(400, "BadRequest", "reference_capacity must be >= 1")
        if target.kind == "vmss" and reference_capacity is None:
            reference_capacity = max(1, target.capacity)
        now = util.now()
        self.observe(target, now)
        self.loads[ids.key(target.id)] = Load(float(cpu_percent), reference_capacity, now)
        self.observe(target, now, load_changed=True)
        return self.describe(target)

    def current_cpu(self, target: Target) -> dict[str, float | None]:
        """Per-instance CPU now (None for instances that are not running)."""
        load = self.loads.get(ids.key(target.id))
        percent = load.cpu_percent if load is not None else 0.0
        running = target.running
        if target.kind == "vmss" and load is not None and running:
            percent = percent * (load.reference_capacity or max(1, target.capacity)) / running
        value = min(100.0, percent)
        return {i.name: (value if i.running else None) for i in target.instances}

    def observe(self, target: Target, now: float | None = None, *, load_changed: bool = False) -> dict[str, float | None]:
        """Record a sample if the per-instance CPU changed; returns the current per-instance CPU."""
        now = util.now() if now is None else now
        cpu = self.current_cpu(target)
        history = self.histories.setdefault(ids.key(target.id), History())
        samples = history.samples
        if samples and samples[-1].cpu == cpu:
            return cpu
        when = now
        if samples and not load_changed:
            previous = samples[-1]
            changed = [
                i.changed for i in target.instances
                if i.changed is not None and (previous.cpu.get(i.name) is None) != (cpu.get(i.name) is None)
            ]
            if changed:
                when = min(now, max(previous.time, max(changed)))
        if samples and samples[-1].time >= when:
            samples[-1] = Sample(samples[-1].time, cpu)
        else:
            samples.append(Sample(when, cpu))
        horizon = now - HISTORY_SECONDS
        while len(samples) > 1 and samples[1].time < horizon:
            samples.pop(0)
        return cpu

    def describe(self, target: Target) -> dict[str, Any]:
        load = self.loads.get(ids.key(target.id))
        cpu = self.observe(target)
        return {
            "resource_id": target.id,
            "kind": target.kind,
            "cpu_percent": load.cpu_percent if load else 0.0,
            "reference_capacity": load.reference_capacity if load else None,
            "since": util.iso(load.since) if load else None,
            "capacity": target.capacity,
            "running_instances": target.running,
            "instances": [
                {"name": i.name, "instance_id": i.instance_id, "running": i.running, "cpu_percent": cpu.get(i.name)}
                for i in target.instances
            ],
        }

    def describe_all(self) -> list[dict[str, Any]]:
        return [self.describe(target) for target in self.targets()]

    # series ---------------------------------------------------------------------------------------------------

    def minute_values(self, target: Target, minute_start: float, now: float) -> dict[str, float | None]:
        """Per-instance CPU of the minute starting at ``minute_start`` (empty if in the future)."""
        if minute_start > now:
            return {}
        at = min(minute_start + 60.0, now)
        if target.created is not None and at < target.created:
            return {}
        samples = self.histories.get(ids.key(target.id), History()).samples
        chosen: Sample | None = None
        for sample in samples:
            if sample.time <= at:
                chosen = sample
            else:
                break
        if chosen is None:
            chosen = samples[0] if samples else None
        return dict(chosen.cpu) if chosen is not None else {}

    def series(
        self,
        target: Target,
        start: float,
        end: float,
        grain: float | None,
        aggregations: list[str],
        split: str | None,
    ) -> list[tuple[str | None, list[dict[str, Any]]]]:
        """``[(instance name or None, data points)]``; ``split`` is None (aggregate), ``*`` or an instance name."""
        now = util.now()
        self.observe(target, now)
        step = grain if grain is not None else max(60.0, end - start)
        points = []
        t = start
        while t < end:
            points.append(t)
            t += step
        per_point: list[list[dict[str, float | None]]] = []
        for point in points:
            minutes = []
            m = point
            while m < min(point + step, end):
                minutes.append(self.minute_values(target, m, now))
                m += 60.0
            per_point.append(minutes)
        if split is None:
            keys: list[str | None] = [None]
        elif split == "*":
            keys = [i.name for i in target.instances]
        else:
            keys = [i.name for i in target.instances if i.name.lower() == split.lower()]
        result = []
        for key in keys:
            data = []
            for point, minutes in zip(points, per_point, strict=True):
                values = [
                    v for minute in minutes for name, v in minute.items() if v is not None and (key is None or name == key)
                ]
                data.append(_data_point(point, values, aggregations))
            result.append((key, data))
        return result

    # ARM handlers ---------------------------------------------------------------------------------------------

    def _resource_of(self, call: Call) -> Resource:
        assert call.resource_group is not None
        if len(call.names) < 2 or call.names[-1].lower() != INSIGHTS.lower():
            raise ArmError(
                404, "InvalidResourceNamespace", f"The resource namespace '{call.names[-1]}' is invalid."
            )
        resource_id = ids.resource_id(
            call.subscription, call.resource_group, call.namespace, call.types[:1], call.names[:1]
        )
        self.services.require_resource_group(call.subscription, call.resource_group, for_write=False)
        resource = self.store.get(resource_id)
        if resource is None:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource '{call.namespace}/{call.types[0]}/{call.names[0]}' under resource group "
                f"'{call.resource_group}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        return resource

    def get_metric_definitions(self, call: Call) -> Reply:
        resource = self._resource_of(call)
        namespace = resource.type
        value = []
        for name, (unit, primary, description) in METRICS.items():
            value.append({
                "id": f"{resource.id}/providers/microsoft.insights/metricdefinitions/{name}",
                "resourceId": resource.id,
                "namespace": namespace,
                "name": {"value": name, "localizedValue": name},
                "displayDescription": description,
                "isDimensionRequired": False,
                "unit": unit,
                "primaryAggregationType": primary,
                "supportedAggregationTypes": ["None", "Average", "Minimum", "Maximum", "Total", "Count"],
                "metricAvailabilities": [{"timeGrain": g, "retention": "P93D"} for g in
                                         ("PT1M", "PT5M", "PT15M", "PT30M", "PT1H", "PT6H", "PT12H", "P1D")],
                "dimensions": [{"value": DIMENSION, "localizedValue": DIMENSION}] if resource.type == VMSS else [],
            })
        return Reply(200, {"value": value})

    def get_metrics(self, call: Call) -> Reply:
        resource = self._resource_of(call)
        target = self.target(resource.id)
        assert target is not None
        query = _MetricsQuery.parse(call, resource.type)
        if target.kind != "vmss" and query.split is not None:
            raise _bad_request(
                f"Metric: {query.metrics[0]} does not support requested dimension combination: {DIMENSION}, "
                "supported ones are: , please check metrics definitions for more details."
            )
        value = []
        cost = 0
        for metric in query.metrics:
            unit, _, description = METRICS[metric]
            timeseries = []
            for key, data in self.series(target, query.start, query.end, query.grain, query.aggregations, query.split):
                metadata = [] if key is None else [
                    {"name": {"value": DIMENSION.lower(), "localizedValue": DIMENSION.lower()}, "value": key}
                ]
                timeseries.append({"metadatavalues": metadata, "data": data})
                cost += len(data)
            value.append(_metric_value(f"{resource.id}/providers/Microsoft.Insights/metrics/{metric}", metric,
                                       description, unit, timeseries))
        return Reply(200, query.envelope(cost, value, resource.body.get("location", "")))

    def get_subscription_metrics(self, call: Call) -> Reply:
        """Multi-resource metrics: ``/subscriptions/{sub}/providers/Microsoft.Insights/metrics?region=&metricnamespace=``."""
        namespace = (call.param("metricnamespace") or "").lower()
        types = {VM.lower(): VM, VMSS.lower(): VMSS}
        if namespace not in types:
            raise _bad_request(
                "Multi-resource metrics need metricnamespace microsoft.compute/virtualmachines or "
                "microsoft.compute/virtualmachinescalesets."
            )
        region = util.normalize_location(call.param("region") or "")
        query = _MetricsQuery.parse(call, types[namespace])
        value = []
        cost = 0
        for metric in query.metrics:
            unit, _, description = METRICS[metric]
            timeseries = []
            for resource in self.store.list(types[namespace], ids.subscription_id(call.subscription)):
                if region and resource.body.get("location") != region:
                    continue
                target = self.target(resource.id)
                assert target is not None
                for _, data in self.series(target, query.start, query.end, query.grain, query.aggregations, None):
                    metadata = [{"name": {"value": "microsoft.resourceid", "localizedValue": "microsoft.resourceid"},
                                 "value": resource.id}]
                    timeseries.append({"metadatavalues": metadata, "data": data})
                    cost += len(data)
            value.append(_metric_value(f"subscriptions/{call.subscription}/providers/Microsoft.Insights/metrics/{metric}",
                                       metric, description, unit, timeseries))
        return Reply(200, query.envelope(cost, value, region))

    # Prometheus -----------------------------------------------------------------------------------------------

    def collector(self) -> Collector:
        return _PrometheusCollector(self)


class _PrometheusCollector(Collector):
    def __init__(self, insights: InsightsProvider) -> None:
        self.insights = insights

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        cpu = GaugeMetricFamily(
            "azure_vm_cpu_percent",
            "Simulated CPU of each running VM and scale set instance (percent)",
            labels=["subscription", "resource_group", "vm", "scale_set", "instance_id"],
        )
        capacity = GaugeMetricFamily(
            "azure_vmss_capacity", "Scale set capacity (sku.capacity)",
            labels=["subscription", "resource_group", "scale_set"],
        )
        running = GaugeMetricFamily(
            "azure_vmss_running_instances", "Scale set instances whose power state is running",
            labels=["subscription", "resource_group", "scale_set"],
        )
        for target in self.insights.targets():
            parsed = ids.parse(target.id)
            if parsed is None:
                continue
            values = self.insights.observe(target)
            name = target.resource.body.get("name", parsed.name)
            if target.kind == "vm":
                value = values.get(target.instances[0].name)
                if value is not None:
                    cpu.add_metric([parsed.subscription, parsed.resource_group, name, "", ""], value)
                continue
            capacity.add_metric([parsed.subscription, parsed.resource_group, name], target.capacity)
            running.add_metric([parsed.subscription, parsed.resource_group, name], target.running)
            for instance in target.instances:
                value = values.get(instance.name)
                if value is not None:
                    cpu.add_metric(
                        [parsed.subscription, parsed.resource_group, instance.name, name, instance.instance_id or ""],
                        value,
                    )
        yield cpu
        yield capacity
        yield running


# query parsing ------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$", re.I)


def parse_duration(text: str) -> float | None:
    match = _DURATION.match(text.strip())
    if match is None or text.strip().upper() in ("P", "PT"):
        return None
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds % 86400 == 0:
        return f"P{seconds // 86400}D"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return text


def _format_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_instant(text: str) -> float | None:
    value = _parse_time(text.strip())
    return value


def _bad_request(message: str) -> ArmError:
    return ArmError(400, "BadRequest", message)


@dataclass
class _MetricsQuery:
    metrics: list[str]
    aggregations: list[str]
    start: float
    end: float
    grain: float | None  # None = FULL
    namespace: str
    split: str | None

    @classmethod
    def parse(cls, call: Call, resource_type: str) -> _MetricsQuery:
        namespace = call.param("metricnamespace")
        if namespace and namespace.lower() != resource_type.lower():
            raise _bad_request(
                f"Metric namespace '{namespace}' is not supported for resource type '{resource_type}'; "
                f"supported: {resource_type}."
            )
        names = [n.strip() for n in (call.param("metricnames") or "Percentage CPU").split(",") if n.strip()]
        metrics = []
        for name in names:
            known = next((m for m in METRICS if m.lower() == name.lower()), None)
            if known is None:
                provider, _, type_rest = resource_type.partition("/")
                raise _bad_request(
                    f"Failed to find metric configuration for provider: {provider}, resource Type: {type_rest}, "
                    f"metric: {name}, Valid metrics: {','.join(METRICS)}"
                )
            metrics.append(known)
        aggregations = []
        for item in (call.param("aggregation") or METRICS[metrics[0]][1]).split(","):
            key = item.strip().lower()
            if not key:
                continue
            if key not in AGGREGATIONS:
                raise _bad_request(
                    f"Invalid aggregation '{item.strip()}'. Valid aggregations are: Average, Count, Minimum, Maximum, "
                    "Total."
                )
            if AGGREGATIONS[key] not in aggregations:
                aggregations.append(AGGREGATIONS[key])
        interval_text = (call.param("interval") or "PT1M").strip()
        grain: float | None
        if interval_text.upper() == "FULL":
            grain = None
        else:
            grain = parse_duration(interval_text)
            if grain is None or grain < 60 or grain % 60:
                raise _bad_request(
                    f"Invalid interval '{interval_text}': an ISO 8601 duration of whole minutes (PT1M or more), or FULL."
                )
        start, end = _parse_timespan(call.param("timespan"), grain)
        if grain is not None and (end - start) / grain > MAX_POINTS:
            raise _bad_request(f"The requested timespan and interval give more than {MAX_POINTS} data points.")
        split = _parse_filter(call.param("$filter"))
        return cls(metrics, aggregations, start, end, grain, namespace or resource_type, split)

    def envelope(self, cost: int, value: list[dict[str, Any]], region: str) -> dict[str, Any]:
        return {
            "cost": cost,
            "timespan": f"{_format_time(self.start)}/{_format_time(self.end)}",
            "interval": "FULL" if self.grain is None else format_duration(self.grain),
            "value": value,
            "namespace": self.namespace,
            "resourceregion": region,
        }


def _parse_timespan(text: str | None, grain: float | None) -> tuple[float, float]:
    now = util.now()
    if not text:
        start, end = now - 3600, now
    else:
        parts = text.strip().split("/")
        if len(parts) == 1:
            duration = parse_duration(parts[0])
            if duration is None:
                raise _bad_request(f"Invalid timespan '{text}'.")
            start, end = now - duration, now
        elif len(parts) == 2:
            first, second = parts
            first_time, second_time = _parse_instant(first), _parse_instant(second)
            if first_time is not None and second_time is not None:
                start, end = first_time, second_time
            elif first_time is not None and parse_duration(second) is not None:
                start, end = first_time, first_time + (parse_duration(second) or 0)
            elif second_time is not None and parse_duration(first) is not None:
                start, end = second_time - (parse_duration(first) or 0), second_time
            else:
                raise _bad_request(f"Invalid timespan '{text}': use start/end in ISO 8601.")
        else:
            raise _bad_request(f"Invalid timespan '{text}'.")
    if end <= start:
        raise _bad_request(f"Invalid timespan '{text}': the end must be after the start.")
    align = 60.0 if grain is None else min(grain, 86400.0)
    start = math.floor(start / align) * align
    return start, end


_FILTER = re.compile(r"^\s*(?P<dim>[\w.]+)\s+eq\s+'(?P<value>[^']*)'\s*$", re.I)


def _parse_filter(text: str | None) -> str | None:
    """The ``VMName`` to split by (``*`` = every instance), or None. ``Microsoft.ResourceId eq '*'`` (multi-resource
    queries: one series per resource anyway) is accepted."""
    if not text or not text.strip():
        return None
    match = _FILTER.match(text)
    if match is not None and match.group("dim").lower() == "microsoft.resourceid" and match.group("value") == "*":
        return None
    if match is None or match.group("dim").lower() != DIMENSION.lower():
        raise _bad_request(
            f"Invalid $filter '{text}': the emulator supports \"{DIMENSION} eq '*'\" and \"{DIMENSION} eq '<name>'\"."
        )
    return match.group("value")


def _data_point(point: float, values: list[float], aggregations: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"timeStamp": _format_time(point)}
    if not values:
        return data
    for aggregation in aggregations:
        if aggregation == "average":
            data["average"] = round(sum(values) / len(values), 6)
        elif aggregation == "minimum":
            data["minimum"] = min(values)
        elif aggregation == "maximum":
            data["maximum"] = max(values)
        elif aggregation == "total":
            data["total"] = round(sum(values), 6)
        elif aggregation == "count":
            data["count"] = float(len(values))
    return data


def _metric_value(
    metric_id: str, metric: str, description: str, unit: str, timeseries: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": metric_id,
        "type": "Microsoft.Insights/metrics",
        "name": {"value": metric, "localizedValue": metric},
        "displayDescription": description,
        "unit": unit,
        "timeseries": timeseries,
        "errorCode": "Success",
    }


__all__ = ["InsightsProvider", "Instance", "Target", "power_state", "scale_set_instances"]
