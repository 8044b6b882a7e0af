"""The ARM client factory: one credential, one set of async SDK clients per subscription."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Mapping

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import AioHttpTransport
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.resource.resources.aio import ResourceManagementClient

from .. import metrics
from ..config import OperatorConfig
from .throttle import ArmThrottle, ThrottlePolicy, subscription_of
from .throttle import rate_limit_buckets as rate_limit_buckets  # re-exported: its home was this module


#: ARM connections open at once, across every subscription and SDK client (aiohttp's default per session)
CONNECTIONS = 100


class ArmObserver(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Counts every ARM request attempt and records ARM's remaining-quota headers as Prometheus gauges, so
    throttling is visible before it bites (x-ms-ratelimit-remaining-subscription-reads/-writes/-deletes and
    Microsoft.Compute's x-ms-ratelimit-remaining-resource: "Microsoft.Compute/PutVM3Min;239,...")."""

    def on_response(self, request: Any, response: Any) -> None:
        http_request, http_response = request.http_request, response.http_response
        metrics.ARM_REQUESTS.labels(http_request.method, str(http_response.status_code)).inc()
        subscription = subscription_of(http_request.url)
        if subscription is None:
            return
        for name, value in rate_limit_buckets(http_response.headers).items():
            metrics.ARM_RATELIMIT_REMAINING.labels(subscription, name).set(value)


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
    """Lazily creates and caches the SDK clients per (credential, subscription).

    The operator's own credential serves every resource by default; a resource with ``credentialsSecretRef``
    brings a service principal of its own (``credential_for_secret``), cached by a digest of the secret's values.
    Every client's pipeline waits for ARM's and Microsoft.Compute's limits (``throttle``, see throttle.py) unless
    ``config.arm_throttle`` is off.
    """

    def __init__(self, config: OperatorConfig, credential: AsyncTokenCredential | None = None) -> None:
        self._config = config
        self._credential = credential or build_credential(config)
        self._secret_credentials: dict[str, AsyncTokenCredential] = {}
        self._clients: dict[tuple[str, str], SubscriptionClients] = {}
        #: client-side throttling (azure/throttle.py), shared by every SDK client of every subscription
        self.throttle = ArmThrottle(config.arm_throttle_scale) if config.arm_throttle else None
        self._session: Any = None  # aiohttp.ClientSession, created in the event loop by the first client

    def _transport(self) -> AioHttpTransport:
        """One aiohttp session, one pool of at most ``CONNECTIONS`` connections, for every SDK client, with the
        TLS context built once. Given ``connection_verify=<CA file>``, azure-core builds a new SSLContext for each
        request, and aiohttp pools connections by SSLContext: no connection was ever reused. Each request opened
        its own TLS connection, and each one then sat idle in the pool (with asyncio's 256 KiB TLS read buffer)
        until aiohttp's keep-alive timeout closed it: 362 at once while 100 VMs converged (45 MiB traced,
        docs/benchmarks.md)."""
        if self._session is None:
            import ssl

            import aiohttp

            context = ssl.create_default_context(cafile=self._config.azure_ca)  # None: the system's CAs
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context, limit=CONNECTIONS),
                cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False, trust_env=True)  # as azure-core's own
        return AioHttpTransport(session=self._session, session_owner=False)

    def _client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of one SDK client (each needs its own ThrottlePolicy: a policy is part of one pipeline;
        they share the throttle)."""
        per_retry: list[Any] = [ArmObserver()]
        if self.throttle is not None:
            per_retry.insert(0, ThrottlePolicy(self.throttle))
        kwargs: dict[str, Any] = {
            "base_url": self._config.azure_endpoint,
            "credential_scopes": [f"{self._config.azure_audience.rstrip('/')}/.default"],
            "per_retry_policies": per_retry,
        }
        if self._config.lro_polling_interval is not None:
            kwargs["polling_interval"] = self._config.lro_polling_interval
        return kwargs

    def credential_for_secret(self, values: Mapping[str, str]) -> str:
        """Register a service principal from a Secret's (decoded) values; returns the key to pass as
        ``credential_key``. Accepted keys: tenantId/clientId/clientSecret or AZURE_TENANT_ID/AZURE_CLIENT_ID/
        AZURE_CLIENT_SECRET (a certificate: clientCertificate / AZURE_CLIENT_CERTIFICATE, PEM)."""
        from azure.identity.aio import CertificateCredential, ClientSecretCredential

        def pick(*names: str) -> str | None:
            return next((values[n] for n in names if values.get(n)), None)

        tenant, client = pick("tenantId", "AZURE_TENANT_ID"), pick("clientId", "AZURE_CLIENT_ID")
        secret, cert = pick("clientSecret", "AZURE_CLIENT_SECRET"), pick("clientCertificate", "AZURE_CLIENT_CERTIFICATE")
        if not tenant or not client or not (secret or cert):
            raise ValueError("the credentials Secret needs tenantId, clientId and clientSecret (or clientCertificate)")
        key = "secret:" + hashlib.sha256("\0".join((tenant, client, secret or "", cert or "")).encode()).hexdigest()
        if key not in self._secret_credentials:
            kwargs: dict[str, Any] = {}
            if self._config.azure_authority_host:
                kwargs["authority"] = self._config.azure_authority_host
            if self._config.azure_ca:
                kwargs["connection_verify"] = self._config.azure_ca
            if self._config.azure_disable_instance_discovery:
                kwargs["disable_instance_discovery"] = True
            self._secret_credentials[key] = (
                ClientSecretCredential(tenant, client, secret, **kwargs) if secret
                else CertificateCredential(tenant, client, certificate_data=(cert or "").encode(), **kwargs)
            )
        return key

    def for_subscription(self, subscription_id: str, credential_key: str | None = None) -> SubscriptionClients:
        cache_key = (credential_key or "default", subscription_id)
        clients = self._clients.get(cache_key)
        if clients is None:
            credential = self._secret_credentials[credential_key] if credential_key else self._credential
            clients = SubscriptionClients(
                compute=ComputeManagementClient(credential, subscription_id, transport=self._transport(),
                                                **self._client_kwargs()),
                network=NetworkManagementClient(credential, subscription_id, transport=self._transport(),
                                                **self._client_kwargs()),
                resources=ResourceManagementClient(credential, subscription_id, transport=self._transport(),
                                                   **self._client_kwargs()),
            )
            self._clients[cache_key] = clients
        return clients

    async def close(self) -> None:
        for clients in self._clients.values():
            await clients.close()
        self._clients.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        for credential in self._secret_credentials.values():
            await credential.close()
        self._secret_credentials.clear()
        await self._credential.close()
