"""The compose runtime: compose/docker-compose.yml on Docker or Podman.

The same four services as the native runtime, rendered from the same definition. Start order
mirrors the native one: database, s3 and aws first (compose waits for their healthchecks), then
the kit seeds the bucket and the emulator's secrets through the published ports, then MLflow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence

from mlplatform.cloud import aws
from mlplatform.config import REPO_ROOT, Environment, load_environment
from mlplatform.errors import PlatformError, RuntimeSelectionError, ServiceStartError
from mlplatform.local.aws_side import local_client, secret_values
from mlplatform.local.compose_file import COMPOSE_PATH, PORT_VARIABLES, render
from mlplatform.local.credentials import load_or_create, write_service_files
from mlplatform.local.database_tls import ensure_tls, share_tls_with_containers
from mlplatform.local.health import healthy, service_url
from mlplatform.local.runtimes.base import ServiceStatus, StackStatus
from mlplatform.local.services import SERVICES
from mlplatform.paths import StatePaths
from mlplatform.registry.users import ensure_user
from mlplatform.reporting import Reporter

__all__ = ["ComposeRuntime", "compose_cli"]

PROJECT = "mlplatform"
Runner = Callable[..., subprocess.CompletedProcess[str]]


def compose_cli() -> list[str] | None:
    """The compose command whose engine answers: docker compose, docker-compose, podman compose."""
    candidates = [["docker", "compose"], ["docker-compose"], ["podman", "compose"]]
    for cmd in candidates:
        engine = "podman" if cmd[0] == "podman" else "docker"
        if not shutil.which(cmd[0]) or not shutil.which(engine):
            continue
        info = subprocess.run([engine, "info"], capture_output=True, check=False, timeout=30)
        if info.returncode != 0:
            continue
        # The engine answering is not enough: podman 4.3 has no `podman compose`, a podman-docker
        # `docker` has no `docker compose`, and Compose v1 has no `up --wait`.
        version = subprocess.run(
            [*cmd, "version", "--short"], capture_output=True, text=True, check=False, timeout=30
        )
        if version.returncode == 0 and not version.stdout.strip().lstrip("v").startswith("1."):
            return cmd
    return None


class ComposeRuntime:
    """Drives `compose -p mlplatform -f compose/docker-compose.yml ...`."""

    name = "compose"

    def __init__(
        self,
        env: Environment,
        paths: StatePaths,
        cli: Sequence[str] | None = None,
        run: Runner = subprocess.run,
    ) -> None:
        self.env = env
        self.paths = paths
        self._cli = list(cli) if cli is not None else None
        self._run = run

    @property
    def cli(self) -> list[str]:
        """The compose command; RuntimeSelectionError when no engine answers."""
        if self._cli is None:
            self._cli = compose_cli()
        if self._cli is None:
            raise RuntimeSelectionError(
                "--runtime compose needs Docker or Podman with a running engine and none answers "
                "here; use --runtime native"
            )
        return self._cli

    def environment(self) -> dict[str, str]:
        """Variables the compose file reads: host ports and the secrets folder."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
        for service in SERVICES:
            env[PORT_VARIABLES[service.name]] = str(service.host_port(self.env))
        env["MLP_SECRETS_DIR"] = str(self.paths.secrets)
        return env

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one compose command against the kit's file and project name."""
        cmd = [*self.cli, "-p", PROJECT, "-f", str(COMPOSE_PATH), *args]
        result = self._run(cmd, env=self.environment(), capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            last = (result.stderr or result.stdout or "no output").strip().splitlines()[-1]
            raise ServiceStartError(
                f"{' '.join(cmd[:2])} {args[0]} failed: {last}", result.stderr or ""
            )
        return result

    def up(self, reporter: Reporter) -> StackStatus:
        """Start the stack in two phases around the seeding of bucket and secrets."""
        # The file is rendered from the repository's environments.toml. Host ports reach compose
        # as MLP_PORT_* variables, so a config that differs only in [local.ports] runs it as is.
        committed = load_environment("local", REPO_ROOT / "environments.toml")
        if COMPOSE_PATH.read_text(encoding="utf-8") != render(committed):
            raise PlatformError(f"{COMPOSE_PATH} is stale; run `./kit compose-file`")
        if self.env.model_copy(update={"ports": committed.ports}) != committed:
            raise PlatformError(
                "the compose runtime runs compose/docker-compose.yml, rendered from the "
                "repository's environments.toml: only [local.ports] may differ in MLPLATFORM_CONFIG"
            )
        self.cli  # noqa: B018 (fails here, before any state is written, when no engine answers)
        self.paths.ensure()
        creds, _ = load_or_create(self.paths, self.env)
        write_service_files(self.paths, creds)
        tls, renewed = ensure_tls(self.paths)
        share_tls_with_containers(self.paths, tls)
        reload_database = renewed and self._states().get("database") == "RUNNING"
        reporter.step("starting database, s3 and aws containers")
        try:
            self.compose("up", "-d", "--wait", "database", "s3", "aws")
            if reload_database:
                # A running server keeps the certificate it started with; a restart mounts the
                # new copies.
                self.compose("restart", "database")
                self.compose("up", "-d", "--wait", "--no-deps", "database")
            reporter.done("database, s3 and aws healthy")
            s3 = local_client("s3", self.env, creds)
            aws.ensure_bucket(s3, self.env.bucket_name, self.env.region)
            sm = local_client("secretsmanager", self.env, creds)
            aws.seed_secrets(sm, secret_values(self.env, creds, "database", 3306))
            reporter.done("bucket and secrets seeded")
            reporter.step("building (if needed) and starting mlflow")
            # --no-deps: the first phase already waited for the dependencies, and converging them
            # again may recreate them (Podman 4.3 reports a network's name where Compose compares
            # its id): moto would lose the secrets just seeded.
            self.compose("up", "-d", "--wait", "--no-deps", "mlflow")
            ensure_user(
                self._url("mlflow"),
                (creds.admin_username, creds.admin_password),
                (creds.client_username, creds.client_password),
            )
            reporter.done(f"mlflow ready at {self._url('mlflow')}")
        except BaseException:
            self.compose("stop", check=False)
            raise
        return self.status()

    def _url(self, name: str) -> str:
        return service_url(next(s for s in SERVICES if s.name == name), self.env)

    def down(self, reporter: Reporter, volumes: bool = False) -> list[str]:
        """`compose down` (with --volumes to delete the named volumes)."""
        running = [s.name for s in self.status().services if s.state == "RUNNING"]
        reporter.step("stopping containers")
        self.compose("down", *(["--volumes"] if volumes else []))
        reporter.done("containers stopped")
        return running

    def _states(self) -> dict[str, str]:
        """Each service's container state from `compose ps`: RUNNING or STOPPED."""
        result = self.compose("ps", "--format", "json", check=False)
        states: dict[str, str] = {}
        for line in (result.stdout or "").splitlines():
            line = line.strip()
            if not line:
                continue
            items = json.loads(line)
            for item in items if isinstance(items, list) else [items]:
                running = str(item.get("State", "")).lower() == "running"
                states[str(item.get("Service"))] = "RUNNING" if running else "STOPPED"
        return states

    def status(self) -> StackStatus:
        """Container state from `compose ps`, health from the same checks as native."""
        states = self._states()
        creds_file = self.paths.secrets / "credentials.json"
        creds = load_or_create(self.paths, self.env)[0] if creds_file.exists() else None
        services = []
        for s in SERVICES:
            state = states.get(s.name, "STOPPED")
            ok = (
                creds is not None
                and state == "RUNNING"
                and healthy(s.name, self.env, creds, self.paths)
            )
            services.append(ServiceStatus(s.name, self._url(s.name), ok, state))
        return StackStatus(self.name, services, [])

    def logs(self, service: str, follow: bool = False, lines: int | None = 50) -> Iterator[str]:
        """`compose logs` of one service, streamed."""
        cmd = [
            *self.cli,
            "-p",
            PROJECT,
            "-f",
            str(COMPOSE_PATH),
            "logs",
            "--no-color",
            "--tail",
            "all" if lines is None else str(lines),
            *(["--follow"] if follow else []),
            service,
        ]
        with subprocess.Popen(cmd, env=self.environment(), stdout=subprocess.PIPE, text=True) as p:
            assert p.stdout is not None
            for line in p.stdout:
                yield line.rstrip("\n")
