"""TLS for the local database: a certificate authority of the kit's own, the server's certificate.

RDS serves TLS with a certificate from Amazon's RDS CAs and the cloud's parameter group requires it
(`require_secure_transport`); locally the database server does the same with a certificate this
module issues, so MLflow, the kit and the tests connect with the same settings in both places:
`MLFLOW_DB_SSL_CA` names the CA bundle, and the connection verifies the chain and the host name.

Files, under the state folder's secrets/tls/ (0700): `ca.pem` (public; give it to any client),
`ca-key.pem` (0600; only to re-issue the server certificate), `server-cert.pem` and
`server-key.pem` (0600). The server certificate names every host a client reaches the server by:
`127.0.0.1` and `localhost` from the host, `database` on the compose network. It is re-issued
when it nears its end or no longer matches the CA or those names; the CA lives ten years.

    tls, changed = ensure_tls(paths)   # changed: the server must load the new certificate
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mlplatform.local.credentials import share_with_containers, write_private
from mlplatform.paths import StatePaths

__all__ = [
    "CONTAINER_FILES",
    "SERVER_DNS_NAMES",
    "SERVER_IPS",
    "DatabaseTls",
    "ensure_tls",
    "share_tls_with_containers",
    "tls_files",
]

# The names clients use: loopback from the host (both runtimes publish there) and the compose
# service name from the MLflow container.
SERVER_DNS_NAMES = ("localhost", "database")
SERVER_IPS = ("127.0.0.1",)
CA_DAYS = 3650
# The longest a publicly trusted server certificate may live; the kit renews well before.
SERVER_DAYS = 397
RENEW_BEFORE = dt.timedelta(days=30)
_ORGANISATION = "mlplatform local stack"
# Compose secret name -> the copy under secrets/container/ (see share_tls_with_containers).
CONTAINER_FILES = {
    "db_ca": "db-ca.pem",
    "db_server_cert": "db-server-cert.pem",
    "db_server_key": "db-server-key.pem",
}


@dataclass(frozen=True)
class DatabaseTls:
    """Where the local database's TLS files are."""

    folder: Path

    @property
    def ca(self) -> Path:
        """The CA certificate clients verify the server against (public)."""
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """The CA's private key (0600): used only to issue the server certificate."""
        return self.folder / "ca-key.pem"

    @property
    def cert(self) -> Path:
        """The server's certificate."""
        return self.folder / "server-cert.pem"

    @property
    def key(self) -> Path:
        """The server's private key (0600)."""
        return self.folder / "server-key.pem"


def tls_files(paths: StatePaths) -> DatabaseTls:
    """The TLS files of the stack whose state folder is `paths` (they may not exist yet)."""
    return DatabaseTls(paths.secrets / "tls")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256: every TLS stack MySQL, MariaDB and Python build on accepts it, and it is made at once.
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, certificate_authority: bool) -> x509.KeyUsage:
    """A CA signs certificates (and CRLs); a server signs its TLS handshakes."""
    return x509.KeyUsage(
        digital_signature=not certificate_authority,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificate_authority,
        crl_sign=certificate_authority,
        encipher_only=False,
        decipher_only=False,
    )


def _issue_ca(now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _new_key()
    name = _name("mlplatform local database CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(certificate_authority=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server_names() -> list[x509.GeneralName]:
    return [
        *(x509.DNSName(n) for n in SERVER_DNS_NAMES),
        *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS),
    ]


def _issue_server(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, now: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=SERVER_DAYS), ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(certificate_authority=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_server_names()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _load_ca(
    tls: DatabaseTls, now: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    cert = _load_cert(tls.ca)
    try:
        key = serialization.load_pem_private_key(tls.ca_key.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if cert is None or not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return None
    return key, cert


def _server_current(tls: DatabaseTls, ca: x509.Certificate, now: dt.datetime) -> bool:
    """The server certificate exists, was issued by `ca`, names every host and is not ending."""
    cert = _load_cert(tls.cert)
    if cert is None or not tls.key.is_file():
        return False
    try:
        cert.verify_directly_issued_by(ca)  # the issuer's name and its signature
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return set(names) == set(_server_names()) and cert.not_valid_after_utc - now >= RENEW_BEFORE


def ensure_tls(paths: StatePaths, now: dt.datetime | None = None) -> tuple[DatabaseTls, bool]:
    """The stack's TLS files, issued where missing or ending; True when the server's changed.

    A new CA is made only when there is none (or it nears its end): clients that were given
    `ca.pem` keep trusting a re-issued server certificate.
    """
    now = now or _now()
    tls = tls_files(paths)
    tls.folder.mkdir(parents=True, exist_ok=True)
    os.chmod(tls.folder, 0o700)
    loaded = _load_ca(tls, now)
    if loaded is None:
        ca_key, ca = _issue_ca(now)
        write_private(tls.ca_key, _key_pem(ca_key))
        write_private(tls.ca, _cert_pem(ca))
        os.chmod(tls.ca, 0o644)
    else:
        ca_key, ca = loaded
    if _server_current(tls, ca, now):
        return tls, False
    key, cert = _issue_server(ca_key, ca, now)
    write_private(tls.key, _key_pem(key))
    write_private(tls.cert, _cert_pem(cert))
    os.chmod(tls.cert, 0o644)
    return tls, True


def share_tls_with_containers(paths: StatePaths, tls: DatabaseTls) -> None:
    """Copies the compose runtime mounts: the database container's user must read its key."""
    for name, source in (
        ("db_ca", tls.ca),
        ("db_server_cert", tls.cert),
        ("db_server_key", tls.key),
    ):
        share_with_containers(paths, CONTAINER_FILES[name], source.read_text(encoding="utf-8"))
