"""Kubernetes plumbing: one way to load the cluster connection, shared by Kopf and our own API calls."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any, Mapping

import kopf
import kubernetes.client
import kubernetes.config

from .api.constants import GROUP, VERSION


def load_configuration(kubeconfig: str | None) -> kubernetes.client.Configuration:
    """In-cluster service account when running in a pod, else the kubeconfig (explicit path, $KUBECONFIG read now,
    or ~/.kube/config). Reading $KUBECONFIG at call time matters: the client library reads it only at import."""
    configuration = kubernetes.client.Configuration()
    if kubeconfig is None:
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return configuration
        except kubernetes.config.ConfigException:
            kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration)
    return configuration


def connection_info(configuration: kubernetes.client.Configuration) -> kopf.ConnectionInfo:
    """Kopf's view of the same connection (what kopf.login_via_client does, for an explicit configuration)."""
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    parts = header.split(" ", 1) if header else []
    scheme, token = (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


class ReferenceNotFound(LookupError):
    """A Secret or ConfigMap the spec names does not exist (yet)."""

    def __init__(self, kind: str, namespace: str, name: str) -> None:
        super().__init__(f"{kind} {namespace}/{name} not found")
        self.kind = kind


class ScaleConflict(Exception):
    """The resource changed since the version a /scale write was based on (HTTP 409)."""


class KubeClient:
    """The few API calls the controllers make themselves (Kopf does watching, finalizers and events)."""

    def __init__(self, configuration: kubernetes.client.Configuration) -> None:
        self._api_client = kubernetes.client.ApiClient(configuration)
        self._custom = kubernetes.client.CustomObjectsApi(self._api_client)
        self._core = kubernetes.client.CoreV1Api(self._api_client)

    async def patch_status(self, plural: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch .status through the status subresource (a real API server ignores status elsewhere).
        A resource deleted meanwhile is not an error."""
        try:
            await asyncio.to_thread(
                self._custom.patch_namespaced_custom_object_status,
                GROUP, VERSION, namespace, plural, name, {"status": dict(status)},
            )
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise

    async def patch_scale(self, plural: str, namespace: str, name: str, replicas: int, *,
                          expected: int | None, field_manager: str) -> None:
        """Set spec.replicas through the scale subresource, as the HPA does. With ``expected``, only if
        spec.replicas still is that count (a JSON patch ``test``; else ScaleConflict): a count someone set since
        the caller read it is never overwritten blindly. Status writes and other changes do not conflict."""
        try:
            if expected is None:
                # The first count goes to the resource itself: kube-apiserver records no owner for a /scale write
                # to a field nobody owned (kubernetes/kubernetes#131892); this way managedFields name the
                # autoscaler, and later /scale writes of the same manager keep it.
                await asyncio.to_thread(
                    self._custom.patch_namespaced_custom_object,
                    GROUP, VERSION, namespace, plural, name, {"spec": {"replicas": replicas}},
                    field_manager=field_manager, _content_type="application/merge-patch+json",
                )
                return
            await asyncio.to_thread(
                self._custom.patch_namespaced_custom_object_scale,
                GROUP, VERSION, namespace, plural, name,
                [{"op": "test", "path": "/spec/replicas", "value": expected},
                 {"op": "replace", "path": "/spec/replicas", "value": replicas}],
                field_manager=field_manager, _content_type="application/json-patch+json",
            )
        except kubernetes.client.ApiException as exc:
            # a failed JSON patch test: 422 (kube-apiserver: "the server rejected our request due to an error in
            # our request"); 409 for a conflict with a concurrent write
            if exc.status == 409 or (expected is not None and exc.status == 422 and "test" in str(exc.body)):
                raise ScaleConflict(f"{plural} {namespace}/{name}: spec.replicas changed meanwhile") from exc
            raise

    async def read_secret(self, namespace: str, name: str) -> dict[str, str]:
        """The Secret's values, decoded. Only ever from the resource's own namespace (callers pass it)."""
        secret = await self._read("Secret", self._core.read_namespaced_secret, namespace, name)
        values = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
        values.update(secret.string_data or {})
        return values

    async def read_config_map(self, namespace: str, name: str) -> dict[str, str]:
        config_map = await self._read("ConfigMap", self._core.read_namespaced_config_map, namespace, name)
        return dict(config_map.data or {})

    async def read_custom(self, kind: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
        """A custom resource of this operator's group (another resource a spec refers to, same namespace)."""
        try:
            body: Any = await asyncio.to_thread(self._custom.get_namespaced_custom_object,
                                                GROUP, VERSION, namespace, plural, name)
            return dict(body)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                raise ReferenceNotFound(kind, namespace, name) from None
            raise

    async def list_custom(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        """The custom resources of one kind in a namespace (who refers to a resource being deleted)."""
        listing: Any = await asyncio.to_thread(self._custom.list_namespaced_custom_object, GROUP, VERSION, namespace,
                                          plural)
        return [dict(item) for item in listing.get("items") or []]

    async def delete_custom(self, plural: str, namespace: str, name: str) -> bool:
        """Delete a custom resource (its finalizer then runs as for a kubectl delete); False if already gone."""
        try:
            await asyncio.to_thread(self._custom.delete_namespaced_custom_object, GROUP, VERSION, namespace,
                                    plural, name)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def _read(self, kind: str, read: Any, namespace: str, name: str) -> Any:
        try:
            return await asyncio.to_thread(read, name, namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                raise ReferenceNotFound(kind, namespace, name) from None
            raise

    def close(self) -> None:
        self._api_client.close()  # type: ignore[no-untyped-call]
