"""AZVM_CREDENTIAL_ALLOWED_NAMESPACES: which namespaces' resources may use the operator's own Azure credential."""

from __future__ import annotations

import pytest

from azure_vm_operator.config import OperatorConfig


@pytest.mark.parametrize("setting,namespace,allowed", [
    (None, "anything", True),
    ("team-a", "team-a", True),
    ("team-a", "team-b", False),
    ("team-*, platform", "team-b", True),
    ("team-*, platform", "platform", True),
    ("team-*, platform", "kube-system", False),
    ("team-*", "Team-b", False),
    ("none", "default", False),
])
def test_allowed_namespaces(setting, namespace, allowed):
    env = {"AZVM_CREDENTIAL_ALLOWED_NAMESPACES": setting} if setting else {}
    assert OperatorConfig.from_env(env).may_use_operator_credential(namespace) is allowed
