"""The local-container runner: the training image under the SageMaker Python SDK's local mode.

Where a container engine answers (Docker, or rootful Podman through
compose/standins/podman-env.sh), `invoke train --runner local-container`:

1. builds the training image as `invoke build --image training` does (mlplatform.images: the
   same reproducible build and archive, the engine's layer cache making a rebuild of unchanged
   inputs quick), and records the archive's digest: the one ECR stores the release under;
2. runs `Estimator(instance_type="local").fit()` (SDK v2) in the SDK's own virtualenv
   (local_mode_job.py): the SDK downloads the channels from the stack's S3 store, runs the
   container as SageMaker does (`train`, /opt/ml mounted), packs /opt/ml/model into model.tar.gz
   and uploads it to the same output path the native runner and SageMaker use;
3. reads the job's result (or its /opt/ml/output/failure) from output.tar.gz beside the model.

The container runs with host networking: the native stack listens on 127.0.0.1 only. The SDK
writes the session's AWS keys into its compose file in plain text, so the SDK's process gets the
local stack's keys and nothing else (the stack's credentials file, AWS_CONFIG_FILE=/dev/null, no
instance metadata, none of the caller's AWS_* variables); the container's environment holds
only the tracking URI and the *id* of the MLflow client secret, as a SageMaker job's does.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions

from mlplatform.config import REPO_ROOT
from mlplatform.errors import ImageError, TrainingError
from mlplatform.images.build import build_images, image_spec
from mlplatform.images.engine import engine_environment, find_engine
from mlplatform.local.access import LocalEndpoints
from mlplatform.paths import StatePaths
from mlplatform.reporting import Reporter
from mlplatform.runners.request import TrainingRequest, TrainingResult
from mlplatform.sources import Source
from mlplatform.sources.environment import locked_environment

__all__ = [
    "ENGINE_HINT",
    "LocalContainerRunner",
    "TrainingImage",
    "check_engine",
    "job_command",
    "sdk_python",
    "training_image",
]

ENGINE_HINT = (
    "start Docker (with Compose v2), or on Podman run "
    '`eval "$(compose/standins/podman-env.sh)"` (see compose/standins/README.md)'
)
SDK_LOCK = REPO_ROOT / "requirements" / "local-container.txt"
SDK_VENV = REPO_ROOT / ".venv-local-container"
JOB_SCRIPT = Path(__file__).with_name("local_mode_job.py")


# Variables that select and reach the engine (Docker contexts, Podman's API socket and config);
# the only ones of the caller's environment the engine commands get beyond child_env's.
def _run(cmd: list[str], timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        env=kwargs.pop("env", None) or engine_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        **kwargs,
    )


def check_engine() -> None:
    """TrainingError (one line, what to run) unless `docker` answers and has Compose v2.

    The SDK calls `docker compose` itself, so `docker` must be the command that answers: Docker,
    or podman-env.sh's shim in front of Podman.
    """
    if shutil.which("docker", path=engine_environment().get("PATH")) is None:
        raise TrainingError(f"the local-container runner needs a container engine: {ENGINE_HINT}")
    try:
        info = _run(["docker", "info"], timeout=30)
        if info.returncode != 0:
            reason = (info.stderr.strip().splitlines() or ["no answer"])[-1][:160]
            raise TrainingError(
                f"no container engine answers `docker info` ({reason}): {ENGINE_HINT}"
            )
        version = _run(["docker", "compose", "version", "--short"], timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise TrainingError(f"the container engine did not answer in 30 s: {ENGINE_HINT}") from exc
    short = version.stdout.strip().lstrip("v")
    if version.returncode != 0 or not short or short.startswith("1."):
        raise TrainingError(
            f"SageMaker local mode needs `docker compose` (Compose v2), found none: {ENGINE_HINT}"
        )


@dataclass(frozen=True)
class TrainingImage:
    """The image a job runs: the reference the engine resolves, and its registry digest."""

    reference: str  # the local tag, e.g. mlplatform/training-fraud:local
    digest: str  # the manifest digest of its archive: what ECR stores it under

    @property
    def uri(self) -> str:
        """`repository@digest`, as MLP_TRAINING_IMAGE (the run's mlp.image tags) carries it."""
        return f"{self.reference.rpartition(':')[0] or self.reference}@{self.digest}"


def job_command(python: Path) -> list[str]:
    """How the SDK's interpreter runs local_mode_job.py.

    -P: a script's own folder comes first on sys.path, and this one holds runners/sagemaker.py,
    which `import sagemaker` would then find instead of the SDK.
    """
    return [str(python), "-P", str(JOB_SCRIPT)]


def training_image(paths: StatePaths, source: Source, reporter: Reporter) -> TrainingImage:
    """The source's training image `invoke build` makes (built, or found in the engine's cache).

    The job runs it by its local tag and records the digest of the archive `invoke deploy`
    pushes: a run here names the same image a SageMaker job of the release runs.
    """
    try:
        spec = image_spec("training", source)
        built = build_images([spec], find_engine(), paths, reporter)[0]
    except ImageError as exc:
        raise TrainingError(str(exc)) from exc
    image = TrainingImage(reference=built.tag, digest=built.digest)
    reporter.done(f"training image {image.uri}")
    return image


def sdk_python(reporter: Reporter) -> Path:
    """The SageMaker SDK's own virtualenv (made from requirements/local-container.txt once)."""
    return locked_environment(SDK_VENV, SDK_LOCK, "the SageMaker SDK", reporter)


class LocalContainerRunner:
    """Runs one job in the training image through the SDK's local mode."""

    name = "local-container"

    def __init__(
        self,
        endpoints: LocalEndpoints,
        s3: Any,
        image: TrainingImage,
        python: Path,
        find_registration: Callable[[str], tuple[str, str] | None],
        unregister: Callable[[str, str], None],
    ) -> None:
        self.endpoints = endpoints
        self.s3 = s3
        self.image = image
        self.python = python
        # A job that registered a version and then failed (model upload, unreadable result)
        # leaves no version behind: the runner finds it by job name and deletes it.
        self.find_registration = find_registration
        self.unregister = unregister

    def job_spec(self, request: TrainingRequest, root: Path, result_file: Path) -> dict[str, Any]:
        """What local_mode_job.py runs (pure): channels, output path, the container's variables."""
        ep = self.endpoints
        environment = {
            **request.job_environment(),
            "MLFLOW_TRACKING_URI": ep.tracking_uri,
            "MLP_TRAINING_IMAGE": self.image.uri,
            "MLP_RUNNER": self.name,
            # Secrets Manager is the emulator; the container reads the MLflow secret itself.
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": ep.aws_url,
            "AWS_DEFAULT_REGION": ep.region,
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
        }
        return {
            "image": self.image.reference,
            "job_name": request.job_name,
            "region": ep.region,
            "s3_endpoint": ep.s3_url,
            "channels": {c: request.channel_uri(ep.bucket, c) for c in request.channels},
            "output_path": request.output_uri(ep.bucket),
            "hyperparameters": request.hyperparameters,
            "environment": environment,
            "container_root": str(root),
            "result_file": str(result_file),
        }

    def sdk_environment(self) -> dict[str, str]:
        """The SDK process's variables: the engine's, and only the local stack's AWS keys."""
        env = engine_environment()
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(self.endpoints.credentials_file),
            AWS_CONFIG_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_DEFAULT_REGION=self.endpoints.region,
            # The SDK's own notice; the choice of v2 is explained in docs/training.md.
            SAGEMAKER_SUPPRESS_V2_WARNING="1",
            PYTHONUNBUFFERED="1",
        )
        return env

    def run(self, request: TrainingRequest, reporter: Reporter, log_file: Path) -> TrainingResult:
        """Run one job to completion; TrainingError with the job's one-line reason on failure."""
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="mlp-local-mode-") as tmp:
            root, result_file = Path(tmp) / "root", Path(tmp) / "result.json"
            root.mkdir()
            spec = self.job_spec(request, root, result_file)
            reporter.step(
                f"training {request.job_name} in {self.image.reference} (log: {log_file})"
            )
            try:
                with open(log_file, "ab") as log:
                    subprocess.run(
                        job_command(self.python),
                        input=json.dumps(spec).encode(),
                        env=self.sdk_environment(),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        check=False,
                        timeout=request.compute.max_runtime_seconds + 600,
                    )
            except subprocess.TimeoutExpired:
                pass  # reported below as a job without a result
            finally:
                _compose_down(root, log_file)
            outcome = json.loads(result_file.read_text()) if result_file.exists() else {}
        output_key = f"{request.env.training.output_prefix}/{request.job_name}/output"
        try:
            files = self._output_files(output_key)
            if "model_data" not in outcome:
                reason = files.get("failure") or outcome.get("error") or "no result"
                raise TrainingError(f"training job {request.job_name} failed: {reason}")
            result = json.loads(files["data/result.json"])
        except BaseException:
            found = self.find_registration(request.job_name)
            if found is not None:
                self.unregister(request.model, found[1])
            raise
        reporter.done(
            f"trained and registered {result['model_name']} version {result['model_version']}"
        )
        reporter.done(f"model artifact at {outcome['model_data']}")
        return TrainingResult.from_job(result, request.job_name, self.name, outcome["model_data"])

    def _output_files(self, output_key: str) -> dict[str, str]:
        """The `failure` and `data/result.json` files of the job's output.tar.gz."""
        key = f"{output_key}/output.tar.gz"
        try:
            body = self.s3.get_object(Bucket=self.endpoints.bucket, Key=key)
        except botocore.exceptions.ClientError:
            return {}
        files = {}
        with tarfile.open(fileobj=io.BytesIO(body["Body"].read())) as archive:
            for member in archive.getmembers():
                name = member.name.removeprefix("./")
                if member.isfile() and name in ("failure", "data/result.json"):
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        files[name] = extracted.read().decode("utf-8", "replace").strip()
        return files


def _compose_down(root: Path, log_file: Path) -> None:
    """Remove the job's containers: the SDK's `up --abort-on-container-exit` leaves them."""
    with open(log_file, "ab") as log:
        for compose_file in sorted(root.glob("*/docker-compose.yaml")):
            subprocess.run(
                ["docker", "compose", "-f", str(compose_file), "down", "--remove-orphans"],
                env=engine_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=300,
            )
