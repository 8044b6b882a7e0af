"""Typed view of a ScaleSet custom resource's spec: the machine template shared with VirtualMachine, plus the
count, the load balancer, upgrade and scale-in policies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from .fields import Field, SpecError
from .machine import MACHINE_FIELDS, MachineSpec, parse_machine

#: Every enum-valued or defaulted field of the ScaleSet spec, as the CRD declares it (a test keeps them in step).
FIELDS: dict[str, Field] = {
    **MACHINE_FIELDS,
    "spec.zones[]": Field(("1", "2", "3")),
    "spec.loadBalancer.enabled": Field(default=False),
    "spec.loadBalancer.public": Field(default=True),
    "spec.loadBalancer.rules[].protocol": Field(("Tcp", "Udp"), "Tcp"),
    "spec.loadBalancer.probe.protocol": Field(("Tcp", "Http", "Https"), "Tcp"),
    "spec.loadBalancer.probe.intervalSeconds": Field(default=15),
    "spec.upgradePolicy.mode": Field(("Manual", "Automatic", "Rolling"), "Manual"),
    "spec.upgradePolicy.rolling.maxBatchInstancePercent": Field(default=20),
    "spec.upgradePolicy.rolling.maxUnhealthyInstancePercent": Field(default=20),
    "spec.upgradePolicy.rolling.pauseTimeBetweenBatches": Field(default="0s"),
    "spec.rollout.maxUnavailable": Field(default=1),
    "spec.rollout.pauseBetweenBatches": Field(default="0s"),
    "spec.rollout.batchHealthTimeout": Field(default="5m"),
    "spec.scaleInPolicy": Field(("Default", "NewestVM", "OldestVM"), "Default"),
}

DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(value: str, what: str) -> float:
    """Kubernetes-style durations as the CRD allows them: 30s, 5m, 1h, 1h30m."""
    match = DURATION.fullmatch(value.strip())
    if not value.strip() or not match:
        raise SpecError(f"{what}: {value!r} is not a duration like 30s, 5m or 1h")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def iso8601_duration(seconds: float) -> str:
    """ARM's form of a duration (rolling upgrade pauses): PT1H2M3S."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + f"{secs}S"


@dataclass(frozen=True)
class LoadBalancerRule:
    name: str
    protocol: str
    frontend_port: int
    backend_port: int


@dataclass(frozen=True)
class ProbeSpec:
    protocol: str = "Tcp"
    port: int = 80
    path: str | None = None
    interval_seconds: int = 15


@dataclass(frozen=True)
class LoadBalancerSpec:
    enabled: bool = False
    public: bool = True
    rules: tuple[LoadBalancerRule, ...] = ()
    probe: ProbeSpec | None = None

    @property
    def ports(self) -> tuple[int, ...]:
        """Backend ports the rules send traffic to (what the NSG admits)."""
        return tuple(sorted({r.backend_port for r in self.rules}))


@dataclass(frozen=True)
class RollingUpgrade:
    max_batch_instance_percent: int = 20
    max_unhealthy_instance_percent: int = 20
    pause_between_batches: float = 0.0


@dataclass(frozen=True)
class RolloutSpec:
    """The operator's own batched rollout (upgradePolicy Manual)."""

    max_unavailable: int = 1
    pause_between_batches: float = 0.0
    batch_health_timeout: float = 300.0


@dataclass(frozen=True)
class ScaleSetSpec(MachineSpec):
    zones: tuple[str, ...] = ()
    subnet_id: str | None = None
    replicas: int | None = None  #: None: keep the count Azure has (1 at creation)
    #: the count a new scale set starts with when spec.replicas is unset: the autoscaler's defaultReplicas (it
    #: writes the same into spec.replicas at its first evaluation, which may come after the create)
    initial_replicas: int = 1
    load_balancer: LoadBalancerSpec = LoadBalancerSpec()
    upgrade_mode: str = "Manual"
    rolling: RollingUpgrade = RollingUpgrade()
    rollout: RolloutSpec = RolloutSpec()
    scale_in_policy: str = "Default"
    protected_instances: tuple[str, ...] = ()

    @property
    def scale_set_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.Compute/virtualMachineScaleSets/{self.azure_name}")


def _initial_replicas(autoscale: Any) -> int:
    """defaultReplicas (else minReplicas, else 1) within [minReplicas, maxReplicas] of an autoscale spec that is
    on; 1 without one. The autoscaler validates the rest of the spec."""
    if not isinstance(autoscale, Mapping) or autoscale.get("mode") == "Disabled":
        return 1
    try:
        low = int(autoscale.get("minReplicas", 1))
        high = int(autoscale.get("maxReplicas", max(low, 1)))
        first = int(autoscale.get("defaultReplicas", low))
    except (TypeError, ValueError):
        return 1
    return max(low, min(high, first))


def _pick(path: str, value: Any, where: str | None = None) -> Any:
    return FIELDS[path].pick(value, where or path)


