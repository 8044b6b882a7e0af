"""Microsoft.Compute/images (managed images) and a minimal Azure Compute Gallery.

Managed images are created (LRO) from a source VM (``sourceVirtualMachine.id``, which must be deallocated or
generalized), from a managed disk (``storageProfile.osDisk.managedDisk.id``, which must exist) or from a VHD
(``storageProfile.osDisk.blobUri``, accepted as is: there are no storage accounts). Galleries hold image definitions
(``galleries/{g}/images/{i}``) and versions (``.../versions/{x.y.z}``) created from a managed image
(``storageProfile.source.id``). A VM's ``imageReference.id`` may name a managed image, a gallery image version, or a
gallery image (= its latest version not excluded from latest): :meth:`ImagesProvider.resolve` is registered in
``ComputeProvider.image_id_resolvers``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .. import ids, lro, util
from ..errors import ArmError, invalid_parameter, resource_not_found
from ..routing import RESOURCE_GROUP, SUBSCRIPTION, Call, Reply, Router
from ..services import Services
from ..store import Resource
from .compute import VM, ComputeProvider, ResolvedImage, _choice
from .disks import DISK

NS = "Microsoft.Compute"
IMAGE = "Microsoft.Compute/images"
GALLERY = "Microsoft.Compute/galleries"
GALLERY_IMAGE = "Microsoft.Compute/galleries/images"
GALLERY_VERSION = "Microsoft.Compute/galleries/images/versions"

lro.LATENCY_SECONDS.setdefault("image.put", 20.0)
lro.LATENCY_SECONDS.setdefault("image.delete", 5.0)
lro.LATENCY_SECONDS.setdefault("gallery.put", 2.0)
lro.LATENCY_SECONDS.setdefault("gallery.version", 30.0)
lro.LATENCY_SECONDS.setdefault("gallery.delete", 2.0)

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split("."))


def _nested_error() -> ArmError:
    return ArmError(409, "CannotDeleteResource", "Can not delete resource before nested resources are deleted.")


def _parent_missing(child_type: str, parent: str) -> ArmError:
    return ArmError(
        404,
        "ParentResourceNotFound",
        f"Failed to perform 'write' on resource(s) of type '{child_type}', because the parent resource '{parent}' "
        "could not be found.",
    )


class ImagesProvider:
    def __init__(self, services: Services, compute: ComputeProvider) -> None:
        self.services = services
        self.store = services.store
        compute.image_id_resolvers.insert(0, self.resolve)

    def register(self, router: Router) -> None:
        images = router.register(RESOURCE_GROUP, NS, ("images",))
        images.on_item("PUT", self.put_image).on_item("PATCH", self.patch_image).on_item("GET", self.get)
        images.on_item("DELETE", self.delete).on_collection("GET", self.list_in_group)
        router.register(SUBSCRIPTION, NS, ("images",)).on_collection("GET", self.list_in_subscription)
        galleries = router.register(RESOURCE_GROUP, NS, ("galleries",))
        galleries.on_item("PUT", self.put_gallery).on_item("GET", self.get).on_item("DELETE", self.delete)
        galleries.on_collection("GET", self.list_in_group)
        router.register(SUBSCRIPTION, NS, ("galleries",)).on_collection("GET", self.list_in_subscription)
        definitions = router.register(RESOURCE_GROUP, NS, ("galleries", "images"))
        definitions.on_item("PUT", self.put_gallery_image).on_item("GET", self.get).on_item("DELETE", self.delete)
        definitions.on_collection("GET", self.list_children)
        versions = router.register(RESOURCE_GROUP, NS, ("galleries", "images", "versions"))
        versions.on_item("PUT", self.put_version).on_item("GET", self.get).on_item("DELETE", self.delete)
        versions.on_collection("GET", self.list_children)
        engine = self.services.engine
        for kind in ("image.put", "gallery.put", "gallery.version"):
            engine.register(kind, self.services.complete_write)
        for kind in ("image.delete", "gallery.delete"):
            engine.register(kind, self.services.complete_delete)

    # image references of VMs ----------------------------------------------------------------------------------

    def resolve(self, image_id: str) -> ResolvedImage | None:
        image_id = "/" + image_id.lstrip("/")
        parsed = ids.parse(image_id)
        if parsed is None or parsed.namespace.lower() != NS.lower():
            return None
        type_name = parsed.type_name.lower()
        if type_name == IMAGE.lower():
            image = self.store.get(image_id)
            if image is None:
                return None
            self._require_ready(image, image_id)
            osd = image.properties["storageProfile"]["osDisk"]
            return ResolvedImage(
                osd["osType"],
                image.private.get("hyper_v_generation", "V1"),
                image.private.get("os_disk_size_gb"),
                {int(k): v for k, v in image.private.get("data_disks", {}).items()},
                image.id,
            )
        if type_name == GALLERY_IMAGE.lower():
            definition = self.store.get(image_id)
            if definition is None:
                return None
            candidates = [
                v for v in self.store.list(GALLERY_VERSION, definition.id)
                if v.properties.get("provisioningState") == "Succeeded"
                and not util.get_path(v.body, "properties", "publishingProfile", "excludeFromLatest")
            ]
            if not candidates:
                raise ArmError(404, "NotFound", f"The gallery image '{definition.id}' has no version that can be "
                               "used as latest.", target="imageReference")
            version = max(candidates, key=lambda v: _version_key(v.body["name"]))
            return self._resolve_version(version, definition)
        if type_name == GALLERY_VERSION.lower():
            version = self.store.get(image_id)
            if version is None:
                return None
            self._require_ready(version, image_id)
            definition = self.store.get(parsed.parent_id)
            assert definition is not None
            return self._resolve_version(version, definition)
        return None

    def _resolve_version(self, version: Resource, definition: Resource) -> ResolvedImage:
        storage = version.properties.get("storageProfile") or {}
        data = {int(d["lun"]): int(d["sizeInGB"]) for d in storage.get("dataDiskImages") or []}
        return ResolvedImage(
            definition.properties["osType"],
            definition.properties.get("hyperVGeneration", "V1"),
            util.get_path(storage, "osDiskImage", "sizeInGB"),
            data,
            version.id,
        )

    def _require_ready(self, image: Resource, image_id: str) -> None:
        if image.properties.get("provisioningState") != "Succeeded":
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"The resource cannot be created from Image {image_id} until Image has been successfully created.",
                target="imageReference",
            )

    # generic reads and deletes --------------------------------------------------------------------------------

    def get(self, call: Call) -> Reply:
        return Reply(200, self.services.require(call, name="/".join(call.names)).body)

    def list_in_group(self, call: Call) -> Reply:
        return self.services.list_in_group(call)

    def list_in_subscription(self, call: Call) -> Reply:
        return self.services.list_in_subscription(call)

    def list_children(self, call: Call) -> Reply:
        assert call.resource_group is not None
        self.services.require_resource_group(call.subscription, call.resource_group, for_write=False)
        parent_id = ids.resource_id(call.subscription, call.resource_group, NS, call.types[:-1], call.names)
        if self.store.get(parent_id) is None:
            raise resource_not_found("/".join((NS, *call.types[:-1])), "/".join(call.names), call.resource_group)
        children = [r for r in self.store.list(call.type_name, parent_id) if len(ids.parse(r.id).names) == len(call.types)]  # type: ignore[union-attr]
        return self.services.page(call, [r.body for r in children])

    def delete(self, call: Call) -> Reply:
        resource = self.store.get(call.resource_id)
        if resource is None:
            return Reply(204)
        if call.type_name.lower() in (GALLERY.lower(), GALLERY_IMAGE.lower()):
            child_type = GALLERY_IMAGE if call.type_name.lower() == GALLERY.lower() else GALLERY_VERSION
            if self.store.list(child_type, resource.id):
                raise _nested_error()
        kind = "image.delete" if call.type_name.lower() == IMAGE.lower() else "gallery.delete"
        return self.services.begin_delete(call, kind, resource.id, resource.body["location"], NS)

    def _store_write(
        self, call: Call, kind: str, resource_id: str, body: dict[str, Any], private: dict[str, Any], created: bool
    ) -> Reply:
        body["properties"]["provisioningState"] = "Creating" if created else "Updating"
        operation = self.services.begin(call, kind, resource_id, body["location"], NS)
        private["active_operation"] = operation.id
        self.store.put(Resource(id=resource_id, type=call.type_name, body=body, private=private))
        return Reply(201 if created else 200, body, self.services.lro_headers(call, operation))

    def _target(self, call: Call, default_location: str | None = None) -> tuple[dict[str, Any], str, Resource | None, str]:
        """``(request, id, existing, location)`` of a PUT (no write may be in flight; the location defaults to the
        parent's for gallery children and cannot change)."""
        request = call.body if isinstance(call.body, dict) else {}
        resource_id = self.services.canonical_id(call)
        existing = self.store.get(resource_id)
        self._writable(existing)
        location = self.services.write_location({"location": request.get("location") or default_location}, existing)
        return request, resource_id, existing, location

    @staticmethod
    def _base_body(call: Call, resource_id: str, location: str, request: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"name": call.name, "id": resource_id, "type": call.type_name, "location": location}
        if request.get("tags"):
            body["tags"] = request["tags"]
        return body

    def _writable(self, existing: Resource | None) -> None:
        if existing is not None and self.services.engine.active(existing.private.get("active_operation")):
            raise ArmError(409, "OperationNotAllowed", f"Operation is not allowed on '{existing.body['name']}' "
                           "since another operation is in progress.")

    # managed images -------------------------------------------------------------------------------------------

    def put_image(self, call: Call) -> Reply:
        assert call.resource_group is not None
        self.services.require_resource_group(call.subscription, call.resource_group)
        request, resource_id, existing, location = self._target(call)
        props = copy.deepcopy(request.get("properties") or {})
        if existing is not None:
            for path in (("sourceVirtualMachine", "id"), ("storageProfile", "osDisk", "managedDisk", "id"),
                         ("storageProfile", "osDisk", "blobUri")):
                wanted = util.get_path(props, *path)
                if wanted is not None and str(wanted).lower() != str(
                        util.get_path(existing.properties, *path) or "").lower():
                    raise ArmError(409, "PropertyChangeNotAllowed",
                                   f"Changing property '{'.'.join(path)}' is not allowed.", target=".".join(path))
            body = copy.deepcopy(existing.body)
            body.pop("tags", None)
            if request.get("tags"):
                body["tags"] = request["tags"]
            return self._store_write(call, "image.put", resource_id, body, copy.deepcopy(existing.private), False)
        private: dict[str, Any] = {}
        source_vm = util.get_path(props, "sourceVirtualMachine", "id")
        if source_vm:
            props = self._image_from_vm(source_vm, location, props, private)
        else:
            props = self._image_from_disks(location, props, private)
        body = self._base_body(call, resource_id, location, request)
        body["properties"] = props
        return self._store_write(call, "image.put", resource_id, body, private, True)

    def patch_image(self, call: Call) -> Reply:
        assert call.resource_group is not None
        existing = self.store.get(call.resource_id)
        if existing is None:
            raise resource_not_found(IMAGE, call.name, call.resource_group)
        self._writable(existing)
        request = call.body if isinstance(call.body, dict) else {}
        body = copy.deepcopy(existing.body)
        if "tags" in request:
            body.pop("tags", None)
            if request["tags"]:
                body["tags"] = request["tags"]
        return self._store_write(call, "image.put", existing.id, body, copy.deepcopy(existing.private), False)

    def _image_from_vm(
        self, source_vm: str, location: str, props: dict[str, Any], private: dict[str, Any]
    ) -> dict[str, Any]:
        parsed = ids.parse(source_vm)
        vm = self.store.get(source_vm) if parsed is not None and parsed.type_name.lower() == VM.lower() else None
        if vm is None or vm.body["location"] != location:
            raise ArmError(404, "NotFound", f"Source Virtual Machine '{source_vm}' specified in the request does not "
                           "exist in this Azure location.", target="sourceVirtualMachine")
        if vm.private.get("power") != "deallocated" and not vm.private.get("generalized"):
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"The operation 'Create Image' requires the Virtual Machine '{vm.body['name']}' to be deallocated "
                "(or generalized).",
                target="sourceVirtualMachine",
            )
        storage = util.get_path(vm.body, "properties", "storageProfile") or {}
        vm_os = storage.get("osDisk") or {}
        os_disk_ref = util.get_path(vm_os, "managedDisk", "id")
        os_disk = self.store.get(os_disk_ref) if os_disk_ref else None
        private["hyper_v_generation"] = props.get("hyperVGeneration") or vm.private.get("hyper_v_generation", "V1")
        private["os_disk_size_gb"] = int(os_disk.properties["diskSizeGB"]) if os_disk else vm_os.get("diskSizeGB")
        data_images = []
        private["data_disks"] = {}
        for data in storage.get("dataDisks") or []:
            if data.get("toBeDetached"):
                continue
            data_ref = util.get_path(data, "managedDisk", "id")
            data_disk = self.store.get(data_ref) if data_ref else None
            size = int(data_disk.properties["diskSizeGB"] if data_disk else data.get("diskSizeGB") or 0)
            private["data_disks"][str(data["lun"])] = size
            # as ARM reports a captured image's disks: the size and the storage type of the source disk
            data_images.append({"lun": data["lun"], "managedDisk": {"id": data_ref},
                                "caching": data.get("caching", "None"), "diskSizeGB": size,
                                "storageAccountType": self._storage_type(data_disk, data)})
        return {
            "sourceVirtualMachine": {"id": vm.id},
            "storageProfile": {
                "osDisk": {
                    "osType": vm.private.get("os_type", "Linux"),
                    "osState": "Generalized",
                    "managedDisk": {"id": os_disk_ref},
                    "caching": vm_os.get("caching", "ReadWrite"),
                    "diskSizeGB": private["os_disk_size_gb"],
                    "storageAccountType": self._storage_type(os_disk, vm_os),
                },
                "dataDisks": data_images,
                "zoneResilient": bool(util.get_path(props, "storageProfile", "zoneResilient")),
            },
            # ARM reports the generation (the source VM's unless the request names one)
            "hyperVGeneration": private["hyper_v_generation"],
        }

    @staticmethod
    def _storage_type(disk: Resource | None, vm_disk: dict[str, Any]) -> str:
        """The storage account type of a VM's disk: the managed disk's SKU, else what the VM model says."""
        if disk is not None and util.get_path(disk.body, "sku", "name"):
            return str(disk.body["sku"]["name"])
        return str(util.get_path(vm_disk, "managedDisk", "storageAccountType") or "Standard_LRS")

    def _image_from_disks(self, location: str, props: dict[str, Any], private: dict[str, Any]) -> dict[str, Any]:
        storage = props.get("storageProfile")
        os_disk = storage.get("osDisk") if isinstance(storage, dict) else None
        if not isinstance(os_disk, dict):
            raise invalid_parameter("Required parameter 'storageProfile.osDisk' is missing (null): an image needs a "
                                    "source virtual machine or an OS disk.", "storageProfile.osDisk")
        os_disk["osType"] = _choice(os_disk.get("osType"), ("Linux", "Windows"), "storageProfile.osDisk.osType")
        os_disk["osState"] = _choice(os_disk.get("osState"), ("Generalized", "Specialized"),
                                     "storageProfile.osDisk.osState")
        os_disk["caching"] = _choice(os_disk.get("caching") or "ReadWrite", ("None", "ReadOnly", "ReadWrite"),
                                     "storageProfile.osDisk.caching")
        size = self._source_size(location, os_disk, "storageProfile.osDisk")
        private["os_disk_size_gb"] = size or 30
        private["hyper_v_generation"] = props.get("hyperVGeneration") or "V1"
        private["data_disks"] = {}
        data_disks = storage.get("dataDisks") or []  # type: ignore[union-attr]
        for index, data in enumerate(data_disks):
            if not isinstance(data, dict) or not isinstance(data.get("lun"), int):
                raise invalid_parameter(f"The value of parameter 'storageProfile.dataDisks[{index}].lun' is not "
                                        "valid.", f"storageProfile.dataDisks[{index}].lun")
            data_size = self._source_size(location, data, f"storageProfile.dataDisks[{index}]")
            private["data_disks"][str(data["lun"])] = data_size or 32
        storage["dataDisks"] = data_disks  # type: ignore[index]
        storage.setdefault("zoneResilient", False)  # type: ignore[union-attr]
        return props

    def _source_size(self, location: str, disk_spec: dict[str, Any], target: str) -> int | None:
        """Check the source of an image disk (managed disk, snapshot or blob); returns its size if known."""
        disk_ref = util.get_path(disk_spec, "managedDisk", "id")
        if disk_ref:
            disk_ref = "/" + str(disk_ref).lstrip("/")  # the examples write ids without the leading slash
            parsed = ids.parse(disk_ref)
            disk = self.store.get(disk_ref) if parsed is not None and parsed.type_name.lower() == DISK.lower() else None
            if disk is None or disk.body["location"] != location:
                raise ArmError(404, "NotFound", f"Disk '{disk_ref}' specified in the request does not exist in this "
                               "Azure location.", target=f"{target}.managedDisk.id")
            disk_spec["managedDisk"] = {"id": disk.id}
            return int(disk_spec.get("diskSizeGB") or disk.properties["diskSizeGB"])
        if not disk_spec.get("blobUri") and not util.get_path(disk_spec, "snapshot", "id"):
            raise invalid_parameter(f"Required parameter '{target}' needs one of managedDisk.id, snapshot.id or "
                                    "blobUri.", target)
        size = disk_spec.get("diskSizeGB")
        return int(size) if isinstance(size, int) and not isinstance(size, bool) else None

    # galleries ------------------------------------------------------------------------------------------------

    def put_gallery(self, call: Call) -> Reply:
        assert call.resource_group is not None
        self.services.require_resource_group(call.subscription, call.resource_group)
        request, resource_id, existing, location = self._target(call)
        props = copy.deepcopy(request.get("properties") or {})
        props["identifier"] = {"uniqueName": f"{call.subscription}-{call.name.upper()}"}
        body = self._base_body(call, resource_id, location, request)
        body["properties"] = props
        return self._store_write(call, "gallery.put", resource_id, body, {}, existing is None)

    def _parent(self, call: Call) -> Resource:
        assert call.resource_group is not None
        self.services.require_resource_group(call.subscription, call.resource_group)
        group = self.services.resource_group(call.subscription, call.resource_group)
        assert group is not None
        parent_id = ids.resource_id(call.subscription, group.body["name"], NS, call.types[:-1], call.names[:-1])
        parent = self.store.get(parent_id)
        if parent is None or parent.properties.get("provisioningState") == "Deleting":
            raise _parent_missing("/".join(call.types), "/".join(call.names[:-1]))
        return parent

    def put_gallery_image(self, call: Call) -> Reply:
        gallery = self._parent(call)
        request, resource_id, existing, location = self._target(call, gallery.body["location"])
        props = copy.deepcopy(request.get("properties") or {})
        props["osType"] = _choice(props.get("osType"), ("Linux", "Windows"), "osType")
        props["osState"] = _choice(props.get("osState"), ("Generalized", "Specialized"), "osState")
        props["hyperVGeneration"] = _choice(props.get("hyperVGeneration") or "V1", ("V1", "V2"), "hyperVGeneration")
        identifier = props.get("identifier") or {}
        for key in ("publisher", "offer", "sku"):
            if not isinstance(identifier, dict) or not identifier.get(key):
                raise invalid_parameter(f"Required parameter 'identifier.{key}' is missing (null).",
                                        f"identifier.{key}")
        if existing is not None:
            for key in ("osType", "osState", "hyperVGeneration"):
                if existing.properties.get(key) != props[key]:
                    raise ArmError(409, "PropertyChangeNotAllowed", f"Changing property '{key}' is not allowed.",
                                   target=key)
        body = self._base_body(call, resource_id, location, request)
        body["properties"] = props
        return self._store_write(call, "gallery.put", resource_id, body, {}, existing is None)

    def put_version(self, call: Call) -> Reply:
        definition = self._parent(call)
        if not _VERSION.match(call.name):
            raise invalid_parameter(
                f"The gallery image version name '{call.name}' is invalid. It must follow the format "
                "<MajorVersion>.<MinorVersion>.<Patch> with 32-bit integers.", "galleryImageVersionName"
            )
        request, resource_id, existing, location = self._target(call, definition.body["location"])
        props = copy.deepcopy(request.get("properties") or {})
        source_id = util.get_path(props, "storageProfile", "source", "id")
        if existing is not None:
            if source_id and ids.key(source_id) != ids.key(
                    util.get_path(existing.properties, "storageProfile", "source", "id") or ""):
                raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'storageProfile.source.id' is not "
                               "allowed.", target="storageProfile.source.id")
            props["storageProfile"] = existing.properties["storageProfile"]
        else:
            props["storageProfile"] = self._version_storage(source_id, location, definition)
        publishing = props.get("publishingProfile") or {}
        publishing.setdefault("targetRegions", [{"name": location, "regionalReplicaCount": 1,
                                                 "storageAccountType": "Standard_LRS"}])
        publishing.setdefault("replicaCount", 1)
        publishing.setdefault("excludeFromLatest", False)
        publishing.setdefault("storageAccountType", "Standard_LRS")
        publishing["publishedDate"] = (
            util.get_path(existing.properties, "publishingProfile", "publishedDate") if existing else None
        ) or util.iso(util.now())
        props["publishingProfile"] = publishing
        props.setdefault("safetyProfile", {"allowDeletionOfReplicatedLocations": True})
        body = self._base_body(call, resource_id, location, request)
        body["properties"] = props
        return self._store_write(call, "gallery.version", resource_id, body, {}, existing is None)

    def _version_storage(self, source_id: Any, location: str, definition: Resource) -> dict[str, Any]:
        if not source_id:
            raise invalid_parameter("Required parameter 'storageProfile.source.id' is missing (null): a version is "
                                    "created from a managed image.", "storageProfile.source.id")
        parsed = ids.parse(str(source_id))
        image = self.store.get(source_id) if parsed is not None and parsed.type_name.lower() == IMAGE.lower() else None
        if image is None:
            raise ArmError(404, "NotFound", f"The Image '{source_id}' cannot be found.",
                           target="storageProfile.source.id")
        self._require_ready(image, image.id)
        os_type = image.properties["storageProfile"]["osDisk"]["osType"]
        if os_type != definition.properties["osType"]:
            raise invalid_parameter(
                f"The OS type '{os_type}' of the source image does not match the OS type "
                f"'{definition.properties['osType']}' of the gallery image definition.", "storageProfile.source.id"
            )
        return {
            "source": {"id": image.id},
            "osDiskImage": {"sizeInGB": image.private.get("os_disk_size_gb", 30), "hostCaching": "ReadWrite"},
            "dataDiskImages": [
                {"lun": int(lun), "sizeInGB": size, "hostCaching": "None"}
                for lun, size in sorted(image.private.get("data_disks", {}).items(), key=lambda kv: int(kv[0]))
            ],
        }
