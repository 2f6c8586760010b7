"""Rendering for the task layer: a rich progress reporter and one-line error output."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.status import Status

__all__ = ["RichReporter", "console", "err_console"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class RichReporter:
    """Shows each step with a spinner, then a check mark; warnings in bold on stderr."""

    def __init__(
        self, out: Console = err_console, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.out = out
        self.clock = clock
        self._status: Status | None = None
        self._started: float | None = None

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def step(self, message: str) -> None:
        """Show a spinner for a step in progress."""
        self._stop()
        self._status = self.out.status(message)
        self._status.start()
        self._started = self.clock()

    def done(self, message: str) -> None:
        """Replace the spinner with a finished line, with the step's time when it took one."""
        self._stop()
        took = ""
        if self._started is not None:
            seconds = self.clock() - self._started
            took = f" [dim]({seconds:.1f} s)[/dim]" if seconds >= 0.1 else ""
            self._started = None
        self.out.print(f"[green]✓[/green] {message}{took}")

    def warn(self, message: str) -> None:
        """Print a warning that stands out."""
        self._stop()
        self.out.print(f"[bold yellow]![/bold yellow] [bold]{message}[/bold]")

    def close(self) -> None:
        """Stop any spinner still running."""
        self._stop()
