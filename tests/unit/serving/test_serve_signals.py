"""`invoke serve` stopped by SIGTERM or SIGHUP stops its server's whole process group (issue 10).

The real supervision (mlplatform.serving.local.serve_command) runs in a subprocess on a stand-in for
`mlflow models serve`: a small HTTP server answering /ping that starts a worker ignoring SIGTERM,
in the process group the supervision gives it. The test signals the supervising process only, as
a process manager or a closing terminal does, and the whole group must be gone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import REPO
from tests.emulator.process import free_port
from tests.integration.conftest import group_alive

DEADLINE = 15.0

# Answers /ping like the scoring server; its worker, like a uvicorn worker after its parent is
# killed, keeps running unless someone stops the whole group.
STAND_IN = textwrap.dedent(
    """
    import http.server, os, subprocess, sys

    port, group_file = int(sys.argv[1]), sys.argv[2]
    subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    with open(group_file, "w") as out:
        out.write(str(os.getpgid(0)))

    class Ping(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", port), Ping).serve_forever()
    """
)

# The supervising process: what `invoke serve` runs once the model is packaged.
SUPERVISOR = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from mlplatform.serving.local import serve_command

    stand_in, port, group_file, log = sys.argv[1:5]
    try:
        serve_command(
            [sys.executable, stand_in, port, group_file],
            int(port),
            Path(log),
            lambda: print("ready", flush=True),
            timeout=30,
        )
    except KeyboardInterrupt as exc:
        print(f"interrupted: {exc}", flush=True)
        raise SystemExit(3) from None
    """
)


def wait_for(check, what: str, timeout: float = DEADLINE) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} after {timeout:.0f}s")
        time.sleep(0.05)


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """The supervisor serving the stand-in: (supervisor, port, the server's process group)."""
    stand_in = tmp_path / "stand_in.py"
    stand_in.write_text(STAND_IN, encoding="utf-8")
    group_file = tmp_path / "group"
    port = free_port()
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SUPERVISOR,
            str(stand_in),
            str(port),
            str(group_file),
            str(tmp_path / "serve.log"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pgid = 0
    try:
        wait_for(lambda: group_file.exists() and group_file.read_text(), "no server", 60)
        pgid = int(group_file.read_text())
        assert supervisor.stdout is not None
        assert supervisor.stdout.readline().strip() == "ready"
        yield supervisor, port, pgid
    finally:
        # Whatever the outcome, leave nothing behind.
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        if pgid and group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_stops_the_whole_server_group(
    served: tuple[subprocess.Popen[str], int, int], signum: signal.Signals
) -> None:
    supervisor, port, pgid = served
    assert pgid != os.getpgid(supervisor.pid)  # the server has a group of its own
    assert group_alive(pgid) and not port_free(port)
    supervisor.send_signal(signum)
    wait_for(lambda: not group_alive(pgid), f"process group {pgid} still alive")
    wait_for(lambda: port_free(port), f"port {port} still taken")
    # The same path as Ctrl-C: KeyboardInterrupt reaches the caller once the group is gone.
    stdout, stderr = supervisor.communicate(timeout=DEADLINE)
    assert supervisor.returncode == 3, stderr
    assert stdout.strip() == f"interrupted: {signum.name}"


def test_the_previous_handlers_come_back_after_serving() -> None:
    from mlplatform.serving.local import STOP_SIGNALS, StopSignal, stop_signals_interrupt

    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    with pytest.raises(StopSignal) as caught, stop_signals_interrupt():
        with stop_signals_interrupt():  # nested: changes nothing
            pass
        # Only with the handler in place may the test signal itself (else pytest would die).
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs at the next bytecode; this is never slept out
    assert (caught.value.signum, caught.value.exit_code, str(caught.value)) == (
        signal.SIGTERM,
        143,
        "SIGTERM",
    )
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before


def test_the_serve_task_exits_128_plus_the_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    from invoke import Context, Exit

    import tasks
    from mlplatform.serving import local as serving

    def stopped(*args: object) -> None:
        raise serving.StopSignal(signal.SIGHUP)

    monkeypatch.setattr(serving, "serve_local", stopped)
    with pytest.raises(Exit) as caught:
        tasks.serve(Context())
    assert (caught.value.code, caught.value.message) == (129, None)
