"""Promotion refuses a target copy that differs from the source, on every path, without a server.

Both registries are MLflow on SQLite files in this process (tests/unit/conftest.py) and the
target's artifact store is a local folder, so a test can change what the store holds, as a
faulty or tampered bucket would. Every test here fails when `promotion._verify` is a no-op.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.file_utils import local_file_uri_to_path

from mlplatform.registry.client import Registry
from mlplatform.registry.promotion import PromotionError, promote
from mlplatform.reporting import SilentReporter

MODEL = "fraud-classifier"
SOURCE_FILES = {
    "MLmodel": b"flavors: {}\n",
    "model.pkl": b"weights of version 1\n",
    "artifacts/notes.txt": b"fixture\n",
}
Fault = Callable[[Path], None]


# What a store can do to a run's model folder. Each is idempotent: on the first copy it runs
# after every upload, whichever file that upload wrote.
def tamper(model: Path) -> None:
    """A file's bytes change."""
    notes = model / "artifacts" / "notes.txt"
    if notes.exists():
        notes.write_bytes(b"tampered\n")


def lose(model: Path) -> None:
    """A file goes missing."""
    (model / "artifacts" / "notes.txt").unlink(missing_ok=True)


def add(model: Path) -> None:
    """A file appears that the source does not have."""
    if model.is_dir():
        (model / "extra.bin").write_bytes(b"not from the source\n")


FAULTS = {
    "tampered": (tamper, "artifacts/notes.txt in the target differs from the source (sha256 "),
    "missing": (lose, "artifacts/notes.txt is missing from the target copy; not registered"),
    "extra": (add, "extra.bin in the target is not in the source manifest; not registered"),
}


def stored_model(client: Any, run_id: str) -> Path:
    """Where the target's store keeps a run's `model` folder (a local folder here)."""
    return Path(local_file_uri_to_path(client.get_run(run_id).info.artifact_uri)) / "model"


class _FaultyStore:
    """An MLflow client whose store applies `fault` to the run's model files after each upload."""

    def __init__(self, client: Any, fault: Fault) -> None:
        self._client = client
        self._fault = fault

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        self._client.log_artifact(run_id, local_path, artifact_path)
        self._fault(stored_model(self._client, run_id))


@dataclass(frozen=True)
class FaultyTarget(Registry):
    """A target registry whose store changes what promotion writes to it."""

    fault: Fault = tamper

    @contextmanager
    def client(self) -> Iterator[Any]:
        with super().client() as real:
            yield _FaultyStore(real, self.fault)


@dataclass(frozen=True)
class Promotion:
    """A source registry holding one version of SOURCE_FILES, and an empty target registry."""

    source: Registry
    target: Registry
    version: str

    def target_versions(self) -> list[Any]:
        uri = self.target.tracking_uri
        return list(
            MlflowClient(tracking_uri=uri, registry_uri=uri).search_model_versions(
                f"name = '{MODEL}'"
            )
        )

    def run(self, target: Registry | None = None) -> Any:
        return promote(self.source, target or self.target, MODEL, self.version, SilentReporter())


@pytest.fixture
def promotion(sqlite_registry: Callable[[str], str], register_files: Any) -> Promotion:
    source = sqlite_registry("local")
    version = register_files(source, MODEL, SOURCE_FILES)
    return Promotion(
        Registry("local", source, "admin", "unused"),
        Registry("prod", sqlite_registry("prod"), "admin", "unused"),
        version,
    )


def test_a_clean_copy_counts_every_file_it_verified(promotion: Promotion) -> None:
    """A verification that did not run reports no files (catches `_verify` as a no-op)."""
    first = promotion.run()
    assert first.created and first.files >= len(SOURCE_FILES)
    assert first.verified and first.verified_files == first.files
    again = promotion.run()
    assert not again.created and again.target_version == first.target_version
    assert again.verified and again.verified_files == first.files


@pytest.mark.parametrize("fault", FAULTS)
def test_first_copy_that_differs_from_the_source_is_not_registered(
    promotion: Promotion, fault: str
) -> None:
    """The store changes the copy as it is written (catches `_verify` as a no-op)."""
    change, message = FAULTS[fault]
    target = FaultyTarget("prod", promotion.target.tracking_uri, "admin", "unused", fault=change)
    with pytest.raises(PromotionError, match=re.escape(message)):
        promotion.run(target)
    assert promotion.target_versions() == []


@pytest.mark.parametrize("fault", FAULTS)
def test_already_promoted_copy_that_changed_since_is_refused(
    promotion: Promotion, fault: str
) -> None:
    """The registered copy changes after promotion; a rerun re-verifies it (catches the no-op)."""
    change, message = FAULTS[fault]
    registered = promotion.run().target_version
    [mv] = promotion.target_versions()
    uri = promotion.target.tracking_uri
    change(stored_model(MlflowClient(tracking_uri=uri), mv.run_id))
    with pytest.raises(PromotionError, match=re.escape(message)):
        promotion.run()
    assert [str(v.version) for v in promotion.target_versions()] == [registered]


def test_a_changed_file_is_named_with_both_digests(promotion: Promotion) -> None:
    target = FaultyTarget("prod", promotion.target.tracking_uri, "admin", "unused", fault=tamper)
    with pytest.raises(PromotionError) as failed:
        promotion.run(target)
    stored = hashlib.sha256(b"tampered\n").hexdigest()
    wanted = hashlib.sha256(SOURCE_FILES["artifacts/notes.txt"]).hexdigest()
    assert str(failed.value) == (
        f"artifacts/notes.txt in the target differs from the source (sha256 {stored[:12]}… != "
        f"{wanted[:12]}…); not registered"
    )
