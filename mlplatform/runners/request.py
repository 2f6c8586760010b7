"""What a training run is asked to do, what it returns, and the code state it records."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlplatform.config import Environment
from mlplatform.errors import TrainingError
from training.hyperparameters import HyperparameterError, Hyperparameters, parse
from training.tracking import git

__all__ = ["TrainingRequest", "TrainingResult", "git_state", "new_request", "parse_overrides"]

CHANNELS = ("train", "validation")


@dataclass(frozen=True)
class TrainingRequest:
    """One job: environment, validated hyperparameters, a unique job name, the code state."""

    env: Environment
    hyperparameters: Hyperparameters
    job_name: str
    git_commit: str
    git_dirty: bool

    def channel_uri(self, bucket: str, channel: str) -> str:
        """Where a channel's files live in the environment's bucket."""
        return f"s3://{bucket}/{self.env.training.dataset_prefix}/{channel}/"

    def output_uri(self, bucket: str) -> str:
        """SageMaker's S3OutputPath; the model lands at <this>/<job>/output/model.tar.gz."""
        return f"s3://{bucket}/{self.env.training.output_prefix}"

    def job_environment(self) -> dict[str, str]:
        """Variables every runner gives the entry point: names and fingerprints, no secret."""
        return {
            "MLFLOW_CLIENT_SECRET_ID": self.env.client_secret_name,
            "MLP_MODEL_NAME": self.env.model_name,
            "MLP_GIT_COMMIT": self.git_commit,
            "MLP_GIT_DIRTY": str(self.git_dirty).lower(),
        }


@dataclass(frozen=True)
class TrainingResult:
    """The outcome as `invoke train --json` prints it."""

    run_id: str
    model_name: str
    model_version: str
    job_name: str
    runner: str
    model_artifact: str
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_job(
        cls, result: dict[str, Any], job_name: str, runner: str, model_artifact: str
    ) -> TrainingResult:
        """From the result.json the entry point writes into a job's output data."""
        return cls(
            run_id=result["run_id"],
            model_name=result["model_name"],
            model_version=str(result["model_version"]),
            job_name=job_name,
            runner=runner,
            model_artifact=model_artifact,
            metrics=result.get("metrics", {}),
        )


def parse_overrides(pairs: list[str]) -> Hyperparameters:
    """`--set key=value` pairs onto the defaults; TrainingError naming the bad key."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TrainingError(f"--set expects key=value, got {pair!r}")
        values[key.strip()] = value.strip()
    try:
        return parse(values)
    except HyperparameterError as exc:
        raise TrainingError(f"bad hyperparameter: {exc}") from exc


def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the checkout; ('unknown', True) outside a git work tree."""
    commit = git(["rev-parse", "HEAD"])
    if commit is None:
        return "unknown", True
    return commit, bool(git(["status", "--porcelain", "--untracked-files=no"]))


def new_request(env: Environment, overrides: list[str]) -> TrainingRequest:
    """A request with a unique, sortable job name (SageMaker allows 63 characters)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    commit, dirty = git_state()
    base = env.model_name[:38].replace("_", "-").replace(".", "-")
    name = f"{base}-{stamp}-{secrets.token_hex(2)}"
    return TrainingRequest(env, parse_overrides(overrides), name, commit, dirty)
