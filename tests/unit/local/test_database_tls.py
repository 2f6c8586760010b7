"""The local database's TLS files: issued once, verifiable for every name clients use, renewed."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509

from mlplatform.local.database_tls import (
    RENEW_BEFORE,
    SERVER_DAYS,
    DatabaseTls,
    ensure_tls,
    share_tls_with_containers,
)
from mlplatform.paths import StatePaths


@pytest.fixture
def paths(tmp_path: Path) -> StatePaths:
    return StatePaths(tmp_path).ensure()


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def handshake(tls: DatabaseTls, ca: Path, name: str) -> str:
    """A real TLS handshake: a server with the issued pair, a client verifying `name` as
    PyMySQL does with ssl_ca (chain and host name); the negotiated version."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tls.cert, tls.key)
    client_ctx = ssl.create_default_context(cafile=str(ca))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as wrapped:
                wrapped.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client_ctx.wrap_socket(raw, server_hostname=name) as wrapped,
        ):
            version = str(wrapped.version())
            wrapped.sendall(b"x")
            return version
    finally:
        thread.join(5)
        listener.close()


def test_files_are_issued_once_with_private_keys(paths: StatePaths) -> None:
    tls, changed = ensure_tls(paths)
    assert changed is True
    assert stat.S_IMODE(tls.folder.stat().st_mode) == 0o700
    for private in (tls.key, tls.ca_key):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    before = {p: p.read_bytes() for p in (tls.ca, tls.ca_key, tls.cert, tls.key)}
    assert ensure_tls(paths) == (tls, False)
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "database"])
def test_every_name_a_client_uses_verifies(paths: StatePaths, name: str) -> None:
    tls, _ = ensure_tls(paths)
    assert handshake(tls, tls.ca, name) in ("TLSv1.2", "TLSv1.3")


def test_another_name_or_another_ca_is_refused(paths: StatePaths, tmp_path: Path) -> None:
    tls, _ = ensure_tls(paths)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(tls, tls.ca, "db.example.com")
    other, _ = ensure_tls(StatePaths(tmp_path / "other").ensure())
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        handshake(tls, other.ca, "127.0.0.1")


def test_server_certificate_is_renewed_before_its_end_and_the_ca_kept(paths: StatePaths) -> None:
    tls, _ = ensure_tls(paths)
    first = cert(tls.cert)
    ca = tls.ca.read_bytes()
    end = first.not_valid_after_utc
    assert end - first.not_valid_before_utc <= dt.timedelta(days=SERVER_DAYS, minutes=5)
    # A day before the renewal window nothing changes; inside it the server's pair is new.
    assert ensure_tls(paths, now=end - RENEW_BEFORE - dt.timedelta(days=1))[1] is False
    assert ensure_tls(paths, now=end - RENEW_BEFORE + dt.timedelta(days=1))[1] is True
    renewed = cert(tls.cert)
    assert renewed.serial_number != first.serial_number
    assert tls.ca.read_bytes() == ca
    renewed.verify_directly_issued_by(cert(tls.ca))


def test_a_certificate_from_another_ca_is_replaced(paths: StatePaths, tmp_path: Path) -> None:
    tls, _ = ensure_tls(paths)
    other, _ = ensure_tls(StatePaths(tmp_path / "other").ensure())
    tls.cert.write_bytes(other.cert.read_bytes())
    tls.key.write_bytes(other.key.read_bytes())
    assert ensure_tls(paths)[1] is True
    cert(tls.cert).verify_directly_issued_by(cert(tls.ca))


def test_containers_get_readable_copies_in_a_private_folder(paths: StatePaths) -> None:
    tls, _ = ensure_tls(paths)
    share_tls_with_containers(paths, tls)
    shared = paths.secrets / "container"
    assert stat.S_IMODE(shared.stat().st_mode) == 0o700
    for name, source in (
        ("db-ca.pem", tls.ca),
        ("db-server-cert.pem", tls.cert),
        ("db-server-key.pem", tls.key),
    ):
        copy = shared / name
        assert copy.read_bytes() == source.read_bytes()
        assert stat.S_IMODE(copy.stat().st_mode) == 0o444
