"""The container engine for the opt-in container tests (`-m container`, `./kit test --containers`).

On Podman, compose/standins/podman-env.sh provides Compose v2, the API socket, the healthcheck loop
and the `docker` shim the kit looks for; the fixtures start them in a folder of the session's own
and stop them at the end. Without a registry, compose/standins/build.sh makes the images locally.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.cli import REPO

STANDINS = REPO / "compose" / "standins"


def exports(text: str) -> dict[str, str]:
    """`export KEY=VALUE` lines (shell-quoted) as a dict, "$PATH" expanded."""
    out = {}
    for line in text.splitlines():
        if not line.startswith("export "):
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.replace('"$PATH"', shlex.quote(os.environ.get("PATH", "")))
        out[key] = "".join(shlex.split(value))
    return out


def run_checked(
    cmd: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a setup command from the repository root; fail the test with its output if it fails."""
    result = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{cmd[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _selected(config: pytest.Config) -> bool:
    return "container" in (config.getoption("-m") or "") or bool(
        os.environ.get("MLP_CONTAINER_TESTS")
    )


@pytest.fixture(scope="session")
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Variables that make the kit's `docker info` and `docker compose` answer, on Podman."""
    if not _selected(request.config):
        pytest.skip("builds images and starts containers: select with -m container")
    if not shutil.which("podman"):
        pytest.skip("no Podman: apt-get install podman runc (see compose/standins/README.md)")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    env = {**base, "MLP_PODMAN_DIR": str(tmp_path_factory.mktemp("podman"))}
    try:
        env.update(exports(run_checked([str(STANDINS / "podman-env.sh")], env, 600).stdout))
        yield env
    finally:
        subprocess.run([str(STANDINS / "podman-env.sh"), "--stop"], env=env, check=False)


@pytest.fixture(scope="session")
def images(engine: dict[str, str]) -> dict[str, str]:
    """The stand-in images and the MLflow image (build.sh: cache hits when nothing changed)."""
    env = {
        **engine,
        **exports(run_checked([str(STANDINS / "build.sh"), "--print-env"], engine, 60).stdout),
    }
    run_checked([str(STANDINS / "build.sh")], env, 1800)
    return env
