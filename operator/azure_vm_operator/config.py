"""One typed settings object for the operator, built from flags and the environment."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

PUBLIC_ARM_ENDPOINT = "https://management.azure.com"


@dataclass(frozen=True)
class OperatorConfig:
    # Kubernetes
    kubeconfig: str | None = None  #: a kubeconfig path; None = in-cluster, then $KUBECONFIG, then ~/.kube/config
    namespace: str | None = None  #: watch one namespace; None = cluster-wide
    cluster_id: str = "default"  #: written into ownership tags: two clusters never fight over one VM
    # Azure
    azure_endpoint: str = PUBLIC_ARM_ENDPOINT
    azure_audience: str = PUBLIC_ARM_ENDPOINT  #: the token scope is "<audience>/.default"
    azure_ca: str | None = None  #: a CA bundle (PEM) to trust for ARM and the authority
    azure_authority_host: str | None = None  #: AZURE_AUTHORITY_HOST, for sovereign clouds and the emulator
    azure_disable_instance_discovery: bool = False
    subscription_id: str | None = None  #: default for resources without spec.subscriptionId
    #: Namespaces whose resources may use the operator's own Azure credential (resources without
    #: spec.credentialsSecretRef): comma-separated names or globs (``team-*``); None = every namespace. Resources
    #: elsewhere must bring a credentials Secret of their own namespace (else Stalled, CredentialNotAllowed).
    credential_allowed_namespaces: str | None = None
    lro_polling_interval: float | None = None  #: None = the SDK's default (ARM's Retry-After wins anyway)
    #: Client-side ARM throttling (azure/throttle.py): token buckets per subscription seeded with ARM's and
    #: Microsoft.Compute's documented limits, corrected from ARM's headers, so requests wait before ARM answers 429.
    #: False installs nothing: every request goes at once (for comparison benchmarks).
    arm_throttle: bool = True
    #: Multiplier of every seeded bucket size and refill rate (ARM reads 250 + 25/s, writes and deletes 200 + 10/s,
    #: Compute's policies): 0.5 for a principal that shares its subscription with another client, 2 if Azure raised
    #: the limits. Must be > 0.
    arm_throttle_scale: float = 1.0
    # Reconciliation
    resync_interval: float = 300.0  #: seconds between observations of each resource (drift detection)
    #: seconds a LIST of a resource group's resources of one type serves every resource's reads (0: GET each)
    observe_interval: float = 30.0
    #: Azure writes and operation polls in flight at once, across all resources (reads are bounded by the
    #: shared listings and the throttle)
    max_concurrent_operations: int = 32
    backoff_base: float = 2.0  #: first retry delay after a transient error, doubled per retry
    backoff_max: float = 300.0
    # High availability: only the replica holding a coordination.k8s.io Lease runs handlers
    leader_elect: bool = False
    leader_election_namespace: str | None = None  #: default: $POD_NAMESPACE, else "default"
    lease_duration: float = 15.0
    # Sharding (sharding.py): each replica reconciles the resources of its shard, within what the selector selects
    shard_count: int = 1  #: 1 = no sharding
    shard_index: int = 0  #: 0 .. shard_count - 1
    selector: str | None = None  #: a label selector: the API server sends only matching resources
    # Autoscaling (ScaleSet.spec.autoscale)
    #: the Prometheus server of rules with a prometheus source and no serverAddress, e.g. http://prometheus:9090
    prometheus_url: str | None = None
    # Observability
    metrics_port: int | None = 8080  #: None = no metrics endpoint
    metrics_host: str = "0.0.0.0"
    #: /healthz (liveness) and /readyz (readiness) for the kubelet's probes, served from process start, also by a
    #: standby replica waiting for the leader Lease; None = no health endpoint
    health_port: int | None = None
    health_host: str = "0.0.0.0"
    #: `text`, or `json`: one object per line with the resource's kind/namespace/name (logs.py; set up by the CLI)
    log_format: str = "text"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "OperatorConfig":
        """Defaults, then AZURE_* / AZVM_* environment variables, then explicit overrides (flags)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, var in ENV_VARS.items():
            if env.get(var):
                values[name] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls()._coerced(values)

    def may_use_operator_credential(self, namespace: str) -> bool:
        """Whether resources of ``namespace`` may use the operator's own credential (credential_allowed_namespaces)."""
        if self.credential_allowed_namespaces is None:
            return True
        patterns = [p.strip() for p in self.credential_allowed_namespaces.split(",") if p.strip()]
        return any(fnmatch.fnmatchcase(namespace, p) for p in patterns)

    def _coerced(self, values: Mapping[str, Any]) -> "OperatorConfig":
        types = {f.name: f.type for f in fields(self)}
        coerced: dict[str, Any] = {}
        for name, value in values.items():
            kind = str(types[name])
            if isinstance(value, str) and "bool" in kind:
                coerced[name] = value.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(value, str) and "float" in kind:
                coerced[name] = float(value)
            elif isinstance(value, str) and "int" in kind:
                coerced[name] = int(value)
            else:
                coerced[name] = value
        return replace(self, **coerced)


#: Environment variables read by OperatorConfig.from_env (the AZURE_* ones are azure-identity's own names).
ENV_VARS = {
    "kubeconfig": "AZVM_KUBECONFIG",
    "namespace": "AZVM_NAMESPACE",
    "cluster_id": "AZVM_CLUSTER_ID",
    "azure_endpoint": "AZURE_ENDPOINT",
    "azure_audience": "AZURE_AUDIENCE",
    "azure_ca": "AZURE_CA",
    "azure_authority_host": "AZURE_AUTHORITY_HOST",
    "azure_disable_instance_discovery": "AZURE_DISABLE_INSTANCE_DISCOVERY",
    "subscription_id": "AZURE_SUBSCRIPTION_ID",
    "credential_allowed_namespaces": "AZVM_CREDENTIAL_ALLOWED_NAMESPACES",
    "lro_polling_interval": "AZVM_LRO_POLLING_INTERVAL",
    "arm_throttle": "AZVM_ARM_THROTTLE",
    "arm_throttle_scale": "AZVM_ARM_THROTTLE_SCALE",
    "resync_interval": "AZVM_RESYNC_INTERVAL",
    "observe_interval": "AZVM_OBSERVE_INTERVAL",
    "max_concurrent_operations": "AZVM_MAX_CONCURRENT_OPERATIONS",
    "backoff_base": "AZVM_BACKOFF_BASE",
    "backoff_max": "AZVM_BACKOFF_MAX",
    "metrics_port": "AZVM_METRICS_PORT",
    "health_port": "AZVM_HEALTH_PORT",
    "leader_elect": "AZVM_LEADER_ELECT",
    "leader_election_namespace": "POD_NAMESPACE",
    "lease_duration": "AZVM_LEASE_DURATION",
    "shard_count": "AZVM_SHARD_COUNT",
    "shard_index": "AZVM_SHARD_INDEX",
    "selector": "AZVM_SELECTOR",
    "prometheus_url": "AZVM_PROMETHEUS_URL",
    "log_format": "AZVM_LOG_FORMAT",
}
