"""The ScaleSet kind in ARM's terms: names of what is created for a scale set, the scale set (Uniform) and load
balancer bodies, the diff between the spec and what Azure has, and what the instances say. Pure.

Capacity is never part of a model write: it changes only through a capacity-only PATCH (``capacity_patch``), so a
model change built from a read that is already stale cannot undo a scale decision made meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..api.scaleset import LoadBalancerSpec, ScaleSetSpec, iso8601_duration
from . import ids
from .machine import MachineSecrets, b64, image_reference, os_disk_body, os_profile, power_state
from .ownership import Identity, owned_tags

FRONTEND = "frontend"
BACKEND_POOL = "backend"
PROBE = "probe"
NIC_CONFIG = "nic"
SELECTOR_LABEL = "compute.azvm.io/scaleset"



# ---- names of what is created for one scale set --------------------------------------------------------------
# Distinct from a VirtualMachine's (<name>-nic, -pip, -nsg): a ScaleSet and a VirtualMachine of the same name in
# one resource group never meet in Azure.


def load_balancer_name(spec: ScaleSetSpec) -> str:
    return f"{spec.azure_name}-lb"


def public_ip_name(spec: ScaleSetSpec) -> str:
    return f"{spec.azure_name}-lb-pip"


def nsg_name(spec: ScaleSetSpec) -> str:
    return f"{spec.azure_name}-vmss-nsg"


def load_balancer_id(spec: ScaleSetSpec) -> str:
    return ids.arm_id(spec.subscription_id, spec.resource_group, "Microsoft.Network", "loadBalancers",
                      load_balancer_name(spec))


def lb_child_id(spec: ScaleSetSpec, child_type: str, name: str) -> str:
    return ids.arm_id(spec.subscription_id, spec.resource_group, "Microsoft.Network", "loadBalancers",
                      load_balancer_name(spec), child_type, name)


def selector(name: str) -> str:
    """The label selector of the scale subresource (what an HPA or KEDA reads from status.selector)."""
    return f"{SELECTOR_LABEL}={name}"


def tags(spec: ScaleSetSpec, identity: Identity) -> dict[str, str]:
    return owned_tags(spec.tags, identity)


# ---- load balancer -------------------------------------------------------------------------------------------


def probe_body(lb: LoadBalancerSpec) -> dict[str, Any]:
    assert lb.probe is not None
    props: dict[str, Any] = {"protocol": lb.probe.protocol, "port": lb.probe.port,
                             "intervalInSeconds": lb.probe.interval_seconds, "numberOfProbes": 2}
    if lb.probe.path:
        props["requestPath"] = lb.probe.path
    return {"name": PROBE, "properties": props}


def load_balancer_body(spec: ScaleSetSpec, identity: Identity, public_ip_id: str | None,
                       subnet_id: str | None) -> dict[str, Any]:
    """A Standard load balancer: one frontend (public IP or private in the subnet), one backend pool the scale set
    joins, the probe, and a rule per spec rule."""
    lb = spec.load_balancer
    frontend: dict[str, Any] = ({"publicIPAddress": {"id": public_ip_id}} if public_ip_id
                                else {"subnet": {"id": subnet_id}, "privateIPAllocationMethod": "Dynamic"})
    rules = [
        {"name": rule.name, "properties": {
            "protocol": rule.protocol,
            "frontendPort": rule.frontend_port,
            "backendPort": rule.backend_port,
            "frontendIPConfiguration": {"id": lb_child_id(spec, "frontendIPConfigurations", FRONTEND)},
            "backendAddressPool": {"id": lb_child_id(spec, "backendAddressPools", BACKEND_POOL)},
            "probe": {"id": lb_child_id(spec, "probes", PROBE)},
            "enableFloatingIP": False,
            "idleTimeoutInMinutes": 4,
            "loadDistribution": "Default",
            "disableOutboundSnat": False,
        }}
        for rule in lb.rules
    ]
    return {
        "location": spec.location,
        "tags": tags(spec, identity),
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {
            "frontendIPConfigurations": [{"name": FRONTEND, "properties": frontend}],
            "backendAddressPools": [{"name": BACKEND_POOL}],
            "probes": [probe_body(lb)],
            "loadBalancingRules": rules,
        },
    }


def load_balancer_differs(spec: ScaleSetSpec, observed: Mapping[str, Any]) -> bool:
    """The rules or the probe in Azure are not the spec's (the whole load balancer is then PUT again: it is ours)."""
    props = observed.get("properties") or {}
    have_rules = sorted(
        (r.get("name"), (r.get("properties") or {}).get("protocol"), (r.get("properties") or {}).get("frontendPort"),
         (r.get("properties") or {}).get("backendPort"))
        for r in props.get("loadBalancingRules") or [])
    want_rules = sorted((r.name, r.protocol, r.frontend_port, r.backend_port) for r in spec.load_balancer.rules)
    if have_rules != want_rules:
        return True
    probes = props.get("probes") or []
    have_probe = (probes[0].get("properties") or {}) if probes else {}
    want_probe = probe_body(spec.load_balancer)["properties"]
    return any(have_probe.get(k) != v for k, v in want_probe.items() if k != "numberOfProbes")


