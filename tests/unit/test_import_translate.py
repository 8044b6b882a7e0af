"""`kubectl azvm import` (azure/importing.py): ARM JSON of an existing VM or scale set -> a manifest with
reconcilePolicy Observe that the operator's own diff finds equal to Azure, and the preview of Manage."""

from __future__ import annotations

import pytest

from azure_vm_operator.azure.importing import NotImportable, import_resource

SUB, RG = "00000000-0000-0000-0000-000000000001", "legacy-rg"
IMAGE = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
         "version": "latest"}
OS_PROFILE = {"adminUsername": "ops", "linuxConfiguration": {"ssh": {"publicKeys": [{"keyData": "ssh-ed25519 AAAA"}]}}}


def scale_set(**props):
    return {
        "id": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/Web.1",
        "type": "Microsoft.Compute/virtualMachineScaleSets", "name": "Web.1", "location": "westeurope",
        "sku": {"name": "Standard_D2s_v5", "capacity": 3}, "zones": ["2", "1"],
        "tags": {"team": "web", "azvm-created-by": "azure-vm-operator"},
        "properties": {"upgradePolicy": {"mode": "Rolling"}, "scaleInPolicy": {"rules": ["OldestVM"]},
                       "virtualMachineProfile": {
                           "storageProfile": {"imageReference": IMAGE, "osDisk": {
                               "osType": "Linux", "diskSizeGB": 64, "managedDisk": {"storageAccountType": "Premium_LRS"}}},
                           "osProfile": OS_PROFILE, "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
                           "networkProfile": {"networkInterfaceConfigurations": [{"name": "n", "properties": {
                               "ipConfigurations": [{"name": "c", "properties": {
                                   "subnet": {"id": "/subscriptions/x/resourceGroups/n/providers/Microsoft.Network/"
                                                    "virtualNetworks/v/subnets/s"},
                                   "loadBalancerBackendAddressPools": [{"id": "/lb/pool"}]}}]}}]}},
                       **props},
    }


def test_a_scale_set_becomes_an_observed_scaleset() -> None:
    imported = import_resource(scale_set(), namespace="team-a", cluster_id="prod")
    manifest = imported.manifest
    assert manifest["kind"] == "ScaleSet" and manifest["metadata"] == {"name": "web.1", "namespace": "team-a"}
    spec = manifest["spec"]
    assert spec["azureName"] == "Web.1" and spec["replicas"] == 3 and spec["zones"] == ["1", "2"]
    assert spec["size"] == "Standard_D2s_v5" and spec["image"] == {"marketplace": IMAGE}
    assert spec["tags"] == {"team": "web"}  # the operator's own tags are never in a spec
    assert spec["upgradePolicy"] == {"mode": "Manual"} and spec["scaleInPolicy"] == "OldestVM"
    assert (spec["reconcilePolicy"], spec["deletionPolicy"], spec["adoptionPolicy"]) == ("Observe", "Orphan", "Always")
    text = "\n".join(imported.not_expressible)
    assert "upgradePolicy.mode Rolling" in text and "load balancer" in text and "diagnosticsProfile" in text
    manage = "\n".join(imported.on_manage)
    assert "azvm-owner=prod/ScaleSet/team-a/web.1" in manage
    assert "correct spec.upgradePolicy" in manage  # Rolling -> Manual, as the operator's diff says


def test_a_vm_tagged_for_another_owner_would_stall() -> None:
    vm = {"id": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/db",
          "type": "Microsoft.Compute/virtualMachines", "name": "db", "location": "westeurope",
          "tags": {"azvm-owner": "other/VirtualMachine/default/db"},
          "properties": {"hardwareProfile": {"vmSize": "Standard_B2s"},
                         "storageProfile": {"imageReference": IMAGE, "osDisk": {"osType": "Linux", "deleteOption": "Detach"}},
                         "osProfile": OS_PROFILE, "licenseType": "RHEL_BYOS",
                         "instanceView": {"statuses": [{"code": "PowerState/deallocated"}]}}}
    imported = import_resource(vm, cluster_id="prod")
    spec = imported.manifest["spec"]
    assert spec["powerState"] == "Deallocated" and spec["osDisk"] == {"deleteWithVM": False}
    assert "adoptionPolicy" not in spec and "tags" not in spec
    assert imported.not_expressible == ["properties.licenseType"]
    assert "OwnershipConflict" in imported.on_manage[0]
    assert imported.comments().startswith("# Imported from Azure")


def test_other_types_are_refused() -> None:
    with pytest.raises(NotImportable):
        import_resource({"type": "Microsoft.Network/networkInterfaces", "id": "/x"})
