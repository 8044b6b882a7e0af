"""Microsoft.Compute: virtual machines, VM sizes and marketplace image versions.

Virtual machine writes and actions are long-running operations (see :mod:`..lro`). The VM keeps emulator-only
state in ``private``: its power state (``running``/``stopped``/``deallocated`` or a transitional one), the
in-flight operation, the last provisioning error, ``userData`` (returned only with ``$expand=userData``), its
etag counter, its availability-set fault/update domains and whether it was generalized. ``adminPassword`` and
``customData`` are validated, then never stored, returned nor logged.

A VM's OS and data disks are ``Microsoft.Compute/disks`` resources (:mod:`.disks`): created, attached, grown and
detached by VM writes, deleted or detached (``deleteOption``) when the VM is deleted. Availability sets live in
:mod:`.availability_sets`, managed images and galleries in :mod:`.images` (plugged in through
``ComputeProvider.image_id_resolvers``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
import uuid
from collections.abc import Callable
from typing import Any

from .. import catalog, ids, lro, util
from ..errors import ArmError, invalid_parameter, operation_not_allowed, resource_not_found
from ..lro import Operation
from ..routing import RESOURCE_GROUP, SUBSCRIPTION, Call, Reply, Router
from ..services import Services
from ..store import Resource
from . import availability_sets, disks, network

log = logging.getLogger(__name__)

lro.LATENCY_SECONDS.setdefault("vm.redeploy", 30.0)
lro.LATENCY_SECONDS.setdefault("vm.reimage", 30.0)

NS = "Microsoft.Compute"
VM = "Microsoft.Compute/virtualMachines"

POWER_DISPLAY = {
    "starting": "VM starting",
    "running": "VM running",
    "stopping": "VM stopping",
    "stopped": "VM stopped",
    "deallocating": "VM deallocating",
    "deallocated": "VM deallocated",
}
PROVISIONING_DISPLAY = {
    "Creating": "Creating",
    "Updating": "Updating",
    "Deleting": "Deleting",
    "Succeeded": "Provisioning succeeded",
    "Failed": "Provisioning failed",
}

#: Usernames Azure refuses for ``osProfile.adminUsername``.
RESERVED_USERNAMES = frozenset(
    "administrator admin user user1 test user2 test1 user3 admin1 1 123 a actuser adm admin2 aspnet backup console "
    "david guest john owner root server sql support support_388945a0 sys test2 test3 user4 user5".split()
)

#: ``(request path, label)`` of properties that cannot change after creation.
IMMUTABLE_PROPERTIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("properties", "osProfile", "adminUsername"), "osProfile.adminUsername"),
    (("properties", "osProfile", "computerName"), "osProfile.computerName"),
)
IMAGE_REFERENCE_FIELDS = ("publisher", "offer", "sku", "version", "id", "sharedGalleryImageId", "communityGalleryImageId")

#: Resolves an ``imageReference.id`` to ``(osType, hyperVGeneration)``; None when the image does not exist. A
#: resolver may return a :class:`ResolvedImage` (still a 2-tuple) to also give the disk sizes of the image.
ImageIdResolver = Callable[[str], tuple[str, str] | None]

#: Base64 limit of ``osProfile.customData`` and ``userData`` (64 KiB decoded).
MAX_BASE64_DATA = 87380
#: ``(min, max)`` length of ``adminPassword`` per OS, as ARM checks it ("The supplied password must be between
#: 6-72 characters long ..." for Linux, "8-123" for Windows; the portal and ``az`` ask 12 for Windows).
PASSWORD_LENGTH = {"Linux": (6, 72), "Windows": (8, 123)}
#: Passwords ARM refuses whatever their complexity ("The Admin password specified is not allowed.").
DISALLOWED_PASSWORDS = frozenset(
    {"abc@123", "p@$$w0rd", "p@ssw0rd", "p@ssword123", "pa$$word", "pass@word1", "password!", "password1",
     "password22", "iloveyou!"}
)
CACHING = ("None", "ReadOnly", "ReadWrite")
DELETE_OPTIONS = ("Delete", "Detach")
PRIORITIES = ("Regular", "Spot", "Low")
EVICTION_POLICIES = ("Deallocate", "Delete")
MAX_LUN = 63


class ResolvedImage(tuple):  # type: ignore[type-arg]
    """``(osType, hyperVGeneration)`` of an image, plus what VM creation needs from it.

    ``os_disk_size_gb``: the minimum OS disk size; ``data_disks``: ``{lun: sizeGB}`` of the image's data disks
    (``createOption: FromImage`` data disks); ``source_id``: recorded as the disks' ``creationData.imageReference``.
    """

    os_disk_size_gb: int
    data_disks: dict[int, int]
    source_id: str | None

    def __new__(
        cls,
        os_type: str,
        generation: str,
        os_disk_size_gb: int | None = None,
        data_disks: dict[int, int] | None = None,
        source_id: str | None = None,
    ) -> ResolvedImage:
        self = super().__new__(cls, (os_type, generation))
        self.os_disk_size_gb = os_disk_size_gb or (127 if os_type == "Windows" else 30)
        self.data_disks = dict(data_disks or {})
        self.source_id = source_id
        return self


def fill_identity(body: dict[str, Any], subscription: str) -> None:
    """ARM's managed identity fields: a system-assigned identity gets ``principalId`` and ``tenantId``, each
    user-assigned one ``principalId`` and ``clientId`` (kept across updates)."""
    identity = body.get("identity")
    if not isinstance(identity, dict):
        return
    if "systemassigned" in str(identity.get("type", "")).replace(" ", "").lower():
        identity.setdefault("principalId", util.new_uuid())
        identity.setdefault("tenantId", str(uuid.uuid5(uuid.NAMESPACE_URL, f"tenant/{subscription}")))
    else:
        identity.pop("principalId", None)
        identity.pop("tenantId", None)
    for user_assigned in (identity.get("userAssignedIdentities") or {}).values():
        if isinstance(user_assigned, dict):
            user_assigned.setdefault("principalId", util.new_uuid())
            user_assigned.setdefault("clientId", util.new_uuid())


def _is_primary_nic(props: dict[str, Any], nic_id: str) -> bool:
    """Whether a VM's NIC is its primary one: the only one, or the one marked ``primary``."""
    refs = util.get_path(props, "networkProfile", "networkInterfaces") or []
    if len(refs) == 1:
        return True
    return any(ids.key(r["id"]) == ids.key(nic_id) and util.get_path(r, "properties", "primary") for r in refs)


def check_writable(services: Services, resource: Resource, operation_name: str, marked: str, busy: str) -> None:
    """409 ``OperationNotAllowed`` for a write or action on a VM or scale set being deleted (``… {marked} marked
    for deletion``) or in the middle of another operation (``… since {busy} is in the middle of …``)."""
    if resource.properties.get("provisioningState") == "Deleting":
        raise operation_not_allowed(
            f"Operation '{operation_name}' is not allowed {marked} marked for deletion. You can only retry the Delete "
            "operation (or wait for an ongoing one to complete)."
        )
    active = services.engine.active(resource.private.get("active_operation"))
    if active is not None:
        raise operation_not_allowed(
            f"Operation '{operation_name}' is not allowed since {busy} is in the middle of operation "
            f"'{resource.private.get('active_name', active.name)}'. Wait for the ongoing operation to complete and "
            "retry."
        )


