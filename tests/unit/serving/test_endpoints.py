"""SageMaker endpoint lifecycle against moto (in-process), with UpdateEndpoint added to it.

What moto cannot show: the blue/green rollout itself (canary/linear traffic shifting, baking,
rollback when an alarm fires) and scaling decisions; the tests check the requests SageMaker and
Application Auto Scaling would act on, and the kit's bookkeeping around them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import boto3
import pytest
from moto import mock_aws

from mlplatform.emulator.sagemaker_update_endpoint import update_endpoint_supported
from mlplatform.serving.rollout import (
    EndpointError,
    EndpointTarget,
    VariantPlan,
    deploy_endpoint,
    deployment_config,
    describe_endpoint,
    ensure_model,
    rollback,
    shift_traffic,
)

REGION = "eu-west-1"
TARGET = EndpointTarget("mlp-prod-fraud-classifier")
ROLE = "arn:aws:iam::123456789012:role/sm"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlflow-pyfunc@sha256:" + "e" * 64


def plan(variant: str, version: str, weight: float, instance: str = "ml.m5.large") -> VariantPlan:
    return VariantPlan(
        variant,
        "fraud-classifier",
        version,
        f"mlp-prod-fraud-classifier-v{version}",
        weight,
        instance,
        1,
        1,
        4,
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")
    with mock_aws(), update_endpoint_supported():
        clients = {
            s: boto3.client(s, region_name=REGION)
            for s in ("sagemaker", "application-autoscaling", "cloudwatch")
        }
        for version in ("1", "2", "3"):
            ensure_model(
                clients["sagemaker"],
                plan("champion", version, 1.0),
                IMAGE,
                f"s3://bucket/endpoint-models/fraud-classifier/{version}/model.tar.gz",
                ROLE,
                "a" * 64,
            )
        yield clients


def deploy(aws, plans, strategy="all-at-once"):  # type: ignore[no-untyped-def]
    return deploy_endpoint(
        aws["sagemaker"], aws["application-autoscaling"], aws["cloudwatch"], TARGET, plans, strategy
    )


def rows(aws) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {r["variant"]: r for r in describe_endpoint(aws["sagemaker"], TARGET.endpoint_name)}


def test_create_then_same_state_is_a_no_op(aws) -> None:  # type: ignore[no-untyped-def]
    first = deploy(aws, [plan("champion", "1", 1.0)])
    assert first.created and first.changed
    again = deploy(aws, [plan("champion", "1", 1.0)])
    assert not again.changed and again.config_name == first.config_name
    assert rows(aws)["champion"]["model_version"] == "1"


def test_ab_variants_keep_their_names_and_traffic_shifts_without_redeploy(aws) -> None:  # type: ignore[no-untyped-def]
    deploy(aws, [plan("champion", "1", 1.0)])
    outcome = deploy(aws, [plan("champion", "1", 0.9), plan("challenger", "2", 0.1)])
    assert outcome.changed and not outcome.created
    view = rows(aws)
    assert set(view) == {"champion", "challenger"}
    assert view["challenger"]["model_version"] == "2"
    config = outcome.config_name
    assert shift_traffic(aws["sagemaker"], TARGET.endpoint_name, 50) == {
        "champion": 50,
        "challenger": 50,
    }
    view = rows(aws)
    assert view["challenger"]["weight"] == 0.5 and view["champion"]["weight"] == 0.5
    assert view["champion"]["config"] == config  # weights moved, nothing redeployed


@pytest.mark.parametrize(
    ("strategy", "routing"),
    [("all-at-once", "ALL_AT_ONCE"), ("canary", "CANARY"), ("linear", "LINEAR")],
)
def test_update_sends_blue_green_config_with_alarm_rollback(aws, strategy, routing) -> None:  # type: ignore[no-untyped-def]
    from moto.backends import get_backend

    deploy(aws, [plan("champion", "1", 1.0)])
    deploy(aws, [plan("champion", "2", 1.0)], strategy)
    endpoint = get_backend("sagemaker")["123456789012"][REGION].endpoints[TARGET.endpoint_name]
    sent = endpoint.deployment_config
    assert sent["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == routing
    alarms = [a["AlarmName"] for a in sent["AutoRollbackConfiguration"]["Alarms"]]
    assert alarms == [
        f"{TARGET.endpoint_name}-champion-Invocation5XXErrors",
        f"{TARGET.endpoint_name}-champion-ModelLatency",
    ]
    described = aws["cloudwatch"].describe_alarms(AlarmNames=alarms)["MetricAlarms"]
    assert {a["MetricName"] for a in described} == {"Invocation5XXErrors", "ModelLatency"}
    assert all({"Name": "VariantName", "Value": "champion"} in a["Dimensions"] for a in described)


def test_canary_and_linear_shapes() -> None:
    canary = deployment_config("canary", ["a"])["BlueGreenUpdatePolicy"][
        "TrafficRoutingConfiguration"
    ]
    assert canary["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 10}
    linear = deployment_config("linear", ["a"])["BlueGreenUpdatePolicy"][
        "TrafficRoutingConfiguration"
    ]
    assert linear["LinearStepSize"] == {"Type": "CAPACITY_PERCENT", "Value": 20}


def test_autoscaling_is_registered_per_variant(aws) -> None:  # type: ignore[no-untyped-def]
    deploy(aws, [plan("champion", "1", 0.8), plan("challenger", "2", 0.2)])
    aas = aws["application-autoscaling"]
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert {t["ResourceId"] for t in targets} == {
        f"endpoint/{TARGET.endpoint_name}/variant/champion",
        f"endpoint/{TARGET.endpoint_name}/variant/challenger",
    }
    assert all((t["MinCapacity"], t["MaxCapacity"]) == (1, 4) for t in targets)
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    metric = {
        p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
            "PredefinedMetricType"
        ]
        for p in policies
    }
    assert metric == {"SageMakerVariantInvocationsPerInstance"}


def test_instance_type_change_takes_scaling_off_around_the_update(aws, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    deploy(aws, [plan("champion", "1", 1.0)])
    calls: list[str] = []
    aas = aws["application-autoscaling"]
    real_deregister, real_register = aas.deregister_scalable_target, aas.register_scalable_target
    monkeypatch.setattr(
        aas,
        "deregister_scalable_target",
        lambda **kw: calls.append("deregister") or real_deregister(**kw),
    )
    monkeypatch.setattr(
        aas,
        "register_scalable_target",
        lambda **kw: calls.append("register") or real_register(**kw),
    )
    real_update = aws["sagemaker"].update_endpoint
    monkeypatch.setattr(
        aws["sagemaker"],
        "update_endpoint",
        lambda **kw: calls.append("update") or real_update(**kw),
    )
    deploy(aws, [replace(plan("champion", "1", 1.0), instance_type="ml.c5.xlarge")])
    assert calls == ["deregister", "update", "register"]


def test_rollback_returns_to_the_previous_config(aws) -> None:  # type: ignore[no-untyped-def]
    first = deploy(aws, [plan("champion", "1", 1.0)])
    second = deploy(aws, [plan("champion", "3", 1.0)])
    assert rows(aws)["champion"]["model_version"] == "3"
    assert rollback(aws["sagemaker"], aws["application-autoscaling"], TARGET.endpoint_name) == (
        second.config_name,
        first.config_name,
    )
    assert rows(aws)["champion"]["model_version"] == "1"
    with pytest.raises(EndpointError, match="no previous config"):
        rollback(aws["sagemaker"], aws["application-autoscaling"], TARGET.endpoint_name)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda aws: deploy(aws, [plan("champion", "1", 1.0)], "blue-green"), "unknown strategy"),
        (lambda aws: deploy(aws, [plan("champion", "1", 0.5)]), "weights must add up to 1"),
        (lambda aws: deploy(aws, [plan("challenger", "1", 1.0)]), "needs a champion variant"),
        (
            lambda aws: shift_traffic(aws["sagemaker"], TARGET.endpoint_name, 120),
            "between 0 and 100",
        ),
        (lambda aws: shift_traffic(aws["sagemaker"], TARGET.endpoint_name, 10), "does not exist"),
    ],
)
def test_bad_requests_are_one_line_errors_and_change_nothing(aws, call, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EndpointError, match=message) as err:
        call(aws)
    assert "\n" not in str(err.value)
    assert describe_endpoint(aws["sagemaker"], TARGET.endpoint_name) == []


def test_adding_a_variant_is_a_direct_update_since_blue_green_needs_the_same_variants(aws) -> None:  # type: ignore[no-untyped-def]
    from moto.backends import get_backend

    deploy(aws, [plan("champion", "1", 1.0)])
    outcome = deploy(aws, [plan("champion", "1", 0.9), plan("challenger", "2", 0.1)], "canary")
    assert outcome.strategy == "direct (variants added or removed)"
    endpoint = get_backend("sagemaker")["123456789012"][REGION].endpoints[TARGET.endpoint_name]
    assert endpoint.deployment_config is None


def test_rollback_after_returning_to_an_earlier_state_goes_to_the_state_just_left(aws) -> None:  # type: ignore[no-untyped-def]
    a = deploy(aws, [plan("champion", "1", 1.0)])
    b = deploy(aws, [plan("champion", "2", 1.0)])
    again_a = deploy(aws, [plan("champion", "1", 1.0)])
    assert again_a.config_name == a.config_name and again_a.changed
    assert rollback(aws["sagemaker"], aws["application-autoscaling"], TARGET.endpoint_name) == (
        a.config_name,
        b.config_name,
    )
    assert rows(aws)["champion"]["model_version"] == "2"


def serverless(version: str, memory: int = 2048) -> VariantPlan:
    return replace(plan("champion", version, 1.0), serverless_memory_mib=memory)


def test_a_serverless_endpoint_has_a_serverless_config_no_instances_and_no_scaling(aws) -> None:  # type: ignore[no-untyped-def]
    outcome = deploy(aws, [serverless("1")])
    config = aws["sagemaker"].describe_endpoint_config(EndpointConfigName=outcome.config_name)
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    # SageMaker scales a serverless variant itself: no scaling target is registered for it.
    targets = aws["application-autoscaling"].describe_scalable_targets(ServiceNamespace="sagemaker")
    assert targets["ScalableTargets"] == []
    assert rows(aws)["champion"]["instances"] == "serverless 2048 MiB, up to 5 concurrent"
    # Another memory size is another config, and the update is an ordinary one.
    bigger = deploy(aws, [serverless("1", 4096)])
    assert bigger.changed and bigger.config_name != outcome.config_name


def test_serverless_refuses_a_challenger_and_an_instance_endpoint_it_cannot_convert(aws) -> None:  # type: ignore[no-untyped-def]
    two = [replace(serverless("1"), weight=0.9), replace(plan("challenger", "2", 0.1))]
    with pytest.raises(EndpointError, match=r"^a serverless endpoint has one variant"):
        deploy(aws, two)
    assert describe_endpoint(aws["sagemaker"], TARGET.endpoint_name) == []
    first = deploy(aws, [plan("champion", "1", 1.0)])
    with pytest.raises(EndpointError, match="cannot turn the instance-based endpoint") as err:
        deploy(aws, [serverless("2")])
    assert "delete-endpoint --endpoint-name mlp-prod-fraud-classifier" in str(err.value)
    assert rows(aws)["champion"]["config"] == first.config_name  # nothing changed


def test_an_instance_endpoints_config_keeps_the_name_it_had_before_serverless_existed(aws) -> None:  # type: ignore[no-untyped-def]
    outcome = deploy(aws, [plan("champion", "1", 1.0)])
    # The config name as the kit wrote it before VariantPlan had serverless fields.
    before = {
        "variant": "champion",
        "model_name": "fraud-classifier",
        "model_version": "1",
        "sagemaker_model": "mlp-prod-fraud-classifier-v1",
        "weight": 1.0,
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "min_instances": 1,
        "max_instances": 4,
    }
    digest = hashlib.sha256(json.dumps([before], sort_keys=True).encode()).hexdigest()[:12]
    assert outcome.config_name == f"{TARGET.endpoint_name}-{digest}"
