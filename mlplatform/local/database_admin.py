"""Local database server: data-dir initialisation and the MLflow database and user.

RDS creates the database and master user from its generated secret; locally the kit does the same
through the server's unix socket as the database's root (socket auth, so no root password is ever
passed around for the native runtime).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pymysql

from mlplatform.errors import ServiceStartError
from mlplatform.local.credentials import Credentials
from mlplatform.local.database_tls import DatabaseTls
from mlplatform.local.services import DATABASE_SERVER_FLAGS, database_tls_flags

__all__ = [
    "DatabaseServer",
    "ensure_database",
    "find_server",
    "initialise_datadir",
    "reload_tls",
]


@dataclass(frozen=True)
class DatabaseServer:
    """An installed MySQL-protocol server binary."""

    flavour: str  # "mariadb" or "mysql"
    version: str
    binary: str


def _version(binary: str) -> tuple[str, str]:
    """(flavour, version) from `--version`, e.g. ("mariadb", "10.11.19")."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    flavour = "mariadb" if "mariadb" in out.lower() else "mysql"
    for token in out.replace("-", " ").split():
        if token[:1].isdigit() and token.count(".") >= 1:
            return flavour, token
    return flavour, "unknown"


def find_server(preferred: str) -> DatabaseServer | None:
    """The installed server binary, the configured engine's own first; None when there is none."""
    candidates = {"mariadb": ["mariadbd"], "mysql": ["mysqld"]}
    order = candidates[preferred] + [b for k, v in candidates.items() if k != preferred for b in v]
    for name in order:
        path = shutil.which(name) or (
            f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
        )
        if path:
            return DatabaseServer(*_version(path), binary=path)
    return None


def server_command(
    server: DatabaseServer, datadir: Path, socket: Path, pidfile: Path, port: int, tls: DatabaseTls
) -> list[str]:
    """The argv that runs the server on loopback, private data dir and socket, TLS required."""
    return [
        server.binary,
        "--no-defaults",
        f"--datadir={datadir}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={socket}",
        f"--pid-file={pidfile}",
        "--skip-name-resolve",
        *DATABASE_SERVER_FLAGS,
        *database_tls_flags(str(tls.ca), str(tls.cert), str(tls.key)),
        *_run_as(),
    ]


def initialise_datadir(server: DatabaseServer, datadir: Path, log: Path) -> bool:
    """Create the system tables in an empty data dir; return False if it was already set up."""
    if (datadir / "mysql").is_dir():
        return False
    datadir.mkdir(parents=True, exist_ok=True)
    if server.flavour == "mariadb":
        installer = shutil.which("mariadb-install-db") or "mariadb-install-db"
        cmd = [
            installer,
            "--no-defaults",
            f"--datadir={datadir}",
            *_run_as(),
            "--auth-root-authentication-method=socket",
            # The OS user running the kit administers the server through the socket; as root
            # that is root, otherwise an account of the same name is made for it.
            f"--auth-root-socket-user={_os_user()}",
            "--skip-test-db",
        ]
    else:
        cmd = [
            server.binary,
            "--no-defaults",
            "--initialize-insecure",
            f"--datadir={datadir}",
            *_run_as(),
        ]
    with open(log, "ab") as out:
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        shutil.rmtree(datadir, ignore_errors=True)
        raise ServiceStartError(f"database initialisation failed; see {log}")
    return True


def _os_user() -> str:
    return getpass.getuser()


def _run_as() -> list[str]:
    # mariadbd/mysqld refuse to run as root unless told to; as anyone else they run as that user.
    return ["--user=root"] if os.geteuid() == 0 else []


def root_connection(socket_path: Path) -> pymysql.connections.Connection:
    """An administrator's connection over the server's unix socket (socket authentication)."""
    try:
        return pymysql.connect(unix_socket=str(socket_path), user=_os_user(), connect_timeout=2)
    except pymysql.err.OperationalError:
        if _os_user() == "root":
            raise
        # mysqld --initialize-insecure makes only root (no password), not the OS user's account.
        return pymysql.connect(unix_socket=str(socket_path), user="root", connect_timeout=2)


def ensure_database(socket_path: Path, creds: Credentials, name: str) -> None:
    """Create the MLflow database and its user (idempotent; resets the password to the secret's)."""
    with root_connection(socket_path) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        cur.execute(
            "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s",
            (creds.db_username, creds.db_password),
        )
        cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (creds.db_username, creds.db_password))
        cur.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@'%%'", (creds.db_username,))
        conn.commit()


def reload_tls(socket_path: Path, flavour: str) -> None:
    """Make a running server use the certificate now on disk (new connections only)."""
    statement = "FLUSH SSL" if flavour == "mariadb" else "ALTER INSTANCE RELOAD TLS"
    with root_connection(socket_path) as conn, conn.cursor() as cur:
        cur.execute(statement)


def drop_database(socket_path: Path, name: str, user: str) -> None:
    """Drop a database and its user (an emulated environment forgetting its state)."""
    with root_connection(socket_path) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
        conn.commit()
