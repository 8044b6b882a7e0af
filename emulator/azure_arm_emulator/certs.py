"""TLS for the emulator: a trustme CA (kept in the state directory so clients keep trusting it) and a server cert."""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"


@dataclass(frozen=True)
class Tls:
    ca_path: str
    server_context: ssl.SSLContext


def _load_or_create_ca(directory: Path) -> trustme.CA:
    cert_file, key_file = directory / CA_CERT_FILE, directory / CA_KEY_FILE
    if cert_file.exists() and key_file.exists():
        return trustme.CA.from_pem(cert_file.read_bytes(), key_file.read_bytes())
    ca = trustme.CA(organization_name="azure-vm-operator ARM emulator")
    key_tmp = key_file.with_suffix(".tmp")
    key_tmp.write_bytes(ca.private_key_pem.bytes())
    os.chmod(key_tmp, 0o600)
    os.replace(key_tmp, key_file)
    cert_tmp = cert_file.with_suffix(".tmp")
    cert_tmp.write_bytes(ca.cert_pem.bytes())
    os.replace(cert_tmp, cert_file)
    return ca


def server_identities(host: str) -> list[str]:
    identities = ["127.0.0.1", "localhost", "::1"]
    if host in ("", "0.0.0.0", "::"):
        identities.append(socket.gethostname())
    elif host not in identities:
        identities.append(host)
    return identities


def prepare(directory: Path, host: str) -> Tls:
    """CA files in ``directory`` (reused when present) and a fresh server certificate for ``host``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _load_or_create_ca(directory)
    leaf = ca.issue_cert(*server_identities(host), common_name="azure-arm-emulator")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return Tls(ca_path=str(directory / CA_CERT_FILE), server_context=context)
