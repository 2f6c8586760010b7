"""Start `mlflow server` with the basic-auth app, configured entirely from ServerSettings."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from mlflow_server.settings import ServerSettings

__all__ = [
    "UVICORN_OPTS",
    "auth_ini",
    "server_command",
    "server_environment",
    "write_auth_config",
]

# uvicorn's default HTTP parser (h11) answers a request on a kept-alive connection ~45 ms late
# (small writes meet delayed ACKs), and MLflow's client keeps its connections alive: every
# call paid it. httptools removes the floor (docs/performance.md, `python bench/tracking.py`);
# uvloop, uvicorn's faster event loop, was not measured apart from it.
UVICORN_OPTS = "--http httptools --loop uvloop"

# Variables that carry credentials into this process; the server gets them through the 0600 ini
# file instead, so they are dropped from its environment.
_CREDENTIAL_VARS = (
    "MLFLOW_DB_URI",
    "MLFLOW_DB_USERNAME",
    "MLFLOW_DB_PASSWORD",
    "MLFLOW_AUTH_ADMIN_USERNAME",
    "MLFLOW_AUTH_ADMIN_PASSWORD",
)


def auth_ini(settings: ServerSettings) -> str:
    """The basic-auth ini text; configparser needs `%` doubled in values."""
    uri = settings.database_uri.replace("%", "%%")
    password = settings.admin_password.replace("%", "%%")
    return (
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = {uri}\n"
        f"admin_username = {settings.admin_username}\n"
        f"admin_password = {password}\n"
        "authorization_function = mlflow_server.audit:authenticate_request\n"
        "grant_default_workspace_access = false\n"
        f"auth_cache_ttl_seconds = {settings.auth_cache_ttl_seconds}\n"
    )


def write_auth_config(settings: ServerSettings, directory: str | None = None) -> Path:
    """Write the auth ini (mode 0600) into `directory` or a fresh private temp dir."""
    folder = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="mlflow-auth-"))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "basic_auth.ini"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(auth_ini(settings))
    os.chmod(path, 0o600)
    return path


def expand_allowed_hosts(hosts: str) -> str:
    """Let each configured host name match with any port too.

    MLflow matches the whole Host header (fnmatch), which carries the port for anything but 80 and
    443: `localhost` alone would refuse `localhost:5000`. DNS-rebinding protection rests on the
    name.
    """
    out: list[str] = []
    for host in (h.strip() for h in hosts.split(",") if h.strip()):
        out.append(host)
        if ":" not in host and "*" not in host:
            out.append(f"{host}:*")
    return ",".join(out)


def server_command(settings: ServerSettings) -> list[str]:
    """The `mlflow server` argv: no credential ever appears in it."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--app-name",
        "basic-auth",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(settings.workers),
        "--serve-artifacts",
        "--artifacts-destination",
        settings.artifacts_destination,
        "--allowed-hosts",
        expand_allowed_hosts(settings.allowed_hosts),
        "--uvicorn-opts",
        UVICORN_OPTS,
    ]


def server_environment(settings: ServerSettings, auth_config: Path) -> dict[str, str]:
    """The server's environment: store URI and keys by variable, job execution off."""
    env = {k: v for k, v in os.environ.items() if k not in _CREDENTIAL_VARS}
    env.update(
        MLFLOW_BACKEND_STORE_URI=settings.database_uri,
        MLFLOW_AUTH_CONFIG_PATH=str(auth_config),
        MLFLOW_FLASK_SERVER_SECRET_KEY=settings.flask_secret_key,
        # Job execution triples the server's memory and the kit runs no MLflow jobs.
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    return env
