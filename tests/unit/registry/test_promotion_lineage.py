"""What a promotion records and how it resumes, on two SQLite registries in this process.

test_promotion_integrity.py covers the verification; these cover the rest of
mlplatform/registry/promotion.py that `invoke mutate` found untested: the lineage tags the
registered version carries, the promotion run and its manifest, the registered model, the result's
counts, resuming a crashed copy, and what the user is told.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from mlplatform.errors import RegistryError
from mlplatform.registry.archive import manifest
from mlplatform.registry.client import Registry
from mlplatform.registry.promotion import KEY_TAG, promote

MODEL = "fraud-classifier"
SOURCE_FILES = {
    "MLmodel": b"flavors: {}\n",
    # 1.5 MiB, so the size a promotion reports is not 0.0 MiB whatever it is divided by.
    "model.pkl": b"w" * (3 * 2**19),
    "artifacts/notes.txt": b"fixture\n",
    # Sorted by path, artifacts/ comes first; sorted as text ("-" < "/"), this does: the
    # manifest's digest must not depend on which order a walk of the folder gives.
    "artifacts-index.txt": b"index\n",
}
# Run tags a training run carries: the lineage prefixes travel, the rest stay behind.
RUN_TAGS = {
    "mlp.data.train.sha256": "d" * 64,
    "mlp.image.digest": "sha256:" + "e" * 64,
    "mlp.git.commit": "abc123",
    "mlp.lock.sha256": "f" * 64,
    "mlp.gate.decision": "promoted",
    "team": "fraud",
}


class Recorder:
    """A reporter that keeps every message, tagged with its kind."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def step(self, message: str) -> None:
        self.lines.append(("step", message))

    def done(self, message: str) -> None:
        self.lines.append(("done", message))

    def warn(self, message: str) -> None:
        self.lines.append(("warn", message))


class Crash(Exception):
    """Stands for the process dying at that point."""


class _CrashingClient:
    """An MLflow client that dies at the `crash_at`-th call of `method`."""

    def __init__(self, client: Any, method: str, crash_at: int) -> None:
        self._client, self._method, self._left = client, method, crash_at

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != self._method:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._left -= 1
            if self._left == 0:
                raise Crash(name)
            return attribute(*args, **kwargs)

        return call


@dataclass(frozen=True)
class CrashingTarget(Registry):
    """A target registry whose client dies at one call."""

    method: str = "create_model_version"
    crash_at: int = 1

    @contextmanager
    def client(self) -> Iterator[Any]:
        with super().client() as real:
            yield _CrashingClient(real, self.method, self.crash_at)


@dataclass(frozen=True)
class Setup:
    source: Registry
    target: Registry
    version: str
    source_run: str

    def admin(self, registry: Registry) -> MlflowClient:
        uri = registry.tracking_uri
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def promoted(self) -> tuple[MlflowClient, Any]:
        """Promote into the empty target; its admin client and the version it registered."""
        self.run()
        target = self.admin(self.target)
        return target, target.get_model_version(MODEL, "1")

    def run(self, target: Registry | None = None, reporter: Any = None) -> Any:
        return promote(
            self.source, target or self.target, MODEL, self.version, reporter or Recorder()
        )


@pytest.fixture
def setup(sqlite_registry: Callable[[str], str], register_files: Any) -> Setup:
    source_uri = sqlite_registry("local")
    version = register_files(source_uri, MODEL, SOURCE_FILES)
    client = MlflowClient(tracking_uri=source_uri, registry_uri=source_uri)
    run_id = client.get_model_version(MODEL, version).run_id
    for tag, value in RUN_TAGS.items():
        client.set_tag(run_id, tag, value)
    return Setup(
        Registry("local", source_uri, "admin", "unused"),
        Registry("prod", sqlite_registry("prod"), "admin", "unused"),
        version,
        run_id,
    )


def expected_manifest(setup: Setup, tmp_path: Path) -> tuple[dict[str, str], str, int]:
    """The source version's files as MLflow hands them out (SOURCE_FILES and MLflow's own
    metadata file), their manifest, its digest and their bytes, computed here."""
    with setup.source.client():  # sets the registry `models:/` resolves against
        folder = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{MODEL}/{setup.version}",
                dst_path=str(tmp_path / "expected"),
                tracking_uri=setup.source.tracking_uri,
            )
        )
    files = manifest(folder)
    assert set(SOURCE_FILES) <= set(files)
    size = sum((folder / rel).stat().st_size for rel in files)
    return files, hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest(), size