def backend_pool_size(load_balancer: Mapping[str, Any] | None) -> int:
    pools = ((load_balancer or {}).get("properties") or {}).get("backendAddressPools") or []
    return sum(len((p.get("properties") or {}).get("backendIPConfigurations") or []) for p in pools)


def frontend_private_ip(load_balancer: Mapping[str, Any] | None) -> str | None:
    for frontend in ((load_balancer or {}).get("properties") or {}).get("frontendIPConfigurations") or []:
        address = (frontend.get("properties") or {}).get("privateIPAddress")
        if address:
            return str(address)
    return None


# ---- the scale set -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """What the model needs besides the spec, resolved by I/O beforehand (never logged: holds secrets)."""

    subnet_id: str
    nsg_id: str | None = None
    admin_password: str | None = field(default=None, repr=False)
    custom_data: str | None = field(default=None, repr=False)


def network_profile(spec: ScaleSetSpec, subnet_id: str, nsg_id: str | None) -> dict[str, Any]:
    ip_config: dict[str, Any] = {"subnet": {"id": subnet_id}, "primary": True}
    if spec.load_balancer.enabled:
        ip_config["loadBalancerBackendAddressPools"] = [{"id": lb_child_id(spec, "backendAddressPools", BACKEND_POOL)}]
    nic: dict[str, Any] = {"primary": True, "ipConfigurations": [{"name": "ipconfig", "properties": ip_config}]}
    if nsg_id:
        nic["networkSecurityGroup"] = {"id": nsg_id}
    profile: dict[str, Any] = {"networkInterfaceConfigurations": [{"name": NIC_CONFIG, "properties": nic}]}
    if spec.load_balancer.enabled:
        profile["healthProbe"] = {"id": lb_child_id(spec, "probes", PROBE)}
    return profile


def data_disks_body(spec: ScaleSetSpec) -> list[dict[str, Any]]:
    return [{"lun": d.lun, "createOption": "Empty", "diskSizeGB": d.size_gb, "caching": d.caching,
             "managedDisk": {"storageAccountType": d.storage_account_type}} for d in spec.data_disks]


def upgrade_policy(spec: ScaleSetSpec) -> dict[str, Any]:
    policy: dict[str, Any] = {"mode": spec.upgrade_mode}
    if spec.upgrade_mode == "Rolling":
        policy["rollingUpgradePolicy"] = {
            "maxBatchInstancePercent": spec.rolling.max_batch_instance_percent,
            "maxUnhealthyInstancePercent": spec.rolling.max_unhealthy_instance_percent,
            "maxUnhealthyUpgradedInstancePercent": spec.rolling.max_unhealthy_instance_percent,
            "pauseTimeBetweenBatches": iso8601_duration(spec.rolling.pause_between_batches),
        }
    return policy


