"""`invoke serve`: SageMaker's serving contract from MLflow's scoring server, on a real version."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from fraud_model.data import FEATURES, generate

from tests.cli import REPO
from tests.integration.conftest import Stack, group_alive

pytestmark = pytest.mark.integration
PORT = 18080
MODEL = "fraud-classifier"


@pytest.fixture(scope="module")
def version(stack: Stack) -> str:
    stack.kit("data")
    return str(
        json.loads(stack.kit("train", "--json", "--set", "n_estimators=40").stdout)["model_version"]
    )


# What a developer's shell may hold; `invoke serve` must not hand it to the scoring server.
CALLER_SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "callers-own-aws-secret",
    "MLFLOW_TRACKING_PASSWORD": "callers-own-mlflow-password",
}


# The same tests on both ways `invoke serve` runs the model: on this host, and in the serving
# image SageMaker runs (`--container`: the container lane, Podman).
MODES = ["host", pytest.param("container", marks=pytest.mark.container)]


@pytest.fixture(scope="module", params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def endpoint(stack: Stack, version: str, mode: str) -> Iterator[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    cmd = [sys.executable, "-m", "invoke", "serve", "--version", version, "--port", str(PORT)]
    proc = subprocess.Popen(
        [*cmd, "--container"] if mode == "container" else cmd,
        cwd=REPO,
        env={**env, **stack.env, **CALLER_SECRETS},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    groups: set[int] = set()
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()  # the ready line comes once /ping answers
        assert f"serving {MODEL} version {version} at http://127.0.0.1:{PORT}" in line, (
            line + proc.stderr.read() if proc.poll() is not None else line
        )
        # The scoring server runs in a session of its own: Ctrl-C to the kit does not reach
        # it, so its groups are remembered for the backstop below.
        groups = {os.getpgid(pid) for pid in server_pids()}
        yield proc
    finally:
        stop_serve(proc, groups)
        if mode == "container":  # a failed run must not leave the container on the port
            subprocess.run(["podman", "rm", "--force", CONTAINER], capture_output=True, check=False)


def stop_serve(proc: subprocess.Popen[str], groups: set[int], grace: float = 30) -> None:
    """Stop `invoke serve` as Ctrl-C does; after `grace` seconds kill it, then kill whatever is
    left of the scoring server's process `groups`, so no server outlives the fixture."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for group in groups:
        if group_alive(group):
            os.killpg(group, signal.SIGKILL)


def post(body: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/invocations", data=body, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except json.JSONDecodeError:
            return exc.code, {"message": text}


@pytest.fixture(scope="module")
def rows() -> object:
    return generate(100, 0.1, seed=5)[list(FEATURES)]


@pytest.fixture(scope="module")
def expected(stack: Stack, version: str, rows) -> np.ndarray:  # type: ignore[no-untyped-def]
    env = stack.client_env()
    os.environ.update(
        MLFLOW_TRACKING_USERNAME=env["MLFLOW_TRACKING_USERNAME"],
        MLFLOW_TRACKING_PASSWORD=env["MLFLOW_TRACKING_PASSWORD"],
    )
    os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
    try:
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}")
    finally:
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"):
            os.environ.pop(key, None)
    return np.asarray(model.predict(rows))


def test_ping(endpoint) -> None:  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/ping", timeout=10) as response:
        assert response.status == 200


@pytest.mark.parametrize("shape", ["dataframe_split", "dataframe_records", "instances", "csv"])
def test_every_payload_type_predicts_like_the_model(endpoint, rows, expected, shape) -> None:  # type: ignore[no-untyped-def]
    if shape == "csv":
        buffer = io.StringIO()
        rows.to_csv(buffer, index=False)
        status, body = post(buffer.getvalue().encode(), "text/csv")
    else:
        if shape == "dataframe_split":
            payload = {shape: json.loads(rows.to_json(orient="split", index=False))}
        else:
            payload = {shape: json.loads(rows.to_json(orient="records"))}
        status, body = post(json.dumps(payload).encode(), "application/json")
    assert status == 200, body
    assert np.array_equal(np.asarray(body["predictions"]), expected)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"dataframe_records": [{"amount": "ten"}]}', "application/json"),
        (b'{"dataframe_records": [{"amount": 1}]}', "application/json"),
        (b'{"rows": []}', "application/json"),
        (b"", "application/json"),
        (b"a,b\n1,2\n", "text/csv"),
        (b"\xff\xfe", "text/csv"),
        (b"<rows/>", "application/xml"),
    ],
)
def test_malformed_input_is_a_clear_4xx(endpoint, body: bytes, content_type: str) -> None:  # type: ignore[no-untyped-def]
    status, answer = post(body, content_type)
    assert 400 <= status < 500, (status, answer)
    assert answer.get("message")