def test_the_result_counts_the_manifest(setup: Setup, tmp_path: Path) -> None:
    files, digest, size = expected_manifest(setup, tmp_path)
    result = setup.run()
    assert result.as_json() == {
        "model_name": MODEL,
        "source_version": setup.version,
        "target_version": "1",
        "target_env": "prod",
        "verified_files": len(files),
        "created": True,
        "files": len(files),
        "bytes": size,
        "manifest_sha256": digest,
        "verified": True,
    }


def test_the_version_carries_its_lineage_and_only_lineage_run_tags(
    setup: Setup, tmp_path: Path
) -> None:
    _, digest, _ = expected_manifest(setup, tmp_path)
    _, version = setup.promoted()
    lineage = {k: v for k, v in version.tags.items() if k.startswith("mlp.")}
    assert lineage == {
        KEY_TAG: f"local/{MODEL}/{setup.version}/{digest[:16]}",
        "mlp.manifest.sha256": digest,
        "mlp.source.env": "local",
        "mlp.source.model": MODEL,
        "mlp.source.version": setup.version,
        "mlp.source.run_id": setup.source_run,
        "mlp.data.train.sha256": RUN_TAGS["mlp.data.train.sha256"],
        "mlp.image.digest": RUN_TAGS["mlp.image.digest"],
        "mlp.git.commit": RUN_TAGS["mlp.git.commit"],
        "mlp.lock.sha256": RUN_TAGS["mlp.lock.sha256"],
        # Who promoted: the target registry's login.
        "mlp.promoted_by": setup.target.username,
    }
    assert "team" not in version.tags


def test_the_promotion_run_is_named_finished_and_keeps_the_manifest(
    setup: Setup, tmp_path: Path
) -> None:
    files, _, _ = expected_manifest(setup, tmp_path)
    target, version = setup.promoted()
    experiment = target.get_experiment_by_name(f"promotions/{MODEL}")
    assert experiment is not None
    run = target.get_run(version.run_id)
    assert run.info.experiment_id == experiment.experiment_id
    assert run.info.run_name == f"{MODEL}-v{setup.version}"
    assert run.info.status == RunStatus.to_string(RunStatus.FINISHED)
    assert run.data.tags[KEY_TAG] == version.tags[KEY_TAG]
    assert version.source == f"{run.info.artifact_uri}/model"
    kept = Path(
        target.download_artifacts(run.info.run_id, "promotion/manifest.json", str(tmp_path))
    )
    assert kept.read_text() == json.dumps(files, indent=2, sort_keys=True)


def test_the_registered_model_is_made_once_and_marked_promoted(setup: Setup) -> None:
    setup.run()
    target = setup.admin(setup.target)
    assert target.get_registered_model(MODEL).tags == {"mlp.promoted": "true"}

    # A model the target registry already had keeps its own tags.
    other = Setup(setup.source, Registry("prod", setup.target.tracking_uri, "a", "b"), "1", "")
    target.delete_registered_model(MODEL)
    target.create_registered_model(MODEL, tags={"owner": "platform"})
    other.run()
    assert target.get_registered_model(MODEL).tags == {"owner": "platform"}


def test_a_rerun_finds_the_version_creates_nothing_and_says_so(setup: Setup) -> None:
    setup.run()
    target = setup.admin(setup.target)
    runs_before = target.search_runs(
        [target.get_experiment_by_name(f"promotions/{MODEL}").experiment_id]
    )
    told = Recorder()
    again = setup.run(reporter=told)
    assert (again.created, again.target_version) == (False, "1")
    assert [str(v.version) for v in target.search_model_versions(f"name = '{MODEL}'")] == ["1"]
    assert len(target.search_runs([runs_before[0].info.experiment_id])) == len(runs_before)
    assert told.lines[-2:] == [
        ("step", "verifying the existing copy"),
        ("done", "already promoted: prod version 1"),
    ]


def test_what_a_first_promotion_says(setup: Setup, tmp_path: Path) -> None:
    files, digest, size = expected_manifest(setup, tmp_path)
    told = Recorder()
    setup.run(reporter=told)
    n = len(files)
    assert told.lines == [
        ("step", f"downloading {MODEL} version {setup.version} from local"),
        ("done", f"manifest of {n} files ({size / 2**20:.1f} MiB), sha256 {digest[:12]}…"),
        ("step", f"copying {n} of {n} files to prod"),
        ("done", f"copied {n} files (0 were there)"),
        ("step", "verifying the copy against the manifest"),
        ("done", "every file matches the manifest"),
        ("done", f"registered {MODEL} version 1 in prod"),
    ]


