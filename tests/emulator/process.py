"""Start the patched moto server (mlplatform/emulator/aws_server.py) for one test module.

    with patched_moto(account="222222222222", region="eu-west-1", log=tmp / "moto.log") as aws:
        aws.variables   # AWS_ENDPOINT_URL, keys, region, CDK_HOME ... for the kit or the CDK CLI
        aws.client("ecs")

The kit reaches it only through AWS_ENDPOINT_URL and throwaway keys, exactly as it reaches AWS.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from mlplatform.emulator.account import AUTHORIZATIONS_VARIABLE, finish_one_off_tasks

REPO = Path(__file__).resolve().parents[2]

__all__ = ["PatchedMoto", "free_port", "patched_moto"]


def free_port() -> int:
    """A TCP port nothing listens on right now (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PatchedMoto:
    """A running patched moto server and the variables that point a client at it."""

    endpoint: str
    region: str
    variables: dict[str, str]
    authorization_log: Path

    def authorizations(self) -> list[dict[str, Any]]:
        """Every IAM decision the strict emulator made so far (mlplatform.emulator.strict_iam)."""
        if not self.authorization_log.exists():
            return []
        lines = self.authorization_log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def client(self, service: str) -> Any:
        """A boto3 client of this emulator (throwaway keys, never a profile)."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def finish_one_off_tasks(self) -> None:
        """ECS tasks advance to STOPPED (container exit code 0) when described."""
        finish_one_off_tasks(self.endpoint)


@contextmanager
def patched_moto(account: str, region: str, log: Path, cdk_home: Path) -> Iterator[PatchedMoto]:
    """Run the patched moto server for `account` until the block ends.

    Its IAM decisions go to ``authorizations.jsonl`` beside `log`.
    """
    port = free_port()
    decisions = log.parent / "authorizations.jsonl"
    server = [sys.executable, "-m", "mlplatform.emulator.aws_server", "-H", "127.0.0.1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*server, "-p", str(port)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "MOTO_ACCOUNT_ID": account,
                AUTHORIZATIONS_VARIABLE: str(decisions),
            },
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"moto did not start:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        # "localhost", not 127.0.0.1: moto finds the bucket of a TemplateURL only in a
        # path-style URL on localhost; the CLI builds that URL from AWS_ENDPOINT_URL.
        endpoint = f"http://localhost:{port}"
        yield PatchedMoto(
            endpoint,
            region,
            authorization_log=decisions,
            variables={
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ENDPOINT_URL_S3": endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "CDK_HOME": str(cdk_home),
                "CDK_DISABLE_VERSION_CHECK": "1",
            },
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
