"""The sagemaker runner against the emulator (moto, in-process): the CreateTrainingJob request
as it goes over the wire, the target read from stack outputs, and the failure paths.

moto accepts a training job and marks it Completed at once without running the image, so what
this shows is the request and the bookkeeping around it; that the image trains is shown by the
native runner's tests (the same entry point) and the image build, not here.
"""

from __future__ import annotations

import dataclasses
import json

import boto3
import pytest
from moto import mock_aws

from mlplatform.config import Environment, load_environment
from mlplatform.errors import TrainingError
from mlplatform.reporting import SilentReporter
from mlplatform.runners.compute import job_compute, one_instance
from mlplatform.runners.request import TrainingRequest
from mlplatform.runners.sagemaker import SageMakerRunner, job_setup
from mlplatform.sources import load_source

ENV = load_environment("prod")
DIGEST = "sha256:" + "ab" * 32
CLIENT_PASSWORD = "client-password-never-in-a-request"
OUTPUTS = {
    "sagemaker": {
        "ExecutionRoleArn": "arn:aws:iam::222222222222:role/mlp-prod-sagemaker",
        "SecurityGroupId": "sg-0123",
    },
    "network": {"PrivateSubnetIds": "subnet-a,subnet-b"},
    "data": {"BucketName": "mlp-prod-artifacts"},
    "mlflow": {
        "MlflowUrl": "https://mlflow.prod.internal",
        "TrainingRepositoryUri": "222222222222.dkr.ecr.eu-west-1.amazonaws.com/mlp-prod/training",
    },
}


def deploy_outputs(cfn, skip: str = "", released: str = "none") -> None:  # type: ignore[no-untyped-def]
    """Stacks carrying the outputs infra/ exports (moto deploys the real CreateStack call)."""
    for suffix, outputs in OUTPUTS.items():
        if suffix == skip:
            continue
        if suffix == "mlflow":
            outputs = {**outputs, "TrainingImageDigest": released}
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {k: {"Value": v} for k, v in outputs.items()},
        }
        cfn.create_stack(StackName=f"mlp-prod-{suffix}", TemplateBody=json.dumps(template))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name=ENV.region)
        sm.create_secret(
            Name=ENV.client_secret_name,
            SecretString=json.dumps({"username": "trainer", "password": CLIENT_PASSWORD}),
        )
        yield boto3.client("cloudformation", region_name=ENV.region)


def request(env: Environment = ENV, instance_count: int | None = None) -> TrainingRequest:
    return TrainingRequest(
        env,
        "fraud-classifier",
        load_source("examples/fraud"),
        {"n_estimators": "300"},
        "fraud-classifier-20261128-120000",
        "0" * 40,
        False,
        job_compute(env, "fraud-classifier", instance_count),
    )


def test_create_training_job_request_carries_no_secret(aws) -> None:  # type: ignore[no-untyped-def]
    deploy_outputs(aws)
    target = job_setup(ENV, aws, "fraud", DIGEST)
    sm = boto3.client("sagemaker", region_name=ENV.region)
    sent: list[bytes] = []
    sm.meta.events.register(
        "before-send.sagemaker.CreateTrainingJob", lambda request, **_: sent.append(request.body)
    )
    found = []
    runner = SageMakerRunner(sm, target, lambda job: found.append(job) or ("run-1", "7"))
    result = runner.run(request(), SilentReporter(), wait=True)

    assert len(sent) == 1
    body = json.loads(sent[0])
    assert body["AlgorithmSpecification"]["TrainingImage"] == (
        "222222222222.dkr.ecr.eu-west-1.amazonaws.com/mlp-prod/training@" + DIGEST
    )
    assert body["RoleArn"] == OUTPUTS["sagemaker"]["ExecutionRoleArn"]
    assert body["VpcConfig"] == {
        "Subnets": ["subnet-a", "subnet-b"],
        "SecurityGroupIds": ["sg-0123"],
    }
    assert body["HyperParameters"]["n_estimators"] == "300"
    assert [c["DataSource"]["S3DataSource"]["S3Uri"] for c in body["InputDataConfig"]] == [
        "s3://mlp-prod-artifacts/datasets/fraud-classifier/train/",
        "s3://mlp-prod-artifacts/datasets/fraud-classifier/validation/",
    ]
    assert body["OutputDataConfig"] == {"S3OutputPath": "s3://mlp-prod-artifacts/training-output"}
    assert body["ResourceConfig"]["InstanceType"] == ENV.sagemaker.training_instance_type
    assert set(body["Environment"]) == {
        "MLFLOW_TRACKING_URI",
        "MLFLOW_CLIENT_SECRET_ID",
        "MLP_MODEL_NAME",
        "MLP_GIT_COMMIT",
        "MLP_GIT_DIRTY",
        "MLP_TRAINING_IMAGE",
        "MLP_RUNNER",
        "MLP_SOURCE",
        "MLP_SOURCE_SHA256",
    }
    assert body["Environment"]["MLP_SOURCE"] == "examples/fraud"
    assert body["Environment"]["MLFLOW_CLIENT_SECRET_ID"] == "mlp-prod/mlflow-client"
    raw = sent[0].decode()
    for secret in (CLIENT_PASSWORD, "testing", "PASSWORD", "SECRET_ACCESS_KEY"):
        assert secret not in raw

    described = sm.describe_training_job(TrainingJobName=result.job_name)
    assert described["TrainingJobStatus"] == "Completed"
    assert found == [result.job_name]
    assert (result.run_id, result.model_version, result.runner) == ("run-1", "7", "sagemaker")