class ComputeProvider:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        #: Hook for later providers (images, galleries): resolve ``imageReference.id`` values.
        self.image_id_resolvers: list[ImageIdResolver] = [self._resolve_stored_image]

    def register(self, router: Router) -> None:
        vms = router.register(RESOURCE_GROUP, NS, ("virtualMachines",))
        vms.on_item("PUT", self.put_vm).on_item("PATCH", self.patch_vm).on_item("GET", self.get_vm)
        vms.on_item("DELETE", self.delete_vm).on_collection("GET", self.list_vms)
        vms.on_action("GET", "instanceView", self.get_instance_view)
        vms.on_action("GET", "vmSizes", self.list_available_sizes)
        for action in ("start", "powerOff", "deallocate", "restart"):
            vms.on_action("POST", action, self._action_handler(action))
        vms.on_action("POST", "simulateEviction", self.simulate_eviction)
        vms.on_action("POST", "redeploy", self.redeploy)
        vms.on_action("POST", "reimage", self.reimage)
        vms.on_action("POST", "generalize", self.generalize)
        router.register(SUBSCRIPTION, NS, ("virtualMachines",)).on_collection("GET", self.list_all_vms)
        router.register(SUBSCRIPTION, NS, ("locations", "vmSizes")).on_collection("GET", self.list_sizes)
        images = router.register(
            SUBSCRIPTION, NS, ("locations", "publishers", "artifacttypes", "offers", "skus", "versions")
        )
        images.on_collection("GET", self.list_image_versions).on_item("GET", self.get_image_version)
        engine = self.services.engine
        engine.register("vm.create", self._complete_write)
        engine.register("vm.update", self._complete_write)
        engine.register("vm.start", self._complete_power("running"))
        engine.register("vm.powerOff", self._complete_power("stopped"))
        engine.register("vm.deallocate", self._complete_power("deallocated"))
        engine.register("vm.restart", self._complete_power("running"))
        engine.register("vm.delete", self._complete_delete)
        engine.register("vm.redeploy", self._complete_keep_power)
        engine.register("vm.reimage", self._complete_keep_power)
        self.services.on_release(VM, self._release_vm)

    # reads ----------------------------------------------------------------------------------------------------

    def _require_vm(self, call: Call) -> Resource:
        assert call.resource_group is not None
        self.services.require_resource_group(call.subscription, call.resource_group, for_write=False)
        vm = self.store.get(call.resource_id)
        if vm is None:
            raise resource_not_found(VM, call.name, call.resource_group)
        return vm

    def _view(self, vm: Resource, expand: str | None) -> dict[str, Any]:
        body = copy.deepcopy(vm.body)
        self._sync_disks(body)
        wanted = {e.strip().lower() for e in (expand or "").split(",")}
        if "instanceview" in wanted:
            body["properties"]["instanceView"] = instance_view(vm)
        if "userdata" in wanted and vm.private.get("user_data") is not None:
            body["properties"]["userData"] = vm.private["user_data"]
        return body

    def get_vm(self, call: Call) -> Reply:
        return Reply(200, self._view(self._require_vm(call), call.param("$expand")))

    def get_instance_view(self, call: Call) -> Reply:
        return Reply(200, instance_view(self._require_vm(call)))

    def list_vms(self, call: Call) -> Reply:
        assert call.resource_group is not None
        group = self.services.require_resource_group(call.subscription, call.resource_group, for_write=False)
        return self._list(call, self.store.list(VM, group.id))

    def list_all_vms(self, call: Call) -> Reply:
        return self._list(call, self.store.list(VM, ids.subscription_id(call.subscription)))

    def _list(self, call: Call, vms: list[Resource]) -> Reply:
        expand = "instanceView" if (call.param("statusOnly") or "").lower() == "true" else call.param("$expand")
        return self.services.page(call, [self._view(vm, expand) for vm in vms])

    def list_sizes(self, call: Call) -> Reply:
        return Reply(200, catalog.sizes_json())

    def list_available_sizes(self, call: Call) -> Reply:
        """The sizes the VM can be resized to: the whole catalogue (one region, one hardware cluster)."""
        self._require_vm(call)
        return Reply(200, catalog.sizes_json())

    def list_image_versions(self, call: Call) -> Reply:
        location, publisher, _, offer, sku = call.names
        image = catalog.find_image(publisher, offer, sku)
        if image is None:
            raise _platform_image_not_found(publisher, offer, sku, "latest")
        return Reply(200, [self._image_version_body(call, image, v, location) for v in image.versions])

    def get_image_version(self, call: Call) -> Reply:
        location, publisher, _, offer, sku, version = call.names
        image = catalog.find_image(publisher, offer, sku)
        exact = image.resolve(version) if image is not None else None
        if image is None or exact is None:
            raise _platform_image_not_found(publisher, offer, sku, version)
        body = self._image_version_body(call, image, exact, location)
        body["properties"] = {
            "osDiskImage": {"operatingSystem": image.os_type},
            "dataDiskImages": [],
            "hyperVGeneration": image.hyper_v_generation,
            "architecture": "x64",
        }
        return Reply(200, body)

    def _image_version_body(self, call: Call, image: catalog.PlatformImage, version: str, location: str) -> dict[str, Any]:
        return {
            "name": version,
            "location": util.normalize_location(location),
            "id": (
                f"/Subscriptions/{call.subscription}/Providers/Microsoft.Compute/Locations/{location}/Publishers/"
                f"{image.publisher}/ArtifactTypes/VMImage/Offers/{image.offer}/Skus/{image.sku}/Versions/{version}"
            ),
        }

    # create / update ------------------------------------------------------------------------------------------

    def put_vm(self, call: Call) -> Reply:
        assert call.resource_group is not None
        group = self.services.require_resource_group(call.subscription, call.resource_group)
        request = call.body if isinstance(call.body, dict) else {}
        vm_id = self.services.canonical_id(call)
        existing = self.store.get(vm_id)
        _check_preconditions(call, existing)
        if existing is not None:
            return self._update(call, existing, request)
        location = request.get("location")
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        location = util.normalize_location(location)
        props = copy.deepcopy(request.get("properties") or {})
        size = _validate_size(util.get_path(props, "hardwareProfile", "vmSize"))
        props.setdefault("hardwareProfile", {})["vmSize"] = size.name
        zones = _validate_zones(request.get("zones"), location, call.name)
        avset_id = self._validate_availability_set(props, location, zones)
        _validate_priority(props, None)
        storage = props.setdefault("storageProfile", {})
        os_disk = storage.setdefault("osDisk", {})
        create_option = _choice(os_disk.get("createOption") or "FromImage", ("FromImage", "Attach"), "osDisk.createOption")
        os_disk["createOption"] = create_option
        image: ResolvedImage | None = None
        attached_os_disk: Resource | None = None
        if create_option == "FromImage":
            image = self._validate_image(storage.get("imageReference"), os_disk, props.get("osProfile"))
            os_type, generation = image
            if image.source_id is None and storage["imageReference"].get("publisher"):
                reference = storage["imageReference"]
                image.source_id = (
                    f"/Subscriptions/{call.subscription}/Providers/Microsoft.Compute/Locations/{location}/Publishers/"
                    f"{reference['publisher']}/ArtifactTypes/VMImage/Offers/{reference['offer']}/Skus/"
                    f"{reference['sku']}/Versions/{reference['exactVersion']}"
                )
        else:
            attached_os_disk = self._validate_attached_os_disk(storage, os_disk, vm_id, location)
            os_type = os_disk.get("osType") or attached_os_disk.properties.get("osType")
            if os_type not in ("Linux", "Windows"):
                raise invalid_parameter(
                    "Required parameter 'osDisk.osType' is missing (null): attaching an OS disk needs its OS type.",
                    "osDisk.osType",
                )
            generation = attached_os_disk.properties.get("hyperVGeneration") or "V1"
            if props.get("osProfile"):
                raise invalid_parameter(
                    "Parameter 'osProfile' is not allowed with osDisk.createOption 'Attach'.", "osProfile"
                )
        user_data = _validate_base64(props.pop("userData", None), "userData", "User data")
        if create_option == "FromImage":
            props["osProfile"] = _validate_os_profile(props.get("osProfile"), os_type, call.name)
        nic_ids = self._validate_nics(props, vm_id, location)
        disk_actions = self._plan_storage(
            storage,
            vm_id=vm_id,
            group_name=group.body["name"],
            vm_name=call.name,
            location=location,
            size=size,
            os_type=os_type,
            generation=generation,
            image=image,
            zones=zones,
            existing=None,
            attached_os_disk=attached_os_disk,
        )
        props["vmId"] = util.new_uuid()
        props["provisioningState"] = "Creating"
        props["timeCreated"] = util.iso(util.now())
        body: dict[str, Any] = {
            "name": call.name,
            "id": vm_id,
            "type": VM,
            "location": location,
        }
        for optional in ("tags", "plan", "identity", "extendedLocation"):
            if request.get(optional):
                body[optional] = request[optional]
        if zones:
            body["zones"] = zones
        fill_identity(body, call.subscription)
        body["etag"] = '"1"'
        body["properties"] = props
        operation = self._begin(call, "vm.create", "create", vm_id, location)
        private: dict[str, Any] = {
            "power": "starting",
            "previous_power": None,
            "active_operation": operation.id,
            "active_name": "create",
            "os_type": os_type,
            "hyper_v_generation": generation,
            "user_data": user_data,
            "etag_seq": 1,
        }
        if avset_id is not None:
            private["platform_fault_domain"], private["platform_update_domain"] = availability_sets.join(
                self.services, avset_id, vm_id
            )
        self.store.put(Resource(id=vm_id, type=VM, body=body, private=private))
        for action in disk_actions:
            action()
        for nic_id in nic_ids:
            network.attach_nic(self.services, nic_id, vm_id, primary=_is_primary_nic(props, nic_id))
        return Reply(201, body, self.services.lro_headers(call, operation))

    def patch_vm(self, call: Call) -> Reply:
        vm = self._require_vm(call)
        _check_preconditions(call, vm)
        request = call.body if isinstance(call.body, dict) else {}
        return self._update(call, vm, request)

    def _update(self, call: Call, existing: Resource, request: dict[str, Any]) -> Reply:
        self._check_writable(existing, "update" if call.method == "PATCH" else "createOrUpdate")
        _check_immutable(existing, request)
        _check_vm_immutable(existing, request)
        patch: dict[str, Any] = {}
        if "properties" in request:
            patch["properties"] = copy.deepcopy(request["properties"] or {})
            os_profile = patch["properties"].get("osProfile")
            if isinstance(os_profile, dict):
                os_profile.pop("adminPassword", None)
                os_profile.pop("customData", None)
        for optional in ("zones", "plan", "identity"):
            if optional in request:
                patch[optional] = request[optional]
        base = copy.deepcopy(existing.body)
        self._sync_disks(base)
        merged = util.deep_merge(base, patch)
        fill_identity(merged, call.subscription)
        if not merged.get("zones"):
            merged.pop("zones", None)
        if "tags" in request:
            merged["tags"] = request["tags"] or {}
            if not merged["tags"]:
                merged.pop("tags")
        props = merged["properties"]
        props.pop("instanceView", None)
        for read_only in ("vmId", "timeCreated"):
            props[read_only] = existing.properties.get(read_only)
        size = _validate_size(util.get_path(props, "hardwareProfile", "vmSize"))
        props["hardwareProfile"]["vmSize"] = size.name
        _validate_priority(props, existing)
        user_data = _validate_base64(props.pop("userData", None), "userData", "User data")
        old_nics = {ids.key(n["id"]) for n in util.get_path(existing.body, "properties", "networkProfile", "networkInterfaces") or []}
        new_nic_ids = self._validate_nics(props, existing.id, existing.body["location"], already_attached=old_nics)
        group_name = ids.parse(existing.id).resource_group  # type: ignore[union-attr]
        storage = props.setdefault("storageProfile", {})
        disk_actions = self._plan_storage(
            storage,
            vm_id=existing.id,
            group_name=group_name,
            vm_name=existing.body["name"],
            location=existing.body["location"],
            size=size,
            os_type=existing.private.get("os_type", "Linux"),
            generation=existing.private.get("hyper_v_generation", "V1"),
            image=None,
            zones=existing.body.get("zones"),
            existing=existing,
            attached_os_disk=None,
        )
        props["provisioningState"] = "Updating"
        operation = self._begin(call, "vm.update", "update", existing.id, existing.body["location"])
        vm = Resource(id=existing.id, type=VM, body=merged, private=copy.deepcopy(existing.private))
        vm.private.update(active_operation=operation.id, active_name="update", previous_power=vm.private.get("power"))
        merged["etag"] = _next_etag(vm)
        if user_data is not None:
            vm.private["user_data"] = user_data or None
        self.store.put(vm)
        for action in disk_actions:
            action()
        new_keys = {ids.key(n) for n in new_nic_ids}
        for nic_key in old_nics - new_keys:
            network.detach_nic(self.services, nic_key, existing.id)
        for nic_id in new_nic_ids:
            if ids.key(nic_id) not in old_nics:
                network.attach_nic(self.services, nic_id, existing.id, primary=_is_primary_nic(props, nic_id))
        return Reply(200, merged, self.services.lro_headers(call, operation))

    # disks ----------------------------------------------------------------------------------------------------

    def _sync_disks(self, body: dict[str, Any]) -> None:
        """Refresh ``diskSizeGB``/``storageAccountType`` of a VM body from its disk resources (the truth)."""
        storage = util.get_path(body, "properties", "storageProfile") or {}
        for entry in [storage.get("osDisk") or {}, *(storage.get("dataDisks") or [])]:
            disk_ref = util.get_path(entry, "managedDisk", "id")
            disk = self.store.get(disk_ref) if isinstance(disk_ref, str) else None
            if disk is not None:
                entry["diskSizeGB"] = disk.properties.get("diskSizeGB", entry.get("diskSizeGB"))
                entry["managedDisk"]["storageAccountType"] = disk.body["sku"]["name"]

    def _validate_attached_os_disk(
        self, storage: dict[str, Any], os_disk: dict[str, Any], vm_id: str, location: str
    ) -> Resource:
        if storage.get("imageReference"):
            raise invalid_parameter(
                "Cannot attach an existing OS disk if the VM is created from a platform or user image.",
                "storageProfile.imageReference",
            )
        disk_ref = util.get_path(os_disk, "managedDisk", "id")
        if not disk_ref:
            raise invalid_parameter("Required parameter 'osDisk.managedDisk.id' is missing (null).",
                                    "osDisk.managedDisk.id")
        return self._attachable_disk(disk_ref, vm_id, location, "osDisk.managedDisk.id")

    def _attachable_disk(self, disk_ref: str, vm_id: str, location: str, target: str) -> Resource:
        disk_ref = "/" + str(disk_ref).lstrip("/")
        parsed = ids.parse(disk_ref)
        disk = self.store.get(disk_ref) if parsed is not None and parsed.type_name.lower() == disks.DISK.lower() else None
        if disk is None or disk.properties.get("provisioningState") == "Deleting":
            raise ArmError(404, "NotFound", f"Disk '{disk_ref}' specified in the request does not exist in this "
                           "Azure location.", target=target)
        owner = disks.attached_vm(disk)
        if owner and ids.key(owner) != ids.key(vm_id):
            raise ArmError(409, "ConflictingUserInput", f"Disk '{disk.body['name']}' cannot be attached as the disk "
                           f"is already owned by VM '{owner}'.", target=target)
        if disk.body["location"] != location:
            raise invalid_parameter(
                f"Disk '{disk.id}' is in location '{disk.body['location']}' but the virtual machine is in location "
                f"'{location}'.", target
            )
        return disk

    def _plan_storage(
        self,
        storage: dict[str, Any],
        *,
        vm_id: str,
        group_name: str,
        vm_name: str,
        location: str,
        size: catalog.VmSize,
        os_type: str,
        generation: str,
        image: ResolvedImage | None,
        zones: list[str] | None,
        existing: Resource | None,
        attached_os_disk: Resource | None,
    ) -> list[Callable[[], None]]:
        """Validate the storage profile (filling it in) and return the disk mutations to apply afterwards."""
        actions: list[Callable[[], None]] = []
        default_sku = "Premium_LRS" if size.premium_io else "Standard_LRS"
        deallocated = existing is not None and existing.private.get("power") == "deallocated"
        old_storage = copy.deepcopy(util.get_path(existing.body, "properties", "storageProfile") or {}) if existing else {}
        if existing is not None:
            self._sync_disks({"properties": {"storageProfile": old_storage}})

        # OS disk
        os_disk = storage.setdefault("osDisk", {})
        os_disk["osType"] = os_type
        os_disk["caching"] = _choice(os_disk.get("caching") or "ReadWrite", CACHING, "osDisk.caching")
        os_disk["deleteOption"] = _choice(os_disk.get("deleteOption") or "Detach", DELETE_OPTIONS, "osDisk.deleteOption")
        managed = os_disk.get("managedDisk")
        if not isinstance(managed, dict):
            managed = os_disk["managedDisk"] = {}
        if attached_os_disk is not None and not managed.get("storageAccountType"):
            managed["storageAccountType"] = attached_os_disk.body["sku"]["name"]
        sku = disks.check_sku(managed.get("storageAccountType") or default_sku, "osDisk.managedDisk.storageAccountType")
        if sku in catalog.DATA_ONLY_DISK_SKUS:
            raise invalid_parameter(f"Storage account type '{sku}' is supported for data disks only.",
                                    "osDisk.managedDisk.storageAccountType")
        _check_premium(sku, size)
        managed["storageAccountType"] = sku
        requested = os_disk.get("diskSizeGB")
        if requested is not None:
            requested = disks.check_size(requested, "osDisk.diskSizeGB", maximum=disks.MAX_OS_DISK_GB)
        if existing is None and attached_os_disk is not None:
            current = int(attached_os_disk.properties["diskSizeGB"])
            if requested is not None and requested < current:
                raise disks.size_reduction(current, requested, "osDisk.diskSizeGB")
            os_disk["name"] = attached_os_disk.body["name"]
            managed["id"] = attached_os_disk.id
            os_disk["diskSizeGB"] = requested or current
            grow = requested if requested is not None and requested > current else None
            sku_change = sku if sku != attached_os_disk.body["sku"]["name"] else None
            disk_ref = attached_os_disk.id
            actions.append(lambda: disks.attach_disk(self.services, disk_ref, vm_id))
            if grow or sku_change:
                actions.append(lambda: disks.update_disk(self.services, disk_ref, size_gb=grow, sku=sku_change))
        elif existing is None:
            assert image is not None
            minimum = image.os_disk_size_gb
            if requested is not None and requested < minimum:
                raise ArmError(
                    409,
                    "OperationNotAllowed",
                    f"The specified disk size {requested} GB is smaller than the size of the corresponding disk in "
                    f"the VM image: {minimum} GB. This is not allowed. Please choose equal or greater size or do "
                    "not specify an explicit size.",
                    target="osDisk.diskSizeGB",
                )
            name = os_disk.get("name") or f"{vm_name}_OsDisk_1_{util.new_uuid().replace('-', '')}"
            disk_ref = disks.disk_id(vm_id, group_name, name)
            self._check_new_disk_name(disk_ref, name, "osDisk.name")
            os_disk["name"] = name
            managed["id"] = disk_ref
            os_disk["diskSizeGB"] = requested or minimum
            spec = {"size_gb": os_disk["diskSizeGB"], "sku": sku, "create_option": "FromImage", "os_type": os_type,
                    "hyper_v_generation": generation, "image_reference_id": image.source_id}
            actions.append(lambda: disks.create_disk(
                self.services, disk_ref, location=location, managed_by=vm_id, zones=zones, **spec))
        else:
            old_os = old_storage.get("osDisk") or {}
            os_disk["name"] = old_os.get("name")
            managed["id"] = util.get_path(old_os, "managedDisk", "id")
            current = int(old_os.get("diskSizeGB") or 0)
            if requested is not None and requested != current:
                if requested < current:
                    raise disks.size_reduction(current, requested, "osDisk.diskSizeGB")
                if not deallocated:
                    raise ArmError(409, "Conflict", "Disk resizing is allowed only when creating a VM or when the VM "
                                   "is deallocated.", target="disk.diskSizeGB")
            os_disk["diskSizeGB"] = requested or current
            old_sku = util.get_path(old_os, "managedDisk", "storageAccountType")
            grow = requested if requested is not None and requested > current else None
            sku_change = sku if sku != old_sku else None
            disk_ref = managed["id"]
            if disk_ref and (grow or sku_change):
                actions.append(lambda: disks.update_disk(self.services, disk_ref, size_gb=grow, sku=sku_change))

        # data disks
        requested_disks = storage.get("dataDisks")
        if requested_disks is None:
            requested_disks = []
        if not isinstance(requested_disks, list):
            raise invalid_parameter("The value of parameter 'dataDisks' is not valid: it must be a list.", "dataDisks")
        old_disks = [d for d in old_storage.get("dataDisks") or [] if not d.get("toBeDetached")]
        matched: set[str] = set()
        luns: set[int] = set()
        names: set[str] = set()
        result: list[dict[str, Any]] = []
        for index, wanted in enumerate(requested_disks):
            if not isinstance(wanted, dict):
                raise invalid_parameter(f"The value of parameter 'dataDisks[{index}]' is not valid.", "dataDisks")
            entry = copy.deepcopy(wanted)
            check_lun(entry, index, luns)
            entry_managed = entry.get("managedDisk")
            if not isinstance(entry_managed, dict):
                entry_managed = entry["managedDisk"] = {}
            old = _match_data_disk(entry, old_disks, matched)
            target = f"dataDisks[{index}]"
            if old is not None:
                matched.add(ids.key(old["managedDisk"]["id"]))
                self._plan_existing_data_disk(entry, old, target, actions, vm_id)
            else:
                if entry.get("toBeDetached"):
                    continue
                self._plan_new_data_disk(
                    entry, target, actions, vm_id=vm_id, vm_name=vm_name, group_name=group_name, location=location,
                    default_sku=default_sku, image=image, zones=zones, existing=existing,
                )
            entry["caching"] = _choice(entry.get("caching") or (old or {}).get("caching") or "None", CACHING,
                                       f"{target}.caching")
            entry["deleteOption"] = _choice(entry.get("deleteOption") or (old or {}).get("deleteOption") or "Detach",
                                            DELETE_OPTIONS, f"{target}.deleteOption")
            entry["toBeDetached"] = bool(entry.get("toBeDetached"))
            if entry["name"].lower() in names:
                raise invalid_parameter(f"A disk named '{entry['name']}' already exists.", "dataDisks")
            names.add(entry["name"].lower())
            result.append(entry)
        active = [d for d in result if not d["toBeDetached"]]
        check_data_disk_count(len(active), size)
        for entry in active:
            _check_premium(entry["managedDisk"]["storageAccountType"], size)
        for entry in result:
            if entry["toBeDetached"]:
                detached_ref = entry["managedDisk"]["id"]
                actions.append(lambda ref=detached_ref: disks.detach_disk(self.services, ref, vm_id))
        for old in old_disks:
            old_ref = old["managedDisk"]["id"]
            if ids.key(old_ref) not in matched:
                actions.append(lambda ref=old_ref: disks.detach_disk(self.services, ref, vm_id))
        storage["dataDisks"] = result
        return actions

    def _plan_existing_data_disk(
        self, entry: dict[str, Any], old: dict[str, Any], target: str, actions: list[Callable[[], None]], vm_id: str
    ) -> None:
        entry["name"] = old["name"]
        entry["createOption"] = old.get("createOption", "Empty")
        entry["managedDisk"]["id"] = disk_ref = old["managedDisk"]["id"]
        current = int(old.get("diskSizeGB") or 0)
        requested = entry.get("diskSizeGB")
        grow = None
        if requested is not None and requested != current:
            requested = disks.check_size(requested, f"{target}.diskSizeGB", maximum=disks.MAX_DATA_DISK_GB)
            if requested < current:
                raise disks.size_reduction(current, requested, "dataDisk.diskSizeGB")
            grow = requested
        entry["diskSizeGB"] = grow or current
        old_sku = old["managedDisk"].get("storageAccountType")
        sku = disks.check_sku(entry["managedDisk"].get("storageAccountType") or old_sku,
                              f"{target}.managedDisk.storageAccountType")
        entry["managedDisk"]["storageAccountType"] = sku
        sku_change = sku if sku != old_sku else None
        if grow or sku_change:
            actions.append(lambda: disks.update_disk(self.services, disk_ref, size_gb=grow, sku=sku_change))

    def _plan_new_data_disk(
        self,
        entry: dict[str, Any],
        target: str,
        actions: list[Callable[[], None]],
        *,
        vm_id: str,
        vm_name: str,
        group_name: str,
        location: str,
        default_sku: str,
        image: ResolvedImage | None,
        zones: list[str] | None,
        existing: Resource | None,
    ) -> None:
        lun = entry["lun"]
        create_option = _choice(entry.get("createOption") or "Empty", ("Empty", "Attach", "FromImage"),
                                f"{target}.createOption")
        entry["createOption"] = create_option
        managed = entry["managedDisk"]
        requested = entry.get("diskSizeGB")
        if requested is not None:
            requested = disks.check_size(requested, f"{target}.diskSizeGB", maximum=disks.MAX_DATA_DISK_GB)
        if create_option == "Attach":
            if not managed.get("id"):
                raise invalid_parameter(f"Required parameter '{target}.managedDisk.id' is missing (null).",
                                        f"{target}.managedDisk.id")
            disk = self._attachable_disk(managed["id"], vm_id, location, f"{target}.managedDisk.id")
            current = int(disk.properties["diskSizeGB"])
            if requested is not None and requested < current:
                raise disks.size_reduction(current, requested, "dataDisk.diskSizeGB")
            entry["name"] = disk.body["name"]
            managed["id"] = disk_ref = disk.id
            entry["diskSizeGB"] = requested or current
            sku = disks.check_sku(managed.get("storageAccountType") or disk.body["sku"]["name"],
                                  f"{target}.managedDisk.storageAccountType")
            managed["storageAccountType"] = sku
            grow = requested if requested is not None and requested > current else None
            sku_change = sku if sku != disk.body["sku"]["name"] else None
            actions.append(lambda: disks.attach_disk(self.services, disk_ref, vm_id))
            if grow or sku_change:
                actions.append(lambda: disks.update_disk(self.services, disk_ref, size_gb=grow, sku=sku_change))
            return
        if create_option == "FromImage":
            image_size = image.data_disks.get(lun) if image is not None else None
            if image_size is None:
                raise invalid_parameter(
                    f"Data disk at LUN {lun} has createOption 'FromImage' but the image has no data disk at that LUN.",
                    f"{target}.createOption",
                )
            if requested is not None and requested < image_size:
                raise ArmError(
                    409, "OperationNotAllowed",
                    f"The specified disk size {requested} GB is smaller than the size of the corresponding disk in "
                    f"the VM image: {image_size} GB. This is not allowed. Please choose equal or greater size or do "
                    "not specify an explicit size.", target=f"{target}.diskSizeGB",
                )
            size_gb = requested or image_size
        else:
            if requested is None:
                raise invalid_parameter(f"Required parameter '{target}.diskSizeGB' is missing (null): an empty data "
                                        "disk needs a size.", f"{target}.diskSizeGB")
            size_gb = requested
        if managed.get("id"):
            raise invalid_parameter(
                f"Parameter '{target}.managedDisk.id' is only allowed with createOption 'Attach'.",
                f"{target}.managedDisk.id",
            )
        sku = disks.check_sku(managed.get("storageAccountType") or default_sku, f"{target}.managedDisk.storageAccountType")
        managed["storageAccountType"] = sku
        name = entry.get("name") or f"{vm_name}_disk{lun + 2}_{util.new_uuid().replace('-', '')}"
        disk_ref = disks.disk_id(vm_id, group_name, name)
        self._check_new_disk_name(disk_ref, name, f"{target}.name")
        entry["name"] = name
        managed["id"] = disk_ref
        entry["diskSizeGB"] = size_gb
        spec = {"size_gb": size_gb, "sku": sku, "create_option": create_option,
                "image_reference_id": image.source_id if create_option == "FromImage" and image else None}
        actions.append(lambda: disks.create_disk(
            self.services, disk_ref, location=location, managed_by=vm_id, zones=zones, **spec))

    def _check_new_disk_name(self, disk_ref: str, name: str, target: str) -> None:
        if self.store.get(disk_ref) is not None:
            parsed = ids.parse(disk_ref)
            raise ArmError(
                409,
                "ConflictingUserInput",
                f"A disk named '{name}' already exists in resource group "
                f"'{parsed.resource_group if parsed else ''}'. Use createOption 'Attach' to attach an existing disk.",
                target=target,
            )

    def _validate_availability_set(self, props: dict[str, Any], location: str, zones: list[str] | None) -> str | None:
        ref = props.get("availabilitySet")
        if not ref:
            props.pop("availabilitySet", None)
            return None
        avset_ref = ref.get("id") if isinstance(ref, dict) else None
        if not avset_ref:
            raise invalid_parameter("Required parameter 'availabilitySet.id' is missing (null).", "availabilitySet.id")
        if zones:
            raise invalid_parameter(
                "A virtual machine cannot be in an availability set and in an availability zone at the same time: "
                "specify either 'availabilitySet' or 'zones'.",
                "availabilitySet",
            )
        avset = availability_sets.find(self.services, avset_ref, location)
        props["availabilitySet"] = {"id": avset.id}
        return avset.id

    def _check_writable(self, vm: Resource, operation_name: str) -> None:
        check_writable(self.services, vm, operation_name, f"on VM '{vm.body['name']}' since the VM is",
                       f"the Virtual Machine '{vm.body['name']}'")

    def _begin(self, call: Call, kind: str, name: str, vm_id: str, location: str) -> Operation:
        return self.services.begin(call, kind, vm_id, location, NS, name=name)

    # validation -----------------------------------------------------------------------------------------------

    def _validate_image(
        self, reference: Any, os_disk: dict[str, Any], os_profile: Any
    ) -> ResolvedImage:
        if not isinstance(reference, dict) or not reference:
            raise invalid_parameter(
                "Required parameter 'imageReference' is missing (null).", "storageProfile.imageReference"
            )
        fallback_os = os_disk.get("osType") or (
            "Windows" if isinstance(os_profile, dict) and "windowsConfiguration" in os_profile else "Linux"
        )
        if reference.get("id"):
            for resolver in self.image_id_resolvers:
                resolved = resolver(reference["id"])
                if resolved is not None:
                    return resolved if isinstance(resolved, ResolvedImage) else ResolvedImage(*resolved)
            parsed = ids.parse(reference["id"])
            name = parsed.name if parsed else reference["id"]
            type_name = parsed.type_name if parsed else "Microsoft.Compute/images"
            group = parsed.resource_group if parsed else ""
            raise ArmError(
                404,
                "NotFound",
                f"The Resource '{type_name}/{name}' under resource group '{group}' was not found.",
                target="imageReference",
            )
        if reference.get("sharedGalleryImageId") or reference.get("communityGalleryImageId"):
            return ResolvedImage(fallback_os, "V2")
        fields = {f: reference.get(f) for f in ("publisher", "offer", "sku", "version")}
        for field_name, value in fields.items():
            if not value:
                raise invalid_parameter(
                    f"Required parameter 'imageReference.{field_name}' is missing (null).",
                    f"imageReference.{field_name}",
                )
        image = catalog.find_image(fields["publisher"], fields["offer"], fields["sku"])
        exact = image.resolve(fields["version"]) if image is not None else None
        if image is None or exact is None:
            raise _platform_image_not_found(fields["publisher"], fields["offer"], fields["sku"], fields["version"])
        reference["exactVersion"] = exact
        return ResolvedImage(image.os_type, image.hyper_v_generation, image.os_disk_size_gb)

    def _resolve_stored_image(self, image_id: str) -> tuple[str, str] | None:
        image = self.store.get(image_id)
        if image is None:
            return None
        os_type = (
            util.get_path(image.body, "properties", "storageProfile", "osDisk", "osType")
            or util.get_path(image.body, "properties", "osType")
            or "Linux"
        )
        return os_type, util.get_path(image.body, "properties", "hyperVGeneration") or "V1"

    def _validate_nics(
        self, props: dict[str, Any], vm_id: str, location: str, already_attached: set[str] | None = None
    ) -> list[str]:
        refs = util.get_path(props, "networkProfile", "networkInterfaces")
        if not refs:
            raise invalid_parameter(
                "Required parameter 'networkProfile' is missing (null): a virtual machine needs at least one "
                "network interface.",
                "networkProfile",
            )
        nic_ids = []
        primaries = 0
        for ref in refs:
            nic_id = ref.get("id") if isinstance(ref, dict) else None
            nic = self.store.get(nic_id) if nic_id else None
            if nic is None or nic.properties.get("provisioningState") == "Deleting":
                raise invalid_parameter(
                    f"Network interface '{nic_id}' referenced by the virtual machine was not found.",
                    "networkProfile.networkInterfaces",
                )
            holder = util.get_path(nic.body, "properties", "virtualMachine", "id")
            if holder and ids.key(holder) != ids.key(vm_id):
                raise ArmError(
                    400,
                    "NicInUse",
                    f"Network interface {nic.id} is already in use by virtual machine {holder}. A network interface "
                    "can be attached to only one virtual machine.",
                    target="networkProfile.networkInterfaces",
                )
            if nic.body["location"] != location and ids.key(nic.id) not in (already_attached or set()):
                raise invalid_parameter(
                    f"Network interface {nic.id} is in location '{nic.body['location']}' but the virtual machine is "
                    f"in location '{location}'. They must be in the same location.",
                    "networkProfile.networkInterfaces",
                )
            ref["id"] = nic.id
            if util.get_path(ref, "properties", "primary"):
                primaries += 1
            nic_ids.append(nic.id)
        if len(nic_ids) > 1 and primaries != 1:
            raise invalid_parameter(
                "Virtual machine with multiple network interfaces must have exactly one primary network interface.",
                "networkProfile.networkInterfaces",
            )
        return nic_ids

    # actions --------------------------------------------------------------------------------------------------

    def _action_handler(self, action: str) -> Callable[[Call], Reply]:
        def handler(call: Call) -> Reply:
            return self._power_action(call, action)

        return handler

    def _power_action(self, call: Call, action: str) -> Reply:
        vm = self._require_vm(call)
        self._check_writable(vm, action)
        power = vm.private.get("power")
        if action == "start" and vm.private.get("generalized"):
            raise operation_not_allowed(
                f"Operation 'start' is not allowed on VM '{vm.body['name']}' since the VM is generalized."
            )
        if action == "restart" and power != "running":
            raise operation_not_allowed(
                f"Operation 'restart' is not allowed on VM '{vm.body['name']}' since the VM is "
                f"{power or 'not running'}. Start the VM before restarting it."
            )
        transitional = {"start": "starting", "powerOff": "stopping", "deallocate": "deallocating", "restart": "starting"}
        if action == "powerOff" and power == "deallocated":
            transitional["powerOff"] = "deallocated"
        operation = self._begin(call, f"vm.{action}", action, vm.id, vm.body["location"])
        edited = self.store.edit(vm.id)
        assert edited is not None
        edited.private.update(
            previous_power=power, power=transitional[action], active_operation=operation.id, active_name=action
        )
        edited.properties["provisioningState"] = "Updating"
        self.store.put(edited)
        return Reply(202, None, self.services.lro_headers(call, operation, location=True))

    def simulate_eviction(self, call: Call) -> Reply:
        vm = self._require_vm(call)
        if (vm.properties.get("priority") or "Regular") not in ("Spot", "Low"):
            raise operation_not_allowed(
                f"Simulate eviction is only supported for Spot virtual machines; '{vm.body['name']}' is not one."
            )
        self.evict(vm.id)
        return Reply(204)

    def evict(self, vm_id: str) -> str:
        """Spot eviction: the VM is deallocated (or deleted with ``evictionPolicy: Delete``). Returns the outcome.

        Regular VMs cannot be evicted (400). A deleted Spot VM takes all its disks with it, as in Azure.
        """
        vm = self.store.edit(vm_id)
        if vm is None:
            raise ArmError(404, "ResourceNotFound", f"The virtual machine '{vm_id}' was not found.")
        if (vm.properties.get("priority") or "Regular") not in ("Spot", "Low"):
            raise ArmError(
                400,
                "OperationNotAllowed",
                f"Virtual machine '{vm.body['name']}' has priority 'Regular': only Spot virtual machines can be "
                "evicted.",
            )
        if (vm.properties.get("evictionPolicy") or "Deallocate") == "Delete":
            vm.private["delete_all_disks"] = True
            self.store.put(vm)
            self.services.remove(vm.id)
            log.info("Spot virtual machine %s evicted and deleted", vm_id)
            return "deleted"
        log.info("Spot virtual machine %s evicted and deallocated", vm_id)
        active = vm.private.get("active_operation")
        if active:
            self.services.engine.cancel(active, "OperationPreempted", "The operation was preempted by a Spot eviction.")
        vm.private.update(power="deallocated", active_operation=None, provisioning_time=util.iso(util.now()))
        vm.properties["provisioningState"] = "Succeeded"
        self.store.put(vm)
        return "deallocated"

    # delete ---------------------------------------------------------------------------------------------------

    # redeploy, reimage, generalize ----------------------------------------------------------------------------

    def redeploy(self, call: Call) -> Reply:
        """Move the VM to another host: an LRO after which the VM is in the power state it had."""
        vm = self._require_vm(call)
        self._check_writable(vm, "redeploy")
        log.info("virtual machine %s: redeploy requested (moves to a new host)", vm.id)
        return self._keep_power_action(call, vm, "redeploy")

    def reimage(self, call: Call) -> Reply:
        """Reinstall the OS disk from the image: an LRO; the VM ends in the power state it had."""
        vm = self._require_vm(call)
        self._check_writable(vm, "reimage")
        request = call.body if isinstance(call.body, dict) else {}
        os_profile = request.get("osProfile")
        if isinstance(os_profile, dict):
            if os_profile.get("adminPassword") is not None:
                _check_password(os_profile.get("adminPassword"), vm.private.get("os_type", "Linux"))
            _validate_base64(os_profile.get("customData"), "customData", "Custom data in OSProfile")
        log.info("virtual machine %s: reimage requested", vm.id)
        return self._keep_power_action(call, vm, "reimage")

    def _keep_power_action(self, call: Call, vm: Resource, action: str) -> Reply:
        operation = self._begin(call, f"vm.{action}", action, vm.id, vm.body["location"])
        edited = self.store.edit(vm.id)
        assert edited is not None
        edited.private.update(previous_power=edited.private.get("power"), active_operation=operation.id,
                              active_name=action)
        edited.properties["provisioningState"] = "Updating"
        self.store.put(edited)
        return Reply(202, None, self.services.lro_headers(call, operation, location=True))

    def generalize(self, call: Call) -> Reply:
        """Mark the VM generalized (synchronous, 200). It must be stopped or deallocated; it cannot start again."""
        vm = self._require_vm(call)
        self._check_writable(vm, "generalize")
        if vm.private.get("power") not in ("stopped", "deallocated"):
            raise operation_not_allowed(
                f"Operation 'generalize' is not allowed on VM '{vm.body['name']}' since the VM is running. Please "
                "power off explicitly in case you shut down the VM from inside the guest operating system."
            )
        edited = self.store.edit(vm.id)
        assert edited is not None
        edited.private["generalized"] = True
        self.store.put(edited)
        return Reply(200)

    # delete ---------------------------------------------------------------------------------------------------

    def delete_vm(self, call: Call) -> Reply:
        assert call.resource_group is not None
        vm = self.store.get(call.resource_id)
        _check_preconditions(call, vm)
        if vm is None:
            return Reply(204)
        if vm.properties.get("provisioningState") == "Deleting":
            current = self.services.engine.active(vm.private.get("active_operation"))
            if current is not None:
                return Reply(202, None, self.services.lro_headers(call, current, location=True))
        active = vm.private.get("active_operation")
        if active:
            self.services.engine.cancel(
                active, "OperationPreempted", "Operation execution has been preempted by a more recent operation."
            )
        operation = self._begin(call, "vm.delete", "delete", vm.id, vm.body["location"])
        edited = self.store.edit(vm.id)
        assert edited is not None
        power = edited.private.get("power")
        edited.private.update(
            previous_power=power,
            power="deallocating" if power in ("running", "starting", "stopped", "stopping") else power,
            active_operation=operation.id,
            active_name="delete",
        )
        edited.properties["provisioningState"] = "Deleting"
        self.store.put(edited)
        return Reply(202, None, self.services.lro_headers(call, operation, location=True))

    def _release_vm(self, vm: Resource) -> None:
        for ref in util.get_path(vm.body, "properties", "networkProfile", "networkInterfaces") or []:
            network.detach_nic(self.services, ref["id"], vm.id)
            if (util.get_path(ref, "properties", "deleteOption") or "Detach") == "Delete":
                self.services.remove(ref["id"])
        storage = util.get_path(vm.body, "properties", "storageProfile") or {}
        delete_all = bool(vm.private.get("delete_all_disks"))
        for entry in [storage.get("osDisk") or {}, *(storage.get("dataDisks") or [])]:
            disk_ref = util.get_path(entry, "managedDisk", "id")
            if not disk_ref or entry.get("toBeDetached"):
                continue
            disks.detach_disk(self.services, disk_ref, vm.id)
            if delete_all or entry.get("deleteOption") == "Delete":
                self.services.remove(disk_ref)
        avset_ref = util.get_path(vm.body, "properties", "availabilitySet", "id")
        if avset_ref:
            availability_sets.leave(self.services, avset_ref, vm.id)

    # completions ----------------------------------------------------------------------------------------------

    def _finish(self, operation: Operation, error: dict[str, Any] | None, power: str | None) -> None:
        vm = self.store.edit(operation.resource_id)
        if vm is None or vm.private.get("active_operation") != operation.id:
            return
        vm.private.update(power=power, active_operation=None, provisioning_time=util.iso(util.now()))
        vm.private["provisioning_error"] = error
        vm.properties["provisioningState"] = "Failed" if error else "Succeeded"
        storage = vm.properties.get("storageProfile") or {}
        if any(d.get("toBeDetached") for d in storage.get("dataDisks") or []):
            storage["dataDisks"] = [d for d in storage["dataDisks"] if not d.get("toBeDetached")]
        self.store.put(vm)

    def _complete_keep_power(self, operation: Operation, error: dict[str, Any] | None) -> None:
        vm = self.store.get(operation.resource_id)
        if vm is None:
            return
        self._finish(operation, error, vm.private.get("previous_power"))

    def _complete_write(self, operation: Operation, error: dict[str, Any] | None) -> None:
        vm = self.store.get(operation.resource_id)
        if vm is None:
            return
        previous = vm.private.get("previous_power")
        if error:
            power = previous if operation.kind == "vm.update" else None
        else:
            power = previous if operation.kind == "vm.update" and previous not in (None, "starting") else "running"
        self._finish(operation, error, power)

    def _complete_power(self, target: str) -> Callable[[Operation, dict[str, Any] | None], None]:
        def complete(operation: Operation, error: dict[str, Any] | None) -> None:
            vm = self.store.get(operation.resource_id)
            if vm is None:
                return
            previous = vm.private.get("previous_power")
            final = target
            if operation.kind == "vm.powerOff" and previous == "deallocated":
                final = "deallocated"
            self._finish(operation, error, previous if error else final)

        return complete

    def _complete_delete(self, operation: Operation, error: dict[str, Any] | None) -> None:
        vm = self.store.get(operation.resource_id)
        if vm is None or vm.private.get("active_operation") != operation.id:
            return
        if error:
            self._finish(operation, error, vm.private.get("previous_power"))
            return
        self.services.remove(vm.id)


