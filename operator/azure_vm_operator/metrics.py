"""Prometheus metrics of the operator (prometheus-client's default registry, served on --metrics-port)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter(
    "azvm_reconcile_total", "Reconciliations by kind and result (success, transient_error, permanent_error).",
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
VM_INFO = Gauge(
    "azvm_virtualmachine_info", "One series per VirtualMachine resource, labelled with what Azure reports.",
    ["namespace", "name", "size", "location", "power_state", "ready"],
)


def serve(port: int, host: str = "0.0.0.0") -> None:
    start_http_server(port, addr=host)


def record_vm(namespace: str, name: str, size: str, location: str, power_state: str | None, ready: bool) -> None:
    forget_vm(namespace, name)
    VM_INFO.labels(namespace, name, size, location, power_state or "Unknown", str(ready).lower()).set(1)


def forget_vm(namespace: str, name: str) -> None:
    for labels in list(VM_INFO._metrics):  # noqa: SLF001 - prometheus-client has no public "remove by prefix"
        if labels[0] == namespace and labels[1] == name:
            VM_INFO.remove(*labels)
