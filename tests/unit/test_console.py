"""The task layer's progress lines: each finished step says how long it took."""

from __future__ import annotations

import io

from rich.console import Console

from mlplatform.console import RichReporter


def test_a_finished_step_shows_its_time_and_a_bare_line_shows_none() -> None:
    out = io.StringIO()
    clock = iter([100.0, 112.34])
    reporter = RichReporter(Console(file=out, width=200), clock=lambda: next(clock))
    reporter.step("building serving")
    reporter.done("serving sha256:abc")
    reporter.done("nothing was timed")  # no step before it: no time
    reporter.close()
    assert out.getvalue().splitlines() == [
        "✓ serving sha256:abc (12.3 s)",
        "✓ nothing was timed",
    ]
