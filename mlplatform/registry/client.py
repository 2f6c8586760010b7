"""An authenticated MLflow client for the kit's own registry operations.

MLflow's client reads credentials from MLFLOW_TRACKING_USERNAME/PASSWORD at request time, so the
kit sets them for the duration of a block and restores the caller's environment afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlplatform.errors import RegistryError

__all__ = ["Registry", "authenticated_client"]

_VARS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT",
)


@contextmanager
def authenticated_client(tracking_uri: str, username: str, password: str) -> Iterator[MlflowClient]:
    """An MlflowClient for `tracking_uri` that logs in as username/password inside the block.

    The URIs are set too, so MLflow's module-level helpers (models:/ downloads) reach the same
    server and never fall back to a local store.
    """
    saved = {k: os.environ.get(k) for k in _VARS}
    os.environ.update(
        MLFLOW_TRACKING_URI=tracking_uri,
        MLFLOW_REGISTRY_URI=tracking_uri,
        MLFLOW_TRACKING_USERNAME=username,
        MLFLOW_TRACKING_PASSWORD=password,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="2",
        # The kit's stdout carries --json output; MLflow must not print run links into it.
        MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true",
    )
    try:
        yield MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    except MlflowException as exc:
        # Any registry failure a caller did not handle becomes one line for the task layer.
        first = str(exc.message).strip().splitlines()[0][:300]
        raise RegistryError(f"registry at {tracking_uri}: {first}") from exc
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class Registry:
    """One environment's registry: where it is and whom to log in as."""

    env_name: str
    tracking_uri: str
    username: str
    password: str = field(repr=False)

    def client(self) -> Any:
        """An authenticated client context for this registry."""
        return authenticated_client(self.tracking_uri, self.username, self.password)