# helpers ----------------------------------------------------------------------------------------------------------


def _platform_image_not_found(publisher: Any, offer: Any, sku: Any, version: Any) -> ArmError:
    return ArmError(
        404,
        "PlatformImageNotFound",
        f"The platform image '{publisher}:{offer}:{sku}:{version}' is not available. Verify that all fields in the "
        "storage profile are correct.",
        target="imageReference",
    )


def _validate_size(name: Any) -> catalog.VmSize:
    size = catalog.find_size(name if isinstance(name, str) else None)
    if size is None:
        raise invalid_parameter(
            f"The value '{name}' of parameter 'vmSize' is not valid. Use the "
            "Microsoft.Compute/locations/{location}/vmSizes API to list the sizes available in this region.",
            "vmSize",
        )
    return size


def _validate_os_profile(os_profile: Any, os_type: str, vm_name: str) -> dict[str, Any]:
    if not isinstance(os_profile, dict):
        raise invalid_parameter("Required parameter 'osProfile' is missing (null).", "osProfile")
    profile = copy.deepcopy(os_profile)
    username = profile.get("adminUsername")
    if not username:
        raise invalid_parameter("Required parameter 'adminUsername' is missing (null).", "adminUsername")
    if username.lower() in RESERVED_USERNAMES:
        raise invalid_parameter("The Admin Username specified is not allowed.", "adminUsername")
    password = profile.pop("adminPassword", None)
    _validate_base64(profile.pop("customData", None), "customData", "Custom data in OSProfile")
    if password is not None:
        _check_password(password, os_type)
    if os_type == "Windows":
        if not password:
            raise invalid_parameter("Required parameter 'adminPassword' is missing (null).", "adminPassword")
        windows = profile.setdefault("windowsConfiguration", {})
        windows.setdefault("provisionVMAgent", True)
        windows.setdefault("enableAutomaticUpdates", True)
        windows.setdefault("patchSettings", {"patchMode": "AutomaticByOS", "assessmentMode": "ImageDefault"})
    else:
        linux = profile.setdefault("linuxConfiguration", {})
        keys = util.get_path(linux, "ssh", "publicKeys") or []
        if linux.get("disablePasswordAuthentication") and not keys:
            raise invalid_parameter(
                "Authentication using either SSH or by user name and password must be enabled in Linux profile.",
                "linuxConfiguration",
            )
        if not keys and not password:
            raise invalid_parameter("Required parameter 'adminPassword' is missing (null).", "adminPassword")
        linux.setdefault("disablePasswordAuthentication", bool(keys) and not password)
        linux.setdefault("provisionVMAgent", True)
        linux.setdefault("patchSettings", {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"})
    profile.setdefault("computerName", vm_name[:64] if os_type == "Linux" else vm_name[:15])
    profile.setdefault("secrets", [])
    profile.setdefault("allowExtensionOperations", True)
    profile.setdefault("requireGuestProvisionSignal", True)
    return profile


def _fill_storage_profile(
    storage: dict[str, Any],
    vm_id: str,
    group_name: str,
    vm_name: str,
    os_type: str,
    size: catalog.VmSize,
    create_option: str,
) -> None:
    parsed = ids.parse(vm_id)
    assert parsed is not None
    disk_prefix = f"/subscriptions/{parsed.subscription}/resourceGroups/{group_name.upper()}/providers/Microsoft.Compute/disks"
    default_account = "Premium_LRS" if size.premium_io else "Standard_LRS"
    os_disk = storage.setdefault("osDisk", {})
    os_disk.setdefault("osType", os_type)
    os_disk.setdefault("name", f"{vm_name}_OsDisk_1_{util.new_uuid().replace('-', '')}")
    os_disk.setdefault("createOption", create_option)
    os_disk.setdefault("caching", "ReadWrite")
    os_disk.setdefault("deleteOption", "Detach")
    os_disk.setdefault("diskSizeGB", 127 if os_type == "Windows" else 30)
    managed = os_disk.setdefault("managedDisk", {})
    managed.setdefault("storageAccountType", default_account)
    managed.setdefault("id", f"{disk_prefix}/{os_disk['name']}")
    for disk in storage.setdefault("dataDisks", []):
        disk.setdefault("name", f"{vm_name}_disk{disk.get('lun', 0) + 2}_{util.new_uuid().replace('-', '')}")
        disk.setdefault("caching", "None")
        disk.setdefault("deleteOption", "Detach")
        disk.setdefault("toBeDetached", False)
        data_managed = disk.setdefault("managedDisk", {})
        data_managed.setdefault("storageAccountType", default_account)
        data_managed.setdefault("id", f"{disk_prefix}/{disk['name']}")
    storage["dataDisks"] = [d for d in storage["dataDisks"] if not d.get("toBeDetached")]


def check_lun(entry: dict[str, Any], index: int, luns: set[int]) -> int:
    """The ``lun`` of ``dataDisks[index]``: 0-63 and not in ``luns`` (added to it), else 400 InvalidParameter."""
    lun = entry.get("lun")
    if isinstance(lun, bool) or not isinstance(lun, int) or not 0 <= lun <= MAX_LUN:
        raise invalid_parameter(
            f"The value '{lun}' of parameter 'dataDisks[{index}].lun' is not valid: a LUN is an integer "
            f"between 0 and {MAX_LUN}.", f"dataDisks[{index}].lun"
        )
    if lun in luns:
        raise invalid_parameter(f"A disk at LUN {lun} already exists.", "dataDisks")
    luns.add(lun)
    return lun


def check_data_disk_count(count: int, size: catalog.VmSize) -> None:
    """409 OperationNotAllowed when a VM (or scale set model) of ``size`` would have more data disks than it takes."""
    if count > size.max_data_disks:
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"The maximum number of data disks allowed to be attached to a VM of this size is {size.max_data_disks}.",
            target="dataDisks",
        )


def _check_password(password: Any, os_type: str) -> None:
    """ARM's ``adminPassword`` rules: length per OS, 3 of 4 character classes, no control characters."""
    low, high = PASSWORD_LENGTH["Windows" if os_type == "Windows" else "Linux"]
    text = password if isinstance(password, str) else ""
    classes = sum(
        (
            any(c.islower() for c in text),
            any(c.isupper() for c in text),
            any(c.isdigit() for c in text),
            any(not c.isalnum() and c.isprintable() for c in text),
        )
    )
    if not isinstance(password, str) or not low <= len(text) <= high or classes < 3 or not text.isprintable():
        raise invalid_parameter(
            f"The supplied password must be between {low}-{high} characters long and must satisfy at least 3 of "
            "password complexity requirements from the following:\r\n1) Contains an uppercase character\r\n2) "
            "Contains a lowercase character\r\n3) Contains a numeric digit\r\n4) Contains a special character\r\n"
            "5) Control characters are not allowed",
            "adminPassword",
        )
    if text.lower() in DISALLOWED_PASSWORDS:
        raise invalid_parameter("The Admin password specified is not allowed.", "adminPassword")


def _validate_base64(value: Any, target: str, label: str) -> str | None:
    """``customData``/``userData``: base64 of at most 64 KiB (87380 characters)."""
    if value is None:
        return None
    valid = isinstance(value, str) and len(value) <= MAX_BASE64_DATA
    if valid and value:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            valid = False
    if not valid:
        raise invalid_parameter(
            f"{label} must be in Base64 encoding and with a maximum length of {MAX_BASE64_DATA} characters.", target
        )
    return value


def _choice(value: Any, allowed: tuple[str, ...], target: str) -> str:
    """The canonical spelling of an enum value (ARM enums are case-insensitive); 400 InvalidParameter otherwise."""
    found = next((a for a in allowed if isinstance(value, str) and a.lower() == value.lower()), None)
    if found is None:
        raise invalid_parameter(
            f"The value '{value}' of parameter '{target}' is not valid. Allowed values are {', '.join(allowed)}.",
            target,
        )
    return found


def _check_premium(sku: str, size: catalog.VmSize) -> None:
    if sku in catalog.PREMIUM_DISK_SKUS and not size.premium_io:
        raise invalid_parameter(
            f"Requested operation cannot be performed because storage account type '{sku}' is not supported for VM "
            f"size '{size.name}'.",
            "storageAccountType",
        )


def _validate_zones(zones: Any, location: str, vm_name: str) -> list[str] | None:
    if zones is None or zones == []:
        return None
    if not isinstance(zones, list) or len(zones) != 1 or not isinstance(zones[0], str | int):
        raise invalid_parameter(
            f"The value '{zones}' of parameter 'zones' is not valid: a virtual machine is deployed to exactly one "
            "zone.", "zones"
        )
    zone = str(zones[0])
    supported = catalog.region_zones(location)
    if zone not in supported:
        raise ArmError(
            400,
            "AvailabilityZoneNotSupported",
            f"The zone(s) '{zone}' for resource '{VM}/{vm_name}' is not supported. The supported zones for location "
            f"'{location}' are '{','.join(supported)}'",
            target="zones",
        )
    return [zone]


def _validate_priority(props: dict[str, Any], existing: Resource | None) -> None:
    """``priority``, ``evictionPolicy`` and ``billingProfile.maxPrice`` (Spot VMs)."""
    priority = _choice(props.get("priority") or "Regular", PRIORITIES, "priority")
    if props.get("priority") is not None:
        props["priority"] = priority
    spot = priority in ("Spot", "Low")
    if props.get("evictionPolicy") is not None:
        if not spot:
            raise invalid_parameter(
                "The 'evictionPolicy' property can only be set for Spot (or Low priority) virtual machines.",
                "evictionPolicy",
            )
        props["evictionPolicy"] = _choice(props["evictionPolicy"], EVICTION_POLICIES, "evictionPolicy")
    elif spot:
        props["evictionPolicy"] = "Deallocate"
    billing = props.get("billingProfile")
    max_price = billing.get("maxPrice") if isinstance(billing, dict) else None
    if max_price is not None:
        if not spot:
            raise invalid_parameter(
                "The 'billingProfile' property can only be set for Spot (or Low priority) virtual machines.",
                "billingProfile.maxPrice",
            )
        if isinstance(max_price, bool) or not isinstance(max_price, int | float) or not (max_price == -1 or max_price > 0):
            raise invalid_parameter(
                f"The value '{max_price}' of parameter 'billingProfile.maxPrice' is not valid: it must be -1 (pay up "
                "to the on-demand price) or a price greater than 0.",
                "billingProfile.maxPrice",
            )
    if existing is not None:
        old_price = util.get_path(existing.body, "properties", "billingProfile", "maxPrice")
        if max_price is not None and max_price != old_price and existing.private.get("power") != "deallocated":
            raise operation_not_allowed(
                f"Operation 'update billingProfile.maxPrice' is not allowed on VM '{existing.body['name']}' since the "
                "VM is not deallocated."
            )


def _match_data_disk(entry: dict[str, Any], old_disks: list[dict[str, Any]], taken: set[str]) -> dict[str, Any] | None:
    """The existing data disk a requested entry refers to: by managed disk id, else by name, else by LUN."""
    free = [d for d in old_disks if ids.key(d["managedDisk"]["id"]) not in taken]
    wanted_ref = util.get_path(entry, "managedDisk", "id")
    if wanted_ref:
        return next((d for d in free if ids.key(d["managedDisk"]["id"]) == ids.key(wanted_ref)), None)
    if entry.get("name"):
        return next((d for d in free if d["name"].lower() == str(entry["name"]).lower()), None)
    if str(entry.get("createOption") or "").lower() == "attach":
        return None
    return next((d for d in free if d.get("lun") == entry.get("lun")), None)


def _header(call: Call, name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in call.headers.items() if k.lower() == lowered), None)


