"""Microsoft.Compute/disks: managed disks, as resources of their own.

A VM's OS and data disks are managed disks: the compute provider creates them (``create_disk``), attaches and
detaches them (``attach_disk``/``detach_disk``) and resizes them through the helpers of this module. They can also
be created empty with ``PUT .../disks/{name}`` (then attached to a VM with ``createOption: Attach``), read, listed,
patched and deleted. A disk attached to a VM has ``managedBy`` = the VM id and ``diskState: Attached``; deleting it
is refused (409 ``OperationNotAllowed``, "Disk ... is attached to VM ..."), as in ARM.
"""

from __future__ import annotations

from typing import Any

from .. import catalog, ids, lro, util
from ..errors import ArmError, invalid_parameter
from ..lro import Operation
from ..routing import RESOURCE_GROUP, SUBSCRIPTION, Call, Reply, Router
from ..services import Services
from ..store import Resource

NS = "Microsoft.Compute"
DISK = "Microsoft.Compute/disks"

MAX_OS_DISK_GB = 4095
MAX_DATA_DISK_GB = 32767

lro.LATENCY_SECONDS.setdefault("disk.put", 2.0)
lro.LATENCY_SECONDS.setdefault("disk.delete", 2.0)


def disk_sku(name: str) -> dict[str, str]:
    return {"name": name, "tier": catalog.DISK_SKUS.get(name, "Standard")}


def disk_id(vm_id: str, group_name: str, disk_name: str) -> str:
    parsed = ids.parse(vm_id)
    assert parsed is not None
    return ids.resource_id(parsed.subscription, group_name, NS, ("disks",), (disk_name,))


