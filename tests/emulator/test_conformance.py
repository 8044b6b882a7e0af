"""Conformance of the emulator with the official Azure REST API examples (``tests/emulator/rest-examples``).

Every example file is either in :data:`CASES` (run) or in :data:`UNSUPPORTED` (with the reason); a new file that is in
neither fails :func:`test_every_example_is_classified`. A case creates its prerequisites (resource group, VNet,
NIC, VM, scale set, ...), sends the example's request (method and path of its operation, the example's api-version,
its path and query parameters and its body) over HTTPS with a bearer token, and checks:

* the status code is one the example lists (the initial one for long-running operations);
* for operations with a response body, the structure: the emulator's answer (for PUT/PATCH the GET after the
  operation completed, for GET/LIST the answer itself) has every key path of the example's answer, with the same
  JSON type (``rest_examples.structure_mismatches``). Values (ids, timestamps, ...) may differ. A key the emulator
  deliberately does not model is in the case's ``allowed`` map, with the reason.

Request values that are changed before sending (everything else is sent as the example has it):

* ``{subscription-id}``, ``{subscriptionId}``, ``subid`` and the examples' other subscription ids -> this test's
  subscription, in paths and in the ids of the bodies;
* ``{existing-...-name}``, ``{vm-name}``, ``{vmss-name}`` and the ids of referenced resources -> the names and ids of
  the prerequisites the case created (see ``NAMES`` and each case's ``replace``);
* ``{your-password}`` -> ``PASSWORD``: the placeholder fails ARM's password complexity rule;
* per case, with the reason in a comment beside it: ``replace``/``override``/``edit`` (generated ``aaaa...`` instance
  ids and values that ARM's validation rejects, ``{image_...}`` placeholders that name no platform image, the
  metrics examples' storage-account metrics) and the parameters a setup fills in (``resourceUri`` of the metrics
  example, recent ``timespan`` of both metrics examples).

A JSON ``null`` in an example's answer means "no value": the emulator may leave such a key out.
"""

from __future__ import annotations

import asyncio
import copy
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from emulator_helpers import SUBSCRIPTION
from rest_examples import example_files, examples_dir, load_example, structure_mismatches

from azure_arm_emulator import Emulator

PASSWORD = "Examp1e-Passw0rd!"
#: Names of the prerequisites that stand for the examples' ``{existing-...}`` placeholders.
NAMES = {
    "{existing-nic-name}": "nic1",
    "{existing-virtual-network-name}": "vnet1",
    "{existing-subnet-name}": "default",
    "{existing-load-balancer-name}": "lb1",
    "{existing-backend-address-pool-name}": "pool",
    "{existing-nat-pool-name}": "natpool",
    "{existing-application-gateway-name}": "appgw",
    "{existing-custom-image-name}": "myImage",
    "{existing-availability-set-name}": "myAvailabilitySet",
    "{vm-name}": "myVM",
    "{vmss-name}": "myvmss",
}
EXAMPLE_SUBSCRIPTIONS = ("{subscription-id}", "{subscriptionId}", "subid", "00000000-0000-0000-0000-000000000000")
UBUNTU = {"publisher": "Canonical", "offer": "UbuntuServer", "sku": "16.04-LTS", "version": "latest"}
LIVE_STATES = {"Creating", "Updating", "Deleting"}

#: Examples whose operation the emulator does not support at all.
UNSUPPORTED: dict[str, str] = {
    "monitor/createOrUpdateAutoscaleSetting.json": "autoscale settings (Microsoft.Insights/autoscalesettings) are "
    "not modelled",
}


# the emulator and plain HTTPS requests ---------------------------------------------------------------------------


