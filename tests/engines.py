"""The container engine for the container lane (`-m container`; `./kit test` runs it).

Session fixtures, registered for the whole suite by tests/conftest.py: the container tests
(tests/container) and the compose half of the tests parametrized by runtime (tests/integration)
share one engine and one set of images. On Podman, compose/standins/podman-env.sh provides
Compose v2, the API socket, the healthcheck loop and the `docker` shim the kit looks for; the
fixtures start them in a folder of the session's own and stop them at the end. Without a
registry, compose/standins/build.sh makes the images locally.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.cli import REPO

STANDINS = REPO / "compose" / "standins"
KIT = [sys.executable, "-m", "invoke"]


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


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Variables that make the kit's `docker info` and `docker compose` answer, on Podman.

    Without Podman the lane fails with what to install: a container test that was selected and
    cannot run must not pass as skipped (`invoke test` installs Podman as root).
    """
    if not shutil.which("podman"):
        pytest.fail(
            "no Podman: apt-get install podman runc netavark aardvark-dns fuse-overlayfs "
            "slirp4netns iptables debootstrap (./kit test does it as root)",
            pytrace=False,
        )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    env = {**base, "MLP_PODMAN_DIR": str(tmp_path_factory.mktemp("podman"))}
    try:
        env.update(exports(run_checked([str(STANDINS / "podman-env.sh")], env, 600).stdout))
        yield env
    finally:
        subprocess.run([str(STANDINS / "podman-env.sh"), "--stop"], env=env, check=False)


@pytest.fixture(scope="session")
def images(engine: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The stand-in images, and the kit's images as `invoke build` makes them.

    build.sh makes the stand-ins (and the MLflow image through `invoke build`); then `invoke
    build --json` builds MLflow's and the fraud source's training and serving images (cache hits
    where nothing changed), and their digests are in the returned variables as
    MLP_TEST_DIGEST_<NAME>, their archives as MLP_TEST_ARCHIVE_<NAME> (MLFLOW, TRAINING_FRAUD,
    SERVING_FRAUD).
    """
    env = {
        **engine,
        **exports(run_checked([str(STANDINS / "build.sh"), "--print-env"], engine, 60).stdout),
        # Built images and logs land in the session's folder, not the developer's state.
        "MLPLATFORM_HOME": str(tmp_path_factory.mktemp("images")),
    }
    run_checked([str(STANDINS / "build.sh")], env, 2400)
    built = json.loads(run_checked([*KIT, "build", "--json"], env, 2400).stdout)
    for name, image in built.items():
        key = name.upper().replace("-", "_")
        env[f"MLP_TEST_DIGEST_{key}"] = image["digest"]
        env[f"MLP_TEST_ARCHIVE_{key}"] = image["archive"]
    return env
