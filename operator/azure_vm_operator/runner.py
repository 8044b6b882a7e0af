"""Runs the operator (Kopf) with a given configuration: used by `azure-vm-operator run`, the demo and the tests."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from .config import OperatorConfig


async def run_operator(
    config: OperatorConfig,
    *,
    ready_flag: asyncio.Event | None = None,
    stop_flag: asyncio.Event | None = None,
    azure_credential: Any = None,
) -> None:
    """Run until stop_flag is set (or the task is cancelled).

    ``azure_credential`` overrides the credential built from the configuration (an async TokenCredential).
    """
    from .controllers import handlers  # noqa: F401 - registers the Kopf handlers

    memo = kopf.Memo(config=config)
    if azure_credential is not None:
        memo["azure_credential"] = azure_credential
    await kopf.operator(
        clusterwide=config.namespace is None,
        namespaces=[config.namespace] if config.namespace else (),
        standalone=True,
        memo=memo,
        ready_flag=ready_flag,
        stop_flag=stop_flag,
    )
