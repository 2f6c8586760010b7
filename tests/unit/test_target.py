"""mlplatform.target: one read of environments.toml; the one place telling local from cloud."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mlplatform import config
from mlplatform.errors import ConfigError, PlatformError, TrainingError
from mlplatform.paths import StatePaths
from mlplatform.target import Target, resolve_target, resolve_targets


def test_targets_come_from_one_read_of_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reads: list[object] = []
    real = config.load_environments

    def counting(path: object = None) -> dict[str, config.Environment]:
        reads.append(path)
        return real()

    monkeypatch.setattr("mlplatform.target.load_environments", counting)
    local, prod = resolve_targets("local", "prod", paths=StatePaths(tmp_path))
    assert len(reads) == 1
    assert (local.name, prod.name) == ("local", "prod")
    assert local.is_local and not prod.is_local
    assert local.paths == prod.paths == StatePaths(tmp_path)


def test_an_unknown_environment_is_one_line_naming_the_defined_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no \[qa\] table; defined: \['local', 'prod'"):
        resolve_target("qa", StatePaths(tmp_path))


def test_cloud_only_refuses_the_local_target_with_the_callers_error(tmp_path: Path) -> None:
    local, prod = resolve_targets("local", "prod", paths=StatePaths(tmp_path))
    prod.cloud_only("the sagemaker runner trains in a cloud environment", TrainingError)
    with pytest.raises(
        TrainingError,
        match=r"^the sagemaker runner trains in a cloud environment; use --env staging or prod$",
    ):
        local.cloud_only("the sagemaker runner trains in a cloud environment", TrainingError)
    with pytest.raises(PlatformError, match="the local environment has no stack network"):
        local.outputs("network", ("PrivateSubnetIds",))


def test_the_local_target_needs_the_stack_set_up(tmp_path: Path) -> None:
    local = resolve_target("local", StatePaths(tmp_path))
    with pytest.raises(PlatformError, match=r"not set up; run `invoke up` first"):
        local.registry()
    prod = resolve_target("prod", StatePaths(tmp_path))
    with pytest.raises(PlatformError, match="serves the local environment, not 'prod'"):
        prod.local_stack()


@mock_aws
def test_a_cloud_registry_is_its_url_variable_and_its_admin_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prod: Target = resolve_target("prod", StatePaths(tmp_path))
    monkeypatch.setenv("MLPLATFORM_MLFLOW_URL_PROD", "http://127.0.0.1:1")
    boto3.client("secretsmanager", region_name=prod.env.region).create_secret(
        Name=prod.env.admin_secret_name,
        SecretString=json.dumps({"username": "admin", "password": "s3cret-from-the-secret"}),
    )
    registry = prod.registry()
    assert (registry.env_name, registry.tracking_uri) == ("prod", "http://127.0.0.1:1")
    assert (registry.username, registry.password) == ("admin", "s3cret-from-the-secret")
    assert "s3cret" not in repr(registry)


@mock_aws
def test_a_cloud_target_reads_its_stacks_by_the_shared_names(tmp_path: Path) -> None:
    prod = resolve_target("prod", StatePaths(tmp_path))
    cfn = boto3.client("cloudformation", region_name=prod.env.region)
    template = {
        "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"PrivateSubnetIds": {"Value": "subnet-1,subnet-2"}},
    }
    assert prod.stack("network") is None
    cfn.create_stack(StackName=f"{prod.env.name_prefix}-network", TemplateBody=json.dumps(template))
    assert prod.outputs("network", ("PrivateSubnetIds",)) == {
        "PrivateSubnetIds": "subnet-1,subnet-2"
    }
    with pytest.raises(PlatformError, match=r"has no output ClusterName"):
        prod.outputs("network", ("ClusterName",))
