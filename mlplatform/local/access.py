"""Access to the running local stack for the tasks that use it (train, serve, promote).

Checks that the stack is up and returns its credentials and endpoints, so a task fails with
"run `invoke up`" instead of a connection error deep inside a library.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlplatform.config import Environment
from mlplatform.errors import PlatformError
from mlplatform.local.credentials import Credentials, load_or_create
from mlplatform.local.health import healthy
from mlplatform.paths import StatePaths

__all__ = ["LocalEndpoints", "local_stack"]


@dataclass(frozen=True)
class LocalEndpoints:
    """Where the local stack is: tracking URI, S3 and emulator endpoints, the credentials file."""

    tracking_uri: str
    s3_url: str
    aws_url: str
    credentials_file: Path
    bucket: str
    region: str


def local_stack(
    env: Environment, paths: StatePaths, services: tuple[str, ...] = ("s3", "aws", "mlflow")
) -> tuple[Credentials, LocalEndpoints]:
    """The stack's credentials and endpoints; PlatformError if a needed service is not up."""
    if not (paths.secrets / "credentials.json").exists():
        raise PlatformError("the local stack is not set up; run `invoke up` first")
    creds = load_or_create(paths, env)[0]
    for service in services:
        if not healthy(service, env, creds, paths):
            raise PlatformError(f"the local stack's {service} is not up; run `invoke up`")
    return creds, LocalEndpoints(
        tracking_uri=f"http://127.0.0.1:{env.ports.mlflow}",
        s3_url=f"http://127.0.0.1:{env.ports.s3}",
        aws_url=f"http://127.0.0.1:{env.ports.aws}",
        credentials_file=paths.secrets / "aws-credentials",
        bucket=env.bucket_name,
        region=env.region,
    )
