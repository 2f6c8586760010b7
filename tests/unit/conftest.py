"""Unit-test fixtures: MLflow registries in-process, on SQLite files, with no server."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient


@pytest.fixture(scope="session")
def _migrated_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow database with every migration applied, made once per session.

    Migrating takes about 2 s; copying the finished file takes milliseconds, so each test can
    have registries of its own.
    """
    folder = tmp_path_factory.mktemp("mlflow-template")
    path = folder / "mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        # The default experiment gets an artifact folder relative to the working directory.
        mp.chdir(folder)
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def sqlite_registry(
    _migrated_mlflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], str]:
    """`sqlite_registry("local")` is the tracking URI of a new, empty registry of the test's own.

    Anything MLflow writes to a default location lands under tmp_path, not in the checkout.
    """
    monkeypatch.chdir(tmp_path)

    def make(name: str) -> str:
        path = tmp_path / f"{name}.db"
        shutil.copyfile(_migrated_mlflow_db, path)
        return f"sqlite:///{path}"

    return make


@pytest.fixture
def register_files(tmp_path: Path) -> Callable[[str, str, dict[str, bytes]], str]:
    """`register_files(uri, name, {"MLmodel": b"..."})`: a new version of exactly those files.

    The files are logged as a run's `model` folder in the registry at `uri` and registered under
    `name`; the new version's number is returned.
    """

    def register(uri: str, name: str, files: dict[str, bytes]) -> str:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.get_experiment_by_name("training")
        if experiment is None:
            store = Path(uri.removeprefix("sqlite:///")).with_suffix(".artifacts")
            experiment_id = client.create_experiment("training", artifact_location=str(store))
        else:
            experiment_id = experiment.experiment_id
        run_id = client.create_run(experiment_id).info.run_id
        model = tmp_path / f"model-{run_id}"
        for rel, body in files.items():
            (model / rel).parent.mkdir(parents=True, exist_ok=True)
            (model / rel).write_bytes(body)
        client.log_artifacts(run_id, str(model), "model")
        client.set_terminated(run_id)
        if not client.search_registered_models(f"name = '{name}'"):
            client.create_registered_model(name)
        source = f"{client.get_run(run_id).info.artifact_uri}/model"
        return str(client.create_model_version(name, source, run_id=run_id).version)

    return register