@pytest.mark.parametrize(
    ("method", "crash_at", "sent_before"),
    [
        # Died before registering: every file is there and is verified, none sent again.
        ("create_model_version", 1, "all"),
        # Died as the second file was sent: the first is there, the others are sent.
        ("log_artifact", 2, "one"),
    ],
)
def test_a_crashed_promotion_is_finished_sending_only_what_is_missing(
    setup: Setup, method: str, crash_at: int, sent_before: str
) -> None:
    crashing = CrashingTarget(
        "prod", setup.target.tracking_uri, "admin", "unused", method, crash_at
    )
    with pytest.raises(Crash):
        setup.run(crashing)
    target = setup.admin(setup.target)
    assert target.search_model_versions(f"name = '{MODEL}'") == []

    told = Recorder()
    result = setup.run(reporter=told)
    total = result.files
    copied = 0 if sent_before == "all" else total - 1
    assert (result.created, result.verified_files) == (True, total)
    assert ("step", f"copying {copied} of {total} files to prod") in told.lines
    assert ("done", f"copied {copied} files ({total - copied} were there)") in told.lines
    # One promotion run: the crashed one was found by its key and finished.
    experiment = target.get_experiment_by_name(f"promotions/{MODEL}")
    assert experiment is not None
    (run,) = target.search_runs([experiment.experiment_id])
    assert target.get_model_version(MODEL, "1").run_id == run.info.run_id


def test_an_unknown_source_version_is_one_line(setup: Setup) -> None:
    missing = Setup(setup.source, setup.target, "99", "")
    with pytest.raises(RegistryError) as failed:
        missing.run()
    assert str(failed.value) == f"model '{MODEL}' has no version 99 in the local registry"
    assert setup.admin(setup.target).search_registered_models() == []


def test_two_versions_are_two_promotions_each_with_its_own_run(
    setup: Setup, register_files: Any
) -> None:
    """Each version is found by its own key: the second is copied, not taken for the first."""
    first = setup.run()
    second_version = register_files(
        setup.source.tracking_uri, MODEL, {**SOURCE_FILES, "model.pkl": b"weights of v2\n"}
    )
    second = Setup(setup.source, setup.target, second_version, "").run()
    assert (first.target_version, second.target_version) == ("1", "2")
    assert second.created and second.manifest_sha256 != first.manifest_sha256
    target = setup.admin(setup.target)
    runs = {target.get_model_version(MODEL, v).run_id for v in ("1", "2")}
    assert len(runs) == 2
    tags = target.get_model_version(MODEL, "2").tags
    assert tags["mlp.source.version"] == second_version


def test_a_version_registered_without_a_run_promotes_with_an_empty_run_id(setup: Setup) -> None:
    """A version registered from a path (no run): no run to read tags from, an empty run id."""
    source = setup.admin(setup.source)
    stored = source.get_model_version(MODEL, setup.version).source
    bare = source.create_model_version(MODEL, stored)  # no run_id
    result = Setup(setup.source, setup.target, str(bare.version), "").run()
    version = setup.admin(setup.target).get_model_version(MODEL, result.target_version)
    assert version.tags["mlp.source.run_id"] == ""
    assert not any(tag.startswith("mlp.data.") for tag in version.tags)


def test_the_work_folder_is_a_named_temporary_one_and_is_removed(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Downloads go into the promotion's own mlp-promote-* folder (which the suite's
    leftover check knows), and nothing stays in the temporary folder or the working one."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    cwd_before = os.listdir(".")
    seen: list[list[str]] = []

    class Looking(Recorder):
        def step(self, message: str) -> None:
            seen.append(sorted(os.listdir(scratch)))
            super().step(message)

    setup.run(reporter=Looking())
    setup.run(reporter=Looking())  # the already-promoted path verifies too
    assert seen and all(len(names) == 1 and names[0].startswith("mlp-promote-") for names in seen)
    assert os.listdir(scratch) == []
    # Only the target registry's own artifact store (its default ./mlruns) is new here.
    assert set(os.listdir(".")) - set(cwd_before) == {"mlruns"}
