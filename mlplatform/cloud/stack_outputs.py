"""Read a deployed stack's CloudFormation outputs (AWS, or an emulator via AWS_ENDPOINT_URL).

    stack = describe_stack(cfn, "mlp-prod-mlflow")       # None when it is not deployed
    url = stack_outputs(cfn, "mlp-prod-mlflow", ("MlflowUrl",))["MlflowUrl"]

A stack whose first deploy never completed exists without outputs: REVIEW_IN_PROGRESS (its
CREATE change set was never executed), ROLLBACK_COMPLETE or ROLLBACK_FAILED (the create failed and
was rolled back, or failed to be). The CDK CLI deploys over such a stack (a CREATE change set; or
delete, then create again), so the fix is to deploy the infra again; every reader here refuses it
in one line that names the stack, its status and the missing outputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from mlplatform.config import Environment
from mlplatform.errors import PlatformError
from mlplatform.names import (
    RELEASED_IMAGE_OUTPUTS,
    Output,
    parse_released,
    repository_output,
    stack_name,
)

__all__ = [
    "NEVER_CREATED",
    "DeployedStack",
    "describe_stack",
    "mlflow_url",
    "mlflow_url_variable",
    "released_digest",
    "released_digests",
    "released_image",
    "stack_outputs",
    "subnet_ids",
]

# The statuses CDK's deploy treats as "not created yet" (aws-cdk: StackStatus.isCreationFailure,
# isReviewInProgress): it deploys over them, so the kit may too.
NEVER_CREATED = frozenset({"REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED"})
_DEPLOY_INFRA = "`invoke deploy-infra`"


@dataclass(frozen=True)
class DeployedStack:
    """A stack as DescribeStacks reports it: name, status and outputs (key -> value)."""

    name: str
    status: str
    outputs: dict[str, str]

    @property
    def never_created(self) -> bool:
        """True when its first deploy never completed: no outputs, and CDK replaces it."""
        return self.status in NEVER_CREATED

    def require(
        self,
        keys: Sequence[str],
        error: type[PlatformError] = PlatformError,
        deploy_infra: str = _DEPLOY_INFRA,
    ) -> dict[str, str]:
        """The outputs when all of `keys` are there, else `error` in one line.

        The line names the stack, its status and the missing keys, and says to deploy the infra
        with `deploy_infra` (the command as the caller's user runs it).
        """
        missing = [k for k in keys if k not in self.outputs]
        if missing:
            raise error(self._missing_message(missing, deploy_infra))
        return self.outputs

    def _missing_message(self, missing: Sequence[str], deploy_infra: str) -> str:
        keys = f"output{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
        if self.never_created:
            return (
                f"stack {self.name} is in {self.status} (its first deploy never completed) "
                f"and has no {keys}; deploy the infra again with {deploy_infra}: the CDK CLI "
                "re-creates it"
            )
        return (
            f"stack {self.name} ({self.status}) has no {keys}; deploy the infra with {deploy_infra}"
        )


def describe_stack(
    cfn: Any, stack: str, error: type[PlatformError] = PlatformError
) -> DeployedStack | None:
    """`stack` with its status and outputs, None when it is not deployed; `error` if unreadable."""
    try:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise error(f"cannot read stack {stack}: {exc}") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise error(f"cannot reach CloudFormation for {stack}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    return DeployedStack(stack, str(described.get("StackStatus", "UNKNOWN")), outputs)


def stack_outputs(
    cfn: Any, stack: str, required: tuple[str, ...] = (), error: type[PlatformError] = PlatformError
) -> dict[str, str]:
    """Output key -> value of `stack`; `error` (one line) if it is missing or lacks a key."""
    described = describe_stack(cfn, stack, error)
    if described is None:
        raise error(f"stack {stack} is not deployed; run `invoke deploy-infra` first")
    return described.require(required, error)


def mlflow_url_variable(env_name: str) -> str:
    """The variable that points the kit at an environment's registry (like AWS_ENDPOINT_URL)."""
    return f"MLPLATFORM_MLFLOW_URL_{env_name.upper()}"


def mlflow_url(env: Environment, cfn: Any, error: type[PlatformError] = PlatformError) -> str:
    """An environment's registry URL: MLPLATFORM_MLFLOW_URL_<ENV>, else its MlflowUrl output."""
    override = os.environ.get(mlflow_url_variable(env.name))
    if override:
        return override
    return stack_outputs(cfn, stack_name(env, "mlflow"), (Output.MLFLOW_URL,), error)[
        Output.MLFLOW_URL
    ]


def subnet_ids(network_outputs: dict[str, str]) -> list[str]:
    """The private subnets the network stack exports as one comma-separated output."""
    return [s for s in network_outputs[Output.PRIVATE_SUBNET_IDS].split(",") if s]


def released_digests(mlflow_outputs: dict[str, str], image: str) -> dict[str, str]:
    """The `training` or `serving` digest of each source (by name) the last releases pushed.

    Empty before a release pushed one; a value that is not a record (a stack deployed before
    the kit recorded images by source) counts as none.
    """
    try:
        return parse_released(mlflow_outputs.get(RELEASED_IMAGE_OUTPUTS[image]))
    except ValueError:
        return {}


def released_digest(mlflow_outputs: dict[str, str], image: str, source: str) -> str | None:
    """The digest of source `source`'s `training` or `serving` image, if a release pushed one."""
    return released_digests(mlflow_outputs, image).get(source)


def released_image(mlflow_outputs: dict[str, str], image: str, source: str) -> str | None:
    """`<repository URI>@<digest>` of source `source`'s image the last release pushed, or None."""
    digest = released_digest(mlflow_outputs, image, source)
    repository = mlflow_outputs.get(repository_output(image))
    return f"{repository}@{digest}" if digest and repository else None
