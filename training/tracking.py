"""MLflow access for the job: credentials from Secrets Manager, reproducibility tags.

The job's environment carries only MLFLOW_TRACKING_URI and MLFLOW_CLIENT_SECRET_ID, so a
DescribeTrainingJob never shows a password; the secret is read here, in the job's process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from training.contract import Contract, channel_sha256

__all__ = ["TrackingError", "check_reachable", "git", "load_credentials", "reproducibility_tags"]

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


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


def git(args: list[str]) -> str | None:
    """Output of a git command in the checkout, or None (no git, not a work tree, failure)."""
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=PACKAGE_ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def lock_file() -> Path:
    """The training group's lock file (the image copies it beside the package)."""
    return Path(os.environ.get("MLP_LOCK_FILE", PACKAGE_ROOT / "requirements" / "training.txt"))


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
        hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else "unknown"
    )
    for name, folder in sorted(contract.channels.items()):
        tags[f"mlp.data.{name}.sha256"] = channel_sha256(folder)
    if os.environ.get("MLP_TRAINING_IMAGE"):
        tags["mlp.image"] = os.environ["MLP_TRAINING_IMAGE"]
        tags["mlp.image.digest"] = os.environ["MLP_TRAINING_IMAGE"].rpartition("@")[2]
    if os.environ.get("TRAINING_JOB_NAME"):
        tags["mlp.training_job"] = os.environ["TRAINING_JOB_NAME"]
    return tags
