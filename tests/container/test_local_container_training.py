"""`invoke train --runner local-container` end to end: SageMaker SDK local mode on a real engine.

Against the native local stack (its own ports and state folder), as a user runs it: `up`, `data`,
then `train --runner local-container --json` twice. Checked: the run's reproducibility tags (the
digest of the training image's archive among them), the `challenger` alias, model.tar.gz at the
native runner's output path and a model that loads and predicts; the second run reuses the image
and its archive; no container is left; and
no secret of the stack reaches the compose file the SDK writes, the container's environment, a
docker command line or the job log. A `docker` in front of podman-env.sh's shim records those.

In the container lane, like the compose runtime test (`-m container`; `./kit test` runs it).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import mlflow
import pytest
from fraud_model.data import FEATURES, generate
from mlflow.tracking import MlflowClient

from mlplatform.images.oci_archive import open_image
from tests.cli import kit
from tests.engines import exports
from tests.integration.conftest import write_config

pytestmark = pytest.mark.container

# Away from the other stacks (5000.., 15000.., 25000.., 25500..) and the S3 store's extra ports.
PORTS = {"mlflow": 27500, "s3": 28533, "aws": 27566, "database": 27307}
MODEL = "fraud-classifier"
BUCKET = "mlp-local-artifacts-123456789012-us-east-1"

# Runs the real docker (podman-env.sh's shim) and keeps what the SDK hands the engine: every
# command line, each compose file it starts, and the environment of that project's containers.
SPY = """#!/bin/sh
printf '%s\\n' "$*" >> "{spy}/argv"
if [ "$1" = compose ] && [ "$2" = -f ] && [ "$4" = up ]; then
    cp "$3" "{spy}/compose-$$.yaml"
    "{real}" "$@"
    code=$?
    project=$(basename "$(dirname "$3")")
    for id in $(podman ps -a -q --filter "label=com.docker.compose.project=$project"); do
        podman inspect "$id" > "{spy}/container-$id.json"
        printf '%s\\n' "$project" >> "{spy}/projects"
    done
    exit $code
fi
exec "{real}" "$@"
"""


@dataclass
class Stack:
    """The native stack the runs train against, and what the spy recorded."""

    env: dict[str, str]
    state: Path
    spy: Path

    def kit(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return kit(*args, env=self.env, timeout=timeout, check=True)


@pytest.fixture(scope="module")
def stack(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A native stack on its own ports, with the spying `docker` first on PATH."""
    home = tmp_path_factory.mktemp("local-container")
    spy = home / "spy"
    (spy / "bin").mkdir(parents=True)
    real = Path(images["CONTAINERS_CONF"]).parent / "bin" / "docker"
    wrapper = spy / "bin" / "docker"
    wrapper.write_text(SPY.format(spy=spy, real=real))
    wrapper.chmod(0o755)
    env = {
        **images,
        "PATH": f"{spy / 'bin'}:{images['PATH']}",
        "MLPLATFORM_HOME": str(home / "state"),
        "MLPLATFORM_CONFIG": str(write_config(home / "environments.toml", PORTS)),
    }
    s = Stack(env, home / "state", spy)
    try:
        s.kit("up", "--runtime", "native")
        s.kit("data")
        yield s
    finally:
        kit("down", env=env, timeout=300)


