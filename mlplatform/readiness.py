"""Readiness checks with deadlines: no sleeps standing in for a check.

A wait that times out raises ServiceStartError carrying the service's last log lines.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from mlplatform.errors import PlatformError, ServiceStartError

__all__ = ["follow_log", "http_ok", "log_tail", "port_open", "wait_until"]


def log_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file ('' if it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET url answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (the kit's own service URLs)
            return bool(200 <= resp.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until(
    check: Callable[[], bool],
    *,
    service: str,
    timeout: float,
    log: Path | None,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.1,
) -> float:
    """Poll `check` until it is true; return the seconds it took.

    Fails early when `alive()` turns false (the process died) and at `timeout`; either way the
    error carries the service's log tail (a remote service has no log here: None).
    """
    start = time.monotonic()
    see = f"; see {log}" if log else ""
    while True:
        if check():
            return time.monotonic() - start
        if not alive():
            raise ServiceStartError(f"{service} exited during start{see}", _tail(log))
        if time.monotonic() - start > timeout:
            raise ServiceStartError(f"{service} not ready after {timeout:.0f}s{see}", _tail(log))
        time.sleep(interval)


def _tail(log: Path | None) -> str:
    return log_tail(log) if log else ""


def follow_log(path: Path, follow: bool, lines: int | None = 50) -> Iterator[str]:
    """Yield the last `lines` lines of a log (None: all), then with follow new ones as they come."""
    if not path.exists():
        raise PlatformError(f"no log at {path}; has the service been started?")
    with open(path, encoding="utf-8", errors="replace") as fh:
        tail = fh.readlines()
        tail = tail if lines is None else tail[-lines:]
        yield from (line.rstrip("\n") for line in tail)
        while follow:
            line = fh.readline()
            if line:
                yield line.rstrip("\n")
            else:
                time.sleep(0.2)