def scale_set_body(spec: ScaleSetSpec, identity: Identity, inputs: Inputs, capacity: int) -> dict[str, Any]:
    """The PUT that creates the scale set (the only full-model write; capacity from the spec, or 1)."""
    secrets: MachineSecrets = inputs
    os_disk = os_disk_body(spec)
    os_disk.pop("deleteOption", None)  # a scale set's instance disks go with the instance
    profile: dict[str, Any] = {
        "osProfile": os_profile(spec, secrets, scale_set=True),
        "storageProfile": {"imageReference": image_reference(spec), "osDisk": os_disk,
                           "dataDisks": data_disks_body(spec)},
        "networkProfile": network_profile(spec, inputs.subnet_id, inputs.nsg_id),
    }
    if spec.user_data:
        profile["userData"] = b64(spec.user_data)
    if spec.priority == "Spot":
        profile["priority"] = "Spot"
        profile["evictionPolicy"] = spec.eviction_policy
        profile["billingProfile"] = {"maxPrice": spec.max_price}
    body: dict[str, Any] = {
        "location": spec.location,
        "tags": tags(spec, identity),
        "sku": {"name": spec.size, "tier": "Standard", "capacity": capacity},
        "properties": {
            "orchestrationMode": "Uniform",
            "overprovision": False,
            "upgradePolicy": upgrade_policy(spec),
            "scaleInPolicy": {"rules": [spec.scale_in_policy]},
            "virtualMachineProfile": profile,
        },
    }
    if spec.zones:
        body["zones"] = list(spec.zones)
    return body


def capacity_patch(count: int) -> dict[str, Any]:
    """The only write that changes how many instances there are."""
    return {"sku": {"capacity": count}}


def desired_capacity(spec: ScaleSetSpec, observed: int | None) -> int:
    """spec.replicas; unset: whatever Azure has (for a new scale set: 1, or autoscale's defaultReplicas)."""
    if spec.replicas is not None:
        return spec.replicas
    return observed if observed is not None else spec.initial_replicas


def observed_capacity(scale_set: Mapping[str, Any]) -> int | None:
    capacity = (scale_set.get("sku") or {}).get("capacity")
    return int(capacity) if capacity is not None else None


def capacity_suspect(scale_set: Mapping[str, Any], instances: Sequence[Mapping[str, Any]]) -> bool:
    """A capacity of 0 (or none) while instances exist is a read not to act on (kubernetes/autoscaler #3240: one
    bad read took a cluster from 200 nodes to 3)."""
    capacity = observed_capacity(scale_set)
    return (capacity is None or capacity == 0) and len(live_instances(instances)) > 0


def ignored_paths(spec: ScaleSetSpec) -> tuple[str, ...]:
    return tuple(f if f.startswith("spec.") else f"spec.{f}" for f in spec.policies.ignore_drift_fields)


def is_ignored(path: str, ignore: tuple[str, ...]) -> bool:
    return any(path == i or path.startswith(i + ".") or path.startswith(i + "[") for i in ignore)


@dataclass(frozen=True)
class ScaleSetDiff:
    """What differs between the spec and the scale set in Azure (capacity apart: see ``desired_capacity``)."""

    patch: dict[str, Any] = field(default_factory=dict)  #: one PATCH for all in-place changes, never capacity
    model: tuple[str, ...] = ()  #: spec paths whose change gives instances a new model (a rollout follows)
    settings: tuple[str, ...] = ()  #: spec paths that change without touching instances (tags, policies)
    immutable: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()

    @property
    def drifted(self) -> tuple[str, ...]:
        return (*self.model, *self.settings)


