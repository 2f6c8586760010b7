"""What a registered version records of how it was made, and whether that is enough to rebuild it.

The training helper (mlp_training) tags every run with its lineage: the git commit and whether the
work tree was dirty, the source and its fingerprint, the lock file's sha256, each channel's
sha256, the runner, and (`job.log_hyperparameters`) which params are the effective
hyperparameters. `read_lineage` collects them from the version's run; `refusal` names the first
one that makes a faithful rebuild impossible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlp_training.job import HYPERPARAMETERS_TAG
from mlplatform.errors import ReproduceError

__all__ = ["Lineage", "read_lineage", "refusal"]

_DATA = ("mlp.data.", ".sha256")


@dataclass(frozen=True)
class Lineage:
    """One version's recorded lineage (tags of its run) and the results to compare against."""

    model: str
    version: str
    run_id: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]

    @property
    def label(self) -> str:
        """`fraud-classifier version 3`, as messages name it."""
        return f"{self.model} version {self.version}"

    @property
    def commit(self) -> str:
        """The git commit the code was trained from ('unknown' when none was recorded)."""
        return self.tags.get("mlp.git.commit", "unknown")

    @property
    def source(self) -> str:
        """The source folder as the kit named it: relative to the repository, or absolute."""
        return self.tags.get("mlp.source", "")

    @property
    def channels(self) -> dict[str, str]:
        """Each input channel's recorded sha256, by channel name."""
        start, end = _DATA
        return {
            key[len(start) : -len(end)]: value
            for key, value in self.tags.items()
            if key.startswith(start) and key.endswith(end)
        }

    @property
    def hyperparameters(self) -> dict[str, str]:
        """The effective hyperparameters, as the job logged them (names in mlp.hyperparameters)."""
        names = [n for n in self.tags.get(HYPERPARAMETERS_TAG, "").split(",") if n]
        return {name: self.params[name] for name in names}


def read_lineage(client: Any, model: str, version: str) -> Lineage:
    """The lineage of `model` version `version` from its run; ReproduceError when either is gone."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.get_model_version(model, version)
    except MlflowException as exc:
        raise ReproduceError(f"{model} has no version {version!r}: {exc.message}") from exc
    if not found.run_id:
        raise ReproduceError(f"{model} version {version} names no run: nothing records its lineage")
    run = client.get_run(found.run_id)
    return Lineage(
        model,
        str(found.version),
        found.run_id,
        dict(run.data.tags),
        dict(run.data.params),
        dict(run.data.metrics),
    )


def refusal(lineage: Lineage) -> str | None:
    """Why the version cannot be rebuilt faithfully from what it records, or None."""
    tags, label = lineage.tags, lineage.label
    if lineage.commit in ("", "unknown"):
        return f"{label} records no git commit: it was not trained from a git work tree"
    if tags.get("mlp.git.dirty") != "false":
        return (
            f"{label} was trained from a work tree with uncommitted changes "
            f"(mlp.git.dirty={tags.get('mlp.git.dirty', 'unset')}): that code cannot be had again"
        )
    if not lineage.source or not tags.get("mlp.source.sha256"):
        return f"{label} records no source (mlp.source): the kit's runners did not train it"
    if tags.get("mlp.lock.sha256", "unknown") == "unknown":
        return f"{label} records no lock file hash: its packages cannot be had again"
    if not lineage.channels:
        return f"{label} records no data channel sha256: its data cannot be checked"
    if HYPERPARAMETERS_TAG not in tags:
        return (
            f"{label} records no hyperparameters ({HYPERPARAMETERS_TAG}): its training code does "
            "not call job.log_hyperparameters, so today's defaults would leak into the rebuild"
        )
    missing = [n for n in tags[HYPERPARAMETERS_TAG].split(",") if n and n not in lineage.params]
    if missing:
        return f"{label} names hyperparameters it did not log: {', '.join(missing)}"
    return None
