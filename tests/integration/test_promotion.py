"""Promotion from the local registry to an emulated prod (the Fargate entrypoint, moto's AWS)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pytest
from fraud_model.data import FEATURES, generate
from mlflow.tracking import MlflowClient

from tests.cli import kit
from tests.integration.conftest import Stack, prod_admin, s3_of

pytestmark = pytest.mark.integration
MODEL = "fraud-classifier"
PROD_BUCKET = "mlp-prod-artifacts-222222222222-eu-west-1"


def promote(env: dict[str, str], version: str, *extra: str, check: bool = True):  # type: ignore[no-untyped-def]
    return kit(
        "promote", "--version", version, "--to", "prod", "--json", *extra, env=env, check=check
    )


@pytest.fixture
def prod_client(prod: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    user, password = prod_admin(prod)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", prod["MLPLATFORM_MLFLOW_URL_PROD"])
    return MlflowClient()


def prod_s3(prod: dict[str, str]):  # type: ignore[no-untyped-def]
    """Prod's bucket as the kit reaches it in emulation (the local S3 store)."""
    return s3_of(prod, "eu-west-1")


def small_local_version(stack: Stack, marker: str) -> str:
    """Register a small pyfunc model in the local registry (promotion does not care what it is)."""
    env = stack.client_env()
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update(
        MLFLOW_TRACKING_USERNAME=env["MLFLOW_TRACKING_USERNAME"],
        MLFLOW_TRACKING_PASSWORD=env["MLFLOW_TRACKING_PASSWORD"],
    )
    try:
        mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
        mlflow.set_experiment("promotion-fixtures")
        with mlflow.start_run(), tempfile.TemporaryDirectory() as tmp:
            extra = Path(tmp) / "notes.txt"
            extra.write_text(f"fixture {marker}\n")
            info = mlflow.pyfunc.log_model(
                name="model", python_model=Echo(), artifacts={"notes": str(extra)}
            )
            mv = mlflow.register_model(info.model_uri, MODEL)
        return str(mv.version)
    finally:
        mlflow.set_tracking_uri(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: list[str], params=None) -> list[str]:  # type: ignore[no-untyped-def]
        return model_input


def test_promotion_copies_verifies_and_registers_with_lineage(
    stack: Stack, prod, prod_client, tmp_path: Path
) -> None:
    stack.kit("data")
    trained = json.loads(stack.kit("train", "--json", "--set", "n_estimators=30").stdout)
    result = json.loads(promote(prod, trained["model_version"]).stdout)
    assert result["model_name"] == MODEL and result["target_env"] == "prod"
    assert result["source_version"] == trained["model_version"]
    assert result["created"] is True
    # Counted from the copy downloaded back from prod: a check that did not run counts nothing.
    assert result["verified_files"] == result["files"] > 0

    mv = prod_client.get_model_version(MODEL, result["target_version"])
    assert mv.tags["mlp.source.env"] == "local"
    assert mv.tags["mlp.source.version"] == trained["model_version"]
    assert mv.tags["mlp.source.run_id"] == trained["run_id"]
    assert mv.tags["mlp.manifest.sha256"] == result["manifest_sha256"]
    for tag in ("mlp.data.train.sha256", "mlp.data.validation.sha256", "mlp.git.commit"):
        assert mv.tags[tag], tag

    run = prod_client.get_run(mv.run_id)
    prefix = run.info.artifact_uri.replace("mlflow-artifacts:", "mlflow-artifacts")
    keys = [o["Key"] for o in prod_s3(prod).list_objects_v2(Bucket=PROD_BUCKET)["Contents"]]
    assert f"{prefix}/model/MLmodel" in keys  # the copy lives in prod's (emulated) bucket
    assert f"{prefix}/promotion/manifest.json" in keys

    rows = generate(20, 0.1, seed=8)[list(FEATURES)]
    in_prod = mlflow.pyfunc.load_model(f"models:/{MODEL}/{result['target_version']}")
    assert np.array_equal(
        np.asarray(in_prod.predict(rows)),
        np.asarray(
            mlflow.sklearn.load_model(f"models:/{MODEL}/{result['target_version']}").predict_proba(
                rows
            )
        ),
    )

    again = json.loads(promote(prod, trained["model_version"]).stdout)
    assert again["created"] is False and again["verified_files"] == result["files"]
    assert again["target_version"] == result["target_version"]


def crash_after_copy(
    prod: dict[str, str], client: MlflowClient, version: str, scratch: Path
) -> list:
    """Promote with the fault injected after the copy; return the promotion runs left behind.

    The crash (os._exit) leaves the process's download folder behind as a real kill would: its
    TMPDIR is the test's own folder, so the leftover goes with pytest's, not into /tmp.
    """
    crashed = kit(
        "promote",
        "--version",
        version,
        "--to",
        "prod",
        env={**prod, "MLPLATFORM_FAULT_AFTER_COPY": "1", "TMPDIR": str(scratch)},
    )
    assert crashed.returncode == 75
    assert [p.name[:12] for p in scratch.iterdir()] == ["mlp-promote-"]
    return promotion_runs(client, version)


def promotion_runs(client: MlflowClient, version: str) -> list:
    experiment = client.get_experiment_by_name(f"promotions/{MODEL}").experiment_id
    return client.search_runs(
        [experiment], filter_string=f"tags.`mlp.source.version` = '{version}'"
    )


def test_crash_between_copy_and_registration_is_healed_by_a_rerun(
    stack: Stack, prod, prod_client, tmp_path: Path
) -> None:
    version = small_local_version(stack, "crash")
    before = len(prod_client.search_model_versions(f"name='{MODEL}'"))
    assert len(crash_after_copy(prod, prod_client, version, tmp_path)) == 1
    assert len(prod_client.search_model_versions(f"name='{MODEL}'")) == before

    healed = json.loads(promote(prod, version).stdout)
    assert healed["created"] is True and healed["verified_files"] == healed["files"] > 0
    assert len(prod_client.search_model_versions(f"name='{MODEL}'")) == before + 1
    runs = promotion_runs(prod_client, version)
    assert len(runs) == 1, "the rerun must reuse the crashed run, not start another"


def test_file_tampered_in_the_target_before_registration_is_detected(
    stack: Stack, prod, prod_client, tmp_path: Path
) -> None:
    version = small_local_version(stack, "tamper")
    before = len(prod_client.search_model_versions(f"name='{MODEL}'"))
    run = crash_after_copy(prod, prod_client, version, tmp_path)[0]
    prefix = run.info.artifact_uri.replace("mlflow-artifacts:", "mlflow-artifacts")
    prod_s3(prod).put_object(
        Bucket=PROD_BUCKET, Key=f"{prefix}/model/artifacts/notes.txt", Body=b"tampered\n"
    )

    result = promote(prod, version, check=False)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: artifacts/notes.txt in the target differs from the source (sha256 "
    )
    assert errors[0].endswith("not registered")
    assert len(prod_client.search_model_versions(f"name='{MODEL}'")) == before


def test_missing_version_or_model_is_one_line(prod) -> None:  # type: ignore[no-untyped-def]
    result = promote(prod, "999", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: model '{MODEL}' has no version 999 in the local registry"
    )
    # Only the models the environment configures are promoted.
    result = promote(prod, "1", "--model", "no-such-model", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: environment local has no model 'no-such-model'; configured: fraud-classifier "
        "([local.models.NAME] in environments.toml)"
    )
