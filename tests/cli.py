"""Run the kit's tasks the way a user does: `invoke <task>` in a subprocess; and the server
image's entrypoint (`python -m mlflow_server <command>`) the way ECS and compose run it."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def kit(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """`invoke ARGS` from the repository root with the test's environment plus `env`."""
    # Nothing of the developer's AWS or MLflow configuration leaks into a kit run.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    # ...and no ~/.aws profile or instance metadata either: only what the test passes.
    inherited.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    full_env = {**inherited, **(env or {})}
    full_env.pop("COLUMNS", None)
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"invoke {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def entrypoint(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m mlflow_server ARGS` with only `env` of the AWS and MLflow variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    return subprocess.run(
        [sys.executable, "-m", "mlflow_server", *args],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def exported(printed: str) -> dict[str, str]:
    """The variables of `export KEY=VALUE` lines (`invoke env`), parsed as a shell would."""
    variables = {}
    for line in printed.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        variables[key] = shlex.split(value)[0]
    return variables
