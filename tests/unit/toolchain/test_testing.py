"""mlplatform.toolchain.testing: which tests each lane of `invoke test` selects and needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlplatform.toolchain import system_deps
from mlplatform.toolchain.testing import LANES, Lane, packages_for, run_lane, select_lanes
from tests.cli import REPO


def test_the_default_run_is_the_suite_then_the_container_lane() -> None:
    assert [lane.name for lane in select_lanes(unit=False, containers=False)] == [
        "suite",
        "containers",
    ]
    # The server tests share one xdist worker (tests/conftest.py's xdist_group "servers").
    assert LANES["suite"].argv()[3:] == [
        "-m",
        "not container",
        "-n",
        "2",
        "--dist",
        "loadgroup",
        "--durations=15",
    ]


def test_the_unit_lane_starts_no_server() -> None:
    args = LANES["unit"].argv(k="gate")
    assert args[3:] == ["tests/unit", "-m", "not integration and not container", "-k", "gate"]
    assert [lane.name for lane in select_lanes(unit=True, containers=False)] == ["unit"]


def test_the_container_lane_is_selected_and_installs_podman() -> None:
    (lane,) = select_lanes(unit=False, containers=True)
    assert lane.argv()[3:] == ["-m", "container", "--durations=15"]
    names = {p.package for p in packages_for([lane])}
    assert {"podman", "runc", "netavark", "iptables", "debootstrap", "mariadb-server"} <= names


def test_packages_of_several_lanes_are_named_once() -> None:
    packages = packages_for(select_lanes(unit=False, containers=False))
    assert len(packages) == len(set(packages))
    assert system_deps.STRACE in packages and system_deps.CONTAINERS[0] in packages


class _Exiting(Lane):
    """A lane whose "pytest" only exits with the code its name carries."""

    def argv(self, k: str = "") -> list[str]:
        return [sys.executable, "-c", f"raise SystemExit({self.name})"]


def test_a_lane_that_collects_nothing_fails_unless_k_narrowed_it(tmp_path: Path) -> None:
    assert not run_lane(_Exiting("5", (), ()), tmp_path).passed
    assert run_lane(_Exiting("5", (), ()), tmp_path, k="gate").passed
    failed = run_lane(_Exiting("1", (), ()), tmp_path, k="gate")
    assert (failed.passed, failed.exit_code) == (False, 1) and failed.seconds >= 0


def test_the_suite_lanes_server_tests_share_one_worker(tmp_path: Path) -> None:
    """The suite lane's grouping, run for real: pytest-xdist's loadgroup has broken silently
    before (pytest 9.2 undid it), which would start two stacks on the same fixed ports."""
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    integration: x\n")
    body = "@pytest.mark.parametrize('i', range(4))\ndef test_it(i):\n    time.sleep(0.2)\n"
    (tmp_path / "test_servers.py").write_text(
        f"import time\nimport pytest\npytestmark = pytest.mark.integration\n{body}"
    )
    (tmp_path / "test_units.py").write_text(f"import time\nimport pytest\n{body}")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-v",
            *LANES["suite"].argv()[5:],
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    workers = {
        line.split("]")[0].lstrip("[")
        for line in done.stdout.splitlines()
        if "PASSED test_servers.py" in line
    }
    assert len(workers) == 1, done.stdout[-2000:]
