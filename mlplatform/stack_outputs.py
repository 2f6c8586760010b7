"""Read a deployed stack's CloudFormation outputs (AWS, or an emulator via AWS_ENDPOINT_URL)."""

from __future__ import annotations

import os
from typing import Any

import botocore.exceptions

from mlplatform.config import Environment
from mlplatform.errors import PlatformError

__all__ = ["deployed_outputs", "mlflow_url", "mlflow_url_variable", "stack_outputs", "subnet_ids"]


def deployed_outputs(
    cfn: Any, stack: str, error: type[PlatformError] = PlatformError
) -> dict[str, str] | None:
    """Output key -> value of `stack`, None when it is not deployed; `error` if unreadable."""
    try:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise error(f"cannot read stack {stack}: {exc}") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise error(f"cannot reach CloudFormation for {stack}: {exc}") from None
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def stack_outputs(
    cfn: Any, stack: str, required: tuple[str, ...] = (), error: type[PlatformError] = PlatformError
) -> dict[str, str]:
    """Output key -> value of `stack`; `error` (one line) if it is missing or lacks a key."""
    outputs = deployed_outputs(cfn, stack, error)
    if outputs is None:
        raise error(f"stack {stack} is not deployed; run `invoke deploy-infra` first")
    for key in required:
        if key not in outputs:
            raise error(f"stack {stack} has no output {key}; redeploy the infra")
    return outputs


def mlflow_url_variable(env_name: str) -> str:
    """The variable that points the kit at an environment's registry (like AWS_ENDPOINT_URL)."""
    return f"MLPLATFORM_MLFLOW_URL_{env_name.upper()}"


def mlflow_url(env: Environment, cfn: Any, error: type[PlatformError] = PlatformError) -> str:
    """An environment's registry URL: MLPLATFORM_MLFLOW_URL_<ENV>, else its MlflowUrl output."""
    override = os.environ.get(mlflow_url_variable(env.name))
    if override:
        return override
    return stack_outputs(cfn, f"{env.name_prefix}-mlflow", ("MlflowUrl",), error)["MlflowUrl"]


def subnet_ids(network_outputs: dict[str, str]) -> list[str]:
    """The private subnets the network stack exports as one comma-separated output."""
    return [s for s in network_outputs["PrivateSubnetIds"].split(",") if s]
