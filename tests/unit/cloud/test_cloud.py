"""mlplatform.cloud: boto3 clients, secrets and stack outputs, against moto in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from mlplatform.cloud import aws
from mlplatform.cloud.stack_outputs import describe_stack, mlflow_url, stack_outputs, subnet_ids
from mlplatform.config import Environment, load_environments
from mlplatform.errors import EndpointError, PlatformError

REGION = "us-east-1"


@pytest.fixture
def prod() -> Environment:
    return load_environments()["prod"]


@pytest.fixture
def cloud(prod: Environment) -> Iterator[None]:
    with mock_aws():
        yield


def _stack(name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


def test_seeding_writes_only_what_changed(cloud: None) -> None:
    sm = aws.client("secretsmanager", region=REGION)
    assert aws.seed_secrets(sm, {"a": "1", "b": "2"}) == ["a", "b"]
    assert aws.seed_secrets(sm, {"a": "1", "b": "3"}) == ["b"]
    assert sm.get_secret_value(SecretId="b")["SecretString"] == "3"


def test_ensure_bucket_creates_once(cloud: None) -> None:
    s3 = aws.client("s3", region=REGION)
    assert aws.ensure_bucket(s3, "kit-test-bucket", REGION) is True
    assert aws.ensure_bucket(s3, "kit-test-bucket", REGION) is False


def test_a_json_secret_without_its_keys_is_one_line(cloud: None, prod: Environment) -> None:
    sm = boto3.client("secretsmanager", region_name=prod.region)
    sm.create_secret(Name="half", SecretString=json.dumps({"username": "admin"}))
    with pytest.raises(PlatformError, match=r"^prod's MLflow admin secret half is not a JSON"):
        aws.json_secret(prod, "half", "MLflow admin")
    with pytest.raises(PlatformError, match=r"^cannot read prod's MLflow admin secret absent"):
        aws.json_secret(prod, "absent", "MLflow admin")


def test_outputs_are_read_and_missing_ones_named_with_the_callers_error(cloud: None) -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    assert describe_stack(cfn, "mlp-prod-network") is None
    with pytest.raises(EndpointError, match="stack mlp-prod-network is not deployed"):
        stack_outputs(cfn, "mlp-prod-network", ("PrivateSubnetIds",), EndpointError)
    _stack("mlp-prod-network", {"PrivateSubnetIds": "subnet-1,,subnet-2"})
    outputs = stack_outputs(cfn, "mlp-prod-network", ("PrivateSubnetIds",))
    assert subnet_ids(outputs) == ["subnet-1", "subnet-2"]
    with pytest.raises(EndpointError, match=r"\(CREATE_COMPLETE\) has no output ClusterName"):
        stack_outputs(cfn, "mlp-prod-network", ("ClusterName",), EndpointError)


def test_the_registry_url_variable_wins_over_the_stack_output(
    cloud: None, prod: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    monkeypatch.delenv("MLPLATFORM_MLFLOW_URL_PROD", raising=False)
    _stack(f"{prod.name_prefix}-mlflow", {"MlflowUrl": "https://mlflow.prod.internal"})
    assert mlflow_url(prod, cfn) == "https://mlflow.prod.internal"
    monkeypatch.setenv("MLPLATFORM_MLFLOW_URL_PROD", "http://127.0.0.1:15100")
    assert mlflow_url(prod, cfn) == "http://127.0.0.1:15100"
