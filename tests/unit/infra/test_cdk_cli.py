"""mlplatform.release.cdk_cli: CDK CLI command lines, destroy confirmation, no lookups at synth."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from conftest import REPO_ROOT, STACK_PARTS, TEST_DIGEST, test_certificate_arn

from mlplatform.config import load_environments
from mlplatform.errors import ConfigError
from mlplatform.release import cdk_cli
from mlplatform.release.cdk_cli import ConfirmationRequiredError, cdk_argv, cdk_command
from mlplatform.release.cdk_context import PLACEHOLDER_DIGEST, for_looking
from mlplatform.release.migration import migrate_run_task_request


def release(name: str) -> dict[str, str]:
    """What a deploy passes for an environment: an image digest and a certificate."""
    env = load_environments()[name]
    return {"image_digest": TEST_DIGEST, "certificate_arn": test_certificate_arn(env)}


@pytest.fixture
def no_cli(monkeypatch):
    """Record the command lines instead of running them."""
    calls: list[list[str]] = []
    monkeypatch.setattr(cdk_cli, "_run", lambda argv, extra_env, cwd, stdout: calls.append(argv))
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
        training_image_digests="fraud=sha256:" + "2" * 64,
        serving_image_digests=None,
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
    assert f"training_image_digests=fraud=sha256:{'2' * 64}" in argv
    assert not any(a.startswith("serving_image_digests=") for a in argv)  # None: not passed
    assert argv[-4:] == ["--all", "--require-approval", "never", "--no-notices"]


def test_an_unknown_override_is_refused_not_dropped():
    with pytest.raises(TypeError, match="unknown CDK context override 'image'"):
        cdk_argv(load_environments()["staging"], "deploy", image="sha256:" + "1" * 64)


def test_bootstrap_targets_the_configured_account_and_region():
    env = load_environments()["prod"]
    assert cdk_argv(env, "bootstrap")[4] == f"aws://{env.account}/{env.region}"


def test_destroy_prod_is_refused_without_confirmation(no_cli):
    with pytest.raises(ConfirmationRequiredError, match="--confirm prod"):
        cdk_command(load_environments()["prod"], "destroy")
    with pytest.raises(ConfirmationRequiredError):
        cdk_command(load_environments()["prod"], "destroy", confirm="staging")
    assert no_cli == []


def test_destroy_prod_runs_when_confirmed_by_name(no_cli):
    cdk_command(load_environments()["prod"], "destroy", confirm="prod", **release("prod"))
    (argv,) = no_cli
    assert argv[3] == "destroy" and "--force" in argv and "env=prod" in argv


def test_destroy_staging_needs_no_confirmation_but_still_prompts(no_cli):
    cdk_command(load_environments()["staging"], "destroy", **release("staging"))
    (argv,) = no_cli
    assert "--force" not in argv


@pytest.mark.parametrize("action", ["synth", "diff", "deploy", "destroy", "list"])
def test_settings_the_app_would_refuse_fail_before_the_cli_starts(no_cli, action):
    """Inside the CLI a ConfigError ends as a traceback in its output (issue 16 saw one for
    `./kit synth --env prod` without a digest); checked first, it is one line and nothing runs."""
    with pytest.raises(ConfigError, match=r"^\[prod\.mlflow\] image_digest is not set"):
        cdk_command(load_environments()["prod"], action, confirm="prod")
    assert no_cli == []


def test_synth_without_a_release_stands_placeholders_in_and_deploy_refuses_them(no_cli):
    prod = load_environments()["prod"]
    overrides, said = for_looking(prod, None, None)
    assert overrides["image_digest"] == PLACEHOLDER_DIGEST
    assert overrides["certificate_arn"].startswith("arn:aws:acm:eu-west-1:222222222222:")
    assert said == [
        f"no MLflow image digest: the placeholder {PLACEHOLDER_DIGEST[:19]}… stands in",
        "no certificate: a placeholder ACM ARN stands in",
    ]
    cdk_command(prod, "synth", **overrides)  # resolves: the templates can be looked at
    assert len(no_cli) == 1
    for name in ("image_digest", "certificate_arn"):
        looking = {**release("prod"), name: overrides[name]}
        with pytest.raises(ConfigError, match=r"is a placeholder \(for looking at a synth only\)"):
            cdk_command(prod, "deploy", **looking)
    assert len(no_cli) == 1
    # What is given is kept; only what is missing is stood in for.
    given, said = for_looking(prod, TEST_DIGEST, None)
    assert given["image_digest"] == TEST_DIGEST and len(said) == 1


def test_missing_cli_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(cdk_cli.shutil, "which", lambda name: None)
    with pytest.raises(cdk_cli.CdkCommandError, match="npm ci"):
        cdk_cli._run(["npx", "--no-install", "cdk", "synth"], None)


def test_migrate_run_task_request_uses_private_subnets_and_the_task_group():
    request = migrate_run_task_request(
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


@pytest.fixture
def recorded_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[list[str], dict]]:
    """The command line and environment of each CLI process cdk_command starts; none starts."""
    # A checkout with the pinned CLI "installed", so the test needs no node_modules.
    (tmp_path / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "node_modules" / ".bin" / "cdk").touch()
    monkeypatch.setattr(cdk_cli, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(cdk_cli.shutil, "which", lambda name: f"/usr/bin/{name}")
    calls: list[tuple[list[str], dict]] = []

    def run(argv, *, cwd, env, stdout, check):  # type: ignore[no-untyped-def]
        calls.append((argv, env))
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(cdk_cli.subprocess, "run", run)
    return calls


@pytest.mark.parametrize("action", typing.get_args(cdk_cli.Action))
def test_every_cli_call_has_telemetry_notices_and_version_check_off(
    recorded_cli, monkeypatch, action
):
    """Catches a CDK CLI call that may send telemetry, fetch notices or query npm for a version.

    The CLI reads CDK_DISABLE_CLI_TELEMETRY ("true" or "1") and CDK_DISABLE_VERSION_CHECK (any
    value); --no-notices wins over every configuration file.
    """
    # Neither the caller's shell nor a caller's extra_env turns them back on.
    monkeypatch.setenv("CDK_DISABLE_CLI_TELEMETRY", "false")
    cdk_command(
        load_environments()["staging"],
        action,
        extra_env={"CDK_DISABLE_VERSION_CHECK": ""},
        **release("staging"),
    )
    [(argv, env)] = recorded_cli
    assert argv[3] == action and "--no-notices" in argv
    assert env["CDK_DISABLE_CLI_TELEMETRY"] == "true"
    assert env["CDK_DISABLE_VERSION_CHECK"] == "true"


def test_the_cli_run_by_hand_from_infra_sends_nothing_either():
    """infra/cdk.json turns notices and telemetry off for `npx cdk ...` typed in infra/.

    Catches either setting removed; the kit's own calls do not depend on them (see above).
    """
    settings = json.loads((REPO_ROOT / "infra" / "cdk.json").read_text())
    assert settings["notices"] is False
    assert settings["context"]["cli-telemetry"] is False


# A connect(2) to anything but this machine: an IPv4/IPv6 address that is not loopback.
_CONNECT = re.compile(
    r'connect\(\d+, \{sa_family=AF_INET6?, .*?(?:inet_addr|inet_pton)\((?:AF_INET6, )?"([^"]+)"'
)


def _outbound(trace: str) -> list[str]:
    """The non-loopback addresses a strace log shows connect() calls to."""
    loopback = ("127.", "::1", "::ffff:127.")
    return [addr for addr in _CONNECT.findall(trace) if not addr.startswith(loopback)]


def test_outbound_parser_finds_a_remote_connect_and_ignores_loopback() -> None:
    trace = "\n".join(
        [
            '12 connect(3, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("52.1.2.3")}'
            ", 16) = -1 ENETUNREACH",
            '12 connect(4, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}'
            ", 16) = 0",
            "12 connect(5, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
            'inet_pton(AF_INET6, "2600::1", &sin6_addr), sin6_scope_id=0}, 28) = -1',
            '12 connect(6, {sa_family=AF_UNIX, sun_path="/tmp/jsii.sock"}, 110) = 0',
        ]
    )
    assert _outbound(trace) == ["52.1.2.3", "2600::1"]


def test_a_synth_through_the_cli_connects_to_nothing_outside_this_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every connect() of the CLI and the app it runs, recorded by strace across forks."""
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed: `./kit test` installs it (apt) when run as root")
    log = tmp_path / "connect.trace"
    run = cdk_cli._run

    def traced(argv, extra_env, cwd=cdk_cli.INFRA_DIR, stdout=None):  # type: ignore[no-untyped-def]
        return run(
            ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(log), *argv],
            extra_env,
            cwd,
            stdout,
        )

    monkeypatch.setattr(cdk_cli, "_run", traced)
    cdk_cli.synth(load_environments()["staging"], output=tmp_path / "out", **release("staging"))
    trace = log.read_text()
    assert "SIGCHLD" in trace, "strace did not follow the CLI's child processes"
    assert _outbound(trace) == []


def test_the_recording_sees_a_real_outbound_connect(tmp_path: Path) -> None:
    """The same strace recording, on a process that does try a remote host (TEST-NET-1)."""
    log = tmp_path / "connect.trace"
    code = (
        "import socket\n"
        "try:\n    socket.create_connection(('192.0.2.1', 443), 1)\nexcept OSError:\n    pass"
    )
    subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(log), sys.executable, "-c", code],
        check=True,
    )
    assert _outbound(log.read_text()) == ["192.0.2.1"]