def _load_balancer(raw: Mapping[str, Any]) -> LoadBalancerSpec:
    enabled = bool(_pick("spec.loadBalancer.enabled", raw.get("enabled")))
    rules = tuple(
        LoadBalancerRule(str(r["name"]), str(_pick("spec.loadBalancer.rules[].protocol", r.get("protocol"),
                                                   f"spec.loadBalancer.rules[{i}].protocol")),
                         int(r["frontendPort"]), int(r["backendPort"]))
        for i, r in enumerate(raw.get("rules") or [])
    )
    if len({r.name for r in rules}) != len(rules):
        raise SpecError("spec.loadBalancer.rules: each name may appear once")
    if len({(r.protocol, r.frontend_port) for r in rules}) != len(rules):
        raise SpecError("spec.loadBalancer.rules: two rules use the same protocol and frontendPort")
    if enabled and not rules:
        raise SpecError("an enabled spec.loadBalancer needs at least one rule")
    probe = None
    if enabled:
        p = raw.get("probe") or {}
        protocol = str(_pick("spec.loadBalancer.probe.protocol", p.get("protocol")))
        path = p.get("path") or ("/" if protocol != "Tcp" else None)
        if protocol == "Tcp" and p.get("path"):
            raise SpecError("spec.loadBalancer.probe.path applies to Http and Https probes")
        probe = ProbeSpec(protocol=protocol, port=int(p.get("port") or rules[0].backend_port), path=path,
                          interval_seconds=int(_pick("spec.loadBalancer.probe.intervalSeconds",
                                                     p.get("intervalSeconds"))))
    return LoadBalancerSpec(enabled=enabled, public=bool(_pick("spec.loadBalancer.public", raw.get("public"))),
                            rules=rules, probe=probe)


def parse_spec(
    spec: Mapping[str, Any],
    name: str,
    default_subscription_id: str | None,
    credentials_subscription_id: str | None = None,
) -> ScaleSetSpec:
    """Build the typed spec; raise SpecError with a message the user can act on."""
    machine = parse_machine(spec, name, FIELDS, default_subscription_id, credentials_subscription_id, "scale set")
    zones = tuple(sorted({str(_pick("spec.zones[]", str(z), "spec.zones")) for z in spec.get("zones") or []}))
    replicas = spec.get("replicas")
    if replicas is not None and (int(replicas) < 0 or int(replicas) > 1000):
        raise SpecError(f"spec.replicas must be between 0 and 1000, not {replicas}")
    upgrade = spec.get("upgradePolicy") or {}
    rolling_raw = upgrade.get("rolling") or {}
    rolling = RollingUpgrade(
        max_batch_instance_percent=int(_pick("spec.upgradePolicy.rolling.maxBatchInstancePercent",
                                             rolling_raw.get("maxBatchInstancePercent"))),
        max_unhealthy_instance_percent=int(_pick("spec.upgradePolicy.rolling.maxUnhealthyInstancePercent",
                                                 rolling_raw.get("maxUnhealthyInstancePercent"))),
        pause_between_batches=parse_duration(str(_pick("spec.upgradePolicy.rolling.pauseTimeBetweenBatches",
                                                       rolling_raw.get("pauseTimeBetweenBatches"))),
                                             "spec.upgradePolicy.rolling.pauseTimeBetweenBatches"),
    )
    rollout_raw = spec.get("rollout") or {}
    rollout = RolloutSpec(
        max_unavailable=int(_pick("spec.rollout.maxUnavailable", rollout_raw.get("maxUnavailable"))),
        pause_between_batches=parse_duration(str(_pick("spec.rollout.pauseBetweenBatches",
                                                       rollout_raw.get("pauseBetweenBatches"))),
                                             "spec.rollout.pauseBetweenBatches"),
        batch_health_timeout=parse_duration(str(_pick("spec.rollout.batchHealthTimeout",
                                                      rollout_raw.get("batchHealthTimeout"))),
                                            "spec.rollout.batchHealthTimeout"),
    )
    load_balancer = _load_balancer(spec.get("loadBalancer") or {})
    mode = str(_pick("spec.upgradePolicy.mode", upgrade.get("mode")))
    if mode == "Rolling" and not (load_balancer.enabled and load_balancer.probe):
        raise SpecError("upgradePolicy.mode Rolling needs a health signal: enable spec.loadBalancer (its probe "
                        "tells Azure which instances are healthy)")
    return ScaleSetSpec(
        **machine,
        initial_replicas=_initial_replicas(spec.get("autoscale")),
        zones=zones,
        subnet_id=(spec.get("network") or {}).get("subnetId") or None,
        replicas=int(replicas) if replicas is not None else None,
        load_balancer=load_balancer,
        upgrade_mode=mode,
        rolling=rolling,
        rollout=rollout,
        scale_in_policy=str(_pick("spec.scaleInPolicy", spec.get("scaleInPolicy"))),
        protected_instances=tuple(sorted({str(i) for i in spec.get("protectedInstances") or []}, key=int)),
    )
