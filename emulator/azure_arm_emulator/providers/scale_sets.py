"""Microsoft.Compute/virtualMachineScaleSets (Uniform orchestration) and their instances (``.../virtualMachines``).

The scale set is one resource; each instance is its own stored resource (store type
``Microsoft.Compute/virtualMachineScaleSets/virtualMachines``, ARM ``type`` ``Microsoft.Compute/virtualMachines``)
with the same emulator-only state as a VM (power state, in-flight operation, last error) plus the model version
it runs, its private IPs and its zone. Validation reuses the VM provider's helpers (size and image catalogue,
``osProfile`` rules, storage profile defaults, instance view).

Model: every change of ``sku.name`` or ``virtualMachineProfile`` increments the scale set's model version. An
instance's ``latestModelApplied`` is "its version == the scale set's". ``upgradePolicy.mode`` decides what happens
to existing instances: Manual = nothing until ``manualUpgrade``; Automatic = all of them are upgraded by the same
long-running operation; Rolling = after the write completes, a background chain of batch operations
(``maxBatchInstancePercent`` of the instances, at least one, ``vmss.rollingBatch`` latency each) upgrades them.
Instances protected from scale set actions are never upgraded by the scale set.

Capacity: an increase creates instances from the current model with fresh instance ids (never reused); a decrease
picks instances by ``scaleInPolicy`` and never picks instances protected from scale-in. If too few instances can be
removed, ``sku.capacity`` is set to the number of instances that remain (ARM keeps capacity == instance count).
Private IPs come from the network provider's allocator and are released when the instance is removed; pool
``backendIPConfigurations`` and subnet ``ipConfigurations`` list one ip configuration per instance.

Health: when the scale set has a health signal (``networkProfile.healthProbe`` or an application health extension),
an instance's instance view carries ``vmHealth``: ``HealthState/healthy`` unless the admin API marked the instance
unhealthy (``private["unhealthy"]``, kept by upgrades, reimages and redeploys), ``HealthState/unknown`` while it is
not running.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from .. import catalog, ids, lro, util
from ..errors import ArmError, invalid_parameter, operation_not_allowed, resource_not_found
from ..lro import Operation
from ..routing import RESOURCE_GROUP, SUBSCRIPTION, Call, Reply, Router
from ..services import Services
from ..store import Resource
from . import disks
from .compute import (
    CACHING,
    PROVISIONING_DISPLAY,
    ComputeProvider,
    _check_premium,
    _choice,
    _fill_storage_profile,
    _property_change,
    _validate_os_profile,
    _validate_size,
    check_data_disk_count,
    check_lun,
    check_writable,
    fill_identity,
    instance_view,
)
from .load_balancers import LoadBalancerProvider, PoolUse
from .network import NSG, NetworkProvider, _mac_address, invalid_reference

NS = "Microsoft.Compute"
VMSS = "Microsoft.Compute/virtualMachineScaleSets"
#: Store type of scale set instances (their ARM ``type`` is ``Microsoft.Compute/virtualMachines``).
VMSS_VM = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
INSTANCE_TYPE = "Microsoft.Compute/virtualMachines"

#: Realistic durations (seconds, before ``latency_scale``); instances of one request are created in parallel.
LATENCY_SECONDS = {
    "vmss.create": 60.0,
    "vmss.update": 10.0,
    "vmss.scaleOut": 30.0,
    "vmss.upgrade": 30.0,
    "vmss.rollingBatch": 30.0,
    "vmss.start": 15.0,
    "vmss.powerOff": 10.0,
    "vmss.deallocate": 20.0,
    "vmss.restart": 15.0,
    "vmss.reimage": 30.0,
    "vmss.manualUpgrade": 30.0,
    "vmss.deleteInstances": 20.0,
    "vmss.delete": 30.0,
    "vmss.vm.start": 15.0,
    "vmss.vm.powerOff": 10.0,
    "vmss.vm.deallocate": 20.0,
    "vmss.vm.restart": 15.0,
    "vmss.vm.reimage": 30.0,
    "vmss.vm.redeploy": 30.0,
    "vmss.vm.update": 10.0,
    "vmss.vm.delete": 20.0,
}
for _kind, _seconds in LATENCY_SECONDS.items():
    lro.LATENCY_SECONDS.setdefault(_kind, _seconds)

ACTIONS = ("start", "powerOff", "deallocate", "restart", "reimage")
#: Instance actions: the power actions, and ``redeploy`` (a new host; the instance keeps its power state).
INSTANCE_ACTIONS = (*ACTIONS, "redeploy")
TRANSITIONAL = {"start": "starting", "powerOff": "stopping", "deallocate": "deallocating", "restart": "starting", "reimage": "starting"}
FINAL = {"start": "running", "powerOff": "stopped", "deallocate": "deallocated", "restart": "running", "reimage": "running"}
UPGRADE_MODES = {"manual": "Manual", "automatic": "Automatic", "rolling": "Rolling"}
SCALE_IN_RULES = {"default": "Default", "oldestvm": "OldestVM", "newestvm": "NewestVM"}
HEALTH_EXTENSIONS = {"applicationhealthlinux", "applicationhealthwindows"}
#: ``vmHealth.status`` of an instance: healthy (ARM's wording), unhealthy, unknown (not running).
HEALTH_STATUS = {
    "healthy": {"code": "HealthState/healthy", "level": "Info", "displayStatus": "The VM is healthy"},
    "unhealthy": {"code": "HealthState/unhealthy", "level": "Warning", "displayStatus": "The VM is unhealthy"},
    "unknown": {"code": "HealthState/unknown", "level": "Warning", "displayStatus": "The VM health is unknown"},
}
#: Instance properties copied from ``virtualMachineProfile`` (besides storage, OS and network profiles).
COPIED_PROFILE_KEYS = ("diagnosticsProfile", "securityProfile", "licenseType", "additionalCapabilities", "scheduledEventsProfile")
_FILTER = re.compile(r"^\s*properties/latestModelApplied\s+eq\s+(true|false)\s*$", re.IGNORECASE)


def _ref(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) and value.get("id") else None


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        value, rest = divmod(value, 36)
        text = digits[rest] + text
        if value == 0:
            return text


class ScaleSetProvider:
    def __init__(
        self,
        services: Services,
        compute: ComputeProvider,
        network: NetworkProvider,
        load_balancers: LoadBalancerProvider,
    ) -> None:
        self.services = services
        self.store = services.store
        self.compute = compute
        self.network = network
        self.load_balancers = load_balancers
        network.private_ip_users.append(self._instance_private_ips)
        load_balancers.pool_users.append(self._pool_uses)

    def register(self, router: Router) -> None:
        sets = router.register(RESOURCE_GROUP, NS, ("virtualMachineScaleSets",))
        sets.on_item("PUT", self.put_vmss).on_item("PATCH", self.patch_vmss).on_item("GET", self.get_vmss)
        sets.on_item("DELETE", self.delete_vmss).on_collection("GET", self.list_vmss)
        sets.on_action("GET", "instanceView", self.get_vmss_instance_view)
        sets.on_action("GET", "skus", self.list_skus)
        for action in ACTIONS:
            sets.on_action("POST", action, self._set_action_handler(action))
        sets.on_action("POST", "manualUpgrade", self.manual_upgrade)
        sets.on_action("POST", "delete", self.delete_instances)
        router.register(SUBSCRIPTION, NS, ("virtualMachineScaleSets",)).on_collection("GET", self.list_all_vmss)
        vms = router.register(RESOURCE_GROUP, NS, ("virtualMachineScaleSets", "virtualMachines"))
        vms.on_item("GET", self.get_instance).on_item("PUT", self.put_instance).on_item("DELETE", self.delete_instance)
        vms.on_collection("GET", self.list_instances)
        vms.on_action("GET", "instanceView", self.get_instance_view)
        for action in INSTANCE_ACTIONS:
            vms.on_action("POST", action, self._instance_action_handler(action))
        router.register(RESOURCE_GROUP, NS, ("virtualMachineScaleSets", "networkInterfaces")).on_collection(
            "GET", self.list_set_nics
        )
        nics = router.register(RESOURCE_GROUP, NS, ("virtualMachineScaleSets", "virtualMachines", "networkInterfaces"))
        nics.on_item("GET", self.get_instance_nic).on_collection("GET", self.list_instance_nics)
        for kind in LATENCY_SECONDS:
            self.services.engine.register(kind, self._complete)
        self.services.on_release(VMSS, self._release_vmss)
        self.services.on_release(VMSS_VM, self._release_instance)

    # lookups --------------------------------------------------------------------------------------------------

    def _vmss_id(self, call: Call) -> str:
        assert call.resource_group is not None
        group = self.services.resource_group(call.subscription, call.resource_group)
        rg = group.body["name"] if group is not None else call.resource_group
        return ids.resource_id(call.subscription, rg, NS, ("virtualMachineScaleSets",), call.names[:1])

    def _require_vmss(self, call: Call) -> Resource:
        assert call.resource_group is not None
        self.services.require_resource_group(call.subscription, call.resource_group, for_write=False)
        vmss = self.store.get(self._vmss_id(call))
        if vmss is None:
            raise resource_not_found(VMSS, call.names[0], call.resource_group)
        return vmss

    def _require_instance(self, call: Call) -> tuple[Resource, Resource]:
        vmss = self._require_vmss(call)
        instance = self.store.get(f"{vmss.id}/virtualMachines/{call.names[1]}")
        if instance is None:
            assert call.resource_group is not None
            raise resource_not_found(f"{VMSS}/{call.names[0]}/virtualMachines", call.names[1], call.resource_group)
        return vmss, instance

    def _instances(self, vmss_id: str) -> list[Resource]:
        found = self.store.list(VMSS_VM, vmss_id)
        return sorted(found, key=lambda r: int(r.body["instanceId"]))

    def _live(self, vmss_id: str) -> list[Resource]:
        return [i for i in self._instances(vmss_id) if i.properties.get("provisioningState") != "Deleting"]

    # views ----------------------------------------------------------------------------------------------------

    def _vmss_view(self, vmss: Resource, expand: str | None = None) -> dict[str, Any]:
        body = copy.deepcopy(vmss.body)
        wanted = {e.strip().lower() for e in (expand or "").split(",")}
        if "userdata" in wanted and vmss.private.get("user_data") is not None:
            body["properties"]["virtualMachineProfile"]["userData"] = vmss.private["user_data"]
        return body

    def _instance_view_body(self, instance: Resource, vmss: Resource | None) -> dict[str, Any]:
        view = instance_view(instance)
        view["platformUpdateDomain"] = int(instance.body["instanceId"]) % 5
        view["platformFaultDomain"] = int(instance.body["instanceId"]) % 5
        health = _health_state(instance, vmss)
        if health is not None:
            view["vmHealth"] = {"status": dict(HEALTH_STATUS[health])}
        return view

    def _instance_body(self, instance: Resource, vmss: Resource | None, expand: str | None = None) -> dict[str, Any]:
        body = copy.deepcopy(instance.body)
        body["etag"] = f'"{instance.private.get("etag_seq", 1)}"'  # a quoted counter, as for VMs
        version = vmss.private.get("model_version") if vmss is not None else None
        body["properties"]["latestModelApplied"] = instance.private.get("model_version") == version
        wanted = {e.strip().lower() for e in (expand or "").split(",")}
        if "instanceview" in wanted:
            body["properties"]["instanceView"] = self._instance_view_body(instance, vmss)
        if "userdata" in wanted and vmss is not None and vmss.private.get("user_data") is not None:
            body["properties"]["userData"] = vmss.private["user_data"]
        return body

    # reads ----------------------------------------------------------------------------------------------------

    def get_vmss(self, call: Call) -> Reply:
        return Reply(200, self._vmss_view(self._require_vmss(call), call.param("$expand")))

    def list_vmss(self, call: Call) -> Reply:
        assert call.resource_group is not None
        group = self.services.require_resource_group(call.subscription, call.resource_group, for_write=False)
        return self.services.page(call, [self._vmss_view(v) for v in self.store.list(VMSS, group.id)])

    def list_all_vmss(self, call: Call) -> Reply:
        sets = self.store.list(VMSS, ids.subscription_id(call.subscription))
        return self.services.page(call, [self._vmss_view(v) for v in sets])

    def get_vmss_instance_view(self, call: Call) -> Reply:
        vmss = self._require_vmss(call)
        provisioning: Counter[str] = Counter()
        power: Counter[str] = Counter()
        for instance in self._instances(vmss.id):
            for status in instance_view(instance)["statuses"]:
                (power if status["code"].startswith("PowerState/") else provisioning)[status["code"]] += 1
        state = vmss.properties.get("provisioningState", "Succeeded")
        status: dict[str, Any] = {
            "code": f"ProvisioningState/{state.lower()}",
            "level": "Error" if state == "Failed" else "Info",
            "displayStatus": PROVISIONING_DISPLAY.get(state, state),
        }
        if vmss.private.get("provisioning_time") and state in ("Succeeded", "Failed"):
            status["time"] = vmss.private["provisioning_time"]
        extensions = util.get_path(vmss.body, "properties", "virtualMachineProfile", "extensionProfile", "extensions") or []
        count = sum(provisioning.values())
        view = {
            "virtualMachine": {
                "statusesSummary": [{"code": c, "count": n} for c, n in sorted(provisioning.items())]
                + [{"code": c, "count": n} for c, n in sorted(power.items())]
            },
            "extensions": [
                {"name": e.get("name"), "statusesSummary": [{"code": "ProvisioningState/succeeded", "count": count}]}
                for e in extensions
            ],
            "statuses": [status],
            "orchestrationServices": [
                {
                    "serviceName": "AutomaticRepairs",
                    "serviceState": "Running"
                    if util.get_path(vmss.body, "properties", "automaticRepairsPolicy", "enabled")
                    else "NotRunning",
                }
            ],
        }
        return Reply(200, view)

    def list_instances(self, call: Call) -> Reply:
        vmss = self._require_vmss(call)
        instances = self._instances(vmss.id)
        filter_text = call.param("$filter")
        if filter_text:
            match = _FILTER.match(filter_text)
            if match is None:
                raise invalid_parameter(
                    f"The $filter '{filter_text}' is not supported; use 'properties/latestModelApplied eq true|false'.",
                    "$filter",
                )
            wanted = match.group(1).lower() == "true"
            version = vmss.private.get("model_version")
            instances = [i for i in instances if (i.private.get("model_version") == version) == wanted]
        expand = call.param("$expand")
        return self.services.page(call, [self._instance_body(i, vmss, expand) for i in instances])

    def get_instance(self, call: Call) -> Reply:
        vmss, instance = self._require_instance(call)
        return Reply(200, self._instance_body(instance, vmss, call.param("$expand")))

    def get_instance_view(self, call: Call) -> Reply:
        vmss, instance = self._require_instance(call)
        return Reply(200, self._instance_view_body(instance, vmss))

    def list_skus(self, call: Call) -> Reply:
        """The sizes the scale set may take (the whole catalogue) with its capacity limits, as ARM lists them."""
        vmss = self._require_vmss(call)
        single = util.get_path(vmss.body, "properties", "singlePlacementGroup") is not False
        capacity = {"minimum": 0, "maximum": 100 if single else 1000, "defaultCapacity": 1, "scaleType": "Automatic"}
        skus = [
            {"resourceType": VMSS, "sku": {"name": size.name, "tier": "Standard"}, "capacity": dict(capacity)}
            for size in catalog.VM_SIZES
        ]
        return self.services.page(call, skus)

    # instance health (admin API) ------------------------------------------------------------------------------

    def set_health(self, instance_id: str, healthy: bool) -> dict[str, Any]:
        """Mark a scale set instance healthy or unhealthy (admin API); 404 for an unknown instance."""
        instance = self.store.edit(instance_id)
        if instance is None or instance.type != VMSS_VM:
            raise ArmError(404, "ResourceNotFound", f"The scale set instance '{instance_id}' was not found.")
        if healthy:
            instance.private.pop("unhealthy", None)
        else:
            instance.private["unhealthy"] = True
        self.store.put(instance)
        return self._health_entry(instance)

    def describe_health(self) -> list[dict[str, Any]]:
        """The health setting and ``vmHealth`` of every scale set instance (admin API)."""
        return [self._health_entry(i) for i in sorted(self.store.list(VMSS_VM), key=lambda r: r.id.lower())]

    def _health_entry(self, instance: Resource) -> dict[str, Any]:
        vmss = self.store.get(instance.id.rsplit("/virtualMachines/", 1)[0])
        health = _health_state(instance, vmss)
        return {
            "resource_id": instance.id,
            "healthy": not instance.private.get("unhealthy"),
            "vmHealth": {"status": dict(HEALTH_STATUS[health])} if health is not None else None,
        }

    def _nic_views(self, instance: Resource) -> list[dict[str, Any]]:
        addresses = {(e["nic"].lower(), e["ipconfig"].lower()): e for e in instance.private.get("ips", [])}
        configs = util.get_path(instance.body, "properties", "networkProfileConfiguration", "networkInterfaceConfigurations") or []
        views = []
        for config in configs:
            nic_id = f"{instance.id}/networkInterfaces/{config['name']}"
            cfg = config.get("properties", {})
            ip_configs = []
            for index, ip_config in enumerate(cfg.get("ipConfigurations", [])):
                entry = addresses.get((config["name"].lower(), ip_config["name"].lower()), {})
                ip = ip_config.get("properties", {})
                props: dict[str, Any] = {
                    "provisioningState": "Succeeded",
                    "privateIPAddress": entry.get("address"),
                    "privateIPAllocationMethod": "Dynamic",
                    "subnet": {"id": entry.get("subnet") or _ref(ip.get("subnet"))},
                    "primary": bool(ip.get("primary")) or index == 0,
                    "privateIPAddressVersion": ip.get("privateIPAddressVersion", "IPv4"),
                }
                for field in ("loadBalancerBackendAddressPools", "applicationGatewayBackendAddressPools"):
                    if ip.get(field):
                        props[field] = copy.deepcopy(ip[field])
                ip_configs.append(
                    {
                        "name": ip_config["name"],
                        "id": f"{nic_id}/ipConfigurations/{ip_config['name']}",
                        "etag": f'W/"{instance.private.get("vm_id", "")}"',
                        "properties": props,
                    }
                )
            nic_props: dict[str, Any] = {
                "provisioningState": "Succeeded",
                "ipConfigurations": ip_configs,
                "primary": bool(cfg.get("primary")) or len(configs) == 1,
                "enableAcceleratedNetworking": bool(cfg.get("enableAcceleratedNetworking")),
                "enableIPForwarding": bool(cfg.get("enableIPForwarding")),
                "dnsSettings": {"dnsServers": [], "appliedDnsServers": []},
                "macAddress": _mac_address(nic_id),
                "virtualMachine": {"id": instance.id},
            }
            if _ref(cfg.get("networkSecurityGroup")):
                nic_props["networkSecurityGroup"] = {"id": _ref(cfg.get("networkSecurityGroup"))}
            views.append(
                {
                    "name": config["name"],
                    "id": nic_id,
                    "etag": f'W/"{instance.private.get("vm_id", "")}"',
                    "location": instance.body["location"],
                    "properties": nic_props,
                }
            )
        return views

    def list_set_nics(self, call: Call) -> Reply:
        vmss = self._require_vmss(call)
        return self.services.page(call, [nic for i in self._instances(vmss.id) for nic in self._nic_views(i)])

    def list_instance_nics(self, call: Call) -> Reply:
        _, instance = self._require_instance(call)
        return self.services.page(call, self._nic_views(instance))

    def get_instance_nic(self, call: Call) -> Reply:
        _, instance = self._require_instance(call)
        for nic in self._nic_views(instance):
            if nic["name"].lower() == call.names[2].lower():
                return Reply(200, nic)
        assert call.resource_group is not None
        raise resource_not_found("Microsoft.Network/networkInterfaces", call.names[2], call.resource_group)

    # validation -----------------------------------------------------------------------------------------------

    def _validate_definition(
        self, vmss_id: str, name: str, body: dict[str, Any], existing: Resource | None
    ) -> tuple[str, str]:
        """Validate and fill in ``body`` (the whole scale set definition) in place; returns (osType, generation)."""
        props = body.setdefault("properties", {})
        mode = props.get("orchestrationMode") or "Uniform"
        if str(mode).lower() == "flexible":
            raise invalid_parameter(
                "Orchestration mode 'Flexible' is not supported by the emulator; use 'Uniform'.", "orchestrationMode"
            )
        if str(mode).lower() != "uniform":
            raise invalid_parameter(f"The value '{mode}' of parameter 'orchestrationMode' is not valid.", "orchestrationMode")
        props["orchestrationMode"] = "Uniform"
        sku = body.get("sku")
        if not isinstance(sku, dict):
            raise invalid_parameter("Required parameter 'sku' is missing (null).", "sku")
        size = _validate_size(sku.get("name"))
        sku["name"] = size.name
        sku.setdefault("tier", "Standard")
        capacity = sku.get("capacity", 0)
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
            raise invalid_parameter(f"The value '{capacity}' of parameter 'sku.capacity' is not valid.", "sku.capacity")
        props.setdefault("overprovision", True)
        props.setdefault("doNotRunExtensionsOnOverprovisionedVMs", False)
        props.setdefault("singlePlacementGroup", True)
        limit = 100 if props["singlePlacementGroup"] else 1000
        if capacity > limit:
            raise invalid_parameter(
                f"The capacity {capacity} exceeds the maximum of {limit} virtual machines for this scale set.",
                "sku.capacity",
            )
        sku["capacity"] = capacity
        profile = props.get("virtualMachineProfile")
        if not isinstance(profile, dict):
            raise invalid_parameter("Required parameter 'virtualMachineProfile' is missing (null).", "virtualMachineProfile")
        storage = profile.setdefault("storageProfile", {})
        os_disk = storage.setdefault("osDisk", {})
        os_disk.setdefault("createOption", "FromImage")
        if str(os_disk["createOption"]).lower() != "fromimage":
            raise invalid_parameter("A scale set OS disk must be created 'FromImage'.", "osDisk.createOption")
        reference = copy.deepcopy(storage.get("imageReference"))
        image = self.compute._validate_image(reference, os_disk, profile.get("osProfile"))
        os_type, generation = image
        os_disk["osType"] = os_type  # ARM shows the image's OS type in the model
        if existing is None:
            os_profile = _validate_os_profile(profile.get("osProfile"), os_type, name)
            os_profile.pop("computerName", None)
            os_profile.setdefault("computerNamePrefix", name[:9] if os_type == "Windows" else name)
            profile["osProfile"] = os_profile
        elif isinstance(profile.get("osProfile"), dict):
            profile["osProfile"].pop("adminPassword", None)
            profile["osProfile"].pop("customData", None)
        _fill_model_data_disks(storage, size, image.data_disks)
        _validate_size_properties(profile, size)
        if profile.get("priority") == "Spot":
            profile.setdefault("evictionPolicy", "Deallocate")
        self._validate_network_profile(profile, vmss_id)
        policy = props.get("upgradePolicy") if isinstance(props.get("upgradePolicy"), dict) else {}
        upgrade_mode = UPGRADE_MODES.get(str(policy.get("mode") or "Manual").lower())
        if upgrade_mode is None:
            raise invalid_parameter(f"The value '{policy.get('mode')}' of parameter 'upgradePolicy.mode' is not valid.", "upgradePolicy.mode")
        policy["mode"] = upgrade_mode
        if upgrade_mode == "Rolling":
            rolling = policy.setdefault("rollingUpgradePolicy", {})
            rolling.setdefault("maxBatchInstancePercent", 20)
            rolling.setdefault("maxUnhealthyInstancePercent", 20)
            rolling.setdefault("maxUnhealthyUpgradedInstancePercent", 20)
            rolling.setdefault("pauseTimeBetweenBatches", "PT0S")
            percent = rolling["maxBatchInstancePercent"]
            if not isinstance(percent, int) or not 5 <= percent <= 100:
                raise invalid_parameter(
                    f"The value '{percent}' of parameter 'maxBatchInstancePercent' is not valid (5-100).",
                    "upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent",
                )
            if not _has_health_signal(profile):
                raise ArmError(
                    400,
                    "BadRequest",
                    "Rolling Upgrade mode is not supported for this Virtual Machine Scale Set because a health probe "
                    "or health extension was not provided.",
                )
        props["upgradePolicy"] = policy
        scale_in = props.get("scaleInPolicy")
        if isinstance(scale_in, dict):
            rules = []
            for rule in scale_in.get("rules") or ["Default"]:
                canonical = SCALE_IN_RULES.get(str(rule).lower())
                if canonical is None:
                    raise invalid_parameter(f"The value '{rule}' of parameter 'scaleInPolicy.rules' is not valid.", "scaleInPolicy.rules")
                rules.append(canonical)
            scale_in["rules"] = rules
        return os_type, generation

    def _validate_network_profile(self, profile: dict[str, Any], vmss_id: str) -> None:
        network_profile = profile.get("networkProfile")
        configs = network_profile.get("networkInterfaceConfigurations") if isinstance(network_profile, dict) else None
        if not configs:
            raise invalid_parameter(
                "Required parameter 'networkProfile.networkInterfaceConfigurations' is missing (null).", "networkProfile"
            )
        assert isinstance(network_profile, dict)
        primaries = 0
        for config in configs:
            if not isinstance(config, dict) or not config.get("name"):
                raise invalid_parameter("Every network interface configuration needs a name.", "networkInterfaceConfigurations")
            cfg = config.setdefault("properties", {})
            primaries += 1 if cfg.get("primary") else 0
            cfg.setdefault("dnsSettings", {"dnsServers": []})
            cfg.setdefault("enableAcceleratedNetworking", False)
            cfg.setdefault("enableIPForwarding", False)
            nsg_id = _ref(cfg.get("networkSecurityGroup"))
            if nsg_id is not None:
                nsg = self.store.get(nsg_id)
                if nsg is None or nsg.type.lower() != NSG.lower():
                    raise invalid_reference(nsg_id, vmss_id)
                cfg["networkSecurityGroup"] = {"id": nsg.id}
            ip_configs = cfg.get("ipConfigurations")
            if not ip_configs:
                raise invalid_parameter(
                    f"Network interface configuration '{config['name']}' needs at least one IP configuration.",
                    "ipConfigurations",
                )
            for ip_config in ip_configs:
                if not isinstance(ip_config, dict) or not ip_config.get("name"):
                    raise invalid_parameter("Every IP configuration needs a name.", "ipConfigurations")
                ip = ip_config.setdefault("properties", {})
                subnet_id = _ref(ip.get("subnet"))
                if subnet_id is None:
                    raise invalid_parameter(
                        f"IP configuration '{ip_config['name']}' needs a subnet reference.", "ipConfigurations.subnet"
                    )
                ip["subnet"] = {"id": self.network.require_subnet(subnet_id, vmss_id)}
                ip.setdefault("privateIPAddressVersion", "IPv4")
                for field, collection in (
                    ("loadBalancerBackendAddressPools", "backendAddressPools"),
                    ("loadBalancerInboundNatPools", "inboundNatPools"),
                ):
                    if ip.get(field):
                        ip[field] = [
                            {"id": self.load_balancers.require_child(_ref(r), collection, vmss_id)} for r in ip[field]
                        ]
        if len(configs) > 1 and primaries != 1:
            raise invalid_parameter(
                "A scale set with multiple network interface configurations must have exactly one primary one.",
                "networkInterfaceConfigurations",
            )
        probe = _ref(network_profile.get("healthProbe"))
        if probe is not None:
            network_profile["healthProbe"] = {"id": self.load_balancers.require_child(probe, "probes", vmss_id)}

    # create / update ------------------------------------------------------------------------------------------

    def put_vmss(self, call: Call) -> Reply:
        assert call.resource_group is not None
        group = self.services.require_resource_group(call.subscription, call.resource_group)
        request = call.body if isinstance(call.body, dict) else {}
        vmss_id = self.services.canonical_id(call)
        existing = self.store.get(vmss_id)
        if existing is not None:
            return self._update(call, existing, request)
        location = request.get("location")
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        body: dict[str, Any] = {
            "name": call.name,
            "id": vmss_id,
            "type": VMSS,
            "location": util.normalize_location(location),
            "sku": copy.deepcopy(request.get("sku")),
        }
        for optional in ("tags", "zones", "plan", "identity", "extendedLocation"):
            if request.get(optional):
                body[optional] = copy.deepcopy(request[optional])
        fill_identity(body, call.subscription)
        body["properties"] = copy.deepcopy(request.get("properties") or {})
        user_data = None
        if isinstance(body["properties"].get("virtualMachineProfile"), dict):
            user_data = body["properties"]["virtualMachineProfile"].pop("userData", None)
        os_type, generation = self._validate_definition(vmss_id, call.name, body, None)
        props = body["properties"]
        props["uniqueId"] = util.new_uuid()
        props["timeCreated"] = util.iso(util.now())
        props["provisioningState"] = "Creating"
        operation = self._begin(call, "vmss.create", "create", vmss_id, body["location"], vmss_id)
        vmss = Resource(
            id=vmss_id,
            type=VMSS,
            body=body,
            private={
                "model_version": 1,
                "next_instance_id": 0,
                "active_operation": operation.id,
                "active_name": "create",
                "os_type": os_type,
                "hyper_v_generation": generation,
                "user_data": user_data,
            },
        )
        self.store.put(vmss)
        created = self._scale_out(vmss, body["sku"]["capacity"], operation, group.body["name"])
        self._set_params(operation, vmss_id, created)
        return Reply(201, self._vmss_view(self.store.get(vmss_id)), self.services.lro_headers(call, operation))  # type: ignore[arg-type]

    def patch_vmss(self, call: Call) -> Reply:
        vmss = self._require_vmss(call)
        return self._update(call, vmss, call.body if isinstance(call.body, dict) else {})

    def _update(self, call: Call, existing: Resource, request: dict[str, Any]) -> Reply:
        assert call.resource_group is not None
        self.services.require_resource_group(call.subscription, call.resource_group)
        self._check_writable(existing, "update" if call.method == "PATCH" else "createOrUpdate")
        self._check_immutable(existing, request)
        patch: dict[str, Any] = {}
        user_data = existing.private.get("user_data")
        if "properties" in request:
            patch["properties"] = copy.deepcopy(request["properties"] or {})
            profile_patch = patch["properties"].get("virtualMachineProfile")
            if isinstance(profile_patch, dict) and "userData" in profile_patch:
                user_data = profile_patch.pop("userData")
        for optional in ("sku", "plan", "identity"):
            if optional in request:
                patch[optional] = copy.deepcopy(request[optional])
        merged = util.deep_merge(existing.body, patch)
        fill_identity(merged, call.subscription)
        if "tags" in request:
            merged["tags"] = request["tags"] or {}
            if not merged["tags"]:
                merged.pop("tags")
        props = merged["properties"]
        for read_only in ("uniqueId", "timeCreated", "orchestrationMode"):
            props[read_only] = existing.properties.get(read_only)
        os_type, generation = self._validate_definition(existing.id, existing.body["name"], merged, existing)
        model_changed = _model(merged, user_data) != _model(existing.body, existing.private.get("user_data"))
        vmss = Resource(id=existing.id, type=VMSS, body=merged, private=copy.deepcopy(existing.private))
        vmss.private.update(os_type=os_type, hyper_v_generation=generation, user_data=user_data)
        if model_changed:
            vmss.private["model_version"] = int(vmss.private.get("model_version", 1)) + 1
        props["provisioningState"] = "Updating"
        live = self._live(existing.id)
        wanted = merged["sku"]["capacity"]
        mode = props["upgradePolicy"]["mode"]
        to_upgrade = []
        if model_changed and mode == "Automatic":
            to_upgrade = [i for i in live if not _protected(i, "protectFromScaleSetActions")]
        victims = self._pick_scale_in(vmss, live, len(live) - wanted) if wanted < len(live) else []
        if wanted < len(live) and len(live) - len(victims) != wanted:
            merged["sku"]["capacity"] = len(live) - len(victims)
        kind = "vmss.update"
        if wanted > len(live):
            kind = "vmss.scaleOut"
        elif to_upgrade:
            kind = "vmss.upgrade"
        elif victims:
            kind = "vmss.deleteInstances"
        operation = self._begin(call, kind, "update", existing.id, existing.body["location"], existing.id)
        vmss.private.update(active_operation=operation.id, active_name="update")
        self.store.put(vmss)
        victim_ids = {v.id for v in victims}
        to_upgrade = [i for i in to_upgrade if i.id not in victim_ids]
        for instance in to_upgrade:
            self._mark(instance, operation, "upgrade", "Updating", target_model=vmss.private["model_version"])
        for victim in victims:
            self._mark(victim, operation, "delete", "Deleting")
        group_name = ids.parse(existing.id).resource_group  # type: ignore[union-attr]
        created = self._scale_out(vmss, wanted - len(live), operation, group_name) if wanted > len(live) else []
        self._set_params(operation, existing.id, [*created, *(i.body["instanceId"] for i in to_upgrade), *(v.body["instanceId"] for v in victims)])
        return Reply(200, self._vmss_view(self.store.get(existing.id)), self.services.lro_headers(call, operation))  # type: ignore[arg-type]

    def _check_immutable(self, existing: Resource, request: dict[str, Any]) -> None:
        location = request.get("location")
        if location and util.normalize_location(location) != existing.body["location"]:
            raise _property_change("location")
        mode = util.get_path(request, "properties", "orchestrationMode")
        if mode and str(mode).lower() != "uniform":
            raise _property_change("orchestrationMode")
        for field_name in ("computerNamePrefix", "adminUsername"):
            wanted = util.get_path(request, "properties", "virtualMachineProfile", "osProfile", field_name)
            current = util.get_path(existing.body, "properties", "virtualMachineProfile", "osProfile", field_name)
            if wanted is not None and wanted != current:
                raise _property_change(f"osProfile.{field_name}")

    def _check_writable(self, vmss: Resource, operation_name: str) -> None:
        name = vmss.body["name"]
        check_writable(self.services, vmss, operation_name, f"on Virtual Machine Scale Set '{name}' since it is",
                       f"the Virtual Machine Scale Set '{name}'")

    def _pick_scale_in(self, vmss: Resource, live: list[Resource], count: int) -> list[Resource]:
        """Instances to remove: by ``scaleInPolicy`` (see the module doc), never those protected from scale-in."""
        candidates = [
            i for i in live
            if not _protected(i, "protectFromScaleIn") and not _protected(i, "protectFromScaleSetActions")
        ]
        rules = util.get_path(vmss.body, "properties", "scaleInPolicy", "rules") or ["Default"]
        rule = rules[0]
        if rule == "OldestVM":
            return sorted(candidates, key=lambda i: int(i.body["instanceId"]))[:count]
        if rule == "NewestVM":
            return sorted(candidates, key=lambda i: -int(i.body["instanceId"]))[:count]
        picked: list[Resource] = []
        zone_count = Counter(i.private.get("zone") for i in live)
        remaining = list(candidates)
        while remaining and len(picked) < count:
            busiest = max(zone_count[i.private.get("zone")] for i in remaining)
            in_zone = [i for i in remaining if zone_count[i.private.get("zone")] == busiest]
            victim = max(in_zone, key=lambda i: int(i.body["instanceId"]))
            picked.append(victim)
            remaining.remove(victim)
            zone_count[victim.private.get("zone")] -= 1
        return picked

    def _scale_out(self, vmss: Resource, count: int, operation: Operation, group_name: str) -> list[str]:
        """Create ``count`` instances from the current model (state Creating, owned by ``operation``)."""
        created = []
        zones = vmss.body.get("zones") or []
        for _ in range(count):
            current = self.store.edit(vmss.id)
            assert current is not None
            index = int(current.private.get("next_instance_id", 0))
            current.private["next_instance_id"] = index + 1
            self.store.put(current)
            zone = None
            if zones:
                per_zone = Counter(i.private.get("zone") for i in self._live(vmss.id))
                zone = min(zones, key=lambda z: (per_zone[z], zones.index(z)))
            instance_id = f"{vmss.id}/virtualMachines/{index}"
            body: dict[str, Any] = {
                "name": f"{vmss.body['name']}_{index}",
                "id": instance_id,
                "type": INSTANCE_TYPE,
                "location": vmss.body["location"],
                "instanceId": str(index),
            }
            if vmss.body.get("tags"):
                body["tags"] = copy.deepcopy(vmss.body["tags"])
            if zone is not None:
                body["zones"] = [zone]
            body["properties"] = {"vmId": util.new_uuid(), "timeCreated": util.iso(util.now())}
            instance = Resource(
                id=instance_id,
                type=VMSS_VM,
                body=body,
                private={"zone": zone, "ips": [], "vm_id": body["properties"]["vmId"]},
            )
            self._apply_model(instance, current, group_name)
            instance.properties["provisioningState"] = "Creating"
            instance.private.update(
                power="starting", previous_power=None, active_operation=operation.id, active_name="create"
            )
            self.store.put(instance)
            created.append(str(index))
        return created

    def _apply_model(self, instance: Resource, vmss: Resource, group_name: str) -> None:
        """(Re)build the model-derived parts of an instance from the scale set's current model (in place)."""
        profile = copy.deepcopy(vmss.body["properties"]["virtualMachineProfile"])
        size = catalog.find_size(vmss.body["sku"]["name"])
        assert size is not None
        index = int(instance.body["instanceId"])
        os_type = vmss.private.get("os_type", "Linux")
        storage = profile.get("storageProfile", {})
        reference = storage.get("imageReference") or {}
        image = catalog.find_image(reference.get("publisher"), reference.get("offer"), reference.get("sku"))
        if image is not None and image.resolve(reference.get("version")):
            reference["exactVersion"] = image.resolve(reference.get("version"))
        old_disk = util.get_path(instance.body, "properties", "storageProfile", "osDisk") or {}
        if old_disk.get("name"):
            storage.setdefault("osDisk", {})["name"] = old_disk["name"]
            storage["osDisk"].setdefault("managedDisk", {})["id"] = util.get_path(old_disk, "managedDisk", "id")
        vmss_name = vmss.body["name"]
        _fill_storage_profile(storage, instance.id, group_name, f"{vmss_name}_{vmss_name}_{index}", os_type, size, "FromImage")
        os_profile = profile.get("osProfile") or {}
        prefix = os_profile.pop("computerNamePrefix", vmss_name)
        os_profile["computerName"] = f"{prefix}{_base36(index).rjust(6, '0')}"
        os_profile.setdefault("allowExtensionOperations", True)
        os_profile.setdefault("requireGuestProvisionSignal", True)
        configs = util.get_path(profile, "networkProfile", "networkInterfaceConfigurations") or []
        props = instance.properties
        keep = {k: props[k] for k in ("vmId", "timeCreated", "protectionPolicy", "provisioningState") if k in props}
        props.clear()
        props.update(
            {
                "latestModelApplied": True,
                "modelDefinitionApplied": "VirtualMachineScaleSet",
                "vmId": keep.get("vmId"),
                "hardwareProfile": {**(profile.get("hardwareProfile") or {}), "vmSize": size.name},
                "storageProfile": storage,
                "osProfile": os_profile,
                "networkProfile": {
                    "networkInterfaces": [{"id": f"{instance.id}/networkInterfaces/{c['name']}"} for c in configs]
                },
                "networkProfileConfiguration": {"networkInterfaceConfigurations": configs},
            }
        )
        for key in COPIED_PROFILE_KEYS:
            if key in profile:
                props[key] = profile[key]
        props.update(keep)
        instance.body["sku"] = {"name": size.name, "tier": vmss.body["sku"].get("tier", "Standard")}
        instance.private["etag_seq"] = int(instance.private.get("etag_seq", 0)) + 1
        instance.private.update(
            model_version=vmss.private.get("model_version"),
            os_type=os_type,
            hyper_v_generation=vmss.private.get("hyper_v_generation", "V1"),
        )
        self._assign_ips(instance, configs)

    def _assign_ips(self, instance: Resource, configs: list[dict[str, Any]]) -> None:
        """One private IP per ip configuration, kept while the subnet stays; subnet back-references updated."""
        old = {(e["nic"].lower(), e["ipconfig"].lower()): e for e in instance.private.get("ips", [])}
        new_entries = []
        for config in configs:
            for ip_config in config["properties"]["ipConfigurations"]:
                subnet_id = ip_config["properties"]["subnet"]["id"]
                previous = old.pop((config["name"].lower(), ip_config["name"].lower()), None)
                ref = f"{instance.id}/networkInterfaces/{config['name']}/ipConfigurations/{ip_config['name']}"
                if previous is not None and previous["subnet"].lower() == subnet_id.lower():
                    new_entries.append(previous)
                    continue
                if previous is not None:
                    self.network.link_reference(previous["subnet"], "subnet", previous["ref"], add=False)
                taken = {e["address"] for e in new_entries if e["subnet"].lower() == subnet_id.lower()}
                subnet, address = self.network.allocate_private_ip(subnet_id, instance.id, taken)
                new_entries.append(
                    {"nic": config["name"], "ipconfig": ip_config["name"], "subnet": subnet, "address": address, "ref": ref}
                )
                self.network.link_reference(subnet, "subnet", ref, add=True)
        for stale in old.values():
            self.network.link_reference(stale["subnet"], "subnet", stale["ref"], add=False)
        instance.private["ips"] = new_entries

    # actions --------------------------------------------------------------------------------------------------

    def _set_action_handler(self, action: str) -> Callable[[Call], Reply]:
        def handler(call: Call) -> Reply:
            return self._set_action(call, action)

        return handler

    def _instance_action_handler(self, action: str) -> Callable[[Call], Reply]:
        def handler(call: Call) -> Reply:
            return self._instance_action(call, action)

        return handler

    def _requested_instances(self, vmss: Resource, call: Call, *, required: bool) -> list[Resource] | None:
        body = call.body if isinstance(call.body, dict) else {}
        wanted = body.get("instanceIds")
        if not wanted:
            if required:
                raise invalid_parameter("Required parameter 'instanceIds' is missing (null).", "instanceIds")
            return None
        found = []
        for instance_id in wanted:
            instance = self.store.get(f"{vmss.id}/virtualMachines/{instance_id}")
            if instance is None or instance.properties.get("provisioningState") == "Deleting":
                raise invalid_parameter(
                    f"The provided instanceId {instance_id} is not an active Virtual Machine Scale Set VM instanceId.",
                    "instanceIds",
                )
            if instance not in found:
                found.append(instance)
        return found

    def _check_idle(self, instances: list[Resource], operation_name: str) -> None:
        for instance in instances:
            active = self.services.engine.active(instance.private.get("active_operation"))
            if active is not None:
                raise operation_not_allowed(
                    f"Operation '{operation_name}' is not allowed since the Virtual Machine Scale Set VM "
                    f"'{instance.body['name']}' is in the middle of operation "
                    f"'{instance.private.get('active_name', active.name)}'. Wait for the ongoing operation to complete "
                    "and retry."
                )

    def _set_action(self, call: Call, action: str) -> Reply:
        vmss = self._require_vmss(call)
        self._check_writable(vmss, action)
        explicit = self._requested_instances(vmss, call, required=False)
        if explicit is None:
            targets = [i for i in self._live(vmss.id) if not _protected(i, "protectFromScaleSetActions")]
            if action == "restart":
                targets = [i for i in targets if i.private.get("power") == "running"]
        else:
            targets = explicit
            if action == "restart":
                self._check_running(targets)
        self._check_idle(targets, action)
        operation = self._begin(call, f"vmss.{action}", action, vmss.id, vmss.body["location"], vmss.id)
        for instance in targets:
            self._mark_power(instance, operation, action)
        self._set_params(operation, vmss.id, [i.body["instanceId"] for i in targets])
        return Reply(202, None, self.services.lro_headers(call, operation, location=True))

    def _instance_action(self, call: Call, action: str) -> Reply:
        vmss, instance = self._require_instance(call)
        if instance.properties.get("provisioningState") == "Deleting":
            raise operation_not_allowed(
                f"Operation '{action}' is not allowed on Virtual Machine Scale Set VM '{instance.body['name']}' since "
                "it is marked for deletion."
            )
        self._check_idle([instance], action)
        if action == "restart":
            self._check_running([instance])
        operation = self._begin(call, f"vmss.vm.{action}", action, instance.id, vmss.body["location"], vmss.id)
        if action in TRANSITIONAL:
            self._mark_power(instance, operation, action)
        else:  # redeploy: the instance keeps its power state
            self._mark(instance, operation, action, "Updating")
        self._set_params(operation, vmss.id, [instance.body["instanceId"]])
        return Reply(202, None, self.services.lro_headers(call, operation, location=True))

    def _check_running(self, instances: list[Resource]) -> None:
        for instance in instances:
            power = instance.private.get("power")
            if power != "running":
                raise operation_not_allowed(
                    f"Operation 'restart' is not allowed on Virtual Machine Scale Set VM '{instance.body['name']}' "
                    f"since the VM is {power or 'not running'}. Start the VM before restarting it."
                )

    def manual_upgrade(self, call: Call) -> Reply:
        vmss = self._require_vmss(call)
        self._check_writable(vmss, "manualUpgrade")
        targets = self._requested_instances(vmss, call, required=True) or []
        self._check_idle(targets, "manualUpgrade")
        operation = self._begin(call, "vmss.manualUpgrade", "manualUpgrade", vmss.id, vmss.body["location"], vmss.id)
        for instance in targets:
            self._mark(instance, operation, "upgrade", "Updating", target_model=vmss.private.get("model_version"))
        self._set_params(operation, vmss.id, [i.body["instanceId"] for i in targets])
        return Reply(202, None, self.services.lro_headers(call, operation, location=True))

    def delete_instances(self, call: Call) -> Reply:
        vmss = self._require_vmss(call)
        self._check_writable(vmss, "deleteInstances")
        targets = self._requested_instances(vmss, call, required=True) or []
        operation = self._begin(call, "vmss.deleteInstances", "delete", vmss.id, vmss.body["location"], vmss.id)
        self._shrink(vmss.id, len(targets))
        for instance in targets:
            self._mark(instance, operation, "delete", "Deleting")
        self._set_params(operation, vmss.id, [i.body["instanceId"] for i in targets])
        return Reply(202, None, self.services.lro_headers(call, operation, location=True))

    def put_instance(self, call: Call) -> Reply:
        vmss, instance = self._require_instance(call)
        request = call.body if isinstance(call.body, dict) else {}
        if instance.properties.get("provisioningState") == "Deleting":
            raise operation_not_allowed(
                f"Operation 'update' is not allowed on Virtual Machine Scale Set VM '{instance.body['name']}' since it "
                "is marked for deletion."
            )
        self._check_idle([instance], "update")
        protection = util.get_path(request, "properties", "protectionPolicy")
        if protection is not None:
            if not isinstance(protection, dict) or any(
                not isinstance(protection.get(k, False), bool) for k in ("protectFromScaleIn", "protectFromScaleSetActions")
            ):
                raise invalid_parameter("protectionPolicy needs boolean values.", "protectionPolicy")
        operation = self._begin(call, "vmss.vm.update", "update", instance.id, vmss.body["location"], vmss.id)
        self._mark(instance, operation, "update", "Updating")
        edited = self.store.edit(instance.id)
        assert edited is not None
        if protection is not None:
            edited.properties["protectionPolicy"] = {
                "protectFromScaleIn": bool(protection.get("protectFromScaleIn", False)),
                "protectFromScaleSetActions": bool(protection.get("protectFromScaleSetActions", False)),
            }
        if "tags" in request:
            edited.body["tags"] = request["tags"] or {}
        edited.private["etag_seq"] = int(edited.private.get("etag_seq", 1)) + 1
        self.store.put(edited)
        self._set_params(operation, vmss.id, [instance.body["instanceId"]])
        return Reply(200, self._instance_body(edited, vmss), self.services.lro_headers(call, operation))

    def delete_instance(self, call: Call) -> Reply:
        vmss = self.store.get(self._vmss_id(call))
        instance = self.store.get(f"{vmss.id}/virtualMachines/{call.names[1]}") if vmss is not None else None
        if vmss is None or instance is None:
            return Reply(204)
        if instance.properties.get("provisioningState") == "Deleting":
            current = self.services.engine.active(instance.private.get("active_operation"))
            if current is not None:
                return Reply(202, None, self.services.lro_headers(call, current, location=True))
        operation = self._begin(call, "vmss.vm.delete", "delete", instance.id, vmss.body["location"], vmss.id)
        self._shrink(vmss.id, 1)
        self._mark(instance, operation, "delete", "Deleting")
        self._set_params(operation, vmss.id, [instance.body["instanceId"]])
        return Reply(202, None, self.services.lro_headers(call, operation, location=True))

    def delete_vmss(self, call: Call) -> Reply:
        vmss = self.store.get(self._vmss_id(call)) if call.resource_group else None
        if vmss is None:
            return Reply(204)
        if vmss.properties.get("provisioningState") == "Deleting":
            current = self.services.engine.active(vmss.private.get("active_operation"))
            if current is not None:
                return Reply(202, None, self.services.lro_headers(call, current, location=True))
        active = self.services.engine.active(vmss.private.get("active_operation"))
        if active is not None:
            self.services.engine.cancel(
                active.id, "OperationPreempted", "Operation execution has been preempted by a more recent operation."
            )
        operation = self._begin(call, "vmss.delete", "delete", vmss.id, vmss.body["location"], vmss.id)
        edited = self.store.edit(vmss.id)
        assert edited is not None
        edited.properties["provisioningState"] = "Deleting"
        edited.private.update(active_operation=operation.id, active_name="delete")
        self.store.put(edited)
        instances = self._instances(vmss.id)
        for instance in instances:
            self._mark(instance, operation, "delete", "Deleting")
        self._set_params(operation, vmss.id, [i.body["instanceId"] for i in instances])
        return Reply(202, None, self.services.lro_headers(call, operation, location=True))

    # state helpers --------------------------------------------------------------------------------------------

    def _begin(self, call: Call, kind: str, name: str, resource_id: str, location: str, vmss_id: str) -> Operation:
        return self.services.begin(call, kind, resource_id, location, NS, name=name,
                                   params={"vmss": vmss_id, "instances": []})

    def _set_params(self, operation: Operation, vmss_id: str, instance_ids: list[str]) -> None:
        doc = self.store.get_operation(operation.id)
        assert doc is not None
        self.store.put_operation({**doc, "params": {"vmss": vmss_id, "instances": list(instance_ids)}})

    def _shrink(self, vmss_id: str, count: int) -> None:
        vmss = self.store.edit(vmss_id)
        if vmss is None:
            return
        vmss.body["sku"]["capacity"] = max(0, int(vmss.body["sku"].get("capacity", 0)) - count)
        self.store.put(vmss)

    def _mark(
        self, instance: Resource, operation: Operation, intent: str, state: str, *, target_model: int | None = None
    ) -> None:
        edited = self.store.edit(instance.id)
        assert edited is not None
        self._detach(edited)
        power = edited.private.get("power")
        edited.private.update(previous_power=power, active_operation=operation.id, active_name=intent)
        if target_model is not None:
            edited.private["target_model"] = target_model
        if intent == "delete":
            edited.private["power"] = "deallocating" if power in ("running", "starting", "stopped", "stopping") else power
        edited.properties["provisioningState"] = state
        self.store.put(edited)

    def _mark_power(self, instance: Resource, operation: Operation, action: str) -> None:
        self._mark(instance, operation, action, "Updating")
        edited = self.store.edit(instance.id)
        assert edited is not None
        power = edited.private.get("previous_power")
        edited.private["power"] = "deallocated" if action == "powerOff" and power == "deallocated" else TRANSITIONAL[action]
        self.store.put(edited)

    def _detach(self, instance: Resource) -> None:
        """Preempt the instance's in-flight operation (cancelled if it was the instance's own)."""
        active = self.services.engine.active(instance.private.get("active_operation"))
        if active is not None and ids.key(active.resource_id) == instance.key:
            self.services.engine.cancel(
                active.id, "OperationPreempted", "Operation execution has been preempted by a more recent operation."
            )
        instance.private["active_operation"] = None

    def _remove_instance(self, instance_id: str) -> None:
        instance = self.store.edit(instance_id)
        if instance is None:
            return
        instance.private["active_operation"] = None
        self.store.put(instance)
        self.services.remove(instance_id)

    # completions ----------------------------------------------------------------------------------------------

    def _complete(self, operation: Operation, error: dict[str, Any] | None) -> None:
        params = operation.params or {}
        vmss_id = params.get("vmss") or operation.resource_id
        for instance_id in params.get("instances", []):
            self._finish_instance(f"{vmss_id}/virtualMachines/{instance_id}", operation, error)
        vmss = self.store.edit(vmss_id)
        if vmss is None:
            return
        if vmss.private.get("rolling_operation") == operation.id:
            vmss.private.pop("rolling_operation", None)
            self.store.put(vmss)
        if vmss.private.get("active_operation") == operation.id:
            if operation.kind == "vmss.delete" and not error:
                for instance in self._instances(vmss_id):
                    self._remove_instance(instance.id)
                vmss.private["active_operation"] = None
                self.store.put(vmss)
                self.services.remove(vmss_id)
                return
            vmss.properties["provisioningState"] = "Failed" if error else "Succeeded"
            vmss.private.update(active_operation=None, provisioning_time=util.iso(util.now()), provisioning_error=error)
            self.store.put(vmss)
        self._continue_rolling(vmss_id)

    def _finish_instance(self, instance_id: str, operation: Operation, error: dict[str, Any] | None) -> None:
        instance = self.store.edit(instance_id)
        if instance is None or instance.private.get("active_operation") != operation.id:
            return
        intent = instance.private.get("active_name")
        previous = instance.private.get("previous_power")
        if intent == "delete" and not error:
            self._remove_instance(instance_id)
            return
        if error:
            power = None if intent == "create" else previous
        elif intent == "create":
            power = "running"
        elif intent in FINAL:
            power = "deallocated" if intent == "powerOff" and previous == "deallocated" else FINAL[intent]
        else:
            power = previous if previous not in (None, "starting") else "running"
        if intent == "upgrade" and not error:
            # the scale set's current model is applied (also if it changed again while this upgrade ran)
            vmss = self.store.get(instance_id.rsplit("/virtualMachines/", 1)[0])
            if vmss is not None:
                self._apply_model(instance, vmss, ids.parse(instance_id).resource_group)  # type: ignore[union-attr]
        instance.private.update(
            power=power, active_operation=None, provisioning_time=util.iso(util.now()), provisioning_error=error
        )
        instance.private.pop("target_model", None)
        instance.properties["provisioningState"] = "Failed" if error else "Succeeded"
        self.store.put(instance)

    def _continue_rolling(self, vmss_id: str) -> None:
        """Start the next rolling-upgrade batch if the scale set is Rolling and some instances are behind."""
        vmss = self.store.get(vmss_id)
        if vmss is None or util.get_path(vmss.body, "properties", "upgradePolicy", "mode") != "Rolling":
            return
        if vmss.properties.get("provisioningState") == "Deleting":
            return
        if self.services.engine.active(vmss.private.get("active_operation")) is not None:
            return
        if self.services.engine.active(vmss.private.get("rolling_operation")) is not None:
            return
        version = vmss.private.get("model_version")
        live = self._live(vmss_id)
        behind = [
            i for i in live
            if i.private.get("model_version") != version
            and not _protected(i, "protectFromScaleSetActions")
            and self.services.engine.active(i.private.get("active_operation")) is None
        ]
        if not behind:
            return
        percent = util.get_path(vmss.body, "properties", "upgradePolicy", "rollingUpgradePolicy", "maxBatchInstancePercent") or 20
        batch = behind[: max(1, len(live) * int(percent) // 100)]
        parsed = ids.parse(vmss_id)
        assert parsed is not None
        operation = self.services.engine.begin(
            "vmss.rollingBatch",
            name="rollingUpgrade",
            resource_id=vmss_id,
            subscription=parsed.subscription,
            namespace=NS,
            location=vmss.body["location"],
            params={"vmss": vmss_id, "instances": [i.body["instanceId"] for i in batch]},
        )
        edited = self.store.edit(vmss_id)
        assert edited is not None
        edited.private["rolling_operation"] = operation.id
        self.store.put(edited)
        for instance in batch:
            self._mark(instance, operation, "upgrade", "Updating", target_model=version)

    # release hooks and hooks into the network / load balancer providers -------------------------------------

    def _release_vmss(self, vmss: Resource) -> None:
        for instance in self._instances(vmss.id):
            self._remove_instance(instance.id)

    def _release_instance(self, instance: Resource) -> None:
        for entry in instance.private.get("ips", []):
            self.network.link_reference(entry["subnet"], "subnet", entry["ref"], add=False)

    def _instance_private_ips(self, subnet_id: str) -> set[str]:
        return {
            e["address"]
            for instance in self.store.list(VMSS_VM)
            for e in instance.private.get("ips", [])
            if e["subnet"].lower() == subnet_id.lower()
        }

    def _pool_uses(self, lb_id: str) -> list[PoolUse]:
        prefix = ids.key(lb_id) + "/"
        uses: list[PoolUse] = []

        def scan(configs: list[dict[str, Any]], owner: str, instance_id: str | None) -> None:
            for config in configs:
                for ip_config in config.get("properties", {}).get("ipConfigurations", []):
                    ip = ip_config.get("properties", {})
                    for field in ("loadBalancerBackendAddressPools", "loadBalancerInboundNatPools"):
                        for ref in ip.get(field) or []:
                            ref_id = _ref(ref)
                            if not ref_id or not ids.key(ref_id).startswith(prefix):
                                continue
                            member = None
                            if instance_id is not None and field == "loadBalancerBackendAddressPools":
                                member = (
                                    f"{instance_id}/networkInterfaces/{config['name']}/ipConfigurations/"
                                    f"{ip_config['name']}"
                                )
                            uses.append(PoolUse(ref_id, owner, VMSS, member))

        for vmss in self.store.list(VMSS):
            profile = vmss.properties.get("virtualMachineProfile") or {}
            scan(util.get_path(profile, "networkProfile", "networkInterfaceConfigurations") or [], vmss.id, None)
            probe = _ref(util.get_path(profile, "networkProfile", "healthProbe"))
            if probe and ids.key(probe).startswith(prefix):
                uses.append(PoolUse(probe, vmss.id, VMSS, None))
        for instance in self.store.list(VMSS_VM):
            configs = util.get_path(instance.body, "properties", "networkProfileConfiguration", "networkInterfaceConfigurations") or []
            scan(configs, instance.id.rsplit("/virtualMachines/", 1)[0], instance.id)
        return uses


# helpers ----------------------------------------------------------------------------------------------------------


def _protected(instance: Resource, flag: str) -> bool:
    return bool(util.get_path(instance.body, "properties", "protectionPolicy", flag))


def _has_health_signal(profile: dict[str, Any]) -> bool:
    if _ref(util.get_path(profile, "networkProfile", "healthProbe")):
        return True
    for extension in util.get_path(profile, "extensionProfile", "extensions") or []:
        if str(util.get_path(extension, "properties", "type") or "").lower() in HEALTH_EXTENSIONS:
            return True
    return False


def _model(body: dict[str, Any], user_data: Any) -> Any:
    """What defines an instance: the VM size, the VM profile and the user data."""
    return (
        str(util.get_path(body, "sku", "name") or "").lower(),
        util.get_path(body, "properties", "virtualMachineProfile"),
        user_data,
    )


def _health_state(instance: Resource, vmss: Resource | None) -> str | None:
    """``healthy``/``unhealthy``/``unknown`` of an instance of a scale set with a health signal, else None."""
    profile = util.get_path(vmss.body, "properties", "virtualMachineProfile") if vmss is not None else None
    if not isinstance(profile, dict) or not _has_health_signal(profile):
        return None
    if instance.private.get("power") != "running":
        return "unknown"
    return "unhealthy" if instance.private.get("unhealthy") else "healthy"


def _fill_model_data_disks(storage: dict[str, Any], size: catalog.VmSize, image_disks: dict[int, int]) -> None:
    """Validate the model's ``dataDisks`` and fill in ARM's defaults (``caching`` None, the size's default
    ``managedDisk.storageAccountType``), in place. ``image_disks``: ``{lun: sizeGB}`` of the image's data disks."""
    entries = storage.get("dataDisks")
    if entries is None:
        return
    if not isinstance(entries, list):
        raise invalid_parameter("The value of parameter 'dataDisks' is not valid: it must be a list.", "dataDisks")
    check_data_disk_count(len(entries), size)
    luns: set[int] = set()
    for index, entry in enumerate(entries):
        target = f"dataDisks[{index}]"
        if not isinstance(entry, dict):
            raise invalid_parameter(f"The value of parameter '{target}' is not valid.", "dataDisks")
        lun = check_lun(entry, index, luns)
        entry["createOption"] = _choice(entry.get("createOption") or "Empty", ("Empty", "FromImage"),
                                        f"{target}.createOption")
        if entry["createOption"] == "FromImage":
            if lun not in image_disks:
                raise invalid_parameter(f"Data disk at LUN {lun} has createOption 'FromImage' but the image has no "
                                        "data disk at that LUN.", f"{target}.createOption")
            entry.setdefault("diskSizeGB", image_disks[lun])
        if entry.get("diskSizeGB") is None:
            raise invalid_parameter(f"Required parameter '{target}.diskSizeGB' is missing (null): an empty "
                                    "data disk needs a size.", f"{target}.diskSizeGB")
        entry["diskSizeGB"] = disks.check_size(entry["diskSizeGB"], f"{target}.diskSizeGB",
                                               maximum=disks.MAX_DATA_DISK_GB)
        entry["caching"] = _choice(entry.get("caching") or "None", CACHING, f"{target}.caching")
        managed = entry.get("managedDisk")
        if not isinstance(managed, dict):
            managed = entry["managedDisk"] = {}
        default_sku = "Premium_LRS" if size.premium_io else "Standard_LRS"
        sku = disks.check_sku(managed.get("storageAccountType") or default_sku,
                              f"{target}.managedDisk.storageAccountType")
        _check_premium(sku, size)
        managed["storageAccountType"] = sku


def _validate_size_properties(profile: dict[str, Any], size: catalog.VmSize) -> None:
    """``hardwareProfile.vmSizeProperties``: ``vCPUsAvailable`` 1 to the size's vCPUs, ``vCPUsPerCore`` 1 or 2."""
    hardware = profile.get("hardwareProfile")
    if hardware is None:
        return
    properties = hardware.get("vmSizeProperties") if isinstance(hardware, dict) else None
    if not isinstance(hardware, dict) or not isinstance(properties, dict | None):
        raise invalid_parameter("The value of parameter 'hardwareProfile' is not valid.", "hardwareProfile")
    for field, low, high in (("vCPUsAvailable", 1, size.cores), ("vCPUsPerCore", 1, 2)):
        value = (properties or {}).get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
            raise invalid_parameter(
                f"The value '{value}' of parameter 'vmSizeProperties.{field}' is not valid for VM size "
                f"'{size.name}': it must be between {low} and {high}.",
                f"hardwareProfile.vmSizeProperties.{field}",
            )
