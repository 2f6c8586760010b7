"""The CDK app: wires the five stacks of each environment. Run by ``mlplatform.release.cdk_cli``.

    app = build_app(load_environments(), cdk.App(context={"mlflow_image_digest": "sha256:..."}))

Context: ``env`` (build only that environment), ``mlflow_image_digest``, ``certificate_arn``,
``mlflow_service_image_digest``, ``training_image_digests``, ``serving_image_digests`` (set by
``invoke deploy``: see mlplatform.release.cdk_context).
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.stacks.data import DataStack
from infra.stacks.mlflow_service import MlflowServiceStack
from infra.stacks.monitoring import MonitoringStack
from infra.stacks.network import NetworkStack
from infra.stacks.sagemaker import SageMakerStack
from mlplatform.config import Environment, load_environments
from mlplatform.errors import ConfigError
from mlplatform.names import stack_name
from mlplatform.release.cdk_context import from_context, resolve
from mlplatform.roster import Roster, load_roster

__all__ = ["FEATURE_FLAGS", "EnvironmentStacks", "build_app", "build_environment"]

# CDK feature flags the stacks rely on, set in code so tests and `cdk synth` build the same
# templates without depending on a cdk.json being found.
FEATURE_FLAGS: dict[str, object] = {
    # Grant log delivery through a bucket policy, not the legacy ACL (ACLs are disabled here).
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-s3:createDefaultLoggingPolicy": True,
    # Merge IAM statements so policies stay under size limits and are easier to review.
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/aws-ecs:arnFormatIncludesClusterName": True,
    "@aws-cdk/core:target-partitions": ["aws"],
    # Keep today's behaviour explicitly: an export cannot be removed while a stack imports it.
    "@aws-cdk/core:defaultCrossStackReferences": "strong",
}


class EnvironmentStacks:
    """The five stacks of one environment, for tests and callers that need them by role."""

    def __init__(self, app: cdk.App, settings: Environment, roster: Roster | None = None) -> None:
        aws_env = cdk.Environment(account=settings.account, region=settings.region)
        # Stack-level tags: CloudFormation propagates them to every resource that takes tags,
        # so templates stay short (and moto, which mis-parses KMS key tags, can deploy them).
        tags = {"mlplatform:environment": settings.name, "mlplatform:prefix": settings.name_prefix}

        def common(part: str, description: str) -> dict[str, object]:
            return {
                "stack_name": stack_name(settings, part),
                "env": aws_env,
                "description": description,
                "tags": tags,
            }

        self.settings = settings
        # Each team's models that this environment configures: one training role per team.
        teams = {
            name: [m for m in team.models if m in settings.models]
            for name, team in (roster.teams if roster else {}).items()
        }
        teams = {name: models for name, models in teams.items() if models}
        self.network = NetworkStack(
            app,
            stack_name(settings, "network"),
            settings=settings,
            **common("network", "MLflow platform: VPC"),
        )
        vpc, subnets = self.network.vpc, self.network.private_subnets
        self.data = DataStack(
            app,
            stack_name(settings, "data"),
            settings=settings,
            vpc=vpc,
            private_subnets=subnets,
            endpoint_security_group=self.network.endpoint_security_group,
            # The stateful stack cannot be deleted by accident where the database cannot either.
            termination_protection=settings.database.deletion_protection,
            **common("data", "MLflow platform: RDS database and artifact bucket"),
        )
        self.mlflow = MlflowServiceStack(
            app,
            stack_name(settings, "mlflow"),
            settings=settings,
            vpc=vpc,
            private_subnets=subnets,
            database=self.data.database,
            database_login=self.data.mlflow_login,
            bucket=self.data.bucket,
            key=self.data.key,
            **common("mlflow", "MLflow platform: MLflow tracking server on Fargate"),
        )
        self.sagemaker = SageMakerStack(
            app,
            stack_name(settings, "sagemaker"),
            settings=settings,
            vpc=vpc,
            bucket=self.data.bucket,
            key=self.data.key,
            repositories=self.mlflow.repositories,
            client_secret=self.mlflow.client_secret,
            alb_security_group=self.mlflow.balancer.security_group,
            alb_ports=self.mlflow.balancer.ports,
            teams=teams,
            **common("sagemaker", "MLflow platform: SageMaker execution role and network"),
        )
        self.monitoring = MonitoringStack(
            app,
            stack_name(settings, "monitoring"),
            settings=settings,
            alb=self.mlflow.balancer.alb,
            target_group=self.mlflow.balancer.target_group,
            service=self.mlflow.service,
            database=self.data.database,
            **common("monitoring", "MLflow platform: alarms and dashboard"),
        )

    def all(self) -> list[cdk.Stack]:
        """The stacks in deployment order."""
        return [self.network, self.data, self.mlflow, self.sagemaker, self.monitoring]


def build_environment(
    app: cdk.App, env: Environment, roster: Roster | None = None
) -> EnvironmentStacks:
    """Add one environment's stacks to ``app``, applying the app's context overrides."""
    settings = resolve(env, **from_context(app.node.try_get_context))
    return EnvironmentStacks(app, settings, roster)


def build_app(
    envs: Mapping[str, Environment], app: cdk.App | None = None, roster: Roster | None = None
) -> cdk.App:
    """Build every environment in ``envs`` into ``app`` (a new App if None), with cdk-nag on.

    ``roster`` is the teams file (default: teams.toml, or MLPLATFORM_TEAMS): a training role and
    login per team.

    AwsSolutions checks run as a CDK validation plugin: synth fails on any finding that is not
    acknowledged on its construct (through ``infra.nag.acknowledge``).
    """
    app = app or cdk.App()
    roster = roster if roster is not None else load_roster()
    for flag, value in FEATURE_FLAGS.items():
        if app.node.try_get_context(flag) is None:
            app.node.set_context(flag, value)
    selected = app.node.try_get_context("env")
    if selected is not None and selected not in envs:
        raise ConfigError(f"context env: no environment {selected!r}; defined: {sorted(envs)}")
    for name, env in envs.items():
        if selected is None or name == selected:
            build_environment(app, env, roster)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    """Entry point of ``python -m infra.app`` (what cdk.json runs)."""
    build_app(load_environments()).synth()


if __name__ == "__main__":
    main()
