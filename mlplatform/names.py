"""Names the stacks, the library and the tests agree on: stacks, repositories, keys, outputs.

    stack_name(env, "mlflow")            # "mlp-prod-mlflow"
    outputs[Output.MLFLOW_URL]           # what the MLflow stack exports as "MlflowUrl"

No CDK import: infra/ declares its stacks and outputs with these names, and the library reads
them back with the same ones, so a renamed output breaks at one place, not at deploy time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlplatform.config import Environment

__all__ = [
    "ARTIFACTS_PREFIX",
    "CONTAINER_AUTH_CONFIG_DIR",
    "CONTAINER_RDS_CA_BUNDLE",
    "IMAGES",
    "LOCK_LABEL",
    "MLFLOW_PORT",
    "MODELS_PREFIX",
    "NO_RELEASED_IMAGE",
    "RELEASED_IMAGE_OUTPUTS",
    "SOURCE_IMAGES",
    "SOURCE_LABEL",
    "STACK_PARTS",
    "EcrImage",
    "Output",
    "availability_zones",
    "ecr_repository_arn",
    "endpoint_name",
    "format_released",
    "job_name_prefix",
    "parse_ecr_image",
    "parse_released",
    "repository_name",
    "repository_output",
    "stack_name",
    "team_role_output",
    "team_training_user",
    "user_secret_name",
]

# The container contract of mlflow_server/: it listens here and serves /health without auth.
MLFLOW_PORT = 5000
# Inside the MLflow container (compose, ECS): where its auth ini goes, a folder of its own /tmp.
CONTAINER_AUTH_CONFIG_DIR = "/tmp/mlflow-auth"  # noqa: S108
# Inside the MLflow image: Amazon RDS's CA certificates, which the cloud's database connections
# verify against (mlflow_server/rds-ca-bundle.pem, written by mlplatform/toolchain/rds_ca.py and
# copied with the server's code by mlflow_server/Dockerfile).
CONTAINER_RDS_CA_BUNDLE = "/app/mlflow_server/rds-ca-bundle.pem"
# Key prefix under which MLflow's proxied artifact store writes (MLFLOW_ARTIFACTS_DESTINATION).
ARTIFACTS_PREFIX = "mlflow-artifacts"
# Key prefix of the archives endpoints serve; the endpoint role reads this prefix only.
MODELS_PREFIX = "endpoint-models"
# The stacks of one environment, in deploy order (each depends only on those before it).
STACK_PARTS = ("network", "data", "mlflow", "sagemaker", "monitoring")
# The kit's images, each with an ECR repository of its own.
IMAGES = ("mlflow", "training", "serving")
# The images built once per training source (build arg SOURCE), named <image>-<source name>:
# a model is trained and served in its own source's lock.
SOURCE_IMAGES = ("training", "serving")
# The labels the training and serving images carry (their Dockerfiles): the source's name and
# the sha256 of the lock installed in them.
SOURCE_LABEL = "org.mlplatform.source"
LOCK_LABEL = "org.mlplatform.lock-sha256"
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/"
    r"(?P<repository>[a-z0-9._/-]+)(?:@(?P<digest>sha256:[0-9a-f]{64})|:[\w.-]+)?$"
)


# The value of TrainingImageDigest/ServingImageDigest before a release pushed that image.
NO_RELEASED_IMAGE = "none"
_RELEASED_ENTRY = re.compile(r"^(?P<source>[a-z][a-z0-9-]{0,39})=(?P<digest>sha256:[0-9a-f]{64})$")


def format_released(digests: dict[str, str]) -> str:
    """A source name -> digest record as an output or context value: `fraud=sha256:…,…`.

    One value for all sources (sorted), so a stack's outputs do not change shape with the models.
    """
    return ",".join(f"{name}={digests[name]}" for name in sorted(digests)) or NO_RELEASED_IMAGE


def parse_released(value: str | None) -> dict[str, str]:
    """format_released's record read back; ValueError naming the first entry that is not one."""
    if not value or value == NO_RELEASED_IMAGE:
        return {}
    record = {}
    for entry in value.split(","):
        found = _RELEASED_ENTRY.match(entry)
        if found is None:
            raise ValueError(f"{entry[:60]!r} is not <source name>=sha256:<64 hex>")
        record[found["source"]] = found["digest"]
    return record


