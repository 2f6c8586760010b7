"""A stack whose first deploy never completed (issue 10): it exists, holds nothing, has no outputs.

CloudFormation leaves it in REVIEW_IN_PROGRESS (a change set was created, never executed) or
ROLLBACK_COMPLETE (the create failed and was rolled back). The CDK CLI deploys over both (a
CREATE change set; delete, then re-create), so `invoke deploy` resumes through its infra step;
every other reader of stack outputs refuses such a stack in one line naming the stack, its status
and the missing keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from invoke import Context, Exit
from moto import mock_aws
from moto.cloudformation.models import cloudformation_backends
from moto.core import DEFAULT_ACCOUNT_ID

from mlplatform.cloud.stack_outputs import stack_outputs
from mlplatform.config import Environment
from mlplatform.errors import PlatformError
from mlplatform.paths import StatePaths
from mlplatform.release.chain import DeployError, DeployRequest, deploy
from mlplatform.reporting import SilentReporter
from mlplatform.target import resolve_targets
from mlplatform.toolchain import node_deps

REGION = "eu-west-1"
DIGEST = "sha256:" + "1" * 64
STACK = "mlp-prod-mlflow"
FAILED_FIRST_DEPLOYS = ["REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE"]


class FakeCloudFormation:
    """DescribeStacks of one stack in a given status with given outputs (nothing else)."""

    def __init__(self, status: str, outputs: dict[str, str] | None = None) -> None:
        self.status = status
        self.outputs = outputs or {}

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        stack: dict[str, Any] = {"StackName": StackName, "StackStatus": self.status}
        if self.outputs:  # CloudFormation leaves the key out when there are none
            stack["Outputs"] = [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]
        return {"Stacks": [stack]}


# -- the readers of stack outputs --------------------------------------------------------------


@pytest.mark.parametrize("status", FAILED_FIRST_DEPLOYS)
def test_a_reader_refuses_a_stack_whose_first_deploy_failed(status: str) -> None:
    with pytest.raises(PlatformError) as caught:
        stack_outputs(FakeCloudFormation(status), STACK, ("ClusterName", "ServiceName"))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"stack {STACK} is in {status} (its first deploy never completed) and has no outputs "
        "ClusterName, ServiceName; "
    )
    assert message.endswith(
        "deploy the infra again with `invoke deploy-infra`: the CDK CLI re-creates it"
    )


def test_a_complete_stack_without_an_output_names_status_and_keys() -> None:
    cfn = FakeCloudFormation("UPDATE_COMPLETE", {"ClusterName": "c"})
    with pytest.raises(PlatformError) as caught:
        stack_outputs(cfn, STACK, ("ClusterName", "ServiceName", "MlflowUrl"))
    assert str(caught.value) == (
        f"stack {STACK} (UPDATE_COMPLETE) has no outputs ServiceName, MlflowUrl; "
        "deploy the infra with `invoke deploy-infra`"
    )


def test_a_described_stack_carries_its_status() -> None:
    from mlplatform.cloud.stack_outputs import describe_stack

    described = describe_stack(FakeCloudFormation("ROLLBACK_COMPLETE"), STACK)
    assert described is not None
    assert (described.status, described.outputs, described.never_created) == (
        "ROLLBACK_COMPLETE",
        {},
        True,
    )


# -- the deploy chain on moto ------------------------------------------------------------------


def _set_status(name: str, status: str) -> None:
    """What a failed create leaves behind (moto cannot fail one on purpose)."""
    for stack in cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].stacks.values():
        if stack.name == name:
            stack.status = status


def _template(outputs: dict[str, str]) -> str:
    return json.dumps(
        {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {k: {"Value": v} for k, v in outputs.items()},
        }
    )


def _failed_first_deploy(cfn: Any, status: str) -> None:
    """The MLflow stack as a first deploy that failed leaves it: no resources, no outputs."""
    if status == "REVIEW_IN_PROGRESS":
        # What CDK's CREATE change set leaves when it is never executed (moto does the same).
        cfn.create_change_set(
            StackName=STACK,
            ChangeSetName="cdk-deploy-change-set",
            ChangeSetType="CREATE",
            TemplateBody=_template({"ClusterName": STACK}),
        )
    else:
        cfn.create_stack(StackName=STACK, TemplateBody=_template({}))
        _set_status(STACK, status)
    assert "Outputs" not in cfn.describe_stacks(StackName=STACK)["Stacks"][0]


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """prod on moto in process: its CloudFormation client."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")
    monkeypatch.setenv("MLPLATFORM_HOME", str(tmp_path / "state"))
    with mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)


