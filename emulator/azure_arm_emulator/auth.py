"""A tiny Microsoft Entra ID stand-in: token endpoint plus the discovery documents MSAL may ask for.

Any tenant, client id and secret are accepted. Tokens are unsigned JWT-shaped strings; ARM routes only check that a
``Bearer`` token is present.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from .errors import ArmError

TOKEN_PATH = re.compile(r"^/(?P<tenant>[^/]+)/oauth2(?:/v2\.0)?/token/?$", re.IGNORECASE)
OPENID_PATH = re.compile(r"^/(?P<tenant>[^/]+)(?:/v2\.0)?/\.well-known/openid-configuration/?$", re.IGNORECASE)
DISCOVERY_PATH = re.compile(r"^/common/discovery/instance/?$", re.IGNORECASE)
TOKEN_LIFETIME = 3599


def is_identity_path(path: str) -> bool:
    return bool(TOKEN_PATH.match(path) or OPENID_PATH.match(path) or DISCOVERY_PATH.match(path))


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def issue_token(tenant: str, client_id: str, scope: str, base_url: str) -> dict[str, Any]:
    issued = int(time.time())
    claims = {
        "aud": scope.removesuffix("/.default") or "https://management.azure.com",
        "iss": f"{base_url}/{tenant}/v2.0",
        "iat": issued,
        "nbf": issued,
        "exp": issued + TOKEN_LIFETIME,
        "tid": tenant,
        "appid": client_id,
        "azp": client_id,
        "oid": client_id,
        "sub": client_id,
    }
    token = f"{_b64({'typ': 'JWT', 'alg': 'none'})}.{_b64(claims)}.ZW11bGF0b3I"
    return {
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "ext_expires_in": TOKEN_LIFETIME,
        "access_token": token,
    }


def openid_configuration(tenant: str, base_url: str) -> dict[str, Any]:
    return {
        "issuer": f"{base_url}/{tenant}/v2.0",
        "token_endpoint": f"{base_url}/{tenant}/oauth2/v2.0/token",
        "authorization_endpoint": f"{base_url}/{tenant}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base_url}/{tenant}/oauth2/v2.0/devicecode",
        "jwks_uri": f"{base_url}/{tenant}/discovery/v2.0/keys",
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "tenant_region_scope": "WW",
    }


def instance_discovery(base_url: str, authority: str | None) -> dict[str, Any]:
    host = base_url.split("://", 1)[-1]
    return {
        "tenant_discovery_endpoint": f"{base_url}/common/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }


def require_bearer(authorization: str | None) -> None:
    """ARM's check: a missing or non-Bearer Authorization header is 401 AuthenticationFailed."""
    if authorization and authorization.lower().startswith("bearer ") and authorization[7:].strip():
        return
    reason = "missing" if not authorization else "invalid"
    raise ArmError(
        401,
        "AuthenticationFailed",
        f"Authentication failed. The 'Authorization' header is {reason}.",
        headers={
            "WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/", '
            'error="invalid_token", error_description="The authentication failed because of missing '
            "'Authorization' header.\""
        },
    )


def principal_of(authorization: str | None) -> str:
    """The client id inside an emulator-issued token (``unknown`` for foreign tokens)."""
    try:
        payload = (authorization or "").split(" ", 1)[1].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("appid") or "unknown")
    except (IndexError, ValueError):
        return "unknown"
