"""Training operations as the tasks call them: upload data, train with a runner, run the gate.

Locally the endpoints and credentials come from the running stack's state; for a cloud
environment they come from boto3's own chain and the infrastructure's stack outputs, with
AWS_ENDPOINT_URL pointing at an emulator when one stands in for AWS.
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException

from mlplatform.cloud import aws
from mlplatform.config import Environment
from mlplatform.errors import TrainingError
from mlplatform.local.access import local_stack
from mlplatform.local.runtimes.base import Reporter
from mlplatform.paths import StatePaths
from mlplatform.registry.access import registry_for
from mlplatform.registry.client import authenticated_client
from mlplatform.registry.gate import GateDecision, run_gate
from mlplatform.runners.datasets import Upload, upload_channels
from mlplatform.runners.local_container import (
    LocalContainerRunner,
    check_engine,
    ensure_image,
    sdk_python,
)
from mlplatform.runners.native import NativeRunner
from mlplatform.runners.request import TrainingResult, new_request
from mlplatform.runners.sagemaker import SageMakerRunner, resolve_target

__all__ = ["RUNNERS", "champion", "train", "upload_data"]

RUNNERS = ("native", "local-container", "sagemaker")


def upload_data(env: Environment, paths: StatePaths) -> list[Upload]:
    """Generate the example's channels and upload them to the environment's bucket.

    Locally that is the stack's SeaweedFS; for a cloud environment its bucket through boto3's
    chain (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL for an emulation).
    """
    if env.name != "local":
        return upload_channels(env, aws.client("s3", region=env.region), env.bucket_name)
    creds, endpoints = local_stack(env, paths)
    return upload_channels(env, aws.local_client("s3", env, creds), endpoints.bucket)


def train(
    env: Environment,
    paths: StatePaths,
    runner: str,
    overrides: list[str],
    reporter: Reporter,
    image_digest: str | None = None,
    wait: bool = True,
) -> TrainingResult:
    """Validate the hyperparameters, then run one training job with the chosen runner."""
    if runner not in RUNNERS:
        raise TrainingError(f"unknown runner {runner!r}; choose one of {', '.join(RUNNERS)}")
    request = new_request(env, overrides)
    if runner == "sagemaker":
        if env.name == "local":
            raise TrainingError(
                "the sagemaker runner trains in a cloud environment; use --env staging or prod"
            )
        # boto3's own credential chain and AWS_ENDPOINT_URL: AWS, or an emulator standing in.
        cfn = aws.client("cloudformation", region=env.region)
        target = resolve_target(env, cfn, image_digest)
        sm = aws.client("sagemaker", region=env.region)
        finder = _registration_finder(env, paths)
        return SageMakerRunner(sm, target, finder).run(request, reporter, wait=wait)
    creds, endpoints = local_stack(env, paths)
    if runner == "native":
        log = paths.logs / "training" / f"{request.job_name}.log"
        client_login = (endpoints.tracking_uri, creds.client_username, creds.client_password)
        undo = _undo_registration(client_login, _alias_version(client_login, env.model_name))
        return NativeRunner(endpoints, aws.local_client("s3", env, creds), undo).run(
            request, reporter, log
        )
    # local-container: the training image under the SageMaker SDK's local mode.
    log = paths.logs / "training" / f"{request.job_name}.log"
    check_engine()
    image = ensure_image(reporter, log)
    python = sdk_python(reporter)
    client_login = (endpoints.tracking_uri, creds.client_username, creds.client_password)
    previous = _alias_version(client_login, env.model_name)
    return LocalContainerRunner(
        endpoints,
        aws.local_client("s3", env, creds),
        image,
        python,
        find_registration=_registered_by(client_login),
        unregister=_undo_registration(client_login, previous),
    ).run(request, reporter, log)


def _alias_version(login: tuple[str, str, str], name: str) -> str | None:
    """The version `challenger` names now (None when there is none)."""
    with authenticated_client(*login) as client:
        try:
            return str(client.get_model_version_by_alias(name, "challenger").version)
        except MlflowException:
            # No model yet, no alias, or (403) a model this user cannot read: nothing to restore.
            return None


def _undo_registration(login: tuple[str, str, str], previous: str | None) -> Any:
    """A callback that deletes a version and points `challenger` back where it was."""

    def undo(name: str, version: str) -> None:
        with authenticated_client(*login) as client:
            client.delete_model_version(name, version)
            if previous is not None:
                client.set_registered_model_alias(name, "challenger", previous)

    return undo


def _registered_by(login: tuple[str, str, str]) -> Any:
    """Look up, as the job's own MLflow user, the run and version a job registered (or None)."""

    def find(job_name: str) -> tuple[str, str] | None:
        with authenticated_client(*login) as client:
            try:
                experiments = [e.experiment_id for e in client.search_experiments()]
                runs = client.search_runs(
                    experiment_ids=experiments,
                    filter_string=f"tags.`mlp.training_job` = '{job_name}'",
                    max_results=1,
                )
                if not runs:
                    return None
                rid = runs[0].info.run_id
                found = client.search_model_versions(f"run_id = '{rid}'")
            except MlflowException:
                return None
            return (rid, str(found[0].version)) if found else None

    return find


def _registration_finder(env: Environment, paths: StatePaths) -> Any:
    """Look up, as the admin, the run and version a finished cloud job registered."""

    def find(job_name: str) -> tuple[str, str]:
        with registry_for(env.name, paths).client() as client:
            runs = client.search_runs(
                experiment_ids=[e.experiment_id for e in client.search_experiments()],
                filter_string=f"tags.`mlp.training_job` = '{job_name}'",
                max_results=1,
            )
            if not runs:
                raise TrainingError(f"job {job_name} completed but logged no MLflow run")
            rid = runs[0].info.run_id
            found = client.search_model_versions(f"run_id = '{rid}'")
            if not found:
                raise TrainingError(f"job {job_name} completed but registered no model version")
            return rid, str(found[0].version)

    return find


def champion(env: Environment, paths: StatePaths, model: str | None) -> GateDecision:
    """Run the promotion gate on the environment's registry as its admin."""
    with registry_for(env.name, paths).client() as client:
        return run_gate(
            client, model or env.model_name, env.training.gate_metric, env.training.min_improvement
        )
