"""A registry version as an endpoint runs it: the alias resolved, the model packed as model.tar.gz.

`invoke serve`, the endpoint deploy and the release all serve the same bytes: the version's
MLflow model, downloaded through the registry and packed deterministically (registry.archive),
so one version gives one sha256 in every registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.models_artifact_repo import REGISTERED_MODEL_META_FILE_NAME

from mlplatform.errors import RegistryError
from mlplatform.registry.archive import make_targz

__all__ = ["PackagedModel", "package_version", "resolve_version"]


@dataclass(frozen=True)
class PackagedModel:
    """A registry version packed for an endpoint."""

    name: str
    version: str
    archive: Path
    sha256: str


def resolve_version(client: Any, name: str, alias: str | None, version: str | None) -> str:
    """The version number an alias (or an explicit version) names; RegistryError if none."""
    try:
        if version:
            return str(client.get_model_version(name, version).version)
        return str(client.get_model_version_by_alias(name, alias or "champion").version)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        what = f"version {version}" if version else f"alias {alias or 'champion'!r}"
        raise RegistryError(f"model {name!r} has no {what} in this registry") from exc


def package_version(tracking_uri: str, name: str, version: str, workdir: Path) -> PackagedModel:
    """Download a version's MLflow model and pack it as model.tar.gz (deterministic)."""
    model_dir = workdir / "model"
    mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{name}/{version}", dst_path=str(model_dir), tracking_uri=tracking_uri
    )
    # MLflow adds this file on download (the registry's name and version number). The same model
    # has other version numbers in other registries: the archive holds only the model's files.
    (model_dir / REGISTERED_MODEL_META_FILE_NAME).unlink(missing_ok=True)
    archive = workdir / "model.tar.gz"
    return PackagedModel(name, version, archive, make_targz(model_dir, archive))
