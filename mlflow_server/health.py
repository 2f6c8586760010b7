"""`python -m mlflow_server health`: the server answers AND its database login still works.

MLflow's /health answers OK without touching the database, so a task whose database password
was rotated away (ECS injected the old one at start) stays "healthy" while every new connection
fails. This check runs where the server runs, with the same settings: GET /health on the local
port, then a connection with the credentials the server logged in with and `SELECT 1`. The ECS task
definition, the image's HEALTHCHECK and the compose file run it, so such a task is replaced by one
that starts with the current secret. It prints one line on failure (never a credential) and exits
1; it exits 0 silently when healthy.
"""

from __future__ import annotations

import configparser
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from mlflow_server.settings import SettingsError, database_uri, redact_uri

__all__ = ["check"]

# Below the ECS health-check timeout (10 s): both probes together stay within it.
TIMEOUT_SECONDS = 4


def _server(env: Mapping[str, str]) -> str | None:
    port = env.get("MLFLOW_PORT", "5000")
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:
            if answer.status == 200:
                return None
            return f"{url} answered {answer.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url} did not answer: {getattr(exc, 'reason', exc)}"


def _server_login(env: Mapping[str, str]) -> str:
    """The URI the running server logged in with: its auth ini when there is one.

    `serve` writes it (0600) into MLFLOW_AUTH_CONFIG_DIR from the credentials it resolved at
    start; reading it (not the secret again) makes a rotated-away password show here as it does
    in the server. Without the file (the server not started yet), the settings as `serve` reads
    them.
    """
    folder = env.get("MLFLOW_AUTH_CONFIG_DIR")
    ini = Path(folder) / "basic_auth.ini" if folder else None
    if ini is not None and ini.is_file():
        parser = configparser.ConfigParser()
        parser.read(ini, encoding="utf-8")
        return parser["mlflow"]["database_uri"]
    return database_uri(env)


def _database(env: Mapping[str, str]) -> str | None:
    import sqlalchemy as sa

    try:
        uri = _server_login(env)
    except (SettingsError, configparser.Error, KeyError) as exc:
        return f"database settings: {exc}"
    connect_args = {"connect_timeout": TIMEOUT_SECONDS} if uri.startswith("mysql") else {}
    engine = sa.create_engine(uri, connect_args=connect_args, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        # The driver's own message (e.g. "Access denied for user 'mlflow'"), without the URI.
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return f"database {redact_uri(uri).rpartition('@')[2]}: {reason}"
    finally:
        engine.dispose()
    return None


def check(env: Mapping[str, str] | None = None) -> str | None:
    """None when healthy, else what failed, in one line."""
    env = os.environ if env is None else env
    return _server(env) or _database(env)
