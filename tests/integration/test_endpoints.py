"""`invoke deploy-endpoint` / `endpoints` / `traffic` / `rollback` against emulated prod.

The registry is emulated prod's MLflow, the AWS side the moto server. moto has no UpdateEndpoint,
so through the tasks only the create path and the requests around it run here; updates, rollouts,
rollback and scaling around instance-type changes are tested on a moto with UpdateEndpoint added
(tests/unit/serving/test_endpoints.py).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from pathlib import Path

import boto3
import pytest

from mlplatform.registry.client import authenticated_client
from mlplatform.registry.packaging import package_version
from tests.cli import kit
from tests.integration.conftest import PROD_OUTPUTS, Stack, ensure_stack_outputs, prod_admin

pytestmark = pytest.mark.integration
MODEL = "fraud-classifier"
IMAGE = "222222222222.dkr.ecr.eu-west-1.amazonaws.com/mlflow-pyfunc@sha256:" + "f" * 64
ENDPOINT = "mlp-prod-fraud-classifier"
_CHAMPION: dict[str, str] = {}


def one_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def champion_in_prod(stack: Stack, prod: dict[str, str]) -> dict[str, str]:
    """A locally trained version promoted to prod and made champion there (once per module)."""
    if _CHAMPION:
        return _CHAMPION
    stack.kit("data")
    trained = json.loads(stack.kit("train", "--json", "--set", "n_estimators=20").stdout)
    promoted = json.loads(
        kit(
            "promote",
            "--version",
            trained["model_version"],
            "--to",
            "prod",
            "--json",
            env=prod,
            check=True,
        ).stdout
    )
    user, password = prod_admin(prod)
    with authenticated_client(prod["MLPLATFORM_MLFLOW_URL_PROD"], user, password) as client:
        client.set_registered_model_alias(MODEL, "champion", promoted["target_version"])
    ensure_stack_outputs(prod["AWS_ENDPOINT_URL"], PROD_OUTPUTS)
    _CHAMPION.update(
        local_version=trained["model_version"], prod_version=promoted["target_version"]
    )
    return _CHAMPION


def test_deploy_creates_the_endpoint_with_the_locally_tested_archive(
    stack: Stack, prod: dict[str, str], champion_in_prod: dict[str, str]
) -> None:
    result = kit(
        "deploy-endpoint", "--env", "prod", "--image", IMAGE, "--json", env=prod, check=True
    )
    outcome = json.loads(result.stdout)
    assert outcome["created"] is True and outcome["endpoint_name"] == ENDPOINT
    [variant] = outcome["variants"]
    assert variant["variant"] == "champion"
    assert variant["model_version"] == champion_in_prod["prod_version"]

    # The archive in prod's bucket is byte for byte what `invoke serve` packs from the local
    # version that was trained and tested: packed here the way serve_local packs it (the same
    # call, on the local registry, logged in as the client user `invoke env` gives).
    local = stack.client_env()
    with (
        tempfile.TemporaryDirectory() as tmp,
        authenticated_client(
            local["MLFLOW_TRACKING_URI"],
            local["MLFLOW_TRACKING_USERNAME"],
            local["MLFLOW_TRACKING_PASSWORD"],
        ),
    ):
        tested = package_version(
            local["MLFLOW_TRACKING_URI"], MODEL, champion_in_prod["local_version"], Path(tmp)
        )
        with tarfile.open(tested.archive) as archive:
            # MLflow's download adds the registry's version number, which differs per registry.
            assert "registered_model_meta" not in archive.getnames()
        # Hashed here from the file, not taken from what the packing reports.
        tested_sha256 = hashlib.sha256(tested.archive.read_bytes()).hexdigest()
    sm = boto3.client(
        "sagemaker",
        endpoint_url=prod["AWS_ENDPOINT_URL"],
        region_name="eu-west-1",
        aws_access_key_id="emulator",
        aws_secret_access_key="emulator",
    )
    model = sm.describe_model(ModelName=variant["sagemaker_model"])
    data_url = model["PrimaryContainer"]["ModelDataUrl"]
    assert tested_sha256[:12] in data_url and model["PrimaryContainer"]["Image"] == IMAGE
    bucket, _, key = data_url.removeprefix("s3://").partition("/")
    s3 = boto3.client(
        "s3",
        endpoint_url=prod["AWS_ENDPOINT_URL_S3"],
        region_name="eu-west-1",
        aws_access_key_id=prod["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=prod["AWS_SECRET_ACCESS_KEY"],
    )
    # The object's own bytes, downloaded: the key and the sha256 metadata are written by the same
    # upload, so they would still match if different bytes had been uploaded under them.
    deployed = s3.get_object(Bucket=bucket, Key=key)
    assert hashlib.sha256(deployed["Body"].read()).hexdigest() == tested_sha256
    assert deployed["Metadata"]["sha256"] == tested_sha256
    assert model["VpcConfig"]["Subnets"] == ["subnet-1", "subnet-2"]

    rows = json.loads(kit("endpoints", "--env", "prod", "--json", env=prod, check=True).stdout)
    assert [(r["variant"], r["model_version"]) for r in rows] == [
        ("champion", champion_in_prod["prod_version"])
    ]

    again = json.loads(
        kit(
            "deploy-endpoint", "--env", "prod", "--image", IMAGE, "--json", env=prod, check=True
        ).stdout
    )
    assert again["changed"] is False and again["config_name"] == outcome["config_name"]


def test_bad_input_is_one_line(prod: dict[str, str], champion_in_prod) -> None:  # type: ignore[no-untyped-def]
    deploy = ("deploy-endpoint", "--env", "prod", "--image", IMAGE)
    assert "unknown strategy 'blue-green'" in one_error(
        kit(*deploy, "--strategy", "blue-green", env=prod)
    )
    assert one_error(kit(*deploy, "--challenger", "140", env=prod)) == (
        "error: --challenger must be between 0 and 100, got 140"
    )
    assert one_error(kit("traffic", "--env", "prod", "--challenger", "20", env=prod)) == (
        f"error: endpoint {ENDPOINT} has no challenger variant; deploy one first"
    )
    assert "no previous config" in one_error(kit("rollback", "--env", "prod", env=prod))
    staging = {**prod, "AWS_DEFAULT_REGION": "eu-west-1"}
    assert one_error(kit("deploy-endpoint", "--env", "staging", "--image", IMAGE, env=staging)) == (
        "error: stack mlp-staging-sagemaker is not deployed; run `invoke deploy-infra` first"
    )
