"""The serving image's entrypoint: SageMaker's defaults, and the host runs the same one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlplatform.images.build import BuiltImage
from mlplatform.images.engine import Engine
from mlplatform.serving import local
from scoring_server.__main__ import MODEL_DIR, PORT, main, scoring_argv
from tests.cli import REPO


def test_sagemaker_contract_defaults() -> None:
    assert Path("/opt/ml/model") == MODEL_DIR
    assert PORT == 8080
    argv = scoring_argv(MODEL_DIR, "0.0.0.0", PORT, 2)
    assert argv[1:5] == ["-m", "mlflow", "models", "serve"]
    assert argv[argv.index("-m", 2) + 1] == "/opt/ml/model"
    assert argv[argv.index("--env-manager") + 1] == "local"  # never installs at start


def test_a_folder_without_a_model_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--model-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"scoring_server: no MLflow model (MLmodel) in {tmp_path}\n"


def test_the_image_runs_the_entrypoint_the_host_runs() -> None:
    dockerfile = (REPO / "scoring_server" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "scoring_server"]' in dockerfile
    assert 'CMD ["serve"]' in dockerfile
    host = local.scoring_command(Path("/m"), 18080, 1)
    assert host[1:4] == ["-m", "scoring_server", "serve"]


def _what_serve_would_exec(tmp_path: Path, printed: str, env: dict[str, str]) -> str:
    """Run `serve` in a child with exec replaced by printing `printed` (an expression of argv)."""
    code = (
        "import os; from unittest import mock; import scoring_server.__main__ as m;"
        f"mock.patch('os.execv', lambda p, a: print({printed})).start();"
        f"(m.Path('{tmp_path}') / 'MLmodel').write_text('flavors: {{}}');"
        f"m.main(['serve', '--model-dir', '{tmp_path}'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**env, "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_port_follows_sagemaker_bind_to_port(tmp_path: Path) -> None:
    """SageMaker's multi-container endpoints move the port with SAGEMAKER_BIND_TO_PORT."""
    port = _what_serve_would_exec(
        tmp_path, "a[a.index('-p') + 1]", {"SAGEMAKER_BIND_TO_PORT": "9191"}
    )
    assert port == "9191"


def test_the_container_gets_the_model_read_only_where_sagemaker_puts_it(tmp_path: Path) -> None:
    image = BuiltImage("serving", "mlplatform/serving:local", "sha256:" + "0" * 64, tmp_path)
    cmd = local._container_command(Engine("/usr/bin/podman"), image, tmp_path / "model", 18080, 2)
    assert cmd[:2] == ["/usr/bin/podman", "run"] and cmd[-2:] == [
        "mlplatform/serving:local",
        "serve",
    ]
    assert f"{tmp_path / 'model'}:/opt/ml/model:ro" in cmd
    assert "127.0.0.1:18080:8080" in cmd  # loopback only, like `invoke serve`
    assert "MLFLOW_MODELS_WORKERS=2" in cmd
    assert "--rm" in cmd


def test_uvicorn_gets_its_fast_parser_and_loop(tmp_path: Path) -> None:
    """`mlflow models serve` runs uvicorn's CLI, which reads UVICORN_*: both must reach it."""
    printed = "os.environ['UVICORN_HTTP'], os.environ['UVICORN_LOOP']"
    assert _what_serve_would_exec(tmp_path, printed, {}).split() == ["httptools", "uvloop"]
    # The tracking server's lock, and each example's, which its scoring server runs in.
    for lock in (REPO / "requirements" / "server.txt", *REPO.glob("examples/*/requirements.txt")):
        text = lock.read_text()
        assert "\nhttptools==" in text and "\nuvloop==" in text, lock
