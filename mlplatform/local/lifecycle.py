"""The local stack's operations as the tasks call them: choose a runtime, up, down, status, env.

The runtime that brought the stack up is recorded in the state folder, so `down`, `status` and
`logs` address the same one without the user repeating --runtime.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from mlplatform.config import Environment
from mlplatform.errors import PlatformError, RuntimeSelectionError
from mlplatform.local.credentials import load_or_create
from mlplatform.local.runtimes.base import Runtime, StackStatus
from mlplatform.local.runtimes.native import NativeRuntime
from mlplatform.local.services import SERVICES
from mlplatform.paths import StatePaths
from mlplatform.reporting import Reporter

__all__ = ["RUNTIMES", "client_environment", "open_runtime", "recorded_runtime", "service_logs"]

RUNTIMES = ("auto", "native", "compose")


def recorded_runtime(paths: StatePaths) -> str | None:
    """The runtime the stack was last brought up with, if any."""
    try:
        return str(json.loads(paths.runtime_file.read_text(encoding="utf-8"))["runtime"])
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return None


def open_runtime(env: Environment, paths: StatePaths, requested: str = "auto") -> Runtime:
    """Resolve --runtime: an explicit choice, else the recorded one, else native.

    `auto` picks native unless the stack is already up under compose: native is the default on a
    laptop without an engine, and containers are opted into with --runtime compose.
    """
    if requested not in RUNTIMES:
        raise RuntimeSelectionError(
            f"unknown runtime {requested!r}; choose one of {', '.join(RUNTIMES)}"
        )
    choice = requested
    if choice == "auto":
        choice = recorded_runtime(paths) or "native"
    if choice == "native":
        return NativeRuntime(env, paths)
    from mlplatform.local.runtimes.compose import ComposeRuntime

    return ComposeRuntime(env, paths)


def bring_up(runtime: Runtime, paths: StatePaths, reporter: Reporter) -> StackStatus:
    """Run the runtime's up and record which runtime holds the stack."""
    recorded = recorded_runtime(paths)
    if recorded and recorded != runtime.name:
        raise RuntimeSelectionError(
            f"the stack is up under the {recorded} runtime; run `invoke down` first"
        )
    status = runtime.up(reporter)
    paths.runtime_file.write_text(json.dumps({"runtime": runtime.name}), encoding="utf-8")
    return status


def take_down(runtime: Runtime, paths: StatePaths, reporter: Reporter, volumes: bool) -> list[str]:
    """Run the runtime's down and forget the recorded runtime.

    Emulated environments stand on the local database and emulator: stop them first
    (mlplatform.emulator.environment.stop_emulations).
    """
    stopped = runtime.down(reporter, volumes=volumes)
    paths.runtime_file.unlink(missing_ok=True)
    return stopped


def client_environment(env: Environment, paths: StatePaths) -> dict[str, str]:
    """The variables a shell needs to use the local stack (the `invoke env` output)."""
    if not (paths.secrets / "credentials.json").exists():
        raise PlatformError("the local stack has no credentials yet; run `invoke up` first")
    creds = load_or_create(paths, env)[0]
    return {
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{env.ports.mlflow}",
        "MLFLOW_TRACKING_USERNAME": creds.admin_username,
        "MLFLOW_TRACKING_PASSWORD": creds.admin_password,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{env.ports.aws}",
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{env.ports.s3}",
        "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{env.ports.s3}",
        "AWS_ACCESS_KEY_ID": creds.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": creds.s3_secret_key,
        "AWS_DEFAULT_REGION": env.region,
        # Artifact downloads go through the MLflow server (and its auth), not to presigned URLs
        # of the server's own S3 endpoint, which under compose is a container name.
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
    }


def service_logs(runtime: Runtime, service: str | None, follow: bool) -> Iterator[tuple[str, str]]:
    """(service, line) pairs: one service's log (following it if asked) or every started one's."""
    names = [s.name for s in SERVICES]
    if service is not None and service not in names:
        raise PlatformError(f"unknown service {service!r}; choose {', '.join(names)}")
    for name in [service] if service else names:
        try:
            for line in runtime.logs(name, follow=follow and service is not None):
                yield name, line
        except PlatformError:
            if service:
                raise  # asked for by name: say why there is nothing