@pytest.fixture
def cdk_deploys(monkeypatch: pytest.MonkeyPatch, cloud: Any) -> list[dict[str, Any]]:
    """Stand in for `cdk deploy --all`: record its arguments, then do what the CLI does."""
    import mlplatform.release.cdk_cli

    calls: list[dict[str, Any]] = []

    def cdk_command(env: Environment, action: str, **kwargs: Any) -> None:
        calls.append({"env": env.name, "action": action, **kwargs})
        # The CLI deletes a ROLLBACK_COMPLETE stack and creates it again; on REVIEW_IN_PROGRESS
        # it executes a CREATE change set (moto shows no outputs after that: re-create here too).
        cloud.delete_stack(StackName=STACK)
        cloud.create_stack(StackName=STACK, TemplateBody=_template({"ClusterName": STACK}))

    monkeypatch.setattr(mlplatform.release.cdk_cli, "cdk_command", cdk_command)
    monkeypatch.setattr(node_deps, "ensure_node_modules", lambda: None)
    return calls


class Warnings(SilentReporter):
    """A reporter that keeps its warnings."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


CERTIFICATE = "arn:aws:acm:eu-west-1:222222222222:certificate/" + "0" * 8


def _run(tmp_path: Path, *steps: str, reporter: SilentReporter | None = None) -> list[Any]:
    prod, local = resolve_targets("prod", "local", paths=StatePaths(tmp_path / "state"))
    request = DeployRequest(steps=steps, image_digest=DIGEST, certificate_arn=CERTIFICATE)
    return list(deploy(prod, local, request, reporter or SilentReporter()))


@pytest.mark.parametrize("status", FAILED_FIRST_DEPLOYS)
def test_the_infra_step_resumes_over_a_failed_first_deploy(
    cloud: Any, cdk_deploys: list[dict[str, Any]], tmp_path: Path, status: str
) -> None:
    from mlplatform.release.cdk_context import NO_SERVICE_IMAGE

    _failed_first_deploy(cloud, status)
    reporter = Warnings()
    (result,) = _run(tmp_path, "infra", reporter=reporter)
    assert reporter.warnings == [
        f"stack {STACK} is in {status} (its first deploy never completed); the CDK CLI "
        "re-creates it"
    ]
    # As on a first deploy: the service is created with no task until the migration ran.
    (call,) = cdk_deploys
    assert (call["action"], call["service_image_digest"]) == ("deploy", NO_SERVICE_IMAGE)
    assert result.changed is True and "mlflow" in result.detail
    assert cloud.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]


@pytest.mark.parametrize("status", FAILED_FIRST_DEPLOYS)
@pytest.mark.parametrize(
    ("step", "missing"),
    [
        ("image", "MlflowRepositoryUri"),
        ("migrate", "ClusterName, MigrateTaskDefinitionArn, TaskSecurityGroupId"),
    ],
)
def test_later_steps_explain_a_failed_first_deploy_in_one_line(
    cloud: Any, tmp_path: Path, status: str, step: str, missing: str
) -> None:
    _failed_first_deploy(cloud, status)
    with pytest.raises(DeployError) as caught:
        _run(tmp_path, step)
    assert str(caught.value) == (
        f"{step} step failed: stack {STACK} is in {status} (its first deploy never completed) "
        f"and has no output{'s' if ',' in missing else ''} {missing}; deploy the infra again with "
        "`invoke deploy --env prod --steps infra`: the CDK CLI re-creates it"
    )


def test_a_stack_without_the_service_outputs_is_one_line(cloud: Any, tmp_path: Path) -> None:
    """A complete stack that reports neither the service's digest nor where the service is."""
    cloud.create_stack(StackName=STACK, TemplateBody=_template({"ImageDigest": DIGEST}))
    with pytest.raises(DeployError) as caught:
        _run(tmp_path, "migrate")
    assert str(caught.value) == (
        f"migrate step failed: stack {STACK} (CREATE_COMPLETE) has no outputs ClusterName, "
        "ServiceName; deploy the infra with `invoke deploy --env prod --steps infra`"
    )


# -- the task layer ----------------------------------------------------------------------------


def test_the_deploy_task_explains_a_failed_first_deploy_in_one_line(cloud: Any) -> None:
    import tasks

    _failed_first_deploy(cloud, "ROLLBACK_COMPLETE")
    with pytest.raises(Exit) as caught:
        tasks.deploy(Context(), env="prod", steps="migrate,service", image_digest=DIGEST)
    assert caught.value.code == 1
    message = str(caught.value.message)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(
        f"error: migrate step failed: stack {STACK} is in ROLLBACK_COMPLETE (its first deploy "
        "never completed) and has no outputs ClusterName"
    )