def create_disk(
    services: Services,
    resource_id: str,
    *,
    location: str,
    size_gb: int,
    sku: str,
    create_option: str,
    managed_by: str | None = None,
    os_type: str | None = None,
    hyper_v_generation: str | None = None,
    image_reference_id: str | None = None,
    zones: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> Resource:
    """Create a disk resource (in state Succeeded) and store it."""
    parsed = ids.parse(resource_id)
    assert parsed is not None
    props: dict[str, Any] = {}
    if os_type:
        props["osType"] = os_type
    if hyper_v_generation:
        props["hyperVGeneration"] = hyper_v_generation
    creation: dict[str, Any] = {"createOption": create_option}
    if image_reference_id:
        creation["imageReference"] = {"id": image_reference_id}
    props.update(
        creationData=creation,
        diskSizeGB=size_gb,
        diskSizeBytes=size_gb * 1024**3,
        uniqueId=util.new_uuid(),
        encryption={"type": "EncryptionAtRestWithPlatformKey"},
        networkAccessPolicy="AllowAll",
        publicNetworkAccess="Enabled",
        timeCreated=util.iso(util.now()),
        provisioningState="Succeeded",
        diskState="Attached" if managed_by else "Unattached",
    )
    if catalog.DISK_SKUS.get(sku) == "Premium" and sku != "PremiumV2_LRS":
        props["tier"] = catalog.premium_tier(size_gb)
    body: dict[str, Any] = {"name": parsed.name, "id": resource_id, "type": DISK, "location": location}
    if tags:
        body["tags"] = tags
    if zones:
        body["zones"] = list(zones)
    if managed_by:
        body["managedBy"] = managed_by
    body["sku"] = disk_sku(sku)
    body["properties"] = props
    disk = Resource(id=resource_id, type=DISK, body=body, private={})
    services.store.put(disk)
    return disk


def attached_vm(disk: Resource) -> str | None:
    return disk.body.get("managedBy") or None


def attach_disk(services: Services, resource_id: str, vm_id: str) -> None:
    disk = services.store.edit(resource_id)
    if disk is None:
        return
    disk.body["managedBy"] = vm_id
    disk.properties["diskState"] = "Attached"
    services.store.put(disk)


def detach_disk(services: Services, resource_id: str, vm_id: str) -> None:
    disk = services.store.edit(resource_id)
    if disk is None or ids.key(disk.body.get("managedBy") or "") != ids.key(vm_id):
        return
    disk.body.pop("managedBy", None)
    disk.properties["diskState"] = "Unattached"
    services.store.put(disk)


def update_disk(services: Services, resource_id: str, *, size_gb: int | None = None, sku: str | None = None) -> None:
    """Grow a disk and/or change its SKU (callers validate first)."""
    disk = services.store.edit(resource_id)
    if disk is None:
        return
    if size_gb is not None:
        disk.properties["diskSizeGB"] = size_gb
        disk.properties["diskSizeBytes"] = size_gb * 1024**3
    if sku is not None:
        disk.body["sku"] = disk_sku(sku)
    current_sku = disk.body["sku"]["name"]
    if catalog.DISK_SKUS.get(current_sku) == "Premium" and current_sku != "PremiumV2_LRS":
        disk.properties["tier"] = catalog.premium_tier(int(disk.properties["diskSizeGB"]))
    else:
        disk.properties.pop("tier", None)
    services.store.put(disk)


def size_reduction(current_gb: int, requested_gb: int, target: str) -> ArmError:
    """ARM's answer to a smaller ``diskSizeGB`` than the disk has."""
    return ArmError(
        409,
        "ResizeDiskError",
        f"Disk size reduction is not supported. Current size is {current_gb * 1024**3} bytes, requested size is "
        f"{requested_gb * 1024**3} bytes.",
        target=target,
    )


def check_size(value: Any, target: str, *, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise invalid_parameter(
            f"The value '{value}' of parameter '{target}' is not valid: the disk size must be an integer between 1 "
            f"and {maximum} GB.",
            target,
        )
    return value


def check_sku(value: Any, target: str) -> str:
    sku = catalog.canonical_disk_sku(value if isinstance(value, str) else None)
    if sku is None:
        raise invalid_parameter(
            f"The value '{value}' of parameter '{target}' is not valid. Allowed values are "
            f"{', '.join(catalog.DISK_SKUS)}.",
            target,
        )
    return sku


def attached_error(disk: Resource) -> ArmError:
    return ArmError(409, "OperationNotAllowed", f"Disk {disk.body['name']} is attached to VM {disk.body['managedBy']}.")


class DisksProvider:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store

    def register(self, router: Router) -> None:
        disks = router.register(RESOURCE_GROUP, NS, ("disks",))
        disks.on_item("PUT", self.put_disk).on_item("PATCH", self.patch_disk).on_item("GET", self.get_disk)
        disks.on_item("DELETE", self.delete_disk).on_collection("GET", self.list_disks)
        router.register(SUBSCRIPTION, NS, ("disks",)).on_collection("GET", self.list_all_disks)
        self.services.engine.register("disk.put", self.services.complete_write)
        self.services.engine.register("disk.delete", self.services.complete_delete)

    # reads ----------------------------------------------------------------------------------------------------

    def _require(self, call: Call) -> Resource:
        return self.services.require(call, DISK)

    def get_disk(self, call: Call) -> Reply:
        return Reply(200, self._require(call).body)

    def list_disks(self, call: Call) -> Reply:
        return self.services.list_in_group(call, DISK)

    def list_all_disks(self, call: Call) -> Reply:
        return self.services.list_in_subscription(call, DISK)

    # writes ---------------------------------------------------------------------------------------------------

    def _begin(self, call: Call, kind: str, resource_id: str, location: str) -> Operation:
        return self.services.begin(call, kind, resource_id, location, NS)

    def put_disk(self, call: Call) -> Reply:
        assert call.resource_group is not None
        self.services.require_resource_group(call.subscription, call.resource_group)
        request = call.body if isinstance(call.body, dict) else {}
        resource_id = self.services.canonical_id(call)
        existing = self.store.get(resource_id)
        if existing is not None:
            return self._update(call, existing, request, replace_tags=True)
        location = request.get("location")
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        location = util.normalize_location(location)
        props = request.get("properties") or {}
        create_option = util.get_path(props, "creationData", "createOption")
        if not isinstance(create_option, str) or create_option.lower() != "empty":
            raise invalid_parameter(
                f"The value '{create_option}' of parameter 'creationData.createOption' is not supported by the "
                "emulator: only 'Empty' disks can be created directly (OS and data disks of VMs are created with "
                "the VM).",
                "creationData.createOption",
            )
        size = check_size(props.get("diskSizeGB"), "diskSizeGB", maximum=MAX_DATA_DISK_GB)
        sku = check_sku(util.get_path(request, "sku", "name") or "Standard_LRS", "sku.name")
        zones = request.get("zones") or None
        if zones is not None:
            supported = catalog.region_zones(location)
            if not isinstance(zones, list) or len(zones) != 1 or str(zones[0]) not in supported:
                raise ArmError(
                    400,
                    "AvailabilityZoneNotSupported",
                    f"The zone(s) '{','.join(map(str, zones))}' for resource '{DISK}/{call.name}' is not supported. "
                    f"The supported zones for location '{location}' are '{','.join(supported)}'",
                    target="zones",
                )
        disk = create_disk(
            self.services,
            resource_id,
            location=location,
            size_gb=size,
            sku=sku,
            create_option="Empty",
            os_type=props.get("osType"),
            hyper_v_generation=props.get("hyperVGeneration"),
            zones=[str(z) for z in zones] if zones else None,
            tags=request.get("tags") or None,
        )
        disk.properties["provisioningState"] = "Updating"
        operation = self._begin(call, "disk.put", resource_id, location)
        disk.private["active_operation"] = operation.id
        self.store.put(disk)
        headers = self.services.lro_headers(call, operation, location=True)
        return Reply(202, disk.body, headers)

    def patch_disk(self, call: Call) -> Reply:
        disk = self._require(call)
        request = call.body if isinstance(call.body, dict) else {}
        return self._update(call, disk, request, replace_tags=False)

    def _update(self, call: Call, existing: Resource, request: dict[str, Any], *, replace_tags: bool) -> Reply:
        if existing.properties.get("provisioningState") == "Deleting":
            raise ArmError(
                409, "OperationNotAllowed", f"Operation on disk '{existing.body['name']}' is not allowed since the "
                "disk is marked for deletion."
            )
        location = request.get("location")
        if location and util.normalize_location(location) != existing.body["location"]:
            raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'location' is not allowed.",
                           target="location")
        size = util.get_path(request, "properties", "diskSizeGB")
        current = int(existing.properties["diskSizeGB"])
        if size is not None:
            size = check_size(size, "diskSizeGB", maximum=MAX_DATA_DISK_GB)
            if size < current:
                raise size_reduction(current, size, "diskSizeGB")
        sku_name = util.get_path(request, "sku", "name")
        sku = check_sku(sku_name, "sku.name") if sku_name is not None else None
        update_disk(self.services, existing.id, size_gb=size, sku=sku)
        disk = self.store.edit(existing.id)
        assert disk is not None
        if "tags" in request or replace_tags:
            if request.get("tags"):
                disk.body["tags"] = request["tags"]
            else:
                disk.body.pop("tags", None)
        disk.properties["provisioningState"] = "Updating"
        operation = self._begin(call, "disk.put", disk.id, disk.body["location"])
        disk.private["active_operation"] = operation.id
        self.store.put(disk)
        return Reply(200, disk.body, self.services.lro_headers(call, operation, location=True))

    def delete_disk(self, call: Call) -> Reply:
        disk = self.store.get(call.resource_id)
        if disk is None:
            return Reply(204)
        if attached_vm(disk):
            raise attached_error(disk)
        return self.services.begin_delete(call, "disk.delete", disk.id, disk.body["location"], NS)
