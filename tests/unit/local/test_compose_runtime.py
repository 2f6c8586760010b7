"""The compose runtime's commands, checked with a recording runner (no engine here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlplatform.config import load_environment
from mlplatform.errors import RuntimeSelectionError, ServiceStartError
from mlplatform.local.runtimes.compose import ComposeRuntime
from mlplatform.paths import StatePaths
from mlplatform.reporting import SilentReporter

ENV = load_environment("local")


class Recorder:
    def __init__(self, returncode: int = 0, stdout: str = "") -> None:
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.returncode, self.stdout = returncode, stdout

    def __call__(self, cmd, env, **kwargs):  # type: ignore[no-untyped-def]
        self.calls.append((cmd, env))
        return subprocess.CompletedProcess(cmd, self.returncode, self.stdout, "boom: no engine")


def test_commands_address_the_kit_project_and_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "developer-real-key")
    run = Recorder()
    rt = ComposeRuntime(ENV, StatePaths(tmp_path), cli=["podman", "compose"], run=run)
    rt.compose("ps")
    cmd, env = run.calls[0]
    assert cmd[:5] == ["podman", "compose", "-p", "mlplatform", "-f"]
    assert cmd[5].endswith("compose/docker-compose.yml") and cmd[6:] == ["ps"]
    assert env["MLP_PORT_MLFLOW"] == "5000" and env["MLP_SECRETS_DIR"] == str(tmp_path / "secrets")
    assert "AWS_SECRET_ACCESS_KEY" not in env  # a developer's real keys never reach compose


def test_failed_compose_command_is_a_one_line_error(tmp_path: Path) -> None:
    rt = ComposeRuntime(ENV, StatePaths(tmp_path), cli=["docker", "compose"], run=Recorder(1))
    with pytest.raises(ServiceStartError, match="docker compose ps failed: boom: no engine"):
        rt.compose("ps")


def test_no_engine_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("mlplatform.local.runtimes.compose.compose_cli", lambda: None)
    rt = ComposeRuntime(ENV, StatePaths(tmp_path))
    with pytest.raises(RuntimeSelectionError, match="use --runtime native"):
        rt.up(SilentReporter())


def test_status_parses_compose_ps_json(tmp_path: Path) -> None:
    out = '{"Service": "database", "State": "running"}\n{"Service": "mlflow", "State": "exited"}\n'
    rt = ComposeRuntime(ENV, StatePaths(tmp_path), cli=["docker", "compose"], run=Recorder(0, out))
    status = {s.name: s for s in rt.status().services}
    assert status["database"].state == "RUNNING" and status["mlflow"].state == "STOPPED"
    assert not any(s.healthy for s in status.values())  # no credentials, nothing is healthy


def test_down_runs_compose_down_with_volumes(tmp_path: Path) -> None:
    run = Recorder()
    rt = ComposeRuntime(ENV, StatePaths(tmp_path), cli=["docker", "compose"], run=run)
    rt.down(SilentReporter(), volumes=True)
    assert run.calls[-1][0][-2:] == ["down", "--volumes"]
