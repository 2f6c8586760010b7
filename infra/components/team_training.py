"""One team's training identity in the cloud, from teams.toml: a SageMaker role and a login.

The role is the shared training role cut down to the team's models: their channels under
`<dataset_prefix>/<model>/`, the archives and checkpoints of jobs named after them, and the log
streams of those jobs. The login is a generated Secrets Manager secret for the MLflow user
`<team>-training`, which `invoke team-sync` creates with that password and gives the team's role
(MANAGE on the team's models only); the role may read that secret and no other.

Not scoped per team: the training images' repository (one per environment; ECR's permissions
cannot tell one image tag from another), and a model whose name begins with another model's
name followed by "-" shares that model's job-name prefix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.nag import acknowledge, iam5_resource, rendered_object_arn
from mlplatform.config import Environment
from mlplatform.names import job_name_prefix, team_training_user, user_secret_name

__all__ = ["TeamTraining", "team_prefixes"]


def team_prefixes(settings: Environment, models: Sequence[str]) -> dict[str, list[str]]:
    """The key patterns of the team's models: channels, archives and checkpoints (each `*`)."""
    training = settings.training
    return {
        "data": [f"{training.dataset_prefix}/{model}/*" for model in models],
        "output": [f"{training.output_prefix}/{job_name_prefix(model)}*" for model in models],
        "checkpoints": [f"{training.checkpoint_prefix}/{model}/*" for model in models],
    }


class TeamTraining(Construct):
    """Exposes ``role`` (SageMaker training jobs of the team) and ``secret`` (its MLflow login)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Environment,
        team: str,
        models: Sequence[str],
        statements: Callable[[dict[str, list[str]], list[str], str], list[iam.PolicyStatement]],
    ) -> None:
        """`statements(prefixes, log_streams, secret_arn)` builds the role's policy."""
        super().__init__(scope, construct_id)
        prefix, user = settings.name_prefix, team_training_user(team)
        self.secret = secretsmanager.Secret(
            self,
            "Login",
            secret_name=user_secret_name(settings, user),
            description=f"MLflow login of team {team}'s training jobs ({settings.name})",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"username": user}),
                generate_string_key="password",
                exclude_punctuation=True,
                password_length=40,
            ),
            # The MLflow user lives in the database, which outlives the stack.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        cdk.Tags.of(self.secret).add("mlp:managed-by", "cdk")
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            f"{user}: MLflow keeps the password in its user table; a rotation must go through "
            "MLflow's API (team-sync sets it from this secret).",
        )
        prefixes = team_prefixes(settings, models)
        streams = [f"/aws/sagemaker/TrainingJobs:log-stream:{job_name_prefix(m)}*" for m in models]
        self.role = iam.Role(
            self,
            "Role",
            role_name=f"{prefix}-team-{team}-training"[:64],
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{prefix}: SageMaker training jobs of team {team}",
            max_session_duration=cdk.Duration.hours(12),
        )
        policy = iam.Policy(
            self,
            "Policy",
            roles=[self.role],
            statements=statements(prefixes, streams, self.secret.secret_arn),
        )
        logs_arn = f"arn:<AWS::Partition>:logs:{settings.region}:{settings.account}:log-group:"
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            f"team {team}'s training role: ecr:GetAuthorizationToken, the VPC ENI actions and "
            "cloudwatch:PutMetricData (only /aws/sagemaker/* namespaces) take no resource ARN.",
        )
        for stream in streams:
            acknowledge(
                policy,
                iam5_resource(f"{logs_arn}{stream}"),
                f"team {team}'s training role: log streams of its jobs, named after jobs that "
                "do not exist yet.",
            )
        for kind, patterns in prefixes.items():
            for pattern in patterns:
                acknowledge(
                    policy,
                    iam5_resource(rendered_object_arn(settings, pattern)),
                    f"team {team}'s training role: {kind} of its models only ({pattern}).",
                )
