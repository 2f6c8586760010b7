"""The lanes of `invoke test`: which tests each runs, what it needs installed, how it ended.

    unit        tests/unit: no servers (seconds to minutes)
    suite       everything but the container tests: real MariaDB, SeaweedFS, MLflow, moto (the
                unit tests run beside the server tests, in a second pytest-xdist worker)
    containers  the tests marked `container` (tests/container, and the container half of tests
                parametrized by runtime): Podman builds the kit's images and runs the compose
                runtime, local-mode training and the serving image

`invoke test` runs suite then containers; --unit and --containers run one lane. A lane that
cannot run (no engine, a missing package) fails with the reason: the container tests fail,
never skip, when Podman does not answer.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlplatform.toolchain.system_deps import (
    BROWSER,
    COMPOSE,
    CONTAINERS,
    DATABASE,
    STRACE,
    SystemPackage,
)

__all__ = ["LANES", "Lane", "LaneResult", "packages_for", "run_lane", "select_lanes"]

# pytest's exit code when its selection matched no test.
NO_TESTS_COLLECTED = 5


@dataclass(frozen=True)
class Lane:
    """A pytest selection and the system packages its tests need."""

    name: str
    selection: tuple[str, ...]
    packages: tuple[SystemPackage, ...]

    def argv(self, k: str = "") -> list[str]:
        """The pytest command line of this lane (with a -k expression when given)."""
        return [sys.executable, "-m", "pytest", *self.selection, *(["-k", k] if k else [])]


_SERVERS = (DATABASE, COMPOSE, BROWSER, STRACE)
LANES = {
    lane.name: lane
    for lane in (
        Lane("unit", ("tests/unit", "-m", "not integration and not container"), _SERVERS),
        # Two workers: the tests with servers, in order on one (tests/conftest.py groups
        # them), the unit tests on the other meanwhile; on two cores that took ~3 min off.
        # --durations: every run names its slowest tests, where the lanes' time goes.
        Lane(
            "suite",
            ("-m", "not container", "-n", "2", "--dist", "loadgroup", "--durations=15"),
            _SERVERS,
        ),
        # Local-mode training and the serving image run against a native stack: its database too.
        Lane("containers", ("-m", "container", "--durations=15"), (*CONTAINERS, DATABASE)),
    )
}


@dataclass(frozen=True)
class LaneResult:
    """How a lane ended and its wall time."""

    lane: str
    exit_code: int
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether the lane's tests passed."""
        return self.exit_code == 0


def select_lanes(unit: bool, containers: bool) -> list[Lane]:
    """--unit: the unit lane; --containers: the container lane; neither: suite, then containers."""
    if unit and containers:
        return [LANES["unit"], LANES["containers"]]
    if unit:
        return [LANES["unit"]]
    if containers:
        return [LANES["containers"]]
    return [LANES["suite"], LANES["containers"]]


def run_lane(lane: Lane, cwd: Path, k: str = "") -> LaneResult:
    """Run one lane's pytest and time it.

    With -k, a lane none of whose tests match ran nothing wrong: it counts as passed.
    """
    start = time.monotonic()
    code = subprocess.run(lane.argv(k), cwd=cwd, check=False).returncode
    if k and code == NO_TESTS_COLLECTED:
        code = 0
    return LaneResult(lane.name, code, time.monotonic() - start)


def packages_for(lanes: Sequence[Lane]) -> list[SystemPackage]:
    """Every package the lanes need, each once, in order."""
    return list(dict.fromkeys(p for lane in lanes for p in lane.packages))
