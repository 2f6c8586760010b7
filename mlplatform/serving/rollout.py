"""SageMaker endpoints from the registry: stable variants, A/B weights, guarded rollouts.

The endpoint `<prefix>-<model>` carries up to two production variants whose names never change,
`champion` and `challenger`, so scaling targets and alarms keep pointing at the same things
across deploys (MLflow's own SageMaker target renames variants on every deploy). Each deploy
writes a new endpoint config named by a digest of its content, so deploying the same state twice
changes nothing, and records the config it replaces in a tag, which is what `rollback` returns to.
Updates go through blue/green DeploymentConfig (all at once, canary or linear) with automatic
rollback on the CloudWatch alarms created here; target-tracking autoscaling is registered for
each variant and taken off around an instance-type change, as SageMaker requires. A serverless
variant (VariantPlan.serverless_memory_mib) has a ServerlessConfig instead of instances, scales
itself (no scaling target) and is alone on its endpoint, as SageMaker requires.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import botocore.exceptions

from mlplatform.errors import EndpointError

__all__ = [
    "STRATEGIES",
    "DeployOutcome",
    "EndpointError",
    "EndpointTarget",
    "VariantPlan",
    "deploy_endpoint",
    "deployment_config",
    "describe_endpoint",
    "ensure_model",
    "rollback",
    "shift_traffic",
]

STRATEGIES = ("all-at-once", "canary", "linear")
Strategy = Literal["all-at-once", "canary", "linear"]
PREVIOUS_TAG = "mlp:previous-config"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@dataclass(frozen=True)
class VariantPlan:
    """One production variant as a deploy wants it."""

    variant: str
    model_name: str
    model_version: str
    sagemaker_model: str
    weight: float
    instance_type: str
    instance_count: int
    min_instances: int
    max_instances: int
    # Set: a Serverless Inference variant of this memory, instead of instances.
    serverless_memory_mib: int | None = None
    serverless_max_concurrency: int = 5

    def production_variant(self) -> dict[str, Any]:
        """The variant as CreateEndpointConfig takes it."""
        variant: dict[str, Any] = {
            "VariantName": self.variant,
            "ModelName": self.sagemaker_model,
            "InitialVariantWeight": self.weight,
        }
        if self.serverless_memory_mib is None:
            variant.update(
                InitialInstanceCount=self.instance_count, InstanceType=self.instance_type
            )
        else:
            variant["ServerlessConfig"] = {
                "MemorySizeInMB": self.serverless_memory_mib,
                "MaxConcurrency": self.serverless_max_concurrency,
            }
        return variant


@dataclass(frozen=True)
class EndpointTarget:
    """The endpoint and what its alarms and scaling are tuned to."""

    endpoint_name: str
    invocations_per_instance: float = 100.0
    latency_alarm_ms: float = 500.0
    error_alarm_count: float = 5.0


@dataclass(frozen=True)
class DeployOutcome:
    """What a deploy did (`changed` is False when the endpoint already had this config)."""

    endpoint_name: str
    config_name: str
    previous_config: str | None
    changed: bool
    created: bool
    strategy: str


def _call(fn: Any, **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except botocore.exceptions.ClientError as exc:
        raise EndpointError(f"{fn.__name__}: {exc.response['Error'].get('Message', exc)}") from exc


def ensure_model(
    sm: Any,
    plan: VariantPlan,
    image: str,
    model_data_url: str,
    role_arn: str,
    sha256: str,
    vpc: dict[str, list[str]] | None = None,
) -> bool:
    """Create the SageMaker model of a registry version once; True if it was created.

    Its name is fixed per version, so a second deploy of the same version reuses it.
    """
    try:
        sm.describe_model(ModelName=plan.sagemaker_model)
        return False
    except botocore.exceptions.ClientError:
        pass
    kwargs: dict[str, Any] = {
        "ModelName": plan.sagemaker_model,
        "ExecutionRoleArn": role_arn,
        "PrimaryContainer": {
            "Image": image,
            "ModelDataUrl": model_data_url,
            # MLflow's pyfunc serving container reads these.
            "Environment": {
                "MLFLOW_DEPLOYMENT_FLAVOR_NAME": "python_function",
                "SERVING_ENVIRONMENT": "SageMaker",
            },
        },
        "Tags": [
            {"Key": "mlp:model", "Value": plan.model_name},
            {"Key": "mlp:version", "Value": plan.model_version},
            {"Key": "mlp:sha256", "Value": sha256},
        ],
    }
    if vpc:
        kwargs["VpcConfig"] = {
            "Subnets": vpc["subnets"],
            "SecurityGroupIds": vpc["security_groups"],
        }
    _call(sm.create_model, **kwargs)
    return True


def deployment_config(
    strategy: str,
    alarms: list[str],
    wait_seconds: int = 300,
    canary_percent: int = 10,
    linear_percent: int = 20,
) -> dict[str, Any]:
    """The blue/green DeploymentConfig of an update, rolling back on any of `alarms`."""
    if strategy not in STRATEGIES:
        raise EndpointError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    routing: dict[str, Any] = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    if strategy == "canary":
        routing = {
            "Type": "CANARY",
            "WaitIntervalInSeconds": wait_seconds,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": canary_percent},
        }
    elif strategy == "linear":
        routing = {
            "Type": "LINEAR",
            "WaitIntervalInSeconds": wait_seconds,
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": linear_percent},
        }
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": wait_seconds,
            "MaximumExecutionTimeoutInSeconds": max(1800, wait_seconds * 8),
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in alarms]},
    }


def _identity(plan: VariantPlan) -> dict[str, Any]:
    """What names a plan's config.

    An instance plan leaves out the serverless fields, so the configs deployed before they
    existed keep their names (an upgrade redeploys nothing).
    """
    fields = dict(plan.__dict__)
    if plan.serverless_memory_mib is None:
        del fields["serverless_memory_mib"], fields["serverless_max_concurrency"]
    return fields


def _config_name(endpoint: str, plans: list[VariantPlan]) -> str:
    body = json.dumps([_identity(p) for p in plans], sort_keys=True).encode()
    return f"{endpoint}-{hashlib.sha256(body).hexdigest()[:12]}"


def _ensure_alarms(cw: Any, target: EndpointTarget, plans: list[VariantPlan]) -> list[str]:
    names = []
    for plan in plans:
        dims = [
            {"Name": "EndpointName", "Value": target.endpoint_name},
            {"Name": "VariantName", "Value": plan.variant},
        ]
        for metric, threshold, stat in (
            ("Invocation5XXErrors", target.error_alarm_count, "Sum"),
            ("ModelLatency", target.latency_alarm_ms * 1000, "Average"),  # microseconds
        ):
            name = f"{target.endpoint_name}-{plan.variant}-{metric}"
            _call(
                cw.put_metric_alarm,
                AlarmName=name,
                Namespace="AWS/SageMaker",
                MetricName=metric,
                Dimensions=dims,
                Statistic=stat,
                Period=60,
                EvaluationPeriods=2,
                DatapointsToAlarm=2,
                Threshold=threshold,
                ComparisonOperator="GreaterThanThreshold",
                TreatMissingData="notBreaching",
                AlarmDescription=f"{plan.variant} of {target.endpoint_name}: {metric} high; "
                "rolls back a deployment in progress",
            )
            names.append(name)
    return names


def _resource(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def _register_scaling(aas: Any, target: EndpointTarget, plans: list[VariantPlan]) -> None:
    for plan in plans:
        if plan.serverless_memory_mib is not None:
            continue  # SageMaker scales a serverless variant itself
        resource = _resource(target.endpoint_name, plan.variant)
        _call(
            aas.register_scalable_target,
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=SCALABLE_DIMENSION,
            MinCapacity=plan.min_instances,
            MaxCapacity=plan.max_instances,
        )
        _call(
            aas.put_scaling_policy,
            PolicyName=f"{target.endpoint_name}-{plan.variant}-invocations",
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=SCALABLE_DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": target.invocations_per_instance,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "ScaleInCooldown": 300,
                "ScaleOutCooldown": 60,
            },
        )


def _deregister_scaling(aas: Any, endpoint: str, variants: list[str]) -> None:
    for variant in variants:
        try:
            aas.deregister_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=_resource(endpoint, variant),
                ScalableDimension=SCALABLE_DIMENSION,
            )
        except botocore.exceptions.ClientError:
            continue  # not registered: nothing to take off


def _current(sm: Any, endpoint: str) -> dict[str, Any] | None:
    try:
        return dict(sm.describe_endpoint(EndpointName=endpoint))
    except botocore.exceptions.ClientError as exc:
        if "Could not find" in str(exc) or exc.response["Error"]["Code"] == "ValidationException":
            return None
        raise EndpointError(f"describe_endpoint: {exc}") from exc


def deploy_endpoint(
    sm: Any,
    aas: Any,
    cw: Any,
    target: EndpointTarget,
    plans: list[VariantPlan],
    strategy: str = "all-at-once",
) -> DeployOutcome:
    """Create or update the endpoint so it runs `plans`; a no-op when it already does."""
    if strategy not in STRATEGIES:
        raise EndpointError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if not plans or plans[0].variant != "champion":
        raise EndpointError("an endpoint needs a champion variant first")
    if not abs(sum(p.weight for p in plans) - 1.0) < 1e-6:
        raise EndpointError("variant weights must add up to 1")
    serverless = any(p.serverless_memory_mib is not None for p in plans)
    if serverless and len(plans) > 1:
        raise EndpointError("a serverless endpoint has one variant: deploy the champion alone")
    alarms = _ensure_alarms(cw, target, plans)
    config = deployment_config(strategy, alarms)  # validates the strategy before any change
    name = _config_name(target.endpoint_name, plans)
    current = _current(sm, target.endpoint_name)
    previous = current["EndpointConfigName"] if current else None
    if previous == name:
        return DeployOutcome(target.endpoint_name, name, None, False, False, strategy)
    if serverless and previous and _has_instances(sm, previous):
        raise EndpointError(
            f"SageMaker cannot turn the instance-based endpoint {target.endpoint_name} into a "
            "serverless one: delete it (aws sagemaker delete-endpoint --endpoint-name "
            f"{target.endpoint_name}) and deploy again, or unset serverless_memory_mib"
        )
    if not _config_exists(sm, name):
        _call(
            sm.create_endpoint_config,
            EndpointConfigName=name,
            ProductionVariants=[p.production_variant() for p in plans],
        )
    if current is None:
        _call(sm.create_endpoint, EndpointName=target.endpoint_name, EndpointConfigName=name)
        _wait_in_service(sm, target.endpoint_name, name)
        _register_scaling(aas, target, plans)
        return DeployOutcome(target.endpoint_name, name, None, True, True, strategy)
    guarded = _update(sm, aas, target.endpoint_name, previous, name, config)
    _remember_previous(sm, current["EndpointArn"], previous or "none")
    _register_scaling(aas, target, plans)
    # SageMaker's guarded rollouts need the same variant names before and after.
    used = strategy if guarded else "direct (variants added or removed)"
    return DeployOutcome(target.endpoint_name, name, previous, True, False, used)


def _has_instances(sm: Any, config_name: str) -> bool:
    return any("InstanceType" in v for v in _variants_of(sm, config_name).values())


def _config_exists(sm: Any, name: str) -> bool:
    try:
        sm.describe_endpoint_config(EndpointConfigName=name)
        return True
    except botocore.exceptions.ClientError:
        return False


def _remember_previous(sm: Any, endpoint_arn: str, config: str) -> None:
    """Record on the endpoint which config the current one replaced (what rollback returns to)."""
    _call(sm.add_tags, ResourceArn=endpoint_arn, Tags=[{"Key": PREVIOUS_TAG, "Value": config}])


def _variants_of(sm: Any, config_name: str) -> dict[str, dict[str, Any]]:
    config = sm.describe_endpoint_config(EndpointConfigName=config_name)
    return {v["VariantName"]: v for v in config["ProductionVariants"]}


def _update(
    sm: Any, aas: Any, endpoint: str, old: str | None, new: str, config: dict[str, Any] | None
) -> bool:
    """Switch the endpoint to `new`; True if the update was a guarded (blue/green) one."""
    before = _variants_of(sm, old) if old else {}
    after = _variants_of(sm, new)
    # SageMaker refuses an instance-type change while a scaling target is registered.
    retyped = [
        v
        for v in after
        if v in before and before[v].get("InstanceType") != after[v].get("InstanceType")
    ]
    removed = [v for v in before if v not in after]
    _deregister_scaling(aas, endpoint, retyped + removed)
    kwargs: dict[str, Any] = {"EndpointName": endpoint, "EndpointConfigName": new}
    guarded = config is not None and set(before) == set(after)
    if guarded:
        kwargs["DeploymentConfig"] = config
    _call(sm.update_endpoint, **kwargs)
    _wait_in_service(sm, endpoint, new)
    return guarded


def _wait_in_service(sm: Any, endpoint: str, config_name: str) -> None:
    """Block until the endpoint settles; fail with SageMaker's reason unless it runs the config.

    SageMaker accepts Create/UpdateEndpoint at once and fails later (an image or model archive
    its role cannot read, a container that never answers /ping): a failed create ends Failed, a
    failed update rolls back to the old config, both with a FailureReason.
    """
    # Blue/green rollouts bake for minutes: up to 2 hours of polling every 30 s.
    with contextlib.suppress(botocore.exceptions.WaiterError):
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=endpoint, WaiterConfig={"Delay": 30, "MaxAttempts": 240}
        )
    current = _call(sm.describe_endpoint, EndpointName=endpoint)
    reason = current.get("FailureReason") or "no reason given"
    if current.get("EndpointStatus") == "Failed":
        raise EndpointError(f"endpoint {endpoint} failed: {reason}")
    if current.get("EndpointStatus") != "InService":
        raise EndpointError(f"endpoint {endpoint} is still {current.get('EndpointStatus')}")
    if current["EndpointConfigName"] != config_name:
        raise EndpointError(f"SageMaker rolled {endpoint} back from {config_name}: {reason}")


def shift_traffic(sm: Any, endpoint: str, challenger_percent: float) -> dict[str, float]:
    """Set the challenger's share of traffic without redeploying; return the new weights."""
    if not 0 <= challenger_percent <= 100:
        raise EndpointError(f"--challenger must be between 0 and 100, got {challenger_percent:g}")
    current = _current(sm, endpoint)
    if current is None:
        raise EndpointError(f"endpoint {endpoint} does not exist; deploy it first")
    variants = {v["VariantName"] for v in current["ProductionVariants"]}
    if "challenger" not in variants:
        raise EndpointError(f"endpoint {endpoint} has no challenger variant; deploy one first")
    weights = {"champion": 100 - challenger_percent, "challenger": challenger_percent}
    _call(
        sm.update_endpoint_weights_and_capacities,
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[
            {"VariantName": k, "DesiredWeight": v / 100} for k, v in weights.items()
        ],
    )
    return weights


