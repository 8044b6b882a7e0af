"""Prometheus metrics of the operator (prometheus-client's default registry, served on --metrics-port)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter(
    "azvm_reconcile_total", "Reconciliations by kind and result (success, in_progress, transient_error, permanent_error).",
    ["kind", "result"],
)
RECONCILE_SECONDS = Histogram(
    "azvm_reconcile_duration_seconds", "Duration of one reconciliation.", ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
AZURE_OPERATIONS = Counter(
    "azvm_azure_operations_total", "Azure write operations started by the operator, by kind and operation.",
    ["kind", "operation"],
)
DRIFT_CORRECTIONS = Counter(
    "azvm_drift_corrections_total", "Fields found different in Azure and corrected.", ["kind", "field"],
)
ARM_REQUESTS = Counter(
    "azvm_arm_requests_total", "HTTP requests sent to Azure Resource Manager (every attempt, retries included).",
    ["method", "status"],
)
ARM_RATELIMIT_REMAINING = Gauge(
    "azvm_arm_ratelimit_remaining",
    "Requests left in an ARM / Microsoft.Compute throttling bucket, from the last response's headers.",
    ["subscription", "bucket"],
)
ARM_THROTTLE_WAIT = Histogram(
    "azvm_arm_throttle_wait_seconds", "Time a request waited for a token of one client-side throttling bucket "
    "(azure/throttle.py; per-resource buckets are labelled '<policy>:resource').", ["subscription", "bucket"],
    buckets=(0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
ARM_THROTTLED = Counter(
    "azvm_arm_throttled_responses_total", "429 answers from ARM, by the client-side bucket they blocked (the one Azure "
    "named as empty, else each bucket of the request that Azure did not report as holding a token).",
    ["subscription", "bucket"],
)
ARM_THROTTLE_TOKENS = Gauge(
    "azvm_arm_throttle_tokens", "Tokens the client-side throttle estimates are left in a subscription-wide bucket.",
    ["subscription", "bucket"],
)
ARM_BREAKER_STATE = Gauge(
    "azvm_arm_circuit_breaker_state", "The ARM circuit breaker of a subscription: 0 closed, 1 half-open, 2 open "
    "(requests wait).", ["subscription"],
)
VM_INFO = Gauge(
    "azvm_virtualmachine_info", "One series per VirtualMachine resource, labelled with what Azure reports.",
    ["namespace", "name", "size", "location", "power_state", "ready"],
)

IMAGE_INFO = Gauge(
    "azvm_image_info", "One series per Image resource: its location, OS type and whether it is Ready.",
    ["namespace", "name", "location", "os_type", "ready"],
)
AVSET_MEMBERS = Gauge(
    "azvm_availabilityset_members", "Member VMs of an AvailabilitySet resource's availability set.",
    ["namespace", "name", "location", "ready"],
)


SCALESET_REPLICAS = Gauge(
    "azvm_scaleset_replicas", "Instances of a ScaleSet: desired (the count being converged to), current (exist), "
    "ready (running and healthy) and updated (on the latest model).", ["namespace", "name", "state"],
)
SCALESET_CPU = Gauge(
    "azvm_scaleset_cpu_percent", "A ScaleSet's average CPU as Azure Monitor reports it (Percentage CPU, 5-minute "
    "window), read once per observation.", ["namespace", "name"],
)
SCALESET_OUTDATED = Gauge(
    "azvm_scaleset_rollout_outdated_instances", "Instances of a ScaleSet not yet on the latest model.",
    ["namespace", "name"],
)
SCALESET_INSTANCES = Gauge(
    "azvm_scaleset_instances", "Instances of a ScaleSet by power state.", ["namespace", "name", "power_state"],
)

AUTOSCALE_METRIC = Gauge(
    "azvm_autoscale_metric_value", "The value an autoscale rule of the active profile last read (Azure Monitor or "
    "Prometheus); while reads fail, the last good one within its staleness bound (2 x evaluationInterval), then no "
    "series.", ["namespace", "name", "rule"],
)
AUTOSCALE_THRESHOLD = Gauge(
    "azvm_autoscale_rule_threshold", "An autoscale rule's threshold (threshold rules) or target (target rules).",
    ["namespace", "name", "rule"],
)
AUTOSCALE_REPLICAS = Gauge(
    "azvm_autoscale_replicas", "The autoscaler's view of a ScaleSet: desired (its last decision), current "
    "(spec.replicas when it decided), min and max (of the active profile).", ["namespace", "name", "bound"],
)
AUTOSCALE_DECISIONS = Counter(
    "azvm_autoscale_decisions_total", "Autoscale evaluations by the direction decided (Up, Down, None) and the "
    "reason (RuleFired, Cooldown, FlappingAvoided, MetricsMissing, ...).", ["namespace", "name", "direction", "reason"],
)
AUTOSCALE_ERRORS = Counter(
    "azvm_autoscale_evaluation_errors_total", "Failed metric reads and scale writes of the autoscaler, by rule "
    "(empty for a write) and reason.", ["namespace", "name", "rule", "reason"],
)
AUTOSCALE_SECONDS = Histogram(
    "azvm_autoscale_evaluation_duration_seconds", "Time one autoscale evaluation took (metric reads included).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def serve(port: int, host: str = "0.0.0.0") -> None:
    start_http_server(port, addr=host)


def record_vm(namespace: str, name: str, size: str, location: str, power_state: str | None, ready: bool) -> None:
    forget_vm(namespace, name)
    VM_INFO.labels(namespace, name, size, location, power_state or "Unknown", str(ready).lower()).set(1)


def forget_vm(namespace: str, name: str) -> None:
    _remove(VM_INFO, namespace, name)


def record_image(namespace: str, name: str, location: str, os_type: str, ready: bool) -> None:
    forget_image(namespace, name)
    IMAGE_INFO.labels(namespace, name, location, os_type or "Unknown", str(ready).lower()).set(1)


def forget_image(namespace: str, name: str) -> None:
    _remove(IMAGE_INFO, namespace, name)


def record_availability_set(namespace: str, name: str, location: str, members: int, ready: bool) -> None:
    forget_availability_set(namespace, name)
    AVSET_MEMBERS.labels(namespace, name, location, str(ready).lower()).set(members)


def forget_availability_set(namespace: str, name: str) -> None:
    _remove(AVSET_MEMBERS, namespace, name)


def record_scale_set(namespace: str, name: str, desired: int, current: int, ready: int, updated: int,
                     power_states: list[str | None], cpu_percent: float | None = None) -> None:
    for state, value in (("desired", desired), ("current", current), ("ready", ready), ("updated", updated)):
        SCALESET_REPLICAS.labels(namespace, name, state).set(value)
    SCALESET_OUTDATED.labels(namespace, name).set(current - updated)
    if cpu_percent is not None:
        SCALESET_CPU.labels(namespace, name).set(cpu_percent)
    _remove(SCALESET_INSTANCES, namespace, name)
    for state in sorted({s or "Unknown" for s in power_states}):
        SCALESET_INSTANCES.labels(namespace, name, state).set(sum(1 for s in power_states if (s or "Unknown") == state))


def forget_scale_set(namespace: str, name: str) -> None:
    for gauge in (SCALESET_CPU, SCALESET_OUTDATED):
        _remove(gauge, namespace, name)
    _remove(SCALESET_REPLICAS, namespace, name)
    _remove(SCALESET_INSTANCES, namespace, name)


def record_autoscale(namespace: str, name: str, values: dict[str, float | None], thresholds: dict[str, float],
                     replicas: dict[str, int | None]) -> None:
    _remove(AUTOSCALE_METRIC, namespace, name)
    _remove(AUTOSCALE_THRESHOLD, namespace, name)
    _remove(AUTOSCALE_REPLICAS, namespace, name)
    for rule, value in values.items():
        if value is not None:
            AUTOSCALE_METRIC.labels(namespace, name, rule).set(value)
    for rule, threshold in thresholds.items():
        AUTOSCALE_THRESHOLD.labels(namespace, name, rule).set(threshold)
    for bound, count in replicas.items():
        if count is not None:
            AUTOSCALE_REPLICAS.labels(namespace, name, bound).set(count)


def forget_autoscale(namespace: str, name: str) -> None:
    for gauge in (AUTOSCALE_METRIC, AUTOSCALE_THRESHOLD, AUTOSCALE_REPLICAS):
        _remove(gauge, namespace, name)


def _remove(gauge: Gauge, namespace: str, name: str) -> None:
    """Drop every series of one resource (labels start with namespace, name)."""
    for labels in list(gauge._metrics):  # noqa: SLF001 - prometheus-client has no public "remove by prefix"
        if labels[0] == namespace and labels[1] == name:
            gauge.remove(*labels)
