"""Local serving with SageMaker's contract: GET /ping, POST /invocations (JSON and CSV).

The endpoint serves the packaged model of a registry version — the same deterministic
model.tar.gz a SageMaker endpoint is given — unpacked and run by MLflow's own scoring server
(`mlflow models serve --env-manager local`), which already speaks /ping and /invocations and
answers malformed input with 4xx. The kit resolves the alias, packages, checks the port and
supervises the server's process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.models_artifact_repo import REGISTERED_MODEL_META_FILE_NAME

from mlplatform.archive import make_targz
from mlplatform.child_env import inherited_environment
from mlplatform.config import Environment
from mlplatform.errors import PortInUseError, RegistryError, ServiceStartError
from mlplatform.local_access import local_stack
from mlplatform.paths import StatePaths
from mlplatform.readiness import http_ok, log_tail, port_open, wait_until
from mlplatform.registry import authenticated_client

__all__ = [
    "PackagedModel",
    "package_version",
    "resolve_version",
    "scoring_server",
    "serve_local",
]


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


def _unpack(archive: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


@contextmanager
def scoring_server(
    packaged: PackagedModel, port: int, workers: int, log: Path, timeout: float = 120
) -> Iterator[subprocess.Popen[bytes]]:
    """Run MLflow's scoring server on the unpacked archive until the block ends.

    The server runs in its own process group, which is terminated (then killed) on exit, so no
    worker outlives an interrupted `invoke serve`.
    """
    if port_open(port):
        raise PortInUseError(f"port {port} is taken by another process; pass --port")
    with tempfile.TemporaryDirectory(prefix="mlp-serve-") as tmp:
        model_dir = _unpack(packaged.archive, Path(tmp) / "model")
        # Nothing of the caller's shell (AWS keys, MLFLOW_* logins) reaches the server: it needs
        # only the unpacked model. mlflow models serve starts its workers by name: the venv's
        # bin must be on PATH.
        env = inherited_environment()
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            str(model_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(workers),
            "--env-manager",
            "local",
        ]
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_until(
                lambda: http_ok(f"http://127.0.0.1:{port}/ping"),
                service="endpoint",
                timeout=timeout,
                log=log,
                alive=lambda: proc.poll() is None,
            )
            yield proc
        finally:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    # Workers that outlived their parent are still in its group: end them, and wait until the
    # group is gone so the port is free when this returns.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def serve_local(
    env: Environment,
    paths: StatePaths,
    model: str | None,
    alias: str | None,
    version: str | None,
    port: int,
    workers: int,
    on_ready: Callable[[PackagedModel, str], None],
) -> None:
    """Serve a version of the local registry on 127.0.0.1:port until interrupted."""
    creds, endpoints = local_stack(env, paths, services=("mlflow",))
    name = model or env.model_name
    with tempfile.TemporaryDirectory(prefix="mlp-package-") as tmp:
        # The client user reads the registry; its credentials leave os.environ before the
        # scoring server (which inherits the environment) starts.
        with authenticated_client(
            endpoints.tracking_uri, creds.client_username, creds.client_password
        ) as client:
            number = resolve_version(client, name, alias, version)
            packaged = package_version(endpoints.tracking_uri, name, number, Path(tmp))
        log = paths.logs / "serving" / f"{name}-{number}.log"
        with scoring_server(packaged, port, workers, log) as proc:
            on_ready(packaged, f"http://127.0.0.1:{port}")
            code = proc.wait()
            # Only an interrupt should end serving; a server that exits on its own failed.
            raise ServiceStartError(
                f"the scoring server exited with code {code}; see {log}", log_tail(log)
            )
