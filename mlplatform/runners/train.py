"""`invoke data`, `invoke train` and `invoke champion` for one target: upload, train, gate.

Locally the endpoints and credentials come from the running stack; for a cloud environment from
boto3's own chain and the infrastructure's stack outputs, with AWS_ENDPOINT_URL pointing at an
emulator when one stands in for AWS (mlplatform.target hides which).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException

from mlplatform.errors import TrainingError
from mlplatform.local.aws_side import local_client
from mlplatform.names import team_training_user, user_secret_name
from mlplatform.registry.client import authenticated_client
from mlplatform.registry.gate import GateDecision, run_gate
from mlplatform.reporting import Reporter
from mlplatform.roster import load_roster
from mlplatform.runners.compute import one_instance
from mlplatform.runners.datasets import Upload, upload_channels
from mlplatform.runners.local_container import (
    LocalContainerRunner,
    check_engine,
    sdk_python,
    training_image,
)
from mlplatform.runners.native import NativeRunner
from mlplatform.runners.request import TrainingResult, new_request
from mlplatform.runners.sagemaker import SageMakerRunner, job_setup
from mlplatform.sources import model_source
from mlplatform.sources.environment import source_python
from mlplatform.target import Target

__all__ = ["RUNNERS", "TrainOptions", "champion", "registration_undo", "train", "upload_data"]

RUNNERS = ("native", "local-container", "sagemaker")


@dataclass(frozen=True)
class TrainOptions:
    """How to train: the model, the runner, hyperparameter overrides, the sagemaker options."""

    model: str | None = None  # default: the environment's only model (or the source's)
    runner: str = "native"
    overrides: tuple[str, ...] = ()
    # sagemaker: the training image in ECR (default: the pin in config, else the release's)
    image_digest: str | None = None
    wait: bool = True  # sagemaker: wait for the job to end (False: submit only)
    source: str | None = None  # a source folder to train instead of the model's configured one
    instance_count: int | None = None  # default: the model's [E.models.NAME.compute]


def upload_data(target: Target, model: str | None, reporter: Reporter) -> list[Upload]:
    """Generate a model's channels with its source's generator and upload them to the bucket.

    Locally that is the stack's SeaweedFS; for a cloud environment its bucket through boto3's
    chain (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL for an emulation).
    """
    env = target.env
    return upload_channels(env, model, target.client("s3"), env.bucket_name, reporter)


def train(target: Target, options: TrainOptions, reporter: Reporter) -> TrainingResult:
    """Check the model, its source and the overrides, then run one job with the chosen runner."""
    runner = options.runner
    if runner not in RUNNERS:
        raise TrainingError(f"unknown runner {runner!r}; choose one of {', '.join(RUNNERS)}")
    env = target.env
    request = new_request(
        env, options.model, list(options.overrides), options.source, options.instance_count
    )
    if runner != "sagemaker":
        one_instance(request.compute, runner)
    if runner == "sagemaker":
        target.cloud_only("the sagemaker runner trains in a cloud environment", TrainingError)
        # boto3's own credential chain and AWS_ENDPOINT_URL: AWS, or an emulator standing in.
        cfn = target.client("cloudformation")
        # A team's model trains under the team's role and logs in as the team's training user.
        owner = load_roster().owner(request.model)
        setup = job_setup(env, cfn, request.source.name, options.image_digest, owner)
        if owner is not None:
            login = user_secret_name(env, team_training_user(owner))
            request = dataclasses.replace(request, client_secret=login)
        finder = _registration_finder(target)
        return SageMakerRunner(target.client("sagemaker"), setup, finder).run(
            request, reporter, wait=options.wait
        )
    creds, endpoints = target.local_stack()
    log = target.paths.logs / "training" / f"{request.job_name}.log"
    s3 = local_client("s3", env, creds)
    client_login = (endpoints.tracking_uri, creds.client_username, creds.client_password)
    if runner == "native":
        python = source_python(request.source, reporter)
        undo = registration_undo(client_login, request.model)
        return NativeRunner(endpoints, s3, python, undo).run(request, reporter, log)
    # local-container: the training image under the SageMaker SDK's local mode.
    check_engine()
    image = training_image(target.paths, request.source, reporter)
    python = sdk_python(reporter)
    previous = _alias_version(client_login, request.model)
    return LocalContainerRunner(
        endpoints,
        s3,
        image,
        python,
        find_registration=_registered_by(client_login),
        unregister=_undo_registration(client_login, previous),
    ).run(request, reporter, log)


def registration_undo(login: tuple[str, str, str], model: str) -> Any:
    """A callback that deletes a version a job registered and restores `challenger` as now."""
    return _undo_registration(login, _alias_version(login, model))


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


def _registration_finder(target: Target) -> Any:
    """Look up, as the admin, the run and version a finished cloud job registered."""

    def find(job_name: str) -> tuple[str, str]:
        with target.registry().client() as client:
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


def champion(target: Target, model: str | None, user: str | None = None) -> GateDecision:
    """Run the promotion gate on the target's registry, on the source's metric.

    As `user` (their login from Secrets Manager), else as the admin; whoever it is, is
    recorded on the version made champion.
    """
    env = target.env
    name = env.model(model)
    gate = model_source(env, name).gate
    registry = target.registry(user)
    with registry.client() as client:
        return run_gate(
            client,
            name,
            gate.metric,
            env.training.min_improvement,
            gate.greater_is_better,
            actor=registry.username,
        )
