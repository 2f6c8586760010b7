"""A Fargate task definition running the mlflow_server image with one of its commands."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.nag import acknowledge
from mlplatform.names import MLFLOW_PORT

__all__ = ["HEALTH_CHECK", "MlflowSecrets", "MlflowTask"]

# The ALB's /health never touches the database: a task whose injected password was rotated away
# would stay in service. This check logs in as the server did (mlflow_server/health.py); an
# essential container that fails it is replaced by ECS, and the new task gets the current secret.
HEALTH_CHECK = ecs.HealthCheck(
    command=["CMD", "python", "-m", "mlflow_server", "health"],
    interval=cdk.Duration.seconds(30),
    timeout=cdk.Duration.seconds(10),
    retries=3,
    start_period=cdk.Duration.seconds(120),
)


@dataclass(frozen=True)
class MlflowSecrets:
    """The secrets the container contract injects (never plain environment values)."""

    database: secretsmanager.ISecret  # MLflow's login, RDS-shaped JSON {username, password, ...}
    master: secretsmanager.ISecret  # the RDS master login: the migrate task's only
    admin: secretsmanager.ISecret  # JSON {username, password}
    flask_key: secretsmanager.ISecret  # plain string

    def as_container_secrets(self, command: str) -> dict[str, ecs.Secret]:
        """ECS ``secrets`` entries of ``command``, resolved at task start by the execution role.

        ``serve`` logs in to the database as MLflow's own user and gets the MLflow credentials;
        ``migrate`` logs in as the master, to create MLflow's user (MLFLOW_APP_DB_*) and migrate,
        and gets nothing else. Each entry also grants the task's execution role read access to
        that secret, so neither task's role can read the other's.
        """

        def login(secret: secretsmanager.ISecret, prefix: str) -> dict[str, ecs.Secret]:
            return {
                f"{prefix}_USERNAME": ecs.Secret.from_secrets_manager(secret, "username"),
                f"{prefix}_PASSWORD": ecs.Secret.from_secrets_manager(secret, "password"),
            }

        if command == "migrate":
            return login(self.master, "MLFLOW_DB") | login(self.database, "MLFLOW_APP_DB")
        return login(self.database, "MLFLOW_DB") | {
            "MLFLOW_AUTH_ADMIN_USERNAME": ecs.Secret.from_secrets_manager(self.admin, "username"),
            "MLFLOW_AUTH_ADMIN_PASSWORD": ecs.Secret.from_secrets_manager(self.admin, "password"),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": ecs.Secret.from_secrets_manager(self.flask_key),
        }


class MlflowTask(Construct):
    """``python -m mlflow_server <command>`` as a Fargate task definition.

    The image is referenced by digest, so the task runs exactly the bytes that were tested and
    neither synth nor deploy needs Docker. Exposes ``task_definition`` and ``container``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        family: str,
        command: str,
        repository: ecr.IRepository,
        image_digest: str,
        cpu: int,
        memory_mib: int,
        environment: Mapping[str, str],
        secrets: MlflowSecrets,
        log_group: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        self.task_definition = self._task_definition(family, cpu, memory_mib)
        self.container = self._container(
            family, command, repository, image_digest, environment, secrets, log_group
        )

    def _task_definition(self, family: str, cpu: int, memory_mib: int) -> ecs.FargateTaskDefinition:
        task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=family,
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        acknowledge(
            task_definition,
            "AwsSolutions-ECS2",
            f"{family}: the plain environment holds only non-secret settings (DB host, port, "
            "artifact URI, allowed hosts, workers); every credential is an ECS secret.",
        )
        return task_definition

    def _container(
        self,
        family: str,
        command: str,
        repository: ecr.IRepository,
        image_digest: str,
        environment: Mapping[str, str],
        secrets: MlflowSecrets,
        log_group: logs.ILogGroup,
    ) -> ecs.ContainerDefinition:
        container = self.task_definition.add_container(
            "mlflow",
            # from_ecr_repository with a "sha256:..." value renders repo@sha256:..., not :tag.
            image=ecs.ContainerImage.from_ecr_repository(repository, image_digest),
            command=[command],
            environment=dict(environment),
            secrets=secrets.as_container_secrets(command),
            logging=ecs.LogDrivers.aws_logs(stream_prefix=command, log_group=log_group),
            essential=True,
            stop_timeout=cdk.Duration.seconds(30),
            health_check=HEALTH_CHECK if command == "serve" else None,
        )
        if command == "serve":
            container.add_port_mappings(
                ecs.PortMapping(container_port=MLFLOW_PORT, protocol=ecs.Protocol.TCP)
            )
        # The image pull and the secrets above gave the task definition its execution role.
        acknowledge(
            self.task_definition.obtain_execution_role(),
            "AwsSolutions-IAM5[Resource::*]",
            f"{family} execution role: the '*' is ecr:GetAuthorizationToken, which has no "
            "resource-level form; image pulls and secret reads are scoped to their ARNs.",
        )
        return container
