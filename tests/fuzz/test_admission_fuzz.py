"""A few hundred hostile specs through the test Kubernetes API over HTTP (what kubectl apply meets): the server's
verdict is the in-process one of test_spec_fuzz (so the bulk can run in process), refusals are 422 with causes,
and what it stores parses or raises SpecError."""

from __future__ import annotations

import json
from itertools import count

import kubernetes.client
import pytest
from hypothesis import HealthCheck, given, settings

from azure_vm_operator.api.constants import GROUP, SCALESET_PLURAL, VERSION, VM_PLURAL
from azvm_sandbox.harness import kube_api

from fuzz_helpers import CRDS, NAMES, SCALESET_FIELDS, VM_FIELDS, admit, hostile_spec, schema_of
from test_spec_fuzz import through_the_operator_ss, through_the_operator_vm

HTTP = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
_n = count()


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    with kube_api(tmp_path_factory.mktemp("kube"), CRDS, "fuzz-api") as client:
        yield kubernetes.client.CustomObjectsApi(client)


def over_http(custom, kind, plural, name, spec):
    name = f"{name[:200]}-{next(_n)}"
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}
    try:
        stored = custom.create_namespaced_custom_object(GROUP, VERSION, "default", plural, body)
    except kubernetes.client.ApiException as exc:
        assert exc.status == 422, (exc.status, exc.body)
        status = json.loads(exc.body)
        assert status["reason"] == "Invalid" and status["details"]["causes"], status
        return name, None
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", plural, name)
    return name, stored


@pytest.mark.parametrize("kind,plural,fields,operator", [
    ("VirtualMachine", VM_PLURAL, VM_FIELDS, through_the_operator_vm),
    ("ScaleSet", SCALESET_PLURAL, SCALESET_FIELDS, through_the_operator_ss),
])
def test_the_api_server_admits_what_the_in_process_schema_admits(custom, kind, plural, fields, operator):
    schema = schema_of(kind)
    verdicts = {"admitted": 0, "refused": 0}

    @HTTP
    @given(name=NAMES, spec=hostile_spec(fields))
    def case(name, spec):
        name, stored = over_http(custom, kind, plural, name, spec)
        local, _ = admit(schema, kind, name, spec)
        assert (stored is None) == (local is None), (spec, local)
        verdicts["admitted" if stored else "refused"] += 1
        if stored is not None:
            operator(name, stored["spec"])

    case()
    assert verdicts["admitted"] > 10 and verdicts["refused"] > 10, verdicts
