"""MLflow access for the job: credentials from Secrets Manager, reproducibility tags.

The job's environment carries only MLFLOW_TRACKING_URI and MLFLOW_CLIENT_SECRET_ID, so a
DescribeTrainingJob never shows a password; the secret is read here, in the job's process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from mlp_training.contract import Contract, channel_sha256

__all__ = [
    "MetricStream",
    "TrackingError",
    "check_reachable",
    "git",
    "load_credentials",
    "reproducibility_tags",
]


class TrackingError(RuntimeError):
    """The tracking server cannot be used (unreachable, refused, or no credentials)."""


def load_credentials(env: dict[str, str] | None = None) -> None:
    """Put the client user's credentials into this process's environment for MLflow."""
    env = dict(os.environ if env is None else env)
    secret_id = env.get("MLFLOW_CLIENT_SECRET_ID")
    if not secret_id:
        raise TrackingError("MLFLOW_CLIENT_SECRET_ID is not set")
    import boto3
    import botocore.exceptions

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
        secret = json.loads(value)
        os.environ["MLFLOW_TRACKING_USERNAME"] = str(secret["username"])
        os.environ["MLFLOW_TRACKING_PASSWORD"] = str(secret["password"])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise TrackingError(f"cannot read the MLflow client secret {secret_id!r}: {exc}") from exc
    except (json.JSONDecodeError, KeyError, TypeError):
        raise TrackingError(
            f"secret {secret_id!r} must hold JSON with username and password"
        ) from None


def check_reachable() -> None:
    """One authenticated call before any work, so a bad server fails fast and registers nothing."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith(("http://", "https://")):
        raise TrackingError(f"MLFLOW_TRACKING_URI must be the tracking server's URL, got {uri!r}")
    try:
        MlflowClient().search_experiments(max_results=1)
    except MlflowException as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise TrackingError(f"tracking server {uri} refused or unreachable: {first}") from None


class MetricStream:
    """Metrics logged from a training loop without waiting for the server.

    Each `log` hands the point to MLflow's asynchronous logger, which sends batches from a thread
    of its own, so the loop never waits on a round trip. A failed batch raises at the next `log`
    after it is known, and `close()` (leaving the `with` block, or the process exiting normally)
    waits for every point and raises the first failure: a server that goes away mid-run is an
    error, never a silent loss.
    """

    def __init__(self, run_id: str | None = None, buffer_seconds: int = 1) -> None:
        # Without a buffer MLflow's logger sends each queued point in a call of its own, no
        # faster than logging synchronously; with one it merges what arrived meanwhile. Whole
        # seconds: MLflow reads an integer, and its logging thread dies on anything else.
        os.environ.setdefault("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", str(buffer_seconds))
        import mlflow

        # Looked up once here, not on each point of the loop.
        self._log_metric = mlflow.log_metric
        self._run_id = run_id
        self._pending: deque[Future[Any]] = deque()
        # At exit MLflow's logger needs its thread pools, which refuse work once the
        # interpreter's threading shutdown hooks ran, before any `atexit` handler: a stream
        # left open lost all of its 500 points that way. So the flush hooks in there too,
        # ahead of the pools' own hook (the hooks run last in, first out).
        threading._register_atexit(self.close)  # type: ignore[attr-defined]

    def __enter__(self) -> MetricStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def log(self, key: str, value: float, step: int | None = None) -> None:
        """Queue one point (MLflow's own batching sends it); raise a failure already known."""
        run_id = self._run_id
        operations = self._log_metric(key, value, step=step, synchronous=False, run_id=run_id)
        # RunOperations offers only a blocking wait(); its futures let finished points be
        # dropped (and failures seen) without waiting on the ones still in flight.
        self._pending.extend(operations._operation_futures if operations else ())
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()

    def close(self) -> None:
        """Wait until the server holds every point logged; raise the first failure."""
        while self._pending:
            self._pending.popleft().result()


def git(args: list[str], cwd: Path | None = None) -> str | None:
    """Output of a git command in `cwd` (default: here), or None (no git, no work tree, failure)."""
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def lock_file() -> Path | None:
    """The source's lock file, as the runner names it (MLP_LOCK_FILE); None when it did not."""
    named = os.environ.get("MLP_LOCK_FILE")
    return Path(named) if named else None


def reproducibility_tags(contract: Contract, runner: str) -> dict[str, str]:
    """Tags that let anyone rebuild this run: code, data, image and dependency fingerprints.

    Git state comes from the runner (MLP_GIT_COMMIT/MLP_GIT_DIRTY) since a container has no .git;
    natively it is read from the checkout when the runner did not pass it.
    """
    commit = os.environ.get("MLP_GIT_COMMIT") or git(["rev-parse", "HEAD"]) or "unknown"
    dirty = os.environ.get("MLP_GIT_DIRTY")
    if dirty is None:
        status = git(["status", "--porcelain"])
        dirty = "unknown" if status is None else str(bool(status)).lower()
    tags = {"mlp.git.commit": commit, "mlp.git.dirty": dirty, "mlp.runner": runner}
    lock = lock_file()
    tags["mlp.lock.sha256"] = (
        hashlib.sha256(lock.read_bytes()).hexdigest()
        if lock is not None and lock.exists()
        else "unknown"
    )
    # The runner fingerprints the source it started (its files, as the kit read them).
    for key, variable in (("mlp.source", "MLP_SOURCE"), ("mlp.source.sha256", "MLP_SOURCE_SHA256")):
        if os.environ.get(variable):
            tags[key] = os.environ[variable]
    for name, folder in sorted(contract.channels.items()):
        tags[f"mlp.data.{name}.sha256"] = channel_sha256(folder)
    if os.environ.get("MLP_TRAINING_IMAGE"):
        tags["mlp.image"] = os.environ["MLP_TRAINING_IMAGE"]
        tags["mlp.image.digest"] = os.environ["MLP_TRAINING_IMAGE"].rpartition("@")[2]
    if os.environ.get("TRAINING_JOB_NAME"):
        tags["mlp.training_job"] = os.environ["TRAINING_JOB_NAME"]
    return tags
