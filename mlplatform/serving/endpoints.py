"""Endpoint operations as the tasks call them, for one cloud environment.

Versions come from the environment's registry by alias (`champion`, and `challenger` when it
names another version); each is packed into the same deterministic model.tar.gz `invoke serve`
runs locally and uploaded to the environment's bucket; role and network come from the stacks'
outputs; every AWS call goes through boto3's own chain (AWS_ENDPOINT_URL for an emulator).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions

from mlplatform.cloud.stack_outputs import released_image, subnet_ids
from mlplatform.config import Environment
from mlplatform.errors import RegistryError
from mlplatform.names import (
    MODELS_PREFIX,
    Output,
    endpoint_name,
    repository_output,
)
from mlplatform.registry.client import Registry
from mlplatform.registry.packaging import PackagedModel, package_version, resolve_version
from mlplatform.reporting import Reporter
from mlplatform.serving.rollout import (
    DeployOutcome,
    EndpointError,
    EndpointTarget,
    VariantPlan,
    deploy_endpoint,
    describe_endpoint,
    ensure_model,
    rollback,
    shift_traffic,
)
from mlplatform.sources import model_source
from mlplatform.target import Target

__all__ = ["EndpointRequest", "deploy", "rollback_endpoint", "status", "traffic"]


def _rollout_target(env: Environment, model: str) -> EndpointTarget:
    sm = env.sagemaker
    return EndpointTarget(
        endpoint_name(env, model),
        sm.invocations_per_instance,
        sm.latency_alarm_ms,
        sm.error_alarm_count,
    )


@dataclass(frozen=True)
class EndpointRequest:
    """How to deploy: each None takes the environment's [E.sagemaker] setting."""

    strategy: str | None = None  # all-at-once, canary or linear
    challenger_percent: float | None = None  # share of traffic for the challenger variant
    image: str | None = None  # serving image, ECR URI by digest (default: the release's)
    model: str | None = None  # default: the environment's only model


