"""The sagemaker runner: a real SageMaker training job through boto3.

The image is referenced by ECR digest, the job runs with the kit's execution role inside the VPC,
and its environment carries only the tracking URI and the *id* of the MLflow client secret: a
DescribeTrainingJob (or anyone reading CloudTrail) never sees a password. Where the job's inputs
come from is read from the infrastructure's CloudFormation outputs, so the same code runs against
AWS and, with AWS_ENDPOINT_URL set, against an emulator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from mlplatform.cloud.stack_outputs import mlflow_url, released_digest, stack_outputs, subnet_ids
from mlplatform.config import Environment
from mlplatform.errors import TrainingError
from mlplatform.names import Output, repository_output, stack_name, team_role_output
from mlplatform.reporting import Reporter
from mlplatform.runners.compute import CHECKPOINT_PATH
from mlplatform.runners.request import TrainingRequest, TrainingResult

__all__ = ["JobSetup", "SageMakerRunner", "job_setup"]

# The outputs infra/ stacks export, by stack suffix.
_OUTPUTS = {
    "sagemaker": (Output.EXECUTION_ROLE_ARN, Output.SECURITY_GROUP_ID),
    "network": (Output.PRIVATE_SUBNET_IDS,),
    "data": (Output.BUCKET_NAME,),
    "mlflow": (repository_output("training"),),
}


@dataclass(frozen=True)
class JobSetup:
    """Everything a job needs from the deployed infrastructure."""

    image_uri: str
    role_arn: str
    subnets: list[str]
    security_groups: list[str]
    bucket: str
    tracking_uri: str


def job_setup(
    env: Environment,
    cfn: Any,
    source: str,
    image_digest: str | None = None,
    team: str | None = None,
) -> JobSetup:
    """Read role, network, bucket, tracking URL and training image from the stack outputs.

    The image: `image_digest`, else the environment's pin (training_image_digest), else the
    training image of source `source` (its name) the last release pushed (the MLflow stack's
    TrainingImageDigest record). The role: `team`'s training role, else the shared one.
    """
    values: dict[str, str] = {}
    for suffix, keys in _OUTPUTS.items():
        values.update(stack_outputs(cfn, stack_name(env, suffix), keys, TrainingError))
    if team is not None:
        role = team_role_output(team)
        try:
            values.update(stack_outputs(cfn, stack_name(env, "sagemaker"), (role,), TrainingError))
        except TrainingError:
            raise TrainingError(
                f"{env.name}'s SageMaker stack has no training role of team {team} (teams.toml): "
                f"deploy the infrastructure first (`invoke deploy-infra --env {env.name}`)"
            ) from None
        values[Output.EXECUTION_ROLE_ARN] = values[role]
    digest = (
        image_digest
        or env.training.training_image_digest
        or released_digest(values, "training", source)
    )
    if not digest:
        raise TrainingError(
            f"no training image of source {source} in {env.name}: release one with `invoke "
            f"build --image training --env {env.name}` and `invoke deploy --env {env.name}`, "
            "or pass --image-digest"
        )
    return JobSetup(
        image_uri=f"{values[repository_output('training')]}@{digest}",
        role_arn=values[Output.EXECUTION_ROLE_ARN],
        subnets=subnet_ids(values),
        security_groups=[values[Output.SECURITY_GROUP_ID]],
        bucket=values[Output.BUCKET_NAME],
        tracking_uri=mlflow_url(env, cfn, TrainingError),
    )


class SageMakerRunner:
    """Submits the job, waits for it with boto3's waiter, and reports its registered version."""

    name = "sagemaker"

    def __init__(
        self,
        sagemaker: Any,
        target: JobSetup,
        find_registration: Callable[[str], tuple[str, str]] | None = None,
    ) -> None:
        self.sm = sagemaker
        self.target = target
        self.find_registration = find_registration

    def job_definition(self, request: TrainingRequest) -> dict[str, Any]:
        """The CreateTrainingJob request (pure: tests and `--dry-run` read it)."""
        env, t, compute = request.env, self.target, request.compute
        environment = {
            **request.job_environment(),
            "MLFLOW_TRACKING_URI": t.tracking_uri,
            "MLP_TRAINING_IMAGE": t.image_uri,
            "MLP_RUNNER": self.name,
        }
        return {
            "TrainingJobName": request.job_name,
            "AlgorithmSpecification": {"TrainingImage": t.image_uri, "TrainingInputMode": "File"},
            "RoleArn": t.role_arn,
            "HyperParameters": request.hyperparameters,
            "InputDataConfig": [
                {
                    "ChannelName": channel,
                    "ContentType": request.source.content_type,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": request.channel_uri(t.bucket, channel),
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
                for channel in request.channels
            ],
            "OutputDataConfig": {"S3OutputPath": request.output_uri(t.bucket)},
            "ResourceConfig": {
                "InstanceType": compute.instance_type,
                "InstanceCount": compute.instance_count,
                "VolumeSizeInGB": compute.volume_size_gb,
            },
            "StoppingCondition": {
                "MaxRuntimeInSeconds": compute.max_runtime_seconds,
                **({"MaxWaitTimeInSeconds": compute.max_wait_seconds} if compute.spot else {}),
            },
            "EnableManagedSpotTraining": compute.spot,
            # On demand too: a source that writes checkpoints gets them back after a restart.
            "CheckpointConfig": {
                "S3Uri": request.checkpoint_uri(t.bucket),
                "LocalPath": CHECKPOINT_PATH,
            },
            "VpcConfig": {"Subnets": t.subnets, "SecurityGroupIds": t.security_groups},
            "EnableInterContainerTrafficEncryption": True,
            "Environment": environment,
            "Tags": [
                {"Key": "mlplatform:environment", "Value": env.name},
                {"Key": "mlplatform:model", "Value": request.model},
                {"Key": "mlplatform:git-commit", "Value": request.git_commit},
            ],
        }

    def run(
        self, request: TrainingRequest, reporter: Reporter, wait: bool = True
    ) -> TrainingResult:
        """Create the job; with wait, block until it ends and look up its model version."""
        reporter.step(f"submitting SageMaker training job {request.job_name}")
        try:
            self.sm.create_training_job(**self.job_definition(request))
        except botocore.exceptions.ClientError as exc:
            raise TrainingError(f"SageMaker refused the job: {exc}") from exc
        reporter.done(f"submitted {request.job_name} ({self.target.image_uri})")
        artifact = (
            f"{request.output_uri(self.target.bucket)}/{request.job_name}/output/model.tar.gz"
        )
        if not wait:
            return TrainingResult("", request.model, "", request.job_name, self.name, artifact)
        reporter.step("waiting for the job (SageMaker provisions, trains, uploads)")
        # A waiter error (job failed or stopped) is not raised: the status below says what happened.
        with contextlib.suppress(botocore.exceptions.WaiterError):
            self.sm.get_waiter("training_job_completed_or_stopped").wait(
                TrainingJobName=request.job_name,
                WaiterConfig={
                    "Delay": 30,
                    "MaxAttempts": request.compute.waited_seconds // 30 + 20,
                },
            )
        try:
            job = self.sm.describe_training_job(TrainingJobName=request.job_name)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise TrainingError(f"cannot read the state of {request.job_name}: {exc}") from exc
        if job["TrainingJobStatus"] != "Completed":
            reason = job.get("FailureReason", job["TrainingJobStatus"])
            raise TrainingError(f"training job {request.job_name} failed: {reason}")
        artifact = job.get("ModelArtifacts", {}).get("S3ModelArtifacts", artifact)
        reporter.done(f"job completed; model at {artifact}")
        run_id, version = ("", "")
        if self.find_registration is not None:
            run_id, version = self.find_registration(request.job_name)
        return TrainingResult(run_id, request.model, version, request.job_name, self.name, artifact)
