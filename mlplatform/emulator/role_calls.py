"""The calls AWS makes under a role when it runs what the kit deployed.

    calls = endpoint_calls(model, "mlp-prod-fraud-classifier", "champion", account)
    refused = [d for d in (evaluate(c, policies) for c in calls) if not d.allowed]

SageMaker pulls an endpoint's image and model archive with the model's execution role; a training
job's channels, output and image with the job's role (and the training code in the container
reads the MLflow client secret with it); ECS pulls a task's image, reads its `secrets` and writes
its logs with the task's execution role, and the MLflow server reads and writes artifacts with the
task role. Each function turns the description the API returns (DescribeModel,
CreateTrainingJob, DescribeTaskDefinition) into those requests, with real resource ARNs and the
condition keys AWS sets, so they can be checked against the deployed policies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

from mlplatform.emulator.policy_evaluation import Request
from mlplatform.names import ecr_repository_arn

__all__ = [
    "Account",
    "RoleCalls",
    "endpoint_calls",
    "task_calls",
    "training_job_calls",
]

_PULL = ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage")
# Where the MLflow server keeps artifacts: the container's MLFLOW_ARTIFACTS_DESTINATION.
_ARTIFACTS_VARIABLE = "MLFLOW_ARTIFACTS_DESTINATION"
# The variable naming the secret the training code reads (mlplatform.runners.request).
_CLIENT_SECRET_VARIABLE = "MLFLOW_CLIENT_SECRET_ID"  # noqa: S105 - a variable's name


class Account(Protocol):
    """What the calls depend on in the account: names resolved the way AWS resolves them."""

    region: str
    account: str

    def bucket_key(self, bucket: str) -> str | None:
        """ARN of the KMS key a bucket encrypts new objects with (None: SSE-S3 or no bucket)."""
        ...

    def secret_arn(self, secret_id: str) -> str:
        """The full ARN of a secret named by name, partial ARN or ARN."""
        ...


@dataclass(frozen=True)
class RoleCalls:
    """The requests one role must be allowed, and the AWS service that assumes the role."""

    role_arn: str
    service: str
    requests: list[Request] = field(default_factory=list)


def _s3_parts(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed.netloc, parsed.path.lstrip("/")


def _logs_arn(acct: Account, group: str, stream: str) -> str:
    return f"arn:aws:logs:{acct.region}:{acct.account}:log-group:{group}:log-stream:{stream}"


class _Builder:
    def __init__(self, role: str, acct: Account, who: str) -> None:
        self.role, self.acct, self.who = role, acct, who
        self.requests: list[Request] = []

    def add(self, action: str, resource: str, why: str, **context: str) -> None:
        self.requests.append(Request(self.role, action, resource, context, f"{self.who}: {why}"))

    def pull(self, image: str) -> None:
        repository = ecr_repository_arn(image)
        if repository is None:
            return  # a public registry needs no IAM (and a route out, which is not IAM's job)
        self.add("ecr:GetAuthorizationToken", "*", f"log in to ECR for {image}")
        for action in _PULL:
            self.add(action, repository, f"pull {image}")

    def read_object(self, url: str, why: str) -> None:
        self._object("s3:GetObject", url, why, "kms:Decrypt")

    def write_object(self, url: str, why: str) -> None:
        self._object("s3:PutObject", url, why, "kms:GenerateDataKey")

    def delete_object(self, url: str, why: str) -> None:
        self._object("s3:DeleteObject", url, why, None)

    def _object(self, action: str, url: str, why: str, key_action: str | None) -> None:
        bucket, key = _s3_parts(url)
        self.add(action, f"arn:aws:s3:::{bucket}/{key}", why)
        if key_action:
            self._key(bucket, key_action, why)

    def list_prefix(self, url: str, why: str) -> None:
        bucket, prefix = _s3_parts(url)
        self.add("s3:ListBucket", f"arn:aws:s3:::{bucket}", why, **{"s3:prefix": prefix})

    def _key(self, bucket: str, action: str, why: str) -> None:
        key = self.acct.bucket_key(bucket)
        if key:
            self.add(action, key, f"{why} (the bucket's KMS key)")

    def metrics(self, namespace: str) -> None:
        self.add(
            "cloudwatch:PutMetricData",
            "*",
            f"instance metrics in {namespace}",
            **{"cloudwatch:namespace": namespace},
        )

    def network(self, vpc: Mapping[str, Any] | None) -> None:
        if not vpc:
            return
        for subnet in vpc.get("Subnets", []):
            arn = f"arn:aws:ec2:{self.acct.region}:{self.acct.account}:subnet/{subnet}"
            self.add("ec2:CreateNetworkInterface", arn, "network interface in the job's subnet")
        for action in (
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeVpcs",
        ):
            self.add(action, "*", "find the VPC configuration")


def endpoint_calls(
    model: Mapping[str, Any], endpoint: str, variant: str, acct: Account
) -> RoleCalls:
    """What SageMaker does with a model's execution role when a variant of `endpoint` starts."""
    role = model["ExecutionRoleArn"]
    build = _Builder(role, acct, f"endpoint {endpoint} variant {variant}")
    containers = model.get("Containers") or [model["PrimaryContainer"]]
    for container in containers:
        build.pull(container["Image"])
        if container.get("ModelDataUrl"):
            build.read_object(container["ModelDataUrl"], "download the model archive")
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        build.add(action, _logs_arn(acct, group, f"{variant}/i-0"), "container logs")
    build.metrics("/aws/sagemaker/Endpoints")
    build.network(model.get("VpcConfig"))
    return RoleCalls(role, "sagemaker.amazonaws.com", build.requests)