class Output:
    """CloudFormation output keys, by stack: the stacks declare them, the library reads them."""

    # network
    PRIVATE_SUBNET_IDS = "PrivateSubnetIds"
    # data
    BUCKET_NAME = "BucketName"
    # Secret ARNs, not secrets: what ruff takes for a password is an output key.
    DATABASE_SECRET_ARN = "DatabaseSecretArn"  # noqa: S105
    DATABASE_MASTER_SECRET_ARN = "DatabaseMasterSecretArn"  # noqa: S105
    DATABASE_ENDPOINT = "DatabaseEndpoint"
    # mlflow
    MLFLOW_URL = "MlflowUrl"
    ALB_DNS_NAME = "AlbDnsName"
    CLUSTER_NAME = "ClusterName"
    SERVICE_NAME = "ServiceName"
    IMAGE_DIGEST = "ImageDigest"
    SERVICE_IMAGE_DIGEST = "ServiceImageDigest"
    # The release's training and serving images in the kit's repositories ("none": not yet).
    TRAINING_IMAGE_DIGEST = "TrainingImageDigest"
    SERVING_IMAGE_DIGEST = "ServingImageDigest"
    MIGRATE_TASK_DEFINITION_ARN = "MigrateTaskDefinitionArn"
    TASK_SECURITY_GROUP_ID = "TaskSecurityGroupId"
    # sagemaker
    EXECUTION_ROLE_ARN = "ExecutionRoleArn"
    ENDPOINT_ROLE_ARN = "EndpointRoleArn"
    SECURITY_GROUP_ID = "SecurityGroupId"
    # monitoring
    ALARM_TOPIC_ARN = "AlarmTopicArn"
    DASHBOARD_NAME = "DashboardName"


# The MLflow stack's outputs recording which training and serving images the release pushed.
RELEASED_IMAGE_OUTPUTS = {
    "training": Output.TRAINING_IMAGE_DIGEST,
    "serving": Output.SERVING_IMAGE_DIGEST,
}


def repository_output(image: str) -> str:
    """The MLflow stack's output with one image's repository URI, e.g. TrainingRepositoryUri."""
    return f"{image.capitalize()}RepositoryUri"


def team_role_output(team: str) -> str:
    """The SageMaker stack's output with one team's training role, e.g. TeamRoleArnFraud."""
    return "TeamRoleArn" + "".join(part.capitalize() for part in team.split("-"))


def team_training_user(team: str) -> str:
    """The MLflow user a team's training jobs log in as."""
    return f"{team}-training"


def user_secret_name(env: Environment, user: str) -> str:
    """Secrets Manager name of one MLflow user's login (JSON with username, password)."""
    return f"{env.name_prefix}/mlflow-users/{user}"


def job_name_prefix(model: str) -> str:
    """What every training job name of `model` starts with (runners.request.job_name).

    Job names fold "_" and "." into "-" and keep 38 characters of the model less a marker of up
    to 6 (`-repro`), so 32 characters always lead. A policy scoped to a model's jobs uses it.
    """
    return model.replace("_", "-").replace(".", "-")[:32]


def stack_name(env: Environment, part: str) -> str:
    """CloudFormation stack name, e.g. ``mlp-prod-network``."""
    return f"{env.name_prefix}-{part}"


def repository_name(env: Environment, image: str) -> str:
    """ECR repository name of one of the kit's images (``mlflow``, ``training`` or ``serving``)."""
    return f"{env.name_prefix}/{image}"


def endpoint_name(env: Environment, model: str) -> str:
    """A model's endpoint: `<prefix>-<model>` (SageMaker allows 63 characters)."""
    return f"{env.name_prefix}-{model}"[:63].replace("_", "-").replace(".", "-")


def availability_zones(env: Environment) -> list[str]:
    """The zones the VPC spans, named rather than looked up so synth needs no AWS credentials."""
    return [f"{env.region}{letter}" for letter in "abc"[: env.network.max_azs]]


@dataclass(frozen=True)
class EcrImage:
    """The parts of an ECR image URI; `digest` is None for one named by tag."""

    account: str
    region: str
    repository: str
    digest: str | None


def parse_ecr_image(image: str) -> EcrImage | None:
    """An ECR image URI's parts; None for an image outside ECR."""
    match = _ECR_IMAGE.match(image)
    if match is None:
        return None
    return EcrImage(match["account"], match["region"], match["repository"], match["digest"])


def ecr_repository_arn(image: str) -> str | None:
    """ARN of the ECR repository an image URI names; None for an image outside ECR."""
    parsed = parse_ecr_image(image)
    if parsed is None:
        return None
    return f"arn:aws:ecr:{parsed.region}:{parsed.account}:repository/{parsed.repository}"
