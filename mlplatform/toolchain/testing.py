"""Which tests `invoke test` runs: the suite, the fast unit tests, or the container tests."""

from __future__ import annotations

import sys

__all__ = ["pytest_command"]


def pytest_command(unit: bool, containers: bool, k: str = "") -> list[str]:
    """The pytest argv.

    The container tests build images and start Podman (minutes): they run only when asked for,
    and are deselected (not skipped) otherwise.
    """
    args = [sys.executable, "-m", "pytest"]
    if containers:
        args += ["tests/container", "-m", "container"]
    elif unit:
        args += ["tests/unit", "-m", "not integration and not container"]
    else:
        args += ["-m", "not container"]
    return args + (["-k", k] if k else [])