def training_job_calls(job: Mapping[str, Any], acct: Account) -> RoleCalls:
    """What a training job does with its role: SageMaker's part, then the training code's."""
    role, name = job["RoleArn"], job["TrainingJobName"]
    build = _Builder(role, acct, f"training job {name}")
    build.pull(job["AlgorithmSpecification"]["TrainingImage"])
    for channel in job.get("InputDataConfig", []):
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        why = f"channel {channel['ChannelName']}"
        build.list_prefix(uri, f"list {why}")
        # Every object under the prefix is read; one stands for them (same policy resource).
        build.read_object(uri.rstrip("/") + "/part-0", f"download {why}")
    output = job["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    build.write_object(f"{output}/{name}/output/model.tar.gz", "upload the model archive")
    checkpoints = (job.get("CheckpointConfig") or {}).get("S3Uri")
    if checkpoints:
        # SageMaker copies the prefix into /opt/ml/checkpoints at start (a restarted spot job
        # resumes from it) and uploads what the code writes there.
        build.list_prefix(checkpoints, "list the job's checkpoints")
        build.read_object(checkpoints.rstrip("/") + "/checkpoint-0", "restore a checkpoint")
        build.write_object(checkpoints.rstrip("/") + "/checkpoint-1", "save a checkpoint")
    group = "/aws/sagemaker/TrainingJobs"
    hosts = int((job.get("ResourceConfig") or {}).get("InstanceCount") or 1)
    for host in range(1, hosts + 1):  # one stream per instance: algo-1, algo-2, ...
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            build.add(action, _logs_arn(acct, group, f"{name}/algo-{host}-0"), "job logs")
    build.metrics("/aws/sagemaker/TrainingJobs")
    build.network(job.get("VpcConfig"))
    secret = (job.get("Environment") or {}).get(_CLIENT_SECRET_VARIABLE)
    if secret:
        build.add(
            "secretsmanager:GetSecretValue",
            acct.secret_arn(secret),
            "the training code reads its MLflow login",
        )
    return RoleCalls(role, "sagemaker.amazonaws.com", build.requests)


def _secret_of(value_from: str, acct: Account) -> str:
    # arn:aws:secretsmanager:r:a:secret:name-AbCdEf[:json-key:version-stage:version-id]
    parts = value_from.split(":")
    return ":".join(parts[:7]) if len(parts) > 7 else acct.secret_arn(value_from)


def task_calls(definition: Mapping[str, Any], acct: Account) -> list[RoleCalls]:
    """What ECS and the container do under a task's roles when a task of `definition` starts.

    `definition` is DescribeTaskDefinition's taskDefinition: ECS pulls, injects secrets and
    writes logs with the execution role; the MLflow server reads and writes artifacts with the
    task role.
    """
    family = definition["family"]
    roles: list[RoleCalls] = []
    execution = definition.get("executionRoleArn")
    task_role = definition.get("taskRoleArn")
    pulls = _Builder(execution or "", acct, f"task {family} (ECS agent)")
    workload = _Builder(task_role or "", acct, f"task {family} (container)")
    for container in definition.get("containerDefinitions", []):
        pulls.pull(container["image"])
        for secret in container.get("secrets", []):
            pulls.add(
                "secretsmanager:GetSecretValue",
                _secret_of(secret["valueFrom"], acct),
                f"inject {secret['name']}",
            )
        log = container.get("logConfiguration") or {}
        options = log.get("options") or {}
        if log.get("logDriver") == "awslogs" and "awslogs-group" in options:
            stream = f"{options.get('awslogs-stream-prefix', 'ecs')}/{container['name']}/0"
            for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
                pulls.add(action, _logs_arn(acct, options["awslogs-group"], stream), "logs")
        environment = {e["name"]: e["value"] for e in container.get("environment", [])}
        if container.get("command") == ["serve"] and _ARTIFACTS_VARIABLE in environment:
            # The server proxies artifacts: it lists, reads, writes and deletes under the prefix.
            store = environment[_ARTIFACTS_VARIABLE].rstrip("/")
            artifact = f"{store}/1/run/artifacts/model.pkl"  # stands for any run's artifacts
            workload.list_prefix(f"{store}/", "list run artifacts")
            workload.read_object(artifact, "read an artifact")
            workload.write_object(artifact, "write an artifact")
            workload.delete_object(artifact, "delete an artifact")
    if pulls.requests:
        if not execution:
            raise ValueError(f"task definition {family} pulls or injects without an execution role")
        roles.append(RoleCalls(execution, "ecs-tasks.amazonaws.com", pulls.requests))
    if workload.requests:
        roles.append(RoleCalls(task_role or "", "ecs-tasks.amazonaws.com", workload.requests))
    return roles
