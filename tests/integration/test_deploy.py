"""`invoke deploy --env prod` end to end: every step against an emulated AWS, then again.

prod's AWS is the account `invoke emulate --env prod --account` makes, as the README's path does:
the kit's strict AWS server (mlplatform/emulator/aws_server.py), CDK-bootstrapped, with a
certificate for prod's domain that `deploy` finds by name. The real CDK CLI deploys the five
stacks to it; prod's registry starts by itself once the service is given an image (as Fargate
starts its task) on the secrets and bucket the stacks created; the source registry is the local
stack.

What the emulator cannot show, and where it is covered instead:
- no container runs: the migrate task stops at once with exit code 0 (moto's state manager);
  the migration itself runs in `invoke emulate` (same entrypoint), and a failing migration is
  tests/unit/release/test_deploy_chain.py::test_a_failed_migration_stops_the_chain_before_the_service;
- ECS never pulls the pushed image and no task of the service starts: the service's task
  definition naming the digest is what is checked; the deployment circuit breaker is checked
  statically (tests/unit/infra);
- moto's ECR is an API, not a registry: the manifest and blobs are stored and found by digest,
  not pulled;
- SageMaker creates the endpoint at once; rollouts are tests/unit/serving/test_endpoints.py;
- the endpoint's answers come from the scoring server's code in this checkout, in the
  environment of the serving image's lock (its labels, read from the pushed config), not from
  the pushed image's layers (whose bytes are the container lane's test).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import numpy as np
import pytest
from fraud_model.data import FEATURES, generate

from mlplatform.images.oci_archive import open_image
from mlplatform.names import LOCK_LABEL, SOURCE_LABEL
from mlplatform.registry.client import authenticated_client
from mlplatform.release.ecr_push import release_tag
from tests.cli import REPO, exported, kit
from tests.emulator.process import PatchedMoto
from tests.integration.conftest import Stack
from tests.integration.test_sources import predict_in_source_environment, validation_rows
from tests.oci_images import write_archive

pytestmark = pytest.mark.integration
ACCOUNT, REGION = "222222222222", "eu-west-1"
MODEL = "fraud-classifier"
# In the kit's serving repository: the endpoint role may pull from it and nowhere else.
SERVING_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mlp-prod/serving@sha256:" + "f" * 64
MYSQL, MARIADB = 'engine = "mysql"\nversion = "8.0"', 'engine = "mariadb"\nversion = "10.11"'


def steps(result: Any) -> list[dict[str, Any]]:
    """The JSON lines of a deploy, one per step that finished."""
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cloud(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """prod's emulated account (empty, CDK-bootstrapped, with a certificate) and release images."""
    # prod's registry moves to this module's emulator; other modules find it gone and restart it.
    stack.kit("emulate", "--env", "prod", "--down", "--volumes", check=False)
    work = tmp_path_factory.mktemp("deploy")
    # The database engine the local stack runs here (Debian's MariaDB 10.11) in every
    # environment, so that `invoke parity` can find the release clean.
    config = work / "environments.toml"
    text = Path(stack.env["MLPLATFORM_CONFIG"]).read_text(encoding="utf-8")
    config.write_text(text.replace(MYSQL, MARIADB), encoding="utf-8")
    env = {**stack.env, "MLPLATFORM_CONFIG": str(config)}
    try:
        # The README's path: one command makes prod's account (bootstrap, certificate).
        kit("emulate", "--env", "prod", "--account", env=env, check=True, timeout=600)
        variables = exported(kit("env", "--env", "prod", env=env, check=True).stdout)
        env.update(variables)
        aws = PatchedMoto(
            variables["AWS_ENDPOINT_URL"],
            REGION,
            variables,
            Path(stack.env["MLPLATFORM_HOME"]) / "emulated" / "prod" / "authorizations.jsonl",
        )
        archive = work / "mlflow.oci.tar"
        digest = write_archive(archive, {"opt/mlflow_server/__init__.py": b"# release 1\n"})
        # The next release, saved as `docker save` saves images (plain tar layers, gzipped on
        # push: its digest is the pushed image's).
        archive_b = work / "mlflow-b.oci.tar"
        write_archive(
            archive_b, {"opt/mlflow_server/__init__.py": b"# release 2\n"}, compress=False
        )
        with open_image(archive_b) as release_b:
            digest_b = release_b.digest
        # The training image is named on the command line; the serving image is where
        # `invoke build` leaves it, which the chain takes when none is named. All three are
        # there for `invoke parity` (the MLflow one is named on the command line too).
        training = work / "training.oci.tar"
        training_digest = write_archive(training, {"opt/ml/code/train.py": b"# train\n"})
        images = Path(stack.env["MLPLATFORM_HOME"]) / "images"
        images.mkdir(parents=True, exist_ok=True)
        # Labelled with its source and lock as the kit's Dockerfile labels it: the emulated
        # endpoint serves in the environment of that lock.
        lock = hashlib.sha256((REPO / "examples" / "fraud" / "requirements.txt").read_bytes())
        serving_digest = write_archive(
            images / "serving-fraud.oci.tar",
            {"scoring_server/__init__.py": b"# serve\n"},
            labels={SOURCE_LABEL: "fraud", LOCK_LABEL: lock.hexdigest()},
        )
        shutil.copyfile(training, images / "training-fraud.oci.tar")
        shutil.copyfile(archive, images / "mlflow.oci.tar")
        yield SimpleNamespace(
            aws=aws,
            env=env,
            archive=archive,
            digest=digest,
            archive_b=archive_b,
            digest_b=digest_b,
            training=training,
            training_digest=training_digest,
            serving_digest=serving_digest,
            images=images,
            config=config,
        )
    finally:
        shutil.rmtree(Path(stack.env["MLPLATFORM_HOME"]) / "images", ignore_errors=True)
        stack.kit("emulate", "--env", "prod", "--down", "--volumes", check=False)


