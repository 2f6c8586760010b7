"""Training with the native runner against the real local stack, through the tasks.

Tests taking `runtime_stack` (through `admin` and `s3`) run against the native stack and, in the
container lane, against the compose runtime's (tests/integration/conftest.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import tarfile
from pathlib import Path

import boto3
import mlflow
import pytest
from fraud_model.data import FEATURES, generate
from mlflow.tracking import MlflowClient

from tests.cli import REPO
from tests.integration.conftest import PROD_OUTPUTS, Stack, ensure_stack_outputs

pytestmark = pytest.mark.integration
MODEL = "fraud-classifier"
BUCKET = "mlp-local-artifacts-123456789012-us-east-1"


def admin_of(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    env = stack.client_env()
    # As `invoke env` sets them (downloads through the server: see lifecycle.client_environment).
    for key in (
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD",
    ):
        monkeypatch.setenv(key, env[key])
    return MlflowClient()


@pytest.fixture
def admin(runtime_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    return admin_of(runtime_stack, monkeypatch)


@pytest.fixture
def s3(runtime_stack: Stack):  # type: ignore[no-untyped-def]
    return runtime_stack.s3()


def train(stack: Stack, *overrides: str) -> dict:
    args = ["train", "--json"]
    for o in overrides:
        args += ["--set", o]
    return json.loads(stack.kit(*args).stdout)


def versions(client: MlflowClient) -> set[str]:
    """The model's version numbers; a failed search fails the test.

    An empty answer to a failed search would let "registers nothing" pass. A model with no
    versions yet is an empty search result, not an error.
    """
    return {v.version for v in client.search_model_versions(f"name='{MODEL}'")}


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_native_run_is_complete_reproducible_and_registered(
    runtime_stack: Stack, admin: MlflowClient, s3, tmp_path: Path
) -> None:
    stack = runtime_stack
    stack.kit("data")
    result = train(stack, "n_estimators=60")
    run = admin.get_run(result["run_id"])
    tags = run.data.tags

    assert len(tags["mlp.git.commit"]) == 40 and tags["mlp.git.dirty"] in ("true", "false")
    assert tags["mlp.runner"] == "native" and tags["mlp.training_job"] == result["job_name"]
    lock = (REPO / "examples" / "fraud" / "requirements.txt").read_bytes()
    assert tags["mlp.lock.sha256"] == hashlib.sha256(lock).hexdigest()
    assert tags["mlp.source"] == "examples/fraud" and len(tags["mlp.source.sha256"]) == 64
    for channel in ("train", "validation"):
        key = f"datasets/{MODEL}/{channel}/data.csv"
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        expected = hashlib.sha256(b"data.csv\0" + hashlib.sha256(body.read()).digest())
        assert tags[f"mlp.data.{channel}.sha256"] == expected.hexdigest()

    assert run.data.params["n_estimators"] == "60"
    assert len(admin.get_metric_history(run.info.run_id, "iter_val_average_precision")) == 60
    assert 0.0 < run.data.metrics["average_precision"] <= 1.0
    plots = {a.path for a in admin.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/pr_curve.png", "plots/roc_curve.png", "plots/confusion_matrix.png"}

    challenger = admin.get_model_version_by_alias(MODEL, "challenger")
    assert challenger.version == result["model_version"] and challenger.run_id == run.info.run_id

    key = f"training-output/{result['job_name']}/output/model.tar.gz"
    assert result["model_artifact"] == f"s3://{BUCKET}/{key}"
    body = io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    with tarfile.open(fileobj=body) as archive:
        assert "mlflow-model/MLmodel" in archive.getnames()

    rows = generate(50, 0.1, seed=99)[list(FEATURES)]
    scores = mlflow.pyfunc.load_model(f"models:/{MODEL}@challenger").predict(rows)
    reference = mlflow.sklearn.load_model(f"models:/{MODEL}@challenger").predict_proba(rows)
    assert scores.shape == (50, 2)
    assert (scores == reference).all()


def test_gate_promotes_a_better_model_and_keeps_a_worse_one_out(
    runtime_stack: Stack, admin: MlflowClient
) -> None:
    stack = runtime_stack
    stack.kit("data")
    good = train(stack, "n_estimators=80")
    first = json.loads(stack.kit("champion", "--json").stdout)
    assert first["model_version"] == good["model_version"]
    assert first["promoted"] or first["reason"].startswith("average_precision")
    champion_before = admin.get_model_version_by_alias(MODEL, "champion").version

    weak = train(stack, "n_estimators=1", "max_depth=1", "learning_rate=0.01")
    decision = json.loads(stack.kit("champion", "--json").stdout)
    assert decision["model_version"] == weak["model_version"]
    assert decision["promoted"] is False and "<" in decision["reason"]
    assert admin.get_model_version_by_alias(MODEL, "champion").version == champion_before
    assert admin.get_model_version_by_alias(MODEL, "challenger").version == weak["model_version"]


def test_bad_hyperparameter_is_one_line_and_registers_nothing(
    runtime_stack: Stack, admin: MlflowClient
) -> None:
    stack = runtime_stack
    before = versions(admin)
    # The source validates its hyperparameters; the job's one-line reason is the error.
    line = one_error_line(stack.kit("train", "--set", "max_depth=99", check=False))
    assert line.startswith("error: training job fraud-classifier-")
    assert line.endswith("failed: max_depth: Input should be less than or equal to 12 (got '99')")
    line = one_error_line(stack.kit("train", "--runner", "kubeflow", check=False))
    assert (
        line == "error: unknown runner 'kubeflow'; choose one of native, local-container, sagemaker"
    )
    assert versions(admin) == before


def test_missing_channel_is_one_line_and_registers_nothing(
    runtime_stack: Stack, admin: MlflowClient, s3
) -> None:
    stack = runtime_stack
    stack.kit("data")
    before = versions(admin)
    s3.delete_object(Bucket=BUCKET, Key=f"datasets/{MODEL}/validation/data.csv")
    try:
        line = one_error_line(stack.kit("train", check=False))
        assert "input channel 'validation' is empty" in line
        assert f"run `invoke data --model {MODEL}` first" in line
        assert versions(admin) == before
    finally:
        stack.kit("data")


def test_unreachable_tracking_server_is_one_line_and_registers_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Native: the server's process group is killed as a crash would."""
    admin = admin_of(stack, monkeypatch)
    stack.kit("data")
    before = versions(admin)
    pid = stack.status()["services"]["mlflow"]["pid"]
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    try:
        line = one_error_line(stack.kit("train", check=False))
        assert line == "error: the local stack's mlflow is not up; run `invoke up`"
    finally:
        stack.kit("up")
    assert versions(admin) == before


