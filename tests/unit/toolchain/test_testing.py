"""mlplatform.toolchain.testing: which tests each lane of `invoke test` selects."""

from __future__ import annotations

from mlplatform.toolchain.testing import pytest_command


def test_the_default_lane_is_every_test_but_the_container_ones() -> None:
    assert pytest_command(unit=False, containers=False)[-2:] == ["-m", "not container"]


def test_the_unit_lane_starts_no_server() -> None:
    args = pytest_command(unit=True, containers=False, k="gate")
    assert args[3:] == ["tests/unit", "-m", "not integration and not container", "-k", "gate"]


def test_the_container_lane_is_selected_not_skipped() -> None:
    assert pytest_command(unit=True, containers=True)[3:] == ["tests/container", "-m", "container"]
