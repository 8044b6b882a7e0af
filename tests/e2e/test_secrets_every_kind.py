"""Secrets never leak, for every kind together (issue #12): one scenario with DEBUG logging on for every logger.

A VirtualMachine with an admin password Secret and customData (and a credentials Secret of its own namespace), a
ScaleSet with customData and a password behind a load balancer, an Image captured from a VM, an AvailabilitySet using
the credentials Secret. They are created, made Ready and deleted. Then the logs, the Events, every custom resource's
whole object (status, annotations), the operator's metrics text, the emulator's request log and what Azure answers
for each resource are scanned for each secret value, its base64 form, the client secrets and every bearer token the
emulator issued, and the operator's Kubernetes API token. Builds on the VM and ScaleSet scans in
test_virtualmachine_lifecycle.py and test_scaleset.py."""

from __future__ import annotations

import base64
import json
import logging

import prometheus_client
import pytest
from e2e_helpers import Cluster, vm_manifest, wait_for
from test_scaleset import WEB_LB, scale_set_manifest

import azure_arm_emulator.auth
from azure_vm_operator.api.constants import AVSET_PLURAL, GROUP, IMAGE_PLURAL, SCALESET_PLURAL, VERSION, VM_PLURAL

PASSWORD_VM = "Vm7#kQ2!zLp9wX"
PASSWORD_SS = "Ss4$hN8!rTq3yB"
CUSTOM_DATA_VM = "#cloud-config\nruncmd: [echo vm-cust0m-d4ta-77]"
CUSTOM_DATA_SS = "#cloud-config\nruncmd: [echo ss-cust0m-d4ta-88]"
CLIENT_SECRET = "sp-cl1ent-s3cret-5d2e"
HARNESS_SECRET = "harness-secret"  # the operator's own service principal (azvm_sandbox.harness)
SUB_B = "00000000-0000-0000-0000-0000000000bb"
RG = "e2e-rg"


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def manifest(kind: str, name: str, **spec) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name, "namespace": "default"},
            "spec": {"location": "westeurope", "resourceGroup": RG, **spec}}


@pytest.fixture
def issued_tokens(monkeypatch) -> list[str]:
    """Every access token the emulator's identity endpoint hands out (the emulator runs in this process)."""
    tokens: list[str] = []
    original = azure_arm_emulator.auth.issue_token

    def recording(*args, **kwargs):
        answer = original(*args, **kwargs)
        tokens.append(answer["access_token"])
        return answer

    monkeypatch.setattr(azure_arm_emulator.auth, "issue_token", recording)
    return tokens


