"""Training operations as the tasks call them: upload data, train with a runner, run the gate.

Locally the endpoints and credentials come from the running stack's state; for a cloud
environment they come from boto3's own chain and the infrastructure's stack outputs, with
AWS_ENDPOINT_URL pointing at an emulator when one stands in for AWS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlplatform import aws
from mlplatform.config import Environment
from mlplatform.credentials import Credentials, load_or_create
from mlplatform.errors import PlatformError, TrainingError
from mlplatform.health import healthy
from mlplatform.paths import StatePaths
from mlplatform.registry import authenticated_client
from mlplatform.runtime.base import Reporter
from mlplatform.trainer.datasets import Upload, upload_channels
from mlplatform.trainer.gate import GateDecision, run_gate
from mlplatform.trainer.native import LocalEndpoints, NativeRunner
from mlplatform.trainer.request import TrainingResult, new_request

__all__ = ["RUNNERS", "champion", "train", "upload_data"]

RUNNERS = ("native", "local-container", "sagemaker")


def _local(env: Environment, paths: StatePaths) -> tuple[Credentials, LocalEndpoints]:
    if env.name != "local":
        raise PlatformError(f"the local stack serves the local environment, not {env.name!r}")
    if not (paths.secrets / "credentials.json").exists():
        raise PlatformError("the local stack is not set up; run `invoke up` first")
    creds = load_or_create(paths, env)[0]
    for service in ("s3", "aws", "mlflow"):
        if not healthy(service, env, creds):
            raise PlatformError(f"the local stack's {service} is not up; run `invoke up`")
    endpoints = LocalEndpoints(
        tracking_uri=f"http://127.0.0.1:{env.ports.mlflow}",
        s3_url=f"http://127.0.0.1:{env.ports.s3}",
        aws_url=f"http://127.0.0.1:{env.ports.aws}",
        credentials_file=paths.secrets / "aws-credentials",
        bucket=env.bucket_name,
        region=env.region,
    )
    return creds, endpoints


def _local_s3(creds: Credentials, endpoints: LocalEndpoints) -> Any:
    return aws.client(
        "s3",
        region=endpoints.region,
        endpoint_url=endpoints.s3_url,
        access_key=creds.s3_access_key,
        secret_key=creds.s3_secret_key,
    )


def upload_data(env: Environment, paths: StatePaths) -> list[Upload]:
    """Generate the example's channels and upload them to the environment's bucket."""
    creds, endpoints = _local(env, paths)
    return upload_channels(env, _local_s3(creds, endpoints), endpoints.bucket)


def train(
    env: Environment, paths: StatePaths, runner: str, overrides: list[str], reporter: Reporter
) -> TrainingResult:
    """Validate the hyperparameters, then run one training job with the chosen runner."""
    if runner not in RUNNERS:
        raise TrainingError(f"unknown runner {runner!r}; choose one of {', '.join(RUNNERS)}")
    request = new_request(env, overrides)
    if runner == "native":
        creds, endpoints = _local(env, paths)
        log = paths.logs / "training" / f"{request.job_name}.log"
        return NativeRunner(endpoints, _local_s3(creds, endpoints)).run(request, reporter, log)
    raise TrainingError(f"the {runner} runner is not available yet")


def champion(env: Environment, paths: StatePaths, model: str | None) -> GateDecision:
    """Run the promotion gate on the environment's registry as the admin."""
    creds, endpoints = _local(env, paths)
    with authenticated_client(
        endpoints.tracking_uri, creds.admin_username, creds.admin_password
    ) as client:
        return run_gate(
            client, model or env.model_name, env.training.gate_metric, env.training.min_improvement
        )


def log_dir(paths: StatePaths) -> Path:
    """Where training job logs are kept."""
    return paths.logs / "training"
