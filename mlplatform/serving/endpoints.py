"""Endpoint operations as the tasks call them, for one cloud environment.

Versions come from the environment's registry by alias (`champion`, and `challenger` when it
names another version); each is packed into the same deterministic model.tar.gz `invoke serve`
runs locally and uploaded to the environment's bucket; role and network come from the stacks'
outputs; every AWS call goes through boto3's own chain (AWS_ENDPOINT_URL for an emulator).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import botocore.exceptions

from mlplatform.cloud import aws
from mlplatform.cloud.stack_outputs import stack_outputs, subnet_ids
from mlplatform.config import Environment, load_environment
from mlplatform.errors import RegistryError
from mlplatform.local.runtimes.base import Reporter
from mlplatform.names import MODELS_PREFIX, Output, endpoint_name, stack_name
from mlplatform.paths import StatePaths
from mlplatform.registry.access import registry_for
from mlplatform.serving.local import PackagedModel, package_version, resolve_version
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

__all__ = ["deploy", "endpoint_name", "rollback_endpoint", "status", "traffic"]


def _target(env: Environment) -> EndpointTarget:
    sm = env.sagemaker
    return EndpointTarget(
        endpoint_name(env), sm.invocations_per_instance, sm.latency_alarm_ms, sm.error_alarm_count
    )


def _client(env: Environment, service: str) -> Any:
    return aws.client(service, region=env.region)


def _upload(env: Environment, packaged: PackagedModel) -> str:
    key = f"{MODELS_PREFIX}/{packaged.name}/{packaged.version}/{packaged.sha256[:12]}/model.tar.gz"
    s3 = _client(env, "s3")
    try:
        s3.head_object(Bucket=env.bucket_name, Key=key)
    except botocore.exceptions.ClientError:
        try:
            s3.upload_file(
                str(packaged.archive),
                env.bucket_name,
                key,
                ExtraArgs={"Metadata": {"sha256": packaged.sha256}},
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise EndpointError(
                f"cannot upload the model to s3://{env.bucket_name}/{key}: {exc}"
            ) from None
    return f"s3://{env.bucket_name}/{key}"


def deploy(
    env_name: str,
    paths: StatePaths,
    strategy: str | None,
    challenger_percent: float | None,
    image: str | None,
    reporter: Reporter,
) -> tuple[DeployOutcome, list[VariantPlan]]:
    """Deploy champion (and challenger) of the environment's registry to its endpoint."""
    env = load_environment(env_name)
    if env.name == "local":
        raise EndpointError(
            "the local environment is served by `invoke serve`; use --env staging or prod"
        )
    sm_cfg = env.sagemaker
    strategy = strategy or sm_cfg.endpoint_strategy
    percent = sm_cfg.challenger_percent if challenger_percent is None else challenger_percent
    if not 0 <= percent <= 100:
        raise EndpointError(f"--challenger must be between 0 and 100, got {percent:g}")
    image = image or sm_cfg.serving_image
    if not image:
        raise EndpointError(
            f"no serving image for {env.name}: set [{env.name}.sagemaker] "
            "serving_image (ECR URI by digest) or pass --image"
        )
    cfn = _client(env, "cloudformation")
    role = stack_outputs(
        cfn,
        stack_name(env, "sagemaker"),
        (Output.ENDPOINT_ROLE_ARN, Output.SECURITY_GROUP_ID),
        EndpointError,
    )
    network = stack_outputs(
        cfn, stack_name(env, "network"), (Output.PRIVATE_SUBNET_IDS,), EndpointError
    )
    vpc = {
        "subnets": subnet_ids(network),
        "security_groups": [role[Output.SECURITY_GROUP_ID]],
    }
    registry = registry_for(env.name, paths)
    name = env.model_name
    sm = _client(env, "sagemaker")
    plans: list[VariantPlan] = []
    with tempfile.TemporaryDirectory(prefix="mlp-endpoint-") as tmp:
        with registry.client() as client:
            champion = resolve_version(client, name, "champion", None)
            try:
                challenger: str | None = resolve_version(client, name, "challenger", None)
            except RegistryError:
                challenger = None
            wanted = [("champion", champion)]
            if challenger and challenger != champion and percent > 0:
                wanted.append(("challenger", challenger))
            packages = {
                v: package_version(registry.tracking_uri, name, v, Path(tmp) / v) for _, v in wanted
            }
        for variant, version in wanted:
            packaged = packages[version]
            reporter.step(f"uploading {name} version {version} (sha256 {packaged.sha256[:12]}…)")
            url = _upload(env, packaged)
            weight = (
                (1 - percent / 100)
                if variant == "champion" and len(wanted) > 1
                else (percent / 100 if variant == "challenger" else 1.0)
            )
            plan = VariantPlan(
                variant,
                name,
                version,
                f"{endpoint_name(env)}-v{version}-{packaged.sha256[:8]}"[:63],
                weight,
                sm_cfg.endpoint_instance_type,
                sm_cfg.endpoint_min_instances,
                sm_cfg.endpoint_min_instances,
                sm_cfg.endpoint_max_instances,
            )
            ensure_model(sm, plan, image, url, role[Output.ENDPOINT_ROLE_ARN], packaged.sha256, vpc)
            plans.append(plan)
            reporter.done(f"{variant}: {name} version {version} at {url}")
    reporter.step(f"deploying {endpoint_name(env)} ({strategy})")
    outcome = deploy_endpoint(
        sm,
        _client(env, "application-autoscaling"),
        _client(env, "cloudwatch"),
        _target(env),
        plans,
        strategy,
    )
    reporter.done(
        ("created" if outcome.created else "updated" if outcome.changed else "unchanged")
        + f": {outcome.endpoint_name} -> {outcome.config_name}"
    )
    return outcome, plans


def traffic(env_name: str, challenger_percent: float) -> dict[str, float]:
    """Shift the challenger's share of traffic without redeploying."""
    env = load_environment(env_name)
    return shift_traffic(_client(env, "sagemaker"), endpoint_name(env), challenger_percent)


def rollback_endpoint(env_name: str) -> tuple[str, str]:
    """Return the endpoint to the config the current one replaced."""
    env = load_environment(env_name)
    return rollback(
        _client(env, "sagemaker"), _client(env, "application-autoscaling"), endpoint_name(env)
    )


def status(env_name: str) -> list[dict[str, Any]]:
    """Each variant of the environment's endpoint: model version, weight, instances."""
    env = load_environment(env_name)
    try:
        return describe_endpoint(_client(env, "sagemaker"), endpoint_name(env))
    except botocore.exceptions.ClientError as exc:
        raise EndpointError(f"cannot describe {endpoint_name(env)}: {exc}") from None
