"""A real local stack (MariaDB, SeaweedFS, moto, MLflow) for the session, started as a user does.

It runs from its own state folder and on its own ports, so a developer's stack keeps running.
Tests that take `runtime_stack` run on the native stack, and in the container lane again on the
same stack under the compose runtime (`compose_stack`): one test, both runtimes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.cli import REPO, exported, kit
from tests.leftovers import stragglers

FRAUD, FORECAST = "fraud-classifier", "demand-forecast"
TEST_PORTS = {"mlflow": 15000, "s3": 18433, "aws": 14566, "database": 13307}
# The compose runtime's stack, away from the native ones (5000.., 15000..) and from the S3
# store's +1..4 and +10000 ports.
COMPOSE_PORTS = {"mlflow": 25500, "s3": 26433, "aws": 24566, "database": 23307}
COMPOSE_PROJECT = "mlplatform"  # fixed in mlplatform/local/runtimes/compose.py
RUNTIMES = ["native", pytest.param("compose", marks=pytest.mark.container)]
# Where emulated cloud environments' MLflow servers listen during tests (their emulated accounts,
# with `emulate --account`, one port above).
TEST_EMULATED_PORTS = {"staging": 15200, "prod": 15100}


def write_config(path: Path, ports: dict[str, int], emulated: dict[str, int] | None = None) -> Path:
    """The repository's environments.toml with the local (and emulated MLflow) ports replaced."""
    text = (REPO / "environments.toml").read_text(encoding="utf-8")
    tables = {"local": "".join(f"{k} = {v}\n" for k, v in ports.items())}
    for name, port in (emulated or TEST_EMULATED_PORTS).items():
        tables[name] = f"mlflow = {port}\naws = {port + 1}\n"
    for name, body in tables.items():
        start = text.index(f"[{name}.ports]")
        end = text.index("\n\n", start)
        text = text[:start] + f"[{name}.ports]\n" + body.rstrip("\n") + text[end:]
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Stack:
    """A running test stack and how to drive it."""

    home: Path
    env: dict[str, str]
    ports: dict[str, int]
    runtime: str = "native"

    def up(self):  # type: ignore[no-untyped-def]
        """`invoke up` on this stack's runtime (after `down` no runtime is recorded)."""
        return self.kit("up", "--runtime", self.runtime, timeout=900)

    def kit(self, *args: str, check: bool = True, timeout: float = 600):  # type: ignore[no-untyped-def]
        return kit(*args, env=self.env, check=check, timeout=timeout)

    def status(self) -> dict:
        return json.loads(self.kit("status", "--json").stdout)

    def client_env(self) -> dict[str, str]:
        """What `invoke env` prints, parsed the way a shell would."""
        return exported(self.kit("env").stdout)

    def s3(self):  # type: ignore[no-untyped-def]
        """A boto3 S3 client for the stack's object store, with the keys `invoke env` prints."""
        return s3_of(self.client_env(), "us-east-1")

    def process_groups(self) -> list[int]:
        return [os.getpgid(s["pid"]) for s in self.status()["services"].values() if s["pid"]]


def s3_of(env: dict[str, str], region: str):  # type: ignore[no-untyped-def]
    """An S3 client from the variables `invoke env` prints (an S3 endpoint and its keys)."""
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL_S3"],
        region_name=region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`invoke up` once per session; `invoke down` (a group kill as backstop) at the end."""
    home = tmp_path_factory.mktemp("stack")
    config = write_config(home / "environments.toml", TEST_PORTS)
    env = {"MLPLATFORM_HOME": str(home / "state"), "MLPLATFORM_CONFIG": str(config)}
    s = Stack(home, env, TEST_PORTS)
    try:
        s.kit("up")
        yield s
    finally:
        s.kit("down", check=False)
        kill_stragglers(home)


def compose_resources(env: dict[str, str]) -> list[str]:
    """Containers and volumes of the kit's compose project on this machine's engine."""
    label = f"label=com.docker.compose.project={COMPOSE_PROJECT}"
    found = []
    for what in (["ps", "-a"], ["volume", "ls"]):
        listed = subprocess.run(
            ["podman", *what, "-q", "--filter", label], env=env, capture_output=True, text=True
        )
        found += listed.stdout.split()
    return found


@pytest.fixture(scope="session")
def compose_stack(
    images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The same stack under the compose runtime (the container lane), on its own ports.

    `up --runtime compose` once; at the end `down --volumes`, which must leave no container or
    volume of the project (a failed `up` records no runtime: then the project is removed
    directly, and the leftovers still fail the lane).
    """
    if compose_resources(images):
        pytest.fail(
            f"a compose project named {COMPOSE_PROJECT!r} exists here (the kit's name is fixed): "
            "`./kit down` it, then run the lane again",
            pytrace=False,
        )
    home = tmp_path_factory.mktemp("compose-stack")
    config = write_config(home / "environments.toml", COMPOSE_PORTS)
    env = {**images, "MLPLATFORM_HOME": str(home / "state"), "MLPLATFORM_CONFIG": str(config)}
    s = Stack(home, env, COMPOSE_PORTS, "compose")
    try:
        s.up()
        yield s
    finally:
        kit("down", "--volumes", env=env, timeout=300)
        left = compose_resources(images)
        if left:
            subprocess.run(
                ["docker", "compose", "-p", COMPOSE_PROJECT, "-f", "compose/docker-compose.yml",
                 "down", "--volumes"],
                cwd=REPO,
                env={**images, "MLP_SECRETS_DIR": str(home / "state" / "secrets")},
                capture_output=True,
                check=False,
                timeout=300,
            )  # fmt: skip
    assert left == [], f"`down --volumes` left containers or volumes: {left}"


