"""mlplatform.toolchain.testing: which tests each lane of `invoke test` selects and needs."""

from __future__ import annotations

import sys
from pathlib import Path

from mlplatform.toolchain import system_deps
from mlplatform.toolchain.testing import LANES, Lane, packages_for, run_lane, select_lanes


def test_the_default_run_is_the_suite_then_the_container_lane() -> None:
    assert [lane.name for lane in select_lanes(unit=False, containers=False)] == [
        "suite",
        "containers",
    ]
    # The server tests share one xdist worker (tests/conftest.py's xdist_group "servers").
    assert LANES["suite"].argv()[3:] == ["-m", "not container", "-n", "2", "--dist", "loadgroup"]


def test_the_unit_lane_starts_no_server() -> None:
    args = LANES["unit"].argv(k="gate")
    assert args[3:] == ["tests/unit", "-m", "not integration and not container", "-k", "gate"]
    assert [lane.name for lane in select_lanes(unit=True, containers=False)] == ["unit"]


def test_the_container_lane_is_selected_and_installs_podman() -> None:
    (lane,) = select_lanes(unit=False, containers=True)
    assert lane.argv()[3:] == ["-m", "container"]
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
