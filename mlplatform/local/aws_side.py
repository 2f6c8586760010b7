"""The local stack's AWS side: clients for its S3 store and emulator, and the secrets it holds.

Locally S3 is SeaweedFS and every other AWS API the moto server, both on 127.0.0.1 and both
reached with the stack's generated key pair; the secrets are shaped as the cloud shapes them, so
the MLflow server reads them the same way in both places (mlplatform.cloud.aws seeds them).
"""

from __future__ import annotations

import json
from typing import Any

from mlplatform.cloud.aws import client
from mlplatform.config import Environment
from mlplatform.local.credentials import Credentials

__all__ = ["local_client", "secret_values"]


def local_client(service: str, env: Environment, creds: Credentials) -> Any:
    """A client for the local stack: S3 is SeaweedFS, every other service the moto emulator."""
    port = env.ports.s3 if service == "s3" else env.ports.aws
    return client(
        service,
        region=env.region,
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key=creds.s3_access_key,
        secret_key=creds.s3_secret_key,
    )


def secret_values(
    env: Environment, creds: Credentials, db_host: str, db_port: int, db_name: str | None = None
) -> dict[str, str]:
    """The secrets the server reads, keyed by name, shaped as the cloud shapes them.

    The database secret has the fields RDS writes for a generated master secret.
    """
    engine = env.database.engine
    return {
        env.database_secret_name: json.dumps(
            {
                "username": creds.db_username,
                "password": creds.db_password,
                "engine": engine,
                "host": db_host,
                "port": db_port,
                "dbname": db_name or env.database.name,
            }
        ),
        env.admin_secret_name: json.dumps(
            {"username": creds.admin_username, "password": creds.admin_password}
        ),
        env.flask_secret_name: creds.flask_secret_key,
        env.client_secret_name: json.dumps(
            {"username": creds.client_username, "password": creds.client_password}
        ),
    }
