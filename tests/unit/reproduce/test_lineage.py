"""What a version's lineage must record before `invoke reproduce` rebuilds it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from mlflow.exceptions import MlflowException

from mlplatform.errors import ReproduceError
from mlplatform.reproduce.lineage import Lineage, read_lineage, refusal

COMPLETE = {
    "mlp.git.commit": "a" * 40,
    "mlp.git.dirty": "false",
    "mlp.source": "examples/fraud",
    "mlp.source.sha256": "b" * 64,
    "mlp.lock.sha256": "c" * 64,
    "mlp.data.train.sha256": "d" * 64,
    "mlp.data.validation.sha256": "e" * 64,
    "mlp.hyperparameters": "learning_rate,seed",
}
PARAMS = {"learning_rate": "0.1", "seed": "42", "train_rows": "4000"}


def lineage(**tags: str | None) -> Lineage:
    merged = {k: v for k, v in {**COMPLETE, **tags}.items() if v is not None}
    return Lineage("fraud", "3", "run-1", merged, dict(PARAMS), {"average_precision": 0.4})


def test_a_complete_lineage_is_reproducible_with_exactly_its_hyperparameters() -> None:
    found = lineage()
    assert refusal(found) is None
    # train_rows is a param but no hyperparameter: passing it to the job would be an error.
    assert found.hyperparameters == {"learning_rate": "0.1", "seed": "42"}
    assert found.channels == {"train": "d" * 64, "validation": "e" * 64}


@pytest.mark.parametrize(
    ("tags", "reason"),
    [
        ({"mlp.git.dirty": "true"}, "uncommitted changes (mlp.git.dirty=true)"),
        ({"mlp.git.dirty": None}, "uncommitted changes (mlp.git.dirty=unset)"),
        ({"mlp.git.commit": "unknown"}, "records no git commit"),
        ({"mlp.lock.sha256": "unknown"}, "records no lock file hash"),
        ({"mlp.source": None}, "records no source"),
        ({"mlp.data.train.sha256": None, "mlp.data.validation.sha256": None}, "no data channel"),
        ({"mlp.hyperparameters": None}, "does not call job.log_hyperparameters"),
        ({"mlp.hyperparameters": "seed,depth"}, "hyperparameters it did not log: depth"),
    ],
)
def test_what_cannot_be_had_again_is_named_in_one_line(
    tags: dict[str, str | None], reason: str
) -> None:
    said = refusal(lineage(**tags))
    assert said is not None and reason in said and "\n" not in said
    assert said.startswith("fraud version 3 ")


class Client:
    """The two MlflowClient reads read_lineage makes."""

    def __init__(self, version: Any) -> None:
        self.version = version

    def get_model_version(self, name: str, version: str) -> Any:
        if self.version is None:
            raise MlflowException("RESOURCE_DOES_NOT_EXIST: no such version")
        return self.version

    def get_run(self, run_id: str) -> Any:
        data = SimpleNamespace(tags=COMPLETE, params=PARAMS, metrics={"average_precision": 0.4})
        return SimpleNamespace(data=data)


def test_read_lineage_takes_the_versions_run() -> None:
    found = read_lineage(Client(SimpleNamespace(version=3, run_id="run-1")), "fraud", "3")
    assert (found.version, found.run_id, found.commit) == ("3", "run-1", "a" * 40)
    assert found.metrics == {"average_precision": 0.4}


@pytest.mark.parametrize(
    ("version", "says"),
    [(None, "fraud has no version '3'"), (SimpleNamespace(version=3, run_id=""), "names no run")],
)
def test_a_missing_version_or_run_is_one_line(version: Any, says: str) -> None:
    with pytest.raises(ReproduceError, match=says):
        read_lineage(Client(version), "fraud", "3")
