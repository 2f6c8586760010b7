"""Local serving with SageMaker's contract: GET /ping, POST /invocations (JSON and CSV).

The endpoint serves the packaged model of a registry version — the same deterministic
model.tar.gz a SageMaker endpoint is given — unpacked and run by MLflow's own scoring server
(`mlflow models serve --env-manager local`) started by the serving image's own entrypoint
(`python -m scoring_server serve`), which already speaks /ping and /invocations and
answers malformed input with 4xx. The kit resolves the alias, packages, checks the port and
supervises the server's process group.

Serving ends by Ctrl-C, SIGTERM (a process manager, `kill`) or SIGHUP (the terminal closed), all
one way: SIGTERM and SIGHUP are raised as StopSignal, a KeyboardInterrupt, so the same `finally`
blocks stop the server's whole group and remove the unpacked model before the caller sees it.
StopSignal.exit_code is 128 + the signal's number (143 for SIGTERM), as a shell reports it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from mlplatform.child_env import inherited_environment
from mlplatform.config import REPO_ROOT
from mlplatform.errors import PortInUseError, ServiceStartError
from mlplatform.images.build import BuiltImage, build_images, image_spec
from mlplatform.images.engine import Engine, find_engine
from mlplatform.readiness import http_ok, log_tail, port_open, wait_until
from mlplatform.registry.client import authenticated_client
from mlplatform.registry.packaging import PackagedModel, package_version, resolve_version
from mlplatform.reporting import Reporter, SilentReporter
from mlplatform.sources import model_source
from mlplatform.sources.environment import source_python
from mlplatform.target import Target

__all__ = [
    "STOP_SIGNALS",
    "ServeRequest",
    "StopSignal",
    "scoring_command",
    "scoring_environment",
    "serve_command",
    "serve_local",
    "server_group",
    "stop_signals_interrupt",
    "unpack",
]

# What a process manager (SIGTERM) or a closing terminal (SIGHUP) sends to end `invoke serve`.
# The server runs in a session of its own, so neither reaches it: the kit must stop it.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class StopSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the process is, so it unwinds exactly as Ctrl-C does.

    A KeyboardInterrupt on purpose: every `finally` and `except KeyboardInterrupt` that cleans up
    after Ctrl-C cleans up after it too, and `except Exception` does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal's number (SIGTERM 143, SIGHUP 129), as a shell reports the signal."""
        return 128 + self.signum


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # The first stop signal wins: later ones must not cut the cleanup it starts short.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise StopSignal(signum)


@contextmanager
def _stop_signals_handled(handler: Any) -> Iterator[None]:
    """SIGTERM and SIGHUP go to `handler` in the block (main thread only), then as they were."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise StopSignal; the previous handlers return after.

        with stop_signals_interrupt():
            serve()          # `kill PID` now unwinds serve() like Ctrl-C

    A block inside another such block, or outside the main thread (where Python cannot set
    handlers), changes nothing.
    """
    if signal.getsignal(signal.SIGTERM) is _raise_stop:
        yield
        return
    with _stop_signals_handled(_raise_stop):
        yield


def unpack(archive: Path, target: Path) -> Path:
    """Unpack a model.tar.gz into `target` (made if missing), refusing paths that leave it."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def scoring_command(
    model_dir: Path, port: int, workers: int, python: Path | None = None
) -> list[str]:
    """The serving image's entrypoint (scoring_server/) on an unpacked model, on this host.

    `python` is the interpreter of the model's source environment (default: the kit's own).
    """
    return [
        str(python or sys.executable),
        "-m",
        "scoring_server",
        "serve",
        "--model-dir",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def scoring_environment() -> dict[str, str]:
    """The scoring server's environment: nothing of the caller's shell, this Python's tools.

    No AWS keys or MLFLOW_* logins reach the server: it needs only the unpacked model.
    """
    env = inherited_environment()
    # mlflow models serve starts its workers by name: the venv's bin must be on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # The scoring entrypoint lives in the repository, as the MLflow server's does.
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


@contextmanager
def server_group(
    cmd: Sequence[str], port: int, log: Path, timeout: float = 120
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `cmd`, a server answering GET /ping on 127.0.0.1:`port`, until the block ends.

    It runs in a process group (and session) of its own, with none of the caller's secrets in
    its environment; the block starts once /ping answers. On exit the whole group is stopped
    and waited for, so the port is free when the block is left.
    """
    if port_open(port):
        raise PortInUseError(f"port {port} is taken by another process; pass --port")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(cmd),
            env=scoring_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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
        # Bounded (about 30 s at most); a stop signal arriving meanwhile, say after Ctrl-C,
        # must not leave half the group running.
        with _stop_signals_handled(signal.SIG_IGN):
            _stop_group(proc)


