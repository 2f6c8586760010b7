"""A cloud environment, emulated beside the local stack: its MLflow server and its AWS side.

`invoke emulate --env prod` runs prod's registry the way AWS runs it on Fargate: the same
`python -m mlflow_server serve` entrypoint, its credentials read from Secrets Manager (the moto
server of the local stack, seeded here with prod's secrets), its own database on the local
database server (as RDS would hold it), and its artifacts in prod's bucket on the local S3 store
(SeaweedFS: moto keeps nothing across a restart, a registry's files must survive one).
Tasks then reach it exactly as they reach AWS: through endpoint URLs (AWS_ENDPOINT_URL for AWS,
MLPLATFORM_MLFLOW_URL_<ENV> for the registry) and credentials from Secrets Manager.
With AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_S3) set, `up` puts the AWS side on that emulator
instead, for example the one the environment's stacks were deployed to by `invoke deploy`; the
choice is recorded with the emulation, so later tasks (`invoke env --env prod`) print it.

What stays unproven without AWS: IAM policies, KMS, VPC endpoints and security groups, the ALB
and TLS in front of the server, RDS itself and ECS's secret injection (the entrypoint reads the
secrets by id here; on ECS they are injected as variables — both paths are unit-tested).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from typing import Any

import pymysql

from mlplatform.cloud import aws
from mlplatform.cloud.stack_outputs import mlflow_url_variable
from mlplatform.config import REPO_ROOT
from mlplatform.errors import PlatformError
from mlplatform.local.aws_side import secret_values
from mlplatform.local.credentials import load_or_create
from mlplatform.local.database_admin import drop_database, ensure_database
from mlplatform.local.services import Endpoints, mlflow_environment
from mlplatform.local.supervisor import Program, Supervisor
from mlplatform.paths import StatePaths
from mlplatform.readiness import http_ok, port_open, wait_until
from mlplatform.registry.users import ensure_user
from mlplatform.reporting import Reporter
from mlplatform.target import Target, resolve_targets

__all__ = ["Emulation", "running_emulations", "stop_emulations"]


class Emulation:
    """One emulated cloud environment under its own supervisor, beside the local stack."""

    def __init__(self, target: Target, local: Target) -> None:
        target.cloud_only("the local environment is the local stack; emulate a cloud one")
        self.env = target.env
        self.local_target = local
        self.local = local.env
        self.local_paths = local.paths
        self.paths = StatePaths(local.paths.root / "emulated" / target.name)
        self.supervisor = Supervisor(self.paths)

    @property
    def mlflow_url(self) -> str:
        """Where the emulated registry listens."""
        return f"http://127.0.0.1:{self.env.ports.mlflow}"

    @property
    def aws_url(self) -> str:
        """The emulator standing in for AWS (the local stack's moto server by default)."""
        return self._endpoints()["aws"]

    def database_name(self) -> str:
        """The environment's database on the shared local server."""
        return f"{self.env.name}_{self.env.database.name}"

    @property
    def s3_url(self) -> str:
        """S3 of the emulation (by default the local SeaweedFS, so buckets survive a restart)."""
        return self._endpoints()["s3"]

    def _endpoints(self) -> dict[str, str]:
        recorded = self.paths.root / "endpoints.json"
        if recorded.is_file():
            return dict(json.loads(recorded.read_text()))
        return self._requested_endpoints()

    def _requested_endpoints(self) -> dict[str, str]:
        # The same variables and precedence as boto3: a service's own endpoint, else the
        # general one. Set, they put the environment's AWS side on another emulator (for
        # example the one its stacks were deployed to); unset, the local stack's.
        general = os.environ.get("AWS_ENDPOINT_URL")
        return {
            "aws": general or f"http://127.0.0.1:{self.local.ports.aws}",
            "s3": os.environ.get("AWS_ENDPOINT_URL_S3")
            or general
            or f"http://127.0.0.1:{self.local.ports.s3}",
        }

    def _keys(self) -> tuple[str, str]:
        # SeaweedFS checks its keys; moto accepts any: the local stack's S3 pair serves both.
        creds = load_or_create(self.local_paths, self.local)[0]
        return creds.s3_access_key, creds.s3_secret_key

    def client_environment(self) -> dict[str, str]:
        """Variables that point the kit's cloud code path at this emulation."""
        access, secret = self._keys()
        return {
            mlflow_url_variable(self.env.name): self.mlflow_url,
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ENDPOINT_URL_S3": self.s3_url,
            "AWS_ACCESS_KEY_ID": access,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": self.env.region,
        }

    def _aws(self, service: str) -> Any:
        access, secret = self._keys()
        return aws.client(
            service,
            region=self.env.region,
            endpoint_url=self.s3_url if service == "s3" else self.aws_url,
            access_key=access,
            secret_key=secret,
        )

    def _program(self) -> Program:
        # The local stack's key file: SeaweedFS needs its pair, moto takes any.
        creds_file = self.local_paths.secrets / "aws-credentials"
        where = Endpoints(
            db_host="127.0.0.1",
            db_port=self.local.ports.database,
            s3_url=self.s3_url,
            aws_url=self.aws_url,
            bind_host="127.0.0.1",
            credentials_file=str(creds_file),
        )
        env = mlflow_environment(self.env, where)
        hosts = [*self.env.mlflow.allowed_hosts, "127.0.0.1", "localhost"]
        env.update(
            MLFLOW_DB_NAME=self.database_name(),
            MLFLOW_PORT=str(self.env.ports.mlflow),
            # Reached on loopback here, by its ALB host name in AWS: both must pass the check.
            MLFLOW_ALLOWED_HOSTS=",".join(hosts),
            MLFLOW_AUTH_CONFIG_DIR=str(self.paths.run),
            PYTHONPATH=str(REPO_ROOT),
        )
        return Program("mlflow", [sys.executable, "-m", "mlflow_server", "serve", "--migrate"], env)

    def up(self, reporter: Reporter) -> str:
        """Seed the environment's AWS side, start its registry; return its URL."""
        self.local_target.local_stack(services=("database", "s3", "aws"))
        self.paths.ensure()
        (self.paths.root / "endpoints.json").write_text(json.dumps(self._requested_endpoints()))
        creds, _ = load_or_create(self.paths, self.env, db_username=f"mlflow_{self.env.name}")
        ensure_database(self.local_paths.run / "mysqld.sock", creds, self.database_name())
        bucket_new = aws.ensure_bucket(self._aws("s3"), self.env.bucket_name, self.env.region)
        secrets = secret_values(
            self.env, creds, "127.0.0.1", self.local.ports.database, self.database_name()
        )
        aws.seed_secrets(self._aws("secretsmanager"), secrets)
        reporter.done(
            f"{self.env.name}: secrets seeded, bucket {self.env.bucket_name}"
            + (" created" if bucket_new else " present")
            + " in the emulator"
        )

        self.supervisor.write_config([self._program()])
        started_daemon = not self.supervisor.running()
        try:
            if started_daemon:
                self.supervisor.start_daemon()
            else:
                self.supervisor.reload()
            if self.supervisor.state("mlflow") != "RUNNING":
                if port_open(self.env.ports.mlflow):
                    raise PlatformError(
                        f"port {self.env.ports.mlflow} for {self.env.name}'s MLflow is taken; "
                        f"change [{self.env.name}.ports] mlflow in environments.toml"
                    )
                reporter.step(f"starting {self.env.name}'s MLflow (the Fargate task's entrypoint)")
                self.supervisor.start("mlflow")
            wait_until(
                lambda: http_ok(self.mlflow_url + "/health"),
                service=f"{self.env.name} mlflow",
                timeout=180,
                log=self.paths.log("mlflow"),
                alive=lambda: self.supervisor.state("mlflow") == "RUNNING",
            )
            ensure_user(
                self.mlflow_url,
                (creds.admin_username, creds.admin_password),
                (creds.client_username, creds.client_password),
            )
        except BaseException:
            if started_daemon:  # leave nothing half-started behind
                self.supervisor.shutdown()
            raise
        reporter.done(f"{self.env.name}'s MLflow at {self.mlflow_url}")
        return self.mlflow_url

    def down(self, volumes: bool = False) -> bool:
        """Stop the emulated registry; with volumes, forget its state. True if it was running."""
        was_running = self.supervisor.running()
        self.supervisor.shutdown()
        if volumes:
            # The registry's database lives on the local server: forget it with the credentials,
            # or a new admin password would meet the old admin user.
            with contextlib.suppress(OSError, pymysql.err.MySQLError):
                drop_database(
                    self.local_paths.run / "mysqld.sock",
                    self.database_name(),
                    f"mlflow_{self.env.name}",
                )
            if self.paths.root.exists():
                shutil.rmtree(self.paths.root)
        return was_running


def running_emulations(local_paths: StatePaths) -> list[str]:
    """Names of the environments with emulation state under the local stack's folder."""
    root = local_paths.root / "emulated"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def stop_emulations(local: Target, reporter: Reporter, volumes: bool = False) -> list[str]:
    """Stop every emulation beside the local stack (before the stack itself goes down)."""
    stopped = []
    for emulated in resolve_targets(*running_emulations(local.paths), paths=local.paths):
        if Emulation(emulated, local).down(volumes=volumes):
            reporter.done(f"emulated {emulated.name} stopped")
            stopped.append(emulated.name)
    return stopped
