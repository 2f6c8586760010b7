"""`invoke rotate-admin`: the admin password changes in MLflow and in its secret, and a rotation
that stopped part way is finished by the next run.

Against emulated staging (its real MLflow server, its secret in the local stack's moto): a
module of its own, since `invoke emulate` seeds the emulation's own admin password again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from mlplatform.registry.users import can_log_in, set_password
from tests.cli import exported, kit
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration
SECRET = "mlp-staging/mlflow-admin"


@pytest.fixture(scope="module")
def staging(stack: Stack) -> Iterator[dict[str, str]]:
    stack.kit("emulate", "--env", "staging")
    try:
        yield {**stack.env, **exported(stack.kit("env", "--env", "staging").stdout)}
    finally:
        stack.kit("emulate", "--env", "staging", "--down", "--volumes", check=False)


def secrets_manager(env: dict[str, str]) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def login(env: dict[str, str], stage: str = "AWSCURRENT") -> tuple[str, str]:
    value = secrets_manager(env).get_secret_value(SecretId=SECRET, VersionStage=stage)
    secret = json.loads(value["SecretString"])
    return secret["username"], secret["password"]


def logs_in(env: dict[str, str], user: tuple[str, str], wanted: bool) -> bool:
    """Whether MLflow comes to answer `wanted` for `user` (its login cache lasts 30 s)."""
    url = env["MLPLATFORM_MLFLOW_URL_STAGING"]
    deadline = time.monotonic() + 45
    while can_log_in(url, user) != wanted:
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def rotate(env: dict[str, str]) -> dict[str, Any]:
    result = kit("rotate-admin", "--env", "staging", "--json", env=env, check=True, timeout=300)
    assert result.stderr.count("Traceback") == 0
    return dict(json.loads(result.stdout))


def test_a_rotation_changes_the_password_in_mlflow_and_then_in_the_secret(
    staging: dict[str, str],
) -> None:
    before = login(staging)
    rotation = rotate(staging)
    assert rotation["secret"] == SECRET and rotation["resumed"] is False
    after = login(staging)
    assert after[0] == before[0] and after[1] != before[1]
    assert logs_in(staging, after, True)
    assert logs_in(staging, before, False)
    # Nothing pending is left for a next run to pick up.
    versions = secrets_manager(staging).list_secret_version_ids(SecretId=SECRET)["Versions"]
    assert not any("AWSPENDING" in v.get("VersionStages", []) for v in versions)


@pytest.mark.parametrize("stopped_after", ["staging the password", "setting it in MLflow"])
def test_a_rotation_that_stopped_part_way_is_finished_by_the_next(
    staging: dict[str, str], stopped_after: str
) -> None:
    sm = secrets_manager(staging)
    current = login(staging)
    pending = (current[0], f"pending-{uuid.uuid4().hex}")
    sm.put_secret_value(
        SecretId=SECRET,
        ClientRequestToken=str(uuid.uuid4()),
        SecretString=json.dumps({"username": pending[0], "password": pending[1]}),
        VersionStages=["AWSPENDING"],
    )
    if stopped_after == "setting it in MLflow":
        set_password(staging["MLPLATFORM_MLFLOW_URL_STAGING"], current, pending)
        assert logs_in(staging, pending, True)
    rotation = rotate(staging)
    assert rotation["resumed"] is True
    assert login(staging) == pending
    assert logs_in(staging, pending, True)