def _etag_matches(condition: str, etag: str | None) -> bool:
    if etag is None:
        return False
    wanted = {c.strip().removeprefix("W/") for c in condition.split(",")}
    return "*" in wanted or etag.removeprefix("W/") in wanted


def _check_preconditions(call: Call, existing: Resource | None) -> None:
    """``If-Match`` / ``If-None-Match`` on VM writes: 412 ``PreconditionFailed`` when they do not hold."""
    if_match = _header(call, "If-Match")
    if_none_match = _header(call, "If-None-Match")
    etag = existing.body.get("etag") if existing is not None else None
    failed = None
    if if_match is not None and (existing is None or not _etag_matches(if_match, etag)):
        failed = f"If-Match: {if_match}"
    elif if_none_match is not None and existing is not None and _etag_matches(if_none_match, etag):
        failed = f"If-None-Match: {if_none_match}"
    if failed is not None:
        current = f"the current ETag is {etag}" if etag is not None else "the resource does not exist"
        raise ArmError(
            412,
            "PreconditionFailed",
            f"The condition specified using HTTP conditional header(s) is not met ({failed}; {current}).",
        )


def _next_etag(vm: Resource) -> str:
    vm.private["etag_seq"] = int(vm.private.get("etag_seq", 1)) + 1
    return f'"{vm.private["etag_seq"]}"'


