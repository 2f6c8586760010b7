"""supervisord as the native runtime's process supervisor.

supervisord starts each service in its own process group, writes its log file, and stops the whole
group (stopasgroup/killasgroup), so no worker outlives `down`. The kit talks to it over its
private unix socket with XML-RPC; programs never autostart: the kit starts them one by one, in
order, each after the previous one passed its readiness check.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import Faults, SupervisorTransport

from mlplatform.child_env import inherited_environment
from mlplatform.errors import ServiceStartError
from mlplatform.paths import StatePaths

__all__ = ["Program", "Supervisor"]


@dataclass(frozen=True)
class Program:
    """One supervised service process."""

    name: str
    command: Sequence[str]
    environment: Mapping[str, str]
    stop_seconds: int = 30


def _quote(value: str) -> str:
    if any(c in value for c in '"\n%'):
        raise ValueError(f"unsupported character in supervisor value: {value!r}")
    return f'"{value}"'


class Supervisor:
    """Controls the stack's supervisord through its unix socket."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths
        self.conf = paths.run / "supervisord.conf"
        self.socket = paths.socket("supervisor.sock")
        self.pidfile = paths.run / "supervisord.pid"

    # -- configuration -------------------------------------------------------------------------

    def write_config(self, programs: Sequence[Program]) -> bool:
        """Write supervisord.conf; return True if it changed (a running daemon must reread it)."""
        lines = [
            "[unix_http_server]",
            f"file={self.socket}",
            "chmod=0700",
            "",
            "[supervisord]",
            f"logfile={self.paths.logs / 'supervisord.log'}",
            f"pidfile={self.pidfile}",
            f"directory={self.paths.root}",
            "logfile_maxbytes=5MB",
            "logfile_backups=1",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
        ]
        for p in programs:
            env = ",".join(f"{k}={_quote(v)}" for k, v in sorted(p.environment.items()))
            lines += [
                f"[program:{p.name}]",
                "command=" + " ".join(_quote(part) if " " in part else part for part in p.command),
                "autostart=false",
                # A crashed service stays down and shows as unhealthy; `up` restarts it.
                "autorestart=false",
                "startsecs=0",
                "stopasgroup=true",
                "killasgroup=true",
                f"stopwaitsecs={p.stop_seconds}",
                f"stdout_logfile={self.paths.log(p.name)}",
                "stdout_logfile_maxbytes=20MB",
                "stdout_logfile_backups=2",
                "redirect_stderr=true",
                f"environment={env}" if env else "",
                "",
            ]
        text = "\n".join(lines)
        if self.conf.exists() and self.conf.read_text(encoding="utf-8") == text:
            return False
        self.conf.write_text(text, encoding="utf-8")
        os.chmod(self.conf, 0o600)
        return True

    # -- daemon ------------------------------------------------------------------------------------

    def _rpc(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def running(self) -> bool:
        """True when the daemon answers on its socket."""
        if not self.socket.exists():
            return False
        try:
            return bool(self._rpc().supervisor.getState()["statename"] == "RUNNING")
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            return False

    def start_daemon(self) -> None:
        """Start supervisord (it daemonizes) with a scrubbed environment and wait for its socket."""
        env = inherited_environment()
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        binary = shutil.which("supervisord", path=env["PATH"]) or "supervisord"
        try:
            subprocess.run(
                [binary, "-c", str(self.conf)],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            raise ServiceStartError(f"supervisord did not start: {exc}") from exc
        deadline = time.monotonic() + 15
        while not self.running():
            if time.monotonic() > deadline:
                raise ServiceStartError(
                    f"supervisord did not start; see {self.paths.logs / 'supervisord.log'}"
                )
            time.sleep(0.05)

    def reload(self) -> None:
        """Make a running daemon pick up changed program definitions (stopped programs only)."""
        added, changed, removed = self._rpc().supervisor.reloadConfig()[0]
        for name in changed + removed:
            self.stop(name)
            self._rpc().supervisor.removeProcessGroup(name)
        for name in added + changed:
            self._rpc().supervisor.addProcessGroup(name)

    def shutdown(self) -> None:
        """Stop every program (as process groups) and then the daemon; wait until it is gone."""
        if not self.running():
            return
        pid = int(self.pidfile.read_text().strip()) if self.pidfile.exists() else None
        with contextlib.suppress(OSError, xmlrpc.client.Fault):
            self._rpc().supervisor.shutdown()
        deadline = time.monotonic() + 60
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.socket.parent == self.paths.short_run:
            # Empty once the daemon and the database have removed their sockets; the temporary
            # folder is not ours to fill.
            with contextlib.suppress(OSError):
                self.paths.short_run.rmdir()

    # -- programs ----------------------------------------------------------------------------------

    def state(self, name: str) -> str:
        """Supervisord's state name for a program (RUNNING, STOPPED, EXITED, ...) or UNKNOWN."""
        try:
            return str(self._rpc().supervisor.getProcessInfo(name)["statename"])
        except (OSError, xmlrpc.client.Fault):
            return "UNKNOWN"

    def pid(self, name: str) -> int:
        """The program's pid (0 when not running)."""
        try:
            return int(self._rpc().supervisor.getProcessInfo(name)["pid"])
        except (OSError, xmlrpc.client.Fault):
            return 0

    def start(self, name: str) -> None:
        """Start a program (no-op when it is already running)."""
        try:
            self._rpc().supervisor.startProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != Faults.ALREADY_STARTED:
                raise ServiceStartError(
                    f"supervisor could not start {name}: {fault.faultString}"
                ) from fault

    def stop(self, name: str) -> None:
        """Stop a program's whole process group (no-op when it is not running)."""
        try:
            self._rpc().supervisor.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode not in (Faults.NOT_RUNNING, Faults.BAD_NAME):
                raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
