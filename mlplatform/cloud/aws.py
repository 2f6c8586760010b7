"""boto3 clients, secrets read as JSON, and seeding: secrets and the artifact bucket.

One code path for the emulator and for AWS: the only difference is the endpoint URL (None means
AWS's own) and the credentials.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from mlplatform.config import Environment
from mlplatform.errors import EmulatorError, PlatformError

__all__ = [
    "client",
    "ensure_bucket",
    "json_secret",
    "seed_secrets",
]

_RETRIES = botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"})


def client(
    service: str,
    *,
    region: str,
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> Any:  # boto3 clients are generated at run time
    """A boto3 client; explicit keys are used for the local stack, else boto3's own chain."""
    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
    )
    return session.client(service, endpoint_url=endpoint_url, config=_RETRIES)


def json_secret(
    env: Environment, secret_id: str, what: str, keys: tuple[str, ...] = ("username", "password")
) -> dict[str, Any]:
    """A JSON secret of a cloud environment through boto3's chain; PlatformError in one line.

    The secret must be a JSON object with at least `keys`.
    """
    sm = client("secretsmanager", region=env.region)
    try:
        value = json.loads(sm.get_secret_value(SecretId=secret_id)["SecretString"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise PlatformError(f"cannot read {env.name}'s {what} secret {secret_id}: {exc}") from exc
    except (ValueError, KeyError):
        value = None
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in keys):
        raise PlatformError(
            f"{env.name}'s {what} secret {secret_id} is not a JSON object with {', '.join(keys)}"
        )
    return value


def seed_secrets(sm: Any, values: dict[str, str]) -> list[str]:
    """Create or update each secret so it holds exactly `values[name]`; return the changed names."""
    changed = []
    try:
        for name, value in values.items():
            try:
                current = sm.get_secret_value(SecretId=name)["SecretString"]
            except sm.exceptions.ResourceNotFoundException:
                sm.create_secret(Name=name, SecretString=value)
                changed.append(name)
                continue
            if current != value:
                sm.put_secret_value(SecretId=name, SecretString=value)
                changed.append(name)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise EmulatorError(f"could not seed Secrets Manager: {exc}") from exc
    return changed


def ensure_bucket(s3: Any, bucket: str, region: str) -> bool:
    """Create the bucket if it does not exist; return True if it was created."""
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise EmulatorError(f"cannot reach bucket {bucket}: {exc}") from exc
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
    except botocore.exceptions.ClientError as exc:
        raise EmulatorError(f"cannot create bucket {bucket}: {exc}") from exc
    return True