class Ctx:
    """One emulator, an HTTPS session with a bearer token, and builders of prerequisites."""

    def __init__(self, emulator: Emulator, session: aiohttp.ClientSession) -> None:
        self.emulator = emulator
        self.session = session
        self.sub = SUBSCRIPTION

    async def request(
        self, method: str, path: str, body: Any = None, *, api_version: str = "2025-04-01",
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        params = {"api-version": api_version, **(query or {})}
        async with self.session.request(
            method, f"{self.emulator.url}{quote(path)}", params=params, json=body,
            headers={"Authorization": "Bearer conformance"},
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None, dict(response.headers)

    async def settled(self, path: str, api_version: str = "2025-04-01", query: dict[str, str] | None = None) -> Any:
        """GET until the resource's operation is over (latency 0: the first GET settles it)."""
        for _ in range(100):
            status, body, _ = await self.request("GET", path, api_version=api_version, query=query)
            assert status == 200, (path, status, body)
            if (body.get("properties") or {}).get("provisioningState") not in LIVE_STATES:
                return body
            await asyncio.sleep(0.01)
        raise AssertionError(f"{path} did not settle")

    async def put(self, path: str, body: dict[str, Any], api_version: str = "2025-04-01") -> Any:
        status, answer, _ = await self.request("PUT", path, body, api_version=api_version)
        assert status in (200, 201, 202), (path, status, answer)
        return await self.settled(path, api_version)

    async def post(self, path: str, body: Any = None) -> None:
        status, answer, _ = await self.request("POST", path, body)
        assert status in (200, 202, 204), (path, status, answer)

    # ids and prerequisites

    def rg_path(self, rg: str) -> str:
        return f"/subscriptions/{self.sub}/resourceGroups/{rg}"

    def id(self, rg: str, type_name: str, name: str) -> str:
        return f"{self.rg_path(rg)}/providers/{type_name}/{name}"

    async def rg(self, rg: str, location: str) -> None:
        await self.request("PUT", self.rg_path(rg), {"location": location})

    async def vnet(self, rg: str, location: str, name: str = "vnet1", subnet: str = "default") -> str:
        """A VNet 10.0.0.0/16 with one subnet 10.0.0.0/24; the subnet id."""
        subnets = [{"name": subnet, "properties": {"addressPrefix": "10.0.0.0/24"}}]
        body = {"location": location,
                "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": subnets}}
        vnet = await self.put(self.id(rg, "Microsoft.Network/virtualNetworks", name), body)
        return str(vnet["properties"]["subnets"][0]["id"])

    async def pip(self, rg: str, location: str, name: str, sku: str = "Standard") -> str:
        body = {"location": location, "sku": {"name": sku},
                "properties": {"publicIPAllocationMethod": "Static" if sku == "Standard" else "Dynamic"}}
        return str((await self.put(self.id(rg, "Microsoft.Network/publicIPAddresses", name), body))["id"])

    async def nic(self, rg: str, location: str, name: str, subnet_id: str, **config: Any) -> str:
        body = {"location": location, "properties": {"ipConfigurations": [
            {"name": "ipconfig1", "properties": {"subnet": {"id": subnet_id}, **config}}]}}
        return str((await self.put(self.id(rg, "Microsoft.Network/networkInterfaces", name), body))["id"])

    async def network(self, rg: str, location: str, nic: str = "nic1") -> tuple[str, str]:
        """Resource group, VNet ``vnet1``/``default`` and a NIC; ``(subnet id, NIC id)``."""
        await self.rg(rg, location)
        subnet_id = await self.vnet(rg, location)
        return subnet_id, await self.nic(rg, location, nic, subnet_id)

    async def vm(self, rg: str, location: str, name: str, nic_id: str, **properties: Any) -> Any:
        body = {"location": location, "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v3"},
            "storageProfile": {"imageReference": dict(UBUNTU), "osDisk": {"createOption": "FromImage"}},
            "osProfile": {"computerName": name, "adminUsername": "azureuser", "adminPassword": PASSWORD},
            "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True}}]},
            **properties,
        }}
        return await self.put(self.id(rg, "Microsoft.Compute/virtualMachines", name), body)

    async def vm_in_network(self, rg: str, location: str, name: str, **properties: Any) -> Any:
        _, nic_id = await self.network(rg, location)
        return await self.vm(rg, location, name, nic_id, **properties)

    async def vmss(self, rg: str, location: str, name: str, subnet_id: str, capacity: int = 2, *,
                   profile: dict[str, Any] | None = None, top: dict[str, Any] | None = None, **properties: Any) -> Any:
        """A Linux scale set; ``profile`` adds to its virtualMachineProfile, ``top`` to its top-level fields."""
        body = {"location": location, "sku": {"name": "Standard_D2s_v3", "tier": "Standard", "capacity": capacity},
                **(top or {}),
                "properties": {"upgradePolicy": {"mode": "Manual"}, "virtualMachineProfile": {
                    "storageProfile": {"imageReference": dict(UBUNTU), "osDisk": {"createOption": "FromImage"}},
                    "osProfile": {"computerNamePrefix": name[:9], "adminUsername": "azureuser",
                                  "adminPassword": PASSWORD},
                    "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
                        "primary": True,
                        "ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": subnet_id}}}]}}]},
                    **(profile or {}),
                }, **properties}}
        return await self.put(self.id(rg, "Microsoft.Compute/virtualMachineScaleSets", name), body)

    async def vmss_in_network(self, rg: str, location: str, name: str, **kwargs: Any) -> Any:
        await self.rg(rg, location)
        return await self.vmss(rg, location, name, await self.vnet(rg, location), **kwargs)

    async def blob_image(self, rg: str, location: str, name: str) -> str:
        body = {"location": location, "properties": {"storageProfile": {"osDisk": {
            "osType": "Linux", "osState": "Generalized",
            "blobUri": "https://mystorageaccount.blob.core.windows.net/osimages/osimage.vhd"}}}}
        return str((await self.put(self.id(rg, "Microsoft.Compute/images", name), body))["id"])

    async def lb(self, rg: str, location: str, subnet_id: str) -> str:
        """Load balancer ``lb1`` (public frontend ``fe``, pool ``pool``, probe ``probe``, NAT pool ``natpool``)."""
        pip_id = await self.pip(rg, location, "lb1-ip")
        lb_id = self.id(rg, "Microsoft.Network/loadBalancers", "lb1")
        fe = {"id": f"{lb_id}/frontendIPConfigurations/fe"}
        body = {"location": location, "sku": {"name": "Standard"}, "properties": {
            "frontendIPConfigurations": [{"name": "fe", "properties": {"publicIPAddress": {"id": pip_id}}}],
            "backendAddressPools": [{"name": "pool"}],
            "probes": [{"name": "probe", "properties": {"protocol": "Tcp", "port": 22}}],
            "inboundNatPools": [{"name": "natpool", "properties": {
                "frontendIPConfiguration": fe, "protocol": "Tcp", "frontendPortRangeStart": 50000,
                "frontendPortRangeEnd": 50099, "backendPort": 22}}],
            "loadBalancingRules": [{"name": "rule", "properties": {
                "frontendIPConfiguration": fe, "backendAddressPool": {"id": f"{lb_id}/backendAddressPools/pool"},
                "probe": {"id": f"{lb_id}/probes/probe"}, "protocol": "Tcp", "frontendPort": 80, "backendPort": 80}}],
        }}
        await self.put(lb_id, body, "2025-05-01")
        return lb_id


@pytest.fixture
async def ctx() -> AsyncIterator[Ctx]:
    # page size 1: the list examples that show ``nextLink`` get one from two resources
    emulator = Emulator(latency_scale=0.0, page_size=1, throttle_scale=100)
    await emulator.start(host="127.0.0.1", port=0)
    ssl_context = ssl.create_default_context(cafile=emulator.ca_path)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context)) as session:
            yield Ctx(emulator, session)
    finally:
        await emulator.stop()


# the table --------------------------------------------------------------------------------------------------------