def test_unknown_alias_and_taken_port_are_one_line_errors(stack: Stack, endpoint) -> None:  # type: ignore[no-untyped-def]
    result = stack.kit("serve", "--alias", "nonexistent", "--port", "18081", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: model '{MODEL}' has no alias 'nonexistent' in this registry"
    )
    result = stack.kit("serve", "--alias", "challenger", "--port", str(PORT), check=False)
    assert result.stderr.strip() == f"error: port {PORT} is taken by another process; pass --port"


CONTAINER = f"mlplatform-serve-{PORT}"


def server_pids(port: int = PORT) -> list[int]:
    """The scoring server's processes (`mlflow models serve` on `port` and its workers' parent).

    In the container the server listens on SageMaker's 8080 and reads /opt/ml/model; as root,
    this machine's /proc shows a rootful container's processes too.
    """
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"models\x00serve" not in cmd:
            continue
        in_container = b"/opt/ml/model" in cmd and port == PORT
        if f"{port}".encode() in cmd or in_container:
            found.append(int(pid))
    return found


def container_running() -> bool:
    """Whether the serving container of the endpoint fixture exists (any state)."""
    if not shutil.which("podman"):
        return False
    names = subprocess.run(
        ["podman", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True
    ).stdout.split()
    return CONTAINER in names


def test_the_server_gets_nothing_of_the_callers_shell(endpoint) -> None:  # type: ignore[no-untyped-def]
    (pid, *_) = server_pids()
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    names = {entry.partition(b"=")[0].decode() for entry in environ if entry}
    assert names and not names & set(CALLER_SECRETS)
    assert not any(
        value.encode() in Path(f"/proc/{pid}/environ").read_bytes()
        for value in CALLER_SECRETS.values()
    )


def test_interrupt_stops_the_whole_server(endpoint) -> None:  # type: ignore[no-untyped-def]
    groups = {os.getpgid(pid) for pid in server_pids()}
    assert groups
    endpoint.send_signal(signal.SIGINT)
    assert endpoint.wait(60) == 0
    assert "endpoint stopped" in endpoint.stdout.read()
    assert not any(group_alive(g) for g in groups)
    assert not container_running()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", PORT)) != 0


SIGTERM_PORT = 18082


def test_sigterm_stops_the_whole_server_like_ctrl_c(stack: Stack, version: str) -> None:
    """`./kit serve` ended by a process manager or `kill`: no server left, port free, exit 143."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    proc = subprocess.Popen(
        [str(REPO / "kit"), "serve", "--version", version, "--port", str(SIGTERM_PORT)],
        cwd=REPO,
        env={**env, **stack.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    groups: set[int] = set()
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()  # the ready line comes once /ping answers
        assert f"at http://127.0.0.1:{SIGTERM_PORT}" in line, (
            line + proc.stderr.read() if proc.poll() is not None else line
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{SIGTERM_PORT}/ping", timeout=10) as ping:
            assert ping.status == 200
        groups = {os.getpgid(pid) for pid in server_pids(SIGTERM_PORT)}
        # The server has a group of its own: SIGTERM to the kit does not reach it by itself.
        assert groups and os.getpgid(proc.pid) not in groups
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 143, proc.stderr.read()
        assert "endpoint stopped (SIGTERM)" in proc.stdout.read()
        assert not any(group_alive(g) for g in groups)
        assert server_pids(SIGTERM_PORT) == []
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", SIGTERM_PORT)) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        for group in groups:  # a failed run must not leave a server on the port
            if group_alive(group):
                os.killpg(group, signal.SIGKILL)
