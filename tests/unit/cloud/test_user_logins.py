"""User logins in Secrets Manager (moto in-process): one secret a user, tagged with who made it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlplatform.cloud.user_logins import AD_HOC, FROM_TEAMS, Logins
from mlplatform.config import load_environment
from mlplatform.errors import PlatformError


@pytest.fixture
def sm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="eu-west-1")


def test_a_login_is_stored_read_listed_and_deleted(sm: Any) -> None:
    logins = Logins(load_environment("prod"), sm)
    assert logins.password("alice") is None
    logins.store("alice", "first", FROM_TEAMS)
    logins.store("dan", "other", AD_HOC)
    # Another secret under a longer name is not a login.
    sm.create_secret(Name="mlp-prod/mlflow-users-archive", SecretString="{}")
    assert logins.password("alice") == "first"
    value = json.loads(sm.get_secret_value(SecretId="mlp-prod/mlflow-users/alice")["SecretString"])
    assert value == {"username": "alice", "password": "first"}
    assert logins.managed() == {"alice": FROM_TEAMS, "dan": AD_HOC}
    logins.store("alice", "second", FROM_TEAMS)
    assert logins.password("alice") == "second"
    logins.delete("alice")
    logins.delete("alice")  # already gone: nothing to do
    assert logins.password("alice") is None
    assert logins.managed() == {"dan": AD_HOC}


def test_a_secret_that_is_not_a_login_is_one_line(sm: Any) -> None:
    sm.create_secret(Name="mlp-prod/mlflow-users/eve", SecretString="plain text")
    with pytest.raises(PlatformError, match="not a JSON object with username and password"):
        Logins(load_environment("prod"), sm).password("eve")
