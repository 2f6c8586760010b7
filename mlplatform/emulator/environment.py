"""A cloud environment, emulated beside the local stack: its MLflow server and its AWS side.

`invoke emulate --env prod` runs prod's registry the way AWS runs it on Fargate: the same
`python -m mlflow_server serve` entrypoint, its credentials read from Secrets Manager (the moto
server of the local stack, seeded here with prod's secrets), its own database on the local
database server (as RDS would hold it), and its artifacts in prod's bucket on the local S3 store
(SeaweedFS: moto keeps nothing across a restart, a registry's files must survive one).
Tasks then reach it exactly as they reach AWS: through endpoint URLs (AWS_ENDPOINT_URL for AWS,
MLPLATFORM_MLFLOW_URL_<ENV> for the registry) and credentials from Secrets Manager.
With AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_S3) set, `up` puts the AWS side on that emulator
instead; the choice is recorded with the emulation, so later tasks (`invoke env --env prod`)
print it.

With --account, the environment gets an AWS account of its own (account.py: the kit's strict
AWS server, CDK-bootstrapped, with a certificate for its domain), empty until `invoke deploy`
creates its stacks. The registry then runs as its Fargate service would: its task
(registry_task.py) waits until the service is given an image, takes the secrets and bucket the
stacks created, and points the database secret at the local server, which stands in for RDS.

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
from collections.abc import Callable
from typing import Any

import pymysql

from mlplatform.cloud import aws
from mlplatform.cloud.stack_outputs import mlflow_url_variable
from mlplatform.config import REPO_ROOT, config_path
from mlplatform.emulator.account import (
    account_program,
    ensure_bootstrapped,
    ensure_certificate,
    finish_one_off_tasks,
)
from mlplatform.errors import PlatformError
from mlplatform.local.aws_side import secret_values
from mlplatform.local.credentials import load_or_create
from mlplatform.local.database_admin import drop_database, ensure_database
from mlplatform.local.database_tls import tls_files
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
        return str(self._endpoints()["aws"])

    @property
    def _db_user(self) -> str:
        return f"mlflow_{self.env.name}"

    def database_name(self) -> str:
        """The environment's database on the shared local server."""
        return f"{self.env.name}_{self.env.database.name}"

    @property
    def s3_url(self) -> str:
        """S3 of the emulation (by default the local SeaweedFS, so buckets survive a restart)."""
        return str(self._endpoints()["s3"])

    @property
    def has_account(self) -> bool:
        """Whether the environment runs in an emulated account of its own (`--account`)."""
        return bool(self._endpoints().get("account"))

    def _endpoints(self) -> dict[str, Any]:
        recorded = self.paths.root / "endpoints.json"
        if recorded.is_file():
            return dict(json.loads(recorded.read_text()))
        return self._requested_endpoints(account=False)

    def _requested_endpoints(self, account: bool) -> dict[str, Any]:
        if account:
            # "localhost", not 127.0.0.1: moto finds the bucket of a CloudFormation TemplateURL
            # only in a path-style URL on localhost, which the CDK CLI builds from this.
            own = f"http://localhost:{self.env.ports.aws}"
            return {"aws": own, "s3": own, "account": True}
        # The same variables and precedence as boto3: a service's own endpoint, else the
        # general one. Set, they put the environment's AWS side on another emulator; unset,
        # the local stack's.
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
            "AWS_REGION": self.env.region,
            # The CDK CLI caches the account it finds per access key under CDK_HOME: the
            # emulation's own folder, so no other account's answer is ever reused.
            **(
                {"CDK_HOME": str(self.paths.root / "cdk-home"), "CDK_DISABLE_VERSION_CHECK": "1"}
                if self.has_account
                else {}
            ),
        }

    def aws_client(self, service: str) -> Any:
        """A boto3 client of the emulated AWS side (S3 on its own endpoint)."""
        access, secret = self._keys()
        return aws.client(
            service,
            region=self.env.region,
            endpoint_url=self.s3_url if service == "s3" else self.aws_url,
            access_key=access,
            secret_key=secret,
        )

    def registry_program(self) -> Program:
        """The registry's server process: the Fargate task's entrypoint, `mlflow_server serve`."""
        # The local stack's key file: SeaweedFS needs its pair, moto takes any.
        creds_file = self.local_paths.secrets / "aws-credentials"
        where = Endpoints(
            db_host="127.0.0.1",
            db_port=self.local.ports.database,
            s3_url=self.s3_url,
            aws_url=self.aws_url,
            bind_host="127.0.0.1",
            credentials_file=str(creds_file),
            # RDS's stand-in is the local server: its CA, where the image has RDS's bundle.
            db_ca_file=str(tls_files(self.local_paths).ca),
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

    def prepare_registry(self) -> bool:
        """The registry's database on the local server, its secrets pointing there, its bucket.

        In an account of its own the stacks created the secrets and the bucket: the secrets
        are overwritten to name the local database server (RDS's stand-in). True if the
        bucket was created here.
        """
        creds = load_or_create(self.paths, self.env, db_username=self._db_user)[0]
        ensure_database(self.local_paths.socket("mysqld.sock"), creds, self.database_name())
        bucket_new = aws.ensure_bucket(self.aws_client("s3"), self.env.bucket_name, self.env.region)
        secrets = secret_values(
            self.env, creds, "127.0.0.1", self.local.ports.database, self.database_name()
        )
        aws.seed_secrets(self.aws_client("secretsmanager"), secrets)
        return bucket_new

    def up(self, reporter: Reporter, account: bool = False) -> str:
        """Seed the environment's AWS side, start its registry; return its URL.

        With `account`, the environment's own emulated account instead (see the module's
        docstring): its registry starts once `invoke deploy` has given the service an image.
        """
        # An account stays until `--down`: the registry now lives on it.
        account = account or (self.has_account and self.supervisor.running())
        if account and self.env.ports.aws in self.local.ports.model_dump().values():
            raise PlatformError(
                f"[{self.env.name}.ports] aws = {self.env.ports.aws} is a port of the local "
                f"stack; give {self.env.name}'s emulated account a port of its own"
            )
        self.local_target.local_stack(services=("database", "s3", "aws"))
        self.paths.ensure()
        (self.paths.root / "endpoints.json").write_text(
            json.dumps(self._requested_endpoints(account))
        )
        if not account:
            bucket_new = self.prepare_registry()
            reporter.done(
                f"{self.env.name}: secrets seeded, bucket {self.env.bucket_name}"
                + (" created" if bucket_new else " present")
                + " in the emulator"
            )
        programs = [self._account_program(), self._task_program()] if account else []
        self.supervisor.write_config(programs or [self.registry_program()])
        started_daemon = not self.supervisor.running()
        try:
            if started_daemon:
                self.supervisor.start_daemon()
            else:
                self.supervisor.reload()
            if account:
                self._account_up(reporter)
                return self.mlflow_url
            self._start(
                "mlflow",
                "MLflow",
                lambda: http_ok(self.mlflow_url + "/health"),
                timeout=180,
                reporter=reporter,
            )
            creds = load_or_create(self.paths, self.env, db_username=self._db_user)[0]
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

    def _start(
        self,
        program: str,
        what: str,
        ready: Callable[[], bool],
        *,
        timeout: float,
        reporter: Reporter,
    ) -> None:
        """Start `program` (on its configured port) unless it runs; wait until `ready`."""
        port = getattr(self.env.ports, program)
        if self.supervisor.state(program) != "RUNNING":
            if port_open(port):
                raise PlatformError(
                    f"port {port} for {self.env.name}'s {what} is taken; "
                    f"change [{self.env.name}.ports] {program} in environments.toml"
                )
            reporter.step(f"starting {self.env.name}'s {what}")
            self.supervisor.start(program)
        wait_until(
            ready,
            service=f"{self.env.name}'s {what}",
            timeout=timeout,
            log=self.paths.log(program),
            alive=lambda: self.supervisor.state(program) == "RUNNING",
        )

    def _account_program(self) -> Program:
        return account_program(self.env, self.env.ports.aws, self.paths.root)

    def _task_program(self) -> Program:
        # The kit's own configuration and state folder: the task resolves this emulation again.
        env = {
            "MLPLATFORM_CONFIG": str(config_path()),
            "MLPLATFORM_HOME": str(self.local_paths.root),
            "PYTHONPATH": str(REPO_ROOT),
        }
        command = [sys.executable, "-m", "mlplatform.emulator.registry_task", self.env.name]
        return Program("mlflow", command, env)

    def _account_up(self, reporter: Reporter) -> None:
        self._start(
            "aws",
            f"emulated AWS account {self.env.account}",
            lambda: port_open(self.env.ports.aws),
            timeout=60,
            reporter=reporter,
        )
        finish_one_off_tasks(self.aws_url)
        variables = self.client_environment()
        if ensure_bootstrapped(self.env, self.aws_client("cloudformation"), variables, reporter):
            reporter.done(f"aws://{self.env.account}/{self.env.region} bootstrapped")
        domain = self.env.mlflow.domain_name
        if domain:
            arn, new = ensure_certificate(self.aws_client("acm"), domain)
            reporter.done(f"certificate for {domain} {'issued' if new else 'present'}: {arn}")
        if self.supervisor.state("mlflow") != "RUNNING":
            self.supervisor.start("mlflow")
        reporter.done(
            f"{self.env.name}'s account at {self.aws_url}; its MLflow starts at {self.mlflow_url} "
            "when `invoke deploy` gives the service an image, as Fargate would"
        )

    def down(self, volumes: bool = False) -> bool:
        """Stop the emulated registry; with volumes, forget its state. True if it was running."""
        was_running = self.supervisor.running()
        self.supervisor.shutdown()
        if volumes:
            # The registry's database lives on the local server: forget it with the credentials,
            # or a new admin password would meet the old admin user.
            with contextlib.suppress(OSError, pymysql.err.MySQLError):
                drop_database(
                    self.local_paths.socket("mysqld.sock"),
                    self.database_name(),
                    self._db_user,
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