def _check_vm_immutable(existing: Resource, request: dict[str, Any]) -> None:
    """Zone, availability set, Spot settings and OS disk identity cannot change after creation."""
    if "zones" in request:
        wanted = [str(z) for z in (request.get("zones") or [])]
        if wanted != [str(z) for z in existing.body.get("zones") or []]:
            raise _property_change("zones")
    props = request.get("properties") if isinstance(request.get("properties"), dict) else {}
    if "availabilitySet" in props:
        wanted_set = util.get_path(props, "availabilitySet", "id") or ""
        current_set = util.get_path(existing.body, "properties", "availabilitySet", "id") or ""
        if ids.key(wanted_set) != ids.key(current_set):
            raise _property_change("availabilitySet.id")
    for label in ("priority", "evictionPolicy"):
        wanted_value = props.get(label)
        current_value = existing.properties.get(label) or ("Regular" if label == "priority" else None)
        if wanted_value is not None and str(wanted_value).lower() != str(current_value).lower():
            raise _property_change(label)
    old_os = util.get_path(existing.body, "properties", "storageProfile", "osDisk") or {}
    wanted_os = util.get_path(props, "storageProfile", "osDisk") or {}
    if wanted_os.get("name") and str(wanted_os["name"]).lower() != str(old_os.get("name", "")).lower():
        raise _property_change("osDisk.name")
    wanted_disk = util.get_path(wanted_os, "managedDisk", "id")
    if wanted_disk and ids.key(wanted_disk) != ids.key(util.get_path(old_os, "managedDisk", "id") or ""):
        raise _property_change("osDisk.managedDisk.id")


