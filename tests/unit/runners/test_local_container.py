"""The local-container runner's pure parts: engine check, image identity, what the SDK is given.

The run itself (image build, SDK local mode, container, registration) is exercised end to end in
tests/container/test_local_container_training.py on a real engine.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mlplatform.config import load_environment
from mlplatform.errors import TrainingError
from mlplatform.local.access import LocalEndpoints
from mlplatform.local.credentials import Credentials
from mlplatform.reporting import SilentReporter
from mlplatform.runners.local_container import (
    JOB_SCRIPT,
    LocalContainerRunner,
    TrainingImage,
    check_engine,
    job_command,
)
from mlplatform.runners.request import new_request
from tests.cli import REPO

ENV = load_environment("local", REPO / "environments.toml")
CREDS = Credentials(
    db_username="mlflow",
    db_password="db-password-secret",
    db_root_password="db-root-secret",
    admin_username="admin",
    admin_password="admin-password-secret",
    flask_secret_key="flask-secret",
    s3_access_key="AKLOCALSTACKKEY00000",
    s3_secret_key="s3-secret-key",
    client_username="sagemaker",
    client_password="client-password-secret",
)
SECRETS = (
    CREDS.db_password,
    CREDS.db_root_password,
    CREDS.admin_password,
    CREDS.flask_secret_key,
    CREDS.s3_secret_key,
    CREDS.client_password,
)
IMAGE = TrainingImage("mlplatform/training:local", "sha256:" + "ab" * 32)


def _endpoints(tmp_path: Path) -> LocalEndpoints:
    return LocalEndpoints(
        tracking_uri="http://127.0.0.1:5000",
        s3_url="http://127.0.0.1:8433",
        aws_url="http://127.0.0.1:4566",
        credentials_file=tmp_path / "secrets" / "aws-credentials",
        bucket="bucket",
        region="us-east-1",
    )


def _fake_docker(folder: Path, script: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / "docker"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_no_docker_command_names_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TrainingError) as err:
        check_engine()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("the local-container runner needs a container engine")
    assert 'eval "$(compose/standins/podman-env.sh)"' in message


def test_engine_that_does_not_answer_is_one_line_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_docker(
        tmp_path / "bin",
        'echo "Cannot connect to the Docker daemon. Is the docker daemon running?" >&2; exit 1\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with pytest.raises(TrainingError) as err:
        check_engine()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("no container engine answers `docker info` (Cannot connect")
    assert "podman-env.sh" in message


def test_compose_v1_is_not_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_docker(tmp_path / "bin", 'if [ "$1" = compose ]; then echo 1.29.2; fi\nexit 0\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with pytest.raises(TrainingError, match=r"needs `docker compose` \(Compose v2\)"):
        check_engine()


def test_engine_with_compose_v2_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_docker(tmp_path / "bin", 'if [ "$1" = compose ]; then echo 2.40.3; fi\nexit 0\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    check_engine()


def test_a_run_records_the_image_by_its_registry_digest_not_its_local_tag() -> None:
    digest = "sha256:" + "12" * 32
    image = TrainingImage(reference="mlplatform/training:local", digest=digest)
    # What ECR stores the release under: a SageMaker job's mlp.image names the same digest.
    assert image.uri == f"mlplatform/training@{digest}"


def test_job_spec_carries_ids_and_urls_never_a_secret(tmp_path: Path) -> None:
    runner = LocalContainerRunner(
        _endpoints(tmp_path), None, IMAGE, Path("python"), lambda job: None, lambda n, v: None
    )
    request = new_request(ENV, None, ["n_estimators=7"])
    spec = runner.job_spec(request, tmp_path / "root", tmp_path / "result.json")
    text = json.dumps(spec)
    assert not any(secret in text for secret in SECRETS)
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert spec["image"] == IMAGE.reference
    assert spec["channels"] == {
        "train": "s3://bucket/datasets/fraud-classifier/train/",
        "validation": "s3://bucket/datasets/fraud-classifier/validation/",
    }
    assert spec["output_path"] == f"s3://bucket/{ENV.training.output_prefix}"
    assert spec["hyperparameters"]["n_estimators"] == "7"
    environment = spec["environment"]
    assert environment["MLFLOW_CLIENT_SECRET_ID"] == ENV.client_secret_name
    assert environment["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    assert environment["MLP_TRAINING_IMAGE"] == IMAGE.uri
    assert environment["MLP_RUNNER"] == "local-container"
    assert not [k for k in environment if "PASSWORD" in k or "SECRET_ACCESS" in k]


def test_sdk_process_gets_the_stack_keys_file_and_none_of_the_callers_aws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "callers-profile-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-secret")
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "someone-elses")
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/podman.sock")
    runner = LocalContainerRunner(
        _endpoints(tmp_path), None, IMAGE, Path("python"), lambda job: None, lambda n, v: None
    )
    env = runner.sdk_environment()
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == str(tmp_path / "secrets" / "aws-credentials")
    assert env["AWS_CONFIG_FILE"] == os.devnull
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["DOCKER_HOST"] == "unix:///run/podman.sock"
    for leaked in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        assert leaked not in env
    assert not [k for k in env if k.startswith("MLFLOW_")]


class _NoOutputS3:
    """An S3 store where the job left no output.tar.gz (it failed before /opt/ml/output)."""

    def get_object(self, **kwargs: str) -> dict[str, object]:
        import botocore.exceptions

        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "NoSuchKey", "Message": "no such key"}}, "GetObject"
        )


def test_a_failed_job_removes_the_version_it_registered(tmp_path: Path) -> None:
    # A stand-in for the SDK's interpreter: the job registered version 4, then the SDK failed
    # (for instance, uploading model.tar.gz).
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\n"
        "exec python3 -c 'import json,sys; spec=json.load(sys.stdin); "
        'json.dump({"error": "S3UploadFailedError: upload refused"}, '
        'open(spec["result_file"], "w")); sys.exit(1)\' "$@"\n'
    )
    fake.chmod(0o755)
    removed: list[tuple[str, str]] = []
    runner = LocalContainerRunner(
        _endpoints(tmp_path),
        _NoOutputS3(),
        IMAGE,
        fake,
        find_registration=lambda job: ("run-1", "4"),
        unregister=lambda name, version: removed.append((name, version)),
    )
    request = new_request(ENV, None, [])
    with pytest.raises(TrainingError) as err:
        runner.run(request, SilentReporter(), tmp_path / "job.log")
    assert str(err.value) == (
        f"training job {request.job_name} failed: S3UploadFailedError: upload refused"
    )
    assert removed == [("fraud-classifier", "4")]


def test_the_job_script_imports_the_sdk_not_the_runner_beside_it(tmp_path: Path) -> None:
    """runners/sagemaker.py sits beside local_mode_job.py; `import sagemaker` must not find it."""
    probe = tmp_path / "probe.py"
    probe.write_text("import sys; print(sys.path[0])")
    script_dir = str(JOB_SCRIPT.parent)
    cmd = job_command(Path(sys.executable))
    assert cmd[-1] == str(JOB_SCRIPT)
    first = subprocess.run(
        [*cmd[:-1], str(probe)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert first != str(tmp_path) and first != script_dir
