"""The Helm chart rendered by Helm's engine for the default and every non-default value set: each object valid
against Kubernetes' own schemas (kubernetes-validate, strict: no unknown field), the CRDs the chart installs the
repository's crds/ byte for byte, and what each mode promises (leader election, probes, securityContext, workload
identity, shards, namespace scope, every environment variable the operator reads)."""

from __future__ import annotations

import pytest
from chart_helpers import CRDS, NAMESPACE, VALUE_SETS, load_chart, objects, of_kind, render

kubernetes_validate = pytest.importorskip("kubernetes_validate")

KUBERNETES_VERSION = "1.30"  # the oldest minor the chart is validated against (Chart.yaml: kubeVersion >=1.25)
NOT_IN_KUBERNETES = {"ServiceMonitor", "PrometheusRule"}  # Prometheus Operator kinds: checked in test_chart_monitoring


def env_of(deployment: dict) -> dict[str, object]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_object_is_valid_against_kubernetes_schemas(name):
    objs = objects(VALUE_SETS[name])
    assert objs
    for obj in objs:
        if obj["kind"] in NOT_IN_KUBERNETES:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {obj['kind']} {obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
        assert obj["metadata"].get("namespace", NAMESPACE) in (NAMESPACE, "team-a", "team-b", "monitoring")


def test_the_crds_are_the_repository_crds_byte_for_byte_and_valid():
    """The chart's crds/ is a symlink to the repository's crds/ (one source; Helm follows it when it loads or
    packages the chart): what Helm would install is exactly those files, every kind included."""
    source = {p.name: p.read_text() for p in sorted(CRDS.glob("*.yaml"))}
    with load_chart() as chart:
        shipped = {c["name"].removeprefix("crds/"): c["data"] for c in chart.crds}
    assert shipped == source
    import yaml

    for text in shipped.values():
        kubernetes_validate.validate(yaml.safe_load(text), KUBERNETES_VERSION, strict=True)


def test_default_two_replicas_leader_election_probes_and_hardening():
    objs = objects()
    [deployment] = of_kind(objs, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert spec["replicas"] == 2
    assert container["args"][:2] == ["run", "--leader-elect"]
    assert env_of(deployment)["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 8080, "health": 8081}
    assert env_of(deployment)["AZVM_HEALTH_PORT"] == "8081" and env_of(deployment)["AZVM_METRICS_PORT"] == "8080"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"} and sc["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # the only writable path
    selector = spec["selector"]["matchLabels"]
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert all(c["labelSelector"]["matchLabels"] == selector for c in pod["topologySpreadConstraints"])
    [pdb] = of_kind(objs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == selector and pdb["spec"]["maxUnavailable"] == 1
    [service] = of_kind(objs, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}]
    assert selector.items() <= service["spec"]["selector"].items()
    assert "azure.workload.identity/use" not in spec["template"]["metadata"]["labels"]
    assert container["image"].endswith(":0.1.0")  # the chart's appVersion, never latest


def test_every_environment_variable_the_operator_reads_can_be_set_from_values():
    from azure_vm_operator.config import ENV_VARS

    as_flags = {"--leader-elect": "AZVM_LEADER_ELECT"}  # the chart passes this one as the flag
    seen: set[str] = set()
    for values in VALUE_SETS.values():
        for deployment in of_kind(objects(values), "Deployment"):
            seen |= set(env_of(deployment))
            args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            seen |= {var for flag, var in as_flags.items() if flag in args}
    # AZVM_KUBECONFIG: in a pod the operator uses its ServiceAccount (in-cluster configuration)
    assert set(ENV_VARS.values()) - {"AZVM_KUBECONFIG"} <= seen
    assert seen - set(ENV_VARS.values()) <= {"HOME", "AZURE_TENANT_ID"}


def test_workload_identity_annotates_the_service_account_and_labels_the_pods():
    objs = objects(VALUE_SETS["workload-identity"])
    [sa] = of_kind(objs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": "11111111-2222-3333-4444-555555555555",
        "azure.workload.identity/tenant-id": "tenant-1", "team": "platform"}
    [deployment] = of_kind(objs, "Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    env = env_of(deployment)
    assert env["AZURE_SUBSCRIPTION_ID"] == "00000000-0000-0000-0000-0000000000aa"
    assert "AZURE_CLIENT_SECRET" not in env


def test_namespace_scoped_mode_watches_one_namespace():
    objs = objects(VALUE_SETS["namespace-scoped"])
    [deployment] = of_kind(objs, "Deployment")
    assert env_of(deployment)["AZVM_NAMESPACE"] == "team-a"
    assert env_of(deployment)["AZVM_CLUSTER_ID"] == "prod-west"
    # the operator takes one --namespace: the schema refuses two rather than silently watching one
    with pytest.raises(ValueError, match="watchNamespaces"):
        render({"watchNamespaces": ["a", "b"]})


def test_shards_one_deployment_pdb_and_lease_each():
    objs = objects(VALUE_SETS["shards"])
    deployments = of_kind(objs, "Deployment")
    assert [d["metadata"]["name"] for d in deployments] == [f"azvm-azure-vm-operator-shard-{i}" for i in range(3)]
    selectors = []
    for index, deployment in enumerate(deployments):
        env = env_of(deployment)
        assert (env["AZVM_SHARD_COUNT"], env["AZVM_SHARD_INDEX"], env["AZVM_SELECTOR"]) == ("3", str(index), "team=a")
        assert deployment["spec"]["replicas"] == 2
        selectors.append(deployment["spec"]["selector"]["matchLabels"])
    assert len({tuple(sorted(s.items())) for s in selectors}) == 3  # no Deployment adopts another's pods
    assert sorted(tuple(sorted(p["spec"]["selector"]["matchLabels"].items()))
                  for p in of_kind(objs, "PodDisruptionBudget")) == sorted(tuple(sorted(s.items())) for s in selectors)
    [service] = of_kind(objs, "Service")  # one Service scrapes every shard
    assert all(service["spec"]["selector"].items() <= s.items() for s in selectors)


def test_clouds_ca_and_credentials():
    [gov] = of_kind(objects(VALUE_SETS["sovereign-cloud-ca"]), "Deployment")
    env = env_of(gov)
    assert env["AZURE_ENDPOINT"] == "https://management.usgovcloudapi.net"
    assert env["AZURE_AUDIENCE"] == "https://management.core.usgovcloudapi.net"
    assert env["AZURE_AUTHORITY_HOST"] == "https://login.microsoftonline.us"
    assert env["AZURE_CA"] == "/etc/azure-vm-operator/ca/ca.pem"
    pod = gov["spec"]["template"]["spec"]
    assert {"name": "azure-ca", "configMap": {"name": "azure-ca", "items": [{"key": "ca.pem", "path": "ca.pem"}]}} \
        in pod["volumes"]
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "azure-sp"}}]
    assert pod["containers"][0]["image"] == "ghcr.io/azvm/azure-vm-operator@sha256:" + "a" * 64
    assert "--verbose" in pod["containers"][0]["args"]
    [custom] = of_kind(objects(VALUE_SETS["custom-cloud"]), "Deployment")
    env = env_of(custom)
    assert env["AZURE_ENDPOINT"] == env["AZURE_AUDIENCE"] == "https://arm.example.internal"
    assert env["AZURE_DISABLE_INSTANCE_DISCOVERY"] == "true"
    assert any(v.get("secret", {}).get("secretName") == "azure-ca"
               for v in custom["spec"]["template"]["spec"]["volumes"])


def test_notes_name_the_mode():
    notes = render(VALUE_SETS["namespace-scoped"])["azure-vm-operator/templates/NOTES.txt"]
    assert 'namespace "team-a"' in notes and "one namespace today" in notes
    assert "cluster-wide" in render()["azure-vm-operator/templates/NOTES.txt"]