def _check_immutable(existing: Resource, request: dict[str, Any]) -> None:
    location = request.get("location")
    if location and util.normalize_location(location) != existing.body["location"]:
        raise _property_change("location")
    for path, label in IMMUTABLE_PROPERTIES:
        wanted = util.get_path(request, *path)
        if wanted is not None and wanted != util.get_path(existing.body, *path):
            raise _property_change(label)
    wanted_image = util.get_path(request, "properties", "storageProfile", "imageReference")
    if isinstance(wanted_image, dict):
        current = util.get_path(existing.body, "properties", "storageProfile", "imageReference") or {}
        for field_name in IMAGE_REFERENCE_FIELDS:
            value = wanted_image.get(field_name)
            if value is not None and str(value).lower() != str(current.get(field_name, "")).lower():
                raise _property_change("imageReference")


def _property_change(label: str) -> ArmError:
    return ArmError(409, "PropertyChangeNotAllowed", f"Changing property '{label}' is not allowed.", target=label)


def instance_view(vm: Resource) -> dict[str, Any]:
    """The VM instance view, with ARM's ``ProvisioningState/...`` and ``PowerState/...`` statuses."""
    state = vm.properties.get("provisioningState", "Succeeded")
    status: dict[str, Any] = {
        "code": f"ProvisioningState/{state.lower()}",
        "level": "Info",
        "displayStatus": PROVISIONING_DISPLAY.get(state, state),
    }
    error = vm.private.get("provisioning_error")
    if state == "Failed" and error:
        status.update(code=f"ProvisioningState/failed/{error.get('code')}", level="Error", message=error.get("message"))
    if vm.private.get("provisioning_time") and state in ("Succeeded", "Failed"):
        status["time"] = vm.private["provisioning_time"]
    statuses = [status]
    power = vm.private.get("power")
    if power:
        statuses.append({"code": f"PowerState/{power}", "level": "Info", "displayStatus": POWER_DISPLAY[power]})
    if vm.private.get("generalized"):
        statuses.append({"code": "OSState/generalized", "level": "Info", "displayStatus": "VM generalized"})
    storage = util.get_path(vm.body, "properties", "storageProfile") or {}
    disk_names = [(storage.get("osDisk") or {}).get("name", "")]
    disk_names += [d.get("name", "") for d in storage.get("dataDisks") or [] if not d.get("toBeDetached")]
    view: dict[str, Any] = {}
    if "platform_fault_domain" in vm.private:
        view["platformUpdateDomain"] = vm.private["platform_update_domain"]
        view["platformFaultDomain"] = vm.private["platform_fault_domain"]
    view.update({
        "computerName": util.get_path(vm.body, "properties", "osProfile", "computerName") or vm.body["name"],
        "osName": vm.private.get("os_type", "Linux").lower(),
        "hyperVGeneration": vm.private.get("hyper_v_generation", "V1"),
        "disks": [
            {
                "name": name,
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Provisioning succeeded",
                        "time": util.get_path(vm.body, "properties", "timeCreated"),
                    }
                ],
            }
            for name in disk_names
        ],
        "statuses": statuses,
    })
    boot = util.get_path(vm.body, "properties", "diagnosticsProfile", "bootDiagnostics") or {}
    if boot.get("enabled") and boot.get("storageUri"):
        # with a storage account ARM shows the blobs the host writes (managed storage: only through an API call)
        name, vm_id = vm.body["name"], vm.properties.get("vmId", "")
        folder = f"{str(boot['storageUri']).rstrip('/')}/bootdiagnostics-{name[:9].lower()}-{vm_id}"
        view["bootDiagnostics"] = {
            "consoleScreenshotBlobUri": f"{folder}/{name}.{vm_id}.screenshot.bmp",
            "serialConsoleLogBlobUri": f"{folder}/{name}.{vm_id}.serialconsole.log",
        }
    if vm.type == VM:
        view["isVMInStandbyPool"] = False
    if power == "running" and state == "Succeeded":
        view["vmAgent"] = {
            "vmAgentVersion": "2.11.1.12",
            "statuses": [
                {
                    "code": "ProvisioningState/succeeded",
                    "level": "Info",
                    "displayStatus": "Ready",
                    "message": "Guest Agent is running",
                    "time": vm.private.get("provisioning_time"),
                }
            ],
            "extensionHandlers": [],
        }
    return view
