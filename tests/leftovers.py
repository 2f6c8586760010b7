"""What a test session leaves behind: kit processes still running and `mlp-*` temporary folders.

tests/conftest.py gives the session a temporary folder of its own (TMPDIR inside pytest's base
temporary folder, which every process the kit starts inherits), snapshots the machine when the
session starts and again after every fixture has been torn down, and fails the run when
`leftovers` finds anything:

    before = snapshot([session_tmpdir])
    ...                                          # the session
    found = wait_for_leftovers(before, os.getpid(), [basetemp], [session_tmpdir])

The rule (precise on purpose: a developer's own stack, running before or started during the
session, never counts, nor does another test session's):

- only processes that did not exist when the session started (same pid and start time) and are
  still alive (zombies are dead) count;
- a process under this pytest (its parent chain reaches it) counts when it or an ancestor below
  pytest runs a kit program (KIT_PROGRAMS): helpers such as the CDK's jsii node process or a
  Playwright driver live until the interpreter exits and are not the kit's;
- a process outside pytest's tree (a daemon, or orphaned to init when its parent died) counts when
  its command line or environment, or a new ancestor's command line, names a folder this session
  made: pytest's base temporary folder (the test stacks' state folders and the session's TMPDIR
  are in it, and the kit hands TMPDIR to everything it starts) or an `mlp-*` folder the session
  created;
- an `mlp-*` entry of the session's TMPDIR that was not there when the session started counts.
  /tmp itself is not looked at: what appears there may be a developer's (`./kit serve` keeps its
  folder while it runs), and the session's own processes write to its TMPDIR instead.

Linux only: processes are read from /proc.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "KIT_PROGRAMS",
    "Process",
    "Snapshot",
    "leftovers",
    "program",
    "snapshot",
    "stragglers",
    "wait_for_leftovers",
]

# Executables and `python -m` modules the kit runs: the services, their supervisor, the scoring
# server and the kit's own tasks.
KIT_PROGRAMS = frozenset(
    {
        "supervisord",
        "mariadbd",
        "mysqld",
        "mariadb-install-db",
        "mysql_install_db",
        "weed",
        "moto_server",
        "moto.server",
        "mlplatform.emulator.aws_server",
        "mlplatform.emulator.registry_task",
        "mlflow",
        "mlflow_server",
        "gunicorn",
        "uvicorn",
        "invoke",
        "kit",
    }
)
TEMP_PREFIX = "mlp-"


@dataclass(frozen=True)
class Process:
    """One process as /proc shows it; `argv` and `environ` keep their NUL separators."""

    pid: int
    ppid: int
    started: int  # clock ticks after boot: tells a reused pid from the process it replaced
    zombie: bool
    argv: str
    environ: str = ""


@dataclass(frozen=True)
class Snapshot:
    """Every process, by pid, and every `mlp-*` temporary path, at one moment."""

    processes: Mapping[int, Process]
    paths: frozenset[str]


def program(argv: str) -> str:
    """The program a command line runs: the executable's name, the module of `python -m`, or
    the script an interpreter runs (`python .venv/bin/mlflow server` runs "mlflow", `bash ./kit
    up` runs "kit")."""
    args = [a for a in argv.split("\0") if a]
    if not args:
        return ""
    name = Path(args[0]).name
    if not (name.startswith("python") or name in ("sh", "bash", "dash")):
        return name
    if name.startswith("python") and "-m" in args[1:]:
        index = args.index("-m", 1) + 1
        return args[index] if index < len(args) else name
    # A script run by its interpreter: console scripts (mlflow, supervisord) and ./kit.
    if len(args) > 1 and not args[1].startswith("-"):
        return Path(args[1]).name
    return name


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _process(pid: int) -> Process | None:
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None  # gone meanwhile
    # The name in parentheses may hold spaces and parentheses: split after the last ')'.
    fields = stat.rpartition(")")[2].split()
    return Process(
        pid=pid,
        ppid=int(fields[1]),
        started=int(fields[19]),
        zombie=fields[0] == "Z",
        argv=_read(f"/proc/{pid}/cmdline"),
        environ=_read(f"/proc/{pid}/environ"),
    )


def snapshot(roots: Iterable[str]) -> Snapshot:
    """Read every process from /proc and list the `mlp-*` entries of each root in `roots`."""
    if not os.path.isdir("/proc/self"):
        # No /proc, no check: say so instead of passing a check that looked at nothing.
        raise RuntimeError("the leftovers check reads /proc; this machine has none")
    processes = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := _process(int(entry))) is not None:
            processes[found.pid] = found
    paths = frozenset(
        str(Path(root) / name)
        for root in roots
        if os.path.isdir(root)
        for name in os.listdir(root)
        if name.startswith(TEMP_PREFIX)
    )
    return Snapshot(processes, paths)


def _names(text: str, folder: str) -> bool:
    """True when `text` (NUL-separated) names `folder` or a path inside it, not a sibling that
    merely shares its prefix (pytest-5 is not pytest-50)."""
    return f"{folder}/" in text or f"{folder}\0" in f"{text}\0"


def leftovers(
    before: Snapshot, after: Snapshot, session_pid: int, folders: Sequence[str]
) -> list[str]:
    """One line per process or path of this session still there in `after` (rule: module doc)."""
    old = {(p.pid, p.started) for p in before.processes.values()}
    new_paths = sorted(after.paths - before.paths)
    markers = [*folders, *new_paths]

    def is_new(p: Process) -> bool:
        return (p.pid, p.started) not in old

    def ancestors(p: Process) -> list[Process]:
        chain: list[Process] = []
        while p.ppid > 1 and p.ppid in after.processes and len(chain) < 256:
            p = after.processes[p.ppid]
            chain.append(p)
        return chain

    found = []
    for p in sorted(after.processes.values(), key=lambda q: q.pid):
        if p.pid == session_pid or p.zombie or not is_new(p):
            continue
        chain = ancestors(p)
        pids = [a.pid for a in chain]
        if session_pid in pids:
            below = [p, *chain[: pids.index(session_pid)]]
            ours = any(program(q.argv) in KIT_PROGRAMS for q in below)
        else:
            texts = [p.argv, p.environ, *(a.argv for a in chain if is_new(a))]
            ours = any(_names(text, marker) for text in texts for marker in markers)
        if ours:
            found.append(f"process {p.pid} (parent {p.ppid}): {p.argv.replace(chr(0), ' ')}")
    found += [f"path {path}" for path in new_paths]
    return found


def wait_for_leftovers(
    before: Snapshot,
    session_pid: int,
    folders: Sequence[str],
    roots: Iterable[str],
    grace: float = 15.0,
) -> list[str]:
    """`leftovers` now, or once processes still being stopped have had `grace` seconds to go."""
    roots = list(roots)
    deadline = time.monotonic() + grace
    while True:
        found = leftovers(before, snapshot(roots), session_pid, folders)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def stragglers(folder: str) -> list[Process]:
    """Live processes outside this pytest's process group whose command line or environment
    names `folder`: what a stack stopped with `invoke down` must not have left running."""
    own_group = os.getpgrp()
    found = []
    for p in snapshot([]).processes.values():
        if p.zombie or not (_names(p.argv, folder) or _names(p.environ, folder)):
            continue
        try:
            if os.getpgid(p.pid) != own_group:
                found.append(p)
        except ProcessLookupError:
            continue
    return found
