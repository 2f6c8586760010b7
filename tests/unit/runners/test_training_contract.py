"""A training job's inputs: hyperparameters, data, the SageMaker contract, failures.

The fraud example's code (examples/fraud/fraud_model) runs here under the kit's helper
(mlp_training), as the native runner runs it, minus the subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from fraud_model import data
from fraud_model.hyperparameters import HyperparameterError, parse
from fraud_model.train import train
from moto import mock_aws

import mlp_training
from mlp_training import JobError, channel_sha256, contract_from_env, parse_arguments
from mlplatform.config import load_environment
from mlplatform.errors import TrainingError
from mlplatform.runners.compute import job_compute
from mlplatform.runners.native import contract_tree
from mlplatform.runners.request import TrainingRequest, parse_overrides
from mlplatform.sources import load_source


def main(argv: list[str]) -> int:
    return mlp_training.run(train, argv)


def test_hyperparameters_accept_sagemaker_strings() -> None:
    hp = parse({"n_estimators": "200", "learning_rate": "0.05", "class_weight": "none"})
    assert (hp.n_estimators, hp.learning_rate, hp.class_weight) == (200, 0.05, "none")
    assert hp.as_strings()["n_estimators"] == "200"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_depth": "99"}, "max_depth: Input should be less than or equal to 12"),
        ({"learning_rate": "fast"}, "learning_rate: Input should be a valid number"),
        ({"n_trees": "5"}, "n_trees: unknown hyperparameter"),
        ({"class_weight": "auto"}, "class_weight: Input should be 'balanced' or 'none'"),
    ],
)
def test_bad_hyperparameters_name_the_key(values: dict[str, str], message: str) -> None:
    with pytest.raises(HyperparameterError, match=message):
        parse(values)


def test_script_mode_arguments(tmp_path: Path) -> None:
    assert parse_arguments(["--max_depth", "4", "--sub-sample=0.5"]) == {
        "max_depth": "4",
        "sub_sample": "0.5",
    }
    with pytest.raises(JobError, match="--seed needs a value"):
        parse_arguments(["--seed"])
    with pytest.raises(JobError, match="unexpected argument 'x'"):
        parse_arguments(["x"])


def test_kit_overrides_are_strings_and_bad_pairs_one_line_errors() -> None:
    # The source validates values (it alone knows them); the kit only checks the form.
    assert parse_overrides(["n_estimators=10", "tag = a=b"]) == {"n_estimators": "10", "tag": "a=b"}
    with pytest.raises(TrainingError, match="--set expects key=value"):
        parse_overrides(["n_estimators"])
    with pytest.raises(TrainingError, match="--set expects key=value"):
        parse_overrides(["no spaces=1"])


def test_data_is_deterministic_imbalanced_and_complete(tmp_path: Path) -> None:
    a = data.write_channels(tmp_path / "a", 4000, 0.02, seed=3)
    b = data.write_channels(tmp_path / "b", 4000, 0.02, seed=3)
    c = data.write_channels(tmp_path / "c", 4000, 0.02, seed=4)
    assert a["train"].read_bytes() == b["train"].read_bytes()
    assert a["train"].read_bytes() != c["train"].read_bytes()
    frame = data.generate(20000, 0.02, seed=7)
    assert list(frame.columns) == [*data.FEATURES, data.LABEL]
    assert 0.015 < frame[data.LABEL].mean() < 0.025


def test_channel_digest_follows_content(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.csv").write_text("1\n")
    first = channel_sha256(tmp_path / "x")
    assert first == channel_sha256(tmp_path / "x")
    (tmp_path / "x" / "a.csv").write_text("2\n")
    assert channel_sha256(tmp_path / "x") != first


def test_native_tree_matches_sagemakers_layout(tmp_path: Path) -> None:
    env = load_environment("local")
    source = load_source("examples/fraud")
    compute = job_compute(env, "fraud-classifier")
    request = TrainingRequest(
        env, "fraud-classifier", source, {"n_estimators": "150"}, "job-1", "abc", False, compute
    )
    tree = contract_tree(tmp_path / "opt" / "ml", request)
    config = tmp_path / "opt" / "ml" / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text())["n_estimators"] == "150"
    assert sorted(json.loads((config / "inputdataconfig.json").read_text())) == [
        "train",
        "validation",
    ]
    # Without SM_* variables, the entry point finds the same folders from /opt/ml's layout.
    contract = contract_from_env({"SM_PREFIX": str(tree["prefix"])})
    assert contract.channels["train"] == tree["channel_train"]
    assert contract.model_dir == tree["model"]
    # The folder SageMaker syncs with the job's checkpoint prefix, inside the same tree.
    assert contract.checkpoint_dir == tree["prefix"] / "checkpoints"


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An emulated /opt/ml with data, and a client secret in an in-process Secrets Manager."""
    prefix = tmp_path / "ml"
    data.write_channels(prefix / "input" / "data", 2000, 0.05, seed=1)
    monkeypatch.setenv("SM_PREFIX", str(prefix))
    monkeypatch.setenv("SM_CHANNELS", '["train", "validation"]')
    monkeypatch.setenv("MLP_MODEL_NAME", "m")
    monkeypatch.setenv("MLFLOW_CLIENT_SECRET_ID", "client")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return prefix


def failure(prefix: Path) -> str:
    return (prefix / "output" / "failure").read_text()


def test_entry_point_refuses_bad_hyperparameters(job: Path, capsys) -> None:
    assert main(["--max_depth", "0"]) == 2
    assert "max_depth" in failure(job)
    assert capsys.readouterr().err.startswith("training: max_depth")


def test_hyperparameters_come_from_sagemakers_file_without_arguments(job: Path, capsys) -> None:
    config = job / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({"n_trees": "5"}))
    assert main([]) == 2
    assert failure(job).startswith("n_trees: unknown hyperparameter")
    (config / "hyperparameters.json").write_text("[1]")
    assert main([]) == 2
    assert failure(job).endswith("must hold a JSON object")


def test_entry_point_refuses_a_missing_channel(job: Path) -> None:
    for f in (job / "input" / "data" / "validation").iterdir():
        f.unlink()
    assert main([]) == 2
    assert failure(job) == f"input channel 'validation' is empty ({job}/input/data/validation)"


def test_entry_point_stops_before_training_when_tracking_is_unreachable(
    job: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with mock_aws():
        boto3.client("secretsmanager").create_secret(
            Name="client", SecretString='{"username": "u", "password": "p"}'
        )
        assert main([]) == 2
    assert failure(job).startswith("tracking server http://127.0.0.1:9 refused or unreachable")
    assert not (job / "model").exists() or not any((job / "model").iterdir())


def test_entry_point_needs_its_secret(job: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with mock_aws():
        assert main([]) == 2
    assert failure(job).startswith("cannot read the MLflow client secret 'client'")
