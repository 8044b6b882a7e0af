"""The end-to-end slice of the spec fuzzing (tests/fuzz): specs the API server admits but the operator cannot act
on, applied with the operator running. Each ends Stalled with a specific reason and message; no handler raises
(no Kopf retry loop); nothing is written to Azure (the emulator's request log)."""

from __future__ import annotations

import base64
import logging

from azure_vm_operator.api.constants import SCALESET_PLURAL
from e2e_helpers import SSH_KEY, Cluster, vm_manifest, wait_for

WINDOWS = {"marketplace": {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter"}}
LB_RULES = [{"name": "a", "frontendPort": 80, "backendPort": 80}, {"name": "b", "frontendPort": 80, "backendPort": 81}]

# (name, spec changes, Stalled reason, words of the message)
VMS = [
    ("v" * 70, {}, "InvalidSpec", "not a valid Azure VM name"),
    ("bad-tag-slash", {"tags": {"a/b": "1"}}, "InvalidSpec", "not a valid Azure tag name"),
    ("bad-tag-query", {"tags": {"what?": "1"}}, "InvalidSpec", "not a valid Azure tag name"),
    ("bad-tag-percent", {"tags": {"100%": "1"}}, "InvalidSpec", "not a valid Azure tag name"),
    ("win-no-password", {"osType": "Windows"}, "InvalidSpec", "needs spec.adminPasswordSecretRef"),
    ("win-image-no-password", {"image": WINDOWS}, "InvalidSpec", "needs spec.adminPasswordSecretRef"),
    ("win-with-keys", {"osType": "Windows", "adminPasswordSecretRef": {"name": "pw"}}, "InvalidSpec",
     "Linux"),
    ("no-password-secret", {"sshPublicKeys": None, "adminPasswordSecretRef": {"name": "absent"}},
     "SecretNotFound", "absent"),
    ("no-password-key", {"sshPublicKeys": None, "adminPasswordSecretRef": {"name": "pw", "key": "nope"}},
     "SecretKeyNotFound", "nope"),
    ("no-init-secret", {"customDataSecretRef": {"name": "absent-init"}}, "SecretNotFound", "absent-init"),
    ("no-init-map", {"customDataConfigMapRef": {"name": "absent-map"}}, "ConfigMapNotFound", "absent-map"),
    ("no-init-key", {"customDataSecretRef": {"name": "pw", "key": "customData"}}, "SecretKeyNotFound",
     "customData"),
    ("no-credentials", {"credentialsSecretRef": {"name": "absent-sp"}}, "SecretNotFound", "absent-sp"),
    ("bad-credentials", {"credentialsSecretRef": {"name": "pw"}}, "InvalidCredentialsSecret", "pw"),
]
SETS = [
    ("s" * 70, {}, "InvalidSpec", "not a valid Azure scale set name"),
    ("ss-bad-tag", {"tags": {"x<y": "1"}}, "InvalidSpec", "not a valid Azure tag name"),
    ("ss-rolling-no-lb", {"upgradePolicy": {"mode": "Rolling"}}, "InvalidSpec", "health signal"),
    ("ss-same-frontend", {"loadBalancer": {"enabled": True, "rules": LB_RULES}}, "InvalidSpec", "frontendPort"),
    ("ss-win-no-password", {"image": WINDOWS}, "InvalidSpec", "needs spec.adminPasswordSecretRef"),
    ("ss-no-password-secret", {"sshPublicKeys": None, "adminPasswordSecretRef": {"name": "absent"}},
     "SecretNotFound", "absent"),
    ("ss-no-init-map", {"customDataConfigMapRef": {"name": "absent-map"}}, "ConfigMapNotFound", "absent-map"),
    ("ss-no-credentials", {"credentialsSecretRef": {"name": "absent-sp"}}, "SecretNotFound", "absent-sp"),
]


def as_scale_set(manifest):
    return {**manifest, "kind": "ScaleSet", "spec": {**manifest["spec"], "replicas": 1}}


def test_admitted_but_invalid_specs_stall_with_a_reason_and_never_reach_azure(env, operator, cluster, caplog):
    caplog.set_level(logging.DEBUG)
    sets = Cluster(env.kube_api_client(), SCALESET_PLURAL)
    cluster.core.create_namespaced_secret("default", {"metadata": {"name": "pw"},
                                                      "data": {"password": base64.b64encode(b"Pw-0x9!long").decode()}})
    env.clear_arm_requests()
    for name, changes, _, _ in VMS:
        cluster.apply(vm_manifest(name, **{k: v for k, v in changes.items()}))
    for name, changes, _, _ in SETS:
        sets.apply(as_scale_set(vm_manifest(name, **changes)))
    for client, cases in ((cluster, VMS), (sets, SETS)):
        for name, _, reason, words in cases:
            stalled = client.wait_condition(name, "Stalled", timeout=30)
            assert stalled["reason"] == reason and words in stalled["message"], (name, stalled)
            ready = client.condition(name, "Ready")
            assert ready["status"] == "False" and ready["reason"] == reason
            assert client.get(name)["status"]["printableStatus"] == "Failed"
            assert [e for e in client.events(name) if e.reason == reason], name
    writes = [r for r in env.arm_requests()
              if r["method"] != "GET" and "/oauth2/" not in r["path"] and "/_admin/" not in r["path"]]
    assert writes == [], writes
    # no handler raised: Kopf would log and retry it (a crash loop); SpecError/Stalled end the pass normally
    assert "failed with an exception" not in caplog.text and "Traceback" not in caplog.text

    # deleting them releases them: nothing was created, so nothing is waited for. Without its credentials the
    # operator cannot know that nothing is in Azure: it holds the deletion and says how to release it (Orphan)
    for client, cases in ((cluster, VMS), (sets, SETS)):
        for name, changes, _, _ in cases:
            client.delete(name)
            if "credentialsSecretRef" in changes:
                wait_for(lambda: "deletionPolicy: Orphan" in client.condition(name, "Stalled").get("message", ""),
                         30, what=f"{name}: deletion held for its credentials")
                client.patch_spec(name, {"deletionPolicy": "Orphan"})
    wait_for(lambda: not cluster.custom.list_namespaced_custom_object(
        "compute.azvm.io", "v1alpha1", "default", cluster.plural)["items"], 30, what="the VMs released")
    wait_for(lambda: not sets.custom.list_namespaced_custom_object(
        "compute.azvm.io", "v1alpha1", "default", SCALESET_PLURAL)["items"], 30, what="the sets released")
    writes = [r for r in env.arm_requests() if r["method"] in ("PUT", "PATCH", "DELETE")]
    assert writes == [], writes


def test_the_operator_credential_serves_only_allowed_namespaces(env, cluster):
    """AZVM_CREDENTIAL_ALLOWED_NAMESPACES: resources elsewhere are Stalled (CredentialNotAllowed) before any Azure
    call, unless they bring a credentials Secret of their own namespace; Secrets are only ever read from the
    resource's own namespace."""
    env.start_operator(credential_allowed_namespaces="team-*")
    for namespace in ("team-a", "other"):
        cluster.core.create_namespace({"metadata": {"name": namespace}})
    # a credentials Secret in the allowed namespace: "other" cannot borrow it by name
    sp = {k: base64.b64encode(v.encode()).decode() for k, v in
          {"tenantId": "t2", "clientId": "c2", "clientSecret": "sp-secret-allow-1"}.items()}
    cluster.core.create_namespaced_secret("team-a", {"metadata": {"name": "sp"}, "data": sp})
    env.clear_arm_requests()
    cluster.apply(vm_manifest("allowed", namespace="team-a"))
    cluster.apply(vm_manifest("refused", namespace="other"))
    cluster.apply(vm_manifest("borrows", namespace="other", credentialsSecretRef={"name": "sp"}))
    cluster.wait_condition("allowed", "Ready", namespace="team-a", timeout=60)
    stalled = cluster.wait_condition("refused", "Stalled", namespace="other")
    assert stalled["reason"] == "CredentialNotAllowed" and "credentialsSecretRef" in stalled["message"]
    assert cluster.wait_condition("borrows", "Stalled", namespace="other")["reason"] == "SecretNotFound"
    assert not [r for r in env.arm_requests() if "/refused" in r["path"] or "/borrows" in r["path"]]
    # its own Secret: allowed (the Secret's service principal, not the operator's)
    cluster.core.create_namespaced_secret("other", {"metadata": {"name": "own-sp"}, "data": sp})
    cluster.patch_spec("refused", {"credentialsSecretRef": {"name": "own-sp"}}, namespace="other")
    cluster.wait_condition("refused", "Ready", namespace="other", timeout=60)
    # deleting the refused one that never reached Azure: held with the way out, released with Orphan
    cluster.delete("borrows", namespace="other")
    cluster.patch_spec("borrows", {"deletionPolicy": "Orphan"}, namespace="other")
    wait_for(lambda: cluster.get("borrows", namespace="other") is None, 30, what="released")
