"""Health of each service, checked from the host through its published loopback port.

Both runtimes publish the same ports, so one set of checks serves them both.
"""

from __future__ import annotations

import pymysql

from mlplatform.config import Environment
from mlplatform.local.credentials import Credentials
from mlplatform.local.services import SERVICES, Service
from mlplatform.readiness import http_ok

__all__ = ["healthy", "service_url"]


def service_url(service: Service, env: Environment) -> str:
    """The URL a user (or a test) reaches the service at."""
    port = service.host_port(env)
    if service.health == "mysql":
        return f"mysql://127.0.0.1:{port}/{env.database.name}"
    return f"http://127.0.0.1:{port}"


def _mysql_ok(port: int, creds: Credentials, database: str) -> bool:
    try:
        conn = pymysql.connect(
            host="127.0.0.1",
            port=port,
            user=creds.db_username,
            password=creds.db_password,
            database=database,
            connect_timeout=2,
        )
    except pymysql.err.MySQLError:
        return False
    with conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        return bool(cur.fetchone() == (1,))


def healthy(name: str, env: Environment, creds: Credentials) -> bool:
    """True when the service answers its real check (a query, or its health endpoint)."""
    service = next(s for s in SERVICES if s.name == name)
    if service.health == "mysql":
        return _mysql_ok(service.host_port(env), creds, env.database.name)
    return http_ok(service_url(service, env) + service.health_path)
