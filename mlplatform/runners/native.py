"""The native runner: SageMaker's training-container contract emulated in a temporary /opt/ml.

It does what SageMaker does around a job: downloads the channels from S3, writes the config JSON
files, runs the entry point (in a subprocess with only the job's variables), packs the model dir
into model.tar.gz and uploads it under the output path. The entry point cannot tell the
difference, which is the point.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.exceptions

from mlp_training.job import MODEL_SUBDIR
from mlplatform.child_env import inherited_environment
from mlplatform.errors import TrainingError
from mlplatform.local.access import LocalEndpoints
from mlplatform.readiness import log_tail
from mlplatform.registry.archive import make_targz
from mlplatform.reporting import Reporter
from mlplatform.runners.datasets import download_channel
from mlplatform.runners.request import TrainingRequest, TrainingResult
from mlplatform.sources.environment import source_variables

__all__ = ["NativeRunner", "contract_tree", "job_outcome"]


def _trained_line(result: dict[str, Any]) -> str:
    """What a finished job made: a registered version, or (a reproduction) a run only."""
    if not result["model_version"]:
        return f"trained {result['model_name']} in run {result['run_id']} (not registered)"
    return f"trained and registered {result['model_name']} version {result['model_version']}"


def contract_tree(root: Path, request: TrainingRequest) -> dict[str, Path]:
    """Create SageMaker's /opt/ml layout under root and its config files; return the folders."""
    folders = {
        "prefix": root,
        "model": root / "model",
        "output_data": root / "output" / "data",
        "config": root / "input" / "config",
    }
    for channel in request.channels:
        folders[f"channel_{channel}"] = root / "input" / "data" / channel
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    config = folders["config"]
    (config / "hyperparameters.json").write_text(json.dumps(request.hyperparameters, indent=2))
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {
                c: {
                    "ContentType": request.source.content_type,
                    "TrainingInputMode": "File",
                    "S3DistributionType": "FullyReplicated",
                    "RecordWrapperType": "None",
                }
                for c in request.channels
            },
            indent=2,
        )
    )
    (config / "resourceconfig.json").write_text(
        json.dumps(
            {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
        )
    )
    return folders


class NativeRunner:
    """Runs the entry point as a local process under the emulated contract."""

    name = "native"

    def __init__(
        self,
        endpoints: LocalEndpoints,
        s3: Any,
        python: Path,
        unregister: Callable[[str, str], None] | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.s3 = s3
        # The interpreter of the source's own environment (mlplatform/sources/environment.py).
        self.python = python
        # Called with (model, version) when the run fails after the job registered a version,
        # so a failed `train` leaves no registered version behind.
        self.unregister = unregister

    def _environment(self, request: TrainingRequest, tree: dict[str, Path]) -> dict[str, str]:
        env = inherited_environment()
        env.update(request.job_environment())
        env.update(source_variables(request.source))
        env.update(
            MLFLOW_TRACKING_URI=self.endpoints.tracking_uri,
            # Fail fast on an unreachable server instead of MLflow's minutes of retries.
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="2",
            MLFLOW_HTTP_REQUEST_TIMEOUT="30",
            AWS_ENDPOINT_URL_SECRETS_MANAGER=self.endpoints.aws_url,
            AWS_SHARED_CREDENTIALS_FILE=str(self.endpoints.credentials_file),
            # Only the stack's keys: no ~/.aws/config profile, no instance metadata.
            AWS_CONFIG_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_DEFAULT_REGION=self.endpoints.region,
            TRAINING_JOB_NAME=request.job_name,
            MLP_RUNNER=self.name,
            SM_PREFIX=str(tree["prefix"]),
            SM_MODEL_DIR=str(tree["model"]),
            SM_OUTPUT_DATA_DIR=str(tree["output_data"]),
            SM_INPUT_CONFIG_DIR=str(tree["config"]),
            SM_CHANNELS=json.dumps(list(request.channels)),
            SM_HPS=json.dumps(request.hyperparameters),
        )
        for channel in request.channels:
            env[f"SM_CHANNEL_{channel.upper()}"] = str(tree[f"channel_{channel}"])
        return env

    def run(self, request: TrainingRequest, reporter: Reporter, log_file: Path) -> TrainingResult:
        """Run one job to completion; TrainingError with the job's one-line reason on failure."""
        with tempfile.TemporaryDirectory(prefix="mlp-train-") as tmp:
            tree = contract_tree(Path(tmp) / "opt" / "ml", request)
            reporter.step("downloading input channels")
            channels = request.channels
            files = sum(
                download_channel(
                    self.s3,
                    self.endpoints.bucket,
                    request.env,
                    request.model,
                    c,
                    tree[f"channel_{c}"],
                )
                for c in channels
            )
            reporter.done(f"downloaded {len(channels)} channels ({files} files)")
            reporter.step(f"training {request.job_name} (log: {log_file})")
            args = []
            for key, value in request.hyperparameters.items():
                args += [f"--{key}", value]
            entry = request.source.root / request.source.entry_point
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(log_file, "wb") as log:
                proc = subprocess.run(
                    [str(self.python), str(entry), *args],
                    cwd=tmp,
                    env=self._environment(request, tree),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            if proc.returncode != 0:
                failure = tree["prefix"] / "output" / "failure"
                reason = (
                    failure.read_text().strip()
                    if failure.exists()
                    else (log_tail(log_file, 1) or f"exit code {proc.returncode}")
                )
                raise TrainingError(f"training job {request.job_name} failed: {reason}")
            result = job_outcome(request, tree["output_data"], tree["model"], self.unregister)
            reporter.done(_trained_line(result))
            reporter.step("uploading model.tar.gz")
            try:
                artifact = self._upload_model(request, tree["model"], Path(tmp))
            except BaseException:
                if self.unregister is not None and result["model_version"]:
                    self.unregister(result["model_name"], str(result["model_version"]))
                raise
            reporter.done(f"model artifact at {artifact}")
        return TrainingResult.from_job(result, request.job_name, self.name, artifact)

    def _upload_model(self, request: TrainingRequest, model_dir: Path, tmp: Path) -> str:
        archive = tmp / "model.tar.gz"
        make_targz(model_dir, archive)
        key = f"{request.env.training.output_prefix}/{request.job_name}/output/model.tar.gz"
        try:
            self.s3.upload_file(str(archive), self.endpoints.bucket, key)
        except botocore.exceptions.ClientError as exc:
            raise TrainingError(
                f"cannot upload the model to s3://{self.endpoints.bucket}/{key}: {exc}"
            ) from exc
        return f"s3://{self.endpoints.bucket}/{key}"


def job_outcome(
    request: TrainingRequest,
    output_data: Path,
    model_dir: Path,
    unregister: Callable[[str, str], None] | None,
) -> dict[str, Any]:
    """The result a finished job wrote, checked against the contract.

    A job that exits 0 must have written output/data/result.json (mlp_training.run does) naming
    a version of its own model, and an MLflow model under /opt/ml/model/mlflow-model (what the
    endpoint serves); otherwise TrainingError, and a version it registered is deleted.
    """
    try:
        result = json.loads((output_data / "result.json").read_text(encoding="utf-8"))
        version = str(result["model_version"])
        run_id = str(result["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        raise TrainingError(
            f"training job {request.job_name} ended without a result: its entry point must "
            "finish through mlp_training.run (docs/training.md)"
        ) from None
    problem = None
    if bool(version) != request.register:
        problem = "it registered a version" if version else "it registered no version"
    elif result.get("model_name") != request.model:
        problem = f"it registered {result.get('model_name')!r}, not {request.model!r}"
    elif not (model_dir / MODEL_SUBDIR / "MLmodel").is_file():
        problem = f"it wrote no MLflow model to /opt/ml/model/{MODEL_SUBDIR}"
    if problem is not None:
        if unregister is not None and version and result.get("model_name") == request.model:
            unregister(request.model, version)
        raise TrainingError(f"training job {request.job_name} broke the contract: {problem}")
    return {**result, "model_version": version, "run_id": run_id}
