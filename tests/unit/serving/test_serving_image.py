"""Which serving image an endpoint runs, and why a new image makes a new SageMaker model.

The image comes from the request, else the environment's pin, else the MLflow stack's record of
the last release of the model's source (ServingRepositoryUri@ the source's entry in
ServingImageDigest), read from CloudFormation (moto).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mlplatform.config import ModelSettings
from mlplatform.paths import StatePaths
from mlplatform.registry.packaging import PackagedModel
from mlplatform.serving.endpoints import EndpointRequest, _model_name, _serving_image
from mlplatform.serving.rollout import EndpointError
from mlplatform.target import Target, resolve_target

REPOSITORY = "222222222222.dkr.ecr.eu-west-1.amazonaws.com/mlp-prod/serving"
RELEASED = "sha256:" + "5" * 64
FORECAST = "sha256:" + "7" * 64
NAMED = "222222222222.dkr.ecr.eu-west-1.amazonaws.com/other@sha256:" + "6" * 64


@pytest.fixture
def prod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Target]:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")
    with mock_aws():
        yield resolve_target("prod", paths=StatePaths(tmp_path))


def record(target: Target, digest: str) -> None:
    """The MLflow stack's outputs as the infra step leaves them."""
    outputs = {"ServingRepositoryUri": REPOSITORY, "ServingImageDigest": digest}
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    boto3.client("cloudformation", region_name=target.env.region).create_stack(
        StackName="mlp-prod-mlflow", TemplateBody=json.dumps(template)
    )


def test_each_endpoint_serves_its_own_sources_image_the_release_recorded(prod: Target) -> None:
    record(prod, f"forecast={FORECAST},fraud={RELEASED}")
    assert _serving_image(prod, EndpointRequest(), "fraud-classifier") == f"{REPOSITORY}@{RELEASED}"
    models = {**prod.env.models, "demand": ModelSettings(source="examples/forecast")}
    two = Target(prod.env.model_copy(update={"models": models}), prod.paths)
    assert _serving_image(two, EndpointRequest(), "demand") == f"{REPOSITORY}@{FORECAST}"


def test_a_named_image_or_a_pin_wins_over_the_release(prod: Target) -> None:
    record(prod, f"fraud={RELEASED}")
    assert _serving_image(prod, EndpointRequest(image=NAMED), "fraud-classifier") == NAMED
    sagemaker = prod.env.sagemaker.model_copy(update={"serving_image": NAMED})
    pinned = Target(prod.env.model_copy(update={"sagemaker": sagemaker}), prod.paths)
    assert _serving_image(pinned, EndpointRequest(), "fraud-classifier") == NAMED


def test_no_released_image_says_how_to_release_one(prod: Target) -> None:
    record(prod, f"forecast={FORECAST}")  # another source's only
    with pytest.raises(
        EndpointError,
        match=r"^no serving image of source fraud in prod: release one with `invoke build --image "
        r"serving --env prod` and `invoke deploy --env prod`, or pass an ECR URI by digest$",
    ):
        _serving_image(prod, EndpointRequest(), "fraud-classifier")


def test_a_new_serving_image_makes_a_new_model_for_the_same_version(prod: Target) -> None:
    packaged = PackagedModel("fraud-classifier", "3", Path("model.tar.gz"), "a" * 64)
    released = f"{REPOSITORY}@{RELEASED}"
    first = _model_name(prod.env, "fraud-classifier", "3", packaged, released, True)
    assert first == _model_name(prod.env, "fraud-classifier", "3", packaged, released, True)
    assert first != _model_name(prod.env, "fraud-classifier", "3", packaged, NAMED, True)
    other_bytes = PackagedModel("fraud-classifier", "3", Path("model.tar.gz"), "b" * 64)
    assert first != _model_name(prod.env, "fraud-classifier", "3", other_bytes, released, True)
    assert first.startswith("mlp-prod-fraud-classifier-v3-") and len(first) <= 63
    # A serverless model is placed outside the VPC: another model, never the VPC one reused.
    assert first != _model_name(prod.env, "fraud-classifier", "3", packaged, released, False)
    # The VPC model's name is what it was before serverless endpoints existed (no redeploy).
    assert (
        first
        == "mlp-prod-fraud-classifier-v3-"
        + hashlib.sha256(f"{'a' * 64}\n{released}".encode()).hexdigest()[:8]
    )
