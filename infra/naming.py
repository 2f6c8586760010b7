"""Names derived from an environment, in one place so stacks, tasks and tests agree."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

from mlplatform.config import Environment

__all__ = [
    "ARTIFACTS_PREFIX",
    "MLFLOW_PORT",
    "availability_zones",
    "object_arn",
    "repository_name",
    "stack_name",
]

# The container contract of mlflow_server/: it listens here and serves /health without auth.
MLFLOW_PORT = 5000
# Key prefix under which MLflow's proxied artifact store writes (MLFLOW_ARTIFACTS_DESTINATION).
ARTIFACTS_PREFIX = "mlflow-artifacts"


def stack_name(env: Environment, part: str) -> str:
    """CloudFormation stack name, e.g. ``mlp-prod-network``."""
    return f"{env.name_prefix}-{part}"


def repository_name(env: Environment, image: str) -> str:
    """ECR repository name of one of the kit's images (``mlflow`` or ``training``)."""
    return f"{env.name_prefix}/{image}"


def availability_zones(env: Environment) -> list[str]:
    """The zones the VPC spans, named rather than looked up so synth needs no AWS credentials."""
    return [f"{env.region}{letter}" for letter in "abc"[: env.network.max_azs]]


def object_arn(scope: IConstruct, env: Environment, key_pattern: str) -> str:
    """ARN of objects under ``key_pattern`` in the artifact bucket, e.g. ``datasets/*``.

    Built from the bucket's configured name (which the data stack sets, asserted in the tests)
    rather than from a cross-stack token, so the ARN in a template and in a cdk-nag finding reads
    as the real bucket and prefix.
    """
    return cdk.Arn.format(
        cdk.ArnComponents(
            service="s3", region="", account="", resource=env.bucket_name, resource_name=key_pattern
        ),
        cdk.Stack.of(scope),
    )