@pytest.fixture(params=RUNTIMES)
def runtime_stack(request: pytest.FixtureRequest) -> Stack:
    """The native stack; in the container lane, the compose one."""
    stack: Stack = request.getfixturevalue(
        "stack" if request.param == "native" else "compose_stack"
    )
    return stack


def kill_stragglers(home: Path, grace: float = 10) -> None:
    """The backstop after `invoke down`: every process still naming the stack's folder (its
    supervisors, services and their workers, an emulation's too) gets `grace` seconds to go,
    then its whole process group is killed. Groups are found now, not remembered from `up`:
    tests restart services, and a restarted service has a new group."""
    deadline = time.monotonic() + grace
    while (left := stragglers(str(home))) and time.monotonic() < deadline:
        time.sleep(0.2)
    for process in left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(process.pid), signal.SIGKILL)


@pytest.fixture
def prod(stack: Stack) -> dict[str, str]:
    """Emulated prod beside the stack; the variables `invoke env --env prod` gives a shell.

    `invoke emulate` runs for every test that asks: it is a no-op when prod is up, and brings it
    back after a test took the local stack down (emulations stand on it).
    """
    stack.kit("emulate", "--env", "prod")
    variables = exported(stack.kit("env", "--env", "prod").stdout)
    assert variables["MLPLATFORM_MLFLOW_URL_PROD"] == (
        f"http://127.0.0.1:{TEST_EMULATED_PORTS['prod']}"
    )
    return {**stack.env, **variables}


# Outputs of prod's stacks for the tests of the cloud code path. The real stacks deploy to moto in
# tests/unit/infra/test_infra_emulated_deploy.py; here only their outputs matter.
PROD_OUTPUTS = {
    "sagemaker": {
        "ExecutionRoleArn": "arn:aws:iam::222222222222:role/sm",
        "EndpointRoleArn": "arn:aws:iam::222222222222:role/sm-endpoint",
        # teams.toml's fraud team owns fraud-classifier: its jobs run under the team's role.
        "TeamRoleArnFraud": "arn:aws:iam::222222222222:role/sm-team-fraud",
        "SecurityGroupId": "sg-1",
    },
    "network": {"PrivateSubnetIds": "subnet-1,subnet-2"},
    "data": {"BucketName": "mlp-prod-artifacts-222222222222-eu-west-1"},
}


def ensure_stack_outputs(endpoint: str, outputs: dict[str, dict[str, str]]) -> None:
    """CloudFormation stacks in the emulator that carry `outputs` (created once per session)."""
    cfn = boto3.session.Session(
        aws_access_key_id="emulator", aws_secret_access_key="emulator", region_name="eu-west-1"
    ).client("cloudformation", endpoint_url=endpoint)
    existing = {
        s["StackName"]
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    }
    for suffix, values in outputs.items():
        name = f"mlp-prod-{suffix}"
        if name in existing:
            continue
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {k: {"Value": v} for k, v in values.items()},
        }
        cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))


def prod_admin(prod: dict[str, str]) -> tuple[str, str]:
    """Emulated prod's MLflow admin, read from its Secrets Manager as the kit reads it."""
    sm = boto3.client(
        "secretsmanager",
        endpoint_url=prod["AWS_ENDPOINT_URL"],
        region_name="eu-west-1",
        aws_access_key_id="emulator",
        aws_secret_access_key="emulator",
    )
    secret = json.loads(sm.get_secret_value(SecretId="mlp-prod/mlflow-admin")["SecretString"])
    return secret["username"], secret["password"]


@pytest.fixture(scope="module")
def two_models(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """The session's stack, driven with a configuration that lists a second model."""
    folder = tmp_path_factory.mktemp("two-models")
    config = folder / "environments.toml"
    text = Path(stack.env["MLPLATFORM_CONFIG"]).read_text(encoding="utf-8")
    marker = '[local.models.fraud-classifier]\nsource = "examples/fraud"\n'
    assert marker in text
    extra = f'\n[local.models.{FORECAST}]\nsource = "examples/forecast"\n'
    config.write_text(text.replace(marker, marker + extra), encoding="utf-8")
    return Stack(stack.home, {**stack.env, "MLPLATFORM_CONFIG": str(config)}, stack.ports)