def deploy(cloud: SimpleNamespace, *args: str, check: bool = True) -> Any:
    return kit(
        "deploy",
        "--env",
        "prod",
        "--json",
        "--yes",
        *args,
        env=cloud.env,
        check=check,
        timeout=1200,
    )


def prod_admin(cloud: SimpleNamespace) -> Any:
    """A client of prod's registry, logged in as its admin (the secret the stacks created)."""
    secret = cloud.aws.client("secretsmanager").get_secret_value(SecretId="mlp-prod/mlflow-admin")
    admin = json.loads(secret["SecretString"])
    return authenticated_client(
        cloud.env["MLPLATFORM_MLFLOW_URL_PROD"], admin["username"], admin["password"]
    )


def mlflow_outputs(cloud: SimpleNamespace) -> dict[str, str]:
    (stack,) = cloud.aws.client("cloudformation").describe_stacks(StackName="mlp-prod-mlflow")[
        "Stacks"
    ]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def migrations(cloud: SimpleNamespace) -> list[dict[str, Any]]:
    """The tasks of the migrate task definition that were started in the cluster."""
    ecs = cloud.aws.client("ecs")
    arns = ecs.list_tasks(cluster="mlp-prod-mlflow")["taskArns"]
    tasks = ecs.describe_tasks(cluster="mlp-prod-mlflow", tasks=arns)["tasks"] if arns else []
    return [
        t for t in tasks if ":task-definition/mlp-prod-mlflow-migrate:" in t["taskDefinitionArn"]
    ]


