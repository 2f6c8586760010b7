"""Progress reporting: the library reports through this protocol; the task layer renders it.

The library never prints: a long operation takes a Reporter and tells it each step, so `invoke`
shows it with rich (mlplatform.console) and tests or other callers pass SilentReporter. Results a
task prints with `--json` are dataclasses with JsonFields.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol

__all__ = ["JsonFields", "Reporter", "SilentReporter"]


class JsonFields:
    """A dataclass whose `--json` object is its fields."""

    def as_json(self) -> dict[str, Any]:
        """The `--json` object: the dataclass's fields."""
        fields: dict[str, Any] = asdict(self)  # type: ignore[call-overload]
        return fields


class Reporter(Protocol):
    """Where long operations report progress; the task layer renders it with rich."""

    def step(self, message: str) -> None:
        """A step is starting."""

    def done(self, message: str) -> None:
        """A step finished (or was already in the desired state)."""

    def warn(self, message: str) -> None:
        """Something the user must notice (reduced parity, a fallback)."""


class SilentReporter:
    """A reporter that drops everything (library callers that want no output)."""

    def step(self, message: str) -> None:  # noqa: D102
        pass

    def done(self, message: str) -> None:  # noqa: D102
        pass

    def warn(self, message: str) -> None:  # noqa: D102
        pass