def rollback(sm: Any, aas: Any, endpoint: str) -> tuple[str, str]:
    """Return the endpoint to the config the current one replaced; (from, to) config names."""
    current = _current(sm, endpoint)
    if current is None:
        raise EndpointError(f"endpoint {endpoint} does not exist")
    name = current["EndpointConfigName"]
    tags = _call(sm.list_tags, ResourceArn=current["EndpointArn"]).get("Tags", [])
    previous = {t["Key"]: t["Value"] for t in tags}.get(PREVIOUS_TAG, "none")
    if previous == "none":
        raise EndpointError(f"endpoint {endpoint} has no previous config to roll back to")
    _update(sm, aas, endpoint, name, previous, None)
    # A rollback is not undone by another: deploy again to move forward.
    _remember_previous(sm, current["EndpointArn"], "none")
    return name, previous


def _capacity(variant: dict[str, Any], configured: dict[str, Any]) -> Any:
    """Instances of a variant, or its serverless memory and concurrency."""
    serverless = variant.get("CurrentServerlessConfig") or configured.get("ServerlessConfig")
    if serverless:
        return (
            f"serverless {serverless['MemorySizeInMB']} MiB, "
            f"up to {serverless['MaxConcurrency']} concurrent"
        )
    return variant.get("CurrentInstanceCount", configured.get("InitialInstanceCount"))


def describe_endpoint(sm: Any, endpoint: str) -> list[dict[str, Any]]:
    """One row per variant: model, version, weight and instance count."""
    current = _current(sm, endpoint)
    if current is None:
        return []
    configured = _variants_of(sm, current["EndpointConfigName"])
    rows = []
    for variant in current["ProductionVariants"]:
        name = variant["VariantName"]
        model = configured.get(name, {}).get("ModelName", "")
        arn = sm.describe_model(ModelName=model)["ModelArn"] if model else ""
        tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn).get("Tags", [])}
        rows.append(
            {
                "endpoint": endpoint,
                "status": current.get("EndpointStatus", ""),
                "config": current["EndpointConfigName"],
                "variant": name,
                "model": tags.get("mlp:model", ""),
                "model_version": tags.get("mlp:version", ""),
                "weight": variant.get(
                    "CurrentWeight", configured.get(name, {}).get("InitialVariantWeight")
                ),
                "instances": _capacity(variant, configured.get(name, {})),
            }
        )
    return rows