def _upload(target: Target, packaged: PackagedModel) -> str:
    bucket = target.env.bucket_name
    key = f"{MODELS_PREFIX}/{packaged.name}/{packaged.version}/{packaged.sha256[:12]}/model.tar.gz"
    s3 = target.client("s3")
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError:
        try:
            s3.upload_file(
                str(packaged.archive),
                bucket,
                key,
                ExtraArgs={"Metadata": {"sha256": packaged.sha256}},
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise EndpointError(f"cannot upload the model to s3://{bucket}/{key}: {exc}") from exc
    return f"s3://{bucket}/{key}"


def _weight(variant: str, percent: float, variants: int) -> float:
    if variants == 1:
        return 1.0
    return percent / 100 if variant == "challenger" else 1 - percent / 100


def _settings(env: Environment, request: EndpointRequest) -> tuple[str, float]:
    """Strategy and challenger percent: the request's, else the environment's."""
    sm_cfg = env.sagemaker
    strategy = request.strategy or sm_cfg.endpoint_strategy
    percent = request.challenger_percent
    if percent is None:
        percent = sm_cfg.challenger_percent
    if not 0 <= percent <= 100:
        raise EndpointError(f"--challenger must be between 0 and 100, got {percent:g}")
    if percent > 0 and sm_cfg.serverless_memory_mib is not None:
        raise EndpointError(
            f"{env.name}'s endpoint is serverless (serverless_memory_mib), which has one "
            "variant: no challenger traffic"
        )
    return strategy, percent


def _serving_image(target: Target, request: EndpointRequest, model: str) -> str:
    """The request's image, else the environment's pin, else the release's of the model's source."""
    env = target.env
    image = request.image or env.sagemaker.serving_image
    if image:
        return image
    source = model_source(env, model)
    outputs = target.outputs("mlflow", (repository_output("serving"),), EndpointError)
    released = released_image(outputs, "serving", source.name)
    if released is None:
        raise EndpointError(
            f"no serving image of source {source.name} in {env.name}: release one with "
            f"`invoke build --image serving --env {env.name}` and `invoke deploy --env "
            f"{env.name}`, or pass an "
            "ECR URI by digest"
        )
    return released


def _model_name(
    env: Environment, model: str, version: str, packaged: PackagedModel, image: str, in_vpc: bool
) -> str:
    """The SageMaker model of one version served by one image: new bytes or image, new name.

    SageMaker models are immutable, so a release of a new serving image with the same model
    version must make a new model (and so a new endpoint config), or it would never be served;
    likewise a model placed in the VPC and one that is not (serverless).
    """
    # Models in the VPC keep the names they had before serverless endpoints existed.
    placement = "" if in_vpc else "\nserverless"
    identity = hashlib.sha256(f"{packaged.sha256}\n{image}{placement}".encode()).hexdigest()[:8]
    return f"{endpoint_name(env, model)}-v{version}-{identity}"[:63]


def _placement(target: Target) -> tuple[str, dict[str, list[str]]]:
    """The endpoint role and the VPC placement, from the stacks' outputs."""
    role = target.outputs(
        "sagemaker", (Output.ENDPOINT_ROLE_ARN, Output.SECURITY_GROUP_ID), EndpointError
    )
    network = target.outputs("network", (Output.PRIVATE_SUBNET_IDS,), EndpointError)
    vpc = {"subnets": subnet_ids(network), "security_groups": [role[Output.SECURITY_GROUP_ID]]}
    return role[Output.ENDPOINT_ROLE_ARN], vpc


def _wanted_versions(registry: Registry, name: str, percent: float) -> list[tuple[str, str]]:
    """(variant, version): champion, and challenger when it is another version with traffic."""
    with registry.client() as client:
        champion = resolve_version(client, name, "champion", None)
        try:
            challenger: str | None = resolve_version(client, name, "challenger", None)
        except RegistryError:
            challenger = None
    wanted = [("champion", champion)]
    if challenger and challenger != champion and percent > 0:
        wanted.append(("challenger", challenger))
    return wanted


def deploy(
    target: Target, request: EndpointRequest, reporter: Reporter
) -> tuple[DeployOutcome, list[VariantPlan]]:
    """Deploy a model's champion (and challenger) of the target's registry to its endpoint."""
    target.cloud_only("the local environment is served by `invoke serve`", EndpointError)
    env, sm_cfg = target.env, target.env.sagemaker
    name = env.model(request.model)
    strategy, percent = _settings(env, request)
    image = _serving_image(target, request, name)
    role_arn, vpc = _placement(target)
    serverless = sm_cfg.serverless_memory_mib is not None
    # SageMaker places no serverless endpoint in a VPC (docs/security.md says what that means).
    placed = None if serverless else vpc
    registry = target.registry()
    wanted = _wanted_versions(registry, name, percent)
    sm = target.client("sagemaker")
    plans: list[VariantPlan] = []
    with tempfile.TemporaryDirectory(prefix="mlp-endpoint-") as tmp:
        # The models:/ downloads log in through the variables the client context sets.
        with registry.client():
            packages = {
                v: package_version(registry.tracking_uri, name, v, Path(tmp) / v) for _, v in wanted
            }
        for variant, version in wanted:
            packaged = packages[version]
            reporter.step(f"uploading {name} version {version} (sha256 {packaged.sha256[:12]}…)")
            url = _upload(target, packaged)
            plan = VariantPlan(
                variant,
                name,
                version,
                _model_name(env, name, version, packaged, image, placed is not None),
                _weight(variant, percent, len(wanted)),
                sm_cfg.endpoint_instance_type,
                sm_cfg.endpoint_min_instances,
                sm_cfg.endpoint_min_instances,
                sm_cfg.endpoint_max_instances,
                sm_cfg.serverless_memory_mib,
                sm_cfg.serverless_max_concurrency,
            )
            ensure_model(sm, plan, image, url, role_arn, packaged.sha256, placed)
            plans.append(plan)
            reporter.done(f"{variant}: {name} version {version} at {url}")
    reporter.step(f"deploying {endpoint_name(env, name)} ({strategy})")
    outcome = deploy_endpoint(
        sm,
        target.client("application-autoscaling"),
        target.client("cloudwatch"),
        _rollout_target(env, name),
        plans,
        strategy,
    )
    reporter.done(
        ("created" if outcome.created else "updated" if outcome.changed else "unchanged")
        + f": {outcome.endpoint_name} -> {outcome.config_name}"
    )
    return outcome, plans


def traffic(
    target: Target, challenger_percent: float, model: str | None = None
) -> dict[str, float]:
    """Shift the challenger's share of a model's traffic without redeploying."""
    name = endpoint_name(target.env, target.env.model(model))
    return shift_traffic(target.client("sagemaker"), name, challenger_percent)


def rollback_endpoint(target: Target, model: str | None = None) -> tuple[str, str]:
    """Return a model's endpoint to the config the current one replaced."""
    return rollback(
        target.client("sagemaker"),
        target.client("application-autoscaling"),
        endpoint_name(target.env, target.env.model(model)),
    )


def status(target: Target, model: str | None = None) -> list[dict[str, Any]]:
    """Each variant of a model's endpoint (default: every model's): version, weight, instances.

    A configured model with no endpoint yet is one row of status "absent".
    """
    env = target.env
    models = [env.model(model)] if model is not None else list(env.models)
    rows: list[dict[str, Any]] = []
    sm = target.client("sagemaker")
    for each in models:
        name = endpoint_name(env, each)
        try:
            found = describe_endpoint(sm, name)
        except botocore.exceptions.ClientError as exc:
            raise EndpointError(f"cannot describe {name}: {exc}") from exc
        # The variant's own mlp:model tag wins: it says what the endpoint really serves.
        rows += [{"model": each, **row} for row in found] or [
            {"model": each, "endpoint": name, "status": "absent"}
        ]
    return rows
