"""The session-end leftovers check (tests/leftovers.py): its rule on made-up snapshots, then once
for real through /proc with a process and a folder this test starts and removes itself."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.leftovers import Process, Snapshot, leftovers, program, snapshot, wait_for_leftovers

PYTEST = 100
BASE = "/tmp/pytest-of-dev/pytest-5"
PY = "/repo/.venv/bin/python3"


def proc(pid: int, ppid: int, *argv: str, environ: str = "", started: int = 7) -> Process:
    return Process(pid, ppid, started, False, "\0".join(argv) + "\0", environ)


def snap(*processes: Process, paths: tuple[str, ...] = ()) -> Snapshot:
    return Snapshot({p.pid: p for p in processes}, frozenset(paths))


SHELL = proc(10, 1, "bash")
SESSION = proc(PYTEST, 10, PY, "-m", "pytest")
DEVELOPERS_MLFLOW = proc(50, 1, PY, "-m", "mlflow_server", "serve")
BEFORE = snap(SHELL, SESSION, DEVELOPERS_MLFLOW, paths=("/tmp/mlp-train-old",))


def found(*processes: Process, paths: tuple[str, ...] = ()) -> list[str]:
    after = snap(*BEFORE.processes.values(), *processes, paths=(*BEFORE.paths, *paths))
    return leftovers(BEFORE, after, PYTEST, [BASE])


def test_program_names_the_executable_module_or_script() -> None:
    assert program(f"{PY}\0-m\0mlflow_server\0serve\0") == "mlflow_server"
    assert program(f"{PY}\0/repo/.venv/bin/mlflow\0models\0serve\0") == "mlflow"
    assert program("/bin/bash\0/repo/kit\0up\0") == "kit"
    assert program("/usr/sbin/mariadbd\0--no-defaults\0") == "mariadbd"
    assert program(f"{PY}\0-c\0from multiprocessing.spawn import spawn_main\0") == "python3"
    assert program("") == ""


def test_nothing_new_is_no_leftover() -> None:
    assert found() == []


def test_a_kit_process_under_pytest_is_a_leftover() -> None:
    serve = proc(200, PYTEST, PY, "-m", "invoke", "serve")
    assert found(serve) == [f"process 200 (parent {PYTEST}): {PY} -m invoke serve "]


def test_a_worker_of_a_kit_process_under_pytest_is_a_leftover() -> None:
    server = proc(200, PYTEST, PY, "/repo/.venv/bin/mlflow", "models", "serve")
    worker = proc(201, 200, PY, "-c", "from multiprocessing.spawn import spawn_main")
    assert [line.split(":")[0] for line in found(server, worker)] == [
        "process 200 (parent 100)",
        "process 201 (parent 200)",
    ]


def test_helpers_under_pytest_that_are_not_the_kits_do_not_count() -> None:
    jsii = proc(200, PYTEST, "node", "/lib/jsii-runtime.js", environ=f"CDK_HOME={BASE}/t0\0")
    assert found(jsii) == []


def test_a_daemon_naming_the_sessions_folder_is_a_leftover() -> None:
    daemon = proc(300, 1, PY, "/repo/.venv/bin/supervisord", "-c", f"{BASE}/stack0/run/s.conf")
    moto = proc(
        301, 300, PY, "-m", "moto.server", environ=f"SUPERVISOR_SERVER_URL=unix://{BASE}/x\0"
    )
    assert [line.split(" (")[0] for line in found(daemon, moto)] == ["process 300", "process 301"]


def test_an_orphaned_worker_is_recognised_by_its_environment() -> None:
    worker = proc(400, 1, PY, "-c", "spawn_main", environ=f"MLFLOW_AUTH_CONFIG_DIR={BASE}/s/run\0")
    assert len(found(worker)) == 1


def test_an_orphaned_scoring_server_is_recognised_by_its_new_temporary_folder() -> None:
    model = "/tmp/mlp-serve-ab"
    server = proc(500, 1, PY, "/repo/.venv/bin/mlflow", "models", "serve", "-m", model)
    assert found(server, paths=(model,)) == [
        f"process 500 (parent 1): {PY} /repo/.venv/bin/mlflow models serve -m {model} ",
        f"path {model}",
    ]


def test_a_developers_stack_started_during_the_session_does_not_count() -> None:
    theirs = proc(600, 1, PY, "/repo/.venv/bin/supervisord", "-c", "/home/dev/.mlplatform/run/c")
    sibling_session = proc(601, 1, "/usr/sbin/mariadbd", f"--datadir={BASE}0/stack0/data")
    assert found(theirs, sibling_session) == []


def test_what_ran_before_does_not_count_but_a_reused_pid_does() -> None:
    assert found(DEVELOPERS_MLFLOW) == []
    reused = proc(50, PYTEST, PY, "-m", "mlflow_server", "serve", started=999)
    after = snap(SHELL, SESSION, reused)
    assert len(leftovers(BEFORE, after, PYTEST, [BASE])) == 1


def test_zombies_and_old_paths_do_not_count() -> None:
    zombie = Process(700, PYTEST, 7, True, f"{PY}\0-m\0invoke\0", "")
    assert found(zombie, paths=("/tmp/mlp-train-old",)) == []


def test_the_check_sees_a_real_process_and_folder_until_they_are_gone(tmp_path: Path) -> None:
    roots = [str(tmp_path)]
    before = snapshot(roots)
    # A process that runs "supervisord" as far as its command line says, under this pytest.
    child = subprocess.Popen(["bash", "-c", "exec -a supervisord sleep 60"])
    folder = tempfile.mkdtemp(prefix="mlp-check-", dir=tmp_path)
    try:
        # Until bash has exec'd, the child's command line is bash's: wait (bounded) for the new.
        deadline = time.monotonic() + 10
        expected = f"process {child.pid} (parent {os.getpid()}): supervisord 60 "
        seen = leftovers(before, snapshot(roots), os.getpid(), [])
        while expected not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = leftovers(before, snapshot(roots), os.getpid(), [])
        assert expected in seen
        assert f"path {folder}" in seen
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        os.rmdir(folder)
    assert wait_for_leftovers(before, os.getpid(), [], roots, grace=5) == []


def test_snapshot_reads_this_process() -> None:
    mine = snapshot([]).processes[os.getpid()]
    assert mine.ppid == os.getppid() and not mine.zombie
    # The command line as the kernel shows it (pytest-xdist retitles its workers, so it need
    # not name python), with its NUL separators kept.
    assert mine.argv == Path("/proc/self/cmdline").read_bytes().decode(errors="replace")
    assert "\0" in mine.argv
