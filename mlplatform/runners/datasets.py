"""The training channels: generated deterministically and uploaded to the environment's bucket."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions

from mlplatform.config import Environment
from mlplatform.errors import TrainingError
from training.data import write_channels

__all__ = ["Upload", "upload_channels"]


@dataclass(frozen=True)
class Upload:
    """One uploaded channel file."""

    channel: str
    uri: str
    sha256: str
    changed: bool


def upload_channels(env: Environment, s3: Any, bucket: str) -> list[Upload]:
    """Generate the channels from environments.toml's [training] settings and upload them.

    Idempotent: an object whose stored sha256 matches is left alone.
    """
    cfg = env.training
    uploads = []
    with tempfile.TemporaryDirectory(prefix="mlp-data-") as tmp:
        files = write_channels(Path(tmp), cfg.rows, cfg.fraud_rate, cfg.seed)
        for channel, path in files.items():
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()
            key = f"{cfg.dataset_prefix}/{channel}/{path.name}"
            try:
                current = s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})
            except botocore.exceptions.ClientError:
                current = {}
            changed = current.get("sha256") != digest
            if changed:
                try:
                    s3.put_object(
                        Bucket=bucket,
                        Key=key,
                        Body=body,
                        ContentType="text/csv",
                        Metadata={"sha256": digest},
                    )
                except botocore.exceptions.ClientError as exc:
                    raise TrainingError(f"cannot upload s3://{bucket}/{key}: {exc}") from exc
            uploads.append(Upload(channel, f"s3://{bucket}/{key}", digest, changed))
    return uploads
