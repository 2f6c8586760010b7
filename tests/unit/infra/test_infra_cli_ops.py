"""infra.cli_ops: the CDK CLI command lines, destroy confirmation, and no lookups at synth."""

from __future__ import annotations

import json

import pytest
from conftest import STACK_PARTS

from infra import cli_ops
from infra.cli_ops import ConfirmationRequiredError, cdk_argv, cdk_command
from mlplatform.config import load_environments


@pytest.fixture
def no_cli(monkeypatch):
    """Record the command lines instead of running them."""
    calls: list[list[str]] = []
    monkeypatch.setattr(cli_ops, "_run", lambda argv, extra_env, cwd, stdout: calls.append(argv))
    return calls


def test_cli_synth_wrote_the_environment(synthesized):
    """staging's session synth went through the pinned CLI; its assembly holds only staging."""
    synth = synthesized.get("staging")
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    stacks = {
        k for k, v in manifest["artifacts"].items() if v["type"] == "aws:cloudformation:stack"
    }
    assert stacks == {f"mlp-staging-{p}" for p in STACK_PARTS}


@pytest.mark.parametrize("name", ["local", "staging", "prod", "sandbox"])
def test_synth_needs_no_lookup(synthesized, name):
    """No context provider call (AZs, VPC, AMI...): synth must work without AWS credentials."""
    manifest = json.loads((synthesized.get(name).outdir / "manifest.json").read_text())
    assert manifest.get("missing") in (None, [])


def test_argv_selects_the_environment_and_passes_overrides():
    env = load_environments()["staging"]
    argv = cdk_argv(
        env,
        "deploy",
        image_digest="sha256:" + "1" * 64,
        certificate_arn="arn:aws:acm:x",
        service_image_digest="none",
        approve=True,
    )
    assert argv[:4] == ["npx", "--no-install", "cdk", "deploy"]
    assert argv[argv.index("--context") : argv.index("--context") + 2] == [
        "--context",
        "env=staging",
    ]
    assert f"mlflow_image_digest=sha256:{'1' * 64}" in argv
    assert "certificate_arn=arn:aws:acm:x" in argv
    assert "mlflow_service_image_digest=none" in argv
    assert argv[-3:] == ["--all", "--require-approval", "never"]


def test_bootstrap_targets_the_configured_account_and_region():
    env = load_environments()["prod"]
    assert cdk_argv(env, "bootstrap")[4] == f"aws://{env.account}/{env.region}"


def test_destroy_prod_is_refused_without_confirmation(no_cli):
    with pytest.raises(ConfirmationRequiredError, match="--confirm prod"):
        cdk_command("prod", "destroy")
    with pytest.raises(ConfirmationRequiredError):
        cdk_command("prod", "destroy", confirm="staging")
    assert no_cli == []


def test_destroy_prod_runs_when_confirmed_by_name(no_cli):
    cdk_command("prod", "destroy", confirm="prod")
    (argv,) = no_cli
    assert argv[3] == "destroy" and "--force" in argv and "env=prod" in argv


def test_destroy_staging_needs_no_confirmation_but_still_prompts(no_cli):
    cdk_command("staging", "destroy")
    (argv,) = no_cli
    assert "--force" not in argv


def test_missing_cli_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(cli_ops.shutil, "which", lambda name: None)
    with pytest.raises(cli_ops.CdkCommandError, match="npm ci"):
        cli_ops._run(["npx", "--no-install", "cdk", "synth"], None)


def test_migrate_run_task_request_uses_private_subnets_and_the_task_group():
    request = cli_ops.migrate_run_task_request(
        {
            "ClusterName": "c",
            "MigrateTaskDefinitionArn": "arn:td",
            "PrivateSubnetIds": "subnet-1,subnet-2",
            "TaskSecurityGroupId": "sg-1",
            "Ignored": "x",
        }
    )
    assert request == {
        "cluster": "c",
        "taskDefinition": "arn:td",
        "launchType": "FARGATE",
        "count": 1,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-1", "subnet-2"],
                "securityGroups": ["sg-1"],
                "assignPublicIp": "DISABLED",
            }
        },
    }