def test_no_secret_of_any_kind_leaks(env, issued_tokens, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger: azure.*, kopf, aiohttp, kubernetes, the operator
    for name in ("azure", "kopf", "aiohttp", "azure_vm_operator", "kubernetes_asyncio", "urllib3", "msal"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    env.start_operator()
    vms, sets = Cluster(env.kube_api_client(), VM_PLURAL), Cluster(env.kube_api_client(), SCALESET_PLURAL)
    images, avsets = Cluster(env.kube_api_client(), IMAGE_PLURAL), Cluster(env.kube_api_client(), AVSET_PLURAL)
    core = vms.core
    for name, data in (("vm-admin", {"password": PASSWORD_VM}), ("vm-init", {"customData": CUSTOM_DATA_VM}),
                       ("ss-admin", {"password": PASSWORD_SS}), ("ss-init", {"customData": CUSTOM_DATA_SS}),
                       ("sp", {"tenantId": "tenant-b", "clientId": "client-b", "clientSecret": CLIENT_SECRET,
                               "subscriptionId": SUB_B})):
        core.create_namespaced_secret("default", {"metadata": {"name": name},
                                                  "data": {k: b64(v) for k, v in data.items()}})

    # The credentials Secret's first token requests fail: the error path (exception text, Events) is scanned too.
    refused = env.inject_fault(method="POST", path="^/tenant-b/oauth2", status=401, body={
        "error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
    avsets.apply(manifest("AvailabilitySet", "leak-avs", credentialsSecretRef={"name": "sp"}))
    wait_for(lambda: avsets.condition("leak-avs", "Ready").get("reason") == "AuthenticationFailed", 30,
             what="AuthenticationFailed")
    env.admin(lambda a: a.remove_fault(refused))
    vms.apply(vm_manifest("leak-vm", sshPublicKeys=None, adminPasswordSecretRef={"name": "vm-admin"},
                          customDataSecretRef={"name": "vm-init"}, credentialsSecretRef={"name": "sp"},
                          availabilitySetRef={"name": "leak-avs"}, network={"publicIP": True, "openPorts": [22]}))
    vms.apply(vm_manifest("leak-src", powerState="Deallocated"))
    images.apply(manifest("Image", "leak-img", fromVirtualMachine={"name": "leak-src"}))
    sets.apply(scale_set_manifest("leak-ss", resourceGroup=RG, sshPublicKeys=None,
                                  adminPasswordSecretRef={"name": "ss-admin"}, customDataSecretRef={"name": "ss-init"},
                                  image={"imageRef": {"name": "leak-img"}}, loadBalancer={**WEB_LB, "public": True}))
    avsets.wait_condition("leak-avs", "Ready", timeout=60)
    vms.wait_condition("leak-vm", "Ready", timeout=60)
    images.wait_condition("leak-img", "Ready", timeout=90)
    sets.wait_condition("leak-ss", "Ready", timeout=90)
    assert avsets.get("leak-avs")["status"]["azureResourceId"].startswith(f"/subscriptions/{SUB_B}/")
    assert [r for r in env.arm_requests() if r["path"].startswith("/tenant-b/oauth2/")], "the Secret's own SP"
    writes = [r for r in env.arm_requests() if r["method"] == "PUT"]
    vm_put = [r for r in writes if r["path"].lower().endswith("/virtualmachines/leak-vm")][0]
    ss_put = [r for r in writes if r["path"].lower().endswith("/virtualmachinescalesets/leak-ss")][0]
    for put, prefix in ((vm_put, "properties.osProfile"), (ss_put, "properties.virtualMachineProfile.osProfile")):
        assert {f"{prefix}.adminPassword", f"{prefix}.customData"} <= set(put["body_paths"]), "sent to Azure"

    # What Azure answers about each resource (the emulator never returns passwords nor custom data, as ARM).
    from azure.mgmt.compute import ComputeManagementClient

    compute_b = env.azure_client(ComputeManagementClient, SUB_B)
    compute = env.azure_client(ComputeManagementClient)
    azure_views = [compute_b.virtual_machines.get(RG, "leak-vm").as_dict(),
                   compute_b.availability_sets.get(RG, "leak-avs").as_dict(),
                   compute.virtual_machine_scale_sets.get(RG, "leak-ss").as_dict(),
                   compute.images.get(RG, "leak-img").as_dict(),
                   env.admin(lambda a: a.resources())]
    objects = [vms.get("leak-vm"), vms.get("leak-src"), sets.get("leak-ss"), images.get("leak-img"),
               avsets.get("leak-avs")]
    assert all(o and o.get("status") for o in objects)

    # The whole life: deletion too (the set waits for its member, the image for the scale set).
    sets.delete("leak-ss")
    vms.delete("leak-vm")
    wait_for(lambda: sets.get("leak-ss") is None and vms.get("leak-vm") is None, 90, what="VM and ScaleSet deleted")
    images.delete("leak-img")
    avsets.delete("leak-avs")
    vms.delete("leak-src")
    wait_for(lambda: images.get("leak-img") is None and avsets.get("leak-avs") is None and vms.get("leak-src") is None,
             90, what="everything deleted")

    events = [e.to_dict() for e in core.list_namespaced_event("default").items]
    assert "AuthenticationFailed" in {e["reason"] for e in events}, "the token failure was reported"
    captured = {
        "logs": caplog.text + "\n".join(repr(r.args) + repr(r.exc_info) for r in caplog.records),
        "events": json.dumps(events, default=str),
        "objects": json.dumps(objects, default=str),
        "metrics": prometheus_client.generate_latest().decode(),
        "arm request log": json.dumps(env.arm_requests(), default=str),
        "azure answers": json.dumps(azure_views, default=str),
    }
    assert issued_tokens, "the emulator issued tokens (the operator's and the credentials Secret's)"
    jwt_header = issued_tokens[0].split(".")[0]
    secrets = {"vm password": PASSWORD_VM, "ss password": PASSWORD_SS, "vm customData": "vm-cust0m-d4ta-77",
               "ss customData": "ss-cust0m-d4ta-88", "client secret": CLIENT_SECRET,
               "operator's client secret": HARNESS_SECRET, "bearer token (header)": jwt_header,
               "Kubernetes API token": env.kube_token}
    for label, value in list(secrets.items()):
        if label.startswith(("vm", "ss", "client")):
            secrets[f"{label} (base64)"] = b64(value)
    secrets["vm customData (base64)"], secrets["ss customData (base64)"] = b64(CUSTOM_DATA_VM), b64(CUSTOM_DATA_SS)
    for i, token in enumerate(dict.fromkeys(issued_tokens)):
        secrets[f"token {i}"] = token
        secrets[f"token {i} (signature-less)"] = token.rsplit(".", 1)[0]
    leaks = [f"{label} in {where}" for label, value in secrets.items() for where, text in captured.items()
             if value in text]
    assert leaks == []
    assert len(caplog.records) > 1000, "DEBUG logging was captured"
