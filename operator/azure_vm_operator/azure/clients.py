"""The ARM client factory: one credential, one set of async SDK clients per subscription."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.resource.resources.aio import ResourceManagementClient

from ..config import OperatorConfig


def build_credential(config: OperatorConfig) -> AsyncTokenCredential:
    """A service principal from AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET when all are set, else
    DefaultAzureCredential (workload identity, managed identity, environment, Azure CLI ...)."""
    from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential

    kwargs: dict[str, Any] = {}
    if config.azure_authority_host:
        kwargs["authority"] = config.azure_authority_host
    if config.azure_ca:
        kwargs["connection_verify"] = config.azure_ca
    if config.azure_disable_instance_discovery:
        kwargs["disable_instance_discovery"] = True
    tenant, client, secret = (os.environ.get(v) for v in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"))
    if tenant and client and secret:
        return ClientSecretCredential(tenant, client, secret, **kwargs)
    return DefaultAzureCredential(**kwargs)


@dataclass
class SubscriptionClients:
    compute: ComputeManagementClient
    network: NetworkManagementClient
    resources: ResourceManagementClient

    async def close(self) -> None:
        for client in (self.compute, self.network, self.resources):
            await client.close()


class AzureClients:
    """Lazily creates and caches the SDK clients for each subscription the resources name."""

    def __init__(self, config: OperatorConfig, credential: AsyncTokenCredential | None = None) -> None:
        self._config = config
        self._credential = credential or build_credential(config)
        self._by_subscription: dict[str, SubscriptionClients] = {}

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "base_url": self._config.azure_endpoint,
            "credential_scopes": [f"{self._config.azure_audience.rstrip('/')}/.default"],
        }
        if self._config.azure_ca:
            kwargs["connection_verify"] = self._config.azure_ca
        if self._config.lro_polling_interval is not None:
            kwargs["polling_interval"] = self._config.lro_polling_interval
        return kwargs

    def for_subscription(self, subscription_id: str) -> SubscriptionClients:
        clients = self._by_subscription.get(subscription_id)
        if clients is None:
            kwargs = self._client_kwargs()
            clients = SubscriptionClients(
                compute=ComputeManagementClient(self._credential, subscription_id, **kwargs),
                network=NetworkManagementClient(self._credential, subscription_id, **kwargs),
                resources=ResourceManagementClient(self._credential, subscription_id, **kwargs),
            )
            self._by_subscription[subscription_id] = clients
        return clients

    async def close(self) -> None:
        for clients in self._by_subscription.values():
            await clients.close()
        self._by_subscription.clear()
        await self._credential.close()