def test_first_release_builds_the_platform_in_order(cloud: SimpleNamespace) -> None:
    result = deploy(
        cloud,
        "--steps",
        "infra,image,migrate,service",
        "--image",
        str(cloud.archive),
        "--training-image",
        str(cloud.training),
    )
    done = steps(result)
    assert [s["step"] for s in done] == ["infra", "image", "migrate", "service"]
    assert all(s["changed"] for s in done), done
    assert set(done[0]) == {"step", "changed", "detail"}

    outputs = mlflow_outputs(cloud)
    assert outputs["ImageDigest"] == outputs["ServiceImageDigest"] == cloud.digest
    # The release's training and serving images of each source, recorded where the runner and
    # the endpoint step read them.
    assert outputs["TrainingImageDigest"] == f"fraud={cloud.training_digest}"
    assert outputs["ServingImageDigest"] == f"fraud={cloud.serving_digest}"
    ecr = cloud.aws.client("ecr")
    released = {
        "Mlflow": cloud.digest,
        "Training": cloud.training_digest,
        "Serving": cloud.serving_digest,
    }
    for name, digest in released.items():
        repository = outputs[f"{name}RepositoryUri"].split("/", 1)[1]
        (image,) = ecr.describe_images(repositoryName=repository)["imageDetails"]
        assert image["imageDigest"] == digest
        # Tagged: ECR's lifecycle rule (which counts tagged releases) never expires it.
        assert image["imageTags"] == [release_tag(digest)]
    # One migration ran, with the task definition that names the release's image.
    ecs = cloud.aws.client("ecs")
    (task,) = migrations(cloud)
    assert task["lastStatus"] == "STOPPED"
    migrate = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    assert migrate["taskDefinition"]["containerDefinitions"][0]["image"].endswith(
        "@" + cloud.digest
    )
    # The service now runs the same digest, at its configured size.
    (service,) = ecs.describe_services(cluster="mlp-prod-mlflow", services=["mlp-prod-mlflow"])[
        "services"
    ]
    serve = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    (container,) = serve["taskDefinition"]["containerDefinitions"]
    assert container["image"].endswith("@" + cloud.digest) and container["command"] == ["serve"]
    assert service["desiredCount"] == 2