def serve_command(
    cmd: Sequence[str], port: int, log: Path, on_ready: Callable[[], None], timeout: float = 120
) -> NoReturn:
    """Serve with `cmd` (see server_group) until stopped; `on_ready` once /ping answers.

    Ends only by an exception, raised once the server's whole group is gone: KeyboardInterrupt
    for Ctrl-C, StopSignal for SIGTERM or SIGHUP, ServiceStartError when the server does not
    start or exits by itself.
    """
    with stop_signals_interrupt(), server_group(cmd, port, log, timeout) as proc:
        on_ready()
        code = proc.wait()
        # Only an interrupt should end serving; a server that exits on its own failed.
        raise ServiceStartError(
            f"the scoring server exited with code {code}; see {log}", log_tail(log)
        )


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


@dataclass(frozen=True)
class ServeRequest:
    """What `invoke serve` serves, and where: a version (or the version an alias names)."""

    model: str | None = None  # default: the environment's only model
    alias: str | None = "champion"
    version: str | None = None  # wins over alias
    port: int = 8080
    workers: int = 1
    container: bool = False  # the serving image (invoke build) instead of this host's Python


def _unpack_readable(archive: Path, serve_tmp: Path) -> Path:
    """Unpack for a container's own user: readable files under a folder no one else can list."""
    # SageMaker's /opt/ml/model is readable by the container's user; the temporary folder is
    # only traversable by others, so its random name is all that leads to the model.
    serve_tmp.chmod(0o711)
    model_dir = unpack(archive, serve_tmp / "model")
    for path in [model_dir, *model_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return model_dir


def _container_command(
    engine: Engine, image: BuiltImage, model_dir: Path, port: int, workers: int
) -> list[str]:
    """Run the serving image as SageMaker does: `serve`, the model mounted at /opt/ml/model."""
    return [
        engine.program,
        "run",
        "--rm",
        *engine.limit_flags(),
        "--name",
        _container_name(port),
        "--publish",
        f"127.0.0.1:{port}:8080",
        "--volume",
        f"{model_dir}:/opt/ml/model:ro",
        "--env",
        f"MLFLOW_MODELS_WORKERS={workers}",
        image.tag,
        "serve",
    ]


def _container_name(port: int) -> str:
    return f"mlplatform-serve-{port}"


def serve_local(
    target: Target,
    request: ServeRequest,
    on_ready: Callable[[PackagedModel, str], None],
    reporter: Reporter | None = None,
) -> None:
    """Serve a version of the local registry on 127.0.0.1:port until stopped (see serve_command).

    With request.container the serving image is built (cache hits when nothing changed) and run
    with the unpacked model.tar.gz mounted read-only where SageMaker puts it.
    """
    port, workers = request.port, request.workers
    reporter = reporter or SilentReporter()
    name = target.env.model(request.model)
    source = model_source(target.env, name)
    engine = image = None
    if request.container:
        engine = find_engine()
        # The serving image of the model's own source: the endpoint's bytes.
        spec = image_spec("serving", source)
        (image,) = build_images([spec], engine, target.paths.ensure(), reporter)
    # From the start: a stop signal while the model downloads removes the download too.
    with stop_signals_interrupt():
        creds, endpoints = target.local_stack(services=("mlflow",))
        # A model runs in its source's environment, as the serving image runs it in its lock.
        python = None if engine is not None else source_python(source, reporter)
        with tempfile.TemporaryDirectory(prefix="mlp-package-") as tmp:
            # The client user reads the registry; its credentials leave os.environ before the
            # scoring server (which inherits the environment) starts.
            with authenticated_client(
                endpoints.tracking_uri, creds.client_username, creds.client_password
            ) as client:
                number = resolve_version(client, name, request.alias, request.version)
                packaged = package_version(endpoints.tracking_uri, name, number, Path(tmp))
            log = target.paths.logs / "serving" / f"{name}-{number}.log"
            with tempfile.TemporaryDirectory(prefix="mlp-serve-") as serve_tmp:
                if engine is None or image is None:
                    model_dir = unpack(packaged.archive, Path(serve_tmp) / "model")
                    cmd = scoring_command(model_dir, port, workers, python)
                else:
                    model_dir = _unpack_readable(packaged.archive, Path(serve_tmp))
                    cmd = _container_command(engine, image, model_dir, port, workers)
                try:
                    serve_command(
                        cmd, port, log, lambda: on_ready(packaged, f"http://127.0.0.1:{port}")
                    )
                finally:
                    if engine is not None:
                        # `run --rm` removes the container when it stops; one whose client was
                        # killed first would outlive it and keep the port.
                        engine.run(["rm", "--force", _container_name(port)], timeout=60)
