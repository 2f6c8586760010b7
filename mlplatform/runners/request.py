"""What a training run is asked to do, what it returns, and the code state it records."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlp_training.tracking import git
from mlplatform.config import Environment
from mlplatform.errors import TrainingError
from mlplatform.runners.compute import Compute, job_compute
from mlplatform.sources import Source, load_source, model_source

__all__ = [
    "TrainingRequest",
    "TrainingResult",
    "channel_prefix",
    "git_state",
    "job_name",
    "new_request",
    "parse_overrides",
    "resolve_model",
]


def resolve_model(env: Environment, model: str | None, source: str | None) -> tuple[str, Source]:
    """The model and source a `train` means.

    `--source DIR` trains that folder, as the model given, else as the one model configured with
    that source; without it, the model's configured source.
    """
    if source is None:
        name = env.model(model)
        return name, model_source(env, name)
    loaded = load_source(source)
    if model is not None:
        return env.model(model), loaded
    matching = [n for n, m in env.models.items() if load_source(m.source).root == loaded.root]
    if len(matching) != 1:
        raise TrainingError(
            f"no single model of {env.name} is configured with source {loaded.label} "
            f"({len(matching)} are): pass --model"
        )
    return matching[0], loaded


def channel_prefix(env: Environment, model: str, channel: str) -> str:
    """The key prefix of one channel of a model's data in the environment's bucket."""
    return f"{env.training.dataset_prefix}/{model}/{channel}/"


@dataclass(frozen=True)
class TrainingRequest:
    """One job: environment, model, source, hyperparameters, a unique job name, the code state."""

    env: Environment
    model: str
    source: Source
    # As strings, the form SageMaker passes them in; the source validates them.
    hyperparameters: dict[str, str]
    job_name: str
    git_commit: str
    git_dirty: bool
    compute: Compute
    # A reproduction trains into an experiment of its own and registers nothing.
    experiment: str | None = None
    register: bool = True
    # The secret of the MLflow login the job uses (None: the environment's client user's).
    client_secret: str | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        """The input channels the source declares."""
        return self.source.channels

    def channel_uri(self, bucket: str, channel: str) -> str:
        """Where a channel's files live in the environment's bucket."""
        return f"s3://{bucket}/{channel_prefix(self.env, self.model, channel)}"

    def output_uri(self, bucket: str) -> str:
        """SageMaker's S3OutputPath; the model lands at <this>/<job>/output/model.tar.gz."""
        return f"s3://{bucket}/{self.env.training.output_prefix}"

    def checkpoint_uri(self, bucket: str) -> str:
        """Where SageMaker keeps this job's /opt/ml/checkpoints (a restarted spot job resumes)."""
        prefix = self.env.training.checkpoint_prefix
        return f"s3://{bucket}/{prefix}/{self.model}/{self.job_name}/"

    def job_environment(self) -> dict[str, str]:
        """Variables every runner gives the entry point: names and fingerprints, no secret."""
        return {
            "MLFLOW_CLIENT_SECRET_ID": self.client_secret or self.env.client_secret_name,
            "MLP_MODEL_NAME": self.model,
            "MLP_GIT_COMMIT": self.git_commit,
            "MLP_GIT_DIRTY": str(self.git_dirty).lower(),
            "MLP_SOURCE": self.source.label,
            "MLP_SOURCE_SHA256": self.source.sha256(),
            **({"MLP_EXPERIMENT": self.experiment} if self.experiment else {}),
            **({} if self.register else {"MLP_REGISTER": "false"}),
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


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`--set key=value` pairs as the job's hyperparameters; TrainingError naming a bad pair."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,255}", key):
            raise TrainingError(f"--set expects key=value, got {pair!r}")
        values[key] = value.strip()
    return values


def git_state(folder: Path | None = None) -> tuple[str, bool]:
    """(commit, dirty) of the work tree holding `folder` (default: the current directory).

    ('unknown', True) outside a git work tree.
    """
    commit = git(["rev-parse", "HEAD"], folder)
    if commit is None:
        return "unknown", True
    return commit, bool(git(["status", "--porcelain", "--untracked-files=no"], folder))


def job_name(model: str, marker: str = "") -> str:
    """A unique, sortable job name in SageMaker's 63 characters: <model><marker>-<time>-<hex>."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = model[: 38 - len(marker)].replace("_", "-").replace(".", "-")
    return f"{base}{marker}-{stamp}-{secrets.token_hex(2)}"


def new_request(
    env: Environment,
    model: str | None,
    overrides: list[str],
    source_dir: str | None = None,
    instance_count: int | None = None,
) -> TrainingRequest:
    """A request with a unique, sortable job name (SageMaker allows 63 characters)."""
    model, source = resolve_model(env, model, source_dir)
    compute = job_compute(env, model, instance_count)
    commit, dirty = git_state(source.root)
    name = job_name(model)
    hyperparameters = parse_overrides(overrides)
    return TrainingRequest(env, model, source, hyperparameters, name, commit, dirty, compute)
