"""The native runtime: the four services as supervised processes on 127.0.0.1, no container engine.

Order: database -> s3 -> aws -> mlflow. Each starts only after the previous one passed its real
readiness check; each is seeded after it is ready (database and user, artifact bucket, secrets).
A failing `up` stops what it started itself and leaves what was already running alone.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from mlplatform.cloud import aws
from mlplatform.config import REPO_ROOT, Environment
from mlplatform.errors import PortInUseError, SystemDependencyError
from mlplatform.local.aws_side import local_client, secret_values
from mlplatform.local.credentials import Credentials, load_or_create, write_service_files
from mlplatform.local.database_admin import (
    DatabaseServer,
    ensure_database,
    find_server,
    initialise_datadir,
    reload_tls,
    server_command,
)
from mlplatform.local.database_tls import ensure_tls, tls_files
from mlplatform.local.health import healthy, service_url
from mlplatform.local.runtimes.base import ServiceStatus, StackStatus
from mlplatform.local.services import (
    SERVICES,
    mlflow_environment,
    native_endpoints,
    s3_server_flags,
)
from mlplatform.local.supervisor import Program, Supervisor
from mlplatform.paths import StatePaths
from mlplatform.readiness import follow_log, port_open, wait_until
from mlplatform.registry.users import ensure_user
from mlplatform.reporting import Reporter
from mlplatform.toolchain import system_deps

__all__ = ["SQLITE_WARNING", "NativeRuntime"]

SQLITE_WARNING = (
    "PARITY REDUCED: no MySQL-protocol server (mariadbd/mysqld) is installed, so MLflow uses"
    " SQLite; install mariadb-server for the cloud's database behaviour"
)
_TIMEOUTS = {"database": 60.0, "s3": 60.0, "aws": 60.0, "mlflow": 180.0}


class NativeRuntime:
    """Supervised local processes, one process group each (see mlplatform.local.supervisor)."""

    name = "native"

    def __init__(self, env: Environment, paths: StatePaths) -> None:
        self.env = env
        self.paths = paths
        self.supervisor = Supervisor(paths)
        self.server: DatabaseServer | None = find_server(env.database.engine)

    # -- definition ----------------------------------------------------------------------------

    @property
    def services(self) -> list[str]:
        """The services this machine runs, in start order (no database in the SQLite fallback)."""
        return [s.name for s in SERVICES if s.name != "database" or self.server is not None]

    def warnings(self) -> list[str]:
        """Where this machine's stack differs from the cloud's, said plainly."""
        if self.server is None:
            return [SQLITE_WARNING]
        wanted = f"{self.env.database.engine} {self.env.database.version}"
        if not self.server.version.startswith(self.env.database.version) or (
            self.server.flavour != self.env.database.engine
        ):
            return [
                f"database: {wanted} is configured; this machine runs {self.server.flavour} "
                f"{self.server.version} natively (the compose runtime runs the configured image)"
            ]
        return []

    def _bin(self, name: str) -> str:
        local = Path(sys.executable).parent / name
        found = str(local) if local.exists() else shutil.which(name)
        if not found:
            raise SystemDependencyError(
                f"{name} is not installed; rerun ./kit (it installs the locked dependencies)"
            )
        return found

    def _programs(self) -> list[Program]:
        p, ports = self.paths, self.env.ports
        programs = []
        if self.server is not None:
            programs.append(
                Program(
                    "database",
                    server_command(
                        self.server,
                        p.data / "database",
                        p.socket("mysqld.sock"),
                        p.run / "mysqld.pid",
                        ports.database,
                        tls_files(p),
                    ),
                    {},
                    stop_seconds=60,
                )
            )
        programs.append(
            Program(
                "s3",
                [
                    self._bin("weed"),
                    *s3_server_flags(
                        str(p.data / "s3"),
                        "127.0.0.1",
                        "127.0.0.1",
                        ports.s3,
                        str(p.secrets / "s3.json"),
                    ),
                ],
                {},
            )
        )
        programs.append(
            Program(
                "aws",
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(ports.aws)],
                {},
            )
        )
        env = mlflow_environment(
            self.env,
            native_endpoints(self.env, str(p.secrets / "aws-credentials"), str(tls_files(p).ca)),
        )
        if self.server is None:
            for key in (
                "MLFLOW_DB_ENGINE",
                "MLFLOW_DB_HOST",
                "MLFLOW_DB_PORT",
                "MLFLOW_DB_NAME",
                "MLFLOW_DB_SECRET_ID",
                "MLFLOW_DB_SSL_CA",
            ):
                env.pop(key)
            env["MLFLOW_DB_URI"] = f"sqlite:///{p.data / 'mlflow.db'}"
        env.update(PYTHONPATH=str(REPO_ROOT), MLFLOW_AUTH_CONFIG_DIR=str(p.run))
        programs.append(
            Program("mlflow", [sys.executable, "-m", "mlflow_server", "serve", "--migrate"], env)
        )
        return programs

    # -- operations ----------------------------------------------------------------------------

    def up(self, reporter: Reporter) -> StackStatus:
        """Start every service that is not already healthy, in order, and seed it."""
        self.paths.ensure()
        if self.server is None and system_deps.can_install():
            reporter.step("installing mariadb-server with apt for the local database")
            system_deps.ensure([system_deps.DATABASE])
            self.server = find_server(self.env.database.engine)
        creds, created = load_or_create(self.paths, self.env)
        if created:
            reporter.done(f"generated credentials in {self.paths.secrets} (0600)")
        write_service_files(self.paths, creds)
        tls_renewed = ensure_tls(self.paths)[1]
        if tls_renewed:
            reporter.done(
                f"database: TLS certificate issued by the kit's CA in {self.paths.secrets}"
            )
        for warning in self.warnings():
            reporter.warn(warning)

        changed = self.supervisor.write_config(self._programs())
        started_daemon = not self.supervisor.running()
        if started_daemon:
            self.supervisor.start_daemon()
        elif changed:
            self.supervisor.reload()
        started: list[str] = []
        try:
            # Only MLflow needs the others (its user, secrets and bucket): they start together
            # and are then awaited in order, which took about 1.5 s off a warm `up`.
            launched = {
                name: self._launch(name, reporter, started)
                for name in self.services
                if name != "mlflow"
            }
            for name in self.services:
                if name not in launched:
                    launched[name] = self._launch(name, reporter, started)
                if name == "database" and tls_renewed and not launched[name]:
                    self._reload_database_tls()
                self._up_one(name, creds, reporter, launched[name])
        except BaseException:
            for name in reversed(started):
                self.supervisor.stop(name)
            if started_daemon:
                self.supervisor.shutdown()
            raise
        return self.status()

    def _launch(self, name: str, reporter: Reporter, started: list[str]) -> bool:
        """Start the service's process unless it runs already; True when it was started here."""
        if self.supervisor.state(name) == "RUNNING":
            return False
        port = next(s for s in SERVICES if s.name == name).host_port(self.env)
        if port_open(port):
            raise PortInUseError(
                f"port {port} for {name} is taken by another process; stop it or change "
                f"[{self.env.name}.ports] in environments.toml"
            )
        reporter.step(f"starting {name}")
        if (
            name == "database"
            and self.server is not None
            and initialise_datadir(
                self.server, self.paths.data / "database", self.paths.log("database")
            )
        ):
            reporter.done("database: initialised a new data directory")
        self.supervisor.start(name)
        started.append(name)
        return True

    def _up_one(self, name: str, creds: Credentials, reporter: Reporter, launched: bool) -> None:
        """Wait until the service is healthy (it was launched, or already ran), then seed it."""
        check: Callable[[], bool] = lambda: healthy(name, self.env, creds, self.paths)  # noqa: E731
        if not launched and check():
            self._seed(name, creds, reporter)
            reporter.done(f"{name} already up at {self._url(name)}")
            return
        # A database must be seeded (user created) before the app-user check can pass.
        ready = self._database_socket_ready if name == "database" else check
        seconds = wait_until(
            ready,
            service=name,
            timeout=_TIMEOUTS[name],
            log=self.paths.log(name),
            alive=lambda: self.supervisor.state(name) in ("RUNNING", "STARTING"),
        )
        self._seed(name, creds, reporter)
        if name == "database":
            wait_until(check, service=name, timeout=10, log=self.paths.log(name))
        reporter.done(f"{name} ready at {self._url(name)} ({seconds:.1f}s)")

    def _reload_database_tls(self) -> None:
        """Have the running server load the certificate just issued.

        A server keeps the certificate it started with until told. It may be restarting (its
        config changed), so its socket is awaited first.
        """
        if self.server is None:  # no database service without a server
            return
        wait_until(
            self._database_socket_ready,
            service="database",
            timeout=_TIMEOUTS["database"],
            log=self.paths.log("database"),
        )
        reload_tls(self.paths.socket("mysqld.sock"), self.server.flavour)

    def _database_socket_ready(self) -> bool:
        from mlplatform.local.database_admin import root_connection

        try:
            root_connection(self.paths.socket("mysqld.sock")).close()
            return True
        except Exception:
            return False

    def _seed(self, name: str, creds: Credentials, reporter: Reporter) -> None:
        env = self.env
        if name == "database":
            ensure_database(self.paths.socket("mysqld.sock"), creds, env.database.name)
        elif name == "s3":
            s3 = local_client("s3", env, creds)
            if aws.ensure_bucket(s3, env.bucket_name, env.region):
                reporter.done(f"s3: created bucket {env.bucket_name}")
        elif name == "aws":
            sm = local_client("secretsmanager", env, creds)
            values = secret_values(env, creds, "127.0.0.1", env.ports.database)
            changed = aws.seed_secrets(sm, values)
            if changed:
                reporter.done(f"aws: seeded {len(changed)} secrets in Secrets Manager")
        elif name == "mlflow":
            outcome = ensure_user(
                self._url("mlflow"),
                (creds.admin_username, creds.admin_password),
                (creds.client_username, creds.client_password),
            )
            if outcome != "unchanged":
                reporter.done(f"mlflow: client user {creds.client_username!r} {outcome}")

    def _url(self, name: str) -> str:
        return service_url(next(s for s in SERVICES if s.name == name), self.env)

    def down(self, reporter: Reporter, volumes: bool = False) -> list[str]:
        """Stop every service as a process group, then the supervisor; optionally delete data."""
        stopped = []
        if self.supervisor.running():
            for name in reversed(self.services):
                if self.supervisor.state(name) == "RUNNING":
                    reporter.step(f"stopping {name}")
                    self.supervisor.stop(name)
                    stopped.append(name)
                    reporter.done(f"{name} stopped")
            self.supervisor.shutdown()
        if volumes:
            # run/ holds the server's auth ini (it names the admin and database passwords).
            for folder in (self.paths.data, self.paths.secrets, self.paths.run):
                if folder.exists():
                    shutil.rmtree(folder)
            reporter.done(f"deleted data and credentials under {self.paths.root}")
        return stopped

    def status(self) -> StackStatus:
        """Supervisor state and a real health check for each service."""
        creds_file = self.paths.secrets / "credentials.json"
        creds = load_or_create(self.paths, self.env)[0] if creds_file.exists() else None
        daemon = self.supervisor.running()
        services = []
        for name in self.services:
            state = self.supervisor.state(name) if daemon else "STOPPED"
            ok = bool(creds) and state == "RUNNING" and healthy(name, self.env, creds, self.paths)  # type: ignore[arg-type]
            pid = self.supervisor.pid(name) if state == "RUNNING" else 0
            services.append(ServiceStatus(name, self._url(name), ok, state, pid))
        return StackStatus(self.name, services, self.warnings())

    def logs(self, service: str, follow: bool = False, lines: int | None = 50) -> Iterator[str]:
        """Lines of the service's log file under the state folder."""
        return follow_log(self.paths.log(service), follow, lines)
