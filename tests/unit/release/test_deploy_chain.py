"""The deploy chain's own decisions, on moto in process: bad input, image and migrate steps.

The whole chain (CDK deploys, the service roll, model and endpoint) runs through `invoke deploy`
against a moto server in tests/integration/test_deploy.py. moto runs no container: here its
state manager lets a RunTask task stop at once, with the exit code the test sets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.ecs import models as ecs_models
from moto.moto_api import state_manager

from mlplatform.cloud import aws
from mlplatform.config import load_environment
from mlplatform.errors import PlatformError
from mlplatform.paths import StatePaths
from mlplatform.release import migration as migration_task
from mlplatform.release.chain import (
    STEPS,
    DeployError,
    DeployRequest,
    deploy,
    parse_steps,
    released_context,
)
from mlplatform.release.ecr_push import release_tag
from mlplatform.reporting import SilentReporter
from mlplatform.target import resolve_target, resolve_targets
from tests.oci_images import write_archive, write_layout

REGION = "eu-west-1"
REPO = Path(__file__).resolve().parents[3]
DIGEST = "sha256:" + "1" * 64
OLD = "sha256:" + "0" * 64


def run(tmp_path: Path, **request: Any) -> list[Any]:
    steps = request.pop("steps", STEPS)
    prod, local = resolve_targets("prod", "local", paths=StatePaths(tmp_path / "state"))
    chain = deploy(prod, local, DeployRequest(steps=steps, **request), SilentReporter())
    return list(chain)


def test_steps_run_in_chain_order_whatever_the_order_given() -> None:
    assert parse_steps("endpoint,infra") == ("infra", "endpoint")
    assert parse_steps(None) == STEPS


@pytest.mark.parametrize("text", ["infra,deploy", ",", "Model"])
def test_an_unknown_step_is_named(text: str) -> None:
    with pytest.raises(DeployError, match=r"unknown step .*; choose from infra, image, migrate"):
        parse_steps(text)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"target": "local"}, "deploy targets a cloud environment; use --env staging or prod"),
        ({"strategy": "big-bang"}, "unknown strategy 'big-bang'; choose one of all-at-once"),
        ({"image": "x.tar", "image_digest": DIGEST}, "pass --image or --image-digest, not both"),
        (
            {},
            r"no MLflow image to release: run `invoke build`, pass --image .* or set "
            r"\[prod.mlflow\] image_digest",
        ),
        ({"image_digest": "latest"}, "--image-digest 'latest' is not sha256:<64 hex>"),
    ],
)
def test_bad_requests_fail_before_anything_runs(
    tmp_path: Path, request_: dict[str, Any], message: str
) -> None:
    fields = dict(request_)
    target, source = resolve_targets(
        fields.pop("target", "prod"), "local", paths=StatePaths(tmp_path)
    )
    with pytest.raises(DeployError, match=message):
        list(deploy(target, source, DeployRequest(**fields), SilentReporter()))


# -- image and migrate against moto -----------------------------------------------------------


def _stack(cfn: Any, name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))


@pytest.fixture
def prod(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """prod's stacks as outputs, its cluster, migrate task definition and ECR repository."""
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")
    with mock_aws():
        c = {
            s: boto3.client(s, region_name=REGION) for s in ("cloudformation", "ecs", "ec2", "ecr")
        }
        vpc = c["ec2"].create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        # As CDK's VPC has it (moto's ENI for an awsvpc task needs it too).
        c["ec2"].modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = c["ec2"].create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
        group = c["ec2"].create_security_group(GroupName="t", Description="t", VpcId=vpc)
        c["ecs"].create_cluster(clusterName="mlp-prod-mlflow")
        repo = c["ecr"].create_repository(repositoryName="mlp-prod-mlflow")["repository"]
        side = {
            name: c["ecr"].create_repository(repositoryName=f"mlp-prod-{name}")["repository"]
            for name in ("training", "serving")
        }
        task = c["ecs"].register_task_definition(
            family="mlp-prod-mlflow-migrate",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="1024",
            memory="2048",
            containerDefinitions=[
                {
                    "name": "mlflow",
                    "image": f"{repo['repositoryUri']}@{DIGEST}",
                    "command": ["migrate"],
                    "memory": 2048,
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        outputs = {
            "MlflowRepositoryUri": repo["repositoryUri"],
            "TrainingRepositoryUri": side["training"]["repositoryUri"],
            "ServingRepositoryUri": side["serving"]["repositoryUri"],
            "ClusterName": "mlp-prod-mlflow",
            "ServiceName": "mlp-prod-mlflow",
            "MigrateTaskDefinitionArn": task,
            "TaskSecurityGroupId": group["GroupId"],
            "ImageDigest": DIGEST,
            "ServiceImageDigest": OLD,
        }
        _stack(c["cloudformation"], "mlp-prod-network", {"PrivateSubnetIds": subnet})
        state_manager.set_transition(
            model_name="ecs::task", transition={"progression": "immediate"}
        )
        try:
            yield {"clients": c, "outputs": outputs, "repository": repo["repositoryUri"]}
        finally:
            state_manager.unset_transition("ecs::task")


def _mlflow_stack(prod: dict[str, Any], **changes: str) -> None:
    _stack(prod["clients"]["cloudformation"], "mlp-prod-mlflow", {**prod["outputs"], **changes})


def _tasks(prod: dict[str, Any]) -> list[str]:
    return prod["clients"]["ecs"].list_tasks(cluster="mlp-prod-mlflow")["taskArns"]


def test_migrate_runs_the_task_once_per_release(prod: dict[str, Any], tmp_path: Path) -> None:
    _mlflow_stack(prod)
    (result,) = run(tmp_path, steps=("migrate",), image_digest=DIGEST)
    assert result.changed is True and "migrated the database" in result.detail
    (arn,) = _tasks(prod)
    (task,) = prod["clients"]["ecs"].describe_tasks(cluster="mlp-prod-mlflow", tasks=[arn])["tasks"]
    assert task["taskDefinitionArn"] == prod["outputs"]["MigrateTaskDefinitionArn"]
    assert task["lastStatus"] == "STOPPED"


def test_migrate_is_skipped_when_the_service_already_runs_the_release(
    prod: dict[str, Any], tmp_path: Path
) -> None:
    _mlflow_stack(prod, ServiceImageDigest=DIGEST)
    (result,) = run(tmp_path, steps=("migrate",), image_digest=DIGEST)
    assert result.changed is False
    assert _tasks(prod) == []


def test_a_failed_migration_stops_the_chain_before_the_service(
    prod: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _mlflow_stack(prod)
    original = ecs_models.Container.__init__

    def exits_with_3(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.exitCode = 3

    monkeypatch.setattr(ecs_models.Container, "__init__", exits_with_3)
    done: list[Any] = []
    with pytest.raises(DeployError) as caught:
        done.extend(
            deploy(
                *resolve_targets("prod", "local", paths=StatePaths(tmp_path)),
                DeployRequest(steps=("migrate", "service"), image_digest=DIGEST),
                SilentReporter(),
            )
        )
    assert done == []
    message = str(caught.value)
    assert message.startswith("migrate step failed: task ") and "exit code 3" in message
    assert "log group /mlp-prod/mlflow" in message
    # Not recorded as migrated: the service step would refuse to roll.
    tags = prod["clients"]["ecs"].list_tags_for_resource(
        resourceArn=prod["outputs"]["MigrateTaskDefinitionArn"]
    )["tags"]
    assert tags == []


def test_migrate_refuses_a_task_definition_of_another_image(
    prod: dict[str, Any], tmp_path: Path
) -> None:
    _mlflow_stack(prod, ImageDigest=OLD)
    with pytest.raises(DeployError, match=r"the migrate task runs sha256:0+, not .*infra step"):
        run(tmp_path, steps=("migrate",), image_digest=DIGEST)
    assert _tasks(prod) == []


def test_image_is_pushed_once_and_found_by_digest(prod: dict[str, Any], tmp_path: Path) -> None:
    digest = write_layout(tmp_path / "layout", {"app/server.py": b"serve"})
    _mlflow_stack(prod)
    (first,) = run(tmp_path, steps=("image",), image=str(tmp_path / "layout"))
    assert first.changed is True and f"pushed {digest[:19]}" in first.detail
    (again,) = run(tmp_path, steps=("image",), image=str(tmp_path / "layout"))
    assert again.changed is False
    (by_digest,) = run(tmp_path, steps=("image",), image_digest=digest)
    assert by_digest.changed is False and "already in mlp-prod-mlflow" in by_digest.detail


def _build(tmp_path: Path, *names: str) -> dict[str, str]:
    """What `invoke build` leaves in the state folder: one OCI archive per image."""
    images = tmp_path / "state" / "images"
    return {
        name: write_archive(images / f"{name}.oci.tar", {f"opt/{name}/marker": name.encode()})
        for name in names
    }


def _tags(prod: dict[str, Any], name: str) -> dict[str, list[str]]:
    found = prod["clients"]["ecr"].describe_images(repositoryName=f"mlp-prod-{name}")
    return {i["imageDigest"]: i.get("imageTags", []) for i in found["imageDetails"]}


def test_the_image_step_pushes_the_three_built_images_under_release_tags(
    prod: dict[str, Any], tmp_path: Path
) -> None:
    built = _build(tmp_path, "mlflow", "training-fraud", "serving-fraud")
    _mlflow_stack(
        prod,
        TrainingImageDigest=f"fraud={built['training-fraud']}",
        ServingImageDigest=f"fraud={built['serving-fraud']}",
    )
    (first,) = run(tmp_path, steps=("image",))
    assert first.changed is True
    for name, digest in built.items():
        repository = name.split("-")[0]  # training-fraud goes to the training repository
        assert _tags(prod, repository) == {digest: [release_tag(digest)]}
        assert f"pushed {digest[:19]}… to mlp-prod-{repository}" in first.detail
    (again,) = run(tmp_path, steps=("image",))
    assert again.changed is False and again.detail.count("already in") == 3


def _two_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prod trains a second model, of the forecast source."""
    config = tmp_path / "environments.toml"
    text = (REPO / "environments.toml").read_text()
    config.write_text(f'{text}\n[prod.models.demand]\nsource = "examples/forecast"\n')
    monkeypatch.setenv("MLPLATFORM_CONFIG", str(config))


def test_each_sources_images_are_pushed_and_checked_against_its_own_record(
    prod: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_sources(tmp_path, monkeypatch)
    built = _build(tmp_path, "mlflow", "training-fraud", "training-forecast")
    # The stack records fraud's training image only: forecast's needs the infra step.
    _mlflow_stack(prod, TrainingImageDigest=f"fraud={built['training-fraud']}")
    with pytest.raises(
        DeployError,
        match=rf"^source forecast's training image {built['training-forecast'][:19]}… is not "
        r"the release's \(none, the MLflow stack's TrainingImageDigest\); add the infra step",
    ):
        run(tmp_path, steps=("image",))
    assert _tags(prod, "training") == {}  # refused before anything was pushed
    record = f"fraud={built['training-fraud']},forecast={built['training-forecast']}"
    prod["clients"]["cloudformation"].delete_stack(StackName="mlp-prod-mlflow")
    _mlflow_stack(prod, TrainingImageDigest=record)
    (pushed,) = run(tmp_path, steps=("image",))
    assert set(_tags(prod, "training")) == {built["training-fraud"], built["training-forecast"]}
    assert pushed.detail.count("to mlp-prod-training") == 2
    # One named image cannot stand for two sources.
    with pytest.raises(DeployError, match=r"^--training-image names one image and prod trains 2"):
        run(tmp_path, steps=("image",), training_image=str(tmp_path / "anything.oci.tar"))


def test_the_recorded_images_of_other_sources_are_kept_by_a_release_of_one(
    prod: dict[str, Any], tmp_path: Path
) -> None:
    _mlflow_stack(prod, TrainingImageDigest=f"forecast={OLD},fraud={OLD}")
    released = released_context(resolve_target("prod"), {"training": {"fraud": DIGEST}})
    assert released == {"training": f"forecast={OLD},fraud={DIGEST}", "serving": None}


def test_a_built_image_the_stack_does_not_record_needs_the_infra_step(
    prod: dict[str, Any], tmp_path: Path
) -> None:
    built = _build(tmp_path, "serving-fraud")
    _mlflow_stack(prod, ServingImageDigest="none")
    with pytest.raises(
        DeployError,
        match=rf"^source fraud's serving image {built['serving-fraud'][:19]}… is not the "
        r"release's \(none, the MLflow stack's ServingImageDigest\); add the infra step to "
        r"release it$",
    ):
        run(tmp_path, steps=("image",), image_digest=DIGEST)
    assert _tags(prod, "serving") == {}


def test_a_pinned_image_is_not_released_from_the_build_and_refuses_a_named_one(
    prod: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _build(tmp_path, "mlflow", "training-fraud")
    pinned = tmp_path / "environments.toml"
    text = (REPO / "environments.toml").read_text()
    pinned.write_text(f'{text}\n[prod.training]\ntraining_image_digest = "{OLD}"\n')
    monkeypatch.setenv("MLPLATFORM_CONFIG", str(pinned))
    _mlflow_stack(prod)
    (result,) = run(tmp_path, steps=("image",))
    assert _tags(prod, "training") == {} and "training" not in result.detail
    named = str(tmp_path / "state" / "images" / "training-fraud.oci.tar")
    with pytest.raises(
        DeployError,
        match=r"^\[prod.training\] training_image_digest pins the training image; remove the "
        rf"pin to release {named}$",
    ):
        run(tmp_path, steps=("image",), training_image=named)


def test_an_image_digest_missing_from_ecr_is_refused_before_any_step(
    prod: dict[str, Any], tmp_path: Path
) -> None:
    _mlflow_stack(prod)
    # infra is first: had it run, the CDK CLI would have been called (and failed otherwise).
    with pytest.raises(DeployError) as caught:
        run(tmp_path, steps=("infra", "image", "migrate"), image_digest=DIGEST)
    assert str(caught.value) == (
        f"{DIGEST[:19]}… is not in mlp-prod-mlflow; pass --image with the image "
        "(OCI archive or local image) to push it"
    )
    assert _tasks(prod) == []


def test_a_migration_is_recorded_and_not_run_again(prod: dict[str, Any], tmp_path: Path) -> None:
    _mlflow_stack(prod)
    run(tmp_path, steps=("migrate",), image_digest=DIGEST)
    ecs = prod["clients"]["ecs"]
    tags = ecs.list_tags_for_resource(resourceArn=prod["outputs"]["MigrateTaskDefinitionArn"])
    assert {"key": "mlplatform:migrated-digest", "value": DIGEST} in tags["tags"]
    (again,) = run(tmp_path, steps=("migrate",), image_digest=DIGEST)
    assert again.changed is False and "was migrated for" in again.detail
    assert len(_tasks(prod)) == 1


def test_the_service_does_not_roll_before_its_migration(
    prod: dict[str, Any], tmp_path: Path
) -> None:
    _mlflow_stack(prod)
    with pytest.raises(
        DeployError,
        match=r"service step failed: the database has not been migrated for sha256:1+…; run "
        "the migrate step first",
    ):
        run(tmp_path, steps=("service",), image_digest=DIGEST)


def test_a_migration_still_running_is_joined_not_started_twice(
    prod: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _mlflow_stack(prod)
    ecs = prod["clients"]["ecs"]
    network = prod["clients"]["cloudformation"].describe_stacks(StackName="mlp-prod-network")
    subnet = network["Stacks"][0]["Outputs"][0]["OutputValue"]
    # An interrupted deploy left this one running; each DescribeTasks moves it one state on.
    state_manager.set_transition(
        model_name="ecs::task", transition={"progression": "manual", "times": 1}
    )
    monkeypatch.setattr(migration_task, "_WAIT", {"Delay": 0, "MaxAttempts": 10})
    ecs.run_task(
        cluster="mlp-prod-mlflow",
        taskDefinition=prod["outputs"]["MigrateTaskDefinitionArn"],
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [subnet],
                "securityGroups": [prod["outputs"]["TaskSecurityGroupId"]],
            }
        },
    )
    (result,) = run(tmp_path, steps=("migrate",), image_digest=DIGEST)
    assert result.changed is True
    assert len(_tasks(prod)) == 1


def test_a_stack_without_the_service_digest_output_is_read_from_ecs(
    prod: dict[str, Any], tmp_path: Path
) -> None:
    """Stacks deployed before the kit reported ServiceImageDigest: the service is not paused."""
    ecs = prod["clients"]["ecs"]
    definition = ecs.register_task_definition(
        family="mlp-prod-mlflow",
        containerDefinitions=[
            {"name": "mlflow", "image": f"{prod['repository']}@{DIGEST}", "memory": 2048}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster="mlp-prod-mlflow", serviceName="mlp-prod-mlflow", taskDefinition=definition
    )
    outputs = {k: v for k, v in prod["outputs"].items() if k != "ServiceImageDigest"}
    _stack(prod["clients"]["cloudformation"], "mlp-prod-mlflow", outputs)
    (result,) = run(tmp_path, steps=("migrate",), image_digest=DIGEST)
    assert result.changed is False and "the service already runs" in result.detail
    assert _tasks(prod) == []


def test_an_environment_without_infra_is_one_error(prod: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(
        DeployError,
        match=r"image step failed: stack mlp-prod-mlflow is not deployed; run the infra",
    ):
        run(tmp_path, steps=("image",), image_digest=DIGEST)


@pytest.mark.parametrize("value", ["not json", '["a"]', '{"username": "u"}'])
def test_a_malformed_login_secret_is_one_line(prod: dict[str, Any], value: str) -> None:
    env = load_environment("prod")
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=env.client_secret_name, SecretString=value
    )
    with pytest.raises(PlatformError) as caught:
        aws.json_secret(env, env.client_secret_name, "MLflow client")
    assert str(caught.value) == (
        f"prod's MLflow client secret {env.client_secret_name} is not a JSON object with "
        "username, password"
    )
