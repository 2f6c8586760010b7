"""The runtime interface and the status types all runtimes return."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from mlplatform.reporting import Reporter

__all__ = ["Runtime", "ServiceStatus", "StackStatus"]


@dataclass(frozen=True)
class ServiceStatus:
    """One service as `status` reports it."""

    name: str
    url: str
    healthy: bool
    state: str
    pid: int = 0


@dataclass(frozen=True)
class StackStatus:
    """The whole stack: which runtime and each service."""

    runtime: str
    services: list[ServiceStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def up(self) -> bool:
        """True when at least one service runs."""
        return any(s.state == "RUNNING" for s in self.services)

    def as_json(self) -> dict[str, Any]:
        """The `status --json` object: runtime and services keyed by name."""
        return {
            "runtime": self.runtime,
            "services": {
                s.name: {k: v for k, v in asdict(s).items() if k != "name"} for s in self.services
            },
            "warnings": self.warnings,
        }


class Runtime(Protocol):
    """What `up`, `down`, `status` and `logs` need from a runtime. `down` is safe to call twice."""

    name: str

    def up(self, reporter: Reporter) -> StackStatus:
        """Bring every service up (idempotent); clean up what it started if it fails."""

    def down(self, reporter: Reporter, volumes: bool = False) -> list[str]:
        """Stop every service; with volumes, delete its data. Return the services stopped."""

    def status(self) -> StackStatus:
        """Report each service's state and health."""

    def logs(self, service: str, follow: bool = False, lines: int | None = 50) -> Iterator[str]:
        """The service's last `lines` log lines (None: all it kept), then with follow new ones."""
