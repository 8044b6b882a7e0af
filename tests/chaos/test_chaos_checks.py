"""The checks of bench/chaos.py on hand-made inventories and request logs: each one finds what it is meant to find
(a chaos run that reports zeros must be able to report more than zero)."""

from __future__ import annotations

from datetime import datetime, timezone

from chaos_helpers import load_chaos

chaos = load_chaos()
RG = "/subscriptions/s/resourceGroups/rg/providers"
VM = f"{RG}/Microsoft.Compute/virtualMachines/web"
NIC = f"{RG}/Microsoft.Network/networkInterfaces/web-nic"


def res(rid: str, rtype: str, owner: str | None = None, **body):
    tags = {"azvm-owner": owner} if owner else {}
    return {"id": rid, "type": rtype, "body": {"tags": tags, **body}}


def at(seconds: float) -> str:
    return datetime.fromtimestamp(1_000_000 + seconds, tz=timezone.utc).isoformat()


def req(seq, method, rid, t, status=201, paths=("location", "properties.hardwareProfile.vmSize"), path=None):
    return {"seq": seq, "time": at(t), "method": method, "path": path or rid, "resource_id": rid, "status": status,
            "duration_ms": 20, "body_paths": list(paths)}


def op(rid, start, duration, kind="vm.create"):
    return {"resource_id": rid, "kind": kind, "start": 1_000_000 + start, "duration": duration,
            "end": 1_000_000 + start + duration}


def test_duplicates_are_two_resources_of_a_type_for_one_owner_or_an_untagged_one():
    owner = "chaos/VirtualMachine/default/web"
    assert chaos.find_duplicates([res(VM, "Microsoft.Compute/virtualMachines", owner),
                                  res(NIC, "Microsoft.Network/networkInterfaces", owner)]) == []
    found = chaos.find_duplicates([
        res(VM, "Microsoft.Compute/virtualMachines", owner),
        res(VM + "2", "Microsoft.Compute/virtualMachines", owner),
        res(NIC, "Microsoft.Network/networkInterfaces"),
    ])
    assert len(found) == 2 and any("untagged" in f for f in found) and any("2 microsoft.compute" in f for f in found)


def test_orphans_are_resources_of_a_custom_resource_that_is_gone_and_unattached_disks():
    resources = [res(VM, "Microsoft.Compute/virtualMachines", "chaos/VirtualMachine/default/web"),
                 res(NIC, "Microsoft.Network/networkInterfaces", "chaos/default/old"),  # the older tag format
                 res(f"{RG}/Microsoft.Network/publicIPAddresses/x", "Microsoft.Network/publicIPAddresses",
                     "other-cluster/VirtualMachine/default/x"),  # another cluster's: not ours to judge
                 res(f"{RG}/Microsoft.Compute/disks/d1", "Microsoft.Compute/disks", managedBy=VM),
                 res(f"{RG}/Microsoft.Compute/disks/d2", "Microsoft.Compute/disks")]
    found = chaos.find_orphans(resources, {("VirtualMachine", "default", "web")})
    assert len(found) == 2 and "web-nic" in found[0] and "d2" in found[1]


def test_a_second_put_is_the_same_body_shape_while_the_first_ones_operation_runs():
    log = [req(1, "PUT", VM, 0.0), req(2, "PUT", VM, 1.0, status=409),
           req(3, "PATCH", VM, 1.5, status=409, paths=("tags.a",)), req(4, "PUT", VM, 5.0)]
    found = chaos.find_second_puts(log, [op(VM, 0.005, 3.0), op(VM, 5.005, 3.0, kind="vm.update")])
    assert found["second_puts"] == [
        "PUT rg/providers/Microsoft.Compute/virtualMachines/web seq 2 (status 409) while vm.create of seq 1 ran"]
    assert len(found["other_writes"]) == 1 and "seq 3" in found["other_writes"][0]
    assert len(found["accepted"]) == 2  # seq 1 and seq 4 (after the first operation ended: not a second PUT)


def test_a_write_that_started_no_operation_opens_no_window_and_a_repeated_action_is_reported_apart():
    start = req(1, "POST", VM, 0.0, status=202, paths=(), path=VM + "/start")
    again = req(2, "POST", VM, 0.5, status=409, paths=(), path=VM + "/start")
    sync_put = req(3, "PUT", NIC, 0.0, status=200)
    found = chaos.find_second_puts([start, again, sync_put, req(4, "PUT", NIC, 0.1, status=200)],
                                   [op(VM, 0.005, 2.0, kind="vm.start")])
    assert found["second_puts"] == [] and len(found["second_actions"]) == 1
