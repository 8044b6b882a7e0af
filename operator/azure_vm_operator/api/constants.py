"""Names shared by the CRDs, the controllers and the tags written to Azure."""

from __future__ import annotations

GROUP = "compute.azvm.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

VM_KIND = "VirtualMachine"
VM_PLURAL = "virtualmachines"
SCALESET_KIND = "ScaleSet"
SCALESET_PLURAL = "scalesets"
IMAGE_KIND = "Image"
IMAGE_PLURAL = "images"
AVSET_KIND = "AvailabilitySet"
AVSET_PLURAL = "availabilitysets"

#: The finalizer that keeps a custom resource until its Azure resources are gone.
FINALIZER = f"{GROUP}/finalizer"

#: Tag on every Azure resource the operator creates: which cluster/namespace/name owns it.
OWNER_TAG = "azvm-owner"
#: Tag with the uid of the custom resource that created an Azure resource (adoptionPolicy: Never).
UID_TAG = "azvm-uid"
#: Tag on shared Azure resources (resource groups, virtual networks) the operator created.
CREATED_BY_TAG = "azvm-created-by"
CREATED_BY_VALUE = "azure-vm-operator"

#: Annotations that ask for an action once per new value (any string, e.g. a timestamp).
RESTART_REQUESTED_ANNOTATION = f"{GROUP}/restart-requested-at"
REDEPLOY_REQUESTED_ANNOTATION = f"{GROUP}/redeploy-requested-at"
#: Annotation that forces an immediate re-observation of the Azure state (any new value).
RECONCILE_REQUESTED_ANNOTATION = f"{GROUP}/reconcile-requested-at"
#: Annotation: how often this resource is looked at again (a duration: 30s, 5m, 1h), instead of the resync interval.
OBSERVE_INTERVAL_ANNOTATION = f"{GROUP}/observe-interval"