Setup = Callable[[Ctx, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    method: str
    #: ARM route; ``{x}`` is the example's parameter ``x`` (after the substitutions).
    path: str
    setup: Setup | None = None
    #: The parameter that holds the request body.
    body: str | None = None
    #: Query parameters besides api-version: query name -> the example's parameter name.
    query: dict[str, str] = field(default_factory=dict)
    #: Text substitutions in the example's parameters (request body included), on top of the common ones.
    replace: dict[str, str] = field(default_factory=dict)
    #: Parameters set after the substitutions (path/query parameters, or the whole body).
    override: dict[str, Any] = field(default_factory=dict)
    #: Response key paths the emulator deliberately does not model: path -> reason.
    allowed: dict[str, str] = field(default_factory=dict)
    #: Last edits of the request body (with the reason in the case's comment).
    edit: Callable[[Ctx, dict[str, Any]], None] | None = None


CASES: dict[str, Case] = {}


def case(name: str, method: str, path: str, **options: Any) -> Callable[[Setup], Setup]:
    def register(setup: Setup) -> Setup:
        CASES[name] = Case(method, path, setup, **options)
        return setup

    return register


def plain(name: str, method: str, path: str, **options: Any) -> None:
    CASES[name] = Case(method, path, **options)


RG = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
COMPUTE = RG + "/providers/Microsoft.Compute"
NETWORK = RG + "/providers/Microsoft.Network"
VM = COMPUTE + "/virtualMachines/{vmName}"
VMSS = COMPUTE + "/virtualMachineScaleSets/{vmScaleSetName}"
VMSS_VM = VMSS + "/virtualMachines/{instanceId}"


async def resource_group(ctx: Ctx, params: dict[str, Any]) -> None:
    await ctx.rg(params["resourceGroupName"], "westus")


# resources ----------------------------------------------------------------------------------------------------------

plain("resources/CreateResourceGroup.json", "PUT", RG, body="parameters")


@case("resources/ResourceGroups_Get.json", "GET", RG)
async def _rg_get(ctx: Ctx, params: dict[str, Any]) -> None:
    await ctx.rg(params["resourceGroupName"], "eastus")


@case("resources/ForceDeleteVMsInResourceGroup.json", "DELETE", RG, query={"forceDeletionTypes": "forceDeletionTypes"})
async def _rg_force_delete(ctx: Ctx, params: dict[str, Any]) -> None:
    await ctx.vm_in_network(params["resourceGroupName"], "eastus", "vm1")


# network ----------------------------------------------------------------------------------------------------------

plain("network/VirtualNetworkCreate.json", "PUT", NETWORK + "/virtualNetworks/{virtualNetworkName}",
      body="parameters", setup=resource_group)
plain("network/VirtualNetworkCreateSubnet.json", "PUT", NETWORK + "/virtualNetworks/{virtualNetworkName}",
      body="parameters", setup=resource_group)
plain("network/PublicIpAddressCreateDefaults.json", "PUT", NETWORK + "/publicIPAddresses/{publicIpAddressName}",
      body="parameters", setup=resource_group,
      # a new public IP has no ipConfiguration until a NIC or load balancer uses it
      allowed={"properties.ipConfiguration": "set only while a NIC or load balancer frontend uses the address"})
plain("network/NetworkSecurityGroupCreateWithRule.json", "PUT",
      NETWORK + "/networkSecurityGroups/{networkSecurityGroupName}", body="parameters", setup=resource_group)


@case("network/SubnetCreate.json", "PUT", NETWORK + "/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}",
      body="subnetParameters")
async def _subnet_create(ctx: Ctx, params: dict[str, Any]) -> None:
    rg = params["resourceGroupName"]
    await ctx.rg(rg, "eastus")
    await ctx.put(ctx.id(rg, "Microsoft.Network/virtualNetworks", params["virtualNetworkName"]), {
        "location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}})


@case("network/NetworkInterfaceCreate.json", "PUT", NETWORK + "/networkInterfaces/{networkInterfaceName}",
      body="parameters")
async def _nic_create(ctx: Ctx, params: dict[str, Any]) -> None:
    rg = params["resourceGroupName"]
    await ctx.rg(rg, "eastus")
    await ctx.vnet(rg, "eastus", "rg1-vnet", "default")
    await ctx.pip(rg, "eastus", "test-ip")


@case("network/NetworkInterfaceGet.json", "GET", NETWORK + "/networkInterfaces/{networkInterfaceName}",
      allowed={"properties.dscpConfiguration": "DSCP configurations are not modelled"})
async def _nic_get(ctx: Ctx, params: dict[str, Any]) -> None:
    # the NIC of the example: two ip configurations, a public IP, an NSG, attached to a VM
    rg = params["resourceGroupName"]
    await ctx.rg(rg, "eastus")
    subnet_id = await ctx.vnet(rg, "eastus", "rg1-vnet", "default")
    pip_id = await ctx.pip(rg, "eastus", "test-ip")
    nsg = await ctx.put(ctx.id(rg, "Microsoft.Network/networkSecurityGroups", "nsg"), {"location": "eastus"})
    nic_id = ctx.id(rg, "Microsoft.Network/networkInterfaces", params["networkInterfaceName"])
    await ctx.put(nic_id, {"location": "eastus", "properties": {
        "enableAcceleratedNetworking": True, "disableTcpStateTracking": True,
        "networkSecurityGroup": {"id": nsg["id"]},
        "ipConfigurations": [
            {"name": "ipconfig1", "properties": {"subnet": {"id": subnet_id}, "publicIPAddress": {"id": pip_id}}},
            {"name": "ipconfig2", "properties": {"subnet": {"id": subnet_id}, "privateIPAddressPrefixLength": 28}},
        ]}})
    await ctx.vm(rg, "eastus", "vm1", nic_id)


@case("network/PublicIpAddressGet.json", "GET", NETWORK + "/publicIPAddresses/{publicIpAddressName}",
      allowed={"properties.ddosSettings": "DDoS protection plans are not modelled",
               "properties.ipTags": "IP tags are not modelled"})
async def _pip_get(ctx: Ctx, params: dict[str, Any]) -> None:
    # the example's address is Basic/Dynamic and used by a NIC
    rg = params["resourceGroupName"]
    await ctx.rg(rg, "westus")
    subnet_id = await ctx.vnet(rg, "westus")
    pip_id = await ctx.pip(rg, "westus", params["publicIpAddressName"], sku="Basic")
    await ctx.nic(rg, "westus", "testDNS649", subnet_id, publicIPAddress={"id": pip_id})


@case("network/LoadBalancerCreateWithOutboundRules.json", "PUT", NETWORK + "/loadBalancers/{loadBalancerName}",
      body="parameters")
async def _lb_public_ip(ctx: Ctx, params: dict[str, Any]) -> None:
    rg = params["resourceGroupName"]
    await ctx.rg(rg, "eastus")
    await ctx.pip(rg, "eastus", "pip")


@case("network/LoadBalancerGet.json", "GET", NETWORK + "/loadBalancers/{loadBalancerName}")
async def _lb_get(ctx: Ctx, params: dict[str, Any]) -> None:
    # the example's load balancer: an internal (subnet) frontend, one pool, a rule with a probe, a NAT rule
    rg = params["resourceGroupName"]
    await ctx.rg(rg, "westus")
    subnet_id = await ctx.vnet(rg, "westus", "vnetlb", "subnetlb")
    lb_id = ctx.id(rg, "Microsoft.Network/loadBalancers", params["loadBalancerName"])
    fe = {"id": f"{lb_id}/frontendIPConfigurations/fe-lb"}
    await ctx.put(lb_id, {"location": "westus", "sku": {"name": "Basic"}, "properties": {
        "frontendIPConfigurations": [{"name": "fe-lb", "properties": {"subnet": {"id": subnet_id}}}],
        "backendAddressPools": [{"name": "be-lb"}],
        "probes": [{"name": "probe-lb", "properties": {"protocol": "Http", "port": 80, "requestPath": "healthcheck.aspx",
                                                       "intervalInSeconds": 15, "numberOfProbes": 2}}],
        "loadBalancingRules": [{"name": "rulelb", "properties": {
            "frontendIPConfiguration": fe, "backendAddressPool": {"id": f"{lb_id}/backendAddressPools/be-lb"},
            "probe": {"id": f"{lb_id}/probes/probe-lb"}, "protocol": "Tcp", "loadDistribution": "Default",
            "frontendPort": 80, "backendPort": 80, "idleTimeoutInMinutes": 15, "enableFloatingIP": True,
            "enableTcpReset": True}}],
        "inboundNatRules": [{"name": "in-nat-rule", "properties": {
            "frontendIPConfiguration": fe, "frontendPort": 3389, "backendPort": 3389, "enableFloatingIP": True,
            "idleTimeoutInMinutes": 15, "protocol": "Tcp", "enableTcpReset": False}}],
        "inboundNatPools": [], "outboundRules": [],
    }}, "2025-05-01")


# monitor ------------------------------------------------------------------------------------------------------------


def _recent_timespan() -> str:
    # the examples ask for 2021: long before the resources this test creates, whose minutes would hold no values
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return f"{(end - timedelta(hours=12)).isoformat()}/{end.isoformat()}"


@case("monitor/GetMetric.json", "GET", "/{resourceUri}/providers/Microsoft.Insights/metrics",
      query={k: k for k in ("timespan", "interval", "metricnames", "aggregation", "top", "orderby", "$filter",
                            "metricnamespace", "AutoAdjustTimegrain", "ValidateDimensions")},
      # the example's resource is a storage account (not modelled) and its BlobCount metric split by tier: this
      # asks the same of a scale set, its Percentage CPU split by instance (the only metric the emulator serves)
      override={"metricnames": "Percentage CPU", "metricnamespace": "Microsoft.Compute/virtualMachineScaleSets",
                "$filter": "VMName eq '*'"})
async def _metric(ctx: Ctx, params: dict[str, Any]) -> None:
    vmss = await ctx.vmss_in_network("todking", "westus", "tkvmss")
    params["resourceUri"] = vmss["id"].lstrip("/")
    params["timespan"] = _recent_timespan()
    await ctx.request("PUT", "/_admin/load", {"resource_id": vmss["id"], "cpu_percent": 7.0})


@case("monitor/GetMultiResourceMetric.json", "GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Insights/metrics",
      query={k: k for k in ("region", "timespan", "interval", "metricnames", "aggregation", "top", "orderby",
                            "$filter", "metricnamespace", "rollupBy", "AutoAdjustTimegrain", "ValidateDimensions")},
      # "Data Disk Max Burst IOPS" split by LUN is not modelled: the CPU of every VM of the region instead
      override={"metricnames": "Percentage CPU", "$filter": "Microsoft.ResourceId eq '*'", "rollupBy": ""})
async def _multi_metric(ctx: Ctx, params: dict[str, Any]) -> None:
    vm = await ctx.vm_in_network("rg", params["region"], "vm1")
    params["timespan"] = _recent_timespan()
    await ctx.request("PUT", "/_admin/load", {"resource_id": vm["id"], "cpu_percent": 12.5})


# availability sets ----------------------------------------------------------------------------------------------------

AVSET = COMPUTE + "/availabilitySets/{availabilitySetName}"
MIGRATION = {"properties.virtualMachineScaleSetMigrationInfo": "migration of a set to a scale set is not modelled"}


async def _avset(ctx: Ctx, params: dict[str, Any], **properties: Any) -> str:
    rg = params["resourceGroupName"]
    await ctx.rg(rg, "westus")
    path = ctx.id(rg, "Microsoft.Compute/availabilitySets", params.get("availabilitySetName", "myAvailabilitySet"))
    return str((await ctx.put(path, {"location": "westus", "properties": properties}))["id"])


plain("compute/availabilitySets/AvailabilitySet_Create.json", "PUT", AVSET, body="parameters", setup=resource_group,
      allowed=MIGRATION)
plain("compute/availabilitySets/AvailabilitySet_Get_MinimumSet_Gen.json", "GET", AVSET, setup=_avset)
plain("compute/availabilitySets/AvailabilitySet_Delete_MinimumSet_Gen.json", "DELETE", AVSET, setup=_avset)


@case("compute/availabilitySets/AvailabilitySet_Get_MaximumSet_Gen.json", "GET", AVSET, allowed={
    **MIGRATION,
    "properties.proximityPlacementGroup": "proximity placement groups are not modelled",
    "properties.statuses[].message": "the emulator's only status (provisioning succeeded) has no message",
    "sku.tier": "ARM's sku of an availability set has only a name (the generated example adds tier/capacity)",
    "sku.capacity": "ARM's sku of an availability set has only a name (the generated example adds tier/capacity)",
})
async def _avset_max(ctx: Ctx, params: dict[str, Any]) -> None:
    # the example's set: a member VM, update domains, a scheduled events policy and tags
    avset_id = await _avset(ctx, params, platformFaultDomainCount=2, platformUpdateDomainCount=20,
                            scheduledEventsPolicy=load_example(
                                "compute/availabilitySets/AvailabilitySet_Get_MaximumSet_Gen.json"
                            )["responses"]["200"]["body"]["properties"]["scheduledEventsPolicy"])
    rg = params["resourceGroupName"]
    await ctx.request("PATCH", avset_id, {"tags": {"key9626": "value", "key2505": "aa"}})
    subnet_id = await ctx.vnet(rg, "westus")
    await ctx.vm(rg, "westus", "vm1", await ctx.nic(rg, "westus", "nic1", subnet_id), availabilitySet={"id": avset_id})


@case("compute/availabilitySets/AvailabilitySet_List_MinimumSet_Gen.json", "GET", COMPUTE + "/availabilitySets")
async def _avset_list(ctx: Ctx, params: dict[str, Any]) -> None:
    for name in ("myAvailabilitySet1", "myAvailabilitySet2"):
        await _avset(ctx, {**params, "availabilitySetName": name})


# images -------------------------------------------------------------------------------------------------------------

IMAGE = COMPUTE + "/images/{imageName}"


async def _disks(ctx: Ctx, rg: str, *names: str) -> None:
    for name in names:
        status, body, _ = await ctx.request("PUT", ctx.id(rg, "Microsoft.Compute/disks", name), {
            "location": "westus", "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 20}})
        assert status == 202, body
        await ctx.settled(ctx.id(rg, "Microsoft.Compute/disks", name))


plain("compute/images/Image_CreateFromABlob.json", "PUT", IMAGE, body="parameters", setup=resource_group)


@case("compute/images/Image_CreateFromAManagedDisk.json", "PUT", IMAGE, body="parameters")
async def _image_from_disk(ctx: Ctx, params: dict[str, Any]) -> None:
    await ctx.rg(params["resourceGroupName"], "westus")
    await _disks(ctx, params["resourceGroupName"], "myManagedDisk")


@case("compute/images/Image_CreateFromAVM.json", "PUT", IMAGE, body="parameters")
async def _image_from_vm(ctx: Ctx, params: dict[str, Any]) -> None:
    # ARM wants a generalized VM; the emulator takes a deallocated one too
    vm = await ctx.vm_in_network(params["resourceGroupName"], "westus", "myVM")
    await ctx.post(f"{vm['id']}/deallocate")


async def _shown_images(ctx: Ctx, rg: str, *names: str) -> None:
    """The image of the Get example, from every source at once (a blob, a snapshot and a managed disk) and with a
    data disk; its two managed disks are created first."""
    await ctx.rg(rg, "westus")
    await _disks(ctx, rg, "myManagedDisk1", "myManagedDisk2")
    shown = load_example("compute/images/Image_Get.json")["responses"]["200"]["body"]
    request = json.loads(_substitute(json.dumps({"location": shown["location"], "properties": shown["properties"]}),
                                     ctx, {}))
    request["properties"].pop("provisioningState")
    for name in names:
        await ctx.put(ctx.id(rg, "Microsoft.Compute/images", name), request)


plain("compute/images/Image_Get.json", "GET", IMAGE,
      setup=lambda ctx, params: _shown_images(ctx, params["resourceGroupName"], params["imageName"]))
plain("compute/images/Image_ListByResourceGroup.json", "GET", COMPUTE + "/images",
      setup=lambda ctx, params: _shown_images(ctx, params["resourceGroupName"], "myImage", "myImage2"))


@case("compute/images/Images_Delete_MinimumSet_Gen.json", "DELETE", IMAGE)
async def _image_delete(ctx: Ctx, params: dict[str, Any]) -> None:
    await ctx.rg(params["resourceGroupName"], "westus")
    await ctx.blob_image(params["resourceGroupName"], "westus", params["imageName"])


# virtual machines -------------------------------------------------------------------------------------------------------


async def _vm_network(ctx: Ctx, params: dict[str, Any]) -> None:
    await ctx.network(params["resourceGroupName"], "westus")


for _name in ("WithPasswordAuthentication", "WithBootDiagnostics", "WithEmptyDataDisks", "WithUserData",
              "FromASharedGalleryImage"):
    plain(f"compute/virtualMachines/VirtualMachine_Create_{_name}.json", "PUT", VM, body="parameters",
          setup=_vm_network)

plain("compute/virtualMachines/VirtualMachine_Create_WithSshAuthentication.json", "PUT", VM, body="parameters",
      setup=_vm_network,
      # the {image_...} placeholders name no platform image: the image the example's answer shows
      replace={"{image_publisher}": "Canonical", "{image_offer}": "UbuntuServer", "{image_sku}": "16.04-LTS"})


@case("compute/virtualMachines/VirtualMachine_Create_FromACustomImage.json", "PUT", VM, body="parameters")
async def _vm_from_image(ctx: Ctx, params: dict[str, Any]) -> None:
    await _vm_network(ctx, params)
    await ctx.blob_image(params["resourceGroupName"], "westus", "myImage")


@case("compute/virtualMachines/VirtualMachine_Create_InAnAvailabilitySet.json", "PUT", VM, body="parameters")
async def _vm_in_avset(ctx: Ctx, params: dict[str, Any]) -> None:
    await _vm_network(ctx, params)
    await _avset(ctx, {"resourceGroupName": params["resourceGroupName"]})


async def _vm(ctx: Ctx, params: dict[str, Any]) -> None:
    await ctx.vm_in_network(params["resourceGroupName"], "westus", params["vmName"], userData="RXhhbXBsZQ==")


EXTENSIONS = "VM extensions are not modelled"
BOOT_DIAGNOSTICS = {"bootDiagnostics": {"enabled": True, "storageUri": "http://mystorageaccount.blob.core.windows.net"}}


@case("compute/virtualMachines/VirtualMachine_Get.json", "GET", VM, query={"$expand": "$expand"}, allowed={
    "resources": EXTENSIONS,
    "managedBy": "VMs of Flexible scale sets are not modelled",
    "properties.proximityPlacementGroup": "proximity placement groups are not modelled",
    "properties.statuses[].message": "the emulator's only status (provisioning succeeded) has no message",
})
async def _vm_get(ctx: Ctx, params: dict[str, Any]) -> None:
    # the example's VM: Windows, in an availability set, an empty and an attached data disk, boot diagnostics,
    # gallery applications, user data and tags (its adminUsername "admin" is one ARM refuses)
    rg = params["resourceGroupName"]
    _, nic_id = await ctx.network(rg, "westus")
    avset_id = await _avset(ctx, {"resourceGroupName": rg, "availabilitySetName": "my-AvailabilitySet"})
    status, disk, _ = await ctx.request("PUT", ctx.id(rg, "Microsoft.Compute/disks", "myDataDisk1"), {
        "location": "westus", "sku": {"name": "Premium_LRS"},
        "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 100}})
    assert status == 202, disk
    await ctx.settled(disk["id"])
    shown = load_example("compute/virtualMachines/VirtualMachine_Get.json")["responses"]["200"]["body"]
    body = {"location": "westus", "tags": shown["tags"], "properties": {
        "availabilitySet": {"id": avset_id},
        "hardwareProfile": shown["properties"]["hardwareProfile"],
        "storageProfile": {
            "imageReference": shown["properties"]["storageProfile"]["imageReference"],
            "osDisk": {"name": "myOsDisk", "createOption": "FromImage", "caching": "ReadWrite",
                       "managedDisk": {"storageAccountType": "Premium_LRS"}},
            "dataDisks": [
                {"lun": 0, "name": "myDataDisk0", "createOption": "Empty", "caching": "ReadWrite", "diskSizeGB": 30,
                 "managedDisk": {"storageAccountType": "Premium_LRS"}},
                {"lun": 1, "name": "myDataDisk1", "createOption": "Attach", "caching": "ReadWrite",
                 "managedDisk": {"id": disk["id"]}},
            ]},
        "applicationProfile": shown["properties"]["applicationProfile"],
        "userData": shown["properties"]["userData"],
        "osProfile": {"computerName": "myVM", "adminUsername": "azureuser", "adminPassword": PASSWORD,
                      "windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": False}},
        "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
        "diagnosticsProfile": BOOT_DIAGNOSTICS,
        "extensionsTimeBudget": "PT50M",
    }}
    await ctx.put(ctx.id(rg, "Microsoft.Compute/virtualMachines", params["vmName"]), body)


@case("compute/virtualMachines/VirtualMachine_Get_InstanceView.json", "GET", VM + "/instanceView", allowed={
    "extensions": EXTENSIONS,
    "vmAgent.extensionHandlers": EXTENSIONS,
    "patchStatus": "patch assessment and installation are not modelled",
    "osVersion": "the guest OS version is not modelled (the guest agent reports it)",
})
async def _vm_instance_view(ctx: Ctx, params: dict[str, Any]) -> None:
    # like the example's VM: in an availability set (fault/update domains) and with boot diagnostics
    rg = params["resourceGroupName"]
    avset_id = await _avset(ctx, {"resourceGroupName": rg})
    await ctx.vm_in_network(rg, "westus", params["vmName"], availabilitySet={"id": avset_id},
                            diagnosticsProfile=BOOT_DIAGNOSTICS)


async def _vm_stopped(ctx: Ctx, params: dict[str, Any]) -> None:
    await _vm(ctx, params)
    await ctx.post(ctx.id(params["resourceGroupName"], "Microsoft.Compute/virtualMachines", params["vmName"]) + "/powerOff")


plain("compute/virtualMachines/VirtualMachine_Start_MinimumSet_Gen.json", "POST", VM + "/start", setup=_vm_stopped)
plain("compute/virtualMachines/VirtualMachine_PowerOff_MinimumSet_Gen.json", "POST", VM + "/powerOff", setup=_vm)
plain("compute/virtualMachines/VirtualMachine_Deallocate_MinimumSet_Gen.json", "POST", VM + "/deallocate", setup=_vm)
plain("compute/virtualMachines/VirtualMachine_Restart_MinimumSet_Gen.json", "POST", VM + "/restart", setup=_vm)
plain("compute/virtualMachines/VirtualMachine_Delete_Force.json", "DELETE", VM, setup=_vm,
      query={"forceDeletion": "forceDeletion"})
plain("compute/virtualMachines/VirtualMachine_ListAvailableVmSizes.json", "GET", VM + "/vmSizes", setup=_vm)


@case("compute/virtualMachines/VirtualMachine_List_MinimumSet_Gen.json", "GET", COMPUTE + "/virtualMachines")
async def _vm_list(ctx: Ctx, params: dict[str, Any]) -> None:
    await _vm(ctx, {**params, "vmName": "vm1"})


@case("compute/virtualMachines/VirtualMachine_ListAll_MinimumSet_Gen.json", "GET",
      "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/virtualMachines")
async def _vm_list_all(ctx: Ctx, params: dict[str, Any]) -> None:
    await _vm(ctx, {"resourceGroupName": "rg", "vmName": "vm1"})


@case("compute/virtualMachines/VirtualMachine_Update_DetachDataDiskUsingToBeDetachedProperty.json", "PATCH", VM,
      body="parameters")
async def _vm_detach(ctx: Ctx, params: dict[str, Any]) -> None:
    # the VM the example updates: VirtualMachine_Create_WithEmptyDataDisks (same OS disk, data disks at LUN 0 and 1)
    await _vm_network(ctx, params)
    created = load_example("compute/virtualMachines/VirtualMachine_Create_WithEmptyDataDisks.json")
    request = json.loads(_substitute(json.dumps(created["parameters"]["parameters"]), ctx, {}))
    await ctx.put(ctx.id(params["resourceGroupName"], "Microsoft.Compute/virtualMachines", params["vmName"]), request)


# scale sets ---------------------------------------------------------------------------------------------------------


async def _vmss_prerequisites(ctx: Ctx, params: dict[str, Any]) -> None:
    """What the create examples refer to: VNet ``vnet1``/``default``, load balancer ``lb1`` (pool ``pool``, NAT
    pool ``natpool``) and the custom image ``myImage``."""
    rg = params["resourceGroupName"]
    await ctx.rg(rg, "westus")
    subnet_id = await ctx.vnet(rg, "westus")
    await ctx.lb(rg, "westus", subnet_id)
    await ctx.blob_image(rg, "westus", "myImage")


for _name in ("WithAzureLoadBalancer", "WithAzureApplicationGateway", "WithAutomaticRepairs", "FromACustomImage",
              "WithScaleInPolicy", "WithSpotRestorePolicy", "WithEmptyDataDisksOnEachVm"):
    plain(f"compute/virtualMachineScaleSets/VirtualMachineScaleSet_Create_{_name}.json", "PUT", VMSS,
          body="parameters", setup=_vmss_prerequisites)


def _image_of_answer(ctx: Ctx, request: dict[str, Any]) -> None:
    shown = load_example("compute/virtualMachineScaleSets/VirtualMachineScaleSet_Create_WithSshAuthentication.json")
    profile = shown["responses"]["201"]["body"]["properties"]["virtualMachineProfile"]
    request["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = profile["storageProfile"][
        "imageReference"]


plain("compute/virtualMachineScaleSets/VirtualMachineScaleSet_Create_WithSshAuthentication.json", "PUT", VMSS,
      body="parameters", setup=_vmss_prerequisites,
      # the request pairs a Windows Server image with a Linux SSH profile, which ARM refuses; its answer shows an
      # Ubuntu image: that one is sent
      edit=_image_of_answer)


async def _vmss(ctx: Ctx, params: dict[str, Any]) -> None:
    await ctx.vmss_in_network(params["resourceGroupName"], "westus", params["vmScaleSetName"],
                              profile={"userData": "RXhhbXBsZQ=="})


def _fix_generated_update(ctx: Ctx, request: dict[str, Any]) -> None:
    """The generated PATCH body, with what ARM's validation rejects replaced (the rest is sent as it is):

    * ``sku.name`` "DSv3-Type1" is no VM size: the example answer's Standard_D1_v2;
    * ``imageReference`` names a marketplace image and also ``id``/``sharedGalleryImageId`` "aaa...": the marketplace
      image only;
    * ``osDisk.diskSizeGB`` 6 is below the image's 127 GB: 127;
    * ``customData``/``userData`` "aaa..." are not base64: a base64 text;
    * ``healthProbe``, the NIC's ``networkSecurityGroup``, ``subnet``, ``loadBalancerBackendAddressPools`` and
      ``loadBalancerInboundNatPools`` point at disks/snapshots: the probe, NSG, subnet and pools this test created.
    """
    rg = ctx.rg_path("rgcompute")
    lb = f"{rg}/providers/Microsoft.Network/loadBalancers/lb1"
    request["sku"]["name"] = "Standard_D1_v2"
    profile = request["properties"]["virtualMachineProfile"]
    for generated in ("id", "sharedGalleryImageId"):
        profile["storageProfile"]["imageReference"].pop(generated)
    profile["storageProfile"]["osDisk"]["diskSizeGB"] = 127
    profile["osProfile"]["customData"] = profile["userData"] = "RXhhbXBsZQ=="
    profile["networkProfile"]["healthProbe"] = {"id": f"{lb}/probes/probe"}
    nic = profile["networkProfile"]["networkInterfaceConfigurations"][0]["properties"]
    nic["networkSecurityGroup"] = {"id": f"{rg}/providers/Microsoft.Network/networkSecurityGroups/nsg"}
    ip = nic["ipConfigurations"][0]["properties"]
    ip["subnet"] = {"id": f"{rg}/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/default"}
    ip["loadBalancerBackendAddressPools"] = [{"id": f"{lb}/backendAddressPools/pool"}]
    ip["loadBalancerInboundNatPools"] = [{"id": f"{lb}/inboundNatPools/natpool"}]


@case("compute/virtualMachineScaleSets/VirtualMachineScaleSet_Update_MaximumSet_Gen.json", "PATCH", VMSS,
      body="parameters", edit=_fix_generated_update, allowed={
          # the generated answer shows more than its request sends, and other tag names
          **{key: "not in the request (the emulator keeps it when sent)" for key in (
              "properties.spotRestorePolicy", "properties.platformFaultDomainCount", "tags.key8425",
              "properties.virtualMachineProfile.applicationProfile", "properties.virtualMachineProfile.priority",
              "properties.virtualMachineProfile.evictionPolicy",
              "properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations[].properties"
              ".dnsSettings.dnsServers",
              "properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations[].properties"
              ".ipConfigurations[].properties.publicIPAddressConfiguration",
              "properties.virtualMachineProfile.storageProfile.osDisk.name")},
          "properties.virtualMachineProfile.storageProfile.imageReference.id": "removed (see the substitutions)",
          "properties.virtualMachineProfile.storageProfile.imageReference.sharedGalleryImageId":
              "removed (see the substitutions)",
          "properties.virtualMachineProfile.storageProfile.imageReference.exactVersion":
              "resolved on each instance, not on the model",
          "properties.virtualMachineProfile.osProfile.customData": "never stored nor returned, like adminPassword",
          "properties.virtualMachineProfile.userData": "returned only with $expand=userData",
          "properties.hostGroup": "dedicated host groups are not modelled",
          "properties.zoneBalance": "zone balancing is not modelled",
          "properties.virtualMachineProfile.capacityReservation": "capacity reservations are not modelled",
          "extendedLocation": "edge zones are not modelled",
          "properties.virtualMachineProfile.extensionProfile.extensions[].id": "extensions are not resources here",
          "properties.virtualMachineProfile.extensionProfile.extensions[].type": "extensions are not resources here",
          "properties.virtualMachineProfile.extensionProfile.extensions[].properties.provisioningState":
              "extensions are not provisioned here",
      })
async def _vmss_update(ctx: Ctx, params: dict[str, Any]) -> None:
    # a Windows scale set in three zones (the PATCH keeps them), with the load balancer and NSG it will refer to
    rg = params["resourceGroupName"]
    await ctx.rg(rg, "eastus")
    subnet_id = await ctx.vnet(rg, "eastus")
    await ctx.lb(rg, "eastus", subnet_id)
    await ctx.put(ctx.id(rg, "Microsoft.Network/networkSecurityGroups", "nsg"), {"location": "eastus"}, "2025-05-01")
    windows = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2016-Datacenter",
               "version": "latest"}
    await ctx.vmss(rg, "eastus", params["vmScaleSetName"], subnet_id, top={"zones": ["1", "2", "3"]},
                   profile={"storageProfile": {"imageReference": windows, "osDisk": {"createOption": "FromImage"}}})


INSTANCE_0 = {"instanceId": "0"}  # the generated examples name instance "aaaa...": instance ids are numbers
INSTANCES_0 = {"vmInstanceIDs": {"instanceIds": ["0"]}}

@case("compute/virtualMachineScaleSets/VirtualMachineScaleSet_Get_WithUserData.json", "GET", VMSS,
      query={"$expand": "$expand"}, allowed={"properties.hostGroup": "dedicated host groups are not modelled"})
async def _vmss_get(ctx: Ctx, params: dict[str, Any]) -> None:
    # the example's scale set, created from its answer; its databricks marketplace image is not in the catalogue
    # (Ubuntu instead) and its adminUsername "admin" is one ARM refuses
    rg = params["resourceGroupName"]
    await ctx.rg(rg, "westus")
    subnet_id = await ctx.vnet(rg, "westus", "myVNet", "mySubnet")
    await ctx.put(ctx.id(rg, "Microsoft.Network/networkSecurityGroups", "myNetworkSecurityGroup"),
                  {"location": "westus"}, "2025-05-01")
    shown = load_example("compute/virtualMachineScaleSets/VirtualMachineScaleSet_Get_WithUserData.json")
    body = json.loads(_substitute(json.dumps(shown["responses"]["200"]["body"]), ctx, {}))
    for read_only in ("id", "name", "type"):
        body.pop(read_only)
    props = body["properties"]
    for read_only in ("provisioningState", "hostGroup"):
        props.pop(read_only)
    profile = props["virtualMachineProfile"]
    profile["storageProfile"]["imageReference"] = dict(UBUNTU)
    profile["osProfile"].update(adminUsername="azureuser", adminPassword=PASSWORD)
    assert profile["networkProfile"]["networkInterfaceConfigurations"][0]["properties"]["ipConfigurations"][0][
        "properties"]["subnet"]["id"] == subnet_id
    await ctx.put(ctx.id(rg, "Microsoft.Compute/virtualMachineScaleSets", params["vmScaleSetName"]), body)


@case("compute/virtualMachineScaleSets/VirtualMachineScaleSet_GetInstanceView_MaximumSet_Gen.json", "GET",
      VMSS + "/instanceView", allowed={
          "statuses[].message": "the scale set's provisioning status has no message",
          "orchestrationServices[].latestOperationStatus": "only zone rebalancing (not modelled) shows it",
          "orchestrationServices[].lastStatusChangeTime": "only zone rebalancing (not modelled) shows it",
      })
async def _vmss_instance_view(ctx: Ctx, params: dict[str, Any]) -> None:
    # a scale set with an extension in its model, as the example shows one
    extension = {"name": "CustomScript", "properties": {
        "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1"}}
    await ctx.vmss_in_network(params["resourceGroupName"], "westus", params["vmScaleSetName"],
                              profile={"extensionProfile": {"extensions": [extension]}})
plain("compute/virtualMachineScaleSets/VirtualMachineScaleSet_List_MinimumSet_Gen.json", "GET",
      COMPUTE + "/virtualMachineScaleSets", setup=lambda ctx, params: _vmss(ctx, {**params, "vmScaleSetName": "web"}))
plain("compute/virtualMachineScaleSets/VirtualMachineScaleSet_Delete_Force.json", "DELETE", VMSS, setup=_vmss,
      query={"forceDeletion": "forceDeletion"})
plain("compute/virtualMachineScaleSets/VirtualMachineScaleSet_PowerOff_MinimumSet_Gen.json", "POST",
      VMSS + "/poweroff", setup=_vmss)
plain("compute/virtualMachineScaleSets/VirtualMachineScaleSet_Start_MinimumSet_Gen.json", "POST", VMSS + "/start",
      setup=_vmss)
plain("compute/virtualMachineScaleSets/VirtualMachineScaleSet_Reimage_MinimumSet_Gen.json", "POST",
      VMSS + "/reimage", setup=_vmss)
plain("compute/virtualMachineScaleSets/VirtualMachineScaleSet_DeleteInstances_MinimumSet_Gen.json", "POST",
      VMSS + "/delete", setup=_vmss, body="vmInstanceIDs", override=INSTANCES_0)
plain("compute/virtualMachineScaleSets/VirtualMachineScaleSet_UpdateInstances_MinimumSet_Gen.json", "POST",
      VMSS + "/manualupgrade", setup=_vmss, body="vmInstanceIDs", override=INSTANCES_0)
plain("compute/virtualMachineScaleSets/VirtualMachineScaleSet_ListSkus_MaximumSet_Gen.json", "GET", VMSS + "/skus",
      setup=_vmss, allowed={"value[].sku.capacity": "ARM's entries name a size and tier (the generated example adds "
                                                    "a capacity; the set's limits are in the entry's capacity)"})

# scale set instances

plain("compute/virtualMachineScaleSetVMs/VirtualMachineScaleSetVM_List_MinimumSet_Gen.json", "GET",
      COMPUTE + "/virtualMachineScaleSets/{virtualMachineScaleSetName}/virtualMachines",
      setup=lambda ctx, params: _vmss(ctx, {**params, "vmScaleSetName": params["virtualMachineScaleSetName"]}))
async def _windows_instance(ctx: Ctx, params: dict[str, Any], **profile: Any) -> None:
    # like the examples' instance: Windows, a data disk, boot diagnostics, user data and tags
    rg = params["resourceGroupName"]
    windows = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2016-Datacenter",
               "version": "latest"}
    vmss = await ctx.vmss_in_network(rg, "westus", params["vmScaleSetName"], profile={
        "storageProfile": {"imageReference": windows, "osDisk": {"createOption": "FromImage"},
                           "dataDisks": [{"lun": 1, "createOption": "Empty", "diskSizeGB": 128}]},
        "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
        "userData": "RXhhbXBsZSBVc2VyRGF0YQ==",
        **profile,
    })
    await ctx.put(f"{vmss['id']}/virtualMachines/{params['instanceId']}", {"tags": {"myTag1": "tagValue1"}})


plain("compute/virtualMachineScaleSetVMs/VirtualMachineScaleSetVM_Get_WithUserData.json", "GET", VMSS_VM,
      query={"$expand": "expand"}, allowed={"resources": EXTENSIONS}, setup=_windows_instance)
# the example's instance runs a model with hardwareProfile.vmSizeProperties
plain("compute/virtualMachineScaleSetVMs/VirtualMachineScaleSetVM_Get_WithVMSizeProperties.json", "GET", VMSS_VM,
      query={"$expand": "expand"}, allowed={"resources": EXTENSIONS},
      setup=lambda ctx, params: _windows_instance(
          ctx, params, hardwareProfile={"vmSizeProperties": {"vCPUsAvailable": 1, "vCPUsPerCore": 1}}))


plain("compute/virtualMachineScaleSetVMs/VirtualMachineScaleSetVM_Get_InstanceViewAutoPlacedOnDedicatedHostGroup.json",
      "GET", VMSS_VM + "/instanceView", setup=_vmss,
      allowed={"assignedHost": "dedicated hosts are not modelled"})
plain("compute/virtualMachineScaleSetVMs/VirtualMachineScaleSetVM_Delete_Force.json", "DELETE", VMSS_VM,
      setup=_vmss, query={"forceDeletion": "forceDeletion"})
plain("compute/virtualMachineScaleSetVMs/VirtualMachineScaleSetVM_Start_MinimumSet_Gen.json", "POST",
      VMSS_VM + "/start", setup=_vmss, override=INSTANCE_0)
plain("compute/virtualMachineScaleSetVMs/VirtualMachineScaleSetVM_PowerOff_MinimumSet_Gen.json", "POST",
      VMSS_VM + "/poweroff", setup=_vmss, override=INSTANCE_0)
plain("compute/virtualMachineScaleSetVMs/VirtualMachineScaleSetVM_Update_MinimumSet_Gen.json", "PUT", VMSS_VM,
      setup=_vmss, body="parameters", override=INSTANCE_0)
plain("compute/virtualMachineScaleSetVMs/VirtualMachineScaleSetVM_Redeploy_MinimumSet_Gen.json", "POST",
      VMSS_VM + "/redeploy", setup=_vmss, override=INSTANCE_0)


# the runner -----------------------------------------------------------------------------------------------------------


def _substitute(text: str, ctx: Ctx, replace: dict[str, str]) -> str:
    for example_subscription in EXAMPLE_SUBSCRIPTIONS:
        text = text.replace(f"subscriptions/{example_subscription}/", f"subscriptions/{ctx.sub}/")
    for placeholder, value in {**NAMES, "{your-password}": PASSWORD, **replace}.items():
        text = text.replace(placeholder, value)
    return text


def _expected_body(example: dict[str, Any], status: int) -> Any:
    responses = example["responses"]
    for code in (str(status), "200", "201"):
        if isinstance(responses.get(code), dict) and "body" in responses[code]:
            return responses[code]["body"]
    return None


async def run_example(ctx: Ctx, name: str) -> None:
    example_case = CASES[name]
    example = load_example(name)
    api_version = example["parameters"]["api-version"]
    params: dict[str, Any] = json.loads(_substitute(json.dumps(example["parameters"]), ctx, example_case.replace))
    params["subscriptionId"] = ctx.sub
    params.update(copy.deepcopy(example_case.override))
    if example_case.setup is not None:
        await example_case.setup(ctx, params)  # may add parameters it created (e.g. a resource id)
    path = example_case.path.format_map(params)
    query = {q: str(params[p]) for q, p in example_case.query.items() if params.get(p) not in (None, "")}
    body = params.get(example_case.body) if example_case.body else None
    if example_case.edit is not None:
        example_case.edit(ctx, body)
    status, answer, _ = await ctx.request(example_case.method, path, body, api_version=api_version, query=query)
    assert str(status) in example["responses"], f"{example_case.method} {path}: {status} {answer}"
    expected = _expected_body(example, status) if example_case.method in ("GET", "PUT", "PATCH") else None
    if expected is None:
        return
    if example_case.method in ("PUT", "PATCH"):
        answer = await ctx.settled(path, api_version)
    problems = structure_mismatches(expected, answer, example_case.allowed)
    assert not problems, "\n".join([f"{name}: the emulator's answer differs from the example's:", *problems])


@pytest.mark.parametrize("name", sorted(CASES), ids=lambda n: n.rsplit("/", 1)[-1].removesuffix(".json"))
async def test_example(ctx: Ctx, name: str) -> None:
    examples_dir()  # fails (not skips) when the folder is missing
    await run_example(ctx, name)


def test_every_example_is_classified() -> None:
    examples_dir()  # fails (not skips) when the folder is missing
    found = set(example_files())
    assert found, "no example files found"
    unclassified = sorted(found - set(CASES) - set(UNSUPPORTED))
    assert not unclassified, f"examples neither run nor listed as unsupported: {unclassified}"
    assert not set(CASES) & set(UNSUPPORTED), "an example cannot be both run and unsupported"
    gone = sorted((set(CASES) | set(UNSUPPORTED)) - found)
    assert not gone, f"classified examples that no longer exist: {gone}"