def test_no_wait_submits_and_returns(aws) -> None:  # type: ignore[no-untyped-def]
    deploy_outputs(aws)
    sm = boto3.client("sagemaker", region_name=ENV.region)
    runner = SageMakerRunner(sm, job_setup(ENV, aws, "fraud", DIGEST), None)
    result = runner.run(request(), SilentReporter(), wait=False)
    assert result.model_version == "" and result.model_artifact.endswith(
        f"/{result.job_name}/output/model.tar.gz"
    )
    assert sm.list_training_jobs()["TrainingJobSummaries"][0]["TrainingJobName"] == result.job_name


def test_without_a_released_or_named_image_the_error_says_how_to_release_one(aws) -> None:  # type: ignore[no-untyped-def]
    deploy_outputs(aws)
    with pytest.raises(
        TrainingError,
        match=r"^no training image of source fraud in prod: release one with `invoke build "
        r"--image training --env prod` and `invoke deploy --env prod`, or pass --image-digest$",
    ):
        job_setup(ENV, aws, "fraud", None)


RELEASED = "sha256:" + "cd" * 32
OTHER = "sha256:" + "ef" * 32
REPOSITORY = OUTPUTS["mlflow"]["TrainingRepositoryUri"]


@pytest.mark.parametrize(
    ("named", "pinned", "expected"),
    [
        (None, None, RELEASED),  # what the last release pushed, read from the MLflow stack
        (None, DIGEST, DIGEST),  # environments.toml's pin wins over the release
        (DIGEST, None, DIGEST),  # --image-digest wins over both
    ],
)
def test_the_job_runs_the_released_training_image_unless_one_is_named_or_pinned(  # type: ignore[no-untyped-def]
    aws, named, pinned, expected
) -> None:
    # Each source's image is recorded: the job takes its own source's.
    deploy_outputs(aws, released=f"forecast={OTHER},fraud={RELEASED}")
    env = ENV.model_copy(
        update={"training": ENV.training.model_copy(update={"training_image_digest": pinned})}
    )
    assert job_setup(env, aws, "fraud", named).image_uri == f"{REPOSITORY}@{expected}"


TEAM_ROLE = "arn:aws:iam::222222222222:role/mlp-prod-team-fraud-training"


def test_a_teams_model_trains_under_the_teams_role_with_the_teams_login(aws) -> None:  # type: ignore[no-untyped-def]
    OUTPUTS["sagemaker"]["TeamRoleArnFraud"] = TEAM_ROLE
    try:
        deploy_outputs(aws)
        setup = job_setup(ENV, aws, "fraud", DIGEST, team="fraud")
    finally:
        del OUTPUTS["sagemaker"]["TeamRoleArnFraud"]
    team_request = dataclasses.replace(
        request(), client_secret="mlp-prod/mlflow-users/fraud-training"
    )
    body = SageMakerRunner(None, setup).job_definition(team_request)
    assert body["RoleArn"] == TEAM_ROLE
    assert body["Environment"]["MLFLOW_CLIENT_SECRET_ID"] == "mlp-prod/mlflow-users/fraud-training"