def test_the_whole_chain_releases_the_gated_champion_then_changes_nothing(
    stack: Stack, cloud: SimpleNamespace
) -> None:
    # prod's registry started by itself after the first release gave the service an image, on
    # the secrets and bucket the stacks created; nobody ran `emulate` again.
    # prod's new registry has no champion yet: the endpoint step says so in one line.
    empty = deploy(cloud, "--steps", "endpoint", check=False)
    assert empty.returncode == 1 and empty.stdout == ""
    assert [line for line in empty.stderr.splitlines() if line.strip()] == [
        "error: endpoint step failed: model 'fraud-classifier' has no alias 'champion' in this "
        "registry"
    ]
    # A locally trained version that passed the gate.
    stack.kit("data")
    trained = json.loads(stack.kit("train", "--json", "--set", "n_estimators=20").stdout)
    gate = json.loads(stack.kit("champion", "--json").stdout)
    assert gate["promoted"] is True

    args = ("--image", str(cloud.archive), "--training-image", str(cloud.training))
    first = steps(deploy(cloud, *args))
    assert [(s["step"], s["changed"]) for s in first] == [
        ("infra", False),
        ("image", False),
        ("migrate", False),
        ("service", False),
        ("model", True),
        ("endpoint", True),
    ]
    assert f"local v{trained['model_version']} -> prod v" in first[4]["detail"]

    sagemaker = cloud.aws.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName="mlp-prod-fraud-classifier")
    (variant,) = endpoint["ProductionVariants"]
    assert variant["VariantName"] == "champion"
    # InService: the strict emulator found the serving image in ECR, pullable by the endpoint
    # role; and it is the one the chain pushed, by digest.
    assert endpoint["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    (model,) = [v["ModelName"] for v in config["ProductionVariants"]]
    image = sagemaker.describe_model(ModelName=model)["PrimaryContainer"]["Image"]
    outputs = mlflow_outputs(cloud)
    assert image == f"{outputs['ServingRepositoryUri']}@{cloud.serving_digest}"
    # A SageMaker job trains on the training image the chain pushed, without being told which.
    job = json.loads(
        kit(
            "train",
            "--env",
            "prod",
            "--runner",
            "sagemaker",
            "--no-wait",
            "--json",
            env=cloud.env,
            check=True,
        ).stdout
    )
    described = sagemaker.describe_training_job(TrainingJobName=job["job_name"])
    assert described["AlgorithmSpecification"]["TrainingImage"] == (
        f"{outputs['TrainingRepositoryUri']}@{cloud.training_digest}"
    )
    assert described["TrainingJobStatus"] != "Failed", described.get("FailureReason")
    with prod_admin(cloud) as client:
        champion = client.get_model_version_by_alias(MODEL, "champion")
        assert champion.tags["mlp.source.version"] == trained["model_version"]

    again = steps(deploy(cloud, *args))
    assert [s["step"] for s in again] == list(
        ("infra", "image", "migrate", "service", "model", "endpoint")
    )
    assert not any(s["changed"] for s in again), again
    assert len(migrations(cloud)) == 1  # no second migration


def test_the_endpoint_answers_with_the_champions_predictions(
    stack: Stack, cloud: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`invoke predict --env prod`: InvokeEndpoint, answered by the model the endpoint serves
    (the emulator runs the scoring server on the model.tar.gz the endpoint step uploaded)."""
    rows = generate(5, 0.3, seed=11)[list(FEATURES)]
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"dataframe_split": rows.to_dict(orient="split")}))
    answer = json.loads(
        kit(
            "predict", "--env", "prod", "--json", "--input", str(request), env=cloud.env, check=True
        ).stdout
    )
    assert (answer["variant"], answer["content_type"]) == ("champion", "application/json")
    for key, value in stack.client_env().items():
        if key.startswith("MLFLOW_TRACKING_"):
            monkeypatch.setenv(key, value)
    champion = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    assert np.allclose(np.asarray(answer["body"]["predictions"]), champion.predict(rows))

    # What the model refuses, and what SageMaker refuses, are one line each.
    bad = tmp_path / "bad.json"
    bad.write_text('{"dataframe_records": [{"amount": "ten"}]}')
    refused = kit("predict", "--env", "prod", "--input", str(bad), env=cloud.env)
    assert one_error(refused).startswith("error: the model refused the request (400): ")
    unknown = kit(
        "predict", "--env", "prod", "--variant", "blue", "--input", str(request), env=cloud.env
    )
    assert one_error(unknown) == (
        "error: cannot invoke mlp-prod-fraud-classifier in prod: Variant blue not found for "
        "endpoint mlp-prod-fraud-classifier"
    )


def parity(cloud: SimpleNamespace, **env: str) -> tuple[int, dict[str, Any]]:
    done = kit("parity", "--env", "prod", "--json", env={**cloud.env, **env}, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_parity_is_clean_after_a_release_and_names_each_drift(cloud: SimpleNamespace) -> None:
    code, report = parity(cloud)
    rows = {r["item"]: r for r in report["rows"]}
    assert [r for r in rows.values() if r["status"] != "same"] == []
    assert (code, report["clean"]) == (0, True)
    assert rows["database"]["local"].startswith("mariadb 10.11.")
    assert rows["database"]["remote"].startswith("mariadb 10.11.")
    # The parameter group and the task definition as deployed, the local server as running.
    tls = "required by the server; MLflow verifies the certificate"
    assert (rows["database TLS"]["local"], rows["database TLS"]["remote"]) == (tls, tls)
    assert rows["image serving-fraud"]["remote"] == cloud.serving_digest
    assert rows["image mlflow"]["remote"] == cloud.digest
    assert rows["champion"]["local"] == rows["champion"]["remote"]

    # One setting changed locally: that row, and only it, drifts; exit 1.
    changed = cloud.images.parent.parent / "drifted.toml"
    text = cloud.config.read_text(encoding="utf-8")
    local_mlflow = text.index("[local.mlflow]")
    ttl = text.index("auth_cache_ttl_seconds = 30", local_mlflow)
    changed.write_text(text[:ttl] + "auth_cache_ttl_seconds = 45" + text[ttl + 27 :])
    code, report = parity(cloud, MLPLATFORM_CONFIG=str(changed))
    drifted = [
        (r["item"], r["local"], r["remote"]) for r in report["rows"] if r["status"] != "same"
    ]
    assert (code, drifted) == (1, [("setting MLFLOW_AUTH_CACHE_TTL_SECONDS", "45", "30")])

    # A serving image built here that prod does not serve: that image drifts.
    serving = cloud.images / "serving-fraud.oci.tar"
    saved = serving.read_bytes()
    other = write_archive(serving, {"scoring_server/__init__.py": b"# changed\n"})
    try:
        code, report = parity(cloud)
    finally:
        serving.write_bytes(saved)
    drifted = [
        (r["item"], r["local"], r["status"]) for r in report["rows"] if r["status"] != "same"
    ]
    assert (code, drifted) == (1, [("image serving-fraud", other, "drift")])


def service_image(cloud: SimpleNamespace) -> tuple[str, int]:
    """The image the MLflow service's task definition names, and its desired count."""
    ecs = cloud.aws.client("ecs")
    (service,) = ecs.describe_services(cluster="mlp-prod-mlflow", services=["mlp-prod-mlflow"])[
        "services"
    ]
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    return definition["taskDefinition"]["containerDefinitions"][0]["image"], service["desiredCount"]


def one_error(result: Any) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_digest_missing_from_ecr_is_refused_before_anything_changes(
    cloud: SimpleNamespace,
) -> None:
    before = mlflow_outputs(cloud)
    missing = "sha256:" + "e" * 64
    result = deploy(cloud, "--image-digest", missing, check=False)
    assert one_error(result) == (
        f"error: {missing[:19]}… is not in mlp-prod/mlflow; pass --image with the image "
        "(OCI archive or local image) to push it"
    )
    assert result.stdout == ""
    assert mlflow_outputs(cloud) == before


def test_a_second_release_migrates_before_the_service_rolls_and_a_failure_stops_the_chain(
    cloud: SimpleNamespace,
) -> None:
    # Phase one alone: the migrate task moves to release B, the service stays on A at full size.
    (infra,) = steps(deploy(cloud, "--steps", "infra", "--image", str(cloud.archive_b)))
    assert infra["step"] == "infra" and infra["changed"] is True
    outputs = mlflow_outputs(cloud)
    assert (outputs["ImageDigest"], outputs["ServiceImageDigest"]) == (
        cloud.digest_b,
        cloud.digest,
    )
    image, desired = service_image(cloud)
    assert image.endswith("@" + cloud.digest) and desired == 2

    # The service refuses to roll before B's migration ran.
    early = deploy(cloud, "--steps", "service", "--image", str(cloud.archive_b), check=False)
    assert one_error(early).startswith(
        f"error: service step failed: the database has not been migrated for {cloud.digest_b[:19]}"
    )
    assert service_image(cloud)[0].endswith("@" + cloud.digest)

    # The whole chain from a source registry that cannot be reached: B is pushed, migrated and
    # rolled out, then the model step fails and the endpoint step never runs.
    result = deploy(
        cloud,
        "--image",
        str(cloud.archive_b),
        "--from",
        "staging",
        "--serving-image",
        SERVING_IMAGE,
        check=False,
    )
    assert [(s["step"], s["changed"]) for s in steps(result)] == [
        ("infra", False),
        ("image", True),
        ("migrate", True),
        ("service", True),
    ]
    assert one_error(result).startswith(
        "error: model step failed: stack mlp-staging-mlflow is not deployed"
    )
    outputs = mlflow_outputs(cloud)
    assert outputs["ServiceImageDigest"] == cloud.digest_b
    # A release that names no training image keeps the one the stack records.
    assert outputs["TrainingImageDigest"] == f"fraud={cloud.training_digest}"
    image, desired = service_image(cloud)
    assert image.endswith("@" + cloud.digest_b) and desired == 2
    assert len(migrations(cloud)) == 2


def test_bad_input_is_one_line_and_touches_nothing(stack: Stack, tmp_path: Path) -> None:
    cases = {
        ("--env", "prod", "--steps", "infra,tests"): "error: unknown step 'tests'; choose from "
        "infra, image, migrate, service, model, endpoint",
        ("--env", "prod", "--strategy", "big-bang"): "error: unknown strategy 'big-bang'; "
        "choose one of all-at-once, canary, linear",
        ("--env", "local"): "error: deploy targets a cloud environment; use --env staging or prod",
        ("--env", "prod", "--image", str(tmp_path / "nope.tar")): f"error: {tmp_path}/nope.tar: "
        "no such image archive or OCI layout directory",
    }
    for args, expected in cases.items():
        result = stack.kit("deploy", *args, check=False)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1 and lines == [expected], (args, result.stderr)


DEMAND = "demand-forecast"


def _served_image(cloud: SimpleNamespace, model: str) -> set[str]:
    """The images the variants of a model's endpoint run."""
    sagemaker = cloud.aws.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=f"mlp-prod-{model}")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    return {
        sagemaker.describe_model(ModelName=v["ModelName"])["PrimaryContainer"]["Image"]
        for v in config["ProductionVariants"]
    }


def test_a_model_of_another_source_runs_its_own_images_and_traffic_on_it_leaves_the_other(
    stack: Stack, cloud: SimpleNamespace, tmp_path: Path
) -> None:
    """A forecast model beside the fraud one, in local and prod. The release pushes the forecast
    source's own training and serving images and records them beside fraud's; its endpoint runs
    its serving image and answers in the environment of that image's lock (LightGBM, which the
    kit's own Python lacks); a traffic shift on it leaves the fraud endpoint as it was."""
    config = tmp_path / "environments.toml"
    text = cloud.config.read_text(encoding="utf-8")
    for env_name in ("local", "prod"):
        table = f'[{env_name}.models.{MODEL}]\nsource = "examples/fraud"\n'
        assert table in text
        text = text.replace(
            table, table + f'\n[{env_name}.models.{DEMAND}]\nsource = "examples/forecast"\n'
        )
    config.write_text(text, encoding="utf-8")
    env = {**cloud.env, "MLPLATFORM_CONFIG": str(config)}
    local = {**stack.env, "MLPLATFORM_CONFIG": str(config)}
    kit("data", "--model", DEMAND, env=local, check=True, timeout=900)
    first = json.loads(kit("train", "--json", "--model", DEMAND, "--set", "n_estimators=20",
                           env=local, check=True, timeout=900).stdout)  # fmt: skip
    kit("champion", "--model", DEMAND, env=local, check=True)

    # The forecast source's images where `invoke build --env prod` leaves them, labelled with
    # the source and its lock as the kit's Dockerfiles label them.
    lock = hashlib.sha256((REPO / "examples" / "forecast" / "requirements.txt").read_bytes())
    labels = {SOURCE_LABEL: "forecast", LOCK_LABEL: lock.hexdigest()}
    training = write_archive(
        cloud.images / "training-forecast.oci.tar", {"opt/program/train": b"# fc\n"}, labels=labels
    )
    serving = write_archive(
        cloud.images / "serving-forecast.oci.tar", {"scoring_server/x": b"# fc\n"}, labels=labels
    )
    fraud_before = cloud.aws.client("sagemaker").describe_endpoint(EndpointName=f"mlp-prod-{MODEL}")
    service = mlflow_outputs(cloud)["ServiceImageDigest"]
    released = steps(kit("deploy", "--env", "prod", "--json", "--yes", "--image-digest", service,
                         "--steps", "infra,image,model,endpoint", env=env, check=True,
                         timeout=1200))  # fmt: skip
    infra, image, model_step, endpoint_step = released
    assert infra["changed"] and image["changed"], released
    # Each source's images recorded by name, fraud's kept; both forecast images pushed.
    outputs = mlflow_outputs(cloud)
    assert outputs["TrainingImageDigest"] == f"forecast={training},fraud={cloud.training_digest}"
    assert outputs["ServingImageDigest"] == f"forecast={serving},fraud={cloud.serving_digest}"
    assert f"pushed {training[:19]}… to mlp-prod/training" in image["detail"]
    assert f"pushed {serving[:19]}… to mlp-prod/serving" in image["detail"]
    assert f"{DEMAND} local v{first['model_version']}" in model_step["detail"]
    assert f"mlp-prod-{DEMAND} created (champion v" in endpoint_step["detail"]
    assert _served_image(cloud, DEMAND) == {f"{outputs['ServingRepositoryUri']}@{serving}"}

    # The endpoint answers what the model loaded in its source's environment answers.
    rows = validation_rows()
    request = tmp_path / "rows.json"
    request.write_text(json.dumps({"dataframe_records": rows}))
    answer = json.loads(kit("predict", "--env", "prod", "--model", DEMAND, "--json", "--input",
                            str(request), env=env, check=True, timeout=600).stdout)  # fmt: skip
    loaded = predict_in_source_environment(
        stack, {"mlp.lock.sha256": lock.hexdigest()}, DEMAND, first["model_version"], rows
    )
    assert answer["body"]["predictions"] == pytest.approx(loaded, rel=1e-9)

    # A challenger for the forecast model, deployed beside its champion, then shifted.
    kit("train", "--model", DEMAND, "--set", "n_estimators=21", env=local, check=True, timeout=900)
    kit("promote", "--model", DEMAND, "--version", "2", "--to", "prod", env=env, check=True)
    _set_prod_challenger(cloud, DEMAND)
    kit("deploy-endpoint", "--env", "prod", "--model", DEMAND, "--strategy", "all-at-once",
        "--challenger", "20", env=env, check=True, timeout=600)  # fmt: skip
    shifted = kit("traffic", "--env", "prod", "--model", DEMAND, "--challenger", "50", env=env,
                  check=True)  # fmt: skip
    assert "challenger 50%" in shifted.stdout
    sagemaker = cloud.aws.client("sagemaker")
    second = sagemaker.describe_endpoint(EndpointName=f"mlp-prod-{DEMAND}")
    weights = {v["VariantName"]: v["CurrentWeight"] for v in second["ProductionVariants"]}
    assert weights == {"champion": 0.5, "challenger": 0.5}
    fraud_after = sagemaker.describe_endpoint(EndpointName=f"mlp-prod-{MODEL}")
    assert fraud_after["EndpointConfigName"] == fraud_before["EndpointConfigName"]
    assert fraud_after["ProductionVariants"] == fraud_before["ProductionVariants"]

    # Several models: a task that acts on one must be told which; `endpoints` lists all.
    ambiguous = kit("traffic", "--env", "prod", "--challenger", "10", env=env)
    assert one_error(ambiguous) == (
        f"error: environment prod has 2 models ({MODEL}, {DEMAND}): pass --model"
    )
    listed = json.loads(kit("endpoints", "--env", "prod", "--json", env=env, check=True).stdout)
    assert {(r["endpoint"], r["variant"]) for r in listed} == {
        (f"mlp-prod-{MODEL}", "champion"),
        (f"mlp-prod-{DEMAND}", "champion"),
        (f"mlp-prod-{DEMAND}", "challenger"),
    }


def _set_prod_challenger(cloud: SimpleNamespace, model: str) -> None:
    """Point prod's `challenger` at its newest version (a gate run there would, as the admin)."""
    with prod_admin(cloud) as client:
        newest = max(int(v.version) for v in client.search_model_versions(f"name='{model}'"))
        client.set_registered_model_alias(model, "challenger", str(newest))


def test_every_call_aws_makes_under_a_deployed_role_was_allowed(cloud: SimpleNamespace) -> None:
    """The strict emulator decided each call ECS and SageMaker make under the stacks' roles in the
    releases above (mlplatform/emulator/strict_iam.py); a refusal fails here as the release would in
    AWS (docs/strict-emulation.md)."""
    decisions = cloud.aws.authorizations()
    callers = {d["why"].split(":")[0] for d in decisions}
    assert {"task mlp-prod-mlflow-migrate (ECS agent)", "task mlp-prod-mlflow (container)"} <= (
        callers
    )
    assert any(c.startswith("endpoint mlp-prod-fraud-classifier variant champion") for c in callers)
    refused = [d for d in decisions if not d["allowed"]]
    assert refused == []
