"""Microsoft.Compute: virtual machines, VM sizes and marketplace image versions.

Virtual machine writes and actions are long-running operations (see :mod:`..lro`). The VM keeps emulator-only
state in ``private``: its power state (``running``/``stopped``/``deallocated`` or a transitional one), the
in-flight operation, the last provisioning error and ``userData`` (returned only with ``$expand=userData``).
``adminPassword`` and ``customData`` are never stored nor returned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .. import catalog, ids, util
from ..errors import ArmError, invalid_parameter, operation_not_allowed, resource_not_found
from ..lro import Operation
from ..routing import RESOURCE_GROUP, SUBSCRIPTION, Call, Reply, Router
from ..services import Services
from ..store import Resource
from . import network

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

#: Resolves an ``imageReference.id`` to ``(osType, hyperVGeneration)``; None when the image does not exist.
ImageIdResolver = Callable[[str], tuple[str, str] | None]


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
        for action in ("start", "powerOff", "deallocate", "restart"):
            vms.on_action("POST", action, self._action_handler(action))
        vms.on_action("POST", "simulateEviction", self.simulate_eviction)
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
        return Reply(200, {"value": [size.to_json() for size in catalog.VM_SIZES]})

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
        if existing is not None:
            return self._update(call, existing, request)
        location = request.get("location")
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        location = util.normalize_location(location)
        props = copy.deepcopy(request.get("properties") or {})
        size = _validate_size(util.get_path(props, "hardwareProfile", "vmSize"))
        props.setdefault("hardwareProfile", {})["vmSize"] = size.name
        storage = props.setdefault("storageProfile", {})
        os_disk = storage.setdefault("osDisk", {})
        create_option = os_disk.get("createOption") or "FromImage"
        os_type, generation = "Linux", "V1"
        if create_option.lower() != "attach":
            os_type, generation = self._validate_image(storage.get("imageReference"), os_disk, props.get("osProfile"))
        elif os_disk.get("osType"):
            os_type = os_disk["osType"]
        user_data = props.pop("userData", None)
        if create_option.lower() != "attach":
            props["osProfile"] = _validate_os_profile(props.get("osProfile"), os_type, call.name)
        nic_ids = self._validate_nics(props, vm_id, location)
        _fill_storage_profile(storage, vm_id, group.body["name"], call.name, os_type, size, create_option)
        props["vmId"] = util.new_uuid()
        props["provisioningState"] = "Creating"
        props["timeCreated"] = util.iso(util.now())
        body: dict[str, Any] = {
            "name": call.name,
            "id": vm_id,
            "type": VM,
            "location": location,
        }
        for optional in ("tags", "zones", "plan", "identity", "extendedLocation"):
            if request.get(optional):
                body[optional] = request[optional]
        body["properties"] = props
        operation = self._begin(call, "vm.create", "create", vm_id, location)
        private = {
            "power": "starting",
            "previous_power": None,
            "active_operation": operation.id,
            "active_name": "create",
            "os_type": os_type,
            "hyper_v_generation": generation,
            "user_data": user_data,
        }
        self.store.put(Resource(id=vm_id, type=VM, body=body, private=private))
        for nic_id in nic_ids:
            network.attach_nic(self.services, nic_id, vm_id)
        return Reply(201, body, self.services.lro_headers(call, operation))

    def patch_vm(self, call: Call) -> Reply:
        vm = self._require_vm(call)
        request = call.body if isinstance(call.body, dict) else {}
        return self._update(call, vm, request)

    def _update(self, call: Call, existing: Resource, request: dict[str, Any]) -> Reply:
        self._check_writable(existing, "update" if call.method == "PATCH" else "createOrUpdate")
        _check_immutable(existing, request)
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
        merged = util.deep_merge(existing.body, patch)
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
        old_nics = {ids.key(n["id"]) for n in util.get_path(existing.body, "properties", "networkProfile", "networkInterfaces") or []}
        new_nic_ids = self._validate_nics(props, existing.id, existing.body["location"], already_attached=old_nics)
        group_name = ids.parse(existing.id).resource_group  # type: ignore[union-attr]
        storage = props.setdefault("storageProfile", {})
        _fill_storage_profile(
            storage,
            existing.id,
            group_name,
            existing.body["name"],
            existing.private.get("os_type", "Linux"),
            size,
            util.get_path(storage, "osDisk", "createOption") or "FromImage",
        )
        user_data = props.pop("userData", None)
        props["provisioningState"] = "Updating"
        operation = self._begin(call, "vm.update", "update", existing.id, existing.body["location"])
        vm = Resource(id=existing.id, type=VM, body=merged, private=copy.deepcopy(existing.private))
        vm.private.update(active_operation=operation.id, active_name="update", previous_power=vm.private.get("power"))
        if user_data is not None:
            vm.private["user_data"] = user_data
        self.store.put(vm)
        new_keys = {ids.key(n) for n in new_nic_ids}
        for nic_key in old_nics - new_keys:
            network.detach_nic(self.services, nic_key, existing.id)
        for nic_id in new_nic_ids:
            if ids.key(nic_id) not in old_nics:
                network.attach_nic(self.services, nic_id, existing.id)
        return Reply(200, merged, self.services.lro_headers(call, operation))

    def _check_writable(self, vm: Resource, operation_name: str) -> None:
        if vm.properties.get("provisioningState") == "Deleting":
            raise operation_not_allowed(
                f"Operation '{operation_name}' is not allowed on VM '{vm.body['name']}' since the VM is marked for "
                "deletion. You can only retry the Delete operation (or wait for an ongoing one to complete)."
            )
        active = self.services.engine.active(vm.private.get("active_operation"))
        if active is not None:
            raise operation_not_allowed(
                f"Operation '{operation_name}' is not allowed since the Virtual Machine '{vm.body['name']}' is in the "
                f"middle of operation '{vm.private.get('active_name', active.name)}'. Wait for the ongoing operation "
                "to complete and retry."
            )

    def _begin(self, call: Call, kind: str, name: str, vm_id: str, location: str) -> Operation:
        return self.services.engine.begin(
            kind,
            name=name,
            resource_id=vm_id,
            subscription=call.subscription,
            namespace=NS,
            location=location,
            injected_error=call.lro_failure,
        )

    # validation -----------------------------------------------------------------------------------------------

    def _validate_image(
        self, reference: Any, os_disk: dict[str, Any], os_profile: Any
    ) -> tuple[str, str]:
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
                    return resolved
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
            return fallback_os, "V2"
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
        return image.os_type, image.hyper_v_generation

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
        if (vm.properties.get("priority") or "Regular") != "Spot":
            raise operation_not_allowed(
                f"Simulate eviction is only supported for Spot virtual machines; '{vm.body['name']}' is not one."
            )
        self.evict(vm.id)
        return Reply(204)

    def evict(self, vm_id: str) -> str:
        """Spot eviction: the VM is deallocated (or deleted with ``evictionPolicy: Delete``). Returns the outcome."""
        vm = self.store.edit(vm_id)
        if vm is None:
            raise ArmError(404, "ResourceNotFound", f"The virtual machine '{vm_id}' was not found.")
        if (vm.properties.get("evictionPolicy") or "Deallocate") == "Delete":
            self.services.remove(vm.id)
            return "deleted"
        active = vm.private.get("active_operation")
        if active:
            self.services.engine.cancel(active, "OperationPreempted", "The operation was preempted by a Spot eviction.")
        vm.private.update(power="deallocated", active_operation=None, provisioning_time=util.iso(util.now()))
        vm.properties["provisioningState"] = "Succeeded"
        self.store.put(vm)
        return "deallocated"

    # delete ---------------------------------------------------------------------------------------------------

    def delete_vm(self, call: Call) -> Reply:
        assert call.resource_group is not None
        vm = self.store.get(call.resource_id)
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

    # completions ----------------------------------------------------------------------------------------------

    def _finish(self, operation: Operation, error: dict[str, Any] | None, power: str | None) -> None:
        vm = self.store.edit(operation.resource_id)
        if vm is None or vm.private.get("active_operation") != operation.id:
            return
        vm.private.update(power=power, active_operation=None, provisioning_time=util.iso(util.now()))
        vm.private["provisioning_error"] = error
        vm.properties["provisioningState"] = "Failed" if error else "Succeeded"
        self.store.put(vm)

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
    profile.pop("customData", None)
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
    os_disk = util.get_path(vm.body, "properties", "storageProfile", "osDisk") or {}
    view: dict[str, Any] = {
        "computerName": util.get_path(vm.body, "properties", "osProfile", "computerName") or vm.body["name"],
        "osName": vm.private.get("os_type", "Linux").lower(),
        "hyperVGeneration": vm.private.get("hyper_v_generation", "V1"),
        "disks": [
            {
                "name": os_disk.get("name", ""),
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Provisioning succeeded",
                        "time": util.get_path(vm.body, "properties", "timeCreated"),
                    }
                ],
            }
        ],
        "statuses": statuses,
    }
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