def diff_scale_set(spec: ScaleSetSpec, identity: Identity, observed: Mapping[str, Any],
                   subnet_id: str | None, nsg_id: str | None) -> ScaleSetDiff:
    """Compare the fields the operator owns. ``subnet_id``/``nsg_id``: what the NIC configuration should name
    (None: keep what Azure has)."""
    props = observed.get("properties") or {}
    profile = props.get("virtualMachineProfile") or {}
    ignore = ignored_paths(spec)
    patch: dict[str, Any] = {}
    model: list[str] = []
    settings: list[str] = []
    immutable: list[str] = []
    rejected: list[str] = []

    def profile_patch() -> dict[str, Any]:
        properties: dict[str, Any] = patch.setdefault("properties", {})
        result: dict[str, Any] = properties.setdefault("virtualMachineProfile", {})
        return result

    observed_size = (observed.get("sku") or {}).get("name")
    if not is_ignored("spec.size", ignore) and observed_size and str(observed_size).lower() != spec.size.lower():
        patch["sku"] = {"name": spec.size, "tier": "Standard"}
        model.append("spec.size")

    observed_tags = dict(observed.get("tags") or {})
    desired_tags = tags(spec, identity)
    if is_ignored("spec.tags", ignore):
        desired_tags = {**observed_tags, **{k: v for k, v in desired_tags.items() if k not in spec.tags}}
    else:
        for key, value in observed_tags.items():
            if is_ignored(f"spec.tags.{key}", ignore):
                desired_tags[key] = value
    if observed_tags != desired_tags:
        patch["tags"] = desired_tags
        if _user_tags(observed_tags) != _user_tags(desired_tags):
            settings.append("spec.tags")

    if (props.get("upgradePolicy") or {}).get("mode") not in (None, spec.upgrade_mode):
        patch.setdefault("properties", {})["upgradePolicy"] = upgrade_policy(spec)
        settings.append("spec.upgradePolicy")
    rules = (props.get("scaleInPolicy") or {}).get("rules") or ["Default"]
    if rules[0] != spec.scale_in_policy:
        patch.setdefault("properties", {})["scaleInPolicy"] = {"rules": [spec.scale_in_policy]}
        settings.append("spec.scaleInPolicy")

    storage = profile.get("storageProfile") or {}
    image = storage.get("imageReference") or {}
    wanted_image = image_reference(spec)
    if spec.image.marketplace is not None:
        same = all(str(image.get(k, "")).lower() == str(wanted_image[k]).lower()
                   for k in ("publisher", "offer", "sku")) and not image.get("id")
        same = same and (wanted_image["version"] == "latest" or image.get("version") == wanted_image["version"])
    else:
        same = ids.same(image.get("id"), spec.image.id)
    if image and not same:
        profile_patch().setdefault("storageProfile", {})["imageReference"] = wanted_image
        model.append("spec.image")

    os_disk = storage.get("osDisk") or {}
    if spec.os_disk.size_gb and os_disk.get("diskSizeGB"):
        if spec.os_disk.size_gb > os_disk["diskSizeGB"]:
            profile_patch().setdefault("storageProfile", {})["osDisk"] = {"diskSizeGB": spec.os_disk.size_gb}
            model.append("spec.osDisk.sizeGB")
        elif spec.os_disk.size_gb < os_disk["diskSizeGB"]:
            rejected.append(f"spec.osDisk.sizeGB: {spec.os_disk.size_gb} GB is smaller than the model's "
                            f"({os_disk['diskSizeGB']} GB); managed disks cannot shrink")

    have_disks = {int(d["lun"]): d for d in storage.get("dataDisks") or [] if d.get("lun") is not None}
    for disk in spec.data_disks:
        have = have_disks.get(disk.lun)
        if have is not None and have.get("diskSizeGB") and disk.size_gb < have["diskSizeGB"]:
            rejected.append(f"spec.dataDisks[lun={disk.lun}].sizeGB: {disk.size_gb} GB is smaller than the "
                            f"model's ({have['diskSizeGB']} GB); managed disks cannot shrink")
    want_disks = {(d.lun, d.size_gb, d.storage_account_type) for d in spec.data_disks}
    got_disks = {(lun, d.get("diskSizeGB"), (d.get("managedDisk") or {}).get("storageAccountType"))
                 for lun, d in have_disks.items()}
    if want_disks != got_disks and not is_ignored("spec.dataDisks", ignore):
        profile_patch().setdefault("storageProfile", {})["dataDisks"] = data_disks_body(spec)
        model.append("spec.dataDisks")

    if spec.user_data is not None and not is_ignored("spec.userData", ignore):  # observed with $expand=userData
        if profile.get("userData") != b64(spec.user_data):
            profile_patch()["userData"] = b64(spec.user_data)
            model.append("spec.userData")

    nic_configs = (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []
    nic = (nic_configs[0].get("properties") or {}) if nic_configs else {}
    ip_configs = nic.get("ipConfigurations") or []
    ip = (ip_configs[0].get("properties") or {}) if ip_configs else {}
    have_pools = sorted(str(p.get("id", "")).lower() for p in ip.get("loadBalancerBackendAddressPools") or [])
    want_pools = ([lb_child_id(spec, "backendAddressPools", BACKEND_POOL).lower()]
                  if spec.load_balancer.enabled else [])
    have_nsg = ((nic.get("networkSecurityGroup") or {}).get("id") or "").lower()
    have_subnet = ((ip.get("subnet") or {}).get("id") or "")
    want_subnet = subnet_id or have_subnet
    if (have_pools != want_pools or have_nsg != (nsg_id or "").lower()
            or not ids.same(have_subnet, want_subnet)):
        profile_patch()["networkProfile"] = network_profile(spec, want_subnet, nsg_id)
        model.append("spec.loadBalancer")

    os_profile_observed = profile.get("osProfile") or {}
    if os_profile_observed.get("adminUsername") not in (None, spec.admin_username):
        immutable.append("spec.adminUsername")
    zones = sorted(observed.get("zones") or [])
    if zones != sorted(spec.zones):
        immutable.append("spec.zones")
    if (profile.get("priority") or "Regular") != spec.priority:
        immutable.append("spec.priority")
    return ScaleSetDiff(patch=patch, model=tuple(model), settings=tuple(settings), immutable=tuple(immutable),
                        rejected=tuple(rejected))


# ---- instances -----------------------------------------------------------------------------------------------


def health(instance_view: Mapping[str, Any] | None) -> str | None:
    """'healthy' / 'unhealthy' / 'unknown' from vmHealth (probe or health extension), None without a signal."""
    code = str((((instance_view or {}).get("vmHealth") or {}).get("status") or {}).get("code") or "")
    return code.split("/", 1)[1].lower() if code.startswith("HealthState/") else None


@dataclass(frozen=True)
class Instance:
    instance_id: str
    name: str
    zone: str | None
    power_state: str | None
    provisioning_state: str | None
    latest_model: bool
    protected: bool
    health: str | None

    @property
    def deleting(self) -> bool:
        return self.provisioning_state == "Deleting"

    @property
    def ready(self) -> bool:
        """Running, provisioned, and not reported unhealthy by the probe."""
        return (self.provisioning_state == "Succeeded" and self.power_state == "Running"
                and self.health in (None, "healthy"))

    def to_status(self) -> dict[str, Any]:
        return {"instanceId": self.instance_id, "name": self.name, "zone": self.zone, "powerState": self.power_state,
                "provisioningState": self.provisioning_state, "latestModelApplied": self.latest_model,
                "protected": self.protected, "healthy": self.health in (None, "healthy")}


def instance(raw: Mapping[str, Any]) -> Instance:
    props = raw.get("properties") or {}
    view = props.get("instanceView") or {}
    zones = raw.get("zones") or []
    return Instance(
        instance_id=str(raw.get("instanceId") or str(raw.get("id", "")).rsplit("/", 1)[-1]),
        name=str(raw.get("name") or ""),
        zone=str(zones[0]) if zones else None,
        power_state=power_state(view),
        provisioning_state=props.get("provisioningState"),
        latest_model=bool(props.get("latestModelApplied", True)),
        protected=bool((props.get("protectionPolicy") or {}).get("protectFromScaleIn")),
        health=health(view),
    )


def live_instances(raw: Sequence[Mapping[str, Any]]) -> list[Instance]:
    """Instances that exist and are not on their way out, by instance id."""
    found = [instance(r) for r in raw]
    return sorted((i for i in found if not i.deleting), key=lambda i: int(i.instance_id)
                  if i.instance_id.isdigit() else 0)


def next_batch(instances: Sequence[Instance], max_unavailable: int) -> list[Instance]:
    """The operator's rollout (upgradePolicy Manual): the next instances to upgrade, lowest ids first, so that at
    most ``max_unavailable`` are out of service at once (instances already not ready count against it; outdated
    ones among them go first, since upgrading them takes nothing more out of service)."""
    outdated = [i for i in instances if not i.latest_model]
    broken = [i for i in outdated if not i.ready]  # already out of service: upgrading them costs nothing more
    unavailable = sum(1 for i in instances if not i.ready)
    room = max(0, max_unavailable - unavailable)
    return [*broken, *[i for i in outdated if i.ready][:room]]


def set_power_action(desired: str, instances: Sequence[Instance]) -> str | None:
    """The scale set action ('start', 'power_off', 'deallocate') that moves every instance to the desired state."""
    states = {i.power_state for i in instances}
    if not states or states & {None, "Starting", "Stopping", "Deallocating"}:
        return None  # unknown or already moving: look again later
    if desired == "Running" and states & {"Stopped", "Deallocated"}:
        return "start"
    if desired == "Stopped" and "Running" in states:
        return "power_off"
    if desired == "Deallocated" and states & {"Running", "Stopped"}:
        return "deallocate"
    if desired == "Stopped" and states == {"Deallocated"}:
        return "start"
    return None


def _user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags without the operator's own (azvm-*, which no spec sets: the CRD refuses them)."""
    return {k: v for k, v in tags.items() if not k.startswith("azvm-")}