@pytest.mark.timeout(3600)
def test_local_container_run_registers_a_reproducible_model_and_leaks_no_secret(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = stack.kit("train", "--runner", "local-container", "--json", timeout=2400)
    result = json.loads(first.stdout)
    assert result["runner"] == "local-container" and result["model_name"] == MODEL

    shell = exports(stack.kit("env").stdout)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(key, shell[key])
    admin = MlflowClient()
    tags = admin.get_run(result["run_id"]).data.tags
    assert tags["mlp.runner"] == "local-container"
    assert tags["mlp.training_job"] == result["job_name"]
    # The image `invoke build` makes, recorded by the digest of the archive `invoke deploy`
    # pushes: a SageMaker job of the release names the same one.
    training_archive = stack.state / "images" / "training-fraud.oci.tar"
    with open_image(training_archive) as built:
        assert tags["mlp.image.digest"] == built.digest
    assert tags["mlp.image"] == f"mlplatform/training-fraud@{built.digest}"
    saved = training_archive.stat().st_mtime_ns
    for tag in ("mlp.git.commit", "mlp.lock.sha256", "mlp.data.train.sha256"):
        assert tags[tag] and tags[tag] != "unknown", tag

    challenger = admin.get_model_version_by_alias(MODEL, "challenger")
    assert challenger.version == result["model_version"]
    assert challenger.run_id == result["run_id"]

    key = f"training-output/{result['job_name']}/output/model.tar.gz"
    assert result["model_artifact"] == f"s3://{BUCKET}/{key}"
    s3 = boto3.client(
        "s3",
        endpoint_url=shell["AWS_ENDPOINT_URL_S3"],
        region_name="us-east-1",
        aws_access_key_id=shell["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=shell["AWS_SECRET_ACCESS_KEY"],
    )
    body = io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    with tarfile.open(fileobj=body) as archive:
        assert "mlflow-model/MLmodel" in archive.getnames()
        archive.extractall(tmp_path / "model", filter="data")
    rows = generate(40, 0.1, seed=7)[list(FEATURES)]
    scores = mlflow.pyfunc.load_model(str(tmp_path / "model" / "mlflow-model")).predict(rows)
    assert scores.shape == (40, 2) and ((scores >= 0) & (scores <= 1)).all()
    registered = mlflow.pyfunc.load_model(f"models:/{MODEL}@challenger").predict(rows)
    assert (registered == scores).all()

    # The same content reuses the image and its archive (not saved again), the same digest.
    second = stack.kit("train", "--runner", "local-container", "--json", timeout=1200)
    assert "archive kept" in " ".join(second.stderr.split())  # rich wraps long lines
    assert training_archive.stat().st_mtime_ns == saved
    again = admin.get_run(json.loads(second.stdout)["run_id"]).data.tags
    assert again["mlp.image.digest"] == tags["mlp.image.digest"]

    creds = json.loads((stack.state / "secrets" / "credentials.json").read_text())
    secrets = [
        creds[k]
        for k in (
            "db_password",
            "db_root_password",
            "admin_password",
            "flask_secret_key",
            "client_password",
        )
    ]
    composes = sorted(stack.spy.glob("compose-*.yaml"))
    containers = sorted(stack.spy.glob("container-*.json"))
    assert len(composes) == 2 and len(containers) == 2
    seen = {
        "argv": (stack.spy / "argv").read_text(),
        "job log": (stack.state / "logs" / "training" / f"{result['job_name']}.log").read_text(),
    }
    seen.update({p.name: p.read_text() for p in composes + containers})
    for where, text in seen.items():
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"a stack secret appears in {where}"
    for path in containers:
        env = dict(e.partition("=")[::2] for e in json.loads(path.read_text())[0]["Config"]["Env"])
        # Only the local stack's S3/emulator keys, never a profile's; MLflow by secret id.
        assert env["AWS_ACCESS_KEY_ID"] == creds["s3_access_key"]
        assert "AWS_SESSION_TOKEN" not in env
        assert env["MLFLOW_CLIENT_SECRET_ID"] and "MLFLOW_TRACKING_PASSWORD" not in env
        assert env["MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{PORTS['mlflow']}"

    for project in set((stack.spy / "projects").read_text().split()):
        left = subprocess.run(
            ["podman", "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}"],
            env=stack.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert left == [], f"containers of {project} left behind"


def test_without_an_engine_train_is_one_line_and_registers_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shell = exports(stack.kit("env").stdout)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(key, shell[key])
    admin = MlflowClient()
    before = {v.version for v in admin.search_model_versions(f"name='{MODEL}'")}
    # No shim on PATH, and any docker CLI pointed at a socket nothing listens on.
    plain = {k: v for k, v in stack.env.items() if k != "CONTAINERS_CONF"}
    plain["DOCKER_HOST"] = f"unix://{tmp_path}/nothing.sock"
    plain["PATH"] = os.pathsep.join(
        p for p in stack.env["PATH"].split(os.pathsep) if "spy" not in p and "podman" not in p
    )
    result = kit("train", "--runner", "local-container", env=plain, timeout=300)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "podman-env.sh" in errors[0]
    assert {v.version for v in admin.search_model_versions(f"name='{MODEL}'")} == before