def test_a_team_without_its_role_deployed_is_a_one_line_error(aws) -> None:  # type: ignore[no-untyped-def]
    deploy_outputs(aws)
    with pytest.raises(
        TrainingError,
        match=r"^prod's SageMaker stack has no training role of team fraud \(teams.toml\): deploy",
    ):
        job_setup(ENV, aws, "fraud", DIGEST, team="fraud")


def test_undeployed_infra_is_a_one_line_error(aws) -> None:  # type: ignore[no-untyped-def]
    deploy_outputs(aws, skip="network")
    with pytest.raises(TrainingError, match=r"stack mlp-prod-network is not deployed"):
        job_setup(ENV, aws, "fraud", DIGEST)


def _with(
    env: Environment, training: dict | None = None, compute: dict | None = None
) -> Environment:
    """`env` with [E.training] and the fraud model's [E.models.NAME.compute] changed."""
    models = dict(env.models)
    model = models["fraud-classifier"]
    models["fraud-classifier"] = model.model_copy(
        update={"compute": model.compute.model_copy(update=compute or {})}
    )
    settings = env.training.model_copy(update=training or {})
    return env.model_copy(update={"models": models, "training": settings})


def test_a_job_asks_for_the_models_compute_with_spot_and_checkpoints(aws) -> None:  # type: ignore[no-untyped-def]
    deploy_outputs(aws)
    setup = job_setup(ENV, aws, "fraud", DIGEST)
    sized = _with(
        ENV,
        training={"managed_spot": True, "max_wait_seconds": 7200},
        compute={"instance_type": "ml.c5.2xlarge", "instance_count": 2, "volume_size_gb": 50},
    )
    body = SageMakerRunner(None, setup).job_definition(request(sized))
    assert body["ResourceConfig"] == {
        "InstanceType": "ml.c5.2xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 50,
    }
    assert body["EnableManagedSpotTraining"] is True
    assert body["StoppingCondition"] == {
        "MaxRuntimeInSeconds": ENV.training.max_runtime_seconds,
        "MaxWaitTimeInSeconds": 7200,
    }
    # One prefix per job under the environment's checkpoint prefix, which the role may sync.
    assert body["CheckpointConfig"] == {
        "S3Uri": "s3://mlp-prod-artifacts/checkpoints/fraud-classifier/"
        "fraud-classifier-20261128-120000/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    # --instance-count overrides the model's count for one job.
    assert request(sized, instance_count=3).compute.instance_count == 3


def test_spot_is_on_outside_prod_unless_switched_and_waits_twice_the_runtime() -> None:
    prod, staging = ENV, load_environment("staging")
    assert job_compute(prod, "fraud-classifier").spot is False  # on demand in prod by default
    compute = job_compute(staging, "fraud-classifier")
    assert compute.spot is True
    assert compute.max_wait_seconds == 2 * staging.training.max_runtime_seconds
    off = _with(staging, training={"managed_spot": False})
    assert (
        job_compute(off, "fraud-classifier").spot,
        job_compute(off, "fraud-classifier").max_wait_seconds,
    ) == (False, None)


@pytest.mark.parametrize(
    ("training", "compute", "count", "message"),
    [
        ({"managed_spot": True, "max_wait_seconds": 600}, {"max_runtime_seconds": 3600}, None,
         r"^\[prod.training\] max_wait_seconds \(600\) is shorter than fraud-classifier's max "
         r"runtime \(3600 s\): a spot job waits and runs within it \(SageMaker's rule\)$"),
        ({}, {}, 0, r"^--instance-count must be between 1 and 100, got 0$"),
    ],
)  # fmt: skip
def test_what_sagemaker_refuses_is_one_line(
    training: dict, compute: dict, count: int | None, message: str
) -> None:
    with pytest.raises(TrainingError, match=message):
        job_compute(_with(ENV, training, compute), "fraud-classifier", count)


def test_a_wait_without_spot_is_refused_in_the_file() -> None:
    with pytest.raises(ValueError, match="max_wait_seconds applies to managed spot training only"):
        ENV.training.model_validate({"managed_spot": False, "max_wait_seconds": 7200})


@pytest.mark.parametrize("runner", ["native", "local-container"])
def test_a_runner_of_one_machine_refuses_several_instances(runner: str) -> None:
    compute = job_compute(ENV, "fraud-classifier", 2)
    message = rf"^the {runner} runner trains on one machine, and this job asks for 2 instances"
    with pytest.raises(TrainingError, match=message + ": train it with --runner sagemaker"):
        one_instance(compute, runner)
    one_instance(job_compute(ENV, "fraud-classifier", 1), runner)
