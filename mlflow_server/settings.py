"""Server configuration read from environment variables, with secrets resolved via Secrets Manager.

Database, one of:
  MLFLOW_DB_URI  a full SQLAlchemy URI (sqlite:///... for the reduced-parity fallback)
  MLFLOW_DB_HOST, MLFLOW_DB_PORT, MLFLOW_DB_NAME (+ MLFLOW_DB_ENGINE=mysql|mariadb) with credentials
  from MLFLOW_DB_SECRET_ID (JSON with username and password, the shape RDS generates) or injected
  by ECS as MLFLOW_DB_USERNAME / MLFLOW_DB_PASSWORD. MLFLOW_DB_SSL_CA: the CA bundle the
  server's certificate is verified against (chain and host name); the connection then uses TLS.
Admin: MLFLOW_ADMIN_SECRET_ID (JSON username/password) or injected MLFLOW_AUTH_ADMIN_USERNAME /
  MLFLOW_AUTH_ADMIN_PASSWORD. Flask session key: MLFLOW_FLASK_SECRET_ID (plain string) or injected
  MLFLOW_FLASK_SERVER_SECRET_KEY.
Server: MLFLOW_ARTIFACTS_DESTINATION (s3://...), MLFLOW_ALLOWED_HOSTS (comma-separated),
  MLFLOW_WORKERS, MLFLOW_HOST, MLFLOW_PORT, MLFLOW_AUTH_CACHE_TTL_SECONDS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = ["ServerSettings", "SettingsError", "read_settings"]


# Not a secret: the admin password MLflow 2.x shipped in its basic_auth.ini, published in its
# docs. A server still using it is refused, since anyone can log in with it.
PUBLIC_DEFAULT_ADMIN_PASSWORD = "password1234"  # noqa: S105


class SettingsError(Exception):
    """A required variable is missing or malformed, or a secret could not be read."""


@dataclass(frozen=True)
class ServerSettings:
    """Everything `serve` and `migrate` need; repr hides the secrets."""

    database_uri: str
    admin_username: str
    admin_password: str
    flask_secret_key: str
    artifacts_destination: str
    allowed_hosts: str
    workers: int
    host: str
    port: int
    auth_cache_ttl_seconds: int

    def __repr__(self) -> str:
        return (
            f"ServerSettings(database={redact_uri(self.database_uri)}, admin={self.admin_username},"
            f" artifacts={self.artifacts_destination}, hosts={self.allowed_hosts},"
            f" workers={self.workers}, bind={self.host}:{self.port})"
        )


def redact_uri(uri: str) -> str:
    """The URI with any password replaced, for log lines."""
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest:
        return uri
    creds, _, tail = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"


def _get_secret(secret_id: str) -> str:
    # boto3 honours AWS_ENDPOINT_URL(_SECRETS_MANAGER): one call reads moto locally and AWS in
    # the cloud.
    import boto3
    import botocore.exceptions

    try:
        client = boto3.client("secretsmanager")
        return str(client.get_secret_value(SecretId=secret_id)["SecretString"])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise SettingsError(f"cannot read secret {secret_id!r}: {exc}") from exc


def _secret_json(secret_id: str) -> dict[str, Any]:
    try:
        value = json.loads(_get_secret(secret_id))
    except json.JSONDecodeError:
        raise SettingsError(
            f"secret {secret_id!r} is not JSON with username and password"
        ) from None
    if not isinstance(value, dict) or not {"username", "password"} <= value.keys():
        raise SettingsError(f"secret {secret_id!r} must hold JSON with username and password")
    return value


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def _credentials(
    env: Mapping[str, str], secret_var: str, user_var: str, password_var: str
) -> tuple[str, str]:
    if env.get(secret_var):
        secret = _secret_json(env[secret_var])
        return str(secret["username"]), str(secret["password"])
    return _require(env, user_var), _require(env, password_var)


def database_uri(env: Mapping[str, str]) -> str:
    """Build the SQLAlchemy URI of the backend store from the environment."""
    if env.get("MLFLOW_DB_URI"):
        return env["MLFLOW_DB_URI"]
    engine = env.get("MLFLOW_DB_ENGINE", "mysql")
    if engine not in ("mysql", "mariadb"):
        raise SettingsError(f"MLFLOW_DB_ENGINE must be mysql or mariadb, got {engine!r}")
    host, name = _require(env, "MLFLOW_DB_HOST"), _require(env, "MLFLOW_DB_NAME")
    port = _int(env, "MLFLOW_DB_PORT", 3306)
    user, password = _credentials(
        env, "MLFLOW_DB_SECRET_ID", "MLFLOW_DB_USERNAME", "MLFLOW_DB_PASSWORD"
    )
    # MLflow knows MariaDB through the mysql dialect; PyMySQL speaks to both.
    uri = f"mysql+pymysql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{name}"
    return uri + _tls_query(env)


def _tls_query(env: Mapping[str, str]) -> str:
    """`?ssl_ca=...` when a CA bundle is configured, else nothing.

    SQLAlchemy hands it to PyMySQL as ssl={"ca": ...}, which verifies the chain and host name.
    """
    ca = env.get("MLFLOW_DB_SSL_CA", "").strip()
    if not ca:
        return ""
    if not os.path.isfile(ca):
        raise SettingsError(f"MLFLOW_DB_SSL_CA names {ca}, which is not a file")
    return f"?ssl_ca={quote(ca, safe='/')}"


def app_login(env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """MLflow's own database login for `migrate` to create, when it runs as the master.

    From MLFLOW_APP_DB_SECRET_ID or MLFLOW_APP_DB_USERNAME/PASSWORD (ECS injects these into the
    cloud's migrate task); None when neither is set (locally the kit creates the user itself).
    """
    env = os.environ if env is None else env
    if not (env.get("MLFLOW_APP_DB_SECRET_ID") or env.get("MLFLOW_APP_DB_USERNAME")):
        return None
    return _credentials(
        env, "MLFLOW_APP_DB_SECRET_ID", "MLFLOW_APP_DB_USERNAME", "MLFLOW_APP_DB_PASSWORD"
    )


def read_settings(
    env: Mapping[str, str] | None = None, *, need_server: bool = True
) -> ServerSettings:
    """Resolve the settings from `env` (default os.environ); raise SettingsError on a gap.

    With need_server=False (the `migrate` command) only the database is required.
    """
    env = os.environ if env is None else env
    uri = database_uri(env)
    if not need_server:
        return ServerSettings(uri, "", "", "", "", "", 1, "", 0, 0)
    admin_user, admin_password = _credentials(
        env, "MLFLOW_ADMIN_SECRET_ID", "MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD"
    )
    if env.get("MLFLOW_FLASK_SECRET_ID"):
        flask_key = _get_secret(env["MLFLOW_FLASK_SECRET_ID"])
    else:
        flask_key = _require(env, "MLFLOW_FLASK_SERVER_SECRET_KEY")
    if admin_password == PUBLIC_DEFAULT_ADMIN_PASSWORD:
        raise SettingsError("the admin password is MLflow's well-known default; rotate the secret")
    destination = _require(env, "MLFLOW_ARTIFACTS_DESTINATION")
    return ServerSettings(
        database_uri=uri,
        admin_username=admin_user,
        admin_password=admin_password,
        flask_secret_key=flask_key,
        artifacts_destination=destination,
        allowed_hosts=_require(env, "MLFLOW_ALLOWED_HOSTS"),
        workers=_int(env, "MLFLOW_WORKERS", 2),
        host=env.get("MLFLOW_HOST", "0.0.0.0"),
        port=_int(env, "MLFLOW_PORT", 5000),
        auth_cache_ttl_seconds=_int(env, "MLFLOW_AUTH_CACHE_TTL_SECONDS", 30),
    )