def test_sagemaker_runner_through_the_task_against_the_emulator(prod: dict[str, str]) -> None:
    """`invoke train --runner sagemaker --env prod` against emulated prod (AWS_ENDPOINT_URL).

    moto accepts the job and marks it Completed without running the image, so the waiting path
    ends in the kit's own check, against prod's (emulated) registry, that the job registered
    something, which it did not.
    """
    endpoint = prod["AWS_ENDPOINT_URL"]
    repository = "222222222222.dkr.ecr.eu-west-1.amazonaws.com/t"
    ensure_stack_outputs(
        endpoint, {**PROD_OUTPUTS, "mlflow": {"TrainingRepositoryUri": repository}}
    )
    digest = "sha256:" + "cd" * 32
    args = ("train", "--runner", "sagemaker", "--env", "prod", "--image-digest", digest)
    from tests.cli import kit

    job = json.loads(kit(*args, "--no-wait", "--json", env=prod, check=True).stdout)
    sm = boto3.client(
        "sagemaker",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="emulator",
        aws_secret_access_key="emulator",
    )
    described = sm.describe_training_job(TrainingJobName=job["job_name"])
    assert described["AlgorithmSpecification"]["TrainingImage"] == f"{repository}@{digest}"
    # fraud-classifier is the fraud team's (teams.toml): its jobs run under the team's role
    # (the login they get is checked in tests/unit/runners/test_sagemaker_runner.py; moto's
    # DescribeTrainingJob returns no Environment).
    assert described["RoleArn"] == PROD_OUTPUTS["sagemaker"]["TeamRoleArnFraud"]
    assert described["VpcConfig"]["Subnets"] == ["subnet-1", "subnet-2"]

    line = one_error_line(kit(*args, env=prod))
    assert line.startswith("error: job fraud-classifier-") and "logged no MLflow run" in line
