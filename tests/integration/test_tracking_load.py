"""The tracking server under load, and the training helper that logs without waiting on it.

Bounded and untimed: these tests count what the server stored, never how fast (speed is
bench/tracking.py's, docs/performance.md).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from mlplatform.readiness import port_open, wait_until
from tests.cli import REPO
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

CLIENTS, BATCHES, PER_BATCH = 16, 10, 100


def test_sixteen_clients_at_once_lose_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 clients × 10 log_batch × 100 points each, concurrently: no error, every point stored."""
    for key, value in stack.client_env().items():
        if key.startswith("MLFLOW_"):
            monkeypatch.setenv(key, value)
    client = MlflowClient()
    experiment = client.create_experiment(f"load-{time.time_ns()}")
    runs = [client.create_run(experiment).info.run_id for _ in range(CLIENTS)]
    errors: list[BaseException] = []

    def one_client(run: str) -> None:
        own = MlflowClient()
        try:
            for b in range(BATCHES):
                own.log_batch(
                    run, metrics=[Metric(f"m{k}", b + k / 1000, 1, b) for k in range(PER_BATCH)]
                )
        except Exception as exc:  # the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=one_client, args=(run,)) for run in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:3]
    for run in runs:
        history = client.get_metric_history(run, "m7")
        assert sorted(m.step for m in history) == list(range(BATCHES))
        assert len(client.get_run(run).data.metrics) == PER_BATCH


def _stream_script(steps: int, wait_for_go: bool, close: bool) -> str:
    return textwrap.dedent(
        f"""
        import sys, mlflow
        from mlp_training import MetricStream
        mlflow.set_experiment("stream")
        run = mlflow.start_run()
        print(run.info.run_id, flush=True)
        stream = MetricStream()
        for step in range({steps}):
            stream.log("loss", 1.0 / (step + 1), step=step)
        if {wait_for_go}:
            stream.close()
            print("stored", flush=True)
            sys.stdin.readline()
            for step in range({steps}, {2 * steps}):
                stream.log("loss", 1.0 / (step + 1), step=step)
        if {close}:
            stream.close()
        """
    )


def _child(script: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_stream_left_open_is_flushed_at_a_normal_exit(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every point `log` took is on the server after the process exits, close() or not."""
    env = {k: v for k, v in stack.client_env().items() if k.startswith("MLFLOW_")}
    child = _child(_stream_script(500, wait_for_go=False, close=False), env)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    run_id = out.split()[0]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = MlflowClient()
    assert sorted(m.step for m in client.get_metric_history(run_id, "loss")) == list(range(500))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def short_lived_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A plain MLflow server of the test's own (SQLite store), to be killed mid-run."""
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'store.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: port_open(port),
            service="the test's MLflow server",
            timeout=120,
            log=None,
            alive=lambda: server.poll() is None,
        )
        yield url, server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(30)


def test_a_server_that_dies_mid_run_is_an_error_not_a_silent_loss(
    short_lived_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, server = short_lived_server
    env = {
        "MLFLOW_TRACKING_URI": url,
        # MLflow's client retries a refused connection for minutes by default.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    child = _child(_stream_script(50, wait_for_go=True, close=True), env)
    try:
        assert child.stdout is not None and child.stdin is not None
        child.stdout.readline()
        assert child.stdout.readline().strip() == "stored"
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(30)
        child.stdin.write("go\n")
        child.stdin.flush()
        _, err = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode != 0
    assert "MlflowException" in err and "runs/log-batch failed" in err, err[-2000:]
