"""Training sources: the manifest, the lock check, models in configuration, the job's outcome."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from mlplatform.config import load_environment
from mlplatform.errors import ConfigError, SourceError, TrainingError
from mlplatform.images import build
from mlplatform.images.engine import Engine
from mlplatform.runners.native import job_outcome
from mlplatform.runners.request import new_request, resolve_model
from mlplatform.sources import check_lock, configured_sources, load_source
from tests.cli import REPO

MANIFEST = 'entry_point = "train.py"\n[gate]\nmetric = "rmse"\ngreater_is_better = false\n'


def _source(tmp_path: Path, manifest: str = MANIFEST, lock: str | None = None) -> Path:
    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "source.toml").write_text(manifest)
    (folder / "train.py").write_text("print('hi')\n")
    if lock is not None:
        (folder / "requirements.txt").write_text(lock)
    return folder


def test_a_source_reads_its_manifest_with_defaults(tmp_path: Path) -> None:
    source = load_source(_source(tmp_path))
    assert source.channels == ("train", "validation") and source.data is None
    assert source.gate.metric == "rmse" and source.gate.greater_is_better is False
    assert source.label == str(tmp_path / "team")  # outside the repository: its path
    assert load_source("examples/fraud").label == "examples/fraud"


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (MANIFEST + "flavour = 1\n", "flavour: unknown key"),
        ('entry_point = "train.py"\n', "gate: Field required"),
        ('channels = ["Train"]\n[gate]\nmetric = "m"\n', "channels.0: String should match"),
        ('channels = ["a", "a"]\n[gate]\nmetric = "m"\n', "channels: a channel is listed twice"),
        ('entry_point = "main.py"\n[gate]\nmetric = "m"\n', "entry_point: main.py is not a file"),
        ('data = "../x.py"\n[gate]\nmetric = "m"\n', "data: String should match"),
        ("[gate\n", "not valid TOML"),
    ],
)
def test_a_bad_manifest_is_one_line_naming_the_key(
    tmp_path: Path, manifest: str, message: str
) -> None:
    with pytest.raises(SourceError, match=r"^.+/source\.toml: ") as caught:
        load_source(_source(tmp_path, manifest))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_folder_that_is_no_source_says_so(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such directory"):
        load_source(tmp_path / "absent")
    with pytest.raises(SourceError, match=r"no source\.toml \(see docs/training\.md\)"):
        load_source(tmp_path)


def test_the_lock_must_exist_and_hold_what_the_helper_imports(tmp_path: Path) -> None:
    folder = _source(tmp_path)
    with pytest.raises(SourceError, match=r"no requirements\.txt; run `invoke lock --source "):
        check_lock(load_source(folder))
    (folder / "requirements.txt").write_text("mlflow==3.17.2 \\\n    --hash=sha256:00\n")
    with pytest.raises(SourceError, match=r"lacks boto3: add boto3 to requirements\.in"):
        check_lock(load_source(folder))
    shutil.copy(REPO / "examples" / "fraud" / "requirements.txt", folder / "requirements.txt")
    check_lock(load_source(folder))


def test_the_fingerprint_follows_the_files_and_ignores_caches(tmp_path: Path) -> None:
    source = load_source(_source(tmp_path))
    first = source.sha256()
    (source.root / "__pycache__").mkdir()
    (source.root / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    assert source.sha256() == first
    (source.root / "train.py").write_text("print('changed')\n")
    assert source.sha256() != first


def _config(tmp_path: Path, models: str) -> Path:
    path = tmp_path / "environments.toml"
    path.write_text(
        '[local]\nregion = "us-east-1"\naccount = "123456789012"\nname_prefix = "mlp-local"\n'
        + models
    )
    return path


def test_models_are_configured_and_chosen_by_name(tmp_path: Path) -> None:
    two = _config(
        tmp_path,
        '[local.models.a]\nsource = "examples/fraud"\n'
        '[local.models.b]\nsource = "examples/fraud"\n',
    )
    env = load_environment("local", two)
    with pytest.raises(
        ConfigError, match=r"^environment local has 2 models \(a, b\): pass --model$"
    ):
        env.model()
    with pytest.raises(ConfigError, match="has no model 'c'; configured: a, b"):
        env.model("c")
    assert env.model("b") == "b"
    # --source trains a folder as the one model configured with it; two share it here.
    with pytest.raises(TrainingError, match="no single model of local is configured with source"):
        resolve_model(env, None, "examples/fraud")
    assert resolve_model(env, "a", "examples/fraud")[0] == "a"


def test_the_old_model_name_key_says_what_replaced_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"local: model_name is now a table per model: \[local"):
        load_environment("local", _config(tmp_path, 'model_name = "m"\n'))
    with pytest.raises(ConfigError, match="differ only in case"):
        load_environment(
            "local",
            _config(
                tmp_path,
                '[local.models.a_b]\nsource = "x"\n[local.models.a-b]\nsource = "x"\n',
            ),
        )


def test_a_request_names_the_source_its_fingerprint_and_a_job_of_the_model() -> None:
    env = load_environment("local", REPO / "environments.toml")
    request = new_request(env, None, ["n_estimators=3"])
    assert request.model == "fraud-classifier" and request.job_name.startswith("fraud-classifier-")
    variables = request.job_environment()
    assert variables["MLP_SOURCE"] == "examples/fraud"
    assert variables["MLP_SOURCE_SHA256"] == load_source("examples/fraud").sha256()
    assert request.hyperparameters == {"n_estimators": "3"}


@pytest.mark.parametrize(
    ("result", "mlmodel", "message", "undone"),
    [
        (None, True, "ended without a result: its entry point must finish through", False),
        ({"model_name": "other", "model_version": "4", "run_id": "r"}, True,
         "registered 'other'", False),
        ({"model_name": "fraud-classifier", "model_version": "4", "run_id": "r"}, False,
         "wrote no MLflow model to /opt/ml/model/mlflow-model", True),
    ],
    ids=["no-result", "other-model", "no-model"],
)  # fmt: skip
def test_a_finished_job_is_held_to_the_contract(
    tmp_path: Path, result: dict | None, mlmodel: bool, message: str, undone: bool
) -> None:
    env = load_environment("local", REPO / "environments.toml")
    request = new_request(env, None, [])
    output, model = tmp_path / "output", tmp_path / "model"
    output.mkdir()
    (model / "mlflow-model").mkdir(parents=True)
    if mlmodel:
        (model / "mlflow-model" / "MLmodel").write_text("flavors: {}\n")
    if result is not None:
        (output / "result.json").write_text(json.dumps(result))
    removed: list[tuple[str, str]] = []
    with pytest.raises(TrainingError, match=message):
        job_outcome(request, output, model, lambda m, v: removed.append((m, v)))
    assert removed == ([("fraud-classifier", "4")] if undone else [])


@pytest.mark.parametrize("registered", [True, False], ids=["registered", "not-registered"])
def test_a_reproduction_must_register_nothing(tmp_path: Path, registered: bool) -> None:
    """`invoke reproduce` asks for a run and no version (MLP_REGISTER=false); a job that
    registers one anyway broke the contract, and the version is removed again."""
    env = load_environment("local", REPO / "environments.toml")
    request = dataclasses.replace(new_request(env, None, []), register=False)
    assert request.job_environment()["MLP_REGISTER"] == "false"
    output, model = tmp_path / "output", tmp_path / "model"
    output.mkdir()
    (model / "mlflow-model").mkdir(parents=True)
    (model / "mlflow-model" / "MLmodel").write_text("flavors: {}\n")
    result = {"model_name": "fraud-classifier", "model_version": "4" if registered else ""}
    (output / "result.json").write_text(json.dumps({**result, "run_id": "r"}))
    removed: list[tuple[str, str]] = []
    if not registered:
        assert job_outcome(request, output, model, None)["model_version"] == ""
        return
    with pytest.raises(TrainingError, match="broke the contract: it registered a version"):
        job_outcome(request, output, model, lambda m, v: removed.append((m, v)))
    assert removed == [("fraud-classifier", "4")]


def _source_in(root: Path, manifest: str = "") -> Path:
    root.mkdir(parents=True)
    (root / "source.toml").write_text(manifest + '[gate]\nmetric = "auc"\n')
    (root / "train.py").write_text("")
    return root


def test_a_source_is_named_by_its_folder_unless_its_manifest_names_it(tmp_path: Path) -> None:
    """The name its images (training-<name>, serving-<name>) and their release records carry."""
    assert load_source("examples/forecast").name == "forecast"
    assert load_source(_source_in(tmp_path / "churn")).name == "churn"
    named = _source_in(tmp_path / "Churn_Model", 'name = "churn-v2"\n')
    assert load_source(named).name == "churn-v2"


def test_system_packages_reach_the_image_build(tmp_path: Path) -> None:
    """LightGBM's wheel loads libgomp, which slim images lack: the forecast's images install it."""
    forecast = load_source("examples/forecast")
    assert forecast.system_packages == ("libgomp1",)
    assert load_source("examples/fraud").system_packages == ()
    spec = build.image_spec("serving", forecast)
    args = build._build_args(Engine("podman"), spec, "base", False, tmp_path)
    assert "SYSTEM_PACKAGES=libgomp1" in args


def test_a_folder_name_that_cannot_name_images_is_one_line(tmp_path: Path) -> None:
    root = _source_in(tmp_path / "Churn_Model")
    with pytest.raises(SourceError, match=r"name: the folder name 'Churn_Model' cannot name"):
        load_source(root)


def test_two_sources_of_one_name_are_refused_and_one_source_is_listed_once(
    tmp_path: Path,
) -> None:
    other = _source_in(tmp_path / "teams" / "fraud")
    config = _config(
        tmp_path,
        '[local.models.a]\nsource = "examples/fraud"\n'
        '[local.models.b]\nsource = "examples/fraud"\n'
        f'[local.models.c]\nsource = "{other}"\n',
    )
    env = load_environment("local", config)
    assert list(configured_sources(env, ["a", "b"])) == ["fraud"]
    with pytest.raises(SourceError, match=r"^sources examples/fraud and .* are both named 'fraud'"):
        configured_sources(env)
