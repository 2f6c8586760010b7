"""The compose runtime end to end on a real container engine, driven as a user drives it.

`invoke up --runtime compose`, `status --json`, an MLflow run with an artifact logged with the
credentials of `invoke env`, `down`, `up` again (the run and its artifact are still there), and
`down --volumes` (nothing of the project is left). On its own ports and state folder, so a
developer's native stack keeps running.

The container lane (`-m container`; `./kit test` runs it, installing Podman as root). It needs
Podman (Debian's podman, runc) or Docker with Compose v2; without a registry the images are made
locally by compose/standins/build.sh (minutes the first time, seconds from the build cache after).
On Podman, compose/standins/podman-env.sh provides Compose v2, the API socket, the healthcheck loop
and the `docker` shim the kit looks for; the test starts them in its own folder and stops them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import REPO, kit
from tests.container.conftest import exports as _exports
from tests.integration.conftest import write_config

pytestmark = pytest.mark.container

# Away from the native stacks (5000.., 15000.., 16000..) and the S3 store's +1..4 and +10000 ports.
PORTS = {"mlflow": 25500, "s3": 26433, "aws": 24566, "database": 23307}
PROJECT = "mlplatform"  # fixed in mlplatform/local/runtimes/compose.py

LOG_RUN = """
import os, sys, tempfile, mlflow
mlflow.set_experiment("compose-runtime-test")
with mlflow.start_run() as run:
    mlflow.log_param("engine", sys.argv[1])
    mlflow.log_metric("score", 0.75)
    path = os.path.join(tempfile.mkdtemp(), "note.txt")
    with open(path, "w") as f:
        f.write("stored in the S3 container")
    mlflow.log_artifact(path)
print(run.info.run_id)
"""

READ_RUN = """
import json, sys, tempfile, mlflow
run = mlflow.get_run(sys.argv[1])
path = mlflow.artifacts.download_artifacts(
    run_id=sys.argv[1], artifact_path="note.txt", dst_path=tempfile.mkdtemp()
)
print(json.dumps({"params": run.data.params, "metrics": run.data.metrics,
                  "artifact": open(path).read()}))
"""


def _project_resources(env: dict[str, str]) -> list[str]:
    engine = "podman"
    label = f"label=com.docker.compose.project={PROJECT}"
    containers = subprocess.run(
        [engine, "ps", "-a", "-q", "--filter", label], env=env, capture_output=True, text=True
    ).stdout.split()
    volumes = subprocess.run(
        [engine, "volume", "ls", "-q", "--filter", label], env=env, capture_output=True, text=True
    ).stdout.split()
    return containers + volumes


@pytest.mark.timeout(2400)
def test_compose_stack_end_to_end(images: dict[str, str], tmp_path: Path) -> None:
    if _project_resources(images):
        pytest.fail(
            f"a compose project named {PROJECT!r} exists here (the kit's name is fixed): "
            "`./kit down` it, then run the lane again",
            pytrace=False,
        )
    config = write_config(tmp_path / "environments.toml", PORTS)
    home = tmp_path / "state"
    env = {**images, "MLPLATFORM_HOME": str(home), "MLPLATFORM_CONFIG": str(config)}

    def run_kit(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return kit(*args, env=env, timeout=timeout, check=True)

    def client(script: str, *args: str) -> str:
        shell_env = _exports(run_kit("env").stdout)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
        try:
            result = subprocess.run(
                [sys.executable, "-c", script, *args],
                env={**base, **shell_env},
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"MLflow client hung (presigned S3 URL unreachable from the host?): {exc}")
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout.strip().splitlines()[-1]

    try:
        run_kit("up", "--runtime", "compose")
        status = json.loads(run_kit("status", "--json").stdout)
        assert status["runtime"] == "compose"
        assert {name: s["healthy"] for name, s in status["services"].items()} == {
            "database": True,
            "s3": True,
            "aws": True,
            "mlflow": True,
        }
        assert status["services"]["mlflow"]["url"] == f"http://127.0.0.1:{PORTS['mlflow']}"

        run_id = client(LOG_RUN, "compose")
        expected = {"params": {"engine": "compose"}, "metrics": {"score": 0.75}}
        first = json.loads(client(READ_RUN, run_id))
        assert first == {**expected, "artifact": "stored in the S3 container"}

        run_kit("down")
        stopped = json.loads(run_kit("status", "--json").stdout)
        assert not any(s["healthy"] for s in stopped["services"].values())

        # After `down` the recorded runtime is gone, so --runtime compose is named again.
        run_kit("up", "--runtime", "compose")
        again = json.loads(client(READ_RUN, run_id))
        assert again == first  # database and object store volumes kept the run and artifact
    finally:
        kit("down", "--volumes", env=env, timeout=300)
        leftovers = _project_resources(images)
        if leftovers:  # a failed `up` records no runtime: remove the project directly
            subprocess.run(
                [
                    "docker",
                    "compose",
                    "-p",
                    PROJECT,
                    "-f",
                    "compose/docker-compose.yml",
                    "down",
                    "--volumes",
                ],
                cwd=REPO,
                env={**images, "MLP_SECRETS_DIR": str(home / "secrets")},
                capture_output=True,
                check=False,
                timeout=300,
            )
    assert _project_resources(images) == [], "down --volumes left containers or volumes"
