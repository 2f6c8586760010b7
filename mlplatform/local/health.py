"""Health of each service, checked from the host through its published loopback port.

Both runtimes publish the same ports, so one set of checks serves them both.
"""

from __future__ import annotations

import pymysql

from mlplatform.config import Environment
from mlplatform.local.credentials import Credentials
from mlplatform.local.database_tls import tls_files
from mlplatform.local.services import SERVICES, Service
from mlplatform.paths import StatePaths
from mlplatform.readiness import http_ok

__all__ = ["database_connection", "healthy", "service_url"]


def service_url(service: Service, env: Environment) -> str:
    """The URL a user (or a test) reaches the service at."""
    port = service.host_port(env)
    if service.health == "mysql":
        return f"mysql://127.0.0.1:{port}/{env.database.name}"
    return f"http://127.0.0.1:{port}"


def database_connection(
    env: Environment, creds: Credentials, paths: StatePaths, timeout: float = 2
) -> pymysql.connections.Connection:
    """A connection as MLflow's user, over TLS verified against the stack's CA (as MLflow's).

    The server refuses any TCP client without TLS (`require_secure_transport`, as RDS is set).
    """
    return pymysql.connect(
        host="127.0.0.1",
        port=env.ports.database,
        user=creds.db_username,
        password=creds.db_password,
        database=env.database.name,
        connect_timeout=timeout,
        ssl_ca=str(tls_files(paths).ca),
        ssl_verify_identity=True,
    )


def _mysql_ok(env: Environment, creds: Credentials, paths: StatePaths) -> bool:
    try:
        conn = database_connection(env, creds, paths)
    except (pymysql.err.MySQLError, OSError):  # OSError: no CA file yet, or a TLS failure
        return False
    with conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        return bool(cur.fetchone() == (1,))


def healthy(name: str, env: Environment, creds: Credentials, paths: StatePaths) -> bool:
    """True when the service answers its real check (a query, or its health endpoint)."""
    service = next(s for s in SERVICES if s.name == name)
    if service.health == "mysql":
        return _mysql_ok(env, creds, paths)
    return http_ok(service_url(service, env) + service.health_path)
