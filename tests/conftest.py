"""Suite-wide safety: no test reaches real AWS or a developer's MLflow by accident, and a
session leaves no kit process and no temporary folder behind."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import engine, images  # noqa: F401  (session fixtures: the container lane)
from tests.leftovers import snapshot, wait_for_leftovers

INTEGRATION = Path(__file__).resolve().parent / "integration"

SCRUBBED_PREFIXES = ("AWS_", "MLFLOW_", "MLPLATFORM_")


def pytest_configure(config: pytest.Config) -> None:
    """Give the processes tests start the Ctrl-C a terminal gives them.

    A run started in the background by a non-interactive shell (`./kit test &`, a CI step that
    does so) ignores SIGINT, and every process it starts inherits the ignore: `invoke serve`
    would then outlive the Ctrl-C its tests send. A handler of our own is reset to the default
    in each child at exec, as in a terminal.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _scrub_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove AWS_*, MLFLOW_* and MLPLATFORM_* so tests set exactly what they need."""
    for key in list(os.environ):
        if key.startswith(SCRUBBED_PREFIXES):
            monkeypatch.delenv(key)
    # boto3 must not find a developer's ~/.aws either.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(scope="session", autouse=True)
def _no_leftovers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail the run when a kit process started by this session, or an `mlp-*` temporary folder
    it created, is still there after every test and fixture teardown (rule: tests/leftovers.py).

    The session gets a TMPDIR of its own, which the kit passes on to everything it starts: its
    temporary folders and its processes are then told apart from a developer's. This fixture is
    the first session fixture set up, so the last torn down: its check runs after the stacks,
    emulations and servers of every other fixture were stopped. What ran before the session (a
    developer's own stack) is in the first snapshot and never counts.
    """
    basetemp = tmp_path_factory.getbasetemp()
    tmpdir = basetemp / "tmp"
    tmpdir.mkdir(exist_ok=True)
    patch = pytest.MonkeyPatch()
    patch.setenv("TMPDIR", str(tmpdir))
    # tempfile keeps the first folder it found: forget it, so this process uses TMPDIR too.
    patch.setattr(tempfile, "tempdir", None)
    try:
        before = snapshot([str(tmpdir)])
        yield
        found = wait_for_leftovers(before, os.getpid(), [str(basetemp)], [str(tmpdir)])
        if found:
            pytest.fail(
                "the session left these behind (stop them; see tests/leftovers.py):\n"
                + "\n".join(f"  {line}" for line in found),
                pytrace=False,
            )
    finally:
        patch.undo()


# First: pytest-xdist reads the groups in a hook of its own, which would otherwise run before
# this one (a worker registers it ahead of this file) and find none.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that start servers share one worker; `aws` tests run only when selected.

    Tests with servers use fixed ports and session-wide stacks, so under pytest-xdist
    (`--dist loadgroup`, the suite lane) they all go, in order, to one worker, and the unit
    tests run on the others meanwhile. Tests marked `aws` touch real AWS: they run only when
    selected with -m aws.
    """
    for item in items:
        # Everything under tests/integration starts servers, marked or not: a module that forgot
        # the marker would start a second stack on the same ports on the other worker.
        if Path(item.path).is_relative_to(INTEGRATION):
            item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("integration") or item.get_closest_marker("container"):
            item.add_marker(pytest.mark.xdist_group("servers"))
    selected = config.getoption("-m") or ""
    if "aws" in selected:
        return
    skip = pytest.mark.skip(reason="touches real AWS; select explicitly with -m aws")
    for item in items:
        if item.get_closest_marker("aws") is not None:
            item.add_marker(skip)
